//! The importers (`emberlens_pprof::import`): folded stacks, Chrome
//! `.cpuprofile` (a real one from `node --cpu-prof`, in `tests/fixtures/`),
//! trace-event wrappers, `decode_any`'s sniffing, and hostile inputs.
//!
//! The reference `.folded` files in `../shared/fixtures/pprof/reference/`
//! (made by `go tool pprof -raw` + `fold_raw.py`) are imported and written
//! back; without `../shared` (set `EMBERLENS_SHARED` to point elsewhere)
//! those tests print a SKIPPED line and pass; with `CI=true` they fail.
// Native test code: reading the fixture files is the point.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use emberlens_pprof::import::{cpuprofile, folded, sniff};
use emberlens_pprof::{
    Format, ImportError, ImportLimits, Profile, decode, decode_any, decode_any_with_limits, encode,
    encode_gzip, gzip, validate,
};

// ---------------------------------------------------------------- helpers

/// Folded stacks of sample type `index`, as a map stack → value.
fn stacks(p: &Profile, index: usize) -> BTreeMap<String, i64> {
    folded::write(p, index)
        .lines()
        .map(|l| {
            let (s, v) = l.rsplit_once(' ').unwrap();
            (s.to_string(), v.parse().unwrap())
        })
        .collect()
}

fn map(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(s, v)| (s.to_string(), *v)).collect()
}

/// Cumulative value of sample type `index` over samples whose stack holds
/// a function named `name` (counted once per sample).
fn cum(p: &Profile, index: usize, name: &str) -> i64 {
    let names: std::collections::HashMap<u64, &str> = p
        .function
        .iter()
        .map(|f| (f.id, p.string(f.name)))
        .collect();
    let locs: std::collections::HashMap<u64, _> = p.location.iter().map(|l| (l.id, l)).collect();
    p.sample
        .iter()
        .filter(|s| {
            s.location_id
                .iter()
                .flat_map(|id| &locs[id].line)
                .any(|l| names[&l.function_id] == name)
        })
        .map(|s| s.value[index])
        .sum()
}

fn folded_err(input: &[u8]) -> (usize, usize, String) {
    match folded::parse(input).unwrap_err() {
        ImportError::Folded {
            line,
            offset,
            reason,
        } => (line, offset, reason),
        e => panic!("not a folded error: {e}"),
    }
}

fn cpu_err(json: &str) -> String {
    cpuprofile::parse(json.as_bytes()).unwrap_err().to_string()
}

fn shared() -> Option<PathBuf> {
    common::pprof_fixtures("the reference folded tests")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

// ----------------------------------------------------------------- folded

#[test]
fn folded_builds_shared_frames_and_leaf_first_stacks() {
    let p = folded::parse(b"main;run;parse 3\nmain;run;render 2\nmain;run;parse 4\n").unwrap();
    validate(&p).unwrap();
    assert_eq!(p.sample_type_names(), ["samples/count"]);
    assert_eq!(p.string_table[0], "");
    assert_eq!(p.function.len(), 4, "main, run, parse, render once each");
    assert_eq!(p.location.len(), 4);
    assert_eq!(p.sample.len(), 2, "the two parse lines are one stack");
    assert_eq!(p.totals(), [9]);
    // Leaf first: the first location of a sample is its leaf.
    let leaf = p.sample[0].location_id[0];
    let f = &p.function[usize::try_from(leaf).unwrap() - 1];
    assert_eq!(p.string(f.name), "parse");
    assert_eq!(p.sample[0].value, [7]);
    assert_eq!(
        stacks(&p, 0),
        map(&[("main;run;parse", 7), ("main;run;render", 2)])
    );
}

#[test]
fn folded_reads_what_stackcollapse_writes() {
    // CRLF, a BOM, spaces inside frame names (the value follows the LAST
    // space), a tab separator, comments, blank lines, a decimal value
    // (truncated as inferno does), a zero value, an empty frame.
    let input = "\u{feff}# written by stackcollapse-perf\r\n\
                 java;Foo::bar(int, char) const;std::vec::Vec<T, A> as Drop 5\r\n\
                 \r\n\
                 java;[unknown]\t2\n   \n\
                 java;[unknown] 1.75\n\
                 java;idle 0\n\
                 java;;gap 1\n";
    let p = folded::parse(input.as_bytes()).unwrap();
    assert_eq!(
        stacks(&p, 0),
        map(&[
            ("java;;gap", 1),
            (
                "java;Foo::bar(int, char) const;std::vec::Vec<T, A> as Drop",
                5
            ),
            ("java;[unknown]", 3),
        ])
    );
    assert_eq!(p.totals(), [9]);
    assert_eq!(sniff(input.as_bytes()), Format::Folded);
}

#[test]
fn folded_errors_name_line_offset_and_reason() {
    let (line, offset, reason) = folded_err(b"a;b 1\nc;d\n");
    assert_eq!((line, offset), (2, 6));
    assert!(reason.contains("no sample value"), "{reason}");

    let (line, offset, reason) = folded_err(b"a 1\r\na;b -4\r\n");
    assert_eq!((line, offset), (2, 9));
    assert!(reason.contains("negative"), "{reason}");

    let (line, _, reason) = folded_err(b"a 1\nb 1\nc 99999999999999999999\n");
    assert_eq!(line, 3);
    assert!(reason.contains("64-bit"), "{reason}");

    let (line, _, reason) = folded_err(b"a 9223372036854775807\na 1\n");
    assert_eq!(line, 2, "the sum overflows on line 2");
    assert!(reason.contains("64-bit"), "{reason}");

    let (line, offset, reason) = folded_err(b"a 1\nb 2\nc\xff;d 3\n");
    assert_eq!((line, offset), (3, 9));
    assert!(reason.contains("UTF-8"), "{reason}");

    let (line, _, reason) = folded_err(b"a 1\n 7\n");
    assert_eq!(line, 2);
    assert!(reason.contains("empty stack"), "{reason}");

    let (_, _, reason) = folded_err(b"# only a comment\n\n");
    assert!(reason.contains("no stacks"), "{reason}");

    let err = folded::parse(b"a 1\nb x2\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "folded: line 2 (byte 6): sample value \"x2\" is not a non-negative number (expected \"frame;frame;...;leaf VALUE\")"
    );
}

#[test]
fn a_million_frame_line_imports_within_its_limit() {
    let mut line = String::new();
    for i in 0..1_000_000 {
        line.push_str(if i % 2 == 0 { "even;" } else { "odd;" });
    }
    line.push_str("leaf 3\n");
    let p = folded::parse(line.as_bytes()).unwrap();
    assert_eq!(p.function.len(), 3);
    assert_eq!(p.sample[0].location_id.len(), 1_000_001);
    assert_eq!(p.totals(), [3]);

    let small = ImportLimits {
        max_frames: 1000,
        ..ImportLimits::default()
    };
    let err = folded::parse_with_limits(line.as_bytes(), small).unwrap_err();
    assert_eq!(
        err,
        ImportError::TooManyFrames {
            what: "folded",
            limit: 1000
        }
    );
    let tiny = ImportLimits {
        max_input_bytes: 100,
        ..ImportLimits::default()
    };
    assert_eq!(
        folded::parse_with_limits(line.as_bytes(), tiny).unwrap_err(),
        ImportError::TooLarge { limit: 100 }
    );
}

#[test]
fn folded_round_trips_through_pprof_bytes() {
    let input = "a;b;c 5\na;b 2\nx y;z 1\n";
    let p = folded::parse(input.as_bytes()).unwrap();
    let back = decode(&encode_gzip(&p)).unwrap();
    assert_eq!(back, p);
    assert_eq!(folded::write(&back, 0), "a;b 2\na;b;c 5\nx y;z 1\n");
    // Written again, it parses to the same profile.
    assert_eq!(
        folded::parse(folded::write(&p, 0).as_bytes())
            .unwrap()
            .totals(),
        [8]
    );
    assert_eq!(folded::write(&p, 1), "", "no such sample type");
}

/// Found by the `import_folded` fuzz target: `;b` (a root frame with an
/// empty name) was written back as `b`.
#[test]
fn folded_writer_keeps_an_empty_root_frame() {
    let p = folded::parse(b";b 1\n;;c 2\n").unwrap();
    assert_eq!(folded::write(&p, 0), ";;c 2\n;b 1\n");
}

/// Each reference `.folded` (from `go tool pprof -raw`) imports with the
/// totals of its line sums and writes back byte for byte; and our writer
/// gives the same file from the matching pprof profile.
#[test]
fn reference_folded_files_import_with_their_line_sums() {
    let Some(dir) = shared() else {
        return;
    };
    let mut seen = 0;
    for e in std::fs::read_dir(dir.join("reference")).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".folded") else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let line_sum: i64 = text
            .lines()
            .map(|l| l.rsplit_once(' ').unwrap().1.parse::<i64>().unwrap())
            .sum();
        let p = folded::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(p.totals(), [line_sum], "{name}");
        assert_eq!(
            p.sample.len(),
            text.lines().count(),
            "{name}: distinct stacks"
        );
        assert_eq!(folded::write(&p, 0), text, "{name}: written back");
        let via_any = decode_any(&gzip(text.as_bytes())).unwrap();
        assert_eq!(via_any, p, "{name}: decode_any of the gzipped file");

        // The pprof profile it was made from.
        let (base, kind) = stem.rsplit_once('.').unwrap();
        let pb = match base {
            "known-tree-cpu" => "known-tree/cpu.pb.gz".to_string(),
            b if b.starts_with("known-contention-") => {
                format!("known-contention/{}.pb.gz", &b["known-contention-".len()..])
            }
            b => format!("{b}.pb.gz"),
        };
        let prof = decode(&std::fs::read(dir.join(&pb)).unwrap()).unwrap();
        // `samples` is `samples/count`, `goroutines` `goroutine/count`,
        // `delay_ns` `delay/nanoseconds`: exact, else the type name's prefix.
        let types: Vec<&str> = prof
            .sample_type
            .iter()
            .map(|vt| prof.string(vt.r#type))
            .collect();
        let index = types
            .iter()
            .position(|t| kind == *t)
            .or_else(|| types.iter().position(|t| kind.starts_with(t)))
            .unwrap_or_else(|| panic!("{name}: no sample type {kind} in {pb}"));
        assert_eq!(folded::write(&prof, index), text, "{name}: from {pb}");
        seen += 1;
    }
    assert!(
        seen >= 7,
        "expected the reference folded files, found {seen}"
    );
}

// ------------------------------------------------------------- cpuprofile

/// A small profile with known times: root → main → {a, b}, plus (program).
const SMALL: &str = r#"{
  "nodes": [
    {"id": 1, "callFrame": {"functionName": "(root)", "scriptId": "0", "url": "", "lineNumber": -1, "columnNumber": -1}, "hitCount": 0, "children": [2, 5]},
    {"id": 2, "callFrame": {"functionName": "main", "scriptId": "1", "url": "file:///app.js", "lineNumber": 9, "columnNumber": 4}, "hitCount": 1, "children": [3, 4]},
    {"id": 3, "callFrame": {"functionName": "a", "scriptId": "1", "url": "file:///app.js", "lineNumber": 0, "columnNumber": 0}, "hitCount": 2},
    {"id": 4, "callFrame": {"functionName": "", "scriptId": "1", "url": "file:///app.js", "lineNumber": 20, "columnNumber": 2}, "hitCount": 1},
    {"id": 5, "callFrame": {"functionName": "(program)", "scriptId": "0", "url": "", "lineNumber": -1, "columnNumber": -1}, "hitCount": 1}
  ],
  "startTime": 1000,
  "endTime": 1200,
  "samples":    [3,  3,  2,  4,  5],
  "timeDeltas": [10, 20, 30, 40, 50]
}"#;

#[test]
fn cpuprofile_weights_each_sample_by_the_time_to_the_next() {
    let p = cpuprofile::parse(SMALL.as_bytes()).unwrap();
    validate(&p).unwrap();
    assert_eq!(p.sample_type_names(), ["samples/count", "cpu/nanoseconds"]);
    // Sample times 1010, 1030, 1060, 1100, 1150; end 1200. Each sample
    // weighs the gap to the next one; the last, the gap to endTime.
    assert_eq!(
        stacks(&p, 1),
        map(&[
            ("(program)", 50_000),
            ("main", 40_000),
            ("main;(anonymous)", 50_000),
            ("main;a", 50_000),
        ])
    );
    assert_eq!(
        stacks(&p, 0),
        map(&[
            ("(program)", 1),
            ("main", 1),
            ("main;(anonymous)", 1),
            ("main;a", 2)
        ])
    );
    assert_eq!(p.totals(), [5, 190_000]);
    assert_eq!(p.duration_nanos, 200_000);
    assert_eq!(p.period, 35_000, "mean gap: (20 + 30 + 40 + 50) / 4 µs");
    assert_eq!(
        p.value_type_name(&p.period_type.unwrap()),
        "cpu/nanoseconds"
    );
    // Lines and columns become 1-based; unknown ones 0.
    let f = p
        .function
        .iter()
        .find(|f| p.string(f.name) == "main")
        .unwrap();
    assert_eq!((p.string(f.filename), f.start_line), ("file:///app.js", 10));
    let loc = p.location.iter().find(|l| l.id == f.id).unwrap();
    assert_eq!((loc.line[0].line, loc.line[0].column), (10, 5));
    let prog = p
        .function
        .iter()
        .find(|f| p.string(f.name) == "(program)")
        .unwrap();
    assert_eq!(prog.start_line, 0);
    assert!(p.function.iter().all(|f| p.string(f.name) != "(root)"));
}

#[test]
fn cpuprofile_without_samples_uses_hit_counts() {
    let v: serde_json::Value = serde_json::from_str(SMALL).unwrap();
    let mut o = v.as_object().unwrap().clone();
    o.remove("samples");
    o.remove("timeDeltas");
    let p = cpuprofile::parse(serde_json::to_string(&o).unwrap().as_bytes()).unwrap();
    // 5 hits over 200 µs: 40 µs each.
    assert_eq!(
        stacks(&p, 1),
        map(&[
            ("(program)", 40_000),
            ("main", 40_000),
            ("main;(anonymous)", 40_000),
            ("main;a", 80_000),
        ])
    );
    assert_eq!(p.totals(), [5, 200_000]);
}

/// `node --cpu-prof` on `tests/fixtures/node-known-tree.js`: main calls
/// hot() (300 ms of spinning) and cold() (100 ms), both through spin().
#[test]
fn node_cpu_prof_fixture_has_its_known_tree() {
    let bytes = fixture("node-known-tree.cpuprofile");
    assert!(bytes.len() < 50_000);
    assert_eq!(sniff(&bytes), Format::CpuProfile);
    let p = decode_any(&bytes).unwrap();
    assert_eq!(p.sample_type_names(), ["samples/count", "cpu/nanoseconds"]);

    let raw: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let n_samples = raw["samples"].as_array().unwrap().len();
    let span_us = raw["endTime"].as_f64().unwrap() - raw["startTime"].as_f64().unwrap();
    let first_us = raw["timeDeltas"][0].as_f64().unwrap();
    let [count, cpu_ns] = p.totals()[..] else {
        panic!("two sample types")
    };
    assert_eq!(count, i64::try_from(n_samples).unwrap());
    // All time from the first sample to the end is attributed, no more.
    assert_eq!(cpu_ns, ((span_us - first_us) * 1000.0).round() as i64);

    let hot = cum(&p, 1, "hot") as f64;
    let cold = cum(&p, 1, "cold") as f64;
    let main = cum(&p, 1, "main") as f64;
    let spin = cum(&p, 1, "spin") as f64;
    assert!(
        (2.0..=4.5).contains(&(hot / cold)),
        "hot/cold = {}",
        hot / cold
    );
    assert!(main >= 0.8 * cpu_ns as f64, "main {main} of {cpu_ns}");
    assert!(spin >= 0.9 * (hot + cold), "spin is where the time goes");
    assert!(
        p.function.iter().any(|f| p.string(f.name) == "(anonymous)"),
        "the module wrapper has no name"
    );
    // Line numbers are 1-based: `function hot` is where the JS file has it.
    let js = String::from_utf8(fixture("node-known-tree.js")).unwrap();
    for name in ["hot", "cold", "main", "spin"] {
        let want = js
            .lines()
            .position(|l| l.starts_with(&format!("function {name}(")))
            .unwrap()
            + 1;
        let f = p
            .function
            .iter()
            .find(|f| p.string(f.name) == name)
            .unwrap();
        assert_eq!(f.start_line, i64::try_from(want).unwrap(), "{name}");
        assert!(p.string(f.filename).ends_with("node-known-tree.js"));
    }
    // spin is one function (same name, file, line, column) under two callers.
    assert_eq!(
        p.function
            .iter()
            .filter(|f| p.string(f.name) == "spin")
            .count(),
        1
    );
}

/// The same profile as SMALL, as Chrome's Performance panel saves it:
/// a `Profile` event and `ProfileChunk`s whose nodes name their parent,
/// out of time order, among other events and another thread's profile.
fn trace_events() -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(SMALL).unwrap();
    let mut nodes = v["nodes"].as_array().unwrap().clone();
    for n in &mut nodes {
        n.as_object_mut().unwrap().remove("children");
    }
    for (i, parent) in [(1, 1), (2, 2), (3, 2), (4, 1)] {
        nodes[i]["parent"] = parent.into();
    }
    serde_json::json!([
        {"pid": 1, "tid": 1, "ts": 5, "ph": "X", "cat": "devtools.timeline", "name": "RunTask", "args": {}},
        {"pid": 1, "tid": 1, "ts": 30, "ph": "P", "cat": "disabled-by-default-v8.cpu_profiler", "name": "ProfileChunk", "id": "0x1",
         "args": {"data": {"cpuProfile": {"nodes": nodes[3..].to_vec(), "samples": [4, 5]}, "timeDeltas": [40, 50], "endTime": 1200}}},
        {"pid": 1, "tid": 1, "ts": 10, "ph": "P", "cat": "disabled-by-default-v8.cpu_profiler", "name": "Profile", "id": "0x1",
         "args": {"data": {"startTime": 1000}}},
        {"pid": 1, "tid": 2, "ts": 11, "ph": "P", "cat": "disabled-by-default-v8.cpu_profiler", "name": "Profile", "id": "0x2",
         "args": {"data": {"startTime": 0}}},
        {"pid": 1, "tid": 2, "ts": 12, "ph": "P", "cat": "disabled-by-default-v8.cpu_profiler", "name": "ProfileChunk", "id": "0x2",
         "args": {"data": {"cpuProfile": {"nodes": [], "samples": [77]}, "timeDeltas": [1]}}},
        {"pid": 1, "tid": 1, "ts": 20, "ph": "P", "cat": "disabled-by-default-v8.cpu_profiler", "name": "ProfileChunk", "id": "0x1",
         "args": {"data": {"cpuProfile": {"nodes": nodes[..3].to_vec(), "samples": [3, 3, 2]}, "timeDeltas": [10, 20, 30]}}}
    ])
}

#[test]
fn trace_event_files_import_their_first_profile() {
    let want = cpuprofile::parse(SMALL.as_bytes()).unwrap();
    let events = trace_events();
    let array = serde_json::to_vec(&events).unwrap();
    assert_eq!(sniff(&array), Format::CpuProfile);
    let got = decode_any(&array).unwrap();
    assert_eq!(stacks(&got, 0), stacks(&want, 0));
    assert_eq!(stacks(&got, 1), stacks(&want, 1));

    let wrapped =
        serde_json::to_vec(&serde_json::json!({"traceEvents": events, "metadata": {}})).unwrap();
    assert_eq!(stacks(&decode_any(&wrapped).unwrap(), 1), stacks(&want, 1));

    // A CpuProfile event carries a whole profile.
    let small: serde_json::Value = serde_json::from_str(SMALL).unwrap();
    let one = serde_json::json!([{"name": "CpuProfile", "ts": 1, "args": {"data": {"cpuProfile": small}}}]);
    let got = decode_any(&serde_json::to_vec(&one).unwrap()).unwrap();
    assert_eq!(stacks(&got, 1), stacks(&want, 1));

    let none = cpu_err(r#"[{"name": "RunTask", "ts": 1}]"#);
    assert!(none.contains("no CpuProfile or Profile event"), "{none}");
}

#[test]
fn hostile_cpuprofiles_are_errors_naming_the_field() {
    let node = |id: u64, children: &str| {
        format!(
            r#"{{"id": {id}, "callFrame": {{"functionName": "f{id}", "url": ""}}, "children": [{children}]}}"#
        )
    };
    let prof = |nodes: &[String], samples: &str, deltas: &str| {
        format!(
            r#"{{"nodes": [{}], "samples": [{samples}], "timeDeltas": [{deltas}]}}"#,
            nodes.join(",")
        )
    };
    let check = |json: String, want: &str| {
        let err = cpu_err(&json);
        assert!(err.contains(want), "{err}\n  wanted: {want}");
    };
    check(
        prof(&[node(1, "2"), node(2, "1")], "1", "1"),
        "cycle in the call tree",
    );
    check(prof(&[node(1, "1")], "1", "1"), "cycle in the call tree");
    check(
        prof(&[node(1, "3"), node(2, "3"), node(3, "")], "3", "1"),
        "cpuprofile: nodes[1].children[0]: node id 3 is already a child of node id 1",
    );
    check(
        prof(&[node(1, "9")], "1", "1"),
        "cpuprofile: nodes[0].children[0]: no node with id 9",
    );
    check(
        prof(&[node(1, "")], "1, 4", "1, 1"),
        "cpuprofile: samples[1]: no node with id 4",
    );
    check(
        prof(&[node(1, ""), node(1, "")], "1", "1"),
        "cpuprofile: nodes[1].id: duplicate node id 1",
    );
    check(
        prof(&[node(1, "")], "1, 1", "1"),
        "cpuprofile: timeDeltas: 1 time deltas for 2 samples",
    );
    check(
        r#"{"nodes": [{"id": -1, "callFrame": {}}]}"#.into(),
        "cpuprofile: JSON at line 1 column",
    );
    check(
        r#"{"nodes": [{"id": 1e999, "callFrame": {}}]}"#.into(),
        "cpuprofile: JSON at line 1 column",
    );
    check(
        "{\"nodes\": [\n  {\"id\": 1,".into(),
        "cpuprofile: JSON at line 2 column",
    );
    check(r#"{"profile": 1}"#.into(), "cpuprofile: nodes: missing");
    check(r#"{"head": {"children": []}}"#.into(), "pre-2016");
    check(r#"{"nodes": 7}"#.into(), "invalid type: integer `7`");
    let err = cpuprofile::parse(b"{\"nodes\": [], \"samples\": [1], \"timeDeltas\": [\"x\"]}")
        .unwrap_err();
    assert!(matches!(err, ImportError::Json { line: 1, .. }), "{err}");
}

#[test]
fn deep_json_nesting_is_an_error_not_a_stack_overflow() {
    for depth in [200usize, 100_000] {
        // Trace events are parsed as `serde_json::Value`: its recursion
        // limit (128) stops them.
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let err = cpuprofile::parse(deep.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
        let deep_events = format!(
            r#"{{"traceEvents": [{{"name": "Profile", "args": {}1{}}}]}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let err = decode_any(deep_events.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
        // A typed field gets a type error at the first level too deep.
        let deep_samples = format!(
            r#"{{"nodes": [], "samples": {}1{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let err = decode_any(deep_samples.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("expected u64"), "{err}");
        // Unknown fields are skipped by serde_json without recursion, so
        // any depth there is harmless.
        let deep_extra = format!(
            r#"{{"nodes": [], "extra": {}1{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert!(decode_any(deep_extra.as_bytes()).unwrap().sample.is_empty());
    }
}

#[test]
fn huge_times_saturate_instead_of_overflowing() {
    let json = r#"{"nodes": [{"id": 1, "callFrame": {"functionName": "f", "lineNumber": 9223372036854775807}}],
        "startTime": -1e308, "endTime": 1e308, "samples": [1, 1, 1], "timeDeltas": [1e308, 1e308, -1e308]}"#;
    let p = cpuprofile::parse(json.as_bytes()).unwrap();
    assert_eq!(p.totals(), [3, i64::MAX]);
    assert_eq!(p.function[0].start_line, i64::MAX);
}

#[test]
fn a_deep_sampled_chain_is_bounded_by_max_frames() {
    // n nodes in a chain, every one sampled: n²/2 frames once expanded.
    let n = 20_000u64;
    let mut nodes = Vec::new();
    for id in 1..=n {
        let children = if id < n {
            format!("[{}]", id + 1)
        } else {
            "[]".into()
        };
        nodes.push(format!(
            r#"{{"id":{id},"callFrame":{{"functionName":"f"}},"children":{children}}}"#
        ));
    }
    let samples: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    let deltas = vec!["1"; samples.len()];
    let json = format!(
        r#"{{"nodes":[{}],"samples":[{}],"timeDeltas":[{}]}}"#,
        nodes.join(","),
        samples.join(","),
        deltas.join(",")
    );
    let limits = ImportLimits {
        max_frames: 10_000_000,
        ..ImportLimits::default()
    };
    let err = cpuprofile::parse_with_limits(json.as_bytes(), limits).unwrap_err();
    assert_eq!(
        err,
        ImportError::TooManyFrames {
            what: "cpuprofile",
            limit: 10_000_000
        }
    );
    // Within the limit it imports: 1 + 2 + ... + 4000 frames.
    let short: Vec<String> = (1..=4000).map(|i| i.to_string()).collect();
    let json = json
        .replace(&samples.join(","), &short.join(","))
        .replace(&deltas.join(","), &vec!["1"; short.len()].join(","));
    let p = cpuprofile::parse_with_limits(json.as_bytes(), limits).unwrap();
    let frames: usize = p.sample.iter().map(|s| s.location_id.len()).sum();
    assert_eq!(frames, 4000 * 4001 / 2);
    assert_eq!(p.function.len(), 1, "one function f, one location");
}

// ------------------------------------------------------------- decode_any

#[test]
fn decode_any_sniffs_every_format_raw_and_gzipped() {
    let folded_text = b"main;work 3\nmain 1\n".to_vec();
    let from_folded = folded::parse(&folded_text).unwrap();
    let pprof_raw = encode(&from_folded);
    let json = SMALL.as_bytes().to_vec();
    let cases: [(&str, Vec<u8>, Format); 3] = [
        ("folded", folded_text, Format::Folded),
        ("pprof", pprof_raw, Format::Pprof),
        ("cpuprofile", json, Format::CpuProfile),
    ];
    for (name, bytes, format) in cases {
        assert_eq!(sniff(&bytes), format, "{name}");
        let plain = decode_any(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let zipped = decode_any(&gzip(&bytes)).unwrap_or_else(|e| panic!("{name} gzipped: {e}"));
        assert_eq!(plain, zipped, "{name}");
        assert!(!plain.sample.is_empty(), "{name}");
    }
    assert_eq!(decode_any(&encode_gzip(&from_folded)).unwrap(), from_folded);
    // Folded lines that start with a bracketed frame are not JSON.
    assert_eq!(sniff(b"[unknown];main 1\n"), Format::Folded);
    assert_eq!(decode_any(b"[unknown];main 1\n").unwrap().totals(), [1]);
    assert_eq!(sniff(b" \n{\"nodes\": []}"), Format::CpuProfile);
    assert_eq!(sniff(b"[]"), Format::CpuProfile);
}

#[test]
fn decode_any_reports_what_it_tried() {
    assert_eq!(decode_any(b"").unwrap_err(), ImportError::Empty);
    assert_eq!(decode_any(&gzip(b"")).unwrap_err(), ImportError::Empty);
    let err = decode_any(b"hello world\n").unwrap_err();
    assert!(err.to_string().starts_with("folded: line 1"), "{err}");
    let err = decode_any(&[0x0a, 0x04, 0x08, 0x01, 0x10]).unwrap_err();
    assert!(err.to_string().starts_with("pprof: "), "{err}");
    let err = decode_any(&[0x1f, 0x8b, 0, 1]).unwrap_err();
    assert!(err.to_string().starts_with("gzip: "), "{err}");
    // A gzip bomb stops at the input cap.
    let bomb = gzip(&vec![b'a'; 1 << 20]);
    let limits = ImportLimits {
        max_input_bytes: 1 << 16,
        ..ImportLimits::default()
    };
    let err = decode_any_with_limits(&bomb, limits).unwrap_err();
    assert!(
        err.to_string().contains("exceeds the limit of 65536 bytes"),
        "{err}"
    );
    let err = decode_any_with_limits(&vec![b'a'; 1 << 17], limits).unwrap_err();
    assert_eq!(err, ImportError::TooLarge { limit: 1 << 16 });
}
