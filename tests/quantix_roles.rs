//! The quantix host client against the mock quantix agent, and against scripted peers, through
//! real Unix sockets in temporary directories (plain and hybrid vsock): every request type over
//! both framings, events never taken as replies, every deadline under the paused clock, and a
//! peer that resets, sends garbage or answers with the wrong arm.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use guestwire::guest::exec::ExecMode;
use guestwire::guest::quantix::{UNIMPLEMENTED, serve_connection};
use guestwire::guest::{GuestConfig, LoopMode};
use guestwire::host::quantix::{Framing, Payloaded, QuantixClient};
use guestwire::host::retry::RetryPolicy;
use guestwire::host::{CallOp, ClientError, DialOptions, Phase};
use guestwire::io::{Endpoint, FramedReader, Listener};
use guestwire::wire::hybrid::Flavour;
use guestwire::wire::quantix::{
    AgentMessage, CreateDirectoryRequest, ExecuteRequest, ExecuteResponse, FileDeleteRequest,
    FileStatRequest, GetHardwareInfoRequest, ListDirectoryRequest, Payload, PongResponse,
    ShutdownType,
};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const BOTH: [Framing; 2] = [Framing::Qtx1, Framing::Legacy];

fn opts() -> DialOptions {
    DialOptions {
        retry: RetryPolicy::once(),
        ..DialOptions::default()
    }
}

fn guest_cfg(exec: ExecMode, root: Option<&Path>) -> GuestConfig {
    GuestConfig {
        root: root.map(Path::to_path_buf),
        exec,
        telemetry_interval: None,
        ..GuestConfig::default()
    }
}

/// Serves every connection accepted on `listener` with the mock agent.
fn serve(mut listener: Listener, cfg: GuestConfig, framing: Framing) -> JoinHandle<()> {
    let cfg = Arc::new(cfg);
    tokio::spawn(async move {
        while let Ok(conn) = listener.accept().await {
            tokio::spawn(serve_connection(conn.stream, cfg.clone(), framing));
        }
    })
}

/// A mock agent on a Unix socket in `dir`.
async fn unix_guest(dir: &Path, cfg: GuestConfig, framing: Framing) -> (Endpoint, JoinHandle<()>) {
    let path = dir.join("agent.sock");
    let listener = Listener::bind_unix(&path).await.expect("bind");
    (Endpoint::Unix(path), serve(listener, cfg, framing))
}

/// Deterministic bytes that are not a repeating pattern of the chunk size.
fn contents(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Every request type of the client against a mock agent at `ep` (exec in echo mode, a sandbox
/// root at `root`).
async fn every_request(ep: &Endpoint, framing: Framing, root: &Path) {
    let client = QuantixClient::connect(ep, opts(), framing)
        .await
        .expect("connect");
    let what = format!("{ep} {framing}");

    let pong = client.ping().await.expect("ping");
    assert!(pong.version.starts_with("guestwire-mock"), "{what}");

    let out = client
        .execute(ExecuteRequest {
            command: "uname".into(),
            args: vec!["-a".into(), "two words".into()],
            ..Default::default()
        })
        .await
        .expect("execute");
    assert_eq!(out.stdout, "uname -a two words", "{what}");
    assert_eq!(out.exit_code, 0);

    // A file over 64 KiB: several chunks each way.
    let data = contents(200 * 1024 + 17);
    let written = client
        .write_file("/dir-free.bin", &data)
        .await
        .expect("write");
    assert_eq!(written, data.len() as u64);
    let back = client.read_file("/dir-free.bin").await.expect("read");
    assert_eq!(back.chunks, 4, "{what}");
    assert_eq!(back.total_size, data.len() as u64);
    assert!(back.data == data, "{what}: contents differ");
    assert_eq!(
        std::fs::read(root.join("dir-free.bin")).expect("on disk"),
        data
    );
    // An empty file is one empty chunk each way.
    assert_eq!(client.write_file("/empty", b"").await.expect("write"), 0);
    assert!(
        client
            .read_file("/empty")
            .await
            .expect("read")
            .data
            .is_empty()
    );

    // stat / mkdir / list / delete through the raw request.
    let reply = client
        .request(
            CreateDirectoryRequest {
                path: "/a/b".into(),
                create_parents: true,
                mode: 0,
            }
            .into(),
        )
        .await
        .expect("mkdir");
    assert!(matches!(reply.payload, Some(Payload::CreateDirectoryResponse(r)) if r.success));
    let reply = client
        .request(
            FileStatRequest {
                path: "/dir-free.bin".into(),
            }
            .into(),
        )
        .await
        .expect("stat");
    match reply.payload {
        Some(Payload::FileStatResponse(r)) => {
            let entry = r.entry.expect("entry");
            assert_eq!(entry.size_bytes, data.len() as u64);
            assert!(!entry.is_directory);
        }
        other => panic!("{other:?}"),
    }
    let reply = client
        .request(
            ListDirectoryRequest {
                path: "/".into(),
                ..Default::default()
            }
            .into(),
        )
        .await
        .expect("list");
    match reply.payload {
        Some(Payload::ListDirectoryResponse(r)) => {
            let names: Vec<&str> = r.entries.iter().map(|e| e.name.as_str()).collect();
            assert_eq!(names, ["a", "dir-free.bin", "empty"], "{what}");
            assert!(r.entries[0].is_directory);
        }
        other => panic!("{other:?}"),
    }
    let reply = client
        .request(
            FileDeleteRequest {
                path: "/a".into(),
                recursive: true,
            }
            .into(),
        )
        .await
        .expect("delete");
    assert!(matches!(reply.payload, Some(Payload::FileDeleteResponse(r)) if r.success));
    assert!(!root.join("a").exists());

    // A path that escapes the root: the agent's error text, as an agent error.
    match client.read_file("/../../etc/hostname").await {
        Err(ClientError::Agent { code, message }) => {
            assert_eq!(code, "file_read_failed");
            assert!(message.contains("escapes"), "{message}");
        }
        other => panic!("{what}: {other:?}"),
    }

    let shut = client
        .shutdown(ShutdownType::Reboot)
        .await
        .expect("shutdown");
    assert!(shut.accepted);
    let caps = client.capabilities().await.expect("capabilities");
    assert!(caps.capabilities.iter().any(|c| c == "file_read"));
    assert_eq!(
        caps.features.get("framing").map(String::as_str),
        Some(framing.protocol())
    );

    // An unimplemented request: the agent's error event fails that request, promptly.
    match client
        .request(GetHardwareInfoRequest::default().into())
        .await
    {
        Err(ClientError::Agent { code, message }) => {
            assert_eq!(code, UNIMPLEMENTED);
            assert!(message.contains("get_hardware_info"), "{message}");
        }
        other => panic!("{what}: {other:?}"),
    }
    // ... and is also an event.
    let events = client.events().drain();
    assert!(
        events
            .iter()
            .any(|e| e.payload_name() == Some("agent_ready")),
        "{what}"
    );
    assert!(events.iter().any(|e| e.payload_name() == Some("error")));
    // The connection still works.
    client.ping().await.expect("ping after all that");
    let stats = client.stats();
    assert_eq!(stats.malformed, 0);
    assert_eq!(stats.unmatched, 0);
    assert_eq!(client.pending(), 0);
}

#[tokio::test]
async fn every_request_over_a_unix_socket_in_both_framings_and_loops() {
    for framing in BOTH {
        for loop_mode in [LoopMode::Robust, LoopMode::Naive] {
            let dir = tempfile::tempdir().expect("tempdir");
            let root = dir.path().join("root");
            std::fs::create_dir(&root).expect("root");
            let cfg = GuestConfig {
                loop_mode,
                ..guest_cfg(ExecMode::Echo, Some(&root))
            };
            let (ep, server) = unix_guest(dir.path(), cfg, framing).await;
            every_request(&ep, framing, &root).await;
            server.abort();
        }
    }
}

#[tokio::test]
async fn every_request_over_hybrid_vsock() {
    for framing in BOTH {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir(&root).expect("root");
        let path = dir.path().join("v.sock");
        let listener = Listener::bind_hvsock(&path, &[1024], Flavour::Firecracker)
            .await
            .expect("bind");
        let server = serve(listener, guest_cfg(ExecMode::Echo, Some(&root)), framing);
        let ep = Endpoint::Hvsock { path, port: 1024 };
        every_request(&ep, framing, &root).await;
        server.abort();
    }
}

#[tokio::test]
async fn a_real_command_and_the_cli_operations() {
    for framing in BOTH {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir(&root).expect("root");
        let (ep, server) =
            unix_guest(dir.path(), guest_cfg(ExecMode::Real, Some(&root)), framing).await;
        let client = QuantixClient::connect(&ep, opts(), framing)
            .await
            .expect("connect");

        let out = client
            .call(&CallOp::Exec {
                program: "/bin/echo".into(),
                args: vec!["hello".into(), "guest".into()],
                timeout: Some(Duration::from_secs(10)),
            })
            .await
            .expect("exec");
        assert_eq!(out.exit_code, Some(0));
        assert_eq!(out.data.as_deref(), Some(&b"hello guest\n"[..]));
        assert!(
            out.summary.starts_with("exit=0 stdout=12B"),
            "{}",
            out.summary
        );
        assert!(
            out.events.iter().any(|e| e["agent_ready"].is_object()),
            "{:?}",
            out.events
        );

        let out = client.call(&CallOp::Ping).await.expect("ping");
        assert!(out.summary.starts_with("pong seq="), "{}", out.summary);
        let data = Bytes::from(contents(70_000));
        let out = client
            .call(&CallOp::Write {
                path: "/x/../f".into(),
                data: data.clone(),
            })
            .await
            .expect("write");
        assert_eq!(out.reply["chunks"], 2);
        let out = client
            .call(&CallOp::Read { path: "/f".into() })
            .await
            .expect("read");
        assert_eq!(out.data, Some(data));
        let out = client
            .call(&CallOp::Shutdown {
                mode: "halt".into(),
            })
            .await
            .expect("shutdown");
        assert_eq!(out.reply["accepted"], true);
        assert!(matches!(
            client
                .call(&CallOp::Shutdown {
                    mode: "explode".into()
                })
                .await,
            Err(ClientError::Invalid(_))
        ));
        let out = client.call(&CallOp::Info).await.expect("info");
        assert!(out.summary.contains("capabilities=10"), "{}", out.summary);
        let out = client
            .call(&CallOp::Raw {
                json: r#"{"message_id": "ignored", "ping": {"sequence": 77}}"#.into(),
            })
            .await
            .expect("raw");
        assert_eq!(out.reply["pong"]["sequence"], 77);
        assert_ne!(out.reply["message_id"], "ignored");
        assert!(matches!(
            client
                .call(&CallOp::Raw {
                    json: r#"{"pong": {}}"#.into()
                })
                .await,
            Err(ClientError::Invalid(_))
        ));
        server.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn events_are_never_taken_as_replies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = GuestConfig {
        telemetry_interval: Some(Duration::from_secs(1)),
        reply_delay: Duration::from_millis(2500),
        exec: ExecMode::Echo,
        ..GuestConfig::default()
    };
    let (ep, server) = unix_guest(dir.path(), cfg, Framing::Qtx1).await;
    let client = QuantixClient::connect(&ep, opts(), Framing::Qtx1)
        .await
        .expect("connect");
    let events = client.events();
    let started = Instant::now();
    let pong = client.ping().await.expect("pong, not telemetry");
    assert!(started.elapsed() >= Duration::from_millis(2500));
    assert_eq!(pong.sequence, 1);
    // AgentReady and the telemetry of the first two seconds arrived while the ping waited.
    let first = events.recv().await.expect("event");
    assert_eq!(first.payload_name(), Some("agent_ready"));
    let mut telemetry = 0;
    while let Some(e) = events.try_recv() {
        assert_eq!(e.payload_name(), Some("telemetry"));
        telemetry += 1;
    }
    assert!(telemetry >= 2, "{telemetry}");
    let stats = client.stats();
    assert_eq!(stats.replies, 1);
    assert_eq!(stats.unmatched, 0);
    server.abort();
}

#[tokio::test(start_paused = true)]
async fn a_slow_agent_times_a_ping_out_at_exactly_the_ping_deadline() {
    for framing in BOTH {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = GuestConfig {
            reply_delay: Duration::from_secs(60),
            telemetry_interval: None,
            ..GuestConfig::default()
        };
        let (ep, server) = unix_guest(dir.path(), cfg, framing).await;
        let client = QuantixClient::connect(&ep, opts(), framing)
            .await
            .expect("connect");
        let started = Instant::now();
        match client.ping().await {
            Err(ClientError::TimedOut {
                phase: Phase::Request,
                after,
                detail,
            }) => {
                assert_eq!(after, Duration::from_secs(5));
                assert!(detail.contains("no pong for ping"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert_eq!(client.pending(), 0);
        // The late pong is counted, not taken by the next request.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(client.stats().unmatched, 1);
        server.abort();
    }
}

/// A Unix listener in `dir` whose one accepted connection is handed to `peer`.
async fn scripted<F, Fut>(dir: &Path, peer: F) -> (Endpoint, JoinHandle<()>)
where
    F: FnOnce(tokio::net::UnixStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let path = dir.join("peer.sock");
    let listener = tokio::net::UnixListener::bind(&path).expect("bind");
    let task = tokio::spawn(async move {
        if let Ok((stream, _)) = listener.accept().await {
            peer(stream).await;
        }
    });
    (Endpoint::Unix(path), task)
}

/// Reads one request frame from the client.
async fn read_request(
    stream: &mut tokio::net::UnixStream,
    framing: Framing,
) -> Option<AgentMessage> {
    let mut reader = FramedReader::new(&mut *stream, framing.decoder());
    let frame = reader.next().await?.ok()?;
    match reader.decoder().payload(frame.message, frame.offset) {
        Payloaded::Message(m) => Some(m),
        Payloaded::Bad { .. } => None,
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_times_out_every_kind_of_request_at_its_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ep, peer) = scripted(dir.path(), |stream| async move {
        // Accept, never write, hold the connection open.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(stream);
    })
    .await;
    let client = QuantixClient::connect(&ep, opts(), Framing::Qtx1)
        .await
        .expect("connect");
    let cases: [(Payload, u64); 3] = [
        (Payload::Ping(Default::default()), 5),
        (Payload::GetCapabilities(Default::default()), 30),
        (
            ExecuteRequest {
                command: "sleep".into(),
                timeout_seconds: 10,
                ..Default::default()
            }
            .into(),
            15,
        ),
    ];
    for (payload, secs) in cases {
        let name = payload.name();
        let started = Instant::now();
        match client.request(payload).await {
            Err(ClientError::TimedOut {
                phase: Phase::Request,
                after,
                ..
            }) => assert_eq!(after, Duration::from_secs(secs), "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(started.elapsed(), Duration::from_secs(secs), "{name}");
    }
    peer.abort();
}

#[tokio::test(start_paused = true)]
async fn a_vmm_that_never_answers_connect_times_out_the_handshake() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ep, peer) = scripted(dir.path(), |stream| async move {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(stream);
    })
    .await;
    let Endpoint::Unix(path) = ep else {
        unreachable!()
    };
    let ep = Endpoint::Hvsock { path, port: 1024 };
    let started = Instant::now();
    match QuantixClient::connect(&ep, opts(), Framing::Qtx1).await {
        Err(ClientError::TimedOut {
            phase: Phase::Handshake,
            after,
            ..
        }) => assert_eq!(after, Duration::from_secs(5)),
        other => panic!("{other:?}"),
    }
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    peer.abort();
}

#[tokio::test]
async fn a_peer_that_resets_mid_reply_fails_the_request_with_what_had_arrived() {
    for framing in BOTH {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ep, peer) = scripted(dir.path(), move |mut stream| async move {
            // Wait for the request without reading it: unread data makes the close a reset.
            let _ = stream.readable().await;
            let pong = AgentMessage::new("1", PongResponse::default());
            let frame = framing.encode(&pong).expect("encode");
            let _ = stream.write_all(&frame[..frame.len() - 2]).await;
            drop(stream);
        })
        .await;
        let client = QuantixClient::connect(&ep, opts(), framing)
            .await
            .expect("connect");
        match client.ping().await {
            Err(ClientError::Reset {
                phase: Phase::Request,
                detail,
            }) => assert!(detail.contains("bytes of an unfinished frame"), "{detail}"),
            other => panic!("{framing}: {other:?}"),
        }
        // And every later request.
        assert!(matches!(
            client.ping().await,
            Err(ClientError::Reset { .. })
        ));
        peer.await.expect("peer");
    }
}

#[tokio::test]
async fn a_peer_that_closes_mid_reply_fails_the_request_as_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ep, peer) = scripted(dir.path(), |mut stream| async move {
        let Some(req) = read_request(&mut stream, Framing::Qtx1).await else {
            return;
        };
        let pong = AgentMessage::new(req.message_id, PongResponse::default());
        let frame = Framing::Qtx1.encode(&pong).expect("encode");
        let _ = stream.write_all(&frame[..6]).await;
        let _ = stream.shutdown().await;
    })
    .await;
    let client = QuantixClient::connect(&ep, opts(), Framing::Qtx1)
        .await
        .expect("connect");
    match client.ping().await {
        Err(ClientError::Closed {
            phase: Phase::Request,
            detail,
        }) => assert!(detail.contains("6 bytes"), "{detail}"),
        other => panic!("{other:?}"),
    }
    peer.await.expect("peer");
}

#[tokio::test]
async fn a_peer_that_sends_garbage_gives_malformed_with_the_raw_bytes() {
    for framing in BOTH {
        let dir = tempfile::tempdir().expect("tempdir");
        let garbage: &[u8] = b"\xff\xfe this is not protobuf \x00\x01";
        let (ep, peer) = scripted(dir.path(), move |mut stream| async move {
            if read_request(&mut stream, framing).await.is_none() {
                return;
            }
            let mut frame = Vec::new();
            if framing == Framing::Qtx1 {
                frame.extend_from_slice(b"QTX\x01");
            }
            frame.extend_from_slice(&(garbage.len() as u32).to_be_bytes());
            frame.extend_from_slice(garbage);
            let _ = stream.write_all(&frame).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        })
        .await;
        let client = QuantixClient::connect(&ep, opts(), framing)
            .await
            .expect("connect");
        match client.ping().await {
            Err(ClientError::Malformed { raw, error }) => {
                assert_eq!(&raw[..], garbage, "{framing}");
                assert_eq!(error.kind(), "malformed");
            }
            other => panic!("{framing}: {other:?}"),
        }
        assert_eq!(client.stats().malformed, 1);
        peer.abort();
    }
}

#[tokio::test]
async fn a_legacy_stream_that_cannot_be_decoded_fails_pending_and_later_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ep, peer) = scripted(dir.path(), |mut stream| async move {
        if read_request(&mut stream, Framing::Legacy).await.is_none() {
            return;
        }
        // A QTX1 header to a legacy reader: a length of about 1.36 GB.
        let _ = stream.write_all(b"QTX\x01\x00\x00\x00\x02\x08\x01").await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let client = QuantixClient::connect(&ep, opts(), Framing::Legacy)
        .await
        .expect("connect");
    match client.ping().await {
        Err(ClientError::Malformed { error, raw }) => {
            assert_eq!(error.kind(), "oversize");
            assert!(raw.starts_with(b"QTX\x01"), "{raw:?}");
        }
        other => panic!("{other:?}"),
    }
    // Later requests get the same error and bytes, not a vaguer one.
    match client.ping().await {
        Err(ClientError::Malformed { error, raw }) => {
            assert_eq!(error.kind(), "oversize");
            assert!(raw.starts_with(b"QTX\x01"), "{raw:?}");
        }
        other => panic!("{other:?}"),
    }
    peer.abort();
}

#[tokio::test]
async fn a_reply_of_the_wrong_arm_is_a_protocol_error() {
    for framing in BOTH {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ep, peer) = scripted(dir.path(), move |mut stream| async move {
            let Some(req) = read_request(&mut stream, framing).await else {
                return;
            };
            let wrong = AgentMessage::new(req.message_id, ExecuteResponse::default());
            let _ = stream
                .write_all(&framing.encode(&wrong).expect("encode"))
                .await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        })
        .await;
        let client = QuantixClient::connect(&ep, opts(), framing)
            .await
            .expect("connect");
        match client.ping().await {
            Err(ClientError::Protocol { reason }) => {
                assert!(
                    reason.contains("answered with execute_response instead of pong"),
                    "{reason}"
                );
            }
            other => panic!("{framing}: {other:?}"),
        }
        peer.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_dropped_by_its_caller_is_no_longer_pending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ep, peer) = scripted(dir.path(), |stream| async move {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(stream);
    })
    .await;
    let client = QuantixClient::connect(&ep, opts(), Framing::Qtx1)
        .await
        .expect("connect");
    let gave_up = tokio::time::timeout(Duration::from_secs(1), client.ping()).await;
    assert!(gave_up.is_err(), "the caller's own timeout");
    assert_eq!(client.pending(), 0);
    peer.abort();
}
