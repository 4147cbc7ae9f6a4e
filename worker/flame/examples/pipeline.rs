//! Times decode, model build, flame tree and top table on one profile and
//! prints the peak resident memory (Linux): the native side of the
//! benchmark figures in the issue.
//!
//! `cargo run --release -p emberlens-flame --example pipeline -- /tmp/large-50mb.pb.gz`
// A native measuring tool: it reads a file and the clock.
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::unwrap_used,
    missing_docs
)]

use std::time::Instant;

use emberlens_flame::top::TopOptions;
use emberlens_flame::{Model, Options};

fn peak_rss_mib() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or_else(|| "?".into(), |kb| format!("{:.0} MiB", kb / 1024.0))
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/large-5mb.pb.gz".into());
    let bytes = std::fs::read(&path).unwrap();
    if std::env::var_os("STREAM_ONLY").is_some() {
        let t = Instant::now();
        let m = Model::from_bytes(&bytes, 1 << 31).unwrap();
        let t_model = t.elapsed();
        let rss_model = peak_rss_mib();
        let tree = m.flame_tree(&Options::default()).unwrap();
        println!(
            "{path}: Model::from_bytes {:.2?} (peak RSS {rss_model}), +flame tree {:.2?} ({} nodes), total {:.2?}; peak RSS {}",
            t_model,
            t.elapsed() - t_model,
            tree.nodes.len(),
            t.elapsed(),
            peak_rss_mib()
        );
        return;
    }
    let t = Instant::now();
    let p = emberlens_pprof::decode(&bytes).unwrap();
    let t_decode = t.elapsed();
    let rss_decode = peak_rss_mib();
    let m = Model::from_pprof(&p).unwrap();
    let t_model = t.elapsed();
    let rss_model = peak_rss_mib();
    drop(p);
    let tree = m.flame_tree(&Options::default()).unwrap();
    let t_tree = t.elapsed();
    println!(
        "{path}: {} samples, {} tree nodes; decode {:.2?}, +model {:.2?}, +flame tree {:.2?} (decode+model+tree {:.2?}); peak RSS after decode {rss_decode}, after model {rss_model}, after tree {}",
        m.sample_count(),
        tree.nodes.len(),
        t_decode,
        t_model - t_decode,
        t_tree - t_model,
        t_tree,
        peak_rss_mib()
    );
    drop(tree);
    drop(m);
    let t = Instant::now();
    let m = Model::from_bytes(&bytes, 1 << 31).unwrap();
    let t_model = t.elapsed();
    let tree = m.flame_tree(&Options::default()).unwrap();
    println!(
        "Model::from_bytes {:.2?}, +flame tree {:.2?} ({} nodes); peak RSS {}",
        t_model,
        t.elapsed() - t_model,
        tree.nodes.len(),
        peak_rss_mib()
    );
    drop(tree);
    let t = Instant::now();
    let top = m.top(&Options::default(), &TopOptions::default()).unwrap();
    println!(
        "top table: {} rows in {:.2?}; peak RSS {}",
        top.rows.len(),
        t.elapsed(),
        peak_rss_mib()
    );
}
