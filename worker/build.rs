//! Finds `../shared/fixtures` for the Wasm tests that embed fixture blocks.
//! Present: sets `cfg(shared_fixtures)` and `EMBERLENS_FIXTURES`. Missing: a
//! visible warning (the tests that need them are left out), except under
//! `CI=true`, where a missing `../shared` fails the build.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(shared_fixtures)");
    println!("cargo::rerun-if-env-changed=CI");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let fixtures = manifest.join("../../shared/fixtures");
    println!("cargo::rerun-if-changed={}", fixtures.display());
    if fixtures.join("tsdb/synthetic-6h/data").is_dir() {
        println!("cargo::rustc-cfg=shared_fixtures");
        println!("cargo::rustc-env=EMBERLENS_FIXTURES={}", fixtures.display());
    } else if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but {} is missing", fixtures.display());
    } else {
        println!(
            "cargo::warning=SKIPPED: {} not found; Wasm tests on the fixture blocks are left out",
            fixtures.display()
        );
    }
}
