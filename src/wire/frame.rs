//! Length-prefixed framing: a length field of 1, 2, 4 or 8 bytes (big or little endian), an
//! optional magic before it, and a maximum frame size checked before anything is reserved.
//!
//! With a magic the decoder resynchronises the way the LimiQuantix agent's reader does: on a bad
//! header (zero or oversize length) it scans forward byte by byte for the next magic, reporting the
//! skipped run as [`WireError::Garbage`], and gives up a scan window after [`SCAN_WINDOW`] bytes
//! (reporting it, then scanning on). Without a magic there is nothing to resynchronise on: after an
//! oversize length the decoder reports it once and discards the rest of the stream.
//!
//! Also the `lp:WIDTH:ENDIAN[:MAX][:magic=HEX]` protocol syntax of the CLI.

use std::fmt;
use std::str::FromStr;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::codec::{Decoded, Decoder, Encoder, Frame};
use super::error::{EncodeError, WireError};
use super::hex::HexPreview;

/// Default maximum frame size: 16 MiB, the limit of the quantix and fcexec agents.
pub const DEFAULT_MAX_FRAME: u64 = 16 * 1024 * 1024;

/// How far the quantix reader scans for a magic before giving up: 64 KiB.
pub const SCAN_WINDOW: u64 = 64 * 1024;

/// Byte order of the length field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    /// Most significant byte first (network order).
    Big,
    /// Least significant byte first.
    Little,
}

/// The shape of a length-prefixed protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LpConfig {
    /// Width of the length field in bytes: 1, 2, 4 or 8.
    pub width: u8,
    /// Byte order of the length field.
    pub endian: Endian,
    /// Bytes that start every frame (empty for none).
    pub magic: Vec<u8>,
    /// Largest payload accepted, in bytes.
    pub max: u64,
    /// Whether a zero-length payload is a valid frame.
    pub allow_empty: bool,
}

impl LpConfig {
    /// u32 big-endian length, no magic, 16 MiB maximum, empty frames rejected.
    pub fn u32_be() -> Self {
        Self {
            width: 4,
            endian: Endian::Big,
            magic: Vec::new(),
            max: DEFAULT_MAX_FRAME,
            allow_empty: false,
        }
    }

    /// Header length: magic plus length field.
    pub fn header_len(&self) -> usize {
        self.magic.len() + self.width as usize
    }

    /// The largest value the length field can hold.
    fn field_max(&self) -> u64 {
        match self.width {
            1 => u8::MAX as u64,
            2 => u16::MAX as u64,
            4 => u32::MAX as u64,
            _ => u64::MAX,
        }
    }

    fn read_len(&self, field: &[u8]) -> u64 {
        let mut v: u64 = 0;
        match self.endian {
            Endian::Big => {
                for b in field {
                    v = (v << 8) | u64::from(*b);
                }
            }
            Endian::Little => {
                for b in field.iter().rev() {
                    v = (v << 8) | u64::from(*b);
                }
            }
        }
        v
    }
}

/// A bad `lp:` protocol specification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad length-prefixed protocol {spec:?}: {reason} (expected lp:WIDTH:ENDIAN[:MAX][:magic=HEX], e.g. lp:4:be:16M)"
)]
pub struct LpSpecError {
    /// The specification as given.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Parses a size such as `65536`, `64K`, `16M` or `1G` (binary multiples).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&s[..i], 1u64 << 20),
        (i, 'g' | 'G') => (&s[..i], 1u64 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

impl FromStr for LpConfig {
    type Err = LpSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| LpSpecError {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let mut parts = spec.split(':');
        if parts.next() != Some("lp") {
            return Err(err("must start with lp:"));
        }
        let width: u8 = match parts.next() {
            Some("1") => 1,
            Some("2") => 2,
            Some("4") => 4,
            Some("8") => 8,
            _ => return Err(err("WIDTH must be 1, 2, 4 or 8")),
        };
        let endian = match parts.next().map(str::to_ascii_lowercase).as_deref() {
            Some("be" | "big") => Endian::Big,
            Some("le" | "little") => Endian::Little,
            _ => return Err(err("ENDIAN must be be or le")),
        };
        let mut cfg = LpConfig {
            width,
            endian,
            magic: Vec::new(),
            max: DEFAULT_MAX_FRAME,
            allow_empty: true,
        };
        for part in parts {
            if let Some(hex) = part.strip_prefix("magic=") {
                cfg.magic = parse_hex(hex).ok_or_else(|| err("magic must be hex bytes"))?;
                if cfg.magic.is_empty() || cfg.magic.len() > 16 {
                    return Err(err("magic must be 1 to 16 bytes"));
                }
            } else {
                cfg.max =
                    parse_size(part).ok_or_else(|| err("MAX must be a size like 65536 or 16M"))?;
            }
        }
        cfg.max = cfg.max.min(cfg.field_max());
        if cfg.max == 0 {
            return Err(err("MAX must be at least 1"));
        }
        Ok(cfg)
    }
}

impl fmt::Display for LpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endian = match self.endian {
            Endian::Big => "be",
            Endian::Little => "le",
        };
        write!(f, "lp:{}:{}:{}", self.width, endian, self.max)?;
        if !self.magic.is_empty() {
            write!(f, ":magic={}", super::hex::to_hex(&self.magic))?;
        }
        Ok(())
    }
}

/// Explains a length field that is recognisably not a length: another protocol's magic, JSON,
/// text. Empty when nothing is recognised.
pub fn length_hint(field: &[u8]) -> String {
    if field.starts_with(b"QTX\x01") {
        return " (these are the bytes of the QTX1 magic: the peer uses quantix framing, not plain length-prefixed)".into();
    }
    if field.first() == Some(&b'{') {
        return " (the bytes start with '{': the peer sends bare JSON, e.g. qga, not length-prefixed frames)".into();
    }
    if field.len() >= 2 && field.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        let text = String::from_utf8_lossy(field);
        let what = if text.starts_with("CONN") || text.starts_with("conn") {
            "a hybrid-vsock CONNECT line that was not stripped"
        } else if text.starts_with("OK ") {
            "a hybrid-vsock OK reply that was not stripped"
        } else if text.starts_with("HTTP")
            || text.starts_with("GET ")
            || text.starts_with("POST")
            || text.starts_with("PUT ")
        {
            "HTTP"
        } else {
            "text"
        };
        return format!(" (the length bytes read as the text {text:?}: this looks like {what})");
    }
    String::new()
}

#[derive(Debug, Clone)]
enum State {
    /// At a frame boundary.
    Synced,
    /// Scanning for the magic; `start` is the offset of the first skipped byte.
    Scanning {
        start: u64,
        skipped: u64,
        preview: Vec<u8>,
        reason: &'static str,
    },
    /// Unrecoverable (no magic to scan for): everything after is discarded.
    Failed,
}

/// Decoder for [`LpConfig`] framing; yields each frame's payload.
#[derive(Debug, Clone)]
pub struct LpDecoder {
    cfg: LpConfig,
    offset: u64,
    state: State,
}

impl LpDecoder {
    /// A decoder for the given framing.
    pub fn new(cfg: LpConfig) -> Self {
        Self {
            cfg,
            offset: 0,
            state: State::Synced,
        }
    }

    /// The framing this decoder reads.
    pub fn config(&self) -> &LpConfig {
        &self.cfg
    }

    /// Whether the decoder gave up on the stream (bad length and no magic to resynchronise on).
    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed)
    }

    /// Consumes `n` bytes of `buf` as garbage during a scan.
    fn skip(&mut self, buf: &mut BytesMut, n: usize) {
        if let State::Scanning {
            skipped, preview, ..
        } = &mut self.state
        {
            let room = super::hex::PREVIEW_BYTES.saturating_sub(preview.len());
            preview.extend_from_slice(&buf[..n.min(room)]);
            *skipped += n as u64;
        }
        buf.advance(n);
        self.offset += n as u64;
    }

    fn start_scan(&mut self, reason: &'static str) {
        self.state = State::Scanning {
            start: self.offset,
            skipped: 0,
            preview: Vec::new(),
            reason,
        };
    }

    fn finish_scan(&mut self, why: &str) -> Option<WireError> {
        let state = std::mem::replace(&mut self.state, State::Synced);
        match state {
            State::Scanning {
                start,
                skipped,
                preview,
                reason,
            } if skipped > 0 => Some(WireError::Garbage {
                offset: start,
                skipped,
                reason: if why.is_empty() {
                    reason.to_string()
                } else {
                    why.to_string()
                },
                bytes: HexPreview::with_total(&preview, skipped),
            }),
            _ => None,
        }
    }

    /// One scanning step: returns a report when the scan ends (magic found or window full).
    fn scan(&mut self, buf: &mut BytesMut) -> Option<WireError> {
        let magic_len = self.cfg.magic.len();
        loop {
            let skipped = match &self.state {
                State::Scanning { skipped, .. } => *skipped,
                _ => return None,
            };
            let window_left = (SCAN_WINDOW - skipped.min(SCAN_WINDOW)) as usize;
            let first = self.cfg.magic[0];
            let limit = buf.len().min(window_left);
            match memchr::memchr(first, &buf[..limit]) {
                Some(i) => {
                    self.skip(buf, i);
                    let avail = buf.len().min(magic_len);
                    if buf[..avail] == self.cfg.magic[..avail] {
                        if avail == magic_len {
                            return self.finish_scan("");
                        }
                        return None; // a possible magic prefix: need more bytes
                    }
                    self.skip(buf, 1);
                }
                None => {
                    self.skip(buf, limit);
                    if limit == window_left {
                        let report = self.finish_scan(" (no magic within the 64 KiB scan window; the agent's reader gives up here)");
                        self.start_scan(" (scanning on)");
                        return report;
                    }
                    return None;
                }
            }
        }
    }
}

impl Decoder for LpDecoder {
    type Message = Bytes;

    fn decode(&mut self, buf: &mut BytesMut) -> Option<Decoded<Bytes>> {
        loop {
            match self.state {
                State::Failed => {
                    self.offset += buf.len() as u64;
                    buf.clear();
                    return None;
                }
                State::Scanning { .. } => {
                    if let Some(report) = self.scan(buf) {
                        return Some(Err(report));
                    }
                    if matches!(self.state, State::Scanning { .. }) {
                        return None;
                    }
                }
                State::Synced => break,
            }
        }
        let magic_len = self.cfg.magic.len();
        let avail = buf.len().min(magic_len);
        if buf[..avail] != self.cfg.magic[..avail] {
            self.start_scan(" before the next magic");
            return self.decode(buf);
        }
        let header = self.cfg.header_len();
        if buf.len() < header {
            return None;
        }
        let field = &buf[magic_len..header];
        let len = self.cfg.read_len(field);
        if len == 0 && !self.cfg.allow_empty {
            let err = WireError::ZeroLength {
                offset: self.offset,
                bytes: HexPreview::of(&buf[..header]),
            };
            if magic_len > 0 {
                self.skip(buf, 1);
                self.start_scan(" while resynchronising after a zero length");
            } else {
                buf.advance(header);
                self.offset += header as u64;
            }
            return Some(Err(err));
        }
        if len > self.cfg.max {
            let mut hint = length_hint(field);
            if magic_len == 0 {
                hint.push_str(
                    "; with no magic to resynchronise on, the rest of the stream is not decoded",
                );
            }
            let err = WireError::Oversize {
                offset: self.offset,
                len,
                max: self.cfg.max,
                hint,
                bytes: HexPreview::of(&buf[..header]),
            };
            if magic_len > 0 {
                buf.advance(1);
                self.offset += 1;
                self.start_scan(" while resynchronising after an oversize length");
            } else {
                self.state = State::Failed;
            }
            return Some(Err(err));
        }
        let total = header + len as usize;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return None;
        }
        let offset = self.offset;
        buf.advance(header);
        let payload = buf.split_to(len as usize).freeze();
        self.offset += total as u64;
        Some(Ok(Frame {
            offset,
            wire_len: total as u64,
            message: payload,
        }))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Decoded<Bytes>> {
        if let Some(item) = self.decode(buf) {
            return Some(item);
        }
        match self.state {
            State::Failed => None,
            State::Scanning { .. } => {
                let n = buf.len();
                self.skip(buf, n);
                self.finish_scan(" (the stream ended before another magic)")
                    .map(Err)
            }
            State::Synced if buf.is_empty() => None,
            State::Synced => {
                let header = self.cfg.header_len();
                let expected = if buf.len() >= header {
                    header as u64 + self.cfg.read_len(&buf[self.cfg.magic.len()..header])
                } else {
                    0
                };
                let err = WireError::Truncated {
                    offset: self.offset,
                    expected,
                    available: buf.len() as u64,
                    bytes: HexPreview::of(buf),
                };
                self.offset += buf.len() as u64;
                buf.clear();
                Some(Err(err))
            }
        }
    }

    fn offset(&self) -> u64 {
        self.offset
    }
}

/// Encoder for [`LpConfig`] framing.
#[derive(Debug, Clone)]
pub struct LpEncoder {
    cfg: LpConfig,
}

impl LpEncoder {
    /// An encoder for the given framing.
    pub fn new(cfg: LpConfig) -> Self {
        Self { cfg }
    }

    /// Appends the header for a payload of `len` bytes.
    pub fn put_header(&self, len: usize, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let len = len as u64;
        if len > self.cfg.max || len > self.cfg.field_max() {
            return Err(EncodeError::TooLarge {
                len,
                max: self.cfg.max.min(self.cfg.field_max()),
            });
        }
        dst.reserve(self.cfg.header_len() + len as usize);
        dst.put_slice(&self.cfg.magic);
        let w = self.cfg.width as usize;
        let bytes = match self.cfg.endian {
            Endian::Big => len.to_be_bytes(),
            Endian::Little => len.to_le_bytes(),
        };
        match self.cfg.endian {
            Endian::Big => dst.put_slice(&bytes[8 - w..]),
            Endian::Little => dst.put_slice(&bytes[..w]),
        }
        Ok(())
    }
}

impl Encoder<[u8]> for LpEncoder {
    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.put_header(payload.len(), dst)?;
        dst.put_slice(payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec::decode_all;
    use super::*;

    fn qtx() -> LpConfig {
        LpConfig {
            magic: b"QTX\x01".to_vec(),
            ..LpConfig::u32_be()
        }
    }

    fn enc(cfg: &LpConfig, payloads: &[&[u8]]) -> Vec<u8> {
        let mut e = LpEncoder::new(cfg.clone());
        let mut out = BytesMut::new();
        for p in payloads {
            e.encode(p, &mut out).expect("encode");
        }
        out.to_vec()
    }

    #[test]
    fn parses_specs() {
        let c: LpConfig = "lp:2:le:1K".parse().expect("spec");
        assert_eq!((c.width, c.endian, c.max), (2, Endian::Little, 1024));
        let c: LpConfig = "lp:4:be:magic=51545801".parse().expect("spec");
        assert_eq!(c.magic, b"QTX\x01");
        let c: LpConfig = "lp:1:be:1M".parse().expect("spec");
        assert_eq!(c.max, 255, "max is capped by the field width");
        assert!("lp:3:be".parse::<LpConfig>().is_err());
        assert!("lp:4:xx".parse::<LpConfig>().is_err());
        assert!("lp:4:be:lots".parse::<LpConfig>().is_err());
    }

    #[test]
    fn every_width_and_endian_round_trips() {
        for width in [1u8, 2, 4, 8] {
            for endian in [Endian::Big, Endian::Little] {
                let cfg = LpConfig {
                    width,
                    endian,
                    magic: Vec::new(),
                    max: 200,
                    allow_empty: true,
                };
                let bytes = enc(&cfg, &[b"abc", b"", &[7u8; 200]]);
                let got = decode_all(&mut LpDecoder::new(cfg), &bytes);
                let payloads: Vec<Vec<u8>> = got
                    .into_iter()
                    .map(|r| r.expect("frame").message.to_vec())
                    .collect();
                assert_eq!(payloads, vec![b"abc".to_vec(), vec![], vec![7u8; 200]]);
            }
        }
    }

    #[test]
    fn huge_length_is_an_error_not_an_allocation() {
        let mut buf = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xff, 1, 2][..]);
        let mut d = LpDecoder::new(LpConfig::u32_be());
        match d.decode(&mut buf) {
            Some(Err(WireError::Oversize { len, offset: 0, .. })) => {
                assert_eq!(len, u32::MAX as u64)
            }
            other => panic!("expected oversize, got {other:?}"),
        }
        assert!(
            buf.capacity() < 1024,
            "no reservation for the claimed length"
        );
        assert!(d.is_failed());
        assert!(d.decode(&mut buf).is_none());
    }

    #[test]
    fn magic_resync_reports_skipped_bytes() {
        let cfg = qtx();
        let mut stream = b"garbage!".to_vec();
        stream.extend(enc(&cfg, &[b"hello"]));
        let got = decode_all(&mut LpDecoder::new(cfg), &stream);
        assert_eq!(got.len(), 2);
        match &got[0] {
            Err(WireError::Garbage {
                offset: 0,
                skipped: 8,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        let f = got[1].as_ref().expect("frame");
        assert_eq!((f.offset, &f.message[..]), (8, &b"hello"[..]));
    }

    #[test]
    fn magic_as_length_resyncs_to_the_next_frame() {
        let cfg = qtx();
        let mut stream = b"QTX\x01".to_vec();
        stream.extend(enc(&cfg, &[b"x"]));
        let got = decode_all(&mut LpDecoder::new(cfg), &stream);
        assert!(matches!(&got[0], Err(WireError::Oversize { hint, .. }) if hint.contains("QTX1")));
        assert!(matches!(
            &got[1],
            Err(WireError::Garbage {
                offset: 1,
                skipped: 3,
                ..
            })
        ));
        assert_eq!(&got[2].as_ref().expect("frame").message[..], b"x");
    }

    #[test]
    fn truncated_at_eof() {
        let bytes = enc(&LpConfig::u32_be(), &[b"hello"]);
        let got = decode_all(&mut LpDecoder::new(LpConfig::u32_be()), &bytes[..6]);
        assert_eq!(
            got,
            vec![Err(WireError::Truncated {
                offset: 0,
                expected: 9,
                available: 6,
                bytes: HexPreview::of(&bytes[..6]),
            })]
        );
    }

    #[test]
    fn scan_window_gives_up_and_goes_on() {
        let cfg = qtx();
        let mut stream = vec![0u8; (SCAN_WINDOW as usize) + 10];
        stream.extend(enc(&cfg, &[b"y"]));
        let got = decode_all(&mut LpDecoder::new(cfg), &stream);
        assert!(
            matches!(&got[0], Err(WireError::Garbage { skipped, reason, .. }) if *skipped == SCAN_WINDOW && reason.contains("64 KiB"))
        );
        assert!(matches!(
            &got[1],
            Err(WireError::Garbage { skipped: 10, .. })
        ));
        assert!(got[2].is_ok());
    }

    #[test]
    fn encoder_rejects_oversize() {
        let cfg = LpConfig {
            max: 4,
            ..LpConfig::u32_be()
        };
        let mut out = BytesMut::new();
        assert!(LpEncoder::new(cfg).encode(b"12345", &mut out).is_err());
    }

    #[test]
    fn hints_name_what_the_length_really_is() {
        assert!(length_hint(b"QTX\x01").contains("quantix"));
        assert!(length_hint(b"CONN").contains("CONNECT"));
        assert!(length_hint(b"{\"ty").contains("JSON"));
        assert!(length_hint(&[0, 0, 1, 0]).is_empty());
    }
}
