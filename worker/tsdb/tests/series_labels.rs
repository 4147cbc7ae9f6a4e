//! Index-only label reads (`series_labels`, `label_names`, `label_values`)
//! against what `select` (which decodes every chunk) says, on written blocks
//! and on the real native-histogram block of `native_histograms.rs`; and the
//! two places where they differ on purpose, as Prometheus's series API does.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use emberlens_model::{Labels, Matcher, Sample, Storage, StorageStats, parse_selector};
use emberlens_tsdb::meta::Compaction;
use emberlens_tsdb::postings::postings_for_matchers;
use emberlens_tsdb::tombstones::Tombstones;
use emberlens_tsdb::writer::write_block;
use emberlens_tsdb::{Block, Db, MemFileSet};

type Src = Arc<Vec<u8>>;

/// `n` samples 15 s apart from `start`.
fn series(pairs: &[(&str, &str)], start: i64, n: i64) -> (Labels, Vec<Sample>) {
    let samples = (0..n)
        .map(|i| Sample {
            t_ms: start + i * 15_000,
            v: i as f64,
        })
        .collect();
    (Labels::from_pairs(pairs.iter().copied()), samples)
}

fn open(ulid: &str, input: Vec<(Labels, Vec<Sample>)>, tomb: Option<Tombstones>) -> Block<Src> {
    let files = write_block(ulid, input, Compaction::default()).unwrap();
    let mut fs = MemFileSet::new();
    for (p, b) in &files.files {
        fs.insert(format!("{ulid}/{p}"), b.clone());
    }
    if let Some(t) = tomb {
        fs.insert(format!("{ulid}/tombstones"), t.encode());
    }
    Block::open(&fs, ulid).unwrap()
}

/// Two overlapping blocks; `up{job="b"}` only in the first, `other` only in
/// the second; 300 samples make several chunks per series.
fn db() -> Db<Src> {
    let first = open(
        "01AAAAAAAAAAAAAAAAAAAAAAAA",
        vec![
            series(&[("__name__", "up"), ("job", "a")], 0, 300),
            series(&[("__name__", "up"), ("job", "b"), ("zone", "eu")], 0, 200),
        ],
        None,
    );
    let second = open(
        "01BBBBBBBBBBBBBBBBBBBBBBBB",
        vec![
            series(&[("__name__", "up"), ("job", "a")], 3_000_000, 300),
            series(&[("__name__", "other"), ("job", "a")], 3_000_000, 10),
        ],
        None,
    );
    Db::from_blocks(vec![first, second])
}

fn via_select(db: &Db<Src>, m: &[Matcher], min: i64, max: i64) -> Vec<Labels> {
    db.select(m, min, max)
        .unwrap()
        .into_iter()
        .map(|s| s.labels)
        .collect()
}

#[test]
fn index_only_labels_equal_select_labels_on_sample_aligned_ranges() {
    let db = db();
    let selectors = [
        "up",
        r#"{job="a"}"#,
        r#"{job=~"a|b"}"#,
        r#"up{zone!="eu"}"#,
        r#"{__name__=~".+", zone=""}"#,
        "nothing",
    ];
    // Ranges whose ends are sample timestamps (15 s grid): there "a chunk
    // overlaps" and "a sample is inside" agree.
    let ranges = [
        (i64::MIN, i64::MAX),
        (0, 0),
        (0, 15_000),
        (2_985_000, 3_000_000),
        (3_000_000, 3_135_000),
        (4_500_000, 9_000_000),
        (7_500_000, 9_000_000),
    ];
    let mut nonempty = 0;
    for sel in selectors {
        let m = parse_selector(sel).unwrap();
        for (min, max) in ranges {
            let want = via_select(&db, &m, min, max);
            let got = db.series_labels(&m, min, max).unwrap();
            assert_eq!(got, want, "{sel} over [{min}, {max}]");
            nonempty += usize::from(!got.is_empty());
            // Through the trait too (what the server calls).
            let got = Storage::series_labels(&db, &m, min, max).unwrap();
            assert_eq!(got, want, "{sel} over [{min}, {max}] (trait)");
            // Names and values with matchers derive from the same series.
            let mut names: Vec<String> = want
                .iter()
                .flat_map(|l| l.iter().map(|l| l.name.clone()).collect::<Vec<_>>())
                .collect();
            names.sort();
            names.dedup();
            assert_eq!(db.label_names(&m, min, max).unwrap(), names, "{sel}");
            let mut jobs: Vec<String> = want.iter().map(|l| l.get("job").to_string()).collect();
            jobs.sort();
            jobs.dedup();
            assert_eq!(db.label_values("job", &m, min, max).unwrap(), jobs, "{sel}");
        }
    }
    assert!(nonempty >= 10, "only {nonempty} non-empty cases");
}

#[test]
fn without_matchers_names_and_values_come_from_the_overlapping_blocks() {
    let db = db();
    assert_eq!(
        db.label_names(&[], i64::MIN, i64::MAX).unwrap(),
        ["__name__", "job", "zone"]
    );
    assert_eq!(
        db.label_values("__name__", &[], i64::MIN, i64::MAX)
            .unwrap(),
        ["other", "up"]
    );
    // Only the second block overlaps: `zone` (first block only) is gone.
    let late = 7_000_000;
    assert_eq!(
        db.label_names(&[], late, i64::MAX).unwrap(),
        ["__name__", "job"]
    );
    assert_eq!(
        db.label_values("zone", &[], late, i64::MAX).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(db.label_values("job", &[], 0, 10).unwrap(), ["a", "b"]);
}

#[test]
fn a_chunk_spanning_the_range_lists_its_series_without_a_sample_inside() {
    let db = db();
    let m = parse_selector(r#"up{job="b"}"#).unwrap();
    // Between two samples of one chunk: no sample, but the chunk overlaps.
    assert!(via_select(&db, &m, 1_000, 14_000).is_empty());
    assert_eq!(db.series_labels(&m, 1_000, 14_000).unwrap().len(), 1);
}

#[test]
fn wholly_deleted_chunks_do_not_count() {
    let input = vec![
        series(&[("__name__", "up"), ("job", "a")], 0, 10),
        series(&[("__name__", "up"), ("job", "b")], 0, 10),
    ];
    // The series reference of `job="b"` (an index offset / 16).
    let plain = open("01CCCCCCCCCCCCCCCCCCCCCCCC", input.clone(), None);
    let b_ref =
        postings_for_matchers(plain.index(), &parse_selector(r#"{job="b"}"#).unwrap()).unwrap()[0];
    let b_ref = u64::from(b_ref);
    let mut tomb = Tombstones::default();
    tomb.add(b_ref, -1, 1_000_000);
    let b = open("01CCCCCCCCCCCCCCCCCCCCCCCC", input.clone(), Some(tomb));
    let up = parse_selector("up").unwrap();
    let got = b.series_labels(&up, i64::MIN, i64::MAX).unwrap();
    assert_eq!(got, [input[0].0.clone()]);
    let selected: Vec<Labels> = b
        .select(&up, i64::MIN, i64::MAX)
        .unwrap()
        .into_iter()
        .map(|s| s.labels)
        .collect();
    assert_eq!(got, selected);
    // Partly deleted: the chunk still counts.
    let mut tomb = Tombstones::default();
    tomb.add(b_ref, 0, 60_000);
    let b = open("01DDDDDDDDDDDDDDDDDDDDDDDD", input, Some(tomb));
    assert_eq!(b.series_labels(&up, i64::MIN, i64::MAX).unwrap().len(), 2);
}

#[test]
fn stats_come_from_meta_json() {
    let db = db();
    let st = db.stats().unwrap();
    assert_eq!(
        st,
        StorageStats {
            min_t_ms: Some(0),
            max_t_ms: Some(3_000_000 + 299 * 15_000),
            chunks: Some(db.blocks().iter().map(|b| b.meta().stats.num_chunks).sum()),
        }
    );
    assert!(st.chunks.unwrap() >= 4);
}

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

#[test]
fn real_prometheus_block_index_labels_equal_select_labels() {
    let mut fs = MemFileSet::new();
    for (p, b) in [
        fixture_file!("meta.json"),
        fixture_file!("index"),
        fixture_file!("chunks/000001"),
        fixture_file!("tombstones"),
    ] {
        fs.insert(p, b.to_vec());
    }
    let block = Block::open(&fs, "01M80FK4BC5XGERVR66QV25WDZ").unwrap();
    let (min, max) = (block.meta().min_time, block.meta().max_time);
    let db = Db::from_blocks(vec![block]);
    let all = db.series_labels(&[], i64::MIN, i64::MAX).unwrap();
    assert!(all.len() > 5, "{} series", all.len());
    for sel in [
        "",
        r#"{__name__=~".+_bucket|.+_count"}"#,
        r#"{__name__=~".+"}"#,
    ] {
        let m = if sel.is_empty() {
            Vec::new()
        } else {
            parse_selector(sel).unwrap()
        };
        for (lo, hi) in [(i64::MIN, i64::MAX), (min, max - 1)] {
            assert_eq!(
                db.series_labels(&m, lo, hi).unwrap(),
                via_select(&db, &m, lo, hi),
                "{sel}"
            );
        }
    }
    // Without matchers, names straight from the postings table equal the
    // names of the selected series.
    let mut names: Vec<String> = all
        .iter()
        .flat_map(|l| l.iter().map(|l| l.name.clone()).collect::<Vec<_>>())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(db.label_names(&[], i64::MIN, i64::MAX).unwrap(), names);
}
