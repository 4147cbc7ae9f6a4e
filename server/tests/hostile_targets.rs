//! Hostile targets: one server scrapes a healthy target and five hostile
//! ones side by side — binary junk, an HTML page, a 100 MB body over a
//! 10 MB `body_size_limit`, a target that accepts the connection and never
//! answers, and one that drips a few bytes every 200 ms for longer than the
//! scrape timeout. Each hostile target must be `up` 0 with the reason in
//! `/api/v1/targets` `lastError`, keep being scraped, and the healthy target
//! (1 s interval) must meanwhile be scraped on time and fast.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::get;
use emberlens_server::{ServeOptions, serve};
use futures_util::stream;
use serde_json::Value;

mod common;

/// Bytes the `/huge` body streams (100 MiB in 1 MiB chunks).
const HUGE_BYTES: usize = 100 << 20;
const CHUNK_BYTES: usize = 1 << 20;
/// How long the check window of `count_over_time` is, in seconds.
const WINDOW_SECS: u64 = 10;

/// A valid exposition that grows to 100 MiB, one shared 1 MiB chunk repeated,
/// so the test server never holds more than one chunk.
fn huge_body() -> Body {
    let line = "huge_metric{pad=\"0123456789abcdef0123456789abcdef\"} 1\n";
    let mut chunk = line.repeat(CHUNK_BYTES / line.len() + 1).into_bytes();
    chunk.truncate(CHUNK_BYTES - CHUNK_BYTES % line.len());
    let chunk = Bytes::from(chunk);
    let n = HUGE_BYTES / chunk.len() + 1;
    Body::from_stream(stream::iter(
        (0..n).map(move |_| Ok::<_, Infallible>(chunk.clone())),
    ))
}

/// A valid exposition sent a few bytes every 200 ms: 10 s in all, far
/// longer than the scrape timeout.
fn drip_body() -> Body {
    let text: &'static [u8] =
        b"drip_metric{a=\"b\"} 1\ndrip_metric{a=\"c\"} 2\ndrip_metric{a=\"d\"} 3\n";
    Body::from_stream(stream::unfold(0usize, move |at| async move {
        if at >= 50 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let from = (at * 4) % text.len();
        let to = (from + 4).min(text.len());
        Some((
            Ok::<_, Infallible>(Bytes::from_static(&text[from..to])),
            at + 1,
        ))
    }))
}

/// The fake targets on one loopback port: `/good`, `/binary`, `/html`,
/// `/huge`, `/drip`. Returns `host:port`.
async fn hostile_exporter() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route(
            "/good",
            get(|| async { "# TYPE good_total counter\ngood_total{kind=\"a\"} 1\ngood_gauge 2\n" }),
        )
        .route(
            "/binary",
            get(|| async {
                let junk: Vec<u8> = (0u32..4096)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                    .collect();
                ([("content-type", "application/octet-stream")], junk)
            }),
        )
        .route(
            "/html",
            get(|| async {
                (
                    [("content-type", "text/html")],
                    "<!DOCTYPE html>\n<html><head><title>Login</title></head>\n<body><p>Please sign in</p></body></html>\n",
                )
            }),
        )
        .route("/huge", get(|| async { huge_body() }))
        .route("/drip", get(|| async { drip_body() }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr.to_string()
}

/// A target that accepts connections, never reads the request and never
/// answers; the sockets stay open until the test ends. Returns `host:port`.
async fn silent_target() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    addr.to_string()
}

async fn get_json(url: String) -> Value {
    let resp = reqwest::get(url).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// `job → value` of an instant query whose series have a `job` label.
async fn by_job(base: &str, q: &str) -> std::collections::BTreeMap<String, f64> {
    let v = get_json(format!(
        "{base}/api/v1/query?query={}",
        form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
    ))
    .await;
    assert_eq!(v["status"], "success", "{q}: {v}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let job = s["metric"]["job"].as_str().unwrap().to_string();
            let value: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
            (job, value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_targets_fail_alone_and_the_healthy_one_keeps_its_interval() {
    let (web, silent) = (hostile_exporter().await, silent_target().await);
    let dir = common::TempDir::new("hostile");
    let config = dir.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            r#"
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: good
    metrics_path: /good
    static_configs: [{{targets: ["{web}"]}}]
  - job_name: binary
    metrics_path: /binary
    static_configs: [{{targets: ["{web}"]}}]
  - job_name: html
    metrics_path: /html
    static_configs: [{{targets: ["{web}"]}}]
  - job_name: huge
    metrics_path: /huge
    body_size_limit: 10MB
    static_configs: [{{targets: ["{web}"]}}]
  - job_name: silent
    static_configs: [{{targets: ["{silent}"]}}]
  - job_name: drip
    metrics_path: /drip
    static_configs: [{{targets: ["{web}"]}}]
"#
        ),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = serve(
        listener,
        ServeOptions {
            data_dir: dir.0.join("data"),
            ui_dir: "does-not-exist".into(),
            config_file: Some(config),
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", running.addr);

    // Wait until every target has an `up` sample (the first scrapes are
    // spread over the first interval; the slow ones end at their timeout),
    // then let the window fill.
    let deadline = Instant::now() + Duration::from_secs(10);
    while by_job(&base, "up").await.len() < 6 {
        assert!(Instant::now() < deadline, "not every target was scraped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(WINDOW_SECS + 1)).await;

    let up = by_job(&base, "up").await;
    let expected: std::collections::BTreeMap<String, f64> = [
        ("binary", 0.0),
        ("drip", 0.0),
        ("good", 1.0),
        ("html", 0.0),
        ("huge", 0.0),
        ("silent", 0.0),
    ]
    .into_iter()
    .map(|(j, v)| (j.to_string(), v))
    .collect();
    assert_eq!(up, expected);

    // The healthy target was scraped once a second throughout, each scrape fast.
    let window = format!("[{WINDOW_SECS}s]");
    let count = by_job(
        &base,
        &format!("count_over_time(up{{job=\"good\"}}{window})"),
    )
    .await;
    let good = count["good"];
    assert!(
        (good - WINDOW_SECS as f64).abs() <= 1.0,
        "good was scraped {good} times in {WINDOW_SECS}s"
    );
    assert_eq!(
        by_job(&base, &format!("min_over_time(up{{job=\"good\"}}{window})")).await["good"],
        1.0
    );
    let slowest = by_job(
        &base,
        &format!("max_over_time(scrape_duration_seconds{{job=\"good\"}}{window})"),
    )
    .await["good"];
    assert!(slowest < 0.5, "a scrape of good took {slowest}s");

    // The hostile targets were scraped again and again, not stuck on one
    // scrape: a scrape ends at the 1 s timeout, the next follows on the tick.
    let counts = by_job(&base, &format!("count_over_time(up{window})")).await;
    for (job, n) in &counts {
        assert!(*n >= (WINDOW_SECS / 2) as f64, "{job} scraped {n} times");
    }
    // The timeout cut the silent and the dripping scrapes off at 1 s.
    let slow = by_job(
        &base,
        &format!("max_over_time(scrape_duration_seconds{{job=~\"silent|drip\"}}{window})"),
    )
    .await;
    for (job, secs) in &slow {
        assert!((1.0..1.5).contains(secs), "a scrape of {job} took {secs}s");
    }
    assert_eq!(slow.len(), 2);
    // Nothing from a failed body was stored.
    for metric in ["huge_metric", "drip_metric"] {
        assert!(by_job(&base, metric).await.is_empty(), "{metric} stored");
    }

    // The reasons, in /api/v1/targets.
    let targets = get_json(format!("{base}/api/v1/targets")).await;
    let active = targets["data"]["activeTargets"].as_array().unwrap();
    let last_error = |job: &str| {
        let t = active.iter().find(|t| t["scrapePool"] == job).unwrap();
        let e = t["lastError"].as_str().unwrap().to_string();
        assert_eq!(
            t["health"],
            if e.is_empty() { "up" } else { "down" },
            "{job}"
        );
        e
    };
    assert_eq!(last_error("good"), "");
    let binary = last_error("binary");
    assert!(binary.starts_with("body is not UTF-8"), "{binary}");
    let html = last_error("html");
    assert!(html.starts_with("parsing the exposition"), "{html}");
    assert_eq!(
        last_error("huge"),
        "body size limit exceeded (10485760 bytes)"
    );
    assert_eq!(last_error("silent"), "timed out after 1s");
    assert_eq!(last_error("drip"), "timed out after 1s");
    running.server.abort();
}
