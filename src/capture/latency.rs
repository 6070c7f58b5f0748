//! [`LatencyHistogram`]: request → reply latencies in bounded memory, for the capture summary
//! and the TUI's moving window.
//!
//! Exact while small: the first [`EXACT_MAX`] values are kept as they are, so percentiles of a
//! short capture (every fixture) are exact nearest-rank values. Beyond that every value goes
//! into log-linear buckets (HdrHistogram-style): values below 256 ns have a bucket each, and
//! each power of two above is cut into 256 equal buckets, so a bucket is at most 1/256 of its
//! values wide. A percentile is reported as its bucket's midpoint: **within 0.2 % of the true
//! nearest-rank value** (±1/512 relative). `max` and `count` stay exact. Memory: at most
//! 32 KiB of exact values, then one counter per bucket up to the largest value seen (≤ 14,336
//! buckets, 112 KiB for values up to 2^64 ns; 44 KiB for latencies up to a second).

/// Values kept exactly before switching to buckets.
pub const EXACT_MAX: usize = 4096;

/// Sub-buckets per power of two: 2^8 (relative bucket width ≤ 1/256).
const SUB_BITS: u32 = 8;
const SUB: u64 = 1 << SUB_BITS;

/// Latencies in nanoseconds, bounded (see the module docs for the error bound).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// Exact values while there are at most [`EXACT_MAX`] (and no buckets yet).
    exact: Vec<u64>,
    /// Bucket counts, once spilled (empty before).
    buckets: Vec<u64>,
    spilled: bool,
    count: u64,
    max: u64,
}

/// The bucket of `v`.
fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    let shift = exp - SUB_BITS;
    let m = v >> shift;
    (SUB + u64::from(shift) * SUB + (m - SUB)) as usize
}

/// The midpoint of bucket `i` (its value, for the exact buckets below 256).
fn midpoint(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = (i - SUB) / SUB;
    let m = SUB + (i - SUB) % SUB;
    let low = m << shift;
    low + (1u64 << shift) / 2
}

/// The nearest rank (1-based) of the `p`th percentile of `n` values.
fn rank(p: u64, n: u64) -> u64 {
    (p * n).div_ceil(100).max(1)
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one latency.
    pub fn record(&mut self, v: u64) {
        self.count += 1;
        self.max = self.max.max(v);
        if !self.spilled {
            if self.exact.len() < EXACT_MAX {
                self.exact.push(v);
                return;
            }
            self.spill();
        }
        self.bucket(v, 1);
    }

    fn bucket(&mut self, v: u64, n: u64) {
        let i = index(v);
        if self.buckets.len() <= i {
            self.buckets.resize(i + 1, 0);
        }
        self.buckets[i] += n;
    }

    fn spill(&mut self) {
        self.spilled = true;
        for v in std::mem::take(&mut self.exact) {
            self.bucket(v, 1);
        }
    }

    /// Adds every value of `other` (exact stays exact while the sum fits).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        self.count += other.count;
        self.max = self.max.max(other.max);
        if !self.spilled && !other.spilled && self.exact.len() + other.exact.len() <= EXACT_MAX {
            self.exact.extend_from_slice(&other.exact);
            return;
        }
        if !self.spilled {
            self.spill();
        }
        for &v in &other.exact {
            self.bucket(v, 1);
        }
        for (i, &n) in other.buckets.iter().enumerate() {
            if n > 0 {
                if self.buckets.len() <= i {
                    self.buckets.resize(i + 1, 0);
                }
                self.buckets[i] += n;
            }
        }
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest value (exact; 0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Whether the values are still kept exactly.
    pub fn is_exact(&self) -> bool {
        !self.spilled
    }

    /// The nearest-rank `p`th percentile (`p` in 1..=100; `None` when empty): exact while
    /// [`is_exact`](Self::is_exact), else within 0.2 % (and never above `max`).
    pub fn percentile(&self, p: u64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let r = rank(p.min(100), self.count);
        if !self.spilled {
            let mut v = self.exact.clone();
            v.sort_unstable();
            return v.get((r - 1) as usize).copied();
        }
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= r {
                return Some(midpoint(i).min(self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic spread of values from 1 ns to ~10 s.
    fn values(n: u64) -> Vec<u64> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x % 10_000_000_000) >> (x % 24)).max(1)
            })
            .collect()
    }

    fn exact_percentile(v: &[u64], p: u64) -> u64 {
        let mut s = v.to_vec();
        s.sort_unstable();
        s[(rank(p, s.len() as u64) - 1) as usize]
    }

    #[test]
    fn buckets_round_trip_within_the_bound() {
        for v in values(10_000)
            .into_iter()
            .chain([0, 1, 255, 256, 257, 511, 512, u64::MAX])
        {
            let m = midpoint(index(v));
            let err = m.abs_diff(v) as f64 / v.max(1) as f64;
            assert!(err <= 1.0 / 512.0, "{v} -> {m} ({err})");
        }
    }

    #[test]
    fn small_sets_are_exact_large_ones_within_a_fifth_of_a_percent() {
        let small = values(1000);
        let mut h = LatencyHistogram::new();
        small.iter().for_each(|&v| h.record(v));
        assert!(h.is_exact());
        for p in [1, 50, 99, 100] {
            assert_eq!(h.percentile(p), Some(exact_percentile(&small, p)));
        }
        let big = values(100_000);
        let mut h = LatencyHistogram::new();
        big.iter().for_each(|&v| h.record(v));
        assert!(!h.is_exact());
        assert_eq!(h.count(), 100_000);
        assert_eq!(h.max(), *big.iter().max().expect("values"));
        for p in [1, 50, 90, 99, 100] {
            let want = exact_percentile(&big, p);
            let got = h.percentile(p).expect("values");
            let err = got.abs_diff(want) as f64 / want as f64;
            assert!(err <= 0.002, "p{p}: {got} vs {want}");
        }
        assert!(h.buckets.len() <= 14_336);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let v = values(9000);
        let (a, b) = v.split_at(3000);
        let mut one = LatencyHistogram::new();
        v.iter().for_each(|&x| one.record(x));
        let mut ha = LatencyHistogram::new();
        a.iter().for_each(|&x| ha.record(x));
        let mut hb = LatencyHistogram::new();
        b.iter().for_each(|&x| hb.record(x));
        ha.merge(&hb);
        assert_eq!(ha.count(), one.count());
        for p in [50, 99] {
            assert_eq!(ha.percentile(p), one.percentile(p));
        }
        let mut small = LatencyHistogram::new();
        small.record(5);
        let mut other = LatencyHistogram::new();
        other.record(7);
        small.merge(&other);
        assert!(small.is_exact());
        assert_eq!(small.percentile(100), Some(7));
        assert_eq!(LatencyHistogram::new().percentile(50), None);
    }
}
