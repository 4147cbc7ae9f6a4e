//! Layout time per frame while zooming and panning a large profile (issue
//! 6's goal: layout + paint ≤ 16 ms per frame; the paint half is measured
//! in the browser by `worker/tests/flame_bench.rs`).
//!
//! The profile: `python3 ../shared/fixtures/pprof/gen_large_pprof.py
//! --functions 10000 --samples 172000 -o /tmp/large-5mb.pb.gz` (2.26 M
//! call-tree nodes), or the file named by `EMBERLENS_LARGE_PPROF`. Without
//! it the bench says so and measures nothing. Run with
//! `cargo bench -p emberlens-flame --bench layout`.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // a bench: reads its input file, panics on bad input

// Criterion does not build for wasm32; the Wasm figures come from
// `worker/tests/flame_bench.rs`.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::hint::black_box;

    use criterion::{Criterion, criterion_group};
    use emberlens_flame::layout::{FixedWidth, Orientation, Palette, Viewport, layout};
    use emberlens_flame::{FlameTree, Model, Options};

    /// The zoom/pan sequence of the benchmark (shared with the Wasm one): 24
    /// zoom-ins by 0.7 around 30 % of the width with a 40 px pan each, 12 pans
    /// of 300 px, a scroll down and back, 24 zoom-outs.
    pub fn sequence(tree: &FlameTree, first: Viewport) -> Vec<Viewport> {
        let mut v = first;
        let mut out = vec![v];
        for _ in 0..24 {
            v = v
                .zoomed(tree, 0.7, 0.3 * v.width_css)
                .panned(tree, 40.0, 0.0);
            out.push(v);
        }
        for _ in 0..12 {
            v = v.panned(tree, 300.0, 0.0);
            out.push(v);
        }
        v = v.panned(tree, 0.0, 400.0);
        out.push(v);
        v = v.panned(tree, 0.0, -400.0);
        out.push(v);
        for _ in 0..24 {
            v = v.zoomed(tree, 1.0 / 0.7, 0.5 * v.width_css);
            out.push(v);
        }
        out
    }

    fn bench(c: &mut Criterion) {
        let path = std::env::var("EMBERLENS_LARGE_PPROF").unwrap_or("/tmp/large-5mb.pb.gz".into());
        let Ok(bytes) = std::fs::read(&path) else {
            eprintln!(
                "SKIPPED: {path} not found (see this bench's doc for the command that makes it)"
            );
            return;
        };
        let profile = emberlens_pprof::decode(&bytes).unwrap();
        let tree = Model::from_pprof(&profile)
            .unwrap()
            .flame_tree(&Options::default())
            .unwrap();
        let palette = Palette::new(&tree);
        eprintln!(
            "{path}: {} nodes, {} frames, max depth {}",
            tree.nodes.len(),
            tree.frames.len(),
            tree.max_depth()
        );
        for (dpr, w, h) in [(1.0, 1600.0, 1000.0), (2.0, 1600.0, 1000.0)] {
            let seq = sequence(
                &tree,
                Viewport::whole(&tree, w, h, dpr, Orientation::Icicle),
            );
            let boxes: usize = seq
                .iter()
                .map(|v| {
                    layout(&tree, v, &palette, None, &mut FixedWidth(7.0 * dpr))
                        .rects
                        .len()
                })
                .sum();
            eprintln!(
                "dpr {dpr}: {} frames, {:.0} boxes per frame on average",
                seq.len(),
                boxes as f64 / seq.len() as f64
            );
            c.bench_function(
                &format!(
                    "layout, {} zoom/pan frames, {w}x{h} css px at dpr {dpr}",
                    seq.len()
                ),
                |b| {
                    b.iter(|| {
                        for v in &seq {
                            black_box(layout(&tree, v, &palette, None, &mut FixedWidth(7.0 * dpr)));
                        }
                    })
                },
            );
        }
    }

    criterion_group! {
        name = benches;
        config = Criterion::default().sample_size(10);
        targets = bench
    }
}

#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(native::benches);

#[cfg(target_arch = "wasm32")]
fn main() {}
