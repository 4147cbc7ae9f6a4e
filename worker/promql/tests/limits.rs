//! Query limits: the sample limit (Prometheus's `--query.max-samples`) and
//! the interrupt callback that implements timeouts and cancellation, with
//! Prometheus's error messages.
#![allow(clippy::unwrap_used)] // test code

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use emberlens_model::Labels;
use emberlens_promql::api::response_json;
use emberlens_promql::promqltest::runner::TestStorage;
use emberlens_promql::promqltest::script::TestValue;
use emberlens_promql::{EngineOpts, EvalError, instant_query, range_query};

/// 20 series `m{i="0".."19"}`, a sample every 15 s for 10 minutes.
fn storage() -> TestStorage {
    let mut st = TestStorage::default();
    for i in 0..20 {
        let labels = Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]);
        let samples: Vec<(i64, TestValue)> = (0..=40)
            .map(|k| (k * 15_000, TestValue::Float(k as f64)))
            .collect();
        st.add(&labels, &samples);
    }
    st
}

#[test]
fn the_sample_limit_stops_queries_with_prometheus_message() {
    let st = storage();
    let small = EngineOpts {
        max_samples: 10,
        ..EngineOpts::default()
    };
    // 20 samples at one instant: over a limit of 10.
    let err = instant_query(&st, &small, "m", 300_000).unwrap_err();
    assert_eq!(err, EvalError::TooManySamples);
    assert_eq!(
        response_json(&Err(err)),
        r#"{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory in query execution"}"#
    );
    // A range window holds 20 series × 20 points.
    let limit = EngineOpts {
        max_samples: 399,
        ..EngineOpts::default()
    };
    assert_eq!(
        instant_query(&st, &limit, "sum(rate(m[5m]))", 600_000).unwrap_err(),
        EvalError::TooManySamples
    );
    let enough = EngineOpts {
        max_samples: 400,
        ..EngineOpts::default()
    };
    assert!(instant_query(&st, &enough, "sum(rate(m[5m]))", 600_000).is_ok());
    // A range query's answer counts as it grows: 20 series × 11 steps.
    let limit = EngineOpts {
        max_samples: 200,
        ..EngineOpts::default()
    };
    assert_eq!(
        range_query(&st, &limit, "m", 0, 600_000, 60_000).unwrap_err(),
        EvalError::TooManySamples
    );
    assert!(range_query(&st, &EngineOpts::default(), "m", 0, 600_000, 60_000).is_ok());
}

#[test]
fn the_interrupt_stops_a_running_query() {
    let st = storage();
    let polls = Arc::new(AtomicUsize::new(0));
    let p = polls.clone();
    let opts = EngineOpts {
        interrupt: Some(Arc::new(move || {
            (p.fetch_add(1, Ordering::Relaxed) >= 3)
                .then(|| EvalError::Timeout("expression evaluation".into()))
        })),
        ..EngineOpts::default()
    };
    let err = range_query(&st, &opts, "sum(m)", 0, 600_000, 15_000).unwrap_err();
    assert_eq!(err.to_string(), "query timed out in expression evaluation");
    // 41 steps; natively they may run on several threads, each stopping at
    // its next poll once the interrupt has said so.
    let n = polls.load(Ordering::Relaxed);
    assert!(
        (4..4 + emberlens_model::par::threads()).contains(&n),
        "stopped right after the fourth poll, polled {n} times"
    );
    assert!(response_json(&Err(err)).contains(r#""errorType":"timeout""#));
    // Subquery steps poll too.
    let polls = Arc::new(AtomicUsize::new(0));
    let p = polls.clone();
    let opts = EngineOpts {
        interrupt: Some(Arc::new(move || {
            (p.fetch_add(1, Ordering::Relaxed) >= 5)
                .then(|| EvalError::Canceled("query execution".into()))
        })),
        ..EngineOpts::default()
    };
    let err = instant_query(&st, &opts, "max_over_time(sum(m)[10m:15s])", 600_000).unwrap_err();
    assert_eq!(err.to_string(), "query was canceled in query execution");
}
