//! The server's storage (WAL + head + blocks) on real directories: replay
//! after a crash and after a clean close, head blocks, compaction, WAL
//! checkpoints, retention, and the data directory read by Debian's
//! Prometheus and promtool.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;

use common::{Oracle, TempDir, normalized_data, program, promtool_tsdb, shared_fixtures};
use emberlens_model::{Appendable, Appender, Labels, Sample, Storage, parse_selector};
use emberlens_server::store::{Tsdb, TsdbOptions};

type Expected = BTreeMap<Labels, Vec<Sample>>;

fn series_labels(i: usize) -> Labels {
    Labels::from_pairs([
        (
            "__name__",
            if i.is_multiple_of(2) {
                "gauge_a"
            } else {
                "counter_b"
            }
            .to_string(),
        ),
        ("job", "test".to_string()),
        ("i", i.to_string()),
    ])
}

/// Appends `n_series` series at `step` ms over `[from, to)`, one commit per
/// timestamp like a scrape, recording what was written.
fn ingest(db: &Tsdb, n_series: usize, from: i64, to: i64, step: i64, want: &mut Expected) {
    let mut t = from;
    while t < to {
        let mut app = db.appender();
        for i in 0..n_series {
            let l = series_labels(i);
            // Counters grow; gauges wander, with repeats that compress well.
            let v = if i.is_multiple_of(2) {
                ((t / step) % 17) as f64 * 0.5 + i as f64
            } else {
                (t / step) as f64 * (i as f64 + 1.0)
            };
            app.append(&l, t, v).unwrap();
            want.entry(l).or_default().push(Sample { t_ms: t, v });
        }
        app.commit().unwrap();
        t += step;
    }
}

fn everything(db: &Tsdb) -> Expected {
    db.select(
        &parse_selector(r#"{job="test"}"#).unwrap(),
        i64::MIN,
        i64::MAX,
    )
    .unwrap()
    .into_iter()
    .map(|s| (s.labels, s.samples))
    .collect()
}

fn assert_same(got: &Expected, want: &Expected, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: series count");
    for (l, w) in want {
        let g = got.get(l).unwrap_or_else(|| panic!("{what}: {l} missing"));
        assert_eq!(g.len(), w.len(), "{what}: {l}: sample count");
        assert!(g == w, "{what}: {l}: samples differ");
    }
}

#[test]
fn wal_replays_after_a_crash_and_after_a_clean_close() {
    let dir = TempDir::new("store-replay");
    let mut want = Expected::new();
    {
        let db = Tsdb::open(&dir.0, TsdbOptions::default()).unwrap();
        ingest(
            &db,
            50,
            1_700_000_000_000,
            1_700_000_000_000 + 600_000,
            15_000,
            &mut want,
        );
        // Dropped without close: the last page is neither padded nor synced,
        // as after `kill -9`.
    }
    let db = Tsdb::open(&dir.0, TsdbOptions::default()).unwrap();
    assert_same(&everything(&db), &want, "after a crash");
    ingest(
        &db,
        60,
        1_700_000_600_000,
        1_700_000_900_000,
        15_000,
        &mut want,
    );
    db.close().unwrap();
    drop(db);
    let db = Tsdb::open(&dir.0, TsdbOptions::default()).unwrap();
    assert_same(&everything(&db), &want, "after a clean close");
    assert!(
        db.stats
            .wal_corruptions
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
    );
}

#[test]
fn a_torn_wal_tail_is_cut_and_everything_before_it_kept() {
    let dir = TempDir::new("store-torn");
    let mut want = Expected::new();
    {
        let db = Tsdb::open(&dir.0, TsdbOptions::default()).unwrap();
        ingest(&db, 20, 0, 300_000, 15_000, &mut want);
    }
    // Tear the last commit: cut the segment 5 bytes short.
    let seg = std::fs::read_dir(dir.0.join("wal"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| std::fs::metadata(p).unwrap().len() > 0)
        .max()
        .unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    for samples in want.values_mut() {
        samples.pop(); // the torn commit held each series' last sample
    }
    let db = Tsdb::open(&dir.0, TsdbOptions::default()).unwrap();
    assert_same(&everything(&db), &want, "after a torn tail");
    assert_eq!(
        db.stats
            .wal_corruptions
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // New commits go on and survive another restart.
    ingest(&db, 20, 300_000, 330_000, 15_000, &mut want);
    drop(db);
    let db = Tsdb::open(&dir.0, TsdbOptions::default()).unwrap();
    assert_same(&everything(&db), &want, "after the repair");
}

fn small_blocks() -> TsdbOptions {
    TsdbOptions {
        block_range_ms: 60_000,
        max_block_ms: 9 * 60_000,
        ..TsdbOptions::default()
    }
}

#[test]
fn head_blocks_are_cut_compacted_checkpointed_and_retained() {
    let dir = TempDir::new("store-blocks");
    let mut want = Expected::new();
    let db = Tsdb::open(&dir.0, small_blocks()).unwrap();
    // 20 minutes at 1 s, compacting after every minute of data.
    for minute in 0..20 {
        ingest(
            &db,
            30,
            minute * 60_000,
            (minute + 1) * 60_000,
            1_000,
            &mut want,
        );
        db.compact().unwrap();
        assert_same(&everything(&db), &want, &format!("minute {minute}"));
    }
    let blocks = db.blocks_db();
    let metas: Vec<_> = blocks.blocks().iter().map(|b| b.meta().clone()).collect();
    assert!(metas.len() >= 3, "{} blocks", metas.len());
    // 1 min blocks compacted into 3 min and 9 min ones.
    assert!(metas.iter().any(|m| m.compaction.level >= 3), "{metas:?}");
    for w in metas.windows(2) {
        assert!(w[0].max_time <= w[1].min_time, "blocks overlap: {metas:?}");
    }
    // The head keeps about 1.5 block ranges; the WAL was checkpointed.
    let (hmin, hmax) = db.head().time_range();
    assert!(hmax - hmin <= 90_000, "head spans {hmin}..{hmax}");
    let wal: Vec<String> = std::fs::read_dir(dir.0.join("wal"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        wal.iter().filter(|n| n.starts_with("checkpoint.")).count(),
        1,
        "{wal:?}"
    );
    // Bytes per sample on disk, in the blocks (XOR chunks + index).
    let samples: u64 = metas.iter().map(|m| m.stats.num_samples).sum();
    let bytes = db.block_bytes();
    eprintln!(
        "{} blocks, {samples} samples, {bytes} bytes: {:.2} bytes/sample",
        metas.len(),
        bytes as f64 / samples as f64
    );
    drop(db);

    // Replay starts from the checkpoint.
    let db = Tsdb::open(&dir.0, small_blocks()).unwrap();
    assert_same(&everything(&db), &want, "after reopening");
    drop(db);

    // Time retention: keep 5 minutes of blocks.
    let db = Tsdb::open(
        &dir.0,
        TsdbOptions {
            retention_ms: 5 * 60_000,
            ..small_blocks()
        },
    )
    .unwrap();
    db.compact().unwrap();
    let newest = db
        .blocks_db()
        .blocks()
        .iter()
        .map(|b| b.meta().max_time)
        .max()
        .unwrap();
    for b in db.blocks_db().blocks() {
        assert!(b.meta().max_time > newest - 5 * 60_000, "{:?}", b.meta());
    }
    let got = everything(&db);
    let oldest = got.values().filter_map(|s| s.first()).map(|s| s.t_ms).min();
    assert!(oldest.unwrap() >= newest - 5 * 60_000 - 9 * 60_000);
    drop(db);

    // Size retention: a limit below one block leaves only the WAL's data.
    let db = Tsdb::open(
        &dir.0,
        TsdbOptions {
            retention_bytes: 1,
            ..small_blocks()
        },
    )
    .unwrap();
    db.compact().unwrap();
    assert!(db.blocks_db().blocks().is_empty());
}

#[test]
fn prometheus_reads_our_data_directory_wal_included() {
    let (Some(fx), Some(promtool)) = (shared_fixtures(), program("promtool")) else {
        return;
    };
    let dir = TempDir::new("store-prom");
    let mut want = Expected::new();
    let start = 1_704_067_200_000; // 2024-01-01T00:00:00Z
    let db = Tsdb::open(&dir.0, TsdbOptions::default()).unwrap();
    // 5 h at 15 s: one 2 h block is cut, the rest stays in the WAL.
    ingest(&db, 40, start, start + 5 * 3_600_000, 15_000, &mut want);
    db.compact().unwrap();
    assert_eq!(db.blocks_db().blocks().len(), 1);
    db.close().unwrap();

    let analyze = promtool_tsdb(&promtool, &["analyze"], &dir.0);
    assert!(analyze.contains("\nSeries: 40\n"), "{analyze}");

    let oracle = Oracle::start(&fx, &dir.0);
    let queries = [
        r#"gauge_a{i="4"}"#,
        "sum by (job) (gauge_a)",
        "rate(counter_b[5m])",
        "count_over_time(counter_b[1h])",
    ];
    // Evaluation times 7 s off the sample grid: Prometheus 2.42 closes range
    // windows on the left, 3.x (and Emberlens) does not, so a sample exactly
    // at a window's start would count in one and not the other.
    let (q_start, q_end) = (start + 7_000, start + 5 * 3_600_000);
    for q in queries {
        let params = serde_json::json!({
            "query": q,
            "start": (q_start / 1000).to_string(),
            "end": (q_end / 1000).to_string(),
            "step": "300",
        });
        let theirs = oracle.query("/api/v1/query_range", &params);
        let r = emberlens_promql::range_query(&db, &Default::default(), q, q_start, q_end, 300_000);
        let ours: serde_json::Value =
            serde_json::from_str(&emberlens_promql::api::response_json(&r)).unwrap();
        if let Some(d) = first_difference(&normalized_data(&ours), &normalized_data(&theirs), "") {
            panic!(
                "query {q}: Prometheus (reading our blocks and replaying our WAL) answers differently at {d}"
            );
        }
    }
}

/// Where two answers differ; sample values may differ in the last bits
/// (the engines sum in different orders).
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path}: {} vs {} items", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (p, q))| first_difference(p, q, &format!("{path}[{i}]")))
        }
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path}: keys {:?} vs {:?}", x.keys(), y.keys()));
            }
            x.iter().find_map(|(k, v)| match y.get(k) {
                Some(w) => first_difference(v, w, &format!("{path}.{k}")),
                None => Some(format!("{path}.{k} missing")),
            })
        }
        (Value::String(x), Value::String(y)) if x != y => {
            let (Ok(p), Ok(q)) = (x.parse::<f64>(), y.parse::<f64>()) else {
                return Some(format!("{path}: {x} vs {y}"));
            };
            ((p - q).abs() > 1e-9 * p.abs().max(q.abs())).then(|| format!("{path}: {x} vs {y}"))
        }
        _ => (a != b).then(|| format!("{path}: {a} vs {b}")),
    }
}

/// Unmounts a test's tmpfs when dropped.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn mount_tmpfs(at: &std::path::Path, size: &str) -> Option<Mount> {
    std::fs::create_dir_all(at).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| Mount(at.to_path_buf()))
}

#[test]
fn a_full_disk_refuses_commits_leaves_no_corruption_and_recovers() {
    let dir = TempDir::new("store-full");
    let mnt = dir.0.join("mnt");
    // Mounting needs root, which CI and this project's machines have; a
    // user's machine may not.
    let Some(_mount) = mount_tmpfs(&mnt, "2m") else {
        eprintln!("SKIPPED: cannot mount a 2 MiB tmpfs here (needs root)");
        return;
    };
    let opts = TsdbOptions {
        block_range_ms: 60_000,
        wal_segment_size: 256 << 10,
        ..TsdbOptions::default()
    };
    let db = Tsdb::open(&mnt, opts.clone()).unwrap();
    let mut acked = Expected::new();
    let mut t = 0;
    let error = loop {
        let mut app = db.appender();
        let mut batch = Vec::new();
        for i in 0..200 {
            let l = series_labels(i);
            let v = (t / 1000) as f64 * i as f64;
            app.append(&l, t, v).unwrap();
            batch.push((l, Sample { t_ms: t, v }));
        }
        match app.commit() {
            Ok(_) => {
                for (l, s) in batch {
                    acked.entry(l).or_default().push(s);
                }
            }
            Err(e) => break e.to_string(),
        }
        t += 1000;
        assert!(t < 10_000_000, "a 2 MiB disk never filled up");
    };
    assert!(error.contains("No space left"), "{error}");
    // Cutting blocks fails too, and leaves nothing half-written.
    assert!(db.compact().is_err());
    for e in std::fs::read_dir(&mnt).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp"), "left behind: {name}");
    }
    assert_same(&everything(&db), &acked, "while the disk is full");

    // Space comes back: commits and compaction work again.
    let ok = std::process::Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(ok.success());
    let resume = t + 1000;
    ingest(&db, 200, resume, resume + 120_000, 1000, &mut acked);
    db.compact().unwrap();
    assert!(!db.blocks_db().blocks().is_empty());
    drop(db);
    let db = Tsdb::open(&mnt, opts).unwrap();
    assert_same(&everything(&db), &acked, "after recovery and a restart");
    assert_eq!(
        db.stats
            .wal_corruptions
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}
