//! Blocks we write: read the real fixture blocks, write them again (one by
//! one, and compacted into one), and check them with the real tools:
//! `promtool tsdb analyze` accepts them, `promtool tsdb dump` prints the same
//! samples, and Debian's Prometheus answers the recorded oracle queries from
//! them exactly as it did from the originals.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::Path;

use common::{Oracle, TempDir, normalized_data, program, promtool_tsdb, shared_fixtures};
use emberlens_server::fileset::DirFileSet;
use emberlens_tsdb::compact::compact;
use emberlens_tsdb::writer::{BlockFiles, ulid, write_block};
use emberlens_tsdb::{Block, Db};

fn store(dir: &Path, block: &BlockFiles) {
    for (rel, bytes) in &block.files {
        let p = dir.join(&block.meta.ulid).join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

/// Runs every recorded oracle query of `dataset` against `dir` and compares.
fn oracle_agrees(fx: &Path, dataset: &str, dir: &Path) -> usize {
    let oracle = Oracle::start(fx, dir);
    let mut n = 0;
    let mut files: Vec<_> = std::fs::read_dir(fx.join("oracle/expected"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let expected: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        if expected["dataset"] != format!("tsdb/{dataset}") {
            continue;
        }
        let got = oracle.query(expected["endpoint"].as_str().unwrap(), &expected["params"]);
        assert_eq!(
            normalized_data(&got),
            normalized_data(&expected["response"]),
            "{}: Prometheus answers differently from the blocks we wrote",
            f.display()
        );
        n += 1;
    }
    n
}

fn bytes_of(block: &BlockFiles, prefix: &str) -> usize {
    block
        .files
        .iter()
        .filter(|(p, _)| p.starts_with(prefix))
        .map(|(_, b)| b.len())
        .sum()
}

#[test]
fn rewritten_and_compacted_blocks_pass_promtool_and_the_oracle() {
    let (Some(fx), Some(promtool_bin), Some(_)) = (
        shared_fixtures(),
        program("promtool"),
        program("prometheus"),
    ) else {
        return;
    };
    for (dataset, data) in [
        ("synthetic-6h", "tsdb/synthetic-6h/data"),
        ("snapshot-live", "tsdb/snapshot-live"),
    ] {
        let src = fx.join(data);
        let fs = DirFileSet::open(&src).unwrap();
        let db = Db::open(&fs).unwrap();
        let original_dump = promtool_tsdb(&promtool_bin, &["dump"], &src);

        // 1. Every block written again, one by one.
        let out = TempDir::new("rewrite");
        let (mut ours_chunk_bytes, mut theirs_chunk_bytes, mut samples) = (0, 0, 0u64);
        for (i, b) in db.blocks().iter().enumerate() {
            let series = b
                .select(&[], i64::MIN, i64::MAX)
                .unwrap()
                .into_iter()
                .map(|s| (s.labels, s.samples))
                .collect();
            let id = ulid(b.meta().min_time as u64, [i as u8; 10]);
            let files = write_block(&id, series, b.meta().compaction.clone()).unwrap();
            assert_eq!(files.meta.stats.num_samples, b.meta().stats.num_samples);
            assert_eq!(files.meta.stats.num_series, b.meta().stats.num_series);
            ours_chunk_bytes += bytes_of(&files, "chunks/");
            theirs_chunk_bytes += b.chunks().size() as usize;
            samples += b.meta().stats.num_samples;
            store(&out.0, &files);
        }
        let analyze = promtool_tsdb(&promtool_bin, &["analyze"], &out.0);
        assert!(analyze.contains("Block ID:"), "{analyze}");
        assert_eq!(
            promtool_tsdb(&promtool_bin, &["dump"], &out.0),
            original_dump,
            "{dataset}: promtool dumps our rewrite differently"
        );
        let n = oracle_agrees(&fx, dataset, &out.0);
        assert!(n >= 4, "{dataset}: only {n} oracle queries");
        println!(
            "{dataset}: chunk bytes per sample: ours {:.3}, Prometheus/promtool {:.3}; {n} oracle queries agree",
            ours_chunk_bytes as f64 / samples as f64,
            theirs_chunk_bytes as f64 / samples as f64
        );

        // 2. All blocks compacted into one.
        if db.blocks().len() > 1 {
            let blocks: Vec<&Block<_>> = db.blocks().iter().map(|b| &**b).collect();
            let files = compact(
                &blocks,
                &ulid(db.blocks()[0].meta().min_time as u64, [9; 10]),
            )
            .unwrap();
            assert_eq!(files.meta.compaction.level, 2);
            assert_eq!(files.meta.compaction.parents.len(), blocks.len());
            let out = TempDir::new("compact");
            store(&out.0, &files);
            let analyze = promtool_tsdb(&promtool_bin, &["analyze"], &out.0);
            assert!(
                analyze.contains(&format!("Block ID: {}", files.meta.ulid)),
                "{analyze}"
            );
            assert_eq!(
                promtool_tsdb(&promtool_bin, &["dump"], &out.0),
                original_dump,
                "{dataset}: compacted block dumps differently"
            );
            oracle_agrees(&fx, dataset, &out.0);
        }
    }
}
