//! Unit tests of the fcexec host client over in-memory streams: streaming, the split between
//! protocol and malformed errors, partial logs, the exec mapping and `RunError`'s text.

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

/// Reads the request frame off the guest end of a duplex stream.
async fn read_request(guest: &mut DuplexStream) -> GuestRequest {
    let mut len = [0u8; 4];
    guest.read_exact(&mut len).await.expect("length");
    let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
    guest.read_exact(&mut payload).await.expect("payload");
    match decode_payload(&payload, 0, Some(Direction::ToGuest)).expect("request") {
        FcexecMessage::Request(r) => r,
        other => panic!("not a request: {other:?}"),
    }
}

/// Runs the client against a scripted guest that replies with `reply` (raw bytes).
async fn against(reply: Vec<u8>) -> (Result<GuestResponse, RunError>, Vec<String>) {
    let (host, mut guest) = tokio::io::duplex(1 << 16);
    let script = async move {
        read_request(&mut guest).await;
        guest.write_all(&reply).await.expect("reply");
        drop(guest);
    };
    let mut seen = Vec::new();
    let req = GuestRequest::default();
    let client = run_on(host, &req, Duration::from_secs(5), |l| {
        seen.push(l.to_string())
    });
    let (result, ()) = tokio::join!(client, script);
    (result, seen)
}

#[tokio::test]
async fn logs_then_result() {
    let mut reply = frame(br#"{"type":"log","line":"one"}"#);
    reply.extend(frame(br#"{"type":"log","line":"two"}"#));
    reply.extend(frame(
        br#"{"type":"result","response":{"exit_code":3,"output":"o","error":""}}"#,
    ));
    let (result, seen) = against(reply).await;
    let r = result.expect("result");
    assert_eq!(r.exit_code, 3);
    assert_eq!(seen, ["one", "two"]);
}

#[tokio::test]
async fn protocol_and_malformed_are_told_apart() {
    let cases: [(&[u8], &str); 6] = [
        (br#"{"type":"progress"}"#, "protocol"),
        (br#"{"type":"result"}"#, "protocol"),
        (br#"{"type":"result","response":null}"#, "protocol"),
        (br#"{"line":"no type"}"#, "protocol"),
        (br#"{"type":"log","line":"#, "malformed"),
        (b"\xff\xfe not utf-8", "malformed"),
    ];
    for (payload, kind) in cases {
        let mut reply = frame(br#"{"type":"log","line":"before"}"#);
        reply.extend(frame(payload));
        let (result, _) = against(reply).await;
        let err = result.expect_err("bad reply");
        assert_eq!(err.kind(), kind, "{payload:?}: {err}");
        assert_eq!(err.logs, ["before"]);
        if let ClientError::Malformed { raw, .. } = &err.error {
            assert_eq!(&raw[..], payload);
        }
    }
}

#[tokio::test]
async fn close_before_the_result_keeps_the_lines() {
    let reply = frame(br#"{"type":"log","line":"only"}"#);
    let (result, _) = against(reply).await;
    let err = result.expect_err("closed");
    assert_eq!(err.kind(), "closed");
    assert_eq!(err.logs, ["only"]);
    let text = err.to_string();
    assert!(text.contains("1 log line had arrived"), "{text}");
    assert!(text.contains("\"only\""), "{text}");
    assert_eq!(err.to_json()["logs"][0], "only");
}

#[tokio::test]
async fn a_frame_cut_short_is_closed_not_malformed() {
    let mut reply = frame(br#"{"type":"log","line":"a"}"#);
    reply.extend_from_slice(&[0, 0, 0, 50, b'{']);
    let (result, _) = against(reply).await;
    let err = result.expect_err("truncated");
    assert_eq!(err.kind(), "closed");
    assert_eq!(err.logs, ["a"]);
}

#[tokio::test]
async fn oversize_length_is_malformed() {
    let (result, _) = against(vec![0x7f, 0xff, 0xff, 0xff]).await;
    let err = result.expect_err("oversize");
    assert_eq!(err.kind(), "malformed");
}

#[test]
fn exec_mapping() {
    let args = vec!["-c".to_string(), "echo \"hi\"".to_string()];
    let r = exec_request("/bin/sh", &args, Some(Duration::from_millis(1500))).expect("map");
    assert_eq!(r.runtime, "exec");
    assert_eq!(r.entrypoint, "/bin/sh");
    assert_eq!(r.code, r#"["-c","echo \"hi\""]"#);
    assert_eq!(r.timeout_s, 2);
    assert_eq!(
        exec_request("", &[], None).expect_err("empty").kind(),
        "invalid"
    );
}

#[test]
fn display_shows_the_last_lines() {
    let e = RunError {
        error: ClientError::Protocol { reason: "x".into() },
        logs: (0..8).map(|i| format!("l{i}")).collect(),
        dropped_logs: 0,
    };
    let text = e.to_string();
    assert!(
        text.contains("8 log lines had arrived, the last kept: \"l3\""),
        "{text}"
    );
    let none = RunError::new(
        ClientError::Protocol { reason: "x".into() },
        Logs::default(),
    );
    assert!(none.to_string().ends_with("no log lines had arrived"));
    let long = RunError {
        error: ClientError::Protocol { reason: "x".into() },
        logs: vec!["y".repeat(10_000)],
        dropped_logs: 0,
    };
    assert!(long.to_string().len() < 400, "each shown line is clipped");
}
