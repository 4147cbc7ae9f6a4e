//! Differential test of the PromQL engine against a real Prometheus (Debian's
//! 2.42, started through `../shared/fixtures/oracle/oracle.sh`) on the
//! synthetic fixture blocks: several hundred generated queries — every
//! function that exists in both under the same name × several selectors,
//! every aggregation × grouping, operators × matching modes, offsets, `@`,
//! subqueries — instant and range, compared answer by answer.
//!
//! Left out, as the issue asks: functions renamed or added in 3.0, and the
//! one operator whose labels changed (`atan2` drops `__name__` in 3.x).
//! Prometheus 2.x windows are closed on the left and 3.x windows open, so
//! every evaluation time, range start and subquery step is chosen never to
//! land on a sample (samples are every 15 s from midnight; times sit at
//! x.5 s, subquery steps are 59.999 s). Floats compare within 1e-9
//! relative, NaN and ±Inf exactly; instant-vector order is compared as
//! Prometheus returns it only for `sort`/`topk`-style queries.
//!
//! Skips (with a message) without `../shared` or `prometheus`, unless
//! `CI=true`.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // test code

mod common;

use std::path::Path;

use common::{Oracle, program, shared_fixtures};
use serde_json::Value;

const START: &str = "2024-01-01T01:00:07.5Z";
const MID: &str = "2024-01-01T03:17:22.5Z";
const LATE: &str = "2024-01-01T05:58:52.5Z";

fn queries() -> Vec<String> {
    let sels = [
        r#"fx_requests_total{instance="host-03"}"#,
        r#"fx_requests_total{method=~"GET|PUT",instance=~"host-1."}"#,
        r#"fx_temperature_celsius{sensor="cpu"}"#,
        r#"fx_request_duration_seconds_sum"#,
    ];
    let mut q = Vec::new();
    // Instant selectors, offsets and @.
    for s in sels {
        q.push(s.to_string());
        q.push(format!("{s} offset 7m"));
        q.push(format!("{s} offset -3m"));
        q.push(format!("{s} @ 1704085207.5"));
    }
    // Range functions × selectors × windows.
    let range_fns = [
        "rate",
        "irate",
        "increase",
        "delta",
        "idelta",
        "deriv",
        "changes",
        "resets",
        "avg_over_time",
        "sum_over_time",
        "count_over_time",
        "min_over_time",
        "max_over_time",
        "last_over_time",
        "stddev_over_time",
        "stdvar_over_time",
        "present_over_time",
        "absent_over_time",
    ];
    for f in range_fns {
        for s in sels {
            for w in ["1m", "5m"] {
                q.push(format!("{f}({s}[{w}])"));
            }
        }
        q.push(format!("{f}({}[10m] offset 30m)", sels[0]));
    }
    for s in sels {
        q.push(format!("quantile_over_time(0.9, {s}[10m])"));
        q.push(format!("predict_linear({s}[15m], 600)"));
        q.push(format!("timestamp({s})"));
    }
    // Instant functions.
    let inst_fns = [
        "abs",
        "ceil",
        "floor",
        "exp",
        "sqrt",
        "ln",
        "log2",
        "log10",
        "sgn",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "sinh",
        "cosh",
        "tanh",
        "asinh",
        "acosh",
        "atanh",
        "deg",
        "rad",
        "sort",
        "sort_desc",
        "absent",
        "timestamp",
        "hour",
        "minute",
        "month",
        "year",
        "day_of_month",
        "day_of_week",
        "day_of_year",
        "days_in_month",
    ];
    for f in inst_fns {
        q.push(format!("{f}({})", sels[2]));
        q.push(format!("{f}(rate({}[5m]))", sels[1]));
    }
    for s in sels {
        q.push(format!("clamp({s}, 10, 50)"));
        q.push(format!("clamp_min({s}, 30)"));
        q.push(format!("clamp_max({s}, 30)"));
        q.push(format!("round({s}, 0.5)"));
        q.push(format!(
            "label_replace({s}, \"host\", \"$1\", \"instance\", \"host-(.*)\")"
        ));
        q.push(format!(
            "label_join({s}, \"hm\", \"/\", \"instance\", \"method\")"
        ));
        q.push(format!("scalar(sum({s}))"));
        q.push(format!("vector(scalar(count({s})))"));
    }
    q.push("time()".into());
    q.push("pi()".into());
    q.push("vector(time())".into());
    // Aggregations × grouping.
    let aggs = [
        "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar",
    ];
    for a in aggs {
        for g in [
            "",
            " by (instance)",
            " without (instance)",
            " by (method)",
            " by ()",
        ] {
            q.push(format!("{a}{g} (rate({}[5m]))", sels[1]));
        }
        q.push(format!(
            "{a} by (sensor) ({})",
            sels[2].replace("{sensor=\"cpu\"}", "")
        ));
    }
    for k in ["1", "3"] {
        q.push(format!("topk({k}, rate({}[5m]))", sels[1]));
        q.push(format!("bottomk({k}, fx_temperature_celsius)"));
        q.push(format!(
            "topk by (method) ({k}, rate(fx_requests_total[5m]))"
        ));
    }
    for p in ["0", "0.5", "0.9", "1"] {
        q.push(format!("quantile({p}, fx_temperature_celsius)"));
        q.push(format!(
            "quantile by (sensor) ({p}, fx_temperature_celsius)"
        ));
        q.push(format!(
            "histogram_quantile({p}, sum by (le) (rate(fx_request_duration_seconds_bucket[5m])))"
        ));
        q.push(format!(
            "histogram_quantile({p}, sum by (le, instance) (rate(fx_request_duration_seconds_bucket[10m])))"
        ));
    }
    q.push("count_values(\"v\", floor(fx_temperature_celsius / 10))".into());
    q.push("count_values by (sensor) (\"v\", floor(fx_temperature_celsius / 10))".into());
    // Operators × matching.
    let a = r#"rate(fx_requests_total[5m])"#;
    let b = r#"sum by (instance) (rate(fx_requests_total[5m]))"#;
    // `atan2` is left out: Prometheus 3 drops the metric name from its
    // results (like every arithmetic operator), 2.42 kept it.
    for op in [
        "+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", ">=", "<=",
    ] {
        q.push(format!("{a} {op} on (instance) group_left {b}"));
        q.push(format!("{b} {op} on (instance) group_right {a}"));
        q.push(format!("fx_temperature_celsius {op} 40"));
        q.push(format!("40 {op} fx_temperature_celsius"));
        q.push(format!("{b} {op} ignoring (method) {b}"));
    }
    for op in ["==", "!=", ">", "<", ">=", "<="] {
        q.push(format!("fx_temperature_celsius {op} bool 40"));
        q.push(format!("{b} {op} bool on (instance) {b}"));
        q.push(format!("1 {op} bool 2"));
    }
    for op in ["and", "or", "unless"] {
        q.push(format!(
            "fx_temperature_celsius > 40 {op} fx_temperature_celsius < 60"
        ));
        q.push(format!("{a} {op} on (instance) {b} > 10"));
        q.push(format!(
            "fx_requests_total {op} ignoring (method) fx_requests_total{{method=\"GET\"}}"
        ));
    }
    q.push("-fx_temperature_celsius".into());
    q.push("1 + 2 * 3 ^ 2 ^ 0.5 % 4".into());
    q.push(format!(
        "{a} * on (instance) group_left (le) fx_request_duration_seconds_bucket{{le=\"0.1\"}}"
    ));
    // Subqueries, with steps off the sample grid (a default step of 1 m
    // would put inner evaluations on sample timestamps, where 2.x and 3.x
    // windows differ by design).
    for s in ["[10m:59999ms]", "[30m:2m1ms]", "[7m:44999ms]"] {
        q.push(format!(
            "max_over_time(rate(fx_requests_total{{instance=\"host-05\"}}[1m]){s})"
        ));
        q.push(format!(
            "avg_over_time(sum(rate(fx_requests_total[2m])){s})"
        ));
        q.push(format!(
            "rate(sum by (instance) (fx_requests_total{{method=\"GET\"}}){s})"
        ));
        q.push(format!(
            "min_over_time(fx_temperature_celsius{{sensor=\"board\"}}{s} offset 10m)"
        ));
        q.push(format!(
            "deriv(fx_temperature_celsius{{instance=\"host-02\"}}{s})"
        ));
    }
    q.push(
        r#"max_over_time(fx_temperature_celsius{instance="host-01"}[10m:59999ms] @ 1704085207.5)"#
            .into(),
    );
    q.push(r#"sum(fx_temperature_celsius @ 1704085207.5) - sum(fx_temperature_celsius)"#.into());
    q
}

fn num(s: &str) -> f64 {
    match s {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap_or(f64::NAN),
    }
}

fn close(a: &str, b: &str) -> bool {
    let (x, y) = (num(a), num(b));
    if x.is_nan() || y.is_nan() {
        return x.is_nan() && y.is_nan();
    }
    x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
}

/// First difference between two JSON answers, values compared with
/// tolerance (`[t, "v"]` pairs).
fn diff(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let kx: Vec<_> = x.keys().collect();
            let ky: Vec<_> = y.keys().collect();
            if kx != ky {
                return Some(format!("{path}: keys {kx:?} vs {ky:?}"));
            }
            x.iter()
                .find_map(|(k, v)| diff(v, &y[k], &format!("{path}.{k}")))
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path}: {} vs {} items", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (p, q))| diff(p, q, &format!("{path}[{i}]")))
        }
        (Value::String(x), Value::String(y)) if x != y && !close(x, y) => {
            Some(format!("{path}: {x:?} vs {y:?}"))
        }
        (Value::String(_), Value::String(_)) => None,
        (x, y) if x != y => Some(format!("{path}: {x} vs {y}")),
        _ => None,
    }
}

/// Instant-vector results in label order, unless order is the point.
fn normalize(mut v: Value, ordered: bool) -> Value {
    if !ordered && let Some(r) = v.pointer_mut("/data/result").and_then(|r| r.as_array_mut()) {
        r.sort_by_key(|s| s["metric"].to_string());
    }
    // Annotations are not compared: 2.42 has no info annotations.
    if let Some(o) = v.as_object_mut() {
        o.remove("warnings");
        o.remove("infos");
    }
    v
}

fn ours(dir: &Path, args: &[&str]) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_emberlens"))
        .args(args.iter().take(1))
        .arg("--tsdb")
        .arg(dir)
        .args(&args[1..])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn engine_answers_like_prometheus_on_generated_queries() {
    let (Some(fx), Some(_)) = (shared_fixtures(), program("prometheus")) else {
        return;
    };
    let dir = fx.join("tsdb/synthetic-6h/data");
    let oracle = Oracle::start(&fx, &dir);
    let qs = queries();
    assert!(qs.len() >= 300, "only {} queries", qs.len());
    let mut failures = Vec::new();
    let mut compared = 0;
    for (i, q) in qs.iter().enumerate() {
        let ordered = q.starts_with("sort") || q.starts_with("topk") || q.starts_with("bottomk");
        // Instant at varying times; a range query for every third.
        let time = [START, MID, LATE][i % 3];
        let theirs = oracle.query("query", &serde_json::json!({"query": q, "time": time}));
        let mine = ours(&dir, &["query", "--time", time, q]);
        compared += 1;
        if let Some(d) = diff(&normalize(theirs, ordered), &normalize(mine, ordered), "") {
            failures.push(format!("instant {q} @ {time}: {d}"));
        }
        // Range `topk`/`bottomk` are left out: when values tie, Prometheus's
        // choice depends on the order of its range evaluation's series map,
        // which Go randomises (its instant answers above are compared).
        let ties_random = q.contains("topk") || q.contains("bottomk");
        if i % 3 == 0 && !ties_random {
            let params = serde_json::json!({
                "query": q, "start": START, "end": "2024-01-01T02:00:07.5Z", "step": "150"
            });
            let theirs = oracle.query("query_range", &params);
            let mine = ours(
                &dir,
                &[
                    "query-range",
                    "--start",
                    START,
                    "--end",
                    "2024-01-01T02:00:07.5Z",
                    "--step",
                    "150",
                    q,
                ],
            );
            compared += 1;
            if let Some(d) = diff(&normalize(theirs, true), &normalize(mine, true), "") {
                failures.push(format!("range {q}: {d}"));
            }
        }
    }
    println!("{compared} answers compared, {} differ", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {compared} answers differ from Prometheus:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
