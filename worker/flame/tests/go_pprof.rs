//! Our `-top` table against `go tool pprof -top` (Debian's golang-go),
//! line by line, header included: for every real profile of
//! `../shared/fixtures/pprof/` and every sample type, then for a set of
//! refinements (focus, ignore, hide, show, show_from, tagfocus/tagignore
//! on the heap profiles' numeric `bytes` label, granularities, nodecount).
//!
//! `go tool pprof` runs with `TZ=UTC` (we print the `Time:` header in UTC)
//! and a private HOME/GOCACHE. Without `../shared` or `go` the test prints
//! a SKIPPED line and passes; with `CI=true` it fails instead.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Mutex;

use common::{PROFILES, diff_lines, fixtures, go_available, go_top, options};
use emberlens_flame::Model;

/// One comparison: a fixture and pprof's flags.
struct Case {
    file: String,
    args: Vec<String>,
}

fn model(path: &Path) -> Model {
    let bytes = std::fs::read(path).unwrap();
    Model::from_pprof(&emberlens_pprof::decode(&bytes).unwrap()).unwrap()
}

fn cases(dir: &Path) -> Vec<Case> {
    let mut out = Vec::new();
    let case = |file: &str, args: &[&str]| Case {
        file: file.to_string(),
        args: args.iter().map(|s| s.to_string()).collect(),
    };
    for file in PROFILES {
        let m = model(&dir.join(file));
        for t in m.sample_types() {
            out.push(case(file, &[&format!("-sample_index={}", t.name)]));
        }
        out.push(case(file, &[]));
    }
    let cpu = "prometheus-2.42.0-cpu-15s.pb.gz";
    let heap = "prometheus-2.42.0-heap.pb.gz";
    let allocs = "prometheus-2.42.0-allocs.pb.gz";
    let refinements: &[(&str, &[&str])] = &[
        (cpu, &["-focus=promql"]),
        (cpu, &["-focus=rangeEval"]),
        (cpu, &["-ignore=runtime"]),
        (cpu, &["-focus=promql", "-ignore=aggregation"]),
        (cpu, &["-hide=runtime"]),
        (cpu, &["-show=promql"]),
        (cpu, &["-show_from=evaluator"]),
        (cpu, &["-focus=tsdb/chunkenc"]),
        (cpu, &["-focus=\\.go$"]),
        (cpu, &["-lines"]),
        (cpu, &["-filefunctions"]),
        (cpu, &["-files"]),
        (cpu, &["-addresses"]),
        (cpu, &["-nodecount=10"]),
        (cpu, &["-nodecount=40", "-lines"]),
        (cpu, &["-sample_index=samples", "-nodecount=5"]),
        (cpu, &["-nodefraction=0"]),
        (cpu, &["-nodefraction=0.05"]),
        (cpu, &["-hide=runtime", "-focus=promql", "-nodecount=20"]),
        (heap, &["-tagfocus=bytes=8kB"]),
        (heap, &["-tagfocus=1kb:64kb", "-sample_index=inuse_objects"]),
        (heap, &["-tagignore=bytes=:1kb"]),
        (heap, &["-sample_index=alloc_space", "-focus=tsdb"]),
        (heap, &["-lines", "-sample_index=inuse_space"]),
        (allocs, &["-tagfocus=bytes=112B"]),
        (
            allocs,
            &["-sample_index=alloc_objects", "-hide=runtime", "-lines"],
        ),
        ("prometheus-2.42.0-goroutine.pb.gz", &["-focus=scrape"]),
        ("prometheus-2.42.0-goroutine.pb.gz", &["-lines"]),
        ("known-tree/cpu.pb.gz", &["-focus=funcB"]),
        ("known-tree/cpu.pb.gz", &["-ignore=funcB", "-lines"]),
        (
            "known-contention/block.pb.gz",
            &["-sample_index=delay", "-hide=sync"],
        ),
        (
            "known-contention/mutex.pb.gz",
            &["-sample_index=contentions"],
        ),
    ];
    for (file, args) in refinements {
        out.push(case(file, args));
    }
    out
}

#[test]
fn top_tables_equal_go_tool_pprof() {
    let Some(dir) = fixtures() else { return };
    let tmp = std::env::temp_dir().join(format!("emberlens-flame-go-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    if !go_available(&tmp) {
        return;
    }
    let cases = cases(&dir);
    let failures = Mutex::new(Vec::new());
    let next = Mutex::new(0usize);
    // go tool pprof takes ~0.1 s per run: a few threads overlap the runs.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap();
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(c) = cases.get(i) else { break };
                    let path = dir.join(&c.file);
                    let label = format!("{} {}", c.file, c.args.join(" "));
                    let want = match go_top(&tmp, &c.args, &path) {
                        Ok(w) => w,
                        Err(e) => {
                            failures
                                .lock()
                                .unwrap()
                                .push(format!("{label}: go failed: {e}"));
                            continue;
                        }
                    };
                    let (o, t) = options(&c.args);
                    let got = model(&path).top(&o, &t).unwrap().to_text();
                    if let Some(d) = diff_lines(&want, &got) {
                        failures.lock().unwrap().push(format!("{label}:\n{d}"));
                    }
                }
            });
        }
    });
    let _ = std::fs::remove_dir_all(&tmp);
    let failures = failures.into_inner().unwrap();
    eprintln!(
        "go tool pprof -top comparisons: {} of {} equal",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
