//! What reading a capture yields: per-connection events and decoded frames in capture order,
//! with errors in place ([`CaptureItem`]), for `guestwire decode`, the tap's live log, replay and
//! the TUI.

use super::error::CaptureError;
use super::vsockmon::{Side, VsockAddr};
use crate::wire::protocol::Protocol;
use crate::wire::{DecodedFrame, Direction, WireError};

/// A connection's number in a capture: 1, 2, … in order of first appearance (0: none).
pub type ConnId = u64;

/// Why a connection's decoding ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Both sides disconnected.
    Closed,
    /// A side reset it.
    Reset,
    /// The initiator connected again on the same addresses without a disconnect first.
    Reconnected,
    /// Too many connections were open at once; the oldest was given up
    /// ([`MAX_OPEN_CONNECTIONS`](super::reassembly::MAX_OPEN_CONNECTIONS)).
    Evicted,
    /// The capture ended with the connection still open.
    CaptureEnded,
}

impl EndReason {
    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Reset => "reset",
            Self::Reconnected => "reconnected",
            Self::Evicted => "evicted",
            Self::CaptureEnded => "capture_ended",
        }
    }
}

/// One thing that happened, at a time, on a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureItem {
    /// Capture time (nanoseconds since 1970) of the record that completed it.
    pub time_ns: u64,
    /// The connection (0 for a bad record that belongs to none).
    pub conn: ConnId,
    /// What happened.
    pub kind: ItemKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemKind {
    /// A connection appeared.
    Opened {
        /// The host's end.
        host: VsockAddr,
        /// The guest's end.
        guest: VsockAddr,
        /// Who connected (`None`: no connect record; the capture began mid-connection).
        by: Option<Side>,
    },
    /// The connection's protocol was decided.
    Protocol {
        /// The protocol.
        protocol: Protocol,
        /// Both streams start with a hybrid-vsock handshake line.
        handshake: bool,
        /// Why.
        reason: String,
    },
    /// A decoded frame.
    Frame {
        /// Which way it went.
        direction: Direction,
        /// The frame (its `offset` counts that direction's stream from 0).
        frame: DecodedFrame,
    },
    /// Bad bytes in a stream, in place of the frames they spoil.
    Error {
        /// Which way they went.
        direction: Direction,
        /// What is wrong, at which stream offset.
        error: WireError,
    },
    /// A record cut by the capture's snaplen: the stream misses bytes from here on.
    Snapped {
        /// Which way.
        direction: Direction,
        /// How many bytes are missing.
        missing: u32,
    },
    /// Bytes from a side that had already disconnected (not decoded).
    AfterClose {
        /// Which way.
        direction: Direction,
        /// How many bytes.
        bytes: u64,
    },
    /// A side disconnected.
    Closed {
        /// Which side.
        by: Side,
        /// A reset rather than an orderly close.
        reset: bool,
    },
    /// The connection's decoding ended.
    Ended {
        /// Why.
        reason: EndReason,
    },
    /// A record of the file that is not a valid vsock record, or a bad file.
    BadRecord {
        /// What is wrong, at which file offset.
        error: CaptureError,
    },
}

impl ItemKind {
    /// The item's name in JSON (`event`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Opened { .. } => "open",
            Self::Protocol { .. } => "protocol",
            Self::Frame { .. } => "frame",
            Self::Error { .. } => "error",
            Self::Snapped { .. } => "snapped",
            Self::AfterClose { .. } => "after_close",
            Self::Closed { .. } => "close",
            Self::Ended { .. } => "end",
            Self::BadRecord { .. } => "bad_record",
        }
    }

    /// Whether this is bad input (a wire error, a bad record, missing or stray bytes).
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            Self::Error { .. }
                | Self::BadRecord { .. }
                | Self::Snapped { .. }
                | Self::AfterClose { .. }
        )
    }
}

impl CaptureItem {
    /// The item as one JSON object: `event`, `time_ns`, `conn`, and the kind's fields (a frame's
    /// are those of [`DecodedFrame::to_json`], an error's those of [`WireError::to_json`]).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let mut v = match &self.kind {
            ItemKind::Opened { host, guest, by } => json!({
                "host": host.to_string(),
                "guest": guest.to_string(),
                "by": by.map(Side::name),
            }),
            ItemKind::Protocol {
                protocol,
                handshake,
                reason,
            } => json!({
                "protocol": protocol.to_string(),
                "handshake": handshake,
                "reason": reason,
            }),
            ItemKind::Frame { direction, frame } => {
                let mut f = frame.to_json();
                if let Some(o) = f.as_object_mut() {
                    o.insert("direction".into(), json!(direction));
                    o.insert("summary".into(), json!(frame.summary));
                }
                f
            }
            ItemKind::Error { direction, error } => {
                let mut e = error.to_json();
                if let Some(o) = e.as_object_mut() {
                    o.insert("direction".into(), json!(direction));
                }
                e
            }
            ItemKind::Snapped { direction, missing } => {
                json!({ "direction": direction, "missing": missing })
            }
            ItemKind::AfterClose { direction, bytes } => {
                json!({ "direction": direction, "bytes": bytes })
            }
            ItemKind::Closed { by, reset } => json!({ "by": by.name(), "reset": reset }),
            ItemKind::Ended { reason } => json!({ "reason": reason.name() }),
            ItemKind::BadRecord { error } => error.to_json(),
        };
        if let Some(o) = v.as_object_mut() {
            o.insert("event".into(), json!(self.kind.name()));
            o.insert("time_ns".into(), json!(self.time_ns));
            o.insert("conn".into(), json!(self.conn));
        }
        v
    }
}
