//! Range queries evaluate range functions of selectors and subqueries for
//! many steps at once, series by series (`funcs::batched`); instant queries
//! never do. Every step of a range query must equal the instant query at
//! that time: the series (name removal, which ones `topk` keeps on ties) and
//! their values.
#![allow(clippy::unwrap_used)] // test code

use emberlens_model::Labels;
use emberlens_promql::promqltest::runner::TestStorage;
use emberlens_promql::promqltest::script::TestValue;
use emberlens_promql::value::Value;
use emberlens_promql::{EngineOpts, instant_query, range_query};

/// Counters with equal rates (ties), a gauge with gaps and a reset, and a
/// series that starts late.
fn storage() -> TestStorage {
    let mut st = TestStorage::default();
    for i in 0..6 {
        let labels = Labels::from_pairs([
            ("__name__", "c_total".to_string()),
            ("i", i.to_string()),
            ("g", (i % 2).to_string()),
        ]);
        let samples: Vec<(i64, TestValue)> = (0..=200)
            .filter(|k| i != 3 || *k > 90)
            .map(|k| {
                let v = if i == 4 && k > 120 {
                    k - 120
                } else {
                    k * (1 + i % 2)
                };
                (k * 15_000, TestValue::Float(v as f64))
            })
            .collect();
        st.add(&labels, &samples);
    }
    let g = Labels::from_pairs([("__name__", "g"), ("i", "x")]);
    let samples: Vec<(i64, TestValue)> = (0..=200)
        .filter(|k| !(50..70).contains(k))
        .map(|k| (k * 15_000, TestValue::Float(((k * 37) % 11) as f64)))
        .collect();
    st.add(&g, &samples);
    st
}

#[test]
fn range_steps_equal_instant_queries() {
    let st = storage();
    let opts = EngineOpts::default();
    let queries = [
        "rate(c_total[1m])",
        "topk(2, rate(c_total[2m]))",
        "sum by (g) (increase(c_total[5m]))",
        "avg_over_time(g[3m])",
        "max_over_time(rate(c_total[1m])[4m:30s])",
        "topk(3, avg_over_time(rate(c_total[1m])[5m:45s]))",
        "last_over_time(c_total[2m:15s])",
        "avg_over_time((g or rate(c_total[1m]))[3m:1m])",
        "count_over_time(g[1m] offset 2m)",
        "sum_over_time(g[2m:30s] offset 1m)",
    ];
    for q in queries {
        for (start, end, step) in [(600_000, 2_400_000, 37_000), (0, 3_000_000, 15_000)] {
            let r = range_query(&st, &opts, q, start, end, step).unwrap();
            let Value::Matrix(m) = &r.value else {
                panic!("{q}: not a matrix")
            };
            let mut t = start;
            while t <= end {
                let inst = instant_query(&st, &opts, q, t).unwrap();
                let Value::Vector(v) = &inst.value else {
                    panic!("{q}: not a vector")
                };
                for s in v {
                    let series = m
                        .iter()
                        .find(|x| x.metric == s.metric)
                        .unwrap_or_else(|| panic!("{q} @ {t}: {} missing", s.metric));
                    let p = series.floats.iter().find(|p| p.t == t).unwrap();
                    assert!(
                        p.f == s.f || (p.f.is_nan() && s.f.is_nan()),
                        "{q} @ {t}: {} {} vs {}",
                        s.metric,
                        p.f,
                        s.f
                    );
                }
                let n = m
                    .iter()
                    .filter(|x| x.floats.iter().any(|p| p.t == t))
                    .count();
                assert_eq!(n, v.len(), "{q} @ {t}: series count");
                t += step;
            }
        }
    }
}
