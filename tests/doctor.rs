//! `guestwire doctor` through the real binary: every failure mode of issue 7 staged for real (the
//! mock VMMs and guests, a real `socat` as the stale client, a real `qemu-ga`, sockets held by the
//! test itself), and the doctor must name it. Plus: passive mode never connects, and the exit
//! codes.
//!
//! Each case is one row of [`cases`]: a stage (what runs), the doctor's arguments, and the
//! finding expected first (the worst). Children are killed and reaped by [`support::Proc`]'s
//! `Drop`, also when a case fails.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{BIN, Proc, spawn, wait_for};

/// Where Debian's qemu-guest-agent puts the agent.
const QEMU_GA: &str = "/usr/sbin/qemu-ga";

/// What a case runs, kept alive until the doctor has run.
#[derive(Default)]
struct Stage {
    procs: Vec<Proc>,
    _held: Vec<UnixStream>,
    _listeners: Vec<UnixListener>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Runs the doctor; returns its exit code and JSON report.
fn doctor(args: &[String], as_nobody: bool) -> (i32, Value) {
    let mut cmd = Command::new(BIN);
    cmd.arg("doctor").args(args).arg("--json");
    if as_nobody {
        std::os::unix::process::CommandExt::uid(&mut cmd, 65534);
    }
    let out = cmd.stderr(Stdio::piped()).output().expect("run doctor");
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "doctor {args:?} printed no JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, json)
}

fn ids(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn have(path: &str, what: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    eprintln!("SKIPPED: {path} not found; install {what} to stage this case");
    false
}

/// A child's stdout, line by line, read by a thread (which ends when the child does).
struct Lines(mpsc::Receiver<String>);

impl Lines {
    /// Takes over `p`'s piped stdout.
    fn of(p: &mut Proc) -> Self {
        let out = p.0.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Drains to the end even once nobody listens, so the child never meets a full pipe.
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self(rx)
    }

    /// Waits (at most 20 s) for a line containing `needle`.
    fn wait(&self, needle: &str) {
        let start = Instant::now();
        loop {
            let left = Duration::from_secs(20).saturating_sub(start.elapsed());
            match self.0.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) => {}
                Err(e) => panic!("no line with {needle:?}: {e}"),
            }
        }
    }
}

/// Starts `guestwire vmm ARGS` with stdout piped, and waits until it says it listens (without
/// connecting: a connection would be the VMM's first client, and the mock guest's reaction to
/// it would race with the case's own client).
fn vmm(args: &[&str], _sock: &Path) -> (Proc, Lines) {
    let mut p = spawn(args, true);
    let lines = Lines::of(&mut p);
    lines.wait("listening on");
    (p, lines)
}

/// Waits (at most 20 s) until the doctor, passively, sees a listener on `sock`.
fn wait_listening(sock: &Path) {
    let start = Instant::now();
    loop {
        let (_, r) = doctor(&[s(sock)], false);
        if !r["targets"][0]["view"]["listener"].is_null() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not listening: {r}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (at most 20 s) until bytes are waiting to be read on `s`, without reading them.
fn wait_readable(s: &UnixStream) {
    let start = Instant::now();
    let mut b = [0u8; 1];
    let flags = rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT;
    while !matches!(rustix::net::recv(s, &mut b[..], flags), Ok((n, _)) if n > 0) {
        assert!(start.elapsed() < Duration::from_secs(20), "nothing arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A stage and the doctor's arguments, or `None` when a tool it needs is missing (skipped).
type Staged = Option<(Stage, Vec<String>)>;

/// A case: the stage builder, given the temp dir, returns the stage and the doctor's arguments.
struct Case {
    name: &'static str,
    expect: &'static str,
    exit: i32,
    as_nobody: bool,
    stage: fn(&Path) -> Staged,
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "missing path",
            expect: "path_missing",
            exit: 1,
            as_nobody: false,
            stage: |d| Some((Stage::default(), vec![s(&d.join("nope.sock"))])),
        },
        Case {
            name: "regular file",
            expect: "not_a_socket",
            exit: 1,
            as_nobody: false,
            stage: |d| {
                let f = d.join("file.sock");
                std::fs::write(&f, b"not a socket").expect("write");
                Some((Stage::default(), vec![s(&f)]))
            },
        },
        Case {
            name: "permission denied",
            expect: "permission_denied",
            exit: 1,
            as_nobody: is_root(),
            stage: |d| {
                // As root the doctor runs as nobody, and the 0700 temp dir keeps nobody out; as
                // another user, a mode-000 socket does.
                let sock = d.join("perm.sock");
                let l = UnixListener::bind(&sock).expect("bind");
                if !is_root() {
                    std::fs::set_permissions(
                        &sock,
                        std::os::unix::fs::PermissionsExt::from_mode(0o000),
                    )
                    .expect("chmod");
                }
                Some((
                    Stage {
                        _listeners: vec![l],
                        ..Stage::default()
                    },
                    vec![s(&sock)],
                ))
            },
        },
        Case {
            name: "stale socket file (mock VMM's stale_socket)",
            expect: "stale_socket",
            exit: 1,
            as_nobody: false,
            stage: |d| {
                let sock = d.join("stale.sock");
                let mut p = spawn(
                    &[
                        "vmm",
                        "serial",
                        "--socket",
                        &s(&sock),
                        "--fault",
                        "stale_socket",
                    ],
                    true,
                );
                Lines::of(&mut p).wait("stale");
                Some((
                    Stage {
                        procs: vec![p],
                        ..Stage::default()
                    },
                    vec![s(&sock)],
                ))
            },
        },
        Case {
            name: "stale client: a real socat holds the socket",
            expect: "stale_client",
            exit: 1,
            as_nobody: false,
            stage: |d| {
                if !have("/usr/bin/socat", "socat") {
                    return None;
                }
                let sock = d.join("agent.sock");
                let (v, _lines) = vmm(
                    &[
                        "vmm",
                        "serial",
                        "--socket",
                        &s(&sock),
                        "--guest",
                        "quantix",
                        "--telemetry",
                        "0",
                    ],
                    &sock,
                );
                let mut socat = Proc(
                    Command::new("socat")
                        .arg("-u")
                        .arg(format!("UNIX-CONNECT:{}", s(&sock)))
                        .arg("OPEN:/dev/null")
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("socat"),
                );
                wait_accepted(&sock, &mut socat);
                Some((
                    Stage {
                        procs: vec![v, socat],
                        ..Stage::default()
                    },
                    vec![s(&sock)],
                ))
            },
        },
        Case {
            name: "stale client: the mock VMM's stale_client",
            expect: "stale_client",
            exit: 1,
            as_nobody: false,
            stage: |d| {
                let sock = d.join("sc.sock");
                let mut p = spawn(
                    &[
                        "vmm",
                        "serial",
                        "--socket",
                        &s(&sock),
                        "--guest",
                        "quantix",
                        "--fault",
                        "stale_client",
                    ],
                    true,
                );
                Lines::of(&mut p).wait("stale");
                Some((
                    Stage {
                        procs: vec![p],
                        ..Stage::default()
                    },
                    vec![s(&sock), "--probe".into()],
                ))
            },
        },
        Case {
            name: "clients queued behind the one served",
            expect: "clients_queued",
            exit: 1,
            as_nobody: false,
            stage: |d| {
                let sock = d.join("q.sock");
                let (v, lines) = vmm(
                    &[
                        "vmm",
                        "serial",
                        "--socket",
                        &s(&sock),
                        "--guest",
                        "quantix",
                        "--telemetry",
                        "0",
                    ],
                    &sock,
                );
                let first = UnixStream::connect(&sock).expect("first");
                lines.wait("client 1 accepted");
                let second = UnixStream::connect(&sock).expect("second");
                Some((
                    Stage {
                        procs: vec![v],
                        _held: vec![first, second],
                        ..Stage::default()
                    },
                    vec![s(&sock)],
                ))
            },
        },
        Case {
            name: "host not reading (the guest's telemetry piles up)",
            expect: "host_not_reading",
            exit: 1,
            as_nobody: false,
            stage: |d| {
                let sock = d.join("hnr.sock");
                let (v, _lines) = vmm(
                    &[
                        "vmm",
                        "serial",
                        "--socket",
                        &s(&sock),
                        "--guest",
                        "quantix",
                        "--telemetry",
                        "0.02",
                    ],
                    &sock,
                );
                let c = UnixStream::connect(&sock).expect("connect");
                wait_readable(&c);
                Some((
                    Stage {
                        procs: vec![v],
                        _held: vec![c],
                        ..Stage::default()
                    },
                    args(&[&s(&sock), "--watch", "1"]),
                ))
            },
        },
        Case {
            name: "connected, no data flow (AgentReady never read, nothing else)",
            expect: "connected_no_flow",
            exit: 1,
            as_nobody: false,
            stage: |d| {
                let sock = d.join("nf.sock");
                let (v, _lines) = vmm(
                    &[
                        "vmm",
                        "serial",
                        "--socket",
                        &s(&sock),
                        "--guest",
                        "quantix",
                        "--telemetry",
                        "0",
                    ],
                    &sock,
                );
                let c = UnixStream::connect(&sock).expect("connect");
                wait_readable(&c);
                Some((
                    Stage {
                        procs: vec![v],
                        _held: vec![c],
                        ..Stage::default()
                    },
                    args(&[&s(&sock), "--watch", "0.5"]),
                ))
            },
        },
        Case {
            name: "guest not reading (no agent opens the port)",
            expect: "guest_not_reading",
            exit: 1,
            as_nobody: false,
            stage: |d| {
                let sock = d.join("gnr.sock");
                let (v, lines) = vmm(&["vmm", "serial", "--socket", &s(&sock)], &sock);
                let mut c = UnixStream::connect(&sock).expect("connect");
                lines.wait("client 1 accepted");
                c.set_nonblocking(true).expect("nonblocking");
                let chunk = vec![0x55u8; 64 * 1024];
                let mut written = 0usize;
                // Bounded: the socket and the port fill long before 64 MiB.
                while written < 64 << 20 {
                    match c.write(&chunk) {
                        Ok(n) => written += n,
                        Err(_) => break,
                    }
                }
                assert!(written < 64 << 20, "the VMM took everything");
                Some((
                    Stage {
                        procs: vec![v],
                        _held: vec![c],
                        ..Stage::default()
                    },
                    args(&[&s(&sock), "--watch", "0.5"]),
                ))
            },
        },
        Case {
            name: "guest started before host (naive agent)",
            expect: "guest_before_host",
            exit: 1,
            as_nobody: false,
            stage: |d| {
                let sock = d.join("gbh.agent.sock");
                let mut p = spawn(
                    &[
                        "vmm",
                        "serial",
                        "--socket",
                        &s(&sock),
                        "--guest",
                        "quantix",
                        "--loop",
                        "naive",
                        "--fault",
                        "guest_before_host",
                    ],
                    true,
                );
                Lines::of(&mut p).wait("guest agent stopped");
                Some((
                    Stage {
                        procs: vec![p],
                        ..Stage::default()
                    },
                    args(&[
                        &s(&sock),
                        "--probe",
                        "--protocol",
                        "quantix",
                        "--timeout-ms",
                        "1500",
                    ]),
                ))
            },
        },
        Case {
            name: "framing mismatch: quantix-legacy agent probed as quantix",
            expect: "framing_mismatch",
            exit: 1,
            as_nobody: false,
            stage: |d| {
                let sock = d.join("legacy.sock");
                let (v, _lines) = vmm(
                    &[
                        "vmm",
                        "serial",
                        "--socket",
                        &s(&sock),
                        "--guest",
                        "quantix-legacy",
                        "--telemetry",
                        "0",
                    ],
                    &sock,
                );
                Some((
                    Stage {
                        procs: vec![v],
                        ..Stage::default()
                    },
                    args(&[&s(&sock), "--probe", "--protocol", "quantix"]),
                ))
            },
        },
        Case {
            name: "framing mismatch: JSON (qga client) against protobuf (quantix agent)",
            expect: "framing_mismatch",
            exit: 1,
            as_nobody: false,
            stage: |d| {
                let sock = d.join("json-vs-pb.sock");
                let (v, _lines) = vmm(
                    &[
                        "vmm",
                        "serial",
                        "--socket",
                        &s(&sock),
                        "--guest",
                        "quantix",
                        "--telemetry",
                        "0",
                    ],
                    &sock,
                );
                Some((
                    Stage {
                        procs: vec![v],
                        ..Stage::default()
                    },
                    args(&[
                        &s(&sock),
                        "--probe",
                        "--protocol",
                        "qga",
                        "--timeout-ms",
                        "1000",
                    ]),
                ))
            },
        },
        Case {
            name: "framing mismatch: protobuf (quantix client) against JSON (real qemu-ga)",
            expect: "framing_mismatch",
            exit: 1,
            as_nobody: false,
            stage: |d| {
                if !have(QEMU_GA, "qemu-guest-agent") {
                    return None;
                }
                let sock = d.join("pb-vs-json.sock");
                let p = real_qga(d, &sock);
                Some((
                    Stage {
                        procs: vec![p],
                        ..Stage::default()
                    },
                    args(&[
                        &s(&sock),
                        "--probe",
                        "--protocol",
                        "quantix",
                        "--timeout-ms",
                        "1000",
                    ]),
                ))
            },
        },
        Case {
            name: "hybrid handshake EOF: nothing listens on the guest port",
            expect: "hybrid_handshake_eof",
            exit: 1,
            as_nobody: false,
            stage: |d| {
                let sock = d.join("fc.vsock");
                let (v, _lines) = vmm(
                    &[
                        "vmm",
                        "hvsock",
                        "--socket",
                        &s(&sock),
                        "--guest-port",
                        "1024=quantix",
                    ],
                    &sock,
                );
                Some((
                    Stage {
                        procs: vec![v],
                        ..Stage::default()
                    },
                    args(&[
                        &format!("hvsock:{}:5", s(&sock)),
                        "--probe",
                        "--protocol",
                        "quantix",
                    ]),
                ))
            },
        },
        Case {
            name: "hybrid handshake answered without OK",
            expect: "handshake_without_ok",
            exit: 1,
            as_nobody: false,
            stage: |d| {
                let sock = d.join("notok.vsock");
                let l = UnixListener::bind(&sock).expect("bind");
                let t = answer_once(l, b"ERR no such port\n");
                Some((
                    Stage {
                        threads: vec![t],
                        ..Stage::default()
                    },
                    args(&[
                        &format!("hvsock:{}:1024", s(&sock)),
                        "--probe",
                        "--protocol",
                        "fcexec",
                    ]),
                ))
            },
        },
        Case {
            name: "plain client against a hybrid-only VMM",
            expect: "vsock_client_hybrid_vmm",
            exit: 1,
            as_nobody: false,
            stage: |d| {
                let sock = d.join("ch.vsock");
                let (v, _lines) = vmm(
                    &[
                        "vmm",
                        "hvsock",
                        "--socket",
                        &s(&sock),
                        "--flavour",
                        "cloud-hypervisor",
                        "--guest-port",
                        "1024=quantix",
                    ],
                    &sock,
                );
                Some((
                    Stage {
                        procs: vec![v],
                        ..Stage::default()
                    },
                    args(&[
                        &s(&sock),
                        "--probe",
                        "--protocol",
                        "quantix",
                        "--vsock-port",
                        "1024",
                    ]),
                ))
            },
        },
        Case {
            name: "slow agent (reply delay over --slow-ms)",
            expect: "agent_slow",
            exit: 1,
            as_nobody: false,
            stage: |d| {
                let sock = d.join("slow.sock");
                let (v, _lines) = vmm(
                    &[
                        "vmm",
                        "serial",
                        "--socket",
                        &s(&sock),
                        "--guest",
                        "quantix",
                        "--telemetry",
                        "0",
                        "--reply-delay-ms",
                        "300",
                    ],
                    &sock,
                );
                Some((
                    Stage {
                        procs: vec![v],
                        ..Stage::default()
                    },
                    args(&[
                        &s(&sock),
                        "--probe",
                        "--protocol",
                        "quantix",
                        "--slow-ms",
                        "50",
                    ]),
                ))
            },
        },
        Case {
            name: "healthy quantix agent (probe, protocol auto)",
            expect: "agent_healthy",
            exit: 0,
            as_nobody: false,
            stage: |d| {
                let sock = d.join("ok.sock");
                let (v, _lines) = vmm(
                    &[
                        "vmm",
                        "serial",
                        "--socket",
                        &s(&sock),
                        "--guest",
                        "quantix",
                        "--telemetry",
                        "0",
                    ],
                    &sock,
                );
                Some((
                    Stage {
                        procs: vec![v],
                        ..Stage::default()
                    },
                    args(&[&s(&sock), "--probe", "--slow-ms", "5000"]),
                ))
            },
        },
        Case {
            name: "healthy real qemu-ga (probe, protocol from the name)",
            expect: "agent_healthy",
            exit: 0,
            as_nobody: false,
            stage: |d| {
                if !have(QEMU_GA, "qemu-guest-agent") {
                    return None;
                }
                let sock = d.join("org.qemu.guest_agent.0");
                let p = real_qga(d, &sock);
                Some((
                    Stage {
                        procs: vec![p],
                        ..Stage::default()
                    },
                    args(&[&s(&sock), "--probe", "--slow-ms", "5000"]),
                ))
            },
        },
        Case {
            name: "healthy, passively",
            expect: "socket_ok",
            exit: 0,
            as_nobody: false,
            stage: |d| {
                let sock = d.join("passive.sock");
                let (v, _lines) = vmm(
                    &["vmm", "serial", "--socket", &s(&sock), "--guest", "quantix"],
                    &sock,
                );
                Some((
                    Stage {
                        procs: vec![v],
                        ..Stage::default()
                    },
                    vec![s(&sock)],
                ))
            },
        },
    ]
}

/// Starts the real qemu-ga on `sock` (commands that could change this machine blocked) and
/// waits until it listens.
fn real_qga(d: &Path, sock: &Path) -> Proc {
    let p = Proc(
        Command::new(QEMU_GA)
            .arg("-m")
            .arg("unix-listen")
            .arg("-p")
            .arg(sock)
            .arg("-t")
            .arg(d)
            .arg("-l")
            .arg(d.join("qga.log"))
            .arg("-b")
            .arg("guest-shutdown,guest-suspend-disk,guest-suspend-ram,guest-suspend-hybrid,guest-set-time,guest-fsfreeze-freeze,guest-set-user-password")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("qemu-ga"),
    );
    wait_for(sock);
    wait_listening(sock);
    p
}

/// Waits until the VMM at `sock` has accepted `client`'s connection (its pid holds a connected
/// socket: the doctor itself tells).
fn wait_accepted(sock: &Path, client: &mut Proc) {
    let pid = client.0.id();
    let start = Instant::now();
    loop {
        let (_, r) = doctor(&[s(sock)], false);
        let text = r["targets"][0]["view"]["connections"].to_string();
        if text.contains(&format!("\"pid\":{pid}")) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never accepted: {r}"
        );
        assert!(matches!(client.0.try_wait(), Ok(None)), "the client exited");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Accepts one connection (within 20 s), reads a line, writes `reply` and closes.
fn answer_once(l: UnixListener, reply: &'static [u8]) -> std::thread::JoinHandle<()> {
    l.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok((c, _)) = l.accept() {
                c.set_nonblocking(false).expect("blocking");
                c.set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("timeout");
                let mut line = String::new();
                let _ = BufReader::new(&c).take_line(&mut line);
                let _ = (&c).write_all(reply);
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

trait TakeLine {
    fn take_line(&mut self, out: &mut String) -> std::io::Result<usize>;
}

impl<R: BufRead> TakeLine for R {
    fn take_line(&mut self, out: &mut String) -> std::io::Result<usize> {
        std::io::Read::take(self, 256).read_line(out)
    }
}

#[test]
fn every_failure_mode_is_named() {
    let mut failures = Vec::new();
    for case in cases() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some((stage, argv)) = (case.stage)(dir.path()) else {
            continue;
        };
        let (code, report) = doctor(&argv, case.as_nobody);
        let found = ids(&report);
        let first = found.first().map(String::as_str);
        eprintln!("{}: exit {code}, {found:?}", case.name);
        if first != Some(case.expect) || code != case.exit {
            failures.push(format!(
                "{}: expected {} first and exit {}, got exit {code} and {found:?}\n{report:#}",
                case.name, case.expect, case.exit
            ));
        }
        let Stage { procs, threads, .. } = stage;
        drop(procs);
        for t in threads {
            let _ = t.join();
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_stale_client_is_named_by_pid_and_command() {
    if !have("/usr/bin/socat", "socat") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("agent.sock");
    let (_v, _lines) = vmm(
        &["vmm", "serial", "--socket", &s(&sock), "--guest", "quantix"],
        &sock,
    );
    let mut socat = Proc(
        Command::new("socat")
            .arg("-u")
            .arg(format!("UNIX-CONNECT:{}", s(&sock)))
            .arg("OPEN:/dev/null")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat"),
    );
    wait_accepted(&sock, &mut socat);
    let (code, report) = doctor(&[s(&sock)], false);
    assert_eq!(code, 1);
    let f = &report["findings"][0];
    assert_eq!(f["id"], "stale_client");
    let pid = socat.0.id();
    assert!(
        f["summary"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("pid {pid} (socat)"))),
        "{f}"
    );
    assert!(f["fix"].to_string().contains(&format!("kill {pid}")), "{f}");
}

#[test]
fn passive_mode_never_connects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("quiet.sock");
    let l = UnixListener::bind(&sock).expect("bind");
    l.set_nonblocking(true).expect("nonblocking");
    let (code, report) = doctor(&args(&[&s(&sock), "--watch", "0.3"]), false);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(ids(&report), vec!["socket_ok"]);
    // Nothing connected: the accept queue is empty.
    match l.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the doctor connected: {other:?}"),
    }
    // The same listener is probed when asked: the accept proves the check above can fail.
    let probe = spawn(
        &[
            "doctor",
            &s(&sock),
            "--probe",
            "--protocol",
            "qga",
            "--timeout-ms",
            "200",
        ],
        false,
    );
    let start = Instant::now();
    loop {
        match l.accept() {
            Ok(_) => break,
            Err(_) => {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "the probe never connected"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    probe.finish();
}

#[test]
fn exit_2_when_there_is_nothing_to_inspect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .args(["doctor", "--scan"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no sockets found"));
}

#[test]
fn the_scan_finds_sockets_and_the_text_report_puts_the_worst_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vm = dir.path().join("1-vm");
    std::fs::create_dir(&vm).expect("mkdir");
    let good = vm.join("org.qemu.guest_agent.0");
    let _l = UnixListener::bind(&good).expect("bind");
    let stale: PathBuf = dir.path().join("gone.sock");
    drop(UnixListener::bind(&stale).expect("bind"));
    let cfg = dir.path().join("doctor.toml");
    std::fs::write(&cfg, format!("scan = [{:?}]\n", s(dir.path()))).expect("config");
    let out = Command::new(BIN)
        .arg("doctor")
        .env("GUESTWIRE_CONFIG", &cfg)
        .output()
        .expect("run");
    // The default dirs do not exist here; the config file's one does.
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let stale_at = text.find("[ERROR] stale_socket").expect("stale named");
    let ok_at = text.find("[ok] socket_ok").expect("ok named");
    assert!(stale_at < ok_at, "{text}");
    assert!(text.contains(&format!("rm {}", s(&stale))), "{text}");
}
