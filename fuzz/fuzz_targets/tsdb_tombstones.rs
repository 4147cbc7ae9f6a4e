//! The tombstones decoder must never panic; what it accepts re-encodes to a
//! file it accepts again with the same content.
#![no_main]

use emberlens_tsdb::tombstones::Tombstones;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Tombstones::parse("tombstones", data) {
        let again = Tombstones::parse("tombstones", &t.encode()).expect("re-encoded tombstones parse");
        assert_eq!(again, t);
    }
});
