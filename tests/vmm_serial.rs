//! `guestwire vmm serial` through the real binary and real Unix sockets, against the real host
//! client (`guestwire call`): each test shows a real-world symptom of a QEMU virtio-serial port —
//! a plain ping, seed 003's guest-before-host hang and its fix by restarting the agent, a stale
//! client starving the daemon, the fourth client refused with `EAGAIN`, in-flight data discarded
//! when a client leaves, fault pumps' typed errors, a stale socket file — and a separate agent
//! binary (`examples/quantix_agent.rs`) on a pty through `--guest-cmd`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use guestwire::wire::Decoder;
use guestwire::wire::quantix::{
    AgentMessage, Payload, PingRequest, QuantixDecoder, QuantixEncoder,
};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_guestwire");

/// Deadline for anything the VMM is expected to report.
const EVENT_DEADLINE: Duration = Duration::from_secs(20);
/// Deadline for the VMM to exit once asked.
const EXIT_DEADLINE: Duration = Duration::from_secs(10);

/// A running `guestwire vmm serial --json`, interrupted and reaped on drop.
struct Vmm {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<Value>,
}

impl Vmm {
    fn start(socket: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["vmm", "serial", "--json", "--socket"])
            .arg(socket)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn vmm");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut vmm = Self {
            child,
            lines,
            seen: Vec::new(),
        };
        vmm.wait_event(|e| e["event"] == "listening" || e["event"] == "stale_socket");
        vmm
    }

    fn pid(&self) -> rustix::process::Pid {
        let pid = i32::try_from(self.child.id()).expect("pid");
        rustix::process::Pid::from_raw(pid).expect("pid > 0")
    }

    fn signal(&self, sig: rustix::process::Signal) {
        rustix::process::kill_process(self.pid(), sig).expect("signal the vmm");
    }

    /// The next event matching `pred`, reading on from the last one returned.
    fn wait_event(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let left = EVENT_DEADLINE
                .checked_sub(start.elapsed())
                .unwrap_or_default();
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let v: Value = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no such event within the deadline; seen: {:#?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the vmm exited; seen: {:#?}", self.seen)
                }
            }
        }
    }

    fn event(&mut self, name: &str) -> Value {
        self.wait_event(|e| e["event"] == name)
    }

    /// Waits for the process to exit (after a signal or by itself); returns its status code.
    fn wait_exit(&mut self) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < EXIT_DEADLINE {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // The remaining output, for the caller's assertions.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
                    if let Ok(v) = serde_json::from_str(&line) {
                        self.seen.push(v);
                    }
                }
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the vmm did not exit; seen: {:#?}", self.seen);
    }

    fn stop(&mut self) -> Option<i32> {
        self.signal(rustix::process::Signal::INT);
        self.wait_exit()
    }
}

impl Drop for Vmm {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = rustix::process::kill_process(self.pid(), rustix::process::Signal::INT);
            let start = Instant::now();
            while start.elapsed() < EXIT_DEADLINE {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `guestwire call --json --attempts 1 ... OP ARGS`: its output and JSON.
fn call(socket: &Path, protocol: &str, op: &[&str]) -> (Output, Value) {
    let out = Command::new(BIN)
        .args(["call", "--json", "--attempts", "1", "--protocol", protocol])
        .arg("--connect")
        .arg(format!("unix:{}", socket.display()))
        .args(op)
        .output()
        .expect("run call");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let v = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout:?} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, v)
}

fn ok(socket: &Path, protocol: &str, op: &[&str]) -> Value {
    let (out, v) = call(socket, protocol, op);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["ok"], true, "{v}");
    v
}

fn failed(socket: &Path, protocol: &str, op: &[&str], kind: &str) -> Value {
    let (out, v) = call(socket, protocol, op);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["error"]["kind"], kind, "{v}");
    v
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("vm.agent.sock");
    (dir, socket)
}

fn agent_ready_count(v: &Value) -> usize {
    v["events"].as_array().map_or(0, |a| {
        a.iter().filter(|e| e.get("agent_ready").is_some()).count()
    })
}

#[test]
fn a_ping_crosses_the_port_and_once_exits_cleaning_up() {
    let (_dir, socket) = tmp();
    let mut vmm = Vmm::start(
        &socket,
        &["--guest", "quantix", "--telemetry", "0", "--once"],
    );
    let v = ok(&socket, "quantix", &["ping", "--timeout", "5"]);
    assert!(
        v["reply"]["version"]
            .as_str()
            .is_some_and(|s| s.starts_with("guestwire-mock")),
        "{v}"
    );
    assert_eq!(
        vmm.wait_exit(),
        Some(0),
        "--once exits after the client left"
    );
    let names: Vec<&str> = vmm
        .seen
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    for expected in [
        "client_accepted",
        "client_disconnected",
        "data_discarded",
        "stopped",
    ] {
        assert!(names.contains(&expected), "{expected} missing: {names:?}");
    }
    assert!(!socket.exists(), "the socket file is removed");
}

#[test]
fn guest_before_host_with_the_naive_loop_hangs_until_the_agent_restarts() {
    let (_dir, socket) = tmp();
    let mut vmm = Vmm::start(
        &socket,
        &[
            "--guest",
            "quantix",
            "--loop",
            "naive",
            "--telemetry",
            "0",
            "--fault",
            "guest_before_host",
        ],
    );
    // The agent's AgentReady went nowhere, its reads saw end of file, and it gave up.
    vmm.event("guest_before_host");
    vmm.event("guest_exited");
    let v = failed(&socket, "quantix", &["ping", "--timeout", "1"], "timed_out");
    assert_eq!(v["error"]["phase"], "request", "{v}");
    // Seed 003's fix: restart the agent after the host is up.
    vmm.signal(rustix::process::Signal::USR1);
    vmm.event("guest_restarting");
    vmm.event("guest_opened");
    let v = ok(&socket, "quantix", &["ping", "--timeout", "5"]);
    assert_eq!(v["reply"]["sequence"], 1, "{v}");
    assert_eq!(vmm.stop(), Some(0));
}

#[test]
fn guest_before_host_with_the_robust_loop_answers_after_the_stale_ready() {
    let (_dir, socket) = tmp();
    let _vmm = Vmm::start(
        &socket,
        &[
            "--guest",
            "quantix",
            "--telemetry",
            "0",
            "--fault",
            "guest_before_host",
        ],
    );
    let v = ok(&socket, "quantix", &["ping", "--timeout", "5"]);
    // The AgentReady written before any host, then the reopened agent's own.
    assert_eq!(agent_ready_count(&v), 2, "{v}");
}

#[test]
fn a_stale_client_starves_the_real_one() {
    let (_dir, socket) = tmp();
    let mut vmm = Vmm::start(
        &socket,
        &[
            "--guest",
            "quantix",
            "--telemetry",
            "0",
            "--fault",
            "stale_client",
        ],
    );
    let stale = vmm.event("stale_client");
    assert_eq!(stale["client"], 1);
    // Connects (the kernel queues it) but nothing flows: the ping times out.
    let v = failed(&socket, "quantix", &["ping", "--timeout", "1"], "timed_out");
    assert_eq!(v["error"]["phase"], "request", "{v}");
    assert_eq!(vmm.stop(), Some(0));
    assert!(
        !vmm.seen
            .iter()
            .any(|e| e["event"] == "client_accepted" && e["client"] == 2),
        "the real client was never accepted: {:#?}",
        vmm.seen
    );
}

#[test]
fn a_fourth_client_is_refused_busy() {
    let (_dir, socket) = tmp();
    let mut vmm = Vmm::start(&socket, &["--guest", "quantix", "--telemetry", "0"]);
    let first = UnixStream::connect(&socket).expect("first");
    vmm.event("client_accepted");
    // Two more connect and wait in the listen queue (backlog 1 admits two).
    let second = UnixStream::connect(&socket).expect("second");
    let third = UnixStream::connect(&socket).expect("third");
    let v = failed(&socket, "quantix", &["ping", "--timeout", "1"], "busy");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("busy")),
        "{v}"
    );
    drop((first, second, third));
}

fn ping_frames(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = QuantixEncoder::new();
    for i in 0..n {
        let m = AgentMessage::new(format!("a-{i}"), PingRequest { sequence: i as u64 });
        out.extend_from_slice(&enc.to_bytes(&m).expect("encode"));
    }
    out
}

#[test]
fn a_client_leaving_discards_data_in_flight_and_the_next_gets_the_middle() {
    let (_dir, socket) = tmp();
    let mut vmm = Vmm::start(&socket, &["--guest", "quantix", "--telemetry", "0"]);
    let first = UnixStream::connect(&socket).expect("first");
    vmm.event("client_accepted");
    let mut second = UnixStream::connect(&socket).expect("second (waits)");
    second
        .set_read_timeout(Some(EVENT_DEADLINE))
        .expect("timeout");

    // The first client pings far more than it ever reads: the pongs fill its socket, the
    // port's buffers, then the guest blocks.
    let mut writer = first.try_clone().expect("clone");
    let pinger = std::thread::spawn(move || {
        let _ = writer.write_all(&ping_frames(40_000));
    });
    vmm.event("guest_blocked");
    first.shutdown(std::net::Shutdown::Both).expect("shutdown");
    drop(first);
    let discarded = vmm.event("data_discarded");
    assert!(
        discarded["bytes"].as_u64().is_some_and(|b| b > 0),
        "{discarded}"
    );
    let accepted = vmm.event("client_accepted");
    assert_eq!(accepted["client"], 2);
    pinger.join().expect("pinger");

    // The second client's stream starts at a frame boundary in the middle: pongs for the first
    // client's pings, no AgentReady.
    let mut decoder = QuantixDecoder::new();
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    let frame = loop {
        if let Some(item) = decoder.decode(&mut buf) {
            break item.expect("a whole frame");
        }
        let n = second.read(&mut chunk).expect("read");
        assert!(n > 0, "the second client got nothing");
        buf.extend_from_slice(&chunk[..n]);
    };
    assert_eq!(frame.offset, 0);
    assert!(
        matches!(frame.message.payload, Some(Payload::Pong(_))),
        "{:?}",
        frame.message
    );
    assert!(
        frame.message.message_id.starts_with("a-"),
        "{:?}",
        frame.message
    );
    drop(second);
    assert_eq!(vmm.stop(), Some(0));
}

#[test]
fn fault_pumps_show_their_typed_errors_at_the_host() {
    let (_dir, socket) = tmp();
    let mut vmm = Vmm::start(
        &socket,
        &[
            "--guest",
            "quantix",
            "--telemetry",
            "0",
            "--fault",
            "drop_frame:on_type=ping",
        ],
    );
    failed(&socket, "quantix", &["ping", "--timeout", "1"], "timed_out");
    assert_eq!(vmm.stop(), Some(0));

    let mut vmm = Vmm::start(
        &socket,
        &[
            "--guest",
            "quantix",
            "--telemetry",
            "0",
            "--fault",
            "malformed:bad_protobuf,direction=to_host,on_type=pong",
        ],
    );
    let v = failed(&socket, "quantix", &["ping", "--timeout", "5"], "malformed");
    assert!(v["error"]["hex"].is_string(), "{v}");
    vmm.event("connection_ended");
    assert_eq!(vmm.stop(), Some(0));

    let _vmm = Vmm::start(
        &socket,
        &[
            "--guest",
            "quantix-legacy",
            "--telemetry",
            "0",
            "--fault",
            "malformed:bad_magic,direction=to_host,on_type=pong",
        ],
    );
    let v = failed(
        &socket,
        "quantix-legacy",
        &["ping", "--timeout", "5"],
        "malformed",
    );
    assert!(
        v["error"]["hex"]
            .as_str()
            .is_some_and(|h| h.starts_with("51545801")),
        "the QTX1 magic where a legacy length should be: {v}"
    );
}

#[test]
fn a_stale_socket_is_refused_and_removed_at_exit() {
    let (_dir, socket) = tmp();
    let mut vmm = Vmm::start(&socket, &["--fault", "stale_socket"]);
    assert!(socket.exists());
    failed(&socket, "quantix", &["ping", "--timeout", "1"], "refused");
    assert_eq!(vmm.stop(), Some(0));
    assert!(!socket.exists());
}

#[test]
fn faults_that_make_no_sense_here_are_usage_errors() {
    let (_dir, socket) = tmp();
    for args in [
        &["--fault", "ch_shutdown_wedge"][..],
        &["--fault", "drop_frame"][..],
        &["--fault", "no_such_fault"][..],
        &["--guest", "quantix", "--port-name", "../escape"][..],
    ] {
        let out = Command::new(BIN)
            .args(["vmm", "serial", "--socket"])
            .arg(&socket)
            .args(args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!socket.exists());
    }
}

/// `examples/quantix_agent.rs`, built (once per test run) with the same cargo.
fn example_agent() -> &'static Path {
    static AGENT: OnceLock<PathBuf> = OnceLock::new();
    AGENT.get_or_init(|| {
        let out = Command::new(env!("CARGO"))
            .args([
                "build",
                "--example",
                "quantix_agent",
                "--message-format",
                "json",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::null())
            .output()
            .expect("run cargo build");
        assert!(out.status.success(), "cargo build --example quantix_agent");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["target"]["name"] == "quantix_agent")
            .find_map(|v| v["executable"].as_str().map(PathBuf::from))
            .expect("the example's executable in cargo's output")
    })
}

#[test]
fn an_agent_binary_on_a_pty_answers_through_the_port() {
    let agent = example_agent();
    let (dir, socket) = tmp();
    let cmd = format!("{} {{device}}", agent.display());
    let mut vmm = Vmm::start(
        &socket,
        &[
            "--guest-cmd",
            &cmd,
            "--protocol",
            "quantix",
            "--device-dir",
            &dir.path().display().to_string(),
        ],
    );
    let spawned = vmm.event("agent_spawned");
    let device = PathBuf::from(spawned["device"].as_str().expect("device"));
    assert_eq!(device, dir.path().join("org.quantix.agent.0"));
    assert!(
        std::fs::read_link(&device).is_ok(),
        "the device link is a pty"
    );
    let pid = spawned["pid"].as_u64().expect("pid");

    let v = ok(&socket, "quantix", &["ping", "--timeout", "5"]);
    assert_eq!(v["reply"]["version"], "quantix_agent-example", "{v}");
    assert_eq!(agent_ready_count(&v), 1, "{v}");
    let v = ok(
        &socket,
        "quantix",
        &["exec", "--timeout", "5", "echo", "two words"],
    );
    assert_eq!(v["reply"]["stdout"], "echo two words", "{v}");

    assert_eq!(vmm.stop(), Some(0));
    assert!(
        vmm.seen
            .iter()
            .any(|e| e["event"] == "agent_exited" && e["pid"] == pid),
        "{:#?}",
        vmm.seen
    );
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the agent is reaped"
    );
    assert!(
        std::fs::symlink_metadata(&device).is_err(),
        "the link is gone"
    );
    assert!(!socket.exists());
}
