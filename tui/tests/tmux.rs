//! Smoke test: the real binary in a detached tmux session (its own server, killed by name)
//! against a fixture capture; keys are sent and the screen text checked.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_guestwire-tui");

/// A tmux server of this test's own (`tmux -L NAME`), killed by name when dropped.
struct Tmux {
    name: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.name)
            .args(args)
            .output()
            .expect("tmux (install it: apt-get install -y tmux)")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", &self.name]).stdout)
            .into_owned()
    }

    /// Waits (bounded) until the screen contains `text`.
    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(Instant::now() < deadline, "no {text:?} on screen:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.name.as_str()];
        args.extend(keys);
        assert!(self.run(&args).status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

#[test]
fn tmux_smoke_plays_a_capture_switches_views_filters_and_quits() {
    let tmux = Tmux {
        name: format!("guestwire-tui-smoke-{}", std::process::id()),
    };
    let fixture = format!(
        "{}/../fixtures/captures/quantix-session.pcap",
        env!("CARGO_MANIFEST_DIR")
    );
    let cmd = format!("{BIN} --capture {fixture} --speed max");
    let out = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        &tmux.name,
        "-x",
        "120",
        "-y",
        "30",
        &cmd,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = tmux.wait_for("| ended max |");
    assert!(s.contains("12 frames shown"), "{s}");
    assert!(s.contains("pong") && s.contains("133.0 µs"), "{s}");
    tmux.keys(&["Tab", "Tab"]);
    tmux.wait_for("latency     p50");
    tmux.keys(&["BTab", "BTab", "/", "p", "o", "n", "g", "Enter"]);
    let s = tmux.wait_for("filter:pong");
    assert!(s.contains("1 frames shown"), "{s}");
    tmux.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while tmux
        .run(&["has-session", "-t", &tmux.name])
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "still running after q");
        std::thread::sleep(Duration::from_millis(50));
    }
}
