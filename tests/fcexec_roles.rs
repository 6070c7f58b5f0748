//! The fcexec host client against the mock agent and scripted peers, through real Unix sockets
//! (`unix:` and `hvsock:` with a mock VMM), following seed 001's test plan: retry until the guest
//! listens, round trip, five log lines streamed before the result, deadline, reset and close
//! mid-stream with the partial logs, malformed replies with their raw bytes, protocol errors,
//! an unserved port. Never AF_VSOCK. Every wait has a deadline; clocks are paused where time
//! matters, and no test asserts wall-clock time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use guestwire::guest::exec::ExecMode;
use guestwire::guest::{GuestConfig, fcexec as mock};
use guestwire::host::fcexec::{FcexecClient, run_workload};
use guestwire::host::retry::RetryPolicy;
use guestwire::host::{CallOp, ClientError, DialOptions, Phase};
use guestwire::io::{Endpoint, Listener};
use guestwire::wire::fcexec::{FcexecEncoder, GuestRequest, GuestResponse, LogLines};
use guestwire::wire::hybrid::Flavour;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Bound on every wait in these tests (virtual under a paused clock).
const DEADLINE: Duration = Duration::from_secs(20);

fn cfg(exec: ExecMode, reply_delay: Duration) -> Arc<GuestConfig> {
    Arc::new(GuestConfig {
        exec,
        reply_delay,
        telemetry_interval: None,
        ..GuestConfig::default()
    })
}

fn echo_request(code: &str) -> GuestRequest {
    GuestRequest {
        runtime: "echo".into(),
        code: code.into(),
        ..GuestRequest::default()
    }
}

fn opts_with_deadline(request: Duration) -> DialOptions {
    let mut opts = DialOptions::default();
    opts.deadlines.request = Some(request);
    opts
}

/// Serves `n` connections on `listener` with the mock agent, each in its own task.
fn serve(mut listener: Listener, cfg: Arc<GuestConfig>, n: usize) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut conns = Vec::new();
        for _ in 0..n {
            let conn = timeout(DEADLINE, listener.accept())
                .await
                .expect("accept deadline")
                .expect("accept");
            conns.push(tokio::spawn(mock::serve_connection(
                conn.stream,
                cfg.clone(),
            )));
        }
        for c in conns {
            timeout(DEADLINE, c)
                .await
                .expect("serve deadline")
                .expect("join")
                .expect("serve");
        }
    })
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = u32::try_from(payload.len())
        .expect("small")
        .to_be_bytes()
        .to_vec();
    v.extend_from_slice(payload);
    v
}

fn log(line: &str) -> Vec<u8> {
    let mut buf = BytesMut::new();
    FcexecEncoder::new()
        .encode_log(line, &mut buf)
        .expect("log");
    buf.to_vec()
}

fn result_frame(r: &GuestResponse) -> Vec<u8> {
    let mut buf = BytesMut::new();
    FcexecEncoder::new()
        .encode_result(r, &mut buf)
        .expect("result");
    buf.to_vec()
}

/// Reads one whole frame (header included) from a scripted peer's stream.
async fn read_frame(s: &mut UnixStream) -> Vec<u8> {
    let mut head = [0u8; 4];
    timeout(DEADLINE, s.read_exact(&mut head))
        .await
        .expect("deadline")
        .expect("header");
    let mut v = head.to_vec();
    v.resize(4 + u32::from_be_bytes(head) as usize, 0);
    timeout(DEADLINE, s.read_exact(&mut v[4..]))
        .await
        .expect("deadline")
        .expect("payload");
    v
}

/// A scripted peer on a plain Unix socket: accepts one connection and runs `script` on it.
async fn scripted<F, Fut>(path: &Path, script: F) -> JoinHandle<()>
where
    F: FnOnce(UnixStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = UnixListener::bind(path).expect("bind");
    tokio::spawn(async move {
        let (s, _) = timeout(DEADLINE, listener.accept())
            .await
            .expect("accept deadline")
            .expect("accept");
        script(s).await;
    })
}

/// Runs `run_workload` against `ep` with the default options, collecting the log lines.
async fn run(ep: &Endpoint, req: &GuestRequest) -> (Result<GuestResponse, String>, Vec<String>) {
    let mut lines = Vec::new();
    let r = timeout(
        DEADLINE,
        run_workload(ep, &DialOptions::default(), req, |l| {
            lines.push(l.to_string())
        }),
    )
    .await
    .expect("client deadline");
    (r.map_err(|e| e.to_string()), lines)
}

fn sock(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[tokio::test(start_paused = true)]
async fn retries_until_the_unix_socket_appears() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sock(&dir, "late.sock");
    let guest_path = path.clone();
    let guest = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let l = Listener::bind_unix(&guest_path).await.expect("bind");
        serve(l, cfg(ExecMode::Echo, Duration::ZERO), 1)
            .await
            .expect("guest");
    });
    let client = FcexecClient::new(Endpoint::Unix(path), DialOptions::default());
    let w = timeout(DEADLINE, client.run(&echo_request("hi"), |_| {}))
        .await
        .expect("deadline")
        .expect("run");
    // Seed 001's schedule: attempts at 0, 100 and 300 ms; the socket appears at 250 ms.
    assert_eq!(w.attempts, 3);
    assert_eq!(w.response.output, "hi\n");
    guest.await.expect("guest");
}

#[tokio::test(start_paused = true)]
async fn retries_until_the_guest_listens_behind_the_vmm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sock(&dir, "fc.vsock");
    // A Firecracker-like VMM whose guest agent starts listening on port 1024 only at the third
    // CONNECT: before that the VMM closes the host connection without a word.
    let vmm = UnixListener::bind(&path).expect("bind");
    let guest_cfg = cfg(ExecMode::Echo, Duration::ZERO);
    let vmm = tokio::spawn(async move {
        for attempt in 0..3 {
            let (mut s, _) = timeout(DEADLINE, vmm.accept())
                .await
                .expect("accept deadline")
                .expect("accept");
            let mut line = Vec::new();
            while !line.ends_with(b"\n") && line.len() < 32 {
                let mut b = [0u8; 1];
                timeout(DEADLINE, s.read_exact(&mut b))
                    .await
                    .expect("deadline")
                    .expect("command");
                line.push(b[0]);
            }
            assert_eq!(line, b"CONNECT 1024\n");
            if attempt < 2 {
                continue; // dropped: the guest is not listening yet
            }
            s.write_all(b"OK 1073741824\n").await.expect("ok");
            mock::serve_connection(s, guest_cfg.clone())
                .await
                .expect("serve");
        }
    });
    let ep = Endpoint::Hvsock { path, port: 1024 };
    let client = FcexecClient::new(ep, DialOptions::default());
    let w = timeout(DEADLINE, client.run(&echo_request("up"), |_| {}))
        .await
        .expect("deadline")
        .expect("run");
    assert_eq!(w.attempts, 3);
    assert_eq!(w.logs, ["up"]);
    vmm.await.expect("vmm");
}

#[tokio::test]
async fn request_bytes_and_response_struct_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sock(&dir, "peer.sock");
    let req = GuestRequest {
        runtime: "python".into(),
        code: "print('hi')".into(),
        code_archive: vec![1, 2, 3],
        input: b"stdin".to_vec(),
        env: [("K".to_string(), "V".to_string())].into(),
        entrypoint: "main.py".into(),
        timeout_s: 7,
    };
    let expected = GuestResponse {
        exit_code: 2,
        output: "out".into(),
        error: "err".into(),
        log_lines: Some(LogLines::Lines(vec!["x".into()])),
    };
    let mut want = BytesMut::new();
    FcexecEncoder::new()
        .encode_request(&req, &mut want)
        .expect("encode");
    let reply = result_frame(&expected);
    let (tx, rx) = oneshot::channel();
    let peer = scripted(&path, move |mut s| async move {
        let got = read_frame(&mut s).await;
        let _ = tx.send(got);
        s.write_all(&reply).await.expect("reply");
    })
    .await;
    let (got, lines) = run(&Endpoint::Unix(path), &req).await;
    assert_eq!(got.expect("run"), expected);
    assert!(lines.is_empty());
    let sent = timeout(DEADLINE, rx)
        .await
        .expect("deadline")
        .expect("sent");
    assert_eq!(sent, want.to_vec(), "the request's bytes on the wire");
    peer.await.expect("peer");
}

#[tokio::test]
async fn round_trip_through_the_mock_over_unix_and_hvsock() {
    let dir = tempfile::tempdir().expect("tempdir");
    for hv in [false, true] {
        let path = sock(&dir, if hv { "hv.sock" } else { "unix.sock" });
        let (listener, ep) = if hv {
            let l = Listener::bind_hvsock(&path, &[1024], Flavour::Firecracker)
                .await
                .expect("bind");
            (l, Endpoint::Hvsock { path, port: 1024 })
        } else {
            (
                Listener::bind_unix(&path).await.expect("bind"),
                Endpoint::Unix(path),
            )
        };
        let guest = serve(listener, cfg(ExecMode::Echo, Duration::ZERO), 1);
        let (got, lines) = run(&ep, &echo_request("x\ny")).await;
        let r = got.expect("run");
        assert_eq!(lines, ["x", "y"], "{ep}");
        assert_eq!(r.exit_code, 0);
        assert_eq!(r.output, "x\ny\n");
        assert_eq!(r.log_lines, Some(LogLines::Count(2)));
        timeout(DEADLINE, guest)
            .await
            .expect("deadline")
            .expect("guest");
    }
}

/// Proof of streaming: the peer sends each log line only after the test has seen the previous
/// one through the callback. A client that buffered lines until the result would deadlock here
/// (and fail at the deadline).
#[tokio::test]
async fn five_log_lines_reach_the_callback_before_the_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sock(&dir, "lockstep.sock");
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<()>();
    let peer = scripted(&path, move |mut s| async move {
        read_frame(&mut s).await;
        for i in 0..5 {
            s.write_all(&log(&format!("line {i}"))).await.expect("log");
            timeout(DEADLINE, ack_rx.recv())
                .await
                .expect("the client did not deliver the line before more data arrived")
                .expect("ack");
        }
        let done = GuestResponse {
            output: "done".into(),
            ..GuestResponse::default()
        };
        s.write_all(&result_frame(&done)).await.expect("result");
    })
    .await;
    let (line_tx, mut line_rx) = mpsc::unbounded_channel::<String>();
    let client = FcexecClient::new(Endpoint::Unix(path), DialOptions::default());
    let task = tokio::spawn(async move {
        client
            .run(&echo_request(""), move |l| {
                let _ = line_tx.send(l.to_string());
            })
            .await
    });
    for i in 0..5 {
        let line = timeout(DEADLINE, line_rx.recv())
            .await
            .expect("line deadline")
            .expect("line");
        assert_eq!(line, format!("line {i}"));
        assert!(
            !task.is_finished(),
            "the result came before line {i} was acked"
        );
        ack_tx.send(()).expect("ack");
    }
    let w = timeout(DEADLINE, task)
        .await
        .expect("deadline")
        .expect("join")
        .expect("run");
    assert_eq!(w.response.output, "done");
    assert_eq!(w.logs.len(), 5);
    assert!(line_rx.recv().await.is_none(), "exactly five callbacks");
    peer.await.expect("peer");
}

#[tokio::test(start_paused = true)]
async fn five_log_lines_from_a_delaying_mock_arrive_one_by_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sock(&dir, "slow.sock");
    let listener = Listener::bind_unix(&path).await.expect("bind");
    let guest = serve(listener, cfg(ExecMode::Echo, Duration::from_secs(1)), 1);
    let (line_tx, mut line_rx) = mpsc::unbounded_channel::<String>();
    let client = FcexecClient::new(Endpoint::Unix(path), DialOptions::default());
    let task = tokio::spawn(async move {
        client
            .run(&echo_request("a\nb\nc\nd\ne"), move |l| {
                let _ = line_tx.send(l.to_string());
            })
            .await
    });
    for want in ["a", "b", "c", "d", "e"] {
        let line = timeout(DEADLINE, line_rx.recv())
            .await
            .expect("deadline")
            .expect("line");
        assert_eq!(line, want);
        // The mock sleeps before every message, so the result cannot have arrived yet.
        assert!(!task.is_finished());
    }
    let w = timeout(DEADLINE, task)
        .await
        .expect("deadline")
        .expect("join")
        .expect("run");
    assert_eq!(w.response.log_lines, Some(LogLines::Count(5)));
    assert_eq!(w.logs, ["a", "b", "c", "d", "e"]);
    timeout(DEADLINE, guest)
        .await
        .expect("deadline")
        .expect("guest");
}

#[tokio::test(start_paused = true)]
async fn deadline_is_the_request_phase_and_keeps_the_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sock(&dir, "silent.sock");
    let (hold_tx, hold_rx) = oneshot::channel::<()>();
    let peer = scripted(&path, move |mut s| async move {
        read_frame(&mut s).await;
        s.write_all(&log("a")).await.expect("log");
        s.write_all(&log("b")).await.expect("log");
        // Then silence, with the connection open, until the test ends.
        let _ = hold_rx.await;
    })
    .await;
    let opts = opts_with_deadline(Duration::from_secs(2));
    let err = timeout(
        DEADLINE,
        run_workload(&Endpoint::Unix(path), &opts, &echo_request(""), |_| {}),
    )
    .await
    .expect("client deadline")
    .expect_err("times out");
    assert!(
        matches!(
            err.error,
            ClientError::TimedOut {
                phase: Phase::Request,
                after,
                ..
            } if after == Duration::from_secs(2)
        ),
        "{err}"
    );
    assert_eq!(err.logs, ["a", "b"]);
    assert!(err.to_string().contains("2 log lines had arrived"), "{err}");
    drop(hold_tx);
    peer.await.expect("peer");
}

#[tokio::test]
async fn reset_mid_stream_carries_the_partial_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sock(&dir, "reset.sock");
    let peer = scripted(&path, |mut s| async move {
        // Read only the length: closing with the rest unread makes the kernel reset the
        // connection (ECONNRESET on the host's next read, after the data already queued).
        let mut head = [0u8; 4];
        s.read_exact(&mut head).await.expect("header");
        s.write_all(&log("one")).await.expect("log");
        s.write_all(&log("two")).await.expect("log");
        drop(s);
    })
    .await;
    let ep = Endpoint::Unix(path);
    let mut seen = Vec::new();
    let err = timeout(
        DEADLINE,
        run_workload(&ep, &DialOptions::default(), &echo_request("x"), |l| {
            seen.push(l.to_string())
        }),
    )
    .await
    .expect("deadline")
    .expect_err("reset");
    assert!(
        matches!(
            err.error,
            ClientError::Reset {
                phase: Phase::Request,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.kind(), "reset");
    assert_eq!(err.logs, ["one", "two"]);
    assert_eq!(seen, ["one", "two"]);
    assert!(err.to_string().contains("\"one\", \"two\""), "{err}");
    peer.await.expect("peer");
}

#[tokio::test]
async fn close_mid_stream_carries_the_partial_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sock(&dir, "close.sock");
    let peer = scripted(&path, |mut s| async move {
        read_frame(&mut s).await;
        s.write_all(&log("one")).await.expect("log");
        s.write_all(&log("two")).await.expect("log");
    })
    .await;
    let opts = DialOptions::default();
    let err = timeout(
        DEADLINE,
        run_workload(&Endpoint::Unix(path), &opts, &echo_request("x"), |_| {}),
    )
    .await
    .expect("deadline")
    .expect_err("closed");
    assert_eq!(err.kind(), "closed");
    assert_eq!(err.logs, ["one", "two"]);
    assert!(
        err.error.to_string().contains("2 log lines had arrived"),
        "{err}"
    );
    peer.await.expect("peer");
}

/// Runs the client against a peer that answers with `reply` after reading the request.
async fn against(name: &str, reply: Vec<u8>) -> guestwire::host::fcexec::RunError {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sock(&dir, name);
    let peer = scripted(&path, move |mut s| async move {
        read_frame(&mut s).await;
        s.write_all(&reply).await.expect("reply");
    })
    .await;
    let opts = DialOptions::default();
    let err = timeout(
        DEADLINE,
        run_workload(&Endpoint::Unix(path), &opts, &echo_request(""), |_| {}),
    )
    .await
    .expect("deadline")
    .expect_err("bad reply");
    peer.await.expect("peer");
    err
}

#[tokio::test]
async fn malformed_reply_carries_the_raw_bytes() {
    let bad = br#"{"type":"log","line":"unterminated"#;
    let mut reply = log("ok");
    reply.extend(frame(bad));
    let err = against("malformed.sock", reply).await;
    assert_eq!(err.kind(), "malformed");
    match &err.error {
        ClientError::Malformed { raw, .. } => assert_eq!(&raw[..], &bad[..]),
        other => panic!("{other}"),
    }
    assert_eq!(err.logs, ["ok"]);
    assert!(err.to_json()["hex"].is_string());
}

#[tokio::test]
async fn unknown_type_is_a_protocol_error() {
    let err = against("unknown.sock", frame(br#"{"type":"progress","pct":50}"#)).await;
    assert_eq!(err.kind(), "protocol");
    assert!(err.to_string().contains("\"progress\""), "{err}");
}

#[tokio::test]
async fn result_without_a_response_is_a_protocol_error() {
    let err = against("noresp.sock", frame(br#"{"type":"result"}"#)).await;
    assert_eq!(err.kind(), "protocol");
    assert!(err.to_string().contains("without a response"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn connect_to_an_unserved_port_gives_up_after_the_retries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sock(&dir, "vmm.sock");
    let mut listener = Listener::bind_hvsock(&path, &[1024], Flavour::Firecracker)
        .await
        .expect("bind");
    // Every CONNECT names port 9, so accept never returns; the task is aborted at the end.
    let vmm = tokio::spawn(async move { listener.accept().await.map(|_| ()) });
    let ep = Endpoint::Hvsock { path, port: 9 };
    let err = timeout(
        DEADLINE,
        run_workload(&ep, &DialOptions::default(), &echo_request(""), |_| {}),
    )
    .await
    .expect("deadline")
    .expect_err("unserved");
    assert_eq!(err.kind(), "handshake_failed");
    assert!(
        matches!(err.error, ClientError::GaveUp { attempts: 5, .. }),
        "{err}"
    );
    assert!(err.logs.is_empty());
    vmm.abort();
}

#[tokio::test]
async fn concurrent_runs_each_get_their_own_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sock(&dir, "many.sock");
    let listener = Listener::bind_hvsock(&path, &[1024], Flavour::Firecracker)
        .await
        .expect("bind");
    const N: usize = 8;
    let guest = serve(listener, cfg(ExecMode::Echo, Duration::ZERO), N);
    let client = FcexecClient::new(
        Endpoint::Hvsock { path, port: 1024 },
        DialOptions::default(),
    );
    let mut set = tokio::task::JoinSet::new();
    for i in 0..N {
        let client = client.clone();
        set.spawn(async move {
            let code = format!("run {i}\nend {i}");
            let w = client.run(&echo_request(&code), |_| {}).await.expect("run");
            (i, w)
        });
    }
    let mut done = 0;
    while let Some(joined) = timeout(DEADLINE, set.join_next()).await.expect("deadline") {
        let (i, w) = joined.expect("join");
        assert_eq!(w.logs, [format!("run {i}"), format!("end {i}")]);
        done += 1;
    }
    assert_eq!(done, N);
    timeout(DEADLINE, guest)
        .await
        .expect("deadline")
        .expect("guest");
}

#[tokio::test]
async fn call_exec_runs_a_real_program_through_the_mock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sock(&dir, "exec.sock");
    let listener = Listener::bind_hvsock(&path, &[1024], Flavour::Firecracker)
        .await
        .expect("bind");
    let guest = serve(listener, cfg(ExecMode::Real, Duration::ZERO), 1);
    let client = FcexecClient::new(
        Endpoint::Hvsock { path, port: 1024 },
        DialOptions::default(),
    );
    let op = CallOp::Exec {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), "echo hello; echo world; exit 4".into()],
        timeout: Some(Duration::from_secs(10)),
    };
    let out = timeout(DEADLINE, client.call(&op))
        .await
        .expect("deadline")
        .expect("call");
    assert_eq!(out.exit_code, Some(4));
    assert_eq!(out.events.len(), 2);
    assert_eq!(out.events[0]["line"], "hello");
    assert_eq!(out.data.as_deref(), Some(&b"hello\nworld\n"[..]));
    assert_eq!(out.reply["exit_code"], 4);
    assert!(
        out.summary.starts_with("exit 4 after 2 log lines"),
        "{}",
        out.summary
    );
    timeout(DEADLINE, guest)
        .await
        .expect("deadline")
        .expect("guest");
}

#[tokio::test]
async fn call_ping_raw_and_unsupported_operations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sock(&dir, "ops.sock");
    let listener = Listener::bind_hvsock(&path, &[1024], Flavour::Firecracker)
        .await
        .expect("bind");
    // One connection for the ping (closed without a request), one for the raw request.
    let guest = serve(listener, cfg(ExecMode::Echo, Duration::ZERO), 2);
    let client = FcexecClient::new(
        Endpoint::Hvsock { path, port: 1024 },
        DialOptions {
            retry: RetryPolicy::once(),
            ..DialOptions::default()
        },
    );
    let ping = timeout(DEADLINE, client.call(&CallOp::Ping))
        .await
        .expect("deadline")
        .expect("ping");
    assert!(
        ping.summary.contains("fcexec has no ping"),
        "{}",
        ping.summary
    );
    let raw = CallOp::Raw {
        json: r#"{"runtime":"echo","code":"r1\nr2"}"#.into(),
    };
    let out = timeout(DEADLINE, client.call(&raw))
        .await
        .expect("deadline")
        .expect("raw");
    assert_eq!(out.exit_code, Some(0));
    assert_eq!(out.events.len(), 2);
    for op in [
        CallOp::Info,
        CallOp::Read { path: "/x".into() },
        CallOp::Shutdown {
            mode: "poweroff".into(),
        },
    ] {
        let err = client.call(&op).await.expect_err("unsupported");
        assert_eq!(err.kind(), "invalid");
        assert!(err.to_string().contains("fcexec has no"), "{err}");
    }
    let bad_raw = CallOp::Raw {
        json: r#"{"type":"log","line":"x"}"#.into(),
    };
    assert_eq!(
        client
            .call(&bad_raw)
            .await
            .expect_err("not a request")
            .kind(),
        "invalid"
    );
    timeout(DEADLINE, guest)
        .await
        .expect("deadline")
        .expect("guest");
}
