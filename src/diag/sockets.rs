//! The socket records the doctor reasons about ([`UnixSock`], [`VsockSock`]), the table of them
//! ([`SocketTable`], indexed by inode, VFS inode and bound name), and the pure parser of
//! `/proc/net/unix`, the fallback when sock_diag is not available.

use std::collections::HashMap;

use serde::Serialize;

/// `TCP_LISTEN`, as sock_diag reports a listening socket's state.
pub const STATE_LISTEN: u8 = 10;
/// `TCP_ESTABLISHED`: a connected socket.
pub const STATE_ESTABLISHED: u8 = 1;
/// `TCP_CLOSE`: unconnected (a bound but not listening socket, or a closed one).
pub const STATE_CLOSE: u8 = 7;
/// `TCP_SYN_SENT`: `/proc/net/unix`'s "connecting".
pub const STATE_SYN_SENT: u8 = 2;

/// The socket type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SockType {
    /// `SOCK_STREAM`.
    #[default]
    Stream,
    /// `SOCK_DGRAM`.
    Dgram,
    /// `SOCK_SEQPACKET`.
    Seqpacket,
    /// Anything else.
    Other,
}

impl SockType {
    /// From the kernel's `SOCK_*` number.
    pub fn from_raw(t: u8) -> Self {
        match t {
            1 => Self::Stream,
            2 => Self::Dgram,
            5 => Self::Seqpacket,
            _ => Self::Other,
        }
    }
}

/// One Unix socket, as `unix_diag` (or `/proc/net/unix`) describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct UnixSock {
    /// The socket's inode (`socket:[INODE]` in `/proc/PID/fd`).
    pub inode: u32,
    /// Stream, datagram, seqpacket.
    pub sock_type: SockType,
    /// The TCP-style state number ([`STATE_LISTEN`], [`STATE_ESTABLISHED`], …).
    pub state: u8,
    /// The bound name (a path, or `@name` for the abstract namespace). An accepted socket carries
    /// its listener's name.
    pub name: Option<String>,
    /// The socket file's inode and device (bound sockets only; not with the `/proc` fallback).
    pub vfs: Option<(u32, u32)>,
    /// The peer socket's inode.
    pub peer: Option<u32>,
    /// Listener: connections waiting to be accepted. Connected: bytes waiting to be read.
    pub rqueue: u32,
    /// Listener: the backlog. Connected: bytes written and not yet read by the peer.
    pub wqueue: u32,
    /// Listener: the inodes of the clients waiting in its accept queue.
    pub icons: Vec<u32>,
    /// The owner's uid, when the kernel reports it.
    pub uid: Option<u32>,
}

impl UnixSock {
    /// Whether it listens.
    pub fn is_listening(&self) -> bool {
        self.state == STATE_LISTEN
    }

    /// The state as `ss` names it.
    pub fn state_name(&self) -> &'static str {
        match self.state {
            STATE_LISTEN => "LISTEN",
            STATE_ESTABLISHED => "ESTAB",
            STATE_SYN_SENT => "SYN-SENT",
            STATE_CLOSE => "UNCONN",
            _ => "OTHER",
        }
    }
}

/// One vsock socket, as `vsock_diag` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct VsockSock {
    /// Stream, datagram, seqpacket.
    pub sock_type: SockType,
    /// The TCP-style state number.
    pub state: u8,
    /// Local CID.
    pub src_cid: u32,
    /// Local port.
    pub src_port: u32,
    /// Remote CID.
    pub dst_cid: u32,
    /// Remote port.
    pub dst_port: u32,
    /// The socket's inode.
    pub inode: u32,
}

/// Every Unix socket of the host (its network namespace), indexed for the doctor's lookups.
#[derive(Debug, Clone, Default)]
pub struct SocketTable {
    socks: Vec<UnixSock>,
    by_inode: HashMap<u32, usize>,
    by_vfs: HashMap<u32, Vec<usize>>,
    by_name: HashMap<String, Vec<usize>>,
}

impl SocketTable {
    /// Indexes `socks`.
    pub fn new(socks: Vec<UnixSock>) -> Self {
        let mut t = Self {
            socks,
            ..Self::default()
        };
        for (i, s) in t.socks.iter().enumerate() {
            t.by_inode.insert(s.inode, i);
            if let Some((ino, _)) = s.vfs {
                t.by_vfs.entry(ino).or_default().push(i);
            }
            if let Some(name) = &s.name {
                t.by_name.entry(name.clone()).or_default().push(i);
            }
        }
        t
    }

    /// How many sockets.
    pub fn len(&self) -> usize {
        self.socks.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.socks.is_empty()
    }

    /// The socket with this inode.
    pub fn by_inode(&self, inode: u32) -> Option<&UnixSock> {
        self.by_inode.get(&inode).map(|i| &self.socks[*i])
    }

    /// The sockets bound to the file with this VFS inode.
    pub fn by_vfs_inode(&self, ino: u32) -> impl Iterator<Item = &UnixSock> {
        self.by_vfs
            .get(&ino)
            .into_iter()
            .flatten()
            .map(|i| &self.socks[*i])
    }

    /// The sockets carrying this bound name (a listener and the connections it accepted).
    pub fn by_name(&self, name: &str) -> impl Iterator<Item = &UnixSock> {
        self.by_name
            .get(name)
            .into_iter()
            .flatten()
            .map(|i| &self.socks[*i])
    }

    /// Whether the records carry VFS inodes (sock_diag does; `/proc/net/unix` does not).
    pub fn has_vfs(&self) -> bool {
        !self.by_vfs.is_empty()
    }

    /// All sockets.
    pub fn iter(&self) -> impl Iterator<Item = &UnixSock> {
        self.socks.iter()
    }
}

/// Parses `/proc/net/unix` (`Num RefCount Protocol Flags Type St Inode [Path]`). It has no peer,
/// no queues and no VFS inode: the doctor says so when it falls back to it. Malformed lines are
/// skipped.
pub fn parse_proc_net_unix(text: &str) -> Vec<UnixSock> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let _num = f.next()?;
            let _refs = f.next()?;
            let _proto = f.next()?;
            let flags = u32::from_str_radix(f.next()?, 16).ok()?;
            let sock_type = SockType::from_raw(u8::from_str_radix(f.next()?, 16).ok()?);
            let st = u8::from_str_radix(f.next()?, 16).ok()?;
            let inode = f.next()?.parse().ok()?;
            let name = f.next().map(|p| p.to_string());
            // __SO_ACCEPTCON (0x10000) in flags marks a listener; St is SS_* (1 unconnected,
            // 2 connecting, 3 connected).
            let state = if flags & 0x10000 != 0 {
                STATE_LISTEN
            } else {
                match st {
                    3 => STATE_ESTABLISHED,
                    2 => STATE_SYN_SENT,
                    _ => STATE_CLOSE,
                }
            };
            Some(UnixSock {
                inode,
                sock_type,
                state,
                name,
                ..UnixSock::default()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_unix_lines_parse_and_junk_is_skipped() {
        let text = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 21236 /run/vm.sock\n\
            0000000000000000: 00000003 00000000 00000000 0001 03 21240 /run/vm.sock\n\
            0000000000000000: 00000003 00000000 00000000 0001 03 21241\n\
            garbage line\n\
            0000000000000000: 00000002 00000000 00000000 0002 01 99 @abstract\n";
        let socks = parse_proc_net_unix(text);
        assert_eq!(socks.len(), 4);
        assert!(socks[0].is_listening());
        assert_eq!(socks[0].name.as_deref(), Some("/run/vm.sock"));
        assert_eq!(socks[1].state, STATE_ESTABLISHED);
        assert_eq!(socks[2].name, None);
        assert_eq!(socks[3].sock_type, SockType::Dgram);
        let table = SocketTable::new(socks);
        assert_eq!(table.by_name("/run/vm.sock").count(), 2);
        assert_eq!(
            table.by_inode(21241).map(|s| s.state),
            Some(STATE_ESTABLISHED)
        );
    }
}
