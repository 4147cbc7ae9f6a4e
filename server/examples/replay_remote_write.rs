//! Replays hours of the fake exporter's scrapes in minutes, as remote-write
//! requests, to one or more receivers: the input of `tools/bench-bytes.sh`,
//! which measures block bytes per sample with real 2 h blocks.
//!
//! Each step GETs `/metrics/<i>` once per target (every request moves the
//! fake exporter's values on by one scrape interval), stamps the samples
//! with `start + step × interval` (exact, as aligned scrapes are), adds
//! `job` and `instance`, and POSTs one snappy-compressed `WriteRequest` per
//! target to every receiver. Steps go in time order across all targets,
//! because a head only accepts samples within its append window.
//!
//! ```text
//! cargo run --release -p emberlens-server --example replay_remote_write -- \
//!   --exporter 127.0.0.1:PORT --targets 20 --steps 961 --start-ms T0 \
//!   --write http://127.0.0.1:9090/api/v1/write --write http://127.0.0.1:9190/api/v1/write
//! ```

use anyhow::{Context, bail};
use clap::Parser;
use emberlens_model::Labels;
use emberlens_textparse::Entry;

/// Flags.
#[derive(Parser, Debug)]
struct Args {
    /// The fake exporter's address (`host:port`).
    #[arg(long)]
    exporter: String,
    /// Targets (`/metrics/0` … `/metrics/<N-1>`).
    #[arg(long, default_value_t = 20)]
    targets: usize,
    /// Scrapes per target.
    #[arg(long, default_value_t = 961)]
    steps: usize,
    /// Time of the first scrape, Unix milliseconds.
    #[arg(long)]
    start_ms: i64,
    /// Scrape interval, milliseconds.
    #[arg(long, default_value_t = 15_000)]
    interval_ms: i64,
    /// Remote-write URLs to send every request to.
    #[arg(long, required = true)]
    write: Vec<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::new();
    let mut sent = 0u64;
    let started = std::time::Instant::now();
    for step in 0..args.steps {
        let t = args.start_ms + step as i64 * args.interval_ms;
        for target in 0..args.targets {
            let url = format!("http://{}/metrics/{target}", args.exporter);
            let body = client
                .get(&url)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .with_context(|| format!("GET {url}"))?
                .text()
                .await
                .with_context(|| format!("GET {url}"))?;
            let entries =
                emberlens_textparse::parse(&body).with_context(|| format!("parsing {url}"))?;
            let instance = format!("target-{target}");
            let series: Vec<(Labels, f64)> = entries
                .into_iter()
                .filter_map(|e| match e {
                    Entry::Sample(s) => Some((
                        s.labels.with("job", "fake").with("instance", &instance),
                        s.value,
                    )),
                    _ => None,
                })
                .collect();
            sent += series.len() as u64;
            let req = emberlens_remote::convert::write_request_from_samples(
                series.iter().map(|(l, v)| (l, t, *v)),
            );
            let bytes = emberlens_remote::codec::encode_write_request(&req)?;
            for w in &args.write {
                let resp = client
                    .post(w)
                    .header("content-type", "application/x-protobuf")
                    .header("content-encoding", "snappy")
                    .header("x-prometheus-remote-write-version", "0.1.0")
                    .body(bytes.clone())
                    .send()
                    .await
                    .with_context(|| format!("POST {w}"))?;
                if !resp.status().is_success() {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    bail!("POST {w} at step {step}: {status}: {text}");
                }
            }
        }
        if step % 60 == 0 {
            eprintln!(
                "step {step}/{}: {sent} samples sent per receiver, {:.0} s",
                args.steps,
                started.elapsed().as_secs_f64()
            );
        }
    }
    println!("samples sent per receiver: {sent}");
    Ok(())
}
