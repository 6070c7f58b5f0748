//! `guestwire replay` of the qga and volant fixtures through the real binary: as the host against
//! the mock agents (matching, and failing with a diff against a changed agent), and as the guest
//! serving the real host client (`guestwire call`), qga sync ids rewritten to the live ones.

mod support;

use std::path::Path;

use support::{Proc, connect, run, spawn};

const QGA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/captures/qga-session.pcap"
);
const VOLANT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/captures/volant-action.pcap"
);

/// The mock qga guest on a Unix socket (as a virtio-serial chardev exposes the agent).
fn qga_guest(dir: &Path) -> (Proc, String) {
    let sock = dir.join("qga.sock");
    let ep = format!("unix:{}", sock.display());
    let p = spawn(&["guest", "--listen", &ep, "--protocol", "qga"], false);
    drop(connect(&sock));
    (p, ep)
}

/// `guestwire replay CAPTURE --as guest --listen unix:…` with `extra` flags.
fn replay_guest(dir: &Path, capture: &str, extra: &[&str]) -> (Proc, String) {
    let sock = dir.join("replay.sock");
    let ep = format!("unix:{}", sock.display());
    let mut args = vec!["replay", capture, "--as", "guest", "--listen", &ep];
    args.extend_from_slice(extra);
    let p = spawn(&args, false);
    drop(connect(&sock));
    (p, ep)
}

#[test]
fn qga_sessions_replay_as_host_against_the_mock_qga_guest() {
    let dir = tempfile::tempdir().unwrap();
    let (_guest, ep) = qga_guest(dir.path());
    // #1: the client's delimiter + sync, then guest-sync-delimited id 4242 (qemu-ga's stray-0xFF
    // error, 0xFF, return); #2 adds guest-ping.
    let (code, out) = run(&["replay", QGA, "--as", "host", "--connect", &ep]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("3 host frames sent, 5 guest frames compared, replies match"),
        "{out}"
    );
    let (code, out) = run(&[
        "replay",
        QGA,
        "--conn",
        "2",
        "--as",
        "host",
        "--connect",
        &ep,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("3 host frames sent, 4 guest frames compared, replies match"),
        "{out}"
    );
}

#[test]
fn qga_guest_info_recorded_from_qemu_ga_differs_from_the_mock_with_a_readable_diff() {
    let dir = tempfile::tempdir().unwrap();
    let (_guest, ep) = qga_guest(dir.path());
    let (code, out) = run(&[
        "replay",
        QGA,
        "--conn",
        "3",
        "--as",
        "host",
        "--connect",
        &ep,
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(r#"#4 return: return.version: recorded "7.2.22", live "guestwire-mock"#),
        "{out}"
    );
    assert!(
        !out.contains("#3 return"),
        "the sync reply is the same: {out}"
    );
}

#[test]
fn qga_replay_as_guest_answers_the_live_sync_id_to_the_real_host_client() {
    let dir = tempfile::tempdir().unwrap();
    let (_replay, ep) = replay_guest(dir.path(), QGA, &[]);
    // The client syncs with a random id first (recorded: 386466916), then sends the recorded
    // command with another id than the recorded 4242: both replies must carry the live ids.
    let (code, out) = run(&[
        "call",
        "--connect",
        &ep,
        "--protocol",
        "qga",
        "--json",
        "raw",
        r#"{"execute":"guest-sync-delimited","arguments":{"id":5555}}"#,
    ]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["reply"], 5555, "{v}");
}

#[test]
fn qga_replay_as_guest_serves_a_ping_from_its_second_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (_replay, ep) = replay_guest(dir.path(), QGA, &["--conn", "2"]);
    let (code, out) = run(&[
        "call",
        "--connect",
        &ep,
        "--protocol",
        "qga",
        "--json",
        "ping",
    ]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["reply"], serde_json::json!({}), "{v}");
}

/// The hvsock mock VMM the volant fixture was recorded through (`scripts/record-fixtures.sh`),
/// with `extra` mock-guest flags.
fn volant_vmm(dir: &Path, name: &str, extra: &[&str]) -> (Proc, String) {
    let sock = dir.join(format!("{name}.sock"));
    let mut args = vec![
        "vmm",
        "hvsock",
        "--socket",
        sock.to_str().unwrap(),
        "--guest-port",
        "8080=volant",
        "--exec",
        "echo",
        "--telemetry",
        "0",
    ];
    args.extend_from_slice(extra);
    let p = spawn(&args, false);
    drop(connect(&sock));
    (p, format!("hvsock:{}:8080", sock.display()))
}

#[test]
fn a_volant_action_replays_as_host_over_hybrid_vsock() {
    let dir = tempfile::tempdir().unwrap();
    let (_vmm, ep) = volant_vmm(dir.path(), "vo", &[]);
    let (code, out) = run(&["replay", VOLANT, "--as", "host", "--connect", &ep]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("1 host frames sent, 1 guest frames compared, replies match"),
        "{out}"
    );
    let (code, out) = run(&["replay", VOLANT, "--as", "host", "--connect", &ep, "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["match"], true, "{v}");
}

#[test]
fn a_volant_agent_that_does_not_answer_in_time_fails_naming_the_response() {
    let dir = tempfile::tempdir().unwrap();
    // The changed agent answers only after 5 s; the replay waits 0.5 s for it.
    let (_vmm, ep) = volant_vmm(dir.path(), "slow", &["--reply-delay-ms", "5000"]);
    let (code, out) = run(&[
        "replay",
        VOLANT,
        "--as",
        "host",
        "--connect",
        &ep,
        "--timeout",
        "0.5",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("#1 response: missing (no live frame)"),
        "{out}"
    );
}

#[test]
fn volant_replay_as_guest_serves_the_real_host_client_over_hybrid_vsock() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("rv.sock");
    let ep = format!("hvsock:{}:8080", sock.display());
    let _replay = spawn(&["replay", VOLANT, "--as", "guest", "--listen", &ep], false);
    drop(connect(&sock));
    let (code, out) = run(&[
        "call",
        "--connect",
        &ep,
        "--protocol",
        "volant",
        "--json",
        "exec",
        "/bin/echo",
        "action",
    ]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(
        v["reply"],
        serde_json::json!({"action": "action", "input": {"args": []}, "plugin": "/bin/echo"}),
        "the recorded response: {v}"
    );
}
