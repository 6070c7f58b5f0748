//! [`pump`]: copies one direction of a connection from a reader to a writer through a
//! [`FaultStage`] and a shared [`FaultPlan`], carrying out the plan's [`Action`]s — forward,
//! wait (tokio's clock, so paused-clock tests take no real time), drop, hold, close, reset.
//! The mock VMM and the tap run one pump per direction; both directions share one plan, which
//! keeps per-direction state of its own.
//!
//! Backpressure is the writer's: a pump reads the next chunk only after the previous chunk's
//! actions are done, so memory stays at one read plus the stage's unfinished frame. The report
//! says exactly how far the stream got and why it stopped.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::fault::{Action, FaultPlan, FaultStage};

/// Bytes read at a time.
pub const PUMP_CHUNK: usize = 64 * 1024;

/// A plan shared by the two pumps of one connection.
pub type SharedPlan = Arc<Mutex<FaultPlan>>;

/// Wraps a plan for sharing between pumps.
pub fn share(plan: FaultPlan) -> SharedPlan {
    Arc::new(Mutex::new(plan))
}

/// Why a pump stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PumpEnd {
    /// The reader reached end of stream; the writer was shut down (after any `slow_close`).
    Eof,
    /// A fault closed the stream (`limit_data`, `timeout`, a malformed variant that cuts).
    FaultClose,
    /// A fault reset the connection (`reset_peer`, `reset_mid_stream`, `agent_crash`): the
    /// caller should drop both directions at once.
    FaultReset,
    /// Reading failed.
    ReadError(io::ErrorKind),
    /// Writing failed (the far side went away).
    WriteError(io::ErrorKind),
    /// Stopped from outside: the other direction of the connection was reset, so this one was
    /// dropped where it stood.
    Aborted,
}

/// How far one direction got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PumpReport {
    /// Bytes read from the reader.
    pub bytes_read: u64,
    /// Bytes written to the writer (duplicates and malformed rewrites included).
    pub bytes_written: u64,
    /// Bytes the plan dropped or held.
    pub bytes_dropped: u64,
    /// Why it stopped.
    pub end: PumpEnd,
}

fn lock(plan: &SharedPlan) -> std::sync::MutexGuard<'_, FaultPlan> {
    plan.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Copies `reader` to `writer` through `stage` and `plan` until the reader ends, a fault closes
/// or resets the stream, or IO fails. `started` is the connection's start, the zero of the
/// plan's `at` triggers.
pub async fn pump<R, W>(
    reader: R,
    writer: W,
    plan: SharedPlan,
    stage: FaultStage,
    started: Instant,
) -> PumpReport
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    pump_observed(reader, writer, plan, stage, started, |_| {}).await
}

/// [`pump`], calling `observer` with every chunk once it has been written (what the far side
/// received, faults included), for captures and frame logs.
pub async fn pump_observed<R, W, O>(
    mut reader: R,
    mut writer: W,
    plan: SharedPlan,
    mut stage: FaultStage,
    started: Instant,
    mut observer: O,
) -> PumpReport
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    O: FnMut(&[u8]),
{
    let mut report = PumpReport {
        bytes_read: 0,
        bytes_written: 0,
        bytes_dropped: 0,
        end: PumpEnd::Eof,
    };
    let mut buf = vec![0u8; PUMP_CHUNK];
    let mut holding = false;
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                report.end = PumpEnd::ReadError(e.kind());
                let _ = writer.shutdown().await;
                return report;
            }
        };
        let now = started.elapsed();
        let actions = if n == 0 {
            stage.finish(&mut lock(&plan), now)
        } else {
            report.bytes_read += n as u64;
            stage.push(&mut lock(&plan), &buf[..n], now)
        };
        match run_actions(
            &mut writer,
            actions,
            &mut report,
            &mut holding,
            &mut observer,
        )
        .await
        {
            Ok(Some(end)) => {
                // At end of stream the plan's `Close` is the ordinary one.
                report.end = if n == 0 && end == PumpEnd::FaultClose {
                    PumpEnd::Eof
                } else {
                    end
                };
                return report;
            }
            Ok(None) if n == 0 => {
                report.end = PumpEnd::Eof;
                return report;
            }
            Ok(None) => {}
            Err(e) => {
                report.end = PumpEnd::WriteError(e.kind());
                return report;
            }
        }
    }
}

/// Carries out one batch of actions; `Some(end)` when the stream is over.
async fn run_actions<W: AsyncWrite + Unpin, O: FnMut(&[u8])>(
    writer: &mut W,
    actions: Vec<Action>,
    report: &mut PumpReport,
    holding: &mut bool,
    observer: &mut O,
) -> io::Result<Option<PumpEnd>> {
    for action in actions {
        match action {
            Action::Forward(bytes) => write(writer, &bytes, report, observer).await?,
            Action::Delay(wait, bytes) => {
                sleep(wait).await;
                write(writer, &bytes, report, observer).await?;
            }
            Action::Drop(n) => report.bytes_dropped += n as u64,
            Action::Hold => *holding = true,
            Action::Close => {
                let _ = writer.shutdown().await;
                return Ok(Some(PumpEnd::FaultClose));
            }
            Action::Reset => return Ok(Some(PumpEnd::FaultReset)),
        }
    }
    if *holding {
        // A held chunk counts as dropped: it never reaches the writer.
        report.bytes_dropped = report.bytes_read.saturating_sub(report.bytes_written);
    }
    writer.flush().await?;
    Ok(None)
}

async fn write<W: AsyncWrite + Unpin, O: FnMut(&[u8])>(
    writer: &mut W,
    bytes: &[u8],
    report: &mut PumpReport,
    observer: &mut O,
) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    writer.write_all(bytes).await?;
    report.bytes_written += bytes.len() as u64;
    observer(bytes);
    Ok(())
}

async fn sleep(wait: Duration) {
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultSpec;
    use crate::wire::Direction;
    use crate::wire::protocol::Protocol;

    fn plan_of(specs: &[&str]) -> SharedPlan {
        let specs = specs
            .iter()
            .map(|s| s.parse::<FaultSpec>().expect("spec"))
            .collect();
        share(FaultPlan::new(specs, Protocol::Raw, 7))
    }

    async fn run(specs: &[&str], input: &[u8]) -> (Vec<u8>, PumpReport) {
        let plan = plan_of(specs);
        let stage = FaultStage::for_plan(&lock(&plan), Direction::ToGuest, &Protocol::Raw, false);
        let (mut feed, reader) = tokio::io::duplex(1 << 20);
        let (writer, mut drain) = tokio::io::duplex(1 << 20);
        feed.write_all(input).await.expect("feed");
        drop(feed);
        let report = pump(reader, writer, plan, stage, Instant::now()).await;
        let mut out = Vec::new();
        drain.read_to_end(&mut out).await.expect("drain");
        (out, report)
    }

    #[tokio::test(start_paused = true)]
    async fn no_faults_copy_every_byte_in_order() {
        let input: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (out, report) = run(&[], &input).await;
        assert_eq!(out, input);
        assert_eq!(report.end, PumpEnd::Eof);
        assert_eq!(report.bytes_written, input.len() as u64);
    }

    #[tokio::test(start_paused = true)]
    async fn latency_waits_on_the_paused_clock() {
        let t0 = Instant::now();
        let (out, _) = run(&["latency:latency=30s"], b"hello").await;
        assert_eq!(out, b"hello");
        assert!(t0.elapsed() >= Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn limit_data_closes_at_exactly_the_limit() {
        let (out, report) = run(&["limit_data:bytes=10"], &[7u8; 100]).await;
        assert_eq!(out, vec![7u8; 10]);
        assert_eq!(report.end, PumpEnd::FaultClose);
    }

    #[tokio::test(start_paused = true)]
    async fn reset_mid_stream_forwards_half_and_reports_the_reset() {
        let (out, report) = run(&["reset_mid_stream"], &[1u8; 64]).await;
        assert_eq!(out.len(), 32);
        assert_eq!(report.end, PumpEnd::FaultReset);
        assert_eq!(report.bytes_dropped, 32);
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_zero_holds_everything_and_keeps_the_stream_open_until_eof() {
        let (out, report) = run(&["timeout:timeout=0ms"], b"swallowed").await;
        assert!(out.is_empty());
        assert_eq!(report.bytes_dropped, 9);
        assert_eq!(report.end, PumpEnd::Eof);
    }
}
