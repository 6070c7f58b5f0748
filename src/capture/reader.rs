//! Reading a capture file (or any `Read`) record by record with bounded memory: the thin IO
//! adapter over the sans-IO [`CaptureParser`]. With [`CaptureReader::next_following`] it reads a
//! file that is still being written: at the end of the file it waits (the caller's `wait` decides
//! how long and whether to go on) and reads again, and a partially written last record is not an
//! error, only something to wait for.

use std::io::{ErrorKind, Read};

use bytes::BytesMut;

use super::error::ReadError;
use super::parser::{CaptureParser, Record};

/// How much is read from the file per call: 64 KiB.
pub const READ_CHUNK: usize = 64 * 1024;

/// A capture read from `R`. Holds at most one record ([`MAX_BLOCK`](super::parser::MAX_BLOCK))
/// plus one read chunk in memory.
#[derive(Debug)]
pub struct CaptureReader<R> {
    input: R,
    parser: CaptureParser,
    buf: BytesMut,
    eof: bool,
}

impl<R: Read> CaptureReader<R> {
    /// A reader of `input` from its start.
    pub fn new(input: R) -> Self {
        Self::with_prefix(input, &[])
    }

    /// A reader of a file whose first bytes (`prefix`) were already read from `input`, e.g.
    /// to sniff its magic number.
    pub fn with_prefix(input: R, prefix: &[u8]) -> Self {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        buf.extend_from_slice(prefix);
        Self {
            input,
            parser: CaptureParser::new(),
            buf,
            eof: false,
        }
    }

    /// The parser (format, records seen, offset).
    pub fn parser(&self) -> &CaptureParser {
        &self.parser
    }

    /// Reads one chunk; false at end of file.
    fn fill(&mut self) -> Result<bool, std::io::Error> {
        let start = self.buf.len();
        self.buf.resize(start + READ_CHUNK, 0);
        loop {
            match self.input.read(&mut self.buf[start..]) {
                Ok(n) => {
                    self.buf.truncate(start + n);
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(start);
                    return Err(e);
                }
            }
        }
    }

    /// The next record or error; `None` at the end of the file (after reporting a partial last
    /// record as [`CaptureError::Truncated`](super::CaptureError::Truncated)).
    pub fn next_record(&mut self) -> Option<Result<Record, ReadError>> {
        loop {
            if let Some(item) = self.parser.next(&mut self.buf) {
                return Some(item.map_err(ReadError::from));
            }
            if self.eof {
                return self
                    .parser
                    .finish(&mut self.buf)
                    .map(|r| r.map_err(Into::into));
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) => self.eof = true,
                Err(e) => return Some(Err(e.into())),
            }
        }
    }

    /// The next record or error of a file that may still grow. At the end of the file it calls
    /// `wait` (which sleeps for a poll interval, or waits for some other sign of new data) and
    /// reads again while `wait` returns true. Returns `None` once `wait` returns false, without
    /// reporting a partial last record (it is the one being written), or after a fatal error.
    pub fn next_following(
        &mut self,
        wait: &mut dyn FnMut() -> bool,
    ) -> Option<Result<Record, ReadError>> {
        loop {
            if let Some(item) = self.parser.next(&mut self.buf) {
                return Some(item.map_err(ReadError::from));
            }
            if self.parser.is_failed() {
                return None;
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) => {
                    if !wait() {
                        return None;
                    }
                }
                Err(e) => return Some(Err(e.into())),
            }
        }
    }
}
