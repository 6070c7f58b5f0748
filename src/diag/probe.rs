//! `--probe`: one connection through the host clients (quantix, qga; fcexec and volant through
//! [`call_once`]), a ping under deadlines, and a [`ProbeReport`] of what happened: the outcome,
//! the ping's time, the first bytes the agent sent (kept by a recording wrapper, and named by
//! `wire::detect`), the unsolicited events. When a plain Unix connection is closed without a
//! byte and `--vsock-port` is given, a second connection checks whether the socket answers a
//! hybrid-vsock `CONNECT`.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::{Instant, timeout};

use super::probe_rules::{HybridCheck, ProbeOutcome, ProbeReport};
use crate::host::quantix::{Framing, QuantixClient};
use crate::host::retry::RetryPolicy;
use crate::host::{CallOp, ClientError, DialOptions, QgaClient, call_once, dial_once};
use crate::io::{BoxStream, Endpoint, Prefixed, connect_unix};
use crate::wire::detect::{DETECT_WINDOW, detect};
use crate::wire::hex::to_hex;
use crate::wire::protocol::Protocol;

/// How to probe.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The protocol, or `None` for auto (sniff the first bytes, then the socket's name).
    pub protocol: Option<Protocol>,
    /// Deadline of each phase (connect, handshake, the ping).
    pub deadline: Duration,
    /// How long `auto` waits for the agent to speak first.
    pub sniff: Duration,
    /// The guest port for the hybrid-vsock check of a plain socket closed without a byte.
    pub vsock_port: Option<u32>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            protocol: None,
            deadline: Duration::from_secs(3),
            sniff: Duration::from_millis(300),
            vsock_port: None,
        }
    }
}

/// A stream that keeps a copy of the first bytes read from it.
struct Recording<S> {
    inner: S,
    seen: Arc<Mutex<(Vec<u8>, usize)>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Recording<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let new = &buf.filled()[before..];
            if let Ok(mut seen) = self.seen.lock() {
                let room = DETECT_WINDOW.saturating_sub(seen.0.len());
                seen.0.extend_from_slice(&new[..new.len().min(room)]);
                seen.1 = seen.1.saturating_add(new.len());
            }
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recording<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A protocol guessed from a socket's file name (`org.qemu.guest_agent.0`, `*.agent.sock`, …).
pub fn protocol_from_name(path: &str) -> Option<Protocol> {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    if name.contains("guest_agent") || name.contains("qga") {
        Some(Protocol::Qga)
    } else if name.contains("quantix") || name.ends_with(".agent.sock") {
        Some(Protocol::Quantix)
    } else {
        None
    }
}

fn dial_options(deadline: Duration) -> DialOptions {
    let mut o = DialOptions {
        retry: RetryPolicy::once(),
        ..DialOptions::default()
    };
    o.deadlines.connect = Some(deadline);
    o.deadlines.handshake = Some(deadline);
    o.deadlines.request = Some(deadline);
    o.deadlines.ping = Some(deadline);
    o
}

fn outcome_of(e: &ClientError) -> ProbeOutcome {
    let message = e.to_string();
    match e {
        ClientError::GaveUp { last, .. } => outcome_of(last),
        ClientError::HandshakeFailed { port, received, .. } if received.is_empty() => {
            ProbeOutcome::HandshakeEof { port: *port }
        }
        ClientError::HandshakeFailed { port, received, .. } => ProbeOutcome::HandshakeNotOk {
            port: *port,
            line: String::from_utf8_lossy(received).trim_end().to_string(),
        },
        ClientError::TimedOut { phase, .. } => ProbeOutcome::TimedOut {
            phase: phase.to_string(),
        },
        ClientError::Closed { phase, .. } => ProbeOutcome::Closed {
            phase: phase.to_string(),
        },
        ClientError::Malformed { .. } | ClientError::Protocol { .. } => ProbeOutcome::BadReply {
            kind: e.kind().into(),
            message,
        },
        ClientError::NoSuchSocket { .. }
        | ClientError::Refused { .. }
        | ClientError::PermissionDenied { .. }
        | ClientError::NotASocket { .. }
        | ClientError::Busy { .. } => ProbeOutcome::ConnectFailed {
            kind: e.kind().into(),
            message,
        },
        _ => ProbeOutcome::Failed {
            kind: e.kind().into(),
            message,
        },
    }
}

/// Probes `endpoint`. Never panics and never waits longer than a few deadlines.
pub async fn probe(endpoint: &Endpoint, opts: &ProbeOptions) -> ProbeReport {
    let mut report = ProbeReport {
        endpoint: endpoint.to_string(),
        protocol: opts.protocol.as_ref().map(ToString::to_string),
        protocol_source: if opts.protocol.is_some() {
            "--protocol".into()
        } else {
            "auto".into()
        },
        outcome: ProbeOutcome::Undetermined {
            reason: String::new(),
        },
        ping_ms: None,
        received: 0,
        first_bytes_hex: String::new(),
        detected: None,
        detect_reason: None,
        events: 0,
        hybrid_check: None,
    };
    let dial = dial_options(opts.deadline);
    let stream = match dial_once(endpoint, &dial).await {
        Ok(s) => s,
        Err(e) => {
            report.outcome = outcome_of(&e);
            return report;
        }
    };
    let seen = Arc::new(Mutex::new((Vec::new(), 0usize)));
    let mut stream: BoxStream = Box::new(Recording {
        inner: stream,
        seen: seen.clone(),
    });
    let protocol = match &opts.protocol {
        Some(p) => p.clone(),
        None => {
            // Auto: let the agent speak first, then put its bytes back in front of the stream.
            let mut buf = vec![0u8; DETECT_WINDOW];
            let n = match timeout(opts.sniff, stream.read(&mut buf)).await {
                Ok(Ok(n)) => n,
                _ => 0,
            };
            buf.truncate(n);
            let name = endpoint
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let guess = detect(&buf).protocol.filter(|p| *p != Protocol::Raw);
            let chosen = match (guess, protocol_from_name(&name)) {
                (Some(p), _) => {
                    report.protocol_source = "detected from the agent's first bytes".into();
                    p
                }
                (None, Some(p)) => {
                    report.protocol_source = "guessed from the socket's name".into();
                    p
                }
                (None, None) => {
                    report.outcome = ProbeOutcome::Undetermined {
                        reason: format!(
                            "the agent sent {n} bytes within {:?} and the name says nothing",
                            opts.sniff
                        ),
                    };
                    return report;
                }
            };
            report.protocol = Some(chosen.to_string());
            stream = Box::new(Prefixed::new(Bytes::from(buf), stream));
            chosen
        }
    };
    let start = Instant::now();
    let result = ping(&protocol, endpoint, stream, &dial, opts.deadline).await;
    report.ping_ms = Some(start.elapsed().as_millis() as u64);
    match result {
        Ok((summary, events)) => {
            report.events = events;
            report.outcome = ProbeOutcome::Answered { summary };
        }
        Err((e, events)) => {
            report.events = events;
            report.outcome = outcome_of(&e);
        }
    }
    if let Ok(seen) = seen.lock() {
        report.received = seen.1;
        report.first_bytes_hex = to_hex(&seen.0[..seen.0.len().min(64)]);
        if !seen.0.is_empty() {
            let d = detect(&seen.0);
            report.detected = d.protocol.map(|p| p.to_string());
            report.detect_reason = Some(d.reason);
        }
    }
    if let (ProbeOutcome::Closed { .. }, 0, Endpoint::Unix(path), Some(port)) =
        (&report.outcome, report.received, endpoint, opts.vsock_port)
    {
        report.hybrid_check = Some(hybrid_check(path, port, opts.deadline).await);
    }
    report
}

type PingResult = Result<(String, u64), (ClientError, u64)>;

async fn ping(
    protocol: &Protocol,
    endpoint: &Endpoint,
    stream: BoxStream,
    dial: &DialOptions,
    deadline: Duration,
) -> PingResult {
    let timed_out = || ClientError::TimedOut {
        phase: crate::host::Phase::Request,
        after: deadline,
        detail: String::new(),
    };
    match protocol {
        Protocol::Quantix | Protocol::QuantixLegacy => {
            let framing = if *protocol == Protocol::Quantix {
                Framing::Qtx1
            } else {
                Framing::Legacy
            };
            let client = QuantixClient::from_stream(stream, dial.clone(), framing);
            let r = timeout(deadline, client.call(&CallOp::Ping)).await;
            let events = client.events().received();
            match r {
                Ok(Ok(o)) => Ok((o.summary, events)),
                Ok(Err(e)) => Err((e, events)),
                Err(_) => Err((timed_out(), events)),
            }
        }
        Protocol::Qga => {
            let r = timeout(deadline * 2, async {
                let mut c = QgaClient::from_stream(stream, dial.clone()).await?;
                c.call(&CallOp::Ping).await
            })
            .await;
            match r {
                Ok(Ok(o)) => Ok((o.summary, 0)),
                Ok(Err(e)) => Err((e, 0)),
                Err(_) => Err((timed_out(), 0)),
            }
        }
        other => {
            drop(stream);
            match timeout(
                deadline * 2,
                call_once(other, endpoint, dial, &CallOp::Ping),
            )
            .await
            {
                Ok(Ok(o)) => Ok((o.summary, o.events.len() as u64)),
                Ok(Err(e)) => Err((e, 0)),
                Err(_) => Err((timed_out(), 0)),
            }
        }
    }
}

/// Connects to `path` again and sends `CONNECT port\n`; reads one line under `deadline`.
async fn hybrid_check(path: &std::path::Path, port: u32, deadline: Duration) -> HybridCheck {
    let run = async {
        let mut s = connect_unix(path, deadline).await.ok()?;
        s.write_all(format!("CONNECT {port}\n").as_bytes())
            .await
            .ok()?;
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while line.len() < 64 {
            match s.read(&mut b).await {
                Ok(1) if b[0] == b'\n' => break,
                Ok(1) => line.push(b[0]),
                _ => break,
            }
        }
        Some(String::from_utf8_lossy(&line).into_owned())
    };
    let reply = timeout(deadline, run)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    HybridCheck {
        port,
        ok: reply.starts_with("OK "),
        reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_suggest_protocols() {
        assert_eq!(
            protocol_from_name("/run/libvirt/qemu/channel/1-vm/org.qemu.guest_agent.0"),
            Some(Protocol::Qga)
        );
        assert_eq!(
            protocol_from_name("/var/run/quantix-kvm/vms/abc.agent.sock"),
            Some(Protocol::Quantix)
        );
        assert_eq!(protocol_from_name("/tmp/x.sock"), None);
    }

    #[test]
    fn client_errors_map_to_outcomes() {
        let e = ClientError::HandshakeFailed {
            port: 5,
            reason: "eof".into(),
            received: Bytes::new(),
        };
        assert_eq!(outcome_of(&e), ProbeOutcome::HandshakeEof { port: 5 });
        let e = ClientError::HandshakeFailed {
            port: 5,
            reason: "bad".into(),
            received: Bytes::from_static(b"NOPE\n"),
        };
        assert_eq!(
            outcome_of(&e),
            ProbeOutcome::HandshakeNotOk {
                port: 5,
                line: "NOPE".into()
            }
        );
        let e = ClientError::GaveUp {
            attempts: 2,
            last: Box::new(ClientError::Busy { path: "/x".into() }),
        };
        assert!(
            matches!(outcome_of(&e), ProbeOutcome::ConnectFailed { kind, .. } if kind == "busy")
        );
    }
}
