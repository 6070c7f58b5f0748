//! sock_diag netlink messages, built and parsed without IO: the `unix_diag` dump request and its
//! answers (name, VFS inode, peer, pending connections, queue lengths, owner uid), and the
//! `vsock_diag` dump. The kernel is trusted-ish, but every length is checked: a short or
//! inconsistent message is a [`NetlinkError`] with its offset and bytes, never a panic.
//!
//! Layouts (from `linux/netlink.h`, `linux/sock_diag.h`, `linux/unix_diag.h`,
//! `linux/vm_sockets_diag.h`): `nlmsghdr` is 16 bytes (len, type, flags, seq, pid);
//! `unix_diag_msg` 16 bytes (family, type, state, pad, ino, cookie\[2\]) followed by 4-aligned
//! attributes (`nlattr`: len, type, payload); `vsock_diag_msg` 32 bytes.

use super::sockets::{SockType, UnixSock, VsockSock};
use crate::wire::hex::to_hex;

/// `NETLINK_SOCK_DIAG`'s one request type.
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLMSG_ERROR`.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
pub const NLMSG_DONE: u16 = 3;
/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;
/// `AF_UNIX`.
pub const AF_UNIX: u8 = 1;
/// `AF_VSOCK`.
pub const AF_VSOCK: u8 = 40;

/// `UDIAG_SHOW_NAME`: the bound path.
pub const UDIAG_SHOW_NAME: u32 = 0x01;
/// `UDIAG_SHOW_VFS`: the socket file's inode and device.
pub const UDIAG_SHOW_VFS: u32 = 0x02;
/// `UDIAG_SHOW_PEER`: the peer's socket inode.
pub const UDIAG_SHOW_PEER: u32 = 0x04;
/// `UDIAG_SHOW_ICONS`: a listener's pending connections (the waiting clients' inodes).
pub const UDIAG_SHOW_ICONS: u32 = 0x08;
/// `UDIAG_SHOW_RQLEN`: receive and send queue (for a listener: accept queue and backlog).
pub const UDIAG_SHOW_RQLEN: u32 = 0x10;
/// `UDIAG_SHOW_UID`: the owner's uid.
pub const UDIAG_SHOW_UID: u32 = 0x40;

const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_VFS: u16 = 1;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_ICONS: u16 = 3;
const UNIX_DIAG_RQLEN: u16 = 4;
const UNIX_DIAG_UID: u16 = 7;

/// Length of `nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
const UNIX_DIAG_MSG_LEN: usize = 16;
const VSOCK_DIAG_MSG_LEN: usize = 32;
/// Most pending-connection inodes kept per listener (a backlog is small; a hostile count is not).
pub const MAX_ICONS: usize = 4096;

/// A netlink answer that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetlinkError {
    /// A message or attribute is shorter than its header says, or than its header.
    #[error("truncated {what} at offset {offset}: {hex}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Offset in the buffer.
        offset: usize,
        /// Up to 32 bytes from there.
        hex: String,
    },
    /// The kernel answered with an error (`NLMSG_ERROR` with a negative errno).
    #[error("the kernel refused the request: errno {errno}")]
    Kernel {
        /// The errno (positive).
        errno: i32,
    },
}

/// The request for a dump of every Unix socket, with everything the doctor needs.
pub fn unix_dump_request(seq: u32) -> Vec<u8> {
    let show = UDIAG_SHOW_NAME
        | UDIAG_SHOW_VFS
        | UDIAG_SHOW_PEER
        | UDIAG_SHOW_ICONS
        | UDIAG_SHOW_RQLEN
        | UDIAG_SHOW_UID;
    diag_request(seq, AF_UNIX, show)
}

/// The request for a dump of every vsock socket (`vsock_diag`; nothing to choose to show).
pub fn vsock_dump_request(seq: u32) -> Vec<u8> {
    diag_request(seq, AF_VSOCK, 0)
}

/// `nlmsghdr` + the 24-byte `unix_diag_req` / `vsock_diag_req` (same layout: family, protocol,
/// pad, states, ino, show, cookie\[2\]).
fn diag_request(seq: u32, family: u8, show: u32) -> Vec<u8> {
    let total = NLMSG_HDRLEN + 24;
    let mut b = Vec::with_capacity(total);
    b.extend_from_slice(&(total as u32).to_ne_bytes());
    b.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.push(family);
    b.push(0);
    b.extend_from_slice(&0u16.to_ne_bytes());
    b.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    b.extend_from_slice(&0u32.to_ne_bytes()); // ino
    b.extend_from_slice(&show.to_ne_bytes());
    b.extend_from_slice(&u32::MAX.to_ne_bytes()); // no cookie
    b.extend_from_slice(&u32::MAX.to_ne_bytes());
    b
}

/// What one buffer of a dump held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch<T> {
    /// The records.
    pub items: Vec<T>,
    /// Whether `NLMSG_DONE` was seen (the dump is complete).
    pub done: bool,
}

fn truncated(what: &'static str, buf: &[u8], offset: usize) -> NetlinkError {
    let end = buf.len().min(offset.saturating_add(32));
    NetlinkError::Truncated {
        what,
        offset,
        hex: to_hex(buf.get(offset..end).unwrap_or(&[])),
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Splits a receive buffer into netlink messages and hands each payload of a `want` type to
/// `each`; stops at `NLMSG_DONE`.
fn walk(
    buf: &[u8],
    want: u16,
    mut each: impl FnMut(&[u8], usize) -> Result<(), NetlinkError>,
) -> Result<bool, NetlinkError> {
    let mut at = 0usize;
    while at < buf.len() {
        let (Some(len), Some(kind)) = (u32_at(buf, at), u16_at(buf, at + 4)) else {
            return Err(truncated("netlink header", buf, at));
        };
        let len = len as usize;
        if len < NLMSG_HDRLEN || buf.len() - at < len {
            return Err(truncated("netlink message", buf, at));
        }
        let payload = &buf[at + NLMSG_HDRLEN..at + len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = u32_at(payload, 0).map_or(0, |e| e as i32);
                if errno != 0 {
                    return Err(NetlinkError::Kernel {
                        errno: errno.saturating_neg(),
                    });
                }
            }
            k if k == want => each(payload, at + NLMSG_HDRLEN)?,
            _ => {}
        }
        at = at.saturating_add(align4(len));
    }
    Ok(false)
}

/// Parses one receive buffer of a `unix_diag` dump.
pub fn parse_unix(buf: &[u8]) -> Result<Batch<UnixSock>, NetlinkError> {
    let mut items = Vec::new();
    let done = walk(buf, SOCK_DIAG_BY_FAMILY, |p, base| {
        items.push(parse_unix_msg(p, base)?);
        Ok(())
    })?;
    Ok(Batch { items, done })
}

fn parse_unix_msg(p: &[u8], base: usize) -> Result<UnixSock, NetlinkError> {
    if p.len() < UNIX_DIAG_MSG_LEN {
        return Err(truncated("unix_diag_msg", p, 0).with_base(base));
    }
    let mut s = UnixSock {
        inode: u32_at(p, 4).unwrap_or(0),
        sock_type: SockType::from_raw(p[1]),
        state: p[2],
        ..UnixSock::default()
    };
    let mut at = UNIX_DIAG_MSG_LEN;
    while at + 4 <= p.len() {
        let (Some(len), Some(kind)) = (u16_at(p, at), u16_at(p, at + 2)) else {
            break;
        };
        let len = len as usize;
        if len < 4 || p.len() - at < len {
            return Err(NetlinkError::Truncated {
                what: "unix_diag attribute",
                offset: base + at,
                hex: to_hex(&p[at..p.len().min(at + 32)]),
            });
        }
        let v = &p[at + 4..at + len];
        match kind & 0x3fff {
            UNIX_DIAG_NAME => s.name = Some(name_of(v)),
            UNIX_DIAG_VFS => {
                if let (Some(ino), Some(dev)) = (u32_at(v, 0), u32_at(v, 4)) {
                    s.vfs = Some((ino, dev));
                }
            }
            UNIX_DIAG_PEER => s.peer = u32_at(v, 0).filter(|p| *p != 0),
            UNIX_DIAG_ICONS => {
                s.icons = v
                    .chunks_exact(4)
                    .take(MAX_ICONS)
                    .filter_map(|c| u32_at(c, 0))
                    .collect();
            }
            UNIX_DIAG_RQLEN => {
                if let (Some(r), Some(w)) = (u32_at(v, 0), u32_at(v, 4)) {
                    s.rqueue = r;
                    s.wqueue = w;
                }
            }
            UNIX_DIAG_UID => s.uid = u32_at(v, 0),
            _ => {}
        }
        at = at.saturating_add(align4(len));
    }
    Ok(s)
}

/// A bound name: a path, or `@name` for the abstract namespace (leading NUL), NULs trimmed.
fn name_of(v: &[u8]) -> String {
    if let Some(rest) = v.strip_prefix(b"\0") {
        format!("@{}", String::from_utf8_lossy(rest))
    } else {
        let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
        String::from_utf8_lossy(&v[..end]).into_owned()
    }
}

/// Parses one receive buffer of a `vsock_diag` dump.
pub fn parse_vsock(buf: &[u8]) -> Result<Batch<VsockSock>, NetlinkError> {
    let mut items = Vec::new();
    let done = walk(buf, SOCK_DIAG_BY_FAMILY, |p, base| {
        if p.len() < VSOCK_DIAG_MSG_LEN {
            return Err(truncated("vsock_diag_msg", p, 0).with_base(base));
        }
        let at = |o| u32_at(p, o).unwrap_or(0);
        items.push(VsockSock {
            sock_type: SockType::from_raw(p[1]),
            state: p[2],
            src_cid: at(4),
            src_port: at(8),
            dst_cid: at(12),
            dst_port: at(16),
            inode: at(20),
        });
        Ok(())
    })?;
    Ok(Batch { items, done })
}

impl NetlinkError {
    fn with_base(self, base: usize) -> Self {
        match self {
            Self::Truncated { what, offset, hex } => Self::Truncated {
                what,
                offset: offset + base,
                hex,
            },
            other => other,
        }
    }
}

#[cfg(test)]
#[path = "netlink_tests.rs"]
mod tests;
