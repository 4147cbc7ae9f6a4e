//! Peak memory of cutting head blocks and compacting them, at scale:
//! ingests SERIES series (labels shaped like a fake exporter's behind a
//! scrape: name, instance, job and three more) for STEPS scrapes 15 s apart
//! with 5-minute blocks, running the store's compaction after each scrape
//! as the server does (head blocks cut, then 3 x 5 m blocks compacted into
//! one); for each run that did something, prints the resident memory before
//! it and the peak during it (VmHWM, reset first through
//! `/proc/self/clear_refs`). Run: `cargo run --release -p emberlens-server
//! --example block_memory -- 1000000 84`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Instant;

use emberlens_model::{Appendable, Appender, Labels};
use emberlens_server::store::{Tsdb, TsdbOptions};

// The server's allocator, so the figures are the server's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "common/mod.rs"]
mod common;
use common::status_kib;

fn main() {
    let (series, steps) = common::two_numbers(100_000, 84);
    let (series, steps) = (series as usize, steps as i64);
    let dir = std::env::temp_dir().join(format!("emberlens-blockmem-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let labels: Vec<Labels> = (0..series)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", format!("fake_metric_{}_total", i % 100)),
                ("instance", format!("127.0.0.1:{}", 20_000 + i / 1000)),
                ("job", "fake".to_string()),
                ("shard", ((i / 100) % 10).to_string()),
                (
                    "method",
                    ["GET", "POST", "PUT", "DELETE"][i % 4].to_string(),
                ),
                ("path", format!("/api/v1/thing/{}", (i / 4) % 25)),
            ])
        })
        .collect();
    let minute = 60_000;
    let opts = TsdbOptions {
        block_range_ms: 5 * minute,
        max_block_ms: 15 * minute,
        ..TsdbOptions::default()
    };
    let db = Tsdb::open(&dir, opts).unwrap();
    let t0 = Instant::now();
    // Start on a 15-minute boundary, so the 3 head blocks share a window.
    let start = 1_700_000_100_000 / (15 * minute) * (15 * minute) + 15 * minute;
    let mut worst = 0u64;
    for step in 0..steps {
        // One commit per 1,000 series, as one scrape of a target is.
        for (k, target) in labels.chunks(1000).enumerate() {
            let mut app = db.appender();
            for (i, l) in target.iter().enumerate() {
                let v = (step * ((k * 1000 + i) as i64 % 7 + 1)) as f64;
                app.append(l, start + step * 15_000, v).unwrap();
            }
            app.commit().unwrap();
        }
        // Compact after every scrape, as the server's loop would: each run
        // that does something prints its own peak.
        let before = status_kib("VmRSS:");
        // Reset the peak: "5" clears VmHWM (Linux >= 4.0).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let t1 = Instant::now();
        let changed = db.compact().unwrap();
        let took = t1.elapsed();
        let peak = status_kib("VmHWM:");
        if changed {
            let blocks: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .filter(|e| e.path().join("meta.json").exists())
                .map(|e| e.file_name().to_string_lossy()[20..].to_string())
                .collect();
            let extra = peak.saturating_sub(before);
            worst = worst.max(extra);
            println!(
                "after scrape {step}: compaction {:.1} s, blocks {blocks:?}; RSS before {} MiB, \
                 peak during +{} MiB ({:.0} B/series), after {} MiB",
                took.as_secs_f64(),
                before / 1024,
                extra / 1024,
                extra as f64 * 1024.0 / series as f64,
                status_kib("VmRSS:") / 1024
            );
        }
    }
    println!(
        "{series} series x {steps} scrapes in {:.1} s; worst peak above the RSS before a compaction: \
         +{} MiB ({:.0} B/series)",
        t0.elapsed().as_secs_f64(),
        worst / 1024,
        worst as f64 * 1024.0 / series as f64
    );
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}
