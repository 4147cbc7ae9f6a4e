//! A small, fast, non-cryptographic hasher for integer keys in hot loops,
//! written here so the crate has no extra dependency. Keys are our own
//! ids, never input strings, so hash flooding is not a concern.
//!
//! Each word is mixed with a *folded* multiply (the 128-bit product's high
//! and low halves xored), so every input bit reaches the low bits that
//! pick the bucket. A plain multiply (rustc's `FxHasher`) leaves the low
//! bits depending on the key's low bits only: keys `(node << 32) | frame`
//! then collide on the frame, which made deep recursive stacks quadratic.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The hasher (see the module docs).
#[derive(Clone, Copy, Default)]
pub struct IdHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl IdHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        let x = u128::from(self.hash ^ word) * u128::from(SEED);
        self.hash = (x as u64) ^ ((x >> 64) as u64);
    }
}

impl Hasher for IdHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A `HashMap` with [`IdHasher`].
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_bits_of_a_key_reach_the_low_bits_of_the_hash() {
        // Keys differing only in their high half must not share low bits.
        let low = |k: u64| {
            let mut h = IdHasher::default();
            h.write_u64(k);
            h.finish() & 0xffff
        };
        let distinct: std::collections::HashSet<u64> =
            (0..1000u64).map(|node| low((node << 32) | 7)).collect();
        assert!(distinct.len() > 900, "{} distinct", distinct.len());
    }
}
