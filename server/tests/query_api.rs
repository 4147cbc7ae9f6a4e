//! `/api/v1/query` and `/api/v1/query_range` on the real server, in-process on
//! loopback, over what it scraped and over the blocks of its data directory:
//! GET and POST forms, Prometheus's shapes,
//! status codes and error messages.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use emberlens_server::{ServeOptions, serve};
use serde_json::Value;

use common::fake_target;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_over_scraped_data_in_prometheus_shapes() {
    let target = fake_target(
        "# TYPE widgets_total counter\nwidgets_total{kind=\"a\"} 3\nwidgets_total{kind=\"b\"} 4\n",
    )
    .await;
    let data = std::env::temp_dir().join(format!("emberlens-qapi-{}", std::process::id()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = serve(
        listener,
        ServeOptions {
            data_dir: data.clone(),
            ui_dir: "does-not-exist".into(),
            scrape_interval: Duration::from_millis(200),
            extra_targets: vec![("widgets".into(), target)],
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", running.addr);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let client = reqwest::Client::new();

    // GET instant query: a sum over the scraped target.
    let r = client
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", r#"sum by (job) (widgets_total)"#)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(v["data"]["result"][0]["metric"]["job"], "widgets");
    assert_eq!(v["data"]["result"][0]["value"][1], "7");

    // POST form range query: `up` of the target, one point per step.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let r = client
        .post(format!("{base}/api/v1/query_range"))
        .form(&[
            ("query", r#"up{job="widgets"}"#.to_string()),
            ("start", format!("{}", now - 0.2)),
            ("end", format!("{now}")),
            ("step", "0.1".to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"]["resultType"], "matrix");
    let values = v["data"]["result"][0]["values"].as_array().unwrap();
    assert_eq!(values.len(), 3);
    assert!(values.iter().all(|p| p[1] == "1"));

    // Errors: parse error (400, bad_data), bad step, runtime error (422).
    let r = client
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", "sum(")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errorType"], "bad_data");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid parameter \"query\": 1:5: parse error:"),
        "{v}"
    );
    let r = client
        .get(format!("{base}/api/v1/query_range"))
        .query(&[
            ("query", "up"),
            ("start", "10"),
            ("end", "20"),
            ("step", "0"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"],
        "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"
    );
    let r = client
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", "widgets_total + ignoring(kind) widgets_total")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errorType"], "execution");
    // A 1 ms timeout on an 11,000-step query: Prometheus's timeout error (503).
    let r = client
        .get(format!("{base}/api/v1/query_range"))
        .query(&[
            ("query", "sum(widgets_total) * 2 + count(up)"),
            ("start", &format!("{}", now - 110.0)),
            ("end", &format!("{now}")),
            ("step", "0.01"),
            ("timeout", "1ms"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errorType"], "timeout");
    assert_eq!(v["error"], "query timed out in expression evaluation");
    running.server.abort();
    let _ = std::fs::remove_dir_all(data);
}

/// `--storage.tsdb.path` holding Prometheus blocks: the server answers from
/// them (merged with what it scrapes), byte for byte as the engine over the
/// blocks alone, for the recorded oracle queries of both fixture datasets.
/// (The recorded Prometheus 2.42 answers themselves differ where a sample
/// sits on a window's left edge; `promql_differential` covers that.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_over_existing_blocks_answers_from_the_blocks() {
    use emberlens_model::{parse_duration_ms, parse_time_ms};
    use emberlens_promql::api::response_json;
    use emberlens_promql::{EngineOpts, instant_query, range_query};
    let Some(fx) = common::shared_fixtures() else {
        return;
    };
    let mut compared = 0;
    for (dataset, data) in [
        ("tsdb/synthetic-6h", "tsdb/synthetic-6h/data"),
        ("tsdb/snapshot-live", "tsdb/snapshot-live"),
    ] {
        let dir = common::TempDir::new("qapi-blocks");
        common::copy_tree(&fx.join(data), &dir.0);
        let db =
            emberlens_tsdb::Db::open(&emberlens_server::fileset::DirFileSet::open(&dir.0).unwrap())
                .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = serve(
            listener,
            ServeOptions {
                data_dir: dir.0.clone(),
                ui_dir: "does-not-exist".into(),
                scrape_interval: Duration::from_secs(3600),
                ..ServeOptions::default()
            },
        )
        .await
        .unwrap();
        let base = format!("http://{}", running.addr);
        let client = reqwest::Client::new();
        let mut files: Vec<_> = std::fs::read_dir(fx.join("oracle/expected"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let expected: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
            if expected["dataset"] != dataset {
                continue;
            }
            let param = |k: &str| expected["params"][k].as_str().unwrap().to_string();
            let endpoint = expected["endpoint"].as_str().unwrap();
            let (want, params) = if endpoint == "/api/v1/query" {
                let t = parse_time_ms(&param("time")).unwrap();
                let r = instant_query(&db, &EngineOpts::default(), &param("query"), t);
                (
                    response_json(&r),
                    vec![("query", param("query")), ("time", param("time"))],
                )
            } else {
                let (start, end) = (param("start"), param("end"));
                let r = range_query(
                    &db,
                    &EngineOpts::default(),
                    &param("query"),
                    parse_time_ms(&start).unwrap(),
                    parse_time_ms(&end).unwrap(),
                    parse_duration_ms(&param("step")).unwrap(),
                );
                let params = vec![
                    ("query", param("query")),
                    ("start", start),
                    ("end", end),
                    ("step", param("step")),
                ];
                (response_json(&r), params)
            };
            assert!(want.contains(r#""result":[{"#), "{}: {want}", f.display());
            let r = client
                .get(format!("{base}{endpoint}"))
                .query(&params)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", f.display());
            assert_eq!(r.text().await.unwrap(), want, "{}", f.display());
            compared += 1;
        }
        running.server.abort();
    }
    assert_eq!(compared, 15);
}
