//! The qga client against a scripted peer (paused clock: every deadline is exact and no test
//! waits for real) and against the mock agent over an in-memory pipe.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};

use super::*;
use crate::guest::GuestConfig;
use crate::guest::exec::ExecMode;
use crate::guest::qga::QgaAgent;
use crate::host::retry::RetryPolicy;

fn opts() -> DialOptions {
    let mut o = DialOptions {
        retry: RetryPolicy::once(),
        ..DialOptions::default()
    };
    o.deadlines.handshake = Some(Duration::from_secs(2));
    o.deadlines.request = Some(Duration::from_secs(7));
    o.deadlines.ping = Some(Duration::from_secs(3));
    o.deadlines.execute_grace = Some(Duration::from_secs(1));
    o
}

/// The agent's side of the pipe, driven by the test.
struct Peer {
    rd: FramedReader<ReadHalf<DuplexStream>, QgaDecoder>,
    wr: WriteHalf<DuplexStream>,
}

impl Peer {
    async fn recv(&mut self) -> QgaMessage {
        match self.rd.next_timeout(Duration::from_secs(60)).await {
            Some(Ok(frame)) => frame.message,
            other => panic!("expected a message from the client, got {other:?}"),
        }
    }

    /// Reads the client's 0xFF and `guest-sync-delimited`, returns the id.
    async fn expect_sync(&mut self) -> i64 {
        assert_eq!(self.recv().await, QgaMessage::Delimiter);
        self.expect_sync_request().await
    }

    async fn expect_sync_request(&mut self) -> i64 {
        match self.recv().await {
            QgaMessage::Command {
                execute, arguments, ..
            } if execute == "guest-sync-delimited" => arguments
                .and_then(|a| a.get("id").and_then(Value::as_i64))
                .expect("sync id"),
            other => panic!("expected guest-sync-delimited, got {other:?}"),
        }
    }

    async fn expect_command(&mut self, name: &str) -> Option<Value> {
        match self.recv().await {
            QgaMessage::Command {
                execute, arguments, ..
            } if execute == name => arguments,
            other => panic!("expected {name}, got {other:?}"),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.wr.write_all(bytes).await.expect("peer write");
    }

    /// qemu-ga's answer to 0xFF + sync: the stray error, then 0xFF and the id.
    async fn answer_sync(&mut self, id: i64) {
        self.send(b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}\n")
            .await;
        let mut reply = vec![0xFF];
        reply.extend_from_slice(format!("{{\"return\": {id}}}\n").as_bytes());
        self.send(&reply).await;
    }
}

fn pair(buffer: usize) -> (QgaClient, Peer) {
    let (a, b) = tokio::io::duplex(buffer);
    let (rd, wr) = tokio::io::split(b);
    let client = QgaClient::new_unsynced(Box::new(a), opts(), 100);
    (
        client,
        Peer {
            rd: FramedReader::new(rd, QgaDecoder::new()),
            wr,
        },
    )
}

async fn synced_pair() -> (QgaClient, Peer) {
    let (mut client, mut peer) = pair(1 << 16);
    let (id, ()) = tokio::join!(client.sync(), async {
        let id = peer.expect_sync().await;
        peer.answer_sync(id).await;
    });
    assert_eq!(id.expect("sync"), 100);
    (client, peer)
}

#[tokio::test(start_paused = true)]
async fn sync_skips_stray_output_until_its_delimited_reply() {
    let (mut client, mut peer) = pair(1 << 16);
    // Left over from an earlier client: a reply, an old sync, garbage, half an object.
    peer.send(b"{\"return\": {}}\n\xff{\"return\": 99}\nnot json\n{\"return\": [1,")
        .await;
    let (synced, ()) = tokio::join!(client.sync(), async {
        let id = peer.expect_sync().await;
        // The right id without a 0xFF in front is accepted too (flagged by SyncWaiter).
        peer.send(b"\xff{\"return\": 12}\n").await;
        peer.answer_sync(id).await;
    });
    assert_eq!(synced.expect("sync"), 100);
    assert_eq!(client.last_sync_id(), Some(100));
    assert!(!client.needs_sync());
    assert!(client.skipped() >= 4, "skipped {}", client.skipped());
}

#[tokio::test(start_paused = true)]
async fn handshake_deadline_bounds_the_sync() {
    let (mut client, mut peer) = pair(1 << 16);
    let start = Instant::now();
    let (err, _) = tokio::join!(client.sync(), peer.expect_sync());
    let err = err.expect_err("no reply");
    assert!(
        matches!(err, ClientError::TimedOut { phase: Phase::Handshake, after, .. } if after == Duration::from_secs(2)),
        "{err}"
    );
    assert!(
        err.to_string().contains("guest-sync-delimited 100"),
        "{err}"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert!(client.needs_sync());
}

#[tokio::test(start_paused = true)]
async fn a_timeout_makes_the_next_call_resync_with_a_fresh_id() {
    let (mut client, mut peer) = synced_pair().await;
    let (err, _) = tokio::join!(client.ping(), peer.expect_command("guest-ping"));
    let err = err.expect_err("no pong");
    assert!(
        matches!(err, ClientError::TimedOut { phase: Phase::Request, after, .. } if after == Duration::from_secs(3)),
        "{err}"
    );
    assert!(client.needs_sync());
    let (pong, ()) = tokio::join!(client.ping(), async {
        let id = peer.expect_sync().await;
        assert_eq!(id, 101, "never the same id twice");
        // The late answer to the abandoned ping arrives first: it must not answer the new one.
        peer.send(b"{\"return\": {}}\n").await;
        peer.answer_sync(id).await;
        peer.expect_command("guest-ping").await;
        peer.send(b"{\"return\": {}}\n").await;
    });
    pong.expect("pong after resync");
    assert_eq!(client.last_sync_id(), Some(101));
    assert!(client.skipped() >= 2);
}

#[tokio::test(start_paused = true)]
async fn request_deadline_and_agent_errors() {
    let (mut client, mut peer) = synced_pair().await;
    let (r, _) = tokio::join!(client.execute("guest-no-such-command", None), async {
        peer.expect_command("guest-no-such-command").await;
        peer.send(b"{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command guest-no-such-command has not been found\"}}\n").await;
    });
    match r.expect_err("agent error") {
        ClientError::Agent { code, message } => {
            assert_eq!(code, "CommandNotFound");
            assert_eq!(
                message,
                "The command guest-no-such-command has not been found"
            );
        }
        other => panic!("{other}"),
    }
    assert!(
        !client.needs_sync(),
        "an error reply keeps the stream in step"
    );
    let (r, _) = tokio::join!(client.execute("guest-info", None), peer.recv());
    let err = r.expect_err("silence");
    assert!(
        matches!(err, ClientError::TimedOut { phase: Phase::Request, after, .. } if after == Duration::from_secs(7)),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn malformed_reply_then_resync() {
    let (mut client, mut peer) = synced_pair().await;
    let (r, _) = tokio::join!(client.execute("guest-ping", None), async {
        peer.recv().await;
        peer.send(b"garbage\n").await;
    });
    let err = r.expect_err("garbage");
    assert_eq!(err.kind(), "malformed", "{err}");
    assert!(client.needs_sync());
}

#[tokio::test(start_paused = true)]
async fn peer_closing_mid_request_is_closed() {
    let (mut client, mut peer) = synced_pair().await;
    let (r, ()) = tokio::join!(client.execute("guest-ping", None), async {
        peer.recv().await;
        peer.wr.shutdown().await.expect("shutdown");
    });
    let err = r.expect_err("closed");
    assert!(
        matches!(
            err,
            ClientError::Closed {
                phase: Phase::Request,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn write_deadline_when_the_agent_does_not_read() {
    let (mut client, _peer) = pair(64);
    client.needs_sync = false;
    let err = client
        .execute(
            "guest-file-write",
            Some(json!({ "buf-b64": "A".repeat(4096) })),
        )
        .await
        .expect_err("blocked write");
    assert!(
        matches!(err, ClientError::TimedOut { phase: Phase::Request, ref detail, .. } if detail.contains("writing")),
        "{err}"
    );
    assert!(client.needs_sync());
}

#[tokio::test(start_paused = true)]
async fn exec_polls_with_backoff_until_exited() {
    let (mut client, mut peer) = synced_pair().await;
    let argv = ["hello".to_string()];
    let (st, polls) = tokio::join!(client.exec("/bin/echo", &argv, true), async {
        let args = peer.expect_command("guest-exec").await.expect("args");
        assert_eq!(
            args,
            json!({"path": "/bin/echo", "capture-output": true, "arg": ["hello"]})
        );
        peer.send(b"{\"return\": {\"pid\": 7}}\n").await;
        let mut polls = 0;
        for _ in 0..3 {
            let a = peer.expect_command("guest-exec-status").await;
            assert_eq!(a, Some(json!({"pid": 7})));
            polls += 1;
            peer.send(b"{\"return\": {\"exited\": false}}\n").await;
        }
        peer.expect_command("guest-exec-status").await;
        peer.send(b"{\"return\": {\"exitcode\": 0, \"out-data\": \"aGVsbG8K\", \"out-truncated\": false, \"exited\": true}}\n").await;
        polls + 1
    });
    let st = st.expect("exec");
    assert_eq!(polls, 4);
    assert_eq!(
        st,
        ExecStatus {
            pid: 7,
            exit_code: Some(0),
            stdout: b"hello\n".to_vec(),
            ..ExecStatus::default()
        }
    );
}

#[tokio::test(start_paused = true)]
async fn exec_deadline_bounds_the_polling() {
    let (mut client, mut peer) = synced_pair().await;
    let start = Instant::now();
    let argv = ["100".to_string()];
    let client_side = client.exec_within("/bin/sleep", &argv, false, Duration::from_secs(2));
    let peer_side = async {
        peer.expect_command("guest-exec").await;
        peer.send(b"{\"return\": {\"pid\": 9}}\n").await;
        let mut polls = 0u32;
        // Answer "still running" until the client stops asking (1 s of silence).
        while let Some(Ok(_)) = peer.rd.next_timeout(Duration::from_secs(1)).await {
            polls += 1;
            peer.send(b"{\"return\": {\"exited\": false}}\n").await;
        }
        polls
    };
    let (r, polls) = tokio::join!(client_side, peer_side);
    let err = r.expect_err("never exits");
    assert!(
        matches!(err, ClientError::TimedOut { phase: Phase::Request, after, ref detail } if after == Duration::from_secs(2) && detail.contains("pid 9")),
        "{err}"
    );
    // 10 ms doubling to 500 ms within 2 s: a handful of polls, not a busy loop.
    assert!((5..=10).contains(&polls), "{polls} polls");
    assert!(start.elapsed() >= Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn shutdown_has_no_reply_on_success() {
    let (mut client, mut peer) = synced_pair().await;
    let (r, ()) = tokio::join!(client.shutdown(Some("powerdown")), async {
        let a = peer.expect_command("guest-shutdown").await;
        assert_eq!(a, Some(json!({"mode": "powerdown"})));
        let id = peer.expect_sync_request().await;
        assert_eq!(id, 101);
        let mut reply = vec![0xFF];
        reply.extend_from_slice(format!("{{\"return\": {id}}}\n").as_bytes());
        peer.send(&reply).await;
    });
    assert_eq!(r.expect("accepted"), ShutdownOutcome::Confirmed);
    assert!(!client.needs_sync());

    let (r, ()) = tokio::join!(client.shutdown(Some("off")), async {
        peer.expect_command("guest-shutdown").await;
        let id = peer.expect_sync_request().await;
        peer.send(b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'mode' expects 'halt', 'powerdown' or 'reboot'\"}}\n").await;
        let mut reply = vec![0xFF];
        reply.extend_from_slice(format!("{{\"return\": {id}}}\n").as_bytes());
        peer.send(&reply).await;
    });
    let err = r.expect_err("refused");
    assert_eq!(err.kind(), "agent_error");

    let (r, _) = tokio::join!(client.shutdown(None), async {
        peer.expect_command("guest-shutdown").await;
        peer.expect_sync_request().await
    });
    assert_eq!(r.expect("silence"), ShutdownOutcome::NoReply);
    assert!(client.needs_sync());

    let (r, ()) = tokio::join!(client.shutdown(None), async {
        let id = peer.expect_sync().await;
        peer.answer_sync(id).await;
        peer.expect_command("guest-shutdown").await;
        peer.wr.shutdown().await.expect("close");
    });
    assert_eq!(r.expect("gone"), ShutdownOutcome::Disconnected);
}

#[tokio::test(start_paused = true)]
async fn connect_to_a_missing_socket_fails_with_its_kind() {
    let err = QgaClient::connect(&Endpoint::Unix("/nonexistent/qga.sock".into()), opts())
        .await
        .expect_err("no socket");
    assert_eq!(err.kind(), "no_such_socket");
}

/// The client against the mock agent: every CLI operation.
#[tokio::test]
async fn every_call_op_against_the_mock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = QgaAgent::new(Arc::new(GuestConfig {
        root: Some(dir.path().to_path_buf()),
        exec: ExecMode::Echo,
        ..GuestConfig::default()
    }));
    let (a, b) = tokio::io::duplex(1 << 16);
    let served = agent.clone();
    tokio::spawn(async move { served.serve(b).await });
    let mut client = QgaClient::from_stream(Box::new(a), opts())
        .await
        .expect("sync");

    assert_eq!(
        client.call(&CallOp::Ping).await.expect("ping").summary,
        "pong"
    );
    let info = client.call(&CallOp::Info).await.expect("info");
    assert!(
        info.summary.starts_with("qemu-ga guestwire-mock"),
        "{}",
        info.summary
    );
    let exec = client
        .call(&CallOp::Exec {
            program: "/bin/echo".into(),
            args: vec!["hi".into()],
            timeout: Some(Duration::from_secs(5)),
        })
        .await
        .expect("exec");
    assert_eq!(exec.exit_code, Some(0));
    assert_eq!(exec.data.as_deref(), Some(&b"/bin/echo hi"[..]));
    let big: Vec<u8> = (0..FILE_CHUNK * 2 + 17).map(|i| (i % 251) as u8).collect();
    let w = client
        .call(&CallOp::Write {
            path: "/sub.bin".into(),
            data: Bytes::from(big.clone()),
        })
        .await
        .expect("write");
    assert_eq!(w.reply["count"], big.len());
    let r = client
        .call(&CallOp::Read {
            path: "/sub.bin".into(),
        })
        .await
        .expect("read");
    assert_eq!(r.data.as_deref(), Some(&big[..]));
    let err = client
        .call(&CallOp::Read {
            path: "/missing".into(),
        })
        .await
        .expect_err("missing");
    assert_eq!(err.kind(), "agent_error");
    let raw = client
        .call(&CallOp::Raw {
            json: r#"{"execute":"guest-sync","arguments":{"id":5}}"#.into(),
        })
        .await
        .expect("raw");
    assert_eq!(raw.reply, json!(5));
    let raw = client
        .call(&CallOp::Raw {
            json: r#"{"execute":"guest-shutdown","arguments":{"mode":"halt"}}"#.into(),
        })
        .await
        .expect("raw shutdown");
    assert!(raw.summary.contains("Confirmed"), "{}", raw.summary);
    client
        .call(&CallOp::Shutdown {
            mode: "poweroff".into(),
        })
        .await
        .expect("shutdown");
    assert_eq!(agent.shutdowns(), vec!["halt", "powerdown"]);
    let err = client
        .call(&CallOp::Raw { json: "[1]".into() })
        .await
        .expect_err("not a command");
    assert_eq!(err.kind(), "invalid");
}
