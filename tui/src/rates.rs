//! Per-second counts of capture time (frames, bytes, reply latencies) for the last minute, and
//! the moving window the Stats view shows: rates and latency percentiles over the last
//! [`WINDOW_SECS`] seconds. Pure, bounded: [`RATE_SECONDS`] seconds, each with a bounded
//! [`LatencyHistogram`].

use std::collections::VecDeque;

use guestwire::capture::LatencyHistogram;
use guestwire::capture::summary::Latency;

/// How many seconds of per-second counts are kept (for the rate sparkline).
pub const RATE_SECONDS: usize = 60;

/// The moving window's length in seconds.
pub const WINDOW_SECS: u64 = 10;

/// Frames, bytes and reply latencies in one second of capture time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Second {
    /// Seconds since 1970.
    pub sec: u64,
    /// Frames in it.
    pub frames: u64,
    /// Frame bytes in it.
    pub bytes: u64,
    /// Latencies of the replies in it.
    pub latency: LatencyHistogram,
}

/// The moving window: averages over the complete seconds of the last [`WINDOW_SECS`] (the
/// current second alone while it is the only one), latency over all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Seconds the rates are averaged over.
    pub secs: u64,
    /// Frames per second.
    pub frames_per_s: u64,
    /// Frame bytes per second.
    pub bytes_per_s: u64,
    /// Reply latency over the window.
    pub latency: Option<Latency>,
}

/// The per-second counts.
#[derive(Debug, Default)]
pub struct Rates {
    seconds: VecDeque<Second>,
}

impl Rates {
    /// No seconds yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The seconds kept, oldest first (the last may be incomplete).
    pub fn seconds(&self) -> &VecDeque<Second> {
        &self.seconds
    }

    /// Counts a frame of `bytes` at `time_ns` (capture time; a frame older than the newest
    /// second is not counted), with its reply latency if it is a reply.
    pub fn frame(&mut self, time_ns: u64, bytes: u64, latency_ns: Option<u64>) {
        let sec = time_ns / 1_000_000_000;
        match self.seconds.back() {
            Some(s) if s.sec > sec => return,
            Some(s) if s.sec == sec => {}
            _ => {
                if self.seconds.len() == RATE_SECONDS {
                    self.seconds.pop_front();
                }
                self.seconds.push_back(Second {
                    sec,
                    ..Second::default()
                });
            }
        }
        if let Some(s) = self.seconds.back_mut() {
            s.frames += 1;
            s.bytes += bytes;
            if let Some(l) = latency_ns {
                s.latency.record(l);
            }
        }
    }

    /// Frames and bytes in the last complete second (the current one while it is the only one).
    pub fn last_second(&self) -> (u64, u64) {
        let n = self.seconds.len();
        let s = match n {
            0 => return (0, 0),
            1 => &self.seconds[0],
            _ => &self.seconds[n - 2],
        };
        (s.frames, s.bytes)
    }

    /// The moving window ending at the newest second.
    pub fn window(&self) -> Window {
        let Some(newest) = self.seconds.back().map(|s| s.sec) else {
            return Window {
                secs: 0,
                frames_per_s: 0,
                bytes_per_s: 0,
                latency: None,
            };
        };
        let from = newest.saturating_sub(WINDOW_SECS);
        let oldest = self.seconds.front().map_or(newest, |s| s.sec);
        let mut latency = LatencyHistogram::new();
        let (mut frames, mut bytes) = (0, 0);
        for s in self.seconds.iter().filter(|s| s.sec >= from) {
            if s.sec > from || newest == oldest {
                latency.merge(&s.latency);
            }
            if s.sec < newest || newest == oldest {
                frames += s.frames;
                bytes += s.bytes;
            }
        }
        let secs = (newest - from.max(oldest)).max(1);
        Window {
            secs,
            frames_per_s: frames / secs,
            bytes_per_s: bytes / secs,
            latency: Latency::of(&latency),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn the_window_averages_complete_seconds_and_merges_latency() {
        let mut r = Rates::new();
        assert_eq!(r.window().frames_per_s, 0);
        r.frame(100 * S, 10, None);
        r.frame(100 * S + 1, 10, Some(5));
        let w = r.window();
        assert_eq!((w.secs, w.frames_per_s, w.bytes_per_s), (1, 2, 20));
        // Seconds 100..=120, 3 frames each; 121 is incomplete.
        for sec in 101..=121 {
            for i in 0..3 {
                r.frame(sec * S + i, 100, Some(sec * 1000));
            }
        }
        let w = r.window();
        // Complete seconds 111..=120: 10 seconds of 3 frames.
        assert_eq!((w.secs, w.frames_per_s, w.bytes_per_s), (10, 3, 300));
        let l = w.latency.expect("latency");
        // Latencies of seconds 112..=121 (30 values): p50 is second 116's.
        assert_eq!((l.count, l.p50, l.max), (30, 116_000, 121_000));
        assert_eq!(r.last_second(), (3, 300));
        r.frame(50 * S, 1, None);
        assert_eq!(r.seconds().back().map(|s| s.frames), Some(3));
    }
}
