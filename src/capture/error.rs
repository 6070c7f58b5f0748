//! Errors of the capture layer: bad capture files (typed, with the file offset and the bytes in
//! hex, like the wire codecs' [`WireError`](crate::wire::WireError)), and the IO errors of reading
//! and writing them.

use super::vsockmon::VsockmonError;
use crate::wire::hex::HexPreview;

/// A capture file that is not what it claims. Whether reading can go on after one is given by
/// [`CaptureError::is_fatal`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    /// The file does not start with a pcap or pcapng magic number (fatal).
    #[error("offset 0: not a pcap or pcapng file (unknown magic number) [{bytes}]")]
    NotACapture {
        /// The first bytes.
        bytes: HexPreview,
    },
    /// A pcap file, or a pcapng interface, of another link type than LINKTYPE_VSOCK (271). Fatal
    /// for pcap; for pcapng only that interface's packets are skipped.
    #[error("offset {offset}: link type {linktype}, not LINKTYPE_VSOCK (271) [{bytes}]")]
    LinkType {
        /// File offset of the file header or interface block.
        offset: u64,
        /// The pcapng interface number (`None`: the pcap file header, which is fatal).
        interface: Option<u32>,
        /// The link type found.
        linktype: u32,
        /// The header's bytes.
        bytes: HexPreview,
    },
    /// A record or block length beyond any sane capture (fatal: nothing is reserved for it, and
    /// pcap has no marker to resynchronise on).
    #[error("offset {offset}: record length {len} exceeds the maximum of {max} bytes [{bytes}]")]
    Oversize {
        /// File offset of the record or block header.
        offset: u64,
        /// The length claimed.
        len: u64,
        /// The maximum accepted.
        max: u64,
        /// The header's bytes.
        bytes: HexPreview,
    },
    /// A pcapng block whose framing is broken (length not a multiple of 4, below 12, trailer
    /// mismatch, or a bad section header): fatal, the next block cannot be found.
    #[error("offset {offset}: bad pcapng block: {reason} [{bytes}]")]
    BadBlock {
        /// File offset of the block.
        offset: u64,
        /// What is wrong.
        reason: String,
        /// The block's first bytes.
        bytes: HexPreview,
    },
    /// A record whose framing is intact but whose fields are not (a nanosecond field of a
    /// second or more, a captured length beyond its block, an unknown interface): skipped.
    #[error("offset {offset}: bad record: {reason} [{bytes}]")]
    BadRecord {
        /// File offset of the record.
        offset: u64,
        /// What is wrong.
        reason: String,
        /// The record's first bytes.
        bytes: HexPreview,
    },
    /// The file ends inside a record (a crash while writing, or a file still being written).
    #[error(
        "offset {offset}: file ends inside a record: {available} of {expected} bytes [{bytes}]"
    )]
    Truncated {
        /// File offset of the incomplete record.
        offset: u64,
        /// Bytes the record needs (its header's claim; the header's size when even that is cut).
        expected: u64,
        /// Bytes there are.
        available: u64,
        /// Its first bytes.
        bytes: HexPreview,
    },
    /// A record whose link-layer bytes are not a valid `af_vsockmon_hdr` record: skipped.
    #[error(transparent)]
    Vsockmon(#[from] VsockmonError),
}

impl CaptureError {
    /// A stable snake_case name (the `error` field of JSON output).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotACapture { .. } => "not_a_capture",
            Self::LinkType { .. } => "link_type",
            Self::Oversize { .. } => "record_oversize",
            Self::BadBlock { .. } => "bad_block",
            Self::BadRecord { .. } => "bad_record",
            Self::Truncated { .. } => "truncated_record",
            Self::Vsockmon(e) => e.kind(),
        }
    }

    /// File offset where the problem starts.
    pub fn offset(&self) -> u64 {
        match self {
            Self::NotACapture { .. } => 0,
            Self::LinkType { offset, .. }
            | Self::Oversize { offset, .. }
            | Self::BadBlock { offset, .. }
            | Self::BadRecord { offset, .. }
            | Self::Truncated { offset, .. } => *offset,
            Self::Vsockmon(e) => e.offset(),
        }
    }

    /// The offending bytes.
    pub fn bytes(&self) -> &HexPreview {
        match self {
            Self::NotACapture { bytes }
            | Self::LinkType { bytes, .. }
            | Self::Oversize { bytes, .. }
            | Self::BadBlock { bytes, .. }
            | Self::BadRecord { bytes, .. }
            | Self::Truncated { bytes, .. } => bytes,
            Self::Vsockmon(e) => e.bytes(),
        }
    }

    /// Whether reading stops here (the rest of the file cannot be framed).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::NotACapture { .. }
                | Self::Oversize { .. }
                | Self::BadBlock { .. }
                | Self::Truncated { .. }
        ) || matches!(
            self,
            Self::LinkType {
                interface: None,
                ..
            }
        )
    }

    /// The error as a JSON object: `error` (the kind), `offset`, `hex`, `message`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": self.kind(),
            "offset": self.offset(),
            "hex": self.bytes().to_hex(),
            "message": self.to_string(),
        })
    }
}

/// Reading a capture failed: a bad file, or the OS.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file's content.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The OS.
    #[error("reading the capture: {0}")]
    Io(#[from] std::io::Error),
}

/// Writing a capture failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The OS (the writer refuses further records after one: the file may end in a partial
    /// record, and appending more would make the rest unreadable).
    #[error("writing the capture: {0}")]
    Io(#[from] std::io::Error),
    /// pcap-file refused to encode a record or header.
    #[error("encoding the capture: {0}")]
    Encode(String),
    /// A timestamp before 1970 or after 2106 (pcap's 32-bit seconds).
    #[error("timestamp {0} cannot be written (pcap holds 1970 to 2106)")]
    Timestamp(String),
    /// An earlier write failed; the capture is closed.
    #[error("the capture was closed after an earlier write error")]
    Closed,
}
