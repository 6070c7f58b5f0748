//! Tests of [`FaultPlan`]: each kind's exact actions and delays, each trigger (including
//! `after_bytes` across chunk boundaries), `times`, and probability decisions fixed by the seed.

use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::wire::Direction::{ToGuest, ToHost};
use crate::wire::protocol::Protocol;

const T0: Duration = Duration::ZERO;

fn plan(specs: &[&str]) -> FaultPlan {
    plan_seeded(specs, 1)
}

fn plan_seeded(specs: &[&str], seed: u64) -> FaultPlan {
    let specs = specs.iter().map(|s| s.parse().expect("spec")).collect();
    FaultPlan::new(specs, Protocol::Quantix, seed)
}

fn fwd(b: &[u8]) -> Action {
    Action::Forward(Bytes::copy_from_slice(b))
}

fn delay(ms: u64, b: &[u8]) -> Action {
    Action::Delay(Duration::from_millis(ms), Bytes::copy_from_slice(b))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn no_faults_forwards_and_closes() {
    let mut p = plan(&[]);
    assert_eq!(p.on_bytes(ToGuest, b"abc", T0), [fwd(b"abc")]);
    assert_eq!(p.on_frame(ToHost, "ping", b"xyz", T0), [fwd(b"xyz")]);
    assert_eq!(p.on_close(ToGuest, T0), [Action::Close]);
    assert!(p.is_closed(ToGuest));
    assert_eq!(p.on_close(ToGuest, T0), []);
    assert_eq!(p.on_bytes(ToGuest, b"late", T0), [Action::Drop(4)]);
}

#[test]
fn latency_delays_each_chunk_and_jitter_is_seeded() {
    let mut p = plan(&["latency:latency=200ms"]);
    assert_eq!(p.on_bytes(ToGuest, b"ab", T0), [delay(200, b"ab")]);
    let run = |seed| {
        let mut p = plan_seeded(&["latency:latency=100ms,jitter=50ms"], seed);
        (0..20)
            .map(|_| match p.on_bytes(ToHost, b"x", T0).as_slice() {
                [Action::Delay(d, _)] => *d,
                other => panic!("{other:?}"),
            })
            .collect::<Vec<_>>()
    };
    let a = run(7);
    assert_eq!(a, run(7));
    assert_ne!(a, run(8));
    assert!(a.iter().all(|d| (ms(50)..=ms(150)).contains(d)), "{a:?}");
}

#[test]
fn bandwidth_spaces_chunks_by_rate() {
    let mut p = plan(&["bandwidth:rate=1000"]);
    assert_eq!(p.on_bytes(ToGuest, &[0; 500], T0), [delay(500, &[0; 500])]);
    assert_eq!(p.on_bytes(ToGuest, &[1; 3], T0), [delay(3, &[1; 3])]);
    let mut p = plan(&["bandwidth:rate=0"]);
    assert_eq!(p.on_bytes(ToGuest, b"a", T0), [Action::Hold]);
}

#[test]
fn slicer_splits_into_chunks_delay_apart() {
    let mut p = plan(&["slicer:average_size=3,delay=1ms"]);
    assert_eq!(
        p.on_bytes(ToGuest, b"abcdefgh", T0),
        [fwd(b"abc"), delay(1, b"def"), delay(1, b"gh")]
    );
    let mut p = plan(&["slicer:average_size=2"]);
    assert_eq!(
        p.on_bytes(ToGuest, b"abcde", T0),
        [fwd(b"ab"), fwd(b"cd"), fwd(b"e")]
    );
    let mut p = plan(&["slicer:average_size=4,size_variation=2"]);
    let out = p.on_bytes(ToGuest, &[7; 100], T0);
    let sizes: Vec<usize> = out
        .iter()
        .map(|a| match a {
            Action::Forward(b) => b.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 100);
    assert!(
        sizes[..sizes.len() - 1].iter().all(|s| (2..=6).contains(s)),
        "{sizes:?}"
    );
}

#[test]
fn slow_close_delays_only_the_close() {
    let mut p = plan(&["slow_close:delay=1s"]);
    assert_eq!(p.on_bytes(ToGuest, b"ab", T0), [fwd(b"ab")]);
    assert_eq!(
        p.on_close(ToGuest, T0),
        [
            Action::Delay(Duration::from_secs(1), Bytes::new()),
            Action::Close
        ]
    );
    assert_eq!(p.fired(0), 1);
}

#[test]
fn timeout_blackholes_then_closes() {
    let mut p = plan(&["timeout:timeout=2s"]);
    assert_eq!(
        p.on_bytes(ToGuest, b"ab", T0),
        [
            Action::Hold,
            Action::Delay(Duration::from_secs(2), Bytes::new()),
            Action::Close
        ]
    );
    assert_eq!(p.on_bytes(ToGuest, b"cd", T0), [Action::Drop(2)]);
    let mut p = plan(&["timeout:timeout=0s"]);
    assert_eq!(p.on_bytes(ToGuest, b"ab", T0), [Action::Hold]);
    assert_eq!(p.on_bytes(ToGuest, b"cd", T0), [Action::Hold]);
    assert!(!p.is_closed(ToGuest));
}

#[test]
fn reset_peer_agent_crash_and_reset_mid_stream_reset() {
    let mut p = plan(&["reset_peer:timeout=100ms"]);
    assert_eq!(
        p.on_bytes(ToGuest, b"ab", T0),
        [Action::Drop(2), delay(100, b""), Action::Reset]
    );
    assert!(p.is_closed(ToGuest));
    let mut p = plan(&["reset_peer"]);
    assert_eq!(
        p.on_bytes(ToGuest, b"ab", T0),
        [Action::Drop(2), Action::Reset]
    );
    let mut p = plan(&["agent_crash:direction=to_host"]);
    assert_eq!(p.on_bytes(ToGuest, b"ab", T0), [fwd(b"ab")]);
    assert_eq!(
        p.on_bytes(ToHost, b"ab", T0),
        [Action::Drop(2), Action::Reset]
    );
    let mut p = plan(&["reset_mid_stream"]);
    assert_eq!(
        p.on_bytes(ToGuest, b"abcde", T0),
        [fwd(b"ab"), Action::Drop(3), Action::Reset]
    );
}

#[test]
fn limit_data_closes_after_n_bytes_per_direction() {
    let mut p = plan(&["limit_data:bytes=5"]);
    assert_eq!(p.on_bytes(ToGuest, b"abc", T0), [fwd(b"abc")]);
    assert_eq!(p.on_bytes(ToHost, b"xyz", T0), [fwd(b"xyz")]);
    assert_eq!(
        p.on_bytes(ToGuest, b"defg", T0),
        [fwd(b"de"), Action::Drop(2), Action::Close]
    );
    assert_eq!(p.on_bytes(ToGuest, b"h", T0), [Action::Drop(1)]);
    assert_eq!(p.on_bytes(ToHost, b"uv", T0), [fwd(b"uv"), Action::Close]);
    assert_eq!(p.fired(0), 2);
}

#[test]
fn agent_hang_holds_and_vm_pause_pauses_once() {
    let mut p = plan(&["agent_hang"]);
    assert_eq!(p.on_bytes(ToHost, b"ab", T0), [Action::Hold]);
    let mut p = plan(&["vm_pause:duration=3s"]);
    assert_eq!(
        p.on_bytes(ToHost, b"ab", T0),
        [Action::Delay(
            Duration::from_secs(3),
            Bytes::from_static(b"ab")
        )]
    );
    assert_eq!(p.on_bytes(ToHost, b"cd", T0), [fwd(b"cd")]);
}

#[test]
fn setup_faults_never_touch_the_stream() {
    let mut p = plan(&[
        "guest_before_host",
        "stale_client",
        "stale_socket",
        "ch_shutdown_wedge",
        "drop_frame:times=0",
    ]);
    assert_eq!(p.on_bytes(ToGuest, b"ab", T0), [fwd(b"ab")]);
    assert_eq!(p.on_frame(ToGuest, "ping", b"ab", T0), [fwd(b"ab")]);
    let names: Vec<&str> = p.setup_faults().map(|s| s.kind.name()).collect();
    assert_eq!(
        names,
        [
            "guest_before_host",
            "stale_client",
            "stale_socket",
            "ch_shutdown_wedge"
        ]
    );
}

#[test]
fn after_bytes_splits_exactly_across_chunk_boundaries() {
    let mut p = plan(&["latency:latency=10ms,after_bytes=5"]);
    assert_eq!(p.on_bytes(ToGuest, b"abc", T0), [fwd(b"abc")]);
    assert_eq!(
        p.on_bytes(ToGuest, b"defgh", T0),
        [fwd(b"de"), delay(10, b"fgh")]
    );
    assert_eq!(p.on_bytes(ToGuest, b"i", T0), [delay(10, b"i")]);
    // Counted per direction.
    assert_eq!(p.on_bytes(ToHost, b"abcd", T0), [fwd(b"abcd")]);
    // Two thresholds inside one chunk.
    let mut p = plan(&[
        "limit_data:bytes=1,after_bytes=4",
        "latency:latency=1ms,after_bytes=2",
    ]);
    assert_eq!(
        p.on_bytes(ToGuest, b"abcdefg", T0),
        [
            fwd(b"ab"),
            delay(1, b"cd"),
            fwd(b"e"),
            Action::Drop(2),
            Action::Close
        ]
    );
}

#[test]
fn after_frames_on_type_at_and_direction() {
    let mut p = plan(&["drop_frame:after_frames=2"]);
    let out: Vec<_> = (0..4u8)
        .map(|i| p.on_frame(ToGuest, "ping", &[i], T0))
        .collect();
    assert_eq!(
        out,
        [
            vec![fwd(&[0])],
            vec![fwd(&[1])],
            vec![Action::Drop(1)],
            vec![Action::Drop(1)]
        ]
    );

    let mut p = plan(&["drop_frame:on_type=log"]);
    assert_eq!(p.on_frame(ToHost, "log", b"l", T0), [Action::Drop(1)]);
    assert_eq!(p.on_frame(ToHost, "result", b"r", T0), [fwd(b"r")]);
    assert_eq!(
        p.on_bytes(ToHost, b"x", T0),
        [fwd(b"x")],
        "frame faults need frames"
    );

    let mut p = plan(&["agent_hang:at=1500ms"]);
    assert_eq!(p.on_bytes(ToHost, b"a", ms(1499)), [fwd(b"a")]);
    assert_eq!(p.on_bytes(ToHost, b"a", ms(1500)), [Action::Hold]);

    let mut p = plan(&["duplicate_frame:direction=to_guest"]);
    assert_eq!(p.on_frame(ToHost, "ping", b"a", T0), [fwd(b"a")]);
    assert_eq!(
        p.on_frame(ToGuest, "ping", b"a", T0),
        [fwd(b"a"), fwd(b"a")]
    );
}

#[test]
fn times_caps_firings() {
    let mut p = plan(&["drop_frame:on_type=execute,times=2"]);
    let out: Vec<_> = (0..4)
        .map(|_| p.on_frame(ToGuest, "execute", b"e", T0))
        .collect();
    assert_eq!(
        out,
        [
            vec![Action::Drop(1)],
            vec![Action::Drop(1)],
            vec![fwd(b"e")],
            vec![fwd(b"e")]
        ]
    );
    assert_eq!(p.fired(0), 2);
}

#[test]
fn probability_with_a_fixed_seed_gives_a_fixed_sequence() {
    let run = |seed| {
        let mut p = plan_seeded(&["drop_frame:probability=0.5"], seed);
        (0..16)
            .map(|_| p.on_frame(ToGuest, "ping", b"p", T0) == [Action::Drop(1)])
            .collect::<Vec<bool>>()
    };
    let mut rng = XorShift64::new(42);
    let expected: Vec<bool> = (0..16).map(|_| rng.next_f64() < 0.5).collect();
    assert_eq!(run(42), expected);
    assert_eq!(run(42), run(42));
    assert!(expected.contains(&true) && expected.contains(&false));
    let mut never = plan(&["drop_frame:probability=0"]);
    assert_eq!(never.on_frame(ToGuest, "ping", b"p", T0), [fwd(b"p")]);
}

#[test]
fn reorder_sends_a_frame_after_the_next() {
    let mut p = plan(&["reorder:times=1"]);
    assert_eq!(p.on_frame(ToGuest, "ping", b"A", T0), []);
    assert_eq!(
        p.on_frame(ToGuest, "ping", b"B", T0),
        [fwd(b"B"), fwd(b"A")]
    );
    assert_eq!(p.on_frame(ToGuest, "ping", b"C", T0), [fwd(b"C")]);
    let mut p = plan(&["reorder"]);
    assert_eq!(p.on_frame(ToGuest, "ping", b"A", T0), []);
    assert_eq!(p.on_close(ToGuest, T0), [fwd(b"A"), Action::Close]);
    let mut p = plan(&["reorder:times=1", "reset_mid_stream"]);
    assert_eq!(p.on_frame(ToGuest, "ping", b"A", T0), []);
    assert_eq!(
        p.on_frame(ToGuest, "ping", b"BC", T0),
        [fwd(b"B"), Action::Drop(1), fwd(b"A"), Action::Reset]
    );
}

#[test]
fn malformed_frames_are_rewritten_and_inapplicable_ones_pass() {
    let frame = b"QTX\x01\x00\x00\x00\x04abcd";
    let mut p = plan(&["malformed:truncated"]);
    assert_eq!(
        p.on_frame(ToGuest, "ping", frame, T0),
        [fwd(b"QTX\x01\x00\x00\x00\x04ab"), Action::Close]
    );
    assert!(p.is_closed(ToGuest));
    let mut p = plan(&["malformed:oversize_length,times=1"]);
    assert_eq!(
        p.on_frame(ToGuest, "ping", frame, T0),
        [fwd(b"QTX\x01\xff\xff\xff\xffabcd")]
    );
    assert_eq!(p.on_frame(ToGuest, "ping", frame, T0), [fwd(frame)]);
    let mut p = plan(&["malformed:split_handshake,on_type=connect"]);
    assert_eq!(
        p.on_frame(ToGuest, "connect", b"CONNECT 1024\n", T0),
        [
            fwd(b"CONN"),
            Action::Delay(SPLIT_GAP, Bytes::from_static(b"ECT 1024\n"))
        ]
    );
    let mut p = plan(&["malformed:bad_json", "duplicate_frame"]);
    assert_eq!(
        p.on_frame(ToGuest, "ping", frame, T0),
        [fwd(frame), fwd(frame)],
        "bad_json cannot apply to quantix"
    );
    assert_eq!(p.fired(0), 0);
}
