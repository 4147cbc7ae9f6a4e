//! Real native-histogram chunks (written by Prometheus 2.42, see
//! `testdata/native-histograms/README.md`) decode to what Prometheus's own
//! query API answered for the same samples: timestamps, counts, sums, and
//! every non-empty bucket with its inclusivity, count and bounds (bit for
//! bit: see `emberlens_model::bucket_bound`).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use emberlens_model::{FloatHistogram, MatchOp, Matcher, format_timestamp_secs, format_value};
use emberlens_tsdb::chunkenc::Encoding;
use emberlens_tsdb::postings::postings_for_matchers;
use emberlens_tsdb::{Block, MemFileSet};
use serde_json::Value;

macro_rules! fixture_file {
    ($name:literal) => {
        (
            concat!("01M80FK4BC5XGERVR66QV25WDZ/", $name),
            &include_bytes!(concat!(
                "../testdata/native-histograms/snapshot/01M80FK4BC5XGERVR66QV25WDZ/",
                $name
            ))[..],
        )
    };
}

fn block() -> Block<std::sync::Arc<Vec<u8>>> {
    let mut fs = MemFileSet::new();
    for (p, b) in [
        fixture_file!("meta.json"),
        fixture_file!("index"),
        fixture_file!("chunks/000001"),
        fixture_file!("tombstones"),
    ] {
        fs.insert(p, b.to_vec());
    }
    Block::open(&fs, "01M80FK4BC5XGERVR66QV25WDZ").unwrap()
}

/// Whether a bucket bound equals the API's text exactly.
fn close(ours: f64, theirs: &str) -> bool {
    let theirs: f64 = theirs.parse().unwrap();
    ours == theirs
}

/// Our buckets against the API's `[boundaries, lower, upper, count]` list.
fn check_buckets(h: &FloatHistogram, want: &[Value], ctx: &str) {
    let ours = h.buckets();
    assert_eq!(ours.len(), want.len(), "{ctx}: {ours:?} vs {want:?}");
    for (b, w) in ours.iter().zip(want) {
        assert_eq!(
            u64::from(b.boundaries),
            w[0].as_u64().unwrap(),
            "{ctx}: {b:?} vs {w}"
        );
        assert!(
            close(b.lower, w[1].as_str().unwrap()) && close(b.upper, w[2].as_str().unwrap()),
            "{ctx}: {b:?} vs {w}"
        );
        assert_eq!(
            format_value(b.count),
            w[3].as_str().unwrap(),
            "{ctx}: {b:?} vs {w}"
        );
    }
}

/// Every series of `metric` through `Block::select` (the path queries take)
/// against Prometheus's answer; the raw chunks must be integer histograms.
fn check(metric: &str, expected: &str) {
    let expected: Value = serde_json::from_str(expected).unwrap();
    let b = block();
    let m = Matcher::new("__name__", MatchOp::Equal, metric).unwrap();
    let ids = postings_for_matchers(b.index(), std::slice::from_ref(&m)).unwrap();
    for id in &ids {
        for c in &b.index().series(*id).unwrap().chunks {
            assert_eq!(
                b.chunks().chunk(c.chunk_ref).unwrap().encoding,
                Encoding::Histogram
            );
        }
    }
    let selected = b.select(&[m], i64::MIN, i64::MAX).unwrap();
    let results = expected["data"]["result"].as_array().unwrap();
    assert_eq!(selected.len(), results.len());
    let mut checked = 0;
    for series in selected {
        assert!(
            series.samples.is_empty(),
            "{}: float samples",
            series.labels
        );
        let want = results
            .iter()
            .find(|r| {
                series
                    .labels
                    .iter()
                    .all(|l| r["metric"][&l.name] == l.value.as_str())
            })
            .unwrap_or_else(|| panic!("{} not in the expected answer", series.labels));
        let want = want["histograms"].as_array().unwrap();
        assert_eq!(series.histograms.len(), want.len(), "{}", series.labels);
        for (s, w) in series.histograms.iter().zip(want) {
            let (t, h) = (s.t_ms, &s.h);
            let ctx = format!("{} at {t}", series.labels);
            assert_eq!(format_timestamp_secs(t), w[0].to_string(), "{ctx}");
            assert_eq!(
                format_value(h.count),
                w[1]["count"].as_str().unwrap(),
                "{ctx}"
            );
            assert_eq!(format_value(h.sum), w[1]["sum"].as_str().unwrap(), "{ctx}");
            let no_buckets = Vec::new();
            check_buckets(h, w[1]["buckets"].as_array().unwrap_or(&no_buckets), &ctx);
            checked += 1;
        }
    }
    assert!(checked >= 36, "only {checked} samples checked");
}

#[test]
fn latency_histograms_decode_like_prometheus() {
    check(
        "fx_native_latency_seconds",
        include_str!("../testdata/native-histograms/expected-fx_native_latency_seconds.json"),
    );
}

#[test]
fn negative_and_zero_buckets_decode_like_prometheus() {
    check(
        "fx_native_delta_celsius",
        include_str!("../testdata/native-histograms/expected-fx_native_delta_celsius.json"),
    );
}
