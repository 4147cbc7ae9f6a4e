//! Binary operators: scalar/scalar, vector/scalar and vector/vector with
//! `on`/`ignoring`, `group_left`/`group_right`, `bool`, `fill…`, and the set
//! operators, as Prometheus's `VectorBinop`/`VectorscalarBinop`/`VectorAnd…`.
//!
//! Edge cases, as Prometheus: a comparison without `bool` filters and keeps
//! the vector's value (also when the scalar is on the left); arithmetic and
//! `bool` mark the result for `__name__` removal; matching ignores
//! `__name__` unless `on(…)` names it; duplicates on the "one" side, or two
//! "many" samples producing the same result, are errors with Prometheus's
//! messages; operations between a float and a histogram that have no
//! meaning drop the sample and add an info annotation.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use emberlens_model::{FloatHistogram, Labels};

use crate::ast::{BinOp, BinaryExpr, Cardinality, VectorMatching};
use crate::engine::{Evaluator, IValue};
use crate::error::EvalError;
use crate::hash::{IdHasher, IdMap};
use crate::value::Sample;

/// Marks a message of `elem` that is a warning, not an info.
const WARN: &str = "\u{0}warn:";

/// Adds the messages `elem` collected as infos (warnings where marked).
fn emit<S: emberlens_model::Storage>(ev: &mut Evaluator<'_, S>, b: &BinaryExpr, msgs: Vec<String>) {
    for m in msgs {
        match m.strip_prefix(WARN) {
            Some(w) => ev.ann.warn(ev.src, b.pos, w),
            None => ev.ann.info(ev.src, b.pos, m),
        }
    }
}

/// Applies a float operator; `None` drops the sample (a false comparison).
pub(crate) fn float_op(op: BinOp, l: f64, r: f64) -> Option<f64> {
    Some(match op {
        BinOp::Add => l + r,
        BinOp::Sub => l - r,
        BinOp::Mul => l * r,
        BinOp::Div => l / r,
        BinOp::Mod => l % r,
        BinOp::Pow => l.powf(r),
        BinOp::Atan2 => l.atan2(r),
        BinOp::Eql => return (l == r).then_some(l),
        BinOp::Neq => return (l != r).then_some(l),
        BinOp::Gtr => return (l > r).then_some(l),
        BinOp::Lss => return (l < r).then_some(l),
        BinOp::Gte => return (l >= r).then_some(l),
        BinOp::Lte => return (l <= r).then_some(l),
        _ => return None,
    })
}

fn cmp_bool(op: BinOp, l: f64, r: f64) -> f64 {
    if float_op(op, l, r).is_some() {
        1.0
    } else {
        0.0
    }
}

/// Arithmetic operators mark results for name removal.
fn drops_name(op: BinOp) -> bool {
    matches!(
        op,
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Pow | BinOp::Atan2
    )
}

/// One element operation; `Ok(None)` drops it.
enum Elem {
    F(f64),
    H(Arc<FloatHistogram>),
}

fn type_name(h: bool) -> &'static str {
    if h { "histogram" } else { "float" }
}

pub(crate) fn eval_binary<S: emberlens_model::Storage>(
    ev: &mut Evaluator<'_, S>,
    b: &BinaryExpr,
    t: i64,
) -> Result<IValue, EvalError> {
    // `and`/`unless` with an empty left side need not evaluate the right.
    let lhs = ev.eval(&b.lhs, t)?;
    let rhs = ev.eval(&b.rhs, t)?;
    match (lhs, rhs) {
        (IValue::Scalar(l), IValue::Scalar(r)) => {
            let v = if b.op.is_comparison() {
                cmp_bool(b.op, l, r)
            } else {
                float_op(b.op, l, r).unwrap_or(f64::NAN)
            };
            Ok(IValue::Scalar(v))
        }
        (IValue::Vector(v), IValue::Scalar(s)) => {
            Ok(IValue::Vector(vector_scalar(ev, b, v, s, false)))
        }
        (IValue::Scalar(s), IValue::Vector(v)) => {
            Ok(IValue::Vector(vector_scalar(ev, b, v, s, true)))
        }
        (IValue::Vector(l), IValue::Vector(r)) => {
            let m = b.matching.clone().unwrap_or(VectorMatching {
                card: if b.op.is_set() {
                    Cardinality::ManyToMany
                } else {
                    Cardinality::OneToOne
                },
                labels: Vec::new(),
                on: false,
                include: Vec::new(),
            });
            let out = match b.op {
                BinOp::And => and(l, r, &m),
                BinOp::Or => or(l, r, &m),
                BinOp::Unless => unless(l, r, &m),
                _ => {
                    let k = crate::engine::key(b);
                    let mut cache = ev.bin_cache.remove(&k).unwrap_or_default();
                    cache.trim(l.len() + r.len());
                    let out = vector_vector(ev, b, l, r, &m, &mut cache)?;
                    ev.bin_cache.insert(k, cache);
                    out
                }
            };
            Ok(IValue::Vector(out))
        }
        _ => Err(EvalError::Execution(
            "invalid operands for binary operation".into(),
        )),
    }
}

fn elem(
    ev_info: &mut Vec<String>,
    op: BinOp,
    l: &Sample,
    r_f: f64,
    r_h: Option<&Arc<FloatHistogram>>,
    swap: bool,
) -> Option<Elem> {
    // Normalise to (left, right) in expression order.
    let (lf, lh, rf, rh) = if swap {
        (r_f, r_h.cloned(), l.f, l.h.clone())
    } else {
        (l.f, l.h.clone(), r_f, r_h.cloned())
    };
    match (lh, rh) {
        (None, None) => float_op(op, lf, rf).map(Elem::F),
        (Some(h), None) => match op {
            BinOp::Mul => Some(Elem::H(Arc::new(h.mul(rf)))),
            BinOp::Div => Some(Elem::H(Arc::new(h.div(rf)))),
            BinOp::TrimUpper | BinOp::TrimLower => Some(Elem::H(Arc::new(
                crate::nativehist::trim_histogram(&h, rf, op == BinOp::TrimUpper),
            ))),
            _ => {
                ev_info.push(format!(
                    "incompatible sample types encountered for binary operator {:?}: {} {} {}",
                    op.as_str(),
                    type_name(true),
                    op.as_str(),
                    type_name(false)
                ));
                None
            }
        },
        (None, Some(h)) => match op {
            BinOp::Mul => Some(Elem::H(Arc::new(h.mul(lf)))),
            _ => {
                ev_info.push(format!(
                    "incompatible sample types encountered for binary operator {:?}: {} {} {}",
                    op.as_str(),
                    type_name(false),
                    op.as_str(),
                    type_name(true)
                ));
                None
            }
        },
        (Some(a), Some(bh)) => match op {
            BinOp::Add | BinOp::Sub => {
                let sub = op == BinOp::Sub;
                let r = if sub {
                    a.sub_with_flags(&bh)
                } else {
                    a.add_with_flags(&bh)
                };
                let what = if sub { "subtraction" } else { "addition" };
                match r {
                    Ok((h, flags)) => {
                        if flags.counter_reset_collision {
                            ev_info.push(format!(
                                "{WARN}conflicting counter resets during histogram {what}"
                            ));
                        }
                        if flags.nhcb_bounds_reconciled {
                            ev_info.push(format!(
                                "mismatched custom buckets were reconciled during {what}"
                            ));
                        }
                        let mut h = h.compact(0);
                        if sub {
                            h.counter_reset_hint = emberlens_model::CounterResetHint::Gauge;
                        }
                        Some(Elem::H(Arc::new(h)))
                    }
                    Err(_) => {
                        ev_info.push(format!(
                            "{WARN}vector contains a mix of histograms with exponential and custom buckets schemas for metric name \"\""
                        ));
                        None
                    }
                }
            }
            BinOp::Eql => a.equals(&bh).then(|| Elem::H(a.clone())),
            BinOp::Neq => (!a.equals(&bh)).then(|| Elem::H(a.clone())),
            _ => {
                ev_info.push(format!(
                    "incompatible sample types encountered for binary operator {:?}: {} {} {}",
                    op.as_str(),
                    type_name(true),
                    op.as_str(),
                    type_name(true)
                ));
                None
            }
        },
    }
}

fn vector_scalar<S: emberlens_model::Storage>(
    ev: &mut Evaluator<'_, S>,
    b: &BinaryExpr,
    v: Vec<Sample>,
    s: f64,
    swap: bool,
) -> Vec<Sample> {
    let mut infos = Vec::new();
    let mut out = Vec::with_capacity(v.len());
    for mut smp in v {
        if b.return_bool {
            if smp.h.is_some() {
                infos.push(format!(
                    "incompatible sample types encountered for binary operator {:?}: histogram {} float",
                    b.op.as_str(),
                    b.op.as_str()
                ));
                continue;
            }
            let (l, r) = if swap { (s, smp.f) } else { (smp.f, s) };
            smp.f = cmp_bool(b.op, l, r);
            smp.drop_name = true;
            out.push(smp);
            continue;
        }
        let Some(e) = elem(&mut infos, b.op, &smp, s, None, swap) else {
            continue;
        };
        match e {
            Elem::F(f) => {
                // A comparison keeps the vector's value even when the scalar is on the left.
                smp.f = if b.op.is_comparison() { smp.f } else { f };
            }
            Elem::H(h) => {
                if !b.op.is_comparison() {
                    smp.h = Some(h);
                }
            }
        }
        if drops_name(b.op) {
            smp.drop_name = true;
        }
        out.push(smp);
    }
    emit(ev, b, infos);
    out
}

/// One binary operator node's label work, kept across a range query's
/// steps: signatures by input label set (interned, so equal signatures
/// share one identity) and result label sets by input pair. Each map holds
/// the label sets it is keyed by, so their identities stay unique.
#[derive(Default)]
pub(crate) struct BinCache {
    sigs: IdMap<(Labels, Labels)>,
    interned: HashMap<Labels, Labels>,
    results: HashMap<(usize, usize), (Labels, Labels, Labels), BuildHasherDefault<IdHasher>>,
}

impl BinCache {
    /// The interned [`signature`] of `l`.
    fn sig(&mut self, l: &Labels, m: &VectorMatching) -> Labels {
        if let Some((_, s)) = self.sigs.get(&l.shared_id()) {
            return s.clone();
        }
        let s = signature(l, m);
        let s = self.interned.entry(s.clone()).or_insert(s).clone();
        self.sigs.insert(l.shared_id(), (l.clone(), s.clone()));
        s
    }

    /// [`result_metric`] of a pair, `None` for a filled-in "one" side.
    fn result(&mut self, many: &Labels, one: Option<&Labels>, m: &VectorMatching) -> Labels {
        let k = (many.shared_id(), one.map_or(0, Labels::shared_id));
        if let Some((_, _, r)) = self.results.get(&k) {
            return r.clone();
        }
        let empty = Labels::default();
        let r = result_metric(many, one.unwrap_or(&empty), m);
        let kept_one = one.cloned().unwrap_or_default();
        self.results.insert(k, (many.clone(), kept_one, r.clone()));
        r
    }

    /// Bounds the memory when inputs get new label sets at every step.
    fn trim(&mut self, inputs: usize) {
        let cap = 4 * inputs + 1024;
        if self.sigs.len() > cap || self.interned.len() > cap {
            self.sigs.clear();
            self.interned.clear();
        }
        if self.results.len() > cap {
            self.results.clear();
        }
    }
}

/// The matching signature of `l` under `m`.
fn signature(l: &Labels, m: &VectorMatching) -> Labels {
    if m.on {
        l.keep(&m.labels)
    } else {
        let mut names: Vec<&str> = m.labels.iter().map(String::as_str).collect();
        names.push("__name__");
        l.without(&names)
    }
}

fn and(l: Vec<Sample>, r: Vec<Sample>, m: &VectorMatching) -> Vec<Sample> {
    let sigs: HashSet<Labels> = r.iter().map(|s| signature(&s.metric, m)).collect();
    l.into_iter()
        .filter(|s| sigs.contains(&signature(&s.metric, m)))
        .collect()
}

fn unless(l: Vec<Sample>, r: Vec<Sample>, m: &VectorMatching) -> Vec<Sample> {
    let sigs: HashSet<Labels> = r.iter().map(|s| signature(&s.metric, m)).collect();
    l.into_iter()
        .filter(|s| !sigs.contains(&signature(&s.metric, m)))
        .collect()
}

fn or(l: Vec<Sample>, r: Vec<Sample>, m: &VectorMatching) -> Vec<Sample> {
    let sigs: HashSet<Labels> = l.iter().map(|s| signature(&s.metric, m)).collect();
    let mut out = l;
    out.extend(
        r.into_iter()
            .filter(|s| !sigs.contains(&signature(&s.metric, m))),
    );
    out
}

fn fmt_series(v: &[&Sample]) -> String {
    let mut names: Vec<String> = v
        .iter()
        .map(|s| crate::format::labels_brace(&s.metric))
        .collect();
    names.sort();
    format!("[{}]", names.join(", "))
}

fn vector_vector<S: emberlens_model::Storage>(
    ev: &mut Evaluator<'_, S>,
    b: &BinaryExpr,
    l: Vec<Sample>,
    r: Vec<Sample>,
    m: &VectorMatching,
    cache: &mut BinCache,
) -> Result<Vec<Sample>, EvalError> {
    // group_right: the right side is the "many" side; swap so the loop
    // always walks the many side.
    let swap = m.card == Cardinality::OneToMany;
    let (many, one) = if swap { (r, l) } else { (l, r) };
    let one_side = if swap { "left" } else { "right" };

    // Keyed by interned signature identity.
    let mut one_by_sig: IdMap<(Labels, Vec<&Sample>)> = IdMap::default();
    for s in &one {
        let sig = cache.sig(&s.metric, m);
        one_by_sig
            .entry(sig.shared_id())
            .or_insert_with(|| (sig, Vec::new()))
            .1
            .push(s);
    }
    for (sig, v) in one_by_sig.values() {
        if v.len() > 1 {
            return Err(EvalError::Execution(format!(
                "found duplicate series for the match group {} on the {one_side} hand-side of the operation: {};many-to-many matching not allowed: matching labels must be unique on one side",
                crate::format::labels_brace(sig),
                fmt_series(v)
            )));
        }
    }
    let mut infos = Vec::new();
    let mut out = Vec::new();
    let mut matched_sigs: IdMap<usize> = IdMap::default();
    let mut result_metrics: HashSet<Labels> = HashSet::new();
    let mut one_matched: IdMap<()> = IdMap::default();
    for ms in &many {
        let sig = cache.sig(&ms.metric, m);
        let Some(os) = one_by_sig.get(&sig.shared_id()).and_then(|v| v.1.first()) else {
            // No match: fill the missing side if asked. As upstream (and its
            // tests), the "one" side takes `fill_right` even for group_right.
            let fill = b.fill.right;
            if let Some(fv) = fill {
                let filler = Sample {
                    metric: Labels::default(),
                    t: ms.t,
                    f: fv,
                    h: None,
                    drop_name: false,
                };
                if let Some(s) = combine(b, m, ms, &filler, swap, &mut infos, true, cache) {
                    out.push(s);
                }
            }
            continue;
        };
        one_matched.insert(sig.shared_id(), ());
        if m.card == Cardinality::OneToOne {
            let n = matched_sigs.entry(sig.shared_id()).or_default();
            *n += 1;
            if *n > 1 {
                return Err(EvalError::Execution(format!(
                    "found duplicate series for the match group {} on the {} hand-side of the operation: {};many-to-many matching not allowed: matching labels must be unique on one side",
                    crate::format::labels_brace(&sig),
                    if swap { "right" } else { "left" },
                    fmt_series(
                        &many
                            .iter()
                            .filter(|s| signature(&s.metric, m) == sig)
                            .collect::<Vec<_>>()
                    )
                )));
            }
        }
        if let Some(s) = combine(b, m, ms, os, swap, &mut infos, false, cache) {
            if m.card != Cardinality::OneToOne && !result_metrics.insert(s.metric.clone()) {
                return Err(EvalError::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                        .into(),
                ));
            }
            out.push(s);
        }
    }
    // The "one" side's unmatched samples, when its counterpart is filled
    // (`fill_left`, also for group_right); the filled series has the match
    // group's labels.
    let fill_other = b.fill.left;
    if let Some(fv) = fill_other {
        for os in &one {
            let sig = cache.sig(&os.metric, m);
            if one_matched.contains_key(&sig.shared_id()) {
                continue;
            }
            let filler = Sample {
                metric: sig,
                t: os.t,
                f: fv,
                h: None,
                drop_name: false,
            };
            if let Some(s) = combine(b, m, &filler, os, swap, &mut infos, false, cache) {
                out.push(s);
            }
        }
    }
    emit(ev, b, infos);
    Ok(out)
}

/// One matched pair → the result sample (or none for a false comparison).
/// `many` is on the left unless `swap`.
#[allow(clippy::too_many_arguments)]
fn combine(
    b: &BinaryExpr,
    m: &VectorMatching,
    many: &Sample,
    one: &Sample,
    swap: bool,
    infos: &mut Vec<String>,
    one_is_fill: bool,
    cache: &mut BinCache,
) -> Option<Sample> {
    let (l, r) = if swap { (one, many) } else { (many, one) };
    let value = if b.return_bool {
        if l.h.is_some() || r.h.is_some() {
            match (&l.h, &r.h) {
                (Some(a), Some(c)) if matches!(b.op, BinOp::Eql | BinOp::Neq) => {
                    let eq = a.equals(c);
                    Elem::F(if (b.op == BinOp::Eql) == eq { 1.0 } else { 0.0 })
                }
                _ => {
                    infos.push(format!(
                        "incompatible sample types encountered for binary operator {:?}: {} {} {}",
                        b.op.as_str(),
                        type_name(l.h.is_some()),
                        b.op.as_str(),
                        type_name(r.h.is_some())
                    ));
                    return None;
                }
            }
        } else {
            Elem::F(cmp_bool(b.op, l.f, r.f))
        }
    } else {
        elem(infos, b.op, l, r.f, r.h.as_ref(), false)?
    };
    // The result has the many side's labels (plus `group_x` labels from the
    // one side); a missing side filled in contributes no labels.
    let metric = if one_is_fill {
        cache.result(&many.metric, None, m)
    } else {
        cache.result(&many.metric, Some(&one.metric), m)
    };
    let (f, h) = match value {
        Elem::F(f) => {
            // A comparison keeps the left value (the many side's for
            // group_right is on the right: Prometheus keeps the left one).
            let f = if b.op.is_comparison() && !b.return_bool {
                l.f
            } else {
                f
            };
            (f, None)
        }
        Elem::H(h) => {
            if b.op.is_comparison() && !b.return_bool {
                (0.0, l.h.clone())
            } else {
                (0.0, Some(h))
            }
        }
    };
    Some(Sample {
        metric,
        t: many.t,
        f,
        h,
        drop_name: drops_name(b.op) || b.return_bool || many.drop_name,
    })
}

/// Prometheus's `resultMetric`.
fn result_metric(l: &Labels, r: &Labels, m: &VectorMatching) -> Labels {
    let mut out = l.clone();
    match m.card {
        Cardinality::OneToOne => {
            if m.on {
                out = out.keep(&m.labels);
            } else {
                out = out.without(&m.labels);
            }
        }
        Cardinality::ManyToOne | Cardinality::OneToMany => {
            for n in &m.include {
                out = out.with(n, r.get(n));
            }
        }
        Cardinality::ManyToMany => {}
    }
    out
}
