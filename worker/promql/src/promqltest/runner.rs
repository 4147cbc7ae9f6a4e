//! Runs parsed promqltest scripts against our engine, with the checks
//! Prometheus's Go harness adds to every instant `eval`:
//!
//! 1. the `@` rerun: every selector and subquery without `@` (and not under
//!    a subquery that has one) gets `@ <t>`, and the query must give the
//!    same result evaluated at −10t, 0, t/5, t and 10t (−1 s, 0, 1 s when
//!    t = 0); skipped when the expression calls a function whose result
//!    depends on the evaluation time, or when nothing changed;
//! 2. the range-mode check: the same expression as a range query from
//!    t − 1 m to t + 1 m, step 1 m; its middle step must equal the expected
//!    result (skipped for `expect ordered`, range-vector and string results,
//!    and expressions using `start()`, `end()`, `range()` or `step()`).
//!
//! Results compare as upstream's `compareResult`: labels exactly, floats
//! within 1e-6 relative (NaN equals NaN, the staleness marker only
//! itself), histograms after `compact(0)`; instant vectors as sets unless
//! `expect ordered`.

use std::collections::BTreeMap;

use emberlens_model::{
    CounterResetHint, FloatHistogram, HistogramSample, Labels, Matcher, Sample as MSample,
    Series as MSeries, StartTimestamps, Storage, StorageError, is_stale_nan,
};
use regex::Regex;

use super::script::{
    Command, Eval, EvalQuery, ExpectKind, ExpectedResult, ExpectedSeries, MessageMatch, Script,
    TestValue,
};
use crate::ast::{AtModifier, Expr};
use crate::engine::{EngineOpts, QueryResult, instant_query_expr, range_query_expr};
use crate::error::EvalError;
use crate::histfuncs::almost_equal;
use crate::parser::parse;
use crate::value::{Annotations, Value};

/// An in-memory store for test data.
#[derive(Default)]
pub struct TestStorage {
    series: BTreeMap<Labels, StoredSeries>,
}

/// One series of [`TestStorage`]: samples in time order, each with its
/// start timestamp (0 when unknown, as upstream's appender).
#[derive(Default)]
struct StoredSeries {
    floats: Vec<(MSample, i64)>,
    hists: Vec<(HistogramSample, i64)>,
    /// Whether any load gave this series start timestamps.
    has_st: bool,
}

impl TestStorage {
    /// Adds samples of one series (kept sorted; a later value at the same
    /// timestamp replaces the earlier one).
    pub fn add(&mut self, labels: &Labels, samples: &[(i64, TestValue)]) {
        self.add_with_st(labels, samples, None);
    }

    /// As [`TestStorage::add`], with start timestamps (absolute ms, one per
    /// sample, `None` = unknown, stored as 0).
    pub fn add_with_st(
        &mut self,
        labels: &Labels,
        samples: &[(i64, TestValue)],
        start_timestamps: Option<&[Option<i64>]>,
    ) {
        let e = self.series.entry(labels.clone()).or_default();
        e.has_st |= start_timestamps.is_some();
        for (i, (t, v)) in samples.iter().enumerate() {
            let st = start_timestamps
                .and_then(|s| s.get(i).copied().flatten())
                .unwrap_or(0);
            match v {
                TestValue::Float(f) => {
                    e.floats.retain(|s| s.0.t_ms != *t);
                    e.floats.push((MSample { t_ms: *t, v: *f }, st));
                }
                TestValue::Histogram(h) => {
                    e.hists.retain(|s| s.0.t_ms != *t);
                    e.hists.push((
                        HistogramSample {
                            t_ms: *t,
                            h: h.clone(),
                        },
                        st,
                    ));
                }
            }
        }
        e.floats.sort_by_key(|s| s.0.t_ms);
        e.hists.sort_by_key(|s| s.0.t_ms);
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.series.clear();
    }
}

impl Storage for TestStorage {
    fn select(
        &self,
        matchers: &[Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<MSeries>, StorageError> {
        let mut out = Vec::new();
        for (labels, stored) in &self.series {
            if !matchers.iter().all(|m| m.matches_labels(labels)) {
                continue;
            }
            let in_range = |t: i64| t >= min_t_ms && t <= max_t_ms;
            let floats: Vec<&(MSample, i64)> = stored
                .floats
                .iter()
                .filter(|s| in_range(s.0.t_ms))
                .collect();
            let hists: Vec<&(HistogramSample, i64)> =
                stored.hists.iter().filter(|s| in_range(s.0.t_ms)).collect();
            if floats.is_empty() && hists.is_empty() {
                continue;
            }
            // Hints as upstream's head reports them, from the whole series.
            let hints: BTreeMap<i64, CounterResetHint> = stored
                .hists
                .iter()
                .map(|s| s.0.t_ms)
                .zip(super::nhcb::head_hints(stored.hists.iter().map(|s| &s.0.h)))
                .collect();
            let start_timestamps = stored.has_st.then(|| StartTimestamps {
                floats: floats.iter().map(|s| s.1).collect(),
                histograms: hists.iter().map(|s| s.1).collect(),
            });
            out.push(MSeries {
                labels: labels.clone(),
                samples: floats.iter().map(|s| s.0).collect(),
                histograms: hists
                    .iter()
                    .map(|s| {
                        let mut hs = s.0.clone();
                        if let Some(&hint) = hints.get(&s.0.t_ms) {
                            hs.h.counter_reset_hint = hint;
                        }
                        hs
                    })
                    .collect(),
                start_timestamps,
            });
        }
        Ok(out)
    }
}

/// One failed `eval`.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalFailure {
    /// 1-based line of the `eval`.
    pub line: usize,
    /// The expression.
    pub expr: String,
    /// What went wrong.
    pub reason: String,
}

/// The outcome of one file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileReport {
    /// `eval` commands run.
    pub evals: usize,
    /// Those that failed.
    pub failures: Vec<EvalFailure>,
}

/// Functions whose results depend on the evaluation time even with step-
/// invariant arguments (Prometheus's `AtModifierUnsafeFunctions`).
const AT_UNSAFE: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
];

/// Runs every command of `script`.
pub fn run_script(script: &Script) -> FileReport {
    let opts = EngineOpts {
        max_samples: 10_000,
        ..EngineOpts::default()
    };
    let mut storage = TestStorage::default();
    let mut report = FileReport::default();
    for cmd in &script.commands {
        match cmd {
            Command::Clear { .. } => storage.clear(),
            Command::Load(l) => {
                for s in &l.series {
                    storage.add_with_st(&s.labels, &s.samples, s.start_timestamps.as_deref());
                }
                if l.with_nhcb {
                    for (labels, samples) in super::nhcb::convert(&l.series) {
                        storage.add(&labels, &samples);
                    }
                }
            }
            Command::Eval(e) => {
                report.evals += 1;
                if let Err(reason) = run_eval(&storage, &opts, e) {
                    report.failures.push(EvalFailure {
                        line: e.line,
                        expr: e.expr.clone(),
                        reason,
                    });
                }
            }
        }
    }
    report
}

fn expects(e: &Eval, k: ExpectKind) -> bool {
    e.expects.iter().any(|x| x.kind == k)
}

fn message_matches(m: &MessageMatch, s: &str) -> bool {
    match m {
        MessageMatch::Exact(x) => x == s,
        MessageMatch::Regex(r) => Regex::new(r).map(|re| re.is_match(s)).unwrap_or(false),
    }
}

fn run_eval(storage: &TestStorage, opts: &EngineOpts, e: &Eval) -> Result<(), String> {
    let expr = match parse(&e.expr) {
        Ok(x) => x,
        Err(err) => return Err(format!("parse error: {}", err.render(&e.expr))),
    };
    let res = match (e.query, &e.result) {
        (EvalQuery::Instant { .. }, ExpectedResult::RangeVector { end_ms, .. }) => {
            instant_query_expr(storage, opts, &e.expr, &expr, *end_ms)
        }
        (EvalQuery::Instant { at_ms }, _) => {
            instant_query_expr(storage, opts, &e.expr, &expr, at_ms)
        }
        (
            EvalQuery::Range {
                start_ms,
                end_ms,
                step_ms,
            },
            _,
        ) => range_query_expr(storage, opts, &e.expr, &expr, start_ms, end_ms, step_ms),
    };
    let fail_expects: Vec<_> = e
        .expects
        .iter()
        .filter(|x| x.kind == ExpectKind::Fail)
        .collect();
    let res = match res {
        Err(err) => {
            if fail_expects.is_empty() {
                return Err(format!("unexpected error: {err}"));
            }
            let msg = err.to_string();
            for f in &fail_expects {
                if let Some(m) = &f.message
                    && !message_matches(m, &msg)
                {
                    return Err(format!("error {msg:?} does not match {m:?}"));
                }
            }
            return Ok(());
        }
        Ok(r) => r,
    };
    if !fail_expects.is_empty() {
        return Err("expected an error, the query succeeded".into());
    }
    check_annotations(e, &res.annotations)?;
    compare(e, &res.value)?;
    if let EvalQuery::Instant { at_ms } = e.query {
        at_rerun(storage, opts, e, &expr, at_ms)?;
        range_mode_check(storage, opts, e, &expr, at_ms)?;
    }
    Ok(())
}

fn check_annotations(e: &Eval, a: &Annotations) -> Result<(), String> {
    for (kind, no_kind, set, what) in [
        (ExpectKind::Warn, ExpectKind::NoWarn, &a.warnings, "warning"),
        (ExpectKind::Info, ExpectKind::NoInfo, &a.infos, "info"),
    ] {
        if expects(e, no_kind) && !set.is_empty() {
            return Err(format!("unexpected {what}s: {set:?}"));
        }
        let wanted: Vec<_> = e.expects.iter().filter(|x| x.kind == kind).collect();
        if wanted.is_empty() {
            continue;
        }
        for w in &wanted {
            let ok = match &w.message {
                None => !set.is_empty(),
                Some(m) => set.iter().any(|s| message_matches(m, s)),
            };
            if !ok {
                return Err(format!("expected {what} {:?}, got {set:?}", w.message));
            }
        }
        // Every annotation of the kind must be matched by an expectation.
        for s in set.iter() {
            let matched = wanted.iter().any(|w| match &w.message {
                None => true,
                Some(m) => message_matches(m, s),
            });
            if !matched {
                return Err(format!("unexpected {what} {s:?}"));
            }
        }
    }
    Ok(())
}

fn floats_equal(exp: f64, got: f64) -> bool {
    if is_stale_nan(exp) || is_stale_nan(got) {
        return is_stale_nan(exp) && is_stale_nan(got);
    }
    almost_equal(exp, got, 1e-6)
}

fn hists_equal(exp: &FloatHistogram, got: &FloatHistogram, check_hint: bool) -> bool {
    let (a, b) = (exp.compact(0), got.compact(0));
    if check_hint && a.counter_reset_hint != b.counter_reset_hint {
        return false;
    }
    a.schema == b.schema
        && floats_equal(a.zero_threshold, b.zero_threshold)
        && floats_equal(a.count, b.count)
        && floats_equal(a.zero_count, b.zero_count)
        && floats_equal(a.sum, b.sum)
        && a.positive_spans == b.positive_spans
        && a.negative_spans == b.negative_spans
        && a.positive_buckets.len() == b.positive_buckets.len()
        && a.negative_buckets.len() == b.negative_buckets.len()
        && a.positive_buckets
            .iter()
            .zip(&b.positive_buckets)
            .all(|(x, y)| floats_equal(*x, *y))
        && a.negative_buckets
            .iter()
            .zip(&b.negative_buckets)
            .all(|(x, y)| floats_equal(*x, *y))
        && a.custom_values == b.custom_values
}

/// Compares one expected value with a float or histogram.
fn value_equal(exp: &TestValue, f: f64, h: Option<&FloatHistogram>, hint: bool) -> bool {
    match (exp, h) {
        (TestValue::Float(x), None) => floats_equal(*x, f),
        (TestValue::Histogram(x), Some(h)) => hists_equal(x, h, hint),
        _ => false,
    }
}

fn show(v: &TestValue) -> String {
    match v {
        TestValue::Float(f) => emberlens_model::format_value(*f),
        TestValue::Histogram(h) => h.to_string(),
    }
}

fn compare(e: &Eval, got: &Value) -> Result<(), String> {
    match (&e.result, got) {
        (ExpectedResult::Scalar(x), Value::Scalar { v, .. }) => {
            if floats_equal(*x, *v) {
                Ok(())
            } else {
                Err(format!("expected scalar {x}, got {v}"))
            }
        }
        (ExpectedResult::String(x), Value::String { s, .. }) => {
            if x == s {
                Ok(())
            } else {
                Err(format!("expected string {x:?}, got {s:?}"))
            }
        }
        (ExpectedResult::Series(exp), Value::String { s, .. })
            if exp.is_empty() && s.is_empty() =>
        {
            Ok(())
        }
        (ExpectedResult::Series(exp), Value::Vector(v))
            if matches!(e.query, EvalQuery::Instant { .. }) =>
        {
            compare_vector(
                exp,
                v.iter().map(|s| (&s.metric, s.f, s.h.as_deref())).collect(),
                expects(e, ExpectKind::Ordered),
            )
        }
        (ExpectedResult::Series(exp), Value::Matrix(m)) => {
            let (start, step) = match e.query {
                EvalQuery::Range {
                    start_ms, step_ms, ..
                } => (start_ms, step_ms),
                EvalQuery::Instant { at_ms } => (at_ms, 0),
            };
            compare_matrix(exp, m, start, step)
        }
        (
            ExpectedResult::RangeVector {
                start_ms,
                step_ms,
                series,
                ..
            },
            Value::Matrix(m),
        ) => compare_matrix(series, m, *start_ms, *step_ms),
        (exp, got) => Err(format!("expected {exp:?}, got {got:?}")),
    }
}

fn compare_vector(
    exp: &[ExpectedSeries],
    got: Vec<(&Labels, f64, Option<&FloatHistogram>)>,
    ordered: bool,
) -> Result<(), String> {
    if exp.len() != got.len() {
        return Err(format!(
            "expected {} samples, got {}: {}",
            exp.len(),
            got.len(),
            got.iter()
                .map(|(l, f, h)| format!(
                    "{l} {}",
                    h.map(|h| h.to_string()).unwrap_or_else(|| f.to_string())
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    for (i, x) in exp.iter().enumerate() {
        let Some(Some(want)) = x.values.first() else {
            return Err(format!("line {}: expected series without a value", x.line));
        };
        let hint = x.counter_reset_hint_set.first().copied().unwrap_or(false);
        let found = if ordered {
            got.get(i).filter(|(l, _, _)| **l == x.labels)
        } else {
            got.iter().find(|(l, _, _)| **l == x.labels)
        };
        let Some((_, f, h)) = found else {
            return Err(format!(
                "expected {} {} not in the result{}",
                x.labels,
                show(want),
                if ordered { " (at its position)" } else { "" }
            ));
        };
        if !value_equal(want, *f, *h, hint) {
            return Err(format!(
                "{}: expected {}, got {}",
                x.labels,
                show(want),
                h.map(|h| h.to_string()).unwrap_or_else(|| f.to_string())
            ));
        }
    }
    Ok(())
}

fn compare_matrix(
    exp: &[ExpectedSeries],
    got: &[crate::value::Series],
    start: i64,
    step: i64,
) -> Result<(), String> {
    let nonempty: Vec<&ExpectedSeries> = exp
        .iter()
        .filter(|x| x.values.iter().any(Option::is_some))
        .collect();
    if nonempty.len() != got.len() {
        return Err(format!(
            "expected {} series, got {}: {}",
            nonempty.len(),
            got.len(),
            got.iter()
                .map(|s| s.metric.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    for x in nonempty {
        let Some(s) = got.iter().find(|s| s.metric == x.labels) else {
            return Err(format!("expected series {} not in the result", x.labels));
        };
        let mut nf = 0;
        let mut nh = 0;
        for (i, v) in x.values.iter().enumerate() {
            let t = start + step * i as i64;
            let Some(v) = v else { continue };
            let hint = x.counter_reset_hint_set.get(i).copied().unwrap_or(false);
            let f = s.floats.iter().find(|p| p.t == t);
            let h = s.hists.iter().find(|p| p.t == t);
            let ok = match (f, h) {
                (Some(p), None) => value_equal(v, p.f, None, hint),
                (None, Some(p)) => value_equal(v, 0.0, Some(&p.h), hint),
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "{} at {t}: expected {}, got {:?}",
                    x.labels,
                    show(v),
                    f.map(|p| p.f.to_string()).or(h.map(|p| p.h.to_string()))
                ));
            }
            match v {
                TestValue::Float(_) => nf += 1,
                TestValue::Histogram(_) => nh += 1,
            }
        }
        if s.floats.len() != nf || s.hists.len() != nh {
            return Err(format!(
                "{}: expected {nf} floats and {nh} histograms, got {} and {}",
                x.labels,
                s.floats.len(),
                s.hists.len()
            ));
        }
    }
    Ok(())
}

/// Sets `@ t` on selectors and subqueries without one; returns whether
/// anything changed and whether an `@`-unsafe function appears.
fn add_at(e: &mut Expr, t: i64, changed: &mut bool, unsafe_fn: &mut bool) {
    match e {
        Expr::Selector(vs) => {
            if vs.at.is_none() {
                vs.at = Some(AtModifier::Timestamp(t));
                *changed = true;
            }
        }
        Expr::Matrix(m) => {
            if m.vs.at.is_none() {
                m.vs.at = Some(AtModifier::Timestamp(t));
                *changed = true;
            }
        }
        Expr::Subquery(s) => {
            if s.at.is_none() {
                s.at = Some(AtModifier::Timestamp(t));
                *changed = true;
            }
            // Below a subquery with `@`, nothing changes; still look for
            // unsafe functions.
            let mut dummy = false;
            find_unsafe(&s.expr, unsafe_fn);
            let _ = &mut dummy;
        }
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => add_at(expr, t, changed, unsafe_fn),
        Expr::Binary(b) => {
            add_at(&mut b.lhs, t, changed, unsafe_fn);
            add_at(&mut b.rhs, t, changed, unsafe_fn);
        }
        Expr::Call(c) => {
            if AT_UNSAFE.contains(&c.func.name) {
                *unsafe_fn = true;
            }
            for a in &mut c.args {
                add_at(a, t, changed, unsafe_fn);
            }
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &mut a.param {
                add_at(p, t, changed, unsafe_fn);
            }
            add_at(&mut a.expr, t, changed, unsafe_fn);
        }
        Expr::Number { .. } | Expr::String { .. } => {}
    }
}

fn find_unsafe(e: &Expr, unsafe_fn: &mut bool) {
    match e {
        Expr::Call(c) => {
            if AT_UNSAFE.contains(&c.func.name) {
                *unsafe_fn = true;
            }
            for a in &c.args {
                find_unsafe(a, unsafe_fn);
            }
        }
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => find_unsafe(expr, unsafe_fn),
        Expr::Subquery(s) => find_unsafe(&s.expr, unsafe_fn),
        Expr::Binary(b) => {
            find_unsafe(&b.lhs, unsafe_fn);
            find_unsafe(&b.rhs, unsafe_fn);
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                find_unsafe(p, unsafe_fn);
            }
            find_unsafe(&a.expr, unsafe_fn);
        }
        _ => {}
    }
}

fn uses_query_functions(e: &Expr) -> bool {
    let mut found = false;
    visit_calls(e, &mut |name| {
        if matches!(name, "start" | "end" | "range" | "step") {
            found = true;
        }
    });
    found || contains_duration_fn(e)
}

fn contains_duration_fn(e: &Expr) -> bool {
    use crate::ast::DurationExpr as D;
    fn d(x: &D) -> bool {
        match x {
            D::Step | D::Range => true,
            D::Number(_) => false,
            D::MinOf(a, b) | D::MaxOf(a, b) | D::Binary(_, a, b) => d(a) || d(b),
            D::Neg(a) => d(a),
        }
    }
    match e {
        Expr::Selector(vs) => {
            vs.offset.as_ref().is_some_and(d)
                || matches!(vs.at, Some(AtModifier::Start | AtModifier::End))
        }
        Expr::Matrix(m) => {
            d(&m.range)
                || m.vs.offset.as_ref().is_some_and(d)
                || matches!(m.vs.at, Some(AtModifier::Start | AtModifier::End))
        }
        Expr::Subquery(s) => {
            d(&s.range)
                || s.step.as_ref().is_some_and(d)
                || s.offset.as_ref().is_some_and(d)
                || matches!(s.at, Some(AtModifier::Start | AtModifier::End))
                || contains_duration_fn(&s.expr)
        }
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => contains_duration_fn(expr),
        Expr::Binary(b) => contains_duration_fn(&b.lhs) || contains_duration_fn(&b.rhs),
        Expr::Call(c) => c.args.iter().any(contains_duration_fn),
        Expr::Aggregate(a) => {
            a.param.as_deref().is_some_and(contains_duration_fn) || contains_duration_fn(&a.expr)
        }
        _ => false,
    }
}

fn visit_calls(e: &Expr, f: &mut dyn FnMut(&str)) {
    match e {
        Expr::Call(c) => {
            f(c.func.name);
            for a in &c.args {
                visit_calls(a, f);
            }
        }
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => visit_calls(expr, f),
        Expr::Subquery(s) => visit_calls(&s.expr, f),
        Expr::Binary(b) => {
            visit_calls(&b.lhs, f);
            visit_calls(&b.rhs, f);
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                visit_calls(p, f);
            }
            visit_calls(&a.expr, f);
        }
        _ => {}
    }
}

fn at_rerun(
    storage: &TestStorage,
    opts: &EngineOpts,
    e: &Eval,
    expr: &Expr,
    t: i64,
) -> Result<(), String> {
    if !matches!(
        e.result,
        ExpectedResult::Series(_) | ExpectedResult::Scalar(_)
    ) {
        return Ok(());
    }
    let mut with_at = expr.clone();
    let (mut changed, mut unsafe_fn) = (false, false);
    add_at(&mut with_at, t, &mut changed, &mut unsafe_fn);
    if !changed || unsafe_fn || uses_query_functions(expr) {
        return Ok(());
    }
    let times: Vec<i64> = if t == 0 {
        vec![-1000, 0, 1000]
    } else {
        vec![-10 * t, 0, t / 5, t, 10 * t]
    };
    for at in times {
        let r = instant_query_expr(storage, opts, &e.expr, &with_at, at)
            .map_err(|err| format!("@ rerun at {at}: error {err}"))?;
        compare(e, &r.value).map_err(|m| format!("@ rerun at {at}ms: {m}"))?;
    }
    Ok(())
}

fn range_mode_check(
    storage: &TestStorage,
    opts: &EngineOpts,
    e: &Eval,
    expr: &Expr,
    t: i64,
) -> Result<(), String> {
    if expects(e, ExpectKind::Ordered)
        || !matches!(
            e.result,
            ExpectedResult::Series(_) | ExpectedResult::Scalar(_)
        )
        || uses_query_functions(expr)
    {
        return Ok(());
    }
    if !matches!(
        expr.value_type(),
        crate::ast::ValueType::Vector | crate::ast::ValueType::Scalar
    ) {
        return Ok(());
    }
    let r: Result<QueryResult, EvalError> =
        range_query_expr(storage, opts, &e.expr, expr, t - 60_000, t + 60_000, 60_000);
    let r = r.map_err(|err| format!("range-mode check: error {err}"))?;
    let Value::Matrix(m) = r.value else {
        return Err("range-mode check: not a matrix".into());
    };
    // The middle step as a vector.
    let mid: Vec<(&Labels, f64, Option<&FloatHistogram>)> = m
        .iter()
        .filter_map(|s| {
            if let Some(p) = s.floats.iter().find(|p| p.t == t) {
                return Some((&s.metric, p.f, None));
            }
            s.hists
                .iter()
                .find(|p| p.t == t)
                .map(|p| (&s.metric, 0.0, Some(&*p.h)))
        })
        .collect();
    match &e.result {
        ExpectedResult::Series(exp) => {
            compare_vector(exp, mid, false).map_err(|m| format!("range-mode check: {m}"))
        }
        ExpectedResult::Scalar(x) => match mid.as_slice() {
            [(_, f, None)] if floats_equal(*x, *f) => Ok(()),
            other => Err(format!(
                "range-mode check: expected scalar {x}, got {:?}",
                other.iter().map(|(_, f, _)| f).collect::<Vec<_>>()
            )),
        },
        _ => Ok(()),
    }
}
