//! Unit and property tests for the qga codec and the sync tracker.

use bytes::{BufMut, BytesMut};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::wire::codec::split_at_cuts;
use crate::wire::codec::{Decoded, Decoder, Encoder, Frame, decode_all, decode_chunks};
use crate::wire::error::WireError;

fn decode(stream: &[u8]) -> Vec<Decoded<QgaMessage>> {
    decode_all(&mut QgaDecoder::new(), stream)
}

fn messages(stream: &[u8]) -> Vec<QgaMessage> {
    decode(stream)
        .into_iter()
        .map(|r| r.expect("frame").message)
        .collect()
}

fn encode(msgs: &[QgaMessage]) -> Vec<u8> {
    let mut e = QgaEncoder::new();
    let mut out = BytesMut::new();
    for m in msgs {
        e.encode(m, &mut out).expect("encode");
    }
    out.to_vec()
}

// --- the exact bytes of VMLAB.md (qemu-ga 7.2.22) ---------------------------------------------

const SYNC_REPLY: &[u8] = b"\xff{\"return\": 1234}\n";
const STRAY_FF_REPLY: &[u8] =
    b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}\n";

#[test]
fn decodes_the_sync_delimited_reply() {
    let got = decode(SYNC_REPLY);
    assert_eq!(
        got,
        vec![
            Ok(Frame {
                offset: 0,
                wire_len: 1,
                message: QgaMessage::Delimiter
            }),
            Ok(Frame {
                offset: 1,
                wire_len: 16,
                message: QgaMessage::ret(json!(1234))
            }),
        ]
    );
}

#[test]
fn encodes_qemu_ga_replies_byte_for_byte() {
    let mut e = QgaEncoder::new();
    let mut out = BytesMut::new();
    e.sync_delimited_reply(1234, &mut out).expect("encode");
    assert_eq!(&out[..], SYNC_REPLY);

    let mut out = BytesMut::new();
    e.encode(&QgaMessage::stray_delimiter_error(), &mut out)
        .expect("encode");
    assert_eq!(&out[..], STRAY_FF_REPLY);

    let mut out = BytesMut::new();
    e.reply_return(&json!({}), &mut out).expect("encode");
    e.reply_return(&json!(99), &mut out).expect("encode");
    assert_eq!(&out[..], b"{\"return\": {}}\n{\"return\": 99}\n");

    let mut out = BytesMut::new();
    e.encode(&QgaMessage::command_not_found("guest-nope"), &mut out)
        .expect("encode");
    assert_eq!(
        &out[..],
        &b"{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command guest-nope has not been found\"}}\n"[..]
    );

    let mut out = BytesMut::new();
    e.reply_return(&json!({"a": [1, 2], "b": null}), &mut out)
        .expect("encode");
    assert_eq!(&out[..], b"{\"return\": {\"a\": [1, 2], \"b\": null}}\n");
}

#[test]
fn encodes_commands_compactly() {
    let mut e = QgaEncoder::new();
    let mut out = BytesMut::new();
    e.sync_delimited(1234, &mut out).expect("encode");
    assert_eq!(
        &out[..],
        b"{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":1234}}"
    );
    let mut out = BytesMut::new();
    e.delimiter(&mut out);
    e.command("guest-ping", None, Some(&json!("req-1")), &mut out)
        .expect("encode");
    assert_eq!(
        &out[..],
        b"\xff{\"execute\":\"guest-ping\",\"id\":\"req-1\"}"
    );
}

#[test]
fn escapes_like_qemu() {
    let bytes = encoder::to_qemu_json(&json!("é😀\u{1}\u{7f}\"\\\n/")).expect("json");
    assert_eq!(
        String::from_utf8(bytes).expect("ascii"),
        r#""\u00E9\uD83D\uDE00\u0001\u007F\"\\\n/""#
    );
    let back: Value =
        serde_json::from_str(r#""\u00E9\uD83D\uDE00\u0001\u007F\"\\\n/""#).expect("parses back");
    assert_eq!(back, json!("é😀\u{1}\u{7f}\"\\\n/"));
}

#[test]
fn decodes_the_stray_ff_error_and_syncs_after_it() {
    let mut stream = STRAY_FF_REPLY.to_vec();
    stream.extend_from_slice(SYNC_REPLY);
    let msgs = messages(&stream);
    assert_eq!(msgs[0], QgaMessage::stray_delimiter_error());
    let mut w = SyncWaiter::new(1234);
    let steps: Vec<SyncStep> = msgs.iter().map(|m| w.feed(m)).collect();
    assert_eq!(
        steps,
        vec![
            SyncStep::Skip,
            SyncStep::Skip,
            SyncStep::Synced { delimited: true }
        ]
    );
    assert_eq!(w.feed(&QgaMessage::ret(json!({}))), SyncStep::Pass);
    assert_eq!(w.skipped(), 1);
}

// --- sync tracker ----------------------------------------------------------------------------

#[test]
fn sync_skips_stray_replies_until_delimiter_and_id() {
    let mut w = SyncWaiter::new(7);
    assert_eq!(w.request(), QgaMessage::sync_delimited(7));
    let stray = [
        QgaMessage::ret(json!({"pid": 3})),
        QgaMessage::ret(json!(6)), // an older sync
        QgaMessage::error("GenericError", "x"),
        QgaMessage::Delimiter,
        QgaMessage::ret(json!(6)), // after a 0xFF but the wrong id
    ];
    for m in &stray {
        assert_eq!(w.feed(m), SyncStep::Skip, "{m:?}");
    }
    assert!(!w.is_synced());
    assert_eq!(w.feed(&QgaMessage::Delimiter), SyncStep::Skip);
    assert_eq!(
        w.feed(&QgaMessage::ret(json!(7))),
        SyncStep::Synced { delimited: true }
    );
    assert_eq!(w.delimited(), Some(true));
    assert_eq!(w.skipped(), 4);
}

#[test]
fn sync_accepts_an_undelimited_match_but_flags_it() {
    let mut w = SyncWaiter::new(99);
    assert_eq!(w.feed(&QgaMessage::Delimiter), SyncStep::Skip);
    assert_eq!(w.feed(&QgaMessage::ret(json!("x"))), SyncStep::Skip);
    assert_eq!(
        w.feed(&QgaMessage::ret(json!(99))),
        SyncStep::Synced { delimited: false }
    );
    let mut w = SyncWaiter::new(-5);
    let err: Decoded<QgaMessage> = Err(WireError::ZeroLength {
        offset: 0,
        bytes: Default::default(),
    });
    assert_eq!(w.feed(&QgaMessage::Delimiter), SyncStep::Skip);
    assert_eq!(w.feed_decoded(&err), SyncStep::Skip);
    let reply = Ok(Frame {
        offset: 0,
        wire_len: 1,
        message: QgaMessage::ret(json!(-5)),
    });
    assert_eq!(
        w.feed_decoded(&reply),
        SyncStep::Synced { delimited: false }
    );
    assert_eq!(w.feed_decoded(&err), SyncStep::Pass);
}

// --- decoding rules ---------------------------------------------------------------------------

#[test]
fn classifies_objects() {
    let msgs = messages(
        br#"{"execute": "guest-exec", "arguments": {"path": "/bin/true"}, "id": 5}
           {"return": {"pid": 42}, "id": "a"} {"error": {"class": "CommandNotFound", "desc": "no"}}"#,
    );
    assert_eq!(
        msgs,
        vec![
            QgaMessage::Command {
                execute: "guest-exec".into(),
                arguments: Some(json!({"path": "/bin/true"})),
                id: Some(json!(5)),
            },
            QgaMessage::Return {
                value: json!({"pid": 42}),
                id: Some(json!("a")),
            },
            QgaMessage::error("CommandNotFound", "no"),
        ]
    );
}

#[test]
fn unknown_objects_are_named_by_their_first_key() {
    let got = decode(b"{\"zeta\": 1, \"alpha\": 2}{}{\"return\": 1}");
    assert!(
        matches!(&got[0], Err(WireError::UnknownType { type_name, offset: 0, .. }) if type_name == "zeta")
    );
    assert!(
        matches!(&got[1], Err(WireError::UnknownType { type_name, offset: 23, .. }) if type_name == "{}")
    );
    assert_eq!(
        got[2].as_ref().map(|f| &f.message),
        Ok(&QgaMessage::ret(json!(1)))
    );
}

#[test]
fn bad_shapes_are_malformed() {
    for bad in [
        &br#"{"execute": 5}"#[..],
        br#"{"error": "boom"}"#,
        br#"{"error": {"class": "X"}}"#,
    ] {
        assert!(
            matches!(
                &decode(bad)[..],
                [Err(WireError::Malformed { format: "json", .. })]
            ),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn invalid_json_with_a_known_end_goes_on_right_after_it() {
    let got = decode(b"{\"a\" 1}{\"return\": 2}\n");
    assert!(matches!(
        &got[0],
        Err(WireError::Malformed {
            offset: 0,
            format: "json",
            ..
        })
    ));
    assert_eq!(
        got[1].as_ref().map(|f| (f.offset, &f.message)),
        Ok((7, &QgaMessage::ret(json!(2))))
    );
    assert_eq!(got.len(), 2);
}

#[test]
fn whitespace_and_pretty_printing() {
    let msgs = messages(b" \r\n\t{\n  \"return\": {\n    \"a\": \"}{\\\"\"\n  }\n}\n\n");
    assert_eq!(msgs, vec![QgaMessage::ret(json!({"a": "}{\""}))]);
}

#[test]
fn junk_is_one_garbage_report_up_to_the_newline() {
    let got = decode(b"hello\n{\"return\": 1}");
    assert_eq!(got.len(), 2);
    match &got[0] {
        Err(WireError::Garbage {
            offset: 0,
            skipped: 5,
            reason,
            bytes,
        }) => {
            assert!(reason.contains("cannot start a JSON object"), "{reason}");
            assert_eq!(bytes.bytes(), b"hello");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(got[1].as_ref().map(|f| f.offset), Ok(6));
    // Up to a 0xFF too, which is then a delimiter.
    let got = decode(b"[1]\xff{\"return\": 1}");
    assert!(matches!(
        &got[0],
        Err(WireError::Garbage {
            offset: 0,
            skipped: 3,
            ..
        })
    ));
    assert_eq!(
        got[1].as_ref().map(|f| &f.message),
        Ok(&QgaMessage::Delimiter)
    );
    // And at the end of the stream.
    assert!(matches!(
        &decode(b"abc")[..],
        [Err(WireError::Garbage { skipped: 3, reason, .. })] if reason.contains("stream ended")
    ));
}

#[test]
fn long_junk_is_reported_every_64_kib() {
    let mut stream = vec![b'x'; 70 * 1024];
    stream.extend_from_slice(b"\n{\"return\": 1}");
    let got = decode(&stream);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        matches!(&got[0], Err(WireError::Garbage { offset: 0, skipped: 65536, reason, .. }) if reason.contains("64 KiB"))
    );
    assert!(matches!(
        &got[1],
        Err(WireError::Garbage {
            offset: 65536,
            skipped: 6144,
            ..
        })
    ));
    assert!(got[2].is_ok());
}

#[test]
fn length_prefixed_streams_are_named_once() {
    // quantix: QTX1 magic, length, protobuf; twice.
    let mut stream = b"QTX\x01\x00\x00\x00\x02\x52\x00".to_vec();
    stream.extend_from_slice(b"\x00\x00\x00\x02\x52\x00QTX\x01\x00\x00\x00\x02\x52\x00");
    let got = decode(&stream);
    match &got[0] {
        Err(WireError::FramingMismatch {
            offset: 0,
            expected: "qga",
            found,
            bytes,
        }) => {
            assert!(found.contains("quantix"), "{found}");
            assert_eq!(bytes.bytes(), b"QTX\x01");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        got[1..]
            .iter()
            .all(|r| matches!(r, Err(WireError::Garbage { .. }))),
        "{got:?}"
    );
    let skipped: u64 = got[1..]
        .iter()
        .map(|r| match r {
            Err(WireError::Garbage { skipped, .. }) => *skipped,
            _ => 0,
        })
        .sum();
    assert_eq!(skipped, stream.len() as u64);

    // fcexec: u32 BE length 42 then JSON.
    let mut fc = vec![0, 0, 0, 0x2a];
    fc.extend_from_slice(br#"{"type":"log","line":"hello from fcexec"}"#);
    match &decode(&fc)[0] {
        Err(WireError::FramingMismatch { found, bytes, .. }) => {
            assert!(found.contains("u32 BE length 42"), "{found}");
            assert!(found.contains("fcexec"), "{found}");
            assert_eq!(bytes.bytes(), &[0, 0, 0, 0x2a, b'{']);
        }
        other => panic!("{other:?}"),
    }

    // An unstripped hybrid-vsock reply, then the real qga stream.
    let got = decode(b"OK 1073741824\n{\"return\": {}}\n");
    assert!(
        matches!(&got[0], Err(WireError::FramingMismatch { found, .. }) if found.contains("OK reply"))
    );
    assert!(matches!(
        &got[1],
        Err(WireError::Garbage {
            offset: 0,
            skipped: 13,
            ..
        })
    ));
    assert!(got[2].is_ok());
    let got = decode(b"connect 52\n");
    assert!(
        matches!(&got[0], Err(WireError::FramingMismatch { found, .. }) if found.contains("CONNECT"))
    );
}

#[test]
fn a_mismatch_is_named_again_after_a_good_object() {
    let got = decode(b"QTX\x01\n{\"return\": 1}\nQTX\x01\nQTX\x01");
    let kinds: Vec<&str> = got
        .iter()
        .map(|r| match r {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "framing_mismatch",
            "garbage",
            "ok",
            "framing_mismatch",
            "garbage",
            "garbage"
        ]
    );
}

#[test]
fn oversize_object_resyncs_at_the_next_newline() {
    let mut d = QgaDecoder::with_max(16);
    let got = decode_all(
        &mut d,
        b"{\"return\": \"0123456789abcdef\"}\n{\"return\": 1}\n",
    );
    assert_eq!(got.len(), 3, "{got:?}");
    match &got[0] {
        Err(WireError::Oversize {
            offset: 0,
            len: 17,
            max: 16,
            bytes,
            ..
        }) => assert_eq!(bytes.bytes(), b"{\"return\": \"0123"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &got[1],
        Err(WireError::Garbage {
            offset: 16,
            skipped: 14,
            ..
        })
    ));
    assert_eq!(
        got[2].as_ref().map(|f| (f.offset, &f.message)),
        Ok((31, &QgaMessage::ret(json!(1))))
    );
}

#[test]
fn nesting_limit_matches_serde_json() {
    let ok = format!(
        "{{\"return\": {}{}}}",
        "[".repeat(MAX_DEPTH as usize - 2),
        "]".repeat(MAX_DEPTH as usize - 2)
    );
    assert!(matches!(&decode(ok.as_bytes())[..], [Ok(_)]));
    let deep = format!(
        "{{\"return\": {}{}}}\n{{\"return\": 1}}",
        "[".repeat(MAX_DEPTH as usize - 1),
        "]".repeat(MAX_DEPTH as usize - 1)
    );
    let got = decode(deep.as_bytes());
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        matches!(&got[0], Err(WireError::Malformed { offset: 0, reason, .. }) if reason.contains("nested 128"))
    );
    assert!(matches!(&got[1], Err(WireError::Garbage { .. })));
    assert!(got[2].is_ok());
}

#[test]
fn a_delimiter_inside_an_object_cuts_it() {
    let got = decode(b"{\"return\": \"ab\xffcd\"}{\"return\": 1}");
    // The cut object, the delimiter, then `cd"}` is junk up to... the end: no newline.
    assert!(matches!(
        &got[0],
        Err(WireError::Malformed { offset: 0, reason, bytes, .. })
            if reason.contains("0xFF") && bytes.bytes() == b"{\"return\": \"ab"
    ));
    assert_eq!(
        got[1].as_ref().map(|f| (f.offset, &f.message)),
        Ok((14, &QgaMessage::Delimiter))
    );
    assert!(matches!(
        &got[2],
        Err(WireError::Garbage {
            offset: 15,
            skipped: 17,
            ..
        })
    ));
    // The usual case: a half-written object, then the sync reply.
    let mut stream = b"{\"return\": {\"pid\"".to_vec();
    stream.extend_from_slice(SYNC_REPLY);
    let got = decode(&stream);
    assert!(matches!(&got[0], Err(WireError::Malformed { .. })));
    let mut w = SyncWaiter::new(1234);
    let steps: Vec<SyncStep> = got.iter().map(|r| w.feed_decoded(r)).collect();
    assert_eq!(steps.last(), Some(&SyncStep::Synced { delimited: true }));
}

#[test]
fn truncated_object_at_eof() {
    let got = decode(b"{\"return\": {\"a\": ");
    assert!(matches!(
        &got[..],
        [Err(WireError::Truncated {
            offset: 0,
            available: 17,
            ..
        })]
    ));
}

/// Feeds one `size`-byte object one byte at a time: every byte is examined exactly once and the
/// object is parsed once.
fn feed_bytewise(size: usize) {
    let mut json = b"{\"return\": \"".to_vec();
    json.resize(size - 2, b'x');
    json.extend_from_slice(b"\"}");
    let mut d = QgaDecoder::with_max(size as u64);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in &json {
        buf.put_u8(*b);
        if let Some(item) = d.decode(&mut buf) {
            got.push(item);
        }
    }
    assert_eq!(d.examined, json.len() as u64);
    assert_eq!(got.len(), 1);
    assert!(matches!(&got[0], Ok(f) if f.wire_len == json.len() as u64));
}

#[test]
fn scanning_is_linear_and_parses_once() {
    feed_bytewise(2 * 1024 * 1024);
}

/// The full 16 MiB case (≈ 15 s in a debug build): `cargo test --lib -- --ignored`.
#[test]
#[ignore]
fn scanning_16_mib_one_byte_at_a_time() {
    feed_bytewise(16 * 1024 * 1024);
}

#[test]
fn describe() {
    let c = QgaMessage::Command {
        execute: "guest-sync-delimited".into(),
        arguments: Some(json!({"id": 1234})),
        id: Some(json!("r1")),
    };
    assert_eq!(c.type_name(), "guest-sync-delimited");
    assert_eq!(c.summary(), "guest-sync-delimited {\"id\":1234} id=\"r1\"");
    assert_eq!(
        c.to_json(),
        json!({"execute": "guest-sync-delimited", "arguments": {"id": 1234}, "id": "r1"})
    );
    assert_eq!(c.correlation_id(), Some("r1".into()));
    let r = QgaMessage::Return {
        value: json!(1234),
        id: Some(json!(7)),
    };
    assert_eq!(
        (r.type_name(), r.summary()),
        ("return".into(), "return 1234 id=7".into())
    );
    assert_eq!(r.correlation_id(), Some("7".into()));
    assert_eq!(r.to_json(), json!({"return": 1234, "id": 7}));
    let e = QgaMessage::error("GenericError", "bad\nthing");
    assert_eq!(
        (e.type_name(), e.summary()),
        ("error".into(), "GenericError: bad\\nthing".into())
    );
    assert_eq!(
        e.to_json(),
        json!({"error": {"class": "GenericError", "desc": "bad\nthing"}})
    );
    assert_eq!(e.correlation_id(), None);
    let d = QgaMessage::Delimiter;
    assert_eq!(
        (d.type_name(), d.summary()),
        ("delimiter".into(), "0xff".into())
    );
}

#[test]
fn encoder_refuses_oversize() {
    let mut out = BytesMut::new();
    let r = QgaEncoder::with_max(8).encode(&QgaMessage::ping(), &mut out);
    assert!(r.is_err());
    assert!(out.is_empty());
}

// --- properties -------------------------------------------------------------------------------

fn arb_value() -> impl Strategy<Value = Value> + Clone {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_message() -> impl Strategy<Value = QgaMessage> {
    let id = proptest::option::of(arb_value());
    prop_oneof![
        (".{0,16}", proptest::option::of(arb_value()), id.clone()).prop_map(
            |(execute, arguments, id)| QgaMessage::Command {
                execute,
                arguments,
                id
            }
        ),
        (arb_value(), id.clone()).prop_map(|(value, id)| QgaMessage::Return { value, id }),
        (".{0,12}", ".{0,24}", id).prop_map(|(class, desc, id)| QgaMessage::Error {
            class,
            desc,
            id
        }),
        Just(QgaMessage::Delimiter),
    ]
}

/// A stream piece: a message, white space, or something nasty.
fn arb_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => arb_message().prop_map(|m| encode(&[m])),
        1 => prop_oneof![Just(b" ".to_vec()), Just(b"\n".to_vec()), Just(b"\r\n\t".to_vec())],
        1 => prop_oneof![
            Just(b"\xff".to_vec()),
            Just(b"{".to_vec()),
            Just(b"}".to_vec()),
            Just(b"\"".to_vec()),
            Just(b"\\".to_vec()),
            Just(b"[[[[".to_vec()),
            Just(b"QTX\x01".to_vec()),
            Just(vec![0, 0, 0, 42]),
            Just(b"OK 1024\n".to_vec()),
            Just(b"{\"a\" 1}".to_vec()),
        ],
        1 => proptest::collection::vec(any::<u8>(), 0..12),
    ]
}

proptest! {
    #[test]
    fn round_trip(msgs in proptest::collection::vec(arb_message(), 0..6)) {
        let stream = encode(&msgs);
        let got: Vec<QgaMessage> = decode(&stream)
            .into_iter()
            .map(|r| r.map(|f| f.message))
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn split_invariance(
        pieces in proptest::collection::vec(arb_piece(), 0..10),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
        max in prop_oneof![Just(24u64), Just(64), Just(16 * 1024 * 1024)],
    ) {
        let stream: Vec<u8> = pieces.concat();
        let whole = decode_all(&mut QgaDecoder::with_max(max), &stream);
        let chunked = decode_chunks(&mut QgaDecoder::with_max(max), split_at_cuts(&stream, &cuts));
        prop_assert_eq!(&whole, &chunked);
        let bytewise = decode_chunks(&mut QgaDecoder::with_max(max), stream.chunks(1));
        prop_assert_eq!(&whole, &bytewise);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        data in proptest::collection::vec(any::<u8>(), 0..600),
        chunk in 1usize..64,
    ) {
        const MAX: usize = 48;
        let mut d = QgaDecoder::with_max(MAX as u64);
        let mut buf = BytesMut::new();
        let mut fed = 0u64;
        for c in data.chunks(chunk) {
            buf.put_slice(c);
            fed += c.len() as u64;
            while d.decode(&mut buf).is_some() {}
            prop_assert!(buf.len() <= MAX, "buffer holds {} bytes", buf.len());
            prop_assert_eq!(d.offset() + buf.len() as u64, fed);
        }
        while d.decode_eof(&mut buf).is_some() {}
        prop_assert!(buf.is_empty());
        prop_assert_eq!(d.offset(), data.len() as u64);
    }

    #[test]
    fn resyncs_after_a_delimiter(
        garbage in proptest::collection::vec(any::<u8>(), 0..40),
        msg in arb_message(),
    ) {
        let mut stream = garbage;
        stream.push(DELIMITER);
        stream.extend(encode(std::slice::from_ref(&msg)));
        let got = decode(&stream);
        let n = got.len();
        prop_assert!(n >= 2);
        prop_assert_eq!(got[n - 2].as_ref().map(|f| &f.message), Ok(&QgaMessage::Delimiter));
        prop_assert_eq!(got[n - 1].as_ref().map(|f| &f.message), Ok(&msg));
    }

    #[test]
    fn resyncs_after_a_newline(
        garbage in proptest::collection::vec(any::<u8>().prop_filter("no {", |b| *b != b'{'), 0..40),
        msg in arb_message(),
    ) {
        let mut stream = garbage;
        stream.push(b'\n');
        stream.extend(encode(std::slice::from_ref(&msg)));
        let got = decode(&stream);
        prop_assert_eq!(got.last().and_then(|r| r.as_ref().ok()).map(|f| &f.message), Some(&msg));
    }
}

#[test]
fn replies_follow_qemus_qdict_order_and_g17_doubles() {
    let mut e = QgaEncoder::new();
    let mut out = BytesMut::new();
    e.encode(
        &QgaMessage::Error {
            class: "CommandNotFound".into(),
            desc: "The command nope has not been found".into(),
            id: Some(json!(1)),
        },
        &mut out,
    )
    .expect("encode");
    e.encode(
        &QgaMessage::Return {
            value: json!({"exited": true, "out-data": "aGkK", "exitcode": 0, "out-truncated": false}),
            id: Some(json!({"b": 0.1, "a": 1500.0})),
        },
        &mut out,
    )
    .expect("encode");
    // Measured on qemu-ga 7.2.22.
    assert_eq!(
        String::from_utf8_lossy(&out),
        "{\"id\": 1, \"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command nope has not been found\"}}\n\
         {\"return\": {\"exitcode\": 0, \"out-data\": \"aGkK\", \"out-truncated\": false, \"exited\": true}, \
         \"id\": {\"a\": 1500, \"b\": 0.10000000000000001}}\n"
    );
}
