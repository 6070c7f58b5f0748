//! What the payload of a quantix frame must be, in both framings: an `AgentMessage` with a
//! known payload arm. Names what else it is — JSON from an fcexec-style peer, bytes that are not
//! protobuf, a message of an arm this version does not know, or no payload at all — and walks the
//! start of a stream as top-level `AgentMessage` fields, for the legacy-framing check of
//! [`QuantixDecoder`](super::QuantixDecoder).

use bytes::Bytes;
use prost::Message as _;

use super::codec::QUANTIX;
use super::envelope::{AgentMessage, Payload};
use crate::wire::error::WireError;
use crate::wire::hex::HexPreview;
use crate::wire::sniff;

const FOUND_JSON_IN_QTX1: &str = "JSON (e.g. fcexec) inside QTX1 frames";
const FOUND_JSON_IN_LEGACY: &str =
    "JSON (e.g. fcexec: u32 length + JSON) where protobuf was expected";

/// Turns one frame's payload into an `AgentMessage`, or names why it is not one (see the
/// [`codec`](super::codec) module). `offset` is the frame's stream offset; `expected` the
/// protocol being decoded.
pub fn decode_payload(
    payload: &[u8],
    offset: u64,
    expected: &'static str,
) -> Result<AgentMessage, WireError> {
    check_decoded(AgentMessage::decode(payload), payload, offset, expected)
}

/// Payloads at least this long are decoded from the frame's own [`Bytes`]: 16 KiB.
///
/// Below it, `bytes` fields are copied out, so a small message kept for long (a capture, the TUI)
/// does not pin the reader's whole buffer; at or above it they share the frame, saving a copy of
/// the bulk data (a 64 KiB `file_read_response` chunk) while pinning at most a few times its size.
pub const SHARE_PAYLOAD_MIN: usize = 16 * 1024;

/// [`decode_payload`] for a payload held in [`Bytes`] (as the framing layer yields it): the same
/// result, but when the payload is at least [`SHARE_PAYLOAD_MIN`] bytes long the message's
/// `bytes` fields (file data, clipboard contents) point into `payload` instead of being copied.
pub fn decode_payload_bytes(
    payload: &Bytes,
    offset: u64,
    expected: &'static str,
) -> Result<AgentMessage, WireError> {
    let decoded = if payload.len() >= SHARE_PAYLOAD_MIN {
        AgentMessage::decode(payload.clone())
    } else {
        AgentMessage::decode(&payload[..])
    };
    check_decoded(decoded, payload, offset, expected)
}

/// Names what is wrong with a payload, given prost's verdict on it (see [`decode_payload`]).
fn check_decoded(
    decoded: Result<AgentMessage, prost::DecodeError>,
    payload: &[u8],
    offset: u64,
    expected: &'static str,
) -> Result<AgentMessage, WireError> {
    // Protobuf first: a valid message can start like JSON (0x0a, a length of 10, then "{…").
    let json_like =
        !matches!(&decoded, Ok(m) if m.payload.is_some()) && sniff::looks_like_json(payload);
    if json_like {
        return Err(WireError::FramingMismatch {
            offset,
            expected,
            found: if expected == QUANTIX {
                FOUND_JSON_IN_QTX1
            } else {
                FOUND_JSON_IN_LEGACY
            }
            .to_string(),
            bytes: HexPreview::of(payload),
        });
    }
    let msg = decoded.map_err(|e| WireError::Malformed {
        offset,
        format: "protobuf",
        reason: e.to_string(),
        bytes: HexPreview::of(payload),
    })?;
    if msg.payload.is_none() {
        let type_name = match first_unknown_field(payload) {
            Some(field) => format!("field {field}"),
            None => "none".to_string(),
        };
        return Err(WireError::UnknownType {
            offset,
            type_name,
            bytes: HexPreview::of(payload),
        });
    }
    Ok(msg)
}

/// The first top-level field number that is neither `message_id`, `timestamp` nor a known arm.
fn first_unknown_field(data: &[u8]) -> Option<u64> {
    let mut pos = 0usize;
    while pos < data.len() {
        let (key, n) = sniff::read_varint(data.get(pos..)?)?;
        pos += n;
        let field = key >> 3;
        let known = field == 1
            || field == 2
            || u32::try_from(field).is_ok_and(|f| Payload::name_of(f).is_some());
        if !known {
            return Some(field);
        }
        let skip = match key & 7 {
            0 => sniff::read_varint(data.get(pos..)?)?.1,
            1 => 8,
            2 => {
                let (len, n) = sniff::read_varint(data.get(pos..)?)?;
                n.checked_add(usize::try_from(len).ok()?)?
            }
            5 => 4,
            _ => return None,
        };
        pos = pos.checked_add(skip)?;
    }
    None
}

/// How far the start of a stream goes towards being a legacy frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Prefix {
    /// These bytes cannot start an `AgentMessage`, whatever follows.
    Invalid,
    /// So far so good; more bytes are needed.
    Incomplete,
    /// All `total` bytes are there and every top-level field is well formed.
    Complete,
}

/// Walks the first `data.len()` of `total` payload bytes as top-level `AgentMessage` fields.
/// Only says `Invalid` when no continuation could make it valid, so the verdict does not depend
/// on how the stream was split.
pub(super) fn legacy_prefix(data: &[u8], total: usize) -> Prefix {
    let complete = data.len() >= total;
    // A varint that is cut off: invalid if it can never finish within the payload.
    let cut = |rest: &[u8]| {
        if complete || rest.len() >= 10 {
            Prefix::Invalid
        } else {
            Prefix::Incomplete
        }
    };
    let mut pos = 0usize;
    while pos < total {
        let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) else {
            return cut(&[]);
        };
        let Some((key, n)) = sniff::read_varint(rest) else {
            return cut(rest);
        };
        let field = key >> 3;
        let known = field == 1
            || field == 2
            || u32::try_from(field).is_ok_and(|f| Payload::name_of(f).is_some());
        if key & 7 != 2 || !known {
            return Prefix::Invalid;
        }
        pos += n;
        let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) else {
            return cut(&[]);
        };
        let Some((len, m)) = sniff::read_varint(rest) else {
            return cut(rest);
        };
        pos += m;
        match usize::try_from(len) {
            Ok(len) if len <= total.saturating_sub(pos) => pos += len,
            _ => return Prefix::Invalid,
        }
    }
    if complete {
        Prefix::Complete
    } else {
        Prefix::Incomplete
    }
}
