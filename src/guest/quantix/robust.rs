//! The robust loop: a reader, a writer task and a telemetry ticker that do not wait on each
//! other, so a host that stops reading never stops the agent reading requests.
//!
//! - The **reader** decodes requests and hands each to its own task (at most
//!   [`MAX_IN_FLIGHT`] at once), which handles it, waits `reply_delay` and queues the answer.
//!   Pings and capabilities queries with no reply delay are answered inline, and queued without
//!   waiting (a task waits for room when the queue is full).
//! - The **writer** writes queued messages whole, in order. A write is never cancelled (a
//!   cancelled write would leave half a frame on the stream): when one passes its timeout
//!   (AgentReady 10 s, telemetry 5 s, replies 5 s) it is counted and waited for again; after
//!   [`MAX_WRITE_FAILURES`] consecutive timeouts the connection is reset, as the LimiQuantix
//!   agent does.
//! - The **ticker** queues a telemetry report every interval, unless the previous one is still
//!   unwritten (then the tick is skipped and counted), so a stalled host does not make the
//!   queue grow.
//!
//! The queue holds [`OUTGOING_QUEUE`] messages. While the writer is blocked, requests keep being
//! read and handled until `MAX_IN_FLIGHT` answers wait for room in the queue; only then does
//! the reader wait too. When the host ends its side of the stream, answers already being
//! prepared are still written, for up to [`DRAIN_TIMEOUT`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::WriteHalf;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::handlers::{Agent, Answer};
use super::{
    Framing, GuestStats, MAX_WRITE_FAILURES, READY_WRITE_TIMEOUT, REPLY_WRITE_TIMEOUT,
    TELEMETRY_WRITE_TIMEOUT,
};
use crate::guest::error::GuestError;
use crate::host::quantix::{FrameEncoder, Payloaded};
use crate::io::{BoxStream, FramedReader, FramedWriter, ReadError};
use crate::wire::WireError;
use crate::wire::quantix::{AgentMessage, Payload};

/// Requests handled at once before the reader waits.
pub const MAX_IN_FLIGHT: usize = 64;
/// Messages queued for the writer.
pub const OUTGOING_QUEUE: usize = 64;
/// How long answers in preparation may take to be written after the host ends the stream.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What the writer writes, and how it counts it.
#[derive(Debug)]
enum Outgoing {
    Ready(AgentMessage),
    Telemetry(AgentMessage),
    Answer(Answer),
}

impl Outgoing {
    fn message(&self) -> &AgentMessage {
        match self {
            Self::Ready(m) | Self::Telemetry(m) => m,
            Self::Answer(a) => a.message(),
        }
    }

    fn timeout(&self) -> Duration {
        match self {
            Self::Ready(_) => READY_WRITE_TIMEOUT,
            Self::Telemetry(_) => TELEMETRY_WRITE_TIMEOUT,
            Self::Answer(_) => REPLY_WRITE_TIMEOUT,
        }
    }
}

/// Runs the robust loop on `stream` until the host closes it or it fails.
pub(super) async fn run(
    stream: BoxStream,
    agent: Arc<Agent>,
    framing: Framing,
    stats: Arc<GuestStats>,
) -> Result<(), GuestError> {
    let (read, write) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel(OUTGOING_QUEUE);
    let telemetry_pending = Arc::new(AtomicBool::new(false));
    let mut writer = tokio::spawn(write_loop(
        FramedWriter::new(write, framing.encoder()),
        rx,
        stats.clone(),
        telemetry_pending.clone(),
    ));
    // The queue is empty: this cannot wait.
    let _ = tx.send(Outgoing::Ready(agent.ready())).await;
    let ticker = agent.config().telemetry_interval.map(|every| {
        tokio::spawn(tick(
            every,
            agent.clone(),
            tx.clone(),
            stats.clone(),
            telemetry_pending,
        ))
    });

    let mut reader = FramedReader::new(read, framing.decoder());
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut handlers = JoinSet::new();
    let ended = loop {
        let item = tokio::select! {
            item = reader.next() => item,
            done = &mut writer => break Some(writer_result(done)),
        };
        // Reap finished handler tasks so the set stays small.
        while handlers.try_join_next().is_some() {}
        match item {
            None => break None,
            Some(Ok(frame)) => match reader.decoder().payload(frame.message, frame.offset) {
                Payloaded::Message(message) => {
                    GuestStats::bump(&stats.requests_read);
                    if instant(&agent, &message) {
                        // Answered inline: no task, and the reader never waits on the queue.
                        if let Some(answer) = agent.handle(message).await
                            && let Err(mpsc::error::TrySendError::Full(out)) =
                                tx.try_send(Outgoing::Answer(answer))
                        {
                            let tx = tx.clone();
                            handlers.spawn(async move {
                                let _ = tx.send(out).await;
                            });
                        }
                        continue;
                    }
                    let Ok(permit) = permits.clone().acquire_owned().await else {
                        break None;
                    };
                    let (agent, tx) = (agent.clone(), tx.clone());
                    handlers.spawn(async move {
                        let _permit = permit;
                        if let Some(answer) = agent.handle(message).await {
                            agent.reply_delay().await;
                            let _ = tx.send(Outgoing::Answer(answer.fit())).await;
                        }
                    });
                }
                Payloaded::Bad { .. } => GuestStats::bump(&stats.bad_frames),
            },
            Some(Err(ReadError::Wire(WireError::Truncated { .. }))) => {
                GuestStats::bump(&stats.bad_frames);
                break None;
            }
            Some(Err(ReadError::Wire(_))) => GuestStats::bump(&stats.bad_frames),
            Some(Err(e)) => break Some(Err(GuestError::Read(e))),
        }
    };
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    if let Some(result) = ended {
        handlers.abort_all();
        return result;
    }
    // The host ended its side: finish what is being answered, then stop the writer.
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while handlers.join_next().await.is_some() {}
    })
    .await;
    handlers.abort_all();
    drop(tx);
    match tokio::time::timeout(
        if drained.is_ok() {
            DRAIN_TIMEOUT
        } else {
            Duration::ZERO
        },
        &mut writer,
    )
    .await
    {
        Ok(done) => writer_result(done),
        Err(_) => {
            writer.abort();
            Ok(())
        }
    }
}

/// Whether a request is answered at once, without blocking work: a ping or a capabilities
/// query when there is no reply delay.
fn instant(agent: &Agent, message: &AgentMessage) -> bool {
    agent.config().reply_delay.is_zero()
        && matches!(
            message.payload,
            Some(Payload::Ping(_) | Payload::GetCapabilities(_))
        )
}

fn writer_result(
    done: Result<Result<(), GuestError>, tokio::task::JoinError>,
) -> Result<(), GuestError> {
    match done {
        Ok(result) => result,
        Err(join) => Err(GuestError::Io(std::io::Error::other(join.to_string()))),
    }
}

/// Queues a telemetry report every `every`, skipping ticks while the last one is unwritten.
async fn tick(
    every: Duration,
    agent: Arc<Agent>,
    tx: mpsc::Sender<Outgoing>,
    stats: Arc<GuestStats>,
    pending: Arc<AtomicBool>,
) {
    let start = tokio::time::Instant::now() + every;
    let mut interval = tokio::time::interval_at(start, every.max(Duration::from_millis(1)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if pending.swap(true, Ordering::AcqRel) {
            GuestStats::bump(&stats.telemetry_skipped);
            continue;
        }
        match tx.try_send(Outgoing::Telemetry(agent.telemetry())) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                pending.store(false, Ordering::Release);
                GuestStats::bump(&stats.telemetry_skipped);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

/// Writes queued messages whole, in order (see the module docs for timeouts).
async fn write_loop(
    mut writer: FramedWriter<WriteHalf<BoxStream>, FrameEncoder>,
    mut rx: mpsc::Receiver<Outgoing>,
    stats: Arc<GuestStats>,
    telemetry_pending: Arc<AtomicBool>,
) -> Result<(), GuestError> {
    let mut failures = 0u32;
    while let Some(out) = rx.recv().await {
        let limit = out.timeout();
        {
            let write = writer.send(out.message());
            tokio::pin!(write);
            loop {
                match tokio::time::timeout(limit, &mut write).await {
                    Ok(Ok(_)) => {
                        failures = 0;
                        break;
                    }
                    Ok(Err(e)) => return Err(GuestError::Write(e)),
                    Err(_) => {
                        GuestStats::bump(&stats.write_timeouts);
                        failures += 1;
                        if failures >= MAX_WRITE_FAILURES {
                            return Err(GuestError::WriteTimedOut(limit));
                        }
                    }
                }
            }
        }
        match &out {
            Outgoing::Ready(_) => GuestStats::bump(&stats.events_sent),
            Outgoing::Telemetry(_) => {
                GuestStats::bump(&stats.events_sent);
                telemetry_pending.store(false, Ordering::Release);
            }
            Outgoing::Answer(answer) => stats.answered(answer),
        }
    }
    Ok(())
}
