//! The TSDB reader in a real dedicated worker, on the real fixture blocks
//! held in `Blob`s: the code path the app uses for files the user opens
//! (`FileReaderSync` over `Blob.slice`), for a folder of files and for a `.tar`.
#![cfg(all(target_arch = "wasm32", shared_fixtures))]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use emberlens_tsdb::{CountingFileSet, Db, FileSet};
use emberlens_worker::blob::{OpenedSource, open_source};
use emberlens_worker::http_range::{HttpRangeSource, UrlSource, open_url};
use wasm_bindgen_test::*;
use web_sys::Blob;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

macro_rules! block_files {
    ($($ulid:literal),*) => {
        vec![$(
            (concat!($ulid, "/meta.json"), &include_bytes!(concat!(env!("EMBERLENS_FIXTURES"), "/tsdb/synthetic-6h/data/", $ulid, "/meta.json"))[..]),
            (concat!($ulid, "/index"), &include_bytes!(concat!(env!("EMBERLENS_FIXTURES"), "/tsdb/synthetic-6h/data/", $ulid, "/index"))[..]),
            (concat!($ulid, "/chunks/000001"), &include_bytes!(concat!(env!("EMBERLENS_FIXTURES"), "/tsdb/synthetic-6h/data/", $ulid, "/chunks/000001"))[..]),
            (concat!($ulid, "/tombstones"), &include_bytes!(concat!(env!("EMBERLENS_FIXTURES"), "/tsdb/synthetic-6h/data/", $ulid, "/tombstones"))[..]),
        )*]
    };
}

fn fixture() -> Vec<(&'static str, &'static [u8])> {
    block_files!(
        "01M804NPTE3WX3991792WBME6G",
        "01M804NQ2DMFMEM1FDTC92H0V3",
        "01M804NQBME7DGA2YJ35MXB8MH"
    )
}

fn blob(bytes: &[u8]) -> Blob {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    Blob::new_with_u8_array_sequence(&parts).unwrap()
}

/// The 10-minute gap series: 1440 samples over 6 h minus the 40 of the gap.
fn check_selects<F: FileSet>(fs: &F)
where
    F::File: Clone,
{
    let db = Db::open(fs).unwrap();
    assert_eq!(db.blocks().len(), 3);
    let m =
        emberlens_model::parse_selector(r#"fx_requests_total{instance="host-07",method="DELETE"}"#)
            .unwrap();
    let series = db.select_series(&m, i64::MIN, i64::MAX).unwrap();
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].samples.len(), 1400);
    let re = emberlens_model::parse_selector(
        r#"{__name__=~"fx_temperature_celsius",sensor=~"cpu|gpu"}"#,
    )
    .unwrap();
    let n: usize = db
        .select_series(&re, i64::MIN, i64::MAX)
        .unwrap()
        .iter()
        .map(|s| s.samples.len())
        .sum();
    assert_eq!(n, 28_800);
}

#[wasm_bindgen_test]
fn folder_of_blobs_is_read_lazily() {
    let files: Vec<(String, Blob)> = fixture()
        .into_iter()
        .map(|(p, b)| (p.to_string(), blob(b)))
        .collect();
    let total: u64 = fixture().iter().map(|(_, b)| b.len() as u64).sum();
    let OpenedSource::Files(fs) = open_source(files).unwrap() else {
        panic!("a folder is not an archive")
    };
    let counting = CountingFileSet::new(fs);
    check_selects(&counting);

    // Lazy: after opening, one selective query reads its postings, 3 series
    // entries and their chunks (36 chunks of ~430 bytes), not the blocks.
    counting.counter().reset();
    let db = Db::open(&counting).unwrap();
    let opened = counting.counter().bytes();
    counting.counter().reset();
    let m =
        emberlens_model::parse_selector(r#"fx_requests_total{instance="host-07",method="DELETE"}"#)
            .unwrap();
    db.select_series(&m, i64::MIN, i64::MAX).unwrap();
    let query = counting.counter().bytes();
    assert!(
        query < total / 20,
        "one selective query read {query} of {total} bytes"
    );
    web_sys::console::log_1(
        &format!("lazy read: open {opened} B, selective query {query} B, of {total} B").into(),
    );
}

#[wasm_bindgen_test]
fn tar_blob_is_read_in_place() {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in fixture() {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, format!("snapshot/{path}"), data)
            .unwrap();
    }
    let tar = b.into_inner().unwrap();
    let OpenedSource::Tar(fs) = open_source(vec![("snapshot.tar".into(), blob(&tar))]).unwrap()
    else {
        panic!("not recognised as a tar")
    };
    check_selects(&fs);
}

/// A `.tar` snapshot by URL, read with HTTP range requests (a `blob:` URL
/// here: Chromium answers ranges on those as a static host would). Opening
/// and one selective query must fetch a small part of the archive.
#[wasm_bindgen_test]
fn tar_url_is_read_with_range_requests() {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in fixture() {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, format!("snapshot/{path}"), data)
            .unwrap();
    }
    let tar = b.into_inner().unwrap();
    let url = web_sys::Url::create_object_url_with_blob(&blob(&tar)).unwrap();
    let UrlSource::Tar(fs) = open_url(&url).unwrap() else {
        panic!("not recognised as a tar")
    };
    check_selects(&fs);

    // A fresh source for the lazy-read figure: open + one selective query.
    let src = HttpRangeSource::open(&url).unwrap();
    let paged =
        emberlens_worker::paged::Paged::with_page(src.clone(), emberlens_worker::paged::HTTP_PAGE);
    let fs = emberlens_tsdb::archive::TarFileSet::open("snapshot.tar", paged).unwrap();
    let db = Db::open(&fs).unwrap();
    let m =
        emberlens_model::parse_selector(r#"fx_requests_total{instance="host-07",method="DELETE"}"#)
            .unwrap();
    let series = db.select_series(&m, i64::MIN, i64::MAX).unwrap();
    assert_eq!(series.len(), 1);
    web_sys::console::log_1(
        &format!(
            "range requests: {} requests, {} of {} bytes fetched",
            src.requests(),
            src.bytes_fetched(),
            tar.len()
        )
        .into(),
    );
    assert!(
        src.bytes_fetched() < tar.len() as u64 / 2,
        "fetched {} of {} bytes",
        src.bytes_fetched(),
        tar.len()
    );
    assert!(open_url("data:text/plain,hello").is_err());
}
