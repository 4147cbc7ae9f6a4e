//! The real Go profiles in `../shared/fixtures/pprof/` (Prometheus 2.42's
//! CPU, heap, allocs, goroutine, block, mutex and threadcreate profiles,
//! and the known-tree/known-contention programs): each decodes, survives a
//! re-encode unchanged, merges with itself to twice its values, and refuses
//! to merge with a profile of another kind.
//!
//! Without `../shared` (set `EMBERLENS_SHARED` to point elsewhere) the
//! tests print a SKIPPED line and pass; with `CI=true` they fail instead.
// Native test code: reading the fixture files is the point.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use emberlens_pprof::{MergeError, Profile, decode, encode, encode_gzip, merge};

fn fixtures() -> Option<PathBuf> {
    common::pprof_fixtures("the pprof fixture tests")
}

/// Every `.pb.gz` under the fixtures folder, with its name.
fn all() -> Vec<(String, Vec<u8>)> {
    let Some(dir) = fixtures() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for sub in ["", "known-tree", "known-contention"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.to_string_lossy().ends_with(".pb.gz") {
                let name = p.strip_prefix(&dir).unwrap().display().to_string();
                out.push((name, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    assert!(
        out.len() >= 10,
        "expected the fixture profiles, found {}",
        out.len()
    );
    out
}

fn load(name: &str) -> Option<Profile> {
    let dir = fixtures()?;
    Some(decode(&std::fs::read(dir.join(name)).unwrap()).unwrap())
}

#[test]
fn every_fixture_decodes_and_round_trips() {
    for (name, bytes) in all() {
        let p = decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!p.sample_type.is_empty(), "{name}: no sample types");
        assert!(!p.string_table.is_empty(), "{name}");
        assert_eq!(
            decode(&encode_gzip(&p)).unwrap(),
            p,
            "{name}: gzipped round trip"
        );
        assert_eq!(decode(&encode(&p)).unwrap(), p, "{name}: raw round trip");
    }
}

#[test]
fn cpu_fixture_has_the_expected_header() {
    let Some(p) = load("prometheus-2.42.0-cpu-15s.pb.gz") else {
        return;
    };
    assert_eq!(p.sample_type_names(), ["samples/count", "cpu/nanoseconds"]);
    let pt = p.period_type.unwrap();
    assert_eq!(p.value_type_name(&pt), "cpu/nanoseconds");
    assert_eq!(p.period, 10_000_000, "Go samples CPU at 100 Hz");
    assert!(p.duration_nanos > 14_000_000_000, "a 15 s profile");
    assert!(p.time_nanos > 1_600_000_000_000_000_000);
    assert!(!p.sample.is_empty() && !p.location.is_empty() && !p.function.is_empty());
    assert!(!p.mapping.is_empty());
    // CPU samples: count × period = nanoseconds.
    for s in &p.sample {
        assert_eq!(s.value[0] * p.period, s.value[1]);
    }
}

#[test]
fn merging_a_profile_with_itself_doubles_every_value() {
    for (name, bytes) in all() {
        let p = decode(&bytes).unwrap();
        let once = merge([&p]).unwrap();
        let twice = merge([&p, &p]).unwrap();
        assert_eq!(once.sample.len(), twice.sample.len(), "{name}");
        assert_eq!(once.location.len(), twice.location.len(), "{name}");
        assert_eq!(once.function.len(), twice.function.len(), "{name}");
        for (a, b) in once.sample.iter().zip(&twice.sample) {
            assert_eq!(a.location_id, b.location_id, "{name}");
            let doubled: Vec<i64> = a.value.iter().map(|v| v * 2).collect();
            assert_eq!(b.value, doubled, "{name}");
        }
        // Against the input: totals double, zero samples are gone.
        let doubled: Vec<i64> = p.totals().iter().map(|v| v * 2).collect();
        assert_eq!(twice.totals(), doubled, "{name}");
        assert_eq!(twice.duration_nanos, 2 * p.duration_nanos, "{name}");
        assert_eq!(twice.time_nanos, p.time_nanos, "{name}");
        assert_eq!(twice.period, p.period, "{name}");
        assert_eq!(twice.comments(), p.comments(), "{name}");
        // The merge is itself a valid profile that survives encoding.
        assert_eq!(decode(&encode_gzip(&twice)).unwrap(), twice, "{name}");
    }
}

#[test]
fn merged_stacks_keep_their_function_names() {
    let Some(p) = load("prometheus-2.42.0-heap.pb.gz") else {
        return;
    };
    let stacks = |p: &Profile| {
        let mut out: Vec<(Vec<String>, Vec<i64>)> = p
            .sample
            .iter()
            .filter(|s| s.value.iter().any(|&v| v != 0))
            .map(|s| {
                let frames = s
                    .location_id
                    .iter()
                    .flat_map(|id| {
                        let loc = p.location.iter().find(|l| l.id == *id).unwrap();
                        loc.line.iter().map(|ln| {
                            let f = p.function.iter().find(|f| f.id == ln.function_id).unwrap();
                            format!("{}:{}", p.string(f.name), ln.line)
                        })
                    })
                    .collect();
                (frames, s.value.clone())
            })
            .collect();
        out.sort();
        out
    };
    let merged = merge([&p]).unwrap();
    let (a, b) = (stacks(&p), stacks(&merged));
    // Same stacks; values equal once samples with identical stacks and labels are summed.
    let sum = |v: Vec<(Vec<String>, Vec<i64>)>| {
        let mut m: std::collections::BTreeMap<Vec<String>, Vec<i64>> = Default::default();
        for (k, vals) in v {
            let e = m.entry(k).or_insert_with(|| vec![0; vals.len()]);
            for (x, y) in e.iter_mut().zip(vals) {
                *x += y;
            }
        }
        m
    };
    assert_eq!(sum(a), sum(b));
}

#[test]
fn cpu_and_heap_do_not_merge() {
    let (Some(cpu), Some(heap)) = (
        load("prometheus-2.42.0-cpu-15s.pb.gz"),
        load("prometheus-2.42.0-heap.pb.gz"),
    ) else {
        return;
    };
    let err = merge([&cpu, &heap]).unwrap_err();
    assert!(matches!(
        err,
        MergeError::Incompatible {
            index: 1,
            what: "sample types",
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "profile 1: incompatible sample types [alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes] and [samples/count cpu/nanoseconds]"
    );
    assert_eq!(
        merge(Vec::<&Profile>::new()).unwrap_err(),
        MergeError::Empty
    );
}

#[test]
fn truncated_fixtures_fail_cleanly() {
    for (name, bytes) in all() {
        let raw = encode(&decode(&bytes).unwrap());
        for cut in [1, raw.len() / 3, raw.len() / 2, raw.len() - 1] {
            assert!(decode(&raw[..cut]).is_err(), "{name} cut at {cut}");
        }
        for cut in [10, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "{name} gzip cut at {cut}");
        }
    }
}

/// `go tool pprof -raw` reads our merged output and sees the same totals
/// (the reference implementation as the judge of validity).
#[test]
fn go_tool_pprof_reads_a_merged_profile() {
    let Some(p) = load("prometheus-2.42.0-cpu-15s.pb.gz") else {
        return;
    };
    let Some(go) = which("go") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: go is missing"
        );
        eprintln!("SKIPPED: `go` not on PATH (Debian golang-go)");
        return;
    };
    let merged = merge([&p, &p]).unwrap();
    let path = std::env::temp_dir().join(format!(
        "emberlens-pprof-merged-{}.pb.gz",
        std::process::id()
    ));
    std::fs::write(&path, encode_gzip(&merged)).unwrap();
    let out = std::process::Command::new(go)
        .args(["tool", "pprof", "-raw"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut totals = vec![0i64; 2];
    let mut in_samples = false;
    for line in text.lines() {
        if line.starts_with("Samples:") {
            in_samples = true;
            continue;
        }
        if line.starts_with("Locations") {
            break;
        }
        let Some((values, _)) = line.split_once(':') else {
            continue;
        };
        let nums: Vec<i64> = values
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if in_samples && nums.len() == 2 && values.split_whitespace().count() == 2 {
            totals[0] += nums[0];
            totals[1] += nums[1];
        }
    }
    assert_eq!(totals, merged.totals(), "go tool pprof -raw totals");
    let doubled: Vec<i64> = p.totals().iter().map(|v| v * 2).collect();
    assert_eq!(totals, doubled);
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
