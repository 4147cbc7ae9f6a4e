//! Writes the tests' synthetic profile (for looking at it with `go tool pprof`).
#![allow(clippy::disallowed_methods, clippy::unwrap_used, missing_docs)]
#[path = "../tests/common/mod.rs"]
mod common;
fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "synthetic.pb.gz".into());
    std::fs::write(
        &out,
        emberlens_pprof::encode_gzip(&common::synthetic_profile()),
    )
    .unwrap();
}
