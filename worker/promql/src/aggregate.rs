//! Aggregation operators, as Prometheus 3's `aggregation`,
//! `aggregationK` and `aggregationCountValues`.
//!
//! Edge cases, as Prometheus: `sum` and `avg` use Kahan–Neumaier summation
//! (`avg` switches to an incremental mean when the running sum would
//! overflow); a group mixing floats and histograms yields nothing and a
//! warning for `sum`/`avg`; `min`/`max`/`stddev`/`stdvar`/`quantile`/
//! `topk`/`bottomk` ignore histograms with an info; `without` always drops
//! `__name__`; `topk`/`bottomk`/`limitk` keep the samples' own labels.

use std::collections::HashMap;
use std::sync::Arc;

use emberlens_model::{Labels, Storage};

use crate::ast::{AggOp, AggregateExpr, Expr};
use crate::engine::{Evaluator, IValue};
use crate::error::EvalError;
use crate::hash::IdMap;
use crate::value::Sample;

pub(crate) use emberlens_model::kahan_inc;

/// Prometheus's `quantile`: linear interpolation between closest ranks.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaN sorts first, as in Go's sort.Float64s.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.total_cmp(b),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

#[derive(Default)]
struct Group {
    labels: Labels,
    count: f64,
    has_float: bool,
    has_hist: bool,
    f: f64,
    c: f64,
    mean: f64,
    incremental: bool,
    h: Option<crate::nativehist::HistAgg>,
    values: Vec<f64>,
    hist_error: bool,
    /// Some member's name is to be dropped (delayed name removal).
    drop_name: bool,
}

/// One aggregation node's group keys, kept across a range query's steps:
/// input label set (held, so its identity stays unique) → interned group
/// key. Group keys with one identity are one group, so the per-step maps
/// hash identities instead of label strings.
#[derive(Default)]
pub(crate) struct GroupKeys {
    by_input: IdMap<(Labels, Labels)>,
    interned: HashMap<Labels, Labels>,
    /// Per position in the input vector, the input label set's id and group
    /// key at the previous step: the input mostly holds the same series in
    /// the same order at every step, so one comparison finds the key. Only
    /// ids of label sets held by `by_input` are kept (so they stay unique).
    recent: Vec<(usize, Labels)>,
}

impl GroupKeys {
    /// The interned group key of `metric`.
    fn get(&mut self, metric: &Labels, a: &AggregateExpr) -> Labels {
        if let Some((_, k)) = self.by_input.get(&metric.shared_id()) {
            return k.clone();
        }
        let k = group_key(metric, a);
        let k = self.interned.entry(k.clone()).or_insert(k).clone();
        self.by_input
            .insert(metric.shared_id(), (metric.clone(), k.clone()));
        k
    }

    /// [`Self::get`] for the input at position `i`, from `recent` when the
    /// same label set was there at the previous step.
    fn get_at(&mut self, i: usize, metric: &Labels, a: &AggregateExpr) -> &Labels {
        let id = metric.shared_id();
        if self.recent.get(i).is_none_or(|r| r.0 != id) {
            let k = self.get(metric, a);
            if i >= self.recent.len() {
                self.recent.resize(i + 1, (0, Labels::default()));
            }
            self.recent[i] = (id, k);
        }
        &self.recent[i].1
    }

    /// Bounds the memory when inputs get new label sets at every step
    /// (computed labels): keeps at most a few steps' worth.
    fn trim(&mut self, inputs: usize) {
        if self.by_input.len() > 4 * inputs + 1024 {
            self.by_input.clear();
            self.recent.clear();
        }
        if self.interned.len() > 4 * inputs + 1024 {
            self.interned.clear();
            self.by_input.clear();
            self.recent.clear();
        }
    }
}

fn group_key(metric: &Labels, a: &AggregateExpr) -> Labels {
    if a.without {
        let mut names: Vec<&str> = a.grouping.iter().map(String::as_str).collect();
        names.push("__name__");
        metric.without(&names)
    } else {
        metric.keep(&a.grouping)
    }
}

pub(crate) fn eval_aggregate<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    a: &AggregateExpr,
    t: i64,
) -> Result<IValue, EvalError> {
    let param = match &a.param {
        Some(p) => Some(ev.eval(p, t)?),
        None => None,
    };
    let input = ev.eval_vector(&a.expr, t)?;
    let out = match a.op {
        AggOp::Topk | AggOp::Bottomk | AggOp::Limitk | AggOp::LimitRatio => {
            let p = match param {
                Some(IValue::Scalar(v)) => v,
                _ => {
                    return Err(EvalError::Execution(
                        "aggregation parameter must be a scalar".into(),
                    ));
                }
            };
            aggregate_k(ev, a, input, p)?
        }
        AggOp::CountValues => {
            let label = match param {
                Some(IValue::String(s)) => s,
                _ => {
                    return Err(EvalError::Execution(
                        "count_values parameter must be a string".into(),
                    ));
                }
            };
            if let Some(q) = invalid_utf8_literal(ev.src, a.param.as_deref()) {
                return Err(EvalError::Execution(format!("invalid label name {q}")));
            }
            count_values(a, input, &label, t)?
        }
        _ => {
            let p = match param {
                Some(IValue::Scalar(v)) => Some(v),
                _ => None,
            };
            aggregate(ev, a, input, p, t)?
        }
    };
    Ok(IValue::Vector(out))
}

fn aggregate<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    a: &AggregateExpr,
    input: Vec<Sample>,
    param: Option<f64>,
    t: i64,
) -> Result<Vec<Sample>, EvalError> {
    let mut order: Vec<usize> = Vec::new();
    let mut groups: IdMap<Group> = IdMap::default();
    let op_name = a.op.as_str();
    let mut ignored_hist = false;
    let mut keys = ev
        .group_keys
        .remove(&crate::engine::key(a))
        .unwrap_or_default();
    keys.trim(input.len());
    for (i, s) in input.into_iter().enumerate() {
        let key = keys.get_at(i, &s.metric, a);
        let g = groups.entry(key.shared_id()).or_insert_with(|| {
            order.push(key.shared_id());
            Group {
                labels: key.clone(),
                ..Group::default()
            }
        });
        g.count += 1.0;
        g.drop_name |= s.drop_name;
        match a.op {
            AggOp::Sum | AggOp::Avg => {
                if let Some(h) = &s.h {
                    g.has_hist = true;
                    if g.hist_error {
                        continue;
                    }
                    match g.h.as_mut() {
                        // Only a group's first sample starts the sum.
                        None if g.count == 1.0 => g.h = Some(crate::nativehist::HistAgg::new(h)),
                        None => {}
                        Some(acc) => {
                            let r = if a.op == AggOp::Sum {
                                acc.add_sum(h)
                            } else {
                                acc.add_avg(h)
                            };
                            if r.is_err() {
                                g.hist_error = true;
                                ev.ann.warn(
                                    ev.src,
                                    a.expr.pos(),
                                    format!(
                                        "vector contains a mix of histograms with exponential and custom buckets schemas for metric name {:?}",
                                        s.metric.metric_name()
                                    ),
                                );
                            }
                        }
                    }
                } else if !g.has_float {
                    // The first float starts the sum directly.
                    g.has_float = true;
                    g.f = s.f;
                    g.values.push(0.0);
                } else {
                    if a.op == AggOp::Sum {
                        (g.f, g.c) = kahan_inc(s.f, g.f, g.c);
                    } else {
                        let n = g.values.len() as f64 + 1.0;
                        g.values.push(0.0);
                        if !g.incremental {
                            let (nv, nc) = kahan_inc(s.f, g.f, g.c);
                            if !nv.is_infinite() {
                                (g.f, g.c) = (nv, nc);
                                continue;
                            }
                            g.incremental = true;
                            g.mean = g.f / (n - 1.0);
                            g.c /= n - 1.0;
                        }
                        let q = (n - 1.0) / n;
                        (g.mean, g.c) = kahan_inc(s.f / n, q * g.mean, q * g.c);
                    }
                }
            }
            AggOp::Count | AggOp::Group => {}
            AggOp::Min | AggOp::Max => {
                if s.h.is_some() {
                    ignored_hist = true;
                    g.count -= 1.0;
                    continue;
                }
                if !g.has_float {
                    g.has_float = true;
                    g.f = s.f;
                } else if a.op == AggOp::Max {
                    if g.f < s.f || g.f.is_nan() {
                        g.f = s.f;
                    }
                } else if g.f > s.f || g.f.is_nan() {
                    g.f = s.f;
                }
            }
            AggOp::Stddev | AggOp::Stdvar => {
                if s.h.is_some() {
                    ignored_hist = true;
                    g.count -= 1.0;
                    continue;
                }
                g.has_float = true;
                let n = g.count;
                let delta = s.f - g.mean;
                g.mean += delta / n;
                g.f += delta * (s.f - g.mean);
            }
            AggOp::Quantile => {
                if s.h.is_some() {
                    ignored_hist = true;
                    g.count -= 1.0;
                    continue;
                }
                g.has_float = true;
                g.values.push(s.f);
            }
            _ => {}
        }
    }
    if ignored_hist {
        ev.ann.info(
            ev.src,
            a.pos,
            format!("ignored histogram in {op_name} aggregation"),
        );
    }
    if a.op == AggOp::Quantile
        && let Some(q) = param
        && !order.is_empty()
        && !(0.0..=1.0).contains(&q)
    {
        ev.ann.warn(
            ev.src,
            a.param.as_ref().map(|p| p.pos()).unwrap_or(a.pos),
            format!("quantile value should be between 0 and 1, got {q}"),
        );
    }
    ev.group_keys.insert(crate::engine::key(a), keys);
    let mut out = Vec::with_capacity(order.len());
    for key in order {
        let Some(mut g) = groups.remove(&key) else {
            continue;
        };
        let (f, h) = match a.op {
            AggOp::Sum | AggOp::Avg => {
                if g.has_float && g.has_hist {
                    ev.ann.warn(
                        ev.src,
                        a.pos,
                        format!(
                            "encountered a mix of histograms and floats for {op_name} aggregation"
                        ),
                    );
                    continue;
                }
                if g.has_hist {
                    if g.hist_error {
                        continue;
                    }
                    let Some(acc) = g.h.take() else { continue };
                    if acc.reconciled {
                        ev.ann.info(
                            ev.src,
                            a.expr.pos(),
                            "mismatched custom buckets were reconciled during aggregation",
                        );
                    }
                    if acc.collision() {
                        ev.ann.warn(
                            ev.src,
                            a.expr.pos(),
                            "conflicting counter resets during histogram aggregation",
                        );
                    }
                    let h = if a.op == AggOp::Avg {
                        acc.finish_avg()
                    } else {
                        acc.finish_sum()
                    };
                    (0.0, Some(Arc::new(h)))
                } else if a.op == AggOp::Sum {
                    (g.f + g.c, None)
                } else if g.incremental {
                    (g.mean + g.c, None)
                } else {
                    let n = g.values.len() as f64;
                    (g.f / n + g.c / n, None)
                }
            }
            AggOp::Count => (g.count, None),
            AggOp::Group => (1.0, None),
            AggOp::Min | AggOp::Max => {
                if !g.has_float {
                    continue;
                }
                (g.f, None)
            }
            AggOp::Stddev | AggOp::Stdvar => {
                if !g.has_float {
                    continue;
                }
                let var = g.f / g.count;
                (
                    if a.op == AggOp::Stddev {
                        var.sqrt()
                    } else {
                        var
                    },
                    None,
                )
            }
            AggOp::Quantile => {
                if !g.has_float {
                    continue;
                }
                (quantile(param.unwrap_or(f64::NAN), &mut g.values), None)
            }
            _ => continue,
        };
        out.push(Sample {
            metric: g.labels,
            t,
            f,
            h,
            drop_name: g.drop_name,
        });
    }
    Ok(out)
}

/// Go strings are bytes: a label name written with escapes of invalid
/// UTF-8 (`"a\xc5z"`) is invalid. The lexer keeps such bytes as U+FFFD,
/// so a string literal's source is read again here; the result is the
/// literal Go-quoted (`"a\xc5z"`) when it is not UTF-8.
pub(crate) fn invalid_utf8_literal(src: &str, param: Option<&Expr>) -> Option<String> {
    let Some(Expr::String { pos, .. }) = param.map(Expr::unparen) else {
        return None;
    };
    let bytes = src
        .get(pos.start..pos.end)
        .and_then(crate::lexer::string_literal_bytes)?;
    if std::str::from_utf8(&bytes).is_ok() {
        return None;
    }
    let mut quoted = String::from("\"");
    for chunk in bytes.utf8_chunks() {
        let valid = emberlens_model::go_quote(chunk.valid());
        quoted.push_str(valid.get(1..valid.len().saturating_sub(1)).unwrap_or(""));
        for b in chunk.invalid() {
            quoted.push_str(&format!("\\x{b:02x}"));
        }
    }
    quoted.push('"');
    Some(quoted)
}

fn count_values(
    a: &AggregateExpr,
    input: Vec<Sample>,
    label: &str,
    t: i64,
) -> Result<Vec<Sample>, EvalError> {
    if !is_valid_label_name(label) {
        return Err(EvalError::Execution(format!(
            "invalid label name {label:?}"
        )));
    }
    let mut order: Vec<Labels> = Vec::new();
    let mut counts: HashMap<Labels, f64> = HashMap::new();
    for s in input {
        let value = match &s.h {
            Some(h) => h.to_string(),
            None => emberlens_model::format_value(s.f),
        };
        let key = group_key(&s.metric, a).with(label, &value);
        let n = counts.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            0.0
        });
        *n += 1.0;
    }
    Ok(order
        .into_iter()
        .map(|k| {
            let f = counts.get(&k).copied().unwrap_or(0.0);
            Sample {
                metric: k,
                t,
                f,
                h: None,
                drop_name: false,
            }
        })
        .collect())
}

/// Prometheus 3 label names: any non-empty UTF-8 string.
pub(crate) fn is_valid_label_name(s: &str) -> bool {
    !s.is_empty()
}

fn aggregate_k<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    a: &AggregateExpr,
    input: Vec<Sample>,
    p: f64,
) -> Result<Vec<Sample>, EvalError> {
    if a.op == AggOp::LimitRatio {
        if p.is_nan() {
            return Err(EvalError::Execution("Ratio value is NaN".into()));
        }
        let mut r = p;
        if !(-1.0..=1.0).contains(&r) {
            ev.ann.warn(
                ev.src,
                a.param.as_ref().map(|p| p.pos()).unwrap_or(a.pos),
                format!(
                    "ratio value should be between -1 and 1, got {r}, capping to {}",
                    r.clamp(-1.0, 1.0)
                ),
            );
            r = r.clamp(-1.0, 1.0);
        }
        return Ok(input
            .into_iter()
            .filter(|s| ratio_selects(&s.metric, r))
            .collect());
    }
    if p.is_nan() {
        return Err(EvalError::Execution("Parameter value is NaN".into()));
    }
    if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&p) {
        return Err(EvalError::Execution(format!(
            "Scalar value {p} overflows int64"
        )));
    }
    let k = p as i64;
    if k < 1 {
        return Ok(Vec::new());
    }
    let k = k as usize;
    let mut order: Vec<usize> = Vec::new();
    let mut groups: IdMap<Vec<Sample>> = IdMap::default();
    let mut ignored_hist = false;
    let mut keys = ev
        .group_keys
        .remove(&crate::engine::key(a))
        .unwrap_or_default();
    keys.trim(input.len());
    for (i, s) in input.into_iter().enumerate() {
        if s.h.is_some() && a.op != AggOp::Limitk {
            ignored_hist = true;
            continue;
        }
        let key = keys.get_at(i, &s.metric, a).shared_id();
        groups
            .entry(key)
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push(s);
    }
    ev.group_keys.insert(crate::engine::key(a), keys);
    if ignored_hist {
        ev.ann.info(
            ev.src,
            a.pos,
            format!("ignored histogram in {} aggregation", a.op.as_str()),
        );
    }
    let mut out = Vec::new();
    for key in order {
        let Some(mut v) = groups.remove(&key) else {
            continue;
        };
        match a.op {
            AggOp::Limitk => v.truncate(k),
            _ => v = select_k(v, k, a.op == AggOp::Topk),
        }
        out.extend(v);
    }
    Ok(out)
}

/// `topk`/`bottomk` exactly as Prometheus picks them: a bounded binary heap
/// (Go's `container/heap`) whose root is the weakest kept sample, replaced
/// only by a strictly better one, so ties at the boundary resolve as
/// Prometheus's do; then sorted best first (a stable sort, as Go's
/// insertion sort is for the small heaps of real `k`s).
fn select_k(input: Vec<Sample>, k: usize, top: bool) -> Vec<Sample> {
    // `less(a, b)`: a is weaker (closer to eviction) than b. NaN is weakest.
    let less = |a: &Sample, b: &Sample| -> bool {
        if a.f.is_nan() && !b.f.is_nan() {
            return true;
        }
        if top { a.f < b.f } else { a.f > b.f }
    };
    let mut heap: Vec<Sample> = Vec::with_capacity(k.min(input.len()));
    fn up(h: &mut [Sample], mut j: usize, less: &dyn Fn(&Sample, &Sample) -> bool) {
        while j > 0 {
            let i = (j - 1) / 2;
            if !less(&h[j], &h[i]) {
                break;
            }
            h.swap(i, j);
            j = i;
        }
    }
    fn down(h: &mut [Sample], i0: usize, less: &dyn Fn(&Sample, &Sample) -> bool) -> bool {
        let n = h.len();
        let mut i = i0;
        loop {
            let j1 = 2 * i + 1;
            if j1 >= n {
                break;
            }
            let mut j = j1;
            if j1 + 1 < n && less(&h[j1 + 1], &h[j1]) {
                j = j1 + 1;
            }
            if !less(&h[j], &h[i]) {
                break;
            }
            h.swap(i, j);
            i = j;
        }
        i > i0
    }
    for s in input {
        if heap.len() < k {
            heap.push(s);
            let j = heap.len() - 1;
            up(&mut heap, j, &less);
        } else if less(&heap[0], &s) && !(heap[0].f.is_nan() && s.f.is_nan()) {
            heap[0] = s;
            if k > 1 && !down(&mut heap, 0, &less) {
                up(&mut heap, 0, &less);
            }
        }
    }
    // Best first.
    heap.sort_by(|a, b| {
        if less(b, a) {
            std::cmp::Ordering::Less
        } else if less(a, b) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    heap
}

/// Whether `limit_ratio(r, …)` keeps a series: its label hash, as a
/// fraction of the hash space, is below `r` (or, for negative `r`, at or
/// above `1 + r`), so `limit_ratio(r)` and `limit_ratio(r - 1)` split a
/// vector in two.
fn ratio_selects(l: &Labels, r: f64) -> bool {
    let frac = crate::hash::labels_hash(l) as f64 / u64::MAX as f64;
    if r >= 0.0 { frac < r } else { frac >= 1.0 + r }
}
