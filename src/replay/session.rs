//! A recorded connection: its frames in capture order with their times relative to the
//! connection's start, split into request steps (a host frame and the guest frames answering it)
//! and unsolicited guest frames. Built from a capture's items by [`SessionBuilder`] (pure).
//!
//! Which guest frames answer which host frame: when the protocol correlates (some host frame has
//! an id: quantix `message_id`, qga `id`), a guest frame answers the latest earlier host frame
//! with its id, and a guest frame without a matching id is unsolicited (quantix `agent_ready`,
//! `telemetry`, events). Otherwise (fcexec) the guest frames after a host frame, up to the next
//! one, answer it; guest frames before the first host frame are unsolicited.
//! Hybrid-vsock handshake lines (`connect`, `ok`) are left out: the endpoint code makes its own.

use std::time::Duration;

use crate::capture::{CaptureItem, ConnId, ItemKind};
use crate::wire::Direction;
use crate::wire::protocol::Protocol;

use super::error::ReplayError;

/// One recorded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedFrame {
    /// Which way it went.
    pub direction: Direction,
    /// When, since the connection opened.
    pub at: Duration,
    /// The message type's name.
    pub type_name: String,
    /// The whole message as JSON.
    pub message: serde_json::Value,
    /// Its correlation id.
    pub correlation_id: Option<String>,
    /// Its length on the wire.
    pub len: u64,
}

/// A host frame and the guest frames that answered it (indices into [`Session::frames`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The host frame.
    pub request: usize,
    /// The guest frames answering it, in order.
    pub replies: Vec<usize>,
}

/// A recorded connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The connection's number in the capture.
    pub conn: ConnId,
    /// Its protocol.
    pub protocol: Protocol,
    /// All its frames in capture order.
    pub frames: Vec<RecordedFrame>,
    /// The host frames with their replies, in order.
    pub steps: Vec<Step>,
    /// Guest frames that answer no host frame, in order.
    pub unsolicited: Vec<usize>,
    /// Whether the protocol correlates requests and replies by id.
    pub uses_ids: bool,
}

impl Session {
    /// Builds a session from frames (steps and unsolicited frames are derived).
    pub fn new(conn: ConnId, protocol: Protocol, frames: Vec<RecordedFrame>) -> Self {
        let uses_ids = frames
            .iter()
            .any(|f| f.direction == Direction::ToGuest && f.correlation_id.is_some());
        let mut steps: Vec<Step> = Vec::new();
        let mut unsolicited = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            if f.direction == Direction::ToGuest {
                steps.push(Step {
                    request: i,
                    replies: Vec::new(),
                });
                continue;
            }
            let owner = if uses_ids {
                f.correlation_id.as_ref().and_then(|id| {
                    steps
                        .iter()
                        .rposition(|s| frames[s.request].correlation_id.as_ref() == Some(id))
                })
            } else {
                steps.len().checked_sub(1)
            };
            match owner {
                Some(s) => steps[s].replies.push(i),
                None => unsolicited.push(i),
            }
        }
        Self {
            conn,
            protocol,
            frames,
            steps,
            unsolicited,
            uses_ids,
        }
    }

    /// The number (1-based, among the guest's frames) of guest frame `index`, for diffs.
    pub fn guest_number(&self, index: usize) -> usize {
        self.frames[..=index.min(self.frames.len().saturating_sub(1))]
            .iter()
            .filter(|f| f.direction == Direction::ToHost)
            .count()
    }
}

/// Collects one connection of a capture from its items (pure): push items in capture order
/// until [`SessionBuilder::push`] says the connection ended, then [`SessionBuilder::finish`].
#[derive(Debug)]
pub struct SessionBuilder {
    want: Option<ConnId>,
    conn: Option<ConnId>,
    start_ns: Option<u64>,
    protocol: Option<Protocol>,
    frames: Vec<RecordedFrame>,
    done: bool,
}

impl SessionBuilder {
    /// Collects connection `want`, or the first connection that carries a frame.
    pub fn new(want: Option<ConnId>) -> Self {
        Self {
            want,
            conn: None,
            start_ns: None,
            protocol: None,
            frames: Vec::new(),
            done: false,
        }
    }

    /// Takes one item; true once the wanted connection has ended (later items are ignored).
    pub fn push(&mut self, item: &CaptureItem) -> bool {
        if self.done || item.conn == 0 {
            return self.done;
        }
        match (self.want, self.conn) {
            (Some(w), _) if w != item.conn => return false,
            (None, Some(c)) if c != item.conn => return false,
            _ => {}
        }
        match &item.kind {
            ItemKind::Opened { .. } if self.conn.is_none() => {
                self.start_ns = Some(item.time_ns);
            }
            ItemKind::Protocol { protocol, .. } if self.want.is_some() || self.conn.is_none() => {
                self.protocol = Some(protocol.clone());
            }
            ItemKind::Frame { direction, frame } => {
                if frame.type_name == "connect" || frame.type_name == "ok" {
                    return false;
                }
                self.conn = Some(item.conn);
                let start = *self.start_ns.get_or_insert(item.time_ns);
                self.frames.push(RecordedFrame {
                    direction: *direction,
                    at: Duration::from_nanos(item.time_ns.saturating_sub(start)),
                    type_name: frame.type_name.clone(),
                    message: frame.message.clone(),
                    correlation_id: frame.correlation_id.clone(),
                    len: frame.len,
                });
            }
            ItemKind::Ended { .. } => {
                if self.conn == Some(item.conn) || self.want == Some(item.conn) {
                    self.done = true;
                } else {
                    // A connection without frames: forget what it set.
                    self.start_ns = None;
                    self.protocol = None;
                }
            }
            _ => {}
        }
        self.done
    }

    /// The session.
    pub fn finish(self) -> Result<Session, ReplayError> {
        let want = self.want.unwrap_or(1);
        let Some(conn) = self.conn else {
            return Err(ReplayError::NoConnection(want));
        };
        let protocol = self.protocol.ok_or(ReplayError::NoProtocol(conn))?;
        Ok(Session::new(conn, protocol, self.frames))
    }
}
