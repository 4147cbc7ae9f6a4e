//! Running several promqltest files with a known-failures list: what
//! `emberlens promqltest FILE...` prints and what the cargo test checks.
//!
//! The known-failures list is text, one case per line:
//! `<file name>:<eval line>  <reason>` (blank lines and `#` comments
//! ignored). The run is green when every failing case is listed and every
//! listed case still fails — so the list can only shrink: a case that starts
//! passing must be removed from it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::runner::{EvalFailure, run_script};
use super::script::parse_script;

/// One file's outcome.
#[derive(Clone, Debug)]
pub struct FileOutcome {
    /// File name (no directory).
    pub name: String,
    /// Evals run.
    pub evals: usize,
    /// Failed evals.
    pub failures: Vec<EvalFailure>,
    /// A script that did not parse (then nothing ran).
    pub script_error: Option<String>,
}

/// Everything a run found, against the known-failures list.
#[derive(Clone, Debug, Default)]
pub struct SuiteOutcome {
    /// Per file, in the order given.
    pub files: Vec<FileOutcome>,
    /// Failures not in the known list: `file:line`.
    pub unexpected_failures: Vec<String>,
    /// Known failures that passed: `file:line`.
    pub unexpected_passes: Vec<String>,
}

impl SuiteOutcome {
    /// Passed evals.
    pub fn passed(&self) -> usize {
        self.files.iter().map(|f| f.evals - f.failures.len()).sum()
    }

    /// Failed evals.
    pub fn failed(&self) -> usize {
        self.files.iter().map(|f| f.failures.len()).sum()
    }

    /// Whether the run matches the known-failures list exactly and every
    /// script parsed.
    pub fn ok(&self) -> bool {
        self.unexpected_failures.is_empty()
            && self.unexpected_passes.is_empty()
            && self.files.iter().all(|f| f.script_error.is_none())
    }

    /// The table: one row per file, then unexpected cases, then
    /// `N passed, M failed` as the last line.
    pub fn render(&self, verbose: bool) -> String {
        let mut s = String::new();
        let w = self
            .files
            .iter()
            .map(|f| f.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            s,
            "{:w$}  {:>6}  {:>6}  {:>6}",
            "FILE", "EVALS", "PASSED", "FAILED"
        );
        for f in &self.files {
            match &f.script_error {
                Some(e) => {
                    let _ = writeln!(s, "{:w$}  script error: {e}", f.name);
                }
                None => {
                    let _ = writeln!(
                        s,
                        "{:w$}  {:>6}  {:>6}  {:>6}",
                        f.name,
                        f.evals,
                        f.evals - f.failures.len(),
                        f.failures.len()
                    );
                }
            }
            if verbose {
                for x in &f.failures {
                    let _ = writeln!(s, "  {}:{}: {}\n      {}", f.name, x.line, x.expr, x.reason);
                }
            }
        }
        for u in &self.unexpected_failures {
            let _ = writeln!(s, "FAILED (not a known failure): {u}");
        }
        for u in &self.unexpected_passes {
            let _ = writeln!(
                s,
                "PASSED (listed as a known failure; remove it from the list): {u}"
            );
        }
        let _ = write!(s, "{} passed, {} failed", self.passed(), self.failed());
        s
    }
}

/// Parses a known-failures list into `file:line` keys.
pub fn parse_known(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The known-failures lines for the failures of `outcome`, with reasons
/// (for regenerating the list).
pub fn known_lines(outcome: &SuiteOutcome) -> String {
    let mut s = String::new();
    for f in &outcome.files {
        for x in &f.failures {
            let reason: String = x.reason.chars().take(140).collect();
            let _ = writeln!(s, "{}:{}  {}", f.name, x.line, reason.replace('\n', " "));
        }
    }
    s
}

/// Runs `(name, text)` files against the known list.
pub fn run_suite(files: &[(String, String)], known: &BTreeSet<String>) -> SuiteOutcome {
    let mut out = SuiteOutcome::default();
    let mut failed_keys: BTreeMap<String, ()> = BTreeMap::new();
    let names: BTreeSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for (name, text) in files {
        let fo = match parse_script(text) {
            Ok(script) => {
                let r = run_script(&script);
                FileOutcome {
                    name: name.clone(),
                    evals: r.evals,
                    failures: r.failures,
                    script_error: None,
                }
            }
            Err(e) => FileOutcome {
                name: name.clone(),
                evals: 0,
                failures: Vec::new(),
                script_error: Some(e.to_string()),
            },
        };
        for x in &fo.failures {
            let k = format!("{}:{}", fo.name, x.line);
            if !known.contains(&k) {
                out.unexpected_failures.push(k.clone());
            }
            failed_keys.insert(k, ());
        }
        out.files.push(fo);
    }
    for k in known {
        let file = k.rsplit_once(':').map(|(f, _)| f).unwrap_or(k);
        if names.contains(file) && !failed_keys.contains_key(k) {
            out.unexpected_passes.push(k.clone());
        }
    }
    out
}
