//! Parses the 21 upstream promqltest files in `../shared/promql-testdata`
//! (next to the checkout, not in the repository; see that folder's README
//! for provenance) and checks the totals that README states: how many
//! `eval`s of each kind, `load`s, and `expect` lines of each kind. Also checks
//! that every `eval`'s `expr_column` points at its expression in the file.
//!
//! Without `../shared` the test prints a SKIPPED line and passes, as the
//! other fixture-based tests do; with `CI=true` a missing folder fails it.
// Native test code: reading the fixture files is the point.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use emberlens_promql::promqltest::script::{
    Command, EvalQuery, ExpectKind, ExpectedResult, parse_script,
};

#[derive(Default, Debug, PartialEq)]
struct Totals {
    files: usize,
    evals: usize,
    instant: usize,
    range: usize,
    loads: usize,
    loads_with_nhcb: usize,
    expect_range_vector: usize,
    expect_string: usize,
    expects: BTreeMap<String, usize>,
}

#[test]
fn upstream_corpus_parses_with_the_stated_totals() {
    let Some(dir) = common::testdata_dir("the promqltest corpus is not parsed") else {
        return;
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    paths.sort();
    let mut t = Totals::default();
    let mut failures = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let script = match parse_script(&text) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        t.files += 1;
        let raw_lines: Vec<&str> = text.split('\n').collect();
        for cmd in &script.commands {
            match cmd {
                Command::Load(l) => {
                    t.loads += 1;
                    t.loads_with_nhcb += usize::from(l.with_nhcb);
                }
                Command::Clear { .. } => {}
                Command::Eval(e) => {
                    t.evals += 1;
                    match e.query {
                        EvalQuery::Instant { .. } => t.instant += 1,
                        EvalQuery::Range { .. } => t.range += 1,
                    }
                    match e.result {
                        ExpectedResult::RangeVector { .. } => t.expect_range_vector += 1,
                        ExpectedResult::String(_) => t.expect_string += 1,
                        _ => {}
                    }
                    for x in &e.expects {
                        *t.expects.entry(format!("{:?}", x.kind)).or_default() += 1;
                    }
                    let raw = raw_lines[e.line - 1];
                    assert!(
                        raw.get(e.expr_column - 1..)
                            .is_some_and(|s| s.starts_with(&e.expr)),
                        "{name}:{}: column {} does not point at {:?} in {raw:?}",
                        e.line,
                        e.expr_column,
                        e.expr
                    );
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let kinds = |pairs: &[(ExpectKind, usize)]| {
        pairs
            .iter()
            .map(|(k, n)| (format!("{k:?}"), *n))
            .collect::<BTreeMap<_, _>>()
    };
    // README of ../shared/promql-testdata: 2,214 evals (1,885 instant, 329
    // range), 310 loads of which 33 load_with_nhcb; 35 expected failures
    // (32 `expect fail` and 3 `eval_fail`); 132 info, 149 no_info, 265
    // no_warn, 90 warn, 24 ordered; 5 range-vector and 5 string results.
    assert_eq!(
        t,
        Totals {
            files: 21,
            evals: 2214,
            instant: 1885,
            range: 329,
            loads: 310,
            loads_with_nhcb: 33,
            expect_range_vector: 5,
            expect_string: 5,
            expects: kinds(&[
                (ExpectKind::Fail, 35),
                (ExpectKind::Info, 132),
                (ExpectKind::NoInfo, 149),
                (ExpectKind::NoWarn, 265),
                (ExpectKind::Warn, 90),
                (ExpectKind::Ordered, 24),
            ]),
        }
    );
}
