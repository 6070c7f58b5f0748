//! The fcexec codec: [`LpDecoder`]/[`LpEncoder`] with [`LpConfig::u32_be`] framing and the JSON
//! payload rules of seed 001.
//!
//! Decoding rules, in order:
//! - a frame header `QTX\x01` is the LimiQuantix magic: one [`WireError::FramingMismatch`] naming
//!   quantix, then the rest of the stream is discarded (no magic to resynchronise on);
//! - a zero length is [`WireError::ZeroLength`] and decoding goes on; an oversize length is
//!   [`WireError::Oversize`] (with a hint saying what the bytes look like) and ends decoding;
//! - a payload that is not UTF-8 JSON is [`WireError::Malformed`] (`format: "json"`) carrying the
//!   raw bytes, or a [`WireError::FramingMismatch`] when it is binary that walks as protobuf
//!   (the quantix-legacy framing carries protobuf behind the same u32 length);
//! - a JSON object with a `type` key is a guest message (`log` needs a string `line`, `result`
//!   needs an object `response`), any other `type` is [`WireError::UnknownType`]; an object with
//!   no `type` is a [`GuestRequest`];
//! - with a direction set, a message travelling the other way is [`WireError::Malformed`] whose
//!   reason starts with `wrong direction` and names both directions.

use bytes::BytesMut;
use serde_json::Value;

use super::super::codec::{Decoded, Decoder, Direction, Encoder, Frame};
use super::super::error::{EncodeError, WireError};
use super::super::frame::{DEFAULT_MAX_FRAME, LpConfig, LpDecoder, LpEncoder};
use super::super::hex::HexPreview;
use super::super::sniff;
use super::{FcexecMessage, GuestOut, GuestRequest, GuestResponse};

/// The LimiQuantix magic, which a quantix peer puts where fcexec expects a length.
const QTX_MAGIC: &[u8; 4] = b"QTX\x01";

/// The highest protobuf field number the quantix sniff accepts (its events go up to 103).
const PROTOBUF_MAX_FIELD: u64 = 200;

/// Incremental fcexec decoder.
#[derive(Debug, Clone)]
pub struct FcexecDecoder {
    inner: LpDecoder,
    direction: Option<Direction>,
    /// Set after a framing mismatch: everything after is discarded.
    failed: bool,
    /// Bytes discarded by this decoder itself (after a mismatch), not seen by `inner`.
    discarded: u64,
}

impl FcexecDecoder {
    /// A decoder with the 16 MiB maximum; with `Some(direction)` it rejects messages that travel
    /// the other way.
    pub fn new(direction: Option<Direction>) -> Self {
        Self::with_max(direction, DEFAULT_MAX_FRAME)
    }

    /// A decoder whose payloads may be at most `max` bytes.
    pub fn with_max(direction: Option<Direction>, max: u64) -> Self {
        let cfg = LpConfig {
            max: max.min(u64::from(u32::MAX)),
            ..LpConfig::u32_be()
        };
        Self {
            inner: LpDecoder::new(cfg),
            direction,
            failed: false,
            discarded: 0,
        }
    }

    /// The direction this decoder expects, if any.
    pub fn direction(&self) -> Option<Direction> {
        self.direction
    }

    /// The maximum payload size.
    pub fn max(&self) -> u64 {
        self.inner.config().max
    }

    /// Whether the decoder gave up on the stream (oversize length or another protocol's framing):
    /// all further bytes are discarded.
    pub fn is_failed(&self) -> bool {
        self.failed || self.inner.is_failed()
    }

    fn discard(&mut self, buf: &mut BytesMut) {
        self.discarded += buf.len() as u64;
        buf.clear();
    }

    fn map(&self, item: Decoded<bytes::Bytes>) -> Decoded<FcexecMessage> {
        let frame = item?;
        let message = decode_payload(&frame.message, frame.offset, self.direction)?;
        Ok(Frame {
            offset: frame.offset,
            wire_len: frame.wire_len,
            message,
        })
    }
}

impl Decoder for FcexecDecoder {
    type Message = FcexecMessage;

    fn decode(&mut self, buf: &mut BytesMut) -> Option<Decoded<FcexecMessage>> {
        if self.failed {
            self.discard(buf);
            return None;
        }
        // Without a magic the inner decoder is always at a frame boundary, so the buffer starts
        // with a header.
        if !self.inner.is_failed() && buf.starts_with(QTX_MAGIC) {
            let err = WireError::FramingMismatch {
                offset: self.offset(),
                expected: "fcexec",
                found: "quantix framing (the QTX1 magic where the u32 length should be; \
                        the rest of the stream is not decoded)"
                    .into(),
                bytes: HexPreview::of(QTX_MAGIC),
            };
            self.failed = true;
            self.discard(buf);
            return Some(Err(err));
        }
        let item = self.inner.decode(buf)?;
        Some(self.map(item))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Decoded<FcexecMessage>> {
        if let Some(item) = self.decode(buf) {
            return Some(item);
        }
        if self.failed {
            self.discard(buf);
            return None;
        }
        let item = self.inner.decode_eof(buf)?;
        Some(self.map(item))
    }

    fn offset(&self) -> u64 {
        self.inner.offset() + self.discarded
    }
}

/// Decodes one fcexec JSON payload (the bytes after the length prefix). `offset` is the frame's
/// stream offset, used in errors; with `Some(direction)` a message travelling the other way is an
/// error.
pub fn decode_payload(
    payload: &[u8],
    offset: u64,
    direction: Option<Direction>,
) -> Result<FcexecMessage, WireError> {
    let malformed = |reason: String| WireError::Malformed {
        offset,
        format: "json",
        reason,
        bytes: HexPreview::of(payload),
    };
    let text = match std::str::from_utf8(payload) {
        Ok(t) => t,
        Err(e) => return Err(unparsable(payload, offset, format!("not UTF-8: {e}"))),
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Err(unparsable(payload, offset, e.to_string())),
    };
    let Value::Object(mut map) = value else {
        return Err(malformed(format!(
            "expected a JSON object, got {}",
            kind_of(&value)
        )));
    };
    let kind = match map.remove("type") {
        None => Kind::Request,
        Some(Value::String(t)) if t == "log" => Kind::Log,
        Some(Value::String(t)) if t == "result" => Kind::Result,
        Some(Value::String(t)) => {
            return Err(WireError::UnknownType {
                offset,
                type_name: t,
                bytes: HexPreview::of(payload),
            });
        }
        Some(other) => {
            return Err(malformed(format!(
                "\"type\" must be a string, got {}",
                kind_of(&other)
            )));
        }
    };
    let actual = match kind {
        Kind::Request => Direction::ToGuest,
        Kind::Log | Kind::Result => Direction::ToHost,
    };
    if let Some(expected) = direction
        && expected != actual
    {
        return Err(malformed(format!(
            "wrong direction: {} travels {}, but this stream runs {}",
            kind.what(),
            direction_words(actual),
            direction_words(expected)
        )));
    }
    match kind {
        Kind::Request => serde_json::from_value::<GuestRequest>(Value::Object(map))
            .map(FcexecMessage::Request)
            .map_err(|e| malformed(format!("bad request: {e}"))),
        Kind::Log => match map.remove("line") {
            Some(Value::String(line)) => Ok(FcexecMessage::Log { line }),
            None | Some(Value::Null) => Err(malformed("log without a line".into())),
            Some(other) => Err(malformed(format!(
                "log line must be a string, got {}",
                kind_of(&other)
            ))),
        },
        Kind::Result => match map.remove("response") {
            Some(response @ Value::Object(_)) => serde_json::from_value::<GuestResponse>(response)
                .map(FcexecMessage::Result)
                .map_err(|e| malformed(format!("bad result response: {e}"))),
            None | Some(Value::Null) => Err(malformed("result without a response".into())),
            Some(other) => Err(malformed(format!(
                "result response must be an object, got {}",
                kind_of(&other)
            ))),
        },
    }
}

/// The error for a payload that is not JSON: a framing mismatch when it is binary protobuf,
/// malformed JSON otherwise. (Printable text that happens to walk as protobuf is reported as
/// malformed JSON: it is far more likely broken JSON.)
fn unparsable(payload: &[u8], offset: u64, reason: String) -> WireError {
    if sniff::looks_like_protobuf(payload, PROTOBUF_MAX_FIELD) && !sniff::looks_like_text(payload) {
        WireError::FramingMismatch {
            offset,
            expected: "fcexec",
            found: "protobuf (quantix-legacy framing)".into(),
            bytes: HexPreview::of(payload),
        }
    } else {
        WireError::Malformed {
            offset,
            format: "json",
            reason,
            bytes: HexPreview::of(payload),
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Request,
    Log,
    Result,
}

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Self::Request => "a request (an object without \"type\")",
            Self::Log => "a \"log\" message",
            Self::Result => "a \"result\" message",
        }
    }
}

fn direction_words(d: Direction) -> &'static str {
    match d {
        Direction::ToGuest => "host → guest",
        Direction::ToHost => "guest → host",
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// fcexec encoder: u32 big-endian length + compact JSON.
#[derive(Debug, Clone)]
pub struct FcexecEncoder {
    lp: LpEncoder,
}

impl Default for FcexecEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FcexecEncoder {
    /// An encoder with the 16 MiB maximum.
    pub fn new() -> Self {
        Self::with_max(DEFAULT_MAX_FRAME)
    }

    /// An encoder that refuses payloads over `max` bytes.
    pub fn with_max(max: u64) -> Self {
        Self {
            lp: LpEncoder::new(LpConfig {
                max,
                ..LpConfig::u32_be()
            }),
        }
    }

    /// Appends a framed [`GuestRequest`].
    pub fn encode_request(
        &mut self,
        request: &GuestRequest,
        dst: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        self.frame(serde_json::to_vec(request), dst)
    }

    /// Appends a framed `{"type":"log","line":…}`.
    pub fn encode_log(&mut self, line: &str, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.frame(serde_json::to_vec(&GuestOut::Log { line }), dst)
    }

    /// Appends a framed `{"type":"result","response":…}`.
    pub fn encode_result(
        &mut self,
        response: &GuestResponse,
        dst: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        self.frame(serde_json::to_vec(&GuestOut::Result { response }), dst)
    }

    fn frame(
        &mut self,
        payload: Result<Vec<u8>, serde_json::Error>,
        dst: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let payload = payload.map_err(|e| EncodeError::Serialize(e.to_string()))?;
        self.lp.encode(&payload[..], dst)
    }
}

impl Encoder<FcexecMessage> for FcexecEncoder {
    fn encode(&mut self, message: &FcexecMessage, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.frame(message.to_payload(), dst)
    }
}
