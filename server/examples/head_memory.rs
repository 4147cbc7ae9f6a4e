//! Resident memory per head series: ingests SERIES series (labels shaped
//! like a node exporter's) for STEPS scrapes at 15 s and prints RSS before
//! and after. Run: `cargo run --release -p emberlens-server --example
//! head_memory -- 100000 40`.
#![allow(clippy::unwrap_used, missing_docs)]

use emberlens_model::{Appendable, Appender, Labels};
use emberlens_server::store::{Tsdb, TsdbOptions};

#[path = "common/mod.rs"]
mod common;

fn rss_kib() -> u64 {
    common::status_kib("VmRSS:")
}

fn main() {
    let (series, steps) = common::two_numbers(100_000, 40);
    let (series, steps) = (series as usize, steps as i64);
    let dir = std::env::temp_dir().join(format!("emberlens-headmem-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let labels: Vec<Labels> = (0..series)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", format!("node_metric_{}_total", i % 200)),
                (
                    "instance",
                    format!("10.0.{}.{}:9100", (i / 1000) / 250, (i / 1000) % 250),
                ),
                ("job", "node".to_string()),
                (
                    "mode",
                    ["user", "system", "idle", "iowait", "irq"][i % 5].to_string(),
                ),
                ("cpu", ((i / 5) % 200).to_string()),
            ])
        })
        .collect();
    let before = rss_kib();
    let db = Tsdb::open(&dir, TsdbOptions::default()).unwrap();
    let t0 = std::time::Instant::now();
    for step in 0..steps {
        let mut app = db.appender();
        for (i, l) in labels.iter().enumerate() {
            let v = (step * (i as i64 % 7 + 1)) as f64;
            app.append(l, 1_700_000_000_000 + step * 15_000, v).unwrap();
        }
        app.commit().unwrap();
    }
    let secs = t0.elapsed().as_secs_f64();
    let after = rss_kib();
    let (s, chunks, bytes) = db.head().stats();
    println!(
        "{s} series, {steps} samples each, {chunks} chunks, {bytes} chunk bytes; \
         RSS {before} KiB -> {after} KiB: {:.0} bytes/series (labels built before: excluded); \
         {:.2} M samples/s",
        (after - before) as f64 * 1024.0 / s as f64,
        (series as f64 * steps as f64) / secs / 1e6
    );
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}
