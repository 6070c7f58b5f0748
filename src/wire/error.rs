//! The typed error every codec reports for bad input. Each variant carries the stream offset where
//! the bad input starts and a bounded hex preview of it, so that a report can point at the bytes.

use super::hex::HexPreview;

/// Bad input found by a decoder. Never a panic, never an allocation of the claimed size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A length prefix (or header, or line) claims more than the configured maximum frame size.
    #[error(
        "offset {offset}: frame length {len} exceeds the maximum of {max} bytes{hint} [{bytes}]"
    )]
    Oversize {
        /// Stream offset of the frame header.
        offset: u64,
        /// The length the peer claimed.
        len: u64,
        /// The configured maximum.
        max: u64,
        /// An explanation when the length is recognisably something else (empty when none).
        hint: String,
        /// The header bytes.
        bytes: HexPreview,
    },
    /// A length prefix of zero where the protocol has no empty frames.
    #[error("offset {offset}: zero-length frame [{bytes}]")]
    ZeroLength {
        /// Stream offset of the frame header.
        offset: u64,
        /// The header bytes.
        bytes: HexPreview,
    },
    /// The frame does not start with the protocol's magic and the codec cannot resynchronise.
    #[error("offset {offset}: bad magic, expected {expected} [{bytes}]")]
    BadMagic {
        /// Stream offset of the bad header.
        offset: u64,
        /// The magic the protocol requires.
        expected: HexPreview,
        /// What was there instead.
        bytes: HexPreview,
    },
    /// Bytes skipped while resynchronising (scanning for the next magic or delimiter).
    #[error("offset {offset}: skipped {skipped} bytes of garbage{reason} [{bytes}]")]
    Garbage {
        /// Stream offset of the first skipped byte.
        offset: u64,
        /// How many bytes were skipped.
        skipped: u64,
        /// Why scanning stopped where it did (empty when the next frame was found).
        reason: String,
        /// The first skipped bytes.
        bytes: HexPreview,
    },
    /// The stream ended in the middle of a frame.
    #[error(
        "offset {offset}: stream ended inside a frame: {available} of {expected} bytes [{bytes}]"
    )]
    Truncated {
        /// Stream offset of the incomplete frame.
        offset: u64,
        /// How many bytes the frame needed (0 when unknown).
        expected: u64,
        /// How many bytes there were.
        available: u64,
        /// The incomplete frame's first bytes.
        bytes: HexPreview,
    },
    /// The framing was intact but the payload does not parse (protobuf, JSON, HTTP, UTF-8).
    #[error("offset {offset}: malformed {format} payload: {reason} [{bytes}]")]
    Malformed {
        /// Stream offset of the frame.
        offset: u64,
        /// What the payload should have been: "protobuf", "json", "http", "utf-8", …
        format: &'static str,
        /// The parser's own message.
        reason: String,
        /// The payload's first bytes.
        bytes: HexPreview,
    },
    /// A well-formed message of a type the protocol does not define.
    #[error("offset {offset}: unknown message type {type_name:?} [{bytes}]")]
    UnknownType {
        /// Stream offset of the frame.
        offset: u64,
        /// The type as the peer named or numbered it.
        type_name: String,
        /// The payload's first bytes.
        bytes: HexPreview,
    },
    /// A hybrid-vsock handshake line (`CONNECT <port>` / `OK <port>`) that is not valid.
    #[error("offset {offset}: bad handshake line: {reason} [{bytes}]")]
    BadHandshake {
        /// Stream offset of the line.
        offset: u64,
        /// What is wrong with it.
        reason: String,
        /// The line's bytes.
        bytes: HexPreview,
    },
    /// The bytes are valid framing of a *different* protocol than the one being decoded.
    #[error(
        "offset {offset}: framing mismatch: expected {expected}, but this looks like {found} [{bytes}]"
    )]
    FramingMismatch {
        /// Stream offset where the mismatch was seen.
        offset: u64,
        /// The protocol being decoded.
        expected: &'static str,
        /// What the bytes look like instead.
        found: String,
        /// The bytes that show it.
        bytes: HexPreview,
    },
}

impl WireError {
    /// The error's kind as a stable snake_case name (used as `error` in JSON output).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Oversize { .. } => "oversize",
            Self::ZeroLength { .. } => "zero_length",
            Self::BadMagic { .. } => "bad_magic",
            Self::Garbage { .. } => "garbage",
            Self::Truncated { .. } => "truncated",
            Self::Malformed { .. } => "malformed",
            Self::UnknownType { .. } => "unknown_type",
            Self::BadHandshake { .. } => "bad_handshake",
            Self::FramingMismatch { .. } => "framing_mismatch",
        }
    }

    /// Stream offset where the bad input starts.
    pub fn offset(&self) -> u64 {
        match self {
            Self::Oversize { offset, .. }
            | Self::ZeroLength { offset, .. }
            | Self::BadMagic { offset, .. }
            | Self::Garbage { offset, .. }
            | Self::Truncated { offset, .. }
            | Self::Malformed { offset, .. }
            | Self::UnknownType { offset, .. }
            | Self::BadHandshake { offset, .. }
            | Self::FramingMismatch { offset, .. } => *offset,
        }
    }

    /// The same error with its offset moved `by` bytes later: for a decoder that started
    /// part-way into a stream (e.g. after a hybrid-vsock handshake line).
    pub fn shifted(mut self, by: u64) -> Self {
        match &mut self {
            Self::Oversize { offset, .. }
            | Self::ZeroLength { offset, .. }
            | Self::BadMagic { offset, .. }
            | Self::Garbage { offset, .. }
            | Self::Truncated { offset, .. }
            | Self::Malformed { offset, .. }
            | Self::UnknownType { offset, .. }
            | Self::BadHandshake { offset, .. }
            | Self::FramingMismatch { offset, .. } => *offset = offset.saturating_add(by),
        }
        self
    }

    /// The offending bytes (at most [`PREVIEW_BYTES`](super::hex::PREVIEW_BYTES)).
    pub fn bytes(&self) -> &HexPreview {
        match self {
            Self::Oversize { bytes, .. }
            | Self::ZeroLength { bytes, .. }
            | Self::BadMagic { bytes, .. }
            | Self::Garbage { bytes, .. }
            | Self::Truncated { bytes, .. }
            | Self::Malformed { bytes, .. }
            | Self::UnknownType { bytes, .. }
            | Self::BadHandshake { bytes, .. }
            | Self::FramingMismatch { bytes, .. } => bytes,
        }
    }

    /// The error as a JSON object: `error` (the kind), `offset`, `hex`, `message`, plus the
    /// variant's own fields.
    pub fn to_json(&self) -> serde_json::Value {
        let mut obj = serde_json::json!({
            "error": self.kind(),
            "offset": self.offset(),
            "hex": self.bytes().to_hex(),
            "message": self.to_string(),
        });
        let extra = match self {
            Self::Oversize { len, max, .. } => serde_json::json!({ "len": len, "max": max }),
            Self::Garbage { skipped, .. } => serde_json::json!({ "skipped": skipped }),
            Self::Truncated {
                expected,
                available,
                ..
            } => serde_json::json!({ "expected": expected, "available": available }),
            Self::Malformed { format, .. } => serde_json::json!({ "format": format }),
            Self::UnknownType { type_name, .. } => serde_json::json!({ "type": type_name }),
            Self::FramingMismatch {
                expected, found, ..
            } => serde_json::json!({ "expected": expected, "found": found }),
            _ => serde_json::json!({}),
        };
        if let (Some(o), serde_json::Value::Object(e)) = (obj.as_object_mut(), extra) {
            o.extend(e);
        }
        obj
    }
}

/// A message that cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The encoded payload would exceed the codec's maximum frame size (or the length field).
    #[error("encoded frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The payload's length.
        len: u64,
        /// The maximum.
        max: u64,
    },
    /// The message cannot be serialised (e.g. JSON serialisation failed).
    #[error("cannot serialise message: {0}")]
    Serialize(String),
}
