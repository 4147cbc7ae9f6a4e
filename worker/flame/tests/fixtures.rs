//! The fixture profiles against the references that do not need `go`:
//! collapsed stacks equal `reference/*.folded` (made with `go tool pprof
//! -raw | fold_raw.py`), and the known-tree program's flamegraph has the
//! shares it was designed with (`known-tree/expected.json`).
//!
//! Without `../shared` the tests print a SKIPPED line and pass; with
//! `CI=true` they fail instead.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{diff_lines, fixtures};
use emberlens_flame::collapsed::collapsed;
use emberlens_flame::{FlameTree, Model, Options, SampleIndex};

fn model(path: &Path) -> Model {
    let bytes = std::fs::read(path).unwrap();
    Model::from_pprof(&emberlens_pprof::decode(&bytes).unwrap()).unwrap()
}

fn tree(dir: &Path, file: &str, index: &str) -> FlameTree {
    let opts = Options {
        sample_index: Some(SampleIndex::Name(index.into())),
        ..Options::default()
    };
    model(&dir.join(file)).flame_tree(&opts).unwrap()
}

#[test]
fn collapsed_stacks_equal_the_folded_references() {
    let Some(dir) = fixtures() else { return };
    let refs = [
        (
            "known-contention/block.pb.gz",
            "delay",
            "known-contention-block.delay_ns",
        ),
        (
            "known-contention/mutex.pb.gz",
            "delay",
            "known-contention-mutex.delay_ns",
        ),
        ("known-tree/cpu.pb.gz", "samples", "known-tree-cpu.samples"),
        (
            "prometheus-2.42.0-allocs.pb.gz",
            "alloc_space",
            "prometheus-2.42.0-allocs.alloc_space",
        ),
        (
            "prometheus-2.42.0-cpu-15s.pb.gz",
            "samples",
            "prometheus-2.42.0-cpu-15s.samples",
        ),
        (
            "prometheus-2.42.0-goroutine.pb.gz",
            "goroutine",
            "prometheus-2.42.0-goroutine.goroutines",
        ),
        (
            "prometheus-2.42.0-heap.pb.gz",
            "inuse_space",
            "prometheus-2.42.0-heap.inuse_space",
        ),
    ];
    let mut failures = Vec::new();
    for (file, index, reference) in refs {
        let want =
            std::fs::read_to_string(dir.join(format!("reference/{reference}.folded"))).unwrap();
        let got = collapsed(&tree(&dir, file, index));
        if let Some(d) = diff_lines(&want, &got) {
            failures.push(format!("{file} -sample_index={index}:\n{d}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Share of a frame named `name` under `main.run`: (total, self) over
/// every node with that name below a `main.run` node.
fn shares(t: &FlameTree, name: &str) -> (f64, f64, i64) {
    let run = (0..t.nodes.len() as u32)
        .find(|&n| t.frame(n).name == "main.run")
        .expect("main.run in the known tree");
    let base = t.nodes[run as usize].total;
    let (mut total, mut self_value) = (0, 0);
    let end = t.nodes[run as usize].end;
    for n in run + 1..end {
        let node = &t.nodes[n as usize];
        // Count the outermost occurrence only (no recursion in this program).
        if t.frame(n).name == name {
            total += node.total;
            self_value += t.self_value(n);
        }
    }
    (
        total as f64 / base as f64,
        self_value as f64 / base as f64,
        base,
    )
}

#[test]
fn known_tree_shares_match_its_design() {
    let Some(dir) = fixtures() else { return };
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("known-tree/expected.json")).unwrap(),
    )
    .unwrap();
    let t = tree(&dir, "known-tree/cpu.pb.gz", "samples");
    let (a_total, a_self, base) = shares(&t, "main.funcA");
    let (b_total, _, _) = shares(&t, "main.funcB");
    let (c_total, _, _) = shares(&t, "main.funcC");
    let got = [
        ("main.funcA.total", a_total),
        ("main.funcA.self", a_self),
        ("main.funcB.total", b_total),
        ("main.funcC.total", c_total),
    ];
    assert_eq!(
        base,
        expected["observed_samples_under_main.run"]
            .as_i64()
            .unwrap()
    );
    for (k, v) in got {
        // The observed shares are the exact ones of this recording (4 decimals).
        let observed = expected["observed_share_of_main.run"][k].as_f64().unwrap();
        assert!(
            (v - observed).abs() < 5e-5,
            "{k}: {v} vs observed {observed}"
        );
        // The designed shares hold within the sampling noise.
        let designed = expected["expected_share_of_main.run"][k].as_f64().unwrap();
        assert!(
            (v - designed).abs() < 0.02,
            "{k}: {v} vs designed {designed}"
        );
    }
}

#[test]
fn sandwich_totals_are_the_functions_cum() {
    let Some(dir) = fixtures() else { return };
    let m = model(&dir.join("prometheus-2.42.0-cpu-15s.pb.gz"));
    let opts = Options::default();
    let top = m
        .top(
            &opts,
            &emberlens_flame::top::TopOptions {
                node_fraction: 0.0,
                ..Default::default()
            },
        )
        .unwrap();
    for name in [
        "github.com/prometheus/prometheus/promql.(*evaluator).eval",
        "runtime.mallocgc",
        "github.com/cespare/xxhash.Sum64",
    ] {
        let row = top.rows.iter().find(|r| r.name == name).unwrap();
        let re = regex::Regex::new(&format!("^{}$", regex::escape(name))).unwrap();
        let s = m.sandwich(&opts, &re).unwrap();
        for (which, t) in [("callees", &s.callees), ("callers", &s.callers)] {
            assert_eq!(t.total(), row.cum, "{which} of {name}");
            let first: Vec<_> = t.children(0).collect();
            assert_eq!(first.len(), 1, "{which} of {name}: one matching frame");
            assert_eq!(t.frame(first[0]).name, name);
        }
        // The callees' self values are the function's and its callees' flat.
        let leaf_sum: i64 = (0..s.callees.nodes.len() as u32)
            .map(|n| s.callees.self_value(n))
            .sum();
        assert_eq!(leaf_sum, row.cum);
        // Callers: the matching frame's own self value is its flat (leaf here).
        let callers_first = s.callers.children(0).next().unwrap();
        assert!(s.callers.nodes[callers_first as usize].total >= row.flat);
    }
}

#[test]
fn diff_tree_holds_both_profiles() {
    let Some(dir) = fixtures() else { return };
    let new = model(&dir.join("prometheus-2.42.0-allocs.pb.gz"));
    let base = model(&dir.join("known-contention/block.pb.gz"));
    assert!(
        new.diff_tree(&base, &Options::default()).is_err(),
        "incompatible types"
    );
    let base = model(&dir.join("prometheus-2.42.0-heap.pb.gz"));
    let opts = Options {
        sample_index: Some(SampleIndex::Name("inuse_space".into())),
        ..Options::default()
    };
    let d = new.diff_tree(&base, &opts).unwrap();
    let t_new = new.flame_tree(&opts).unwrap();
    let t_base = base.flame_tree(&opts).unwrap();
    assert!(d.is_diff);
    assert_eq!(d.total(), t_new.total());
    assert_eq!(d.base_total(0), t_base.total());
    // The same data under two defaults: every node unchanged.
    assert!((0..d.nodes.len() as u32).all(|n| d.nodes[n as usize].total == d.base_total(n)));
    assert_eq!(collapsed(&d), collapsed(&t_new));
    // A real change: the known-contention block profile against Prometheus's.
    let new = model(&dir.join("known-contention/block.pb.gz"));
    let base = model(&dir.join("prometheus-2.42.0-block.pb.gz"));
    let d = new.diff_tree(&base, &Options::default()).unwrap();
    assert_eq!(
        d.total(),
        new.flame_tree(&Options::default()).unwrap().total()
    );
    assert!((0..d.nodes.len() as u32).any(|n| d.nodes[n as usize].total != d.base_total(n)));
}

/// `Model::from_bytes` inflates as it reads: a truncated or oversized
/// stream is an error naming why, and a location id over `u32::MAX` (which
/// the columns cannot hold) goes through the full decoder.
#[test]
fn streamed_gzip_errors_and_the_wide_id_fallback() {
    let synthetic = common::synthetic_profile();
    let gz = emberlens_pprof::encode_gzip(&synthetic);
    let raw = emberlens_pprof::encode(&synthetic);
    let tree = |m: &Model| collapsed(&m.flame_tree(&Options::default()).unwrap());
    let want = tree(&Model::from_pprof(&synthetic).unwrap());
    assert_eq!(tree(&Model::from_bytes(&gz, 1 << 30).unwrap()), want);
    for cut in [gz.len() / 2, gz.len() - 3, 11] {
        let e = Model::from_bytes(&gz[..cut], 1 << 30).unwrap_err();
        assert!(e.to_string().contains("gzip"), "cut at {cut}: {e}");
    }
    let e = Model::from_bytes(&gz, raw.len() - 1).unwrap_err();
    assert!(e.to_string().contains("exceeds the limit"), "{e}");
    assert!(Model::from_bytes(&gz, raw.len()).is_ok());
    let e = Model::from_bytes(&raw[..raw.len() - 1], 1 << 30).unwrap_err();
    assert!(e.to_string().contains("invalid profile"), "{e}");
    let mut wide = synthetic.clone();
    let big = u64::from(u32::MAX) + 7;
    for l in &mut wide.location {
        if l.id == 1 {
            l.id = big;
        }
    }
    for smp in &mut wide.sample {
        for id in &mut smp.location_id {
            if *id == 1 {
                *id = big;
            }
        }
    }
    let m = Model::from_bytes(&emberlens_pprof::encode_gzip(&wide), 1 << 30).unwrap();
    assert_eq!(tree(&m), want);
}

#[test]
fn models_from_bytes_equal_models_from_decoded_profiles() {
    let Some(dir) = fixtures() else { return };
    let mut profiles: Vec<(String, Vec<u8>)> = common::PROFILES
        .iter()
        .map(|f| (f.to_string(), std::fs::read(dir.join(f)).unwrap()))
        .collect();
    let synthetic = common::synthetic_profile();
    profiles.push((
        "synthetic (raw)".into(),
        emberlens_pprof::encode(&synthetic),
    ));
    profiles.push((
        "synthetic (gzip)".into(),
        emberlens_pprof::encode_gzip(&synthetic),
    ));
    for (name, bytes) in &profiles {
        let a = Model::from_pprof(&emberlens_pprof::decode(bytes).unwrap()).unwrap();
        let b = Model::from_bytes(bytes, 1 << 30).unwrap();
        assert_eq!(a.sample_count(), b.sample_count(), "{name}");
        for i in 0..a.sample_count() {
            assert_eq!(a.sample_stack(i), b.sample_stack(i), "{name} sample {i}");
            assert_eq!(a.sample_values(i), b.sample_values(i), "{name} sample {i}");
            assert_eq!(a.sample_labels(i), b.sample_labels(i), "{name} sample {i}");
        }
        let o = Options::default();
        let top = emberlens_flame::top::TopOptions::default();
        assert_eq!(
            a.top(&o, &top).unwrap().to_text(),
            b.top(&o, &top).unwrap().to_text(),
            "{name}"
        );
        assert_eq!(
            a.flame_tree(&o).unwrap(),
            b.flame_tree(&o).unwrap(),
            "{name}"
        );
    }
    // Truncated and corrupted bytes: errors, never panics.
    let (_, cpu) = &profiles[0];
    // The raw protobuf (decode then encode gives the same messages).
    let raw = emberlens_pprof::encode(&emberlens_pprof::decode(cpu).unwrap());
    for cut in [1, 2, 10, raw.len() / 3, raw.len() - 1] {
        let _ = Model::from_bytes(&raw[..cut], 1 << 30);
    }
    let mut flipped = raw.clone();
    for i in (0..flipped.len()).step_by(97) {
        flipped[i] ^= 0x5a;
    }
    let _ = Model::from_bytes(&flipped, 1 << 30);
    assert!(Model::from_bytes(cpu, 1000).is_err(), "over the cap");
    assert!(Model::from_bytes(&[], 1000).is_err());
}

/// `Model::flame_tree` (sorted without copying stacks) against a tree made
/// by `TreeBuilder` from the same view's stacks, on every fixture and the
/// synthetic profile, with refinements.
#[test]
fn flame_trees_equal_tree_builder_trees() {
    let Some(dir) = fixtures() else { return };
    let mut models: Vec<(String, Model)> = common::PROFILES
        .iter()
        .map(|f| (f.to_string(), model(&dir.join(f))))
        .collect();
    models.push((
        "synthetic".into(),
        Model::from_pprof(&common::synthetic_profile()).unwrap(),
    ));
    let option_sets: Vec<Vec<String>> = vec![
        vec![],
        vec!["-lines".into()],
        vec!["-hide=runtime".into(), "-addresses".into()],
        vec![
            "-focus=main|promql".into(),
            "-show_from=handler|eval".into(),
        ],
        vec!["-tagfocus=handler=/api".into()],
    ];
    for (name, m) in &models {
        for args in &option_sets {
            let (o, _) = common::options(args);
            let mut frames = emberlens_flame::Frames::default();
            let view = emberlens_flame::View::new(m, &o, &mut frames).unwrap();
            let mut b = emberlens_flame::TreeBuilder::new();
            view.for_each_sample(|fs, _, v| {
                if v != 0 {
                    let ids: Vec<u32> = fs
                        .iter()
                        .map(|&f| b.frame(frames.key(f).frame_info()))
                        .collect();
                    b.add(&ids, v);
                }
            });
            let want = b.finish();
            let got = m.flame_tree(&o).unwrap();
            // Frame ids differ (interning order); compare by content.
            let show = |t: &emberlens_flame::FlameTree| -> Vec<(String, u32, u32, i64, i64, u32)> {
                t.nodes
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        (
                            emberlens_flame::collapsed::frame_label(&t.frames[n.frame as usize]),
                            n.depth,
                            n.end,
                            n.total,
                            t.self_value(i as u32),
                            n.parent,
                        )
                    })
                    .collect()
            };
            assert_eq!(show(&got), show(&want), "{name} {args:?}");
        }
    }
}
