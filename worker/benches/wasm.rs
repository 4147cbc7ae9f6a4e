//! Hot paths measured inside headless Chromium (Wasm), in a dedicated worker
//! as the app runs them: XOR decode throughput. Run with
//! `CHROMEDRIVER=/usr/bin/chromedriver CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
//!  cargo bench --target wasm32-unknown-unknown -p emberlens-worker`;
//! the native figure comes from `cargo bench -p emberlens-tsdb -- xor` on
//! the same generated chunks.
#![allow(missing_docs)]

#[cfg(target_arch = "wasm32")]
mod wasm {
    use std::hint::black_box;

    use emberlens_tsdb::chunkenc::xor::{XorEncoder, XorIter};
    use wasm_bindgen_test::{Criterion, wasm_bindgen_bench, wasm_bindgen_test_configure};

    wasm_bindgen_test_configure!(run_in_dedicated_worker);

    /// The same chunks as the native benchmark (`worker/tsdb/benches/tsdb.rs`).
    fn realistic_chunks(n_chunks: usize) -> Vec<Vec<u8>> {
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

    #[wasm_bindgen_bench]
    fn xor_decode_120k_samples(c: &mut Criterion) {
        let chunks = realistic_chunks(1000);
        c.bench_function("xor decode 120k samples (wasm)", |b| {
            b.iter(|| {
                let mut sum = 0.0;
                for ch in &chunks {
                    for s in XorIter::new(ch, 0).into_iter().flatten() {
                        sum += s.map_or(0.0, |s| s.1);
                    }
                }
                black_box(sum)
            })
        });
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {}
