//! Entry points for the fuzz targets in `fuzz/` (each target is a three-line shim over one of
//! these). The same functions run in the tests over the committed corpora
//! (`tests/fuzz_corpus.rs`), so a harness cannot drift from the code it exercises.
//!
//! Every decoder entry point checks the invariants all codecs promise, and panics (which libFuzzer
//! reports as a crash) when one breaks:
//! - decoding arbitrary bytes never panics;
//! - any split of the stream gives exactly the same frames and errors as one piece;
//! - the buffer never holds more than one maximum frame plus a constant;
//! - every frame lies inside the stream, and every frame and error can describe itself.
//!
//! Where an encoder exists, the entry points also check that what was decoded encodes and decodes
//! back to the same message. Entries whose decoder needs a parameter (a direction, an HTTP kind,
//! a hybrid-vsock flavour, a protocol) take it from the input's first byte.
//!
//! [`chunked`] is the structure-aware target: an `Arbitrary` list of [`StreamOp`]s encoded with the
//! real encoders and cut into reads, with the encoded messages as the oracle.

mod chunked;
mod hybrid;

use std::fmt::Debug;

use bytes::BytesMut;
use prost::Message as _;

use crate::wire::codec::{DecodedFrame, Describe, Direction, Frame, decode_all};
use crate::wire::fcexec::{FcexecDecoder, FcexecMessage};
use crate::wire::frame::{Endian, LpConfig};
use crate::wire::http::{HttpDecoder, HttpKind, HttpLimits};
use crate::wire::protocol::Protocol;
use crate::wire::qga::QgaDecoder;
use crate::wire::quantix::{
    AgentMessage, LegacyDecoder, LegacyEncoder, QuantixDecoder, QuantixEncoder,
};
use crate::wire::stream::{DecodeOptions, FrameDecoder, open_decoder};
use crate::wire::{Decoded, Decoder, WireError};

pub use chunked::{ChunkedInput, ChunkedProtocol, StreamOp, chunked};
pub use hybrid::decode_hybrid;

/// The maximum frame size the fuzz targets configure, small so that bounds are meaningful.
pub const FUZZ_MAX_FRAME: u64 = 4096;

/// Slack allowed on top of one maximum frame in a decoder's buffer: a header, a read chunk and
/// the allocator's rounding.
const BUFFER_SLACK: usize = 64 * 1024;

/// Inputs up to this size are also decoded one byte at a time.
const BYTEWISE_MAX: usize = 4096;

/// Decodes `chunks` with `decoder`, checking after every drained chunk that the buffer holds at
/// most `max_frame + chunk + slack` bytes (length and capacity).
pub fn decode_bounded<D: Decoder>(
    decoder: &mut D,
    chunks: &[&[u8]],
    max_frame: u64,
) -> Vec<Decoded<D::Message>> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(item) = decoder.decode(&mut buf) {
            out.push(item);
        }
        let bound = max_frame as usize + chunk.len() + BUFFER_SLACK;
        assert!(
            buf.len() <= bound && buf.capacity() <= 2 * bound,
            "decoder buffer grew past its bound: len {} capacity {} bound {bound}",
            buf.len(),
            buf.capacity()
        );
    }
    while let Some(item) = decoder.decode_eof(&mut buf) {
        out.push(item);
        assert!(out.len() < 10_000_000, "decode_eof does not terminate");
    }
    out
}

/// Splits `data` into chunks whose sizes follow a pattern seeded by the data itself, so that every
/// input also exercises an irregular split.
pub fn split_points(data: &[u8]) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    let mut rest = data;
    let mut seed = data
        .iter()
        .fold(0x9e37_79b9u32, |h, b| h.rotate_left(5) ^ u32::from(*b));
    while !rest.is_empty() {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let n = (seed as usize % 97 + 1).min(rest.len());
        let (a, b) = rest.split_at(n);
        chunks.push(a);
        rest = b;
    }
    chunks
}

/// Checks the common invariants of a decoder on `data`: no panic, the bound, every frame inside
/// the stream, and that one piece, byte-at-a-time and an irregular split all give the same
/// result. Returns the result.
pub fn check_decoder<D, F>(make: F, data: &[u8], max_frame: u64) -> Vec<Decoded<D::Message>>
where
    D: Decoder,
    D::Message: PartialEq + Debug,
    F: Fn() -> D,
{
    let whole = decode_bounded(&mut make(), &[data], max_frame);
    let split = decode_bounded(&mut make(), &split_points(data), max_frame);
    assert_eq!(whole, split, "an irregular split changed the result");
    if data.len() <= BYTEWISE_MAX {
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        let single = decode_bounded(&mut make(), &bytes, max_frame);
        assert_eq!(whole, single, "byte-at-a-time decoding changed the result");
    }
    for frame in whole.iter().flatten() {
        let end = frame.offset.checked_add(frame.wire_len);
        assert!(
            end.is_some_and(|end| end <= data.len() as u64),
            "frame at {} of {} bytes lies outside the {}-byte stream",
            frame.offset,
            frame.wire_len,
            data.len()
        );
    }
    whole
}

/// Turns every frame and error into its printable forms (summary, JSON, error text), as the
/// CLI, captures and the TUI do with whatever a peer sent.
fn describe_all<M: Describe>(items: &[Decoded<M>]) {
    for item in items {
        match item {
            Ok(frame) => {
                let view = DecodedFrame::of(frame);
                let _ = view.to_json().to_string();
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

/// A decoder's first-byte parameter and the rest of the input.
fn selector(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(s, rest)| (*s, rest))
}

/// A direction (or none) from two bits.
fn direction_of(bits: u8) -> Option<Direction> {
    match bits & 3 {
        1 => Some(Direction::ToGuest),
        2 => Some(Direction::ToHost),
        _ => None,
    }
}

/// Checks what a quantix decoder produced against the codec's encoders: the message's canonical
/// protobuf encoding decodes to itself, its JSON form reads back to the same message, and framed
/// again with `framing`'s encoder it decodes to the same message as the only frame.
fn quantix_round_trip(message: &AgentMessage, legacy: bool) {
    let canonical = message.encode_to_vec();
    let again = AgentMessage::decode(&canonical[..]).expect("a message's own encoding decodes");
    assert_eq!(
        again.encode_to_vec(),
        canonical,
        "protobuf round trip changed the message"
    );
    let json = serde_json::to_string(message).expect("every message has a JSON form");
    let back: AgentMessage =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("JSON form {json} unreadable: {e}"));
    assert_eq!(
        back.encode_to_vec(),
        canonical,
        "JSON round trip changed the message: {json}"
    );
    let framed = if legacy {
        LegacyEncoder::with_max(FUZZ_MAX_FRAME).to_bytes(message)
    } else {
        QuantixEncoder::with_max(FUZZ_MAX_FRAME).to_bytes(message)
    };
    // The canonical encoding may be longer than what the peer sent (and then too large).
    let Ok(framed) = framed else {
        return;
    };
    let items = if legacy {
        decode_all(&mut LegacyDecoder::with_max(FUZZ_MAX_FRAME), &framed[..])
    } else {
        decode_all(&mut QuantixDecoder::with_max(FUZZ_MAX_FRAME), &framed[..])
    };
    match items.as_slice() {
        [Ok(frame)] => {
            assert_eq!(frame.offset, 0);
            assert_eq!(frame.wire_len, framed.len() as u64);
            assert_eq!(frame.message.encode_to_vec(), canonical);
        }
        other => panic!("a re-encoded message decoded as {other:?}"),
    }
}

/// Fuzz entry: the current quantix framing (QTX1 magic, u32 BE length, protobuf).
pub fn decode_quantix(data: &[u8]) {
    let items = check_decoder(
        || QuantixDecoder::with_max(FUZZ_MAX_FRAME),
        data,
        FUZZ_MAX_FRAME,
    );
    describe_all(&items);
    for frame in items.iter().flatten() {
        quantix_round_trip(&frame.message, false);
    }
}

/// Fuzz entry: the legacy quantix framing (u32 BE length, protobuf, no magic).
pub fn decode_quantix_legacy(data: &[u8]) {
    let items = check_decoder(
        || LegacyDecoder::with_max(FUZZ_MAX_FRAME),
        data,
        FUZZ_MAX_FRAME,
    );
    describe_all(&items);
    for frame in items.iter().flatten() {
        quantix_round_trip(&frame.message, true);
    }
}

/// Fuzz entry: fcexec (u32 BE length, JSON), the expected direction taken from the first byte
/// (none, to the guest, to the host). Every decoded message's payload decodes back to itself.
pub fn decode_fcexec(data: &[u8]) {
    let Some((sel, rest)) = selector(data) else {
        return;
    };
    let direction = direction_of(sel);
    let items = check_decoder(
        || FcexecDecoder::with_max(direction, FUZZ_MAX_FRAME),
        rest,
        FUZZ_MAX_FRAME,
    );
    describe_all(&items);
    for frame in items.iter().flatten() {
        let message: &FcexecMessage = &frame.message;
        if let Some(d) = direction {
            assert_eq!(message.direction(), d, "a message travelling the wrong way");
        }
        let payload = message
            .to_payload()
            .expect("every fcexec message serialises");
        let back = crate::wire::fcexec::decode_payload(&payload, 0, direction)
            .unwrap_or_else(|e| panic!("re-encoded {message:?} does not decode: {e}"));
        assert_eq!(&back, message, "fcexec JSON round trip changed the message");
    }
}

/// Fuzz entry: qga (JSON objects, 0xFF delimiters).
pub fn decode_qga(data: &[u8]) {
    let items = check_decoder(
        || QgaDecoder::with_max(FUZZ_MAX_FRAME),
        data,
        FUZZ_MAX_FRAME,
    );
    describe_all(&items);
}

/// Fuzz entry: HTTP/1.x, the kind (requests, responses, decided by the stream) taken from the
/// first byte, bodies limited to [`FUZZ_MAX_FRAME`].
pub fn decode_http(data: &[u8]) {
    let Some((sel, rest)) = selector(data) else {
        return;
    };
    let kind = match sel % 3 {
        0 => HttpKind::Request,
        1 => HttpKind::Response,
        _ => HttpKind::Auto,
    };
    let limits = HttpLimits {
        max_body: FUZZ_MAX_FRAME,
        ..HttpLimits::default()
    };
    let items = check_decoder(
        || HttpDecoder::with_limits(kind, limits),
        rest,
        FUZZ_MAX_FRAME,
    );
    describe_all(&items);
}

/// A type-erased [`FrameDecoder`] seen as a typed [`Decoder`] of [`DecodedFrame`]s, so that the
/// same checks run over it.
struct ErasedDriver(Box<dyn FrameDecoder>);

impl ErasedDriver {
    fn frame(item: Result<DecodedFrame, WireError>) -> Decoded<DecodedFrame> {
        item.map(|f| Frame {
            offset: f.offset,
            wire_len: f.len,
            message: f,
        })
    }
}

impl Decoder for ErasedDriver {
    type Message = DecodedFrame;

    fn decode(&mut self, buf: &mut BytesMut) -> Option<Decoded<DecodedFrame>> {
        self.0.decode(buf).map(Self::frame)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Decoded<DecodedFrame>> {
        self.0.decode_eof(buf).map(Self::frame)
    }

    fn offset(&self) -> u64 {
        self.0.offset()
    }
}

/// The `lp` framing a selector byte describes: width, endianness, QTX1 magic, empty frames.
fn lp_config(sel: u8) -> LpConfig {
    LpConfig {
        width: [1, 2, 4, 8][(sel & 3) as usize],
        endian: if sel & 4 == 0 {
            Endian::Big
        } else {
            Endian::Little
        },
        magic: if sel & 8 == 0 {
            Vec::new()
        } else {
            b"QTX\x01".to_vec()
        },
        max: FUZZ_MAX_FRAME,
        allow_empty: sel & 16 != 0,
    }
}

/// Fuzz entry: any protocol through [`open_decoder`] and the erased [`FrameDecoder`], as
/// `guestwire decode`, the tap and captures use it. The first byte picks the protocol (bits 0–2:
/// quantix, quantix-legacy, fcexec, volant, qga, ch-api, raw, `lp` with its configuration in the
/// next byte), the direction (bits 3–4) and whether a hybrid-vsock handshake line comes first
/// (bit 5). Raw frames follow reads, so for `raw` the check is that its frames tile the stream.
pub fn decode_any(data: &[u8]) {
    let Some((sel, rest)) = selector(data) else {
        return;
    };
    let (protocol, rest) = match sel & 7 {
        0 => (Protocol::Quantix, rest),
        1 => (Protocol::QuantixLegacy, rest),
        2 => (Protocol::Fcexec, rest),
        3 => (Protocol::Volant, rest),
        4 => (Protocol::Qga, rest),
        5 => (Protocol::ChApi, rest),
        6 => (Protocol::Raw, rest),
        _ => match selector(rest) {
            Some((cfg, rest)) => (Protocol::Lp(lp_config(cfg)), rest),
            None => return,
        },
    };
    let opts = DecodeOptions {
        direction: direction_of(sel >> 3),
        max_frame: Some(FUZZ_MAX_FRAME),
        handshake: sel & 0x20 != 0,
        lean: false,
    };
    let make = || ErasedDriver(open_decoder(&protocol, &opts));
    if protocol != Protocol::Raw {
        check_decoder(make, rest, FUZZ_MAX_FRAME);
        return;
    }
    let mut splits = vec![vec![rest], split_points(rest)];
    if rest.len() <= BYTEWISE_MAX {
        splits.push(rest.chunks(1).collect());
    }
    for chunks in splits {
        let items = decode_bounded(&mut make(), &chunks, FUZZ_MAX_FRAME);
        let mut data_frames = items
            .iter()
            .flatten()
            .filter(|f| f.message.type_name == "data")
            .peekable();
        let Some(first) = data_frames.peek() else {
            continue;
        };
        let mut end = first.offset;
        for frame in data_frames {
            assert_eq!(frame.offset, end, "raw frames leave a gap or overlap");
            assert!(frame.wire_len > 0, "an empty raw frame");
            end += frame.wire_len;
        }
        assert_eq!(
            end,
            rest.len() as u64,
            "raw frames do not reach the stream's end"
        );
    }
}

/// Fuzz entry: the generic length-prefixed framer, its configuration taken from the first byte.
pub fn decode_lp(data: &[u8]) {
    use crate::wire::frame::LpDecoder;
    let Some((sel, rest)) = selector(data) else {
        return;
    };
    let cfg = lp_config(sel);
    check_decoder(|| LpDecoder::new(cfg.clone()), rest, FUZZ_MAX_FRAME);
}

/// Fuzz entry: protocol detection never panics and is stable under truncation to its window.
pub fn detect_protocol(data: &[u8]) {
    use crate::wire::detect::{DETECT_WINDOW, detect};
    let d = detect(data);
    assert!(d.handshake_len <= data.len());
    if data.len() > DETECT_WINDOW {
        assert_eq!(
            detect(&data[..DETECT_WINDOW]).handshake_len,
            d.handshake_len
        );
    }
}

/// A fuzz entry point that takes raw bytes.
pub type ByteEntry = fn(&[u8]);

/// Every byte-oriented entry point, by its fuzz target's name: the corpus test runs each committed
/// input through all of them.
pub const BYTE_TARGETS: &[(&str, ByteEntry)] = &[
    ("decode_quantix", decode_quantix),
    ("decode_quantix_legacy", decode_quantix_legacy),
    ("decode_fcexec", decode_fcexec),
    ("decode_qga", decode_qga),
    ("decode_http", decode_http),
    ("decode_hybrid", decode_hybrid),
    ("decode_any", decode_any),
    ("decode_lp", decode_lp),
    ("detect_protocol", detect_protocol),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_points_cover_the_input() {
        let data: Vec<u8> = (0..=255).cycle().take(5000).collect();
        let chunks = split_points(&data);
        assert!(chunks.len() > 10);
        assert_eq!(chunks.concat(), data);
    }

    #[test]
    fn lp_entry_survives_hostile_input() {
        decode_lp(&[
            0x08, 0xff, 0xff, 0xff, 0xff, b'Q', b'T', b'X', 1, 0, 0, 0, 1, 7,
        ]);
        decode_lp(&[0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        detect_protocol(b"CONNECT 1\n");
    }

    #[test]
    fn every_entry_survives_empty_and_tiny_input() {
        for (_, entry) in BYTE_TARGETS {
            for input in [&b""[..], b"\x00", b"\xff\xff", b"\x26CONNECT 5\n"] {
                entry(input);
            }
        }
    }

    #[test]
    fn quantix_entries_round_trip_real_frames() {
        use crate::wire::quantix::PingRequest;
        let msg = AgentMessage::new("7", PingRequest { sequence: 3 });
        let qtx = QuantixEncoder::new().to_bytes(&msg).expect("encode");
        decode_quantix(&qtx);
        decode_any(&[&[0u8][..], &qtx].concat());
        let legacy = LegacyEncoder::new().to_bytes(&msg).expect("encode");
        decode_quantix_legacy(&legacy);
        decode_any(&[&[1u8][..], &legacy].concat());
    }

    #[test]
    fn raw_frames_tile_the_stream_after_a_handshake() {
        decode_any(b"\x26CONNECT 1024\nsome raw bytes");
        decode_any(b"\x06no handshake at all");
    }
}
