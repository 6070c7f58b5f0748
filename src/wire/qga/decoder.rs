//! The incremental qga decoder.
//!
//! It scans bytes once, keeping its state (nesting depth, inside a string, after a backslash)
//! across [`decode`](Decoder::decode) calls, so a 16 MiB object fed one byte at a time costs O(n);
//! only a complete object is handed to serde_json, once. Every report depends on the bytes alone,
//! never on how they were split into calls.
//!
//! Rules:
//! - JSON white space between objects is consumed without a frame; a 0xFF byte is a
//!   [`QgaMessage::Delimiter`] frame of length 1.
//! - A complete object becomes a [`QgaMessage`]; one that does not parse is
//!   [`WireError::Malformed`], one that is none of command/return/error is
//!   [`WireError::UnknownType`] (named by its first key). Its end is known, so decoding goes on
//!   right after it.
//! - A 0xFF inside an object (legal nowhere in UTF-8 JSON) cuts it: [`WireError::Malformed`] for
//!   the bytes before it, then the delimiter frame. This is what a sender's flush looks like.
//! - An object still open after `max` bytes is [`WireError::Oversize`]; one nested
//!   [`MAX_DEPTH`] deep is [`WireError::Malformed`]. Both are reported at once, then the decoder
//!   **resyncs**: it discards up to the next newline or 0xFF (not included) and reports the
//!   discarded run as one [`WireError::Garbage`] when the run ends.
//! - A top-level byte that cannot start an object starts such a run too; the run itself is the
//!   report ([`WireError::Garbage`], folded: offset of its first byte, its length, its first
//!   bytes). When its first bytes are recognisably another framing (the QTX1 magic, a u32
//!   big-endian length, a hybrid-vsock `CONNECT`/`OK` line, HTTP), a
//!   [`WireError::FramingMismatch`] comes first, once until the next good object.
//! - A run longer than 64 KiB is reported every 64 KiB, so the reports of a long binary stream
//!   keep coming. At the end of the stream an open run is reported, an open object is
//!   [`WireError::Truncated`].

use bytes::{Buf, BytesMut};

use super::super::codec::{Decoded, Decoder, Frame};
use super::super::error::WireError;
use super::super::frame::{DEFAULT_MAX_FRAME, SCAN_WINDOW};
use super::super::hex::{HexPreview, PREVIEW_BYTES};
use super::parse::parse_message;
use super::{DELIMITER, QgaMessage};

/// Nesting limit: an array or object opened at this depth (the top-level object is depth 1) is
/// rejected. serde_json's parser has the same limit (at most 127 nested levels parse).
pub const MAX_DEPTH: u32 = 128;

/// How many leading bytes of a bad run are looked at to name another framing.
const SNIFF_WINDOW: usize = 8;

/// A u32 big-endian length up to this is taken as another protocol's length prefix.
const PLAUSIBLE_LENGTH: u32 = 16 * 1024 * 1024;

/// Incremental qga decoder; see the module documentation for its rules.
#[derive(Debug, Clone)]
pub struct QgaDecoder {
    max: usize,
    offset: u64,
    state: State,
    /// A framing mismatch was reported and no good object has been decoded since.
    mismatch_reported: bool,
    /// Bytes examined by the object scanner (to check that scanning is linear).
    #[cfg(test)]
    pub(super) examined: u64,
}

#[derive(Debug, Clone)]
enum State {
    /// Between objects.
    Idle,
    /// Inside an object that starts at `buf[0]`.
    Object(Scan),
    /// Discarding a bad run up to the next newline or 0xFF.
    Skipping(Skip),
}

/// The object scanner's state.
#[derive(Debug, Clone, Default)]
struct Scan {
    /// Bytes of the object already examined.
    scanned: usize,
    depth: u32,
    in_string: bool,
    escape: bool,
}

enum ScanEnd {
    NeedMore,
    /// The object ends before this index.
    Complete(usize),
    /// The object is longer than the maximum.
    TooLong,
    /// A container opens at this index at [`MAX_DEPTH`].
    TooDeep(usize),
    /// A 0xFF at this index.
    Delimiter(usize),
}

impl Scan {
    fn advance(&mut self, data: &[u8], max: usize) -> ScanEnd {
        let mut i = self.scanned;
        let end = loop {
            if i >= data.len() {
                break ScanEnd::NeedMore;
            }
            if i >= max {
                break ScanEnd::TooLong;
            }
            if self.in_string && !self.escape {
                // The plain part of a string in one step.
                let limit = data.len().min(max);
                match data
                    .get(i..limit)
                    .and_then(|s| memchr::memchr3(b'"', b'\\', DELIMITER, s))
                {
                    Some(j) => i += j,
                    None => {
                        i = limit;
                        continue;
                    }
                }
            }
            let Some(&b) = data.get(i) else {
                break ScanEnd::NeedMore;
            };
            if b == DELIMITER {
                break ScanEnd::Delimiter(i);
            }
            if self.in_string {
                if self.escape {
                    self.escape = false;
                } else if b == b'\\' {
                    self.escape = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
            } else {
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => {
                        self.depth += 1;
                        if self.depth >= MAX_DEPTH {
                            break ScanEnd::TooDeep(i);
                        }
                    }
                    b'}' | b']' => {
                        self.depth = self.depth.saturating_sub(1);
                        if self.depth == 0 {
                            break ScanEnd::Complete(i + 1);
                        }
                    }
                    _ => {}
                }
            }
            i += 1;
        };
        self.scanned = match end {
            ScanEnd::Complete(len) => len,
            _ => i,
        };
        end
    }
}

/// A run of discarded bytes.
#[derive(Debug, Clone)]
struct Skip {
    start: u64,
    skipped: u64,
    preview: Vec<u8>,
    /// What the run is, e.g. "bytes that cannot start a JSON object".
    what: &'static str,
}

impl Skip {
    fn new(start: u64, what: &'static str) -> Self {
        Self {
            start,
            skipped: 0,
            preview: Vec::new(),
            what,
        }
    }

    fn take(&mut self, data: &[u8]) {
        let room = PREVIEW_BYTES.saturating_sub(self.preview.len());
        self.preview
            .extend_from_slice(data.get(..data.len().min(room)).unwrap_or_default());
        self.skipped += data.len() as u64;
    }

    /// The report for the run so far, if it is not empty.
    fn report(&self, why: &str) -> Option<WireError> {
        (self.skipped > 0).then(|| WireError::Garbage {
            offset: self.start,
            skipped: self.skipped,
            reason: format!(" ({}{why})", self.what),
            bytes: HexPreview::with_total(&self.preview, self.skipped),
        })
    }
}

const JUNK: &str = "bytes that cannot start a JSON object";
const AFTER_MISMATCH: &str = "bytes of the foreign framing";
const AFTER_OVERSIZE: &str = "the rest of the oversize object";
const AFTER_TOO_DEEP: &str = "the rest of the too deeply nested object";

impl Default for QgaDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl QgaDecoder {
    /// A decoder with the 16 MiB maximum message size.
    pub fn new() -> Self {
        Self::with_max(DEFAULT_MAX_FRAME)
    }

    /// A decoder whose messages may be at most `max` bytes (at least 2, the size of `{}`).
    pub fn with_max(max: u64) -> Self {
        Self {
            max: usize::try_from(max).unwrap_or(usize::MAX).max(2),
            offset: 0,
            state: State::Idle,
            mismatch_reported: false,
            #[cfg(test)]
            examined: 0,
        }
    }

    /// The maximum message size.
    pub fn max(&self) -> u64 {
        self.max as u64
    }

    fn consume(&mut self, buf: &mut BytesMut, n: usize) {
        buf.advance(n);
        self.offset += n as u64;
    }

    fn step(&mut self, buf: &mut BytesMut, eof: bool) -> Option<Decoded<QgaMessage>> {
        loop {
            match &mut self.state {
                State::Idle => {
                    let ws = buf
                        .iter()
                        .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                        .count();
                    self.consume(buf, ws);
                    let first = *buf.first()?;
                    match first {
                        DELIMITER => {
                            let offset = self.offset;
                            self.consume(buf, 1);
                            return Some(Ok(Frame {
                                offset,
                                wire_len: 1,
                                message: QgaMessage::Delimiter,
                            }));
                        }
                        b'{' => self.state = State::Object(Scan::default()),
                        _ => {
                            let window = buf.get(..buf.len().min(SNIFF_WINDOW)).unwrap_or_default();
                            let start = self.offset;
                            match sniff_framing(window, eof) {
                                Sniff::NeedMore => return None,
                                Sniff::Found(found, used) if !self.mismatch_reported => {
                                    self.mismatch_reported = true;
                                    let err = WireError::FramingMismatch {
                                        offset: start,
                                        expected: "qga",
                                        found,
                                        bytes: HexPreview::of(window.get(..used).unwrap_or(window)),
                                    };
                                    self.state = State::Skipping(Skip::new(start, AFTER_MISMATCH));
                                    return Some(Err(err));
                                }
                                Sniff::Found(..) | Sniff::Nothing => {
                                    self.state = State::Skipping(Skip::new(start, JUNK));
                                }
                            }
                        }
                    }
                }
                State::Object(scan) => {
                    #[cfg(test)]
                    let before = scan.scanned;
                    let end = scan.advance(buf, self.max);
                    #[cfg(test)]
                    {
                        self.examined += (scan.scanned - before) as u64;
                    }
                    let offset = self.offset;
                    return match end {
                        ScanEnd::NeedMore if !eof => None,
                        ScanEnd::NeedMore => {
                            let err = WireError::Truncated {
                                offset,
                                expected: 0,
                                available: buf.len() as u64,
                                bytes: HexPreview::of(buf),
                            };
                            let n = buf.len();
                            self.consume(buf, n);
                            self.state = State::Idle;
                            Some(Err(err))
                        }
                        ScanEnd::Complete(len) => {
                            let json = buf.split_to(len);
                            self.offset += len as u64;
                            self.state = State::Idle;
                            let item = parse_message(&json, offset).map(|message| Frame {
                                offset,
                                wire_len: len as u64,
                                message,
                            });
                            if item.is_ok() {
                                self.mismatch_reported = false;
                            }
                            Some(item)
                        }
                        ScanEnd::TooLong => {
                            let max = self.max;
                            let err = WireError::Oversize {
                                offset,
                                len: max as u64 + 1,
                                max: max as u64,
                                hint: format!(
                                    " (at least: the object is still open after {max} bytes; \
                                     skipping to the next newline or 0xFF)"
                                ),
                                bytes: HexPreview::with_total(
                                    buf.get(..max.min(PREVIEW_BYTES)).unwrap_or_default(),
                                    max as u64 + 1,
                                ),
                            };
                            self.consume(buf, max);
                            self.state = State::Skipping(Skip::new(self.offset, AFTER_OVERSIZE));
                            Some(Err(err))
                        }
                        ScanEnd::TooDeep(i) => {
                            let err = WireError::Malformed {
                                offset,
                                format: "json",
                                reason: format!(
                                    "nested {MAX_DEPTH} levels deep (at most {} are accepted); \
                                     skipping to the next newline or 0xFF",
                                    MAX_DEPTH - 1
                                ),
                                bytes: HexPreview::of(buf.get(..=i).unwrap_or_default()),
                            };
                            self.consume(buf, i + 1);
                            self.state = State::Skipping(Skip::new(self.offset, AFTER_TOO_DEEP));
                            Some(Err(err))
                        }
                        ScanEnd::Delimiter(i) => {
                            let err = WireError::Malformed {
                                offset,
                                format: "json",
                                reason: "a 0xFF delimiter inside the object cuts it short \
                                         (the sender flushed or resynchronised)"
                                    .into(),
                                bytes: HexPreview::of(buf.get(..i).unwrap_or_default()),
                            };
                            self.consume(buf, i);
                            self.state = State::Idle;
                            Some(Err(err))
                        }
                    };
                }
                State::Skipping(skip) => {
                    let room = usize::try_from(SCAN_WINDOW.saturating_sub(skip.skipped))
                        .unwrap_or(usize::MAX);
                    let limit = buf.len().min(room);
                    let head = buf.get(..limit).unwrap_or_default();
                    match memchr::memchr2(b'\n', DELIMITER, head) {
                        Some(i) => {
                            skip.take(head.get(..i).unwrap_or_default());
                            let report = skip.report(", up to the next newline or 0xFF");
                            self.consume(buf, i);
                            self.state = State::Idle;
                            if let Some(report) = report {
                                return Some(Err(report));
                            }
                        }
                        None => {
                            skip.take(head);
                            let what = skip.what;
                            if skip.skipped >= SCAN_WINDOW {
                                let report =
                                    skip.report("; no newline or 0xFF within 64 KiB, scanning on");
                                self.consume(buf, limit);
                                self.state = State::Skipping(Skip::new(self.offset, what));
                                return report.map(Err);
                            }
                            if eof {
                                let report =
                                    skip.report("; the stream ended before a newline or 0xFF");
                                self.consume(buf, limit);
                                self.state = State::Idle;
                                return report.map(Err);
                            }
                            self.consume(buf, limit);
                            return None;
                        }
                    }
                }
            }
        }
    }
}

impl Decoder for QgaDecoder {
    type Message = QgaMessage;

    fn decode(&mut self, buf: &mut BytesMut) -> Option<Decoded<QgaMessage>> {
        self.step(buf, false)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Decoded<QgaMessage>> {
        self.step(buf, true)
    }

    fn offset(&self) -> u64 {
        self.offset
    }
}

enum Sniff {
    /// More bytes could change the answer.
    NeedMore,
    /// Another framing, and how many leading bytes show it.
    Found(String, usize),
    /// Just bytes.
    Nothing,
}

/// Fixed prefixes of other framings: bytes, what they are, whether case is ignored.
const PREFIXES: &[(&[u8], &str, bool)] = &[
    (
        b"QTX\x01",
        "quantix framing (QTX1 magic, u32 BE length, protobuf)",
        false,
    ),
    (
        b"CONNECT ",
        "a hybrid-vsock CONNECT line that was not stripped",
        true,
    ),
    (
        b"OK ",
        "a hybrid-vsock OK reply that was not stripped",
        false,
    ),
    (b"HTTP/", "HTTP (volant or ch-api, not qga)", false),
    (b"GET ", "HTTP (volant or ch-api, not qga)", false),
    (b"PUT ", "HTTP (volant or ch-api, not qga)", false),
    (b"POST ", "HTTP (volant or ch-api, not qga)", false),
];

/// Names the framing that the first bytes of a bad run belong to. Answers as soon as the prefix
/// decides, so that the answer does not depend on how the stream was split.
fn sniff_framing(w: &[u8], eof: bool) -> Sniff {
    let mut need_more = false;
    for (prefix, what, ignore_case) in PREFIXES {
        let n = w.len().min(prefix.len());
        let (Some(have), Some(want)) = (w.get(..n), prefix.get(..n)) else {
            continue;
        };
        let same = if *ignore_case {
            have.eq_ignore_ascii_case(want)
        } else {
            have == want
        };
        if !same {
            continue;
        }
        if n == prefix.len() {
            return Sniff::Found((*what).to_string(), n);
        }
        need_more = true;
    }
    // A u32 big-endian length under 16 MiB starts with a zero byte.
    if w.first() == Some(&0) {
        match w.get(..4) {
            Some(&[a, b, c, d]) if w.len() >= 5 || eof => {
                let len = u32::from_be_bytes([a, b, c, d]);
                if (1..=PLAUSIBLE_LENGTH).contains(&len) {
                    let then = match w.get(4) {
                        Some(b'{') => "; a JSON payload follows, as in fcexec",
                        Some(0x0a) => "; a protobuf field 1 follows, as in quantix-legacy",
                        _ => "",
                    };
                    return Sniff::Found(
                        format!("length-prefixed frames (u32 BE length {len}{then})"),
                        w.len().min(5),
                    );
                }
            }
            _ => need_more = true,
        }
    }
    if need_more && !eof {
        Sniff::NeedMore
    } else {
        Sniff::Nothing
    }
}
