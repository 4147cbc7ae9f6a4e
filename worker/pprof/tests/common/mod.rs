//! Shared by the pprof crate's tests.
use std::path::PathBuf;

/// `../shared/fixtures/pprof` (or under `EMBERLENS_SHARED`), if present;
/// missing, the caller's `what` is skipped with a visible message, except
/// under `CI=true`, where it is a failure.
pub fn pprof_fixtures(what: &str) -> Option<PathBuf> {
    let shared = std::env::var_os("EMBERLENS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let dir = shared.join("fixtures/pprof");
    if dir.is_dir() {
        return Some(dir);
    }
    let msg = format!("{} not found: {what} do not run", dir.display());
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true: {msg}"
    );
    eprintln!("SKIPPED: {msg}");
    None
}
