//! `guestwire fuzz` through the real binary over real Unix sockets: every mock agent survives a
//! 200-case run (quantix, quantix-legacy and qga on `unix:`, fcexec and Volant on `hvsock:`
//! behind the mock VMM); a deliberately fragile agent is found dead or hung, the finding is
//! saved as a pcap holding the case's bytes plus a JSON whose reproduction command runs that
//! one case again and finds the same; a short run against the real qemu-ga must not crash it.
//! Never AF_VSOCK. Every child is killed and reaped; every wait is bounded; no timing asserted.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use guestwire::capture::CaptureReader;
use guestwire::capture::vsockmon::{HOST_CID, Op};
use serde_json::Value;

#[path = "support/fragile.rs"]
mod fragile;
mod support;

use fragile::{Fragile, Weakness};
use support::{BIN, Proc, connect, spawn, wait_for};

/// The longest any fuzz run here may take before the test fails (and kills it).
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// Runs `guestwire fuzz ARGS --json`; returns the exit code and the JSON it printed.
fn fuzz(args: &[&str]) -> (Option<i32>, Value) {
    let mut child = Command::new(BIN)
        .arg("fuzz")
        .args(args)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fuzz");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    // Read both pipes while the process runs, so a large report cannot block it.
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut child = Proc(child);
    let start = Instant::now();
    let status = loop {
        if let Ok(Some(status)) = child.0.try_wait() {
            break status;
        }
        assert!(start.elapsed() < RUN_LIMIT, "guestwire fuzz did not finish");
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out.join().expect("stdout reader");
    let err = err.join().expect("stderr reader");
    assert!(!err.contains("panicked"), "{err}");
    let v = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {out:?} {err}"));
    (status.code(), v)
}

/// Fuzzes `connect` with 200 cases of seed 1 and expects nothing found.
fn survives_200(connect_to: &str, protocol: &str, dir: &Path) {
    let out = dir.join("findings");
    let (code, v) = fuzz(&[
        "--connect",
        connect_to,
        "--protocol",
        protocol,
        "--runs",
        "200",
        "--seed",
        "1",
        "--settle-ms",
        "20",
        "--read-timeout",
        "20",
        // Generous, so that a loaded machine cannot pass for a hung agent.
        "--probe-timeout",
        "20",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, Some(0), "{protocol}: {v:#}");
    // Every valid request was answered (a reply ends its case at once: the long read
    // deadline costs nothing unless the agent is slow).
    assert_eq!(v["answered"], v["by_family"]["valid"], "{protocol}: {v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["cases"], 200);
    assert_eq!(v["findings"], Value::Array(Vec::new()));
    for family in ["valid", "malformed", "mutated", "structured"] {
        assert!(
            v["by_family"][family].as_u64().unwrap_or(0) > 10,
            "{protocol}: {family}: {v}"
        );
    }
    assert!(!out.exists(), "no finding, no findings directory");
}

/// Starts the mock agent of `protocol` on a Unix socket and waits until it listens.
fn mock_guest(protocol: &str, sock: &Path) -> Proc {
    let listen = format!("unix:{}", sock.display());
    let g = spawn(
        &[
            "guest",
            "--protocol",
            protocol,
            "--listen",
            &listen,
            "--exec",
            "echo",
            "--telemetry",
            "0",
        ],
        false,
    );
    wait_for(sock);
    drop(connect(sock));
    g
}

#[test]
fn the_mock_quantix_agent_survives_200_cases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("q.sock");
    let _g = mock_guest("quantix", &sock);
    survives_200(&format!("unix:{}", sock.display()), "quantix", dir.path());
}

#[test]
fn the_mock_quantix_legacy_agent_survives_200_cases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("ql.sock");
    let _g = mock_guest("quantix-legacy", &sock);
    survives_200(
        &format!("unix:{}", sock.display()),
        "quantix-legacy",
        dir.path(),
    );
}

#[test]
fn the_mock_qga_agent_survives_200_cases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("qga.sock");
    let _g = mock_guest("qga", &sock);
    survives_200(&format!("unix:{}", sock.display()), "qga", dir.path());
}

/// The mock VMM with the mock agent of `protocol` on guest `port`, waited for.
fn mock_vmm(protocol: &str, port: u32, sock: &Path) -> Proc {
    let guest_port = format!("{port}={protocol}");
    let v = spawn(
        &[
            "vmm",
            "hvsock",
            "--socket",
            sock.to_str().expect("utf-8"),
            "--guest-port",
            &guest_port,
            "--exec",
            "echo",
            "--telemetry",
            "0",
        ],
        false,
    );
    wait_for(sock);
    drop(connect(sock));
    v
}

#[test]
fn the_mock_fcexec_agent_survives_200_cases_over_hybrid_vsock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("v.sock");
    let _v = mock_vmm("fcexec", 1024, &sock);
    survives_200(
        &format!("hvsock:{}:1024", sock.display()),
        "fcexec",
        dir.path(),
    );
}

#[test]
fn the_mock_volant_agent_survives_200_cases_over_hybrid_vsock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("v.sock");
    let _v = mock_vmm("volant", 8080, &sock);
    survives_200(
        &format!("hvsock:{}:8080", sock.display()),
        "volant",
        dir.path(),
    );
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The bytes the host sent in a capture, joined.
fn host_bytes(pcap: &Path) -> Vec<u8> {
    let file = std::fs::File::open(pcap).expect("open pcap");
    let mut reader = CaptureReader::new(file);
    let mut out = Vec::new();
    let mut records = 0;
    while let Some(r) = reader.next_record() {
        let r = r.expect("a well-formed record");
        records += 1;
        assert!(records < 100_000, "bounded");
        let h = &r.vsock.header;
        if h.op == Op::Payload && h.src.cid == HOST_CID {
            out.extend_from_slice(&r.vsock.payload);
        }
    }
    out
}

/// Runs the fragile agent into its weakness; checks the finding, its files, and that its
/// reproduction command finds it again. Returns the finding's JSON.
fn finds_and_reproduces(weakness: Weakness, kind: &str) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("fragile.sock");
    let out = dir.path().join("findings");
    let endpoint = format!("unix:{}", sock.display());
    let agent = Fragile::start(&sock, weakness);
    let (code, v) = fuzz(&[
        "--connect",
        &endpoint,
        "--protocol",
        "quantix",
        "--runs",
        "300",
        "--seed",
        "1",
        "--settle-ms",
        "20",
        "--probe-timeout",
        "3",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, Some(1), "{v:#}");
    assert!(agent.broken(), "the weakness was hit");
    assert_eq!(v["ok"], false);
    assert_eq!(v["stopped_by"], kind, "{v:#}");
    let findings = v["findings"].as_array().expect("findings");
    let f = findings.last().expect("a finding").clone();
    assert_eq!(f["kind"], kind);
    assert_eq!(f["seed"], 1);
    let n = f["finding"].as_u64().expect("n");
    let case = f["case"].as_u64().expect("case");
    assert!(v["cases"].as_u64().expect("cases") == case + 1, "{v:#}");
    // The files: the JSON as printed, and a capture holding exactly the case's bytes.
    let json_path = out.join(format!("finding-{n}.json"));
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).expect("finding json"))
            .expect("JSON");
    assert_eq!(saved, f);
    let pcap = out.join(format!("finding-{n}-{kind}.pcap"));
    let input = unhex(f["input_hex"].as_str().expect("hex"));
    assert_eq!(input.len() as u64, f["input_len"].as_u64().expect("len"));
    assert_eq!(host_bytes(&pcap), input);
    drop(agent);

    // Reproduce: a fresh agent, the saved command line, one case, the same finding.
    let agent = Fragile::start(&sock, weakness);
    let command = f["reproduce"].as_str().expect("reproduce");
    assert!(!command.contains('\''), "plain words: {command}");
    let words: Vec<&str> = command.split(' ').collect();
    assert_eq!(&words[..2], ["guestwire", "fuzz"], "{command}");
    assert!(command.contains("--probe-timeout 3"), "{command}");
    let (code, again) = fuzz(&words[2..]);
    assert_eq!(code, Some(1), "{again:#}");
    assert_eq!(again["cases"], 1);
    assert_eq!(again["case"], case);
    assert_eq!(again["findings"][0]["kind"], kind);
    assert_eq!(again["findings"][0]["input_hex"], f["input_hex"]);
    assert!(agent.broken());
    f
}

#[test]
fn an_agent_that_dies_on_an_oversize_length_is_found_saved_and_reproduced() {
    let f = finds_and_reproduces(Weakness::DiesOnOversizeLength, "dead");
    // Refused, or reset when the probe's connect landed in the backlog before the close.
    let detail = f["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("refused") || detail.contains("reset"),
        "{f:#}"
    );
}

#[test]
fn an_agent_that_hangs_on_a_zero_length_frame_is_found_hung_and_reproduced() {
    let f = finds_and_reproduces(Weakness::HangsOnZeroLength, "hung");
    assert!(
        f["detail"].as_str().unwrap_or("").contains("timed out"),
        "{f:#}"
    );
}

#[test]
fn a_peer_that_is_not_there_or_a_protocol_without_requests_cannot_be_fuzzed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = format!("unix:{}", dir.path().join("none.sock").display());
    let (code, v) = fuzz(&[
        "--connect",
        &missing,
        "--protocol",
        "quantix",
        "--runs",
        "5",
        "--probe-timeout",
        "1",
    ]);
    assert_eq!(code, Some(2), "{v}");
    assert_eq!(v["ok"], false);
    assert!(
        v["error"].as_str().unwrap_or("").contains("not answering"),
        "{v}"
    );
    let out = Command::new(BIN)
        .args(["fuzz", "--connect", &missing, "--protocol", "raw"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not know raw"));
}

/// Where Debian's `qemu-guest-agent` installs the agent (`GUESTWIRE_QEMU_GA` overrides).
const QEMU_GA: &str = "/usr/sbin/qemu-ga";

/// Commands the real agent must never run here (as in `tests/qga_interop.rs`): the fuzzer's
/// safety filter already keeps them out; this is the second line.
const BLOCKED: &str = "guest-shutdown,guest-suspend-disk,guest-suspend-ram,guest-suspend-hybrid,\
guest-set-time,guest-set-user-password,guest-fsfreeze-freeze,guest-fsfreeze-freeze-list,\
guest-fsfreeze-thaw,guest-set-vcpus,guest-set-memory-blocks,guest-ssh-add-authorized-keys,\
guest-ssh-remove-authorized-keys,guest-fstrim,guest-exec,guest-file-open,guest-file-write";

#[test]
fn a_short_run_does_not_crash_the_real_qemu_ga() {
    let agent = std::env::var_os("GUESTWIRE_QEMU_GA")
        .map_or_else(|| std::path::PathBuf::from(QEMU_GA), Into::into);
    if !agent.exists() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{} is missing, but CI installs it (apt-get install qemu-guest-agent)",
            agent.display()
        );
        eprintln!("SKIPPED: {} not found", agent.display());
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("qga.sock");
    let child = Command::new(&agent)
        .arg("-m")
        .arg("unix-listen")
        .arg("-p")
        .arg(&sock)
        .arg("-t")
        .arg(dir.path())
        .arg("-l")
        .arg(dir.path().join("qga.log"))
        .arg("-b")
        .arg(BLOCKED)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start qemu-ga");
    let mut qga = Proc(child);
    wait_for(&sock);
    drop(connect(&sock));
    let out = dir.path().join("findings");
    let (code, v) = fuzz(&[
        "--connect",
        &format!("unix:{}", sock.display()),
        "--protocol",
        "qga",
        "--runs",
        "100",
        "--seed",
        "3",
        "--settle-ms",
        "20",
        "--probe-timeout",
        "20",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(
        matches!(qga.0.try_wait(), Ok(None)),
        "qemu-ga exited during the run: {v:#}"
    );
    assert_eq!(code, Some(0), "qemu-ga misbehaved: {v:#}");
    assert_eq!(v["cases"], 100);
}
