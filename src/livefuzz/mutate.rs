//! Byte-level mutations of one valid frame, aware of where the protocol keeps its length:
//! `QTX1` + u32 BE length (quantix), u32 BE length (quantix-legacy, fcexec), a JSON line (qga),
//! `Content-Length` (Volant's HTTP). Pure; the randomness comes from the caller's
//! [`XorShift64`].

use crate::fault::XorShift64;
use crate::wire::frame::DEFAULT_MAX_FRAME;
use crate::wire::protocol::Protocol;

use super::structured::pick;

/// A byte-level mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteMutation {
    /// One to four bits flipped anywhere in the frame.
    BitFlip,
    /// The frame cut short and the stream half-closed after it.
    Truncate,
    /// The length field (or `Content-Length`) off by a little, either way.
    LengthLie,
    /// The length field (or `Content-Length`) far over the protocol's maximum.
    OversizeLength,
    /// The frame sent twice in one write.
    Duplicate,
    /// The start of this frame joined to the end of another.
    Splice,
    /// A few random bytes inserted somewhere.
    Insert,
    /// The frame sent 2 to 32 times back to back (a pipelined burst).
    Burst,
}

impl ByteMutation {
    /// Every mutation.
    pub const ALL: [Self; 8] = [
        Self::BitFlip,
        Self::Truncate,
        Self::LengthLie,
        Self::OversizeLength,
        Self::Duplicate,
        Self::Splice,
        Self::Insert,
        Self::Burst,
    ];

    /// The mutation's snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::BitFlip => "bit_flip",
            Self::Truncate => "truncate",
            Self::LengthLie => "length_lie",
            Self::OversizeLength => "oversize_length",
            Self::Duplicate => "duplicate",
            Self::Splice => "splice",
            Self::Insert => "insert",
            Self::Burst => "burst",
        }
    }
}

/// A mutated frame: the bytes, whether to half-close after them, and what was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutated {
    /// The bytes to send.
    pub bytes: Vec<u8>,
    /// Whether the stream is half-closed after them.
    pub close: bool,
    /// What was done, e.g. `flipped bit 3 of byte 9`.
    pub what: String,
}

/// Where a protocol's length field is: its offset in the frame (u32 BE).
fn length_field(protocol: &Protocol) -> Option<usize> {
    match protocol {
        Protocol::Quantix => Some(4),
        Protocol::QuantixLegacy | Protocol::Fcexec => Some(0),
        _ => None,
    }
}

fn index(rng: &mut XorShift64, n: usize) -> usize {
    pick(rng, n)
}

/// Applies `m` to `frame` (`other` is a second valid frame, for splices).
pub fn mutate(
    m: ByteMutation,
    protocol: &Protocol,
    frame: &[u8],
    other: &[u8],
    rng: &mut XorShift64,
) -> Mutated {
    let one = |bytes: Vec<u8>, what: String| Mutated {
        bytes,
        close: false,
        what,
    };
    match m {
        ByteMutation::BitFlip => {
            let mut out = frame.to_vec();
            let mut what = Vec::new();
            for _ in 0..=index(rng, 4) {
                if out.is_empty() {
                    break;
                }
                let at = index(rng, out.len());
                let bit = index(rng, 8);
                out[at] ^= 1 << bit;
                what.push(format!("bit {bit} of byte {at}"));
            }
            one(out, format!("flipped {}", what.join(", ")))
        }
        ByteMutation::Truncate => {
            let cut = 1 + index(rng, frame.len().saturating_sub(1).max(1));
            let cut = cut.min(frame.len());
            Mutated {
                bytes: frame[..cut].to_vec(),
                close: true,
                what: format!("cut to {cut} of {} bytes, then half-closed", frame.len()),
            }
        }
        ByteMutation::LengthLie | ByteMutation::OversizeLength => {
            let oversize = m == ByteMutation::OversizeLength;
            if let Some(at) = length_field(protocol)
                && let Some(field) = frame.get(at..at + 4)
            {
                let real = u32::from_be_bytes([field[0], field[1], field[2], field[3]]);
                let lie = if oversize {
                    let max = u32::try_from(DEFAULT_MAX_FRAME).unwrap_or(u32::MAX);
                    max.saturating_add(1).saturating_add(
                        u32::try_from(rng.below_inclusive(u64::from(u32::MAX - max))).unwrap_or(0),
                    )
                } else {
                    let delta = 1 + u32::try_from(index(rng, 64)).unwrap_or(0);
                    if rng.next_u64() & 1 == 0 {
                        real.saturating_sub(delta)
                    } else {
                        real.saturating_add(delta)
                    }
                };
                let mut out = frame.to_vec();
                out[at..at + 4].copy_from_slice(&lie.to_be_bytes());
                return one(out, format!("length field {real} → {lie}"));
            }
            if let Some(out) = http_length_lie(frame, oversize, rng) {
                return out;
            }
            // No length field (qga): a run of white space inside the object instead (the
            // 16 MiB one is the malformed variant `oversize_length`).
            let pad = 1 + index(rng, if oversize { 1 << 16 } else { 4096 });
            let mut out = Vec::with_capacity(frame.len() + pad);
            let split = frame.iter().position(|b| *b == b'{').map_or(0, |i| i + 1);
            out.extend_from_slice(&frame[..split]);
            out.extend_from_slice(&vec![b' '; pad]);
            out.extend_from_slice(&frame[split..]);
            one(out, format!("{pad} bytes of white space inside the object"))
        }
        ByteMutation::Duplicate => one(frame.repeat(2), "sent twice".into()),
        ByteMutation::Burst => {
            let n = 2 + index(rng, 31);
            one(frame.repeat(n), format!("sent {n} times back to back"))
        }
        ByteMutation::Splice => {
            let a = index(rng, frame.len() + 1);
            let b = index(rng, other.len() + 1);
            let mut out = frame[..a].to_vec();
            out.extend_from_slice(&other[b..]);
            one(
                out,
                format!("first {a} bytes joined to another frame from its byte {b}"),
            )
        }
        ByteMutation::Insert => {
            let at = index(rng, frame.len() + 1);
            let n = 1 + index(rng, 16);
            let alphabet: &[u8] = if matches!(protocol, Protocol::Qga | Protocol::Volant) {
                b"{}[]\",:\\\n\r\xff\x00 a1"
            } else {
                b""
            };
            let junk: Vec<u8> = (0..n)
                .map(|_| {
                    let r = rng.next_u64();
                    if alphabet.is_empty() || r & 1 == 0 {
                        (r >> 8) as u8
                    } else {
                        alphabet[index(rng, alphabet.len())]
                    }
                })
                .collect();
            let mut out = frame[..at].to_vec();
            out.extend_from_slice(&junk);
            out.extend_from_slice(&frame[at..]);
            one(out, format!("{n} random bytes inserted at byte {at}"))
        }
    }
}

/// An HTTP message with a lying `Content-Length` (or `None` when `frame` is not HTTP).
fn http_length_lie(frame: &[u8], oversize: bool, rng: &mut XorShift64) -> Option<Mutated> {
    let end = frame.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&frame[..end]).ok()?;
    let body = frame.len() - end - 4;
    let value = if oversize {
        format!("{}", (1u64 << 40) + rng.below_inclusive(1 << 62))
    } else if rng.next_u64() & 1 == 0 && body > 0 {
        format!("{}", body - 1 - pick(rng, body))
    } else {
        format!("{}", body + 1 + pick(rng, 64))
    };
    let mut lines: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("content-length:"))
        .collect();
    let header = format!("Content-Length: {value}");
    lines.push(&header);
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(&frame[end..]);
    Some(Mutated {
        bytes: out,
        close: false,
        what: format!("Content-Length {value} for a body of {body} bytes"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_lies_rewrite_the_length_field_only() {
        let frame = b"QTX\x01\x00\x00\x00\x03abc";
        for seed in 1..50 {
            let mut rng = XorShift64::new(seed);
            let m = mutate(
                ByteMutation::OversizeLength,
                &Protocol::Quantix,
                frame,
                frame,
                &mut rng,
            );
            let len = u32::from_be_bytes(m.bytes[4..8].try_into().unwrap());
            assert!(u64::from(len) > DEFAULT_MAX_FRAME, "{}", m.what);
            assert_eq!(&m.bytes[..4], b"QTX\x01");
            assert_eq!(&m.bytes[8..], b"abc");
            let lie = mutate(
                ByteMutation::LengthLie,
                &Protocol::Quantix,
                frame,
                frame,
                &mut rng,
            );
            assert_ne!(&lie.bytes[4..8], &frame[4..8]);
        }
    }

    #[test]
    fn http_content_length_lies_and_truncation_half_closes() {
        let req = b"POST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
        let mut rng = XorShift64::new(3);
        let m = mutate(
            ByteMutation::OversizeLength,
            &Protocol::Volant,
            req,
            req,
            &mut rng,
        );
        let text = String::from_utf8_lossy(&m.bytes).to_string();
        assert!(!text.contains("Content-Length: 2\r"), "{text}");
        assert!(text.ends_with("\r\n\r\n{}"));
        let t = mutate(
            ByteMutation::Truncate,
            &Protocol::Volant,
            req,
            req,
            &mut rng,
        );
        assert!(t.close && t.bytes.len() < req.len() && !t.bytes.is_empty());
    }
}
