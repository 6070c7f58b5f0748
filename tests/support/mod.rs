//! Shared by the whole-binary tests: child processes that are always reaped, and bounded waits.
#![allow(dead_code)] // each test file uses a different part

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_guestwire");

/// A child process, killed and reaped on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// Waits (at most `limit`) for the process to exit by itself; returns its stdout if piped.
    pub fn finish_within(mut self, limit: Duration) -> String {
        let start = Instant::now();
        while !matches!(self.0.try_wait(), Ok(Some(_))) {
            assert!(start.elapsed() < limit, "the process did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut out = String::new();
        if let Some(mut s) = self.0.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        out
    }

    /// [`finish_within`](Self::finish_within) 20 s.
    pub fn finish(self) -> String {
        self.finish_within(Duration::from_secs(20))
    }
}

/// Runs `guestwire ARGS` in the background, stdout piped when `stdout`, stderr discarded.
pub fn spawn(args: &[&str], stdout: bool) -> Proc {
    let child = Command::new(BIN)
        .args(args)
        .stdout(if stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn guestwire");
    Proc(child)
}

/// Waits (at most 20 s) for `path` to exist.
pub fn wait_for(path: &Path) {
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

/// Connects to the Unix socket at `path`, retrying for up to 20 s while it is not listening yet
/// (a listener's file appears at `bind()`, a moment before its `listen()`).
pub fn connect(path: &Path) -> std::os::unix::net::UnixStream {
    let start = Instant::now();
    loop {
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(s) => return s,
            Err(e) => {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "connect {}: {e}",
                    path.display()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// An example binary (`examples/NAME.rs`), built once per test process with the same cargo.
pub fn example(name: &str) -> std::path::PathBuf {
    let out = Command::new(env!("CARGO"))
        .args(["build", "--example", name, "--message-format", "json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::null())
        .output()
        .expect("run cargo build");
    assert!(out.status.success(), "cargo build --example {name}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"]["name"] == name)
        .find_map(|v| v["executable"].as_str().map(std::path::PathBuf::from))
        .expect("the example's executable in cargo's output")
}

/// Runs `guestwire ARGS` to completion (at most 60 s): its exit code and stdout.
pub fn run(args: &[&str]) -> (i32, String) {
    let mut p = spawn(args, true);
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
