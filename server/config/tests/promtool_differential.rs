//! Differential test: every file under `tests/configs/valid` is accepted and
//! every file under `tests/configs/invalid` refused, by `Config::parse` and
//! by Debian's `promtool check config` alike (promtool skipped visibly when
//! absent, required under `CI=true`).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use emberlens_config::Config;

fn configs(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no configs in {}", dir.display());
    files
}

#[test]
fn our_parser_accepts_valid_and_refuses_invalid() {
    for f in configs("valid") {
        let text = std::fs::read_to_string(&f).unwrap();
        if let Err(e) = Config::parse(&text) {
            panic!("{} refused: {e}", f.display());
        }
    }
    for f in configs("invalid") {
        let text = std::fs::read_to_string(&f).unwrap();
        match Config::parse(&text) {
            Ok(_) => panic!("{} accepted", f.display()),
            Err(e) => eprintln!("{}: {e}", f.file_name().unwrap().to_string_lossy()),
        }
    }
}

#[test]
fn promtool_agrees() {
    let Some(promtool) = common::program("promtool") else {
        return;
    };
    // promtool resolves relative paths (rule files, file-SD globs) against the file's directory.
    let mut disagreements = Vec::new();
    for (kind, want_ok) in [("valid", true), ("invalid", false)] {
        for f in configs(kind) {
            let out = Command::new(&promtool)
                .args(["check", "config"])
                .arg(&f)
                .output()
                .unwrap();
            if out.status.success() != want_ok {
                disagreements.push(format!(
                    "{}: promtool {} it: {}",
                    f.display(),
                    if out.status.success() {
                        "accepts"
                    } else {
                        "refuses"
                    },
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
