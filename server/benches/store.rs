//! The server store's hot paths: a scrape-sized commit (WAL write + head
//! append), head reads, and cutting a block from the head. Run:
//! `cargo bench -p emberlens-server --bench store`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use emberlens_model::{Appendable, Appender, Labels, Storage, parse_selector};
use emberlens_server::store::{Tsdb, TsdbOptions};
use emberlens_tsdb::meta::Compaction;
use emberlens_tsdb::writer::{BlockWriter, MemSink};

const SERIES: usize = 10_000;

fn labels() -> Vec<Labels> {
    (0..SERIES)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", format!("metric_{}", i % 100)),
                ("instance", format!("host-{}:9100", i / 1000)),
                ("job", "node".to_string()),
                ("cpu", (i % 1000).to_string()),
            ])
        })
        .collect()
}

fn temp(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("emberlens-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Commits `steps` scrapes of every series at 15 s.
fn fill(db: &Tsdb, labels: &[Labels], from_step: i64, steps: i64) {
    for step in from_step..from_step + steps {
        let mut app = db.appender();
        for (i, l) in labels.iter().enumerate() {
            app.append(l, step * 15_000, (step as f64) * 0.5 + i as f64)
                .unwrap();
        }
        app.commit().unwrap();
    }
}

fn commit(c: &mut Criterion) {
    let labels = labels();
    let dir = temp("commit");
    let db = Tsdb::open(&dir, TsdbOptions::default()).unwrap();
    fill(&db, &labels, 0, 1);
    let mut step = 1;
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.bench_function("commit 10k samples (existing series)", |b| {
        b.iter(|| {
            fill(&db, &labels, step, 1);
            step += 1;
        })
    });
    g.finish();
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

fn reads_and_cuts(c: &mut Criterion) {
    let labels = labels();
    let dir = temp("read");
    let db = Tsdb::open(&dir, TsdbOptions::default()).unwrap();
    // One hour at 15 s: 240 samples per series, 2.4 M samples.
    fill(&db, &labels, 0, 240);
    let m = parse_selector(r#"metric_7{job="node"}"#).unwrap();
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(100 * 240));
    g.bench_function("select 100 series x 1 h from the head", |b| {
        b.iter(|| black_box(db.select(&m, 0, 3_600_000).unwrap()))
    });
    g.throughput(Throughput::Elements(SERIES as u64 * 240));
    g.sample_size(10);
    g.bench_function("block of 10k series x 1 h written in memory", |b| {
        b.iter_batched(
            || BlockWriter::new("01BENCH", MemSink::default()),
            |mut w| {
                db.head().write_block(0, 7_200_000, &mut w).unwrap();
                black_box(w.finish(Compaction::default()).unwrap())
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, commit, reads_and_cuts);
criterion_main!(benches);
