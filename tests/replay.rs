//! `guestwire replay` through the real binary and real Unix sockets: the recorded quantix session
//! (`fixtures/captures/quantix-session.pcap`) replayed as the host against the mock guest, and
//! served as the guest to the real host client; the fcexec run as the host over hybrid vsock; the
//! qga and volant fixtures as the host against the mock agents (matching, and failing with a diff
//! against a changed agent) and as the guest serving `guestwire call`, qga sync ids rewritten to
//! the live ones.

mod support;

use std::path::Path;

use support::{Proc, connect, run, spawn};

const CAPTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/captures/quantix-session.pcap"
);

/// The mock agent the fixture was recorded against (`scripts/record-fixtures.sh`: the agent of
/// `vmm serial --guest quantix`): echo exec, a root holding `hostname` = "vm-42\n", telemetry
/// every 200 ms. `exec` picks the exec mode.
fn mock_guest(dir: &Path, exec: &str) -> (Proc, String) {
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("hostname"), b"vm-42\n").unwrap();
    let sock = dir.join(format!("guest-{exec}.sock"));
    let ep = format!("unix:{}", sock.display());
    let p = spawn(
        &[
            "guest",
            "--listen",
            &ep,
            "--protocol",
            "quantix",
            "--exec",
            exec,
            "--root",
            root.to_str().unwrap(),
            "--telemetry",
            "0.2",
        ],
        false,
    );
    drop(connect(&sock));
    (p, ep)
}

/// `guestwire replay CAPTURE --as host --connect EP` with `extra` flags.
fn replay_host(ep: &str, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["replay", CAPTURE, "--as", "host", "--connect", ep];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn replay_as_host_against_the_same_mock_guest_matches() {
    let dir = tempfile::tempdir().unwrap();
    let (_guest, ep) = mock_guest(dir.path(), "echo");
    let (code, out) = replay_host(&ep, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("5 host frames sent, 7 guest frames compared, replies match"),
        "{out}"
    );
}

#[test]
fn replay_as_host_ignore_hides_a_changed_field() {
    let dir = tempfile::tempdir().unwrap();
    let (_guest, ep) = mock_guest(dir.path(), "real");
    // The real exec's stdout differs from the recorded echo: ignoring that one field (a dotted
    // path) leaves nothing to report.
    let (code, out) = replay_host(&ep, &["--ignore", "execute_response.stdout"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("5 host frames sent, 7 guest frames compared, replies match"),
        "{out}"
    );
}

#[test]
fn replay_as_host_against_a_changed_mock_fails_with_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let (_guest, ep) = mock_guest(dir.path(), "real");
    let (code, out) = replay_host(&ep, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(r#"#4 execute_response: execute_response.stdout: recorded "uname -a", live "#),
        "{out}"
    );
    assert!(!out.contains("pong"), "only the exec reply differs: {out}");
}

#[test]
fn replay_as_host_strict_fails_on_timestamps_and_json_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_guest, ep) = mock_guest(dir.path(), "echo");
    let (code, out) = replay_host(&ep, &["--strict"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("#3 pong: timestamp: recorded "), "{out}");
    let (code, out) = replay_host(&ep, &["--strict", "--json"]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["match"], false);
    assert!(
        v["diffs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["kind"] == "field" && d["path"] == "timestamp" && d["type_name"] == "pong"),
        "{v}"
    );
}

#[test]
fn replay_as_guest_serves_the_real_host_client() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("replay.sock");
    let ep = format!("unix:{}", sock.display());
    let _replay = spawn(
        &["replay", CAPTURE, "--as", "guest", "--listen", &ep],
        false,
    );
    drop(connect(&sock));
    let (code, out) = run(&[
        "call",
        "--connect",
        &ep,
        "--protocol",
        "quantix",
        "--json",
        "ping",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("guestwire-mock 0.1.0"),
        "the recorded pong: {out}"
    );
    let (code, out) = run(&[
        "call",
        "--connect",
        &ep,
        "--protocol",
        "quantix",
        "--json",
        "exec",
        "uname",
        "-a",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("uname -a"), "the recorded stdout: {out}");
    // The recording's one file_read answers any path with the recorded contents.
    let (code, out) = run(&[
        "call",
        "--connect",
        &ep,
        "--protocol",
        "quantix",
        "read",
        "x",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with("\nvm-42\n"), "{out}");
}

#[test]
fn replay_usage_errors_exit_2() {
    let (code, _) = run(&["replay", CAPTURE, "--as", "host"]);
    assert_eq!(code, 2);
    let (code, _) = run(&[
        "replay",
        "/nonexistent.pcap",
        "--as",
        "host",
        "--connect",
        "unix:/x",
    ]);
    assert_eq!(code, 2);
    let (code, _) = run(&[
        "replay",
        CAPTURE,
        "--as",
        "host",
        "--connect",
        "unix:/x",
        "--conn",
        "9",
    ]);
    assert_eq!(code, 2);
}

/// The hvsock mock VMM the fcexec fixture was recorded through (`scripts/record-fixtures.sh`).
fn fcexec_vmm(dir: &Path, exec: &str) -> (Proc, String) {
    let sock = dir.join(format!("fc-{exec}.sock"));
    let p = spawn(
        &[
            "vmm",
            "hvsock",
            "--socket",
            sock.to_str().unwrap(),
            "--guest-port",
            "1024=fcexec",
            "--exec",
            exec,
            "--telemetry",
            "0",
        ],
        false,
    );
    drop(connect(&sock));
    (p, format!("hvsock:{}:1024", sock.display()))
}

#[test]
fn an_fcexec_run_replays_as_host_over_hybrid_vsock_and_a_changed_agent_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let capture = "fixtures/captures/fcexec-run.pcap";
    let (_same, ep) = fcexec_vmm(dir.path(), "echo");
    let (code, out) = run(&["replay", capture, "--as", "host", "--connect", &ep]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("replies match"), "{out}");
    let (_changed, ep) = fcexec_vmm(dir.path(), "real");
    let (code, out) = run(&["replay", capture, "--as", "host", "--connect", &ep]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("line"), "the diff names the log line: {out}");
}

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
