//! The promqltest script parser (series descriptions, histogram literals,
//! expansions, expect lines) must never panic or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = emberlens_promql::promqltest::script::parse_script(text);
    }
});
