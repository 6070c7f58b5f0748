//! A pseudo-terminal standing in for a guest's virtio-serial port, `/dev/virtio-ports/<name>`:
//! its slave end is linked (symlink) at a path so that a user's agent binary can open it as it
//! would open the real port, and its master end is the host side of the channel.
//!
//! The terminal is put in raw mode (`cfmakeraw`: no echo, no CR/LF translation, no signal or
//! flow-control characters, 8-bit), so that bytes pass through unchanged, as on a virtio port.
//! [`Pty`] keeps one slave descriptor open for its whole life: like the virtio port, the channel
//! then exists before the agent opens it and survives the agent closing and reopening it, and data
//! the host writes first waits in the terminal's buffer. The link is removed on drop, and only if
//! it still points at this terminal.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::pty::openpty;
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use nix::unistd::ttyname;

use super::fd::FdStream;

/// Why a pseudo-terminal could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PtyError {
    /// Something already exists at the link path (a file, or a link to a live target).
    #[error(
        "{link} already exists; not replacing it (remove it if it is left over from an earlier run)"
    )]
    LinkExists {
        /// The link path.
        link: String,
    },
    /// The directory the link should go in does not exist.
    #[error("cannot create {link}: its directory does not exist")]
    NoSuchDirectory {
        /// The link path.
        link: String,
    },
    /// No permission to create the link.
    #[error("cannot create {link}: permission denied")]
    PermissionDenied {
        /// The link path.
        link: String,
    },
    /// A system call failed.
    #[error("pty for {link}: {step} failed: {source}")]
    Io {
        /// The link path.
        link: String,
        /// What was being done, e.g. `openpty`, `tcsetattr`.
        step: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl PtyError {
    /// The error's kind as a stable snake_case name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::LinkExists { .. } => "link_exists",
            Self::NoSuchDirectory { .. } => "no_such_directory",
            Self::PermissionDenied { .. } => "permission_denied",
            Self::Io { .. } => "io",
        }
    }
}

/// A raw-mode pseudo-terminal with its slave end linked at a path.
#[derive(Debug)]
pub struct Pty {
    master: Option<FdStream>,
    /// Held open so the terminal lives (and buffers) whether or not the agent has it open.
    _slave: OwnedFd,
    slave_path: PathBuf,
    link: PathBuf,
}

impl Pty {
    /// Opens a pseudo-terminal in raw mode and links its slave end at `link`.
    ///
    /// A dangling symlink at `link` (left by an earlier run that crashed) is replaced; anything
    /// else there is an error and is left alone. Must be called from within a Tokio runtime.
    pub fn open(link: &Path) -> Result<Self, PtyError> {
        let shown = link.display().to_string();
        let io_err = |step: &'static str| {
            let shown = shown.clone();
            move |source: nix::Error| PtyError::Io {
                link: shown,
                step,
                source: io::Error::from(source),
            }
        };
        let pair = openpty(None, None).map_err(io_err("openpty"))?;
        let mut termios = tcgetattr(&pair.slave).map_err(io_err("tcgetattr"))?;
        cfmakeraw(&mut termios);
        tcsetattr(&pair.slave, SetArg::TCSANOW, &termios).map_err(io_err("tcsetattr"))?;
        let slave_path = ttyname(&pair.slave).map_err(io_err("ttyname"))?;
        let master = FdStream::new(pair.master).map_err(|source| PtyError::Io {
            link: shown.clone(),
            step: "registering the master",
            source,
        })?;
        make_link(&slave_path, link, &shown)?;
        Ok(Self {
            master: Some(master),
            _slave: pair.slave,
            slave_path,
            link: link.to_path_buf(),
        })
    }

    /// The master end, the host side of the channel. `None` once taken.
    pub fn take_master(&mut self) -> Option<FdStream> {
        self.master.take()
    }

    /// Where the slave end is linked (what the agent opens).
    pub fn link(&self) -> &Path {
        &self.link
    }

    /// The slave terminal device, e.g. `/dev/pts/3`.
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }
}

fn make_link(target: &Path, link: &Path, shown: &str) -> Result<(), PtyError> {
    match std::fs::symlink_metadata(link) {
        Ok(md) if md.file_type().is_symlink() && std::fs::metadata(link).is_err() => {
            // Dangling: an earlier run's terminal is gone. Replace it.
            if let Err(source) = std::fs::remove_file(link)
                && source.kind() != io::ErrorKind::NotFound
            {
                return Err(PtyError::Io {
                    link: shown.into(),
                    step: "removing a dangling link",
                    source,
                });
            }
        }
        Ok(_) => return Err(PtyError::LinkExists { link: shown.into() }),
        Err(_) => {}
    }
    std::os::unix::fs::symlink(target, link).map_err(|source| match source.kind() {
        io::ErrorKind::AlreadyExists => PtyError::LinkExists { link: shown.into() },
        io::ErrorKind::NotFound => PtyError::NoSuchDirectory { link: shown.into() },
        io::ErrorKind::PermissionDenied => PtyError::PermissionDenied { link: shown.into() },
        _ => PtyError::Io {
            link: shown.into(),
            step: "symlink",
            source,
        },
    })
}

impl Drop for Pty {
    fn drop(&mut self) {
        // Only remove the link if it is still ours: someone may have replaced it.
        if std::fs::read_link(&self.link).is_ok_and(|t| t == self.slave_path) {
            let _ = std::fs::remove_file(&self.link);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::time::timeout;

    use super::*;

    const DEADLINE: Duration = Duration::from_secs(10);

    /// Writes all 256 byte values on `w` and checks they arrive unchanged on `r`.
    async fn transparent<W, R>(w: &mut W, r: &mut R)
    where
        W: AsyncWrite + Unpin,
        R: AsyncRead + Unpin,
    {
        let sent: Vec<u8> = (0..=255u8).collect();
        let mut got = vec![0u8; sent.len()];
        let (wr, rd) = tokio::join!(
            async { timeout(DEADLINE, w.write_all(&sent)).await },
            async { timeout(DEADLINE, r.read_exact(&mut got)).await },
        );
        wr.expect("write deadline").expect("write");
        rd.expect("read deadline").expect("read");
        assert_eq!(got, sent);
    }

    #[tokio::test]
    async fn raw_mode_passes_every_byte_both_ways() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("org.quantix.agent.0");
        let mut pty = Pty::open(&link).expect("pty");
        let mut master = pty.take_master().expect("master");
        assert!(pty.take_master().is_none());
        let mut slave = FdStream::open(&link).expect("open the link as the agent would");
        transparent(&mut master, &mut slave).await;
        transparent(&mut slave, &mut master).await;
        // No echo: nothing written by the host came back to the host.
        let mut one = [0u8; 1];
        let echoed = timeout(Duration::from_millis(50), master.read(&mut one)).await;
        assert!(echoed.is_err(), "unexpected echo: {echoed:?}");
    }

    #[tokio::test]
    async fn host_data_waits_until_the_agent_opens_the_port() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("port");
        let mut pty = Pty::open(&link).expect("pty");
        let mut master = pty.take_master().expect("master");
        timeout(DEADLINE, master.write_all(b"early\n"))
            .await
            .expect("deadline")
            .expect("write");
        let mut slave = FdStream::open(&link).expect("open");
        let mut got = [0u8; 6];
        timeout(DEADLINE, slave.read_exact(&mut got))
            .await
            .expect("deadline")
            .expect("read");
        assert_eq!(&got, b"early\n");
    }

    #[tokio::test]
    async fn link_lifecycle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("port");
        let pty = Pty::open(&link).expect("pty");
        assert_eq!(std::fs::read_link(&link).expect("link"), pty.slave_path());
        assert!(pty.slave_path().starts_with("/dev/pts"));
        // A second pty cannot take a live link.
        let e = Pty::open(&link).expect_err("link is taken");
        assert_eq!(e.kind(), "link_exists");
        drop(pty);
        assert!(
            std::fs::symlink_metadata(&link).is_err(),
            "link removed on drop"
        );

        // A dangling link from a crashed run is replaced.
        std::os::unix::fs::symlink(dir.path().join("gone"), &link).expect("dangling");
        let pty = Pty::open(&link).expect("replaces a dangling link");
        assert_eq!(std::fs::read_link(&link).expect("link"), pty.slave_path());
        drop(pty);

        // A regular file is never replaced or removed.
        std::fs::write(&link, b"keep me").expect("file");
        assert_eq!(Pty::open(&link).expect_err("file").kind(), "link_exists");
        assert_eq!(std::fs::read(&link).expect("still there"), b"keep me");

        let e = Pty::open(&dir.path().join("no/such/dir/port")).expect_err("no dir");
        assert_eq!(e.kind(), "no_such_directory");
    }

    #[tokio::test]
    async fn a_replaced_link_is_not_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("port");
        let pty = Pty::open(&link).expect("pty");
        std::fs::remove_file(&link).expect("rm");
        std::fs::write(&link, b"someone else's").expect("file");
        drop(pty);
        assert_eq!(std::fs::read(&link).expect("kept"), b"someone else's");
    }
}
