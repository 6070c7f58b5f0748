//! Per-connection protocol choice for a capture: which codec decodes a connection's two streams,
//! and whether each starts with a hybrid-vsock handshake line (`CONNECT n` / `OK n`). Pure: given
//! the first bytes seen each way, it decides or asks for more.
//!
//! The handshake is judged on the host's stream (the guest's when the host has sent nothing): a
//! complete `CONNECT n\n` line means both streams are decoded after a handshake line (so a guest
//! side that does not answer `OK n` shows as a bad handshake, in place). With `--protocol auto`
//! the protocol is [`wire::detect`](crate::wire::detect::detect) of the host's stream (the
//! guest's when that says nothing better), decided as soon as it names a framing, or after
//! [`DETECT_WINDOW`] bytes, or when the connection ends.

use crate::wire::Direction;
use crate::wire::detect::{DETECT_WINDOW, detect, handshake_line_len};
use crate::wire::protocol::Protocol;

/// Which protocol decodes a capture's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolChoice {
    /// Detect it per connection from its first bytes.
    Auto,
    /// This one for every connection.
    Fixed(Protocol),
}

/// What was decided for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The protocol.
    pub protocol: Protocol,
    /// Both streams start with a hybrid-vsock handshake line.
    pub handshake: bool,
    /// Why, for the user.
    pub reason: String,
}

/// The longest handshake line looked for (as `wire::detect` does).
const HANDSHAKE_MAX: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    Yes,
    No,
    Maybe,
}

/// Whether `b` starts with a handshake line, does not, or may once more bytes arrive.
fn handshake(b: &[u8]) -> Tri {
    if handshake_line_len(b) > 0 {
        return Tri::Yes;
    }
    if b.is_empty() {
        return Tri::Maybe;
    }
    if b.len() >= HANDSHAKE_MAX || b.contains(&b'\n') {
        return Tri::No;
    }
    let prefix_of = |word: &[u8]| {
        let n = b.len().min(word.len());
        b[..n].eq_ignore_ascii_case(&word[..n])
            && b[n..]
                .iter()
                .all(|c| c.is_ascii_digit() || (*c == b'\r' && n == word.len()))
    };
    if prefix_of(b"CONNECT ") || prefix_of(b"OK ") {
        Tri::Maybe
    } else {
        Tri::No
    }
}

/// Decides the protocol of a connection whose host sent `to_guest` and guest sent `to_host` so
/// far (each at most a few KiB: the first bytes). `ended` says no more bytes will come, which
/// forces a decision. `None`: wait for more bytes. Also `None` when there are no bytes at all
/// and the connection ended (nothing to decode).
pub fn decide(
    choice: &ProtocolChoice,
    to_guest: &[u8],
    to_host: &[u8],
    ended: bool,
) -> Option<Decision> {
    if to_guest.is_empty() && to_host.is_empty() {
        return None;
    }
    let (first, first_dir, other) = if to_guest.is_empty() {
        (to_host, Direction::ToHost, to_guest)
    } else {
        (to_guest, Direction::ToGuest, to_host)
    };
    let handshake = match handshake(first) {
        Tri::Yes => true,
        Tri::No => false,
        Tri::Maybe if ended => false,
        Tri::Maybe => return None,
    };
    if let ProtocolChoice::Fixed(p) = choice {
        return Some(Decision {
            protocol: p.clone(),
            handshake,
            reason: if handshake {
                format!("--protocol {p}, after a hybrid-vsock handshake line")
            } else {
                format!("--protocol {p}")
            },
        });
    }
    let name = |d: Direction| match d {
        Direction::ToGuest => "host's bytes",
        Direction::ToHost => "guest's bytes",
    };
    let d = detect(first);
    if let Some(p) = d.protocol.clone().filter(|p| *p != Protocol::Raw) {
        return Some(Decision {
            protocol: p,
            handshake,
            reason: format!("{}: {}", name(first_dir), d.reason),
        });
    }
    let o = detect(other);
    if let Some(p) = o.protocol.clone().filter(|p| *p != Protocol::Raw) {
        return Some(Decision {
            protocol: p,
            handshake,
            reason: format!("{}: {}", name(first_dir.reverse()), o.reason),
        });
    }
    if ended || first.len() >= DETECT_WINDOW + d.handshake_len {
        return Some(Decision {
            protocol: Protocol::Raw,
            handshake,
            reason: format!("{}: {}", name(first_dir), d.reason),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const QTX1_PING: &[u8] = b"QTX\x01\x00\x00\x00\x02\x52\x00";

    #[test]
    fn quantix_is_decided_on_its_first_bytes() {
        let d = decide(&ProtocolChoice::Auto, QTX1_PING, b"", false).expect("decided");
        assert_eq!(d.protocol, Protocol::Quantix);
        assert!(!d.handshake);
        assert!(d.reason.contains("QTX1"), "{}", d.reason);
    }

    #[test]
    fn a_guest_that_speaks_first_decides() {
        let d = decide(&ProtocolChoice::Auto, b"", QTX1_PING, false).expect("decided");
        assert_eq!(d.protocol, Protocol::Quantix);
        assert!(d.reason.starts_with("guest's bytes"));
    }

    #[test]
    fn a_handshake_line_is_waited_for_and_then_skipped() {
        assert_eq!(decide(&ProtocolChoice::Auto, b"CONN", b"", false), None);
        assert_eq!(
            decide(&ProtocolChoice::Auto, b"CONNECT 10", b"", false),
            None
        );
        // The line alone: the protocol comes from the guest's bytes after OK.
        let mut ok = b"OK 1073741824\n".to_vec();
        ok.extend_from_slice(QTX1_PING);
        let d = decide(&ProtocolChoice::Auto, b"CONNECT 1024\n", &ok, false).expect("decided");
        assert!(d.handshake);
        assert_eq!(d.protocol, Protocol::Quantix);
        let mut c = b"CONNECT 1024\n".to_vec();
        c.extend_from_slice(b"\x00\x00\x00\x02{}");
        let d = decide(&ProtocolChoice::Auto, &c, b"", false).expect("decided");
        assert_eq!((d.protocol, d.handshake), (Protocol::Fcexec, true));
    }

    #[test]
    fn fixed_protocols_still_see_the_handshake() {
        let fixed = ProtocolChoice::Fixed(Protocol::Quantix);
        assert!(
            decide(&fixed, b"CONNECT 5\nQTX", b"", false)
                .expect("decided")
                .handshake
        );
        assert!(!decide(&fixed, QTX1_PING, b"", false).expect("d").handshake);
        assert_eq!(decide(&fixed, b"connect 5", b"", false), None);
        assert!(
            !decide(&fixed, b"connect 5", b"", true)
                .expect("d")
                .handshake
        );
    }

    #[test]
    fn raw_waits_for_the_window_or_the_end() {
        let junk = [1u8, 2, 3];
        assert_eq!(decide(&ProtocolChoice::Auto, &junk, b"", false), None);
        let d = decide(&ProtocolChoice::Auto, &junk, b"", true).expect("decided");
        assert_eq!(d.protocol, Protocol::Raw);
        let big = vec![1u8; DETECT_WINDOW];
        assert_eq!(
            decide(&ProtocolChoice::Auto, &big, b"", false).map(|d| d.protocol),
            Some(Protocol::Raw)
        );
        assert_eq!(decide(&ProtocolChoice::Auto, b"", b"", true), None);
    }
}
