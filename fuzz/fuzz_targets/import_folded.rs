//! The folded-stacks importer must never panic; its errors must point
//! inside the input; what it imports must be a valid profile that writes
//! back to folded text which imports to the same stacks.
#![no_main]

use emberlens_pprof::import::folded;
use emberlens_pprof::{ImportError, ImportLimits, decode_any_with_limits, validate};
use libfuzzer_sys::fuzz_target;

const LIMITS: ImportLimits = ImportLimits {
    max_input_bytes: 1 << 20,
    max_frames: 1 << 16,
};

fuzz_target!(|data: &[u8]| {
    match folded::parse_with_limits(data, LIMITS) {
        Ok(p) => {
            validate(&p).expect("an imported profile is valid");
            let text = folded::write(&p, 0);
            if !text.is_empty() {
                let again = folded::parse_with_limits(text.as_bytes(), LIMITS)
                    .expect("written folded text imports again");
                assert_eq!(folded::write(&again, 0), text, "folded round trip");
            }
        }
        Err(ImportError::Folded { line, offset, .. }) => {
            let lines = data.split(|&b| b == b'\n').count();
            assert!(line >= 1 && line <= lines, "line {line} of {lines}");
            assert!(offset <= data.len(), "offset {offset} of {}", data.len());
        }
        Err(ImportError::TooManyFrames { .. }) => {}
        Err(e) => panic!("unexpected error kind from the folded importer: {e}"),
    }
    // Through the sniffer too (whatever format it picks).
    if let Ok(p) = decode_any_with_limits(data, LIMITS) {
        validate(&p).expect("decode_any's profile is valid");
    }
});
