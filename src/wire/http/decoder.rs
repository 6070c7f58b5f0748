//! The incremental HTTP/1.x decoder: heads by `httparse`, bodies by length, chunks or EOF.
//!
//! Every decision depends only on the bytes, never on how they were split into reads: the head
//! is parsed once its blank line is buffered (the start line is also checked as soon as it is
//! complete, so a bad stream is named early), limits are checked against positions in the
//! stream, and error previews are cut at content-defined points. After any error the stream
//! cannot be resynchronised (HTTP has no delimiter to scan for): the decoder reports the error
//! once and discards the rest of the stream.

use bytes::{Buf, Bytes, BytesMut};

use super::{DEFAULT_MAX_BODY, DEFAULT_MAX_HEAD, DEFAULT_MAX_HEADERS, HttpMessage};
use crate::wire::codec::{Decoded, Decoder, Frame};
use crate::wire::error::WireError;
use crate::wire::hex::{HexPreview, PREVIEW_BYTES};
use crate::wire::{hybrid, sniff};

use super::framing::{BodyError, Chunk, Framing, MAX_CHUNK_LINE, body_framing, parse_chunk_size};

/// How many bytes decide whether a stream is HTTP at all.
const SNIFF_LEN: usize = 4;

/// Which messages a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpKind {
    /// Requests (the to-guest / to-server stream).
    Request,
    /// Responses (the to-host / to-client stream).
    Response,
    /// Decided by the stream's first bytes: `HTTP/` means responses, anything else requests.
    Auto,
}

/// Size limits, all checked before anything of the claimed size is buffered or reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest head (start line, headers and the blank line), in bytes.
    pub max_head: usize,
    /// Most headers in one head.
    pub max_headers: usize,
    /// Largest body, in bytes (after de-chunking).
    pub max_body: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_head: DEFAULT_MAX_HEAD,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

/// A message whose head is parsed and whose body is still arriving.
#[derive(Debug, Clone)]
struct Pending {
    start: u64,
    message: HttpMessage,
    body: BytesMut,
    framing: Framing,
}

#[derive(Debug, Clone)]
enum State {
    /// At a message boundary, looking for a head.
    Head {
        /// Where to resume scanning for the end of the head.
        scan: usize,
        /// Whether the start line was already checked.
        line_checked: bool,
    },
    /// Reading a body.
    Body(Box<Pending>),
    /// After an error: everything is discarded.
    Failed,
}

const HEAD_START: State = State::Head {
    scan: 0,
    line_checked: false,
};

/// Decoder for HTTP/1.x messages, pipelined back to back on one stream.
///
/// Bodies are delimited by `Content-Length`, by `Transfer-Encoding: chunked` (de-chunked as they
/// arrive, each chunk size checked against the limit first, trailers skipped) or, for responses
/// without either, by the end of the stream (yielded by [`decode_eof`](Decoder::decode_eof)).
/// Requests without a length have no body; 1xx, 204 and 304 responses never do. A stream whose
/// first bytes cannot start an HTTP message is reported as [`WireError::FramingMismatch`] naming
/// what it looks like. After any error the decoder yields nothing more and discards the rest of
/// the stream: HTTP has nothing to resynchronise on.
#[derive(Debug, Clone)]
pub struct HttpDecoder {
    kind: HttpKind,
    /// The kind in effect (`Auto` until decided).
    resolved: HttpKind,
    limits: HttpLimits,
    offset: u64,
    state: State,
}

/// A step of the decoding loop.
enum Step {
    /// Yield this.
    Yield(Decoded<HttpMessage>),
    /// Need more bytes.
    Wait,
    /// State changed; go round again.
    Again,
}

impl HttpDecoder {
    /// A decoder for `kind` messages with the default limits.
    pub fn new(kind: HttpKind) -> Self {
        Self::with_limits(kind, HttpLimits::default())
    }

    /// A decoder for `kind` messages with the given limits.
    pub fn with_limits(kind: HttpKind, limits: HttpLimits) -> Self {
        Self {
            kind,
            resolved: kind,
            limits,
            offset: 0,
            state: HEAD_START,
        }
    }

    /// The kind the decoder was made for.
    pub fn kind(&self) -> HttpKind {
        self.kind
    }

    /// Requests or responses, once decided (`Auto` before the first bytes).
    pub fn resolved_kind(&self) -> HttpKind {
        self.resolved
    }

    /// Whether the decoder gave up on the stream after an error.
    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed)
    }

    fn fail(&mut self, err: WireError) -> Step {
        self.state = State::Failed;
        Step::Yield(Err(err))
    }

    fn consume(&mut self, buf: &mut BytesMut, n: usize) {
        buf.advance(n);
        self.offset += n as u64;
    }

    fn run(&mut self, buf: &mut BytesMut, eof: bool) -> Option<Decoded<HttpMessage>> {
        loop {
            let step = match &mut self.state {
                State::Failed => {
                    self.offset += buf.len() as u64;
                    buf.clear();
                    return None;
                }
                State::Head { .. } => self.head(buf, eof),
                State::Body(_) => self.body(buf, eof),
            };
            match step {
                Step::Yield(item) => return Some(item),
                Step::Wait => return None,
                Step::Again => {}
            }
        }
    }

    /// Looks for, and parses, the next head.
    fn head(&mut self, buf: &mut BytesMut, eof: bool) -> Step {
        // Empty lines between messages are skipped (RFC 9112 §2.2).
        let mut skip = 0;
        loop {
            match (buf.get(skip), buf.get(skip + 1)) {
                (Some(b'\n'), _) => skip += 1,
                (Some(b'\r'), Some(b'\n')) => skip += 2,
                _ => break,
            }
        }
        if skip > 0 {
            self.consume(buf, skip);
            self.state = HEAD_START;
        }
        if buf.is_empty() || (buf.len() < SNIFF_LEN && !eof) {
            return Step::Wait;
        }
        let start = &buf[..buf.len().min(SNIFF_LEN)];
        // A method token (or `HTTP/`) up to the first space; the target after it is httparse's.
        let word = start.split(|&b| b == b' ').next().unwrap_or_default();
        if !word
            .iter()
            .all(|&b| is_tchar(b) || matches!(b, b'/' | b'\r' | b'\n'))
        {
            return self.fail(WireError::FramingMismatch {
                offset: self.offset,
                expected: "http",
                found: describe_non_http(start),
                bytes: HexPreview::of(start),
            });
        }
        if self.resolved == HttpKind::Auto {
            if buf.starts_with(b"HTTP/") {
                self.resolved = HttpKind::Response;
            } else if eof || buf.len() >= 5 || !b"HTTP/".starts_with(&buf[..]) {
                self.resolved = HttpKind::Request;
            } else {
                return Step::Wait;
            }
        }
        let State::Head {
            mut scan,
            mut line_checked,
        } = self.state
        else {
            return Step::Wait;
        };
        let window = buf.len().min(self.limits.max_head);
        let mut end = None;
        loop {
            let Some(p) = memchr::memchr(b'\n', buf.get(scan..window).unwrap_or_default()) else {
                scan = window;
                break;
            };
            let nl = scan + p;
            if !line_checked {
                line_checked = true;
                if let Some(err) = check_start_line(&buf[..=nl], self.resolved, self.offset) {
                    return self.fail(err);
                }
            }
            let next = |k: usize| buf.get(nl + k).filter(|_| nl + k < window).copied();
            match (next(1), next(2)) {
                (Some(b'\n'), _) => end = Some(nl + 2),
                (Some(b'\r'), Some(b'\n')) => end = Some(nl + 3),
                // Whether this newline ends the head is decided by bytes not here yet.
                (None, _) | (Some(b'\r'), None) => scan = nl,
                _ => {
                    scan = nl + 1;
                    continue;
                }
            }
            break;
        }
        if let Some(end) = end {
            return self.parse_head(buf, end);
        }
        if buf.len() >= self.limits.max_head {
            return self.fail(WireError::Oversize {
                offset: self.offset,
                len: self.limits.max_head as u64 + 1,
                max: self.limits.max_head as u64,
                hint: " (no end of the HTTP head within the limit)".into(),
                bytes: HexPreview::of(&buf[..self.limits.max_head]),
            });
        }
        self.state = State::Head { scan, line_checked };
        Step::Wait
    }

    /// Parses the head `buf[..end]` and sets up its body.
    fn parse_head(&mut self, buf: &mut BytesMut, end: usize) -> Step {
        let head = &buf[..end];
        let mut headers = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let malformed = |reason: String| WireError::Malformed {
            offset: self.offset,
            format: "http",
            reason,
            bytes: HexPreview::of(head),
        };
        let parsed = if self.resolved == HttpKind::Response {
            let mut r = httparse::Response::new(&mut headers);
            match r.parse(head) {
                Ok(httparse::Status::Complete(n)) => Ok((
                    n,
                    HttpMessage::Response {
                        status: r.code.unwrap_or_default(),
                        reason: r.reason.unwrap_or_default().to_string(),
                        version: r.version.unwrap_or(1),
                        headers: owned_headers(r.headers),
                        body: Bytes::new(),
                    },
                )),
                Ok(httparse::Status::Partial) => Err(None),
                Err(e) => Err(Some(e)),
            }
        } else {
            let mut r = httparse::Request::new(&mut headers);
            match r.parse(head) {
                Ok(httparse::Status::Complete(n)) => Ok((
                    n,
                    HttpMessage::Request {
                        method: r.method.unwrap_or_default().to_string(),
                        path: r.path.unwrap_or_default().to_string(),
                        version: r.version.unwrap_or(1),
                        headers: owned_headers(r.headers),
                        body: Bytes::new(),
                    },
                )),
                Ok(httparse::Status::Partial) => Err(None),
                Err(e) => Err(Some(e)),
            }
        };
        let (n, message) = match parsed {
            Ok(ok) => ok,
            Err(Some(httparse::Error::TooManyHeaders)) => {
                let max = self.limits.max_headers;
                return self.fail(malformed(format!("more than {max} headers")));
            }
            Err(Some(e)) => return self.fail(malformed(e.to_string())),
            Err(None) => {
                return self.fail(malformed("the head ends before the parser expects".into()));
            }
        };
        let framing = match body_framing(&message, self.limits.max_body) {
            Ok(f) => f,
            Err(BodyError::Malformed(reason)) => return self.fail(malformed(reason)),
            Err(BodyError::Oversize(len)) => {
                return self.fail(WireError::Oversize {
                    offset: self.offset,
                    len,
                    max: self.limits.max_body,
                    hint: " (Content-Length of the HTTP body)".into(),
                    bytes: HexPreview::of(head),
                });
            }
        };
        let start = self.offset;
        self.consume(buf, n);
        self.state = State::Body(Box::new(Pending {
            start,
            message,
            body: BytesMut::new(),
            framing,
        }));
        Step::Again
    }

    /// Reads the pending message's body.
    fn body(&mut self, buf: &mut BytesMut, eof: bool) -> Step {
        let State::Body(p) = &mut self.state else {
            return Step::Wait;
        };
        match p.framing {
            Framing::Length(len) => {
                if buf.len() < len {
                    return Step::Wait;
                }
                let body = buf.split_to(len).freeze();
                self.offset += len as u64;
                self.finish(body)
            }
            Framing::UntilEof => {
                let total = p.body.len() as u64 + buf.len() as u64;
                if total > self.limits.max_body {
                    // The body's first bytes, wherever they are buffered.
                    let mut first = p.body[..p.body.len().min(PREVIEW_BYTES)].to_vec();
                    let more = PREVIEW_BYTES - first.len();
                    first.extend_from_slice(&buf[..buf.len().min(more)]);
                    let err = WireError::Oversize {
                        offset: p.start,
                        len: self.limits.max_body + 1,
                        max: self.limits.max_body,
                        hint: " (a response body delimited by the end of the stream)".into(),
                        bytes: HexPreview::of(&first),
                    };
                    return self.fail(err);
                }
                p.body.extend_from_slice(buf);
                self.offset += buf.len() as u64;
                buf.clear();
                if eof {
                    let body = std::mem::take(&mut p.body).freeze();
                    return self.finish(body);
                }
                Step::Wait
            }
            Framing::Chunked(chunk) => self.chunked(buf, chunk),
        }
    }

    /// One step of a chunked body.
    fn chunked(&mut self, buf: &mut BytesMut, chunk: Chunk) -> Step {
        let max_body = self.limits.max_body;
        let max_trailers = self.limits.max_head;
        let offset = self.offset;
        let State::Body(p) = &mut self.state else {
            return Step::Wait;
        };
        let malformed = |reason: &str, bytes: &[u8]| WireError::Malformed {
            offset,
            format: "http",
            reason: reason.to_string(),
            bytes: HexPreview::of(bytes),
        };
        let next = match chunk {
            Chunk::Size => {
                let window = &buf[..buf.len().min(MAX_CHUNK_LINE)];
                let Some(nl) = memchr::memchr(b'\n', window) else {
                    if window.len() >= MAX_CHUNK_LINE {
                        let err = malformed("chunk-size line too long", window);
                        return self.fail(err);
                    }
                    return Step::Wait;
                };
                let line = &buf[..=nl];
                let size = match parse_chunk_size(line) {
                    Ok(size) => size,
                    Err(why) => {
                        let err = malformed(why, line);
                        return self.fail(err);
                    }
                };
                let total = (p.body.len() as u64).saturating_add(size);
                if total > max_body {
                    let err = WireError::Oversize {
                        offset,
                        len: total,
                        max: max_body,
                        hint: " (a chunked HTTP body)".into(),
                        bytes: HexPreview::of(line),
                    };
                    return self.fail(err);
                }
                buf.advance(nl + 1);
                self.offset += nl as u64 + 1;
                if size == 0 {
                    Chunk::Trailers(0)
                } else {
                    Chunk::Data(size)
                }
            }
            Chunk::Data(remaining) => {
                if buf.is_empty() {
                    return Step::Wait;
                }
                let n = buf
                    .len()
                    .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                p.body.extend_from_slice(&buf[..n]);
                buf.advance(n);
                self.offset += n as u64;
                let left = remaining - n as u64;
                if left == 0 {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left)
                }
            }
            Chunk::DataEnd => match (buf.first(), buf.get(1)) {
                (None, _) | (Some(b'\r'), None) => return Step::Wait,
                (Some(b'\n'), _) => {
                    buf.advance(1);
                    self.offset += 1;
                    Chunk::Size
                }
                (Some(b'\r'), Some(b'\n')) => {
                    buf.advance(2);
                    self.offset += 2;
                    Chunk::Size
                }
                (Some(&first), _) => {
                    // Show exactly the bytes that decided: one, or two after a `\r`. Showing
                    // whatever happens to be buffered would make the report depend on the split.
                    let decided = if first == b'\r' { 2 } else { 1 };
                    let err = malformed("chunk data is not followed by CRLF", &buf[..decided]);
                    return self.fail(err);
                }
            },
            Chunk::Trailers(seen) => {
                let room = max_trailers.saturating_sub(seen);
                let window = &buf[..buf.len().min(room)];
                let Some(nl) = memchr::memchr(b'\n', window) else {
                    if window.len() >= room {
                        let err = malformed("trailer section too long", window);
                        return self.fail(err);
                    }
                    return Step::Wait;
                };
                let blank = nl == 0 || (nl == 1 && buf[0] == b'\r');
                buf.advance(nl + 1);
                self.offset += nl as u64 + 1;
                if blank {
                    let body = std::mem::take(&mut p.body).freeze();
                    return self.finish(body);
                }
                Chunk::Trailers(seen + nl + 1)
            }
        };
        if let State::Body(p) = &mut self.state {
            p.framing = Framing::Chunked(next);
        }
        Step::Again
    }

    /// Yields the pending message with `body` and goes back to looking for a head.
    fn finish(&mut self, body: Bytes) -> Step {
        let state = std::mem::replace(&mut self.state, HEAD_START);
        let State::Body(p) = state else {
            return Step::Again;
        };
        let Pending {
            start, mut message, ..
        } = *p;
        match &mut message {
            HttpMessage::Request { body: b, .. } | HttpMessage::Response { body: b, .. } => {
                *b = body
            }
        }
        Step::Yield(Ok(Frame {
            offset: start,
            wire_len: self.offset - start,
            message,
        }))
    }
}

impl Decoder for HttpDecoder {
    type Message = HttpMessage;

    fn decode(&mut self, buf: &mut BytesMut) -> Option<Decoded<HttpMessage>> {
        self.run(buf, false)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Decoded<HttpMessage>> {
        if let Some(item) = self.run(buf, true) {
            return Some(item);
        }
        let err = match &self.state {
            State::Failed => return None,
            State::Head { .. } if buf.is_empty() => return None,
            State::Head { .. } => WireError::Truncated {
                offset: self.offset,
                expected: 0,
                available: buf.len() as u64,
                bytes: HexPreview::of(buf),
            },
            State::Body(p) => {
                let so_far = self.offset - p.start;
                let expected = match p.framing {
                    Framing::Length(len) => so_far + len as u64,
                    _ => 0,
                };
                WireError::Truncated {
                    offset: p.start,
                    expected,
                    available: so_far + buf.len() as u64,
                    bytes: HexPreview::of(buf),
                }
            }
        };
        self.state = State::Failed;
        self.offset += buf.len() as u64;
        buf.clear();
        Some(Err(err))
    }

    fn offset(&self) -> u64 {
        self.offset
    }
}

/// RFC 9110 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Names what a stream that is not HTTP looks like, from its first bytes.
fn describe_non_http(start: &[u8]) -> String {
    if start.starts_with(b"QTX\x01") {
        return "quantix framing (the QTX1 magic)".into();
    }
    if sniff::looks_like_json(start) || start.first() == Some(&b'{') {
        return "bare JSON (e.g. qga)".into();
    }
    if start.first() == Some(&0xff) {
        return "a qga sync delimiter (0xFF)".into();
    }
    if let [a, b, c, d] = start {
        let len = u32::from_be_bytes([*a, *b, *c, *d]);
        if *a == 0 && len > 0 {
            return format!(
                "a 4-byte big-endian length prefix ({len} bytes), as fcexec or quantix-legacy send"
            );
        }
    }
    if sniff::looks_like_text(start) {
        return "text that is not HTTP".into();
    }
    "binary data".into()
}

/// Checks a complete start line early, so that a stream that is not HTTP is named at once.
fn check_start_line(line: &[u8], kind: HttpKind, offset: u64) -> Option<WireError> {
    let ok_line = hybrid::parse_ok_line(line).is_ok();
    if ok_line || hybrid::parse_connect_line(line).is_ok() {
        let what = if ok_line {
            "a hybrid-vsock OK reply that was not stripped"
        } else {
            "a hybrid-vsock CONNECT line that was not stripped"
        };
        return Some(WireError::FramingMismatch {
            offset,
            expected: "http",
            found: what.into(),
            bytes: HexPreview::of(line),
        });
    }
    let mut headers = [httparse::EMPTY_HEADER; 0];
    let result = if kind == HttpKind::Response {
        httparse::Response::new(&mut headers)
            .parse(line)
            .map(|_| ())
    } else {
        httparse::Request::new(&mut headers).parse(line).map(|_| ())
    };
    match result {
        Ok(()) | Err(httparse::Error::TooManyHeaders) => None,
        Err(e) => Some(WireError::Malformed {
            offset,
            format: "http",
            reason: format!("bad start line: {e}"),
            bytes: HexPreview::of(line),
        }),
    }
}

fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}
