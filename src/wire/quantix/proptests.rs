//! Property tests of the quantix codecs and JSON form: round trips of arbitrary messages through
//! both framings and through JSON, split invariance of both decoders over streams mixing good
//! frames with every kind of bad input, bounded buffering on arbitrary garbage, and resync from
//! garbage to a good frame.

use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use super::strategies::message;
use super::*;
use crate::wire::codec::{Decoded, Decoder, Encoder, decode_all, decode_chunks};
use crate::wire::error::WireError;

/// One piece of a test stream.
#[derive(Debug, Clone)]
enum Seg {
    Qtx(AgentMessage),
    Legacy(AgentMessage),
    Garbage(Vec<u8>),
    ZeroLength,
    Oversize,
    MagicAsLength,
    QtxRaw(Vec<u8>),
    QtxJson,
    Truncated(AgentMessage, Index),
}

fn segment() -> impl Strategy<Value = Seg> {
    prop_oneof![
        4 => message().prop_map(Seg::Qtx),
        2 => message().prop_map(Seg::Legacy),
        2 => vec(any::<u8>(), 0..40).prop_map(Seg::Garbage),
        1 => Just(Seg::ZeroLength),
        1 => Just(Seg::Oversize),
        1 => Just(Seg::MagicAsLength),
        1 => vec(any::<u8>(), 1..16).prop_map(Seg::QtxRaw),
        1 => Just(Seg::QtxJson),
        1 => (message(), any::<Index>()).prop_map(|(m, i)| Seg::Truncated(m, i)),
    ]
}

const SMALL_MAX: u64 = 1024;

fn encode_qtx(msg: &AgentMessage) -> Vec<u8> {
    QuantixEncoder::new()
        .to_bytes(msg)
        .expect("encode")
        .to_vec()
}

fn encode_legacy(msg: &AgentMessage) -> Vec<u8> {
    LegacyEncoder::new().to_bytes(msg).expect("encode").to_vec()
}

fn build(segs: &[Seg]) -> Vec<u8> {
    let mut out = Vec::new();
    for seg in segs {
        match seg {
            Seg::Qtx(m) => out.extend(encode_qtx(m)),
            Seg::Legacy(m) => out.extend(encode_legacy(m)),
            Seg::Garbage(g) => out.extend(g),
            Seg::ZeroLength => out.extend(b"QTX\x01\0\0\0\0"),
            Seg::Oversize => {
                out.extend(QTX1_MAGIC);
                out.extend((SMALL_MAX as u32 + 1).to_be_bytes());
            }
            Seg::MagicAsLength => out.extend(b"QTX\x01QTX\x01"),
            Seg::QtxRaw(p) => {
                out.extend(QTX1_MAGIC);
                out.extend((p.len() as u32).to_be_bytes());
                out.extend(p);
            }
            Seg::QtxJson => {
                let json = br#"{"type":"log","line":"x"}"#;
                out.extend(QTX1_MAGIC);
                out.extend((json.len() as u32).to_be_bytes());
                out.extend(json);
            }
            Seg::Truncated(m, at) => {
                let bytes = encode_qtx(m);
                out.extend(&bytes[..at.index(bytes.len())]);
            }
        }
    }
    out
}

/// `stream` cut at the given points.
fn chunks<'a>(stream: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut from = 0;
    for p in points {
        out.push(&stream[from..p]);
        from = p;
    }
    out.push(&stream[from..]);
    out
}

fn frames(items: Vec<Decoded<AgentMessage>>) -> Result<Vec<AgentMessage>, WireError> {
    items.into_iter().map(|r| r.map(|f| f.message)).collect()
}

/// Feeds `data` in `chunk`-sized pieces, checking after each drain that the decoder holds no
/// more than `max` plus a header.
fn assert_bounded<D: Decoder>(mut d: D, data: &[u8], chunk: usize, max: u64) {
    let mut buf = BytesMut::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        while d.decode(&mut buf).is_some() {}
        assert!(buf.len() as u64 <= max + 8, "holding {} bytes", buf.len());
        assert!(buf.capacity() as u64 <= 4 * (max + 8 + chunk as u64) + 64);
    }
    while d.decode_eof(&mut buf).is_some() {}
    assert!(buf.is_empty());
    assert_eq!(d.offset(), data.len() as u64);
}

// ---- properties -------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn qtx1_round_trip(msgs in vec(message(), 1..6)) {
        let mut enc = QuantixEncoder::new();
        let mut stream = BytesMut::new();
        for m in &msgs {
            enc.encode(m, &mut stream).expect("encode");
        }
        let got = frames(decode_all(&mut QuantixDecoder::new(), &stream));
        prop_assert_eq!(got, Ok(msgs));
    }

    #[test]
    fn legacy_round_trip(msgs in vec(message(), 1..6)) {
        let mut enc = LegacyEncoder::new();
        let mut stream = BytesMut::new();
        for m in &msgs {
            enc.encode(m, &mut stream).expect("encode");
        }
        let got = frames(decode_all(&mut LegacyDecoder::new(), &stream));
        prop_assert_eq!(got, Ok(msgs));
    }

    #[test]
    fn json_round_trip(msg in message()) {
        let text = serde_json::to_string(&msg).expect("serialise");
        let back: AgentMessage = serde_json::from_str(&text).expect("deserialise");
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn quantix_is_split_invariant(segs in vec(segment(), 0..8), cuts in vec(any::<Index>(), 0..6)) {
        let stream = build(&segs);
        let whole = decode_all(&mut QuantixDecoder::with_max(SMALL_MAX), &stream);
        let split = decode_chunks(&mut QuantixDecoder::with_max(SMALL_MAX), chunks(&stream, &cuts));
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn legacy_is_split_invariant(segs in vec(segment(), 0..8), cuts in vec(any::<Index>(), 0..6)) {
        let stream = build(&segs);
        let whole = decode_all(&mut LegacyDecoder::with_max(SMALL_MAX), &stream);
        let split = decode_chunks(&mut LegacyDecoder::with_max(SMALL_MAX), chunks(&stream, &cuts));
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn garbage_never_panics_and_stays_bounded(
        data in vec(any::<u8>(), 0..3000),
        prefix in 0..4usize,
        chunk in 1..300usize,
    ) {
        let max = 256;
        let mut stream = match prefix {
            0 => Vec::new(),
            1 => QTX1_MAGIC.to_vec(),
            2 => vec![0, 0, 0, 200, 0x52],
            _ => b"QTX\x01\0\0\0\xc8".to_vec(),
        };
        stream.extend(&data);
        assert_bounded(QuantixDecoder::with_max(max), &stream, chunk, max);
        assert_bounded(LegacyDecoder::with_max(max), &stream, chunk, max);
        // The default maximum too: nothing is reserved for a claimed length.
        assert_bounded(QuantixDecoder::new(), &stream, chunk, MAX_MESSAGE);
    }

    #[test]
    fn garbage_then_a_frame_finds_the_frame(
        garbage in vec(any::<u8>(), 1..512)
            .prop_filter("no magic", |g| !g.windows(4).any(|w| w == QTX1_MAGIC)),
        msg in message(),
    ) {
        let mut stream = garbage.clone();
        stream.extend(encode_qtx(&msg));
        let got = decode_all(&mut QuantixDecoder::new(), &stream);
        let n = got.len();
        prop_assert!(n >= 2, "{:?}", got);
        // The only thing allowed before the resync is the naming of a legacy-looking start.
        for early in &got[..n - 2] {
            let is_mismatch = matches!(early, Err(WireError::FramingMismatch { offset: 0, .. }));
            prop_assert!(is_mismatch, "{:?}", early);
        }
        let skipped_all = matches!(
            &got[n - 2],
            Err(WireError::Garbage { offset: 0, skipped, .. }) if *skipped == garbage.len() as u64
        );
        prop_assert!(skipped_all, "{:?}", got[n - 2]);
        match &got[n - 1] {
            Ok(f) => {
                prop_assert_eq!(f.offset, garbage.len() as u64);
                prop_assert_eq!(&f.message, &msg);
            }
            Err(e) => prop_assert!(false, "{}", e),
        }
    }
}
