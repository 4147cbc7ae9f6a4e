//! The embedded default configuration profiles Emberlens itself: with no
//! `--config.file`, the server scrapes its own `/debug/pprof/profile` and
//! stores CPU profiles labelled `job="emberlens"`.
//!
//! A test binary of its own: the CPU profiler is process-wide, so this must
//! not share a process with tests that request profiles themselves.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use common::TempDir;
use emberlens_server::{ServeOptions, serve};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_config_stores_its_own_cpu_profiles() {
    let data = TempDir::new("selfscrape");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = serve(
        listener,
        ServeOptions {
            data_dir: data.0.clone(),
            ui_dir: "none".into(),
            // The shortest interval with a delta profile: 1 s of CPU every 2 s.
            scrape_interval: Duration::from_secs(2),
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", running.addr);
    let config: Value = reqwest::get(format!("{base}/api/v1/status/config"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let yaml = config["data"]["yaml"].as_str().unwrap();
    assert!(yaml.contains("delta_profiling_duration: 1s"), "{yaml}");

    let selector: String =
        form_urlencoded::byte_serialize(b"{__name__=\"process_cpu\",job=\"emberlens\"}").collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    let listed = loop {
        let v: Value = reqwest::get(format!("{base}/api/v1/profiles?match[]={selector}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let data = v["data"].as_array().unwrap().clone();
        if !data.is_empty() {
            break data;
        }
        assert!(Instant::now() < deadline, "no self profile within 15 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let p = &listed[0];
    assert_eq!(p["labels"]["instance"], running.addr.to_string());
    assert_eq!(
        p["sampleTypes"],
        serde_json::json!(["samples/count", "cpu/nanoseconds"])
    );
    let id = p["id"].as_str().unwrap();
    let body = reqwest::get(format!("{base}/api/v1/profiles/{id}"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let profile = emberlens_pprof::decode(&body).unwrap();
    assert!(
        profile.duration_nanos >= 900_000_000,
        "a 1 s profile: {}",
        profile.duration_nanos
    );
}
