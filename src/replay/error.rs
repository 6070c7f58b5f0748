//! Why a replay cannot go on.

use crate::capture::ConnId;

/// A replay error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The capture has no such connection (or none at all).
    #[error("the capture has no connection {0} with decoded frames")]
    NoConnection(ConnId),
    /// The connection's protocol was never decided (no frames).
    #[error("connection {0}: its protocol could not be decided")]
    NoProtocol(ConnId),
    /// Replay cannot re-encode frames of this protocol.
    #[error(
        "replay cannot encode {0} frames (supported: quantix, quantix-legacy, fcexec, qga, volant, ch-api)"
    )]
    Unsupported(String),
    /// A recorded message could not be turned back into the protocol's message.
    #[error("cannot re-encode a recorded {type_name} frame: {reason}")]
    Encode {
        /// The frame's type.
        type_name: String,
        /// What went wrong.
        reason: String,
    },
}

impl ReplayError {
    /// A short snake_case name for JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoConnection(_) => "no_connection",
            Self::NoProtocol(_) => "no_protocol",
            Self::Unsupported(_) => "unsupported",
            Self::Encode { .. } => "encode",
        }
    }
}
