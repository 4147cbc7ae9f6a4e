//! Profiles end to end, on loopback: a fake target serving Prometheus's real
//! Go profiles (`../shared/fixtures/pprof/`) at `/debug/pprof/*`, scraped by
//! Emberlens from a `profiling_config`; the profiles listed by selector and
//! time, one fetched byte for byte, two merged (values summed, and
//! `go tool pprof` reads the merge), CPU + heap refused, a target serving
//! garbage reported; a snapshot holds the profiles. Then Emberlens's own
//! CPU profile endpoint, while the test burns CPU.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::RawQuery;
use axum::routing::get;
use common::{TempDir, shared_fixtures};
use emberlens_server::{ServeOptions, serve};
use serde_json::Value;

/// The fake target: `/metrics`, and the fixtures at `/debug/pprof/profile`
/// (CPU, recording its query string), `/heap`, `/allocs`; `/goroutine`
/// serves text that is not a profile. Returns `host:port`.
async fn fake_target(
    cpu: Vec<u8>,
    heap: Vec<u8>,
    allocs: Vec<u8>,
    queries: Arc<Mutex<Vec<String>>>,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/metrics", get(|| async { "up_thing 1\n" }))
        .route(
            "/debug/pprof/profile",
            get(move |RawQuery(q): RawQuery| {
                let cpu = cpu.clone();
                let queries = queries.clone();
                async move {
                    queries.lock().unwrap().push(q.unwrap_or_default());
                    cpu
                }
            }),
        )
        .route("/debug/pprof/heap", get(move || async move { heap }))
        .route("/debug/pprof/allocs", get(move || async move { allocs }))
        .route(
            "/debug/pprof/goroutine",
            get(|| async { "goroutine 1 [running]:\nmain.main()\n" }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr.to_string()
}

async fn get_json(url: &str) -> (u16, Value) {
    let resp = reqwest::get(url).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn get_bytes(url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let resp = reqwest::get(url).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The listed profiles for `selector` (all with `None`) and an optional range.
async fn list(base: &str, selector: Option<&str>, range: &str) -> Vec<Value> {
    let m = selector
        .map(|s| format!("match[]={}&", enc(s)))
        .unwrap_or_default();
    let (status, v) = get_json(&format!("{base}/api/v1/profiles?{m}{range}")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "success");
    v["data"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_profiles_are_listed_fetched_merged_and_snapshotted() {
    let Some(fixtures) = shared_fixtures() else {
        return;
    };
    let read = |name: &str| std::fs::read(fixtures.join("pprof").join(name)).unwrap();
    let (cpu, heap, allocs) = (
        read("prometheus-2.42.0-cpu-15s.pb.gz"),
        read("prometheus-2.42.0-heap.pb.gz"),
        read("prometheus-2.42.0-allocs.pb.gz"),
    );
    let queries = Arc::new(Mutex::new(Vec::new()));
    let target = fake_target(cpu.clone(), heap.clone(), allocs.clone(), queries.clone()).await;
    let data = TempDir::new("profiles");
    let config = data.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 2s, scrape_timeout: 2s}}\n\
             scrape_configs:\n\
             \x20 - job_name: fake\n\
             \x20   static_configs: [{{targets: [\"{target}\"], labels: {{env: test}}}}]\n\
             \x20   profiling_config:\n\
             \x20     delta_profiling_duration: 1s\n\
             \x20     pprof_config:\n\
             \x20       heap: {{enabled: true}}\n\
             \x20       mutex: {{enabled: false}}\n\
             \x20       block: {{enabled: false}}\n"
        ),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = serve(
        listener,
        ServeOptions {
            data_dir: data.0.join("data"),
            ui_dir: "none".into(),
            config_file: Some(config.clone()),
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", running.addr);

    // Two CPU profiles (two intervals), and the goroutine endpoint failing.
    let cpu_sel = "{__name__=\"process_cpu\",job=\"fake\"}";
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if list(&base, Some(cpu_sel), "").await.len() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "two CPU profiles within 15 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        queries.lock().unwrap().iter().all(|q| q == "seconds=1"),
        "{:?}",
        queries.lock().unwrap()
    );

    let cpus = list(&base, Some(cpu_sel), "").await;
    let first = &cpus[0];
    assert_eq!(first["type"], "process_cpu");
    assert_eq!(
        first["labels"],
        serde_json::json!({"__name__": "process_cpu", "env": "test", "instance": target, "job": "fake"})
    );
    assert_eq!(
        first["sampleTypes"],
        serde_json::json!(["samples/count", "cpu/nanoseconds"])
    );
    assert_eq!(first["periodType"], "cpu/nanoseconds");
    assert_eq!(first["size"], cpu.len());
    assert!(
        first["durationSeconds"].as_f64().unwrap() > 14.0,
        "the fixture's 15 s"
    );

    // Selectors: by type, by regex, and every type of the job.
    let heaps = list(&base, Some("{__name__=\"heap\"}"), "").await;
    assert!(!heaps.is_empty() && heaps.iter().all(|h| h["type"] == "heap"));
    let memory = list(&base, Some("{__name__=~\"mem.*\",env=\"test\"}"), "").await;
    assert!(!memory.is_empty() && memory.iter().all(|h| h["type"] == "memory"));
    assert!(list(&base, Some("{job=\"nope\"}"), "").await.is_empty());
    assert!(
        list(&base, Some("{__name__=\"goroutine\"}"), "")
            .await
            .is_empty(),
        "garbage is not stored"
    );

    // Time range: [first, second] holds exactly those two; before the first, nothing.
    let (t0, t1) = (
        cpus[0]["timestamp"].as_f64().unwrap(),
        cpus[1]["timestamp"].as_f64().unwrap(),
    );
    let two = list(&base, Some(cpu_sel), &format!("start={t0}&end={t1}")).await;
    assert_eq!(
        two.iter().map(|p| &p["id"]).collect::<Vec<_>>(),
        [&cpus[0]["id"], &cpus[1]["id"]]
    );
    assert!(
        list(&base, Some(cpu_sel), &format!("end={}", t0 - 0.001))
            .await
            .is_empty()
    );
    let (status, v) = get_json(&format!("{base}/api/v1/profiles?start={t1}&end={t0}")).await;
    assert_eq!((status, v["errorType"].as_str()), (400, Some("bad_data")));

    // One profile, byte for byte what the target served.
    let id = first["id"].as_str().unwrap();
    let (status, _, body) = get_bytes(&format!("{base}/api/v1/profiles/{id}")).await;
    assert_eq!(status, 200);
    assert!(body == cpu, "stored profile differs from the served one");
    let (status, _, _) = get_bytes(&format!(
        "{base}/api/v1/profiles/01ARZ3NDEKTSV4RRFFQ69G5FAV"
    ))
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = get_bytes(&format!("{base}/api/v1/profiles/..%2F..%2Fetc")).await;
    assert_eq!(status, 400);

    // Merge of the two: every value summed.
    let (status, headers, merged) = get_bytes(&format!(
        "{base}/api/v1/profiles/merge?match[]={}&start={t0}&end={t1}",
        enc(cpu_sel)
    ))
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&merged));
    assert_eq!(headers["x-emberlens-merged-profiles"], "2");
    let merged = emberlens_pprof::decode(&merged).unwrap();
    let one = emberlens_pprof::decode(&cpu).unwrap();
    let doubled: Vec<i64> = one.totals().iter().map(|v| v * 2).collect();
    assert_eq!(merged.totals(), doubled);
    assert!(merged.totals()[1] > 0);
    assert_eq!(merged.duration_nanos, 2 * one.duration_nanos);

    // CPU and heap together: refused in Prometheus's error shape.
    let (status, v) = get_json(&format!(
        "{base}/api/v1/profiles/merge?match[]={}",
        enc("{job=\"fake\"}")
    ))
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "bad_data");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("incompatible sample types"),
        "{v}"
    );
    let (status, v) = get_json(&format!(
        "{base}/api/v1/profiles/merge?match[]={}",
        enc("{job=\"nope\"}")
    ))
    .await;
    assert_eq!((status, v["errorType"].as_str()), (404, Some("not_found")));

    // The failing endpoint: in /api/v1/profiles/targets and on /metrics.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = get_json(&format!("{base}/api/v1/profiles/targets")).await;
        let rows = v["data"].as_array().unwrap();
        let types: Vec<&str> = rows.iter().map(|r| r["type"].as_str().unwrap()).collect();
        assert_eq!(types.len(), 4, "process_cpu, memory, goroutine, heap: {v}");
        let g = rows.iter().find(|r| r["type"] == "goroutine").unwrap();
        if g["health"] == "down" {
            assert!(
                g["lastError"]
                    .as_str()
                    .unwrap()
                    .starts_with("not a pprof profile"),
                "{g}"
            );
            assert_eq!(
                g["scrapeUrl"],
                format!("http://{target}/debug/pprof/goroutine")
            );
            let c = rows.iter().find(|r| r["type"] == "process_cpu").unwrap();
            assert_eq!(c["health"], "up");
            assert_eq!(
                c["scrapeUrl"],
                format!("http://{target}/debug/pprof/profile?seconds=1")
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "goroutine scrape reported down: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("emberlens_profile_scrapes_failed_total{job=\"fake\",type=\"goroutine\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("emberlens_profile_scrapes_total{job=\"fake\",type=\"process_cpu\"}"));
    assert!(metrics.contains("emberlens_profiles_stored "));

    // `go tool pprof` reads the merge (the reference implementation).
    if let Some(go) = common::program("go") {
        let path = data.0.join("merged.pb.gz");
        let (_, _, merged) = get_bytes(&format!(
            "{base}/api/v1/profiles/merge?match[]={}&start={t0}&end={t1}",
            enc(cpu_sel)
        ))
        .await;
        std::fs::write(&path, merged).unwrap();
        let out = std::process::Command::new(go)
            .args(["tool", "pprof", "-top"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let top = String::from_utf8_lossy(&out.stdout);
        assert!(top.contains("Type: cpu") && top.contains("flat%"), "{top}");
    }

    // A snapshot holds every stored profile, listed in its manifest.
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/admin/tsdb/snapshot"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    let name = v["data"]["name"].as_str().unwrap();
    let snap = data.0.join("data/snapshots").join(name);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(snap.join("emberlens.json")).unwrap()).unwrap();
    let listed = manifest["profiles"].as_array().unwrap();
    let stored_before = cpus.len() + heaps.len() + memory.len();
    assert!(
        listed.len() >= stored_before,
        "{} listed, {stored_before} stored",
        listed.len()
    );
    for p in listed {
        let file = snap.join(p["file"].as_str().unwrap());
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(bytes.len() as u64, p["size"].as_u64().unwrap());
        emberlens_pprof::decode(&bytes).unwrap();
        assert_eq!(p["labels"]["job"], "fake");
        assert!(p["time"].as_str().unwrap().ends_with('Z'));
    }
    let cpu_entry = listed.iter().find(|p| p["id"] == first["id"]).unwrap();
    assert_eq!(cpu_entry["type"], "process_cpu");
    assert_eq!(
        std::fs::read(snap.join(cpu_entry["file"].as_str().unwrap())).unwrap(),
        cpu
    );

    // A reload without `profiling_config` stops the profile loops (the
    // metrics loop of the changed target restarts without them).
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 2s, scrape_timeout: 2s}}\n\
             scrape_configs:\n\
             \x20 - job_name: fake\n\
             \x20   static_configs: [{{targets: [\"{target}\"], labels: {{env: test}}}}]\n"
        ),
    )
    .unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{base}/-/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, v) = get_json(&format!("{base}/api/v1/profiles/targets")).await;
        if v["data"] == serde_json::json!([]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "profile loops after the reload: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A scrape in flight at the reload may still land; then nothing more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let settled = list(&base, None, "").await.len();
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert_eq!(
        list(&base, None, "").await.len(),
        settled,
        "profiles stored after the reload"
    );
}

/// Emberlens's own CPU profile: a decodable pprof with samples taken while
/// the test burns CPU; a second request meanwhile gets 409; over 60 s is 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_cpu_profile_has_samples() {
    let data = TempDir::new("selfprof");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = serve(
        listener,
        ServeOptions {
            data_dir: data.0.clone(),
            ui_dir: "none".into(),
            // Below 2 s the default config profiles nothing, so the
            // profiler is free for this test.
            scrape_interval: Duration::from_millis(500),
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", running.addr);
    let (status, v) = get_json(&format!("{base}/debug/pprof/profile?seconds=61")).await;
    assert_eq!((status, v["errorType"].as_str()), (400, Some("bad_data")));

    let burn = std::thread::spawn(|| {
        let until = Instant::now() + Duration::from_millis(2500);
        let mut x = 1u64;
        while Instant::now() < until {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
            }
        }
        x
    });
    let url = format!("{base}/debug/pprof/profile?seconds=2");
    let profile = tokio::spawn(async move { get_bytes(&url).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, v) = get_json(&format!("{base}/debug/pprof/profile?seconds=1")).await;
    assert_eq!(status, 409, "one profile at a time: {v}");
    let (status, headers, body) = profile.await.unwrap();
    std::hint::black_box(burn.join().unwrap());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert!(emberlens_pprof::is_gzip(&body));
    let p = emberlens_pprof::decode(&body).unwrap();
    assert_eq!(p.sample_type_names(), ["samples/count", "cpu/nanoseconds"]);
    assert!(!p.sample.is_empty(), "no samples");
    // 2 s of one busy thread at 100 Hz is ~200 samples on an idle machine;
    // SIGPROF counts CPU time, so a loaded CI machine gives fewer.
    assert!(p.totals()[0] >= 10, "only {} samples", p.totals()[0]);
    let (status, v) = get_json(&format!("{base}/debug/pprof/heap")).await;
    assert_eq!(
        (status, v["errorType"].as_str()),
        (501, Some("unavailable"))
    );
}
