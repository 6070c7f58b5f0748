//! Raw host connections (`connect`, `send`, `recv`, `close` steps): bytes as the scenario gives
//! them, no protocol client in between, recorded by the inline tap like every host connection.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::expect::{Observed, check_recv};
use super::model::Expect;
use crate::io::BoxStream;
use crate::wire::protocol::Protocol;
use crate::wire::stream::{DecodeOptions, open_decoder_detecting_handshake};

/// Most bytes a raw connection keeps of what it read.
pub const MAX_RECEIVED: usize = 1 << 20;

/// A named raw connection.
pub struct RawConn {
    stream: BoxStream,
    /// Which way what this connection reads flows (`ToHost` for a host's, `ToGuest` for the
    /// guest's end).
    reads: crate::wire::Direction,
    received: Vec<u8>,
    eof: bool,
    error: Option<String>,
}

impl std::fmt::Debug for RawConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawConn")
            .field("received", &self.received.len())
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

impl RawConn {
    /// Wraps a host's connected stream.
    pub fn new(stream: BoxStream) -> Self {
        Self::reading(stream, crate::wire::Direction::ToHost)
    }

    /// Wraps a stream whose reads flow `reads`.
    pub fn reading(stream: BoxStream, reads: crate::wire::Direction) -> Self {
        Self {
            stream,
            reads,
            received: Vec::new(),
            eof: false,
            error: None,
        }
    }

    /// Writes `bytes` (within `within`).
    pub async fn send(&mut self, bytes: &[u8], within: Duration) -> Observed {
        let start = Instant::now();
        let r = tokio::time::timeout(within, async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        })
        .await;
        let (ok, kind, message) = match r {
            Ok(Ok(())) => (true, None, None),
            Ok(Err(e)) => (false, Some(io_kind(&e)), Some(e.to_string())),
            Err(_) => (
                false,
                Some("timed_out".to_string()),
                Some(format!("the write did not complete within {within:?}")),
            ),
        };
        Observed {
            ok,
            error_kind: kind,
            error_message: message,
            elapsed: start.elapsed(),
            ..Observed::default()
        }
    }

    /// Reads until `expect` holds, the connection ends, or `within` passes. What arrived stays
    /// for the next `recv` on this connection (each `recv` looks at everything read so far).
    pub async fn recv(
        &mut self,
        expect: &Expect,
        protocol: &Protocol,
        within: Duration,
    ) -> (Observed, Vec<String>) {
        let start = Instant::now();
        let deadline = start + within;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let o = self.observed(protocol, start.elapsed());
            let done = Instant::now() >= deadline;
            if let Some(bad) = check_recv(expect, &o, done || self.eof) {
                return (o, bad);
            }
            if self.eof {
                let bad = check_recv(expect, &o, true).unwrap_or_default();
                return (o, bad);
            }
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => {
                    let o = self.observed(protocol, start.elapsed());
                    let bad = check_recv(expect, &o, true).unwrap_or_default();
                    return (o, bad);
                }
                Ok(Ok(0)) => self.eof = true,
                Ok(Ok(n)) => {
                    let room = MAX_RECEIVED.saturating_sub(self.received.len());
                    self.received.extend_from_slice(&buf[..n.min(room)]);
                }
                Ok(Err(e)) => {
                    self.error = Some(io_kind(&e));
                    self.eof = true;
                }
            }
        }
    }

    fn observed(&self, protocol: &Protocol, elapsed: Duration) -> Observed {
        Observed {
            ok: self.error.is_none(),
            error_kind: self.error.clone(),
            received: self.received.clone(),
            eof: self.eof,
            frame_types: frame_types(protocol, &self.received, self.reads),
            elapsed,
            ..Observed::default()
        }
    }

    /// Closes the connection (both ways).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.stream.shutdown()).await;
    }
}

/// `reset`, `closed`, … for an IO error.
pub fn io_kind(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionReset | K::ConnectionAborted => "reset",
        K::BrokenPipe | K::UnexpectedEof => "closed",
        K::TimedOut => "timed_out",
        _ => "io",
    }
    .to_string()
}

/// The frame types in `bytes` flowing `direction`, decoded as `protocol` (a leading
/// hybrid-vsock line included).
pub fn frame_types(
    protocol: &Protocol,
    bytes: &[u8],
    direction: crate::wire::Direction,
) -> Vec<String> {
    let opts = DecodeOptions {
        direction: Some(direction),
        ..DecodeOptions::default()
    };
    let mut d = open_decoder_detecting_handshake(protocol, &opts);
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    // Bounded: every frame or error consumes bytes, and there are at most `bytes.len()` of them.
    for _ in 0..=bytes.len() {
        match d.decode(&mut buf) {
            Some(Ok(f)) => out.push(f.type_name),
            Some(Err(_)) => out.push(super::frames::DECODE_ERROR.into()),
            None => break,
        }
    }
    out
}
