//! Shared by the integration tests: the skip policy for things outside the
//! repository (skip visibly on a user's clone, fail under `CI=true`).
#![allow(dead_code)] // each test binary uses a subset

use std::path::PathBuf;

/// `../shared/<sub>` next to the checkout, or `None` with a SKIPPED line.
pub fn shared_dir(sub: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(sub);
    if dir.is_dir() {
        return Some(dir);
    }
    skip(&format!("{} (../shared) not found", dir.display()));
    None
}

/// A program on PATH, or `None` with a SKIPPED line.
pub fn program(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        skip(&format!("`{name}` not on PATH (Debian package prometheus)"));
    }
    found
}

fn skip(what: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {what}"
    );
    eprintln!("SKIPPED: {what}");
}
