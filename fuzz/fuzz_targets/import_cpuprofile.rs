//! The Chrome `.cpuprofile` importer must never panic or blow up memory
//! (cycles, ids pointing nowhere, deep trees, huge numbers), and what it
//! imports must be a valid profile whose totals match its samples.
#![no_main]

use emberlens_pprof::import::cpuprofile;
use emberlens_pprof::{ImportLimits, decode_any_with_limits, gzip, validate};
use libfuzzer_sys::fuzz_target;

const LIMITS: ImportLimits = ImportLimits {
    max_input_bytes: 1 << 20,
    max_frames: 1 << 16,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = cpuprofile::parse_with_limits(data, LIMITS) {
        validate(&p).expect("an imported profile is valid");
        assert_eq!(p.sample_type.len(), 2);
        assert!(p.sample.iter().all(|s| s.value.iter().all(|&v| v >= 0)));
        let frames: usize = p.sample.iter().map(|s| s.location_id.len()).sum();
        assert!(frames <= LIMITS.max_frames, "{frames} frames");
    }
    // Gzipped, through the sniffer.
    if let Ok(p) = decode_any_with_limits(&gzip(data), LIMITS) {
        validate(&p).expect("decode_any's profile is valid");
    }
});
