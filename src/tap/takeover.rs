//! `--takeover PATH`: when the host daemon cannot be pointed at another socket, the tap moves
//! the VMM's socket file aside (a rename: the VMM keeps listening on the same socket, now reached
//! at the new name), listens at the old path itself, relays to the moved socket, and puts the
//! file back when it stops — on a normal exit, on Ctrl-C, and when the [`Takeover`] is dropped.
//!
//! Risks (also in `docs/captures.md`): clients that connect during the rename window see a
//! missing path for a moment; a VMM that re-creates its socket while the tap runs (a restart)
//! makes the restore refuse rather than overwrite the new file; a `kill -9` of the tap leaves the
//! socket at `PATH.guestwire-orig`, which [`Takeover::recover`] (`guestwire tap --restore PATH`)
//! moves back; connections open when the tap stops are closed.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The suffix of the moved socket file.
pub const MOVED_SUFFIX: &str = ".guestwire-orig";

/// Errors of a takeover.
#[derive(Debug, thiserror::Error)]
pub enum TakeoverError {
    /// Nothing is at the path.
    #[error("{path}: no socket to take over ({source})")]
    Missing {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The path is not a socket.
    #[error("{path}: not a socket; refusing to move it")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// A moved socket from an earlier takeover is still there.
    #[error(
        "{moved} exists: an earlier takeover was not restored; run `guestwire tap --restore {path}` first"
    )]
    AlreadyMoved {
        /// The path taken over.
        path: PathBuf,
        /// The moved file.
        moved: PathBuf,
    },
    /// A rename failed.
    #[error("moving {from} to {to}: {source}")]
    Rename {
        /// From.
        from: PathBuf,
        /// To.
        to: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Something else is at the path now: the restore did not overwrite it.
    #[error(
        "{path} was re-created while the tap ran (the VMM restarted?); left it, the old socket stays at {moved}"
    )]
    Replaced {
        /// The path.
        path: PathBuf,
        /// Where the old socket stays.
        moved: PathBuf,
    },
}

/// A socket moved aside; restores it when dropped.
#[derive(Debug)]
pub struct Takeover {
    path: PathBuf,
    moved: PathBuf,
    /// Inode of the moved socket, to recognise it.
    inode: u64,
    restored: bool,
}

/// The path a socket at `path` is moved to.
pub fn moved_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(MOVED_SUFFIX);
    PathBuf::from(s)
}

impl Takeover {
    /// Moves the socket at `path` to `path.guestwire-orig`; the tap then listens at `path` and
    /// relays to [`moved`](Self::moved).
    pub fn engage(path: &Path) -> Result<Self, TakeoverError> {
        let meta = std::fs::symlink_metadata(path).map_err(|source| TakeoverError::Missing {
            path: path.into(),
            source,
        })?;
        if !meta.file_type().is_socket() {
            return Err(TakeoverError::NotASocket { path: path.into() });
        }
        let moved = moved_path(path);
        if std::fs::symlink_metadata(&moved).is_ok() {
            return Err(TakeoverError::AlreadyMoved {
                path: path.into(),
                moved,
            });
        }
        std::fs::rename(path, &moved).map_err(|source| TakeoverError::Rename {
            from: path.into(),
            to: moved.clone(),
            source,
        })?;
        Ok(Self {
            path: path.into(),
            moved,
            inode: meta.ino(),
            restored: false,
        })
    }

    /// The path taken over (where the tap listens).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the VMM's socket is now (the tap's upstream).
    pub fn moved(&self) -> &Path {
        &self.moved
    }

    /// Puts the socket back: removes the tap's socket at the path (only a socket) and renames
    /// the moved one back. Call after the tap's listener is closed.
    pub fn restore(mut self) -> Result<(), TakeoverError> {
        self.restored = true;
        restore(&self.path, &self.moved, Some(self.inode))
    }

    /// Moves back a socket left at `path.guestwire-orig` by a tap that was killed.
    pub fn recover(path: &Path) -> Result<(), TakeoverError> {
        restore(path, &moved_path(path), None)
    }
}

impl Drop for Takeover {
    fn drop(&mut self) {
        if !self.restored {
            let _ = restore(&self.path, &self.moved, Some(self.inode));
        }
    }
}

fn restore(path: &Path, moved: &Path, inode: Option<u64>) -> Result<(), TakeoverError> {
    let moved_meta = std::fs::symlink_metadata(moved).map_err(|source| TakeoverError::Missing {
        path: moved.into(),
        source,
    })?;
    if inode.is_some_and(|i| i != moved_meta.ino()) {
        return Err(TakeoverError::Replaced {
            path: path.into(),
            moved: moved.into(),
        });
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() && !is_live(path) => {
            let _ = std::fs::remove_file(path);
        }
        Ok(_) => {
            return Err(TakeoverError::Replaced {
                path: path.into(),
                moved: moved.into(),
            });
        }
        Err(_) => {}
    }
    std::fs::rename(moved, path).map_err(|source| TakeoverError::Rename {
        from: moved.into(),
        to: path.into(),
        source,
    })
}

/// Whether something listens on the socket at `path` (a re-created VMM socket).
fn is_live(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engage_moves_the_socket_and_restore_puts_the_same_socket_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vm.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let t = Takeover::engage(&path).expect("engage");
        assert!(!path.exists());
        // The VMM still listens, reached at the new name.
        assert!(std::os::unix::net::UnixStream::connect(t.moved()).is_ok());
        t.restore().expect("restore");
        assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());
        drop(listener);
    }

    #[test]
    fn dropping_a_takeover_restores_and_a_second_takeover_is_refused_until_then() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vm.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let t = Takeover::engage(&path).expect("engage");
        // A stale tap socket (nothing listens) at the path is cleaned up on restore.
        let stale = std::os::unix::net::UnixListener::bind(&path).expect("tap socket");
        drop(stale);
        drop(t);
        assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());
        assert!(!moved_path(&path).exists());
    }

    #[test]
    fn a_regular_file_is_never_moved_and_recover_undoes_a_killed_tap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("not-a-socket");
        std::fs::write(&file, b"x").expect("write");
        assert!(matches!(
            Takeover::engage(&file),
            Err(TakeoverError::NotASocket { .. })
        ));
        let path = dir.path().join("vm.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let t = Takeover::engage(&path).expect("engage");
        std::mem::forget(t); // as if the tap were killed
        assert!(matches!(
            Takeover::engage(&path),
            Err(TakeoverError::Missing { .. })
        ));
        Takeover::recover(&path).expect("recover");
        assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());
    }
}
