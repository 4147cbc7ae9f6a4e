//! Remote read and remote write against Debian's Prometheus, real processes
//! on loopback:
//! - Emberlens's `remote_write` → a Prometheus started with
//!   `--web.enable-remote-write-receiver`, checked through Prometheus's API;
//! - Prometheus's `remote_write` → Emberlens's `/api/v1/write`;
//! - a Prometheus whose only data is Emberlens's, through `remote_read`
//!   (`read_recent: true`), and Emberlens's `/api/v1/read` read directly in
//!   both response types;
//! - the queue survives `kill -9` of the `emberlens` process while the
//!   endpoint is down: every queued sample arrives after a restart.
//!
//! Prometheus is skipped (with a message) when missing, except under
//! `CI=true`. Every Prometheus started here is killed by PID when its
//! handle drops.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use common::{TempDir, program};
use emberlens_model::{Labels, Series};
use emberlens_remote::codec::{decode_read_response, encode_read_request, encode_write_request};
use emberlens_remote::convert::SeriesAssembler;
use emberlens_remote::frame::{FrameReader, STREAMED_CONTENT_TYPE};
use emberlens_remote::prompb::{
    self, LabelMatcher, Query, ReadRequest, ResponseType, WriteRequest,
};
use emberlens_server::{ServeOptions, serve};
use serde_json::Value;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A Debian Prometheus on `127.0.0.1:port` with `config`, storage in a
/// temporary directory; killed by PID on drop.
struct Prom {
    child: Child,
    base: String,
    dir: TempDir,
}

impl Prom {
    async fn start(bin: &Path, config: &str, port: u16, flags: &[&str]) -> Prom {
        let dir = TempDir::new("prom");
        std::fs::write(dir.0.join("prometheus.yml"), config).unwrap();
        let log = std::fs::File::create(dir.0.join("log")).unwrap();
        let child = Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.0.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.0.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(flags)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let p = Prom {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let ready = wait_for(Duration::from_secs(30), || async {
            reqwest::get(format!("{}/-/ready", p.base))
                .await
                .is_ok_and(|r| r.status() == 200)
                .then_some(())
        })
        .await;
        assert!(ready.is_some(), "prometheus not ready:\n{}", p.log());
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("log")).unwrap_or_default()
    }
}

impl Drop for Prom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Debian Prometheus that scrapes nothing and receives remote writes, and
/// its port; `None` (skipped) when Prometheus is missing.
async fn prom_receiver() -> Option<(Prom, u16)> {
    let prom_bin = program("prometheus")?;
    let port = free_port();
    let prom = Prom::start(
        &prom_bin,
        "global: {}\n",
        port,
        &["--web.enable-remote-write-receiver"],
    )
    .await;
    Some((prom, port))
}

/// Polls `f` every 200 ms until it returns `Some`, or `limit` passes.
async fn wait_for<T, F, Fut>(limit: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(v) = f().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// The instant-vector result of `query` on a Prometheus-compatible API.
async fn instant(base: &str, query: &str) -> Vec<Value> {
    let v: Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", query)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "success", "{query}: {v}");
    v["data"]["result"].as_array().unwrap().clone()
}

async fn emberlens(opts: ServeOptions) -> (String, emberlens_server::Running) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = serve(listener, opts).await.unwrap();
    (format!("http://{}", running.addr), running)
}

fn opts(data: &Path) -> ServeOptions {
    ServeOptions {
        data_dir: data.to_path_buf(),
        ui_dir: "does-not-exist".into(),
        ..ServeOptions::default()
    }
}

/// `n` samples, 15 s apart, ending about now, of series `name{i="0".."k"}`;
/// the value encodes series and step.
fn generated(name: &str, k: usize, n: usize) -> (i64, Vec<Series>) {
    let t0 = (now_ms() / 15_000 - n as i64 - 2) * 15_000;
    let series = (0..k)
        .map(|i| Series {
            labels: Labels::from_pairs([("__name__", name), ("i", &i.to_string())]),
            samples: (0..n)
                .map(|j| emberlens_model::Sample {
                    t_ms: t0 + 15_000 * j as i64,
                    v: (i * 1000 + j) as f64 + 0.25,
                })
                .collect(),
            ..Series::default()
        })
        .collect();
    (t0, series)
}

async fn push(base: &str, series: &[Series]) -> reqwest::Response {
    let req = WriteRequest {
        timeseries: series
            .iter()
            .map(emberlens_remote::convert::series_to_timeseries)
            .collect(),
        metadata: vec![],
    };
    reqwest::Client::new()
        .post(format!("{base}/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(encode_write_request(&req).unwrap())
        .send()
        .await
        .unwrap()
}

async fn read(
    base: &str,
    name: &str,
    start: i64,
    end: i64,
    kind: ResponseType,
) -> reqwest::Response {
    let req = ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: start,
            end_timestamp_ms: end,
            matchers: vec![LabelMatcher {
                r#type: prompb::MatcherType::Eq as i32,
                name: "__name__".into(),
                value: name.into(),
            }],
            hints: None,
        }],
        accepted_response_types: vec![kind as i32],
    };
    reqwest::Client::new()
        .post(format!("{base}/api/v1/read"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Read-Version", "0.1.0")
        .body(encode_read_request(&req).unwrap())
        .send()
        .await
        .unwrap()
}

fn metric_value(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// ------------------------------------------------------------------ receiver

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_receiver_is_off_by_default_and_keeps_the_rest_of_a_bad_request() {
    let data = TempDir::new("rw-recv");
    let (base, _off) = emberlens(opts(&data.0.join("a"))).await;
    let (_, series) = generated("recv_metric", 2, 3);
    let resp = push(&base, &series).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.text().await.unwrap(),
        "remote write receiver needs to be enabled with --web.enable-remote-write-receiver\n"
    );

    let (base, _on) = emberlens(ServeOptions {
        enable_remote_write_receiver: true,
        ..opts(&data.0.join("b"))
    })
    .await;
    assert_eq!(push(&base, &series).await.status(), 204);
    // Series 0 goes back in time; series 1 gets a new sample after its last.
    let mut again = series.clone();
    again[0].samples = vec![emberlens_model::Sample {
        t_ms: series[0].samples[0].t_ms - 1000,
        v: 1.0,
    }];
    let last = series[1].samples[2].t_ms;
    again[1].samples = vec![emberlens_model::Sample {
        t_ms: last + 15_000,
        v: 7.0,
    }];
    let resp = push(&base, &again).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.text().await.unwrap(),
        "out of order sample for series {__name__=\"recv_metric\", i=\"0\"}\n"
    );
    let got = instant(
        &base,
        &format!("recv_metric{{i=\"1\"}} @ {}", (last + 15_000) / 1000),
    )
    .await;
    assert_eq!(
        got[0]["value"][1], "7",
        "the good series was appended: {got:?}"
    );

    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/write"))
        .body("not snappy")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.starts_with("write request: snappy: "), "{text}");
}

// ------------------------------------------------------------------ remote read

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_read_answers_samples_and_streamed_chunks_alike() {
    let data = TempDir::new("rr-direct");
    let (base, _running) = emberlens(ServeOptions {
        enable_remote_write_receiver: true,
        ..opts(&data.0)
    })
    .await;
    // 300 samples per series: three XOR chunks each.
    let (t0, series) = generated("rr_direct", 3, 300);
    assert_eq!(push(&base, &series).await.status(), 204);
    let end = t0 + 300 * 15_000;

    let resp = read(&base, "rr_direct", t0, end, ResponseType::Samples).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");
    assert_eq!(resp.headers()["content-encoding"], "snappy");
    let body = resp.bytes().await.unwrap();
    let samples = decode_read_response(&body, 1 << 26).unwrap();
    let got: Vec<Series> = samples.results[0]
        .timeseries
        .iter()
        .map(emberlens_remote::convert::timeseries_to_series)
        .collect();
    assert_eq!(got, series);

    let resp = read(&base, "rr_direct", t0, end, ResponseType::StreamedXorChunks).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], STREAMED_CONTENT_TYPE);
    assert!(resp.headers().get("content-encoding").is_none());
    let body = resp.bytes().await.unwrap();
    // Fed in small pieces, as the browser worker reads a streamed body.
    let mut reader = FrameReader::new(1 << 20);
    let mut assembler = SeriesAssembler::new();
    let mut frames = 0;
    for piece in body.chunks(777) {
        reader.push(piece);
        while let Some(f) = reader.next_frame().unwrap() {
            frames += 1;
            assert_eq!(f.chunked_series.len(), 1);
            assert!(f.chunked_series[0].chunks.len() <= 3);
            for c in &f.chunked_series[0].chunks {
                assert_eq!(c.r#type, prompb::ChunkEncoding::Xor as i32);
            }
            assembler.push(&f).unwrap();
        }
    }
    reader.finish().unwrap();
    assert_eq!(frames, 3);
    assert_eq!(assembler.finish(), vec![series.clone()]);

    // A sub-range: only the samples inside it, both ends inclusive.
    let resp = read(
        &base,
        "rr_direct",
        t0 + 15_000,
        t0 + 30_000,
        ResponseType::Samples,
    )
    .await;
    let samples = decode_read_response(&resp.bytes().await.unwrap(), 1 << 26).unwrap();
    assert!(
        samples.results[0]
            .timeseries
            .iter()
            .all(|ts| ts.samples.len() == 2)
    );

    // Unknown response types only: 400 with Prometheus's message.
    let req = ReadRequest {
        queries: vec![],
        accepted_response_types: vec![7],
    };
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/read"))
        .body(encode_read_request(&req).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .starts_with("server does not support any of the requested response types: [7]")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_read_sample_limit_is_a_bad_request() {
    let data = TempDir::new("rr-limit");
    let (base, _running) = emberlens(ServeOptions {
        enable_remote_write_receiver: true,
        remote_read_sample_limit: 10,
        ..opts(&data.0)
    })
    .await;
    let (t0, series) = generated("rr_limit", 1, 11);
    assert_eq!(push(&base, &series).await.status(), 204);
    let resp = read(&base, "rr_limit", t0, now_ms(), ResponseType::Samples).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.text().await.unwrap(), "exceeded sample limit (10)\n");
    // Streamed answers are bounded by frames, not by the sample limit.
    let resp = read(
        &base,
        "rr_limit",
        t0,
        now_ms(),
        ResponseType::StreamedXorChunks,
    )
    .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_remote_read_queries_emberlens_data() {
    let Some(prom_bin) = program("prometheus") else {
        return;
    };
    let data = TempDir::new("rr-prom");
    let (base, _running) = emberlens(ServeOptions {
        enable_remote_write_receiver: true,
        ..opts(&data.0)
    })
    .await;
    let (t0, series) = generated("rr_prom", 2, 200);
    assert_eq!(push(&base, &series).await.status(), 204);
    let config = format!("remote_read:\n  - url: {base}/api/v1/read\n    read_recent: true\n");
    let prom = Prom::start(&prom_bin, &config, free_port(), &[]).await;
    let end = t0 + 199 * 15_000;
    let v: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/query_range", prom.base))
        .query(&[
            ("query", "rr_prom"),
            ("start", &(t0 / 1000).to_string()),
            ("end", &(end / 1000).to_string()),
            ("step", "15"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "success", "{v}\n{}", prom.log());
    let mut result = v["data"]["result"].as_array().unwrap().clone();
    result.sort_by_key(|s| s["metric"]["i"].as_str().unwrap().to_string());
    assert_eq!(result.len(), 2, "{v}");
    for (s, want) in result.iter().zip(&series) {
        let values = s["values"].as_array().unwrap();
        assert_eq!(values.len(), 200);
        for (got, w) in values.iter().zip(&want.samples) {
            assert_eq!(got[0].as_f64().unwrap() * 1000.0, w.t_ms as f64);
            assert_eq!(got[1].as_str().unwrap(), w.v.to_string());
        }
    }
    // Which response type Prometheus asked for.
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = metric_value(
        &metrics,
        "emberlens_remote_read_queries_total{response_type=\"samples\"}",
    );
    let streamed = metric_value(
        &metrics,
        "emberlens_remote_read_queries_total{response_type=\"streamed_xor_chunks\"}",
    );
    eprintln!("prometheus remote read queries: samples {samples}, streamed {streamed}");
    assert!(samples + streamed >= 1.0, "{metrics}");
}

// ------------------------------------------------------------------ remote write

/// Serves a few series at `/metrics` on a free port; returns `host:port`.
async fn fake_exporter() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/metrics",
        get(|| async { "# TYPE rw_metric gauge\nrw_metric{a=\"1\"} 42\nrw_metric{a=\"2\"} 43\ngo_goroutines 7\n" }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emberlens_remote_write_reaches_prometheus() {
    let Some((prom, port)) = prom_receiver().await else {
        return;
    };
    let target = fake_exporter().await;
    let data = TempDir::new("rw-prom");
    let config = data.0.join("emberlens.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  external_labels: {{replica: e1}}\nscrape_configs:\n  - job_name: fake\n    static_configs: [{{targets: ['{target}']}}]\nremote_write:\n  - url: http://127.0.0.1:{port}/api/v1/write\n    name: prom\n    write_relabel_configs:\n      - {{source_labels: [__name__], regex: go_.*, action: drop}}\n    queue_config: {{batch_send_deadline: 200ms, min_backoff: 50ms, max_backoff: 500ms}}\n"
        ),
    )
    .unwrap();
    let (base, _running) = emberlens(ServeOptions {
        config_file: Some(config),
        ..opts(&data.0)
    })
    .await;
    let got = wait_for(Duration::from_secs(30), || async {
        let r = instant(&prom.base, "rw_metric").await;
        (r.len() == 2).then_some(r)
    })
    .await
    .unwrap_or_else(|| panic!("no rw_metric in Prometheus:\n{}", prom.log()));
    for s in &got {
        assert_eq!(s["metric"]["job"], "fake");
        assert_eq!(s["metric"]["replica"], "e1", "external label: {s}");
        assert_eq!(s["metric"]["instance"], target.as_str());
    }
    let mut values: Vec<&str> = got
        .iter()
        .map(|s| s["value"][1].as_str().unwrap())
        .collect();
    values.sort();
    assert_eq!(values, ["42", "43"]);
    assert_eq!(
        instant(&prom.base, "up{job=\"fake\"}").await[0]["value"][1],
        "1"
    );
    // Dropped by write_relabel_configs: stored here, never sent.
    assert!(instant(&prom.base, "go_goroutines").await.is_empty());
    assert_eq!(instant(&base, "go_goroutines").await.len(), 1);
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metric_value(&metrics, "emberlens_remote_storage_samples_total{") > 0.0,
        "{metrics}"
    );
    assert!(metric_value(&metrics, "emberlens_remote_storage_samples_dropped_total{") > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_remote_write_reaches_emberlens() {
    let Some(prom_bin) = program("prometheus") else {
        return;
    };
    let data = TempDir::new("rw-recv-prom");
    let (base, _running) = emberlens(ServeOptions {
        enable_remote_write_receiver: true,
        ..opts(&data.0)
    })
    .await;
    let port = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: prom\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\nremote_write:\n  - url: {base}/api/v1/write\n    queue_config: {{batch_send_deadline: 500ms, min_backoff: 50ms, max_backoff: 500ms}}\n"
    );
    let prom = Prom::start(&prom_bin, &config, port, &[]).await;
    let got = wait_for(Duration::from_secs(30), || async {
        let r = instant(&base, "up{job=\"prom\"}").await;
        (!r.is_empty()).then_some(r)
    })
    .await
    .unwrap_or_else(|| panic!("no up{{job=\"prom\"}} in Emberlens:\n{}", prom.log()));
    assert_eq!(got[0]["value"][1], "1");
    assert_eq!(got[0]["metric"]["instance"], format!("127.0.0.1:{port}"));
    let build = instant(&base, "prometheus_build_info").await;
    assert_eq!(build.len(), 1, "{build:?}");
}

// ------------------------------------------------------------------ queue across restarts

/// Starts the `emberlens` binary with `config`; returns the child and its base URL.
fn spawn_emberlens(data: &Path, config: &Path) -> (Child, String) {
    let config = config.to_string_lossy();
    common::spawn_emberlens(data, &["--config.file", &config])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_samples_survive_kill_9_and_arrive_after_restart() {
    let Some(prom_bin) = program("prometheus") else {
        return;
    };
    let port = free_port();
    let data = TempDir::new("rw-restart");
    let config: PathBuf = data.0.join("emberlens.yml");
    std::fs::write(
        &config,
        format!(
            "remote_write:\n  - url: http://127.0.0.1:{port}/api/v1/write\n    queue_config: {{max_samples_per_send: 100, batch_send_deadline: 100ms, min_backoff: 50ms, max_backoff: 200ms}}\n"
        ),
    )
    .unwrap();
    let tsdb = data.0.join("data");

    // The endpoint is down: everything stays queued.
    let (mut first, base) = spawn_emberlens(&tsdb, &config);
    let (t0, series) = generated("rw_restart", 3, 100);
    assert_eq!(push(&base, &series).await.status(), 204);
    let queued = wait_for(Duration::from_secs(10), || async {
        let m = reqwest::get(format!("{base}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (metric_value(&m, "emberlens_remote_storage_samples_in_total{") >= 300.0
            && metric_value(&m, "emberlens_remote_storage_samples_retried_total{") > 0.0)
            .then_some(m)
    })
    .await
    .expect("samples queued and retried");
    assert_eq!(
        metric_value(&queued, "emberlens_remote_storage_samples_total{"),
        0.0
    );
    first.kill().unwrap();
    first.wait().unwrap();

    let prom = Prom::start(
        &prom_bin,
        "global: {}\n",
        port,
        &["--web.enable-remote-write-receiver"],
    )
    .await;
    let (mut second, _base) = spawn_emberlens(&tsdb, &config);
    let end_s = (t0 + 100 * 15_000) / 1000;
    let counts = wait_for(Duration::from_secs(30), || async {
        let r = instant(
            &prom.base,
            &format!("count_over_time(rw_restart[30m] @ {end_s})"),
        )
        .await;
        (r.len() == 3 && r.iter().all(|s| s["value"][1] == "100")).then_some(r)
    })
    .await;
    let _ = second.kill();
    let _ = second.wait();
    let counts =
        counts.unwrap_or_else(|| panic!("not every queued sample arrived:\n{}", prom.log()));
    assert_eq!(counts.len(), 3);
    // The values too, not only the count.
    let sum = instant(
        &prom.base,
        &format!("sum(sum_over_time(rw_restart[30m] @ {end_s}))"),
    )
    .await;
    let want: f64 = series
        .iter()
        .flat_map(|s| s.samples.iter().map(|x| x.v))
        .sum();
    assert_eq!(
        sum[0]["value"][1].as_str().unwrap().parse::<f64>().unwrap(),
        want
    );
}

// ------------------------------------------------------------------ sender behaviour

#[derive(Clone, Default)]
struct Sink {
    /// Status codes to answer, in order; 204 once exhausted.
    script: std::sync::Arc<std::sync::Mutex<Vec<u16>>>,
    /// Samples of the requests answered 2xx.
    samples: std::sync::Arc<std::sync::Mutex<Vec<(String, i64, f64)>>>,
    /// Headers of the last request.
    headers: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// A remote-write endpoint that answers from a script; returns its URL.
async fn sink(script: Vec<u16>) -> (String, Sink) {
    use axum::http::HeaderMap;
    let s = Sink {
        script: std::sync::Arc::new(std::sync::Mutex::new(script)),
        ..Sink::default()
    };
    let state = s.clone();
    let app = Router::new().route(
        "/write",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let st = state.clone();
            async move {
                st.requests
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                *st.headers.lock().unwrap() = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                let code = {
                    let mut sc = st.script.lock().unwrap();
                    if sc.is_empty() { 204 } else { sc.remove(0) }
                };
                if code < 300 {
                    let req =
                        emberlens_remote::codec::decode_write_request(&body, 1 << 26).unwrap();
                    let mut out = st.samples.lock().unwrap();
                    for ts in &req.timeseries {
                        let l = emberlens_remote::convert::labels_from_proto(&ts.labels);
                        for x in &ts.samples {
                            out.push((l.to_string(), x.timestamp, x.value));
                        }
                    }
                }
                (
                    axum::http::StatusCode::from_u16(code).unwrap(),
                    "scripted answer",
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/write"), s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_retries_5xx_drops_4xx_and_reload_adds_endpoints() {
    let (retry_url, retry) = sink(vec![500, 503]).await;
    let (bad_url, bad) = sink(vec![400; 100]).await;
    let data = TempDir::new("rw-sender");
    let config = data.0.join("emberlens.yml");
    let endpoint = |url: &str, name: &str| {
        format!(
            "  - url: {url}\n    name: {name}\n    headers: {{X-Scope-OrgID: team-a}}\n    basic_auth: {{username: u, password: p}}\n    queue_config: {{batch_send_deadline: 100ms, min_backoff: 20ms, max_backoff: 100ms}}\n"
        )
    };
    std::fs::write(
        &config,
        format!("remote_write:\n{}", endpoint(&retry_url, "retry")),
    )
    .unwrap();
    let (base, _running) = emberlens(ServeOptions {
        config_file: Some(config.clone()),
        enable_remote_write_receiver: true,
        ..opts(&data.0)
    })
    .await;
    let (_, series) = generated("sender_metric", 2, 5);
    assert_eq!(push(&base, &series).await.status(), 204);
    let got = wait_for(Duration::from_secs(10), || async {
        let s = retry.samples.lock().unwrap().clone();
        (s.len() >= 10).then_some(s)
    })
    .await
    .expect("delivered after two 5xx answers");
    assert_eq!(got.len(), 10, "{got:?}");
    assert_eq!(retry.requests.load(std::sync::atomic::Ordering::SeqCst), 3);
    let headers = retry.headers.lock().unwrap().clone();
    let h = |k: &str| {
        headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(h("content-encoding"), "snappy");
    assert_eq!(h("content-type"), "application/x-protobuf");
    assert_eq!(h("x-prometheus-remote-write-version"), "0.1.0");
    assert!(h("user-agent").starts_with("Emberlens/"), "{headers:?}");
    assert_eq!(h("x-scope-orgid"), "team-a");
    assert_eq!(h("authorization"), "Basic dTpw");

    // Reload with a second endpoint that refuses everything with 400.
    std::fs::write(
        &config,
        format!(
            "remote_write:\n{}{}",
            endpoint(&retry_url, "retry"),
            endpoint(&bad_url, "bad")
        ),
    )
    .unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{base}/-/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, more) = generated("sender_more", 1, 3);
    assert_eq!(push(&base, &more).await.status(), 204);
    let metrics = wait_for(Duration::from_secs(10), || async {
        let m = reqwest::get(format!("{base}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (metric_value(
            &m,
            "emberlens_remote_storage_samples_failed_total{remote_name=\"bad\"",
        ) >= 3.0
            && retry.samples.lock().unwrap().len() >= 13)
            .then_some(m)
    })
    .await
    .expect("the 400 endpoint's samples counted as failed, the other one still delivering");
    // Dropped, not retried: one request per batch.
    assert_eq!(bad.requests.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(bad.samples.lock().unwrap().is_empty());
    assert_eq!(
        metric_value(
            &metrics,
            "emberlens_remote_storage_samples_retried_total{remote_name=\"bad\""
        ),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_429_is_retried_only_with_retry_on_http_429() {
    let (retry_url, retry) = sink(vec![429]).await;
    let (drop_url, dropped) = sink(vec![429]).await;
    let data = TempDir::new("rw-429");
    let config = data.0.join("emberlens.yml");
    std::fs::write(
        &config,
        format!(
            "remote_write:\n  - url: {retry_url}\n    name: retry\n    queue_config: {{batch_send_deadline: 100ms, min_backoff: 20ms, retry_on_http_429: true}}\n  - url: {drop_url}\n    name: drop\n    queue_config: {{batch_send_deadline: 100ms, min_backoff: 20ms}}\n"
        ),
    )
    .unwrap();
    let (base, _running) = emberlens(ServeOptions {
        config_file: Some(config),
        enable_remote_write_receiver: true,
        ..opts(&data.0)
    })
    .await;
    let (_, series) = generated("rate_limited", 1, 4);
    assert_eq!(push(&base, &series).await.status(), 204);
    let metrics = wait_for(Duration::from_secs(10), || async {
        let m = reqwest::get(format!("{base}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (retry.samples.lock().unwrap().len() == 4
            && metric_value(
                &m,
                "emberlens_remote_storage_samples_failed_total{remote_name=\"drop\"",
            ) == 4.0)
            .then_some(m)
    })
    .await
    .expect("429 retried for one endpoint, dropped for the other");
    assert_eq!(retry.requests.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(
        dropped.requests.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(
        metric_value(
            &metrics,
            "emberlens_remote_storage_samples_retried_total{remote_name=\"retry\""
        ),
        4.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_read_matches_and_adds_external_labels() {
    let data = TempDir::new("rr-ext");
    let config = data.0.join("emberlens.yml");
    std::fs::write(&config, "global:\n  external_labels: {site: s1}\n").unwrap();
    let (base, _running) = emberlens(ServeOptions {
        config_file: Some(config),
        enable_remote_write_receiver: true,
        ..opts(&data.0)
    })
    .await;
    let (t0, series) = generated("rr_ext", 1, 3);
    assert_eq!(push(&base, &series).await.status(), 204);
    let ask = |site: &str| ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: t0,
            end_timestamp_ms: now_ms(),
            matchers: vec![
                LabelMatcher {
                    r#type: prompb::MatcherType::Eq as i32,
                    name: "__name__".into(),
                    value: "rr_ext".into(),
                },
                LabelMatcher {
                    r#type: prompb::MatcherType::Eq as i32,
                    name: "site".into(),
                    value: site.into(),
                },
            ],
            hints: None,
        }],
        accepted_response_types: vec![],
    };
    for (site, want) in [("s1", 1), ("s2", 0)] {
        let resp = reqwest::Client::new()
            .post(format!("{base}/api/v1/read"))
            .body(encode_read_request(&ask(site)).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let r = decode_read_response(&resp.bytes().await.unwrap(), 1 << 26).unwrap();
        let ts = &r.results[0].timeseries;
        assert_eq!(ts.len(), want, "site={site}");
        if want == 1 {
            let l = emberlens_remote::convert::labels_from_proto(&ts[0].labels);
            assert_eq!(l.get("site"), "s1");
            assert_eq!(ts[0].samples.len(), 3);
        }
    }
}

/// The worker's HTTP, natively: reqwest in place of the browser's `fetch`.
struct ReqwestHttp(reqwest::Client);

impl emberlens_worker::dispatch::Http for ReqwestHttp {
    async fn get(
        &self,
        url: &str,
        _: &emberlens_worker::cancel::CancelToken,
    ) -> Result<(u16, String), String> {
        let r = self.0.get(url).send().await.map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        Ok((status, r.text().await.map_err(|e| e.to_string())?))
    }

    async fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        _: &emberlens_worker::cancel::CancelToken,
    ) -> Result<emberlens_worker::dispatch::HttpBytes, String> {
        let mut req = self.0.post(url).body(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let r = req.send().await.map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = r.bytes().await.map_err(|e| e.to_string())?.to_vec();
        Ok(emberlens_worker::dispatch::HttpBytes {
            status,
            content_type,
            body,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_series_fetch_reads_emberlens_and_prometheus_alike() {
    let Some((prom, _)) = prom_receiver().await else {
        return;
    };
    let data = TempDir::new("worker-read");
    let (base, _running) = emberlens(ServeOptions {
        enable_remote_write_receiver: true,
        ..opts(&data.0)
    })
    .await;
    // 3 series × 400 samples: several chunks per series, one stale marker.
    let (t0, mut series) = generated("worker_read", 3, 400);
    series[1].samples[200].v = emberlens_model::stale_nan();
    for b in [&base, &prom.base] {
        assert_eq!(push(b, &series).await.status(), 204, "{b}");
    }
    let http = ReqwestHttp(reqwest::Client::new());
    let fetch = |base: String, selector: &str, start_ms: i64, end_ms: i64| {
        let req = emberlens_protocol::FetchSeries {
            base_url: base,
            selector: selector.into(),
            start_ms,
            end_ms,
        };
        let http = &http;
        async move {
            emberlens_worker::source_server::fetch_series(
                http,
                &req,
                &emberlens_worker::cancel::CancelToken::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", req.base_url))
        }
    };
    // The middle of the range: chunks reach past both ends.
    let (start, end) = (t0 + 15_000 * 50, t0 + 15_000 * 350);
    let ours = fetch(base.clone(), r#"worker_read{i=~"1|2"}"#, start, end).await;
    let theirs = fetch(prom.base.clone(), r#"worker_read{i=~"1|2"}"#, start, end).await;
    assert_eq!(ours, theirs);
    assert_eq!(ours.series.len(), 2);
    let s1 = &ours.series[0];
    assert_eq!(s1.labels[1], ("i".to_string(), "1".to_string()));
    assert_eq!(
        s1.timestamps_ms.len(),
        300,
        "301 in range less the stale marker"
    );
    assert_eq!((s1.timestamps_ms[0], s1.values[0]), (start, 1050.25));
    assert_eq!(*s1.timestamps_ms.last().unwrap(), end);
    assert!(!s1.timestamps_ms.contains(&(t0 + 15_000 * 200)));
    assert_eq!(ours.series[1].timestamps_ms.len(), 301);
    // Nothing matches: an empty set from both.
    let none = fetch(base, "no_such_metric", start, end).await;
    assert!(none.series.is_empty());
}
