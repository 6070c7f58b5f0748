//! The figure of issue 8: "with a tap carrying 20,000 frames/s, no frame is missing from the
//! capture and the UI keeps at least 10 redraws per second".
//!
//! Real Unix sockets in a temporary directory: a client writes quantix pings, paced at `--rate`
//! frames/s for `--secs` seconds, into the TUI's tap source ([`TapSource`] with a capture file);
//! upstream is either a sink that reads and discards (`--mode sink`, the default: every frame
//! goes one way) or the in-process mock VMM with the mock quantix agent (`--mode mock`: each ping
//! gets a pong, which the client reads and counts). Meanwhile this thread runs the UI loop as
//! `app::run` does — step the store, draw every view's frame list on a 120×40 TestBackend, wait
//! one [`TICK`] for a key — and counts redraws per 1-s window. Afterwards it decodes the capture
//! file and compares its frames with what was sent and received.
//!
//! Run: `cargo run --release -p guestwire-tui --example ui_throughput -- [--rate 25000]
//! [--secs 5] [--mode sink|mock]`.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use guestwire::capture::{CaptureReader, ItemKind, ProtocolChoice, Reassembler};
use guestwire::host::quantix::Framing;
use guestwire::io::Endpoint;
use guestwire::tap::TapConfig;
use guestwire::wire::Direction;
use guestwire::wire::hybrid::Flavour;
use guestwire::wire::protocol::Protocol;
use guestwire::wire::quantix::{AgentMessage, Payload, PingRequest};
use guestwire::wire::stream::{DecodeOptions, open_decoder};
use guestwire_tui::app::{TICK, step};
use guestwire_tui::sources::Source;
use guestwire_tui::sources::mock::{MockConfig, MockKind, MockSource};
use guestwire_tui::sources::tap::TapSource;
use guestwire_tui::store::{DEFAULT_RING, Store};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// How long after the writer stops the replies and the UI may take to catch up.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

struct Args {
    rate: u64,
    secs: u64,
    mock: bool,
}

fn args() -> Args {
    let mut a = Args {
        rate: 25_000,
        secs: 5,
        mock: false,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    for pair in v.chunks(2) {
        let val = pair.get(1).map(String::as_str).unwrap_or("");
        match pair[0].as_str() {
            "--rate" => a.rate = val.parse().expect("--rate N"),
            "--secs" => a.secs = val.parse().expect("--secs N"),
            "--mode" => a.mock = val == "mock",
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// `n` ping frames, encoded back to back, and where each ends.
fn pings(n: u64) -> (Vec<u8>, Vec<usize>) {
    let mut out = Vec::new();
    let mut ends = Vec::new();
    for i in 0..n {
        let m = AgentMessage {
            message_id: i.to_string(),
            timestamp: None,
            payload: Some(Payload::Ping(PingRequest { sequence: i })),
        };
        out.extend_from_slice(&Framing::Qtx1.encode(&m).expect("encode"));
        ends.push(out.len());
    }
    (out, ends)
}

/// Writes the frames paced at `rate` per second; returns frames written and the time taken.
fn paced_writer(mut s: UnixStream, rate: u64, bytes: Vec<u8>, ends: Vec<usize>) -> (u64, f64) {
    let t = Instant::now();
    let mut sent = 0usize;
    while sent < ends.len() {
        let due = ((t.elapsed().as_secs_f64() * rate as f64) as usize).min(ends.len());
        if due > sent {
            let from = if sent == 0 { 0 } else { ends[sent - 1] };
            s.write_all(&bytes[from..ends[due - 1]]).expect("write");
            sent = due;
        } else {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    (sent as u64, t.elapsed().as_secs_f64())
}

/// Reads and decodes what comes back until EOF; counts the frames, and the pongs among them.
fn counting_reader(mut s: UnixStream, received: Arc<AtomicU64>, pongs: Arc<AtomicU64>) {
    let opts = DecodeOptions {
        direction: Some(Direction::ToHost),
        lean: true,
        ..DecodeOptions::default()
    };
    let mut dec = open_decoder(&Protocol::Quantix, &opts);
    let mut buf = BytesMut::new();
    let mut chunk = vec![0u8; 64 * 1024];
    s.set_read_timeout(Some(DRAIN_DEADLINE + Duration::from_secs(60)))
        .expect("timeout");
    while let Ok(n) = s.read(&mut chunk) {
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(r) = dec.decode(&mut buf) {
            if let Ok(f) = r {
                if f.type_name == "pong" {
                    pongs.fetch_add(1, Ordering::Relaxed);
                }
                received.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Frames in the capture file, towards the guest and towards the host, and errors.
fn capture_frames(path: &Path) -> ([u64; 2], u64) {
    let mut reader = CaptureReader::new(BufReader::new(File::open(path).expect("capture")));
    let mut re = Reassembler::new(ProtocolChoice::Auto, None).lean(true);
    let (mut frames, mut errors) = ([0u64; 2], 0u64);
    let mut count = |re: &mut Reassembler| {
        while let Some(item) = re.poll() {
            match item.kind {
                ItemKind::Frame { direction, .. } => {
                    frames[usize::from(direction == Direction::ToHost)] += 1
                }
                ItemKind::Error { .. } | ItemKind::BadRecord { .. } => errors += 1,
                _ => {}
            }
        }
    };
    while let Some(r) = reader.next_record() {
        match r {
            Ok(rec) => re.push(&rec),
            Err(e) => panic!("capture: {e}"),
        }
        count(&mut re);
    }
    re.finish();
    count(&mut re);
    (frames, errors)
}

fn main() {
    let a = args();
    let dir = tempfile::tempdir().expect("dir");
    let cap = dir.path().join("figure.pcap");
    let listen = dir.path().join("tap.sock");
    let mut sink_thread = None;
    let mut source: Box<dyn Source> = if a.mock {
        let mock = MockSource::start(MockConfig {
            kind: MockKind::Serial,
            protocol: Protocol::Quantix,
            listen: Some(Endpoint::Unix(listen.clone())),
            faults: Vec::new(),
            capture: Some(cap.clone()),
        })
        .expect("mock VMM");
        Box::new(mock)
    } else {
        let up = dir.path().join("sink.sock");
        let sink = UnixListener::bind(&up).expect("bind");
        sink_thread = Some(std::thread::spawn(move || {
            let (mut s, _) = sink.accept().expect("accept");
            let mut buf = vec![0u8; 256 * 1024];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
            }
        }));
        let config = TapConfig {
            listen: Endpoint::Unix(listen.clone()),
            upstream: Endpoint::Unix(up),
            flavour: Flavour::Firecracker,
            faults: Vec::new(),
            protocol: Some(Protocol::Quantix),
            seed: 0,
            connect_deadline: Duration::from_secs(5),
            max_connections: None,
        };
        Box::new(TapSource::start(config, Some(&cap)).expect("tap"))
    };
    let total = a.rate * a.secs;
    let (bytes, ends) = pings(total);
    let client = UnixStream::connect(&listen).expect("connect");
    let received = Arc::new(AtomicU64::new(0));
    let pongs = Arc::new(AtomicU64::new(0));
    let reader = {
        let s = client.try_clone().expect("clone");
        let (received, pongs) = (received.clone(), pongs.clone());
        std::thread::spawn(move || counting_reader(s, received, pongs))
    };
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let s = client.try_clone().expect("clone");
        let writing = writing.clone();
        let rate = a.rate;
        std::thread::spawn(move || {
            let r = paced_writer(s, rate, bytes, ends);
            writing.store(false, Ordering::Release);
            r
        })
    };

    // The UI loop, as app::run runs it, with a 120×40 test terminal.
    let mut store = Store::new(DEFAULT_RING, source.label());
    let mut term = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    let mut buf = Vec::new();
    let start = Instant::now();
    let mut last = start;
    let mut redraws: Vec<f64> = Vec::new();
    let mut drain_until: Option<Instant> = None;
    let mut closed = false;
    let mut sent = 0;
    let mut write_secs = 0.0;
    loop {
        let now = Instant::now();
        let elapsed = u64::try_from(now.duration_since(last).as_nanos()).unwrap_or(u64::MAX);
        last = now;
        step(&mut store, source.as_mut(), elapsed, &mut buf);
        term.draw(|f| guestwire_tui::views::draw(f, &store))
            .expect("draw");
        if writing.load(Ordering::Acquire) {
            redraws.push(start.elapsed().as_secs_f64());
        } else if drain_until.is_none() {
            drain_until = Some(Instant::now() + DRAIN_DEADLINE);
        }
        if let Some(until) = drain_until {
            // With the mock, wait for every pong before closing; then for the UI to see all.
            let replies_in = !a.mock || pongs.load(Ordering::Relaxed) >= total;
            if replies_in && !closed {
                let _ = client.shutdown(std::net::Shutdown::Both);
                closed = true;
            }
            let expected = total + received.load(Ordering::Relaxed);
            let seen = store.summary().frames() + store.source_dropped;
            if (closed && seen >= expected) || Instant::now() > until {
                break;
            }
        }
        std::thread::sleep(TICK);
    }
    if let Ok((n, secs)) = writer.join() {
        sent = n;
        write_secs = secs;
    }
    let _ = reader.join();
    let ui_frames = store.summary().frames();
    let ui_dropped = store.source_dropped;
    let evicted = store.dropped();
    drop(source);
    if let Some(t) = sink_thread {
        let _ = t.join();
    }
    let got = received.load(Ordering::Relaxed);
    let ([to_guest, to_host], errors) = capture_frames(&cap);

    // Redraws per 1-s window while the writer ran (full windows only).
    let windows = write_secs.floor() as usize;
    let per_window: Vec<usize> = (0..windows)
        .map(|w| {
            redraws
                .iter()
                .filter(|t| **t >= w as f64 && **t < (w + 1) as f64)
                .count()
        })
        .collect();
    let min = per_window.iter().min().copied().unwrap_or(0);
    let frames_sent = sent + got;
    println!(
        "mode {}: {sent} pings written in {write_secs:.2} s = {:.0} pings/s{}",
        if a.mock { "mock" } else { "sink" },
        sent as f64 / write_secs,
        if a.mock {
            format!(
                ", {got} replies read; {:.0} frames/s both ways",
                frames_sent as f64 / write_secs
            )
        } else {
            String::new()
        }
    );
    println!(
        "capture: {to_guest} frames to the guest, {to_host} to the host, {errors} errors; \
         sent {sent}, received {got}: {}",
        if to_guest == sent && to_host == got && errors == 0 {
            "no frame missing"
        } else {
            "FRAMES MISSING"
        }
    );
    println!(
        "UI: redraws per 1-s window {per_window:?} (min {min}); {ui_frames} frames reached the \
         store, {ui_dropped} UI events dropped, {evicted} evicted from the ring of {DEFAULT_RING}"
    );
}
