//! Which process holds which socket: the `/proc/*/fd` walk behind `ss -p`, done once per run and
//! only for the inodes asked about (a host with 10,000 sockets is walked in one pass, and only the
//! holders of the sockets under inspection get their command name read).
//!
//! [`parse_socket_link`] is the pure part: a descriptor's link text `socket:[INODE]` to INODE.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::Serialize;

/// A process holding a socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owner {
    /// Process id.
    pub pid: u32,
    /// Command name (`/proc/PID/comm`, at most 15 bytes), `?` when it could not be read.
    pub comm: String,
    /// The descriptor number.
    pub fd: u32,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({}) fd {}", self.pid, self.comm, self.fd)
    }
}

/// `socket:[12345]` → 12345.
pub fn parse_socket_link(link: &[u8]) -> Option<u32> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The holders of each of `wanted`'s inodes, found under `proc_root` (normally `/proc`).
/// Processes that vanish or deny access mid-walk are skipped (that is what `ss -p` does too).
/// Each `fd` directory is opened once and its links read relative to it (`readlinkat` into a
/// stack buffer): no path is built or allocated per descriptor.
pub fn owners_under(proc_root: &Path, wanted: &HashSet<u32>) -> HashMap<u32, Vec<Owner>> {
    use rustix::fs::{Dir, Mode, OFlags, openat, readlinkat_raw};
    let mut found: HashMap<u32, Vec<Owner>> = HashMap::new();
    if wanted.is_empty() {
        return found;
    }
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let Ok(root) = openat(rustix::fs::CWD, proc_root, dir_flags, Mode::empty()) else {
        return found;
    };
    let Ok(procs) = Dir::read_from(&root) else {
        return found;
    };
    let mut link = [0u8; 64];
    for entry in procs.flatten() {
        let Some(pid) = pid_of(OsStr::from_bytes(entry.file_name().to_bytes())) else {
            continue;
        };
        let Ok(fd_dir) = openat(&root, format!("{pid}/fd"), dir_flags, Mode::empty()) else {
            continue;
        };
        let Ok(fds) = Dir::read_from(&fd_dir) else {
            continue;
        };
        let mut comm: Option<String> = None;
        for fd in fds.flatten() {
            let name = fd.file_name();
            // A longer target is cut short: only paths are that long, never `socket:[N]`.
            let Ok(n) = readlinkat_raw(&fd_dir, name, &mut link[..]) else {
                continue;
            };
            let Some(inode) = parse_socket_link(&link[..n.min(link.len())]) else {
                continue;
            };
            if !wanted.contains(&inode) {
                continue;
            }
            let comm = comm
                .get_or_insert_with(|| read_comm(&proc_root.join(pid.to_string())))
                .clone();
            let fd = pid_of(OsStr::from_bytes(name.to_bytes())).unwrap_or(u32::MAX);
            found
                .entry(inode)
                .or_default()
                .push(Owner { pid, comm, fd });
        }
    }
    for owners in found.values_mut() {
        owners.sort_by_key(|o| (o.pid, o.fd));
    }
    found
}

/// [`owners_under`] `/proc`.
pub fn owners(wanted: &HashSet<u32>) -> HashMap<u32, Vec<Owner>> {
    owners_under(Path::new("/proc"), wanted)
}

fn pid_of(name: &OsStr) -> Option<u32> {
    let b = name.as_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn read_comm(proc_dir: &Path) -> String {
    std::fs::read(proc_dir.join("comm"))
        .ok()
        .map(|b| {
            String::from_utf8_lossy(b.get(..64).unwrap_or(&b))
                .trim_end()
                .to_string()
        })
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::net::UnixListener;

    use super::*;

    #[test]
    fn socket_links_parse_and_others_do_not() {
        assert_eq!(parse_socket_link(b"socket:[12345]"), Some(12345));
        assert_eq!(parse_socket_link(b"socket:[]"), None);
        assert_eq!(parse_socket_link(b"socket:[99999999999]"), None);
        assert_eq!(parse_socket_link(b"pipe:[3]"), None);
        assert_eq!(parse_socket_link(b"/dev/null"), None);
        assert_eq!(parse_socket_link(b"socket:[12a]"), None);
    }

    #[test]
    fn this_process_is_found_holding_its_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = UnixListener::bind(dir.path().join("s")).expect("bind");
        // The socket's own inode is what fstat on the descriptor reports.
        let ino = std::fs::metadata(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&l)
        ))
        .expect("stat fd")
        .ino() as u32;
        let found = owners(&HashSet::from([ino]));
        let mine = found.get(&ino).expect("found");
        assert!(mine.iter().any(|o| o.pid == std::process::id()), "{mine:?}");
    }
}
