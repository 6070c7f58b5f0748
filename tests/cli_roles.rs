//! `guestwire guest` and `guestwire call` through the real binary over real sockets: every
//! protocol's requests against the mock agents, and a clear typed error (never a hang, never a
//! panic) for a missing socket, a dead peer, a silent peer and a peer that sends garbage.

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod support;

use support::{BIN, Proc as Guest, wait_for};

fn guest(listen: &str, protocol: &str, socket: &Path, extra: &[&str]) -> Guest {
    let child = Command::new(BIN)
        .args(["guest", "--listen", listen, "--protocol", protocol])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn guest");
    let g = Guest(child);
    wait_for(socket);
    g
}

fn call(connect: &str, protocol: &str, args: &[&str]) -> (Output, serde_json::Value) {
    let out = Command::new(BIN)
        .args([
            "call",
            "--connect",
            connect,
            "--protocol",
            protocol,
            "--json",
            "--attempts",
            "1",
        ])
        .args(args)
        .output()
        .expect("run call");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let v = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout:?} {stderr}"));
    (out, v)
}

fn ok(connect: &str, protocol: &str, args: &[&str]) -> serde_json::Value {
    let (out, v) = call(connect, protocol, args);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["ok"], true, "{v}");
    v
}

fn failed(connect: &str, protocol: &str, args: &[&str], kind: &str) -> serde_json::Value {
    let (out, v) = call(connect, protocol, args);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error"]["kind"], kind, "{v}");
    v
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("root");
    (dir, root)
}

#[test]
fn quantix_every_request_through_the_cli() {
    for protocol in ["quantix", "quantix-legacy"] {
        let (dir, root) = tmp();
        let sock = dir.path().join("q.sock");
        let ep = format!("unix:{}", sock.display());
        let _g = guest(
            &ep,
            protocol,
            &sock,
            &["--root", root.to_str().expect("utf-8"), "--exec", "echo"],
        );
        let v = ok(&ep, protocol, &["ping"]);
        assert!(
            v["summary"].as_str().expect("summary").starts_with("pong"),
            "{v}"
        );
        assert!(
            v["events"]
                .as_array()
                .expect("events")
                .iter()
                .any(|e| e.get("agent_ready").is_some())
        );
        let v = ok(&ep, protocol, &["exec", "uname", "-a"]);
        assert_eq!(v["exit_code"], 0);
        failed(
            &ep,
            protocol,
            &["write", "/dir/file.txt", "--data", "guestwire"],
            "agent_error",
        );
        assert!(!root.join("dir").exists(), "no create_parents by default");
        ok(
            &ep,
            protocol,
            &["write", "/file.txt", "--data", "guestwire"],
        );
        assert_eq!(
            std::fs::read(root.join("file.txt")).expect("written"),
            b"guestwire"
        );
        let out = dir.path().join("copy");
        ok(
            &ep,
            protocol,
            &[
                "read",
                "/file.txt",
                "--output",
                out.to_str().expect("utf-8"),
            ],
        );
        assert_eq!(std::fs::read(&out).expect("copied"), b"guestwire");
        ok(&ep, protocol, &["shutdown", "--mode", "reboot"]);
        ok(&ep, protocol, &["info"]);
        ok(
            &ep,
            protocol,
            &["raw", r#"{"message_id":"7","ping":{"sequence":7}}"#],
        );
        let v = failed(&ep, protocol, &["read", "/../../etc/passwd"], "agent_error");
        assert!(
            v["error"]["message"]
                .as_str()
                .expect("message")
                .contains("escapes"),
            "{v}"
        );
        failed(
            &ep,
            protocol,
            &["raw", r#"{"message_id":"8","list_services":{}}"#],
            "agent_error",
        );
    }
}

#[test]
fn fcexec_over_hybrid_vsock_through_the_cli() {
    let (dir, _root) = tmp();
    let sock = dir.path().join("v.sock");
    let _g = guest(
        &format!("hvsock:{}:1024", sock.display()),
        "fcexec",
        &sock,
        &[],
    );
    let ep = format!("hvsock:{}:1024", sock.display());
    ok(&ep, "fcexec", &["ping"]);
    let v = ok(&ep, "fcexec", &["exec", "/bin/echo", "hello"]);
    assert_eq!(v["exit_code"], 0, "{v}");
    let v = failed(
        &format!("hvsock:{}:52", sock.display()),
        "fcexec",
        &["ping"],
        "handshake_failed",
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .expect("message")
            .contains("port 52"),
        "{v}"
    );
    failed(&ep, "fcexec", &["read", "/etc/hostname"], "invalid");
}

#[test]
fn qga_and_volant_through_the_cli() {
    let (dir, root) = tmp();
    let sock = dir.path().join("qga.sock");
    let ep = format!("unix:{}", sock.display());
    let _g = guest(
        &ep,
        "qga",
        &sock,
        &["--root", root.to_str().expect("utf-8")],
    );
    ok(&ep, "qga", &["ping"]);
    ok(&ep, "qga", &["info"]);
    let v = ok(&ep, "qga", &["exec", "/bin/echo", "from-qga"]);
    assert_eq!(v["exit_code"], 0, "{v}");
    ok(&ep, "qga", &["write", "/x", "--data", "qga data"]);
    assert_eq!(std::fs::read(root.join("x")).expect("written"), b"qga data");
    let v = failed(
        &ep,
        "qga",
        &["raw", r#"{"execute":"guest-no-such"}"#],
        "agent_error",
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .expect("message")
            .contains("CommandNotFound"),
        "{v}"
    );

    let vsock = dir.path().join("volant.sock");
    let vep = format!("unix:{}", vsock.display());
    let _v = guest(&vep, "volant", &vsock, &[]);
    ok(&vep, "volant", &["ping"]);
    ok(&vep, "volant", &["exec", "my-plugin", "process", "x"]);
    failed(
        &vep,
        "volant",
        &["raw", r#"{"method":"GET","path":"/nope"}"#],
        "agent_error",
    );
}

#[test]
fn a_missing_socket_is_no_such_socket() {
    let (dir, _root) = tmp();
    let ep = format!("unix:{}", dir.path().join("absent.sock").display());
    for protocol in ["quantix", "fcexec", "qga", "volant"] {
        failed(&ep, protocol, &["ping"], "no_such_socket");
    }
}

#[test]
fn a_dead_peer_is_refused() {
    let (dir, _root) = tmp();
    let path = dir.path().join("stale.sock");
    drop(UnixListener::bind(&path).expect("bind"));
    assert!(path.exists(), "the stale socket file stays behind");
    let ep = format!("unix:{}", path.display());
    for protocol in ["quantix", "qga"] {
        failed(&ep, protocol, &["ping"], "refused");
    }
}

#[test]
fn a_silent_peer_times_out_in_the_right_phase() {
    let (dir, _root) = tmp();
    let path = dir.path().join("silent.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for _ in 0..2 {
            if let Ok((s, _)) = listener.accept() {
                held.push(s);
            }
        }
        std::thread::sleep(Duration::from_secs(3));
    });
    let ep = format!("unix:{}", path.display());
    let v = failed(&ep, "quantix", &["ping", "--timeout", "0.3"], "timed_out");
    assert_eq!(v["error"]["phase"], "request", "{v}");
    let v = failed(
        &ep,
        "qga",
        &["ping", "--connect-timeout", "0.3"],
        "timed_out",
    );
    assert_eq!(v["error"]["phase"], "handshake", "{v}");
    holder.join().expect("holder");
}

#[test]
fn a_peer_that_sends_garbage_is_malformed_with_its_bytes() {
    let (dir, _root) = tmp();
    let path = dir.path().join("garbage.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    let garbage: &[u8] = b"\xde\xad\xbe\xef this is not a frame at all";
    let feeder = std::thread::spawn(move || {
        for _ in 0..2 {
            if let Ok((mut s, _)) = listener.accept() {
                let _ = s.write_all(garbage);
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    });
    let ep = format!("unix:{}", path.display());
    let v = failed(
        &ep,
        "quantix-legacy",
        &["ping", "--timeout", "2"],
        "malformed",
    );
    assert!(
        v["error"]["hex"]
            .as_str()
            .expect("hex")
            .starts_with("deadbeef"),
        "{v}"
    );
    let v = failed(&ep, "fcexec", &["exec", "x", "--timeout", "2"], "malformed");
    assert!(
        v["error"]["hex"]
            .as_str()
            .expect("hex")
            .starts_with("deadbeef"),
        "{v}"
    );
    assert_eq!(v["error"]["wire"]["error"], "oversize", "{v}");
    feeder.join().expect("feeder");
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(BIN)
        .args([
            "call",
            "--connect",
            "carrier:pigeon",
            "--protocol",
            "quantix",
            "ping",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN)
        .args(["call", "--connect", "unix:/x", "--protocol", "raw", "ping"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(1),
        "no host client for raw is a failed call"
    );
    let out = Command::new(BIN)
        .args(["guest", "--listen", "unix:/x", "--protocol", "ch-api"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_qtx1_client_talking_to_a_legacy_agent_is_told_so() {
    let (dir, _root) = tmp();
    let sock = dir.path().join("legacy.sock");
    let ep = format!("unix:{}", sock.display());
    let _g = guest(&ep, "quantix-legacy", &sock, &[]);
    let v = failed(&ep, "quantix", &["ping", "--timeout", "5"], "malformed");
    assert_eq!(v["error"]["wire"]["error"], "framing_mismatch", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .expect("message")
            .contains("legacy"),
        "{v}"
    );
}
