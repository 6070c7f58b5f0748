//! The tap against the peers it replaces, in one run, over Unix sockets:
//!
//! - `throughput`: 16 MiB one way, then a 1-byte acknowledgement after the sender's half-close
//!   (so the time covers delivery, not just buffering), through `direct` (client → sink), `tap`
//!   (`guestwire tap --quiet`), `tap_log` (`guestwire tap`, decoding every frame for its log,
//!   stdout to /dev/null) and `socat` (`socat UNIX-LISTEN:…,fork UNIX-CONNECT:…`);
//! - `round_trip_64_bytes`: a 64-byte echo round trip through the same paths.
//!
//! Client and server are blocking threads in this process; the tap and socat are separate
//! processes, as they are in use. After divan's table, p50 and p99 of the round trip are
//! printed for each path (divan reports medians, not tails). socat must be installed
//! (`apt-get install socat`); without it the socat rows are skipped with a message.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use divan::Bencher;
use divan::counter::BytesCount;

const BIN: &str = env!("CARGO_BIN_EXE_guestwire");
const TRANSFER: usize = 16 << 20;
const PATHS: &[&str] = &["direct", "tap", "tap_log", "socat"];

fn main() {
    divan::main();
    tails();
}

/// A relay process, killed on drop.
struct Relay(Option<Child>);

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "no socket");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts the relay for `kind` from `front` to `back`; returns the path clients connect to,
/// or `None` when the relay is not installed.
fn relay(kind: &str, front: &Path, back: &Path) -> Option<(Relay, PathBuf)> {
    let spawn = |cmd: &mut Command| -> Option<Relay> {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        wait_for(front);
        Some(Relay(Some(child)))
    };
    let (listen, upstream) = (
        format!("unix:{}", front.display()),
        format!("unix:{}", back.display()),
    );
    match kind {
        "direct" => Some((Relay(None), back.to_path_buf())),
        "tap" | "tap_log" => {
            let mut cmd = Command::new(BIN);
            cmd.args(["tap", "--listen", &listen, "--upstream", &upstream]);
            if kind == "tap" {
                cmd.arg("--quiet");
            }
            Some((spawn(&mut cmd)?, front.to_path_buf()))
        }
        "socat" => {
            let mut cmd = Command::new("socat");
            cmd.args([
                format!("UNIX-LISTEN:{},fork", front.display()),
                format!("UNIX-CONNECT:{}", back.display()),
            ]);
            Some((spawn(&mut cmd)?, front.to_path_buf()))
        }
        _ => None,
    }
}

/// A server at `path` that, per connection, either reads to EOF and answers one byte, or
/// echoes everything.
fn server(path: &Path, echo: bool) {
    let listener = UnixListener::bind(path).expect("bind");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) if echo => {
                            if s.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                    }
                }
                let _ = s.write_all(b"k");
            });
        }
    });
}

struct Setup {
    _dir: tempfile::TempDir,
    _relay: Relay,
    connect: PathBuf,
}

fn setup(kind: &str, echo: bool) -> Option<Setup> {
    let dir = tempfile::tempdir().expect("tempdir");
    let back = dir.path().join("back.sock");
    let front = dir.path().join("front.sock");
    server(&back, echo);
    let Some((relay, connect)) = relay(kind, &front, &back) else {
        eprintln!("{kind}: not installed, skipped");
        return None;
    };
    Some(Setup {
        _dir: dir,
        _relay: relay,
        connect,
    })
}

fn transfer(connect: &Path) {
    let mut s = UnixStream::connect(connect).expect("connect");
    let block = vec![0x5au8; 1 << 16];
    let mut sent = 0;
    while sent < TRANSFER {
        s.write_all(&block).expect("write");
        sent += block.len();
    }
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut ack = [0u8; 1];
    s.read_exact(&mut ack).expect("ack");
}

#[divan::bench(args = PATHS, sample_count = 10, sample_size = 1)]
fn throughput(bencher: Bencher, kind: &str) {
    let Some(s) = setup(kind, false) else { return };
    bencher
        .counter(BytesCount::new(TRANSFER))
        .bench_local(|| transfer(&s.connect));
}

#[divan::bench(args = PATHS, sample_count = 50, sample_size = 100)]
fn round_trip_64_bytes(bencher: Bencher, kind: &str) {
    let Some(s) = setup(kind, true) else { return };
    let mut c = UnixStream::connect(&s.connect).expect("connect");
    let mut buf = [7u8; 64];
    bencher.bench_local(|| {
        c.write_all(&buf).expect("write");
        c.read_exact(&mut buf).expect("read");
    });
}

/// p50 and p99 of 20,000 round trips per path.
fn tails() {
    println!("\nround trip of 64 bytes, 20,000 samples each:");
    for kind in PATHS {
        let Some(s) = setup(kind, true) else { continue };
        let mut c = UnixStream::connect(&s.connect).expect("connect");
        let mut buf = [7u8; 64];
        for _ in 0..1000 {
            c.write_all(&buf).expect("write");
            c.read_exact(&mut buf).expect("read");
        }
        let mut samples: Vec<Duration> = (0..20_000)
            .map(|_| {
                let t = Instant::now();
                c.write_all(&buf).expect("write");
                c.read_exact(&mut buf).expect("read");
                t.elapsed()
            })
            .collect();
        samples.sort();
        let p = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
        println!(
            "  {kind:<8} p50 {:>7.1} µs   p99 {:>7.1} µs",
            p(0.50).as_secs_f64() * 1e6,
            p(0.99).as_secs_f64() * 1e6
        );
    }
}
