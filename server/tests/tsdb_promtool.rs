//! `emberlens tsdb ls|dump` against `promtool tsdb list|dump` (Debian's
//! Prometheus 2.42) on the real fixture blocks: identical output, byte for byte.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::process::Command;

use common::{TempDir, program, promtool_tsdb, shared_fixtures};
use emberlens_server::fileset::DirFileSet;
use emberlens_server::tsdb_cli;

fn ours_dump(dir: &Path, selector: Option<&str>, min_t: i64, max_t: i64) -> String {
    let fs = DirFileSet::open(dir).unwrap();
    let db = emberlens_tsdb::Db::open(&fs).unwrap();
    let matchers = selector
        .map(|s| emberlens_model::parse_selector(s).unwrap())
        .unwrap_or_default();
    let mut out = Vec::new();
    tsdb_cli::dump(&db, &matchers, min_t, max_t, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn ours_list(dir: &Path, human: bool) -> String {
    let fs = DirFileSet::open(dir).unwrap();
    tsdb_cli::list(&emberlens_tsdb::Db::open(&fs).unwrap(), human)
}

/// Compares line counts first, then the first differing line, so a failure
/// says where instead of printing two 600,000-line strings.
fn assert_same(what: &str, want: &str, got: &str) {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    if let Some(i) = w.iter().zip(&g).position(|(a, b)| a != b) {
        panic!(
            "{what}: line {} differs\n promtool: {}\n     ours: {}",
            i + 1,
            w[i],
            g[i]
        );
    }
    assert_eq!(
        w.len(),
        g.len(),
        "{what}: promtool printed {} lines, we printed {}",
        w.len(),
        g.len()
    );
    assert_eq!(
        want, got,
        "{what}: same lines, different bytes (line endings?)"
    );
}

#[test]
fn dump_and_list_equal_promtool_on_every_fixture() {
    let (Some(fx), Some(promtool_bin)) = (shared_fixtures(), program("promtool")) else {
        return;
    };
    for dataset in ["tsdb/synthetic-6h/data", "tsdb/snapshot-live"] {
        let dir = fx.join(dataset);
        let want = promtool_tsdb(&promtool_bin, &["dump"], &dir);
        assert!(
            want.lines().count() > 280_000,
            "{dataset}: promtool dumped only {} lines",
            want.lines().count()
        );
        assert_same(
            &format!("{dataset} dump"),
            &want,
            &ours_dump(&dir, None, i64::MIN, i64::MAX),
        );
        for human in [false, true] {
            let args: &[&str] = if human { &["list", "-r"] } else { &["list"] };
            assert_same(
                &format!("{dataset} list {args:?}"),
                &promtool_tsdb(&promtool_bin, args, &dir),
                &ours_list(&dir, human),
            );
        }
    }
}

#[test]
fn dump_with_matchers_and_ranges_equals_promtool() {
    let (Some(fx), Some(promtool_bin)) = (shared_fixtures(), program("promtool")) else {
        return;
    };
    let cases: &[(&str, &str, i64, i64)] = &[
        // selective, regex, negative and empty-matching matchers; ranges cutting chunks and blocks
        (
            "tsdb/synthetic-6h/data",
            r#"fx_requests_total{instance="host-07",method="DELETE"}"#,
            1_704_081_000_000,
            1_704_089_000_000,
        ),
        (
            "tsdb/synthetic-6h/data",
            r#"{__name__=~"fx_temp.*",sensor!="cpu",instance=~"host-1[0-3]"}"#,
            1_704_074_400_000,
            1_704_074_999_999,
        ),
        (
            "tsdb/synthetic-6h/data",
            r#"fx_request_duration_seconds_bucket{le=~"0.0.*|\\+Inf",instance!~"host-0[0-2]"}"#,
            i64::MIN,
            i64::MAX,
        ),
        (
            "tsdb/synthetic-6h/data",
            r#"{job="synthetic",nonexistent=""}"#,
            1_704_070_000_000,
            1_704_070_100_000,
        ),
        ("tsdb/snapshot-live", r#"up"#, i64::MIN, i64::MAX),
        (
            "tsdb/snapshot-live",
            r#"{__name__=~"node_cpu.*",mode=~"idle|user"}"#,
            1_795_301_300_000,
            1_795_301_400_000,
        ),
        (
            "tsdb/snapshot-live",
            r#"prometheus_http_requests_total{handler=~"/api/.*",code!="200"}"#,
            i64::MIN,
            i64::MAX,
        ),
    ];
    for (dataset, selector, min_t, max_t) in cases {
        let dir = fx.join(dataset);
        let args = [
            "dump".to_string(),
            format!("--match={selector}"),
            format!("--min-time={min_t}"),
            format!("--max-time={max_t}"),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let want = promtool_tsdb(&promtool_bin, &args, &dir);
        assert!(
            !want.is_empty(),
            "{dataset} {selector}: promtool printed nothing; pick a selector that selects"
        );
        assert_same(
            &format!("{dataset} {selector} [{min_t}, {max_t}]"),
            &want,
            &ours_dump(&dir, Some(selector), *min_t, *max_t),
        );
    }
}

#[test]
fn tar_and_tar_gz_snapshots_dump_like_the_directory() {
    let (Some(fx), Some(promtool_bin), Some(_)) =
        (shared_fixtures(), program("promtool"), program("tar"))
    else {
        return;
    };
    let dir = fx.join("tsdb/snapshot-live");
    let want = promtool_tsdb(&promtool_bin, &["dump"], &dir);
    let tmp = TempDir::new("tar");
    for (name, flags) in [("snap.tar", "-cf"), ("snap.tar.gz", "-czf")] {
        let archive = tmp.0.join(name);
        let st = Command::new("tar")
            .arg(flags)
            .arg(&archive)
            .arg("-C")
            .arg(fx.join("tsdb"))
            .arg("snapshot-live")
            .status()
            .unwrap();
        assert!(st.success());
        let fs = emberlens_server::fileset::AnyFileSet::open(&archive).unwrap();
        let db = emberlens_tsdb::Db::open(&fs).unwrap();
        let mut out = Vec::new();
        tsdb_cli::dump(&db, &[], i64::MIN, i64::MAX, &mut out).unwrap();
        assert_same(name, &want, &String::from_utf8(out).unwrap());
    }
}

/// On the native-histogram fixture (in the repo): the float series dump
/// exactly as promtool 2.42 dumps them (it skips histogram samples), and
/// every histogram sample prints one line in Prometheus's
/// `FloatHistogram.String()` layout, in time order within its series.
#[test]
fn histogram_snapshot_dumps_floats_like_promtool_and_histograms_too() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../worker/tsdb/testdata/native-histograms/snapshot");
    let ours = ours_dump(&dir, None, i64::MIN, i64::MAX);
    let (hist, floats): (Vec<&str>, Vec<&str>) =
        ours.lines().partition(|l| l.contains("} {count:"));
    assert_eq!(ours.lines().count(), 288, "every sample of the block");
    assert_eq!(hist.len(), 108, "3 histogram series × 36 scrapes");
    assert!(hist.iter().all(|l| l.starts_with("{__name__=\"fx_native_")));
    let first = "{__name__=\"fx_native_delta_celsius\", instance=\"127.0.0.1:33489\", \
job=\"histograms\"} {count:20, sum:-0.6999999999999975, [-8,-4):2, [-4,-2):4, [-2,-1):2, \
[-1,-0.5):1, [-0.5,-0.25):1, (0.25,0.5]:1, (0.5,1]:1, (1,2]:2, (2,4]:4, (4,8]:2} 1795312650161";
    assert_eq!(hist[0], first);
    let Some(promtool_bin) = program("promtool") else {
        return;
    };
    let mut floats = floats.join("\n");
    floats.push('\n');
    assert_same(
        "float series of the histogram snapshot",
        &promtool_tsdb(&promtool_bin, &["dump"], &dir),
        &floats,
    );
}
