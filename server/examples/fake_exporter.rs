//! A fake exporter for `tools/bench-scrape.sh`: `--targets N` targets of
//! `--series M` series each, served as `/metrics/<i>` (i in 0..N) on
//! `--ports P` loopback listeners (any path on any port). It prints one line
//! per listener, `fake_exporter listening on 127.0.0.1:PORT`, then serves
//! until killed.
//!
//! Each target exposes the same series (the scraper tells targets apart by
//! their target labels) in the Prometheus text format, with `# HELP` and
//! `# TYPE`, a mix of what real exporters expose: float counters in
//! hundredths (`node_cpu_seconds_total`), request counters, histograms
//! (buckets, `_sum`, `_count`), byte counters, gauges that wander (memory in
//! pages, temperatures in tenths, small integers), short queues and
//! constant flags. Every request moves a target's values on, as if a
//! scrape interval had passed: counters grow by random amounts (some series
//! busy, some idle), gauges take a random step. Randomness is a per-target
//! xorshift generator, so a run is reproducible given the request order.
//!
//! Run: `cargo run --release -p emberlens-server --example fake_exporter --
//! --targets 1000 --series 1000 --ports 4`.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Parser;

/// Flags.
#[derive(Parser, Debug)]
struct Args {
    /// Number of targets (`/metrics/0` … `/metrics/<N-1>`).
    #[arg(long, default_value_t = 1000)]
    targets: usize,
    /// Series per target.
    #[arg(long, default_value_t = 1000)]
    series: usize,
    /// Number of loopback listeners (free ports).
    #[arg(long, default_value_t = 4)]
    ports: usize,
}

/// How one series' value moves between scrapes.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A counter growing by 0..=`max` units per scrape; `idle_pct` percent
    /// of scrapes add 0.
    Counter { max: u64, idle_pct: u64 },
    /// A gauge taking a step of -`step`..=+`step` units, kept within
    /// `lo..=hi` units.
    Gauge { step: u64, lo: f64, hi: f64 },
    /// The first bucket of a histogram of `buckets` buckets (`+Inf`
    /// included), followed by its other buckets, `_sum` and `_count`; up to
    /// `max` observations per scrape.
    Histogram { buckets: usize, max: u64 },
    /// A bucket, `_sum` or `_count` after [`Kind::Histogram`]: moved by it.
    HistogramPart,
    /// Never changes.
    Constant,
}

/// One series: its exposition line up to the value, and how it moves.
#[derive(Debug)]
struct Series {
    /// `# HELP`/`# TYPE` lines when this is the first series of its family.
    header: Option<String>,
    /// `name{labels} `.
    prefix: String,
    kind: Kind,
    /// Starting value, in units.
    start: f64,
    /// Divisor from units to the exposed value.
    scale: f64,
}

/// Upper bounds of the request-duration histogram, `+Inf` last.
const LE: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
];
const MODES: [&str; 8] = [
    "idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice",
];
const METHODS: [&str; 2] = ["GET", "POST"];
const CODES: [&str; 3] = ["200", "404", "500"];

/// Series of one label combination: labels (with any name suffix), kind,
/// starting value and scale.
type Unit = Vec<(String, Kind, f64, f64)>;

/// One family: name, type, help, and how to make its `k`-th label combination.
struct Family {
    name: &'static str,
    typ: &'static str,
    help: &'static str,
    /// Label combinations added per round (a histogram adds all its series).
    per_round: usize,
    make: fn(usize) -> Unit,
}

fn one(labels: String, kind: Kind, start: f64, scale: f64) -> Unit {
    vec![(labels, kind, start, scale)]
}

fn handler(k: usize) -> String {
    format!("/api/v1/resource{}", k / 6)
}

/// The families, in exposition order.
fn families() -> Vec<Family> {
    vec![
        Family {
            name: "node_cpu_seconds_total",
            typ: "counter",
            help: "Seconds the CPUs spent in each mode.",
            per_round: 2,
            make: |k| {
                let mode = MODES[k % MODES.len()];
                let busy = if mode == "idle" { 1500 } else { 60 };
                let labels = format!("{{cpu=\"{}\",mode=\"{mode}\"}}", k / MODES.len());
                one(
                    labels,
                    Kind::Counter {
                        max: busy,
                        idle_pct: 10,
                    },
                    (k as f64 + 1.0) * 123_457.0,
                    100.0,
                )
            },
        },
        Family {
            name: "http_requests_total",
            typ: "counter",
            help: "Requests served, by handler, method and status code.",
            per_round: 3,
            make: |k| {
                let code = CODES[k % CODES.len()];
                let method = METHODS[(k / CODES.len()) % METHODS.len()];
                let (max, idle_pct) = match code {
                    "200" => (50 + (k as u64 % 7) * 40, 5),
                    "404" => (3, 70),
                    _ => (1, 95),
                };
                let labels = format!(
                    "{{code=\"{code}\",handler=\"{}\",method=\"{method}\"}}",
                    handler(k)
                );
                one(
                    labels,
                    Kind::Counter { max, idle_pct },
                    (k as f64 * 9_973.0) % 1e6,
                    1.0,
                )
            },
        },
        Family {
            name: "http_request_duration_seconds",
            typ: "histogram",
            help: "Request latency, by handler and method.",
            per_round: 1,
            make: |k| {
                let base = format!(
                    "handler=\"/api/v1/resource{}\",method=\"{}\"",
                    k / METHODS.len(),
                    METHODS[k % METHODS.len()]
                );
                let mut out: Vec<_> = LE
                    .iter()
                    .enumerate()
                    .map(|(i, le)| {
                        let kind = if i == 0 {
                            Kind::Histogram {
                                buckets: LE.len(),
                                max: 20 + (k as u64 % 5) * 30,
                            }
                        } else {
                            Kind::HistogramPart
                        };
                        (format!("_bucket{{{base},le=\"{le}\"}}"), kind, 0.0, 1.0)
                    })
                    .collect();
                // The sum is kept in milliseconds, exposed in seconds.
                out.push((format!("_sum{{{base}}}"), Kind::HistogramPart, 0.0, 1000.0));
                out.push((format!("_count{{{base}}}"), Kind::HistogramPart, 0.0, 1.0));
                out
            },
        },
        Family {
            name: "node_network_receive_bytes_total",
            typ: "counter",
            help: "Bytes received, by device.",
            per_round: 1,
            make: |k| {
                one(
                    format!("{{device=\"eth{k}\"}}"),
                    Kind::Counter {
                        max: 2_000_000,
                        idle_pct: 2,
                    },
                    (k as f64 + 1.0) * 8.1e9,
                    1.0,
                )
            },
        },
        Family {
            name: "node_memory_bytes",
            typ: "gauge",
            help: "Memory by kind, in bytes (4 KiB pages).",
            per_round: 1,
            make: |k| {
                // Units are pages of 4096 bytes: scale 1/4096.
                one(
                    format!("{{kind=\"area{k}\"}}"),
                    Kind::Gauge {
                        step: 300,
                        lo: 10_000.0,
                        hi: 4_000_000.0,
                    },
                    1_000_000.0 + k as f64 * 1_000.0,
                    1.0 / 4096.0,
                )
            },
        },
        Family {
            name: "worker_pool_active_workers",
            typ: "gauge",
            help: "Busy workers, by pool.",
            per_round: 1,
            make: |k| {
                one(
                    format!("{{pool=\"pool{k}\"}}"),
                    Kind::Gauge {
                        step: 2,
                        lo: 0.0,
                        hi: 64.0,
                    },
                    (k % 16) as f64,
                    1.0,
                )
            },
        },
        Family {
            name: "sensor_temperature_celsius",
            typ: "gauge",
            help: "Temperature, by chip and sensor.",
            per_round: 1,
            make: |k| {
                one(
                    format!("{{chip=\"chip{}\",sensor=\"temp{}\"}}", k / 4, k % 4),
                    Kind::Gauge {
                        step: 5,
                        lo: 250.0,
                        hi: 950.0,
                    },
                    400.0 + (k % 20) as f64 * 10.0,
                    10.0,
                )
            },
        },
        Family {
            name: "queue_length",
            typ: "gauge",
            help: "Items waiting, by queue.",
            per_round: 1,
            make: |k| {
                one(
                    format!("{{queue=\"q{k}\"}}"),
                    Kind::Gauge {
                        step: 1,
                        lo: 0.0,
                        hi: 3.0,
                    },
                    0.0,
                    1.0,
                )
            },
        },
        Family {
            name: "app_feature_enabled",
            typ: "gauge",
            help: "Feature flags (constant).",
            per_round: 1,
            make: |k| {
                one(
                    format!("{{feature=\"feature_{k}\",version=\"1.{}.0\"}}", k % 9),
                    Kind::Constant,
                    (k % 2) as f64,
                    1.0,
                )
            },
        },
    ]
}

/// Exactly `n` series: label combinations added round-robin over the
/// families (a histogram only when all its series fit), then grouped by
/// family so each family's lines are contiguous.
fn layout(n: usize) -> Vec<Series> {
    let fams = families();
    let mut per_family: Vec<Unit> = vec![Vec::new(); fams.len()];
    let mut next = vec![0usize; fams.len()];
    let mut total = 0;
    while total < n {
        let before = total;
        for (f, fam) in fams.iter().enumerate() {
            for _ in 0..fam.per_round {
                let unit = (fam.make)(next[f]);
                if total + unit.len() > n {
                    continue;
                }
                next[f] += 1;
                total += unit.len();
                per_family[f].extend(unit);
            }
        }
        if total == before {
            break; // cannot happen: single-series families always fit
        }
    }
    let mut out = Vec::with_capacity(n);
    for (fam, series) in fams.iter().zip(per_family) {
        for (i, (labels, kind, start, scale)) in series.into_iter().enumerate() {
            let header = (i == 0).then(|| {
                format!(
                    "# HELP {0} {1}\n# TYPE {0} {2}\n",
                    fam.name, fam.help, fam.typ
                )
            });
            out.push(Series {
                header,
                prefix: format!("{}{labels} ", fam.name),
                kind,
                start,
                scale,
            });
        }
    }
    out
}

/// A target's values (in units) and random generator.
struct TargetState {
    values: Vec<f64>,
    rng: u64,
}

impl TargetState {
    fn new(layout: &[Series], seed: u64) -> Self {
        TargetState {
            values: layout.iter().map(|s| s.start).collect(),
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    /// xorshift64*: a uniform integer in `0..=max`.
    fn below(&mut self, max: u64) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        if max == u64::MAX { r } else { r % (max + 1) }
    }

    /// Moves every value on by one scrape interval.
    fn advance(&mut self, layout: &[Series]) {
        let mut i = 0;
        while i < layout.len() {
            match layout[i].kind {
                Kind::Counter { max, idle_pct, .. } => {
                    if self.below(99) >= idle_pct {
                        self.values[i] += self.below(max) as f64;
                    }
                }
                Kind::Gauge { step, lo, hi, .. } => {
                    let delta = self.below(2 * step) as f64 - step as f64;
                    self.values[i] = (self.values[i] + delta).clamp(lo, hi);
                }
                Kind::Histogram { buckets, max } => {
                    let observations = self.below(max);
                    for _ in 0..observations {
                        // Mostly fast requests, a tail of slow ones.
                        let b = (self.below(99) as usize * self.below(99) as usize)
                            / (100 * 100 / (buckets - 1).max(1))
                            + usize::from(self.below(9) == 0);
                        let b = b.min(buckets - 1);
                        // Cumulative buckets: every bucket from `b` up.
                        for v in &mut self.values[i + b..i + buckets] {
                            *v += 1.0;
                        }
                        self.values[i + buckets] += (2 + b as u64 * 150 + self.below(90)) as f64;
                    }
                    self.values[i + buckets + 1] += observations as f64;
                    i += buckets + 2;
                    continue;
                }
                Kind::HistogramPart | Kind::Constant => {}
            }
            i += 1;
        }
    }
}

struct Exporter {
    layout: Vec<Series>,
    targets: Vec<Mutex<TargetState>>,
}

async fn metrics(State(exp): State<Arc<Exporter>>, Path(i): Path<String>) -> Response {
    let Some(target) = i.parse::<usize>().ok().and_then(|i| exp.targets.get(i)) else {
        return (StatusCode::NOT_FOUND, "no such target\n").into_response();
    };
    let mut body = String::with_capacity(exp.layout.len() * 96);
    {
        let Ok(mut state) = target.lock() else {
            return (StatusCode::INTERNAL_SERVER_ERROR, "poisoned\n").into_response();
        };
        state.advance(&exp.layout);
        for (s, v) in exp.layout.iter().zip(&state.values) {
            if let Some(h) = &s.header {
                body.push_str(h);
            }
            body.push_str(&s.prefix);
            let _ = writeln!(body, "{}", v / s.scale);
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let layout = layout(args.series);
    let distinct: std::collections::HashSet<&str> =
        layout.iter().map(|s| s.prefix.as_str()).collect();
    if distinct.len() != layout.len() {
        return Err(std::io::Error::other("the layout repeats a series"));
    }
    let targets = (0..args.targets)
        .map(|i| Mutex::new(TargetState::new(&layout, i as u64 + 1)))
        .collect();
    let exp = Arc::new(Exporter { layout, targets });
    let app = Router::new()
        .route("/metrics/{i}", get(metrics))
        .with_state(exp);
    let mut servers = Vec::new();
    for _ in 0..args.ports.max(1) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("fake_exporter listening on {}", listener.local_addr()?);
        servers.push(tokio::spawn(
            axum::serve(listener, app.clone()).into_future(),
        ));
    }
    for s in servers {
        s.await.map_err(std::io::Error::other)??;
    }
    Ok(())
}
