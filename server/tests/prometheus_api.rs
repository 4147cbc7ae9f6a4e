//! The label, series, metadata and status endpoints of Prometheus's API v1 on
//! the real server, in-process on loopback: the server scrapes a fake
//! exporter under two jobs and serves a block written into its data
//! directory. Checks the shapes (snapshots where the data is fixed), matcher
//! and time-range filtering, limits, GET and POST, and the error bodies.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use common::TempDir;
use emberlens_model::{Labels, Sample};
use emberlens_server::{ServeOptions, serve};
use emberlens_tsdb::meta::Compaction;
use emberlens_tsdb::writer::{ulid, write_block};
use expect_test::{Expect, expect};
use serde_json::Value;

const EXPOSITION: &str = "\
# HELP widgets_total Widgets made.\n\
# TYPE widgets_total counter\n\
widgets_total{kind=\"a\"} 3\n\
widgets_total{kind=\"b\"} 4\n\
# HELP temp_celsius Temperature \\\\ in \\n degrees.\n\
# TYPE temp_celsius gauge\n\
# UNIT temp_celsius celsius\n\
temp_celsius 21.5\n\
# TYPE mystery untyped\n\
mystery 1\n";

async fn fake_exporter() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/metrics", get(|| async { EXPOSITION }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/metrics")
}

/// A block with two series at 1000 s … 1600 s (Unix), in `dir`.
fn write_old_block(dir: &std::path::Path) {
    let samples: Vec<Sample> = (0..=10)
        .map(|i| Sample {
            t_ms: 1_000_000 + i * 60_000,
            v: i as f64,
        })
        .collect();
    let block = write_block(
        &ulid(1_000_000, [3; 10]),
        vec![
            (
                Labels::from_pairs([
                    ("__name__", "old_metric"),
                    ("job", "blocks"),
                    ("zone", "eu"),
                ]),
                samples.clone(),
            ),
            (
                Labels::from_pairs([("__name__", "up"), ("job", "blocks")]),
                samples,
            ),
        ],
        Compaction::default(),
    )
    .unwrap();
    for (rel, bytes) in &block.files {
        let p = dir.join(&block.meta.ulid).join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

struct Server {
    base: String,
    client: reqwest::Client,
    _data: TempDir,
}

impl Server {
    async fn start() -> Server {
        let target = fake_exporter().await;
        let data = TempDir::new("promapi");
        write_old_block(&data.0);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = serve(
            listener,
            ServeOptions {
                data_dir: data.0.clone(),
                ui_dir: "does-not-exist".into(),
                scrape_interval: Duration::from_millis(200),
                extra_targets: vec![
                    ("widgets".into(), target.clone()),
                    ("gadgets".into(), target),
                ],
                ..ServeOptions::default()
            },
        )
        .await
        .unwrap();
        Server {
            base: format!("http://{}", running.addr),
            client: reqwest::Client::new(),
            _data: data,
        }
    }

    /// GET `path_and_query`: status and body.
    async fn get(&self, path_and_query: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{path_and_query}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// POST a form: status and body.
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn json(&self, path_and_query: &str) -> Value {
        let (status, body) = self.get(path_and_query).await;
        assert_eq!(status, 200, "{path_and_query}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// `GET` answers 200 with exactly `want`.
    async fn check(&self, path_and_query: &str, want: Expect) {
        let (status, body) = self.get(path_and_query).await;
        want.assert_eq(&format!("{status} {body}"));
    }
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

async fn scraped(s: &Server) {
    eventually("both jobs scraped", || async {
        let v = s
            .json("/api/v1/label/job/values?match[]=widgets_total")
            .await;
        v["data"].as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_labels_and_values_filter_by_matchers_and_time() {
    let s = Server::start().await;
    scraped(&s).await;

    // The block's series, by time range (Unix seconds and RFC 3339).
    s.check(
        "/api/v1/series?match[]=%7Bjob%3D%22blocks%22%7D&start=900&end=2000",
        expect![[r#"200 {"status":"success","data":[{"__name__":"old_metric","job":"blocks","zone":"eu"},{"__name__":"up","job":"blocks"}]}"#]],
    )
    .await;
    s.check(
        "/api/v1/series?match[]=old_metric&start=1970-01-01T00:26:00Z&end=1970-01-01T00:30:00Z",
        expect![[r#"200 {"status":"success","data":[{"__name__":"old_metric","job":"blocks","zone":"eu"}]}"#]],
    )
    .await;
    s.check(
        "/api/v1/series?match[]=old_metric&start=-292273086-05-16T16:47:06Z&end=292277025-08-18T07:12:54.999999999Z",
        expect![[r#"200 {"status":"success","data":[{"__name__":"old_metric","job":"blocks","zone":"eu"}]}"#]],
    )
    .await;
    s.check(
        "/api/v1/series?match[]=old_metric&start=1700&end=1800",
        expect![[r#"200 {"status":"success","data":[]}"#]],
    )
    .await;
    // Several selectors: union, sorted, no duplicates; limit cuts with a warning.
    s.check(
        "/api/v1/series?match[]=old_metric&match[]=%7Bzone%3D%22eu%22%7D&match[]=up%7Bjob%3D%22blocks%22%7D&end=2000&limit=1",
        expect![[r#"200 {"status":"success","data":[{"__name__":"old_metric","job":"blocks","zone":"eu"}],"warnings":["results truncated due to limit"]}"#]],
    )
    .await;
    s.check(
        "/api/v1/series?match[]=old_metric&match[]=%7Bzone%3D%22eu%22%7D&match[]=up%7Bjob%3D%22blocks%22%7D&end=2000&limit=2",
        expect![[r#"200 {"status":"success","data":[{"__name__":"old_metric","job":"blocks","zone":"eu"},{"__name__":"up","job":"blocks"}]}"#]],
    )
    .await;
    // Scraped series (the in-memory store), by POST form as Grafana sends it.
    let (status, body) = s
        .post(
            "/api/v1/series",
            &[("match[]", r#"widgets_total{job="widgets"}"#)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let kinds: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["a", "b"]);
    assert_eq!(v["data"][0]["job"], "widgets");
    assert!(v["data"][0]["instance"].is_string());

    // Label names: the block's only, when the range holds only the block.
    s.check(
        "/api/v1/labels?start=900&end=2000",
        expect![[r#"200 {"status":"success","data":["__name__","job","zone"]}"#]],
    )
    .await;
    let (status, body) = s
        .post(
            "/api/v1/labels",
            &[("match[]", "widgets_total"), ("limit", "2")],
        )
        .await;
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            r#"{"status":"success","data":["__name__","instance"],"warnings":["results truncated due to limit"]}"#
        )
    );
    let all = s.json("/api/v1/labels").await;
    for name in ["__name__", "instance", "job", "kind", "zone"] {
        assert!(
            all["data"].as_array().unwrap().iter().any(|n| n == name),
            "{name}: {all}"
        );
    }

    // Label values, `__name__` included.
    s.check(
        "/api/v1/label/__name__/values?start=900&end=2000",
        expect![[r#"200 {"status":"success","data":["old_metric","up"]}"#]],
    )
    .await;
    s.check(
        "/api/v1/label/job/values?match[]=widgets_total",
        expect![[r#"200 {"status":"success","data":["gadgets","widgets"]}"#]],
    )
    .await;
    s.check(
        "/api/v1/label/kind/values?match[]=widgets_total%7Bjob%3D%22widgets%22%7D&match[]=up",
        expect![[r#"200 {"status":"success","data":["a","b"]}"#]],
    )
    .await;
    s.check(
        "/api/v1/label/zone/values?start=1700&end=1800",
        expect![[r#"200 {"status":"success","data":[]}"#]],
    )
    .await;
    let names = s.json("/api/v1/label/__name__/values").await;
    for n in [
        "mystery",
        "old_metric",
        "temp_celsius",
        "up",
        "widgets_total",
    ] {
        assert!(
            names["data"].as_array().unwrap().iter().any(|v| v == n),
            "{n}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_and_series_errors_in_prometheus_shape() {
    let s = Server::start().await;
    s.check(
        "/api/v1/series",
        expect![[r#"400 {"status":"error","errorType":"bad_data","error":"no match[] parameter provided"}"#]],
    )
    .await;
    s.check(
        "/api/v1/series?match[]=%7Bjob%3D%22%22%7D",
        expect![[r#"400 {"status":"error","errorType":"bad_data","error":"bad series selector at 0: vector selector must contain at least one non-empty matcher"}"#]],
    )
    .await;
    s.check(
        "/api/v1/series?match[]=up%7B",
        expect![[r#"400 {"status":"error","errorType":"bad_data","error":"bad series selector at 3: expected a label name, found end of input"}"#]],
    )
    .await;
    s.check(
        "/api/v1/labels?limit=-1",
        expect![[r#"400 {"status":"error","errorType":"bad_data","error":"invalid parameter \"limit\": limit must be non-negative"}"#]],
    )
    .await;
    s.check(
        "/api/v1/labels?limit=abc",
        expect![[r#"400 {"status":"error","errorType":"bad_data","error":"invalid parameter \"limit\": strconv.Atoi: parsing \"abc\": invalid syntax"}"#]],
    )
    .await;
    s.check(
        "/api/v1/label/job/values?start=yesterday",
        expect![[r#"400 {"status":"error","errorType":"bad_data","error":"invalid parameter \"start\": invalid time value for 'start': cannot parse \"yesterday\" to a valid timestamp"}"#]],
    )
    .await;
    s.check(
        "/api/v1/label/a-b/values",
        expect![[
            r#"400 {"status":"error","errorType":"bad_data","error":"invalid label name: \"a-b\""}"#
        ]],
    )
    .await;
    // Label values are GET only, as in Prometheus.
    let (status, _) = s.post("/api/v1/label/job/values", &[]).await;
    assert_eq!(status, 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_from_scraped_type_help_and_unit_lines() {
    let s = Server::start().await;
    scraped(&s).await;
    eventually("metadata recorded", || async {
        let v = s.json("/api/v1/metadata?metric=temp_celsius").await;
        v["data"]["temp_celsius"].is_array()
    })
    .await;
    // Two targets expose the same metadata: listed once.
    s.check(
        "/api/v1/metadata?metric=temp_celsius",
        expect![[r#"200 {"status":"success","data":{"temp_celsius":[{"type":"gauge","help":"Temperature \\ in \n degrees.","unit":"celsius"}]}}"#]],
    )
    .await;
    s.check(
        "/api/v1/metadata?metric=mystery",
        expect![[r#"200 {"status":"success","data":{"mystery":[{"type":"unknown","help":"","unit":""}]}}"#]],
    )
    .await;
    s.check(
        "/api/v1/metadata?metric=nothing",
        expect![[r#"200 {"status":"success","data":{}}"#]],
    )
    .await;
    // Without `metric`: every family (the server's own too: the default
    // config scrapes it), `limit` families at most.
    let all = s.json("/api/v1/metadata").await;
    assert_eq!(all["data"]["widgets_total"][0]["type"], "counter");
    let two = s.json("/api/v1/metadata?limit=2").await;
    assert_eq!(two["data"].as_object().unwrap().len(), 2);
    s.check(
        "/api/v1/metadata?limit=x",
        expect![[
            r#"400 {"status":"error","errorType":"bad_data","error":"limit must be a number"}"#
        ]],
    )
    .await;

    // Per target.
    let (status, body) = s
        .get("/api/v1/targets/metadata?match_target=%7Bjob%3D%22widgets%22%7D")
        .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    let instance = v["data"][0]["target"]["instance"].as_str().unwrap();
    let text = body.replace(instance, "HOST:PORT");
    expect![[r#"{"status":"success","data":[{"target":{"instance":"HOST:PORT","job":"widgets"},"metric":"mystery","type":"unknown","help":"","unit":""},{"target":{"instance":"HOST:PORT","job":"widgets"},"metric":"temp_celsius","type":"gauge","help":"Temperature \\ in \n degrees.","unit":"celsius"},{"target":{"instance":"HOST:PORT","job":"widgets"},"metric":"widgets_total","type":"counter","help":"Widgets made.","unit":""}]}"#]].assert_eq(&text);
    let (status, body) = s
        .get("/api/v1/targets/metadata?metric=widgets_total&match_target=%7Bjob%3D~%22widgets%7Cgadgets%22%7D")
        .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    let rows = v["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r.get("metric").is_none() && r["type"] == "counter")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_placeholder_endpoints() {
    let s = Server::start().await;
    scraped(&s).await;

    let b = s.json("/api/v1/status/buildinfo").await;
    let keys: Vec<&String> = b["data"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "branch",
            "buildDate",
            "buildUser",
            "goVersion",
            "revision",
            "version"
        ]
    );
    assert_eq!(b["data"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        b["data"]["goVersion"].as_str().unwrap().starts_with("rust"),
        "{b}"
    );

    let f = s.json("/api/v1/status/flags").await;
    assert_eq!(f["data"]["web.cors.origin"], ".*");
    assert_eq!(f["data"]["web.auth-token"], "false");

    let r = s.json("/api/v1/status/runtimeinfo").await;
    assert_eq!(r["data"]["reloadConfigSuccess"], true);
    assert_eq!(r["data"]["storageRetention"], "2w1d"); // 15d, as Prometheus's model.Duration prints it
    assert!(r["data"]["startTime"].as_str().unwrap().ends_with('Z'));

    // TSDB status: the block's and the scraped series together.
    let t = s.json("/api/v1/status/tsdb?limit=50").await;
    let head = &t["data"]["headStats"];
    let series = head["numSeries"].as_u64().unwrap();
    assert!(series >= 2 + 2 * 9, "{t}");
    assert_eq!(head["minTime"], 1_000_000, "the block's start: {t}");
    assert!(head["maxTime"].as_i64().unwrap() > 1_700_000_000_000, "{t}");
    assert!(head["chunkCount"].as_u64().unwrap() >= 2, "{t}");
    let by_name = t["data"]["seriesCountByMetricName"].as_array().unwrap();
    let count = |name: &str| {
        by_name
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["value"].as_u64().unwrap())
    };
    assert_eq!(count("widgets_total"), Some(4));
    assert_eq!(count("old_metric"), Some(1));
    let pairs = t["data"]["seriesCountByLabelValuePair"].as_array().unwrap();
    assert!(pairs.iter().any(|p| p["name"] == "job=widgets"), "{t}");
    let top10 = s.json("/api/v1/status/tsdb").await;
    for k in [
        "seriesCountByMetricName",
        "labelValueCountByLabelName",
        "memoryInBytesByLabelName",
        "seriesCountByLabelValuePair",
    ] {
        assert!(top10["data"][k].as_array().unwrap().len() <= 10, "{k}");
    }
    s.check(
        "/api/v1/status/tsdb?limit=0",
        expect![[r#"400 {"status":"error","errorType":"bad_data","error":"limit must be a positive number"}"#]],
    )
    .await;

    s.check(
        "/api/v1/query_exemplars?query=up&start=0&end=10",
        expect![[r#"200 {"status":"success","data":[]}"#]],
    )
    .await;
    s.check(
        "/api/v1/no/such/endpoint",
        expect![[r#"404 {"status":"error","errorType":"not_found","error":"unknown API endpoint /api/v1/no/such/endpoint"}"#]],
    )
    .await;
    s.check(
        "/api/v1/rules",
        expect![[r#"200 {"status":"success","data":{"groups":[]}}"#]],
    )
    .await;
    s.check(
        "/api/v1/alerts",
        expect![[r#"200 {"status":"success","data":{"alerts":[]}}"#]],
    )
    .await;
}
