//! Unit tests of the mock quantix agent over in-memory streams (`tokio::io::duplex`), where the
//! test controls exactly when the host reads, under the paused clock.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, DuplexStream, ReadHalf};

use super::*;
use crate::guest::exec::ExecMode;
use crate::io::FramedReader;
use crate::wire::quantix::{
    AgentMessage, FileReadRequest, GetHardwareInfoRequest, Payload, PingRequest,
};

fn cfg(mode: LoopMode, telemetry: Option<Duration>) -> Arc<GuestConfig> {
    Arc::new(GuestConfig {
        exec: ExecMode::Echo,
        telemetry_interval: telemetry,
        loop_mode: mode,
        ..GuestConfig::default()
    })
}

fn ping(id: u64) -> Vec<u8> {
    Framing::Qtx1
        .encode(&AgentMessage::new(
            id.to_string(),
            PingRequest { sequence: id },
        ))
        .expect("encode")
        .to_vec()
}

type HostReader = FramedReader<ReadHalf<DuplexStream>, crate::host::quantix::FrameDecoder>;

/// Reads messages until one answers `id` (bounded by `deadline`).
async fn reply_to(reader: &mut HostReader, id: &str, deadline: Duration) -> Option<AgentMessage> {
    tokio::time::timeout(deadline, async {
        while let Some(item) = reader.next().await {
            let frame = item.ok()?;
            if let crate::host::quantix::Payloaded::Message(m) =
                reader.decoder().payload(frame.message, frame.offset)
                && m.message_id == id
                && m.kind() == Some(crate::wire::quantix::MessageKind::Response)
            {
                return Some(m);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

/// A host that stops reading: the guest's writes fill the 1 KiB pipe, then the host sends
/// three pings. Returns the guest's counters once the pings have waited 30 s, and whether
/// three pongs arrive once the host reads again.
async fn stalled_host(mode: LoopMode) -> (StatsSnapshot, StatsSnapshot, usize) {
    let (host, guest) = tokio::io::duplex(1024);
    let stats = GuestStats::new();
    let task = tokio::spawn(serve_connection_with_stats(
        Box::new(guest),
        cfg(mode, Some(Duration::from_secs(1))),
        Framing::Qtx1,
        stats.clone(),
    ));
    let (read, mut write) = tokio::io::split(host);
    // 60 telemetry intervals without reading: far more than 1 KiB of events.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let full = stats.snapshot();
    for id in 1..=3 {
        write.write_all(&ping(id)).await.expect("request");
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    let stalled = stats.snapshot();
    // The host reads again.
    let mut reader = FramedReader::new(read, Framing::Qtx1.decoder());
    let mut pongs = 0;
    for id in 1..=3 {
        if reply_to(&mut reader, &id.to_string(), Duration::from_secs(5))
            .await
            .is_some()
        {
            pongs += 1;
        }
    }
    drop(write);
    drop(reader);
    let _ = tokio::time::timeout(Duration::from_secs(60), task).await;
    (full, stalled, pongs)
}

#[tokio::test(start_paused = true)]
async fn a_stalled_host_stops_the_naive_loop_reading_but_not_the_robust_one() {
    let (full, stalled, pongs) = stalled_host(LoopMode::Naive).await;
    // Blocked in a telemetry write: after the pipe filled, nothing more was written or read.
    assert_eq!(stalled.events_sent, full.events_sent, "{stalled:?}");
    assert_eq!(stalled.requests_read, 0, "{stalled:?}");
    // Once the host reads, the blocked write completes and the loop serves the pings.
    assert_eq!(pongs, 3);

    let (_, stalled, pongs) = stalled_host(LoopMode::Robust).await;
    // The writer is blocked too, but the reader read and answered every ping meanwhile;
    // telemetry ticks were skipped rather than queued.
    assert_eq!(stalled.requests_read, 3, "{stalled:?}");
    assert_eq!(stalled.replies_sent, 0, "{stalled:?}");
    assert!(stalled.telemetry_skipped > 50, "{stalled:?}");
    assert!(stalled.write_timeouts > 0, "{stalled:?}");
    assert_eq!(pongs, 3);
}

#[tokio::test(start_paused = true)]
async fn the_robust_loop_resets_after_fifty_timed_out_writes() {
    let (host, guest) = tokio::io::duplex(512);
    let stats = GuestStats::new();
    let started = tokio::time::Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(1000),
        serve_connection_with_stats(
            Box::new(guest),
            cfg(LoopMode::Robust, Some(Duration::from_secs(1))),
            Framing::Qtx1,
            stats.clone(),
        ),
    )
    .await
    .expect("ends by itself");
    let err = result.expect_err("the host never reads");
    assert!(
        matches!(err, GuestError::WriteTimedOut(d) if d == TELEMETRY_WRITE_TIMEOUT),
        "{err}"
    );
    assert_eq!(
        stats.snapshot().write_timeouts,
        u64::from(MAX_WRITE_FAILURES)
    );
    // 50 telemetry write timeouts of 5 s each, after the few seconds it took to fill the pipe.
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(300), "{elapsed:?}");
    drop(host);
}

#[tokio::test(start_paused = true)]
async fn the_naive_loop_spins_on_eof_a_bounded_number_of_times() {
    let (host, guest) = tokio::io::duplex(4096);
    let stats = GuestStats::new();
    let task = tokio::spawn(serve_connection_with_stats(
        Box::new(guest),
        cfg(LoopMode::Naive, None),
        Framing::Qtx1,
        stats.clone(),
    ));
    // The host ends its side (reads return 0 from now on) but stays there.
    let mut host = host;
    host.shutdown().await.expect("shutdown");
    let report = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("bounded")
        .expect("join")
        .expect("a closed host is a normal end");
    assert_eq!(report.events, 1, "AgentReady only");
    assert_eq!(stats.snapshot().eof_spins, NAIVE_EOF_SPIN_LIMIT);
    drop(host);
}

#[tokio::test(start_paused = true)]
async fn bad_frames_are_counted_and_both_loops_carry_on() {
    for mode in [LoopMode::Robust, LoopMode::Naive] {
        let (host, guest) = tokio::io::duplex(64 * 1024);
        let task = tokio::spawn(serve_connection(
            Box::new(guest),
            cfg(mode, None),
            Framing::Qtx1,
        ));
        let (read, mut write) = tokio::io::split(host);
        let mut bad = b"QTX\x01\x00\x00\x00\x05\xff\xff\xff\xff\xff".to_vec();
        bad.extend_from_slice(b"junk between frames");
        bad.extend_from_slice(&ping(9));
        write.write_all(&bad).await.expect("write");
        let mut reader = FramedReader::new(read, Framing::Qtx1.decoder());
        let pong = reply_to(&mut reader, "9", Duration::from_secs(5))
            .await
            .expect("pong after the garbage");
        assert!(matches!(pong.payload, Some(Payload::Pong(p)) if p.sequence == 9));
        write.shutdown().await.expect("shutdown");
        drop(write);
        let report = tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("ends")
            .expect("join")
            .expect("clean end");
        assert_eq!(report.bad_frames, 2, "{mode:?}: bad payload + junk run");
        assert_eq!(report.requests, 1, "{mode:?}");
        drop(reader);
    }
}

#[tokio::test]
async fn handlers_refuse_what_they_cannot_do() {
    let agent = Agent::new(cfg(LoopMode::Robust, None), Framing::Legacy);
    // No root: file operations answer with an error, not a failure.
    let read = AgentMessage::new(
        "1",
        FileReadRequest {
            path: "/etc/hostname".into(),
            ..Default::default()
        },
    );
    let Some(Answer::Reply(reply)) = agent.handle(read).await else {
        panic!("a reply")
    };
    match reply.payload {
        Some(Payload::FileReadResponse(r)) => {
            assert!(!r.success);
            assert!(r.error.contains("no root"), "{}", r.error);
        }
        other => panic!("{other:?}"),
    }
    // An unimplemented request: an error event naming it.
    let hw = AgentMessage::new("2", GetHardwareInfoRequest::default());
    let Some(Answer::Refusal(event)) = agent.handle(hw).await else {
        panic!("a refusal")
    };
    match event.payload {
        Some(Payload::Error(e)) => {
            assert_eq!(e.code, UNIMPLEMENTED);
            assert_eq!(e.details.get("request_id").map(String::as_str), Some("2"));
            assert_eq!(
                e.details.get("request").map(String::as_str),
                Some("get_hardware_info")
            );
        }
        other => panic!("{other:?}"),
    }
    // Replies and events from the host are ignored.
    let stray = AgentMessage::new("3", crate::wire::quantix::PongResponse::default());
    assert!(agent.handle(stray).await.is_none());
}

#[tokio::test]
async fn a_reply_too_large_for_a_frame_becomes_an_error_event() {
    let huge = AgentMessage::new(
        "5",
        crate::wire::quantix::ExecuteResponse {
            stdout: "x".repeat(17 << 20),
            ..Default::default()
        },
    );
    let Answer::Refusal(event) = Answer::Reply(huge).fit() else {
        panic!("replaced")
    };
    match event.payload {
        Some(Payload::Error(e)) => {
            assert_eq!(e.code, handlers::REPLY_TOO_LARGE);
            assert_eq!(
                e.details.get("request").map(String::as_str),
                Some("execute")
            );
        }
        other => panic!("{other:?}"),
    }
}
