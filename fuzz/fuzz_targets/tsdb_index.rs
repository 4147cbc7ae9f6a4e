//! The index reader must never panic: open, then walk everything it lists.
#![no_main]

use emberlens_tsdb::index::IndexReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(ix) = IndexReader::open("index", data.to_vec()) else { return };
    let names: Vec<String> = ix.label_names().map(str::to_string).collect();
    for n in names.iter().take(64) {
        let values: Vec<String> = ix.label_values(n).map(str::to_string).collect();
        for v in values.iter().take(64) {
            let _ = ix.postings(n, v);
        }
    }
    if let Ok(all) = ix.all_postings() {
        for id in all.into_iter().take(256) {
            let _ = ix.series(id);
        }
    }
    for r in 0..64 {
        let _ = ix.series(r);
        let _ = ix.symbol(r);
    }
});
