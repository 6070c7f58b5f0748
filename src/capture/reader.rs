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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::capture::error::CaptureError;
    use crate::capture::writer::{CaptureFormat, Event, RecordEncoder};
    use crate::capture::{Flow, Side};
    use crate::wire::Direction;

    /// A file another writer appends to: reads return what has been appended so far.
    struct Growing {
        data: Arc<Mutex<Vec<u8>>>,
        pos: usize,
    }

    impl Read for Growing {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let data = self.data.lock().expect("lock");
            let n = out.len().min(data.len() - self.pos);
            out[..n].copy_from_slice(&data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn capture(payloads: usize) -> Vec<u8> {
        let mut enc = RecordEncoder::new(CaptureFormat::Pcap);
        let mut out = Vec::new();
        enc.file_header(&mut out).expect("header");
        let f = Flow::serial(1, 3);
        enc.event(&mut out, 1, &f, Event::Connect { by: Side::Host })
            .expect("e");
        for i in 0..payloads {
            let data = vec![i as u8; 100 + i];
            let e = Event::Payload {
                direction: Direction::ToGuest,
                data: &data,
            };
            enc.event(&mut out, 2 + i as u64, &f, e).expect("e");
        }
        out
    }

    #[test]
    fn following_waits_out_partial_records_without_errors() {
        let whole = capture(5);
        let data = Arc::new(Mutex::new(Vec::new()));
        let mut reader = CaptureReader::new(Growing {
            data: data.clone(),
            pos: 0,
        });
        // The file grows 37 bytes per wait: every record is met half written at least once.
        let mut pieces = whole.chunks(37).map(<[u8]>::to_vec).collect::<Vec<_>>();
        pieces.reverse();
        let mut waits = 0;
        let mut wait = || {
            waits += 1;
            match pieces.pop() {
                Some(p) => {
                    data.lock().expect("lock").extend(p);
                    true
                }
                None => false,
            }
        };
        let mut got = Vec::new();
        while let Some(item) = reader.next_following(&mut wait) {
            got.push(item.expect("no error while following"));
        }
        assert_eq!(got.len(), 6);
        assert_eq!(got[5].vsock.payload.len(), 104);
        assert!(waits > whole.len() / 37, "{waits}");
        // Stopped with half a record written: not an error either.
        let mut cut = capture(2);
        cut.truncate(cut.len() - 10);
        let mut reader = CaptureReader::new(&cut[..]);
        let mut n = 0;
        while let Some(item) = reader.next_following(&mut || false) {
            item.expect("no error");
            n += 1;
        }
        assert_eq!(n, 2);
        // Read to the end without following, the same file ends in a truncated record.
        let mut reader = CaptureReader::new(&cut[..]);
        let mut last = None;
        while let Some(item) = reader.next_record() {
            last = Some(item);
        }
        assert!(matches!(
            last,
            Some(Err(ReadError::Capture(CaptureError::Truncated { .. })))
        ));
    }

    #[test]
    fn memory_is_bounded_by_a_record_and_a_chunk() {
        let whole = capture(300);
        let mut reader = CaptureReader::new(&whole[..]);
        while let Some(item) = reader.next_record() {
            item.expect("record");
            assert!(reader.buf.capacity() <= 2 * READ_CHUNK + 1024);
        }
        assert_eq!(reader.parser().records(), 301);
    }
}
