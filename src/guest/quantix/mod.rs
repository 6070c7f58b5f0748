//! The mock `quantix` agent: one connection of the LimiQuantix guest agent (PROTOCOLS.md §2),
//! served over any stream (a Unix socket standing in for the virtio-serial port, hybrid vsock,
//! a socket pair or an in-memory duplex).
//!
//! On connect it writes **AgentReady**, then **telemetry** every `cfg.telemetry_interval`, and
//! answers requests as [`handlers`] says, after `cfg.reply_delay`. Frames from the host that do
//! not decode are counted ([`ConnectionReport::bad_frames`]) and skipped where the decoder
//! resynchronises (`QTX1`: at the next magic; legacy: a bad length ends decoding, the rest of
//! the stream is read and discarded).
//!
//! Two loop shapes ([`LoopMode`]):
//! - [`robust`]: reading and writing are independent tasks, so a write blocked by a host that
//!   does not read never stops requests being read and handled;
//! - [`naive`]: the single-threaded loop of seed 003, whose blocking writes stop it reading
//!   requests: the "agent not responding" failure.
//!
//! [`GuestStats`] lets a test or a mock VMM watch a connection while it runs.

pub mod handlers;
pub mod naive;
pub mod robust;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use handlers::{Agent, Answer, CAPABILITIES, UNIMPLEMENTED};
pub use naive::{EofSpin, NAIVE_EOF_SPIN_LIMIT};

pub use crate::host::quantix::Framing;

use crate::guest::config::{GuestConfig, LoopMode};
use crate::guest::error::{ConnectionReport, GuestError};
use crate::io::BoxStream;

/// AgentReady's write timeout (the LimiQuantix agent: 10 s).
pub const READY_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Telemetry's write timeout (the LimiQuantix agent: 5 s).
pub const TELEMETRY_WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// A reply's write timeout (a guestwire choice, the same as telemetry's).
pub const REPLY_WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Consecutive timed-out writes after which the connection is reset (the LimiQuantix agent: 50).
pub const MAX_WRITE_FAILURES: u32 = 50;

/// Counters of one connection, updated while it runs.
#[derive(Debug, Default)]
pub struct GuestStats {
    /// Well-formed messages read from the host.
    pub requests_read: AtomicU64,
    /// Replies written.
    pub replies_sent: AtomicU64,
    /// Unsolicited events written (AgentReady, telemetry, refusals of unimplemented requests).
    pub events_sent: AtomicU64,
    /// Error events written refusing an unimplemented request (also in `events_sent`).
    pub refusals_sent: AtomicU64,
    /// Frames from the host that did not decode, and garbage runs skipped.
    pub bad_frames: AtomicU64,
    /// Writes that went past their timeout (robust loop).
    pub write_timeouts: AtomicU64,
    /// Telemetry reports not queued because the previous one was still unwritten (robust loop).
    pub telemetry_skipped: AtomicU64,
    /// Reads retried at once after an end of file (naive loop).
    pub eof_spins: AtomicU64,
}

/// A copy of [`GuestStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// See [`GuestStats::requests_read`].
    pub requests_read: u64,
    /// See [`GuestStats::replies_sent`].
    pub replies_sent: u64,
    /// See [`GuestStats::events_sent`].
    pub events_sent: u64,
    /// See [`GuestStats::refusals_sent`].
    pub refusals_sent: u64,
    /// See [`GuestStats::bad_frames`].
    pub bad_frames: u64,
    /// See [`GuestStats::write_timeouts`].
    pub write_timeouts: u64,
    /// See [`GuestStats::telemetry_skipped`].
    pub telemetry_skipped: u64,
    /// See [`GuestStats::eof_spins`].
    pub eof_spins: u64,
}

impl GuestStats {
    /// Fresh counters, shareable with the connection.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            requests_read: get(&self.requests_read),
            replies_sent: get(&self.replies_sent),
            events_sent: get(&self.events_sent),
            refusals_sent: get(&self.refusals_sent),
            bad_frames: get(&self.bad_frames),
            write_timeouts: get(&self.write_timeouts),
            telemetry_skipped: get(&self.telemetry_skipped),
            eof_spins: get(&self.eof_spins),
        }
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one written answer.
    pub(crate) fn answered(&self, answer: &Answer) {
        match answer {
            Answer::Reply(_) => Self::bump(&self.replies_sent),
            Answer::Refusal(_) => {
                Self::bump(&self.refusals_sent);
                Self::bump(&self.events_sent);
            }
        }
    }
}

impl StatsSnapshot {
    /// The connection's report: requests answered (replies and refusals), events sent, bad
    /// frames.
    pub fn report(&self) -> ConnectionReport {
        ConnectionReport {
            requests: self.replies_sent + self.refusals_sent,
            events: self.events_sent,
            bad_frames: self.bad_frames,
        }
    }
}

/// Serves one host connection with the mock quantix agent until the host closes it (or it
/// fails), in the loop shape `cfg.loop_mode` names.
pub async fn serve_connection(
    stream: BoxStream,
    cfg: Arc<GuestConfig>,
    framing: Framing,
) -> Result<ConnectionReport, GuestError> {
    serve_connection_with_stats(stream, cfg, framing, GuestStats::new()).await
}

/// [`serve_connection`], updating `stats` as it goes.
pub async fn serve_connection_with_stats(
    stream: BoxStream,
    cfg: Arc<GuestConfig>,
    framing: Framing,
    stats: Arc<GuestStats>,
) -> Result<ConnectionReport, GuestError> {
    let agent = Arc::new(Agent::new(cfg.clone(), framing));
    match cfg.loop_mode {
        LoopMode::Robust => robust::run(stream, agent, framing, stats.clone()).await?,
        LoopMode::Naive => naive::run(stream, agent, framing, stats.clone()).await?,
    }
    Ok(stats.snapshot().report())
}

#[cfg(test)]
mod tests;
