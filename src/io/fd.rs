//! Async reads and writes on a character device (a pty master, or a terminal opened by path such
//! as the slave end behind a `pty:` link), without `unsafe` and without tying up a blocking
//! thread: the descriptor is set non-blocking and driven by tokio's reactor.
//!
//! `tokio::fs::File` is not usable here: it runs every read on the blocking pool, and a read on a
//! terminal can wait forever. A hang-up shows as `EIO` on a terminal (reading a pty master after
//! the last slave descriptor closed, or a slave after the master closed); [`FdStream`] reports it
//! as end of stream on read and as `BrokenPipe` on write, as a socket would.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::unix::pipe;

/// A non-blocking character device as a tokio stream.
#[derive(Debug)]
pub struct FdStream {
    rx: pipe::Receiver,
    tx: pipe::Sender,
}

fn is_hangup(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::EIO as i32)
}

impl FdStream {
    /// Takes over `fd`, sets it non-blocking and registers it with the reactor.
    ///
    /// Must be called from within a Tokio runtime, like tokio's own constructors.
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        let flags = OFlag::from_bits_retain(fcntl(&fd, FcntlArg::F_GETFL)?);
        fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        let file = File::from(fd);
        // tokio's pipe ends are plain non-blocking descriptors driven by the reactor, with a safe
        // constructor (`AsyncFd::new` is deprecated in favour of an `unsafe` one, and this crate
        // forbids `unsafe`). One end reads and a duplicate descriptor writes; both share the
        // open file description, so the non-blocking flag set above applies to both.
        let write_half = file.try_clone()?;
        Ok(Self {
            rx: pipe::Receiver::from_file_unchecked(file)?,
            tx: pipe::Sender::from_file_unchecked(write_half)?,
        })
    }

    /// Opens a character device (e.g. a terminal) read-write, non-blocking and without making it
    /// the process's controlling terminal.
    ///
    /// Must be called from within a Tokio runtime.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
            .open(path)?;
        Self::new(file.into())
    }
}

impl AsyncRead for FdStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match ready!(Pin::new(&mut self.rx).poll_read(cx, buf)) {
            Err(e) if is_hangup(&e) => Poll::Ready(Ok(())),
            other => Poll::Ready(other),
        }
    }
}

impl AsyncWrite for FdStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match ready!(Pin::new(&mut self.tx).poll_write(cx, buf)) {
            Err(e) if is_hangup(&e) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the terminal's other end hung up",
            ))),
            other => Poll::Ready(other),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the terminal; there is nothing to flush.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A terminal has no half-close; the descriptors close when the stream is dropped.
        Poll::Ready(Ok(()))
    }
}
