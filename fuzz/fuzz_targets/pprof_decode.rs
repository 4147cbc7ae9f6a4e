//! The pprof decoder must never panic or blow up: decode (raw, and the same
//! bytes gzipped, with a small cap), then merge what decoded with itself
//! and re-encode it.
#![no_main]

use emberlens_pprof::{decode_with_limit, encode_gzip, gzip, merge};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for input in [data.to_vec(), gzip(data)] {
        let Ok(p) = decode_with_limit(&input, 1 << 20) else {
            continue;
        };
        if let Ok(m) = merge([&p, &p]) {
            let _ = decode_with_limit(&encode_gzip(&m), 4 << 20);
        }
    }
});
