//! Judging a case, purely: [`ReplyCheck`] decodes what the peer sent back (bounded, with
//! guestwire's decoder for the protocol, after any hybrid-vsock `OK` line) and counts replies;
//! [`judge`] turns that, the way the exchange ended and the liveness probe's result into at most
//! one [`Finding`].

use bytes::BytesMut;

use super::case::Case;
use crate::wire::protocol::Protocol;
use crate::wire::stream::{DecodeOptions, FrameDecoder, open_decoder_detecting_handshake};
use crate::wire::{Direction, WireError};

/// What a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingKind {
    /// The peer is gone: the probe's connect was refused, or the connection was closed or reset
    /// before a reply (or, on hybrid vsock, the VMM refused the port).
    Dead,
    /// The peer did not answer the probe within its deadline.
    Hung,
    /// The peer answered with bytes guestwire's decoder rejects.
    Undecodable,
    /// The peer closed the connection on a valid request without answering it.
    ClosedOnValid,
    /// The probe failed some other way (a reply that breaks the protocol).
    ProbeFailed,
}

impl FindingKind {
    /// `dead`, `hung`, `undecodable`, `closed_on_valid` or `probe_failed` (in file names too).
    pub fn name(self) -> &'static str {
        match self {
            Self::Dead => "dead",
            Self::Hung => "hung",
            Self::Undecodable => "undecodable",
            Self::ClosedOnValid => "closed_on_valid",
            Self::ProbeFailed => "probe_failed",
        }
    }

    /// Whether the run stops here (dead always; hung unless told to keep going).
    pub fn stops(self, keep_going: bool) -> bool {
        match self {
            Self::Dead => true,
            Self::Hung => !keep_going,
            _ => false,
        }
    }
}

/// One finding: its kind and what showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The kind.
    pub kind: FindingKind,
    /// What was seen, e.g. the probe's error or the decoder's.
    pub detail: String,
}

/// What the liveness probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    /// The peer answered.
    Alive,
    /// Refused, closed or reset: the peer is gone.
    Dead(String),
    /// No answer within the deadline.
    Hung(String),
    /// The reply did not decode.
    Undecodable(String),
    /// Another failure.
    Failed(String),
}

/// The peer's side of one case, as decoded so far.
pub struct ReplyCheck {
    protocol: Protocol,
    decoder: Box<dyn FrameDecoder>,
    buf: BytesMut,
    replies: usize,
    error: Option<WireError>,
}

impl std::fmt::Debug for ReplyCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyCheck")
            .field("protocol", &self.protocol)
            .field("replies", &self.replies)
            .field("error", &self.error)
            .finish()
    }
}

/// Whether a frame from the peer answers a request (events and handshake lines do not).
fn is_reply(protocol: &Protocol, type_name: &str) -> bool {
    match protocol {
        Protocol::Quantix | Protocol::QuantixLegacy => !matches!(
            type_name,
            "telemetry" | "agent_ready" | "clipboard_changed" | "ok"
        ),
        Protocol::Fcexec => type_name == "result",
        Protocol::Qga => !matches!(type_name, "delimiter" | "ok"),
        _ => type_name != "ok",
    }
}

impl ReplyCheck {
    /// A check of what `protocol`'s peer sends back.
    pub fn new(protocol: &Protocol) -> Self {
        Self {
            protocol: protocol.clone(),
            decoder: open_decoder_detecting_handshake(
                protocol,
                &DecodeOptions {
                    direction: Some(Direction::ToHost),
                    ..DecodeOptions::default()
                },
            ),
            buf: BytesMut::new(),
            replies: 0,
            error: None,
        }
    }

    fn step(&mut self, eof: bool) {
        while self.error.is_none() {
            let item = if eof {
                self.decoder.decode_eof(&mut self.buf)
            } else {
                self.decoder.decode(&mut self.buf)
            };
            match item {
                None => break,
                Some(Ok(frame)) => {
                    if is_reply(&self.protocol, &frame.type_name) {
                        self.replies += 1;
                    }
                }
                Some(Err(e)) => self.error = Some(e),
            }
        }
    }

    /// Adds bytes the peer sent.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            self.buf.extend_from_slice(bytes);
            self.step(false);
        }
    }

    /// The peer closed its side: what is left must be whole frames.
    pub fn eof(&mut self) {
        self.step(true);
    }

    /// Replies decoded so far.
    pub fn replies(&self) -> usize {
        self.replies
    }

    /// The first decoding error, if any.
    pub fn error(&self) -> Option<&WireError> {
        self.error.as_ref()
    }
}

/// How a case's exchange went, as the adapter saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exchange {
    /// The connection could not be made (the error's text); nothing was sent.
    pub connect_error: Option<String>,
    /// Bytes sent.
    pub sent: u64,
    /// Bytes received.
    pub received: u64,
    /// Replies decoded.
    pub replies: usize,
    /// The peer closed (or reset) the connection before guestwire did.
    pub peer_closed: bool,
    /// The first error decoding the peer's bytes.
    pub decode_error: Option<String>,
}

/// The finding of a case, if any: a dead or hung peer first (from the probe), then an
/// undecodable answer, then a valid request closed without an answer, then a failed probe.
pub fn judge(case: &Case, exchange: &Exchange, probe: &ProbeResult) -> Option<Finding> {
    let finding = |kind, detail: &str| {
        Some(Finding {
            kind,
            detail: detail.to_string(),
        })
    };
    match probe {
        ProbeResult::Dead(why) => return finding(FindingKind::Dead, why),
        ProbeResult::Hung(why) => return finding(FindingKind::Hung, why),
        _ => {}
    }
    if let Some(e) = &exchange.decode_error {
        return finding(FindingKind::Undecodable, e);
    }
    if case.expect_reply
        && exchange.connect_error.is_none()
        && exchange.peer_closed
        && exchange.replies == 0
    {
        return finding(
            FindingKind::ClosedOnValid,
            &format!(
                "the peer closed the connection after {} bytes without answering",
                exchange.received
            ),
        );
    }
    match probe {
        ProbeResult::Undecodable(why) => finding(FindingKind::Undecodable, why),
        ProbeResult::Failed(why) => finding(FindingKind::ProbeFailed, why),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::livefuzz::case::Family;
    use bytes::Bytes;

    fn case(expect_reply: bool) -> Case {
        Case {
            index: 0,
            family: Family::Valid,
            description: "valid ping".into(),
            writes: vec![Bytes::from_static(b"x")],
            half_close: false,
            raw_handshake: false,
            expect_reply,
        }
    }

    #[test]
    fn replies_are_counted_and_bad_bytes_are_an_error() {
        let mut c = ReplyCheck::new(&Protocol::Qga);
        c.feed(b"\xff{\"return\": 5}\n{\"ret");
        assert_eq!(c.replies(), 1);
        assert!(c.error().is_none());
        c.eof();
        assert_eq!(c.error().map(WireError::kind), Some("truncated"));
        let mut f = ReplyCheck::new(&Protocol::Fcexec);
        f.feed(b"OK 1073741824\n\x00\x00\x00\x02{}");
        assert_eq!(f.replies(), 0);
        assert!(f.error().is_some(), "{{}} has no type");
        let mut q = ReplyCheck::new(&Protocol::Quantix);
        q.feed(b"QTX\x01\xff\xff\xff\xff");
        assert_eq!(q.error().map(WireError::kind), Some("oversize"));
    }

    #[test]
    fn the_probe_comes_first_then_the_exchange() {
        let closed = Exchange {
            peer_closed: true,
            ..Exchange::default()
        };
        let kind = |c: &Case, e: &Exchange, p: &ProbeResult| judge(c, e, p).map(|f| f.kind);
        let alive = ProbeResult::Alive;
        assert_eq!(
            kind(&case(true), &closed, &alive),
            Some(FindingKind::ClosedOnValid)
        );
        assert_eq!(kind(&case(false), &closed, &alive), None);
        let dead = ProbeResult::Dead("refused".into());
        assert_eq!(kind(&case(true), &closed, &dead), Some(FindingKind::Dead));
        let bad = Exchange {
            decode_error: Some("offset 0: garbage".into()),
            ..Exchange::default()
        };
        assert_eq!(
            kind(&case(false), &bad, &alive),
            Some(FindingKind::Undecodable)
        );
        let hung = ProbeResult::Hung("timed out".into());
        assert_eq!(kind(&case(false), &bad, &hung), Some(FindingKind::Hung));
        assert!(FindingKind::Dead.stops(true));
        assert!(!FindingKind::Hung.stops(true) && FindingKind::Hung.stops(false));
        assert!(!FindingKind::Undecodable.stops(false));
    }
}
