//! The shape every codec has: a sans-IO [`Decoder`] that takes bytes from a caller-owned buffer
//! and yields frames or typed errors (as tokio-util's codecs do, so the async adapters are thin),
//! an [`Encoder`], and [`Describe`] for turning any decoded message into a printable, JSON-able
//! [`DecodedFrame`].

use bytes::BytesMut;

use super::error::{EncodeError, WireError};

/// One decoded message and where it sat in the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame<M> {
    /// Stream offset of the frame's first byte (its header).
    pub offset: u64,
    /// The frame's length on the wire, header included.
    pub wire_len: u64,
    /// The decoded message.
    pub message: M,
}

impl<M> Frame<M> {
    /// The same frame with its message transformed.
    pub fn map<N>(self, f: impl FnOnce(M) -> N) -> Frame<N> {
        Frame {
            offset: self.offset,
            wire_len: self.wire_len,
            message: f(self.message),
        }
    }
}

/// What a decoder yields: a frame, or bad input as a typed error.
pub type Decoded<M> = Result<Frame<M>, WireError>;

/// A sans-IO, incremental decoder.
///
/// The caller appends bytes to `buf` and calls [`decode`](Self::decode) until it returns `None`
/// ("need more bytes"); the decoder removes what it consumes. Any split of a stream into calls
/// gives the same frames and errors. A decoder never reserves more than its maximum frame size
/// plus a constant, whatever a length field claims.
pub trait Decoder {
    /// The message type.
    type Message;

    /// Decodes the next frame or error from `buf`, or returns `None` when more bytes are needed.
    fn decode(&mut self, buf: &mut BytesMut) -> Option<Decoded<Self::Message>>;

    /// Called once the stream has ended: yields what remains, then a
    /// [`WireError::Truncated`] for any incomplete frame, then `None`.
    fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Decoded<Self::Message>>;

    /// How many bytes of the stream this decoder has consumed so far.
    fn offset(&self) -> u64;
}

/// Encodes messages into frames.
pub trait Encoder<M: ?Sized> {
    /// Appends the framed encoding of `message` to `dst`.
    fn encode(&mut self, message: &M, dst: &mut BytesMut) -> Result<(), EncodeError>;
}

/// Which way a frame travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the host to the guest agent (requests).
    ToGuest,
    /// From the guest agent to the host (replies and events).
    ToHost,
}

impl Direction {
    /// The other direction.
    pub fn reverse(self) -> Self {
        match self {
            Self::ToGuest => Self::ToHost,
            Self::ToHost => Self::ToGuest,
        }
    }

    /// `to_guest` or `to_host`, as in JSON output and `--fault` directions.
    pub fn name(self) -> &'static str {
        match self {
            Self::ToGuest => "to_guest",
            Self::ToHost => "to_host",
        }
    }

    /// An arrow for human output: `→` towards the guest, `←` towards the host.
    pub fn arrow(self) -> &'static str {
        match self {
            Self::ToGuest => "→",
            Self::ToHost => "←",
        }
    }
}

/// A decoded message that can say what it is.
pub trait Describe {
    /// The message type's protocol name, e.g. `ping`, `execute_response`, `log`, `result`.
    fn type_name(&self) -> String;
    /// The key fields on one short line, e.g. `id=7 seq=3`.
    fn summary(&self) -> String;
    /// The whole message as JSON (proto field names, enums by name, bytes as base64).
    fn to_json(&self) -> serde_json::Value;
    /// The id that pairs a request with its reply, when the protocol has one.
    fn correlation_id(&self) -> Option<String> {
        None
    }
}

/// A protocol-independent view of one frame, for printing, captures and the TUI.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedFrame {
    /// Stream offset of the frame.
    pub offset: u64,
    /// Length on the wire, header included.
    pub len: u64,
    /// The message type's name.
    pub type_name: String,
    /// Key fields on one line.
    pub summary: String,
    /// The whole message as JSON.
    pub message: serde_json::Value,
    /// The request/reply correlation id, if any.
    pub correlation_id: Option<String>,
    /// The frame's first bytes on the wire, when the decoder was asked to keep them
    /// ([`crate::wire::keep_raw`]; at most its cap, `len` says how many there were).
    pub raw: Option<bytes::Bytes>,
}

impl DecodedFrame {
    /// Builds the view of a typed frame.
    pub fn of<M: Describe>(frame: &Frame<M>) -> Self {
        Self {
            offset: frame.offset,
            len: frame.wire_len,
            type_name: frame.message.type_name(),
            summary: frame.message.summary(),
            message: frame.message.to_json(),
            correlation_id: frame.message.correlation_id(),
            raw: None,
        }
    }

    /// The view of a typed frame without the JSON form of its message (`message` is `null`):
    /// type, summary and id only, for output that never prints the message.
    pub fn lean_of<M: Describe>(frame: &Frame<M>) -> Self {
        Self {
            offset: frame.offset,
            len: frame.wire_len,
            type_name: frame.message.type_name(),
            summary: frame.message.summary(),
            message: serde_json::Value::Null,
            correlation_id: frame.message.correlation_id(),
            raw: None,
        }
    }

    /// The frame as one JSON object with `offset`, `len`, `type`, `message`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "offset": self.offset,
            "len": self.len,
            "type": self.type_name,
            "message": self.message,
        });
        if let (Some(id), Some(o)) = (&self.correlation_id, v.as_object_mut()) {
            o.insert("id".into(), serde_json::Value::String(id.clone()));
        }
        v
    }
}

/// Feeds `chunks` one by one to `decoder`, then ends the stream; returns everything it yielded.
/// The reference driver for tests, proptests and fuzz targets.
pub fn decode_chunks<D, I, C>(decoder: &mut D, chunks: I) -> Vec<Decoded<D::Message>>
where
    D: Decoder,
    I: IntoIterator<Item = C>,
    C: AsRef<[u8]>,
{
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk.as_ref());
        while let Some(item) = decoder.decode(&mut buf) {
            out.push(item);
        }
    }
    while let Some(item) = decoder.decode_eof(&mut buf) {
        out.push(item);
    }
    out
}

/// Decodes a whole byte stream in one piece.
pub fn decode_all<D: Decoder>(decoder: &mut D, stream: &[u8]) -> Vec<Decoded<D::Message>> {
    decode_chunks(decoder, [stream])
}

/// Test support: splits `data` at `cuts` (each taken modulo `data.len() + 1`, then sorted and
/// deduplicated), for property tests of split invariance.
#[cfg(test)]
pub(crate) fn split_at_cuts(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut prev = 0;
    for c in cuts {
        out.push(data[prev..c].to_vec());
        prev = c;
    }
    out.push(data[prev..].to_vec());
    out
}
