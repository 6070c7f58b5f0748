//! The guest end of a virtio-serial port (`serial:/dev/virtio-ports/<name>`), as an agent inside a
//! VM has to serve it.
//!
//! A virtio-serial port is not a socket: there is no `accept`. What QEMU 7.2 does
//! (`../shared/VMLAB.md`): while no host client is connected, the guest's `read()` returns 0 at once
//! and `poll()` reports `POLLHUP`, and a blocking write waits until a host connects; only one
//! process may have the port open (`EBUSY`). An agent that just loops "open, serve until EOF"
//! therefore either spins on EOF or, worse, starts a session while no host is there, writes its
//! greeting into a port that accepts nothing, and never reads the next host's requests.
//!
//! [`SerialPortListener::accept`] turns the port into a sequence of host sessions. It opens the
//! device once and keeps it open for good, as qemu-ga does: closing a virtio-serial port throws
//! away whatever the host already sent into it (the kernel discards a port's unread data on the
//! last close), so an agent that closes and reopens between hosts loses the next host's first
//! request whenever that host is quicker than the reopen (found by `tests/real_vm.rs`). Each
//! `accept` waits until the previous session's stream is gone, then until a host is connected
//! (`POLLHUP` clear), and returns the port as a stream; the session ends when a read returns end of
//! stream (the host left).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::fd::FdStream;

/// How often a waiting listener looks again for a host.
pub const HOST_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The guest end of a virtio-serial port, serving one host session at a time.
#[derive(Debug)]
pub struct SerialPortListener {
    path: PathBuf,
    /// The port, open from the first `accept` on.
    port: Option<File>,
    /// One permit: held by the session in progress.
    session: Arc<Semaphore>,
}

impl SerialPortListener {
    /// A listener on the port device at `path` (e.g. `/dev/virtio-ports/org.qemu.guest_agent.0`).
    /// Fails at once if `path` is missing or not a character device.
    pub fn new(path: &Path) -> io::Result<Self> {
        let md = std::fs::metadata(path)?;
        if !md.file_type().is_char_device() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is not a character device (expected a virtio-serial port such as /dev/virtio-ports/NAME)",
                    path.display()
                ),
            ));
        }
        Ok(Self {
            path: path.into(),
            port: None,
            session: Arc::new(Semaphore::new(1)),
        })
    }

    /// The port device's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the next host session: for the previous session's stream to be dropped, then
    /// for a host to be connected; returns the port as a stream. Waits as long as it takes, like
    /// `accept` on a socket. The first call opens the port; if another process has it open
    /// (`EBUSY`), that is an error naming the likely cause.
    ///
    /// Must be called from within a Tokio runtime.
    pub async fn accept(&mut self) -> io::Result<SerialSession> {
        let permit = self
            .session
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| io::Error::other("the session gate closed"))?;
        let port = match &self.port {
            Some(port) => port,
            None => self.port.insert(open_port(&self.path).map_err(|e| {
                if e.raw_os_error() == Some(Errno::EBUSY as i32) {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "{} is busy: another process has the port open (another agent? see `fuser {}`)",
                            self.path.display(),
                            self.path.display()
                        ),
                    )
                } else {
                    e
                }
            })?),
        };
        while !host_connected(port)? {
            tokio::time::sleep(HOST_POLL_INTERVAL).await;
        }
        let stream = FdStream::new(port.try_clone()?.into())?;
        Ok(SerialSession {
            stream,
            _permit: permit,
        })
    }
}

/// One host session on a virtio-serial port: the port as a stream, until end of stream (the host
/// left). Dropping it lets the listener wait for the next host; the port itself stays open.
#[derive(Debug)]
pub struct SerialSession {
    stream: FdStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for SerialSession {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SerialSession {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

fn open_port(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
        .open(path)
}

/// Whether a host is connected to the open port: the port reports `POLLHUP` while none is (a
/// terminal standing in for the port, while its other end is closed).
pub fn host_connected(port: &impl AsFd) -> io::Result<bool> {
    let mut fds = [PollFd::new(
        port.as_fd(),
        PollFlags::POLLIN | PollFlags::POLLOUT,
    )];
    loop {
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let revents = fds[0].revents().unwrap_or(PollFlags::empty());
    Ok(!revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::pty::openpty;
    use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
    use nix::unistd::ttyname;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A raw pseudo-terminal whose slave stands in for the port: the master end open means "a
    /// host is connected".
    fn raw_pty() -> (std::os::fd::OwnedFd, PathBuf) {
        let pty = openpty(None, None).expect("openpty");
        let mut t = tcgetattr(&pty.slave).expect("tcgetattr");
        cfmakeraw(&mut t);
        tcsetattr(&pty.slave, SetArg::TCSANOW, &t).expect("raw");
        let path = ttyname(&pty.slave).expect("ttyname");
        (pty.master, path)
    }

    #[test]
    fn a_file_that_is_not_a_device_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").expect("write");
        let err = SerialPortListener::new(&file).expect_err("a regular file");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("not a character device"), "{err}");
        let missing = SerialPortListener::new(&dir.path().join("missing")).expect_err("missing");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn hangup_means_no_host() {
        let (master, path) = raw_pty();
        let slave = open_port(&path).expect("open");
        assert!(host_connected(&slave).expect("poll"), "master open");
        drop(master);
        assert!(!host_connected(&slave).expect("poll"), "master closed");
    }

    #[tokio::test]
    async fn a_session_carries_bytes_both_ways_and_ends_when_the_host_leaves() {
        let (master, path) = raw_pty();
        let mut listener = SerialPortListener::new(&path).expect("listener");
        let mut session = listener.accept().await.expect("accept");
        let mut host = FdStream::new(master).expect("master");
        host.write_all(b"ping").await.expect("host write");
        let mut buf = [0u8; 4];
        session.read_exact(&mut buf).await.expect("guest read");
        assert_eq!(&buf, b"ping");
        session.write_all(b"pong").await.expect("guest write");
        host.read_exact(&mut buf).await.expect("host read");
        assert_eq!(&buf, b"pong");
        drop(host);
        let n = session.read(&mut buf).await.expect("end of stream");
        assert_eq!(n, 0, "the host leaving ends the session");
    }

    #[tokio::test(start_paused = true)]
    async fn the_next_session_waits_for_the_previous_one_and_the_port_stays_open() {
        let (_master, path) = raw_pty();
        let mut listener = SerialPortListener::new(&path).expect("listener");
        let first = listener.accept().await.expect("first session");
        let second = tokio::time::timeout(Duration::from_secs(60), listener.accept()).await;
        assert!(second.is_err(), "a second session while the first runs");
        drop(first);
        let _second = listener.accept().await.expect("second session");
        assert!(
            listener.port.is_some(),
            "the port stays open between sessions"
        );
    }
}
