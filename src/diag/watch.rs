//! `--watch SECS`: queue depths sampled over time, and what their course says.
//!
//! [`trend`] is pure: a series of queue lengths is [`Trend::Zero`] (nothing waiting),
//! [`Trend::Moving`] (bytes come and go: someone reads), [`Trend::Growing`] (bytes pile up and
//! none are taken) or [`Trend::Stuck`] (the same bytes wait throughout). [`sample_over`] is the
//! thin timer around a sampling function; it runs on tokio's clock, so tests drive it paused.

use std::time::Duration;

use serde::Serialize;

use super::sockets::SocketTable;

/// The queues of one target at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct QueueSample {
    /// Milliseconds since the first sample.
    pub at_ms: u64,
    /// Clients waiting in the listener's accept queue.
    pub accept_queue: u32,
    /// Bytes waiting in the host client's socket (the guest wrote them; the host has not read).
    pub to_host: Option<u32>,
    /// Bytes waiting in the VMM's socket (the host wrote them; the VMM has not taken them for
    /// the guest).
    pub to_guest: Option<u32>,
}

/// The sockets a target's samples follow, fixed when watching starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Watched {
    /// The listener's inode.
    pub listener: Option<u32>,
    /// The VMM's end of the active connection.
    pub vmm_end: Option<u32>,
    /// The host client's end of it.
    pub client: Option<u32>,
}

/// Reads one target's queues out of a fresh socket table (pure).
pub fn sample(table: &SocketTable, w: &Watched, at_ms: u64) -> QueueSample {
    let rq = |i: Option<u32>| i.and_then(|i| table.by_inode(i)).map(|s| s.rqueue);
    QueueSample {
        at_ms,
        accept_queue: rq(w.listener).unwrap_or(0),
        to_host: rq(w.client),
        to_guest: rq(w.vmm_end),
    }
}

/// The course of a queue over the samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    /// Nothing was ever waiting (or there are no samples).
    Zero,
    /// Bytes came and went.
    Moving,
    /// Non-empty throughout and never shrinking, larger at the end.
    Growing,
    /// Non-empty throughout and the same at every sample.
    Stuck,
}

/// Classifies a series of queue lengths.
pub fn trend(values: &[u32]) -> Trend {
    if values.iter().all(|v| *v == 0) {
        return Trend::Zero;
    }
    let all_waiting = values.iter().all(|v| *v > 0);
    let never_shrinks = values.windows(2).all(|w| w[1] >= w[0]);
    match (values.first(), values.last()) {
        (Some(first), Some(last)) if all_waiting && never_shrinks && values.len() >= 2 => {
            if last > first {
                Trend::Growing
            } else {
                Trend::Stuck
            }
        }
        _ => Trend::Moving,
    }
}

/// Calls `take(elapsed_ms)` every `every` for `duration` (first at once, last at `duration`),
/// and returns what it returned, in order. The waits are tokio timers.
pub async fn sample_over<T>(
    duration: Duration,
    every: Duration,
    mut take: impl FnMut(u64) -> T,
) -> Vec<T> {
    let every = every.max(Duration::from_millis(1));
    let start = tokio::time::Instant::now();
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut out = Vec::new();
    loop {
        ticks.tick().await;
        let elapsed = start.elapsed();
        out.push(take(elapsed.as_millis() as u64));
        if elapsed >= duration {
            return out;
        }
    }
}

/// The sampling period for a watch of `duration`: ten samples a second, at least 2 samples.
pub fn period_for(duration: Duration) -> Duration {
    (duration / 2).clamp(Duration::from_millis(1), Duration::from_millis(100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trends_are_named() {
        assert_eq!(trend(&[]), Trend::Zero);
        assert_eq!(trend(&[0, 0, 0]), Trend::Zero);
        assert_eq!(trend(&[10, 20, 20, 40]), Trend::Growing);
        assert_eq!(trend(&[7, 7, 7]), Trend::Stuck);
        assert_eq!(trend(&[7, 0, 7]), Trend::Moving);
        assert_eq!(trend(&[30, 20, 10]), Trend::Moving);
        assert_eq!(trend(&[5]), Trend::Moving);
    }

    #[tokio::test(start_paused = true)]
    async fn samples_are_taken_on_the_clock_until_the_window_ends() {
        let times = sample_over(Duration::from_secs(1), Duration::from_millis(100), |t| t).await;
        assert_eq!(times.len(), 11, "{times:?}");
        assert_eq!(times.first(), Some(&0));
        assert_eq!(times.last(), Some(&1000));
        assert!(times.windows(2).all(|w| w[1] - w[0] == 100), "{times:?}");
        assert_eq!(
            period_for(Duration::from_secs(5)),
            Duration::from_millis(100)
        );
        assert_eq!(
            period_for(Duration::from_millis(50)),
            Duration::from_millis(25)
        );
    }

    #[test]
    fn a_sample_reads_the_watched_queues() {
        use crate::diag::sockets::UnixSock;
        let table = SocketTable::new(vec![
            UnixSock {
                inode: 1,
                state: 10,
                rqueue: 2,
                ..UnixSock::default()
            },
            UnixSock {
                inode: 2,
                rqueue: 100,
                ..UnixSock::default()
            },
        ]);
        let w = Watched {
            listener: Some(1),
            vmm_end: Some(2),
            client: Some(3),
        };
        let s = sample(&table, &w, 5);
        assert_eq!(
            s,
            QueueSample {
                at_ms: 5,
                accept_queue: 2,
                to_host: None,
                to_guest: Some(100)
            }
        );
    }
}
