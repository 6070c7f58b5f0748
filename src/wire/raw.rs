//! The protocol of last resort: no framing at all. [`RawDecoder`] yields whatever bytes are
//! buffered as one frame (at most [`RAW_MAX_FRAME`] bytes each), so an unknown or undetected
//! protocol can still be tapped, captured and shown.
//!
//! Raw frames follow read boundaries, so unlike every other decoder they are **not** split
//! invariant: the same stream read in different pieces gives different frames. What holds for
//! any split is that the concatenation of the frames is exactly the stream, and that raw
//! decoding never fails.

use bytes::{Bytes, BytesMut};

use super::codec::{Decoded, Decoder, Describe, Frame};

/// `b` as a printable character: printable ASCII and space as they are, anything else as `.`
/// (previews and hex dumps).
pub fn printable(b: u8) -> char {
    if b.is_ascii_graphic() || b == b' ' {
        b as char
    } else {
        '.'
    }
}

/// Largest raw frame: 64 KiB, one pipe or socket buffer's worth.
pub const RAW_MAX_FRAME: usize = 64 * 1024;

/// How many bytes of a raw frame its summary shows.
const PREVIEW_CHARS: usize = 24;

/// A run of stream bytes with no meaning attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawData(pub Bytes);

impl RawData {
    /// The bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// A short printable preview: printable ASCII as is, other bytes as `.`, cut with `…`.
    pub fn preview(&self) -> String {
        let mut s: String = self
            .0
            .iter()
            .take(PREVIEW_CHARS)
            .map(|&b| printable(b))
            .collect();
        if self.0.len() > PREVIEW_CHARS {
            s.push('…');
        }
        s
    }
}

impl Describe for RawData {
    fn type_name(&self) -> String {
        "data".into()
    }

    fn summary(&self) -> String {
        format!("{}B {:?}", self.0.len(), self.preview())
    }

    fn to_json(&self) -> serde_json::Value {
        use base64::Engine as _;
        let mut v = serde_json::json!({
            "len": self.0.len(),
            "base64": base64::engine::general_purpose::STANDARD.encode(&self.0),
        });
        if let (Ok(text), Some(o)) = (std::str::from_utf8(&self.0), v.as_object_mut()) {
            o.insert("text".into(), serde_json::Value::String(text.to_string()));
        }
        v
    }
}

/// Yields the buffered bytes as frames of at most [`RAW_MAX_FRAME`] bytes. Never fails.
#[derive(Debug, Clone, Default)]
pub struct RawDecoder {
    offset: u64,
}

impl RawDecoder {
    /// A decoder at stream offset 0.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Decoder for RawDecoder {
    type Message = RawData;

    fn decode(&mut self, buf: &mut BytesMut) -> Option<Decoded<RawData>> {
        if buf.is_empty() {
            return None;
        }
        let n = buf.len().min(RAW_MAX_FRAME);
        let offset = self.offset;
        self.offset += n as u64;
        Some(Ok(Frame {
            offset,
            wire_len: n as u64,
            message: RawData(buf.split_to(n).freeze()),
        }))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Decoded<RawData>> {
        self.decode(buf)
    }

    fn offset(&self) -> u64 {
        self.offset
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::wire::codec::decode_chunks;

    #[test]
    fn frames_are_bounded_and_described() {
        let data = vec![b'a'; RAW_MAX_FRAME + 10];
        let got = decode_chunks(&mut RawDecoder::new(), [&data]);
        let lens: Vec<u64> = got
            .iter()
            .map(|r| r.as_ref().expect("raw never fails").wire_len)
            .collect();
        assert_eq!(lens, vec![RAW_MAX_FRAME as u64, 10]);
        let f = got[1].as_ref().expect("frame");
        assert_eq!(f.offset, RAW_MAX_FRAME as u64);
        let m = RawData(Bytes::from_static(b"hi\x00there, a long line of text"));
        assert_eq!(m.type_name(), "data");
        assert_eq!(m.summary(), "29B \"hi.there, a long line of…\"");
        assert_eq!(m.to_json()["len"], 29);
        assert_eq!(m.to_json()["text"], "hi\u{0}there, a long line of text");
        assert!(
            RawData(Bytes::from_static(&[0xff]))
                .to_json()
                .get("text")
                .is_none()
        );
    }

    proptest! {
        #[test]
        fn concatenation_is_the_stream(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..10)) {
            let got = decode_chunks(&mut RawDecoder::new(), &chunks);
            let mut joined = Vec::new();
            let mut offset = 0;
            for r in got {
                let f = r.expect("raw never fails");
                prop_assert_eq!(f.offset, offset);
                prop_assert!(!f.message.0.is_empty());
                offset += f.wire_len;
                joined.extend_from_slice(&f.message.0);
            }
            prop_assert_eq!(joined, chunks.concat());
        }
    }
}
