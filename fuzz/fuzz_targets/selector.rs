//! The selector parser must never panic; an error's offset lies within the input
//! and on a character boundary.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match emberlens_model::parse_selector(text) {
        Ok(matchers) => assert!(!matchers.is_empty()),
        Err(e) => {
            assert!(e.offset <= text.len(), "{e}");
            assert!(text.is_char_boundary(e.offset), "{e}");
        }
    }
});
