//! The evaluator: instant and range queries over a [`Storage`].
//!
//! Design: a range query evaluates the expression at every step and
//! assembles the per-step vectors into series, which is Prometheus's
//! semantics by definition (its `rangeEval` is an optimisation of exactly
//! that). What would make this slow is avoided: every selector's data is
//! selected from storage once per query, for the whole time span the query
//! needs (computed up front from offsets, ranges, `@` and enclosing
//! subqueries, as Prometheus's `FindMinMaxTime`), and a subquery's inner
//! results are cached by absolute timestamp (subquery steps are aligned to
//! multiples of the step, so consecutive outer steps share them).
//! Memory access is what costs on large data: windows are found from the
//! previous step's position (`seek`), a range function of a plain range
//! selector outside subqueries is computed for all steps at once series by
//! series (`funcs::batched`), aggregations cache group keys per input label
//! set, and label sets are shared (`Arc`) so copying them is free.
//!
//! Edge cases, as Prometheus: the lookback window is `(t - lookback, t]`,
//! range windows are `(t - range, t]` (left-open, Prometheus 3); a staleness
//! marker ends a series for instant selection and is dropped from ranges;
//! `__name__` is removed at the end of the query from samples marked
//! `drop_name`; two result series with the same labels are an error; a
//! selector that only feeds `histogram_count`/`_sum`/`_avg` reads
//! histogram statistics with re-derived counter-reset hints
//! (`histstats.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use emberlens_model::{FloatHistogram, Labels, Matcher, StartTimestamps, Storage, is_stale_nan};

use crate::ast::*;
use crate::error::EvalError;
use crate::parser::parse;
use crate::value::{Annotations, FPoint, HPoint, Sample, Series, Value};

/// Polled while a query runs; `Some(error)` stops it with that error (a
/// deadline passed: [`EvalError::Timeout`]; the user cancelled:
/// [`EvalError::Canceled`]). The engine has no clock of its own: callers
/// bring one (the server an `Instant`, the worker a shared flag).
pub type Interrupt = std::sync::Arc<dyn Fn() -> Option<EvalError> + Send + Sync>;

/// Engine settings.
#[derive(Clone)]
pub struct EngineOpts {
    /// How far back an instant selector looks for a sample (5 m).
    pub lookback_ms: i64,
    /// Most samples a query may hold at once (Prometheus's `--query.max-samples`).
    pub max_samples: usize,
    /// Subquery step when none is given (Prometheus: the global evaluation interval, 1 m).
    pub default_subquery_step_ms: i64,
    /// Checked at every evaluation step (and subquery step).
    pub interrupt: Option<Interrupt>,
}

impl std::fmt::Debug for EngineOpts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOpts")
            .field("lookback_ms", &self.lookback_ms)
            .field("max_samples", &self.max_samples)
            .field("default_subquery_step_ms", &self.default_subquery_step_ms)
            .field("interrupt", &self.interrupt.is_some())
            .finish()
    }
}

impl Default for EngineOpts {
    fn default() -> Self {
        EngineOpts {
            lookback_ms: 300_000,
            max_samples: 50_000_000,
            default_subquery_step_ms: 60_000,
            interrupt: None,
        }
    }
}

/// A query's result and its annotations.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    /// The value.
    pub value: Value,
    /// Warnings and infos.
    pub annotations: Annotations,
}

/// Evaluates `src` at `t_ms`.
pub fn instant_query<S: Storage>(
    storage: &S,
    opts: &EngineOpts,
    src: &str,
    t_ms: i64,
) -> Result<QueryResult, EvalError> {
    let expr = parse(src).map_err(|e| EvalError::Parse(e.render(src)))?;
    instant_query_expr(storage, opts, src, &expr, t_ms)
}

/// Evaluates a parsed expression at `t_ms` (`src` is quoted in annotations).
pub fn instant_query_expr<S: Storage>(
    storage: &S,
    opts: &EngineOpts,
    src: &str,
    expr: &Expr,
    t_ms: i64,
) -> Result<QueryResult, EvalError> {
    let mut ev = Evaluator::new(storage, opts, src, t_ms, t_ms, 0);
    ev.preload(expr)?;
    // Only calls inside subqueries have steps to compute ahead here.
    ev.mark_batchable(expr);
    ev.begin_step()?;
    let v = ev.eval(expr, t_ms)?;
    let value = match v {
        IValue::Scalar(v) => Value::Scalar { t: t_ms, v },
        IValue::String(s) => Value::String { t: t_ms, s },
        IValue::Vector(vec) => Value::Vector(finish_vector(vec, t_ms)?),
        IValue::Matrix(m) => Value::Matrix(finish_matrix(m)?),
    };
    Ok(QueryResult {
        value,
        annotations: ev.ann,
    })
}

/// Evaluates `src` from `start_ms` to `end_ms` every `step_ms`.
pub fn range_query<S: Storage>(
    storage: &S,
    opts: &EngineOpts,
    src: &str,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
) -> Result<QueryResult, EvalError> {
    let expr = parse(src).map_err(|e| EvalError::Parse(e.render(src)))?;
    range_query_expr(storage, opts, src, &expr, start_ms, end_ms, step_ms)
}

/// Evaluates a parsed expression as a range query.
pub fn range_query_expr<S: Storage>(
    storage: &S,
    opts: &EngineOpts,
    src: &str,
    expr: &Expr,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
) -> Result<QueryResult, EvalError> {
    if step_ms <= 0 {
        return Err(EvalError::Execution(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
                .into(),
        ));
    }
    if end_ms < start_ms {
        return Err(EvalError::Execution(
            "end timestamp must not be before start time".into(),
        ));
    }
    match expr.value_type() {
        ValueType::Scalar | ValueType::Vector => {}
        t => {
            return Err(EvalError::Execution(format!(
                "invalid expression type {:?} for range query, must be Scalar or instant Vector",
                t.name()
            )));
        }
    }
    let mut ev = Evaluator::new(storage, opts, src, start_ms, end_ms, step_ms);
    ev.preload(expr)?;
    ev.mark_batchable(expr);
    let steps = (end_ms - start_ms) / step_ms + 1;
    // Steps are independent, so runs of them go to separate evaluators
    // (natively on separate cores, `par_map`), each with the preloaded data.
    // With subqueries, each run evaluates the inner steps of its first
    // window afresh (one run would have them cached from the step before),
    // so `max_samples` counts those once more at each run's first step;
    // the answers are the same.
    let parts = emberlens_model::par::threads().min(steps as usize).max(1);
    let per = (steps + parts as i64 - 1) / parts as i64;
    let ranges: Vec<(i64, i64)> = (0..parts as i64)
        .map(|p| {
            let lo = start_ms + p * per * step_ms;
            (lo, (lo + (per - 1) * step_ms).min(end_ms))
        })
        .filter(|(lo, _)| *lo <= end_ms)
        .collect();
    let runs = if ranges.len() == 1 {
        let mut counts = Vec::new();
        let r = run_steps(&mut ev, expr, start_ms, end_ms, &mut counts);
        vec![(counts, r, std::mem::take(&mut ev.ann))]
    } else {
        let base = &ev;
        emberlens_model::par::par_map(&ranges, 2, |&(lo, hi)| {
            let mut e = base.fork(lo, hi);
            let mut counts = Vec::new();
            let r = run_steps(&mut e, expr, lo, hi, &mut counts);
            (counts, r, e.ann)
        })
    };
    // In step order: the limit as one evaluator would have applied it (each
    // step's peak plus all the output before it), then the first error, then
    // the series joined by labels.
    let mut ann = Annotations::default();
    let mut series: Vec<Series> = Vec::new();
    let mut by_labels: HashMap<Labels, usize> = HashMap::new();
    let mut held = 0usize;
    for (counts, r, a) in runs {
        for (peak, added) in counts {
            held = held.saturating_add(added);
            if peak.saturating_add(held) > opts.max_samples {
                return Err(EvalError::TooManySamples);
            }
        }
        let part = r?;
        ann.merge(a);
        if series.is_empty() {
            by_labels = part
                .iter()
                .enumerate()
                .map(|(i, s)| (s.metric.clone(), i))
                .collect();
            series = part;
            continue;
        }
        for s in part {
            match by_labels.get(&s.metric) {
                Some(&i) => {
                    let e = &mut series[i];
                    e.drop_name |= s.drop_name;
                    e.floats.extend(s.floats);
                    e.hists.extend(s.hists);
                }
                None => {
                    by_labels.insert(s.metric.clone(), series.len());
                    series.push(s);
                }
            }
        }
    }
    Ok(QueryResult {
        value: Value::Matrix(finish_matrix(series)?),
        annotations: ann,
    })
}

/// Evaluates `expr` at the steps `lo..=hi` of `ev`'s query, as series in
/// order of appearance; `counts` gets each completed step's peak of held
/// samples and the samples it added to the answer.
fn run_steps<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    expr: &Expr,
    lo: i64,
    hi: i64,
    counts: &mut Vec<(usize, usize)>,
) -> Result<Vec<Series>, EvalError> {
    let step_ms = ev.step;
    // Result series, found by label-set identity first (steps mostly share
    // their label sets), then by value; the identity map holds its label
    // sets so their ids stay unique.
    let mut out: Vec<Series> = Vec::new();
    let mut by_id: crate::hash::IdMap<(Labels, usize)> = Default::default();
    let mut by_labels: HashMap<Labels, usize> = HashMap::new();
    let mut t = lo;
    while t <= hi {
        ev.begin_step()?;
        // Label sets new at every step (computed ones) would pile up.
        if by_id.len() > 4 * out.len() + 1024 {
            by_id.clear();
        }
        let v = ev.eval(expr, t)?;
        // The result so far stays in memory: it counts against the limit.
        let added = match &v {
            IValue::Vector(vec) => vec.len(),
            _ => 1,
        };
        ev.output_samples += added;
        ev.count(0)?;
        counts.push((ev.step_samples, added));
        match v {
            IValue::Scalar(v) => {
                let i = *by_labels.entry(Labels::default()).or_insert_with(|| {
                    out.push(Series::default());
                    out.len() - 1
                });
                out[i].floats.push(FPoint { t, f: v });
            }
            IValue::Vector(vec) => {
                for s in vec {
                    let i = match by_id.get(&s.metric.shared_id()) {
                        Some(&(_, i)) => i,
                        None => {
                            let i = *by_labels.entry(s.metric.clone()).or_insert_with(|| {
                                out.push(Series {
                                    metric: s.metric.clone(),
                                    ..Series::default()
                                });
                                out.len() - 1
                            });
                            by_id.insert(s.metric.shared_id(), (s.metric.clone(), i));
                            i
                        }
                    };
                    let e = &mut out[i];
                    e.drop_name |= s.drop_name;
                    // Two samples with one label set at one step.
                    if e.floats.last().is_some_and(|p| p.t == t)
                        || e.hists.last().is_some_and(|p| p.t == t)
                    {
                        return Err(EvalError::Execution(
                            "vector cannot contain metrics with the same labelset".into(),
                        ));
                    }
                    match s.h {
                        Some(h) => e.hists.push(HPoint { t, h }),
                        None => e.floats.push(FPoint { t, f: s.f }),
                    }
                }
            }
            _ => {
                return Err(EvalError::Execution(
                    "range query expression did not evaluate to a vector".into(),
                ));
            }
        }
        t += step_ms;
    }
    Ok(out)
}

/// The labels removed with the metric name: Prometheus's type-and-unit
/// labels go with it (`DropReserved`).
const NAME_LABELS: [&str; 3] = ["__name__", "__type__", "__unit__"];

/// Removes `__name__` where marked, stamps samples with the evaluation
/// time, checks for duplicate label sets.
fn finish_vector(mut v: Vec<Sample>, t: i64) -> Result<Vec<Sample>, EvalError> {
    for s in &mut v {
        s.t = t;
        if s.drop_name {
            s.metric = s.metric.without(&NAME_LABELS);
            s.drop_name = false;
        }
    }
    let mut seen: Vec<&Labels> = v.iter().map(|s| &s.metric).collect();
    seen.sort();
    if seen.windows(2).any(|w| w[0] == w[1]) {
        return Err(EvalError::Execution(
            "vector cannot contain metrics with the same labelset".into(),
        ));
    }
    Ok(v)
}

fn finish_matrix(mut m: Vec<Series>) -> Result<Vec<Series>, EvalError> {
    for s in &mut m {
        if s.drop_name {
            s.metric = s.metric.without(&NAME_LABELS);
            s.drop_name = false;
        }
    }
    m.sort_by(|a, b| a.metric.cmp(&b.metric));
    // Series that only collide once their names are gone are merged, as
    // long as they never have a point at the same time.
    let mut out: Vec<Series> = Vec::with_capacity(m.len());
    for s in m {
        match out.last_mut() {
            Some(prev) if prev.metric == s.metric => {
                prev.floats.extend(s.floats);
                prev.hists.extend(s.hists);
                prev.floats.sort_by_key(|p| p.t);
                prev.hists.sort_by_key(|p| p.t);
                let mut ts: Vec<i64> = prev.floats.iter().map(|p| p.t).collect();
                ts.extend(prev.hists.iter().map(|p| p.t));
                ts.sort_unstable();
                if ts.windows(2).any(|w| w[0] == w[1]) {
                    return Err(EvalError::Execution(
                        "vector cannot contain metrics with the same labelset".into(),
                    ));
                }
            }
            _ => out.push(s),
        }
    }
    Ok(out)
}

/// A value at one evaluation step.
#[derive(Clone, Debug)]
pub(crate) enum IValue {
    Scalar(f64),
    String(String),
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
}

/// A selector's data, loaded once per query. The points are shared
/// between the evaluators of a split range query, the label sets are not
/// (see `Evaluator::fork`).
pub(crate) struct SeriesData {
    pub labels: Labels,
    pub floats: Arc<Vec<FPoint>>,
    pub hists: Arc<Vec<HPoint>>,
    /// Start timestamps, index-aligned with `floats` and `hists`, when the
    /// store has them.
    pub sts: Option<StartTimestamps>,
}

impl SeriesData {
    /// Converts a storage series (start timestamps kept only when they line
    /// up with the samples).
    pub(crate) fn from_storage(s: emberlens_model::Series) -> SeriesData {
        let sts = s.start_timestamps.filter(|st| {
            st.floats.len() == s.samples.len() && st.histograms.len() == s.histograms.len()
        });
        SeriesData {
            labels: s.labels,
            // Collected in place (same layout), then shared without a copy.
            floats: Arc::new(
                s.samples
                    .into_iter()
                    .map(|p| FPoint { t: p.t_ms, f: p.v })
                    .collect(),
            ),
            hists: Arc::new(
                s.histograms
                    .into_iter()
                    .map(|p| HPoint {
                        t: p.t_ms,
                        h: Arc::new(p.h),
                    })
                    .collect(),
            ),
            sts,
        }
    }
}

pub(crate) struct Evaluator<'a, S> {
    storage: &'a S,
    pub opts: &'a EngineOpts,
    pub src: &'a str,
    pub start: i64,
    pub end: i64,
    pub step: i64,
    /// The steps being evaluated: the query's (or the part of them this
    /// evaluator runs), or inside a subquery its inner steps; range
    /// functions are computed ahead for the coming steps of it.
    pub(crate) grid: Grid,
    data: HashMap<usize, Arc<Vec<SeriesData>>>,
    sub_cache: HashMap<(usize, i64), IValue>,
    /// Series selected for `info` calls (keyed by the call node), see `info.rs`.
    pub(crate) info_data: HashMap<usize, Arc<Vec<SeriesData>>>,
    /// Selectors read as histogram statistics only (see `histstats.rs`).
    hstats: HashMap<usize, crate::histstats::StatsSelector>,
    /// Per selector (and per kind of use), each series' float window bounds
    /// at the previous evaluation: steps mostly move forward, so the next
    /// window is found from there instead of by a binary search over all of
    /// the series' points (cache misses dominated range queries).
    cursors: HashMap<(usize, bool), Vec<(usize, usize)>>,
    /// Label sets whose name `rate`/`increase` already checked for a
    /// counter suffix (held, so their identities stay unique).
    counter_names: crate::hash::IdMap<Labels>,
    /// Range-function calls outside subqueries in a range query: computed
    /// for every step at once, series by series (see `funcs.rs`).
    pub(crate) batchable: std::collections::HashSet<usize>,
    /// Range-function calls of a plain range selector inside subqueries:
    /// computed ahead over the subquery's inner steps.
    pub(crate) batchable_inner: std::collections::HashSet<usize>,
    /// Their results for a run of steps, each taken by its step's evaluation.
    pub(crate) batches: HashMap<usize, Batch>,
    /// Subqueries' numbered label sets by node.
    sub_slots: HashMap<usize, SubSlots>,
    /// Binary operators' signatures and result labels by node (`binary.rs`).
    pub(crate) bin_cache: HashMap<usize, crate::binary::BinCache>,
    /// Aggregations' group keys by node (see `aggregate.rs`).
    pub(crate) group_keys: HashMap<usize, crate::aggregate::GroupKeys>,
    pub ann: Annotations,
    /// Samples loaded by the current step (selectors, ranges, subqueries).
    step_samples: usize,
    /// Samples of a range query's result so far.
    output_samples: usize,
}

/// Evaluation steps `lo, lo + step, …, hi`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Grid {
    pub lo: i64,
    pub hi: i64,
    pub step: i64,
}

/// A subquery node's label sets, numbered: by identity first, by value for
/// identities not seen yet. The identity map holds its label sets so their
/// ids stay unique.
#[derive(Default)]
pub(crate) struct SubSlots {
    by_id: crate::hash::IdMap<(Labels, usize)>,
    by_labels: HashMap<Labels, usize>,
}

impl SubSlots {
    /// The index in `out` of the series with labels `l` (pushed if new);
    /// `pos_of` maps slot numbers to indices in `out` for this call.
    fn place(&mut self, l: &Labels, pos_of: &mut Vec<usize>, out: &mut Vec<Series>) -> usize {
        let slot = match self.by_id.get(&l.shared_id()) {
            Some(&(_, s)) => s,
            None => {
                let n = self.by_labels.len();
                let s = *self.by_labels.entry(l.clone()).or_insert(n);
                self.by_id.insert(l.shared_id(), (l.clone(), s));
                s
            }
        };
        if slot >= pos_of.len() {
            pos_of.resize(slot + 1, usize::MAX);
        }
        if pos_of[slot] == usize::MAX {
            out.push(Series {
                metric: l.clone(),
                ..Series::default()
            });
            pos_of[slot] = out.len() - 1;
        }
        pos_of[slot]
    }
}

/// A range function's results for steps `first..first + steps.len()`,
/// with each series' window bounds after the last of them.
#[derive(Default)]
pub(crate) struct Batch {
    /// For a subquery argument: its series over the whole query, with
    /// whether each one's points drop the metric name.
    pub sub_data: Option<Arc<Vec<SeriesData>>>,
    pub sub_drop: Vec<bool>,
    /// Per series, each point's time and position in its inner vector.
    pub sub_ranks: Vec<Vec<(i64, u32)>>,
    /// The time and spacing of `steps[0]`, `steps[1]`, …
    pub t0: i64,
    pub step: i64,
    pub steps: Vec<Option<Vec<Sample>>>,
    /// The points each step's windows hold (counted against `max_samples`
    /// when the step takes its result).
    pub points: Vec<usize>,
    pub cursors: Vec<(usize, usize)>,
}

/// One series' plain range window `(lo, rt]`, stale markers removed, with
/// its start timestamps; `fa..fb` are the float bounds (from [`seek`]).
/// `None` when the window is empty.
pub(crate) fn window(
    s: &SeriesData,
    lo: i64,
    rt: i64,
    fa: usize,
    fb: usize,
) -> Option<(Series, Option<StartTimestamps>)> {
    let mut series = Series::default();
    let sts = window_into(s, lo, rt, fa, fb, &mut series)?;
    Some((series, sts))
}

/// [`window`] into `out`, reusing its buffers; returns the start
/// timestamps, `None` when the window is empty.
pub(crate) fn window_into(
    s: &SeriesData,
    lo: i64,
    rt: i64,
    fa: usize,
    fb: usize,
    out: &mut Series,
) -> Option<Option<StartTimestamps>> {
    window_into_as(s, lo, rt, fa, fb, out, true)
}

/// [`window_into`]; stale markers are kept unless `drop_stale` (a
/// subquery's points are computed values, never markers).
pub(crate) fn window_into_as(
    s: &SeriesData,
    lo: i64,
    rt: i64,
    fa: usize,
    fb: usize,
    out: &mut Series,
    drop_stale: bool,
) -> Option<Option<StartTimestamps>> {
    let ha = s.hists.partition_point(|p| p.t <= lo);
    let hb = s.hists.partition_point(|p| p.t <= rt);
    let (fwin, hwin) = (&s.floats[fa..fb], &s.hists[ha..hb]);
    if fwin.is_empty() && hwin.is_empty() {
        return None;
    }
    // A refcount touch per window adds up; `out` often holds them already.
    if out.metric.shared_id() != s.labels.shared_id() {
        out.metric = s.labels.clone();
    }
    out.drop_name = false;
    out.floats.clear();
    out.hists.clear();
    // Common case: nothing to filter, copy the windows.
    if s.sts.is_none()
        && (!drop_stale
            || (!fwin.iter().any(|p| is_stale_nan(p.f))
                && !hwin.iter().any(|p| is_stale_nan(p.h.sum))))
    {
        out.floats.extend_from_slice(fwin);
        out.hists.extend_from_slice(hwin);
        return Some(None);
    }
    let (keep_f, keep_h, sts) = unstale(s, fa..fb, ha..hb)?;
    out.floats.extend(keep_f.iter().map(|&i| s.floats[i]));
    out.hists.extend(keep_h.iter().map(|&i| s.hists[i].clone()));
    Some(sts)
}

/// The positions in `floats[f]` and `hists[h]` of `s` that are not stale
/// markers, with their start timestamps; `None` when none is left.
fn unstale(
    s: &SeriesData,
    f: std::ops::Range<usize>,
    h: std::ops::Range<usize>,
) -> Option<(Vec<usize>, Vec<usize>, Option<StartTimestamps>)> {
    let keep_f: Vec<usize> = f.filter(|&i| !is_stale_nan(s.floats[i].f)).collect();
    let keep_h: Vec<usize> = h.filter(|&i| !is_stale_nan(s.hists[i].h.sum)).collect();
    if keep_f.is_empty() && keep_h.is_empty() {
        return None;
    }
    let at = |v: &[i64], i: usize| v.get(i).copied().unwrap_or(0);
    let sts = s.sts.as_ref().map(|x| StartTimestamps {
        floats: keep_f.iter().map(|&i| at(&x.floats, i)).collect(),
        histograms: keep_h.iter().map(|&i| at(&x.histograms, i)).collect(),
    });
    Some((keep_f, keep_h, sts))
}

/// `points.partition_point(|p| p.t <= bound)`, searched from `hint` (the
/// answer for an earlier, usually smaller, bound): galloping forward when the
/// bound moved forward, a binary search below `hint` otherwise.
pub(crate) fn seek(points: &[FPoint], hint: usize, bound: i64) -> usize {
    let len = points.len();
    let h = hint.min(len);
    if h > 0 && points[h - 1].t > bound {
        return points[..h].partition_point(|p| p.t <= bound);
    }
    let mut step = 1;
    while h + step <= len && points[h + step - 1].t <= bound {
        step *= 2;
    }
    let lo = h + step / 2;
    let hi = (h + step).min(len);
    lo + points[lo..hi].partition_point(|p| p.t <= bound)
}

pub(crate) fn key<T>(x: &T) -> usize {
    x as *const T as usize
}

impl<'a, S: Storage> Evaluator<'a, S> {
    fn new(
        storage: &'a S,
        opts: &'a EngineOpts,
        src: &'a str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Self {
        Evaluator {
            storage,
            opts,
            src,
            start,
            end,
            step,
            grid: Grid {
                lo: start,
                hi: end,
                step,
            },
            data: HashMap::new(),
            sub_cache: HashMap::new(),
            info_data: HashMap::new(),
            hstats: HashMap::new(),
            cursors: HashMap::new(),
            group_keys: HashMap::new(),
            bin_cache: HashMap::new(),
            sub_slots: HashMap::new(),
            batchable: Default::default(),
            batchable_inner: Default::default(),
            batches: HashMap::new(),
            counter_names: Default::default(),
            ann: Annotations::default(),
            step_samples: 0,
            output_samples: 0,
        }
    }

    /// An evaluator for steps `lo..=hi` of this one's query, sharing its
    /// preloaded data and batching marks; its caches start empty.
    fn fork(&self, lo: i64, hi: i64) -> Evaluator<'a, S> {
        let mut e = Evaluator::new(
            self.storage,
            self.opts,
            self.src,
            self.start,
            self.end,
            self.step,
        );
        (e.grid.lo, e.grid.hi) = (lo, hi);
        // Own copies of the label sets: results hold clones of them, and
        // evaluators on several cores counting references on the same
        // label sets would fight over those cache lines.
        e.data = self
            .data
            .iter()
            .map(|(k, d)| {
                let own = d
                    .iter()
                    .map(|s| SeriesData {
                        labels: s.labels.unshared(),
                        floats: s.floats.clone(),
                        hists: s.hists.clone(),
                        sts: s.sts.clone(),
                    })
                    .collect();
                (*k, Arc::new(own))
            })
            .collect();
        e.info_data = self.info_data.clone();
        for k in self.hstats.keys() {
            if let Some(d) = e.data.get(k) {
                e.hstats.insert(*k, crate::histstats::StatsSelector::new(d));
            }
        }
        e.batchable = self.batchable.clone();
        e.batchable_inner = self.batchable_inner.clone();
        e
    }

    /// Marks the calls whose range functions are computed ahead (see
    /// `funcs::batched`): outside subqueries in `batchable`, inside them
    /// (plain range selector arguments only) in `batchable_inner`.
    fn mark_batchable(&mut self, e: &Expr) {
        self.mark_calls(e, false);
    }

    fn mark_calls(&mut self, e: &Expr, inner: bool) {
        match e {
            Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => self.mark_calls(expr, inner),
            Expr::Binary(b) => {
                self.mark_calls(&b.lhs, inner);
                self.mark_calls(&b.rhs, inner);
            }
            Expr::Aggregate(a) => {
                self.mark_calls(&a.expr, inner);
                if let Some(p) = &a.param {
                    self.mark_calls(p, inner);
                }
            }
            Expr::Call(c) => {
                if inner {
                    self.batchable_inner.insert(key(c));
                } else {
                    self.batchable.insert(key(c));
                }
                for a in &c.args {
                    self.mark_calls(a, inner);
                }
            }
            Expr::Subquery(sq) => self.mark_calls(&sq.expr, true),
            _ => {}
        }
    }

    /// Whether a selector is read as histogram statistics (`histstats.rs`).
    pub(crate) fn has_hstats(&self, vs: &VectorSelector) -> bool {
        self.hstats.contains_key(&key(vs))
    }

    /// Whether `metric`'s name is still to be checked for a counter suffix
    /// in this query; marks it checked.
    pub(crate) fn counter_name_unchecked(&mut self, metric: &Labels) -> bool {
        if self.counter_names.contains_key(&metric.shared_id()) {
            return false;
        }
        if self.counter_names.len() > 1 << 20 {
            self.counter_names.clear();
        }
        self.counter_names
            .insert(metric.shared_id(), metric.clone());
        true
    }

    /// Resolves a duration expression to milliseconds.
    pub fn duration_ms(&self, d: &DurationExpr) -> Result<i64, EvalError> {
        let secs = self.duration_secs(d)?;
        let ms = (secs * 1000.0).round();
        if !ms.is_finite() || ms.abs() > 9.2e18 {
            return Err(EvalError::Execution(format!(
                "duration out of range: {secs}s"
            )));
        }
        Ok(ms as i64)
    }

    fn duration_secs(&self, d: &DurationExpr) -> Result<f64, EvalError> {
        Ok(match d {
            DurationExpr::Number(v) => *v,
            DurationExpr::Step => self.step as f64 / 1000.0,
            DurationExpr::Range => (self.end - self.start) as f64 / 1000.0,
            DurationExpr::MinOf(a, b) => self.duration_secs(a)?.min(self.duration_secs(b)?),
            DurationExpr::MaxOf(a, b) => self.duration_secs(a)?.max(self.duration_secs(b)?),
            DurationExpr::Neg(a) => -self.duration_secs(a)?,
            DurationExpr::Binary(op, a, b) => {
                let (x, y) = (self.duration_secs(a)?, self.duration_secs(b)?);
                match op {
                    BinOp::Add => x + y,
                    BinOp::Sub => x - y,
                    BinOp::Mul => x * y,
                    BinOp::Div => {
                        if y == 0.0 {
                            return Err(EvalError::Execution(
                                "division by zero in duration expression".into(),
                            ));
                        }
                        x / y
                    }
                    BinOp::Mod => {
                        if y == 0.0 {
                            return Err(EvalError::Execution(
                                "modulo by zero in duration expression".into(),
                            ));
                        }
                        x % y
                    }
                    BinOp::Pow => x.powf(y),
                    _ => return Err(EvalError::Execution("invalid duration expression".into())),
                }
            }
        })
    }

    pub(crate) fn at_ms(&self, at: AtModifier) -> i64 {
        match at {
            AtModifier::Timestamp(t) => t,
            AtModifier::Start => self.start,
            AtModifier::End => self.end,
        }
    }

    /// Selects every selector's data for the whole span the query needs.
    fn preload(&mut self, e: &Expr) -> Result<(), EvalError> {
        self.preload_in(e, None, 0, 0)?;
        for k in crate::histstats::stats_selectors(e) {
            if let Some(d) = self.data.get(&k) {
                let sel = crate::histstats::StatsSelector::new(d);
                self.hstats.insert(k, sel);
            }
        }
        Ok(())
    }

    /// `at`: an enclosing subquery's `@`; `sub_off`/`sub_range`: the sums of
    /// enclosing subqueries' offsets and ranges.
    fn preload_in(
        &mut self,
        e: &Expr,
        at: Option<i64>,
        sub_off: i64,
        sub_range: i64,
    ) -> Result<(), EvalError> {
        match e {
            Expr::Number { .. } | Expr::String { .. } => Ok(()),
            Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => {
                self.preload_in(expr, at, sub_off, sub_range)
            }
            Expr::Selector(vs) => {
                // `smoothed` interpolates towards the next sample, up to a
                // lookback ahead.
                let ahead = match vs.mode {
                    RangeMode::Smoothed => self.opts.lookback_ms,
                    _ => 0,
                };
                let lb = self.opts.lookback_ms;
                self.load(vs, at, sub_off, sub_range, lb, ahead)
            }
            Expr::Matrix(m) => {
                let r = self.duration_ms(&m.range)?;
                // `anchored` needs the sample before the window (up to a
                // lookback back), `smoothed` also the one after it.
                let lb = self.opts.lookback_ms;
                let (r, ahead) = match m.mode {
                    RangeMode::Plain => (r, 0),
                    RangeMode::Anchored => (r.saturating_add(lb), 0),
                    RangeMode::Smoothed => (r.saturating_add(lb), lb),
                };
                self.load(&m.vs, at, sub_off, sub_range, r, ahead)
            }
            Expr::Subquery(sq) => {
                let off = sq
                    .offset
                    .as_ref()
                    .map(|d| self.duration_ms(d))
                    .transpose()?
                    .unwrap_or(0);
                let r = self.duration_ms(&sq.range)?;
                let at = sq.at.map(|a| self.at_ms(a)).or(at);
                let step = sq
                    .step
                    .as_ref()
                    .map(|d| self.duration_ms(d))
                    .transpose()?
                    .unwrap_or(self.opts.default_subquery_step_ms);
                // An `@` on the subquery drops the enclosing subqueries'
                // offsets and ranges (upstream `subqueryTimes`).
                let (sub_off, sub_range) = match sq.at {
                    Some(_) => (0, 0),
                    None => (sub_off, sub_range),
                };
                self.preload_in(&sq.expr, at, sub_off + off, sub_range + r + step)
            }
            Expr::Binary(b) => {
                self.preload_in(&b.lhs, at, sub_off, sub_range)?;
                self.preload_in(&b.rhs, at, sub_off, sub_range)
            }
            Expr::Call(c) => {
                for (i, a) in c.args.iter().enumerate() {
                    // `info`'s second argument only names labels; it is not selected.
                    if c.func.name == "info" && i == 1 {
                        continue;
                    }
                    self.preload_in(a, at, sub_off, sub_range)?;
                }
                if c.func.name == "info" {
                    crate::info::preload(self, c, at, sub_off, sub_range)?;
                }
                Ok(())
            }
            Expr::Aggregate(a) => {
                if let Some(p) = &a.param {
                    self.preload_in(p, at, sub_off, sub_range)?;
                }
                self.preload_in(&a.expr, at, sub_off, sub_range)
            }
        }
    }

    fn load(
        &mut self,
        vs: &VectorSelector,
        at: Option<i64>,
        sub_off: i64,
        sub_range: i64,
        range: i64,
        ahead: i64,
    ) -> Result<(), EvalError> {
        let off = vs
            .offset
            .as_ref()
            .map(|d| self.duration_ms(d))
            .transpose()?
            .unwrap_or(0);
        let (s, e) = match vs.at.map(|a| self.at_ms(a)).or(at) {
            Some(t) => (t, t),
            None => (self.start, self.end),
        };
        // The selector's own `@` overrides every enclosing subquery's
        // offset and range.
        let (sub_off, sub_range) = match vs.at {
            Some(_) => (0, 0),
            None => (sub_off, sub_range),
        };
        let mint = s
            .saturating_sub(sub_off)
            .saturating_sub(sub_range)
            .saturating_sub(off)
            .saturating_sub(range);
        let maxt = e
            .saturating_sub(sub_off)
            .saturating_sub(off)
            .saturating_add(ahead);
        let k = key(vs);
        let (mint, maxt) = match self.data.get(&k) {
            // Selected before from another path through the tree (never: one
            // node, one path); widen if it happens.
            Some(_) => (i64::MIN, i64::MAX),
            None => (mint, maxt),
        };
        let series = self
            .storage
            .select(&vs.matchers, mint, maxt)
            .map_err(|e| EvalError::Storage(e.to_string()))?;
        let data = series.into_iter().map(SeriesData::from_storage).collect();
        self.data.insert(k, Arc::new(data));
        Ok(())
    }

    /// Series matching `matchers` with their samples in `[mint, maxt]`.
    pub(crate) fn select_data(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<SeriesData>, EvalError> {
        let series = self
            .storage
            .select(matchers, mint, maxt)
            .map_err(|e| EvalError::Storage(e.to_string()))?;
        Ok(series.into_iter().map(SeriesData::from_storage).collect())
    }

    pub(crate) fn selector_data(
        &mut self,
        vs: &VectorSelector,
    ) -> Result<Arc<Vec<SeriesData>>, EvalError> {
        if let Some(d) = self.data.get(&key(vs)) {
            return Ok(d.clone());
        }
        // Not preloaded (an expression built after preload): load everything.
        let series = self
            .storage
            .select(&vs.matchers, i64::MIN, i64::MAX)
            .map_err(|e| EvalError::Storage(e.to_string()))?;
        let data: Vec<SeriesData> = series.into_iter().map(SeriesData::from_storage).collect();
        let d = Arc::new(data);
        self.data.insert(key(vs), d.clone());
        Ok(d)
    }

    /// Starts a top-level evaluation step: polls the interrupt, forgets the
    /// previous step's loaded samples.
    pub(crate) fn begin_step(&mut self) -> Result<(), EvalError> {
        self.poll()?;
        self.step_samples = 0;
        Ok(())
    }

    /// Stops the query if the caller's interrupt says so.
    pub(crate) fn poll(&self) -> Result<(), EvalError> {
        match self.opts.interrupt.as_ref().and_then(|f| f()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Counts `n` more samples held for this step against `max_samples`
    /// (Prometheus's `--query.max-samples`; the answer so far counts too).
    pub(crate) fn count(&mut self, n: usize) -> Result<(), EvalError> {
        self.step_samples = self.step_samples.saturating_add(n);
        if self.step_samples.saturating_add(self.output_samples) > self.opts.max_samples {
            return Err(EvalError::TooManySamples);
        }
        Ok(())
    }

    /// Evaluates `e` at time `t`.
    pub fn eval(&mut self, e: &Expr, t: i64) -> Result<IValue, EvalError> {
        match e {
            Expr::Number { val, .. } => Ok(IValue::Scalar(*val)),
            Expr::String { val, .. } => Ok(IValue::String(val.clone())),
            Expr::Paren { expr, .. } => self.eval(expr, t),
            Expr::Unary { neg, expr, .. } => {
                let v = self.eval(expr, t)?;
                if !neg {
                    return Ok(v);
                }
                Ok(match v {
                    IValue::Scalar(v) => IValue::Scalar(-v),
                    IValue::Vector(mut vec) => {
                        for s in &mut vec {
                            s.f = -s.f;
                            if let Some(h) = &s.h {
                                s.h = Some(Arc::new(h.mul(-1.0)));
                            }
                            s.drop_name = true;
                        }
                        IValue::Vector(vec)
                    }
                    other => other,
                })
            }
            Expr::Selector(vs) => {
                let v = self.eval_selector(vs, t)?;
                self.count(v.len())?;
                Ok(IValue::Vector(v))
            }
            Expr::Matrix(m) => {
                let v = self.eval_matrix(m, t)?;
                self.count(v.iter().map(|s| s.floats.len() + s.hists.len()).sum())?;
                Ok(IValue::Matrix(v))
            }
            Expr::Subquery(sq) => {
                let v = self.eval_subquery(sq, t)?;
                self.count(v.iter().map(|s| s.floats.len() + s.hists.len()).sum())?;
                Ok(IValue::Matrix(v))
            }
            Expr::Binary(b) => crate::binary::eval_binary(self, b, t),
            Expr::Call(c) => crate::funcs::eval_call(self, c, t),
            Expr::Aggregate(a) => crate::aggregate::eval_aggregate(self, a, t),
        }
    }

    /// The reference time of a selector evaluated at `t`.
    pub(crate) fn ref_time(&self, vs: &VectorSelector, t: i64) -> Result<i64, EvalError> {
        let base = vs.at.map(|a| self.at_ms(a)).unwrap_or(t);
        let off = vs
            .offset
            .as_ref()
            .map(|d| self.duration_ms(d))
            .transpose()?
            .unwrap_or(0);
        Ok(base - off)
    }

    /// An instant selector at `t`: the newest sample in the lookback window.
    pub fn eval_selector(&mut self, vs: &VectorSelector, t: i64) -> Result<Vec<Sample>, EvalError> {
        if vs.mode == RangeMode::Smoothed {
            return crate::extended::smoothed_selector(self, vs, t);
        }
        Ok(self
            .eval_selector_st(vs, t)?
            .into_iter()
            .map(|(s, _)| s)
            .collect())
    }

    /// [`Evaluator::eval_selector`] without `smoothed`, each sample with its
    /// start timestamp (0 when unknown).
    pub(crate) fn eval_selector_st(
        &mut self,
        vs: &VectorSelector,
        t: i64,
    ) -> Result<Vec<(Sample, i64)>, EvalError> {
        let rt = self.ref_time(vs, t)?;
        let data = self.selector_data(vs)?;
        let lo = rt - self.opts.lookback_ms;
        let lookback = self.opts.lookback_ms;
        let mut stats = self.hstats.get_mut(&key(vs));
        let cursors = self.cursors.entry((key(vs), false)).or_default();
        cursors.resize(data.len(), (0, 0));
        let mut out = Vec::with_capacity(data.len());
        for (si, s) in data.iter().enumerate() {
            let run = stats
                .as_deref_mut()
                .map(|x| (x.advance(si, rt, lookback, false), &*x));
            let fi = seek(&s.floats, cursors[si].1, rt);
            cursors[si].1 = fi;
            let hi = s.hists.partition_point(|p| p.t <= rt);
            let f = fi.checked_sub(1).filter(|&i| s.floats[i].t > lo);
            let h = hi.checked_sub(1).filter(|&i| s.hists[i].t > lo);
            let use_hist = match (f, h) {
                (Some(f), Some(h)) => s.hists[h].t > s.floats[f].t,
                (None, Some(_)) => true,
                _ => false,
            };
            if use_hist {
                let Some(i) = h else { continue };
                let p = &s.hists[i];
                if is_stale_nan(p.h.sum) {
                    continue;
                }
                let st = s.sts.as_ref().and_then(|x| x.histograms.get(i).copied());
                let h = run
                    .and_then(|(r, x)| x.hist(si, i, r))
                    .unwrap_or_else(|| p.h.clone());
                out.push((
                    Sample {
                        metric: s.labels.clone(),
                        t: p.t,
                        f: 0.0,
                        h: Some(h),
                        drop_name: false,
                    },
                    st.unwrap_or(0),
                ));
            } else if let Some(i) = f {
                let p = s.floats[i];
                if is_stale_nan(p.f) {
                    continue;
                }
                let st = s.sts.as_ref().and_then(|x| x.floats.get(i).copied());
                out.push((
                    Sample {
                        metric: s.labels.clone(),
                        t: p.t,
                        f: p.f,
                        h: None,
                        drop_name: false,
                    },
                    st.unwrap_or(0),
                ));
            }
        }
        Ok(out)
    }

    /// A range selector at `t`: the points in `(rt - range, rt]`, stale
    /// markers removed. `anchored`/`smoothed` give the extended window
    /// (see `extended.rs`).
    pub fn eval_matrix(&mut self, m: &MatrixSelector, t: i64) -> Result<Vec<Series>, EvalError> {
        if m.mode != RangeMode::Plain {
            return crate::extended::matrix_value(self, m, t);
        }
        Ok(self
            .eval_matrix_st(m, t)?
            .into_iter()
            .map(|(s, _)| s)
            .collect())
    }

    /// A plain range selector's window, each series with its start
    /// timestamps (aligned with its points) when the store has them.
    pub(crate) fn eval_matrix_st(
        &mut self,
        m: &MatrixSelector,
        t: i64,
    ) -> Result<Vec<(Series, Option<StartTimestamps>)>, EvalError> {
        let rt = self.ref_time(&m.vs, t)?;
        let range = self.duration_ms(&m.range)?;
        let data = self.selector_data(&m.vs)?;
        let lo = rt - range;
        let mut stats = self.hstats.get_mut(&key(&m.vs));
        let cursors = self.cursors.entry((key(&m.vs), true)).or_default();
        cursors.resize(data.len(), (0, 0));
        let mut out = Vec::with_capacity(data.len());
        for (si, s) in data.iter().enumerate() {
            let run = stats
                .as_deref_mut()
                .map(|x| (x.advance(si, rt, range, true), &*x));
            let fa = seek(&s.floats, cursors[si].0, lo);
            let fb = seek(&s.floats, cursors[si].1.max(fa), rt);
            cursors[si] = (fa, fb);
            if run.is_none() {
                out.extend(window(s, lo, rt, fa, fb));
                continue;
            }
            let ha = s.hists.partition_point(|p| p.t <= lo);
            let hb = s.hists.partition_point(|p| p.t <= rt);
            let Some((keep_f, keep_h, sts)) = unstale(s, fa..fb, ha..hb) else {
                continue;
            };
            out.push((
                Series {
                    metric: s.labels.clone(),
                    floats: keep_f.iter().map(|&i| s.floats[i]).collect(),
                    hists: keep_h
                        .iter()
                        .map(|&i| match run.and_then(|(r, x)| x.hist(si, i, r)) {
                            Some(h) => HPoint { t: s.hists[i].t, h },
                            None => s.hists[i].clone(),
                        })
                        .collect(),
                    drop_name: false,
                },
                sts,
            ));
        }
        Ok(out)
    }

    /// A subquery at `t`: the inner expression at every aligned step in
    /// `(rt - range, rt]`.
    pub fn eval_subquery(&mut self, sq: &SubqueryExpr, t: i64) -> Result<Vec<Series>, EvalError> {
        let base = sq.at.map(|a| self.at_ms(a)).unwrap_or(t);
        let off = sq
            .offset
            .as_ref()
            .map(|d| self.duration_ms(d))
            .transpose()?
            .unwrap_or(0);
        let rt = base - off;
        let range = self.duration_ms(&sq.range)?;
        let step = self.subquery_step(sq)?;
        if step <= 0 {
            return Err(EvalError::Execution(
                "subquery step must be positive".into(),
            ));
        }
        let mut mixed = false;
        self.eval_subquery_window(sq, rt - range, rt, step, &mut mixed, None)
    }

    /// The subquery's step (the default evaluation interval when none is given).
    pub(crate) fn subquery_step(&self, sq: &SubqueryExpr) -> Result<i64, EvalError> {
        match &sq.step {
            Some(d) => self.duration_ms(d),
            None => Ok(self.opts.default_subquery_step_ms),
        }
    }

    /// A subquery's inner expression at every multiple of `step` in
    /// `(lo, rt]`, as series; `mixed_drop` is set when one series' points
    /// disagree on `drop_name`; `ranks` gets, per series, each point's time
    /// and its position in that step's inner vector (which orders series
    /// by first appearance in any window).
    pub(crate) fn eval_subquery_window(
        &mut self,
        sq: &SubqueryExpr,
        lo: i64,
        rt: i64,
        step: i64,
        mixed_drop: &mut bool,
        ranks: Option<&mut Vec<Vec<(i64, u32)>>>,
    ) -> Result<Vec<Series>, EvalError> {
        // First aligned step strictly after `lo`.
        let mut ts = lo.div_euclid(step) * step;
        if ts <= lo {
            ts += step;
        }
        // Series in order of appearance, each label set numbered once per
        // query and node (`SubSlots`), so steps that share inner results
        // hash no labels.
        let mut out: Vec<Series> = Vec::new();
        let k = key(sq);
        let mut slots = self.sub_slots.remove(&k).unwrap_or_default();
        if slots.by_id.len() > 1 << 20 {
            slots = SubSlots::default();
        }
        let mut pos_of: Vec<usize> = vec![usize::MAX; slots.by_labels.len()];
        // The inner steps are the grid while they are evaluated.
        let outer = self.grid;
        self.grid = Grid {
            lo: ts,
            hi: ts + (rt - ts).div_euclid(step) * step,
            step,
        };
        let r = self.subquery_steps(
            sq,
            k,
            ts,
            rt,
            step,
            &mut slots,
            &mut pos_of,
            &mut out,
            mixed_drop,
            ranks,
        );
        self.grid = outer;
        self.sub_slots.insert(k, slots);
        r?;
        Ok(out)
    }

    /// The loop of [`Self::eval_subquery_window`].
    #[allow(clippy::too_many_arguments)]
    fn subquery_steps(
        &mut self,
        sq: &SubqueryExpr,
        k: usize,
        mut ts: i64,
        rt: i64,
        step: i64,
        slots: &mut SubSlots,
        pos_of: &mut Vec<usize>,
        out: &mut Vec<Series>,
        mixed_drop: &mut bool,
        mut ranks: Option<&mut Vec<Vec<(i64, u32)>>>,
    ) -> Result<(), EvalError> {
        while ts <= rt {
            self.poll()?;
            if !self.sub_cache.contains_key(&(k, ts)) {
                let v = self.eval(&sq.expr, ts)?;
                self.sub_cache.insert((k, ts), v);
            }
            let Some(v) = self.sub_cache.get(&(k, ts)) else {
                return Err(EvalError::Execution("subquery step not cached".into()));
            };
            match v {
                IValue::Scalar(f) => {
                    let i = slots.place(&Labels::default(), pos_of, out);
                    out[i].floats.push(FPoint { t: ts, f: *f });
                    if let Some(rk) = ranks.as_deref_mut() {
                        rk.resize(out.len(), Vec::new());
                        rk[i].push((ts, 0));
                    }
                }
                IValue::Vector(vec) => {
                    for (rank, s) in vec.iter().enumerate() {
                        let i = slots.place(&s.metric, pos_of, out);
                        if let Some(rk) = ranks.as_deref_mut() {
                            rk.resize(out.len(), Vec::new());
                            rk[i].push((ts, rank as u32));
                        }
                        let e = &mut out[i];
                        if (!e.floats.is_empty() || !e.hists.is_empty())
                            && e.drop_name != s.drop_name
                        {
                            *mixed_drop = true;
                        }
                        e.drop_name |= s.drop_name;
                        match &s.h {
                            Some(h) => {
                                // A subquery may skip samples, so "no counter
                                // reset since the previous sample" no longer
                                // holds between its points (as upstream).
                                let h = if h.counter_reset_hint
                                    == emberlens_model::CounterResetHint::NotReset
                                {
                                    let mut u = (**h).clone();
                                    u.counter_reset_hint =
                                        emberlens_model::CounterResetHint::Unknown;
                                    Arc::new(u)
                                } else {
                                    h.clone()
                                };
                                e.hists.push(HPoint { t: ts, h })
                            }
                            None => e.floats.push(FPoint { t: ts, f: s.f }),
                        }
                    }
                }
                _ => {
                    return Err(EvalError::Execution(
                        "subquery expression did not evaluate to a vector".into(),
                    ));
                }
            }
            ts += step;
        }
        Ok(())
    }

    /// Evaluates an argument expected to be a scalar.
    pub fn eval_scalar(&mut self, e: &Expr, t: i64) -> Result<f64, EvalError> {
        match self.eval(e, t)? {
            IValue::Scalar(v) => Ok(v),
            _ => Err(EvalError::Execution("expected a scalar".into())),
        }
    }

    /// Evaluates an argument expected to be an instant vector.
    pub fn eval_vector(&mut self, e: &Expr, t: i64) -> Result<Vec<Sample>, EvalError> {
        match self.eval(e, t)? {
            IValue::Vector(v) => Ok(v),
            _ => Err(EvalError::Execution("expected an instant vector".into())),
        }
    }

    /// Evaluates an argument expected to be a range vector.
    pub fn eval_range(&mut self, e: &Expr, t: i64) -> Result<Vec<Series>, EvalError> {
        match self.eval(e, t)? {
            IValue::Matrix(v) => Ok(v),
            _ => Err(EvalError::Execution("expected a range vector".into())),
        }
    }
}

/// Matchers of a selector, for functions like `absent` that read them.
pub(crate) fn equality_labels(matchers: &[Matcher]) -> Labels {
    // As upstream: the first equality matcher of a name sets it, any later
    // matcher of that name (or a non-equality one) removes it.
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut has: Vec<&str> = Vec::new();
    for m in matchers {
        if m.name == "__name__" {
            continue;
        }
        if m.op == emberlens_model::MatchOp::Equal && !has.contains(&m.name.as_str()) {
            pairs.push((m.name.clone(), m.value.clone()));
            has.push(&m.name);
        } else {
            pairs.retain(|(n, _)| *n != m.name);
        }
    }
    Labels::from_pairs(pairs)
}

/// A histogram sample's value as a float sample would need it (helper for
/// functions that accept either).
#[allow(dead_code)]
pub(crate) fn hist_of(s: &Sample) -> Option<&FloatHistogram> {
    s.h.as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seek_matches_partition_point_from_any_hint() {
        let pts: Vec<FPoint> = [10, 20, 20, 30, 45, 60, 61, 90]
            .iter()
            .map(|&t| FPoint { t, f: 0.0 })
            .collect();
        for bound in [0, 10, 19, 20, 44, 45, 61, 89, 90, 1000] {
            let want = pts.partition_point(|p| p.t <= bound);
            for hint in 0..=pts.len() + 2 {
                assert_eq!(seek(&pts, hint, bound), want, "bound {bound} hint {hint}");
            }
        }
        assert_eq!(seek(&[], 3, 5), 0);
    }
}
