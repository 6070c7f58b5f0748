//! The naive loop of seed 003: one loop that writes AgentReady, then alternates between writing
//! telemetry when it is due and reading the next request, handling it inline and writing the
//! reply. Every write blocks until it completes, with no timeout, so once the host stops reading
//! and the buffers fill, the loop sits in a write and requests are no longer read: the host's
//! pings time out ("agent not responding").
//!
//! On a virtio-serial port with no host connected, `read()` returns 0 at once (VMLAB.md), and
//! the naive loop retries immediately: a busy loop. [`EofSpin`] is that behaviour as a pure,
//! bounded counter; here an end of stream is retried (with a yield) up to
//! [`NAIVE_EOF_SPIN_LIMIT`] times before the connection is given up, and each retry is counted
//! in [`GuestStats::eof_spins`].

use std::sync::Arc;

use tokio::time::Instant;

use super::handlers::Agent;
use super::{Framing, GuestStats};
use crate::guest::error::GuestError;
use crate::host::quantix::Payloaded;
use crate::io::{BoxStream, FramedReader, FramedWriter, ReadError};

/// How many immediate retries after an end of file the naive loop makes before giving up.
pub const NAIVE_EOF_SPIN_LIMIT: u64 = 1000;

/// The naive loop's reaction to reads that return 0: retry at once, counting, up to a bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EofSpin {
    limit: u64,
    streak: u64,
    total: u64,
}

impl EofSpin {
    /// A counter that allows `limit` consecutive retries.
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            streak: 0,
            total: 0,
        }
    }

    /// A read returned 0: `true` to retry at once (a spin), `false` once `limit` consecutive
    /// spins have been made.
    pub fn on_eof(&mut self) -> bool {
        if self.streak >= self.limit {
            return false;
        }
        self.streak += 1;
        self.total += 1;
        true
    }

    /// A read returned data: the streak starts again.
    pub fn on_data(&mut self) {
        self.streak = 0;
    }

    /// Consecutive spins so far.
    pub fn streak(&self) -> u64 {
        self.streak
    }

    /// Spins since the counter was made.
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// Runs the naive loop on `stream` until the host closes it (and the spins run out) or it fails.
pub(super) async fn run(
    stream: BoxStream,
    agent: Arc<Agent>,
    framing: Framing,
    stats: Arc<GuestStats>,
) -> Result<(), GuestError> {
    let (read, write) = tokio::io::split(stream);
    let mut reader = FramedReader::new(read, framing.decoder());
    let mut writer = FramedWriter::new(write, framing.encoder());
    writer.send(&agent.ready()).await?;
    GuestStats::bump(&stats.events_sent);
    let every = agent.config().telemetry_interval;
    let mut next_telemetry = every.map(|e| Instant::now() + e);
    let mut spin = EofSpin::new(NAIVE_EOF_SPIN_LIMIT);
    loop {
        if let (Some(due), Some(every)) = (next_telemetry, every)
            && Instant::now() >= due
        {
            // Blocks for as long as the host does not read.
            writer.send(&agent.telemetry()).await?;
            GuestStats::bump(&stats.events_sent);
            next_telemetry = Some(Instant::now() + every);
        }
        let item = match next_telemetry {
            Some(due) => match tokio::time::timeout_at(due, reader.next()).await {
                Ok(item) => item,
                Err(_) => continue,
            },
            None => reader.next().await,
        };
        match item {
            None => {
                if !spin.on_eof() {
                    return Ok(());
                }
                GuestStats::bump(&stats.eof_spins);
                tokio::task::yield_now().await;
            }
            Some(Ok(frame)) => {
                spin.on_data();
                match reader.decoder().payload(frame.message, frame.offset) {
                    Payloaded::Message(message) => {
                        GuestStats::bump(&stats.requests_read);
                        if let Some(answer) = agent.handle(message).await {
                            agent.reply_delay().await;
                            let answer = answer.fit();
                            writer.send(answer.message()).await?;
                            stats.answered(&answer);
                        }
                    }
                    Payloaded::Bad { .. } => GuestStats::bump(&stats.bad_frames),
                }
            }
            Some(Err(ReadError::Wire(_))) => GuestStats::bump(&stats.bad_frames),
            Some(Err(e)) => return Err(GuestError::Read(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eof_spins_are_bounded_and_reset_by_data() {
        let mut s = EofSpin::new(3);
        assert!(s.on_eof() && s.on_eof() && s.on_eof());
        assert!(!s.on_eof());
        assert_eq!((s.streak(), s.total()), (3, 3));
        s.on_data();
        assert!(s.on_eof());
        assert_eq!((s.streak(), s.total()), (1, 4));
        assert!(!EofSpin::new(0).on_eof());
    }
}
