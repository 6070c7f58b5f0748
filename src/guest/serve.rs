//! One entry point for every mock agent: serve one host connection with the agent of a protocol.

use std::sync::Arc;

use super::{ConnectionReport, GuestConfig, GuestError};
use crate::io::BoxStream;
use crate::wire::protocol::Protocol;

/// Serves one connection with the mock agent of `protocol` (quantix, quantix-legacy, fcexec, qga,
/// volant). Other protocols have no mock agent: the connection is closed at once with an empty
/// report.
pub async fn serve_connection(
    protocol: &Protocol,
    stream: BoxStream,
    cfg: Arc<GuestConfig>,
) -> Result<ConnectionReport, GuestError> {
    use crate::host::quantix::Framing;
    match protocol {
        Protocol::Quantix => super::quantix::serve_connection(stream, cfg, Framing::Qtx1).await,
        Protocol::QuantixLegacy => {
            super::quantix::serve_connection(stream, cfg, Framing::Legacy).await
        }
        Protocol::Fcexec => super::fcexec::serve_connection(stream, cfg).await,
        Protocol::Volant => super::volant::serve_connection(stream, cfg).await,
        Protocol::Qga => super::qga::serve_connection(stream, cfg).await,
        _ => Ok(ConnectionReport::default()),
    }
}

/// Whether `protocol` has a mock agent.
pub fn has_mock_agent(protocol: &Protocol) -> bool {
    matches!(
        protocol,
        Protocol::Quantix
            | Protocol::QuantixLegacy
            | Protocol::Fcexec
            | Protocol::Qga
            | Protocol::Volant
    )
}
