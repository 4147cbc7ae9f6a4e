//! TSDB hot paths: XOR decode throughput, and select latency and bytes read
//! per query on the real fixture blocks (`../shared/fixtures`, skipped with a
//! message when absent). Run: `cargo bench -p emberlens-tsdb`.
//!
//! Bytes per sample of written blocks are measured by the round-trip test
//! (`server/tests/tsdb_roundtrip.rs`), next to promtool's figure.
// Benches run natively only; they read the fixtures from disk.
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::unwrap_used,
    missing_docs
)]

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use emberlens_model::parse_selector;
use emberlens_tsdb::chunkenc::xor::XorIter;
use emberlens_tsdb::{CountingFileSet, Db, MemFileSet};

fn xor_decode(c: &mut Criterion) {
    let chunks = emberlens_tsdb::testing::realistic_xor_chunks(1000);
    let mut g = c.benchmark_group("xor");
    g.throughput(Throughput::Elements(120 * chunks.len() as u64));
    g.bench_function("decode 120k samples", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for ch in &chunks {
                for s in XorIter::new(ch, 0).unwrap() {
                    sum += s.unwrap().1;
                }
            }
            black_box(sum)
        })
    });
    g.finish();
}

fn load(dir: &Path) -> MemFileSet {
    let mut mem = MemFileSet::new();
    fn walk(root: &Path, dir: &Path, mem: &mut MemFileSet) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, mem);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                mem.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    walk(dir, dir, &mut mem);
    mem
}

fn select(c: &mut Criterion) {
    let fx = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/tsdb");
    if !fx.is_dir() {
        eprintln!("SKIPPED select benchmarks: {} not found", fx.display());
        return;
    }
    let cases = [
        (
            "synthetic-6h/data",
            "selective",
            r#"fx_requests_total{instance="host-07",method="DELETE"}"#,
        ),
        (
            "synthetic-6h/data",
            "regex",
            r#"{__name__=~"fx_temp.*",sensor=~"cpu|gpu",instance=~"host-1."}"#,
        ),
        ("snapshot-live", "selective", r#"up{job="node"}"#),
        (
            "snapshot-live",
            "regex",
            r#"{__name__=~"node_cpu_seconds_total|node_network_.*_bytes_total",mode!="idle"}"#,
        ),
    ];
    let mut g = c.benchmark_group("select");
    for (dataset, kind, sel) in cases {
        let fs = CountingFileSet::new(load(&fx.join(dataset)));
        let total: u64 = emberlens_tsdb::FileSet::paths(&fs)
            .iter()
            .map(|p| {
                emberlens_tsdb::ByteSource::len(&emberlens_tsdb::FileSet::open(&fs, p).unwrap())
            })
            .sum();
        fs.counter().reset();
        let db = Db::open(&fs).unwrap();
        let opened = fs.counter().bytes();
        let m = parse_selector(sel).unwrap();
        fs.counter().reset();
        let series = db.select_series(&m, i64::MIN, i64::MAX).unwrap();
        let samples: usize = series.iter().map(|s| s.samples.len()).sum();
        eprintln!(
            "bytes read: {dataset} {kind}: open {opened} B; query {} B in {} reads for {} series / {samples} samples; data {total} B",
            fs.counter().bytes(),
            fs.counter().reads(),
            series.len()
        );
        g.bench_function(format!("{dataset} {kind}"), |b| {
            b.iter(|| black_box(db.select_series(&m, i64::MIN, i64::MAX).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, xor_decode, select);
criterion_main!(benches);
