//! `guestwire decode` of a 1,000,000-frame capture against `tshark -r` of the same file (issue
//! #5, point 8), in one run: the capture is written once to a temporary file, then each command
//! runs [`RUNS`] times with its output going to a file, and the fastest wall-clock time of each
//! is compared (on a loaded machine interference only ever adds time).
//!
//! The capture: [`PAIRS`] quantix ping/pong exchanges over 4 interleaved connections, one record
//! per frame as the tap writes them (one chunk per read), plus the connects and disconnects.
//!
//! `cargo bench --bench decode_vs_tshark`. Without `tshark` on the PATH only guestwire is timed.
//! `GUESTWIRE_BENCH_KEEP=DIR` keeps the capture (`DIR/1m.pcap`) for profiling;
//! `GUESTWIRE_BENCH_WRITE_ONLY=1` only writes it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use guestwire::capture::{CaptureFormat, Close, Event, Flow, RecordEncoder, Side};
use guestwire::wire::Direction;
use guestwire::wire::Encoder as _;
use guestwire::wire::quantix::{AgentMessage, PingRequest, PongResponse, QuantixEncoder};

/// Ping/pong exchanges: 1,000,000 frames.
const PAIRS: usize = 500_000;

/// Connections the exchanges are spread over.
const CONNS: u32 = 4;

/// Runs of each command.
const RUNS: usize = 3;

const BIN: &str = env!("CARGO_BIN_EXE_guestwire");

fn frame(msg: &AgentMessage) -> Vec<u8> {
    let mut b = BytesMut::new();
    QuantixEncoder::new().encode(msg, &mut b).expect("encode");
    b.to_vec()
}

/// Writes the capture; returns its size in bytes.
fn write_capture(path: &Path) -> usize {
    let mut enc = RecordEncoder::new(CaptureFormat::Pcap);
    let mut out = Vec::with_capacity(100 << 20);
    enc.file_header(&mut out).expect("header");
    let flows: Vec<Flow> = (0..CONNS)
        .map(|c| Flow::vsock(49152 + c, 3, 1024))
        .collect();
    let mut t = 1_795_000_000_000_000_000u64;
    for f in &flows {
        enc.event(&mut out, t, f, Event::Connect { by: Side::Host })
            .expect("connect");
    }
    for i in 0..PAIRS {
        let f = &flows[i % flows.len()];
        let id = format!("{i}");
        let ping = frame(&AgentMessage::new(&*id, PingRequest { sequence: i as u64 }));
        let pong = frame(&AgentMessage::new(
            &*id,
            PongResponse {
                sequence: i as u64,
                version: "1.0".into(),
                uptime_seconds: 42,
            },
        ));
        t += 20_000;
        let e = Event::Payload {
            direction: Direction::ToGuest,
            data: &ping,
        };
        enc.event(&mut out, t, f, e).expect("ping");
        t += 15_000;
        let e = Event::Payload {
            direction: Direction::ToHost,
            data: &pong,
        };
        enc.event(&mut out, t, f, e).expect("pong");
    }
    for f in &flows {
        for by in [Side::Host, Side::Guest] {
            let e = Event::Disconnect {
                by,
                close: Close::Shutdown,
            };
            enc.event(&mut out, t, f, e).expect("disconnect");
        }
    }
    std::fs::write(path, &out).expect("write the capture");
    out.len()
}

/// The fastest of [`RUNS`] runs of `program args`, stdout to `out`; None when it cannot run.
fn time(program: &str, args: &[&str], out: &Path) -> Option<Duration> {
    let mut best: Option<Duration> = None;
    for _ in 0..RUNS {
        let file = std::fs::File::create(out).expect("output file");
        let start = Instant::now();
        let status = Command::new(program)
            .args(args)
            .stdout(file)
            .stderr(Stdio::null())
            .status()
            .ok()?;
        let took = start.elapsed();
        // guestwire decode exits 0 for a clean capture; tshark too.
        if !status.success() {
            eprintln!("{program} {args:?}: {status}");
            return None;
        }
        best = Some(best.map_or(took, |b| b.min(took)));
    }
    best
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::env::var_os("GUESTWIRE_BENCH_KEEP")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).expect("dir");
    let cap = dir.join("1m.pcap");
    let size = write_capture(&cap);
    let cap_s = cap.to_str().expect("utf-8 path");
    if std::env::var_os("GUESTWIRE_BENCH_WRITE_ONLY").is_some() {
        println!("wrote {cap_s} ({size} bytes)");
        return;
    }
    let out = dir.join("out.txt");
    println!(
        "capture: {} frames, {:.1} MB, {RUNS} runs each, fastest wall time",
        2 * PAIRS,
        size as f64 / 1e6
    );
    let text = time(BIN, &["decode", cap_s], &out);
    let lines = std::fs::read_to_string(&out).map_or(0, |s| s.lines().count());
    let json = time(BIN, &["decode", "--json", cap_s], &out);
    let tshark = time("tshark", &["-r", cap_s], &out);
    let row = |name: &str, d: Option<Duration>| match d {
        Some(d) => println!(
            "{name:<36} {:>8.3} s  {:>6.2} M frames/s",
            d.as_secs_f64(),
            2.0 * PAIRS as f64 / d.as_secs_f64() / 1e6
        ),
        None => println!("{name:<36} (not run)"),
    };
    row("guestwire decode", text);
    row("guestwire decode --json", json);
    row("tshark -r", tshark);
    println!("(guestwire decode printed {lines} lines)");
    if let (Some(t), Some(g), Some(j)) = (tshark, text, json) {
        println!(
            "tshark / guestwire decode: {:.1}x; tshark / guestwire decode --json: {:.1}x",
            t.as_secs_f64() / g.as_secs_f64(),
            t.as_secs_f64() / j.as_secs_f64()
        );
    }
}
