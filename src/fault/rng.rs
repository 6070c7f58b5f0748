//! The fault plans' deterministic PRNG: Marsaglia's xorshift64 (shifts 13, 7, 17), seeded by the
//! run's seed, so that a run's probabilistic faults and jitter are reproducible from that seed.

/// A xorshift64 generator. Not for cryptography; only for reproducible fault decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XorShift64 {
    state: u64,
}

impl XorShift64 {
    /// A generator from `seed` (0, which xorshift cannot leave, is replaced by a fixed constant).
    pub fn new(seed: u64) -> Self {
        Self {
            state: if seed == 0 {
                0x9E37_79B9_7F4A_7C15
            } else {
                seed
            },
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }

    /// A uniform number in `[0, 1)` (53 random bits).
    pub fn next_f64(&mut self) -> f64 {
        // 53 bits fit an f64 mantissa exactly.
        #[allow(clippy::cast_precision_loss)]
        let v = (self.next_u64() >> 11) as f64;
        v / (1u64 << 53) as f64
    }

    /// A uniform number in `0..=max`.
    pub fn below_inclusive(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(n) => self.next_u64() % n,
            None => self.next_u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_is_fixed_by_seed() {
        let mut a = XorShift64::new(1);
        assert_eq!(a.next_u64(), 1_082_269_761);
        let mut b = XorShift64::new(42);
        let mut c = XorShift64::new(42);
        for _ in 0..100 {
            let (x, y) = (b.next_f64(), c.next_f64());
            assert_eq!(x, y);
            assert!((0.0..1.0).contains(&x));
        }
        assert_ne!(XorShift64::new(0).next_u64(), 0);
    }
}
