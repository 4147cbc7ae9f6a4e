//! The exposition parser must never panic, and its errors must point inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match emberlens_textparse::parse(text) {
        Ok(entries) => {
            for e in entries {
                if let emberlens_textparse::Entry::Sample(s) = e {
                    assert!(!s.labels.metric_name().is_empty());
                }
            }
        }
        Err(e) => {
            let lines = text.split('\n').count();
            assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
            let line = text.split('\n').nth(e.line - 1).unwrap_or("");
            assert!(e.column >= 1 && e.column <= line.chars().count() + 1, "{e}");
        }
    }
});
