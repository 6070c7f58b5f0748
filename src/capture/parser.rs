//! A sans-IO reader of pcap (microsecond and nanosecond magic, either byte order) and pcapng
//! files of LINKTYPE_VSOCK records, in the shape of the wire codecs: the caller appends file bytes
//! to a `BytesMut` and calls [`CaptureParser::next`] until it returns `None` (need more bytes);
//! at the end of the file [`CaptureParser::finish`] reports a partial last record.
//!
//! Written by hand rather than with pcap-file's readers because a capture reader here must
//! (a) resume after a partial record when the file is still being written (`--follow`), (b) never
//! reserve what a hostile length claims (a record is at most [`MAX_RECORD`] bytes, checked before
//! anything is buffered), (c) honour pcapng's `if_tsresol` and `if_tsoffset` (pcap-file 2.0
//! reads every Enhanced Packet Block timestamp as nanoseconds), and (d) report bad input as a
//! typed [`CaptureError`] with the file offset and the bytes. Every record's link-layer bytes are
//! split by [`vsockmon::parse`] without copying the payload.

use bytes::{Buf, Bytes, BytesMut};

use super::error::CaptureError;
use super::vsockmon::{self, Parsed};
use crate::wire::hex::HexPreview;
use pcapng::PCAPNG_SHB;

/// pcap's link type for `af_vsockmon_hdr` records.
pub const LINKTYPE_VSOCK: u32 = 271;

/// Length of the pcap file header.
pub const PCAP_HEADER_LEN: usize = 24;

/// Length of a pcap record header.
pub const PCAP_RECORD_HEADER_LEN: usize = 16;

/// The largest record accepted: 262144 bytes, tcpdump's and Wireshark's maximum snaplen.
pub const MAX_RECORD: u32 = 262_144;

/// The largest pcapng block accepted: a maximal record plus 64 KiB of options.
pub const MAX_BLOCK: u32 = MAX_RECORD + 65_536;

/// The most pcapng interfaces a section may describe.
pub const MAX_INTERFACES: usize = 1024;

const MAGIC_US: u32 = 0xa1b2_c3d4;
const MAGIC_NS: u32 = 0xa1b2_3c4d;

/// The file formats this reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Classic pcap.
    Pcap {
        /// Nanosecond timestamps (magic 0xa1b23c4d) rather than microseconds.
        nanos: bool,
        /// Big-endian fields.
        big_endian: bool,
    },
    /// pcapng.
    PcapNg,
}

/// The format a file starting with `prefix` has, if its magic number says (4 bytes needed).
pub fn sniff_format(prefix: &[u8]) -> Option<FileFormat> {
    let magic: [u8; 4] = prefix.get(..4)?.try_into().ok()?;
    let be = u32::from_be_bytes(magic);
    let le = u32::from_le_bytes(magic);
    let pcap = |nanos, big_endian| Some(FileFormat::Pcap { nanos, big_endian });
    match (be, le) {
        (MAGIC_US, _) => pcap(false, true),
        (MAGIC_NS, _) => pcap(true, true),
        (_, MAGIC_US) => pcap(false, false),
        (_, MAGIC_NS) => pcap(true, false),
        (PCAPNG_SHB, _) => Some(FileFormat::PcapNg),
        _ => None,
    }
}

/// One LINKTYPE_VSOCK record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Packet number, from 1, as tshark's `frame.number` counts (bad records count too).
    pub index: u64,
    /// File offset of the record (its pcap record header or pcapng block).
    pub offset: u64,
    /// Capture time, nanoseconds since 1970.
    pub time_ns: u64,
    /// The record's length when it was captured; more than its bytes when the snaplen cut it.
    pub orig_len: u32,
    /// The record's bytes, split.
    pub vsock: Parsed,
    /// How many bytes the snaplen cut off the payload (0 for a whole record).
    pub snapped: u32,
}

#[derive(Debug, Clone, Copy)]
struct Iface {
    vsock: bool,
    /// `if_tsresol`: bit 7 clear, 10^-n seconds; set, 2^-n.
    tsresol: u8,
    /// `if_tsoffset`, seconds.
    tsoffset: i64,
}

#[derive(Debug)]
enum State {
    Start,
    Pcap { big: bool, nanos: bool },
    PcapNg { big: bool, ifaces: Vec<Iface> },
    Failed,
}

/// What one step did.
enum Step {
    /// Consumed something that is not a record (a header, a block to skip): go on.
    Again,
    /// A record or an error.
    Yield(Result<Record, CaptureError>),
}

/// The sans-IO capture reader.
#[derive(Debug)]
pub struct CaptureParser {
    state: State,
    offset: u64,
    index: u64,
    /// Bytes the item at the front of the buffer needs, when more are needed.
    need: u64,
    last_time: u64,
    format: Option<FileFormat>,
}

impl Default for CaptureParser {
    fn default() -> Self {
        Self::new()
    }
}

fn u16_at(b: &[u8], at: usize, big: bool) -> u16 {
    let x = [b[at], b[at + 1]];
    if big {
        u16::from_be_bytes(x)
    } else {
        u16::from_le_bytes(x)
    }
}

fn u32_at(b: &[u8], at: usize, big: bool) -> u32 {
    let x = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if big {
        u32::from_be_bytes(x)
    } else {
        u32::from_le_bytes(x)
    }
}

impl CaptureParser {
    /// A parser at the start of a file.
    pub fn new() -> Self {
        Self {
            state: State::Start,
            offset: 0,
            index: 0,
            need: 4,
            last_time: 0,
            format: None,
        }
    }

    /// The file's format, once its first bytes have been read.
    pub fn format(&self) -> Option<FileFormat> {
        self.format
    }

    /// Bytes of the file consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Packets seen so far (the last record's [`Record::index`]).
    pub fn records(&self) -> u64 {
        self.index
    }

    /// Whether a fatal error ended reading.
    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed)
    }

    /// The next record or error from `buf`, or `None` when more bytes are needed.
    pub fn next(&mut self, buf: &mut BytesMut) -> Option<Result<Record, CaptureError>> {
        loop {
            let step = match self.state {
                State::Failed => {
                    self.offset += buf.len() as u64;
                    buf.clear();
                    return None;
                }
                State::Start => self.start(buf),
                State::Pcap { big, nanos } => self.pcap_record(buf, big, nanos),
                State::PcapNg { .. } => self.pcapng_block(buf),
            };
            match step? {
                Step::Again => continue,
                Step::Yield(item) => return Some(item),
            }
        }
    }

    /// At the end of the file: what remains, then a [`CaptureError::Truncated`] for a partial
    /// record, then `None`.
    pub fn finish(&mut self, buf: &mut BytesMut) -> Option<Result<Record, CaptureError>> {
        if let Some(item) = self.next(buf) {
            return Some(item);
        }
        if buf.is_empty() || self.is_failed() {
            return None;
        }
        let err = CaptureError::Truncated {
            offset: self.offset,
            expected: self.need,
            available: buf.len() as u64,
            bytes: HexPreview::of(buf),
        };
        self.state = State::Failed;
        self.offset += buf.len() as u64;
        buf.clear();
        Some(Err(err))
    }

    /// Bytes still needed: records the front item's size and says "wait".
    fn wait(&mut self, need: usize) -> Option<Step> {
        self.need = need as u64;
        None
    }

    fn fail(&mut self, err: CaptureError) -> Option<Step> {
        self.state = State::Failed;
        Some(Step::Yield(Err(err)))
    }

    fn start(&mut self, buf: &mut BytesMut) -> Option<Step> {
        if buf.len() < 4 {
            return self.wait(4);
        }
        match sniff_format(buf) {
            None => self.fail(CaptureError::NotACapture {
                bytes: HexPreview::of(&buf[..buf.len().min(PCAP_HEADER_LEN)]),
            }),
            Some(FileFormat::PcapNg) => {
                self.format = Some(FileFormat::PcapNg);
                self.state = State::PcapNg {
                    big: false,
                    ifaces: Vec::new(),
                };
                Some(Step::Again)
            }
            Some(f @ FileFormat::Pcap { nanos, big_endian }) => {
                if buf.len() < PCAP_HEADER_LEN {
                    return self.wait(PCAP_HEADER_LEN);
                }
                self.format = Some(f);
                let linktype = u32_at(buf, 20, big_endian);
                let head = HexPreview::of(&buf[..PCAP_HEADER_LEN]);
                buf.advance(PCAP_HEADER_LEN);
                let offset = self.offset;
                self.offset += PCAP_HEADER_LEN as u64;
                if linktype != LINKTYPE_VSOCK {
                    return self.fail(CaptureError::LinkType {
                        offset,
                        interface: None,
                        linktype,
                        bytes: head,
                    });
                }
                self.state = State::Pcap {
                    big: big_endian,
                    nanos,
                };
                Some(Step::Again)
            }
        }
    }

    fn pcap_record(&mut self, buf: &mut BytesMut, big: bool, nanos: bool) -> Option<Step> {
        const H: usize = PCAP_RECORD_HEADER_LEN;
        if buf.len() < H {
            return self.wait(H);
        }
        let incl = u32_at(buf, 8, big);
        if incl > MAX_RECORD {
            return self.fail(CaptureError::Oversize {
                offset: self.offset,
                len: u64::from(incl),
                max: u64::from(MAX_RECORD),
                bytes: HexPreview::of(&buf[..H]),
            });
        }
        let total = H + incl as usize;
        if buf.len() < total {
            return self.wait(total);
        }
        let sec = u64::from(u32_at(buf, 0, big));
        let frac = u64::from(u32_at(buf, 4, big));
        let orig = u32_at(buf, 12, big).max(incl);
        let offset = self.offset;
        self.index += 1;
        self.offset += total as u64;
        let limit = if nanos { 1_000_000_000 } else { 1_000_000 };
        if frac >= limit {
            let bytes = HexPreview::of(&buf[..H]);
            buf.advance(total);
            return Some(Step::Yield(Err(CaptureError::BadRecord {
                offset,
                reason: format!("fractional second {frac} is not below {limit}"),
                bytes,
            })));
        }
        let data = buf.split_to(total).freeze().slice(H..);
        let time_ns = sec * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        Some(Step::Yield(self.record(offset, time_ns, orig, data, H)))
    }

    fn record(
        &mut self,
        offset: u64,
        time_ns: u64,
        orig_len: u32,
        data: Bytes,
        data_at: usize,
    ) -> Result<Record, CaptureError> {
        self.last_time = time_ns;
        let snapped = orig_len.saturating_sub(data.len() as u32);
        let vsock = vsockmon::parse(&data, offset + data_at as u64)?;
        Ok(Record {
            index: self.index,
            offset,
            time_ns,
            orig_len,
            vsock,
            snapped,
        })
    }
}

#[path = "parser_pcapng.rs"]
mod pcapng;

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
