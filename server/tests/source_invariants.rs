//! Rules about the source tree that no linter checks.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if !matches!(
                name.as_str(),
                "target" | "node_modules" | "dist" | ".git" | "corpus" | "artifacts"
            ) {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn every_module_starts_with_a_doc_comment() {
    let root = repo_root();
    let mut files = Vec::new();
    for dir in ["app", "worker", "server", "fuzz"] {
        if root.join(dir).is_dir() {
            rust_files(&root.join(dir), &mut files);
        }
    }
    assert!(
        files.len() > 10,
        "found only {} Rust files under {}",
        files.len(),
        root.display()
    );
    let undocumented: Vec<String> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!"))
        .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(
        undocumented.is_empty(),
        "modules without a leading `//!` doc: {undocumented:?}"
    );
}

#[test]
fn workspace_members_are_listed_by_name() {
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    assert!(
        !manifest.contains("\"worker/*\""),
        "a glob would also match worker/src"
    );
    // Every crate on disk (but the fuzz crate, which has its own workspace) is a member.
    let root = repo_root();
    let mut crates = vec![
        "app".to_string(),
        "server".to_string(),
        "worker".to_string(),
    ];
    for e in std::fs::read_dir(root.join("worker")).unwrap() {
        let p = e.unwrap().path();
        if p.join("Cargo.toml").is_file() {
            crates.push(format!(
                "worker/{}",
                p.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    for crate_dir in crates {
        assert!(
            manifest.contains(&format!("\"{crate_dir}\"")),
            "{crate_dir} is not a listed member"
        );
    }
}
