//! The pcapng half of [`CaptureParser`](super::CaptureParser): block framing (checked before
//! anything is buffered), section headers, interface descriptions (`if_tsresol`, `if_tsoffset`)
//! and the three packet blocks.

use bytes::{Bytes, BytesMut};

use super::{
    CaptureError, CaptureParser, Iface, LINKTYPE_VSOCK, MAX_BLOCK, MAX_INTERFACES, State, Step,
    u16_at, u32_at,
};
use crate::wire::hex::HexPreview;

pub(super) const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BOM: u32 = 0x1a2b_3c4d;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_PB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;

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
    pub(super) fn pcapng_block(&mut self, buf: &mut BytesMut) -> Option<Step> {
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
