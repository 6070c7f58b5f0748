//! The host client's one error type. Every failure a user meets has a stable kind (printed by
//! `guestwire call` and in JSON as `error.kind`) and carries what a diagnosis needs: the phase that
//! timed out, the partial data before a reset, the handshake line received, the raw bytes of a
//! malformed reply.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use crate::io::{ConnectError, HandshakeError, ReadError, WriteError};
use crate::wire::WireError;
use crate::wire::hex::to_hex;

/// What the client was doing when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Opening the socket (Unix, vsock, TCP).
    Connect,
    /// The channel's handshake (hybrid vsock `CONNECT`/`OK`, qga's sync).
    Handshake,
    /// Sending a request and waiting for its reply.
    Request,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Handshake => "handshake",
            Self::Request => "request",
        })
    }
}

/// A failed host-side operation.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing exists at the socket path.
    #[error("{path} does not exist: is the VM (or mock) running, and is this the right path?")]
    NoSuchSocket {
        /// The path.
        path: String,
    },
    /// The socket exists but nothing listens (a stale socket file), or nothing listens on the port.
    #[error(
        "connection to {path} refused: nothing is listening (a stale socket file left by a VMM that exited?)"
    )]
    Refused {
        /// The path or address.
        path: String,
    },
    /// No permission to use the socket.
    #[error("permission denied on {path}")]
    PermissionDenied {
        /// The path.
        path: String,
    },
    /// The path is not a socket.
    #[error("{path} is not a socket")]
    NotASocket {
        /// The path.
        path: String,
    },
    /// The listen backlog is full: another client probably holds this single-client socket.
    #[error("{path} is busy: another client probably holds this single-client socket")]
    Busy {
        /// The path.
        path: String,
    },
    /// A deadline passed.
    #[error(
        "timed out after {after:?} in the {phase} phase{}",
        detail_suffix(detail)
    )]
    TimedOut {
        /// Which phase.
        phase: Phase,
        /// The deadline.
        after: Duration,
        /// What had arrived, if anything.
        detail: String,
    },
    /// The agent (or VMM) reset the connection.
    #[error("connection reset during {phase}{}", detail_suffix(detail))]
    Reset {
        /// Which phase.
        phase: Phase,
        /// What had arrived before the reset (e.g. "3 log lines", "12 bytes of a frame").
        detail: String,
    },
    /// The peer closed the connection before the operation finished.
    #[error(
        "the peer closed the connection during {phase}{}",
        detail_suffix(detail)
    )]
    Closed {
        /// Which phase.
        phase: Phase,
        /// What had arrived before the close.
        detail: String,
    },
    /// The hybrid-vsock handshake failed: the VMM closed without `OK` (nothing listens on the
    /// guest port) or answered something else.
    #[error("hybrid-vsock handshake for guest port {port} failed: {reason}")]
    HandshakeFailed {
        /// The guest port asked for.
        port: u32,
        /// What went wrong, with the line received.
        reason: String,
        /// The bytes received, if any.
        received: Bytes,
    },
    /// AF_VSOCK reaches no guest with this CID (see [`ConnectError::NoVsockDevice`]).
    #[error(
        "no AF_VSOCK device reaches CID {cid} ({reason}): if the VMM exposes the guest's vsock as a Unix socket (Firecracker / Cloud Hypervisor hybrid vsock), dial hvsock:<uds_path>:{port} instead"
    )]
    NoVsockDevice {
        /// The CID dialed.
        cid: u32,
        /// The port dialed.
        port: u32,
        /// The OS error's text.
        reason: String,
    },
    /// The reply does not parse.
    #[error("malformed reply: {error}")]
    Malformed {
        /// The decoder's error (offset, kind, preview).
        error: WireError,
        /// The raw bytes of the bad frame (bounded by the maximum frame size).
        raw: Bytes,
    },
    /// The reply parsed but breaks the protocol (wrong type, unknown type, missing field, …).
    #[error("protocol error: {reason}")]
    Protocol {
        /// What is wrong.
        reason: String,
    },
    /// The agent answered with an error of its own.
    #[error("the agent answered with an error: {code}: {message}")]
    Agent {
        /// The agent's error class or code, e.g. `CommandNotFound`, `http 500`.
        code: String,
        /// Its message.
        message: String,
    },
    /// Gave up after retrying.
    #[error("gave up after {attempts} attempts: {last}")]
    GaveUp {
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        last: Box<ClientError>,
    },
    /// The request cannot be expressed (bad arguments, message too large).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Another OS error.
    #[error("{phase}: {source}")]
    Io {
        /// Which phase.
        phase: Phase,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

impl ClientError {
    /// A stable snake_case name: `no_such_socket`, `refused`, `permission_denied`,
    /// `not_a_socket`, `busy`, `timed_out`, `reset`, `closed`, `handshake_failed`,
    /// `no_vsock_device`, `malformed`,
    /// `protocol`, `agent_error`, `invalid`, `io` (a retried failure has its last attempt's kind).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoSuchSocket { .. } => "no_such_socket",
            Self::Refused { .. } => "refused",
            Self::PermissionDenied { .. } => "permission_denied",
            Self::NotASocket { .. } => "not_a_socket",
            Self::Busy { .. } => "busy",
            Self::TimedOut { .. } => "timed_out",
            Self::Reset { .. } => "reset",
            Self::Closed { .. } => "closed",
            Self::HandshakeFailed { .. } => "handshake_failed",
            Self::NoVsockDevice { .. } => "no_vsock_device",
            Self::Malformed { .. } => "malformed",
            Self::Protocol { .. } => "protocol",
            Self::Agent { .. } => "agent_error",
            Self::GaveUp { last, .. } => last.kind(),
            Self::Invalid(_) => "invalid",
            Self::Io { .. } => "io",
        }
    }

    /// Whether a fresh attempt could succeed (the dialer retries these): the socket missing or
    /// refusing, busy, a handshake refused or timed out, a reset while connecting.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::NoSuchSocket { .. }
            | Self::Refused { .. }
            | Self::Busy { .. }
            | Self::HandshakeFailed { .. } => true,
            Self::TimedOut { phase, .. }
            | Self::Reset { phase, .. }
            | Self::Closed { phase, .. } => *phase != Phase::Request,
            _ => false,
        }
    }

    /// The error as JSON: `{"kind", "message", …}` plus `phase`, `hex` (raw or received bytes)
    /// and `attempts` where they apply.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "kind": self.kind(), "message": self.to_string() });
        let obj = v.as_object_mut();
        let Some(obj) = obj else { return v };
        match self {
            Self::TimedOut { phase, after, .. } => {
                obj.insert("phase".into(), serde_json::json!(phase));
                obj.insert(
                    "after_ms".into(),
                    serde_json::json!(after.as_millis() as u64),
                );
            }
            Self::Reset { phase, .. } | Self::Closed { phase, .. } | Self::Io { phase, .. } => {
                obj.insert("phase".into(), serde_json::json!(phase));
            }
            Self::HandshakeFailed { port, received, .. } => {
                obj.insert("port".into(), serde_json::json!(port));
                obj.insert("hex".into(), serde_json::json!(to_hex(received)));
            }
            Self::Malformed { error, raw } => {
                obj.insert("wire".into(), error.to_json());
                obj.insert("hex".into(), serde_json::json!(to_hex(raw)));
            }
            Self::Agent { code, .. } => {
                obj.insert("code".into(), serde_json::json!(code));
            }
            Self::GaveUp { attempts, last } => {
                obj.insert("attempts".into(), serde_json::json!(attempts));
                obj.insert("last".into(), last.to_json());
            }
            _ => {}
        }
        v
    }

    /// Maps a read failure in `phase`; `raw` is the bad frame's bytes when the caller kept them.
    pub fn from_read(phase: Phase, err: ReadError, raw: Option<Bytes>) -> Self {
        match err {
            ReadError::Wire(WireError::Truncated { available, .. }) => Self::Closed {
                phase,
                detail: format!("{available} bytes of an unfinished frame"),
            },
            ReadError::Wire(error) => {
                let raw = raw.unwrap_or_else(|| Bytes::copy_from_slice(error.bytes().bytes()));
                Self::Malformed { error, raw }
            }
            ReadError::Reset { partial_bytes } => Self::Reset {
                phase,
                detail: partial(partial_bytes),
            },
            ReadError::TimedOut {
                after,
                partial_bytes,
            } => Self::TimedOut {
                phase,
                after,
                detail: partial(partial_bytes),
            },
            ReadError::BufferLimit { limit, buffered } => Self::Protocol {
                reason: format!("{buffered} bytes without a frame (limit {limit})"),
            },
            ReadError::Io { source, .. } => Self::Io { phase, source },
        }
    }

    /// Maps a write failure in `phase`.
    pub fn from_write(phase: Phase, err: WriteError) -> Self {
        match err {
            WriteError::Encode(e) => Self::Invalid(e.to_string()),
            WriteError::Reset { written, frame_len } => Self::Reset {
                phase,
                detail: format!("{written} of {frame_len} bytes of the request written"),
            },
            WriteError::Io { source, .. } => Self::Io { phase, source },
        }
    }
}

fn partial(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!("{n} bytes of an unfinished frame had arrived")
    }
}

impl From<ConnectError> for ClientError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::NoSuchSocket { path } => Self::NoSuchSocket { path },
            ConnectError::Refused { path } => Self::Refused { path },
            ConnectError::PermissionDenied { path } => Self::PermissionDenied { path },
            ConnectError::NotASocket { path } => Self::NotASocket { path },
            ConnectError::Busy { path } => Self::Busy { path },
            ConnectError::TimedOut { after, endpoint } => Self::TimedOut {
                phase: Phase::Connect,
                after,
                detail: endpoint,
            },
            ConnectError::Handshake(h) => h.into(),
            ConnectError::Unsupported { endpoint, reason } => {
                Self::Invalid(format!("{endpoint}: {reason}"))
            }
            ConnectError::NoVsockDevice { cid, port, source } => Self::NoVsockDevice {
                cid,
                port,
                reason: source.to_string(),
            },
            ConnectError::Io { source, .. } => Self::Io {
                phase: Phase::Connect,
                source,
            },
        }
    }
}

impl From<HandshakeError> for ClientError {
    fn from(e: HandshakeError) -> Self {
        match e {
            HandshakeError::Refused { port, error } => Self::HandshakeFailed {
                port,
                reason: match &error {
                    WireError::BadHandshake { reason, bytes, .. } if bytes.bytes().is_empty() => {
                        reason.clone()
                    }
                    WireError::BadHandshake { reason, bytes, .. } => {
                        format!("{reason}: {:?}", String::from_utf8_lossy(bytes.bytes()))
                    }
                    other => other.to_string(),
                },
                received: Bytes::copy_from_slice(error.bytes().bytes()),
            },
            HandshakeError::TimedOut { after, port } => Self::TimedOut {
                phase: Phase::Handshake,
                after,
                detail: format!("no OK for CONNECT {port}"),
            },
            HandshakeError::Io { port, source } => {
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) {
                    Self::HandshakeFailed {
                        port,
                        reason: format!("the VMM reset the connection ({source})"),
                        received: Bytes::new(),
                    }
                } else {
                    Self::Io {
                        phase: Phase::Handshake,
                        source,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_json() {
        let e = ClientError::GaveUp {
            attempts: 5,
            last: Box::new(ClientError::Refused { path: "/x".into() }),
        };
        assert_eq!(e.kind(), "refused");
        let j = e.to_json();
        assert_eq!(j["attempts"], 5);
        assert_eq!(j["last"]["kind"], "refused");
        let t = ClientError::TimedOut {
            phase: Phase::Request,
            after: Duration::from_secs(5),
            detail: String::new(),
        };
        assert_eq!(t.to_json()["phase"], "request");
        assert!(!t.is_retryable());
        assert!(ClientError::NoSuchSocket { path: "/x".into() }.is_retryable());
    }
}
