//! A fast, non-cryptographic hasher for the capture layer's small maps whose keys an attacker
//! cannot multiply: connection numbers (our own counters) and the addresses of at most
//! [`MAX_OPEN_CONNECTIONS`](super::reassembly::MAX_OPEN_CONNECTIONS) open connections. SipHash,
//! the default, costs more per record than the rest of the lookup; with so few keys, hash
//! flooding cannot degrade these maps (maps keyed by peer strings keep the default hasher).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The rotate-xor-multiply word hash of rustc's `FxHasher`.
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

/// A `HashMap` with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_small_keys_spread_and_maps_work() {
        let mut m: FastMap<(u64, u32), u64> = FastMap::default();
        for i in 0..1000u64 {
            m.insert((i, (i * 7) as u32), i);
        }
        assert_eq!(m.len(), 1000);
        assert_eq!(m.get(&(500, 3500)), Some(&500));
        let hash = |k: u64| {
            let mut h = FastHasher::default();
            h.write_u64(k);
            h.finish()
        };
        assert_ne!(hash(1), hash(2));
        let mut h = FastHasher::default();
        h.write(b"123456789");
        assert_ne!(h.finish(), 0);
    }
}
