//! Helpers shared by the integration tests: where the shared fixtures are, and
//! the skip policy (skip visibly on a user's clone, fail under `CI=true`).
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses a subset

use std::path::PathBuf;

/// `../shared/fixtures` next to the repository, if present. Without it the
/// test is skipped with a message, except under `CI=true`, where it fails.
pub fn shared_fixtures() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures");
    if root.is_dir() {
        return Some(root.canonicalize().unwrap());
    }
    require_or_skip(&format!("{} (the shared fixtures)", root.display()));
    None
}

/// A program on PATH, under the same skip policy.
pub fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        require_or_skip(&format!(
            "`{name}` on PATH (Debian package; tools/setup.sh installs it)"
        ));
    }
    found
}

fn require_or_skip(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but {what} is missing");
    }
    eprintln!("SKIPPED: {what} not found");
}

/// A fresh temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p =
            std::env::temp_dir().join(format!("emberlens-{tag}-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies a directory tree (files and directories only), making it writable.
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
            let mut perm = std::fs::metadata(&dst).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&dst, perm).unwrap();
        }
    }
}
