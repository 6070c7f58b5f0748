//! Unit tests of the quantix decoders and encoders: every resync rule, every mismatch, the
//! payload checks and the encoders' limits (the property tests are in `proptests.rs`).

use bytes::BytesMut;
use prost::Message as _;

use super::codec::*;
use super::*;
use crate::wire::codec::{Decoded, Decoder, Encoder, decode_all, decode_chunks};
use crate::wire::error::{EncodeError, WireError};
use crate::wire::frame::SCAN_WINDOW;

fn ping(id: &str, seq: u64) -> AgentMessage {
    AgentMessage::new(id, PingRequest { sequence: seq })
}

fn qtx(msgs: &[AgentMessage]) -> Vec<u8> {
    let mut e = QuantixEncoder::new();
    let mut out = BytesMut::new();
    for m in msgs {
        e.encode(m, &mut out).expect("encode");
    }
    out.to_vec()
}

fn legacy(msgs: &[AgentMessage]) -> Vec<u8> {
    let mut e = LegacyEncoder::new();
    let mut out = BytesMut::new();
    for m in msgs {
        e.encode(m, &mut out).expect("encode");
    }
    out.to_vec()
}

/// A QTX1 frame around arbitrary payload bytes.
fn qtx_raw(payload: &[u8]) -> Vec<u8> {
    let mut out = QTX1_MAGIC.to_vec();
    out.extend((payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A legacy frame around arbitrary payload bytes.
fn legacy_raw(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn quantix(stream: &[u8]) -> Vec<Decoded<AgentMessage>> {
    decode_all(&mut QuantixDecoder::new(), stream)
}

fn legacy_decode(stream: &[u8]) -> Vec<Decoded<AgentMessage>> {
    decode_all(&mut LegacyDecoder::new(), stream)
}

fn kinds(items: &[Decoded<AgentMessage>]) -> Vec<String> {
    items
        .iter()
        .map(|i| match i {
            Ok(f) => format!(
                "ok {}@{}",
                f.message.payload_name().unwrap_or("-"),
                f.offset
            ),
            Err(e) => format!("{}@{}", e.kind(), e.offset()),
        })
        .collect()
}

/// Every split of `stream` into two chunks, and byte by byte, gives the one-chunk result.
fn assert_split_invariant<D: Decoder<Message = AgentMessage> + Clone>(fresh: D, stream: &[u8]) {
    let whole = decode_all(&mut fresh.clone(), stream);
    for cut in 0..=stream.len() {
        let got = decode_chunks(&mut fresh.clone(), [&stream[..cut], &stream[cut..]]);
        assert_eq!(got, whole, "split at {cut}");
    }
    let bytes = decode_chunks(&mut fresh.clone(), stream.chunks(1));
    assert_eq!(bytes, whole, "byte by byte");
}

#[test]
fn qtx1_round_trip_with_offsets() {
    let msgs = [
        ping("1", 1),
        AgentMessage::new("2", ExecuteResponse::default()),
        ping("3", 3),
    ];
    let stream = qtx(&msgs);
    assert_eq!(&stream[..4], b"QTX\x01");
    let got = quantix(&stream);
    let mut offset = 0;
    for (item, msg) in got.iter().zip(&msgs) {
        let f = item.as_ref().expect("frame");
        assert_eq!(&f.message, msg);
        assert_eq!(f.offset, offset);
        assert_eq!(f.wire_len, 8 + msg.encoded_len() as u64);
        offset += f.wire_len;
    }
    assert_eq!(got.len(), 3);
    assert_split_invariant(QuantixDecoder::new(), &stream);
}

#[test]
fn legacy_round_trip() {
    let msgs = [
        ping("1", 1),
        AgentMessage::new("2", TelemetryReport::default()),
    ];
    let stream = legacy(&msgs);
    let got: Vec<AgentMessage> = legacy_decode(&stream)
        .into_iter()
        .map(|r| r.expect("frame").message)
        .collect();
    assert_eq!(got, msgs);
    assert_split_invariant(LegacyDecoder::new(), &stream);
}

#[test]
fn resyncs_after_garbage() {
    let mut stream = b"garbage!".to_vec();
    stream.extend(qtx(&[ping("1", 1)]));
    let got = quantix(&stream);
    assert!(matches!(
        &got[0],
        Err(WireError::Garbage {
            offset: 0,
            skipped: 8,
            ..
        })
    ));
    assert_eq!(got[1].as_ref().expect("frame").offset, 8);
    assert_eq!(got.len(), 2);
    assert_split_invariant(QuantixDecoder::new(), &stream);
}

#[test]
fn resyncs_after_zero_length_oversize_and_magic_as_length() {
    let good = qtx(&[ping("1", 1)]);
    for (bad, first) in [
        (b"QTX\x01\0\0\0\0".to_vec(), "zero_length@0"),
        (b"QTX\x01\xff\xff\xff\xff".to_vec(), "oversize@0"),
        (b"QTX\x01QTX\x01".to_vec(), "oversize@0"),
    ] {
        let mut stream = bad.clone();
        stream.extend(&good);
        let got = quantix(&stream);
        let k = kinds(&got);
        assert_eq!(k[0], first, "{k:?}");
        assert_eq!(k.last().map(String::as_str), Some("ok ping@8"), "{k:?}");
        assert!(k[1].starts_with("garbage@1"), "{k:?}");
        assert_split_invariant(QuantixDecoder::new(), &stream);
    }
    let mut stream = b"QTX\x01QTX\x01".to_vec();
    stream.extend(&good);
    match &quantix(&stream)[0] {
        Err(WireError::Oversize { len, hint, .. }) => {
            assert_eq!(*len, MAGIC_AS_LENGTH);
            assert!(hint.contains("QTX1"), "{hint}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_protobuf_is_malformed_and_the_next_frame_decodes() {
    let mut stream = qtx_raw(&[0x0a, 0x05, b'a']);
    stream.extend(qtx(&[ping("2", 2)]));
    let got = quantix(&stream);
    match &got[0] {
        Err(WireError::Malformed {
            offset: 0,
            format: "protobuf",
            bytes,
            ..
        }) => {
            assert_eq!(bytes.bytes(), &[0x0a, 0x05, b'a']);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(got[1].as_ref().expect("frame").message, ping("2", 2));
    assert_eq!(got.len(), 2);
}

#[test]
fn json_payload_is_a_framing_mismatch() {
    let json = br#"{"type":"log","line":"hi"}"#;
    let got = quantix(&qtx_raw(json));
    match &got[..] {
        [
            Err(WireError::FramingMismatch {
                expected: "quantix",
                found,
                offset: 0,
                ..
            }),
        ] => {
            assert!(found.contains("JSON"), "{found}");
        }
        other => panic!("{other:?}"),
    }
    let got = legacy_decode(&legacy_raw(json));
    assert!(matches!(
        &got[..],
        [Err(WireError::FramingMismatch {
            expected: "quantix-legacy",
            ..
        })]
    ));
}

#[test]
fn a_valid_message_that_starts_like_json_is_not_a_mismatch() {
    // 0a 0a: message_id of length 10 (a newline byte), then text starting with '{"'.
    let msg = ping(r#"{"a":"b"}x"#, 1);
    assert_eq!(msg.encode_to_vec()[1], b'\n');
    assert_eq!(
        quantix(&qtx(std::slice::from_ref(&msg)))[0]
            .as_ref()
            .expect("frame")
            .message,
        msg
    );
}

#[test]
fn unknown_arm_and_missing_payload() {
    // message_id "9", then field 90 (length-delimited, empty).
    let unknown = [0x0a, 0x01, b'9', 0xd2, 0x05, 0x00];
    match &quantix(&qtx_raw(&unknown))[..] {
        [
            Err(WireError::UnknownType {
                type_name,
                offset: 0,
                ..
            }),
        ] => {
            assert_eq!(type_name, "field 90")
        }
        other => panic!("{other:?}"),
    }
    let bare = AgentMessage {
        message_id: "9".into(),
        ..Default::default()
    }
    .encode_to_vec();
    match &legacy_decode(&legacy_raw(&bare))[..] {
        [Err(WireError::UnknownType { type_name, .. })] => assert_eq!(type_name, "none"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_at_eof() {
    let stream = qtx(&[ping("1", 1)]);
    let cut = &stream[..stream.len() - 2];
    match &quantix(cut)[..] {
        [
            Err(WireError::Truncated {
                offset: 0,
                expected,
                available,
                ..
            }),
        ] => {
            assert_eq!(
                (*expected, *available),
                (stream.len() as u64, cut.len() as u64)
            );
        }
        other => panic!("{other:?}"),
    }
    let stream = legacy(&[ping("1", 1)]);
    assert!(matches!(
        &legacy_decode(&stream[..3])[..],
        [Err(WireError::Truncated {
            offset: 0,
            expected: 0,
            available: 3,
            ..
        })]
    ));
}

#[test]
fn quantix_names_a_legacy_stream_then_resyncs() {
    let first = legacy(&[ping("1", 1)]);
    let mut stream = first.clone();
    stream.extend(qtx(&[ping("2", 2)]));
    let got = quantix(&stream);
    match &got[0] {
        Err(WireError::FramingMismatch {
            offset: 0,
            expected: "quantix",
            found,
            bytes,
        }) => {
            assert_eq!(found, FOUND_LEGACY);
            assert_eq!(bytes.bytes(), &first[..]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &got[1],
        Err(WireError::Garbage { offset: 0, skipped, .. }) if *skipped == first.len() as u64
    ));
    assert_eq!(got[2].as_ref().expect("frame").message, ping("2", 2));
    assert_eq!(got.len(), 3);
    assert_split_invariant(QuantixDecoder::new(), &stream);

    let only_legacy = legacy(&[ping("1", 1), ping("2", 2)]);
    let k = kinds(&quantix(&only_legacy));
    assert_eq!(k, ["framing_mismatch@0", "garbage@0"]);
    assert_split_invariant(QuantixDecoder::new(), &only_legacy);
}

#[test]
fn quantix_start_check_waits_only_while_it_must() {
    // A plausible legacy prefix: length 4096, then a complete `ping` field and more to come.
    let mut buf = BytesMut::from(&[0, 0, 0x10, 0, 0x52, 0x00][..]);
    let mut d = QuantixDecoder::new();
    assert!(d.decode(&mut buf).is_none());
    assert_eq!(buf.len(), 6, "nothing consumed while undecided");
    // A field that can never start an AgentMessage decides at once: no mismatch, plain resync.
    let mut stream = vec![0, 0, 0x10, 0, 0x7b];
    stream.extend(qtx(&[ping("1", 1)]));
    let mut buf = BytesMut::from(&stream[..]);
    let mut d = QuantixDecoder::new();
    let mut got = Vec::new();
    while let Some(item) = d.decode(&mut buf) {
        got.push(item);
    }
    assert_eq!(kinds(&got), ["garbage@0", "ok ping@5"]);
    // Not enough bytes at EOF: no mismatch either.
    let got = quantix(&[0, 0, 0x10, 0, 0x52, 0x00]);
    assert_eq!(kinds(&got), ["garbage@0"]);
    // Exactly the magic's prefix, then EOF: a truncated header, no mismatch.
    assert_eq!(kinds(&quantix(b"QTX")), ["truncated@0"]);
    assert!(quantix(b"").is_empty());
}

#[test]
fn legacy_names_qtx1_and_gives_up() {
    let stream = qtx(&[ping("1", 1), ping("2", 2)]);
    let mut d = LegacyDecoder::new();
    let got = decode_all(&mut d, &stream);
    match &got[..] {
        [
            Err(WireError::FramingMismatch {
                offset: 0,
                expected: "quantix-legacy",
                found,
                bytes,
            }),
        ] => {
            assert_eq!(found, FOUND_QTX1);
            assert_eq!(bytes.bytes(), b"QTX\x01");
        }
        other => panic!("{other:?}"),
    }
    assert!(d.is_failed());
    assert_eq!(d.offset(), stream.len() as u64);
    assert_split_invariant(LegacyDecoder::new(), &stream);

    // After a good legacy frame, and even when the maximum would admit 1.36 GB.
    let mut stream = legacy(&[ping("1", 1)]);
    let at = stream.len() as u64;
    stream.extend(qtx(&[ping("2", 2)]));
    let got = decode_all(&mut LegacyDecoder::with_max(u64::from(u32::MAX)), &stream);
    assert_eq!(
        kinds(&got),
        ["ok ping@0".to_string(), format!("framing_mismatch@{at}")]
    );
}

#[test]
fn legacy_zero_length_stays_in_sync_and_oversize_fails_the_stream() {
    let mut stream = vec![0, 0, 0, 0];
    stream.extend(legacy(&[ping("1", 1)]));
    assert_eq!(
        kinds(&legacy_decode(&stream)),
        ["zero_length@0", "ok ping@4"]
    );

    let mut stream = vec![0xff, 0xff, 0xff, 0xff];
    stream.extend(legacy(&[ping("1", 1)]));
    let mut d = LegacyDecoder::new();
    assert_eq!(kinds(&decode_all(&mut d, &stream)), ["oversize@0"]);
    assert!(d.is_failed());
    assert_split_invariant(LegacyDecoder::new(), &stream);
}

#[test]
fn scan_window_is_the_agents() {
    let mut stream = vec![0x42u8; SCAN_WINDOW as usize + 3];
    stream.extend(qtx(&[ping("1", 1)]));
    let k = kinds(&quantix(&stream));
    assert_eq!(k.len(), 3, "{k:?}");
    assert_eq!(k[2], format!("ok ping@{}", SCAN_WINDOW + 3));
}

#[test]
fn encoders_refuse_oversize_and_empty_messages() {
    let big = AgentMessage::new(
        "1",
        FileWriteRequest {
            data: vec![0u8; 300].into(),
            ..Default::default()
        },
    );
    let mut out = BytesMut::new();
    assert!(matches!(
        QuantixEncoder::with_max(256).encode(&big, &mut out),
        Err(EncodeError::TooLarge { max: 256, .. })
    ));
    assert!(LegacyEncoder::with_max(256).encode(&big, &mut out).is_err());
    assert!(out.is_empty());
    assert!(matches!(
        QuantixEncoder::new().encode(&AgentMessage::default(), &mut out),
        Err(EncodeError::Serialize(_))
    ));
    let bytes = LegacyEncoder::new()
        .to_bytes(&ping("1", 1))
        .expect("encode");
    assert_eq!(&bytes[..4], &(bytes.len() as u32 - 4).to_be_bytes());
    let bytes = QuantixEncoder::new()
        .to_bytes(&ping("1", 1))
        .expect("encode");
    assert_eq!(&bytes[..4], b"QTX\x01");
}

#[test]
fn configured_maximum_is_enforced_while_decoding() {
    let big = AgentMessage::new(
        "1",
        FileReadResponse {
            data: vec![1u8; 300].into(),
            ..Default::default()
        },
    );
    let mut stream = qtx(&[big]);
    stream.extend(qtx(&[ping("2", 2)]));
    let mut d = QuantixDecoder::with_max(256);
    assert_eq!(d.max(), 256);
    let k = kinds(&decode_all(&mut d, &stream));
    assert_eq!(k[0], "oversize@0");
    assert!(k.last().is_some_and(|s| s.starts_with("ok ping@")), "{k:?}");
    assert_eq!(QuantixDecoder::with_max(0).max(), 1);
    assert_eq!(LegacyDecoder::with_max(u64::MAX).max(), u64::from(u32::MAX));
}

/// A `file_read_response` frame carrying `len` bytes of data, and that data.
fn file_chunk(len: usize) -> (AgentMessage, bytes::Bytes) {
    let data: bytes::Bytes = (0..len).map(|i| i as u8).collect::<Vec<u8>>().into();
    let msg = AgentMessage::new(
        "7",
        FileReadResponse {
            success: true,
            data: data.clone(),
            ..Default::default()
        },
    );
    (msg, data)
}

/// Where a decoded `file_read_response`'s data lives, and its contents.
fn file_data(frame: &Decoded<AgentMessage>) -> bytes::Bytes {
    match &frame.as_ref().expect("frame").message.payload {
        Some(Payload::FileReadResponse(r)) => r.data.clone(),
        other => panic!("expected a file_read_response, got {other:?}"),
    }
}

#[test]
fn large_payloads_share_the_frame_small_ones_are_copied() {
    for len in [10, SHARE_PAYLOAD_MIN - 64, SHARE_PAYLOAD_MIN, 64 * 1024] {
        let (msg, data) = file_chunk(len);
        let frame = bytes::Bytes::from(msg.encode_to_vec());
        let shared = decode_payload_bytes(&frame, 0, QUANTIX).expect("decodes");
        assert_eq!(shared, decode_payload(&frame, 0, QUANTIX).expect("decodes"));
        assert_eq!(shared, msg);
        let Some(Payload::FileReadResponse(r)) = &shared.payload else {
            panic!("{shared:?}");
        };
        assert_eq!(r.data, data);
        let inside = frame.as_ptr_range().contains(&r.data.as_ptr());
        assert_eq!(inside, frame.len() >= SHARE_PAYLOAD_MIN, "len {len}");
    }
}

#[test]
fn both_decoders_yield_large_chunks_intact_in_any_split() {
    let (msg, data) = file_chunk(64 * 1024);
    let stream = qtx(&[msg.clone(), ping("8", 8), msg.clone()]);
    let legacy_stream = legacy(&[msg.clone(), ping("8", 8), msg]);
    for (decoded, n) in [
        (
            decode_chunks(&mut QuantixDecoder::new(), stream.chunks(1000)),
            3,
        ),
        (
            decode_chunks(&mut LegacyDecoder::new(), legacy_stream.chunks(4096)),
            3,
        ),
    ] {
        assert_eq!(decoded.len(), n);
        assert_eq!(file_data(&decoded[0]), data);
        assert_eq!(file_data(&decoded[2]), data);
    }
}
