//! The real server, in-process on loopback, scraping itself and fake targets.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use emberlens_server::{ServeOptions, serve};
use serde_json::Value;

/// Serves `body` at `/metrics` on a free loopback port; returns the URL.
async fn fake_target(body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/metrics", get(move || async move { body }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/metrics")
}

async fn raw(base: &str, selector: &str) -> Value {
    let url = format!("{base}/api/v1/raw");
    let resp = reqwest::Client::new()
        .get(url)
        .query(&[("match[]", selector), ("start", "0")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// `(instance-or-job, last value)` of every `up` series.
fn up_by_job(v: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let last = s["values"].as_array().unwrap().last().unwrap();
            (
                s["metric"]["job"].as_str().unwrap().to_string(),
                last[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_target_is_down_and_the_server_keeps_running() {
    let good = fake_target(
        "# TYPE widgets_total counter\nwidgets_total{kind=\"a\"} 3\nwidgets_total{kind=\"b\"} 4\n",
    )
    .await;
    let garbage = fake_target("<html><body>this is not metrics</body></html>\n").await;
    let data = std::env::temp_dir().join(format!("emberlens-test-{}", std::process::id()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = serve(
        listener,
        ServeOptions {
            data_dir: data.clone(),
            ui_dir: "does-not-exist".into(),
            scrape_interval: Duration::from_millis(200),
            extra_targets: vec![("good".into(), good), ("garbage".into(), garbage)],
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", running.addr);

    // Several scrape rounds, so "keeps running" means more than one scrape.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let up = raw(&base, "up").await;
    assert_eq!(
        up_by_job(&up),
        [
            ("emberlens".into(), "1".into()),
            ("garbage".into(), "0".into()),
            ("good".into(), "1".into())
        ]
    );
    let garbage_ups = up["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metric"]["job"] == "garbage")
        .unwrap()["values"]
        .as_array()
        .unwrap()
        .len();
    assert!(
        garbage_ups >= 3,
        "the garbage target was scraped {garbage_ups} times"
    );

    // The error names line and column.
    let instance = up_by_port(&up, "garbage");
    let report = running
        .health
        .read()
        .unwrap()
        .iter()
        .find(|(url, _)| url.contains(&instance))
        .map(|(_, (_, report))| report.clone())
        .unwrap();
    assert!(!report.up);
    let err = report.error.unwrap();
    assert_eq!(
        err,
        "parsing the exposition: line 1, column 1: expected a metric name, found '<'"
    );

    // The good target's samples carry the target labels.
    let widgets = raw(&base, "widgets_total").await;
    let names: Vec<String> = widgets["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}/{}",
                s["metric"]["kind"].as_str().unwrap(),
                s["metric"]["job"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names, ["a/good", "b/good"]);

    // The server still answers, and counted the requests it served.
    let health_page = reqwest::get(format!("{base}/-/healthy")).await.unwrap();
    assert_eq!(health_page.status(), 200);
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"emberlens_http_requests_total{path="/api/v1/raw",status="200"} 2"#),
        "{metrics}"
    );
    assert!(metrics.contains("emberlens_scrape_duration_seconds_count{job=\"garbage\"}"));

    // The app placeholder is served when no build exists.
    let page = reqwest::get(format!("{base}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("the app is not built"));
    let _ = std::fs::remove_dir_all(data);
}

/// The `instance` label (host:port) of the `up` series of `job`.
fn up_by_port(up: &Value, job: &str) -> String {
    up["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metric"]["job"] == job)
        .unwrap()["metric"]["instance"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn raw_endpoint_errors_have_prometheus_shape() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let data = std::env::temp_dir().join(format!("emberlens-test-err-{}", std::process::id()));
    let running = serve(
        listener,
        ServeOptions {
            data_dir: data.clone(),
            ui_dir: "none".into(),
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap();
    let resp = reqwest::get(format!("http://{}/api/v1/raw?match[]=up{{", running.addr))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorType"], "bad_data");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("bad series selector at 3")
    );
    let _ = std::fs::remove_dir_all(data);
}

/// The app's files carry COOP and COEP (the page may then share memory with
/// its worker), the API does not need them; `cross_origin_isolation: false`
/// leaves them out.
#[tokio::test]
async fn the_app_is_served_cross_origin_isolated_unless_turned_off() {
    let dir = std::env::temp_dir().join(format!("emberlens-test-coi-{}", std::process::id()));
    let ui = dir.join("ui");
    std::fs::create_dir_all(&ui).unwrap();
    std::fs::write(ui.join("index.html"), "<!doctype html><title>app</title>").unwrap();
    std::fs::write(ui.join("emberlens-worker_loader.js"), "// worker").unwrap();
    for isolate in [true, false] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = serve(
            listener,
            ServeOptions {
                data_dir: dir.join(format!("data-{isolate}")),
                ui_dir: ui.clone(),
                scrape_interval: Duration::from_secs(3600),
                cross_origin_isolation: isolate,
                ..ServeOptions::default()
            },
        )
        .await
        .unwrap();
        let base = format!("http://{}", running.addr);
        for path in ["/", "/emberlens-worker_loader.js"] {
            let resp = reqwest::get(format!("{base}{path}")).await.unwrap();
            assert_eq!(resp.status(), 200, "{path}");
            let h = resp.headers();
            let (coop, coep) = (
                h.get("cross-origin-opener-policy"),
                h.get("cross-origin-embedder-policy"),
            );
            if isolate {
                assert_eq!(coop.unwrap(), "same-origin", "{path}");
                assert_eq!(coep.unwrap(), "require-corp", "{path}");
            } else {
                assert!(coop.is_none() && coep.is_none(), "{path}: {h:?}");
            }
        }
        let api = reqwest::get(format!("{base}/-/healthy")).await.unwrap();
        assert!(api.headers().get("cross-origin-embedder-policy").is_none());
        running.server.abort();
    }
    let _ = std::fs::remove_dir_all(dir);
}
