//! Hybrid vsock over a Unix socket, as Firecracker, Cloud Hypervisor and vhost-device-vsock expose
//! it: the host connects to the VMM's `uds_path`, writes `CONNECT <port>\n`, and the VMM answers
//! `OK <n>\n` before the stream becomes the guest connection.
//!
//! - [`handshake_client`]: the host side, as seed 001's `DialGuest` does it — require a reply that
//!   starts with `OK `, and keep every byte the VMM sent after the newline (a client that dropped
//!   its buffered reader here would lose the guest's first bytes). The stream comes back as a
//!   [`Prefixed`] stream that yields those bytes first.
//! - [`handshake_vmm`]: the VMM side for one accepted connection, with the flavour's parsing rules
//!   ([`crate::wire::hybrid::ConnectParser`]); a port nobody listens on is closed silently, as the
//!   real VMMs do.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::wire::WireError;
use crate::wire::hybrid::{ConnectOutcome, ConnectParser, Flavour, OkParser, connect_line};

/// A stream that yields `prefix` before reading from `inner`; writes go straight to `inner`.
#[derive(Debug)]
pub struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    /// Wraps `inner`, to be read after `prefix`.
    pub fn new(prefix: Bytes, inner: S) -> Self {
        Self { prefix, inner }
    }

    /// Bytes of the prefix not read yet.
    pub fn pending(&self) -> &[u8] {
        &self.prefix
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Why a hybrid-vsock handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The VMM answered something other than `OK <port>`, or closed without answering (nothing
    /// listens on that guest port).
    #[error("hybrid-vsock handshake for guest port {port} failed: {error}")]
    Refused {
        /// The guest port asked for.
        port: u32,
        /// What the VMM sent (or that it sent nothing).
        error: WireError,
    },
    /// No complete answer within the deadline.
    #[error(
        "no answer to CONNECT {port} within {after:?} (is the guest agent listening on that port?)"
    )]
    TimedOut {
        /// The guest port asked for.
        port: u32,
        /// The deadline.
        after: Duration,
    },
    /// The socket failed.
    #[error("hybrid-vsock handshake for guest port {port}: {source}")]
    Io {
        /// The guest port asked for.
        port: u32,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl HandshakeError {
    /// `handshake_failed`, `timed_out` or `io` (a reset during the handshake is `handshake_failed`:
    /// the VMM refused the connection).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Refused { .. } => "handshake_failed",
            Self::TimedOut { .. } => "timed_out",
            Self::Io { source, .. } if is_reset(source) => "handshake_failed",
            Self::Io { .. } => "io",
        }
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Runs the host side of the handshake on `stream`: sends `CONNECT port`, waits (at most
/// `deadline`) for `OK n`. Returns the stream with any bytes that followed the `OK` line in front,
/// and the port number the VMM answered.
pub async fn handshake_client<S>(
    mut stream: S,
    port: u32,
    deadline: Duration,
) -> Result<(Prefixed<S>, u32), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let exchange = async {
        stream
            .write_all(&connect_line(port))
            .await
            .map_err(|source| HandshakeError::Io { port, source })?;
        let mut parser = OkParser::new();
        let mut buf = BytesMut::with_capacity(128);
        loop {
            if let Some(result) = parser.parse(&mut buf) {
                return result
                    .map(|ok| (buf, ok))
                    .map_err(|error| HandshakeError::Refused { port, error });
            }
            let n = match stream.read_buf(&mut buf).await {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(HandshakeError::Io { port, source }),
            };
            if n == 0 {
                let error = parser.parse_eof(&mut buf).and_then(Result::err);
                return Err(HandshakeError::Refused {
                    port,
                    error: error.unwrap_or_else(|| WireError::BadHandshake {
                        offset: 0,
                        reason: "the VMM closed the connection without a reply".into(),
                        bytes: crate::wire::HexPreview::of(&buf),
                    }),
                });
            }
        }
    };
    match tokio::time::timeout(deadline, exchange).await {
        Ok(Ok((rest, ok))) => Ok((Prefixed::new(rest.freeze(), stream), ok)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(HandshakeError::TimedOut {
            port,
            after: deadline,
        }),
    }
}

/// What the VMM side of a handshake decided.
#[derive(Debug)]
pub enum VmmHandshake<S> {
    /// The host asked for a port that is served: `OK` was sent; bytes that came with the command
    /// are in front of the stream.
    Accepted {
        /// The stream, ready for the guest protocol.
        stream: Prefixed<S>,
        /// The guest port.
        port: u32,
    },
    /// The command was malformed, named a port nobody listens on, or did not come in time; the
    /// connection was closed without a word, as the real VMMs do.
    Closed {
        /// Why.
        reason: String,
    },
}

/// Runs the VMM side of the handshake on an accepted connection: reads `CONNECT <port>` by the
/// flavour's rules within `deadline` (Firecracker's is 2000 ms), and answers `OK` when
/// `serves(port)` gives the answer's port number.
pub async fn handshake_vmm<S, F>(
    mut stream: S,
    flavour: Flavour,
    deadline: Duration,
    serves: F,
) -> VmmHandshake<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(u32) -> Option<u32>,
{
    let mut parser = ConnectParser::new(flavour);
    let read = async {
        let mut chunk = [0u8; 64];
        loop {
            let outcome = match stream.read(&mut chunk).await {
                Ok(0) => parser.on_eof(),
                Ok(n) => parser.on_read(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read failed: {e}")),
            };
            match outcome {
                ConnectOutcome::NeedMore => continue,
                ConnectOutcome::Connect { port, rest } => return Ok((port, rest)),
                ConnectOutcome::Reject { reason, .. } => return Err(reason.to_string()),
            }
        }
    };
    let (port, rest) = match tokio::time::timeout(deadline, read).await {
        Ok(Ok(v)) => v,
        Ok(Err(reason)) => return VmmHandshake::Closed { reason },
        Err(_) => {
            return VmmHandshake::Closed {
                reason: format!("no complete CONNECT line within {deadline:?}"),
            };
        }
    };
    let Some(answer) = serves(port) else {
        let _ = stream.shutdown().await;
        return VmmHandshake::Closed {
            reason: format!("nothing listens on guest port {port}"),
        };
    };
    let reply = format!("OK {answer}\n");
    if let Err(e) = stream.write_all(reply.as_bytes()).await {
        return VmmHandshake::Closed {
            reason: format!("could not answer OK: {e}"),
        };
    }
    VmmHandshake::Accepted {
        stream: Prefixed::new(Bytes::from(rest), stream),
        port,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn client_keeps_bytes_after_ok() {
        let (client, mut vmm) = tokio::io::duplex(1024);
        let server = tokio::spawn(async move {
            let mut line = [0u8; 13];
            vmm.read_exact(&mut line).await.expect("read CONNECT");
            assert_eq!(&line, b"CONNECT 1024\n");
            vmm.write_all(b"OK 1073741824\nHELLO").await.expect("write");
            vmm
        });
        let (mut stream, ok) = handshake_client(client, 1024, Duration::from_secs(5))
            .await
            .expect("handshake");
        assert_eq!(ok, 1_073_741_824);
        let mut hello = [0u8; 5];
        stream.read_exact(&mut hello).await.expect("read");
        assert_eq!(&hello, b"HELLO");
        drop(server.await);
    }

    #[tokio::test]
    async fn client_reports_eof_as_nothing_listening() {
        let (client, vmm) = tokio::io::duplex(1024);
        drop(vmm);
        let err = handshake_client(client, 52, Duration::from_secs(5))
            .await
            .expect_err("error");
        assert_eq!(err.kind(), "handshake_failed", "{err}");
    }

    #[tokio::test]
    async fn client_rejects_a_line_without_ok() {
        let (client, mut vmm) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            let mut line = [0u8; 11];
            let _ = vmm.read_exact(&mut line).await;
            let _ = vmm.write_all(b"ERR no such port\n").await;
            vmm
        });
        match handshake_client(client, 52, Duration::from_secs(5)).await {
            Err(HandshakeError::Refused { error, .. }) => {
                assert!(error.bytes().bytes().starts_with(b"ERR"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn client_times_out_on_a_silent_vmm() {
        let (client, _vmm) = tokio::io::duplex(1024);
        let err = handshake_client(client, 52, Duration::from_secs(5))
            .await
            .expect_err("error");
        assert!(matches!(err, HandshakeError::TimedOut { .. }), "{err}");
    }

    #[tokio::test]
    async fn vmm_serves_known_ports_and_closes_unknown_ones() {
        let (mut host, vmm) = tokio::io::duplex(1024);
        host.write_all(b"CONNECT 1024\nPING").await.expect("write");
        match handshake_vmm(vmm, Flavour::Firecracker, Duration::from_secs(2), |p| {
            (p == 1024).then_some(1 << 30)
        })
        .await
        {
            VmmHandshake::Accepted { mut stream, port } => {
                assert_eq!(port, 1024);
                let mut ping = [0u8; 4];
                stream
                    .read_exact(&mut ping)
                    .await
                    .expect("payload after the command");
                assert_eq!(&ping, b"PING");
            }
            VmmHandshake::Closed { reason } => panic!("{reason}"),
        }
        let mut ok = [0u8; 14];
        host.read_exact(&mut ok).await.expect("OK line");
        assert_eq!(&ok, b"OK 1073741824\n");

        let (mut host, vmm) = tokio::io::duplex(1024);
        host.write_all(b"CONNECT 9\n").await.expect("write");
        let outcome = handshake_vmm(vmm, Flavour::Firecracker, Duration::from_secs(2), |p| {
            (p == 1024).then_some(p)
        })
        .await;
        assert!(matches!(outcome, VmmHandshake::Closed { .. }));
        let mut rest = Vec::new();
        host.read_to_end(&mut rest).await.expect("EOF");
        assert!(rest.is_empty(), "closed without a word");
    }
}
