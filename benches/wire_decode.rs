//! Decode throughput of guestwire's wire codecs next to tokio-util's `LengthDelimitedCodec`
//! (alone, and followed by `prost` / `serde_json`) and a plain memcpy floor (issue #2).
//!
//! Every contender reads the same pre-encoded stream (built once, outside the timed closure) the
//! way a socket reader does: the stream is appended to a `BytesMut` in 64 KiB chunks
//! ([`CHUNK`]) and frames are drained after each chunk, then the end of the stream is signalled.
//! Each decoded item goes through [`black_box`]. Before timing, each contender is run once and
//! must yield exactly the stream's number of frames, all of them successfully decoded.
//!
//! Streams (each about [`STREAM_BYTES`]):
//! - `quantix_qtx1` / `quantix_legacy`: `small_64b` — pings whose `AgentMessage` encodes to
//!   exactly 64 bytes; `large_64kib` — `file_read_response`s carrying 64 KiB of data;
//! - `fcexec`: `log_mix` — runs of 40 log lines followed by one result with a short output;
//!   `output_64kib` — results whose output is 64 KiB of text.
//!
//! Contenders:
//! - `floor_copy`: memcpy of the stream into a preallocated buffer, chunk by chunk — the floor;
//! - `ldc_framing`: `LengthDelimitedCodec` framing only (for QTX1 it skips the 4-byte magic
//!   without checking it: offset 4, length 4, skip 8);
//! - `ours_framing`: guestwire's `LpDecoder` with the same framing (QTX1 checks the magic);
//! - `ldc_plus_prost` / `ldc_plus_serde`: LDC framing, then `prost::Message::decode` of the
//!   `AgentMessage` (given the frame's `BytesMut`, so `bytes` fields are not copied), or
//!   `serde_json::from_slice` straight into the typed guest → host message (an internally tagged
//!   enum over guestwire's `GuestResponse`), the type our fcexec decoder produces;
//! - `ours_full`: `QuantixDecoder` / `LegacyDecoder` / `FcexecDecoder`.
//!
//! Run with `cargo bench --bench wire_decode`; results are in `docs/PERFORMANCE.md`.

use std::hint::black_box;
use std::sync::LazyLock;

use bytes::{Bytes, BytesMut};
use divan::Bencher;
use divan::counter::BytesCount;
use guestwire::wire::codec::Decoder as WireDecoder;
use guestwire::wire::codec::Encoder as _;
use guestwire::wire::fcexec::{FcexecDecoder, FcexecEncoder, FcexecMessage, GuestResponse};
use guestwire::wire::frame::{LpConfig, LpDecoder};
use guestwire::wire::quantix::{
    AgentMessage, FileReadResponse, LegacyDecoder, LegacyEncoder, MAX_MESSAGE, Payload,
    PingRequest, QuantixDecoder, QuantixEncoder, Timestamp, legacy_config, qtx1_config,
};
use guestwire::wire::{Direction, WireError};
use prost::Message as _;
use tokio_util::codec::{Decoder as _, LengthDelimitedCodec};

fn main() {
    divan::main();
}

/// The read size of the simulated socket reader: 64 KiB.
const CHUNK: usize = 64 * 1024;

/// Approximate size of each stream: 4 MiB.
const STREAM_BYTES: usize = 4 * 1024 * 1024;

/// Encoded size of each small quantix message.
const SMALL_MESSAGE: usize = 64;

/// Payload size of each large message: 64 KiB.
const LARGE_PAYLOAD: usize = 64 * 1024;

/// The 16 MiB maximum frame size, as a `usize` for `LengthDelimitedCodec`.
const MAX_FRAME: usize = MAX_MESSAGE as usize;

/// A pre-encoded stream and how many frames it holds.
struct Stream {
    bytes: Vec<u8>,
    frames: usize,
}

impl Stream {
    /// The throughput counter for one pass over the stream.
    fn counter(&self) -> BytesCount {
        BytesCount::of_slice(&self.bytes)
    }
}

/// The size classes of the quantix streams.
#[derive(Debug, Clone, Copy)]
enum QuantixSize {
    /// Pings of exactly [`SMALL_MESSAGE`] bytes.
    Small64b,
    /// `file_read_response`s with [`LARGE_PAYLOAD`] bytes of data.
    Large64kib,
}

/// The shapes of the fcexec streams.
#[derive(Debug, Clone, Copy)]
enum FcexecMix {
    /// 40 log lines, then a result with a short output, repeated.
    LogMix,
    /// Results with [`LARGE_PAYLOAD`] bytes of output.
    Output64kib,
}

const QUANTIX_SIZES: [QuantixSize; 2] = [QuantixSize::Small64b, QuantixSize::Large64kib];
const FCEXEC_MIXES: [FcexecMix; 2] = [FcexecMix::LogMix, FcexecMix::Output64kib];

/// Which quantix framing a stream uses.
#[derive(Debug, Clone, Copy)]
enum Framing {
    Qtx1,
    Legacy,
}

/// A ping `AgentMessage` whose encoding is exactly [`SMALL_MESSAGE`] bytes (padded through its
/// `message_id`).
fn small_message(i: u64) -> AgentMessage {
    let mut msg = AgentMessage {
        message_id: format!("req-{i}-"),
        timestamp: Some(Timestamp::new(1_790_000_000 + i as i64, 123_456_789)),
        payload: Some(Payload::Ping(PingRequest { sequence: i })),
    };
    while msg.encoded_len() < SMALL_MESSAGE {
        msg.message_id.push('x');
    }
    assert_eq!(msg.encoded_len(), SMALL_MESSAGE);
    msg
}

/// A `file_read_response` carrying [`LARGE_PAYLOAD`] bytes of (non-constant) data.
fn large_message(i: u64) -> AgentMessage {
    let data: Vec<u8> = (0..LARGE_PAYLOAD)
        .map(|j| (j as u64).wrapping_mul(31).wrapping_add(i) as u8)
        .collect();
    AgentMessage {
        message_id: format!("read-{i}"),
        timestamp: Some(Timestamp::new(1_790_000_000 + i as i64, 5)),
        payload: Some(Payload::FileReadResponse(FileReadResponse {
            success: true,
            data: Bytes::from(data),
            eof: false,
            total_size: 1 << 30,
            offset: i * LARGE_PAYLOAD as u64,
            chunk_number: i as u32,
            error: String::new(),
            mode: 0o644,
            modified_at: Some(Timestamp::new(1_780_000_000, 0)),
        })),
    }
}

/// Encodes messages of `size` in `framing` until the stream holds about [`STREAM_BYTES`].
fn quantix_stream(framing: Framing, size: QuantixSize) -> Stream {
    let mut qtx1 = QuantixEncoder::new();
    let mut legacy = LegacyEncoder::new();
    let mut out = BytesMut::with_capacity(STREAM_BYTES + LARGE_PAYLOAD);
    let mut frames = 0;
    while out.len() < STREAM_BYTES {
        let msg = match size {
            QuantixSize::Small64b => small_message(frames as u64),
            QuantixSize::Large64kib => large_message(frames as u64),
        };
        match framing {
            Framing::Qtx1 => qtx1.encode(&msg, &mut out),
            Framing::Legacy => legacy.encode(&msg, &mut out),
        }
        .expect("encode quantix");
        frames += 1;
    }
    Stream {
        bytes: out.to_vec(),
        frames,
    }
}

/// A plausible workload log line.
fn log_line(i: usize) -> String {
    format!(
        "2026-11-22T10:00:{:02}.{:03}Z INFO worker[{}] processed batch {i}: 128 items, \"ok\"",
        i % 60,
        i % 1000,
        i % 8
    )
}

/// Encodes fcexec guest → host messages of `mix` until the stream holds about [`STREAM_BYTES`].
fn fcexec_stream(mix: FcexecMix) -> Stream {
    let mut enc = FcexecEncoder::new();
    let mut out = BytesMut::with_capacity(STREAM_BYTES + 2 * LARGE_PAYLOAD);
    let mut frames = 0;
    let mut run = 0u64;
    while out.len() < STREAM_BYTES {
        match mix {
            FcexecMix::LogMix => {
                for _ in 0..40 {
                    enc.encode_log(&log_line(frames), &mut out)
                        .expect("encode log");
                    frames += 1;
                }
                let response = GuestResponse {
                    exit_code: 0,
                    output: format!("run {run}: 40 batches, 5120 items\nall done\n"),
                    error: String::new(),
                    log_lines: Some(guestwire::wire::fcexec::LogLines::Count(40)),
                };
                enc.encode_result(&response, &mut out)
                    .expect("encode result");
            }
            FcexecMix::Output64kib => {
                let mut output = String::with_capacity(LARGE_PAYLOAD);
                let mut line = 0;
                while output.len() < LARGE_PAYLOAD {
                    output.push_str(&log_line(line));
                    output.push('\n');
                    line += 1;
                }
                output.truncate(LARGE_PAYLOAD);
                let response = GuestResponse {
                    exit_code: (run % 3) as i32,
                    output,
                    error: String::new(),
                    log_lines: None,
                };
                enc.encode_result(&response, &mut out)
                    .expect("encode result");
            }
        }
        frames += 1;
        run += 1;
    }
    Stream {
        bytes: out.to_vec(),
        frames,
    }
}

static QTX1_SMALL: LazyLock<Stream> =
    LazyLock::new(|| quantix_stream(Framing::Qtx1, QuantixSize::Small64b));
static QTX1_LARGE: LazyLock<Stream> =
    LazyLock::new(|| quantix_stream(Framing::Qtx1, QuantixSize::Large64kib));
static LEGACY_SMALL: LazyLock<Stream> =
    LazyLock::new(|| quantix_stream(Framing::Legacy, QuantixSize::Small64b));
static LEGACY_LARGE: LazyLock<Stream> =
    LazyLock::new(|| quantix_stream(Framing::Legacy, QuantixSize::Large64kib));
static FCEXEC_LOGS: LazyLock<Stream> = LazyLock::new(|| fcexec_stream(FcexecMix::LogMix));
static FCEXEC_OUTPUT: LazyLock<Stream> = LazyLock::new(|| fcexec_stream(FcexecMix::Output64kib));

fn quantix(framing: Framing, size: QuantixSize) -> &'static Stream {
    match (framing, size) {
        (Framing::Qtx1, QuantixSize::Small64b) => &QTX1_SMALL,
        (Framing::Qtx1, QuantixSize::Large64kib) => &QTX1_LARGE,
        (Framing::Legacy, QuantixSize::Small64b) => &LEGACY_SMALL,
        (Framing::Legacy, QuantixSize::Large64kib) => &LEGACY_LARGE,
    }
}

fn fcexec(mix: FcexecMix) -> &'static Stream {
    match mix {
        FcexecMix::LogMix => &FCEXEC_LOGS,
        FcexecMix::Output64kib => &FCEXEC_OUTPUT,
    }
}

/// `LengthDelimitedCodec` for QTX1: skips the magic (unchecked) and the u32 BE length.
fn ldc_qtx1() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_offset(4)
        .length_field_length(4)
        .num_skip(8)
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

/// `LengthDelimitedCodec` for a plain u32 BE length (legacy quantix, fcexec).
fn ldc_u32() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

fn ldc_for(framing: Framing) -> LengthDelimitedCodec {
    match framing {
        Framing::Qtx1 => ldc_qtx1(),
        Framing::Legacy => ldc_u32(),
    }
}

fn lp_for(framing: Framing) -> LpConfig {
    match framing {
        Framing::Qtx1 => qtx1_config(MAX_MESSAGE),
        Framing::Legacy => legacy_config(MAX_MESSAGE),
    }
}

/// The floor: copies `stream` chunk by chunk into `dst` (preallocated to its length).
#[inline(never)] // a separate symbol, so profilers can attribute each pass
fn copy_chunks(stream: &[u8], dst: &mut [u8]) {
    for (src, dst) in stream.chunks(CHUNK).zip(dst.chunks_mut(CHUNK)) {
        dst.copy_from_slice(src);
    }
}

/// Feeds `stream` to a guestwire decoder as a socket reader would; returns the item count.
#[inline(never)] // a separate symbol, so profilers can attribute each pass
fn drive_ours<D: WireDecoder>(
    mut decoder: D,
    stream: &[u8],
    mut sink: impl FnMut(Result<D::Message, WireError>),
) -> usize {
    let mut buf = BytesMut::with_capacity(CHUNK);
    let mut items = 0;
    for chunk in stream.chunks(CHUNK) {
        buf.extend_from_slice(chunk);
        while let Some(item) = decoder.decode(&mut buf) {
            sink(item.map(|frame| frame.message));
            items += 1;
        }
    }
    while let Some(item) = decoder.decode_eof(&mut buf) {
        sink(item.map(|frame| frame.message));
        items += 1;
    }
    items
}

/// Feeds `stream` to a `LengthDelimitedCodec` as a socket reader would; returns the frame count.
#[inline(never)] // a separate symbol, so profilers can attribute each pass
fn drive_ldc(
    mut codec: LengthDelimitedCodec,
    stream: &[u8],
    mut sink: impl FnMut(BytesMut),
) -> usize {
    let mut buf = BytesMut::with_capacity(CHUNK);
    let mut frames = 0;
    for chunk in stream.chunks(CHUNK) {
        buf.extend_from_slice(chunk);
        while let Some(frame) = codec.decode(&mut buf).expect("ldc frame") {
            sink(frame);
            frames += 1;
        }
    }
    while let Some(frame) = codec.decode_eof(&mut buf).expect("ldc eof") {
        sink(frame);
        frames += 1;
    }
    frames
}

/// The typed guest → host fcexec message, deserialised directly by serde.
#[derive(serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum GuestOut {
    Log { line: String },
    Result { response: GuestResponse },
}

impl From<GuestOut> for FcexecMessage {
    fn from(out: GuestOut) -> Self {
        match out {
            GuestOut::Log { line } => FcexecMessage::Log { line },
            GuestOut::Result { response } => FcexecMessage::Result(response),
        }
    }
}

/// Runs `f` once outside the timing and checks it saw all `expected` frames.
fn check(name: &str, expected: usize, f: impl FnOnce() -> usize) {
    assert_eq!(f(), expected, "{name}: wrong number of frames");
}

/// Panics on a failed decode (used only in the untimed check runs).
fn must<T, E: std::fmt::Debug>(r: Result<T, E>) {
    r.expect("decodes without error");
}

/// Contenders on the quantix streams, for one framing.
macro_rules! quantix_benches {
    ($framing:expr) => {
        use super::*;

        #[divan::bench(args = QUANTIX_SIZES)]
        fn floor_copy(bencher: Bencher, size: QuantixSize) {
            let s = quantix($framing, size);
            let mut dst = vec![0u8; s.bytes.len()];
            bencher.counter(s.counter()).bench_local(|| {
                copy_chunks(black_box(&s.bytes), &mut dst);
                black_box(&mut dst);
            });
        }

        #[divan::bench(args = QUANTIX_SIZES)]
        fn ldc_framing(bencher: Bencher, size: QuantixSize) {
            let s = quantix($framing, size);
            check("ldc_framing", s.frames, || {
                drive_ldc(ldc_for($framing), &s.bytes, drop)
            });
            bencher.counter(s.counter()).bench_local(|| {
                drive_ldc(ldc_for($framing), black_box(&s.bytes), |f| {
                    let _ = black_box(f);
                })
            });
        }

        #[divan::bench(args = QUANTIX_SIZES)]
        fn ours_framing(bencher: Bencher, size: QuantixSize) {
            let s = quantix($framing, size);
            let dec = || LpDecoder::new(lp_for($framing));
            check("ours_framing", s.frames, || {
                drive_ours(dec(), &s.bytes, must)
            });
            bencher.counter(s.counter()).bench_local(|| {
                drive_ours(dec(), black_box(&s.bytes), |f| {
                    let _ = black_box(f);
                })
            });
        }

        #[divan::bench(args = QUANTIX_SIZES)]
        fn ldc_plus_prost(bencher: Bencher, size: QuantixSize) {
            let s = quantix($framing, size);
            check("ldc_plus_prost", s.frames, || {
                drive_ldc(ldc_for($framing), &s.bytes, |f| {
                    must(AgentMessage::decode(f))
                })
            });
            bencher.counter(s.counter()).bench_local(|| {
                drive_ldc(ldc_for($framing), black_box(&s.bytes), |f| {
                    black_box(AgentMessage::decode(f)).ok();
                })
            });
        }

        #[divan::bench(args = QUANTIX_SIZES)]
        fn ours_full(bencher: Bencher, size: QuantixSize) {
            let s = quantix($framing, size);
            match $framing {
                Framing::Qtx1 => {
                    check("ours_full", s.frames, || {
                        drive_ours(QuantixDecoder::new(), &s.bytes, must)
                    });
                    bencher.counter(s.counter()).bench_local(|| {
                        drive_ours(QuantixDecoder::new(), black_box(&s.bytes), |m| {
                            let _ = black_box(m);
                        })
                    });
                }
                Framing::Legacy => {
                    check("ours_full", s.frames, || {
                        drive_ours(LegacyDecoder::new(), &s.bytes, must)
                    });
                    bencher.counter(s.counter()).bench_local(|| {
                        drive_ours(LegacyDecoder::new(), black_box(&s.bytes), |m| {
                            let _ = black_box(m);
                        })
                    });
                }
            }
        }
    };
}

/// Quantix messages in the agent's current framing (`QTX1` magic, u32 BE length).
mod quantix_qtx1 {
    quantix_benches!(Framing::Qtx1);
}

/// Quantix messages in the documented legacy framing (u32 BE length only).
mod quantix_legacy {
    quantix_benches!(Framing::Legacy);
}

/// fcexec guest → host messages (u32 BE length, JSON).
mod fcexec {
    use super::*;

    fn ours() -> FcexecDecoder {
        FcexecDecoder::new(Some(Direction::ToHost))
    }

    #[divan::bench(args = FCEXEC_MIXES)]
    fn floor_copy(bencher: Bencher, mix: FcexecMix) {
        let s = fcexec(mix);
        let mut dst = vec![0u8; s.bytes.len()];
        bencher.counter(s.counter()).bench_local(|| {
            copy_chunks(black_box(&s.bytes), &mut dst);
            black_box(&mut dst);
        });
    }

    #[divan::bench(args = FCEXEC_MIXES)]
    fn ldc_framing(bencher: Bencher, mix: FcexecMix) {
        let s = fcexec(mix);
        check("ldc_framing", s.frames, || {
            drive_ldc(ldc_u32(), &s.bytes, drop)
        });
        bencher.counter(s.counter()).bench_local(|| {
            drive_ldc(ldc_u32(), black_box(&s.bytes), |f| {
                let _ = black_box(f);
            })
        });
    }

    #[divan::bench(args = FCEXEC_MIXES)]
    fn ours_framing(bencher: Bencher, mix: FcexecMix) {
        let s = fcexec(mix);
        let dec = || LpDecoder::new(LpConfig::u32_be());
        check("ours_framing", s.frames, || {
            drive_ours(dec(), &s.bytes, must)
        });
        bencher.counter(s.counter()).bench_local(|| {
            drive_ours(dec(), black_box(&s.bytes), |f| {
                let _ = black_box(f);
            })
        });
    }

    #[divan::bench(args = FCEXEC_MIXES)]
    fn ldc_plus_serde(bencher: Bencher, mix: FcexecMix) {
        let s = fcexec(mix);
        let decode = |f: BytesMut| serde_json::from_slice::<GuestOut>(&f).map(FcexecMessage::from);
        check("ldc_plus_serde", s.frames, || {
            drive_ldc(ldc_u32(), &s.bytes, |f| must(decode(f)))
        });
        bencher.counter(s.counter()).bench_local(|| {
            drive_ldc(ldc_u32(), black_box(&s.bytes), |f| {
                black_box(decode(f)).ok();
            })
        });
    }

    #[divan::bench(args = FCEXEC_MIXES)]
    fn ours_full(bencher: Bencher, mix: FcexecMix) {
        let s = fcexec(mix);
        check("ours_full", s.frames, || drive_ours(ours(), &s.bytes, must));
        bencher.counter(s.counter()).bench_local(|| {
            drive_ours(ours(), black_box(&s.bytes), |m| {
                let _ = black_box(m);
            })
        });
    }
}
