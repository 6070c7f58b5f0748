//! Reading a capture: how fast guestwire turns a pcap of many small quantix frames into decoded
//! frames (issue #5), stage by stage.
//!
//! The capture (built once, in memory, outside the timing) holds [`PAIRS`] ping/pong exchanges
//! on 4 interleaved serial-style connections: one record per frame, as the tap writes a chunk
//! per read, so [`2 × PAIRS`](PAIRS) payload records plus connects and disconnects. Each pass reads
//! it as `guestwire decode` does, through a `CaptureReader` over the in-memory bytes (64 KiB
//! reads):
//!
//! - `records`: file parsing only (pcap record framing and the `af_vsockmon_hdr` split);
//! - `reassemble_decode`: records → per-connection streams → frames with `--protocol quantix`;
//! - `auto_and_summary`: the same with `--protocol auto` and the summary (pairing, latency) —
//!   everything `guestwire decode --json` does except formatting and printing.
//!
//! Each contender is checked once, outside the timing, to yield the expected count. Run with
//! `cargo bench --bench capture_decode`.

use std::hint::black_box;
use std::sync::LazyLock;

use bytes::BytesMut;
use divan::Bencher;
use divan::counter::{BytesCount, ItemsCount};
use guestwire::capture::summary::Summary;
use guestwire::capture::{
    CaptureFormat, CaptureReader, Event, Flow, ItemKind, ProtocolChoice, Reassembler,
    RecordEncoder, Side,
};
use guestwire::wire::Direction;
use guestwire::wire::Encoder as _;
use guestwire::wire::protocol::Protocol;
use guestwire::wire::quantix::{AgentMessage, PingRequest, PongResponse, QuantixEncoder};

fn main() {
    divan::main();
}

/// Ping/pong exchanges in the capture.
const PAIRS: usize = 50_000;

/// Connections the exchanges are spread over.
const CONNS: u32 = 4;

struct Capture {
    bytes: Vec<u8>,
    frames: usize,
    records: u64,
}

fn frame(msg: &AgentMessage) -> Vec<u8> {
    let mut b = BytesMut::new();
    QuantixEncoder::new().encode(msg, &mut b).expect("encode");
    b.to_vec()
}

static CAPTURE: LazyLock<Capture> = LazyLock::new(|| {
    let mut enc = RecordEncoder::new(CaptureFormat::Pcap);
    let mut out = Vec::new();
    enc.file_header(&mut out).expect("header");
    let flows: Vec<Flow> = (0..CONNS)
        .map(|c| Flow::vsock(49152 + c, 3, 1024))
        .collect();
    let mut t = 1_795_000_000_000_000_000u64;
    let mut records = 0;
    for f in &flows {
        enc.event(&mut out, t, f, Event::Connect { by: Side::Host })
            .expect("connect");
        records += 1;
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
        records += 2;
    }
    for f in &flows {
        for by in [Side::Host, Side::Guest] {
            let e = Event::Disconnect {
                by,
                close: guestwire::capture::Close::Shutdown,
            };
            enc.event(&mut out, t, f, e).expect("disconnect");
            records += 1;
        }
    }
    Capture {
        bytes: out,
        frames: 2 * PAIRS,
        records,
    }
});

/// Counts records (and payload bytes, so nothing is optimised away).
#[inline(never)]
fn records(bytes: &[u8]) -> (u64, usize) {
    let mut r = CaptureReader::new(bytes);
    let (mut n, mut payload) = (0, 0);
    while let Some(rec) = r.next_record() {
        let rec = rec.expect("valid record");
        n += 1;
        payload += rec.vsock.payload.len();
    }
    (n, payload)
}

/// Reassembles and decodes; with `summary`, also summarises. Returns the frame count.
#[inline(never)]
fn decode(bytes: &[u8], choice: ProtocolChoice, summary: bool) -> usize {
    let mut r = CaptureReader::new(bytes);
    let mut reassembler = Reassembler::new(choice, None);
    let mut s = Summary::new();
    let mut frames = 0;
    let mut take = |reassembler: &mut Reassembler| {
        while let Some(item) = reassembler.poll() {
            if summary {
                s.observe(&item);
            }
            match &item.kind {
                ItemKind::Frame { .. } => frames += 1,
                ItemKind::Error { error, .. } => panic!("{error}"),
                _ => {}
            }
            black_box(item);
        }
    };
    while let Some(rec) = r.next_record() {
        reassembler.push(&rec.expect("valid record"));
        take(&mut reassembler);
    }
    reassembler.finish();
    take(&mut reassembler);
    if summary {
        assert_eq!(s.latency().map(|l| l.count), Some(PAIRS as u64));
    }
    frames
}

#[divan::bench(sample_count = 20)]
fn records_only(bencher: Bencher) {
    let c = &*CAPTURE;
    assert_eq!(records(&c.bytes).0, c.records);
    bencher
        .counter(BytesCount::of_slice(&c.bytes))
        .bench_local(|| records(black_box(&c.bytes)));
}

#[divan::bench(sample_count = 20)]
fn reassemble_decode(bencher: Bencher) {
    let c = &*CAPTURE;
    let fixed = || ProtocolChoice::Fixed(Protocol::Quantix);
    assert_eq!(decode(&c.bytes, fixed(), false), c.frames);
    bencher
        .counter(ItemsCount::new(c.frames))
        .bench_local(|| decode(black_box(&c.bytes), fixed(), false));
}

#[divan::bench(sample_count = 20)]
fn auto_and_summary(bencher: Bencher) {
    let c = &*CAPTURE;
    assert_eq!(decode(&c.bytes, ProtocolChoice::Auto, true), c.frames);
    bencher
        .counter(ItemsCount::new(c.frames))
        .bench_local(|| decode(black_box(&c.bytes), ProtocolChoice::Auto, true));
}
