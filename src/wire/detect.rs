//! `--protocol auto`: guess the protocol of a stream from its first bytes, and say what was seen.
//!
//! The rules, in order: an optional hybrid-vsock handshake line (`CONNECT n` / `OK n`) is noted and
//! skipped; `QTX\x01` is quantix; `0xFF` or a JSON object naming `execute`/`return`/`error` is qga;
//! an HTTP request line or status line is HTTP (ch-api when the path is under `/api/v1/`, else
//! volant); a u32 big-endian length followed by `{` is fcexec, followed by protobuf is
//! quantix-legacy; anything else is raw.

use super::frame::DEFAULT_MAX_FRAME;
use super::protocol::Protocol;
use super::sniff;

/// How many leading bytes detection wants before deciding (it decides with fewer at EOF).
pub const DETECT_WINDOW: usize = 4096;

/// The guess and its grounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The protocol, or `None` when there were no bytes to judge.
    pub protocol: Option<Protocol>,
    /// Length of a leading hybrid-vsock handshake line (0 when there is none).
    pub handshake_len: usize,
    /// What was seen, for the user.
    pub reason: String,
}

const HTTP_METHODS: &[&[u8]] = &[
    b"GET ",
    b"PUT ",
    b"POST ",
    b"DELETE ",
    b"HEAD ",
    b"PATCH ",
    b"OPTIONS ",
];

/// Length of a hybrid-vsock handshake line at the start of `bytes` (`CONNECT <digits>\n`, any
/// case, or `OK <digits>\n`), or 0.
pub fn handshake_line_len(bytes: &[u8]) -> usize {
    let Some(nl) = bytes.iter().take(64).position(|b| *b == b'\n') else {
        return 0;
    };
    let line = &bytes[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = if line.len() > 8 && line[..8].eq_ignore_ascii_case(b"CONNECT ") {
        &line[8..]
    } else if let Some(r) = line.strip_prefix(b"OK ") {
        r
    } else {
        return 0;
    };
    if !rest.is_empty() && rest.iter().all(u8::is_ascii_digit) {
        nl + 1
    } else {
        0
    }
}

/// Guesses the protocol of a stream that starts with `bytes`.
pub fn detect(bytes: &[u8]) -> Detection {
    let handshake_len = handshake_line_len(bytes);
    let rest = &bytes[handshake_len..];
    let (protocol, reason) = guess(rest);
    let reason = if handshake_len > 0 {
        let line = String::from_utf8_lossy(&bytes[..handshake_len - 1]);
        format!(
            "hybrid-vsock handshake {:?}, then {reason}",
            line.trim_end()
        )
    } else {
        reason
    };
    Detection {
        protocol,
        handshake_len,
        reason,
    }
}

fn guess(b: &[u8]) -> (Option<Protocol>, String) {
    if b.is_empty() {
        return (None, "no bytes to judge".into());
    }
    if b.starts_with(b"QTX\x01") {
        return (Some(Protocol::Quantix), "QTX1 magic (51 54 58 01)".into());
    }
    if b[0] == 0xff {
        return (
            Some(Protocol::Qga),
            "a 0xFF delimiter byte (qemu-ga's guest-sync-delimited)".into(),
        );
    }
    let trimmed = &b[b.iter().take_while(|c| c.is_ascii_whitespace()).count()..];
    if trimmed.first() == Some(&b'{') {
        let head = &trimmed[..trimmed.len().min(256)];
        let names_qmp = [
            &b"\"execute\""[..],
            b"\"return\"",
            b"\"error\"",
            b"\"exec-oob\"",
        ]
        .iter()
        .any(|k| memchr::memmem::find(head, k).is_some());
        let reason = if names_qmp {
            "a JSON object naming execute/return/error (QMP style)"
        } else {
            "a bare JSON object stream (guessing qga)"
        };
        return (Some(Protocol::Qga), reason.into());
    }
    if HTTP_METHODS.iter().any(|m| b.starts_with(m)) {
        let line_end = b
            .iter()
            .take(2048)
            .position(|c| *c == b'\n')
            .unwrap_or(b.len().min(2048));
        let line = &b[..line_end];
        if memchr::memmem::find(line, b" /api/v1/").is_some() {
            return (
                Some(Protocol::ChApi),
                "an HTTP request for /api/v1/… (the Cloud Hypervisor API)".into(),
            );
        }
        return (
            Some(Protocol::Volant),
            "an HTTP request line (volant)".into(),
        );
    }
    if b.starts_with(b"HTTP/1.") {
        return (
            Some(Protocol::Volant),
            "an HTTP status line (volant; pass --protocol ch-api for the VMM API)".into(),
        );
    }
    if b.len() >= 5 {
        let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64;
        if len > 0 && len <= DEFAULT_MAX_FRAME {
            let end = (4 + len as usize).min(b.len());
            let payload = &b[4..end];
            if payload.first() == Some(&b'{') {
                return (
                    Some(Protocol::Fcexec),
                    format!("a u32 BE length ({len}) then JSON"),
                );
            }
            let complete = end == 4 + len as usize;
            if sniff::looks_like_protobuf(payload, 200) || (!complete && protobuf_prefix(payload)) {
                return (
                    Some(Protocol::QuantixLegacy),
                    format!("a u32 BE length ({len}) then protobuf, no QTX1 magic"),
                );
            }
        }
    }
    (Some(Protocol::Raw), "no known framing".into())
}

/// For a payload cut short by the detection window: does it at least start like an AgentMessage
/// (field 1 message_id, field 2 timestamp, or a payload field)?
fn protobuf_prefix(p: &[u8]) -> bool {
    match sniff::read_varint(p) {
        Some((key, _)) => {
            let field = key >> 3;
            key & 7 == 2 && (field == 1 || field == 2 || (10..=103).contains(&field))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto(b: &[u8]) -> Option<Protocol> {
        detect(b).protocol
    }

    #[test]
    fn each_protocol_is_recognised() {
        assert_eq!(
            proto(b"QTX\x01\x00\x00\x00\x02\x52\x00"),
            Some(Protocol::Quantix)
        );
        assert_eq!(proto(b"\xff{\"return\": 1}\n"), Some(Protocol::Qga));
        assert_eq!(proto(b"{\"execute\":\"guest-ping\"}"), Some(Protocol::Qga));
        assert_eq!(
            proto(b"GET /api/v1/vmm.ping HTTP/1.1\r\n\r\n"),
            Some(Protocol::ChApi)
        );
        assert_eq!(
            proto(b"POST /v1/plugin/x/actions/y HTTP/1.1\r\n"),
            Some(Protocol::Volant)
        );
        assert_eq!(proto(b"HTTP/1.1 200 OK\r\n"), Some(Protocol::Volant));
        assert_eq!(
            proto(b"\x00\x00\x00\x0e{\"type\":\"log\"}"),
            Some(Protocol::Fcexec)
        );
        assert_eq!(
            proto(b"\x00\x00\x00\x05\x0a\x01\x37\x52\x00"),
            Some(Protocol::QuantixLegacy)
        );
        assert_eq!(proto(b"\x01\x02\x03"), Some(Protocol::Raw));
        assert_eq!(proto(b""), None);
    }

    #[test]
    fn a_handshake_line_is_skipped_and_named() {
        let d = detect(b"CONNECT 1024\n\x00\x00\x00\x02{}");
        assert_eq!(d.handshake_len, 13);
        assert_eq!(d.protocol, Some(Protocol::Fcexec));
        assert!(d.reason.contains("CONNECT 1024"));
        assert_eq!(handshake_line_len(b"connect 5\n"), 10);
        assert_eq!(handshake_line_len(b"OK 1073741824\nxx"), 14);
        assert_eq!(handshake_line_len(b"CONNECT x\n"), 0);
        assert_eq!(handshake_line_len(b"OK\n"), 0);
    }
}
