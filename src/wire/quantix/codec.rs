//! The two quantix framings, as sans-IO decoders and encoders of [`AgentMessage`]s.
//!
//! - [`QuantixDecoder`] / [`QuantixEncoder`] (`quantix`): the LimiQuantix agent's current code —
//!   magic `51 54 58 01` ("QTX" then the byte 0x01), u32 big-endian length, protobuf; 16 MiB
//!   maximum. Built on [`LpDecoder`], which resynchronises the way the agent's reader does
//!   (scanning byte by byte for the magic, up to [`SCAN_WINDOW`](crate::wire::frame::SCAN_WINDOW)
//!   bytes) after a zero length, the magic read as a length, or an oversize length. A payload that
//!   does not parse is reported and skipped: the frame's length already put the reader past it.
//! - [`LegacyDecoder`] / [`LegacyEncoder`] (`quantix-legacy`): the framing the seed documents
//!   describe — u32 big-endian length and protobuf, no magic.
//!
//! What a payload must be, in both framings (see [`decode_payload`](super::decode_payload)):
//! JSON (that is not also a valid `AgentMessage`) is a [`WireError::FramingMismatch`] (an
//! fcexec-style peer); bytes that are not an `AgentMessage` are [`WireError::Malformed`]
//! (`format: "protobuf"`); an `AgentMessage` with no known payload arm is
//! [`WireError::UnknownType`] — `type_name: "field N"` naming the first top-level field this
//! version does not know, or `"none"` when the message carries no payload at all (every message
//! the agent sends or accepts has one, and the host could not route it). Payloads of at least
//! [`SHARE_PAYLOAD_MIN`](super::SHARE_PAYLOAD_MIN) bytes are decoded without copying their
//! `bytes` fields (see [`decode_payload_bytes`]).
//!
//! Mismatches between the two framings are named, not just reported as garbage:
//! - a `quantix` stream that starts with a plausible legacy frame (u32 length ≤ max, then that
//!   many bytes that decode as an `AgentMessage` with a payload) gets one `FramingMismatch`
//!   before the usual resync. The check is decided only once the whole first frame is there, or
//!   as soon as its bytes so far cannot start an `AgentMessage` (every top-level field of one is
//!   length-delimited and has a known number), or at the end of the stream — so any split of
//!   the stream gives the same result, and it holds at most max + 4 bytes while deciding.
//! - a `quantix-legacy` stream with `QTX\x01` at a frame boundary gets a `FramingMismatch`
//!   saying what a real legacy reader does with it (takes the magic as a 1.36 GB length and waits
//!   forever); as with any bad length without a magic, the rest of the stream is not decoded.

use bytes::BytesMut;
use prost::Message as _;

use super::envelope::AgentMessage;
use super::payload::{Prefix, decode_payload_bytes, legacy_prefix};
use crate::wire::codec::{Decoded, Decoder, Encoder, Frame};
use crate::wire::error::{EncodeError, WireError};
use crate::wire::frame::{DEFAULT_MAX_FRAME, Endian, LpConfig, LpDecoder, LpEncoder};
use crate::wire::hex::HexPreview;

/// The magic that starts every current quantix frame: `QTX` and the byte 0x01.
pub const QTX1_MAGIC: [u8; 4] = *b"QTX\x01";

/// The magic read as a u32 big-endian length, as a legacy reader does: 1,364,481,025.
pub const MAGIC_AS_LENGTH: u64 = 0x5154_5801;

/// The agent's maximum message size: 16 MiB.
pub const MAX_MESSAGE: u64 = DEFAULT_MAX_FRAME;

/// Protocol name of the current framing.
pub const QUANTIX: &str = "quantix";

/// Protocol name of the documented, magic-less framing.
pub const QUANTIX_LEGACY: &str = "quantix-legacy";

/// What a QTX1 reader says about a stream that starts with a legacy frame.
pub const FOUND_LEGACY: &str = "quantix-legacy framing (u32 length, no QTX1 magic)";

/// What a legacy reader says about a QTX1 header.
pub const FOUND_QTX1: &str = "quantix QTX1 framing: a legacy reader takes the magic as a length of 1364481025 bytes (≈1.36 GB) and waits forever";

/// The length-prefix shape of the current framing, with the given maximum.
pub fn qtx1_config(max: u64) -> LpConfig {
    LpConfig {
        width: 4,
        endian: Endian::Big,
        magic: QTX1_MAGIC.to_vec(),
        max: clamp_max(max),
        allow_empty: false,
    }
}

/// The length-prefix shape of the legacy framing, with the given maximum.
pub fn legacy_config(max: u64) -> LpConfig {
    LpConfig {
        max: clamp_max(max),
        ..LpConfig::u32_be()
    }
}

/// A u32 length field cannot say more than `u32::MAX`; a maximum of 0 would refuse everything.
fn clamp_max(max: u64) -> u64 {
    max.clamp(1, u64::from(u32::MAX))
}

/// Where the check for a legacy-framed stream start stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartCheck {
    /// Not decided yet: nothing has been passed to the frame decoder.
    Pending,
    /// Decided (and reported, if it was a mismatch).
    Done,
}

/// For a stream read as QTX1: decides whether it really starts with a *legacy* frame (a u32 BE
/// length of at most `max`, then that many bytes that decode as an `AgentMessage` with a payload).
/// `None`: not decidable yet (more bytes needed); `Some(None)`: no mismatch; `Some(Some(e))`: the
/// [`WireError::FramingMismatch`] to report. `offset` is the stream offset of `buf`'s first byte.
pub fn check_legacy_start(
    buf: &[u8],
    eof: bool,
    offset: u64,
    max: u64,
) -> Option<Option<WireError>> {
    let head = buf.len().min(QTX1_MAGIC.len());
    if buf.get(..head) == QTX1_MAGIC.get(..head) && (head == QTX1_MAGIC.len() || eof) {
        return Some(None);
    }
    let Some(field) = buf.get(..4) else {
        return if eof { Some(None) } else { None };
    };
    let len = field.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b));
    if len == 0 || len > max {
        return Some(None);
    }
    // len <= max <= u32::MAX, so it fits a usize on every supported target.
    let total = usize::try_from(len).unwrap_or(usize::MAX);
    let end = total.saturating_add(4).min(buf.len());
    let payload = buf.get(4..end).unwrap_or_default();
    match legacy_prefix(payload, total) {
        Prefix::Invalid => Some(None),
        Prefix::Incomplete if eof => Some(None),
        Prefix::Incomplete => None,
        Prefix::Complete => {
            let plausible = AgentMessage::decode(payload).is_ok_and(|m| m.payload.is_some());
            Some(plausible.then(|| WireError::FramingMismatch {
                offset,
                expected: QUANTIX,
                found: FOUND_LEGACY.to_string(),
                bytes: HexPreview::of(buf.get(..end).unwrap_or_default()),
            }))
        }
    }
}

/// Decoder for the current quantix framing (`QTX1` magic, u32 BE length, protobuf).
#[derive(Debug, Clone)]
pub struct QuantixDecoder {
    inner: LpDecoder,
    start: StartCheck,
}

impl Default for QuantixDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl QuantixDecoder {
    /// A decoder with the agent's 16 MiB maximum.
    pub fn new() -> Self {
        Self::with_max(MAX_MESSAGE)
    }

    /// A decoder with another maximum message size (clamped to 1..=u32::MAX).
    pub fn with_max(max: u64) -> Self {
        Self {
            inner: LpDecoder::new(qtx1_config(max)),
            start: StartCheck::Pending,
        }
    }

    /// The maximum message size.
    pub fn max(&self) -> u64 {
        self.inner.config().max
    }

    /// Decides whether the stream starts with a legacy frame. `None`: not decidable yet.
    fn check_start(&self, buf: &[u8], eof: bool) -> Option<Option<WireError>> {
        check_legacy_start(buf, eof, self.inner.offset(), self.max())
    }

    fn step(&mut self, buf: &mut BytesMut, eof: bool) -> Option<Decoded<AgentMessage>> {
        if self.start == StartCheck::Pending {
            let verdict = self.check_start(buf, eof)?;
            self.start = StartCheck::Done;
            if let Some(err) = verdict {
                return Some(Err(err));
            }
        }
        let item = if eof {
            self.inner.decode_eof(buf)
        } else {
            self.inner.decode(buf)
        }?;
        Some(item.and_then(|frame| message_frame(frame, QUANTIX)))
    }
}

/// Decodes a frame's payload, keeping the frame's place in the stream.
fn message_frame(
    frame: Frame<bytes::Bytes>,
    expected: &'static str,
) -> Result<Frame<AgentMessage>, WireError> {
    let message = decode_payload_bytes(&frame.message, frame.offset, expected)?;
    Ok(Frame {
        offset: frame.offset,
        wire_len: frame.wire_len,
        message,
    })
}

impl Decoder for QuantixDecoder {
    type Message = AgentMessage;

    fn decode(&mut self, buf: &mut BytesMut) -> Option<Decoded<AgentMessage>> {
        self.step(buf, false)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Decoded<AgentMessage>> {
        self.step(buf, true)
    }

    fn offset(&self) -> u64 {
        self.inner.offset()
    }
}

/// Decoder for the legacy framing (u32 BE length, protobuf, no magic).
#[derive(Debug, Clone)]
pub struct LegacyDecoder {
    inner: LpDecoder,
    /// Set once a QTX1 header was met: everything after it is discarded, counted here.
    discarded: Option<u64>,
}

impl Default for LegacyDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl LegacyDecoder {
    /// A decoder with the 16 MiB maximum.
    pub fn new() -> Self {
        Self::with_max(MAX_MESSAGE)
    }

    /// A decoder with another maximum message size (clamped to 1..=u32::MAX).
    pub fn with_max(max: u64) -> Self {
        Self {
            inner: LpDecoder::new(legacy_config(max)),
            discarded: None,
        }
    }

    /// The maximum message size.
    pub fn max(&self) -> u64 {
        self.inner.config().max
    }

    /// Whether the decoder gave up on the stream (a bad length or a QTX1 header).
    pub fn is_failed(&self) -> bool {
        self.discarded.is_some() || self.inner.is_failed()
    }

    fn step(&mut self, buf: &mut BytesMut, eof: bool) -> Option<Decoded<AgentMessage>> {
        if let Some(discarded) = &mut self.discarded {
            *discarded += buf.len() as u64;
            buf.clear();
            return None;
        }
        // Without a magic the inner decoder consumes whole frames only, so `buf` starts at a
        // frame boundary whenever it has not failed.
        if !self.inner.is_failed() && buf.starts_with(&QTX1_MAGIC) {
            let err = WireError::FramingMismatch {
                offset: self.inner.offset(),
                expected: QUANTIX_LEGACY,
                found: FOUND_QTX1.to_string(),
                bytes: HexPreview::of(&QTX1_MAGIC),
            };
            self.discarded = Some(buf.len() as u64);
            buf.clear();
            return Some(Err(err));
        }
        let item = if eof {
            self.inner.decode_eof(buf)
        } else {
            self.inner.decode(buf)
        }?;
        Some(item.and_then(|frame| message_frame(frame, QUANTIX_LEGACY)))
    }
}

impl Decoder for LegacyDecoder {
    type Message = AgentMessage;

    fn decode(&mut self, buf: &mut BytesMut) -> Option<Decoded<AgentMessage>> {
        self.step(buf, false)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Decoded<AgentMessage>> {
        self.step(buf, true)
    }

    fn offset(&self) -> u64 {
        self.inner.offset() + self.discarded.unwrap_or(0)
    }
}

/// Appends `message` to `dst` behind the header `lp` writes; refuses an empty encoding, which
/// both framings' readers reject as a zero length.
fn encode_framed(
    lp: &LpEncoder,
    message: &AgentMessage,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    let len = message.encoded_len();
    if len == 0 {
        return Err(EncodeError::Serialize(
            "an empty AgentMessage encodes to a zero-length frame, which quantix readers reject"
                .into(),
        ));
    }
    lp.put_header(len, dst)?;
    message
        .encode(dst)
        .map_err(|e| EncodeError::Serialize(e.to_string()))
}

/// Encoder for the current framing (`QTX1`, u32 BE length, protobuf).
#[derive(Debug, Clone)]
pub struct QuantixEncoder {
    lp: LpEncoder,
}

impl Default for QuantixEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl QuantixEncoder {
    /// An encoder with the agent's 16 MiB maximum.
    pub fn new() -> Self {
        Self::with_max(MAX_MESSAGE)
    }

    /// An encoder with another maximum message size.
    pub fn with_max(max: u64) -> Self {
        Self {
            lp: LpEncoder::new(qtx1_config(max)),
        }
    }

    /// Encodes one message into a new buffer.
    pub fn to_bytes(&mut self, message: &AgentMessage) -> Result<BytesMut, EncodeError> {
        let mut out = BytesMut::new();
        self.encode(message, &mut out)?;
        Ok(out)
    }
}

impl Encoder<AgentMessage> for QuantixEncoder {
    fn encode(&mut self, message: &AgentMessage, dst: &mut BytesMut) -> Result<(), EncodeError> {
        encode_framed(&self.lp, message, dst)
    }
}

/// Encoder for the legacy framing (u32 BE length, protobuf, no magic).
#[derive(Debug, Clone)]
pub struct LegacyEncoder {
    lp: LpEncoder,
}

impl Default for LegacyEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl LegacyEncoder {
    /// An encoder with the 16 MiB maximum.
    pub fn new() -> Self {
        Self::with_max(MAX_MESSAGE)
    }

    /// An encoder with another maximum message size.
    pub fn with_max(max: u64) -> Self {
        Self {
            lp: LpEncoder::new(legacy_config(max)),
        }
    }

    /// Encodes one message into a new buffer.
    pub fn to_bytes(&mut self, message: &AgentMessage) -> Result<BytesMut, EncodeError> {
        let mut out = BytesMut::new();
        self.encode(message, &mut out)?;
        Ok(out)
    }
}

impl Encoder<AgentMessage> for LegacyEncoder {
    fn encode(&mut self, message: &AgentMessage, dst: &mut BytesMut) -> Result<(), EncodeError> {
        encode_framed(&self.lp, message, dst)
    }
}
