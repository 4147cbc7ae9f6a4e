//! Prometheus's label-set hash (`labels.Labels.Hash`): xxHash64, seed 0,
//! over each label's name and value, each followed by the byte 0xff.
//! `limit_ratio` selects series by it, so it must match bit for bit. Also a
//! cheap hasher for maps keyed by label-set identities (the evaluator's caches).

use emberlens_model::Labels;
use xxhash_rust::xxh64::xxh64;

/// The hash of a label set, as Prometheus computes it.
pub fn labels_hash(l: &Labels) -> u64 {
    let mut buf = Vec::with_capacity(64);
    for lb in l.iter() {
        buf.extend_from_slice(lb.name.as_bytes());
        buf.push(0xff);
        buf.extend_from_slice(lb.value.as_bytes());
        buf.push(0xff);
    }
    xxh64(&buf, 0)
}

/// A hasher for keys that are already well spread integers (label-set
/// identities, see [`Labels::shared_id`]): a folded multiply, far cheaper
/// than SipHash over label strings. Not for untrusted keys.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, x: u64) {
        let p = u128::from(self.0 ^ x) * 0x9E37_79B9_7F4A_7C15;
        self.0 = (p >> 64) as u64 ^ p as u64;
    }

    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
}

/// A map keyed by label-set identities.
pub(crate) type IdMap<V> =
    std::collections::HashMap<usize, V, std::hash::BuildHasherDefault<IdHasher>>;
