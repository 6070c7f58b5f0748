//! How an HTTP/1.x body is delimited (RFC 9112 §6.3), and the pieces of a chunked body.

use super::{HttpMessage, status_has_no_body};

/// Longest chunk-size line (size, extensions, CRLF) accepted in a chunked body.
pub(super) const MAX_CHUNK_LINE: usize = 4096;

/// Where a chunked body is.
#[derive(Debug, Clone, Copy)]
pub(super) enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// Skipping trailer lines; how many trailer bytes so far.
    Trailers(usize),
}

/// How the body of the pending message ends.
#[derive(Debug, Clone, Copy)]
pub(super) enum Framing {
    /// `Content-Length` bytes.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked(Chunk),
    /// A response with no length: the end of the stream.
    UntilEof,
}

/// Why a head's body framing is unusable.
pub(super) enum BodyError {
    /// Invalid or conflicting length headers.
    Malformed(String),
    /// A `Content-Length` over the body limit.
    Oversize(u64),
}

/// How the body of a message with these headers is delimited (RFC 9112 §6.3).
pub(super) fn body_framing(message: &HttpMessage, max_body: u64) -> Result<Framing, BodyError> {
    if let HttpMessage::Response { status, .. } = message
        && status_has_no_body(*status)
    {
        return Ok(Framing::Length(0));
    }
    let is_request = matches!(message, HttpMessage::Request { .. });
    let mut length: Option<u64> = None;
    let mut te: Option<String> = None;
    for (name, value) in message.headers() {
        if name.eq_ignore_ascii_case("content-length") {
            for part in value.split(',') {
                let part = part.trim_matches([' ', '\t']);
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(BodyError::Malformed(format!(
                        "invalid Content-Length {value:?}"
                    )));
                }
                let n: u64 = part.parse().map_err(|_| {
                    BodyError::Malformed(format!("Content-Length {value:?} does not fit"))
                })?;
                if length.is_some_and(|l| l != n) {
                    return Err(BodyError::Malformed(
                        "conflicting Content-Length values".into(),
                    ));
                }
                length = Some(n);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            te = Some(value.clone());
        }
    }
    if let Some(te) = te {
        if length.is_some() {
            return Err(BodyError::Malformed(
                "both Transfer-Encoding and Content-Length (a request-smuggling shape)".into(),
            ));
        }
        let last = te.rsplit(',').next().unwrap_or_default().trim();
        if last.eq_ignore_ascii_case("chunked") {
            return Ok(Framing::Chunked(Chunk::Size));
        }
        if is_request {
            return Err(BodyError::Malformed(format!(
                "request Transfer-Encoding {te:?} does not end with chunked"
            )));
        }
        return Ok(Framing::UntilEof);
    }
    match length {
        Some(n) if n > max_body => Err(BodyError::Oversize(n)),
        Some(n) => Ok(Framing::Length(
            usize::try_from(n).map_err(|_| BodyError::Oversize(n))?,
        )),
        None if is_request => Ok(Framing::Length(0)),
        None => Ok(Framing::UntilEof),
    }
}

/// Parses a chunk-size line (`1a;ext=1\r\n`): hex digits, optional extensions.
pub(super) fn parse_chunk_size(line: &[u8]) -> Result<u64, &'static str> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let size = line.split(|&b| b == b';').next().unwrap_or_default();
    let size = size
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(&size[..0], |last| &size[..=last]);
    if size.is_empty() {
        return Err("empty chunk size");
    }
    let mut v: u64 = 0;
    for &b in size {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return Err("chunk size is not hexadecimal"),
        };
        v = v
            .checked_mul(16)
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or("chunk size does not fit in 64 bits")?;
    }
    Ok(v)
}
