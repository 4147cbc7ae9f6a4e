//! Shared by the corpus tests: where the upstream promqltest files are.

use std::path::PathBuf;

/// `../shared/promql-testdata` next to the checkout, or `None` with a
/// visible SKIPPED line (`what` says what does not run); with `CI=true` a
/// missing folder fails the test instead.
pub fn testdata_dir(what: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/promql-testdata");
    if dir.is_dir() {
        return Some(dir);
    }
    let msg = format!(
        "skipping: ../shared not found (no {}); {what}",
        dir.display()
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true: {msg}"
    );
    eprintln!("SKIPPED {msg}");
    None
}
