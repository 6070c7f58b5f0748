//! `guestwire vmm ch-api` through the real binary and a real Unix socket, with a hand-written
//! HTTP/1.1 client (and curl, a real one): the whole lifecycle on one keep-alive connection,
//! real versus spec codes, bad JSON, a second create, the cloud-hypervisor#816 wedge, an
//! oversize body, snapshot files on disk, Ctrl-C; and the library server with channel hooks.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use guestwire::vmm::chapi::{ChApiServer, ChannelHooks, Event, ServerConfig, ServerExit, VmState};

const BIN: &str = env!("CARGO_BIN_EXE_guestwire");

/// How long a reply may take before a test gives up on it.
const REPLY_DEADLINE: Duration = Duration::from_secs(10);

/// How long the wedge tests wait to see that no reply comes.
const SILENCE: Duration = Duration::from_millis(700);

/// A `guestwire vmm ch-api` process, killed and reaped on drop; its standard output arrives
/// line by line on `lines`.
struct Vmm {
    child: Child,
    socket: PathBuf,
    lines: mpsc::Receiver<String>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Vmm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn vmm(dir: &Path, extra: &[&str]) -> Vmm {
    let socket = dir.join("api.sock");
    let child = Command::new(BIN)
        .args(["vmm", "ch-api", "--api-socket"])
        .arg(&socket)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn guestwire vmm ch-api");
    let mut child = child;
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let vmm = Vmm {
        child,
        socket: socket.clone(),
        lines,
        reader: Some(reader),
    };
    wait_for(&socket);
    vmm
}

impl Vmm {
    fn client(&self) -> Client {
        Client::connect(&self.socket, REPLY_DEADLINE)
    }

    /// Waits (bounded) for a line of standard output that contains `needle`.
    fn expect_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line with {needle:?}: {e}"),
            }
        }
    }

    /// Waits (bounded) for the process to exit; its exit code and the rest of its output.
    fn exit(mut self) -> (Option<i32>, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                if let Some(reader) = self.reader.take() {
                    reader.join().expect("stdout reader");
                }
                let out: Vec<String> = self.lines.try_iter().collect();
                return (status.code(), out.join("\n"));
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the VMM did not exit"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn interrupt(&self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    }
}

/// A reply as read off the socket.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The error chain of an error body.
    fn chain(&self) -> Vec<String> {
        serde_json::from_value(self.json()).expect("a JSON array of strings")
    }
}

/// A hand-written HTTP/1.1 client on one keep-alive Unix connection.
struct Client {
    reader: BufReader<UnixStream>,
}

impl Client {
    fn connect(socket: &Path, deadline: Duration) -> Self {
        // The socket file appears at bind(), a moment before listen(): retry a refused connect.
        let start = Instant::now();
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(s) => break s,
                Err(e) => {
                    assert!(start.elapsed() < Duration::from_secs(20), "connect: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        };
        stream.set_read_timeout(Some(deadline)).expect("timeout");
        stream.set_write_timeout(Some(deadline)).expect("timeout");
        Self {
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, method: &str, endpoint: &str, body: Option<&str>) {
        let mut req = format!("{method} /api/v1/{endpoint} HTTP/1.1\r\nHost: localhost\r\n");
        if let Some(body) = body {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            req.push_str("\r\n");
        }
        self.reader
            .get_mut()
            .write_all(req.as_bytes())
            .expect("write request");
    }

    /// Reads one reply; `Err` with the IO error kind when none comes (timeout, EOF).
    fn read(&mut self) -> Result<Reply, ErrorKind> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof),
            Ok(_) => {}
            Err(e) => return Err(e.kind()),
        }
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h).map_err(|e| e.kind())?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':').expect("header");
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        let len = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse::<usize>().expect("length"));
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).map_err(|e| e.kind())?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    fn call(&mut self, method: &str, endpoint: &str, body: Option<&str>) -> Reply {
        self.send(method, endpoint, body);
        self.read()
            .unwrap_or_else(|e| panic!("{method} {endpoint}: no reply ({e:?})"))
    }

    fn put(&mut self, endpoint: &str, body: Option<&str>) -> Reply {
        self.call("PUT", endpoint, body)
    }

    fn get(&mut self, endpoint: &str) -> Reply {
        self.call("GET", endpoint, None)
    }
}

fn vm_config(dir: &Path) -> String {
    let vsock = dir.join("vsock.sock");
    serde_json::json!({
        "payload": {"kernel": "/boot/vmlinux", "cmdline": "console=hvc0"},
        "cpus": {"boot_vcpus": 2, "max_vcpus": 2},
        "memory": {"size": 1_073_741_824u64},
        "vsock": {"cid": 3, "socket": vsock},
    })
    .to_string()
}

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

#[test]
fn the_whole_lifecycle_on_one_connection_with_snapshot_files_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snap = dir.path().join("snap");
    std::fs::create_dir(&snap).expect("snap dir");
    let snap_url = format!(r#"{{"destination_url":"file://{}"}}"#, snap.display());
    let restore = format!(r#"{{"source_url":"file://{}"}}"#, snap.display());
    let vmm = vmm(dir.path(), &["--json", "--version", "v49.0"]);
    let mut c = vmm.client();

    let ping = c.get("vmm.ping");
    assert_eq!(ping.status, 200);
    assert_eq!(ping.json()["version"], "49.0.0");
    assert_eq!(ping.json()["pid"], vmm.child.id());
    assert_eq!(ping.header("Server"), Some("Cloud Hypervisor API"));
    assert_eq!(c.put("vm.create", Some(&vm_config(dir.path()))).status, 204);
    assert_eq!(c.put("vm.boot", None).status, 204);
    assert_eq!(c.put("vm.pause", None).status, 204);
    assert_eq!(c.put("vm.snapshot", Some(&snap_url)).status, 204);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(snap.join("config.json")).expect("config.json"))
            .expect("config JSON");
    assert_eq!(config["vsock"]["cid"], 3);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(snap.join("state.json")).expect("state.json"))
            .expect("state JSON");
    assert_eq!(state["state"], "Paused");
    assert_eq!(c.put("vm.resume", None).status, 204);
    assert_eq!(c.get("vm.info").json()["state"], "Running");
    assert_eq!(c.put("vm.shutdown", None).status, 204);
    assert_eq!(c.put("vm.delete", None).status, 204);
    assert_eq!(c.get("vm.info").status, 500);
    assert_eq!(c.put("vm.restore", Some(&restore)).status, 204);
    let info = c.get("vm.info").json();
    assert_eq!(info["state"], "Paused", "restored VMs come back paused");
    assert_eq!(info["config"]["memory"]["size"], 1_073_741_824u64);
    assert_eq!(c.put("vm.resume", None).status, 204);
    let bye = c.put("vmm.shutdown", None);
    assert_eq!((bye.status, bye.header("Connection")), (200, Some("close")));

    let socket = vmm.socket.clone();
    let (code, stdout) = vmm.exit();
    assert_eq!(code, Some(0));
    assert!(!socket.exists(), "the socket file is removed");
    let lines = json_lines(&stdout);
    let events: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
    assert_eq!(
        events,
        [
            "vsock_up",
            "paused",
            "resumed",
            "vsock_down",
            "vsock_up",
            "paused",
            "resumed",
            "vsock_down",
            "vmm_shutdown"
        ]
    );
    let statuses: Vec<u64> = lines.iter().filter_map(|l| l["status"].as_u64()).collect();
    assert_eq!(statuses.len(), 14, "{stdout}");
}

#[test]
fn pause_before_boot_is_500_with_a_chain_in_real_mode_and_405_in_spec_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (codes, status) in [("real", 500), ("spec", 405)] {
        let sub = dir.path().join(codes);
        std::fs::create_dir(&sub).expect("dir");
        let vmm = vmm(&sub, &["--codes", codes]);
        let mut c = vmm.client();
        assert_eq!(c.put("vm.create", Some(&vm_config(&sub))).status, 204);
        let r = c.put("vm.pause", None);
        assert_eq!(r.status, status, "{codes}");
        assert_eq!(
            r.chain(),
            [
                "Error from API",
                "The VM could not be paused",
                "VM is not running"
            ]
        );
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        // The shutdown of the VMM itself: 200 from the real server, 204 per the spec.
        let bye = c.put("vmm.shutdown", None);
        assert_eq!(bye.status, if codes == "real" { 200 } else { 204 });
        assert_eq!(vmm.exit().0, Some(0));
    }
}

#[test]
fn bad_json_is_400_and_a_second_create_is_500_real_and_409_spec() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (codes, duplicate) in [("real", 500), ("spec", 409)] {
        let sub = dir.path().join(codes);
        std::fs::create_dir(&sub).expect("dir");
        let vmm = vmm(&sub, &["--codes", codes]);
        let mut c = vmm.client();
        let r = c.put("vm.create", Some(r#"{"payload": "#));
        assert_eq!(r.status, 400);
        assert_eq!(r.chain()[0], "Failed to deserialize JSON");
        let r = c.put(
            "vm.create",
            Some(r#"{"cpus":{"boot_vcpus":1,"max_vcpus":1}}"#),
        );
        assert_eq!(r.status, 400);
        assert_eq!(r.chain()[1], "missing field `payload`");
        assert_eq!(c.put("vm.create", Some(&vm_config(&sub))).status, 204);
        let r = c.put("vm.create", Some(&vm_config(&sub)));
        assert_eq!(r.status, duplicate, "{codes}");
        assert_eq!(
            r.chain().last().map(String::as_str),
            Some("VM is already created")
        );
        assert_eq!(c.get("vm.info").json()["state"], "Created");
    }
}

#[test]
fn the_816_wedge_never_answers_vmm_shutdown_on_a_paused_vm_nor_anything_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vmm = vmm(dir.path(), &["--fault", "ch_shutdown_wedge"]);
    let mut c = vmm.client();
    assert_eq!(c.put("vm.create", Some(&vm_config(dir.path()))).status, 204);
    assert_eq!(c.put("vm.boot", None).status, 204);
    assert_eq!(c.put("vm.pause", None).status, 204);

    let mut wedged = Client::connect(&vmm.socket, SILENCE);
    wedged.send("PUT", "vmm.shutdown", None);
    vmm.expect_line("PUT /api/v1/vmm.shutdown → no reply (wedged)");
    assert!(
        matches!(
            wedged.read(),
            Err(ErrorKind::WouldBlock | ErrorKind::TimedOut)
        ),
        "vmm.shutdown on a paused VM must not be answered"
    );
    let mut later = Client::connect(&vmm.socket, SILENCE);
    later.send("GET", "vmm.ping", None);
    assert!(
        matches!(
            later.read(),
            Err(ErrorKind::WouldBlock | ErrorKind::TimedOut)
        ),
        "after the wedge a ping must not be answered either"
    );
    // The process is still there, wedged; Ctrl-C still stops it cleanly.
    vmm.interrupt();
    let socket = vmm.socket.clone();
    assert_eq!(vmm.exit().0, Some(0));
    assert!(!socket.exists());
}

#[test]
fn without_the_fault_vmm_shutdown_on_a_paused_vm_is_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vmm = vmm(dir.path(), &[]);
    let mut c = vmm.client();
    assert_eq!(c.put("vm.create", Some(&vm_config(dir.path()))).status, 204);
    assert_eq!(c.put("vm.boot", None).status, 204);
    assert_eq!(c.put("vm.pause", None).status, 204);
    assert_eq!(c.put("vmm.shutdown", None).status, 200);
    assert_eq!(vmm.exit().0, Some(0));
}

#[test]
fn an_oversize_body_gets_413_before_it_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vmm = vmm(dir.path(), &["--max-body", "4096"]);
    let mut c = vmm.client();
    // Claim 100 MiB, send 16 bytes of it: the answer must come without the rest.
    let head =
        "PUT /api/v1/vm.create HTTP/1.1\r\nHost: localhost\r\nContent-Length: 104857600\r\n\r\n";
    let start = format!("{head}{{\"payload\": {{\"k");
    c.reader
        .get_mut()
        .write_all(start.as_bytes())
        .expect("head and some body");
    let r = c.read().expect("a 413");
    assert_eq!(r.status, 413);
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(r.chain()[0].contains("4096"), "{:?}", r.chain());
    // The connection is closed (reset, as the unread rest of the body was dropped); a new one
    // is served.
    let end = c.read().err();
    assert!(
        matches!(
            end,
            Some(ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset)
        ),
        "{end:?}"
    );
    assert_eq!(vmm.client().get("vmm.ping").status, 200);
    // A body at the limit is read and judged on its merits.
    let at_limit = format!(r#"{{"payload":{{"kernel":"{}"}}}}"#, "k".repeat(4096 - 25));
    assert_eq!(at_limit.len(), 4096);
    assert_eq!(vmm.client().put("vm.create", Some(&at_limit)).status, 204);
}

#[test]
fn unknown_paths_and_wrong_methods() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vmm = vmm(dir.path(), &[]);
    let mut c = vmm.client();
    let r = c.put("vm.fly", None);
    assert_eq!((r.status, r.chain()), (404, vec!["Not Found".to_string()]));
    let r = c.get("vm.boot");
    assert_eq!(
        (r.status, r.chain()),
        (400, vec!["Bad Request".to_string()])
    );
    let r = c.put("vmm.ping", None);
    assert_eq!(r.status, 400);
    // Still one healthy connection.
    assert_eq!(c.get("vmm.ping").status, 200);
}

#[test]
fn ctrl_c_stops_the_server_and_removes_its_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vmm = vmm(dir.path(), &[]);
    let mut idle = vmm.client();
    assert_eq!(idle.get("vmm.ping").status, 200);
    vmm.interrupt();
    let socket = vmm.socket.clone();
    let (code, stdout) = vmm.exit();
    assert_eq!(code, Some(0));
    assert!(!socket.exists());
    assert_eq!(stdout.trim(), "GET /api/v1/vmm.ping → 200");
    assert_eq!(idle.read().err(), Some(ErrorKind::UnexpectedEof));
}

/// curl, a real HTTP client: skipped if it is not installed, except under `CI=true`.
fn curl() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("curl"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "curl is missing, but CI installs it (scripts/install-deps.sh curl)"
        );
        eprintln!("SKIPPED: curl not found; install curl to run this test");
    }
    found
}

#[test]
fn curl_drives_the_api() {
    let Some(curl) = curl() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let vmm = vmm(dir.path(), &["--codes", "spec"]);
    let run = |args: &[&str]| {
        let out = Command::new(&curl)
            .args([
                "-s",
                "--max-time",
                "10",
                "-w",
                "\n%{http_code}",
                "--unix-socket",
            ])
            .arg(&vmm.socket)
            .args(args)
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').expect("status line");
        (code.to_string(), body.to_string())
    };
    let (code, body) = run(&["http://localhost/api/v1/vmm.ping"]);
    assert_eq!(code, "200");
    assert!(body.contains("\"build_version\":\"v48.0\""), "{body}");
    let config = vm_config(dir.path());
    let (code, _) = run(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/json",
        "-d",
        &config,
        "http://localhost/api/v1/vm.create",
    ]);
    assert_eq!(code, "204");
    let (code, body) = run(&["-X", "PUT", "http://localhost/api/v1/vm.resume"]);
    assert_eq!(code, "404", "spec: resume of a VM never booted: {body}");
    let (code, body) = run(&["http://localhost/api/v1/vm.info"]);
    assert_eq!(code, "200");
    assert!(body.contains("\"state\":\"Created\""), "{body}");
    let (code, _) = run(&["-X", "POST", "http://localhost/api/v1/vm.info"]);
    assert_eq!(code, "405");
}

#[tokio::test]
async fn the_library_server_waits_for_its_hooks_and_a_failing_hook_fails_the_boot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("api.sock");
    let (hooks, mut events) = ChannelHooks::new(4);
    let mut server = ChApiServer::start(ServerConfig::new(&socket), Arc::new(hooks))
        .await
        .expect("start");
    let config = vm_config(dir.path());
    let vsock = dir.path().join("vsock.sock");

    let client = {
        let socket = socket.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = Client::connect(&socket, REPLY_DEADLINE);
            assert_eq!(c.put("vm.create", Some(&config)).status, 204);
            let failed = c.put("vm.boot", None);
            let booted = c.put("vm.boot", None);
            (failed.status, failed.chain(), booted.status)
        })
    };
    // The first boot's vsock_up is refused, the second's accepted.
    for answer in [Err("cannot bind the vsock socket".to_string()), Ok(())] {
        let call = tokio::time::timeout(REPLY_DEADLINE, events.recv())
            .await
            .expect("an event in time")
            .expect("an event");
        assert_eq!(
            call.event,
            Event::VsockUp {
                cid: 3,
                socket: vsock.clone()
            }
        );
        call.ack(answer);
    }
    let (failed, chain, booted) = client.await.expect("client");
    assert_eq!(failed, 500);
    assert_eq!(
        chain,
        [
            "Error from API",
            "The VM could not boot",
            "cannot bind the vsock socket"
        ]
    );
    assert_eq!(booted, 204);
    assert_eq!(server.state().await, Some(VmState::Running));
    server.stop();
    assert_eq!(server.wait().await, ServerExit::Stopped);
    assert!(!socket.exists());
}

#[test]
fn usage_errors_exit_2_with_a_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("api.sock");
    for (args, reason) in [
        (
            &["--fault", "stale_client"][..],
            "not a fault of the ch-api",
        ),
        (
            &["--fault", "ch_shutdown_wedge:probability=0.5"][..],
            "takes no trigger",
        ),
        (&["--version", "48"][..], "expected vMAJOR.MINOR"),
    ] {
        let out = Command::new(BIN)
            .args(["vmm", "ch-api", "--api-socket"])
            .arg(&socket)
            .args(args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
        assert!(!socket.exists());
    }
}

/// Runs `guestwire call` against the VM's vsock (fcexec echo agent on port 1024).
fn vsock_exec(socket: &Path, timeout: &str) -> std::process::Output {
    Command::new(BIN)
        .args(["call", "--connect"])
        .arg(format!("hvsock:{}:1024", socket.display()))
        .args([
            "--protocol",
            "fcexec",
            "--json",
            "--attempts",
            "1",
            "--timeout",
            timeout,
            "exec",
            "echo",
            "through-the-vm",
        ])
        .output()
        .expect("run guestwire call")
}

#[test]
fn a_booted_vm_serves_its_guest_on_hybrid_vsock_pause_freezes_it_and_restore_brings_it_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vsock = dir.path().join("vsock.sock");
    let snap = dir.path().join("snap");
    std::fs::create_dir(&snap).expect("snap dir");
    let vmm = vmm(
        dir.path(),
        &["--exec", "echo", "--guest-port", "1024=fcexec"],
    );
    let mut c = vmm.client();
    assert_eq!(c.put("vm.create", Some(&vm_config(dir.path()))).status, 204);
    assert!(!vsock.exists(), "no vsock socket before boot");
    assert_eq!(c.put("vm.boot", None).status, 204);
    assert!(
        vsock.exists(),
        "boot binds the vsock socket before it answers"
    );

    let out = vsock_exec(&vsock, "5");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("call JSON");
    assert!(out.status.success(), "{v}");
    assert!(v.to_string().contains("through-the-vm"), "{v}");

    // Paused: the request queues in the VMM and the reply never comes within the deadline.
    assert_eq!(c.put("vm.pause", None).status, 204);
    let out = vsock_exec(&vsock, "0.5");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("call JSON");
    assert_eq!(v["error"]["kind"], "timed_out", "{v}");
    // A call started while paused is answered once the VM resumes.
    let socket = vsock.clone();
    let waiting = std::thread::spawn(move || vsock_exec(&socket, "10"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.put("vm.resume", None).status, 204);
    let out = waiting.join().expect("call thread");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Snapshot, tear down, restore: the socket comes back, paused, then serves again.
    assert_eq!(c.put("vm.pause", None).status, 204);
    let snap_url = format!(r#"{{"destination_url":"file://{}"}}"#, snap.display());
    assert_eq!(c.put("vm.snapshot", Some(&snap_url)).status, 204);
    assert_eq!(c.put("vm.shutdown", None).status, 204);
    assert!(!vsock.exists(), "shutdown removes the vsock socket");
    assert_eq!(c.put("vm.delete", None).status, 204);
    let restore = format!(r#"{{"source_url":"file://{}"}}"#, snap.display());
    assert_eq!(c.put("vm.restore", Some(&restore)).status, 204);
    assert!(vsock.exists(), "restore brings the vsock socket back");
    assert_eq!(c.put("vm.resume", None).status, 204);
    let out = vsock_exec(&vsock, "5");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    drop(vmm);
}
