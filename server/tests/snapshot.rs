//! Snapshots through the HTTP API: created from scraped data, downloaded as a
//! tar, unpacked, and read by promtool and Debian's Prometheus.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::{Oracle, TempDir, normalized_data, program, promtool_tsdb, shared_fixtures};
use emberlens_server::{ServeOptions, serve};
use serde_json::Value;

use common::fake_target;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_tar_opens_in_promtool_and_prometheus() {
    let target = fake_target(
        "# TYPE widgets_total counter\nwidgets_total{kind=\"a\"} 3\nwidgets_total{kind=\"b\"} 4\n",
    )
    .await;
    let data = TempDir::new("snap-data");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = serve(
        listener,
        ServeOptions {
            data_dir: data.0.clone(),
            ui_dir: "does-not-exist".into(),
            scrape_interval: Duration::from_millis(200),
            extra_targets: vec![("widgets".into(), target)],
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", running.addr);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let client = reqwest::Client::new();

    let resp = client
        .post(format!("{base}/api/v1/admin/tsdb/snapshot"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "success");
    let name = body["data"]["name"].as_str().unwrap().to_string();
    assert!(emberlens_server::snapshot::valid_name(&name), "{name}");
    assert!(data.0.join("snapshots").join(&name).is_dir());

    let resp = client
        .get(format!("{base}/api/v1/snapshots/{name}.tar"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-tar");
    let bytes = resp.bytes().await.unwrap();
    let unpacked = TempDir::new("snap-unpacked");
    tar::Archive::new(&bytes[..]).unpack(&unpacked.0).unwrap();
    assert!(unpacked.0.join("profiles").is_dir());
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(unpacked.0.join("emberlens.json")).unwrap()).unwrap();
    assert_eq!(manifest["name"], name.as_str());
    let blocks = manifest["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 1, "{manifest}");
    let ulid = blocks[0]["ulid"].as_str().unwrap();
    assert!(unpacked.0.join(ulid).join("meta.json").is_file());

    // Names that are not snapshot names are refused, whatever they hold.
    for bad in [
        "..%2F..%2Fetc%2Fpasswd.tar",
        "x.tar",
        "20171210T211224Z-2be6",
    ] {
        let resp = client
            .get(format!("{base}/api/v1/snapshots/{bad}"))
            .send()
            .await
            .unwrap();
        assert!(
            resp.status() == 400 || resp.status() == 404,
            "{bad}: {}",
            resp.status()
        );
    }
    let resp = client
        .get(format!("{base}/api/v1/snapshots/20171210T211224Z-2be6.tar"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // The same answer from us and from Prometheus over the snapshot.
    let (Some(fx), Some(promtool)) = (shared_fixtures(), program("promtool")) else {
        return;
    };
    let analyze = promtool_tsdb(&promtool, &["analyze"], &unpacked.0);
    assert!(analyze.contains(&format!("Block ID: {ulid}")), "{analyze}");
    let max_ms = blocks[0]["maxTime"].as_i64().unwrap() - 1;
    let time = format!("{:.3}", max_ms as f64 / 1000.0);
    let query = "sum by (kind) (widgets_total) * on () group_left count(up)";
    let ours: Value = client
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", query), ("time", time.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let oracle = Oracle::start(&fx, &unpacked.0);
    let theirs = oracle.query(
        "/api/v1/query",
        &serde_json::json!({"query": query, "time": time}),
    );
    assert_eq!(normalized_data(&ours), normalized_data(&theirs));
    assert_eq!(ours["data"]["result"].as_array().unwrap().len(), 2);
}
