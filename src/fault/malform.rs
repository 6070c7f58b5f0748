//! `malformed:<variant>`: pure rewrites of one valid frame into exactly one defect, per protocol.
//!
//! The frame shapes are those of `crate::wire`: `quantix` (`QTX\x01`, u32 BE length, protobuf),
//! `quantix-legacy` and `fcexec` (u32 BE length, then protobuf or JSON), `qga` (a JSON object and
//! `\n`), `volant`/`ch-api` (HTTP/1.1). Two variants are about the hybrid-vsock handshake and
//! take a `CONNECT <port>\n` line under any protocol. Each rewrite is one that guestwire's own
//! decoder for the protocol rejects with the matching [`WireError`](crate::wire::WireError)
//! kind (the tests hold the table); a variant with no meaning for a protocol (`bad_protobuf` on a
//! JSON protocol, `bad_magic` on one without a magic) is a [`MalformError`].

use bytes::Bytes;

use super::error::MalformError;
use super::kind::MalformedVariant;
use crate::wire::frame::DEFAULT_MAX_FRAME;
use crate::wire::protocol::Protocol;
use crate::wire::quantix::QTX1_MAGIC;

/// A length field's largest value, 4 GiB − 1: what `oversize_length` writes.
pub const OVERSIZE_LENGTH: u32 = u32::MAX;

/// What `garbage` puts before the frame: four bytes that are no magic, no plausible length
/// (0xDEADBEEF is over any maximum) and no JSON, twice.
pub const GARBAGE: &[u8] = b"\xde\xad\xbe\xef\xde\xad\xbe\xef";

/// A payload that is not protobuf: field 1 with wire type 7, which does not exist.
pub const BAD_PROTOBUF: &[u8] = b"\x0f\xff";

/// A protobuf `AgentMessage` holding only field 2000 (empty), which no version defines.
pub const UNKNOWN_FIELD: &[u8] = b"\x82\x7d\x00";

/// An fcexec payload of a `type` the protocol does not define.
pub const UNKNOWN_FCEXEC: &[u8] = br#"{"type":"bogus"}"#;

/// A qga object that is none of command, return or error.
pub const UNKNOWN_QGA: &[u8] = b"{\"bogus\":1}\n";

/// The frame after the rewrite, as the writes a proxy must make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// The bytes, one entry per separate write (two for `split_handshake`).
    pub writes: Vec<Bytes>,
    /// Whether the stream must be closed after them (`truncated`).
    pub close: bool,
}

impl Malformed {
    fn one(bytes: Vec<u8>) -> Self {
        Self {
            writes: vec![Bytes::from(bytes)],
            close: false,
        }
    }

    /// All writes joined.
    pub fn concat(&self) -> Bytes {
        Bytes::from(self.writes.concat())
    }
}

/// The frame with exactly `variant`'s defect, as one run of bytes (see [`malform_writes`] for the
/// write boundaries and the close).
pub fn malform(
    variant: MalformedVariant,
    protocol: &Protocol,
    frame: &[u8],
) -> Result<Bytes, MalformError> {
    malform_writes(variant, protocol, frame).map(|m| m.concat())
}

/// The shape a protocol's frames have, as far as malforming goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `QTX1` magic, u32 BE length, protobuf.
    Qtx1,
    /// u32 BE length, protobuf.
    Legacy,
    /// u32 BE length, JSON.
    Fcexec,
    /// JSON object, newline.
    Qga,
    /// HTTP/1.1.
    Http,
    /// No frame structure known.
    Other,
}

fn shape(protocol: &Protocol) -> Shape {
    match protocol {
        Protocol::Quantix => Shape::Qtx1,
        Protocol::QuantixLegacy => Shape::Legacy,
        Protocol::Fcexec => Shape::Fcexec,
        Protocol::Qga => Shape::Qga,
        Protocol::Volant | Protocol::ChApi => Shape::Http,
        Protocol::Raw | Protocol::Lp(_) => Shape::Other,
    }
}

/// The frame with exactly `variant`'s defect, as separate writes and whether to close after.
pub fn malform_writes(
    variant: MalformedVariant,
    protocol: &Protocol,
    frame: &[u8],
) -> Result<Malformed, MalformError> {
    use MalformedVariant as V;
    let no = |why: &'static str| MalformError {
        variant: variant.name(),
        protocol: protocol.to_string(),
        why,
    };
    let s = shape(protocol);
    if matches!(variant, V::SplitHandshake | V::NoNewline) && is_connect_line(frame) {
        return Ok(handshake(variant, frame));
    }
    let header = match s {
        Shape::Qtx1 => 8,
        Shape::Legacy | Shape::Fcexec => 4,
        _ => 0,
    };
    if header > 0 && frame.len() < header {
        return Err(no("the frame is shorter than its header"));
    }
    let (head, payload) = frame.split_at(header);
    let with_payload = |p: &[u8]| Malformed::one(reframe(s, head, p));
    Ok(match (variant, s) {
        (V::BadMagic, Shape::Qtx1) => {
            let mut out = frame.to_vec();
            for b in out.iter_mut().take(QTX1_MAGIC.len()) {
                *b = !*b;
            }
            Malformed::one(out)
        }
        (V::BadMagic, Shape::Legacy | Shape::Fcexec) => {
            Malformed::one([&QTX1_MAGIC[..], frame].concat())
        }
        (V::OversizeLength, Shape::Qtx1 | Shape::Legacy | Shape::Fcexec) => {
            let mut out = frame.to_vec();
            set_len(s, &mut out, OVERSIZE_LENGTH);
            Malformed::one(out)
        }
        (V::OversizeLength, Shape::Qga) => {
            let start = frame
                .iter()
                .position(|b| *b == b'{')
                .ok_or(no("no JSON object"))?;
            let (before, obj) = frame.split_at(start + 1);
            let pad = usize::try_from(DEFAULT_MAX_FRAME).unwrap_or(usize::MAX);
            let mut out = Vec::with_capacity(frame.len() + pad);
            out.extend_from_slice(before);
            // `vec![b' '; n]` is one memset even unoptimised (`resize` is a loop there, which
            // made a debug-build fuzzer spend 300 ms per case).
            out.extend_from_slice(&vec![b' '; pad]);
            out.extend_from_slice(obj);
            Malformed::one(out)
        }
        (V::OversizeLength, Shape::Http) => Malformed::one(
            http_content_length(frame, &OVERSIZE_LENGTH.to_string())
                .ok_or(no("the frame is not a complete HTTP message"))?,
        ),
        (V::ZeroLength, Shape::Qtx1 | Shape::Legacy | Shape::Fcexec) => with_payload(&[]),
        (V::Truncated, Shape::Qtx1 | Shape::Legacy | Shape::Fcexec) => {
            let cut = [head, &payload[..payload.len() / 2]].concat();
            Malformed {
                writes: vec![Bytes::from(cut)],
                close: true,
            }
        }
        (V::Truncated, Shape::Qga | Shape::Http) => {
            if frame.len() < 2 {
                return Err(no("the frame is too short to cut"));
            }
            Malformed {
                writes: vec![Bytes::copy_from_slice(&frame[..frame.len() / 2])],
                close: true,
            }
        }
        (V::BadProtobuf, Shape::Qtx1 | Shape::Legacy) => with_payload(BAD_PROTOBUF),
        (V::BadJson, Shape::Fcexec) => with_payload(&break_json(payload)),
        (V::BadJson, Shape::Qga) => Malformed::one(break_json(frame)),
        (V::UnknownType, Shape::Qtx1 | Shape::Legacy) => with_payload(UNKNOWN_FIELD),
        (V::UnknownType, Shape::Fcexec) => with_payload(UNKNOWN_FCEXEC),
        (V::UnknownType, Shape::Qga) => Malformed::one(UNKNOWN_QGA.to_vec()),
        (V::Garbage, Shape::Qtx1 | Shape::Legacy | Shape::Fcexec | Shape::Qga | Shape::Http) => {
            Malformed::one([GARBAGE, frame].concat())
        }
        (V::NoNewline, Shape::Qga) => match frame.strip_suffix(b"\n") {
            Some(rest) => Malformed::one(rest.to_vec()),
            None => return Err(no("the frame does not end with a newline")),
        },
        (V::SplitHandshake | V::NoNewline, _) => {
            return Err(no("the frame is not a CONNECT <port> line"));
        }
        (V::BadMagic, _) => return Err(no("the protocol has no magic")),
        (V::ZeroLength, _) => return Err(no("the protocol has no length field")),
        (V::BadProtobuf, _) => return Err(no("the protocol does not carry protobuf")),
        (V::BadJson, _) => return Err(no("the protocol's framing does not carry JSON")),
        (V::UnknownType, _) => return Err(no("the protocol has no message types")),
        (V::OversizeLength | V::Truncated | V::Garbage, _) => {
            return Err(no("the protocol has no frame structure"));
        }
    })
}

/// Whether `frame` is a hybrid-vsock `CONNECT <port>` line (any case, with its newline).
pub fn is_connect_line(frame: &[u8]) -> bool {
    frame
        .get(..8)
        .is_some_and(|k| k.eq_ignore_ascii_case(b"connect "))
        && frame.ends_with(b"\n")
}

fn handshake(variant: MalformedVariant, line: &[u8]) -> Malformed {
    if variant == MalformedVariant::SplitHandshake {
        // Split inside the keyword, before Firecracker's 10-byte first read can complete.
        let (a, b) = line.split_at(4);
        Malformed {
            writes: vec![Bytes::copy_from_slice(a), Bytes::copy_from_slice(b)],
            close: false,
        }
    } else {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        Malformed::one(body.strip_suffix(b"\r").unwrap_or(body).to_vec())
    }
}

/// A length-prefixed frame with `head` (magic and length) around a new payload.
fn reframe(s: Shape, head: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = [head, payload].concat();
    set_len(
        s,
        &mut out,
        u32::try_from(payload.len()).unwrap_or(u32::MAX),
    );
    out
}

fn set_len(s: Shape, frame: &mut [u8], len: u32) {
    let at = if s == Shape::Qtx1 { 4 } else { 0 };
    if let Some(field) = frame.get_mut(at..at + 4) {
        field.copy_from_slice(&len.to_be_bytes());
    }
}

/// JSON with a stray `,` after its first `{` (or a lone `{` when there is none): braces still
/// balance, so the object's end is found, but it does not parse.
fn break_json(json: &[u8]) -> Vec<u8> {
    match json.iter().position(|b| *b == b'{') {
        Some(i) => [&json[..=i], b",", &json[i + 1..]].concat(),
        None => b"{,}".to_vec(),
    }
}

/// The HTTP message with its `Content-Length` set to `value` (added when absent).
fn http_content_length(frame: &[u8], value: &str) -> Option<Vec<u8>> {
    let end = frame.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&frame[..end]).ok()?;
    let mut lines: Vec<String> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("content-length:"))
        .map(str::to_string)
        .collect();
    lines.push(format!("Content-Length: {value}"));
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(&frame[end..]);
    Some(out)
}
