//! Why a mock guest connection ended abnormally.

use crate::io::{ReadError, WriteError};

/// A mock guest connection's failure (the connection ends; the agent keeps serving others).
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// Reading the host's requests failed (reset, IO error, or a framing error the protocol
    /// cannot recover from).
    #[error("reading requests: {0}")]
    Read(#[from] ReadError),
    /// Writing a reply or event failed.
    #[error("writing a reply: {0}")]
    Write(#[from] WriteError),
    /// A write did not complete within the agent's write timeout (the host is not reading).
    #[error("a write did not complete within {0:?}: the host is not reading")]
    WriteTimedOut(std::time::Duration),
    /// Any other IO error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// How a mock guest connection went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionReport {
    /// Requests answered.
    pub requests: u64,
    /// Unsolicited events sent (telemetry, ready, error events).
    pub events: u64,
    /// Bad frames received (reported, and answered where the protocol allows).
    pub bad_frames: u64,
}
