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
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BOM: u32 = 0x1a2b_3c4d;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_PB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;

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

/// Converts a pcapng timestamp of `raw` units (`tsresol`) plus `tsoffset` seconds to
/// nanoseconds since 1970.
fn pcapng_time(raw: u64, tsresol: u8, tsoffset: i64) -> Option<u64> {
    let raw = u128::from(raw);
    let n = u32::from(tsresol & 0x7f);
    let ns: u128 = if tsresol & 0x80 == 0 {
        if n <= 9 {
            raw * 10u128.pow(9 - n)
        } else if n - 9 <= 38 {
            raw / 10u128.pow(n - 9)
        } else {
            0
        }
    } else {
        (raw * 1_000_000_000) >> n
    };
    let total = i128::try_from(ns).ok()? + i128::from(tsoffset) * 1_000_000_000;
    u64::try_from(total).ok()
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

    fn pcapng_block(&mut self, buf: &mut BytesMut) -> Option<Step> {
        if buf.len() < 12 {
            return self.wait(12);
        }
        let State::PcapNg { big, .. } = self.state else {
            return None;
        };
        let mut big = big;
        let is_shb = buf[..4] == PCAPNG_SHB.to_be_bytes();
        if is_shb {
            big = match u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) {
                PCAPNG_BOM => true,
                x if x.swap_bytes() == PCAPNG_BOM => false,
                _ => {
                    return self.fail(CaptureError::BadBlock {
                        offset: self.offset,
                        reason: "section header without the byte-order magic 1a2b3c4d".into(),
                        bytes: HexPreview::of(&buf[..12]),
                    });
                }
            };
        }
        let kind = u32_at(buf, 0, big);
        let total = u32_at(buf, 4, big);
        let bad = |reason: &str, buf: &BytesMut, offset| CaptureError::BadBlock {
            offset,
            reason: reason.into(),
            bytes: HexPreview::of(&buf[..12]),
        };
        if !total.is_multiple_of(4) || total < 12 {
            let err = bad(
                &format!("block length {total} is not a multiple of 4 of at least 12"),
                buf,
                self.offset,
            );
            return self.fail(err);
        }
        if total > MAX_BLOCK {
            return self.fail(CaptureError::Oversize {
                offset: self.offset,
                len: u64::from(total),
                max: u64::from(MAX_BLOCK),
                bytes: HexPreview::of(&buf[..12]),
            });
        }
        let total = total as usize;
        if buf.len() < total {
            return self.wait(total);
        }
        if u32_at(buf, total - 4, big) as usize != total {
            let err = bad(
                "the trailing length differs from the leading one",
                buf,
                self.offset,
            );
            return self.fail(err);
        }
        let offset = self.offset;
        self.offset += total as u64;
        let block = buf.split_to(total).freeze();
        let body = block.slice(8..total - 4);
        if let State::PcapNg { big: b, .. } = &mut self.state {
            *b = big;
        }
        match kind {
            PCAPNG_SHB => {
                if body.len() < 16 {
                    return self.fail(CaptureError::BadBlock {
                        offset,
                        reason: "section header shorter than 16 bytes".into(),
                        bytes: HexPreview::of(&block),
                    });
                }
                if let State::PcapNg { ifaces, .. } = &mut self.state {
                    ifaces.clear();
                }
                Some(Step::Again)
            }
            PCAPNG_IDB => Some(self.interface(offset, &block, &body, big)),
            PCAPNG_EPB | PCAPNG_PB => Some(self.packet(offset, kind, &block, &body, big)),
            PCAPNG_SPB => Some(self.simple_packet(offset, &block, &body, big)),
            _ => Some(Step::Again),
        }
    }

    fn interface(&mut self, offset: u64, block: &Bytes, body: &Bytes, big: bool) -> Step {
        let State::PcapNg { ifaces, .. } = &mut self.state else {
            return Step::Again;
        };
        let bad = |reason: &str| {
            Step::Yield(Err(CaptureError::BadRecord {
                offset,
                reason: reason.into(),
                bytes: HexPreview::of(block),
            }))
        };
        if ifaces.len() >= MAX_INTERFACES {
            return bad("more than 1024 interfaces in one section");
        }
        if body.len() < 8 {
            ifaces.push(Iface {
                vsock: false,
                tsresol: 6,
                tsoffset: 0,
            });
            return bad("interface description shorter than 8 bytes");
        }
        let linktype = u32::from(u16_at(body, 0, big));
        let mut iface = Iface {
            vsock: linktype == LINKTYPE_VSOCK,
            tsresol: 6,
            tsoffset: 0,
        };
        let mut at = 8;
        while at + 4 <= body.len() {
            let code = u16_at(body, at, big);
            let len = usize::from(u16_at(body, at + 2, big));
            let Some(value) = body.get(at + 4..at + 4 + len) else {
                break;
            };
            match (code, len) {
                (0, _) => break,
                (9, 1) => iface.tsresol = value[0],
                (14, 8) => {
                    let raw: [u8; 8] = [
                        value[0], value[1], value[2], value[3], value[4], value[5], value[6],
                        value[7],
                    ];
                    iface.tsoffset = if big {
                        i64::from_be_bytes(raw)
                    } else {
                        i64::from_le_bytes(raw)
                    };
                }
                _ => {}
            }
            at += 4 + len.div_ceil(4) * 4;
        }
        let number = ifaces.len() as u32;
        ifaces.push(iface);
        if iface.vsock {
            Step::Again
        } else {
            Step::Yield(Err(CaptureError::LinkType {
                offset,
                interface: Some(number),
                linktype,
                bytes: HexPreview::of(block),
            }))
        }
    }

    fn iface(&self, id: u32) -> Option<Iface> {
        match &self.state {
            State::PcapNg { ifaces, .. } => ifaces.get(id as usize).copied(),
            _ => None,
        }
    }

    fn packet(&mut self, offset: u64, kind: u32, block: &Bytes, body: &Bytes, big: bool) -> Step {
        self.index += 1;
        let bad = |reason: String| {
            Step::Yield(Err(CaptureError::BadRecord {
                offset,
                reason,
                bytes: HexPreview::of(block),
            }))
        };
        if body.len() < 20 {
            return bad("packet block shorter than 20 bytes".into());
        }
        let id = if kind == PCAPNG_EPB {
            u32_at(body, 0, big)
        } else {
            u32::from(u16_at(body, 0, big))
        };
        let raw_time = (u64::from(u32_at(body, 4, big)) << 32) | u64::from(u32_at(body, 8, big));
        let caplen = u32_at(body, 12, big);
        let orig = u32_at(body, 16, big).max(caplen);
        if caplen as usize > body.len() - 20 {
            return bad(format!(
                "captured length {caplen} exceeds the block's {} bytes of data",
                body.len() - 20
            ));
        }
        let Some(iface) = self.iface(id) else {
            return bad(format!("packet of interface {id}, which was not described"));
        };
        if !iface.vsock {
            return Step::Again;
        }
        let Some(time_ns) = pcapng_time(raw_time, iface.tsresol, iface.tsoffset) else {
            return bad(format!("timestamp {raw_time} is out of range"));
        };
        let data = body.slice(20..20 + caplen as usize);
        Step::Yield(self.record(offset, time_ns, orig, data, 28))
    }

    fn simple_packet(&mut self, offset: u64, block: &Bytes, body: &Bytes, big: bool) -> Step {
        self.index += 1;
        let bad = |reason: &str| {
            Step::Yield(Err(CaptureError::BadRecord {
                offset,
                reason: reason.into(),
                bytes: HexPreview::of(block),
            }))
        };
        if body.len() < 4 {
            return bad("simple packet block shorter than 4 bytes");
        }
        match self.iface(0) {
            None => return bad("simple packet without an interface 0"),
            Some(i) if !i.vsock => return Step::Again,
            Some(_) => {}
        }
        let orig = u32_at(body, 0, big);
        let caplen = (orig as usize).min(body.len() - 4);
        let data = body.slice(4..4 + caplen);
        let time = self.last_time;
        Step::Yield(self.record(offset, time, orig.max(caplen as u32), data, 12))
    }
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
