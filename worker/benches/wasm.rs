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

    use emberlens_tsdb::chunkenc::xor::XorIter;
    use wasm_bindgen_test::{Criterion, wasm_bindgen_bench, wasm_bindgen_test_configure};

    wasm_bindgen_test_configure!(run_in_dedicated_worker);

    #[wasm_bindgen_bench]
    fn xor_decode_120k_samples(c: &mut Criterion) {
        let chunks = emberlens_tsdb::testing::realistic_xor_chunks(1000);
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
