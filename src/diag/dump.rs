//! Reading the host's socket tables: the `unix_diag` dump over a `NETLINK_SOCK_DIAG` socket
//! (read-only; with a receive deadline), `/proc/net/unix` when that fails, and the `vsock_diag`
//! dump only when the `vsock_diag` module is already there: asking the kernel for a family whose
//! diag module is missing makes it try to load the module, which the doctor must never cause.

use std::path::Path;
use std::time::Duration;

use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::sockopt::{Timeout, set_socket_timeout};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType, recv, sendto, socket};
use serde::Serialize;

use super::netlink::{
    Batch, NetlinkError, parse_unix, parse_vsock, unix_dump_request, vsock_dump_request,
};
use super::sockets::{UnixSock, VsockSock, parse_proc_net_unix};

/// How long one netlink receive may wait.
pub const RECV_DEADLINE: Duration = Duration::from_secs(2);
/// Receive buffer: the kernel's dump messages are at most 32 KiB.
const RECV_BUF: usize = 64 * 1024;
/// Most records taken from one dump (a bound on memory whatever the kernel says).
pub const MAX_RECORDS: usize = 1_000_000;

/// Why a socket table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// A system call failed.
    #[error("{what}: {source}")]
    Os {
        /// Which step.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The answer did not parse.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// The dump did not end within the bounds.
    #[error("the dump did not end after {0} records")]
    TooLong(usize),
}

fn os(what: &'static str) -> impl FnOnce(rustix::io::Errno) -> DumpError {
    move |e| DumpError::Os {
        what,
        source: e.into(),
    }
}

/// Where the Unix socket table came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnixSource {
    /// sock_diag netlink: names, peers, queues, VFS inodes.
    SockDiag,
    /// `/proc/net/unix`: names and states only (no peers, no queues).
    ProcNetUnix,
}

/// Runs one sock_diag dump, parsing each buffer with `parse`.
fn dump<T>(
    request: &[u8],
    parse: impl Fn(&[u8]) -> Result<Batch<T>, NetlinkError>,
) -> Result<Vec<T>, DumpError> {
    let fd = socket(
        AddressFamily::NETLINK,
        SocketType::RAW,
        Some(netlink::SOCK_DIAG),
    )
    .map_err(os("netlink socket"))?;
    set_socket_timeout(&fd, Timeout::Recv, Some(RECV_DEADLINE)).map_err(os("SO_RCVTIMEO"))?;
    sendto(
        &fd,
        request,
        SendFlags::empty(),
        &SocketAddrNetlink::new(0, 0),
    )
    .map_err(os("netlink send"))?;
    let mut buf = vec![0u8; RECV_BUF];
    let mut out = Vec::new();
    loop {
        let (n, _) = recv(&fd, &mut buf[..], RecvFlags::empty()).map_err(os("netlink recv"))?;
        if n == 0 {
            return Ok(out);
        }
        let batch = parse(&buf[..n.min(buf.len())])?;
        out.extend(batch.items);
        if out.len() > MAX_RECORDS {
            return Err(DumpError::TooLong(out.len()));
        }
        if batch.done {
            return Ok(out);
        }
    }
}

/// Every Unix socket, from sock_diag.
pub fn unix_sockets_netlink() -> Result<Vec<UnixSock>, DumpError> {
    dump(&unix_dump_request(1), parse_unix)
}

/// Every Unix socket: sock_diag, else `/proc/net/unix`; with where it came from and, on
/// fallback, why.
pub fn unix_sockets() -> Result<(Vec<UnixSock>, UnixSource, Option<String>), DumpError> {
    match unix_sockets_netlink() {
        Ok(s) => Ok((s, UnixSource::SockDiag, None)),
        Err(e) => {
            let text =
                std::fs::read_to_string("/proc/net/unix").map_err(|source| DumpError::Os {
                    what: "/proc/net/unix",
                    source,
                })?;
            Ok((
                parse_proc_net_unix(&text),
                UnixSource::ProcNetUnix,
                Some(e.to_string()),
            ))
        }
    }
}

/// What the vsock table says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum VsockTable {
    /// `vsock_diag` is not loaded (or failed): nothing known about vsock sockets.
    Unavailable {
        /// Why.
        reason: String,
    },
    /// The dump.
    Sockets {
        /// The sockets.
        sockets: Vec<VsockSock>,
    },
}

/// Whether the `vsock_diag` module is present, judged without asking the kernel to load it:
/// `/sys/module/vsock_diag` (loaded), or `modules.builtin` naming it (built in).
pub fn vsock_diag_present(sys_root: &Path, release: &str) -> bool {
    if sys_root.join("sys/module/vsock_diag").exists() {
        return true;
    }
    let builtin = sys_root.join(format!("lib/modules/{release}/modules.builtin"));
    std::fs::read_to_string(builtin).is_ok_and(|t| t.lines().any(|l| l.ends_with("/vsock_diag.ko")))
}

/// The vsock sockets, or why they are unknown. Never loads a module.
pub fn vsock_sockets() -> VsockTable {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let release = release.trim();
    if !vsock_diag_present(Path::new("/"), release) {
        return VsockTable::Unavailable {
            reason: "the vsock_diag module is not loaded (the doctor does not load modules)".into(),
        };
    }
    match dump(&vsock_dump_request(2), parse_vsock) {
        Ok(sockets) => VsockTable::Sockets { sockets },
        Err(e) => VsockTable::Unavailable {
            reason: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::net::{UnixListener, UnixStream};

    use super::*;

    #[test]
    fn the_netlink_dump_sees_a_listener_its_client_and_the_queue() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("l.sock");
        let l = UnixListener::bind(&path).expect("bind");
        let _c1 = UnixStream::connect(&path).expect("connect");
        let _c2 = UnixStream::connect(&path).expect("connect");
        let ino = std::fs::metadata(&path).expect("stat").ino() as u32;
        let socks = unix_sockets_netlink().expect("dump");
        let listener = socks
            .iter()
            .find(|s| s.vfs.map(|v| v.0) == Some(ino))
            .expect("listener in the dump");
        assert!(listener.is_listening());
        assert_eq!(listener.rqueue, 2, "{listener:?}");
        assert_eq!(listener.icons.len(), 2, "{listener:?}");
        assert_eq!(listener.name.as_deref(), path.to_str());
        drop(l);
    }

    #[test]
    fn vsock_diag_presence_is_read_from_files_only() {
        let root = tempfile::tempdir().expect("tempdir");
        assert!(!vsock_diag_present(root.path(), "6.1.0"));
        let m = root.path().join("lib/modules/6.1.0");
        std::fs::create_dir_all(&m).expect("mkdir");
        std::fs::write(
            m.join("modules.builtin"),
            "kernel/net/vmw_vsock/vsock_diag.ko\n",
        )
        .expect("write");
        assert!(vsock_diag_present(root.path(), "6.1.0"));
        std::fs::create_dir_all(root.path().join("sys/module/vsock_diag")).expect("mkdir");
        assert!(vsock_diag_present(root.path(), "other"));
    }
}
