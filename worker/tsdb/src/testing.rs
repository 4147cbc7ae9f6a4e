//! Generated data for benchmarks, shared by the native (criterion) and the
//! Wasm (headless Chromium) benchmarks so their figures compare the same work.

use crate::chunkenc::xor::XorEncoder;

/// `n_chunks` XOR chunks of 120 samples shaped like scraped data: 15 s steps
/// with a few ms of jitter; even chunks a growing counter, odd ones a gauge
/// moving in steps of 0.125.
pub fn realistic_xor_chunks(n_chunks: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(n_chunks);
    let mut t = 1_700_000_000_000i64;
    let mut counter = 0.0f64;
    for c in 0..n_chunks {
        let mut enc = XorEncoder::new();
        for i in 0..120 {
            t += 15_000 + ((i * 7 + c) % 5) as i64 - 2;
            counter += ((i * 13 + c) % 17) as f64;
            let v = if c % 2 == 0 {
                counter
            } else {
                20.0 + ((i + c) % 40) as f64 * 0.125
            };
            enc.append(t, v);
        }
        out.push(enc.bytes().to_vec());
    }
    out
}
