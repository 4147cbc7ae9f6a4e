//! Shared by the fixture tests: where `../shared` is, running
//! `go tool pprof`, and turning pprof's flags into our options.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use emberlens_flame::top::TopOptions;
use emberlens_flame::{Granularity, Options, SampleIndex, TagFilter};
use regex::Regex;

/// Fails under `CI=true`, else prints a visible SKIPPED line.
pub fn skip(msg: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true: {msg}"
    );
    eprintln!("SKIPPED: {msg}");
}

/// `../shared/fixtures/pprof` (or `$EMBERLENS_SHARED/fixtures/pprof`).
pub fn fixtures() -> Option<PathBuf> {
    let shared = std::env::var_os("EMBERLENS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let dir = shared.join("fixtures/pprof");
    if dir.is_dir() {
        return Some(dir);
    }
    skip(&format!(
        "{} not found (set EMBERLENS_SHARED): the pprof fixture tests do not run",
        dir.display()
    ));
    None
}

/// The real profiles of the fixtures folder, relative paths.
pub const PROFILES: &[&str] = &[
    "prometheus-2.42.0-cpu-15s.pb.gz",
    "prometheus-2.42.0-heap.pb.gz",
    "prometheus-2.42.0-allocs.pb.gz",
    "prometheus-2.42.0-goroutine.pb.gz",
    "prometheus-2.42.0-block.pb.gz",
    "prometheus-2.42.0-mutex.pb.gz",
    "prometheus-2.42.0-threadcreate.pb.gz",
    "known-tree/cpu.pb.gz",
    "known-contention/block.pb.gz",
    "known-contention/mutex.pb.gz",
];

/// Whether `go tool pprof` runs here (with a private HOME and GOCACHE).
pub fn go_available(tmp: &Path) -> bool {
    let ok = go(tmp, &["tool", "pprof", "-h"]).is_some();
    if !ok {
        skip("`go` (Debian golang-go) not found: the go tool pprof comparisons do not run");
    }
    ok
}

fn go(tmp: &Path, args: &[&str]) -> Option<std::process::Output> {
    Command::new("go")
        .args(args)
        .env("HOME", tmp)
        .env("GOCACHE", tmp.join("gocache"))
        .env("GOFLAGS", "")
        .env("TZ", "UTC")
        .env("PPROF_BINARY_PATH", tmp.join("no-binaries"))
        .output()
        .ok()
}

/// `go tool pprof -top ARGS FILE...`'s standard output.
pub fn go_top(tmp: &Path, args: &[String], files: &[PathBuf]) -> Result<String, String> {
    let mut all: Vec<String> = vec!["tool".into(), "pprof".into(), "-top".into()];
    all.extend(args.iter().cloned());
    all.extend(files.iter().map(|f| f.to_string_lossy().into_owned()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let out = go(tmp, &all).ok_or("go did not run")?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Our options for pprof's flags (`-name=value`, the subset we compare).
pub fn options(args: &[String]) -> (Options, TopOptions) {
    let mut o = Options::default();
    let mut t = TopOptions::default();
    for a in args {
        let a = a.trim_start_matches('-');
        let (k, v) = a.split_once('=').unwrap_or((a, ""));
        let re = || Some(Regex::new(v).unwrap());
        match k {
            "sample_index" => o.sample_index = Some(SampleIndex::Name(v.to_string())),
            "focus" => o.focus = re(),
            "ignore" => o.ignore = re(),
            "hide" => o.hide = re(),
            "show" => o.show = re(),
            "show_from" => o.show_from = re(),
            "tagfocus" => o.tagfocus.push(TagFilter::parse(v).unwrap()),
            "tagignore" => o.tagignore.push(TagFilter::parse(v).unwrap()),
            "nodecount" => t.node_count = v.parse().unwrap(),
            "nodefraction" => t.node_fraction = v.parse().unwrap(),
            "lines" => o.granularity = Granularity::Lines,
            "functions" => o.granularity = Granularity::Functions,
            "filefunctions" => o.granularity = Granularity::Filefunctions,
            "files" => o.granularity = Granularity::Files,
            "addresses" => o.granularity = Granularity::Addresses,
            // Applied to the model by the caller (`Model::normalize_to`).
            "normalize" => {}
            other => panic!("flag {other} not handled by the test"),
        }
    }
    (o, t)
}

/// A line-by-line comparison; `None` when equal, else a readable diff.
pub fn diff_lines(want: &str, got: &str) -> Option<String> {
    if want == got {
        return None;
    }
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let mut out = String::new();
    for i in 0..w.len().max(g.len()) {
        let (a, b) = (w.get(i).copied(), g.get(i).copied());
        if a != b {
            out.push_str(&format!(
                "  line {}:\n    go:   {:?}\n    ours: {:?}\n",
                i + 1,
                a.unwrap_or("<none>"),
                b.unwrap_or("<none>")
            ));
            if out.len() > 3000 {
                break;
            }
        }
    }
    if out.is_empty() {
        out.push_str("  (differ in trailing newlines)\n");
    }
    Some(out)
}

/// A profile built by hand for the refinements the real fixtures lack:
/// string labels (`handler`, `trace_id`), numeric labels with and without
/// units, inlined lines, locations without lines (with and without a
/// mapping), recursion, a shared library mapping, `drop_frames`, a
/// `/proc/self/cwd/` file path, comments, and two sample types with a
/// default that is not the last.
pub fn synthetic_profile() -> emberlens_pprof::Profile {
    use emberlens_pprof::{Function, Label, Line, Location, Mapping, Profile, Sample, ValueType};
    let mut strings: Vec<String> = vec![String::new()];
    let mut s = |x: &str| -> i64 {
        if let Some(i) = strings.iter().position(|y| y == x) {
            return i as i64;
        }
        strings.push(x.to_string());
        strings.len() as i64 - 1
    };
    let funcs = [
        ("main.main", "/src/app/main.go"),
        ("main.handler", "/src/app/server.go"),
        ("main.inlinedHelper", "/src/app/helper.go"),
        ("runtime.mallocgc", "/usr/lib/go/src/runtime/malloc.go"),
        ("runtime.mcall", "/usr/lib/go/src/runtime/asm.s"),
        ("main.recurse", "/proc/self/cwd/./src/app/rec.go"),
        (
            "encoding/json.Marshal",
            "/usr/lib/go/src/encoding/json/encode.go",
        ),
        ("main.dropped.leaf", "/src/app/drop.go"),
    ];
    let function: Vec<Function> = funcs
        .iter()
        .enumerate()
        .map(|(i, (n, f))| Function {
            id: i as u64 + 1,
            name: s(n),
            system_name: s(n),
            filename: s(f),
            start_line: 10 * i as i64 + 1,
        })
        .collect();
    let mapping = vec![
        Mapping {
            id: 1,
            memory_start: 0x400000,
            memory_limit: 0x800000,
            filename: s("/usr/bin/app"),
            build_id: s("abc123"),
            has_functions: true,
            ..Mapping::default()
        },
        Mapping {
            id: 2,
            memory_start: 0x7f0000000000,
            memory_limit: 0x7f0000100000,
            filename: s("/lib/x86_64-linux-gnu/libc.so.6"),
            ..Mapping::default()
        },
    ];
    let line = |f: u64, l: i64| Line {
        function_id: f,
        line: l,
        column: 0,
    };
    let loc = |id: u64, m: u64, addr: u64, lines: Vec<Line>| Location {
        id,
        mapping_id: m,
        address: addr,
        line: lines,
        is_folded: false,
    };
    let location = vec![
        loc(1, 1, 0x401000, vec![line(1, 12)]),
        // handler with helper inlined into it.
        loc(2, 1, 0x402000, vec![line(3, 33), line(2, 25)]),
        loc(3, 1, 0x402100, vec![line(2, 27)]),
        loc(4, 1, 0x403000, vec![line(4, 41)]),
        loc(5, 1, 0x404000, vec![line(6, 55)]),
        loc(6, 1, 0x404010, vec![line(6, 57)]),
        loc(7, 2, 0x7f0000001234, vec![]),
        loc(8, 0, 0x99, vec![]),
        loc(9, 1, 0x405000, vec![line(7, 70)]),
        loc(10, 1, 0x406000, vec![line(5, 80)]),
        loc(11, 1, 0x407000, vec![line(8, 90)]),
        // Same function as 2, other line: one node by function, two by line.
        loc(12, 1, 0x402200, vec![line(3, 34), line(2, 26)]),
    ];
    let lab = |k: i64, v: i64| Label {
        key: k,
        str: v,
        num: 0,
        num_unit: 0,
    };
    let num = |k: i64, v: i64, u: i64| Label {
        key: k,
        str: 0,
        num: v,
        num_unit: u,
    };
    let (handler, trace, bytes, request) = (s("handler"), s("trace_id"), s("bytes"), s("request"));
    let (api, metrics, t1, t2, unit_bytes) = (
        s("/api/v1/query"),
        s("/metrics"),
        s("4bf92f3577b34da6"),
        s("00f067aa0ba902b7"),
        s("bytes"),
    );
    let sample = |locs: &[u64], v: [i64; 2], label: Vec<Label>| Sample {
        location_id: locs.to_vec(),
        value: v.to_vec(),
        label,
    };
    let sample = vec![
        sample(
            &[2, 1],
            [30, 300_000_000],
            vec![lab(handler, api), lab(trace, t1)],
        ),
        sample(
            &[4, 2, 1],
            [12, 120_000_000],
            vec![lab(handler, api), num(bytes, 2048, unit_bytes)],
        ),
        sample(
            &[4, 3, 1],
            [5, 50_000_000],
            vec![lab(handler, metrics), num(bytes, 64, unit_bytes)],
        ),
        sample(
            &[6, 5, 5, 6, 3, 1],
            [7, 70_000_000],
            vec![lab(handler, metrics), lab(trace, t2)],
        ),
        sample(&[7, 9, 1], [9, 90_000_000], vec![num(request, 100, 0)]),
        sample(&[8], [2, 20_000_000], vec![]),
        sample(&[11, 10, 3, 1], [4, 40_000_000], vec![lab(handler, api)]),
        sample(&[10, 1], [3, 30_000_000], vec![]),
        sample(
            &[12, 1],
            [6, 60_000_000],
            vec![lab(handler, api), lab(handler, metrics)],
        ),
        sample(&[1], [1, 10_000_000], vec![num(request, 4096, 0)]),
        sample(&[5, 1], [-2, -20_000_000], vec![]),
    ];
    let (samples_t, count_t, cpu_t, ns_t) = (s("samples"), s("count"), s("cpu"), s("nanoseconds"));
    let (drop, c1, c2) = (
        s("main\\.dropped.*"),
        s("generated by a test"),
        s("#hidden comment"),
    );
    Profile {
        sample_type: vec![
            ValueType {
                r#type: samples_t,
                unit: count_t,
            },
            ValueType {
                r#type: cpu_t,
                unit: ns_t,
            },
        ],
        sample,
        mapping,
        location,
        function,
        drop_frames: drop,
        time_nanos: 1_795_301_225_123_456_789,
        duration_nanos: 2_500_000_000,
        period_type: Some(ValueType {
            r#type: cpu_t,
            unit: ns_t,
        }),
        period: 10_000_000,
        comment: vec![c1, c2],
        default_sample_type: samples_t,
        string_table: strings,
        ..Profile::default()
    }
}
