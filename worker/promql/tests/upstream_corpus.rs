//! The upstream PromQL test files (`../shared/promql-testdata`, not copied
//! into the repository) run through our runner with the Go harness's extra
//! checks, against `known_failures.txt` next to this file: the test fails
//! when a case not on the list fails, or when a listed case passes (remove
//! it from the list: the list only shrinks).
//!
//! `EMBERLENS_WRITE_KNOWN_FAILURES=1 cargo test -p emberlens-promql --test
//! upstream_corpus` rewrites the list from the current failures.
//!
//! Without `../shared` the test prints a SKIPPED line and passes; with
//! `CI=true` a missing folder fails it.
// Native test code: reading the fixture files is the point.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use emberlens_promql::promqltest::suite::{known_lines, parse_known, run_suite};

#[test]
fn upstream_promql_tests_match_the_known_failures_list() {
    let Some(dir) = common::testdata_dir("the upstream PromQL tests do not run") else {
        return;
    };
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 21, "the corpus has 21 files");
    let known_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/known_failures.txt");
    let known_text = std::fs::read_to_string(&known_path).unwrap_or_default();
    let outcome = run_suite(&files, &parse_known(&known_text));
    if std::env::var("EMBERLENS_WRITE_KNOWN_FAILURES").is_ok() {
        let header = "# Upstream promqltest cases that fail today: `<file>:<eval line>  <why>`.\n\
# The test fails when an unlisted case fails or a listed one passes; the list only shrinks.\n";
        std::fs::write(&known_path, format!("{header}{}", known_lines(&outcome))).unwrap();
    }
    println!("{}", outcome.render(false));
    assert_eq!(
        outcome.passed() + outcome.failed(),
        2214,
        "every eval of the corpus runs"
    );
    assert!(outcome.ok(), "{}", outcome.render(false));
}
