//! `guestwire vmm hvsock` through the real binary and real Unix sockets in a tempdir, against the
//! real host clients (`guestwire call` and the library's fcexec client): every mock protocol over
//! each flavour with the flavour's `OK` line; a port nobody listens on closed silently;
//! `malformed:split_handshake` dropped by Firecracker and served by Cloud Hypervisor;
//! `reset_mid_stream` keeping the partial logs; each malformed reply with its typed error;
//! `vm_pause`; the agent faults; a guest-initiated connection to `<socket>_<port>`; the user's
//! agents (socket and per-connection); `--once` and clean-up. Every child is reaped; no test
//! asserts a timing.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use guestwire::host::DialOptions;
use guestwire::host::fcexec::run_workload;
use guestwire::io::Endpoint;
use guestwire::wire::fcexec::GuestRequest;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_guestwire");

/// Bound on every wait.
const DEADLINE: Duration = Duration::from_secs(20);

/// A `guestwire vmm hvsock --json` process: its events as JSON, stopped with SIGTERM (then
/// killed if need be) and reaped on drop.
struct Vmm {
    child: Child,
    events: mpsc::Receiver<Value>,
    socket: PathBuf,
}

impl Vmm {
    fn start(socket: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["vmm", "hvsock", "--json", "--socket"])
            .arg(socket)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn vmm");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        let vmm = Self {
            child,
            events,
            socket: socket.to_path_buf(),
        };
        let start = Instant::now();
        while !socket.exists() {
            assert!(
                start.elapsed() < DEADLINE,
                "{} never appeared",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        vmm
    }

    fn hvsock(&self, port: u32) -> String {
        format!("hvsock:{}:{port}", self.socket.display())
    }

    /// The next event named `name`, skipping others.
    fn event(&self, name: &str) -> Value {
        let start = Instant::now();
        loop {
            let left = DEADLINE.saturating_sub(start.elapsed());
            let v = self
                .events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {name} event"));
            if v["event"] == name {
                return v;
            }
        }
    }

    /// SIGTERM, then waits for the exit (killing after the deadline); returns the exit code.
    fn stop(&mut self) -> Option<i32> {
        if let Some(pid) = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if start.elapsed() > DEADLINE {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the VMM did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Vmm {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// `guestwire call --json` with one attempt. A connect refused outright (nothing reached the
/// VMM) is tried again: under heavy load this machine's kernel now and then refuses a connect to
/// a socket that is listening (the `cli_roles` tests meet it too).
fn call(connect: &str, protocol: &str, args: &[&str]) -> (Output, Value) {
    let mut tries = 0;
    loop {
        let out = Command::new(BIN)
            .args(["call", "--connect", connect, "--protocol", protocol])
            .args(["--json", "--attempts", "1", "--connect-timeout", "5"])
            .args(args)
            .output()
            .expect("run call");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!stderr.contains("panicked"), "{stderr}");
        let v: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout:?} {stderr}"));
        tries += 1;
        if v["error"]["kind"] != "refused" || tries == 5 {
            return (out, v);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ok(connect: &str, protocol: &str, args: &[&str]) -> Value {
    let (out, v) = call(connect, protocol, args);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["ok"], true, "{v}");
    v
}

fn failed(connect: &str, protocol: &str, args: &[&str]) -> Value {
    let (out, v) = call(connect, protocol, args);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["ok"], false, "{v}");
    v
}

const ECHO_ABC: &str = r#"{"runtime":"echo","code":"a\nb\nc"}"#;

#[test]
fn every_mock_protocol_over_each_flavour_with_its_ok_line() {
    for flavour in ["firecracker", "cloud-hypervisor", "vhost-device"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("v.sock");
        let mut vmm = Vmm::start(
            &sock,
            &[
                "--flavour",
                flavour,
                "--cid",
                "7",
                "--guest-port",
                "52=quantix",
                "--guest-port",
                "1024=fcexec",
                "--guest-port",
                "8080=volant",
                "--exec",
                "echo",
                "--telemetry",
                "0",
            ],
        );
        let cases: [(u32, &str, &[&str]); 3] = [
            (52, "quantix", &["ping"]),
            (1024, "fcexec", &["raw", ECHO_ABC]),
            (8080, "volant", &["ping"]),
        ];
        for (n, (port, protocol, args)) in cases.iter().enumerate() {
            let v = ok(&vmm.hvsock(*port), protocol, args);
            if *protocol == "fcexec" {
                assert_eq!(v["events"].as_array().expect("logs").len(), 3, "{v}");
            }
            let e = vmm.event("established");
            assert_eq!(e["guest_port"], *port, "{e}");
            assert_eq!(e["service"], *protocol, "{e}");
            // Firecracker and Cloud Hypervisor answer a host-side port from 2^30 up, round
            // robin; vhost-device-vsock answers the guest port.
            let want = if flavour == "vhost-device" {
                format!("OK {port}")
            } else {
                format!("OK {}", (1u32 << 30) + n as u32)
            };
            assert_eq!(e["ok"], want.as_str(), "{flavour}: {e}");
            let closed = vmm.event("closed");
            assert_eq!(closed["conn"], e["conn"], "{closed}");
            assert!(
                closed["bytes_to_host"].as_u64().expect("count") > 0,
                "{closed}"
            );
        }
        assert_eq!(vmm.stop(), Some(0));
        assert!(!sock.exists(), "the socket file is removed");
    }
}

#[test]
fn connect_to_a_port_nobody_listens_on_is_closed_without_a_reply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("v.sock");
    let vmm = Vmm::start(&sock, &["--guest-port", "52=quantix"]);
    let v = failed(&vmm.hvsock(9), "quantix", &["ping"]);
    assert_eq!(v["error"]["kind"], "handshake_failed", "{v}");
    assert_eq!(v["error"]["port"], 9, "{v}");
    assert_eq!(v["error"]["hex"], "", "no bytes at all: {v}");
    let e = vmm.event("refused");
    assert_eq!(e["kind"], "no_listener", "{e}");
    assert_eq!(e["origin"], "host", "{e}");
    // The same by hand: EOF, not a word.
    let mut s = UnixStream::connect(&sock).expect("connect");
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    std::io::Write::write_all(&mut s, b"CONNECT 9\n").expect("write");
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("EOF");
    assert!(rest.is_empty(), "{rest:?}");
}

#[test]
fn a_split_connect_is_dropped_by_firecracker_and_served_by_cloud_hypervisor() {
    for (flavour, served) in [("firecracker", false), ("cloud-hypervisor", true)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("v.sock");
        let vmm = Vmm::start(
            &sock,
            &[
                "--flavour",
                flavour,
                "--guest-port",
                "52=quantix",
                "--telemetry",
                "0",
                "--fault",
                "malformed:split_handshake",
            ],
        );
        let (out, v) = call(&vmm.hvsock(52), "quantix", &["ping"]);
        if served {
            assert_eq!(out.status.code(), Some(0), "{flavour}: {v}");
            assert!(vmm.event("established")["ok"].is_string());
        } else {
            assert_eq!(out.status.code(), Some(1), "{flavour}: {v}");
            assert_eq!(v["error"]["kind"], "handshake_failed", "{flavour}: {v}");
            let e = vmm.event("refused");
            assert_eq!(e["kind"], "malformed", "{e}");
            assert!(
                e["reason"].as_str().expect("reason").contains("split"),
                "{e}"
            );
        }
    }
}

#[test]
fn a_connect_without_its_newline_is_dropped_by_firecracker_and_times_out_elsewhere() {
    for (flavour, kind) in [
        ("firecracker", "malformed"),
        ("cloud-hypervisor", "request_timeout"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("v.sock");
        let vmm = Vmm::start(
            &sock,
            &[
                "--flavour",
                flavour,
                "--guest-port",
                "52=quantix",
                "--fault",
                "malformed:no_newline",
            ],
        );
        let v = failed(&vmm.hvsock(52), "quantix", &["ping"]);
        assert_eq!(v["error"]["kind"], "handshake_failed", "{flavour}: {v}");
        let e = vmm.event("refused");
        assert_eq!(e["kind"], kind, "{flavour}: {e}");
    }
}

#[tokio::test]
async fn reset_mid_stream_on_the_fcexec_result_keeps_the_logs_received_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("v.sock");
    let vmm = Vmm::start(
        &sock,
        &[
            "--guest-port",
            "1024=fcexec",
            "--fault",
            "reset_mid_stream:direction=to_host,on_type=result",
        ],
    );
    let ep = Endpoint::Hvsock {
        path: sock.clone(),
        port: 1024,
    };
    // The default retries (5 attempts) cover a connect refused under load; the handshake is
    // answered on the first attempt that reaches the VMM.
    let mut opts = DialOptions::default();
    opts.deadlines.request = Some(DEADLINE);
    let request = GuestRequest {
        runtime: "echo".into(),
        code: "a\nb\nc".into(),
        ..GuestRequest::default()
    };
    let err = run_workload(&ep, &opts, &request, |_| {})
        .await
        .expect_err("the result is cut");
    assert!(
        matches!(err.kind(), "reset" | "closed"),
        "{}: {err}",
        err.kind()
    );
    assert_eq!(err.logs, ["a", "b", "c"], "{err}");
    assert!(err.to_string().contains("3 log lines had arrived"), "{err}");
    let (vmm, fault) = tokio::task::spawn_blocking(move || {
        let f = vmm.event("fault");
        (vmm, f)
    })
    .await
    .expect("join");
    assert_eq!(fault["action"], "reset", "{fault}");
    assert_eq!(fault["direction"], "to_host", "{fault}");
    drop(vmm);
}

/// One malformed reply: which port and request, the fault's trigger, and what the client says.
struct MalformedCase {
    protocol: &'static str,
    variant: &'static str,
    /// `error.kind` of `guestwire call` (`ok` when the client reads past it).
    kind: &'static str,
    /// For `malformed`, the decoder's error in `error.wire.error`.
    wire: Option<&'static str>,
}

const fn case(
    protocol: &'static str,
    variant: &'static str,
    kind: &'static str,
    wire: Option<&'static str>,
) -> MalformedCase {
    MalformedCase {
        protocol,
        variant,
        kind,
        wire,
    }
}

/// Each variant that applies to each protocol, rewriting the reply to the request; the quantix
/// client resynchronises on the `QTX1` magic and waits for its reply (so a bad frame ends in its
/// timeout, counted as bad), the fcexec and qga clients fail at once.
const MALFORMED: &[MalformedCase] = &[
    case("quantix", "bad_magic", "timed_out", None),
    case("quantix", "oversize_length", "timed_out", None),
    case("quantix", "zero_length", "timed_out", None),
    case("quantix", "truncated", "closed", None),
    case("quantix", "bad_protobuf", "malformed", Some("malformed")),
    case("quantix", "unknown_type", "timed_out", None),
    case("quantix", "garbage", "ok", None),
    case("fcexec", "bad_magic", "malformed", Some("oversize")),
    case("fcexec", "oversize_length", "malformed", Some("oversize")),
    case("fcexec", "zero_length", "malformed", Some("zero_length")),
    case("fcexec", "truncated", "closed", None),
    case("fcexec", "bad_json", "malformed", Some("malformed")),
    case("fcexec", "unknown_type", "protocol", None),
    case("fcexec", "garbage", "malformed", Some("oversize")),
    case("qga", "oversize_length", "malformed", Some("oversize")),
    case("qga", "truncated", "closed", None),
    case("qga", "bad_json", "malformed", Some("malformed")),
    case("qga", "unknown_type", "malformed", Some("unknown_type")),
    case("qga", "garbage", "timed_out", None),
];

#[test]
fn each_malformed_reply_is_reported_with_its_typed_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    for c in MALFORMED {
        let sock = dir
            .path()
            .join(format!("{}-{}.sock", c.protocol, c.variant));
        // The reply to the request: the pong, the fcexec result, qga's fourth frame (after the
        // stray-0xFF error, the delimiter and the sync's return).
        let (port, trigger, args): (&str, &str, &[&str]) = match c.protocol {
            "quantix" => ("52", "on_type=pong", &["ping"]),
            "fcexec" => ("1024", "on_type=result", &["raw", ECHO_ABC]),
            _ => ("9", "after_frames=3", &["ping"]),
        };
        let fault = format!("malformed:{},direction=to_host,{trigger}", c.variant);
        let vmm = Vmm::start(
            &sock,
            &[
                "--guest-port",
                &format!("{port}={}", c.protocol),
                "--telemetry",
                "0",
                "--fault",
                &fault,
            ],
        );
        // A short deadline where the client waits past the bad frame, a long one elsewhere
        // (qga's oversize frame is 16 MiB).
        let mut args = args.to_vec();
        args.extend(["--timeout", if c.kind == "timed_out" { "1" } else { "20" }]);
        let (_, v) = call(&vmm.hvsock(port.parse().expect("port")), c.protocol, &args);
        let what = format!("{} {}: {v}", c.protocol, c.variant);
        if c.kind == "ok" {
            assert_eq!(v["ok"], true, "{what}");
        } else {
            assert_eq!(v["ok"], false, "{what}");
            assert_eq!(v["error"]["kind"], c.kind, "{what}");
        }
        if let Some(wire) = c.wire {
            assert_eq!(v["error"]["wire"]["error"], wire, "{what}");
        }
        if c.protocol == "quantix" && c.kind == "timed_out" && c.variant != "bad_magic" {
            let msg = v["error"]["message"].as_str().expect("message");
            assert!(msg.contains("1 bad"), "the bad frame is counted: {what}");
        }
        let mut vmm = vmm;
        assert_eq!(vmm.stop(), Some(0), "{what}");
        assert!(!sock.exists(), "{what}: the socket file is removed");
    }
}

#[test]
fn vm_pause_lets_the_call_complete_after_the_pause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("v.sock");
    let vmm = Vmm::start(
        &sock,
        &[
            "--guest-port",
            "52=quantix",
            "--telemetry",
            "0",
            "--fault",
            "vm_pause:duration=300ms,direction=to_guest,on_type=ping",
        ],
    );
    let v = ok(&vmm.hvsock(52), "quantix", &["ping"]);
    assert!(v["summary"].as_str().expect("summary").starts_with("pong"));
    assert_eq!(vmm.event("paused")["by"], "fault");
    assert_eq!(vmm.event("resumed")["by"], "fault");
    vmm.event("closed");
}

#[test]
fn a_hung_agent_times_the_call_out_and_a_crashed_one_resets_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (fault, kind) in [
        ("agent_hang:direction=to_host,on_type=pong", "timed_out"),
        ("agent_crash:direction=to_host,on_type=pong", "closed"),
    ] {
        let sock = dir.path().join("v.sock");
        let vmm = Vmm::start(
            &sock,
            &[
                "--guest-port",
                "52=quantix",
                "--telemetry",
                "0",
                "--fault",
                fault,
            ],
        );
        let v = failed(&vmm.hvsock(52), "quantix", &["ping", "--timeout", "1"]);
        assert_eq!(v["error"]["kind"], kind, "{fault}: {v}");
        if kind == "closed" {
            let e = vmm.event("fault");
            assert_eq!(e["action"], "reset", "{e}");
        }
        let mut vmm = vmm;
        assert_eq!(vmm.stop(), Some(0), "{fault}");
    }
}

#[test]
fn a_guest_initiated_connection_reaches_the_host_listener_on_socket_underscore_port() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("v.sock");
    let host = UnixListener::bind(dir.path().join("v.sock_5000")).expect("bind");
    let vmm = Vmm::start(
        &sock,
        &["--guest-connect", "5000=quantix", "--telemetry", "0"],
    );
    host.set_nonblocking(true).expect("nonblocking");
    let start = Instant::now();
    let mut conn = loop {
        match host.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(start.elapsed() < DEADLINE, "the guest never connected");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    conn.set_nonblocking(false).expect("blocking");
    conn.set_read_timeout(Some(DEADLINE)).expect("timeout");
    // The mock quantix agent announces itself first: a QTX1 frame holding agent_ready.
    let mut head = [0u8; 8];
    conn.read_exact(&mut head).expect("frame header");
    assert_eq!(&head[..4], b"QTX\x01");
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).expect("frame body");
    let e = vmm.event("established");
    assert_eq!(e["origin"], "guest", "{e}");
    assert_eq!(e["host_port"], 5000, "{e}");
}

#[test]
fn the_users_agents_serve_their_ports_and_are_reaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("v.sock");
    let socket_agent =
        format!("52=cmd:{BIN} guest --listen unix:{{socket}} --protocol quantix --telemetry 0");
    let inetd_agent = format!("53=cmd:{BIN} guest --listen stdio --protocol qga --once");
    let mut vmm = Vmm::start(
        &sock,
        &["--guest-port", &socket_agent, "--guest-port", &inetd_agent],
    );
    let started = vmm.event("agent_started");
    assert_eq!(started["port"], 52, "{started}");
    let pid = started["pid"].as_i64().expect("pid");
    ok(&vmm.hvsock(52), "quantix", &["ping"]);
    ok(&vmm.hvsock(53), "qga", &["ping"]);
    let e = vmm.event("established");
    assert_eq!(e["service"], socket_agent.split_once('=').expect("=").1);
    assert_eq!(vmm.stop(), Some(0));
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).expect("pid")).expect("pid");
    assert!(
        rustix::process::test_kill_process(pid).is_err(),
        "the agent is gone with the VMM"
    );
}

#[test]
fn once_exits_after_the_first_host_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("v.sock");
    let mut vmm = Vmm::start(&sock, &["--once", "--guest-port", "52=quantix"]);
    ok(&vmm.hvsock(52), "quantix", &["ping"]);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = vmm.child.try_wait().expect("wait") {
            break s;
        }
        assert!(start.elapsed() < DEADLINE, "--once did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
    assert!(!sock.exists(), "the socket file is removed");
}

#[test]
fn bad_arguments_are_usage_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("v.sock");
    for args in [
        &["--guest-port", "52"][..],
        &["--guest-port", "52=raw"],
        &["--fault", "stale_client"],
        &["--fault", "nonsense"],
        &[
            "--guest-port",
            "1=quantix",
            "--guest-port",
            "2=fcexec",
            "--fault",
            "drop_frame",
        ],
    ] {
        let out = Command::new(BIN)
            .args(["vmm", "hvsock", "--socket"])
            .arg(&sock)
            .args(args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!sock.exists());
    }
}

/// Every toxiproxy-style stream fault through the mock VMM, with the symptom the host client
/// shows: the call still succeeds (slower, sliced, duplicated), or fails with the right kind.
#[test]
fn each_stream_fault_shows_its_symptom_at_the_host_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[(&str, &[&str])] = &[
        ("latency:latency=200ms,jitter=50ms", &["ok"]),
        ("bandwidth:rate=2000", &["ok"]),
        (
            "slicer:average_size=3,size_variation=2,delay=1ms,direction=to_host",
            &["ok"],
        ),
        // Firecracker needs the whole CONNECT line in one read: a sliced one is dropped.
        (
            "slicer:average_size=3,delay=5ms,direction=to_guest",
            &["handshake_failed"],
        ),
        ("slow_close:delay=100ms", &["ok"]),
        ("duplicate_frame:on_type=pong", &["ok"]),
        ("timeout:timeout=0ms,direction=to_host", &["timed_out"]),
        ("reorder:on_type=pong", &["timed_out"]),
        (
            "reset_peer:timeout=0ms,direction=to_host",
            &["reset", "closed"],
        ),
        ("limit_data:bytes=5,direction=to_host", &["closed", "reset"]),
        ("drop_frame:on_type=ping", &["timed_out"]),
    ];
    for (i, (fault, outcomes)) in cases.iter().enumerate() {
        let sock = dir.path().join(format!("f{i}.sock"));
        let mut vmm = Vmm::start(
            &sock,
            &[
                "--guest-port",
                "52=quantix",
                "--telemetry",
                "0",
                "--fault",
                fault,
            ],
        );
        let (_, v) = call(&vmm.hvsock(52), "quantix", &["ping", "--timeout", "2"]);
        let got = if v["ok"] == true {
            "ok".to_string()
        } else {
            v["error"]["kind"].as_str().unwrap_or("?").to_string()
        };
        assert!(outcomes.contains(&got.as_str()), "{fault}: {got}: {v}");
        assert_eq!(vmm.stop(), Some(0), "{fault}");
    }
}
