//! The Volant host client against the mock agent and scripted peers, through real Unix sockets
//! (`unix:` and `hvsock:` with a mock VMM on port 8080): every route, keep-alive and
//! `Connection: close`, bad HTTP, a 500 as the real client's `http 500: …`, health, a silent
//! peer timing out, and `call`. Never AF_VSOCK. Every wait has a deadline; no test asserts
//! wall-clock time.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use guestwire::guest::{GuestConfig, volant as mock};
use guestwire::host::volant::{DEFAULT_PORT, VolantClient, agent_error_text, default_options};
use guestwire::host::{CallOp, ClientError, Phase};
use guestwire::io::{Endpoint, Listener};
use guestwire::wire::hybrid::Flavour;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Bound on every wait in these tests (virtual under a paused clock).
const DEADLINE: Duration = Duration::from_secs(60);

fn cfg() -> Arc<GuestConfig> {
    Arc::new(GuestConfig {
        telemetry_interval: None,
        ..GuestConfig::default()
    })
}

/// Serves `n` connections on `listener` with the mock agent, one at a time.
fn serve(mut listener: Listener, n: usize) -> JoinHandle<u64> {
    tokio::spawn(async move {
        let mut requests = 0;
        for _ in 0..n {
            let conn = timeout(DEADLINE, listener.accept())
                .await
                .expect("accept deadline")
                .expect("accept");
            let report = timeout(DEADLINE, mock::serve_connection(conn.stream, cfg()))
                .await
                .expect("serve deadline")
                .expect("serve");
            requests += report.requests;
        }
        requests
    })
}

async fn done(guest: JoinHandle<u64>) -> u64 {
    timeout(DEADLINE, guest)
        .await
        .expect("deadline")
        .expect("guest")
}

/// A scripted peer: accepts one connection, reads the request head, runs `script`.
fn scripted<F, Fut>(path: &Path, script: F) -> JoinHandle<()>
where
    F: FnOnce(UnixStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = UnixListener::bind(path).expect("bind");
    tokio::spawn(async move {
        let (mut s, _) = timeout(DEADLINE, listener.accept())
            .await
            .expect("accept deadline")
            .expect("accept");
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
            let n = timeout(DEADLINE, s.read(&mut buf))
                .await
                .expect("deadline")
                .expect("read");
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        script(s).await;
    })
}

/// Writes `bytes` on a fresh connection to `path`, half-closes, and reads everything back.
async fn raw_exchange(path: &Path, bytes: &[u8]) -> String {
    let mut s = UnixStream::connect(path).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    let mut got = Vec::new();
    timeout(DEADLINE, s.read_to_end(&mut got))
        .await
        .expect("the mock must close the connection")
        .expect("read");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn every_route_over_unix_and_hvsock() {
    let dir = tempfile::tempdir().expect("tempdir");
    for hv in [false, true] {
        let path = dir.path().join(if hv { "hv.sock" } else { "unix.sock" });
        let (listener, ep) = if hv {
            let l = Listener::bind_hvsock(&path, &[DEFAULT_PORT], Flavour::Firecracker)
                .await
                .expect("bind");
            (
                l,
                Endpoint::Hvsock {
                    path,
                    port: DEFAULT_PORT,
                },
            )
        } else {
            let l = Listener::bind_unix(&path).await.expect("bind");
            (l, Endpoint::Unix(path))
        };
        let guest = serve(listener, 6);
        let client = VolantClient::new(ep.clone(), default_options());
        let ok = json!({ "status": "ok" });
        assert_eq!(client.health().await.expect("health"), ok, "{ep}");
        let healthz = client.request("GET", "/healthz", None).await;
        assert_eq!(healthz.expect("healthz"), ok);
        let input = json!({ "input": "data", "n": [1, 2] });
        let echoed = client
            .request(
                "POST",
                "/v1/plugin/my-plugin/actions/process",
                Some(input.clone()),
            )
            .await
            .expect("action");
        assert_eq!(
            echoed,
            json!({ "plugin": "my-plugin", "action": "process", "input": input })
        );
        let no_body = client
            .request("POST", "/v1/plugin/p/actions/a", None)
            .await
            .expect("action without a body");
        assert_eq!(no_body["input"], Value::Null);
        let missing = client
            .request("GET", "/v1/nothing", None)
            .await
            .expect_err("404");
        match &missing {
            ClientError::Agent { code, message } => {
                assert_eq!(code, "http 404");
                assert!(message.contains("not found"), "{message}");
            }
            other => panic!("{other}"),
        }
        let wrong = client
            .request("DELETE", "/health", None)
            .await
            .expect_err("405");
        assert_eq!(
            agent_error_text(&wrong).as_deref().map(|t| &t[..9]),
            Some("http 405:")
        );
        assert_eq!(done(guest).await, 6);
    }
}

#[tokio::test]
async fn bad_http_gets_400_then_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.sock");
    let guest = serve(Listener::bind_unix(&path).await.expect("bind"), 1);
    let reply = raw_exchange(&path, b"\x00\x01\x02garbage\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
    assert!(reply.contains("Connection: close\r\n"), "{reply}");
    assert!(reply.contains("\"error\":\"bad request"), "{reply}");
    assert_eq!(done(guest).await, 0);
}

#[tokio::test]
async fn keep_alive_until_connection_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ka.sock");
    let guest = serve(Listener::bind_unix(&path).await.expect("bind"), 1);
    let get = "GET /health HTTP/1.1\r\nHost: vsock\r\n\r\n";
    let last = "GET /healthz HTTP/1.1\r\nHost: vsock\r\nConnection: close\r\n\r\n";
    // Pipelined: two kept-alive requests, then one that closes; nothing after it is served.
    let bytes = format!("{get}{get}{last}{get}");
    let reply = raw_exchange(&path, bytes.as_bytes()).await;
    assert_eq!(reply.matches("HTTP/1.1 200 OK\r\n").count(), 3, "{reply}");
    assert_eq!(reply.matches("Connection: close").count(), 1, "{reply}");
    assert_eq!(done(guest).await, 3);
}

#[tokio::test]
async fn a_500_is_an_agent_error_in_the_real_clients_words() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("500.sock");
    let peer = scripted(&path, |mut s| async move {
        let body = r#"{"error":"plugin crashed"}"#;
        let reply = format!(
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(reply.as_bytes()).await.expect("reply");
    });
    let client = VolantClient::new(Endpoint::Unix(path), default_options());
    let err = timeout(
        DEADLINE,
        client.request("POST", "/v1/plugin/p/actions/a", Some(json!({}))),
    )
    .await
    .expect("deadline")
    .expect_err("500");
    assert_eq!(err.kind(), "agent_error");
    assert_eq!(err.to_json()["code"], "http 500");
    assert_eq!(
        agent_error_text(&err).as_deref(),
        Some(r#"http 500: {"error":"plugin crashed"}"#)
    );
    peer.await.expect("peer");
}

#[tokio::test]
async fn health_needs_exactly_200() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("204.sock");
    let peer = scripted(&path, |mut s| async move {
        s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
            .await
            .expect("reply");
    });
    let client = VolantClient::new(Endpoint::Unix(path), default_options());
    let err = timeout(DEADLINE, client.health())
        .await
        .expect("deadline")
        .expect_err("204");
    assert_eq!(err.kind(), "protocol");
    assert!(err.to_string().contains("204"), "{err}");
    peer.await.expect("peer");
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_times_out_in_the_request_phase() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("silent.sock");
    let (hold_tx, hold_rx) = oneshot::channel::<()>();
    let peer = scripted(&path, |s| async move {
        // Holds the connection open, without a word, until the test ends.
        let _s = s;
        let _ = hold_rx.await;
    });
    let client = VolantClient::new(Endpoint::Unix(path), default_options());
    let err = timeout(DEADLINE, client.health())
        .await
        .expect("deadline")
        .expect_err("silent");
    assert!(
        matches!(
            err,
            ClientError::TimedOut {
                phase: Phase::Request,
                after,
                ..
            } if after == Duration::from_secs(30)
        ),
        "{err}"
    );
    drop(hold_tx);
    peer.await.expect("peer");
}

#[tokio::test]
async fn call_maps_ping_exec_and_raw() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("call.sock");
    let guest = serve(Listener::bind_unix(&path).await.expect("bind"), 3);
    let client = VolantClient::new(Endpoint::Unix(path), default_options());
    let ping = client.call(&CallOp::Ping).await.expect("ping");
    assert_eq!(ping.reply, json!({ "status": "ok" }));
    assert!(ping.summary.starts_with("healthy"), "{}", ping.summary);
    let exec = CallOp::Exec {
        program: "thumbs".into(),
        args: vec!["resize".into(), "a.png".into(), "64".into()],
        timeout: None,
    };
    let out = client.call(&exec).await.expect("exec");
    assert_eq!(
        out.reply,
        json!({ "plugin": "thumbs", "action": "resize", "input": { "args": ["a.png", "64"] } })
    );
    assert_eq!(out.summary, "200 POST /v1/plugin/thumbs/actions/resize");
    let raw = CallOp::Raw {
        json: r#"{"method":"POST","path":"/v1/plugin/p/actions/a","body":[1]}"#.into(),
    };
    assert_eq!(
        client.call(&raw).await.expect("raw").reply["input"],
        json!([1])
    );
    for op in [
        CallOp::Info,
        CallOp::Exec {
            program: "p".into(),
            args: vec![],
            timeout: None,
        },
        CallOp::Raw { json: "[]".into() },
    ] {
        let err = client.call(&op).await.expect_err("invalid");
        assert_eq!(err.kind(), "invalid", "{op:?}");
    }
    assert_eq!(done(guest).await, 3);
}

#[tokio::test]
async fn nothing_listening_is_refused_without_retry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = VolantClient::new(
        Endpoint::Unix(dir.path().join("none.sock")),
        default_options(),
    );
    let err = timeout(DEADLINE, client.health())
        .await
        .expect("deadline")
        .expect_err("no socket");
    assert_eq!(err.kind(), "no_such_socket");
    assert!(!matches!(err, ClientError::GaveUp { .. }), "{err}");
}
