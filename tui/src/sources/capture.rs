//! A capture file played back at the store's clock: records are read and decoded with
//! [`CaptureReader`] and [`Reassembler`], and an item is released once the clock has reached its
//! capture time (relative to the first record).

use std::collections::VecDeque;
use std::io::Read;

use guestwire::capture::{CaptureReader, ProtocolChoice, ReadError, Reassembler};

use super::{Source, SourceEvent};
use crate::store::RAW_KEEP;

/// Items decoded ahead of the clock at most (bounds memory when the clock lags).
const LOOKAHEAD: usize = 1024;

/// A capture file (or any reader of one) played back.
pub struct CaptureSource<R> {
    reader: CaptureReader<R>,
    reassembler: Reassembler,
    name: String,
    pending: VecDeque<guestwire::capture::CaptureItem>,
    start_ns: Option<u64>,
    read_done: bool,
    ended: bool,
}

impl<R: Read> CaptureSource<R> {
    /// Plays back the capture read from `input`, decoding with `choice`; `name` is shown.
    pub fn new(input: R, choice: ProtocolChoice, name: impl Into<String>) -> Self {
        Self {
            reader: CaptureReader::new(input),
            reassembler: Reassembler::new(choice, None).keep_raw(RAW_KEEP),
            name: name.into(),
            pending: VecDeque::new(),
            start_ns: None,
            read_done: false,
            ended: false,
        }
    }

    /// Reads records until an item is pending or the file ends; a read error ends it too.
    fn fill(&mut self, notices: &mut Vec<SourceEvent>) {
        while self.pending.len() < LOOKAHEAD && !self.read_done {
            match self.reader.next_record() {
                None => {
                    self.reassembler.finish();
                    self.read_done = true;
                }
                Some(Ok(record)) => {
                    self.start_ns.get_or_insert(record.time_ns);
                    self.reassembler.push(&record);
                }
                Some(Err(ReadError::Capture(e))) => self.reassembler.push_error(e),
                Some(Err(ReadError::Io(e))) => {
                    notices.push(SourceEvent::Notice(format!("{}: {e}", self.name)));
                    self.reassembler.finish();
                    self.read_done = true;
                }
            }
            while let Some(item) = self.reassembler.poll() {
                self.pending.push_back(item);
            }
            if !self.pending.is_empty() {
                break;
            }
        }
    }
}

impl<R: Read> Source for CaptureSource<R> {
    fn poll(&mut self, clock_ns: u64, max: usize, out: &mut Vec<SourceEvent>) -> bool {
        if self.ended {
            return false;
        }
        let mut n = 0;
        while n < max {
            if self.pending.is_empty() {
                self.fill(out);
            }
            let Some(front) = self.pending.front() else {
                if self.read_done {
                    out.push(SourceEvent::End);
                    self.ended = true;
                    return false;
                }
                break;
            };
            let start = self.start_ns.unwrap_or(front.time_ns);
            if front.time_ns.saturating_sub(start) > clock_ns {
                break;
            }
            if let Some(item) = self.pending.pop_front() {
                out.push(SourceEvent::Item(item));
                n += 1;
            }
        }
        true
    }

    fn label(&self) -> String {
        format!("capture {}", self.name)
    }
}
