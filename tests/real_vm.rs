//! Conformance against a real QEMU 7.2 guest (issue 9): guestwire's own mock agents (and the real
//! qemu-ga) run inside a real VM (`scripts/vm-rig.sh` builds it) on real virtio-serial ports and on
//! real vsock behind vhost-device-vsock, and the host client (`guestwire call`) drives every
//! protocol over both. The behaviours the mock VMM copies are in `tests/real_vm_vs_mock.rs`.
//! Skipped (they pass without doing anything) unless `GUESTWIRE_REAL_VM=1`; see docs/real-vm.md.

mod support;
#[path = "support/vm.rs"]
mod vm;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use vm::{Spec, Vm, enabled};

/// Deadline for an agent to answer (TCG is slow; a vsock listener may come up after the ready
/// line, a serial agent notices a new host within 50 ms).
const REPLY_DEADLINE: Duration = Duration::from_secs(30);
const ECHO_ABC: &str = r#"{"runtime":"echo","code":"a\nb\nc"}"#;

/// Returns true (and says so) when the real-VM tests are not asked for.
fn skip() -> bool {
    if !enabled() {
        eprintln!("skipped: set GUESTWIRE_REAL_VM=1 (and run scripts/vm-rig.sh) to run");
        return true;
    }
    false
}

/// `guestwire call --json --attempts 1 --connect CONNECT --protocol P ARGS`.
fn call(connect: &str, protocol: &str, args: &[&str]) -> (Output, Value) {
    let out = Command::new(support::BIN)
        .args(["call", "--connect", connect, "--protocol", protocol])
        .args(["--json", "--attempts", "1", "--connect-timeout", "10"])
        .args(["--timeout", "20"])
        .args(args)
        .output()
        .expect("run call");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout:?} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, v)
}

/// A call that must succeed; the first call to an agent is retried until [`REPLY_DEADLINE`]
/// while the agent is still coming up (refused handshake, nothing answering yet).
fn ok(vm: &Vm, connect: &str, protocol: &str, args: &[&str]) -> Value {
    let start = Instant::now();
    loop {
        let (out, v) = call(connect, protocol, args);
        if out.status.code() == Some(0) && v["ok"] == true {
            eprintln!("{protocol} {args:?}: {:?}", start.elapsed());
            return v;
        }
        assert!(
            start.elapsed() < REPLY_DEADLINE,
            "{protocol} {args:?} over {connect} never succeeded: {v}\nconsole:\n{}",
            vm.console()
        );
        eprintln!("retrying {protocol} {args:?} after: {v}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn contains(v: &Value, text: &str) -> bool {
    v.to_string().contains(text)
}

/// `guestwire call read PATH --output FILE`: the file's contents as read from the guest.
fn read_back(vm: &Vm, connect: &str, protocol: &str, path: &str) -> String {
    let out = vm.dir().join("read-back");
    let shown = out.display().to_string();
    ok(vm, connect, protocol, &["read", path, "--output", &shown]);
    std::fs::read_to_string(&out).expect("the read's output file")
}

/// Every request kind each protocol's host client makes, against an agent at `connect`; `file`
/// is the guest path to write and read back (the mock agents run with `--root /tmp`).
fn drive(vm: &Vm, connect: &str, protocol: &str, file: &str) {
    match protocol {
        "quantix" | "quantix-legacy" => {
            let v = ok(vm, connect, protocol, &["ping"]);
            assert!(contains(&v, "guestwire-mock"), "{v}");
            let v = ok(
                vm,
                connect,
                protocol,
                &["exec", "/bin/echo", "from", "the", "vm"],
            );
            assert!(contains(&v, "from the vm"), "{v}");
            ok(
                vm,
                connect,
                protocol,
                &["write", file, "--data", "sent by the host"],
            );
            assert_eq!(read_back(vm, connect, protocol, file), "sent by the host");
            ok(vm, connect, protocol, &["info"]);
        }
        "fcexec" => {
            ok(vm, connect, protocol, &["ping"]);
            let v = ok(vm, connect, protocol, &["raw", ECHO_ABC]);
            assert_eq!(v["events"].as_array().map(Vec::len), Some(3), "{v}");
            let v = ok(vm, connect, protocol, &["exec", "/bin/echo", "hi"]);
            assert!(contains(&v, "hi"), "{v}");
        }
        "qga" => {
            ok(vm, connect, protocol, &["ping"]);
            let v = ok(vm, connect, protocol, &["info"]);
            assert!(contains(&v, "guest-ping"), "{v}");
            let v = ok(vm, connect, protocol, &["exec", "/bin/echo", "from", "qga"]);
            assert!(contains(&v, "from qga"), "{v}");
            ok(
                vm,
                connect,
                protocol,
                &["write", file, "--data", "qga file"],
            );
            assert_eq!(read_back(vm, connect, protocol, file), "qga file");
        }
        "volant" => {
            ok(vm, connect, protocol, &["ping"]);
            // A plugin action: POST /v1/plugin/<plugin>/actions/<action>, echoed by the mock.
            let v = ok(vm, connect, protocol, &["exec", "demo", "run", "now"]);
            assert_eq!(v["reply"]["plugin"], "demo", "{v}");
            assert_eq!(v["reply"]["action"], "run", "{v}");
        }
        other => panic!("no drive for {other}"),
    }
}

const SERIAL_AGENTS: &[(&str, &str)] = &[
    ("org.quantix.agent.0", "quantix"),
    ("org.quantix.legacy.0", "quantix-legacy"),
    ("org.guestwire.fcexec.0", "fcexec"),
    ("org.guestwire.qga.0", "qga"),
    ("org.guestwire.volant.0", "volant"),
];

#[test]
fn every_protocol_over_real_virtio_serial_ports() {
    if skip() {
        return;
    }
    let mut spec = Spec::default();
    for (name, protocol) in SERIAL_AGENTS {
        spec = spec.serial(name, protocol, &["--root", "/tmp", "--telemetry", "1"]);
    }
    let vm = Vm::boot(&spec);
    for (name, protocol) in SERIAL_AGENTS {
        let connect = format!("unix:{}", vm.serial(name).display());
        drive(&vm, &connect, protocol, "/gw-note");
        // A second host client after the first left: the agent waits for it and serves it.
        ok(&vm, &connect, protocol, &["ping"]);
    }
}

#[test]
fn every_protocol_over_real_hybrid_vsock() {
    if skip() {
        return;
    }
    let agents = [
        (1024, "fcexec"),
        (1025, "quantix"),
        (1026, "quantix-legacy"),
        (1027, "qga"),
        (1028, "volant"),
    ];
    let mut spec = Spec::default();
    for (port, protocol) in agents {
        spec = spec.vsock(port, protocol, &["--root", "/tmp"]);
    }
    let vm = Vm::boot(&spec);
    for (port, protocol) in agents {
        drive(&vm, &vm.hvsock(port), protocol, "/gw-note");
    }
}

#[test]
fn the_real_qemu_ga_inside_the_guest_answers_the_host_client() {
    if skip() {
        return;
    }
    let vm = Vm::boot(&Spec::default().qemu_ga("org.qemu.guest_agent.0"));
    let connect = format!("unix:{}", vm.serial("org.qemu.guest_agent.0").display());
    let v = ok(&vm, &connect, "qga", &["info"]);
    assert!(contains(&v, "7.2"), "qemu-ga 7.2's version: {v}");
    drive(&vm, &connect, "qga", "/tmp/gw-qga-note");
    // Garbage first: the client's 0xFF + guest-sync-delimited resync still gets its answer.
    let (out, v) = call(
        &connect,
        "qga",
        &["raw", r#"{"execute":"no-such-command"}"#],
    );
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert!(contains(&v, "CommandNotFound"), "{v}");
    ok(&vm, &connect, "qga", &["ping"]);
}
