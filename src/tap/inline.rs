//! A tap without a hop: wraps a client's own stream so that what it writes and reads reaches the
//! [`TapSink`]s (a capture, the frame log) exactly as the client saw it, with no proxy socket in
//! between. The scenario runner records every host connection this way, so the single-client
//! semantics of a virtio-serial socket are not changed by a relay that holds the connection.
//!
//! Writes are reported as `to_guest` data once the inner stream has taken them, reads as
//! `to_host` data as they are returned; end of stream, errors and drop end the directions.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::proxy::{TapEvent, TapSink};
use crate::io::BoxStream;
use crate::io::fault_pump::{PumpEnd, PumpReport};
use crate::wire::Direction;

/// Wraps streams so that their traffic reaches a sink; connections are numbered 1, 2, ….
#[derive(Clone)]
pub struct InlineTap {
    sink: Arc<dyn TapSink>,
    next: Arc<AtomicU64>,
    started: Instant,
}

impl std::fmt::Debug for InlineTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineTap")
            .field("connections", &self.next.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl InlineTap {
    /// A tap reporting to `sink`, with event times counted from now.
    pub fn new(sink: Arc<dyn TapSink>) -> Self {
        Self {
            sink,
            next: Arc::new(AtomicU64::new(0)),
            started: Instant::now(),
        }
    }

    /// Records `stream` as a new connection from `peer`.
    pub fn wrap(&self, stream: BoxStream, peer: &str) -> BoxStream {
        let conn = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.sink.on_event(&TapEvent::Connected {
            conn,
            peer: peer.to_string(),
            at: self.started.elapsed(),
        });
        Box::new(Tapped {
            inner: stream,
            conn,
            sink: self.sink.clone(),
            started: self.started,
            read: 0,
            written: 0,
            read_end: None,
            write_end: None,
        })
    }

    /// Connections wrapped so far.
    pub fn connections(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }
}

struct Tapped {
    inner: BoxStream,
    conn: u64,
    sink: Arc<dyn TapSink>,
    started: Instant,
    read: u64,
    written: u64,
    read_end: Option<PumpEnd>,
    write_end: Option<PumpEnd>,
}

impl Tapped {
    fn data(&self, direction: Direction, bytes: &[u8]) {
        self.sink.on_event(&TapEvent::Data {
            conn: self.conn,
            direction,
            bytes: bytes::Bytes::copy_from_slice(bytes),
            at: self.started.elapsed(),
        });
    }

    fn end(&mut self, direction: Direction, end: PumpEnd) {
        let (slot, n) = match direction {
            Direction::ToHost => (&mut self.read_end, self.read),
            Direction::ToGuest => (&mut self.write_end, self.written),
        };
        if slot.is_some() {
            return;
        }
        *slot = Some(end.clone());
        self.sink.on_event(&TapEvent::Ended {
            conn: self.conn,
            direction,
            report: PumpReport {
                bytes_read: n,
                bytes_written: n,
                bytes_dropped: 0,
                end,
            },
            at: self.started.elapsed(),
        });
    }
}

impl AsyncRead for Tapped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &r {
            Poll::Ready(Ok(())) => {
                let got = &buf.filled()[before..];
                if got.is_empty() {
                    this.end(Direction::ToHost, PumpEnd::Eof);
                } else {
                    this.read += got.len() as u64;
                    let got = got.to_vec();
                    this.data(Direction::ToHost, &got);
                }
            }
            Poll::Ready(Err(e)) => this.end(Direction::ToHost, PumpEnd::ReadError(e.kind())),
            Poll::Pending => {}
        }
        r
    }
}

impl AsyncWrite for Tapped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        match &r {
            Poll::Ready(Ok(n)) if *n > 0 => {
                this.written += *n as u64;
                this.data(Direction::ToGuest, &buf[..*n]);
            }
            Poll::Ready(Err(e)) => this.end(Direction::ToGuest, PumpEnd::WriteError(e.kind())),
            _ => {}
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        if r.is_ready() {
            this.end(Direction::ToGuest, PumpEnd::Eof);
        }
        r
    }
}

impl Drop for Tapped {
    fn drop(&mut self) {
        // The client closed its end: whatever is still open ends here.
        self.end(Direction::ToGuest, PumpEnd::Eof);
        self.end(Direction::ToHost, PumpEnd::Eof);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[derive(Default)]
    struct Log(Mutex<Vec<String>>);

    impl TapSink for Log {
        fn on_event(&self, event: &TapEvent) {
            let line = match event {
                TapEvent::Connected { conn, .. } => format!("{conn} connected"),
                TapEvent::Data {
                    conn,
                    direction,
                    bytes,
                    ..
                } => format!("{conn} {} {:?}", direction.name(), bytes),
                TapEvent::Ended {
                    conn,
                    direction,
                    report,
                    ..
                } => format!(
                    "{conn} {} ended {:?} after {}",
                    direction.name(),
                    report.end,
                    report.bytes_read
                ),
                TapEvent::UpstreamFailed { .. } => "upstream failed".into(),
            };
            self.0.lock().expect("log").push(line);
        }
    }

    #[tokio::test]
    async fn both_directions_are_reported_in_order_and_drop_ends_them() {
        let log = Arc::new(Log::default());
        let tap = InlineTap::new(log.clone());
        let (a, mut b) = tokio::io::duplex(64);
        let mut s = tap.wrap(Box::new(a), "test");
        s.write_all(b"ping").await.expect("write");
        b.write_all(b"pong").await.expect("write");
        let mut got = [0u8; 4];
        s.read_exact(&mut got).await.expect("read");
        drop(b);
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.expect("eof");
        drop(s);
        let lines = log.0.lock().expect("log").clone();
        assert_eq!(
            lines,
            [
                "1 connected",
                "1 to_guest b\"ping\"",
                "1 to_host b\"pong\"",
                "1 to_host ended Eof after 4",
                "1 to_guest ended Eof after 4",
            ]
        );
        assert_eq!(tap.connections(), 1);
    }
}
