//! Scraping from a `prometheus.yml` (`--config.file`): two fake exporters,
//! target and metric relabeling, params, bearer auth, sample_limit, checked
//! through `/api/v1/query` and `/api/v1/targets`; then reloads through
//! `POST /-/reload` with a changed config (targets change, removed series go
//! stale) and with an invalid one (refused, the old one keeps running).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use emberlens_server::{ServeOptions, serve};
use serde_json::Value;

const EXPOSITION: &str = "# TYPE widgets_total counter\n\
widgets_total{kind=\"a\"} 3\n\
widgets_total{kind=\"b\"} 4\n\
# TYPE debug_thing gauge\n\
debug_thing 1\n";

/// A fake exporter on a free loopback port: `/metrics` serves
/// [`EXPOSITION`]; `/custom` serves one gauge, only with `?x=1` and
/// `Authorization: Bearer s3cret`; `/basic` one gauge, only to user `u`
/// with password `p`; `/moved` redirects to `/metrics`. Returns `host:port`.
async fn fake_exporter() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/metrics", get(|| async { EXPOSITION }))
        .route(
            "/moved",
            get(|| async { (StatusCode::FOUND, [("location", "/metrics")], "") }),
        )
        .route(
            "/basic",
            get(|headers: HeaderMap| async move {
                // base64("u:p")
                match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                    Some("Basic dTpw") => (StatusCode::OK, "basic_gauge 7\n"),
                    _ => (StatusCode::UNAUTHORIZED, ""),
                }
            }),
        )
        .route(
            "/custom",
            get(|headers: HeaderMap, RawQuery(q): RawQuery| async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
                if auth != Some("Bearer s3cret") {
                    return (StatusCode::UNAUTHORIZED, String::new());
                }
                if q.as_deref() != Some("x=1") {
                    return (StatusCode::BAD_REQUEST, String::new());
                }
                (StatusCode::OK, "custom_gauge 42\n".to_string())
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr.to_string()
}

async fn get_json(url: String) -> Value {
    let resp = reqwest::get(url).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// `metric labels → value` of an instant query, sorted.
async fn query(base: &str, q: &str) -> Vec<String> {
    let v = get_json(format!(
        "{base}/api/v1/query?query={}",
        form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
    ))
    .await;
    let mut out: Vec<String> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{} {}", s["metric"], s["value"][1].as_str().unwrap()))
        .collect();
    out.sort();
    out
}

/// Polls `check` until it returns true or 10 s pass.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_targets_relabeling_and_reload() {
    let (a, b) = (fake_exporter().await, fake_exporter().await);
    let dir = std::env::temp_dir().join(format!("emberlens-test-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    let first = format!(
        r#"
global:
  scrape_interval: 200ms
  scrape_timeout: 200ms
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ["{a}", "{b}"]
        labels: {{team: core}}
    relabel_configs:
      - source_labels: [__address__]
        regex: "{a}"
        action: keep
      - source_labels: [__address__]
        regex: ".*:(\\d+)"
        target_label: port
        replacement: "p$1"
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: "debug_.*"
        action: drop
  - job_name: custom
    metrics_path: /custom
    params: {{x: ["1"]}}
    authorization: {{credentials: s3cret}}
    static_configs:
      - targets: ["{b}"]
  - job_name: limited
    sample_limit: 2
    static_configs:
      - targets: ["{a}"]
  - job_name: short
    label_value_length_limit: 5
    static_configs:
      - targets: ["{a}"]
"#
    );
    write(&config, &first);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = serve(
        listener,
        ServeOptions {
            data_dir: dir.join("data"),
            ui_dir: "does-not-exist".into(),
            config_file: Some(config.clone()),
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", running.addr);
    let port_a = a.rsplit_once(':').unwrap().1;

    eventually("four up series", || async {
        query(&base, "up").await.len() == 4
    })
    .await;
    assert_eq!(
        query(&base, "up").await,
        sorted(vec![
            format!(
                r#"{{"__name__":"up","instance":"{a}","job":"app","port":"p{port_a}","team":"core"}} 1"#
            ),
            format!(r#"{{"__name__":"up","instance":"{a}","job":"limited"}} 0"#),
            format!(r#"{{"__name__":"up","instance":"{b}","job":"custom"}} 1"#),
            format!(r#"{{"__name__":"up","instance":"{a}","job":"short"}} 0"#),
        ])
    );
    // Target relabeling put `port` and the static label on every sample;
    // metric relabeling dropped `debug_thing` (but not from `limited`, which
    // failed as a whole on its sample limit and stored nothing).
    assert_eq!(
        query(&base, "widgets_total").await,
        [
            format!(
                r#"{{"__name__":"widgets_total","instance":"{a}","job":"app","kind":"a","port":"p{port_a}","team":"core"}} 3"#
            ),
            format!(
                r#"{{"__name__":"widgets_total","instance":"{a}","job":"app","kind":"b","port":"p{port_a}","team":"core"}} 4"#
            ),
        ]
    );
    assert!(query(&base, "debug_thing").await.is_empty());
    assert_eq!(
        query(&base, "custom_gauge").await,
        [format!(
            r#"{{"__name__":"custom_gauge","instance":"{b}","job":"custom"}} 42"#
        )]
    );
    assert_eq!(
        query(&base, "scrape_samples_post_metric_relabeling{job=\"app\"}")
            .await
            .len(),
        1
    );
    assert!(
        query(&base, "scrape_samples_post_metric_relabeling{job=\"app\"}").await[0].ends_with(" 2")
    );

    // /api/v1/targets in Prometheus's shape.
    let targets = get_json(format!("{base}/api/v1/targets")).await;
    assert_eq!(targets["status"], "success");
    let active = targets["data"]["activeTargets"].as_array().unwrap();
    assert_eq!(active.len(), 4);
    let custom = active.iter().find(|t| t["scrapePool"] == "custom").unwrap();
    assert_eq!(custom["scrapeUrl"], format!("http://{b}/custom?x=1"));
    assert_eq!(custom["health"], "up");
    assert_eq!(custom["scrapeInterval"], "200ms");
    assert_eq!(custom["discoveredLabels"]["__metrics_path__"], "/custom");
    assert_eq!(custom["discoveredLabels"]["__param_x"], "1");
    assert_eq!(
        custom["labels"],
        serde_json::json!({"instance": b, "job": "custom"})
    );
    let limited = active
        .iter()
        .find(|t| t["scrapePool"] == "limited")
        .unwrap();
    assert_eq!(limited["health"], "down");
    assert_eq!(limited["lastError"], "sample limit exceeded (2 samples)");
    let short = active.iter().find(|t| t["scrapePool"] == "short").unwrap();
    assert_eq!(
        short["lastError"],
        "label_value_length_limit exceeded (metric: widgets_total, label name: __name__, value: \"widgets_total\", length: 13, limit: 5)"
    );
    let dropped = targets["data"]["droppedTargets"].as_array().unwrap();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0]["discoveredLabels"]["__address__"], b.as_str());
    assert_eq!(dropped[0]["discoveredLabels"]["job"], "app");

    // The loaded configuration, secrets hidden.
    let status = get_json(format!("{base}/api/v1/status/config")).await;
    let yaml = status["data"]["yaml"].as_str().unwrap();
    assert!(yaml.contains("job_name: limited"), "{yaml}");
    assert!(yaml.contains("credentials: <secret>"), "{yaml}");
    assert!(!yaml.contains("s3cret"), "{yaml}");

    // Reload with a changed config: `app` and `limited` go away, `custom` is
    // unchanged and keeps its loop, `second` is new.
    let second = format!(
        r#"
global:
  scrape_interval: 200ms
  scrape_timeout: 200ms
scrape_configs:
  - job_name: custom
    metrics_path: /custom
    params: {{x: ["1"]}}
    authorization: {{credentials: s3cret}}
    static_configs:
      - targets: ["{b}"]
  - job_name: second
    static_configs:
      - targets: ["{b}"]
"#
    );
    let custom_before = running.state.scrape.targets().0;
    write(&config, &second);
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{base}/-/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (active, dropped) = running.state.scrape.targets();
    let pools: Vec<&str> = active.iter().map(|t| t.target.pool.as_str()).collect();
    assert_eq!(pools, ["custom", "second"]);
    assert!(dropped.is_empty());
    let kept = custom_before
        .iter()
        .find(|t| t.target.pool == "custom")
        .unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&kept.target, &active[0].target),
        "the unchanged target's loop was restarted"
    );
    eventually("the removed targets' series to go stale", || async {
        let up = query(&base, "up").await;
        up.len() == 2 && up.iter().all(|s| s.ends_with(" 1"))
    })
    .await;
    assert!(query(&base, "widgets_total{job=\"app\"}").await.is_empty());
    eventually("the new job to be scraped", || async {
        query(&base, "widgets_total{job=\"second\"}").await.len() == 2
    })
    .await;

    // An invalid config is refused with the reason; the old one keeps running.
    write(
        &config,
        "scrape_configs:\n  - job_name: x\n    scrape_interval: 1s\n    scrape_timeout: 2s\n    static_configs: [{targets: [\"h:1\"]}]\n",
    );
    let resp = client
        .post(format!("{base}/-/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    let msg = resp.text().await.unwrap();
    assert!(
        msg.starts_with("failed to reload config: couldn't load configuration (--config.file="),
        "{msg}"
    );
    assert!(msg.contains("scrape_timeout"), "{msg}");
    write(&config, "scrape_configs: [ this is not yaml");
    let resp = client
        .post(format!("{base}/-/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    let status = get_json(format!("{base}/api/v1/status/config")).await;
    let yaml = status["data"]["yaml"].as_str().unwrap();
    assert!(yaml.contains("job_name: second"), "{yaml}");
    let pools: Vec<String> = running
        .state
        .scrape
        .targets()
        .0
        .iter()
        .map(|t| t.target.pool.clone())
        .collect();
    assert_eq!(pools, ["custom", "second"]);
    let before = running.health.read().unwrap().len();
    assert_eq!(before, 2);

    running.server.abort();
    running.state.scrape.stop_all();
    let _ = std::fs::remove_dir_all(dir);
}

/// A config file that does not load stops start-up with the reason.
#[tokio::test]
async fn invalid_config_file_fails_start_up() {
    let dir = std::env::temp_dir().join(format!("emberlens-test-badcfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    write(&config, "global:\n  scrape_intervall: 1s\n");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = serve(
        listener,
        ServeOptions {
            data_dir: dir.join("data"),
            ui_dir: "none".into(),
            config_file: Some(config),
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("scrape_intervall"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Without a config file the embedded default scrapes the server itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_config_scrapes_itself() {
    let dir = std::env::temp_dir().join(format!("emberlens-test-defcfg-{}", std::process::id()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = serve(
        listener,
        ServeOptions {
            data_dir: dir.join("data"),
            ui_dir: "none".into(),
            scrape_interval: Duration::from_millis(200),
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", running.addr);
    let status = get_json(format!("{base}/api/v1/status/config")).await;
    let yaml = status["data"]["yaml"].as_str().unwrap();
    assert!(yaml.contains(&running.addr.to_string()), "{yaml}");
    assert!(yaml.contains("scrape_interval: 200ms"), "{yaml}");
    assert!(yaml.contains("job_name: emberlens"), "{yaml}");
    eventually("the self-scrape", || async {
        query(&base, "up{job=\"emberlens\"}").await
            == [format!(
                r#"{{"__name__":"up","instance":"{}","job":"emberlens"}} 1"#,
                running.addr
            )]
    })
    .await;
    let targets = get_json(format!("{base}/api/v1/targets")).await;
    assert_eq!(
        targets["data"]["activeTargets"][0]["scrapeUrl"],
        format!("http://{}/metrics", running.addr)
    );
    running.state.scrape.stop_all();
    let _ = std::fs::remove_dir_all(dir);
}

/// File-SD targets are read at start-up and again when the file changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sd_targets_follow_the_file() {
    let (a, b) = (fake_exporter().await, fake_exporter().await);
    let dir = std::env::temp_dir().join(format!("emberlens-test-filesd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    write(
        &config,
        "global: {scrape_interval: 200ms, scrape_timeout: 200ms}\nscrape_configs:\n  - job_name: sd\n    file_sd_configs: [{files: [targets.json]}]\n",
    );
    write(
        &dir.join("targets.json"),
        &format!(r#"[{{"targets": ["{a}"], "labels": {{"zone": "z1"}}}}]"#),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = serve(
        listener,
        ServeOptions {
            data_dir: dir.join("data"),
            ui_dir: "none".into(),
            config_file: Some(config),
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", running.addr);
    eventually("the file-SD target", || async {
        query(&base, "up").await
            == [format!(
                r#"{{"__name__":"up","instance":"{a}","job":"sd","zone":"z1"}} 1"#
            )]
    })
    .await;
    let targets = get_json(format!("{base}/api/v1/targets")).await;
    let t = &targets["data"]["activeTargets"][0];
    assert_eq!(
        t["discoveredLabels"]["__meta_filepath"],
        dir.join("targets.json").display().to_string()
    );
    write(
        &dir.join("targets.json"),
        &format!(r#"[{{"targets": ["{b}"], "labels": {{"zone": "z2", "rack": "r7"}}}}]"#),
    );
    eventually("the changed file-SD target", || async {
        query(&base, "up").await
            == [format!(
                r#"{{"__name__":"up","instance":"{b}","job":"sd","rack":"r7","zone":"z2"}} 1"#
            )]
    })
    .await;
    running.state.scrape.stop_all();
    let _ = std::fs::remove_dir_all(dir);
}

/// A series that disappears from the exposition gets a staleness marker:
/// an instant query no longer returns it, while the others stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_series_go_stale() {
    let body = std::sync::Arc::new(std::sync::RwLock::new(String::from(
        "kept_gauge 1\ngone_gauge 2\n",
    )));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let exporter = listener.local_addr().unwrap();
    let served = body.clone();
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let served = served.clone();
            async move { served.read().unwrap().clone() }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = std::env::temp_dir().join(format!("emberlens-test-stale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    write(
        &config,
        &format!(
            "global: {{scrape_interval: 200ms, scrape_timeout: 200ms}}\nscrape_configs:\n  - job_name: e\n    static_configs: [{{targets: [\"{exporter}\"]}}]\n"
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = serve(
        listener,
        ServeOptions {
            data_dir: dir.join("data"),
            ui_dir: "none".into(),
            config_file: Some(config),
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", running.addr);
    eventually("both series", || async {
        query(&base, "gone_gauge").await.len() == 1
    })
    .await;
    *body.write().unwrap() = "kept_gauge 1\n".into();
    eventually("the vanished series to go stale", || async {
        query(&base, "gone_gauge").await.is_empty()
    })
    .await;
    assert_eq!(query(&base, "kept_gauge").await.len(), 1);
    running.state.scrape.stop_all();
    let _ = std::fs::remove_dir_all(dir);
}

/// `basic_auth` with a `password_file` (relative to the config file, read at
/// each scrape): a wrong password gives `up` 0 with the status, and fixing
/// the file fixes the scrapes without a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_password_file() {
    let a = fake_exporter().await;
    let dir = std::env::temp_dir().join(format!("emberlens-test-basic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    write(&dir.join("pw.txt"), "wrong\n");
    write(
        &config,
        &format!(
            "global: {{scrape_interval: 200ms, scrape_timeout: 200ms}}\nscrape_configs:\n  - job_name: b\n    metrics_path: /basic\n    basic_auth: {{username: u, password_file: pw.txt}}\n    static_configs: [{{targets: [\"{a}\"]}}]\n"
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = serve(
        listener,
        ServeOptions {
            data_dir: dir.join("data"),
            ui_dir: "none".into(),
            config_file: Some(config),
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", running.addr);
    eventually("a refused scrape", || async {
        let t = get_json(format!("{base}/api/v1/targets")).await;
        t["data"]["activeTargets"][0]["lastError"] == "server returned HTTP status 401 Unauthorized"
    })
    .await;
    write(&dir.join("pw.txt"), "p\n");
    eventually("the authenticated scrape", || async {
        query(&base, "basic_gauge").await
            == [format!(
                r#"{{"__name__":"basic_gauge","instance":"{a}","job":"b"}} 7"#
            )]
    })
    .await;
    running.state.scrape.stop_all();
    let _ = std::fs::remove_dir_all(dir);
}

/// Redirects are followed unless `follow_redirects: false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_redirects_setting() {
    let a = fake_exporter().await;
    let dir = std::env::temp_dir().join(format!("emberlens-test-redir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    write(
        &config,
        &format!(
            "global: {{scrape_interval: 200ms, scrape_timeout: 200ms}}\nscrape_configs:\n  - job_name: follow\n    metrics_path: /moved\n    static_configs: [{{targets: [\"{a}\"]}}]\n  - job_name: stay\n    metrics_path: /moved\n    follow_redirects: false\n    static_configs: [{{targets: [\"{a}\"]}}]\n"
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = serve(
        listener,
        ServeOptions {
            data_dir: dir.join("data"),
            ui_dir: "none".into(),
            config_file: Some(config),
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", running.addr);
    eventually("both scrapes", || async {
        query(&base, "up").await.len() == 2
    })
    .await;
    assert_eq!(
        query(&base, "up").await,
        [
            format!(r#"{{"__name__":"up","instance":"{a}","job":"follow"}} 1"#),
            format!(r#"{{"__name__":"up","instance":"{a}","job":"stay"}} 0"#),
        ]
    );
    let t = get_json(format!("{base}/api/v1/targets?scrapePool=stay")).await;
    let active = t["data"]["activeTargets"].as_array().unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(
        active[0]["lastError"],
        "server returned HTTP status 302 Found"
    );
    running.state.scrape.stop_all();
    let _ = std::fs::remove_dir_all(dir);
}

/// The real binary: `--config.file`, and SIGHUP reloads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_reloads_on_sighup() {
    use std::io::BufRead as _;
    let dir = std::env::temp_dir().join(format!("emberlens-test-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    let job = |name: &str| {
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: {name}\n    static_configs: [{{targets: [\"127.0.0.1:1\"]}}]\n"
        )
    };
    write(&config, &job("before"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_emberlens"))
        .arg("--config.file")
        .arg(&config)
        .args([
            "--web.listen-address",
            "127.0.0.1:0",
            "--web.ui-path",
            "none",
        ])
        .arg("--storage.tsdb.path")
        .arg(dir.join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("Emberlens listening on ")
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let pools = |base: String| async move {
        let t = get_json(format!("{base}/api/v1/targets")).await;
        t["data"]["activeTargets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["scrapePool"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(pools(base.clone()).await, ["before"]);
    write(&config, &job("after"));
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    eventually("the reloaded config", || {
        let base = base.clone();
        async move { pools(base).await == ["after"] }
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
