//! Unit and property tests for the fcexec codec.

use std::collections::BTreeMap;

use bytes::{BufMut, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::wire::codec::split_at_cuts;
use crate::wire::codec::{Decoded, Decoder, Direction, Encoder, decode_all, decode_chunks};
use crate::wire::error::WireError;

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

fn encode_all(msgs: &[FcexecMessage]) -> Vec<u8> {
    let mut e = FcexecEncoder::new();
    let mut out = BytesMut::new();
    for m in msgs {
        e.encode(m, &mut out).expect("encode");
    }
    out.to_vec()
}

fn decode(stream: &[u8]) -> Vec<Decoded<FcexecMessage>> {
    decode_all(&mut FcexecDecoder::new(None), stream)
}

fn one(payload: &[u8], dir: Option<Direction>) -> Result<FcexecMessage, WireError> {
    let got = decode_all(&mut FcexecDecoder::new(dir), &frame(payload));
    assert_eq!(got.len(), 1, "{got:?}");
    got.into_iter().next().expect("one item").map(|f| f.message)
}

fn sample_request() -> GuestRequest {
    GuestRequest {
        runtime: "python".into(),
        code: "print(42)\n".into(),
        code_archive: vec![0, 1, 2, 255],
        input: b"stdin".to_vec(),
        env: BTreeMap::from([("A".to_string(), "1".to_string())]),
        entrypoint: "main.py".into(),
        timeout_s: 30,
    }
}

#[test]
fn request_wire_shape_matches_go() {
    let mut out = BytesMut::new();
    FcexecEncoder::new()
        .encode_request(&sample_request(), &mut out)
        .expect("encode");
    let len = u32::from_be_bytes(out[..4].try_into().expect("4 bytes")) as usize;
    assert_eq!(len, out.len() - 4);
    let v: serde_json::Value = serde_json::from_slice(&out[4..]).expect("json");
    assert_eq!(
        v,
        serde_json::json!({
            "runtime": "python", "code": "print(42)\n", "code_archive": "AAEC/w==",
            "input": "c3RkaW4=", "env": {"A": "1"}, "entrypoint": "main.py", "timeout_s": 30
        })
    );
    assert_eq!(
        one(&out[4..], Some(Direction::ToGuest)),
        Ok(FcexecMessage::Request(sample_request()))
    );
}

#[test]
fn request_tolerates_go_nulls_missing_and_unknown_keys() {
    let got = one(
        br#"{"runtime":"node","code_archive":null,"env":null,"input":"","extra":[1,2],"code":null}"#,
        None,
    );
    assert_eq!(
        got,
        Ok(FcexecMessage::Request(GuestRequest {
            runtime: "node".into(),
            ..GuestRequest::default()
        }))
    );
    assert_eq!(
        one(b"{}", None),
        Ok(FcexecMessage::Request(GuestRequest::default()))
    );
}

#[test]
fn request_with_bad_fields_is_malformed() {
    for payload in [
        &br#"{"timeout_s":-1}"#[..],
        br#"{"code_archive":"not base64!"}"#,
        br#"{"env":{"A":1}}"#,
    ] {
        match one(payload, None) {
            Err(WireError::Malformed {
                format: "json",
                reason,
                ..
            }) => assert!(reason.starts_with("bad request"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn log_and_result() {
    assert_eq!(
        one(
            br#"{"type":"log","line":"building"}"#,
            Some(Direction::ToHost)
        ),
        Ok(FcexecMessage::Log {
            line: "building".into()
        })
    );
    let r = one(
        br#"{"type":"result","response":{"exit_code":3,"output":"42\n","error":"boom"}}"#,
        None,
    );
    assert_eq!(
        r,
        Ok(FcexecMessage::Result(GuestResponse {
            exit_code: 3,
            output: "42\n".into(),
            error: "boom".into(),
            log_lines: None,
        }))
    );
}

#[test]
fn log_lines_keeps_the_form_it_came_in() {
    let count = one(
        br#"{"type":"result","response":{"log_lines":5}}"#,
        Some(Direction::ToHost),
    );
    let Ok(FcexecMessage::Result(r)) = count else {
        panic!("{count:?}")
    };
    assert_eq!(r.log_lines, Some(LogLines::Count(5)));
    let m = FcexecMessage::Result(r);
    assert_eq!(m.to_json()["response"]["log_lines"], serde_json::json!(5));

    let list = one(
        br#"{"type":"result","response":{"log_lines":["a","b"]}}"#,
        None,
    );
    let Ok(FcexecMessage::Result(r)) = list else {
        panic!("{list:?}")
    };
    assert_eq!(
        r.log_lines,
        Some(LogLines::Lines(vec!["a".into(), "b".into()]))
    );
    assert_eq!(r.log_lines.as_ref().map(LogLines::len), Some(2));

    let absent = FcexecMessage::Result(GuestResponse::default());
    assert!(absent.to_json()["response"].get("log_lines").is_none());
    assert!(one(br#"{"type":"result","response":{"log_lines":-1}}"#, None).is_err());
    assert!(one(br#"{"type":"result","response":{"log_lines":"x"}}"#, None).is_err());
}

#[test]
fn protocol_errors_from_the_seed() {
    match one(br#"{"type":"result"}"#, None) {
        Err(WireError::Malformed {
            format: "json",
            reason,
            offset: 0,
            ..
        }) => assert_eq!(reason, "result without a response"),
        other => panic!("{other:?}"),
    }
    match one(br#"{"type":"result","response":null}"#, None) {
        Err(WireError::Malformed { reason, .. }) => assert_eq!(reason, "result without a response"),
        other => panic!("{other:?}"),
    }
    match one(br#"{"type":"progress","pct":5}"#, None) {
        Err(WireError::UnknownType { type_name, .. }) => assert_eq!(type_name, "progress"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        one(br#"{"type":"log"}"#, None),
        Err(WireError::Malformed { reason, .. }) if reason == "log without a line"
    ));
    assert!(matches!(
        one(br#"{"type":"log","line":7}"#, None),
        Err(WireError::Malformed { .. })
    ));
    assert!(matches!(
        one(br#"{"type":3}"#, None),
        Err(WireError::Malformed { reason, .. }) if reason.contains("\"type\" must be a string")
    ));
    assert!(matches!(
        one(b"[1,2]", None),
        Err(WireError::Malformed { reason, .. }) if reason.contains("an array")
    ));
}

#[test]
fn wrong_direction_says_which() {
    match one(br#"{"type":"log","line":"x"}"#, Some(Direction::ToGuest)) {
        Err(WireError::Malformed { reason, .. }) => {
            assert!(reason.starts_with("wrong direction"), "{reason}");
            assert!(
                reason.contains("\"log\" message travels guest → host"),
                "{reason}"
            );
            assert!(reason.contains("stream runs host → guest"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    match one(br#"{"runtime":"python"}"#, Some(Direction::ToHost)) {
        Err(WireError::Malformed { reason, .. }) => {
            assert!(reason.contains("a request"), "{reason}");
            assert!(reason.contains("stream runs guest → host"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_payload_carries_the_raw_bytes() {
    let payload = b"{\"type\":\"log\",\"line\":";
    match one(payload, None) {
        Err(WireError::Malformed {
            format: "json",
            bytes,
            ..
        }) => {
            assert_eq!(bytes.bytes(), payload);
            assert_eq!(bytes.total(), payload.len() as u64);
        }
        other => panic!("{other:?}"),
    }
    match one(b"{\"type\":\"log\",\"line\":\"\xff\"}", None) {
        Err(WireError::Malformed {
            format: "json",
            reason,
            ..
        }) => assert!(reason.starts_with("not UTF-8"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn protobuf_payload_is_a_framing_mismatch() {
    // AgentMessage { message_id = "ab", ping = { sequence = 1 } }: field 1 string, field 10 message.
    let pb = [0x0a, 0x02, b'a', b'b', 0x52, 0x02, 0x08, 0x01];
    match one(&pb, None) {
        Err(WireError::FramingMismatch {
            expected: "fcexec",
            found,
            ..
        }) => assert_eq!(found, "protobuf (quantix-legacy framing)"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn quantix_magic_is_named_and_ends_the_stream() {
    let mut stream = b"QTX\x01\x00\x00\x00\x02\x52\x00".to_vec();
    stream.extend(frame(br#"{"type":"log","line":"x"}"#));
    let mut d = FcexecDecoder::new(None);
    let got = decode_all(&mut d, &stream);
    assert_eq!(got.len(), 1, "{got:?}");
    match &got[0] {
        Err(WireError::FramingMismatch {
            offset: 0,
            expected: "fcexec",
            found,
            ..
        }) => assert!(found.contains("quantix"), "{found}"),
        other => panic!("{other:?}"),
    }
    assert!(d.is_failed());
    assert_eq!(d.offset(), stream.len() as u64);
}

#[test]
fn quantix_magic_is_named_even_with_a_huge_max() {
    let mut d = FcexecDecoder::with_max(None, u64::from(u32::MAX));
    let got = decode_all(&mut d, b"QTX\x01\x00\x00\x00\x02\x52\x00");
    assert!(matches!(&got[..], [Err(WireError::FramingMismatch { .. })]));
}

#[test]
fn zero_length_goes_on_and_oversize_stops() {
    let mut stream = vec![0, 0, 0, 0];
    stream.extend(frame(br#"{"type":"log","line":"a"}"#));
    stream.extend([0x7f, 0, 0, 0]);
    stream.extend(frame(br#"{"type":"log","line":"b"}"#));
    let mut d = FcexecDecoder::new(None);
    let got = decode_all(&mut d, &stream);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(matches!(
        got[0],
        Err(WireError::ZeroLength { offset: 0, .. })
    ));
    assert_eq!(
        got[1].as_ref().map(|f| (f.offset, f.wire_len)),
        Ok((4, 4 + 25))
    );
    assert!(matches!(
        got[2],
        Err(WireError::Oversize {
            offset: 33,
            len: 0x7f00_0000,
            ..
        })
    ));
    assert!(d.is_failed());
    assert_eq!(d.offset(), stream.len() as u64);
}

#[test]
fn oversize_claim_allocates_nothing() {
    let mut d = FcexecDecoder::with_max(None, 1024);
    let mut buf = BytesMut::from(&[0x00u8, 0xff, 0xff, 0xff, b'{'][..]);
    assert!(matches!(
        d.decode(&mut buf),
        Some(Err(WireError::Oversize { .. }))
    ));
    assert!(buf.capacity() < 1024);
}

#[test]
fn truncated_at_eof() {
    let f = frame(br#"{"type":"log","line":"abc"}"#);
    let got = decode(&f[..10]);
    assert!(matches!(
        &got[..],
        [Err(WireError::Truncated {
            offset: 0,
            available: 10,
            ..
        })]
    ));
}

#[test]
fn seed_flow_five_logs_then_a_result() {
    let mut msgs: Vec<FcexecMessage> = (0..5)
        .map(|i| FcexecMessage::Log {
            line: format!("line {i}"),
        })
        .collect();
    msgs.push(FcexecMessage::Result(GuestResponse {
        exit_code: 0,
        output: "ok".into(),
        error: String::new(),
        log_lines: Some(LogLines::Count(5)),
    }));
    let stream = encode_all(&msgs);
    let got: Vec<FcexecMessage> =
        decode_all(&mut FcexecDecoder::new(Some(Direction::ToHost)), &stream)
            .into_iter()
            .map(|r| r.expect("frame").message)
            .collect();
    assert_eq!(got, msgs);
}

#[test]
fn describe() {
    let req = FcexecMessage::Request(GuestRequest {
        runtime: "python".into(),
        entrypoint: "main.py".into(),
        code: "x".repeat(120),
        timeout_s: 30,
        ..GuestRequest::default()
    });
    assert_eq!(req.type_name(), "request");
    assert_eq!(
        req.summary(),
        "runtime=python entrypoint=main.py code=120B timeout=30s"
    );
    assert_eq!(req.to_json()["timeout_s"], serde_json::json!(30));
    assert_eq!(req.correlation_id(), None);
    let log = FcexecMessage::Log {
        line: "building…".into(),
    };
    assert_eq!(
        (log.type_name(), log.summary()),
        ("log".into(), "line=\"building…\"".into())
    );
    assert_eq!(
        log.to_json(),
        serde_json::json!({"type": "log", "line": "building…"})
    );
    let res = FcexecMessage::Result(GuestResponse {
        output: "o".repeat(42),
        ..GuestResponse::default()
    });
    assert_eq!(res.type_name(), "result");
    assert_eq!(res.summary(), "exit=0 output=42B error=\"\"");
    assert_eq!(res.to_json()["type"], serde_json::json!("result"));
    let odd = FcexecMessage::Request(GuestRequest {
        runtime: "two words".into(),
        ..GuestRequest::default()
    });
    assert!(
        odd.summary()
            .starts_with("runtime=\"two words\" entrypoint=\"\""),
        "{}",
        odd.summary()
    );
}

#[test]
fn encoder_refuses_oversize() {
    let mut out = BytesMut::new();
    let r = FcexecEncoder::with_max(10).encode_log("a long line", &mut out);
    assert!(r.is_err());
}

// ---------------------------------------------------------------------------------------------
// Properties

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![".{0,20}", "[a-z ]{0,10}"]
}

fn arb_request() -> impl Strategy<Value = GuestRequest> {
    (
        arb_string(),
        arb_string(),
        proptest::collection::vec(any::<u8>(), 0..20),
        proptest::collection::vec(any::<u8>(), 0..20),
        proptest::collection::btree_map(arb_string(), arb_string(), 0..3),
        arb_string(),
        any::<u64>(),
    )
        .prop_map(
            |(runtime, code, code_archive, input, env, entrypoint, timeout_s)| GuestRequest {
                runtime,
                code,
                code_archive,
                input,
                env,
                entrypoint,
                timeout_s,
            },
        )
}

fn arb_response() -> impl Strategy<Value = GuestResponse> {
    (
        any::<i32>(),
        arb_string(),
        arb_string(),
        prop_oneof![
            Just(None),
            any::<u64>().prop_map(|n| Some(LogLines::Count(n))),
            proptest::collection::vec(arb_string(), 0..4).prop_map(|l| Some(LogLines::Lines(l))),
        ],
    )
        .prop_map(|(exit_code, output, error, log_lines)| GuestResponse {
            exit_code,
            output,
            error,
            log_lines,
        })
}

fn arb_message() -> impl Strategy<Value = FcexecMessage> {
    prop_oneof![
        arb_request().prop_map(FcexecMessage::Request),
        arb_string().prop_map(|line| FcexecMessage::Log { line }),
        arb_response().prop_map(FcexecMessage::Result),
    ]
}

/// A stream piece: a valid frame, a frame with a bad payload, a zero length, or raw garbage.
fn arb_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => arb_message().prop_map(|m| encode_all(&[m])),
        1 => proptest::collection::vec(any::<u8>(), 1..12).prop_map(|p| frame(&p)),
        1 => Just(vec![0, 0, 0, 0]),
        1 => Just(frame(br#"{"type":"nope"}"#)),
        1 => proptest::collection::vec(any::<u8>(), 0..12),
    ]
}

proptest! {
    #[test]
    fn round_trip(msgs in proptest::collection::vec(arb_message(), 0..6)) {
        let stream = encode_all(&msgs);
        let got: Vec<FcexecMessage> = decode(&stream)
            .into_iter()
            .map(|r| r.map(|f| f.message))
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn split_invariance(
        pieces in proptest::collection::vec(arb_piece(), 0..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let stream: Vec<u8> = pieces.concat();
        let whole = decode(&stream);
        let chunked = decode_chunks(&mut FcexecDecoder::new(None), split_at_cuts(&stream, &cuts));
        prop_assert_eq!(&whole, &chunked);
        let bytewise = decode_chunks(&mut FcexecDecoder::new(None), stream.chunks(1));
        prop_assert_eq!(&whole, &bytewise);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        data in proptest::collection::vec(any::<u8>(), 0..600),
        chunk in 1usize..64,
    ) {
        const MAX: usize = 64;
        let mut d = FcexecDecoder::with_max(None, MAX as u64);
        let mut buf = BytesMut::new();
        for c in data.chunks(chunk) {
            buf.put_slice(c);
            while d.decode(&mut buf).is_some() {}
            prop_assert!(buf.len() < 4 + MAX, "buffer holds {} bytes", buf.len());
        }
        while d.decode_eof(&mut buf).is_some() {}
        prop_assert!(buf.is_empty());
        prop_assert_eq!(d.offset(), data.len() as u64);
    }

    /// With no magic there is no resync: after garbage the decoder either keeps decoding frame
    /// by frame or fails the stream cleanly; once failed it yields nothing more and consumes all.
    #[test]
    fn after_garbage_the_decoder_stops_cleanly(
        garbage in proptest::collection::vec(any::<u8>(), 1..16),
        msgs in proptest::collection::vec(arb_message(), 0..4),
    ) {
        let mut stream = garbage.clone();
        stream.extend(encode_all(&msgs));
        let mut d = FcexecDecoder::new(None);
        let mut buf = BytesMut::from(&stream[..]);
        let mut failed_at = None;
        let mut items = 0usize;
        while let Some(item) = d.decode(&mut buf) {
            items += 1;
            prop_assert!(failed_at.is_none(), "an item after the decoder failed: {:?}", item);
            if d.is_failed() {
                failed_at = Some(items);
                prop_assert!(item.is_err());
            }
        }
        let mut at_eof = Vec::new();
        while let Some(item) = d.decode_eof(&mut buf) {
            at_eof.push(item);
        }
        if failed_at.is_some() {
            prop_assert!(at_eof.is_empty(), "{:?}", at_eof);
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(d.offset(), stream.len() as u64);
    }
}
