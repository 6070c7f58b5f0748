//! The passive inspection: what the doctor knows about each socket path without connecting to it.
//! [`check_path`] looks at the file (stat, and `access(W_OK)`, which `connect(2)` needs);
//! [`related_inodes`] and [`view`] tie the file to the socket table (the listener by its VFS inode,
//! the connections it accepted by its bound name, their clients by peer inode, the clients waiting
//! in its accept queue) and to the processes holding each end. [`view`] is pure.

use std::collections::{HashMap, HashSet};
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::procfd::Owner;
use super::sockets::{SocketTable, UnixSock};

/// A socket to inspect, as the user named it or the scan found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// As shown in the report (`/run/vm.sock`, `hvsock:/run/fc.vsock:1024`).
    pub shown: String,
    /// The Unix socket's path.
    pub path: PathBuf,
    /// For `hvsock:` targets, the guest port a probe asks for.
    pub hvsock_port: Option<u32>,
}

impl Target {
    /// A plain Unix socket path.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self {
            shown: path.display().to_string(),
            path,
            hvsock_port: None,
        }
    }
}

/// What is at the path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PathState {
    /// Nothing.
    Missing,
    /// Something that is not a socket.
    NotASocket {
        /// `regular file`, `directory`, …
        kind: String,
    },
    /// The path (or a directory above it) denies this user.
    PermissionDenied {
        /// Which check failed and what the file's mode is, when known.
        detail: String,
    },
    /// A socket file.
    Socket {
        /// Its inode (matched against sock_diag's `UNIX_DIAG_VFS`).
        ino: u64,
        /// Mode bits (`0o777` part).
        mode: u32,
        /// Owner uid.
        uid: u32,
        /// Owner gid.
        gid: u32,
    },
}

fn kind_of(ft: std::fs::FileType) -> &'static str {
    if ft.is_file() {
        "regular file"
    } else if ft.is_dir() {
        "directory"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else {
        "other file"
    }
}

/// Looks at the file at `path` (following symlinks, as `connect(2)` does).
pub fn check_path(path: &Path) -> PathState {
    let md = match std::fs::metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            return PathState::PermissionDenied {
                detail: format!("stat: {e} (a directory above it is not searchable)"),
            };
        }
        Err(e) if e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(20) => {
            return PathState::Missing;
        }
        Err(e) => {
            return PathState::PermissionDenied {
                detail: format!("stat: {e}"),
            };
        }
    };
    if !md.file_type().is_socket() {
        return PathState::NotASocket {
            kind: kind_of(md.file_type()).into(),
        };
    }
    let mode = md.mode() & 0o7777;
    if let Err(e) = rustix::fs::access(path, rustix::fs::Access::WRITE_OK) {
        return PathState::PermissionDenied {
            detail: format!(
                "no write permission (connect needs it): {}; mode {mode:04o}, owner uid {} gid {}",
                std::io::Error::from(e),
                md.uid(),
                md.gid()
            ),
        };
    }
    PathState::Socket {
        ino: md.ino(),
        mode,
        uid: md.uid(),
        gid: md.gid(),
    }
}

/// One socket end and who holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SockEnd {
    /// The socket.
    pub sock: UnixSock,
    /// The processes holding it (empty: unknown, e.g. another user's process without root).
    pub owners: Vec<Owner>,
}

impl SockEnd {
    /// `pid 12 (socat)` for the first holder, or `an unknown process`.
    pub fn holder(&self) -> String {
        match self.owners.first() {
            Some(o) => format!("pid {} ({})", o.pid, o.comm),
            None => format!("an unknown process (socket inode {})", self.sock.inode),
        }
    }
}

/// One accepted connection: the VMM's end and the host client's end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connection {
    /// The end the VMM accepted (it carries the listener's name).
    pub vmm_end: SockEnd,
    /// The client's end (its peer), when it is still there.
    pub client: Option<SockEnd>,
}

/// Everything known passively about one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetView {
    /// The target.
    pub target: Target,
    /// What is at the path.
    pub path: PathState,
    /// The listening socket bound to the file.
    pub listener: Option<SockEnd>,
    /// A socket bound to the file that does not listen (a datagram socket, or one closing).
    pub bound_not_listening: Option<SockEnd>,
    /// The connections the listener accepted.
    pub connections: Vec<Connection>,
    /// Clients connected but waiting in the accept queue.
    pub queued: Vec<SockEnd>,
}

fn listener_of<'a>(
    path: &Path,
    state: &PathState,
    table: &'a SocketTable,
) -> (Option<&'a UnixSock>, Option<&'a UnixSock>) {
    let PathState::Socket { ino, .. } = state else {
        return (None, None);
    };
    let all: Vec<&UnixSock> = if table.has_vfs() {
        match u32::try_from(*ino) {
            Ok(ino) => table.by_vfs_inode(ino).collect(),
            Err(_) => Vec::new(),
        }
    } else {
        // `/proc/net/unix` has no inodes of socket files: go by the bound name.
        table
            .by_name(&path.display().to_string())
            .filter(|s| s.is_listening() || s.peer.is_none())
            .collect()
    };
    let listener = all.iter().copied().find(|s| s.is_listening());
    let other = all.iter().copied().find(|s| !s.is_listening());
    (listener, other)
}

fn accepted<'a>(
    listener: &'a UnixSock,
    table: &'a SocketTable,
) -> impl Iterator<Item = &'a UnixSock> {
    listener
        .name
        .as_deref()
        .into_iter()
        .flat_map(|n| table.by_name(n))
        .filter(|s| !s.is_listening() && s.peer.is_some())
}

/// The socket inodes whose holders the report needs, for one `/proc` walk for every target.
pub fn related_inodes(path: &Path, state: &PathState, table: &SocketTable) -> HashSet<u32> {
    let mut out = HashSet::new();
    let (listener, other) = listener_of(path, state, table);
    if let Some(o) = other {
        out.insert(o.inode);
    }
    if let Some(l) = listener {
        out.insert(l.inode);
        out.extend(l.icons.iter().copied());
        for a in accepted(l, table) {
            out.insert(a.inode);
            out.extend(a.peer);
        }
    }
    out
}

/// Ties a target's file to the socket table and the holders (pure).
pub fn view(
    target: Target,
    path: PathState,
    table: &SocketTable,
    owners: &HashMap<u32, Vec<Owner>>,
) -> TargetView {
    let end = |s: &UnixSock| SockEnd {
        sock: s.clone(),
        owners: owners.get(&s.inode).cloned().unwrap_or_default(),
    };
    let (listener, other) = listener_of(&target.path, &path, table);
    let mut connections = Vec::new();
    let mut queued = Vec::new();
    if let Some(l) = listener {
        for a in accepted(l, table) {
            connections.push(Connection {
                vmm_end: end(a),
                client: a.peer.and_then(|p| table.by_inode(p)).map(end),
            });
        }
        for inode in l.icons.iter().filter(|i| **i != 0) {
            queued.push(match table.by_inode(*inode) {
                Some(s) => end(s),
                None => SockEnd {
                    sock: UnixSock {
                        inode: *inode,
                        ..UnixSock::default()
                    },
                    owners: owners.get(inode).cloned().unwrap_or_default(),
                },
            });
        }
    }
    TargetView {
        target,
        path,
        listener: listener.map(end),
        bound_not_listening: other.map(end),
        connections,
        queued,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::{UnixListener, UnixStream};

    use super::*;

    #[test]
    fn paths_are_classified() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(check_path(&dir.path().join("none")), PathState::Missing);
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").expect("write");
        assert_eq!(
            check_path(&file),
            PathState::NotASocket {
                kind: "regular file".into()
            }
        );
        assert_eq!(check_path(&file.join("under")), PathState::Missing);
        let sock = dir.path().join("s");
        let _l = UnixListener::bind(&sock).expect("bind");
        assert!(matches!(check_path(&sock), PathState::Socket { .. }));
    }

    #[test]
    fn a_view_ties_listener_connection_and_queue_together() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("s");
        let l = UnixListener::bind(&sock).expect("bind");
        let c1 = UnixStream::connect(&sock).expect("c1");
        let (_a1, _) = l.accept().expect("accept");
        let _c2 = UnixStream::connect(&sock).expect("c2");
        let table = SocketTable::new(super::super::dump::unix_sockets_netlink().expect("dump"));
        let state = check_path(&sock);
        let wanted = related_inodes(&sock, &state, &table);
        let owners = super::super::procfd::owners(&wanted);
        let v = view(Target::unix(&sock), state, &table, &owners);
        assert!(v.listener.is_some());
        assert_eq!(v.connections.len(), 1, "{v:#?}");
        assert_eq!(v.queued.len(), 1, "{v:#?}");
        let client = v.connections[0].client.as_ref().expect("client end");
        assert!(client.owners.iter().any(|o| o.pid == std::process::id()));
        drop(c1);
    }

    #[test]
    fn without_vfs_inodes_the_listener_is_found_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("s");
        let _l = UnixListener::bind(&sock).expect("bind");
        let text = format!(
            "Num RefCount Protocol Flags Type St Inode Path\n\
             0: 00000002 00000000 00010000 0001 01 4242 {}\n",
            sock.display()
        );
        let table = SocketTable::new(crate::diag::sockets::parse_proc_net_unix(&text));
        assert!(!table.has_vfs());
        let v = view(
            Target::unix(&sock),
            check_path(&sock),
            &table,
            &HashMap::new(),
        );
        assert_eq!(v.listener.map(|l| l.sock.inode), Some(4242));
    }
}
