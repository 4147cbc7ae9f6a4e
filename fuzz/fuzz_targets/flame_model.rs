//! The flamegraph model must never panic or blow up on any file a user may
//! open: build the model from the bytes (pprof streamed into columns, or
//! folded / .cpuprofile through the importers), raw and gzipped, then its
//! flame tree, top table and collapsed stacks for every sample type, and a
//! tree through refinements (focus, hide, lines granularity).
#![no_main]

use emberlens_flame::top::TopOptions;
use emberlens_flame::{Model, Options, SampleIndex, TextOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for input in [data.to_vec(), emberlens_pprof::gzip(data)] {
        let Ok(model) = Model::from_any_bytes(&input, 1 << 20) else {
            continue;
        };
        for i in 0..model.sample_types().len().min(4) {
            let opts = Options {
                sample_index: Some(SampleIndex::Number(i)),
                ..Options::default()
            };
            if let Ok(tree) = model.flame_tree(&opts) {
                let _ = emberlens_flame::collapsed::collapsed(&tree);
            }
            let _ = model.top(&opts, &TopOptions::default());
        }
        let refined = TextOptions {
            granularity: "lines",
            focus: "a|main",
            hide: "^r",
            ..TextOptions::default()
        };
        if let Ok(opts) = Options::from_text(None, &refined) {
            let _ = model.flame_tree(&opts);
        }
    }
});
