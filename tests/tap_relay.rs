//! `guestwire tap` through the real binary over real sockets: the host client talks to the mock
//! guest through the tap and every frame shows in its log; a large transfer arrives byte-exact;
//! a stalled reader stalls the writer without the tap's memory growing; the hybrid-vsock
//! listener; `--takeover` puts the VMM's socket back; a frame fault shows its symptom.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

mod support;

use support::{BIN, Proc, spawn, wait_for};

fn guest(socket: &Path) -> Proc {
    let listen = format!("unix:{}", socket.display());
    let g = spawn(
        &[
            "guest",
            "--listen",
            &listen,
            "--protocol",
            "quantix",
            "--telemetry",
            "0",
        ],
        false,
    );
    wait_for(socket);
    g
}

fn tap(listen: &str, upstream: &str, extra: &[&str]) -> Proc {
    let mut args = vec!["tap", "--listen", listen, "--upstream", upstream];
    args.extend_from_slice(extra);
    spawn(&args, true)
}

fn ping(connect: &str, timeout: &str) -> (Output, serde_json::Value) {
    let out = Command::new(BIN)
        .args([
            "call",
            "--connect",
            connect,
            "--protocol",
            "quantix",
            "--json",
            "--attempts",
            "3",
            "--timeout",
            timeout,
            "ping",
        ])
        .output()
        .expect("run call");
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, v)
}

fn paths() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let vm = dir.path().join("vm.sock");
    let tap = dir.path().join("tap.sock");
    (dir, vm, tap)
}

#[test]
fn a_ping_through_the_tap_is_answered_and_both_frames_are_logged() {
    let (_dir, vm, tap_sock) = paths();
    let _g = guest(&vm);
    let t = tap(
        &format!("unix:{}", tap_sock.display()),
        &format!("unix:{}", vm.display()),
        &["--max-connections", "1", "--json"],
    );
    wait_for(&tap_sock);
    let (out, v) = ping(&format!("unix:{}", tap_sock.display()), "5");
    assert!(out.status.success(), "{v}");
    let log = t.finish();
    let types: Vec<String> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            Some(format!(
                "{}:{}",
                v["direction"].as_str()?,
                v["type"].as_str()?
            ))
        })
        .collect();
    assert!(types.contains(&"to_guest:ping".to_string()), "{log}");
    assert!(types.contains(&"to_host:pong".to_string()), "{log}");
    assert!(log.contains("\"event\":\"ended\""), "{log}");
}

#[test]
fn sixty_four_mebibytes_cross_the_tap_byte_exact_in_both_directions() {
    let (_dir, up, tap_sock) = paths();
    // Upstream: echoes everything back.
    let listener = UnixListener::bind(&up).expect("bind upstream");
    let echo = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut r = s.try_clone().expect("clone");
        let _ = std::io::copy(&mut r, &mut s);
    });
    let t = tap(
        &format!("unix:{}", tap_sock.display()),
        &format!("unix:{}", up.display()),
        &["--max-connections", "1", "--quiet", "--protocol", "raw"],
    );
    wait_for(&tap_sock);
    let mut c = support::connect(&tap_sock);
    c.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let total = 64usize << 20;
    let mut w = c.try_clone().expect("clone");
    let writer = std::thread::spawn(move || {
        let mut block = vec![0u8; 1 << 16];
        let mut sent = 0usize;
        let mut x = 0x1234_5678u32;
        while sent < total {
            for b in block.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            w.write_all(&block).expect("write");
            sent += block.len();
        }
        w.shutdown(std::net::Shutdown::Write).ok();
        x
    });
    // Recompute the same stream on the reading side and compare as it arrives.
    let mut x = 0x1234_5678u32;
    let mut expect = Vec::new();
    let mut got = vec![0u8; 1 << 16];
    let mut received = 0usize;
    while received < total {
        let n = c.read(&mut got).expect("read");
        assert!(n > 0, "stream ended after {received} bytes");
        for b in &got[..n] {
            if expect.is_empty() {
                expect.resize(1 << 16, 0);
                for e in expect.iter_mut() {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    *e = x as u8;
                }
                expect.reverse();
            }
            let want = expect.pop().unwrap_or_default();
            assert_eq!(*b, want, "byte {received} differs");
            received += 1;
        }
    }
    let _ = writer.join();
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{} bytes too many", rest.len());
    drop(c);
    let _ = echo.join();
    let _ = t.finish();
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_reader_that_stops_stalls_the_writer_and_the_tap_does_not_buffer_it() {
    let (_dir, up, tap_sock) = paths();
    let listener = UnixListener::bind(&up).expect("bind upstream");
    // Upstream accepts and never reads.
    let hold = std::thread::spawn(move || {
        let (s, _) = listener.accept().expect("accept");
        std::thread::sleep(Duration::from_secs(3));
        drop(s);
    });
    let t = tap(
        &format!("unix:{}", tap_sock.display()),
        &format!("unix:{}", up.display()),
        &["--max-connections", "1", "--quiet", "--protocol", "raw"],
    );
    wait_for(&tap_sock);
    let before = rss_kib(t.0.id());
    let mut c = support::connect(&tap_sock);
    c.set_write_timeout(Some(Duration::from_millis(500))).ok();
    let block = vec![7u8; 1 << 16];
    let mut sent = 0usize;
    // Bounded: stops at the first write that cannot complete, or at 256 MiB.
    while sent < (256 << 20) {
        match c.write(&block) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(
        sent < (64 << 20),
        "{sent} bytes went in: the tap is buffering"
    );
    let after = rss_kib(t.0.id());
    assert!(
        after < before + 32 * 1024,
        "tap RSS grew from {before} KiB to {after} KiB"
    );
    drop(c);
    let _ = hold.join();
    let _ = t.finish();
}

#[test]
fn the_tap_answers_the_hybrid_handshake_itself_when_it_listens_on_hvsock() {
    let (_dir, vm, tap_sock) = paths();
    let _g = guest(&vm);
    let t = tap(
        &format!("hvsock:{}:52", tap_sock.display()),
        &format!("unix:{}", vm.display()),
        &["--max-connections", "1", "--protocol", "quantix"],
    );
    wait_for(&tap_sock);
    let (out, v) = ping(&format!("hvsock:{}:52", tap_sock.display()), "5");
    assert!(out.status.success(), "{v}");
    let log = t.finish();
    assert!(log.contains(" pong "), "{log}");
}

#[test]
fn takeover_relays_in_place_of_the_vmm_socket_and_puts_it_back() {
    let (_dir, vm, _) = paths();
    let g = guest(&vm);
    let t = spawn(
        &[
            "tap",
            "--takeover",
            vm.to_str().expect("utf-8 path"),
            "--max-connections",
            "1",
        ],
        true,
    );
    let moved = PathBuf::from(format!("{}.guestwire-orig", vm.display()));
    wait_for(&moved);
    wait_for(&vm);
    let (out, v) = ping(&format!("unix:{}", vm.display()), "5");
    assert!(out.status.success(), "{v}");
    let log = t.finish();
    assert!(log.contains(" ping "), "{log}");
    assert!(!moved.exists(), "the VMM socket was not moved back");
    // The path is the mock guest's own socket again.
    let (out, v) = ping(&format!("unix:{}", vm.display()), "5");
    assert!(out.status.success(), "{v}");
    drop(g);
}

#[test]
fn drop_frame_on_pong_makes_the_host_time_out_with_a_typed_error() {
    let (_dir, vm, tap_sock) = paths();
    let _g = guest(&vm);
    let t = tap(
        &format!("unix:{}", tap_sock.display()),
        &format!("unix:{}", vm.display()),
        &[
            "--max-connections",
            "1",
            "--protocol",
            "quantix",
            "--fault",
            "drop_frame:on_type=pong",
        ],
    );
    wait_for(&tap_sock);
    let (out, v) = ping(&format!("unix:{}", tap_sock.display()), "0.5");
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["error"]["kind"], "timed_out", "{v}");
    let log = t.finish();
    assert!(log.contains(" ping "), "{log}");
    assert!(!log.contains(" pong "), "{log}");
}
