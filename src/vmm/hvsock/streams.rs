//! The byte streams a host connection's two directions run through, as tokio `AsyncRead` /
//! `AsyncWrite` over the core ([`MuxWriter`] into the muxer, [`PipeReader`] out of it,
//! [`HostWriter`] to the host socket), so that [`crate::io::fault_pump::pump`] (or, with no
//! faults, [`copy`]) carries them; and [`PauseWatch`], which turns a fired `vm_pause` into a
//! pause of the whole VM.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::queues::Popped;
use super::state::Shared;
use crate::channel::vsock::ConnId;
use crate::fault::{FaultKind, FaultSpec};
use crate::io::fault_pump::{PUMP_CHUNK, PumpEnd, PumpReport, SharedPlan};

/// The specs a connection's plan gets, and the `vm_pause` entries among them (index, duration).
///
/// A `vm_pause` pauses the whole VM, not one direction of one stream, so the plan's own
/// `Delay(duration)` is cut to zero: the plan still decides *when* it fires (its trigger), and
/// the writer that receives the triggering bytes ([`PauseWatch::newly_fired`]) pauses the VM for
/// the duration, with those bytes frozen in it.
pub fn plan_specs(faults: &[FaultSpec]) -> (Vec<FaultSpec>, Vec<(usize, Duration)>) {
    let mut pauses = Vec::new();
    let specs = faults
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut f = f.clone();
            if let FaultKind::VmPause { duration } = &mut f.kind {
                pauses.push((i, *duration));
                *duration = Duration::ZERO;
            }
            f
        })
        .collect();
    (specs, pauses)
}

/// Notices when a connection's plan fired a `vm_pause`. Shared by its two writers; each firing
/// is reported once.
#[derive(Clone, Default)]
pub struct PauseWatch {
    inner: Option<Arc<PauseInner>>,
}

struct PauseInner {
    plan: SharedPlan,
    entries: Vec<(usize, Duration)>,
    seen: Mutex<Vec<u64>>,
}

impl PauseWatch {
    /// Watches `entries` (from [`plan_specs`]) of `plan`.
    pub fn new(plan: &SharedPlan, entries: Vec<(usize, Duration)>) -> Self {
        if entries.is_empty() {
            return Self::default();
        }
        let seen = Mutex::new(vec![0; entries.len()]);
        Self {
            inner: Some(Arc::new(PauseInner {
                plan: plan.clone(),
                entries,
                seen,
            })),
        }
    }

    /// The longest pause that fired since the last call, if any.
    pub fn newly_fired(&self) -> Option<Duration> {
        let inner = self.inner.as_ref()?;
        let plan = inner.plan.lock().unwrap_or_else(PoisonError::into_inner);
        let mut seen = inner.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Option<Duration> = None;
        for (k, (i, d)) in inner.entries.iter().enumerate() {
            let fired = plan.fired(*i);
            if let Some(s) = seen.get_mut(k)
                && fired > *s
            {
                *s = fired;
                out = Some(out.map_or(*d, |o| o.max(*d)));
            }
        }
        out
    }
}

/// Host bytes into the muxer: each write is one `read()` of the host connection as the muxer's
/// `CONNECT` parser sees it. Shutting it down is the host closing.
pub struct MuxWriter {
    shared: Arc<Shared>,
    conn: ConnId,
    watch: PauseWatch,
}

impl MuxWriter {
    /// The writer for `conn`.
    pub fn new(shared: Arc<Shared>, conn: ConnId, watch: PauseWatch) -> Self {
        Self {
            shared,
            conn,
            watch,
        }
    }
}

impl AsyncWrite for MuxWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(d) = this.watch.newly_fired() {
            this.shared.fault_pause(d);
        }
        let mut core = this.shared.lock();
        this.shared.poll_host_input(&mut core, this.conn, buf, cx)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut core = this.shared.lock();
        this.shared.host_close(&mut core, this.conn, "host");
        Poll::Ready(Ok(()))
    }
}

/// The bytes the muxer released for the host (guest data), in order; EOF when the connection
/// closes, an error on a reset. Frozen while the VM is paused.
pub struct PipeReader {
    shared: Arc<Shared>,
    conn: ConnId,
}

impl PipeReader {
    /// The reader for `conn`.
    pub fn new(shared: Arc<Shared>, conn: ConnId) -> Self {
        Self { shared, conn }
    }
}

impl AsyncRead for PipeReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        match this.shared.poll_host_output(this.conn, buf.remaining(), cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Popped::Data(b)) => {
                buf.put_slice(&b);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Popped::Eof) => Poll::Ready(Ok(())),
            Poll::Ready(Popped::Reset) => {
                Poll::Ready(Err(io::Error::from(io::ErrorKind::ConnectionReset)))
            }
        }
    }
}

/// The host socket's write half, frozen while the VM is paused; the first write after a
/// `vm_pause` fired pauses the VM.
pub struct HostWriter<W> {
    inner: W,
    shared: Arc<Shared>,
    watch: PauseWatch,
}

impl<W> HostWriter<W> {
    /// Wraps the host socket's write half.
    pub fn new(shared: Arc<Shared>, inner: W, watch: PauseWatch) -> Self {
        Self {
            inner,
            shared,
            watch,
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for HostWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(d) = this.watch.newly_fired() {
            this.shared.fault_pause(d);
        }
        if this.shared.poll_unpaused(cx).is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Copies `reader` to `writer` with no fault plan (a passthrough plan needs no pump), shutting
/// the writer down at the reader's end; reports like a pump.
pub async fn copy<R, W>(mut reader: R, mut writer: W) -> PumpReport
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut report = PumpReport {
        bytes_read: 0,
        bytes_written: 0,
        bytes_dropped: 0,
        end: PumpEnd::Eof,
    };
    let mut buf = vec![0u8; PUMP_CHUNK];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) => {
                let _ = writer.shutdown().await;
                return report;
            }
            Ok(n) => n,
            Err(e) => {
                report.end = PumpEnd::ReadError(e.kind());
                let _ = writer.shutdown().await;
                return report;
            }
        };
        report.bytes_read += n as u64;
        if let Err(e) = writer.write_all(&buf[..n]).await {
            report.end = PumpEnd::WriteError(e.kind());
            return report;
        }
        report.bytes_written += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultPlan;
    use crate::io::fault_pump::share;
    use crate::wire::Direction;
    use crate::wire::protocol::Protocol;

    #[test]
    fn vm_pause_fires_through_the_plan_with_no_delay_and_is_seen_once() {
        let faults: Vec<FaultSpec> = ["latency:latency=1ms", "vm_pause:duration=5s"]
            .iter()
            .map(|s| s.parse().expect("spec"))
            .collect();
        let (specs, pauses) = plan_specs(&faults);
        assert_eq!(pauses, vec![(1, Duration::from_secs(5))]);
        assert!(matches!(specs[1].kind, FaultKind::VmPause { duration } if duration.is_zero()));
        let specs = vec![specs[1].clone()];
        let plan = share(FaultPlan::new(specs, Protocol::Raw, 1));
        let watch = PauseWatch::new(&plan, vec![(0, Duration::from_secs(5))]);
        assert_eq!(watch.newly_fired(), None);
        let actions = plan
            .lock()
            .expect("plan")
            .on_bytes(Direction::ToGuest, b"x", Duration::ZERO);
        assert_eq!(
            actions,
            vec![crate::fault::Action::Delay(
                Duration::ZERO,
                bytes::Bytes::from_static(b"x")
            )]
        );
        assert_eq!(watch.newly_fired(), Some(Duration::from_secs(5)));
        assert_eq!(watch.newly_fired(), None);
    }
}
