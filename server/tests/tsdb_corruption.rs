//! Flipped bytes and truncations in copies of the real fixture blocks: every
//! case is an error naming the file, section and offset (or passes unnoticed
//! where the format has no checksum and the byte is unused), nothing panics,
//! and the other blocks stay readable.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::shared_fixtures;
use emberlens_tsdb::{Db, MemFileSet, TsdbError};

fn load(dir: &std::path::Path) -> MemFileSet {
    let fs = emberlens_server::fileset::DirFileSet::open(dir).unwrap();
    let mut mem = MemFileSet::new();
    for p in emberlens_tsdb::FileSet::paths(&fs) {
        mem.insert(p.clone(), std::fs::read(dir.join(&p)).unwrap());
    }
    mem
}

/// Opens leniently and reads every series of every block that opened.
fn read_everything(fs: &MemFileSet) -> (usize, Vec<TsdbError>) {
    let (db, mut errors) = Db::open_lenient(fs);
    let mut samples = 0;
    for b in db.blocks() {
        match b.select(&[], i64::MIN, i64::MAX) {
            Ok(series) => samples += series.iter().map(|s| s.samples.len()).sum::<usize>(),
            Err(e) => errors.push(e),
        }
        // Every postings list, not only the all-postings one a full select reads.
        let ix = b.index();
        let pairs: Vec<(String, String)> = ix
            .label_names()
            .flat_map(|n| {
                ix.label_values(n)
                    .map(move |v| (n.to_string(), v.to_string()))
            })
            .collect();
        if let Some(e) = pairs.iter().find_map(|(n, v)| ix.postings(n, v).err()) {
            errors.push(e);
        }
    }
    (samples, errors)
}

fn check_error_names_the_place(e: &TsdbError, file: &str) {
    let text = e.to_string();
    assert!(
        text.starts_with(file) || text.contains(file),
        "error does not name {file}: {text}"
    );
    match e {
        TsdbError::Corrupt { detail: source, .. } => {
            assert!(text.contains(&format!("at offset {}", source.offset)))
        }
        TsdbError::Unsupported { .. } | TsdbError::Missing(_) | TsdbError::BadMeta { .. } => {}
        other => panic!("unexpected error kind for {file}: {other:?}"),
    }
}

#[test]
fn damaged_files_give_located_errors_and_spare_the_other_blocks() {
    let Some(fx) = shared_fixtures() else { return };
    let pristine = load(&fx.join("tsdb/synthetic-6h/data"));
    let (total, errors) = read_everything(&pristine);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(total, 96_000 + 96_000 + 95_960);

    let victim =
        emberlens_tsdb::db::block_dirs(&emberlens_tsdb::FileSet::paths(&pristine))[0].clone();
    let victim_samples = 96_000;
    let mut report = Vec::new();
    for name in ["index", "chunks/000001", "tombstones", "meta.json"] {
        let path = format!("{victim}/{name}");
        let bytes = pristine.get(&path).unwrap().to_vec();
        let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
        for cut in [
            0,
            1,
            4,
            8,
            bytes.len() / 3,
            bytes.len() / 2,
            bytes.len().saturating_sub(5),
            bytes.len() - 1,
        ] {
            cases.push((format!("truncated to {cut}"), bytes[..cut].to_vec()));
        }
        let step = (bytes.len() / 97).max(1);
        for at in (0..bytes.len()).step_by(step) {
            let mut b = bytes.clone();
            b[at] ^= 0x5a;
            cases.push((format!("byte {at} flipped"), b));
        }
        let (mut detected, mut unnoticed) = (0, 0);
        let toc = (name == "index").then(|| {
            emberlens_tsdb::index::IndexReader::open("index", bytes.clone())
                .unwrap()
                .toc()
        });
        for (what, damaged) in cases {
            let mut fs = pristine.clone();
            fs.insert(path.clone(), damaged);
            let (samples, errors) = read_everything(&fs);
            // The two untouched blocks are always fully readable.
            assert!(
                samples >= total - victim_samples,
                "{path} {what}: other blocks lost samples ({samples})"
            );
            if errors.is_empty() {
                unnoticed += 1;
                if let Some(toc) = toc {
                    // Unread by design: the legacy label indices and label offset
                    // table (Prometheus's v2 reader skips them too) and the zero
                    // padding that aligns series entries to 16 bytes.
                    let at: u64 = what
                        .split(' ')
                        .nth(1)
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(u64::MAX);
                    let legacy = (toc.label_indices..toc.postings).contains(&at)
                        || (toc.label_indices_table..toc.postings_table).contains(&at);
                    let padding =
                        (toc.series..toc.label_indices).contains(&at) && bytes[at as usize] == 0;
                    assert!(
                        legacy || padding,
                        "{path} {what}: read without error outside the unread sections"
                    );
                }
            } else {
                detected += 1;
                for e in &errors {
                    check_error_names_the_place(e, &victim);
                }
            }
        }
        report.push(format!(
            "{name}: {detected} detected, {unnoticed} unnoticed"
        ));
        if name == "chunks/000001" {
            // Every byte of a segment but the 3 padding bytes is checked (magic, version, CRCs).
            assert!(
                unnoticed <= 1,
                "{path}: {unnoticed} damaged copies read without error"
            );
        }
        if name == "tombstones" {
            assert_eq!(
                unnoticed, 0,
                "{path}: a damaged tombstones file read without error"
            );
        }
    }
    println!("corruption cases on {victim}: {}", report.join("; "));
}
