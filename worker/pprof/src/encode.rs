//! Encoding: a [`Profile`] → protobuf bytes, raw or gzipped (what pprof
//! tools write and what `/debug/pprof/*` endpoints serve).

use std::io::Write;

use prost::Message;

use crate::proto::Profile;

/// The profile as raw protobuf bytes.
pub fn encode(p: &Profile) -> Vec<u8> {
    p.encode_to_vec()
}

/// The profile as gzipped protobuf bytes (default compression level).
pub fn encode_gzip(p: &Profile) -> Vec<u8> {
    gzip(&encode(p))
}

/// Gzips `bytes` in memory.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4 + 64),
        flate2::Compression::default(),
    );
    // Writing into a `Vec` cannot fail; should it ever, the fallback below
    // compresses nothing rather than panicking.
    if enc.write_all(bytes).is_err() {
        return Vec::new();
    }
    enc.finish().unwrap_or_default()
}
