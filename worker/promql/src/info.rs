//! The experimental `info(v, [data-label-selector])` function, as
//! Prometheus 3's `promql/info.go`.
//!
//! What: every sample of `v` is enriched with the "data" labels of the info
//! series (by default `target_info`) that share its identifying labels
//! (`instance` and `job`, hard-coded as upstream). The optional second
//! argument is a label selector: its `__name__` matchers choose which info
//! metrics are consulted, its other matchers both filter the info series
//! and restrict which of their labels are copied.
//!
//! Why a separate module: `info` is the only function that selects series
//! the query does not name, so it has its own preload step (the span is the
//! one the first selector of `v` reads, shifted by its `@` and `offset` and
//! those of enclosing subqueries) and its own join.
//!
//! Edge cases, as upstream:
//! - No `__name__` matcher means `__name__="target_info"`; only negative
//!   `__name__` matchers get a synthetic `__name__=~".+_info"` in front, so
//!   ordinary metrics never become info series.
//! - Samples of `v` whose metric name matches all those name matchers are
//!   info series themselves and pass through unchanged.
//! - Info series are looked up with the lookback window at the reference
//!   time of `v`'s first selector (`@` and `offset` honoured, also on an
//!   enclosing subquery), not at the evaluation time.
//! - Several info series with one signature (metric name plus identifying
//!   labels): the one with the newest sample wins; equal timestamps are an
//!   error ("found duplicate series for info metric"). A histogram sample
//!   in an info series is an error, so is one data label with two values
//!   from two info metrics ("conflicting label").
//! - Labels already on the base series are never overwritten; a base
//!   series that no info series matches is dropped only when a data-label
//!   matcher rejects the empty string.
//! - The delayed `__name__` removal flag of the base sample is kept.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use emberlens_model::{
    Labels, METRIC_NAME, MatchOp, Matcher, Storage, is_stale_nan, labels_go_string,
};

use crate::ast::{Call, Expr};
use crate::engine::{Evaluator, IValue, SeriesData, key};
use crate::error::EvalError;
use crate::value::Sample;

const TARGET_INFO: &str = "target_info";
const IDENTIFYING: [&str; 2] = ["instance", "job"];

/// The matchers of an `info` call, split as upstream uses them.
struct InfoSpec {
    /// Effective `__name__` matchers: which metrics are info metrics.
    names: Vec<Matcher>,
    /// The other matchers, grouped by label name.
    data: BTreeMap<String, Vec<Matcher>>,
}

fn matcher(name: &str, op: MatchOp, value: &str) -> Result<Matcher, EvalError> {
    Matcher::new(name, op, value).map_err(|e| EvalError::Execution(e.to_string()))
}

impl InfoSpec {
    fn new(c: &Call) -> Result<Self, EvalError> {
        let given: &[Matcher] = match c.args.get(1).map(Expr::unparen) {
            Some(Expr::Selector(vs)) => &vs.matchers,
            _ => &[],
        };
        let mut names: Vec<Matcher> = Vec::new();
        let mut data: BTreeMap<String, Vec<Matcher>> = BTreeMap::new();
        for m in given {
            if m.name == METRIC_NAME {
                names.push(m.clone());
            } else {
                data.entry(m.name.clone()).or_default().push(m.clone());
            }
        }
        if names.is_empty() {
            names.push(matcher(METRIC_NAME, MatchOp::Equal, TARGET_INFO)?);
        } else if !names
            .iter()
            .any(|m| matches!(m.op, MatchOp::Equal | MatchOp::RegexMatch))
        {
            names.insert(0, matcher(METRIC_NAME, MatchOp::RegexMatch, ".+_info")?);
        }
        Ok(InfoSpec { names, data })
    }

    /// Matchers selecting the candidate info series from storage.
    fn select_matchers(&self) -> Vec<Matcher> {
        self.names
            .iter()
            .chain(self.data.values().flatten())
            .cloned()
            .collect()
    }

    fn is_info_name(&self, name: &str) -> bool {
        self.names.iter().all(|m| m.matches(name))
    }

    fn matches_labels(&self, l: &Labels) -> bool {
        self.names.iter().all(|m| m.matches_labels(l))
            && self.data.values().flatten().all(|m| m.matches_labels(l))
    }
}

/// The reference time of the first selector in `e` (pre-order, as
/// upstream's `parser.Inspect`) when `e` is evaluated at `t`; `None` when
/// `e` has no selector.
fn ref_time<S: Storage>(ev: &Evaluator<'_, S>, e: &Expr, t: i64) -> Result<Option<i64>, EvalError> {
    let off = |d: &Option<crate::ast::DurationExpr>| -> Result<i64, EvalError> {
        d.as_ref()
            .map(|d| ev.duration_ms(d))
            .transpose()
            .map(|o| o.unwrap_or(0))
    };
    Ok(match e {
        Expr::Number { .. } | Expr::String { .. } => None,
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => ref_time(ev, expr, t)?,
        Expr::Selector(vs) => {
            let base = vs.at.map(|a| ev.at_ms(a)).unwrap_or(t);
            Some(base.saturating_sub(off(&vs.offset)?))
        }
        Expr::Matrix(m) => {
            let base = m.vs.at.map(|a| ev.at_ms(a)).unwrap_or(t);
            Some(base.saturating_sub(off(&m.vs.offset)?))
        }
        Expr::Subquery(sq) => {
            let base = sq.at.map(|a| ev.at_ms(a)).unwrap_or(t);
            ref_time(ev, &sq.expr, base.saturating_sub(off(&sq.offset)?))?
        }
        Expr::Binary(b) => match ref_time(ev, &b.lhs, t)? {
            Some(x) => Some(x),
            None => ref_time(ev, &b.rhs, t)?,
        },
        Expr::Call(c) => {
            let mut found = None;
            for a in &c.args {
                found = ref_time(ev, a, t)?;
                if found.is_some() {
                    break;
                }
            }
            found
        }
        Expr::Aggregate(a) => match ref_time(ev, &a.expr, t)? {
            Some(x) => Some(x),
            None => match &a.param {
                Some(p) => ref_time(ev, p, t)?,
                None => None,
            },
        },
    })
}

/// Selects the candidate info series of `c` for the span its reference
/// times can take (`at`, `sub_off`, `sub_range` as in `Evaluator::preload_in`).
pub(crate) fn preload<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    c: &Call,
    at: Option<i64>,
    sub_off: i64,
    sub_range: i64,
) -> Result<(), EvalError> {
    let spec = InfoSpec::new(c)?;
    let (s, e) = match at {
        Some(a) => (a, a),
        None => (ev.start, ev.end),
    };
    let lo = s.saturating_sub(sub_off).saturating_sub(sub_range);
    let hi = e.saturating_sub(sub_off);
    let (lo, hi) = match c.args.first() {
        Some(arg) => {
            let a = ref_time(ev, arg, lo)?.unwrap_or(lo);
            let b = ref_time(ev, arg, hi)?.unwrap_or(hi);
            (a.min(b), a.max(b))
        }
        None => (lo, hi),
    };
    let mint = lo.saturating_sub(ev.opts.lookback_ms);
    let data = ev.select_data(&spec.select_matchers(), mint, hi)?;
    ev.info_data.insert(key(c), Arc::new(data));
    Ok(())
}

/// An info series' sample at `rt`: `(labels, original timestamp)`.
struct InfoSample<'d> {
    labels: &'d Labels,
    t: i64,
}

/// The newest sample of `s` in `(rt - lookback, rt]`; an error for a
/// histogram.
fn sample_at(s: &SeriesData, rt: i64, lookback: i64) -> Result<Option<i64>, EvalError> {
    let lo = rt.saturating_sub(lookback);
    let fi = s.floats.partition_point(|p| p.t <= rt);
    let hi = s.hists.partition_point(|p| p.t <= rt);
    let f = fi
        .checked_sub(1)
        .and_then(|i| s.floats.get(i))
        .filter(|p| p.t > lo);
    let h = hi
        .checked_sub(1)
        .and_then(|i| s.hists.get(i))
        .filter(|p| p.t > lo);
    match (f, h) {
        (Some(f), Some(h)) if h.t > f.t => {
            if is_stale_nan(h.h.sum) {
                Ok(None)
            } else {
                Err(EvalError::Execution("info sample should be float".into()))
            }
        }
        (Some(f), _) => Ok((!is_stale_nan(f.f)).then_some(f.t)),
        (None, Some(h)) => {
            if is_stale_nan(h.h.sum) {
                Ok(None)
            } else {
                Err(EvalError::Execution("info sample should be float".into()))
            }
        }
        (None, None) => Ok(None),
    }
}

/// `info(v, [selector])` at `t`.
pub(crate) fn eval_info<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    c: &Call,
    t: i64,
) -> Result<IValue, EvalError> {
    let Some(arg) = c.args.first() else {
        return Err(EvalError::Execution("missing argument 0 of info".into()));
    };
    let base = ev.eval_vector(arg, t)?;
    if base.is_empty() {
        return Ok(IValue::Vector(base));
    }
    let spec = InfoSpec::new(c)?;
    let ignored: Vec<bool> = base
        .iter()
        .map(|s| spec.is_info_name(s.metric.metric_name()))
        .collect();

    // The identifying-label values of the series to enrich.
    let mut id_values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (s, _) in base.iter().zip(&ignored).filter(|(_, ign)| !**ign) {
        for l in IDENTIFYING {
            let v = s.metric.get(l);
            if !v.is_empty() {
                id_values.entry(l).or_default().insert(v);
            }
        }
    }

    // The info series at the reference time, one per signature.
    let mut by_sig: BTreeMap<Labels, InfoSample<'_>> = BTreeMap::new();
    let data = match ev.info_data.get(&key(c)) {
        Some(d) => d.clone(),
        None => {
            let d = Arc::new(ev.select_data(&spec.select_matchers(), i64::MIN, i64::MAX)?);
            ev.info_data.insert(key(c), d.clone());
            d
        }
    };
    if !id_values.is_empty() {
        let rt = ref_time(ev, arg, t)?.unwrap_or(t);
        for s in data.iter() {
            if !spec.matches_labels(&s.labels)
                || !id_values.iter().all(|(l, vs)| vs.contains(s.labels.get(l)))
            {
                continue;
            }
            let Some(st) = sample_at(s, rt, ev.opts.lookback_ms)? else {
                continue;
            };
            let mut sig_names = vec![METRIC_NAME];
            sig_names.extend(IDENTIFYING);
            let sig = s.labels.keep(&sig_names);
            match by_sig.get(&sig) {
                Some(old) if old.t > st => {}
                Some(old) if old.t == st => {
                    return Err(EvalError::Execution(format!(
                        "found duplicate series for info metric: existing {} @ {}, new {} @ {}",
                        labels_go_string(old.labels),
                        old.t,
                        labels_go_string(&s.labels),
                        st
                    )));
                }
                _ => {
                    by_sig.insert(
                        sig,
                        InfoSample {
                            labels: &s.labels,
                            t: st,
                        },
                    );
                }
            }
        }
    }
    let info_names: BTreeSet<&str> = by_sig.keys().map(|l| l.metric_name()).collect();
    let all_match_empty = spec.data.values().flatten().all(|m| m.matches(""));

    let mut out = Vec::with_capacity(base.len());
    for (s, ign) in base.iter().zip(&ignored) {
        if *ign {
            out.push(s.clone());
            continue;
        }
        let id = s.metric.keep(&IDENTIFYING);
        let mut extra = Labels::default();
        let mut seen = false;
        for name in &info_names {
            let Some(is) = by_sig.get(&id.with(METRIC_NAME, name)) else {
                continue;
            };
            seen = true;
            for l in is.labels.iter() {
                if l.name == METRIC_NAME
                    || (!spec.data.is_empty() && !spec.data.contains_key(&l.name))
                {
                    continue;
                }
                let have = extra.get(&l.name);
                if !have.is_empty() && have != l.value {
                    return Err(EvalError::Execution(format!(
                        "conflicting label: {}",
                        l.name
                    )));
                }
                if !s.metric.get(&l.name).is_empty() {
                    continue;
                }
                extra = extra.with(&l.name, &l.value);
            }
        }
        if !seen && !all_match_empty {
            continue;
        }
        let mut metric = s.metric.clone();
        for l in extra.iter() {
            metric = metric.with(&l.name, &l.value);
        }
        out.push(Sample {
            metric,
            ..s.clone()
        });
    }
    Ok(IValue::Vector(out))
}
