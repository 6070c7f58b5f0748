//! Tests for HTTP framing: bodies by length, chunks and EOF, pipelining, limits, non-HTTP
//! streams, ch-api and volant shaped traffic, and property tests for round trips, split
//! invariance and garbage.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::wire::codec::split_at_cuts;
use crate::wire::codec::{Decoded, Decoder, Describe, Encoder, decode_all, decode_chunks};
use crate::wire::error::WireError;

fn messages(kind: HttpKind, stream: &[u8]) -> Vec<HttpMessage> {
    decode_all(&mut HttpDecoder::new(kind), stream)
        .into_iter()
        .map(|r| r.expect("a message").message)
        .collect()
}

fn one_error(kind: HttpKind, limits: HttpLimits, stream: &[u8]) -> WireError {
    let got = decode_all(&mut HttpDecoder::with_limits(kind, limits), stream);
    let errors: Vec<WireError> = got.into_iter().filter_map(Result::err).collect();
    assert_eq!(errors.len(), 1, "exactly one error: {errors:?}");
    errors.into_iter().next().expect("one error")
}

fn encode(m: &HttpMessage) -> Vec<u8> {
    let mut out = BytesMut::new();
    HttpEncoder::new().encode(m, &mut out).expect("encodes");
    out.to_vec()
}

const CH_BOOT: &[u8] = b"PUT /api/v1/vm.boot HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n";
const CH_PING_REPLY: &[u8] = b"HTTP/1.1 200 \r\nServer: Cloud Hypervisor API\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n{\"build_version\":\"v48.0\",\"version\":\"48.0.0\",\"pid\":7,\"features\":[]}";

#[test]
fn ch_api_request_without_a_body() {
    let got = messages(HttpKind::Request, CH_BOOT);
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.ch_api_endpoint(), Some("vm.boot"));
    assert_eq!(m.type_name(), "request");
    assert_eq!(m.summary(), "PUT /api/v1/vm.boot 0B");
    assert_eq!(m.header("host"), Some("localhost"));
    let j = m.to_json();
    assert_eq!(j["method"], "PUT");
    assert_eq!(j["endpoint"], "vm.boot");
    assert_eq!(j["body_len"], 0);
    assert!(j.get("body").is_none());
}

#[test]
fn ch_api_response_with_json_body() {
    // The real Content-Length of this body.
    let body_len = CH_PING_REPLY.len()
        - (CH_PING_REPLY
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("head")
            + 4);
    let stream = String::from_utf8_lossy(CH_PING_REPLY)
        .replace("Content-Length: 60", &format!("Content-Length: {body_len}"));
    let got = messages(HttpKind::Auto, stream.as_bytes());
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.type_name(), "response");
    assert!(m.is_success());
    assert_eq!(m.summary(), format!("200 {body_len}B"));
    let json = m.json_body().expect("json");
    assert_eq!(json["version"], "48.0.0");
    let j = m.to_json();
    assert_eq!(j["status"], 200);
    assert_eq!(j["body_encoding"], "json");
    assert_eq!(j["body"]["pid"], 7);
    assert_eq!(
        j["headers"][0],
        serde_json::json!(["Server", "Cloud Hypervisor API"])
    );
}

#[test]
fn ch_api_error_reply_and_put_with_body() {
    let req = HttpMessage::request(
        "PUT",
        "/api/v1/vm.snapshot",
        Bytes::from_static(br#"{"destination_url":"file:///tmp/snap"}"#),
    )
    .with_header("Content-Type", "application/json");
    let resp = HttpMessage::response(
        500,
        Bytes::from_static(br#"["Error pausing VM","Invalid state"]"#),
    );
    let got = messages(HttpKind::Request, &encode(&req));
    assert_eq!(
        got[0].json_body().expect("json")["destination_url"],
        "file:///tmp/snap"
    );
    assert_eq!(got[0].header("content-length"), Some("38"));
    let got = messages(HttpKind::Response, &encode(&resp));
    assert_eq!(got[0].summary(), "500 Internal Server Error 36B");
    assert!(!got[0].is_success());
}

#[test]
fn endpoint_names() {
    assert_eq!(ch_api_endpoint("/api/v1/vm.boot"), Some("vm.boot"));
    assert_eq!(ch_api_endpoint("/api/v1/vmm.ping?x=1"), Some("vmm.ping"));
    assert_eq!(ch_api_endpoint("/api/v1/"), None);
    assert_eq!(ch_api_endpoint("/v1/plugin/x/actions/y"), None);
}

#[test]
fn chunked_bodies_are_decoded() {
    let stream = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;ext=1\r\nhello\r\n7 \r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
    let got = decode_all(&mut HttpDecoder::new(HttpKind::Response), stream);
    let frames: Vec<_> = got.into_iter().map(|r| r.expect("frame")).collect();
    assert_eq!(frames.len(), 2);
    assert_eq!(&frames[0].message.body()[..], b"hello, world");
    assert_eq!(frames[0].offset, 0);
    assert_eq!(frames[1].offset, frames[0].wire_len);
    assert_eq!(frames[1].offset + frames[1].wire_len, stream.len() as u64);
}

#[test]
fn chunked_errors() {
    let base = |body: &str| format!("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{body}");
    let l = HttpLimits::default();
    for (body, want) in [
        ("zz\r\n", "not hexadecimal"),
        ("\r\n", "empty chunk size"),
        ("11111111111111111\r\n", "does not fit"),
        ("3\r\nabcX", "not followed by CRLF"),
    ] {
        let e = one_error(HttpKind::Request, l, base(body).as_bytes());
        assert!(
            matches!(e, WireError::Malformed { .. }) && e.to_string().contains(want),
            "{body:?}: {e}"
        );
    }
    let small = HttpLimits { max_body: 10, ..l };
    let e = one_error(
        HttpKind::Request,
        small,
        base("8\r\n12345678\r\n8\r\n").as_bytes(),
    );
    assert!(
        matches!(
            e,
            WireError::Oversize {
                len: 16,
                max: 10,
                ..
            }
        ),
        "{e}"
    );
    let e = one_error(HttpKind::Request, l, base("5\r\nhel").as_bytes());
    assert!(matches!(e, WireError::Truncated { offset: 0, .. }), "{e}");
}

/// Found by the `decode_http` fuzz target (`fixtures/crashes/http-chunk-crlf-preview-split.bin`):
/// the preview of a missing CRLF after chunk data showed two bytes when two were buffered and one
/// when one was, so byte-at-a-time decoding reported different bytes than one piece.
#[test]
fn missing_chunk_crlf_is_reported_the_same_for_any_split() {
    let stream = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc}\r\n0\r\n\r\n";
    let whole = decode_all(&mut HttpDecoder::new(HttpKind::Response), stream);
    let bytewise = decode_chunks(&mut HttpDecoder::new(HttpKind::Response), stream.chunks(1));
    assert_eq!(whole, bytewise);
    match &whole[..] {
        [Err(WireError::Malformed { bytes, reason, .. })] => {
            assert!(reason.contains("not followed by CRLF"), "{reason}");
            assert_eq!(bytes.to_string(), "7d");
        }
        other => panic!("{other:?}"),
    }
    // After a `\r`, the byte that follows it decides, and both are shown.
    let stream = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\rX\r\n";
    let bytewise = decode_chunks(&mut HttpDecoder::new(HttpKind::Response), stream.chunks(1));
    assert_eq!(
        decode_all(&mut HttpDecoder::new(HttpKind::Response), stream),
        bytewise
    );
    assert!(
        matches!(&bytewise[..], [Err(WireError::Malformed { bytes, .. })] if bytes.to_string() == "0d 58"),
        "{bytewise:?}"
    );
}

#[test]
fn content_length_rules() {
    let l = HttpLimits::default();
    let got = messages(
        HttpKind::Request,
        b"POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc",
    );
    assert_eq!(&got[0].body()[..], b"abc");
    for (head, want) in [
        ("Content-Length: 3\r\nContent-Length: 4\r\n", "conflicting"),
        ("Content-Length: -3\r\n", "invalid Content-Length"),
        ("Content-Length: 3x\r\n", "invalid Content-Length"),
        (
            "Content-Length: 99999999999999999999999\r\n",
            "does not fit",
        ),
        (
            "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
            "smuggling",
        ),
        ("Transfer-Encoding: gzip\r\n", "does not end with chunked"),
    ] {
        let stream = format!("POST / HTTP/1.1\r\n{head}\r\nabc");
        let e = one_error(HttpKind::Request, l, stream.as_bytes());
        assert!(e.to_string().contains(want), "{head:?}: {e}");
    }
    let e = one_error(
        HttpKind::Request,
        HttpLimits { max_body: 100, ..l },
        b"POST / HTTP/1.1\r\nContent-Length: 4294967296\r\n\r\n",
    );
    assert!(
        matches!(
            e,
            WireError::Oversize {
                len: 4294967296,
                max: 100,
                ..
            }
        ),
        "{e}"
    );
    let e = one_error(
        HttpKind::Request,
        l,
        b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
    );
    assert!(
        matches!(e, WireError::Truncated { expected, available, .. } if expected == available + 7),
        "{e}"
    );
}

#[test]
fn close_delimited_responses_end_at_eof() {
    let stream = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this\r\n\r\nis body";
    let mut d = HttpDecoder::new(HttpKind::Response);
    let mut buf = BytesMut::from(&stream[..]);
    assert_eq!(
        d.decode(&mut buf),
        None,
        "no message before the end of the stream"
    );
    let f = d.decode_eof(&mut buf).expect("message").expect("ok");
    assert_eq!(&f.message.body()[..], b"all of this\r\n\r\nis body");
    assert_eq!(f.message.version(), 0);
    assert_eq!(f.wire_len, stream.len() as u64);
    assert_eq!(d.decode_eof(&mut buf), None);
    // Over the limit: one error, then nothing.
    let e = one_error(
        HttpKind::Response,
        HttpLimits {
            max_body: 8,
            ..HttpLimits::default()
        },
        stream,
    );
    assert!(
        matches!(e, WireError::Oversize { len: 9, max: 8, .. }),
        "{e}"
    );
    // A request without a length has no body: what follows is the next request.
    let got = messages(
        HttpKind::Request,
        b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
    );
    assert_eq!(got.len(), 2);
}

#[test]
fn pipelined_messages_all_decode() {
    let mut stream = Vec::new();
    let msgs = vec![
        HttpMessage::request("GET", "/api/v1/vmm.ping", Bytes::new()),
        HttpMessage::request(
            "PUT",
            "/api/v1/vm.create",
            Bytes::from_static(b"{\"cpus\":{}}"),
        ),
        HttpMessage::request("PUT", "/api/v1/vm.boot", Bytes::new()),
    ];
    for m in &msgs {
        stream.extend(encode(m));
    }
    stream.extend(b"\r\n"); // a stray CRLF between messages is skipped
    stream.extend(encode(&msgs[0]));
    let got = messages(HttpKind::Request, &stream);
    let paths: Vec<&str> = got
        .iter()
        .filter_map(HttpMessage::ch_api_endpoint)
        .collect();
    assert_eq!(paths, ["vmm.ping", "vm.create", "vm.boot", "vmm.ping"]);
}

#[test]
fn head_limits() {
    let l = HttpLimits {
        max_head: 128,
        max_headers: 3,
        max_body: 1024,
    };
    let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(200));
    let e = one_error(HttpKind::Request, l, long.as_bytes());
    assert!(matches!(e, WireError::Oversize { max: 128, .. }), "{e}");
    let many = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    let e = one_error(HttpKind::Request, l, many.as_bytes());
    assert!(e.to_string().contains("more than 3 headers"), "{e}");
    let ok = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(
        decode_all(
            &mut HttpDecoder::with_limits(HttpKind::Request, l),
            ok.as_bytes()
        )
        .len(),
        1
    );
    // A head that never ends is cut at the limit, long before the stream ends.
    let mut d = HttpDecoder::with_limits(HttpKind::Request, l);
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
    buf.extend_from_slice(&[b'x'; 200]);
    assert!(matches!(
        d.decode(&mut buf),
        Some(Err(WireError::Oversize { .. }))
    ));
    assert!(d.is_failed());
    buf.extend_from_slice(b"more");
    assert_eq!(d.decode(&mut buf), None);
    assert!(buf.is_empty(), "the rest is discarded");
}

#[test]
fn malformed_heads() {
    let l = HttpLimits::default();
    let e = one_error(
        HttpKind::Request,
        l,
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
    );
    assert!(
        matches!(e, WireError::Malformed { format: "http", .. }),
        "{e}"
    );
    // A bad start line is named as soon as it is complete, without waiting for the head's end.
    let mut d = HttpDecoder::new(HttpKind::Request);
    let mut buf = BytesMut::from(&b"GET / HTTP/9.9\r\nHost: x\r\n"[..]);
    assert!(matches!(
        d.decode(&mut buf),
        Some(Err(WireError::Malformed { .. }))
    ));
    let e = one_error(HttpKind::Response, l, b"HTTP/1.1 abc OK\r\n\r\n");
    assert!(matches!(e, WireError::Malformed { .. }), "{e}");
    let e = one_error(HttpKind::Request, l, b"GET / HT");
    assert!(
        matches!(e, WireError::Truncated { available: 8, .. }),
        "{e}"
    );
}

#[test]
fn non_http_streams_are_named() {
    let l = HttpLimits::default();
    let cases: [(&[u8], &str); 6] = [
        (b"QTX\x01\x00\x00\x00\x05hello", "quantix"),
        (
            b"\x00\x00\x00\x0d{\"type\":\"log\"}",
            "length prefix (13 bytes)",
        ),
        (b"{\"execute\":\"guest-ping\"}\n", "bare JSON"),
        (b"\xff{\"return\": 1}\n", "0xFF"),
        (b"CONNECT 52\n", "CONNECT line"),
        (b"OK 1073741824\n", "OK reply"),
    ];
    for (stream, want) in cases {
        for kind in [HttpKind::Request, HttpKind::Auto] {
            let e = one_error(kind, l, stream);
            match &e {
                WireError::FramingMismatch {
                    expected: "http",
                    found,
                    ..
                } => {
                    assert!(found.contains(want), "{stream:?}: {found}")
                }
                other => panic!("{stream:?}: expected a framing mismatch, got {other}"),
            }
        }
    }
    // Decided on the first four bytes, without waiting for more.
    let mut d = HttpDecoder::new(HttpKind::Response);
    let mut buf = BytesMut::from(&b"QTX\x01"[..]);
    assert!(matches!(
        d.decode(&mut buf),
        Some(Err(WireError::FramingMismatch { .. }))
    ));
}

#[test]
fn auto_detects_the_direction() {
    let mut d = HttpDecoder::new(HttpKind::Auto);
    let got = decode_all(&mut d, CH_BOOT);
    assert_eq!(got.len(), 1);
    assert_eq!(d.resolved_kind(), HttpKind::Request);
    let mut d = HttpDecoder::new(HttpKind::Auto);
    let _ = decode_all(&mut d, b"HTTP/1.1 204 No Content\r\n\r\n");
    assert_eq!(d.resolved_kind(), HttpKind::Response);
}

#[test]
fn bodies_in_json_as_text_or_base64() {
    let text = HttpMessage::response(200, Bytes::from_static(b"plain text"));
    assert_eq!(text.to_json()["body_encoding"], "utf8");
    assert_eq!(text.to_json()["body"], "plain text");
    let bin = HttpMessage::response(200, Bytes::from_static(&[0xff, 0x00]));
    assert_eq!(bin.to_json()["body_encoding"], "base64");
    assert_eq!(bin.to_json()["body"], "/wA=");
    assert_eq!(
        HttpMessage::response(404, Bytes::new()).summary(),
        "404 Not Found 0B"
    );
    assert_eq!(
        HttpMessage::response(299, vec![0u8; 2048]).summary(),
        "299 2.0KiB"
    );
}

#[test]
fn encoder_refuses_what_would_not_round_trip() {
    let mut out = BytesMut::new();
    let mut e = HttpEncoder::with_max_body(4);
    assert!(
        e.encode(&HttpMessage::response(200, vec![0u8; 5]), &mut out)
            .is_err()
    );
    assert!(
        e.encode(&HttpMessage::response(204, vec![0u8; 1]), &mut out)
            .is_err()
    );
    assert!(
        e.encode(&HttpMessage::request("G T", "/", Bytes::new()), &mut out)
            .is_err()
    );
    assert!(
        e.encode(&HttpMessage::request("GET", "/a b", Bytes::new()), &mut out)
            .is_err()
    );
    let bad_header = HttpMessage::request("GET", "/", Bytes::new()).with_header("X", "a\r\nY: b");
    assert!(e.encode(&bad_header, &mut out).is_err());
    assert!(out.is_empty());
    // A stale Content-Length is replaced by the real one.
    let m =
        HttpMessage::response(200, Bytes::from_static(b"abc")).with_header("Content-Length", "99");
    let got = messages(HttpKind::Response, &encode(&m));
    assert_eq!(&got[0].body()[..], b"abc");
}

// ---- property tests ----

fn without_length(m: &HttpMessage) -> HttpMessage {
    let mut m = m.clone();
    m.headers_mut()
        .retain(|(n, _)| !n.eq_ignore_ascii_case("content-length"));
    m
}

fn header_strategy() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(
        ("[A-Za-z][A-Za-z0-9-]{0,15}", "([!-~]([ -~]{0,20}[!-~])?)?"),
        0..6,
    )
    .prop_map(|hs| {
        hs.into_iter()
            .filter(|(n, _)| {
                !n.eq_ignore_ascii_case("content-length")
                    && !n.eq_ignore_ascii_case("transfer-encoding")
            })
            .collect()
    })
}

fn message_strategy() -> impl Strategy<Value = HttpMessage> {
    let body = proptest::collection::vec(any::<u8>(), 0..300).prop_map(Bytes::from);
    let request = (
        "GET|PUT|POST|DELETE|PATCH|[A-Z]{1,8}",
        "/[!-~]{0,40}",
        0u8..2,
        header_strategy(),
        body.clone(),
    )
        .prop_map(
            |(method, path, version, headers, body)| HttpMessage::Request {
                method,
                path,
                version,
                headers,
                body,
            },
        );
    let response = (
        100u16..600,
        "[A-Za-z]([A-Za-z ]{0,15}[A-Za-z])?",
        0u8..2,
        header_strategy(),
        body,
    )
        .prop_map(
            |(status, reason, version, headers, body)| HttpMessage::Response {
                status: if status_has_no_body(status) && !body.is_empty() {
                    200
                } else {
                    status
                },
                reason,
                version,
                headers,
                body,
            },
        );
    prop_oneof![request, response]
}

fn as_strings(v: Vec<Decoded<HttpMessage>>) -> Vec<String> {
    v.into_iter().map(|r| format!("{r:?}")).collect()
}

/// Several encoded messages back to back.
fn encoded_strategy() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(message_strategy(), 1..4).prop_map(|ms| {
        let mut s = Vec::new();
        for m in ms {
            let mut out = BytesMut::new();
            if HttpEncoder::new().encode(&m, &mut out).is_ok() {
                s.extend(out);
            }
        }
        s
    })
}

/// Streams that are HTTP, nearly HTTP, chunked, or garbage.
fn stream_strategy() -> impl Strategy<Value = Vec<u8>> {
    let chunked = (
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..4),
        any::<bool>(),
    )
        .prop_map(|(chunks, trailer)| {
            let mut s = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for c in chunks.iter().filter(|c| !c.is_empty()) {
                s.extend(format!("{:x}\r\n", c.len()).into_bytes());
                s.extend(c);
                s.extend(b"\r\n");
            }
            s.extend(b"0\r\n");
            if trailer {
                s.extend(b"X-T: 1\r\n");
            }
            s.extend(b"\r\n");
            s
        });
    let mutated = (encoded_strategy(), any::<usize>(), any::<u8>()).prop_map(|(mut s, at, b)| {
        if !s.is_empty() {
            let i = at % s.len();
            s[i] = b;
        }
        s
    });
    prop_oneof![
        encoded_strategy(),
        chunked,
        mutated,
        proptest::collection::vec(any::<u8>(), 0..200),
        "[ -~\r\n]{0,200}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #[test]
    fn messages_round_trip(m in message_strategy()) {
        let bytes = encode(&m);
        let kind = if matches!(m, HttpMessage::Request { .. }) { HttpKind::Request } else { HttpKind::Response };
        let got = decode_all(&mut HttpDecoder::new(kind), &bytes);
        prop_assert_eq!(got.len(), 1, "{:?}", got);
        let f = got.into_iter().next().expect("one").expect("decodes");
        prop_assert_eq!(f.wire_len, bytes.len() as u64);
        prop_assert_eq!(without_length(&f.message), m);
    }

    #[test]
    fn decoding_is_split_invariant(
        stream in stream_strategy(),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
        kind in prop_oneof![Just(HttpKind::Request), Just(HttpKind::Response), Just(HttpKind::Auto)],
    ) {
        let limits = HttpLimits { max_head: 96, max_headers: 4, max_body: 200 };
        let whole = as_strings(decode_all(&mut HttpDecoder::with_limits(kind, limits), &stream));
        let split = as_strings(decode_chunks(&mut HttpDecoder::with_limits(kind, limits), split_at_cuts(&stream, &cuts)));
        prop_assert_eq!(&split, &whole);
        let bytewise = as_strings(decode_chunks(&mut HttpDecoder::with_limits(kind, limits), stream.chunks(1)));
        prop_assert_eq!(bytewise, whole);
    }

    #[test]
    fn garbage_never_panics_and_buffers_stay_bounded(
        stream in stream_strategy(),
        kind in prop_oneof![Just(HttpKind::Request), Just(HttpKind::Response), Just(HttpKind::Auto)],
    ) {
        let limits = HttpLimits { max_head: 96, max_headers: 4, max_body: 200 };
        let mut d = HttpDecoder::with_limits(kind, limits);
        let mut buf = BytesMut::new();
        let mut consumed = 0u64;
        for chunk in stream.chunks(7) {
            buf.extend_from_slice(chunk);
            while let Some(item) = d.decode(&mut buf) {
                if let Ok(f) = item {
                    prop_assert!(f.offset >= consumed, "frames in order");
                    consumed = f.offset + f.wire_len;
                }
            }
            // What stays buffered is at most a head, a chunk line or a body (plus one read).
            prop_assert!(buf.len() <= limits.max_head.max(4096).max(limits.max_body as usize) + 7);
        }
        while d.decode_eof(&mut buf).is_some() {}
        prop_assert!(buf.is_empty());
        prop_assert_eq!(d.offset(), stream.len() as u64);
    }
}
