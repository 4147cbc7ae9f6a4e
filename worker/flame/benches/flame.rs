//! The profile pipeline on a large generated profile: decode, model build,
//! flame tree, top table, and all of them in a row.
//!
//! The profile is made by the fixtures' generator (not kept in the repo):
//!
//! ```text
//! python3 ../shared/fixtures/pprof/gen_large_pprof.py --functions 10000 --samples 172000 -o /tmp/large-5mb.pb.gz
//! EMBERLENS_LARGE_PPROF=/tmp/large-5mb.pb.gz cargo bench -p emberlens-flame
//! ```
//!
//! Without the file (default path `/tmp/large-5mb.pb.gz`) the bench prints
//! how to make it and measures nothing.
// Benches run natively only; they read the profile from disk.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, missing_docs)]

// Criterion does not build for wasm32.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::hint::black_box;
    use std::path::PathBuf;

    use criterion::{Criterion, criterion_group};
    use emberlens_flame::top::TopOptions;
    use emberlens_flame::{Model, Options};

    fn path() -> PathBuf {
        std::env::var_os("EMBERLENS_LARGE_PPROF")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp/large-5mb.pb.gz"))
    }

    fn pipeline(c: &mut Criterion) {
        let path = path();
        let Ok(bytes) = std::fs::read(&path) else {
            eprintln!(
                "SKIPPED: {} not found. Make it with:\n  python3 ../shared/fixtures/pprof/gen_large_pprof.py --functions 10000 --samples 172000 -o /tmp/large-5mb.pb.gz\n(or point EMBERLENS_LARGE_PPROF at another profile)",
                path.display()
            );
            return;
        };
        let profile = emberlens_pprof::decode(&bytes).unwrap();
        let model = Model::from_pprof(&profile).unwrap();
        let opts = Options::default();
        let mut g = c.benchmark_group(format!(
            "{} ({} samples)",
            path.file_name().unwrap().to_string_lossy(),
            model.sample_count()
        ));
        g.sample_size(10);
        g.bench_function("decode", |b| {
            b.iter(|| black_box(emberlens_pprof::decode(&bytes).unwrap()))
        });
        g.bench_function("model build", |b| {
            b.iter(|| black_box(Model::from_pprof(&profile).unwrap()))
        });
        g.bench_function("model from bytes (no Profile)", |b| {
            b.iter(|| black_box(Model::from_bytes(&bytes, 1 << 31).unwrap()))
        });
        g.bench_function("flame tree", |b| {
            b.iter(|| black_box(model.flame_tree(&opts).unwrap()))
        });
        g.bench_function("top table", |b| {
            b.iter(|| black_box(model.top(&opts, &TopOptions::default()).unwrap()))
        });
        g.bench_function("decode + model + flame tree", |b| {
            b.iter(|| {
                let p = emberlens_pprof::decode(&bytes).unwrap();
                let m = Model::from_pprof(&p).unwrap();
                drop(p);
                black_box(m.flame_tree(&opts).unwrap())
            })
        });
        g.finish();
    }

    criterion_group!(benches, pipeline);
}

#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(native::benches);

#[cfg(target_arch = "wasm32")]
fn main() {}
