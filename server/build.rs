//! Records the Rust compiler's version for `/api/v1/status/buildinfo`
//! (its `goVersion` field), so the answer names the toolchain honestly.

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| "rust".to_string());
    println!("cargo:rustc-env=EMBERLENS_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-env-changed=RUSTC");
    for var in [
        "EMBERLENS_REVISION",
        "EMBERLENS_BRANCH",
        "EMBERLENS_BUILD_USER",
        "EMBERLENS_BUILD_DATE",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
