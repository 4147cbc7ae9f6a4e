//! Emberlens and Debian's Prometheus scrape the same fake targets with the
//! same prometheus.yml for the same seconds; the same queries over both give
//! the same series, and the same values where they don't depend on when each
//! scraped.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::{TempDir, program};
use emberlens_server::{ServeOptions, serve};
use serde_json::Value;

/// An exporter whose counter follows the wall clock (so both scrapers see
/// the same rate) and whose other series are constant.
async fn exporter(name: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/metrics",
        get(move || async move {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            format!(
                "# HELP http_requests_total Requests.\n\
                 # TYPE http_requests_total counter\n\
                 http_requests_total{{code=\"200\",method=\"get\"}} {c200}\n\
                 http_requests_total{{code=\"500\",method=\"get\"}} {c500}\n\
                 # TYPE room_temperature_celsius gauge\n\
                 room_temperature_celsius{{room=\"{name}\"}} 21.5\n\
                 # TYPE latency_seconds histogram\n\
                 latency_seconds_bucket{{le=\"0.1\"}} 3\n\
                 latency_seconds_bucket{{le=\"1\"}} 7\n\
                 latency_seconds_bucket{{le=\"+Inf\"}} 9\n\
                 latency_seconds_sum 4.25\n\
                 latency_seconds_count 9\n\
                 # TYPE rpc_seconds summary\n\
                 rpc_seconds{{quantile=\"0.5\"}} 0.05\n\
                 rpc_seconds{{quantile=\"0.99\"}} 0.5\n\
                 rpc_seconds_sum 12\n\
                 rpc_seconds_count 100\n\
                 escaped_info{{msg=\"a \\\"quoted\\\" \\\\ back\\nslash\"}} 1\n\
                 debug_noise_total 5\n",
                c200 = (secs * 10.0).floor(),
                c500 = (secs).floor(),
            )
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr.to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child (by PID) when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn query(base: &str, q: &str, time: f64) -> Vec<(BTreeMap<String, String>, f64)> {
    let v: Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", q), ("time", &format!("{time:.3}"))])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "success", "{base} {q}: {v}");
    let mut out: Vec<(BTreeMap<String, String>, f64)> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let labels = s["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let value: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
            (labels, value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_targets_same_series_and_values_as_prometheus() {
    let Some(prometheus) = program("prometheus") else {
        return;
    };
    let (a, b) = (exporter("a").await, exporter("b").await);
    let dir = TempDir::new("side-by-side");
    let config = dir.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            r#"global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ["{a}", "{b}"]
        labels:
          env: test
    relabel_configs:
      - source_labels: [__address__]
        regex: ".*:(\\d+)"
        target_label: port
      - target_label: tier
        replacement: web
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: "debug_.*"
        action: drop
      - source_labels: [code]
        regex: "5.."
        target_label: error
        replacement: "yes"
"#
        ),
    )
    .unwrap();

    let prom_port = free_port();
    let prom_dir = dir.0.join("prom");
    let _prom = Child(
        std::process::Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg(format!("--storage.tsdb.path={}", prom_dir.display()))
            .arg("--log.level=warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = serve(
        listener,
        ServeOptions {
            data_dir: dir.0.join("ours"),
            ui_dir: "does-not-exist".into(),
            config_file: Some(config.clone()),
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap();
    let ours = format!("http://{}", running.addr);
    let theirs = format!("http://127.0.0.1:{prom_port}");

    // Both scrape for 12 s.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        - 1.0;

    // The same series, label for label.
    let everything = r#"{job="app"}"#;
    let (o, t) = (
        query(&ours, everything, now).await,
        query(&theirs, everything, now).await,
    );
    let names = |v: &[(BTreeMap<String, String>, f64)]| -> BTreeSet<BTreeMap<String, String>> {
        v.iter().map(|(l, _)| l.clone()).collect()
    };
    assert!(!t.is_empty(), "Prometheus scraped nothing");
    assert_eq!(names(&o), names(&t), "series sets differ");

    // The same values for series that don't depend on scrape timing.
    for q in [
        "room_temperature_celsius",
        "latency_seconds_bucket",
        "rpc_seconds",
        "escaped_info",
        "up",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "histogram_quantile(0.9, latency_seconds_bucket)",
        "count by (job, env, tier) (http_requests_total)",
    ] {
        assert_eq!(
            query(&ours, q, now).await,
            query(&theirs, q, now).await,
            "{q}"
        );
    }
    // Rates of the clock-driven counters agree within scrape-timing jitter.
    let (o, t) = (
        query(&ours, "rate(http_requests_total[5s])", now).await,
        query(&theirs, "rate(http_requests_total[5s])", now).await,
    );
    assert_eq!(names(&o), names(&t));
    for ((l, x), (_, y)) in o.iter().zip(&t) {
        let want = if l.get("code").map(String::as_str) == Some("200") {
            10.0
        } else {
            1.0
        };
        assert!((x - want).abs() <= want * 0.35, "ours {l:?}: {x}");
        assert!((y - want).abs() <= want * 0.35, "Prometheus {l:?}: {y}");
    }
    // Both scraped each target about once a second (Prometheus starts later,
    // so only the last seconds compare).
    let (o, t) = (
        query(&ours, "count_over_time(up[5s])", now).await,
        query(&theirs, "count_over_time(up[5s])", now).await,
    );
    for ((_, x), (_, y)) in o.iter().zip(&t) {
        assert!(
            (x - y).abs() <= 1.0,
            "ours {x} vs Prometheus {y} scrapes in 5 s"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_replay_the_wal_prometheus_wrote() {
    use emberlens_model::Storage;
    let Some(prometheus) = program("prometheus") else {
        return;
    };
    let a = exporter("a").await;
    let dir = TempDir::new("prom-wal");
    let config = dir.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: [\"{a}\"]\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let data = dir.0.join("data");
    let mut prom = Child(
        std::process::Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg("--log.level=warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // Every sample Prometheus holds, as a range vector.
    let v: Value = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/query"))
        .query(&[
            ("query", "{job=\"app\"}[1h]"),
            ("time", &format!("{now:.3}")),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // A crash, not a shutdown: the last WAL page is left as it was.
    let _ = prom.0.kill();
    let _ = prom.0.wait();
    let mut theirs: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for s in v["data"]["result"].as_array().unwrap() {
        let labels: BTreeMap<String, String> = serde_json::from_value(s["metric"].clone()).unwrap();
        let key = format!("{labels:?}");
        for p in s["values"].as_array().unwrap() {
            let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
            theirs
                .entry(key.clone())
                .or_default()
                .push((t, p[1].as_str().unwrap().to_string()));
        }
    }
    assert!(theirs.len() > 10, "Prometheus scraped too little: {v}");

    let db = emberlens_server::store::Tsdb::open(&data, Default::default()).unwrap();
    let now_ms = (now * 1000.0) as i64;
    let m = emberlens_model::parse_selector(r#"{job="app"}"#).unwrap();
    let mut ours: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for s in db.select(&m, now_ms - 3_600_000, now_ms).unwrap() {
        let labels: BTreeMap<String, String> = s
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        ours.insert(
            format!("{labels:?}"),
            s.samples
                .iter()
                .filter(|x| !emberlens_model::is_stale_nan(x.v))
                .map(|x| (x.t_ms, emberlens_model::format_value(x.v)))
                .collect(),
        );
    }
    assert_eq!(
        ours, theirs,
        "replaying Prometheus's (snappy-compressed) WAL"
    );
    assert!(
        db.stats
            .replay_skipped
            .load(std::sync::atomic::Ordering::Relaxed)
            < 10
    );
}
