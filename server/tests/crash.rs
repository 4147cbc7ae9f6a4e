//! `kill -9` during heavy ingestion: clients push samples through the remote
//! write receiver as fast as the server takes them, the process is killed
//! mid-stream, and after a restart every sample the server acknowledged
//! (204) is there. Prints the figures: samples acknowledged, lost (must be
//! 0: a commit reaches the OS before it is acknowledged), and the loss
//! window in seconds (the time between the last acknowledged write that was
//! lost and the kill; 0 when nothing was lost).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TempDir;
use emberlens_model::{Labels, Storage, parse_selector};

/// Starts the binary with the remote write receiver; returns it and its URL.
fn spawn(data: &std::path::Path) -> (Child, String) {
    common::spawn_emberlens(data, &["--scrape.interval", "1h"])
}

/// What one client had acknowledged: per series, the timestamps, and when
/// each acknowledgement arrived.
type Acked = Vec<(Instant, Vec<(Labels, i64)>)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_acknowledged() {
    let data = TempDir::new("crash");
    let (mut child, base) = spawn(&data.0);
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    // Four clients, each its own 200 series, 10 samples per series per request.
    for c in 0..4 {
        let (acked, stop, url) = (acked.clone(), stop.clone(), format!("{base}/api/v1/write"));
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let series: Vec<Labels> = (0..200)
                .map(|i| {
                    Labels::from_pairs([
                        ("__name__", "load_test".to_string()),
                        ("client", c.to_string()),
                        ("i", i.to_string()),
                    ])
                })
                .collect();
            let mut t = 1_700_000_000_000i64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut samples = Vec::new();
                for k in 0..10 {
                    for l in &series {
                        samples.push((l, t + k, (t + k) as f64));
                    }
                }
                let req = emberlens_remote::convert::write_request_from_samples(
                    samples.iter().map(|(l, t, v)| (*l, *t, *v)),
                );
                let body = emberlens_remote::codec::encode_write_request(&req).unwrap();
                let sent = http
                    .post(&url)
                    .header("content-encoding", "snappy")
                    .header("content-type", "application/x-protobuf")
                    .header("x-prometheus-remote-write-version", "0.1.0")
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 204 => {
                        let keys = samples.iter().map(|(l, t, _)| ((*l).clone(), *t)).collect();
                        acked.lock().unwrap().push((Instant::now(), keys));
                    }
                    Ok(r) => panic!("write answered {}", r.status()),
                    // The server was killed mid-request: not acknowledged.
                    Err(_) => return,
                }
                t += 10;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    child.kill().unwrap(); // SIGKILL
    let killed_at = Instant::now();
    child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }

    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let n_acked: usize = acked.iter().map(|(_, k)| k.len()).sum();
    assert!(
        n_acked > 10_000,
        "only {n_acked} samples acknowledged in 3 s"
    );

    // Restart on the same directory: the WAL is replayed.
    let (mut child, base) = spawn(&data.0);
    let client = reqwest::Client::new();
    let up: serde_json::Value = client
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", "count(load_test)"), ("time", "1700000100")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(up["data"]["result"][0]["value"][1], "800", "{up}");
    child.kill().unwrap();
    child.wait().unwrap();

    // Every acknowledged sample, checked in the store itself.
    let db = emberlens_server::store::Tsdb::open(&data.0, Default::default()).unwrap();
    let mut stored: BTreeMap<Labels, std::collections::HashSet<i64>> = BTreeMap::new();
    for s in db
        .select(&parse_selector("load_test").unwrap(), i64::MIN, i64::MAX)
        .unwrap()
    {
        stored.insert(s.labels, s.samples.iter().map(|x| x.t_ms).collect());
    }
    let mut lost = 0usize;
    let mut first_lost_ack: Option<Instant> = None;
    for (at, keys) in &acked {
        for (l, t) in keys {
            if !stored.get(l).is_some_and(|ts| ts.contains(t)) {
                lost += 1;
                first_lost_ack.get_or_insert(*at);
            }
        }
    }
    let stored_total: usize = stored.values().map(|s| s.len()).sum();
    let window = first_lost_ack.map_or(0.0, |at| killed_at.duration_since(at).as_secs_f64());
    eprintln!(
        "kill -9: {n_acked} samples acknowledged, {stored_total} stored after restart \
         ({} written but not acknowledged), {lost} acknowledged samples lost; loss window {window:.3} s",
        stored_total.saturating_sub(n_acked - lost)
    );
    assert_eq!(
        lost, 0,
        "acknowledged samples lost; loss window {window:.3} s"
    );
}
