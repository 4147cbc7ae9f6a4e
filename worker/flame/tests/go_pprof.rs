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
    /// More profiles merged with `file`.
    more: Vec<String>,
    /// `-diff_base`.
    base: Option<String>,
    args: Vec<String>,
}

fn decode(path: &Path) -> emberlens_pprof::Profile {
    emberlens_pprof::decode(&std::fs::read(path).unwrap()).unwrap()
}

fn model(path: &Path) -> Model {
    Model::from_pprof(&decode(path)).unwrap()
}

fn cases(dir: &Path) -> Vec<Case> {
    let mut out = Vec::new();
    let case = |file: &str, args: &[&str]| Case {
        file: file.to_string(),
        more: Vec::new(),
        base: None,
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
    let diffs: &[(&str, &str, &[&str])] = &[
        (heap, allocs, &["-sample_index=alloc_space"]),
        (
            heap,
            allocs,
            &["-sample_index=inuse_objects", "-focus=tsdb"],
        ),
        (allocs, heap, &[]),
        (
            "known-contention/block.pb.gz",
            "prometheus-2.42.0-block.pb.gz",
            &["-sample_index=delay"],
        ),
        (
            "prometheus-2.42.0-mutex.pb.gz",
            "known-contention/mutex.pb.gz",
            &[],
        ),
        // -normalize scales the new profile to the base's totals first.
        (heap, allocs, &["-sample_index=alloc_space", "-normalize"]),
        (
            "known-contention/block.pb.gz",
            "prometheus-2.42.0-block.pb.gz",
            &["-sample_index=delay", "-normalize"],
        ),
        (
            "prometheus-2.42.0-mutex.pb.gz",
            "known-contention/mutex.pb.gz",
            &["-normalize", "-nodecount=8"],
        ),
    ];
    for (new, base, args) in diffs {
        let mut c = case(new, args);
        c.base = Some(base.to_string());
        out.push(c);
    }
    let merges: &[(&str, &str, &[&str])] = &[
        (heap, allocs, &["-sample_index=alloc_space"]),
        (
            "known-contention/block.pb.gz",
            "prometheus-2.42.0-block.pb.gz",
            &[],
        ),
        (cpu, cpu, &["-nodecount=20"]),
    ];
    for (a, b, args) in merges {
        let mut c = case(a, args);
        c.more.push(b.to_string());
        out.push(c);
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
                    let mut args = c.args.clone();
                    if let Some(b) = &c.base {
                        args.push(format!("-diff_base={}", dir.join(b).display()));
                    }
                    let mut files = vec![path.clone()];
                    files.extend(c.more.iter().map(|m| dir.join(m)));
                    let label = format!(
                        "{} {}",
                        files
                            .iter()
                            .map(|f| f.strip_prefix(&dir).unwrap().display().to_string())
                            .collect::<Vec<_>>()
                            .join(" "),
                        args.join(" ")
                    );
                    let want = match go_top(&tmp, &args, &files) {
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
                    let profiles: Vec<_> = files.iter().map(|f| decode(f)).collect();
                    let merged = emberlens_pprof::merge(&profiles).unwrap();
                    let mut m = Model::from_pprof(&merged).unwrap();
                    let got = match &c.base {
                        None => m.top(&o, &t).unwrap().to_text(),
                        Some(b) => {
                            let base = model(&dir.join(b));
                            if c.args.iter().any(|a| a == "-normalize") {
                                m.normalize_to(&base).unwrap();
                            }
                            m.top_diff(&base, &o, &t).unwrap().to_text()
                        }
                    };
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

#[test]
fn synthetic_profile_top_tables_equal_go_tool_pprof() {
    let tmp = std::env::temp_dir().join(format!("emberlens-flame-syn-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    if !go_available(&tmp) {
        return;
    }
    let p = common::synthetic_profile();
    let file = tmp.join("synthetic.pb.gz");
    std::fs::write(&file, emberlens_pprof::encode_gzip(&p)).unwrap();
    let m = Model::from_pprof(&emberlens_pprof::decode(&std::fs::read(&file).unwrap()).unwrap())
        .unwrap();
    let cases: &[&[&str]] = &[
        &[],
        &["-sample_index=cpu"],
        &["-sample_index=0", "-nodefraction=0"],
        &["-tagfocus=handler=/api"],
        &["-tagfocus=handler=/api,/metrics"],
        &["-tagignore=handler=metrics"],
        &["-tagfocus=api"],
        &["-tagfocus=trace_id:4bf"],
        &["-tagfocus=bytes=1kb:"],
        &["-tagfocus=request=100"],
        &["-tagfocus=:1kb"],
        &["-tagignore=bytes=64"],
        &["-focus=helper"],
        &["-focus=Helper", "-lines"],
        &["-hide=inlinedHelper"],
        &["-hide=main"],
        &["-show=main"],
        &["-show=handler", "-lines"],
        &["-show_from=handler"],
        &["-show_from=recurse", "-addresses"],
        &["-lines"],
        &["-addresses"],
        &["-filefunctions"],
        &["-files"],
        &["-ignore=libc"],
        &["-focus=app$"],
        &["-focus=rec\\.go"],
        &["-hide=libc", "-sample_index=cpu"],
        &["-nodecount=3"],
        &["-nodefraction=0.2", "-sample_index=cpu"],
    ];
    let mut failures = Vec::new();
    for args in cases {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let label = format!("synthetic {}", args.join(" "));
        let want = match go_top(&tmp, &args, std::slice::from_ref(&file)) {
            Ok(w) => w,
            Err(e) => {
                failures.push(format!("{label}: go failed: {e}"));
                continue;
            }
        };
        let (o, t) = options(&args);
        let got = m.top(&o, &t).unwrap().to_text();
        if let Some(d) = diff_lines(&want, &got) {
            failures.push(format!("{label}:\n{d}"));
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    eprintln!(
        "synthetic profile, go tool pprof -top comparisons: {} of {} equal",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
