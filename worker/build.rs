//! Finds `../shared/fixtures` for the Wasm tests that embed fixture blocks
//! (and the optional large profile of the Wasm flamegraph benchmark).
//! Present: sets `cfg(shared_fixtures)` and `EMBERLENS_FIXTURES`. Missing: a
//! visible warning (the tests that need them are left out), except under
//! `CI=true`, where a missing `../shared` fails the build.

use std::path::PathBuf;

fn main() {
    large_pprof();
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

/// The Wasm flamegraph benchmark (`tests/flame_bench.rs`) embeds the large
/// generated profile named by `EMBERLENS_LARGE_PPROF`; without it that
/// benchmark is left out.
fn large_pprof() {
    println!("cargo::rustc-check-cfg=cfg(large_pprof)");
    println!("cargo::rerun-if-env-changed=EMBERLENS_LARGE_PPROF");
    if let Ok(path) = std::env::var("EMBERLENS_LARGE_PPROF")
        && std::path::Path::new(&path).is_file()
    {
        println!("cargo::rerun-if-changed={path}");
        println!("cargo::rustc-cfg=large_pprof");
        println!("cargo::rustc-env=EMBERLENS_LARGE_PPROF_FILE={path}");
    }
}
