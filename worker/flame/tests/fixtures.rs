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
            self_value += node.self_value;
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
        let leaf_sum: i64 = s.callees.nodes.iter().map(|n| n.self_value).sum();
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
    assert_eq!(d.nodes[0].base_total, t_base.total());
    // The same data under two defaults: every node unchanged.
    assert!(d.nodes.iter().all(|n| n.total == n.base_total));
    assert_eq!(collapsed(&d), collapsed(&t_new));
    // A real change: the known-contention block profile against Prometheus's.
    let new = model(&dir.join("known-contention/block.pb.gz"));
    let base = model(&dir.join("prometheus-2.42.0-block.pb.gz"));
    let d = new.diff_tree(&base, &Options::default()).unwrap();
    assert_eq!(
        d.total(),
        new.flame_tree(&Options::default()).unwrap().total()
    );
    assert!(d.nodes.iter().any(|n| n.total != n.base_total));
}
