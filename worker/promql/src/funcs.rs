//! Function evaluation, as Prometheus 3's `promql/functions.go`.
//!
//! Instant-vector functions map samples; range-vector functions see each
//! series' points in the window. Functions that compute a new value mark
//! the sample for `__name__` removal (delayed name removal); `label_*`,
//! `sort*`, `last_over_time`, `first_over_time` and friends keep it.
//!
//! Edge cases, as Prometheus: `rate`/`increase`/`delta` extrapolate towards
//! the window's ends by at most half an average sample interval, and a
//! counter never below zero; they need two samples of one kind (floats or
//! histograms) and warn on a mix; `rate` on a metric whose name does not end
//! in `_total`, `_sum`, `_count` or `_bucket` adds an info. `irate` and
//! `idelta` use the two newest samples of either kind (a float next to a
//! histogram is a mix warning).

use std::cmp::Ordering;
use std::sync::Arc;

use emberlens_model::{FloatHistogram, Labels, StartTimestamps, Storage, is_stale_nan};

use crate::aggregate::{kahan_inc, quantile};
use crate::ast::{AtModifier, Call, Expr, PosRange, RangeMode};
use crate::engine::{Evaluator, IValue, equality_labels};
use crate::error::EvalError;
use crate::value::{FPoint, Sample, Series};

pub(crate) fn scalar_arg<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    c: &Call,
    i: usize,
    t: i64,
) -> Result<f64, EvalError> {
    match c.args.get(i) {
        Some(e) => ev.eval_scalar(e, t),
        None => Err(EvalError::Execution(format!(
            "missing argument {i} of {}",
            c.func.name
        ))),
    }
}

pub(crate) fn string_arg<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    c: &Call,
    i: usize,
    t: i64,
) -> Result<String, EvalError> {
    match c.args.get(i).map(|e| ev.eval(e, t)).transpose()? {
        Some(IValue::String(s)) => Ok(s),
        _ => Err(EvalError::Execution(format!(
            "argument {i} of {} must be a string",
            c.func.name
        ))),
    }
}

pub(crate) fn vector_arg<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    c: &Call,
    i: usize,
    t: i64,
) -> Result<Vec<Sample>, EvalError> {
    match c.args.get(i) {
        Some(e) => ev.eval_vector(e, t),
        None => Err(EvalError::Execution(format!(
            "missing argument {i} of {}",
            c.func.name
        ))),
    }
}

/// Maps every float sample; histograms are dropped (with an info where
/// Prometheus gives one) and the result's name is dropped.
fn map_floats(v: Vec<Sample>, f: impl Fn(f64) -> f64) -> Vec<Sample> {
    v.into_iter()
        .filter(|s| s.h.is_none())
        .map(|mut s| {
            s.f = f(s.f);
            s.drop_name = true;
            s
        })
        .collect()
}

pub(crate) fn eval_call<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    c: &Call,
    t: i64,
) -> Result<IValue, EvalError> {
    let name = c.func.name;
    // Range modifiers are only meaningful for some functions.
    if let Some(arg) = c.args.iter().find_map(|a| match a.unparen() {
        Expr::Matrix(m) if m.mode != RangeMode::Plain => Some(m),
        _ => None,
    }) {
        match arg.mode {
            RangeMode::Anchored
                if !matches!(name, "changes" | "delta" | "increase" | "rate" | "resets") =>
            {
                return Err(EvalError::Execution(format!(
                    "anchored modifier can only be used with: changes, delta, increase, rate, resets - not with {name}"
                )));
            }
            RangeMode::Smoothed if !matches!(name, "delta" | "increase" | "rate") => {
                return Err(EvalError::Execution(format!(
                    "smoothed modifier can only be used with: delta, increase, rate - not with {name}"
                )));
            }
            _ => {}
        }
    }
    if let Some(r) = crate::nativehist::eval_histogram_call(ev, c, t) {
        return r;
    }
    if ev.start != ev.end
        && matches!(
            name,
            "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc"
        )
    {
        ev.ann.warn(
            ev.src,
            c.pos,
            "sort is ineffective for range queries since results are always ordered by labels",
        );
    }
    let v = match name {
        "time" => IValue::Scalar(t as f64 / 1000.0),
        "pi" => IValue::Scalar(std::f64::consts::PI),
        "step" => IValue::Scalar(ev.step as f64 / 1000.0),
        "range" => IValue::Scalar((ev.end - ev.start) as f64 / 1000.0),
        "start" => IValue::Scalar(ev.start as f64 / 1000.0),
        "end" => IValue::Scalar(ev.end as f64 / 1000.0),
        "min_of" => IValue::Scalar(go_min(scalar_arg(ev, c, 0, t)?, scalar_arg(ev, c, 1, t)?)),
        "max_of" => IValue::Scalar(go_max(scalar_arg(ev, c, 0, t)?, scalar_arg(ev, c, 1, t)?)),
        "info" => crate::info::eval_info(ev, c, t)?,
        "vector" => IValue::Vector(vec![Sample {
            metric: Labels::default(),
            t,
            f: scalar_arg(ev, c, 0, t)?,
            h: None,
            drop_name: false,
        }]),
        "scalar" => {
            let v = vector_arg(ev, c, 0, t)?;
            // Histograms do not count: exactly one float sample.
            let mut floats = v.iter().filter(|s| s.h.is_none());
            IValue::Scalar(match (floats.next(), floats.next()) {
                (Some(s), None) => s.f,
                _ => f64::NAN,
            })
        }
        "abs" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, f64::abs)),
        "ceil" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, f64::ceil)),
        "floor" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, f64::floor)),
        "exp" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, f64::exp)),
        "sqrt" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, f64::sqrt)),
        "ln" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, f64::ln)),
        "log2" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, f64::log2)),
        "log10" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, f64::log10)),
        "sin" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, f64::sin)),
        "cos" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, f64::cos)),
        "tan" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, f64::tan)),
        "asin" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, f64::asin)),
        "acos" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, f64::acos)),
        "atan" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, f64::atan)),
        "sinh" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, f64::sinh)),
        "cosh" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, f64::cosh)),
        "tanh" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, f64::tanh)),
        "asinh" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, f64::asinh)),
        "acosh" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, f64::acosh)),
        "atanh" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, f64::atanh)),
        "deg" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, |x| {
            x * 180.0 / std::f64::consts::PI
        })),
        "rad" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, |x| {
            x * std::f64::consts::PI / 180.0
        })),
        "sgn" => IValue::Vector(map_floats(vector_arg(ev, c, 0, t)?, |x| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                x
            }
        })),
        "clamp" => {
            let v = vector_arg(ev, c, 0, t)?;
            let (lo, hi) = (scalar_arg(ev, c, 1, t)?, scalar_arg(ev, c, 2, t)?);
            if hi < lo {
                IValue::Vector(Vec::new())
            } else {
                IValue::Vector(map_floats(v, |x| go_max(lo, go_min(hi, x))))
            }
        }
        "clamp_max" => {
            let v = vector_arg(ev, c, 0, t)?;
            let hi = scalar_arg(ev, c, 1, t)?;
            IValue::Vector(map_floats(v, |x| go_min(hi, x)))
        }
        "clamp_min" => {
            let v = vector_arg(ev, c, 0, t)?;
            let lo = scalar_arg(ev, c, 1, t)?;
            IValue::Vector(map_floats(v, |x| go_max(lo, x)))
        }
        "round" => {
            let v = vector_arg(ev, c, 0, t)?;
            let to = if c.args.len() > 1 {
                scalar_arg(ev, c, 1, t)?
            } else {
                1.0
            };
            let inv = 1.0 / to;
            IValue::Vector(map_floats(v, |x| (x * inv + 0.5).floor() / inv))
        }
        "start_timestamp" => crate::startts::eval_start_timestamp(ev, c, t)?,
        "timestamp" => {
            // Only a selector argument gives the samples' own times; any
            // other expression yields samples at the evaluation time.
            let own_time = matches!(c.args.first().map(Expr::unparen), Some(Expr::Selector(_)));
            IValue::Vector(
                vector_arg(ev, c, 0, t)?
                    .into_iter()
                    .map(|mut s| {
                        s.f = if own_time { s.t } else { t } as f64 / 1000.0;
                        s.h = None;
                        s.drop_name = true;
                        s
                    })
                    .collect(),
            )
        }
        "year" | "month" | "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month"
        | "hour" | "minute" => {
            let v = if c.args.is_empty() {
                vec![Sample {
                    metric: Labels::default(),
                    t,
                    f: t as f64 / 1000.0,
                    h: None,
                    drop_name: false,
                }]
            } else {
                vector_arg(ev, c, 0, t)?
            };
            IValue::Vector(map_floats(v, |x| date_part(name, x)))
        }
        "sort" | "sort_desc" => {
            let mut v = vector_arg(ev, c, 0, t)?;
            v.retain(|s| s.h.is_none());
            let desc = name == "sort_desc";
            v.sort_by(|a, b| {
                // NaN last in both directions.
                match (a.f.is_nan(), b.f.is_nan()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    _ if desc => b.f.total_cmp(&a.f),
                    _ => a.f.total_cmp(&b.f),
                }
            });
            IValue::Vector(v)
        }
        "sort_by_label" | "sort_by_label_desc" => {
            let mut v = vector_arg(ev, c, 0, t)?;
            let mut labels = Vec::new();
            for i in 1..c.args.len() {
                labels.push(string_arg(ev, c, i, t)?);
            }
            let desc = name == "sort_by_label_desc";
            v.sort_by(|a, b| {
                let mut o = Ordering::Equal;
                for l in &labels {
                    o = natural_cmp(a.metric.get(l), b.metric.get(l));
                    if o != Ordering::Equal {
                        break;
                    }
                }
                if o == Ordering::Equal {
                    o = a.metric.cmp(&b.metric);
                }
                if desc { o.reverse() } else { o }
            });
            IValue::Vector(v)
        }
        "label_replace" => {
            let v = vector_arg(ev, c, 0, t)?;
            let dst = string_arg(ev, c, 1, t)?;
            let repl = string_arg(ev, c, 2, t)?;
            let src = string_arg(ev, c, 3, t)?;
            let re = string_arg(ev, c, 4, t)?;
            let regex = regex::Regex::new(&format!("^(?s:{re})$")).map_err(|e| {
                EvalError::Execution(format!(
                    "invalid regular expression in label_replace(): {re}: {e}"
                ))
            })?;
            if dst.is_empty() {
                return Err(EvalError::Execution(format!(
                    "invalid destination label name in label_replace(): {dst}"
                )));
            }
            if let Some(q) = crate::aggregate::invalid_utf8_literal(ev.src, c.args.get(1)) {
                return Err(EvalError::Execution(format!(
                    "invalid destination label name in label_replace(): {q}"
                )));
            }
            let mut out = Vec::with_capacity(v.len());
            for mut s in v {
                let sv = s.metric.get(&src).to_string();
                if let Some(caps) = regex.captures(&sv) {
                    let mut res = String::new();
                    caps.expand(&go_template(&repl), &mut res);
                    s.metric = s.metric.with(&dst, &res);
                    if dst == "__name__" {
                        s.drop_name = false;
                    }
                }
                out.push(s);
            }
            IValue::Vector(out)
        }
        "label_join" => {
            let v = vector_arg(ev, c, 0, t)?;
            let dst = string_arg(ev, c, 1, t)?;
            let sep = string_arg(ev, c, 2, t)?;
            let mut srcs = Vec::new();
            for i in 3..c.args.len() {
                srcs.push(string_arg(ev, c, i, t)?);
            }
            if dst.is_empty() {
                return Err(EvalError::Execution(format!(
                    "invalid destination label name in label_join(): {dst}"
                )));
            }
            IValue::Vector(
                v.into_iter()
                    .map(|mut s| {
                        let joined: Vec<&str> = srcs.iter().map(|l| s.metric.get(l)).collect();
                        let val = joined.join(&sep);
                        s.metric = s.metric.with(&dst, &val);
                        if dst == "__name__" {
                            s.drop_name = false;
                        }
                        s
                    })
                    .collect(),
            )
        }
        "absent" => {
            let v = vector_arg(ev, c, 0, t)?;
            if !v.is_empty() {
                IValue::Vector(Vec::new())
            } else {
                let labels = match c.args.first().map(|a| a.unparen()) {
                    Some(Expr::Selector(vs)) => equality_labels(&vs.matchers),
                    _ => Labels::default(),
                };
                IValue::Vector(vec![Sample {
                    metric: labels,
                    t,
                    f: 1.0,
                    h: None,
                    drop_name: false,
                }])
            }
        }
        "absent_over_time" => {
            let m = range_arg(ev, c, 0, t)?;
            if !m.is_empty() {
                IValue::Vector(Vec::new())
            } else {
                let labels = match c.args.first().map(|a| a.unparen()) {
                    Some(Expr::Matrix(ms)) => equality_labels(&ms.vs.matchers),
                    _ => Labels::default(),
                };
                IValue::Vector(vec![Sample {
                    metric: labels,
                    t,
                    f: 1.0,
                    h: None,
                    drop_name: false,
                }])
            }
        }
        _ => return eval_range_function(ev, c, t),
    };
    Ok(v)
}

fn range_arg<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    c: &Call,
    i: usize,
    t: i64,
) -> Result<Vec<Series>, EvalError> {
    match c.args.get(i) {
        Some(e) => ev.eval_range(e, t),
        None => Err(EvalError::Execution(format!(
            "missing argument {i} of {}",
            c.func.name
        ))),
    }
}

/// The window `(start, end]` a range argument covers at `t`, and its length.
fn window_of<S: Storage>(
    ev: &Evaluator<'_, S>,
    e: &Expr,
    t: i64,
) -> Result<(i64, i64, i64), EvalError> {
    let (at, off, range) = match e.unparen() {
        Expr::Matrix(m) => (m.vs.at, m.vs.offset.as_ref(), &m.range),
        Expr::Subquery(s) => (s.at, s.offset.as_ref(), &s.range),
        _ => return Err(EvalError::Execution("expected a range vector".into())),
    };
    let base = match at {
        Some(AtModifier::Timestamp(a)) => a,
        Some(AtModifier::Start) => ev.start,
        Some(AtModifier::End) => ev.end,
        None => t,
    };
    let off = off.map(|d| ev.duration_ms(d)).transpose()?.unwrap_or(0);
    let range = ev.duration_ms(range)?;
    Ok((base - off - range, base - off, range))
}

fn eval_range_function<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    c: &Call,
    t: i64,
) -> Result<IValue, EvalError> {
    let name = c.func.name;
    // The matrix argument's index.
    let mi = match name {
        "quantile_over_time" => 1,
        _ => 0,
    };
    let Some(marg) = c.args.get(mi) else {
        return Err(EvalError::Execution(format!(
            "{name}: missing range argument"
        )));
    };
    if let Expr::Matrix(m) = marg.unparen()
        && m.mode != RangeMode::Plain
        && matches!(name, "rate" | "increase" | "delta" | "changes" | "resets")
    {
        return crate::extended::eval_call(ev, c, m, t);
    }
    if !matches!(
        name,
        "quantile_over_time" | "predict_linear" | "double_exponential_smoothing"
    ) && let Some(v) = batched(ev, c, marg, t)?
    {
        return Ok(IValue::Vector(v));
    }
    let (wstart, wend, range) = window_of(ev, marg, t)?;
    let q = if name == "quantile_over_time" {
        Some(scalar_arg(ev, c, 0, t)?)
    } else {
        None
    };
    let extra: Vec<f64> = match name {
        "predict_linear" => vec![scalar_arg(ev, c, 1, t)?],
        "double_exponential_smoothing" => vec![scalar_arg(ev, c, 1, t)?, scalar_arg(ev, c, 2, t)?],
        _ => Vec::new(),
    };
    // Start timestamps reach the function only from a range selector.
    let series: Vec<(Series, Option<StartTimestamps>)> = match marg.unparen() {
        Expr::Matrix(m) if m.mode == RangeMode::Plain => {
            let v = ev.eval_matrix_st(m, t)?;
            ev.count(v.iter().map(|(s, _)| s.floats.len() + s.hists.len()).sum())?;
            v
        }
        _ => ev
            .eval_range(marg, t)?
            .into_iter()
            .map(|s| (s, None))
            .collect(),
    };
    let pos = marg.pos();
    let mut out = Vec::with_capacity(series.len());
    if let Some(q) = q
        && !(0.0..=1.0).contains(&q)
        && series.iter().any(|(s, _)| !s.floats.is_empty())
    {
        let qpos = c.args.first().map_or(c.pos, Expr::pos);
        ev.ann.warn(
            ev.src,
            qpos,
            format!(
                "quantile value should be between 0 and 1, got {}",
                emberlens_model::format_go_g(q)
            ),
        );
    }
    for (s, sts) in series {
        let w = (wstart, wend, range);
        if let Some(sample) = range_fn_one(ev, name, &s, sts.as_ref(), w, t, pos, q, &extra)? {
            out.push(sample);
        }
    }
    Ok(IValue::Vector(out))
}

/// A range function of a plain range selector in a range query, computed
/// for all steps on the first step's call, series by series: each series'
/// points are then read while in cache, instead of every series at every
/// step. Same windows, values, order and annotations as step by step.
/// `None` where that does not apply (instant query, inside a subquery, a
/// time off the step grid, a step already taken, histogram statistics).
fn batched<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    c: &Call,
    marg: &Expr,
    t: i64,
) -> Result<Option<Vec<Sample>>, EvalError> {
    /// Steps computed together: enough to read each series' points once
    /// while in cache, few enough to keep the results small.
    const CHUNK: usize = 64;
    let k = crate::engine::key(c);
    let g = ev.grid;
    let top = ev.batchable.contains(&k);
    if g.step <= 0
        || t < g.lo
        || t > g.hi
        || (t - g.lo) % g.step != 0
        || !(top || ev.batchable_inner.contains(&k))
    {
        return Ok(None);
    }
    let mut b = ev.batches.remove(&k).unwrap_or_default();
    let at = |b: &crate::engine::Batch| -> Option<usize> {
        let i = usize::try_from((t - b.t0) / g.step).ok()?;
        (b.step == g.step && t >= b.t0 && (t - b.t0) % g.step == 0 && i < b.steps.len())
            .then_some(i)
    };
    if at(&b).is_none() {
        // Steps left on the grid from `t`.
        let n = ((g.hi - t) / g.step + 1) as usize;
        let (data, drop_stale) = match marg.unparen() {
            Expr::Matrix(m) if m.mode == RangeMode::Plain && !ev.has_hstats(&m.vs) => {
                (ev.selector_data(&m.vs)?, true)
            }
            // Only outside subqueries: the points are the whole query's.
            Expr::Subquery(sq) if top => match &b.sub_data {
                Some(d) => (d.clone(), false),
                None => {
                    // The whole query's points at once: only when the
                    // steps' windows cover the span without gaps (so no
                    // extra inner step is evaluated) and every series
                    // agrees with itself on dropping its name.
                    let (lo, _, range) = window_of(ev, marg, g.lo)?;
                    let (_, rt, _) = window_of(ev, marg, g.hi)?;
                    let step = ev.subquery_step(sq)?;
                    if step <= 0 || (g.hi > g.lo && range < g.step) {
                        ev.batchable.remove(&k);
                        return Ok(None);
                    }
                    let mut mixed = false;
                    let mut ranks = Vec::new();
                    let series =
                        ev.eval_subquery_window(sq, lo, rt, step, &mut mixed, Some(&mut ranks))?;
                    if mixed {
                        ev.batchable.remove(&k);
                        return Ok(None);
                    }
                    b.sub_drop = series.iter().map(|s| s.drop_name).collect();
                    b.sub_ranks = ranks;
                    let d: Arc<Vec<crate::engine::SeriesData>> = Arc::new(
                        series
                            .into_iter()
                            .map(|s| crate::engine::SeriesData {
                                labels: s.metric,
                                floats: Arc::new(s.floats),
                                hists: Arc::new(s.hists),
                                sts: None,
                            })
                            .collect(),
                    );
                    b.sub_data = Some(d.clone());
                    (d, false)
                }
            },
            _ => {
                ev.batchable.remove(&k);
                return Ok(None);
            }
        };
        let pos = marg.pos();
        let name = c.func.name;
        let count = CHUNK.min(n);
        b.cursors.resize(data.len(), (0, 0));
        (b.t0, b.step) = (t, g.step);
        b.steps.clear();
        b.steps.resize(count, Some(Vec::new()));
        b.points.clear();
        b.points.resize(count, 0);
        let mut scratch = Series::default();
        let fast_rate = drop_stale && matches!(name, "rate" | "increase" | "delta");
        // For a subquery, each step's samples are ordered as the per-step
        // evaluation orders its series: by first point in the window, then
        // position in that point's inner vector.
        let mut keys: Vec<Vec<(i64, u32)>> = vec![Vec::new(); if drop_stale { 0 } else { count }];
        // Prefix counts over the chunk's span (see below), reused.
        let (mut stale_pre, mut drop_pre): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
        let span = if fast_rate {
            let first = window_of(ev, marg, t)?;
            let last = window_of(ev, marg, t + (count - 1) as i64 * g.step)?;
            Some((first.0.min(last.0), first.1.max(last.1)))
        } else {
            None
        };
        for (si, s) in data.iter().enumerate() {
            let mut cur = b.cursors[si];
            let drop_name = b.sub_drop.get(si).copied().unwrap_or(false);
            // rate/increase/delta of plain floats: every window of the chunk
            // lies in `span`, so prefix counts of stale markers and of drops
            // (counter resets) over it answer each window's checks in O(1)
            // instead of two passes over its points.
            let mut pre_at = usize::MAX;
            let mut name_checked = false;
            if let Some((lo0, rt1)) = span
                && s.hists.is_empty()
                && s.sts.is_none()
            {
                let a = crate::engine::seek(&s.floats, cur.0, lo0);
                let e = crate::engine::seek(&s.floats, a, rt1);
                stale_pre.clear();
                drop_pre.clear();
                let (mut st, mut dr) = (0u32, 0u32);
                for i in a..e {
                    stale_pre.push(st);
                    drop_pre.push(dr);
                    st += u32::from(is_stale_nan(s.floats[i].f));
                    dr += u32::from(i > a && s.floats[i].f < s.floats[i - 1].f);
                }
                stale_pre.push(st);
                drop_pre.push(dr);
                pre_at = a;
            }
            for (i, (out, points)) in b.steps.iter_mut().zip(&mut b.points).enumerate() {
                let tt = t + i as i64 * g.step;
                let w = window_of(ev, marg, tt)?;
                let (lo, rt) = (w.0, w.1);
                let fa = crate::engine::seek(&s.floats, cur.0, lo);
                let fb = crate::engine::seek(&s.floats, cur.1.max(fa), rt);
                cur = (fa, fb);
                let hn = if s.hists.is_empty() {
                    0
                } else {
                    s.hists.partition_point(|p| p.t <= rt) - s.hists.partition_point(|p| p.t <= lo)
                };
                // Selectors count the window's points; subqueries their
                // points too (as `eval` counts a subquery's matrix).
                *points += fb - fa + if drop_stale { 0 } else { hn };
                // rate/increase/delta of plain floats: straight from the
                // stored points, as `range_fn_one` computes them.
                if pre_at != usize::MAX && fa >= pre_at {
                    let fwin = &s.floats[fa..fb];
                    if fwin.is_empty() {
                        continue;
                    }
                    let count_in = |pre: &[u32], x: usize, y: usize| -> Option<u32> {
                        Some(pre.get(y - pre_at)? - pre.get(x - pre_at)?)
                    };
                    let stale = count_in(&stale_pre, fa, fb);
                    let drops = count_in(&drop_pre, fa + 1, fb);
                    if let (Some(0), Some(drops)) = (stale, drops) {
                        let is_counter = name != "delta";
                        if is_counter && !name_checked {
                            counter_name_info(ev, &s.labels, pos);
                            name_checked = true;
                        }
                        let win = Window {
                            metric: &s.labels,
                            floats: fwin,
                            hists: &[],
                        };
                        let res = extrapolated_rate(
                            ev,
                            &win,
                            None,
                            w,
                            is_counter,
                            name == "rate",
                            pos,
                            drops == 0,
                        );
                        if let Some(res) = res
                            && let Some(out) = out
                        {
                            let (f, h) = match res {
                                Val::F(f) => (f, None),
                                Val::H(h) => (0.0, Some(h)),
                            };
                            out.push(Sample {
                                metric: s.labels.clone(),
                                t: tt,
                                f,
                                h,
                                drop_name: true,
                            });
                        }
                        continue;
                    }
                }
                let Some(sts) =
                    crate::engine::window_into_as(s, lo, rt, fa, fb, &mut scratch, drop_stale)
                else {
                    continue;
                };
                scratch.drop_name = drop_name;
                if let Some(sample) =
                    range_fn_one(ev, name, &scratch, sts.as_ref(), w, tt, pos, None, &[])?
                    && let Some(out) = out
                {
                    out.push(sample);
                    if let Some(k) = keys.get_mut(i) {
                        let rk = b.sub_ranks.get(si).map_or(&[][..], Vec::as_slice);
                        let first = rk.partition_point(|p| p.0 <= lo);
                        k.push(rk.get(first).copied().unwrap_or((i64::MAX, u32::MAX)));
                    }
                }
            }
            b.cursors[si] = cur;
        }
        for (out, k) in b.steps.iter_mut().zip(&keys) {
            if let Some(out) = out
                && k.len() == out.len()
                && k.windows(2).any(|w| w[0] > w[1])
            {
                let mut pairs: Vec<((i64, u32), Sample)> =
                    k.iter().copied().zip(out.drain(..)).collect();
                pairs.sort_by_key(|p| p.0);
                out.extend(pairs.into_iter().map(|p| p.1));
            }
        }
    }
    let Some(i) = at(&b) else {
        return Err(EvalError::Execution(
            "range function step not computed".into(),
        ));
    };
    let got = b.steps.get_mut(i).and_then(Option::take);
    let loaded = b.points.get(i).copied().unwrap_or(0);
    ev.batches.insert(k, b);
    ev.count(loaded)?;
    Ok(got)
}

/// The info for `rate`/`increase` of a metric whose name does not look
/// like a counter's; checked once per label set and query (the info is a set).
fn counter_name_info<S: Storage>(ev: &mut Evaluator<'_, S>, metric: &Labels, pos: PosRange) {
    if !ev.counter_name_unchecked(metric) {
        return;
    }
    let mn = metric.metric_name();
    if !mn.is_empty()
        && !["_total", "_sum", "_count", "_bucket"]
            .iter()
            .any(|suf| mn.ends_with(suf))
    {
        ev.ann.info(
            ev.src,
            pos,
            format!("metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {mn:?}"),
        );
    }
}

/// A series' points in a window, borrowed.
struct Window<'a> {
    metric: &'a Labels,
    floats: &'a [FPoint],
    hists: &'a [crate::value::HPoint],
}

/// One series of a range function: `s` is its window `w` = (start, end,
/// range) at evaluation time `t`.
#[allow(clippy::too_many_arguments)]
fn range_fn_one<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    name: &str,
    s: &Series,
    sts: Option<&StartTimestamps>,
    w: (i64, i64, i64),
    t: i64,
    pos: PosRange,
    q: Option<f64>,
    extra: &[f64],
) -> Result<Option<Sample>, EvalError> {
    if !s.floats.is_empty() && !s.hists.is_empty() {
        mixed_range_annotation(ev, name, s, pos);
    }
    let res = match name {
        "rate" | "increase" | "delta" => {
            let is_counter = name != "delta";
            if is_counter && !s.floats.is_empty() {
                counter_name_info(ev, &s.metric, pos);
            }
            let win = Window {
                metric: &s.metric,
                floats: &s.floats,
                hists: &s.hists,
            };
            extrapolated_rate(ev, &win, sts, w, is_counter, name == "rate", pos, false)
        }
        "irate" | "idelta" => instant_delta(ev, s, sts, name == "irate", pos),
        "changes" => Some(Val::F(changes(s))),
        "resets" => Some(Val::F(resets(s, sts))),
        "deriv" => {
            if s.floats.len() < 2 {
                None
            } else {
                let (slope, _) = linear_regression(&s.floats, s.floats[0].t);
                Some(Val::F(slope))
            }
        }
        "predict_linear" => {
            if s.floats.len() < 2 {
                None
            } else {
                let (slope, intercept) = linear_regression(&s.floats, t);
                Some(Val::F(slope * extra[0] + intercept))
            }
        }
        "double_exponential_smoothing" => double_exp(&s.floats, extra[0], extra[1])?,
        "avg_over_time" | "sum_over_time" if s.floats.is_empty() => {
            let avg = name == "avg_over_time";
            crate::nativehist::hist_over_time(ev, &s.hists, avg, &s.metric, pos)
                .map(|h| Val::H(Arc::new(h)))
        }
        "avg_over_time" => avg_over_time(s),
        "sum_over_time" => sum_over_time(s),
        "count_over_time" => Some(Val::F((s.floats.len() + s.hists.len()) as f64)),
        "present_over_time" => Some(Val::F(1.0)),
        "min_over_time" | "max_over_time" => {
            if s.floats.is_empty() {
                None
            } else {
                let mut m = s.floats[0].f;
                for p in &s.floats[1..] {
                    let better = if name == "max_over_time" {
                        p.f > m
                    } else {
                        p.f < m
                    };
                    if better || m.is_nan() {
                        m = p.f;
                    }
                }
                Some(Val::F(m))
            }
        }
        "stddev_over_time" | "stdvar_over_time" => {
            if s.floats.is_empty() {
                None
            } else {
                let var = variance(s.floats.iter().map(|p| p.f));
                Some(Val::F(if name == "stddev_over_time" {
                    var.sqrt()
                } else {
                    var
                }))
            }
        }
        "quantile_over_time" => {
            if s.floats.is_empty() {
                None
            } else {
                let mut vals: Vec<f64> = s.floats.iter().map(|p| p.f).collect();
                Some(Val::F(quantile(q.unwrap_or(f64::NAN), &mut vals)))
            }
        }
        "mad_over_time" => {
            if s.floats.is_empty() {
                None
            } else if s.floats.iter().any(|p| p.f.is_nan()) {
                // A NaN sample makes the deviation NaN.
                Some(Val::F(f64::NAN))
            } else {
                let mut vals: Vec<f64> = s.floats.iter().map(|p| p.f).collect();
                let med = quantile(0.5, &mut vals);
                let mut dev: Vec<f64> = vals.iter().map(|v| (v - med).abs()).collect();
                Some(Val::F(quantile(0.5, &mut dev)))
            }
        }
        "last_over_time" => last_point(s).map(|(_, v)| v),
        "first_over_time" => first_point(s).map(|(_, v)| v),
        "ts_of_last_over_time" => last_point(s).map(|(t, _)| Val::F(t as f64 / 1000.0)),
        "ts_of_first_over_time" => first_point(s).map(|(t, _)| Val::F(t as f64 / 1000.0)),
        "ts_of_max_over_time" | "ts_of_min_over_time" => {
            if s.floats.is_empty() {
                None
            } else {
                let mut best = s.floats[0];
                for p in &s.floats[1..] {
                    let better = if name == "ts_of_max_over_time" {
                        p.f >= best.f
                    } else {
                        p.f <= best.f
                    };
                    if better || best.f.is_nan() {
                        best = *p;
                    }
                }
                Some(Val::F(best.t as f64 / 1000.0))
            }
        }
        other => {
            return Err(EvalError::Execution(format!(
                "function {other:?} is not implemented yet"
            )));
        }
    };
    let Some(res) = res else { return Ok(None) };
    let keeps_name = matches!(name, "last_over_time" | "first_over_time");
    let (f, h) = match res {
        Val::F(f) => (f, None),
        Val::H(h) => (0.0, Some(h)),
    };
    Ok(Some(Sample {
        metric: s.metric.clone(),
        t,
        f,
        h,
        drop_name: !keeps_name || s.drop_name,
    }))
}

/// Go's `math.Max`: +Inf wins over NaN, NaN over everything else, +0 over -0.
fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        f64::INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && x == y {
        if x.is_sign_negative() { y } else { x }
    } else if x > y {
        x
    } else {
        y
    }
}

/// Go's `math.Min`: -Inf wins over NaN, NaN over everything else, -0 over +0.
fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && x == y {
        if x.is_sign_negative() { x } else { y }
    } else if x < y {
        x
    } else {
        y
    }
}

/// The annotation for a range holding both floats and histograms: the
/// float-only functions ignore the histograms (an info), the summing ones
/// give up (a warning; they return nothing).
fn mixed_range_annotation<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    name: &str,
    s: &Series,
    pos: PosRange,
) {
    let metric = emberlens_model::go_quote(s.metric.metric_name());
    match name {
        "sum_over_time" | "avg_over_time" => ev.ann.warn(
            ev.src,
            pos,
            format!("encountered a mix of histograms and floats for metric name {metric}"),
        ),
        "deriv"
        | "predict_linear"
        | "double_exponential_smoothing"
        | "stddev_over_time"
        | "stdvar_over_time"
        | "mad_over_time"
        | "quantile_over_time"
        | "min_over_time"
        | "max_over_time"
        | "ts_of_min_over_time"
        | "ts_of_max_over_time" => ev.ann.info(
            ev.src,
            pos,
            format!(
                "ignored histograms in a range containing both floats and histograms for metric name {metric}"
            ),
        ),
        _ => {}
    }
}

pub(crate) enum Val {
    F(f64),
    H(Arc<FloatHistogram>),
}

fn last_point(s: &Series) -> Option<(i64, Val)> {
    match (s.floats.last(), s.hists.last()) {
        (Some(f), Some(h)) if h.t > f.t => Some((h.t, Val::H(h.h.clone()))),
        (Some(f), _) => Some((f.t, Val::F(f.f))),
        (None, Some(h)) => Some((h.t, Val::H(h.h.clone()))),
        (None, None) => None,
    }
}

fn first_point(s: &Series) -> Option<(i64, Val)> {
    match (s.floats.first(), s.hists.first()) {
        (Some(f), Some(h)) if h.t < f.t => Some((h.t, Val::H(h.h.clone()))),
        (Some(f), _) => Some((f.t, Val::F(f.f))),
        (None, Some(h)) => Some((h.t, Val::H(h.h.clone()))),
        (None, None) => None,
    }
}

/// Variance with Kahan-compensated Welford updates (Prometheus 3).
pub(crate) fn variance(vals: impl Iterator<Item = f64>) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for v in vals {
        count += 1.0;
        let delta = v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

fn sum_over_time(s: &Series) -> Option<Val> {
    if !s.hists.is_empty() {
        if !s.floats.is_empty() {
            return None;
        }
        let mut acc = (*s.hists[0].h).clone();
        for p in &s.hists[1..] {
            acc = acc.add(&p.h).ok()?;
        }
        return Some(Val::H(Arc::new(acc)));
    }
    if s.floats.is_empty() {
        return None;
    }
    let (mut sum, mut c) = (0.0, 0.0);
    for p in &s.floats {
        (sum, c) = kahan_inc(p.f, sum, c);
    }
    Some(Val::F(sum + c))
}

fn avg_over_time(s: &Series) -> Option<Val> {
    if !s.hists.is_empty() {
        if !s.floats.is_empty() {
            return None;
        }
        let mut acc = (*s.hists[0].h).clone();
        for p in &s.hists[1..] {
            acc = acc.add(&p.h).ok()?;
        }
        return Some(Val::H(Arc::new(acc.div(s.hists.len() as f64))));
    }
    if s.floats.is_empty() {
        return None;
    }
    let (mut sum, mut c, mut mean) = (s.floats[0].f, 0.0, 0.0);
    let mut incremental = false;
    let mut n = 1.0;
    for p in &s.floats[1..] {
        n += 1.0;
        if !incremental {
            let (ns, nc) = kahan_inc(p.f, sum, c);
            if !ns.is_infinite() {
                (sum, c) = (ns, nc);
                continue;
            }
            incremental = true;
            mean = sum / (n - 1.0);
            c /= n - 1.0;
        }
        let q = (n - 1.0) / n;
        (mean, c) = kahan_inc(p.f / n, q * mean, q * c);
    }
    Some(Val::F(if incremental {
        mean + c
    } else {
        sum / n + c / n
    }))
}

/// The points of a series in time order: `Ok(float index)` or
/// `Err(histogram index)` (floats first on equal timestamps, never both).
fn merged_order(s: &Series) -> Vec<Result<usize, usize>> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(s.floats.len() + s.hists.len());
    while i < s.floats.len() || j < s.hists.len() {
        match (s.floats.get(i), s.hists.get(j)) {
            (Some(f), Some(h)) if h.t < f.t => {
                out.push(Err(j));
                j += 1;
            }
            (Some(_), _) => {
                out.push(Ok(i));
                i += 1;
            }
            (None, _) => {
                out.push(Err(j));
                j += 1;
            }
        }
    }
    out
}

/// Value changes in time order; a switch between float and histogram
/// counts as one.
fn changes(s: &Series) -> f64 {
    let mut n = 0.0;
    for w in merged_order(s).windows(2) {
        let changed = match (w[0], w[1]) {
            (Ok(a), Ok(b)) => {
                let (a, b) = (s.floats[a].f, s.floats[b].f);
                !(a == b || (a.is_nan() && b.is_nan()))
            }
            (Err(a), Err(b)) => !s.hists[a].h.equals(&s.hists[b].h),
            _ => true,
        };
        if changed {
            n += 1.0;
        }
    }
    n
}

/// The start timestamps of one kind of sample, if they line up.
fn st_slice(sts: Option<&StartTimestamps>, hists: bool, n: usize) -> &[i64] {
    sts.map(|x| {
        if hists {
            &x.histograms[..]
        } else {
            &x.floats[..]
        }
    })
    .filter(|v| v.len() == n)
    .unwrap_or(&[])
}

/// Whether sample `i` (≥ 1) restarts the counter by start timestamps.
fn st_reset_at(st: &[i64], ts: impl Fn(usize) -> i64, i: usize) -> bool {
    match (st.get(i - 1), st.get(i)) {
        (Some(&ps), Some(&cs)) => crate::startts::is_st_reset(ps, ts(i - 1), cs, ts(i)),
        _ => false,
    }
}

/// Counter resets in time order; a switch between float and histogram
/// counts as one. Same-kind neighbours in time order are neighbours in
/// their own point list, so start timestamps line up by index.
fn resets(s: &Series, sts: Option<&StartTimestamps>) -> f64 {
    let mut n = 0.0;
    let fst = st_slice(sts, false, s.floats.len());
    let hst = st_slice(sts, true, s.hists.len());
    for w in merged_order(s).windows(2) {
        let reset = match (w[0], w[1]) {
            (Ok(_), Ok(i)) => {
                s.floats[i].f < s.floats[i - 1].f || st_reset_at(fst, |j| s.floats[j].t, i)
            }
            (Err(_), Err(i)) => {
                s.hists[i].h.detect_reset(&s.hists[i - 1].h)
                    || st_reset_at(hst, |j| s.hists[j].t, i)
            }
            _ => true,
        };
        if reset {
            n += 1.0;
        }
    }
    n
}

fn instant_delta<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    s: &Series,
    sts: Option<&StartTimestamps>,
    is_rate: bool,
    pos: PosRange,
) -> Option<Val> {
    /// One of the two newest samples: time, start timestamp (0 when
    /// unknown) and value.
    #[derive(Clone, Copy)]
    struct Pt<'a> {
        t: i64,
        st: i64,
        v: Result<f64, &'a FloatHistogram>,
    }
    if s.floats.len() + s.hists.len() < 2 {
        return None;
    }
    let fst = st_slice(sts, false, s.floats.len());
    let hst = st_slice(sts, true, s.hists.len());
    // The two newest samples in time order, floats and histograms merged
    // as upstream's instantValue does (a histogram at a float's time
    // takes the older place).
    let mut ss: Vec<Pt<'_>> = (s.floats.len().saturating_sub(2)..s.floats.len())
        .map(|i| Pt {
            t: s.floats[i].t,
            st: fst.get(i).copied().unwrap_or(0),
            v: Ok(s.floats[i].f),
        })
        .collect();
    for i in s.hists.len().saturating_sub(2)..s.hists.len() {
        let p = Pt {
            t: s.hists[i].t,
            st: hst.get(i).copied().unwrap_or(0),
            v: Err(&s.hists[i].h),
        };
        match ss.len() {
            0 => ss.push(p),
            1 if p.t < ss[0].t => ss.insert(0, p),
            1 => ss.push(p),
            _ if p.t < ss[0].t => {}
            _ if p.t > ss[1].t => {
                ss[0] = ss[1];
                ss[1] = p;
            }
            _ => ss[0] = p,
        }
    }
    let (p, l) = (*ss.first()?, *ss.get(1)?);
    let dt = (l.t - p.t) as f64 / 1000.0;
    if dt == 0.0 {
        return None;
    }
    let st_reset = crate::startts::is_st_reset(p.st, p.t, l.st, l.t);
    match (p.v, l.v) {
        (Ok(pf), Ok(lf)) => {
            let mut v = if is_rate && (lf < pf || st_reset) {
                lf
            } else {
                lf - pf
            };
            if is_rate {
                v /= dt;
            }
            Some(Val::F(v))
        }
        (Err(ph), Err(lh)) => {
            let h = crate::nativehist::instant_hist_delta(
                ev, ph, lh, dt, st_reset, is_rate, &s.metric, pos,
            )?;
            Some(Val::H(Arc::new(h)))
        }
        _ => {
            ev.ann.warn(
                ev.src,
                pos,
                format!(
                    "encountered a mix of histograms and floats for metric name {:?}",
                    s.metric.metric_name()
                ),
            );
            None
        }
    }
}

/// `rate`/`increase`/`delta`: the increase between the window's first and
/// last sample (counter resets added back, by value or by start
/// timestamp), extrapolated towards the window's edges; see the module
/// docs and `startts.rs` for the start-timestamp rules. `w` is the window's
/// start, end and length.
#[allow(clippy::too_many_arguments)]
fn extrapolated_rate<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    s: &Window<'_>,
    sts: Option<&StartTimestamps>,
    w: (i64, i64, i64),
    is_counter: bool,
    is_rate: bool,
    pos: PosRange,
    no_resets: bool,
) -> Option<Val> {
    let (range_start, range_end, range) = w;
    // The label set is only read for a warning: touching it per window is
    // a cache miss per series and step.
    if !s.hists.is_empty() && !s.floats.is_empty() {
        let metric_name = s.metric.metric_name();
        ev.ann.warn(
            ev.src,
            pos,
            format!("encountered a mix of histograms and floats for metric name {metric_name:?}"),
        );
        return None;
    }
    let hists = !s.hists.is_empty();
    let n = if hists { s.hists.len() } else { s.floats.len() };
    let time = |i: usize| if hists { s.hists[i].t } else { s.floats[i].t };
    if n == 0 {
        return None;
    }
    let st = st_slice(sts, hists, n);
    let (first_t, last_t) = (time(0), time(n - 1));
    // A first sample whose start lies inside the window: assume a zero
    // sample there instead of extrapolating to the window's start.
    let zero_at = st
        .first()
        .copied()
        .filter(|&st0| is_counter && st0 != 0 && st0 > range_start && st0 < first_t);
    if n < 2 && zero_at.is_none() {
        return None;
    }
    if is_counter
        && (1..st.len()).any(|i| crate::startts::is_st_overlap(st[i - 1], time(i - 1), st[i]))
    {
        ev.ann
            .warn(ev.src, pos, crate::startts::overlap_msg(s.metric));
    }
    let n_minus_one = n - 1;
    let (mut result_f, mut result_h) = (0.0, None);
    if hists {
        let mut h =
            crate::nativehist::histogram_rate(ev, s.hists, is_counter, s.metric, pos, |i| {
                st_reset_at(st, |j| s.hists[j].t, i)
            })?;
        if zero_at.is_some() {
            h = h.add(&s.hists[0].h).ok()?.compact(0);
        }
        result_h = Some(h);
    } else {
        result_f = s.floats[n_minus_one].f - s.floats[0].f;
        // `no_resets`: the caller counted the window's drops already (none).
        if is_counter && !no_resets {
            for i in 1..n {
                let prev = s.floats[i - 1].f;
                if s.floats[i].f < prev || st_reset_at(st, |j| s.floats[j].t, i) {
                    result_f += prev;
                }
            }
        }
        if zero_at.is_some() {
            result_f += s.floats[0].f;
        }
    }
    let mut duration_to_end = (range_end - last_t) as f64 / 1000.0;
    let avg_between = if n_minus_one > 0 {
        (last_t - first_t) as f64 / 1000.0 / n_minus_one as f64
    } else {
        0.0
    };
    let threshold = avg_between * 1.1;
    let mut factor = if let Some(st0) = zero_at {
        let sampled = (last_t - st0) as f64 / 1000.0;
        if duration_to_end >= threshold {
            duration_to_end = avg_between / 2.0;
        }
        (sampled + duration_to_end) / sampled
    } else {
        let mut duration_to_start = (first_t - range_start) as f64 / 1000.0;
        let sampled = (last_t - first_t) as f64 / 1000.0;
        if duration_to_start >= threshold {
            duration_to_start = avg_between / 2.0;
        }
        if is_counter {
            let to_zero = match &result_h {
                None if result_f > 0.0 && s.floats[0].f >= 0.0 => {
                    Some(sampled * (s.floats[0].f / result_f))
                }
                Some(h) if h.count > 0.0 && s.hists[0].h.count >= 0.0 => {
                    Some(sampled * (s.hists[0].h.count / h.count))
                }
                _ => None,
            };
            if let Some(z) = to_zero.filter(|&z| z < duration_to_start) {
                duration_to_start = z;
            }
        }
        if duration_to_end >= threshold {
            duration_to_end = avg_between / 2.0;
        }
        (sampled + duration_to_start + duration_to_end) / sampled
    };
    if is_rate {
        factor /= range as f64 / 1000.0;
    }
    match result_h.take() {
        Some(h) => Some(Val::H(Arc::new(h.mul(factor)))),
        None => {
            result_f *= factor;
            Some(Val::F(result_f))
        }
    }
}

/// Prometheus's `linearRegression` (Kahan sums, constant-series shortcut).
pub(crate) fn linear_regression(samples: &[FPoint], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = samples[0].f;
    let mut const_y = true;
    for (i, p) in samples.iter().enumerate() {
        if const_y && i > 0 && p.f != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t - intercept_t) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(p.f, sy, cy);
        (sxy, cxy) = kahan_inc(x * p.f, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

fn double_exp(samples: &[FPoint], sf: f64, tf: f64) -> Result<Option<Val>, EvalError> {
    if sf <= 0.0 || sf >= 1.0 || sf.is_nan() {
        return Err(EvalError::Execution(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
        )));
    }
    if tf <= 0.0 || tf >= 1.0 || tf.is_nan() {
        return Err(EvalError::Execution(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
        )));
    }
    if samples.len() < 2 {
        return Ok(None);
    }
    let (mut s0, mut s1) = (0.0, samples[0].f);
    let mut b = samples[1].f - samples[0].f;
    for (i, p) in samples.iter().enumerate().skip(1) {
        let x = sf * p.f;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        (s0, s1) = (s1, x + y);
    }
    Ok(Some(Val::F(s1)))
}

fn date_part(name: &str, secs: f64) -> f64 {
    if !secs.is_finite() {
        return f64::NAN;
    }
    let t = secs.floor() as i64;
    let days = t.div_euclid(86_400);
    let sod = t.rem_euclid(86_400);
    let (y, m, d) = emberlens_model::civil_from_days(days);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    match name {
        "year" => y as f64,
        "month" => m as f64,
        "day_of_month" => d as f64,
        "day_of_week" => ((days + 4).rem_euclid(7)) as f64,
        "day_of_year" => {
            let before: i64 = mdays[..(m as usize - 1)].iter().sum();
            (before + d) as f64
        }
        "days_in_month" => mdays[m as usize - 1] as f64,
        "hour" => (sod / 3600) as f64,
        "minute" => (sod % 3600 / 60) as f64,
        _ => f64::NAN,
    }
}

/// Go's `$1`/`${name}` template syntax → the regex crate's (`$1` works in
/// both; Go treats `$1x` as the group named `1x`, as does the regex crate).
fn go_template(s: &str) -> String {
    s.to_string()
}

/// Natural order: digit runs compare by value.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut ai, mut bi) = (a.chars().peekable(), b.chars().peekable());
    loop {
        match (ai.peek().copied(), bi.peek().copied()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let mut na = String::new();
                while let Some(c) = ai.peek().copied().filter(char::is_ascii_digit) {
                    na.push(c);
                    ai.next();
                }
                let mut nb = String::new();
                while let Some(c) = bi.peek().copied().filter(char::is_ascii_digit) {
                    nb.push(c);
                    bi.next();
                }
                let ta = na.trim_start_matches('0');
                let tb = nb.trim_start_matches('0');
                let o = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                if o != Ordering::Equal {
                    return o;
                }
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                ai.next();
                bi.next();
            }
        }
    }
}
