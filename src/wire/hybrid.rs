//! The hybrid-vsock handshake, both sides, as pure state machines.
//!
//! A host process connects to the VMM's Unix socket (`uds_path`), writes `CONNECT <port>\n` and
//! reads `OK <port>\n`; after that the stream is the guest connection. This module holds:
//!
//! - the **VMM side**: [`ConnectParser`], fed one `read()` worth of bytes per call, because the
//!   three VMMs differ exactly in how they treat reads ([`Flavour`]):
//!   - Firecracker (`src/vmm/src/devices/virtio/vsock/unix/muxer.rs`, `read_local_stream_port`)
//!     reads from a non-blocking socket into a 32-byte buffer: `read_exact` of 10 bytes
//!     (`"connect 0\n".len()`), then one byte at a time up to `\n`. It never reads past the `\n`
//!     (what follows is payload for the guest), and a command split across writes fails the read
//!     with `WouldBlock`, which drops the connection. The keyword is matched case-insensitively.
//!   - Cloud Hypervisor (`virtio-devices/src/vsock/unix/muxer.rs`) keeps a partially read command
//!     across reads in a 32-byte buffer (`PARTIALLY_READ_COMMAND_BUF_SIZE`), rejects it as soon as
//!     the first 8 bytes are not `connect `, when the buffer fills without a `\n`, and on a
//!     0-byte read (EOF). (Its crash on a missing `\n` was a real bug: cloud-hypervisor#6798.)
//!   - vhost-device-vsock (measured in `VMLAB.md`, version 0.3.0) reads up to the `\n` and, on a
//!     malformed command, closes with a plain EOF after about 2 ms.
//!
//!   All three answer a rejected command the same way on the wire: they close the connection
//!   without a reply, so the host sees EOF. The reply to a good command is [`ok_line`]; the port
//!   it names comes from [`LocalPortAllocator`] for Firecracker and Cloud Hypervisor.
//! - the **client side**: [`connect_line`] and [`OkParser`], which reads the VMM's answer and
//!   leaves the bytes after it in the caller's buffer.
//! - [`HandshakeDecoder`], a [`Decoder`] for one handshake line in a captured stream, chained
//!   before the agent protocol's decoder.
//!
//! The command grammar is stricter than the real parsers: `CONNECT` (any case), one space, a
//! decimal `u32`, an optional `\r`, then `\n`. Firecracker and vhost-device-vsock split on
//! white space (so they also accept several spaces, a `+` sign and extra words after the port)
//! and Cloud Hypervisor trims the port; guestwire names those lines as malformed instead, since
//! no real client sends them. A Firecracker command of 32 bytes or more with no `\n` is rejected
//! here (Firecracker itself would parse the first 32 bytes).

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use bytes::{Buf, BytesMut};

use super::codec::{Decoded, Decoder, Describe, Direction, Frame};
use super::error::WireError;
use super::hex::HexPreview;

/// Firecracker's timeout for a connection request the guest does not answer, in milliseconds
/// (`defs::CONN_REQUEST_TIMEOUT_MS` in `devices/virtio/vsock/mod.rs`). After it the host
/// connection is closed with no message.
pub const CONN_REQUEST_TIMEOUT_MS: u64 = 2000;

/// Firecracker's timeout for a graceful connection shutdown, in milliseconds
/// (`defs::CONN_SHUTDOWN_TIMEOUT_MS`).
pub const CONN_SHUTDOWN_TIMEOUT_MS: u64 = 2000;

/// Size of the buffer the VMMs read the `CONNECT` command into, `\n` included: Firecracker's
/// `[0u8; 32]` in `read_local_stream_port`, Cloud Hypervisor's `PARTIALLY_READ_COMMAND_BUF_SIZE`.
pub const CONNECT_BUF_SIZE: usize = 32;

/// The shortest valid command, `connect 0\n`: Firecracker's `MIN_READ_LEN`.
pub const CONNECT_MIN_LEN: usize = 10;

/// First host-side port handed out for host-initiated connections: 2^30 (Firecracker and Cloud
/// Hypervisor allocate round-robin in `[1 << 30, 1 << 31)`, `allocate_local_port`).
pub const LOCAL_PORT_START: u32 = 1 << 30;

/// End (exclusive) of the host-side port range: 2^31.
pub const LOCAL_PORT_END: u32 = 1 << 31;

/// Most connections a Firecracker or Cloud Hypervisor muxer holds (`defs::MAX_CONNECTIONS`);
/// further host connections are accepted and closed at once.
pub const MAX_CONNECTIONS: usize = 1023;

/// Per-connection TX buffer of the Firecracker muxer: 64 KiB (`defs::CONN_TX_BUF_SIZE`).
pub const CONN_TX_BUF_SIZE: u32 = 64 * 1024;

/// Firecracker sends a credit update when the guest thinks less than this is free: 4 KiB
/// (`defs::CONN_CREDIT_UPDATE_THRESHOLD`).
pub const CONN_CREDIT_UPDATE_THRESHOLD: u32 = 4 * 1024;

/// Largest vsock packet payload Firecracker handles: 64 KiB (`defs::MAX_PKT_BUF_SIZE`).
pub const MAX_PKT_BUF_SIZE: u32 = 64 * 1024;

/// Longest `OK` reply line a client accepts, `\n` included.
pub const MAX_OK_LINE: usize = 64;

/// Which VMM's hybrid-vsock implementation to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavour {
    /// Firecracker: one read per command, no buffering across reads.
    Firecracker,
    /// Cloud Hypervisor: partial commands kept across reads in a 32-byte buffer.
    CloudHypervisor,
    /// vhost-device-vsock (rust-vmm): reads up to the newline, answers the guest port.
    VhostDevice,
}

impl Flavour {
    /// Every flavour, in a fixed order.
    pub const ALL: [Flavour; 3] = [
        Flavour::Firecracker,
        Flavour::CloudHypervisor,
        Flavour::VhostDevice,
    ];

    /// The flavour's name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Firecracker => "firecracker",
            Self::CloudHypervisor => "cloud-hypervisor",
            Self::VhostDevice => "vhost-device",
        }
    }

    /// Whether a command split across several writes is still accepted.
    pub fn keeps_partial_commands(self) -> bool {
        !matches!(self, Self::Firecracker)
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown flavour name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown hybrid-vsock flavour {0:?} (expected firecracker, cloud-hypervisor or vhost-device)"
)]
pub struct UnknownFlavour(pub String);

impl FromStr for Flavour {
    type Err = UnknownFlavour;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownFlavour(s.to_string()))
    }
}

/// Why a VMM rejects a `CONNECT` command (it then closes the connection with no reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The stream ended (a 0-byte read) before a complete command.
    Eof,
    /// Firecracker: the read held no `\n`, i.e. the command was split across writes.
    SplitCommand,
    /// No `\n` within the VMM's command buffer.
    TooLong {
        /// The buffer size, `\n` included.
        limit: usize,
    },
    /// The line does not start with `CONNECT`.
    NotConnect,
    /// `CONNECT` is not followed by exactly one space.
    MissingSpace,
    /// The port is not a plain decimal `u32`.
    BadPort(&'static str),
    /// The parser already produced its final outcome.
    Finished,
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Eof => f.write_str("the stream ended before a complete CONNECT command"),
            Self::SplitCommand => f.write_str(
                "the read held no newline: Firecracker drops a command split across writes",
            ),
            Self::TooLong { limit } => write!(f, "no newline within the first {limit} bytes"),
            Self::NotConnect => f.write_str("the command does not start with CONNECT"),
            Self::MissingSpace => f.write_str("CONNECT is not followed by a single space"),
            Self::BadPort(why) => write!(f, "bad port: {why}"),
            Self::Finished => f.write_str("the handshake is already over"),
        }
    }
}

impl RejectReason {
    /// The rejection as a [`WireError::BadHandshake`] at stream offset 0, showing `line`.
    pub fn to_wire_error(&self, line: &[u8]) -> WireError {
        WireError::BadHandshake {
            offset: 0,
            reason: self.to_string(),
            bytes: HexPreview::of(line),
        }
    }
}

/// What the VMM does after one read of the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectOutcome {
    /// No decision yet: wait for the next read.
    NeedMore,
    /// A valid command: connect to the guest's `port`.
    Connect {
        /// The guest port named by the command.
        port: u32,
        /// Bytes after the `\n` in the same read: payload for the guest, which the VMM never
        /// consumed as part of the command.
        rest: Vec<u8>,
    },
    /// The command is invalid: the VMM closes the connection without a reply.
    Reject {
        /// Why.
        reason: RejectReason,
        /// The command bytes read (at most [`CONNECT_BUF_SIZE`]).
        line: Vec<u8>,
    },
}

impl ConnectOutcome {
    /// Whether this is a final outcome (connect or reject).
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::NeedMore)
    }
}

/// Parses one `CONNECT <port>` line (with or without its `\n`) by guestwire's strict grammar.
pub fn parse_connect_line(line: &[u8]) -> Result<u32, RejectReason> {
    let line = strip_eol(line);
    let keyword = b"connect";
    match line.get(..keyword.len()) {
        Some(k) if k.eq_ignore_ascii_case(keyword) => {}
        _ => return Err(RejectReason::NotConnect),
    }
    let after = line.get(keyword.len()..).unwrap_or_default();
    match after.split_first() {
        Some((b' ', port)) => parse_port(port).map_err(RejectReason::BadPort),
        Some((b, _)) if b.is_ascii_digit() || b.is_ascii_whitespace() => {
            Err(RejectReason::MissingSpace)
        }
        None => Err(RejectReason::MissingSpace),
        Some(_) => Err(RejectReason::NotConnect),
    }
}

/// Removes a trailing `\n` and then a trailing `\r`.
fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A strict decimal `u32`: digits only, no sign, no white space, no overflow.
fn parse_port(s: &[u8]) -> Result<u32, &'static str> {
    match s.first() {
        None => return Err("no port after the keyword"),
        Some(b'+' | b'-') => return Err("signed port"),
        Some(b' ' | b'\t') => return Err("extra white space before the port"),
        Some(b) if !b.is_ascii_digit() => return Err("the port is not a decimal number"),
        Some(_) => {}
    }
    let mut v: u32 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return Err("trailing garbage after the port");
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u32::from(b - b'0')))
            .ok_or("the port does not fit in 32 bits")?;
    }
    Ok(v)
}

/// Whether `buf` (at most 8 bytes) is a prefix of `connect `, in any case.
fn is_connect_prefix(buf: &[u8]) -> bool {
    b"connect ".len() >= buf.len() && b"connect "[..buf.len()].eq_ignore_ascii_case(buf)
}

/// The VMM side of the handshake: reads the host's `CONNECT <port>\n` the way one VMM does.
#[derive(Debug, Clone)]
pub struct ConnectParser {
    flavour: Flavour,
    /// Command bytes kept across reads (Cloud Hypervisor, vhost-device); never more than
    /// [`CONNECT_BUF_SIZE`].
    partial: Vec<u8>,
    done: bool,
}

impl ConnectParser {
    /// A parser that treats reads as `flavour` does.
    pub fn new(flavour: Flavour) -> Self {
        Self {
            flavour,
            partial: Vec::new(),
            done: false,
        }
    }

    /// The flavour this parser follows.
    pub fn flavour(&self) -> Flavour {
        self.flavour
    }

    /// Whether a final outcome was produced.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Feeds the bytes one `read()` returned. An empty slice is a 0-byte read, i.e. EOF.
    pub fn on_read(&mut self, data: &[u8]) -> ConnectOutcome {
        if self.done {
            return self.finish(RejectReason::Finished, Vec::new());
        }
        if data.is_empty() {
            return self.on_eof();
        }
        match self.flavour {
            Flavour::Firecracker => self.read_firecracker(data),
            Flavour::CloudHypervisor | Flavour::VhostDevice => self.read_buffered(data),
        }
    }

    /// The host closed its side before a final outcome: every flavour rejects.
    pub fn on_eof(&mut self) -> ConnectOutcome {
        if self.done {
            return self.finish(RejectReason::Finished, Vec::new());
        }
        let line = std::mem::take(&mut self.partial);
        self.finish(RejectReason::Eof, line)
    }

    fn finish(&mut self, reason: RejectReason, line: Vec<u8>) -> ConnectOutcome {
        self.done = true;
        ConnectOutcome::Reject { reason, line }
    }

    fn decide(&mut self, line: &[u8], rest: &[u8]) -> ConnectOutcome {
        self.done = true;
        match parse_connect_line(line) {
            Ok(port) => ConnectOutcome::Connect {
                port,
                rest: rest.to_vec(),
            },
            Err(reason) => ConnectOutcome::Reject {
                reason,
                line: line.to_vec(),
            },
        }
    }

    /// Firecracker: the whole command must be in this read, within the 32-byte buffer.
    fn read_firecracker(&mut self, data: &[u8]) -> ConnectOutcome {
        let window = &data[..data.len().min(CONNECT_BUF_SIZE)];
        match memchr::memchr(b'\n', window) {
            Some(i) => {
                let (line, rest) = data.split_at(i + 1);
                self.decide(line, rest)
            }
            None if window.len() == CONNECT_BUF_SIZE => self.finish(
                RejectReason::TooLong {
                    limit: CONNECT_BUF_SIZE,
                },
                window.to_vec(),
            ),
            None => self.finish(RejectReason::SplitCommand, window.to_vec()),
        }
    }

    /// Cloud Hypervisor and vhost-device: keep the partial command, never read past `\n`.
    fn read_buffered(&mut self, data: &[u8]) -> ConnectOutcome {
        let room = CONNECT_BUF_SIZE - self.partial.len();
        let window = &data[..data.len().min(room)];
        let (take, newline) = match memchr::memchr(b'\n', window) {
            Some(i) => (i + 1, true),
            None => (window.len(), false),
        };
        self.partial.extend_from_slice(&window[..take]);
        // Cloud Hypervisor reads byte by byte and, once it has 8 bytes, rejects a command that
        // does not start with `connect ` without waiting for the newline.
        let keyword = b"connect ".len();
        if self.flavour == Flavour::CloudHypervisor
            && self.partial.len() >= keyword
            && !is_connect_prefix(&self.partial[..keyword])
        {
            let mut line = std::mem::take(&mut self.partial);
            line.truncate(keyword);
            return self.finish(RejectReason::NotConnect, line);
        }
        if newline {
            let line = std::mem::take(&mut self.partial);
            return self.decide(&line, &data[take..]);
        }
        if self.partial.len() == CONNECT_BUF_SIZE {
            let line = std::mem::take(&mut self.partial);
            return self.finish(
                RejectReason::TooLong {
                    limit: CONNECT_BUF_SIZE,
                },
                line,
            );
        }
        ConnectOutcome::NeedMore
    }
}

/// The command a host client writes: `CONNECT <port>\n`.
pub fn connect_line(port: u32) -> Vec<u8> {
    format!("CONNECT {port}\n").into_bytes()
}

/// The VMM's reply to an accepted command: `OK <host_port>\n` for Firecracker and Cloud
/// Hypervisor (a local port ≥ 2^30 from [`LocalPortAllocator`]), `OK <guest_port>\n` for
/// vhost-device-vsock.
pub fn ok_line(flavour: Flavour, guest_port: u32, host_port: u32) -> Vec<u8> {
    let port = match flavour {
        Flavour::Firecracker | Flavour::CloudHypervisor => host_port,
        Flavour::VhostDevice => guest_port,
    };
    format!("OK {port}\n").into_bytes()
}

/// Host-side ports for host-initiated connections, as Firecracker and Cloud Hypervisor hand
/// them out: round robin in `[2^30, 2^31)`, skipping ports still in use.
#[derive(Debug, Clone)]
pub struct LocalPortAllocator {
    last: u32,
    in_use: HashSet<u32>,
}

impl Default for LocalPortAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalPortAllocator {
    /// An allocator whose first port is [`LOCAL_PORT_START`].
    pub fn new() -> Self {
        Self {
            last: LOCAL_PORT_START - 1,
            in_use: HashSet::new(),
        }
    }

    /// The next free port, marked in use; `None` when all 2^30 ports are in use.
    pub fn allocate(&mut self) -> Option<u32> {
        let range = u64::from(LOCAL_PORT_END - LOCAL_PORT_START);
        if self.in_use.len() as u64 >= range {
            return None;
        }
        loop {
            // The VMMs' formula: keep bit 30 set and bit 31 clear.
            self.last = (self.last.wrapping_add(1) & !LOCAL_PORT_END) | LOCAL_PORT_START;
            if self.in_use.insert(self.last) {
                return Some(self.last);
            }
        }
    }

    /// Frees a port when its connection ends.
    pub fn release(&mut self, port: u32) {
        self.in_use.remove(&port);
    }

    /// Whether `port` is currently allocated.
    pub fn is_in_use(&self, port: u32) -> bool {
        self.in_use.contains(&port)
    }

    /// How many ports are allocated.
    pub fn in_use_count(&self) -> usize {
        self.in_use.len()
    }
}

/// What [`take_line`] found at the start of a buffer.
enum LineScan {
    /// A whole line, `\n` included, removed from the buffer.
    Line(BytesMut),
    /// No `\n` yet, and fewer than `limit` bytes.
    NeedMore,
    /// No `\n` within the first `limit` bytes.
    TooLong,
}

/// Takes a line of at most `limit` bytes (`\n` included) off the front of `buf`.
fn take_line(buf: &mut BytesMut, limit: usize) -> LineScan {
    let window = &buf[..buf.len().min(limit)];
    match memchr::memchr(b'\n', window) {
        Some(i) => LineScan::Line(buf.split_to(i + 1)),
        None if window.len() >= limit => LineScan::TooLong,
        None => LineScan::NeedMore,
    }
}

/// Parses one `OK <port>` reply line (with or without its `\n`); the error says what is wrong.
pub fn parse_ok_line(line: &[u8]) -> Result<u32, String> {
    let body = strip_eol(line);
    match body.strip_prefix(b"OK ") {
        Some(port) => parse_port(port).map_err(|why| format!("bad port in the OK reply: {why}")),
        None if body.starts_with(b"OK") => Err(
            "the reply is OK without the space that clients such as seed 001's DialGuest require"
                .into(),
        ),
        None => Err("the VMM's reply does not start with \"OK \"".into()),
    }
}

fn closed_without_reply(offset: u64) -> WireError {
    WireError::BadHandshake {
        offset,
        reason: "the VMM closed the connection without a reply: nothing listens on that guest \
                 port (is the agent running in the guest?)"
            .into(),
        bytes: HexPreview::default(),
    }
}

/// The client side: reads the VMM's `OK <port>\n` reply from the caller's buffer.
///
/// Bounded: a reply line longer than [`MAX_OK_LINE`] bytes is an error as soon as 64 bytes
/// without a newline are buffered. On success the line is removed and the bytes after it stay in
/// the buffer: they are the first bytes from the guest, so a client must keep reading from the
/// same buffered reader.
#[derive(Debug, Clone, Default)]
pub struct OkParser {
    done: bool,
}

impl OkParser {
    /// A parser waiting for the reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a result was produced.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The reply's port, an error, or `None` when more bytes are needed (or the result was
    /// already given).
    pub fn parse(&mut self, buf: &mut BytesMut) -> Option<Result<u32, WireError>> {
        if self.done {
            return None;
        }
        let result = match take_line(buf, MAX_OK_LINE) {
            LineScan::NeedMore => return None,
            LineScan::Line(line) => {
                parse_ok_line(&line).map_err(|reason| WireError::BadHandshake {
                    offset: 0,
                    reason,
                    bytes: HexPreview::of(&line),
                })
            }
            LineScan::TooLong => Err(WireError::BadHandshake {
                offset: 0,
                reason: format!("no newline within the first {MAX_OK_LINE} bytes of the reply"),
                bytes: HexPreview::of(&buf[..buf.len().min(MAX_OK_LINE)]),
            }),
        };
        self.done = true;
        Some(result)
    }

    /// The stream ended: the result, or `None` when it was already given.
    pub fn parse_eof(&mut self, buf: &mut BytesMut) -> Option<Result<u32, WireError>> {
        if let Some(r) = self.parse(buf) {
            return Some(r);
        }
        if self.done {
            return None;
        }
        self.done = true;
        if buf.is_empty() {
            return Some(Err(closed_without_reply(0)));
        }
        Some(Err(WireError::BadHandshake {
            offset: 0,
            reason: "the VMM closed the connection in the middle of its reply".into(),
            bytes: HexPreview::of(buf),
        }))
    }
}

/// One decoded handshake line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeLine {
    /// `CONNECT <port>` from the host.
    Connect {
        /// The guest port asked for.
        port: u32,
    },
    /// `OK <port>` from the VMM.
    Ok {
        /// The port the VMM named (host-side for Firecracker and Cloud Hypervisor).
        port: u32,
    },
}

impl Describe for HandshakeLine {
    fn type_name(&self) -> String {
        match self {
            Self::Connect { .. } => "connect".into(),
            Self::Ok { .. } => "ok".into(),
        }
    }

    fn summary(&self) -> String {
        match self {
            Self::Connect { port } | Self::Ok { port } => format!("port={port}"),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Connect { port } | Self::Ok { port } => serde_json::json!({ "port": port }),
        }
    }
}

/// Decodes exactly one handshake line at the start of a stream (`CONNECT <port>` on the
/// to-guest stream, `OK <port>` on the to-host stream), then yields nothing more and leaves the
/// rest of the buffer to the next decoder.
///
/// A bad line is reported as [`WireError::BadHandshake`]; a complete bad line is consumed, an
/// over-long one (no newline within [`CONNECT_BUF_SIZE`] or [`MAX_OK_LINE`] bytes) is not. At
/// the end of the stream, a missing or incomplete line is also a `BadHandshake` (an empty to-host
/// stream means the VMM closed without a reply).
#[derive(Debug, Clone)]
pub struct HandshakeDecoder {
    direction: Direction,
    offset: u64,
    done: bool,
}

impl HandshakeDecoder {
    /// A decoder for the handshake line travelling in `direction`.
    pub fn new(direction: Direction) -> Self {
        Self {
            direction,
            offset: 0,
            done: false,
        }
    }

    /// Whether the line (or its error) was yielded.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn limit(&self) -> usize {
        match self.direction {
            Direction::ToGuest => CONNECT_BUF_SIZE,
            Direction::ToHost => MAX_OK_LINE,
        }
    }

    fn error(&self, reason: String, bytes: &[u8]) -> WireError {
        WireError::BadHandshake {
            offset: self.offset,
            reason,
            bytes: HexPreview::of(bytes),
        }
    }
}

impl Decoder for HandshakeDecoder {
    type Message = HandshakeLine;

    fn decode(&mut self, buf: &mut BytesMut) -> Option<Decoded<HandshakeLine>> {
        if self.done {
            return None;
        }
        let limit = self.limit();
        let line = match take_line(buf, limit) {
            LineScan::NeedMore => return None,
            LineScan::TooLong => {
                self.done = true;
                return Some(Err(self.error(
                    format!("no newline within the first {limit} bytes"),
                    &buf[..limit],
                )));
            }
            LineScan::Line(line) => line,
        };
        self.done = true;
        let parsed = match self.direction {
            Direction::ToGuest => parse_connect_line(&line)
                .map(|port| HandshakeLine::Connect { port })
                .map_err(|r| r.to_string()),
            Direction::ToHost => parse_ok_line(&line).map(|port| HandshakeLine::Ok { port }),
        };
        let offset = self.offset;
        self.offset += line.len() as u64;
        Some(match parsed {
            Ok(message) => Ok(Frame {
                offset,
                wire_len: line.len() as u64,
                message,
            }),
            Err(reason) => Err(WireError::BadHandshake {
                offset,
                reason,
                bytes: HexPreview::of(&line),
            }),
        })
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Decoded<HandshakeLine>> {
        if let Some(item) = self.decode(buf) {
            return Some(item);
        }
        if self.done {
            return None;
        }
        self.done = true;
        if buf.is_empty() {
            return Some(Err(match self.direction {
                Direction::ToHost => closed_without_reply(self.offset),
                Direction::ToGuest => self.error(
                    "the host closed the stream without sending a CONNECT line".into(),
                    &[],
                ),
            }));
        }
        let err = self.error("the stream ended inside the handshake line".into(), buf);
        self.offset += buf.len() as u64;
        buf.advance(buf.len());
        Some(Err(err))
    }

    fn offset(&self) -> u64 {
        self.offset
    }
}

#[cfg(test)]
mod tests;
