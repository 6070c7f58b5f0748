//! The link-layer header of LINKTYPE_VSOCK (271) captures: Linux's `struct af_vsockmon_hdr`
//! (`include/uapi/linux/vsockmon.h`), 32 bytes, little-endian, in front of every record:
//!
//! ```text
//! le64 src_cid  le64 dst_cid  le32 src_port  le32 dst_port  le16 op  le16 transport  le16 len  u8 reserved[2]
//! ```
//!
//! then `len` bytes of transport header (44 for `virtio`: `struct virtio_vsock_hdr`; none for
//! `no_info`), then the payload. `len` is the *transport header's* length: the payload's length is
//! whatever the record holds after it, so a payload is never limited by the 16-bit field; only the
//! capture's snaplen (65535 in guestwire's captures) bounds a record, and writers split larger
//! chunks ([`MAX_PAYLOAD_PER_RECORD`]).
//!
//! Pure: encoding into a buffer and parsing a record's bytes, with typed errors that carry the
//! record's file offset and its first bytes in hex.

use bytes::{BufMut, Bytes};

use crate::wire::Direction;
use crate::wire::hex::HexPreview;

/// Length of `struct af_vsockmon_hdr`.
pub const HEADER_LEN: usize = 32;

/// Length of `struct virtio_vsock_hdr`, the transport header of [`Transport::Virtio`].
pub const VIRTIO_HEADER_LEN: usize = 44;

/// The snaplen guestwire writes into its captures (and Wireshark's default): 65535 bytes.
pub const SNAPLEN: u32 = 65535;

/// The largest payload one record carries so that the whole record fits in [`SNAPLEN`]:
/// 65535 − 32 bytes. Longer chunks are split into several records with the same timestamp.
pub const MAX_PAYLOAD_PER_RECORD: usize = SNAPLEN as usize - HEADER_LEN;

/// The host's context id (`VMADDR_CID_HOST`).
pub const HOST_CID: u64 = 2;

/// The guest CID guestwire writes when the channel has none of its own (virtio-serial) and none
/// was given: 3, the lowest guest CID.
pub const DEFAULT_GUEST_CID: u64 = 3;

/// The virtio-serial port number written for a serial channel when none was given: 1, the first
/// port after the console's port 0.
pub const DEFAULT_SERIAL_PORT: u32 = 1;

/// `virtio_vsock_hdr.op` of a reset (`VIRTIO_VSOCK_OP_RST`).
pub const VIRTIO_OP_RST: u16 = 3;

/// `virtio_vsock_hdr.op` of a shutdown (`VIRTIO_VSOCK_OP_SHUTDOWN`).
pub const VIRTIO_OP_SHUTDOWN: u16 = 4;

/// `virtio_vsock_hdr.type` of a stream socket (`VIRTIO_VSOCK_TYPE_STREAM`).
pub const VIRTIO_TYPE_STREAM: u16 = 1;

/// `af_vsockmon_hdr.op`: what the record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// 0: the transport could not say.
    Unknown,
    /// 1: a connection request or its acceptance.
    Connect,
    /// 2: a shutdown or reset.
    Disconnect,
    /// 3: transport control (credit updates and the like), no payload.
    Control,
    /// 4: data.
    Payload,
}

impl Op {
    /// The op of a field value, `None` for values Linux does not define.
    pub fn from_u16(v: u16) -> Option<Self> {
        Some(match v {
            0 => Self::Unknown,
            1 => Self::Connect,
            2 => Self::Disconnect,
            3 => Self::Control,
            4 => Self::Payload,
            _ => return None,
        })
    }

    /// The field value.
    pub fn to_u16(self) -> u16 {
        match self {
            Self::Unknown => 0,
            Self::Connect => 1,
            Self::Disconnect => 2,
            Self::Control => 3,
            Self::Payload => 4,
        }
    }
}

/// `af_vsockmon_hdr.transport`: which transport header follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// 0: unknown.
    Unknown,
    /// 1: no transport header (`len` is 0); what guestwire writes for data.
    NoInfo,
    /// 2: a `struct virtio_vsock_hdr` follows.
    Virtio,
}

impl Transport {
    /// The transport of a field value, `None` for values Linux does not define.
    pub fn from_u16(v: u16) -> Option<Self> {
        Some(match v {
            0 => Self::Unknown,
            1 => Self::NoInfo,
            2 => Self::Virtio,
            _ => return None,
        })
    }

    /// The field value.
    pub fn to_u16(self) -> u16 {
        match self {
            Self::Unknown => 0,
            Self::NoInfo => 1,
            Self::Virtio => 2,
        }
    }
}

/// One end of a vsock connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct VsockAddr {
    /// Context id: 2 for the host, ≥ 3 for a guest.
    pub cid: u64,
    /// Port.
    pub port: u32,
}

impl std::fmt::Display for VsockAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.cid, self.port)
    }
}

/// One end of a channel, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The host (CID 2).
    Host,
    /// The guest.
    Guest,
}

impl Side {
    /// The direction of what this side sends.
    pub fn sends(self) -> Direction {
        match self {
            Self::Host => Direction::ToGuest,
            Self::Guest => Direction::ToHost,
        }
    }

    /// The side that sends in `direction`.
    pub fn sender(direction: Direction) -> Self {
        match direction {
            Direction::ToGuest => Self::Host,
            Direction::ToHost => Self::Guest,
        }
    }

    /// `host` or `guest`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Guest => "guest",
        }
    }
}

/// The two ends of one channel as a capture names them.
///
/// Conventions (also in `docs/captures.md`): the host is CID 2 ([`HOST_CID`]); the guest is its
/// CID (≥ 3). A virtio-serial channel has no CIDs or ports of its own, so it is written as host
/// CID 2 and the VM's CID ([`DEFAULT_GUEST_CID`] when unknown), both ends with the virtio-serial
/// port number as their port ([`Flow::serial`]). Hybrid vsock has a real guest port (the
/// `CONNECT` port) but no host port: the writer of a capture picks a distinct host port per
/// concurrent connection ([`Flow::vsock`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// The host's end.
    pub host: VsockAddr,
    /// The guest's end.
    pub guest: VsockAddr,
}

impl Flow {
    /// A virtio-serial channel: host `2:port`, guest `guest_cid:port`.
    pub fn serial(port_number: u32, guest_cid: u64) -> Self {
        Self {
            host: VsockAddr {
                cid: HOST_CID,
                port: port_number,
            },
            guest: VsockAddr {
                cid: guest_cid,
                port: port_number,
            },
        }
    }

    /// A vsock connection: host `2:host_port`, guest `guest_cid:guest_port`.
    pub fn vsock(host_port: u32, guest_cid: u64, guest_port: u32) -> Self {
        Self {
            host: VsockAddr {
                cid: HOST_CID,
                port: host_port,
            },
            guest: VsockAddr {
                cid: guest_cid,
                port: guest_port,
            },
        }
    }

    /// `(source, destination)` of what flows in `direction`.
    pub fn ends(&self, direction: Direction) -> (VsockAddr, VsockAddr) {
        match direction {
            Direction::ToGuest => (self.host, self.guest),
            Direction::ToHost => (self.guest, self.host),
        }
    }
}

/// A parsed `af_vsockmon_hdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Sender.
    pub src: VsockAddr,
    /// Receiver.
    pub dst: VsockAddr,
    /// What the record is.
    pub op: Op,
    /// Which transport header follows.
    pub transport: Transport,
    /// Length of the transport header that follows.
    pub len: u16,
}

impl Header {
    /// Appends the 32 header bytes to `out`.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_u64_le(self.src.cid);
        out.put_u64_le(self.dst.cid);
        out.put_u32_le(self.src.port);
        out.put_u32_le(self.dst.port);
        out.put_u16_le(self.op.to_u16());
        out.put_u16_le(self.transport.to_u16());
        out.put_u16_le(self.len);
        out.put_bytes(0, 2);
    }
}

/// A `struct virtio_vsock_hdr` (the part guestwire reads and writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtioHeader {
    /// Sender.
    pub src: VsockAddr,
    /// Receiver.
    pub dst: VsockAddr,
    /// Payload length the transport claims.
    pub len: u32,
    /// Socket type (1: stream).
    pub kind: u16,
    /// Transport op (`VIRTIO_VSOCK_OP_*`: 1 request, 2 response, 3 rst, 4 shutdown, 5 rw, …).
    pub op: u16,
    /// Flags (shutdown: 1 receive, 2 send).
    pub flags: u32,
}

impl VirtioHeader {
    /// Appends the 44 header bytes (`<QQIIIHHIII`, little-endian; buf_alloc and fwd_cnt 0).
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_u64_le(self.src.cid);
        out.put_u64_le(self.dst.cid);
        out.put_u32_le(self.src.port);
        out.put_u32_le(self.dst.port);
        out.put_u32_le(self.len);
        out.put_u16_le(self.kind);
        out.put_u16_le(self.op);
        out.put_u32_le(self.flags);
        out.put_u32_le(0);
        out.put_u32_le(0);
    }

    /// Parses the first 44 bytes of `b` (`None` when shorter).
    pub fn parse(b: &[u8]) -> Option<Self> {
        let b: &[u8; VIRTIO_HEADER_LEN] = b.get(..VIRTIO_HEADER_LEN)?.try_into().ok()?;
        Some(Self {
            src: VsockAddr {
                cid: le64(&b[0..8]),
                port: le32(&b[16..20]),
            },
            dst: VsockAddr {
                cid: le64(&b[8..16]),
                port: le32(&b[20..24]),
            },
            len: le32(&b[24..28]),
            kind: le16(&b[28..30]),
            op: le16(&b[30..32]),
            flags: le32(&b[32..36]),
        })
    }
}

fn le16(b: &[u8]) -> u16 {
    b.iter().rev().fold(0, |v, x| (v << 8) | u16::from(*x))
}

fn le32(b: &[u8]) -> u32 {
    b.iter().rev().fold(0, |v, x| (v << 8) | u32::from(*x))
}

fn le64(b: &[u8]) -> u64 {
    b.iter().rev().fold(0, |v, x| (v << 8) | u64::from(*x))
}

/// A record's link-layer bytes that are not a valid `af_vsockmon_hdr` record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VsockmonError {
    /// Fewer than 32 bytes.
    #[error(
        "offset {offset}: record of {len} bytes is shorter than the 32-byte af_vsockmon_hdr [{bytes}]"
    )]
    Short {
        /// File offset of the record's data.
        offset: u64,
        /// The record's length.
        len: usize,
        /// Its bytes.
        bytes: HexPreview,
    },
    /// An `op` Linux does not define.
    #[error("offset {offset}: unknown af_vsockmon op {op} (known: 0 to 4) [{bytes}]")]
    UnknownOp {
        /// File offset of the record's data.
        offset: u64,
        /// The op.
        op: u16,
        /// The header's bytes.
        bytes: HexPreview,
    },
    /// A `transport` Linux does not define.
    #[error("offset {offset}: unknown af_vsockmon transport {transport} (known: 0 to 2) [{bytes}]")]
    UnknownTransport {
        /// File offset of the record's data.
        offset: u64,
        /// The transport.
        transport: u16,
        /// The header's bytes.
        bytes: HexPreview,
    },
    /// `len` claims a transport header longer than the record.
    #[error(
        "offset {offset}: transport header length {len} exceeds the {available} bytes after the af_vsockmon_hdr [{bytes}]"
    )]
    BadLen {
        /// File offset of the record's data.
        offset: u64,
        /// The claimed transport header length.
        len: u16,
        /// The bytes there are.
        available: usize,
        /// The header's bytes.
        bytes: HexPreview,
    },
}

impl VsockmonError {
    /// A stable snake_case name for JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Short { .. } => "short_record",
            Self::UnknownOp { .. } => "unknown_op",
            Self::UnknownTransport { .. } => "unknown_transport",
            Self::BadLen { .. } => "bad_transport_len",
        }
    }

    /// File offset of the record's data.
    pub fn offset(&self) -> u64 {
        match self {
            Self::Short { offset, .. }
            | Self::UnknownOp { offset, .. }
            | Self::UnknownTransport { offset, .. }
            | Self::BadLen { offset, .. } => *offset,
        }
    }

    /// The offending bytes.
    pub fn bytes(&self) -> &HexPreview {
        match self {
            Self::Short { bytes, .. }
            | Self::UnknownOp { bytes, .. }
            | Self::UnknownTransport { bytes, .. }
            | Self::BadLen { bytes, .. } => bytes,
        }
    }
}

/// One record's link-layer bytes, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The `af_vsockmon_hdr`.
    pub header: Header,
    /// The transport header's bytes (`header.len` of them).
    pub transport_header: Bytes,
    /// The rest of the record.
    pub payload: Bytes,
}

impl Parsed {
    /// The transport header as a `virtio_vsock_hdr`, when it is one.
    pub fn virtio(&self) -> Option<VirtioHeader> {
        match self.header.transport {
            Transport::Virtio => VirtioHeader::parse(&self.transport_header),
            _ => None,
        }
    }
}

/// Splits a record's link-layer bytes (`data`, found at file offset `offset`) into header,
/// transport header and payload. Never copies the payload.
pub fn parse(data: &Bytes, offset: u64) -> Result<Parsed, VsockmonError> {
    let head = || HexPreview::of(&data[..data.len().min(HEADER_LEN)]);
    if data.len() < HEADER_LEN {
        return Err(VsockmonError::Short {
            offset,
            len: data.len(),
            bytes: head(),
        });
    }
    let h = &data[..HEADER_LEN];
    let op_raw = le16(&h[24..26]);
    let transport_raw = le16(&h[26..28]);
    let len = le16(&h[28..30]);
    let op = Op::from_u16(op_raw).ok_or_else(|| VsockmonError::UnknownOp {
        offset,
        op: op_raw,
        bytes: head(),
    })?;
    let transport =
        Transport::from_u16(transport_raw).ok_or_else(|| VsockmonError::UnknownTransport {
            offset,
            transport: transport_raw,
            bytes: head(),
        })?;
    let available = data.len() - HEADER_LEN;
    if usize::from(len) > available {
        return Err(VsockmonError::BadLen {
            offset,
            len,
            available,
            bytes: head(),
        });
    }
    let payload_start = HEADER_LEN + usize::from(len);
    Ok(Parsed {
        header: Header {
            src: VsockAddr {
                cid: le64(&h[0..8]),
                port: le32(&h[16..20]),
            },
            dst: VsockAddr {
                cid: le64(&h[8..16]),
                port: le32(&h[20..24]),
            },
            op,
            transport,
            len,
        },
        transport_header: data.slice(HEADER_LEN..payload_start),
        payload: data.slice(payload_start..),
    })
}

#[cfg(test)]
#[path = "vsockmon_tests.rs"]
mod tests;
