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
