//! `guestwire replay` through the real binary and real Unix sockets: the recorded quantix session
//! (`fixtures/captures/quantix-session.pcap`) replayed as the host against the mock guest, and
//! served as the guest to the real host client.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{BIN, Proc, connect, spawn};

const CAPTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/captures/quantix-session.pcap"
);

/// Runs `guestwire ARGS` to completion (at most 60 s): exit code and stdout.
fn run(args: &[&str]) -> (i32, String) {
    let child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn guestwire");
    let mut p = Proc(child);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = p.0.try_wait().expect("wait") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "guestwire {args:?} did not exit"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    if let Some(mut s) = p.0.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    (status.code().unwrap_or(-1), out)
}

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
