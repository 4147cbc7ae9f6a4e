//! Prometheus's label-set hash (`labels.Labels.Hash`): xxHash64, seed 0,
//! over each label's name and value, each followed by the byte 0xff.
//! `limit_ratio` selects series by it, so it must match bit for bit.

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
