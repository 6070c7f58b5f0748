//! `malform` for every variant × protocol, checked against guestwire's own decoders: each
//! rewrite is rejected with the matching typed error kind, and each variant with no meaning for a
//! protocol is a typed refusal.

use bytes::BytesMut;

use super::kind::MalformedVariant as V;
use super::malform::*;
use crate::wire::WireError;
use crate::wire::codec::{Decoded, Describe, Direction, Encoder, decode_all};
use crate::wire::fcexec::{FcexecDecoder, FcexecEncoder, GuestRequest};
use crate::wire::http::{HttpDecoder, HttpEncoder, HttpKind, HttpMessage};
use crate::wire::hybrid::{
    ConnectOutcome, ConnectParser, Flavour, HandshakeDecoder, RejectReason, connect_line,
};
use crate::wire::protocol::Protocol;
use crate::wire::qga::{QgaDecoder, QgaEncoder};
use crate::wire::quantix::{
    AgentMessage, LegacyDecoder, LegacyEncoder, PingRequest, QuantixDecoder, QuantixEncoder,
};

fn ping() -> AgentMessage {
    AgentMessage::new("7", PingRequest { sequence: 3 })
}

fn sample(p: &Protocol) -> Vec<u8> {
    let mut out = BytesMut::new();
    match p {
        Protocol::Quantix => QuantixEncoder::new()
            .encode(&ping(), &mut out)
            .expect("qtx"),
        Protocol::QuantixLegacy => LegacyEncoder::new()
            .encode(&ping(), &mut out)
            .expect("legacy"),
        Protocol::Fcexec => FcexecEncoder::new()
            .encode_request(
                &GuestRequest {
                    runtime: "python".into(),
                    code: "print(1)".into(),
                    ..Default::default()
                },
                &mut out,
            )
            .expect("fcexec"),
        Protocol::Qga => QgaEncoder::new()
            .command("guest-ping", None, None, &mut out)
            .expect("qga"),
        _ => HttpEncoder::new()
            .encode(
                &HttpMessage::request("PUT", "/api/v1/vm.boot", &b"{\"a\":1}"[..]),
                &mut out,
            )
            .expect("http"),
    }
    out.to_vec()
}

/// Every item the protocol's decoder yields for `bytes`, as kinds (`ok:<type>` for frames).
fn decode(p: &Protocol, bytes: &[u8]) -> Vec<String> {
    fn names<M: Describe>(items: Vec<Decoded<M>>) -> Vec<String> {
        items
            .into_iter()
            .map(|i| match i {
                Ok(f) => format!("ok:{}", f.message.type_name()),
                Err(WireError::Malformed { format, .. }) => format!("malformed:{format}"),
                Err(e) => e.kind().to_string(),
            })
            .collect()
    }
    match p {
        Protocol::Quantix => names(decode_all(&mut QuantixDecoder::new(), bytes)),
        Protocol::QuantixLegacy => names(decode_all(&mut LegacyDecoder::new(), bytes)),
        Protocol::Fcexec => names(decode_all(&mut FcexecDecoder::new(None), bytes)),
        Protocol::Qga => names(decode_all(&mut QgaDecoder::new(), bytes)),
        _ => names(decode_all(&mut HttpDecoder::new(HttpKind::Request), bytes)),
    }
}

const PROTOCOLS: [Protocol; 5] = [
    Protocol::Quantix,
    Protocol::QuantixLegacy,
    Protocol::Fcexec,
    Protocol::Qga,
    Protocol::ChApi,
];

/// The decoder's verdict for each variant that applies, per protocol (`None`: refused).
fn expected(p: &Protocol, v: V) -> Option<&'static [&'static str]> {
    use Protocol as P;
    Some(match (p, v) {
        (P::Quantix, V::BadMagic) => &["garbage"],
        (P::Quantix, V::OversizeLength) => &["oversize", "garbage"],
        (P::Quantix, V::ZeroLength) => &["zero_length", "garbage"],
        (P::Quantix, V::Garbage) => &["garbage", "ok:ping"],
        (P::QuantixLegacy | P::Fcexec, V::BadMagic) => &["framing_mismatch"],
        (P::QuantixLegacy | P::Fcexec, V::OversizeLength) => &["oversize"],
        (P::QuantixLegacy | P::Fcexec, V::ZeroLength) => &["zero_length"],
        // No magic to resynchronise on: the garbage is read as a length, over any maximum.
        (P::QuantixLegacy | P::Fcexec, V::Garbage) => &["oversize"],
        (P::Quantix | P::QuantixLegacy, V::BadProtobuf) => &["malformed:protobuf"],
        (P::Fcexec | P::Qga, V::BadJson) => &["malformed:json"],
        (P::Quantix | P::QuantixLegacy | P::Fcexec | P::Qga, V::UnknownType) => &["unknown_type"],
        (P::Qga, V::OversizeLength) => &["oversize", "garbage"],
        (P::Qga, V::Garbage) => &["garbage"],
        (P::ChApi, V::OversizeLength) => &["oversize"],
        (P::ChApi, V::Garbage) => &["framing_mismatch"],
        (_, V::Truncated) => &["truncated"],
        _ => return None,
    })
}

#[test]
fn every_variant_times_protocol_is_rejected_with_its_kind() {
    for p in &PROTOCOLS {
        let frame = sample(p);
        assert_eq!(decode(p, &frame).len(), 1, "{p} sample decodes");
        assert!(decode(p, &frame)[0].starts_with("ok:"), "{p}");
        for v in V::ALL {
            let got = malform_writes(v, p, &frame);
            match (expected(p, v), got) {
                (Some(kinds), Ok(m)) => {
                    assert_eq!(decode(p, &m.concat()), kinds, "{p} {v}");
                    assert_eq!(m.close, v == V::Truncated, "{p} {v}");
                    assert_eq!(malform(v, p, &frame).expect("same"), m.concat());
                }
                (None, Err(e)) => {
                    assert_eq!(e.variant, v.name());
                    assert_eq!(e.protocol, p.to_string());
                    assert!(
                        e.to_string()
                            .starts_with(&format!("malformed:{v} does not apply to {p}: ")),
                        "{e}"
                    );
                }
                (want, got) => panic!("{p} {v}: expected {want:?}, got {got:?}"),
            }
        }
    }
}

#[test]
fn exact_bytes_of_the_length_field_rewrites() {
    let frame = sample(&Protocol::Quantix);
    let over = malform(V::OversizeLength, &Protocol::Quantix, &frame).expect("oversize");
    assert_eq!(&over[..8], b"QTX\x01\xff\xff\xff\xff");
    assert_eq!(&over[8..], &frame[8..]);
    let zero = malform(V::ZeroLength, &Protocol::Quantix, &frame).expect("zero");
    assert_eq!(&zero[..], b"QTX\x01\x00\x00\x00\x00");
    let magic = malform(V::BadMagic, &Protocol::Quantix, &frame).expect("magic");
    assert_eq!(&magic[..4], b"\xae\xab\xa7\xfe");
    let bad = malform(
        V::BadProtobuf,
        &Protocol::QuantixLegacy,
        &sample(&Protocol::QuantixLegacy),
    )
    .expect("pb");
    assert_eq!(&bad[..], b"\x00\x00\x00\x02\x0f\xff");
    let cut = malform(V::Truncated, &Protocol::Fcexec, &sample(&Protocol::Fcexec)).expect("cut");
    assert_eq!(cut.len(), 4 + (sample(&Protocol::Fcexec).len() - 4) / 2);
}

#[test]
fn qga_reply_loses_its_newline_and_still_decodes() {
    // qemu-ga's parser and guestwire's are brace-based, so only a line-reading host notices.
    let mut reply = BytesMut::new();
    QgaEncoder::new()
        .reply_return(&serde_json::json!({}), &mut reply)
        .expect("reply");
    let m = malform(V::NoNewline, &Protocol::Qga, &reply).expect("no_newline");
    assert_eq!(&m[..], &reply[..reply.len() - 1]);
    assert!(!m.contains(&b'\n'));
    assert_eq!(decode(&Protocol::Qga, &m), ["ok:return"]);
}

#[test]
fn split_handshake_is_two_writes_that_firecracker_drops() {
    let line = connect_line(1024);
    for p in &PROTOCOLS {
        let m = malform_writes(V::SplitHandshake, p, &line).expect("split");
        assert_eq!(m.writes, [&b"CONN"[..], &b"ECT 1024\n"[..]]);
        assert_eq!(m.concat(), line);
    }
    let m = malform_writes(V::SplitHandshake, &Protocol::Raw, &line).expect("split raw");
    let mut fc = ConnectParser::new(Flavour::Firecracker);
    assert!(matches!(
        fc.on_read(&m.writes[0]),
        ConnectOutcome::Reject {
            reason: RejectReason::SplitCommand,
            ..
        }
    ));
}

#[test]
fn connect_without_newline_is_a_bad_handshake() {
    let line = connect_line(52);
    let m = malform(V::NoNewline, &Protocol::Fcexec, &line).expect("no_newline");
    assert_eq!(&m[..], b"CONNECT 52");
    let got = decode_all(&mut HandshakeDecoder::new(Direction::ToGuest), &m);
    assert!(
        matches!(got.as_slice(), [Err(WireError::BadHandshake { .. })]),
        "{got:?}"
    );
}

#[test]
fn refusals_name_the_reason() {
    let e = malform(V::Garbage, &Protocol::Raw, b"x").expect_err("raw");
    assert_eq!(
        e.to_string(),
        "malformed:garbage does not apply to raw: the protocol has no frame structure"
    );
    let e = malform(V::Truncated, &Protocol::Quantix, b"QTX").expect_err("short");
    assert_eq!(
        e.to_string(),
        "malformed:truncated does not apply to quantix: the frame is shorter than its header"
    );
    let e = malform(V::OversizeLength, &Protocol::Volant, b"nope").expect_err("not http");
    assert!(
        e.to_string()
            .ends_with("the frame is not a complete HTTP message"),
        "{e}"
    );
}
