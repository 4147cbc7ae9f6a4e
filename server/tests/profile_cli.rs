//! `emberlens profile`: the binary's reports on the shared pprof fixtures —
//! `top` equals `go tool pprof -top` (when `go` is installed), `--json`
//! is sorted by flat, `collapsed` equals the folded references, several
//! files merge, `--diff-base` works, `svg` is one document, and bad input
//! fails with a message naming the file.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{TempDir, program, shared_fixtures};

fn emberlens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emberlens"))
        .arg("profile")
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = emberlens(args);
    assert!(
        out.status.success(),
        "emberlens profile {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn pprof_dir() -> Option<PathBuf> {
    shared_fixtures().map(|f| f.join("pprof"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn top_equals_go_tool_pprof() {
    let Some(dir) = pprof_dir() else { return };
    let Some(go) = program("go") else { return };
    let tmp = TempDir::new("profile-cli-go");
    let cpu = dir.join("prometheus-2.42.0-cpu-15s.pb.gz");
    let heap = dir.join("prometheus-2.42.0-heap.pb.gz");
    let allocs = dir.join("prometheus-2.42.0-allocs.pb.gz");
    let base = format!("-diff_base={}", s(&allocs));
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec![s(&cpu)], vec![s(&cpu)]),
        (
            vec![
                s(&cpu),
                "--focus",
                "promql",
                "--hide",
                "runtime",
                "--nodecount",
                "12",
            ],
            vec!["-focus=promql", "-hide=runtime", "-nodecount=12", s(&cpu)],
        ),
        (
            vec![
                s(&heap),
                "--sample-index",
                "alloc_space",
                "--tagfocus",
                "bytes=1kb:",
            ],
            vec![
                "-sample_index=alloc_space",
                "-tagfocus=bytes=1kb:",
                s(&heap),
            ],
        ),
        (
            vec![s(&heap), "--granularity", "lines", "--ignore", "tsdb"],
            vec!["-lines", "-ignore=tsdb", s(&heap)],
        ),
        (
            vec![
                s(&heap),
                "--diff-base",
                s(&allocs),
                "--sample-index",
                "inuse_objects",
            ],
            vec![base.as_str(), "-sample_index=inuse_objects", s(&heap)],
        ),
        (
            vec![
                s(&heap),
                "--diff-base",
                s(&allocs),
                "--normalize",
                "--sample-index",
                "alloc_space",
            ],
            vec![
                base.as_str(),
                "-normalize",
                "-sample_index=alloc_space",
                s(&heap),
            ],
        ),
        (vec![s(&heap), s(&allocs)], vec![s(&heap), s(&allocs)]),
    ];
    for (ours, theirs) in cases {
        let mut args = vec!["top"];
        args.extend(&ours);
        let got = ok(&args);
        let out = Command::new(&go)
            .args(["tool", "pprof", "-top"])
            .args(&theirs)
            .env("HOME", &tmp.0)
            .env("GOCACHE", tmp.0.join("gocache"))
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(out.status.success(), "go tool pprof {theirs:?} failed");
        assert_eq!(got, String::from_utf8(out.stdout).unwrap(), "{ours:?}");
    }
}

#[test]
fn json_collapsed_svg_and_merges() {
    let Some(dir) = pprof_dir() else { return };
    let cpu = dir.join("prometheus-2.42.0-cpu-15s.pb.gz");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["top", s(&cpu), "--json", "--sample-index", "cpu"])).unwrap();
    let rows = json.as_array().unwrap();
    assert!(rows.len() > 20);
    let flats: Vec<i64> = rows.iter().map(|r| r["flat"].as_i64().unwrap()).collect();
    assert!(flats.windows(2).all(|w| w[0] >= w[1]), "sorted by flat");
    // Raw nanoseconds: rangeEval's 0.55s flat.
    let range_eval = rows
        .iter()
        .find(|r| r["function"] == "github.com/prometheus/prometheus/promql.(*evaluator).rangeEval")
        .unwrap();
    assert_eq!(range_eval["flat"], 550_000_000);
    assert!(range_eval["cum"].as_i64().unwrap() > 3_000_000_000);

    let want =
        std::fs::read_to_string(dir.join("reference/prometheus-2.42.0-cpu-15s.samples.folded"))
            .unwrap();
    assert_eq!(
        ok(&["collapsed", s(&cpu), "--sample-index", "samples"]),
        want
    );

    // Merging a profile with itself doubles every stack.
    let doubled = ok(&["collapsed", s(&cpu), s(&cpu), "--sample-index", "samples"]);
    let first = doubled.lines().next().unwrap();
    let (stack, v) = first.rsplit_once(' ').unwrap();
    let orig: i64 = want
        .lines()
        .find_map(|l| l.rsplit_once(' ').filter(|(s, _)| *s == stack))
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert_eq!(v.parse::<i64>().unwrap(), 2 * orig);

    // A diff against itself: every stack unchanged.
    let diff = ok(&["collapsed", s(&cpu), "--diff-base", s(&cpu)]);
    assert!(diff.lines().count() > 100);
    for l in diff.lines() {
        let mut parts = l.rsplitn(3, ' ');
        let (new, old) = (parts.next().unwrap(), parts.next().unwrap());
        assert_eq!(new, old, "{l}");
    }

    let svg = ok(&["svg", s(&cpu), "--focus", "promql"]);
    assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.matches("<rect").count() > 50);
    assert!(svg.contains("rangeEval"));
}

#[test]
fn bad_input_names_the_file() {
    let tmp = TempDir::new("profile-cli-bad");
    let missing = tmp.0.join("missing.pb.gz");
    let out = emberlens(&["top", s(&missing)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.pb.gz"));

    let garbage = tmp.0.join("garbage.pb.gz");
    std::fs::write(&garbage, [0x1f, 0x8b, 1, 2, 3, 4]).unwrap();
    let out = emberlens(&["collapsed", s(&garbage)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("garbage.pb.gz") && err.contains("gzip"),
        "{err}"
    );

    let Some(dir) = pprof_dir() else { return };
    let cpu = dir.join("prometheus-2.42.0-cpu-15s.pb.gz");
    let out = emberlens(&["top", s(&cpu), "--sample-index", "alloc_space"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("alloc_space"));
    let heap = dir.join("prometheus-2.42.0-heap.pb.gz");
    let out = emberlens(&["top", s(&cpu), s(&heap)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("prometheus-2.42.0-heap.pb.gz"), "{err}");
    let out = emberlens(&["top", s(&cpu), "--focus", "("]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--focus"));
}

#[test]
fn folded_stacks_and_chrome_cpuprofiles_open_too() {
    let tmp = common::TempDir::new("profile-formats");
    let folded = tmp.0.join("stacks.folded");
    std::fs::write(&folded, "main;work;hot 30\nmain;work;cold 10\nmain 2\n").unwrap();
    let json = ok(&["top", "--json", s(&folded)]);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([
            {"function": "hot", "flat": 30, "cum": 30},
            {"function": "cold", "flat": 10, "cum": 10},
            {"function": "main", "flat": 2, "cum": 42},
            {"function": "work", "flat": 0, "cum": 40},
        ])
    );
    // A folded file round-trips through `collapsed` (lines sorted).
    assert_eq!(
        ok(&["collapsed", s(&folded)]),
        "main 2\nmain;work;cold 10\nmain;work;hot 30\n"
    );
    // Node's `--cpu-prof` output: spin() is the hot function by design.
    let cpuprofile = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../worker/pprof/tests/fixtures/node-known-tree.cpuprofile");
    let rows: serde_json::Value =
        serde_json::from_str(&ok(&["top", "--json", s(&cpuprofile)])).unwrap();
    assert_eq!(rows[0]["function"], "spin", "{rows}");
    // Merged with a folded file of another unit: refused, naming the file.
    let out = emberlens(&["top", s(&cpuprofile), s(&folded)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stacks.folded"), "{err}");
}
