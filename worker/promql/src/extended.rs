//! Prometheus 3's experimental extended range selectors: `foo[5m] anchored`,
//! `foo[5m] smoothed` and the instant selector `foo smoothed`.
//!
//! Why: `rate` and friends extrapolate from the samples inside the window,
//! which over- or under-counts when samples don't line up with the window's
//! edges. The modifiers instead take the counter's value *at* the edges:
//!
//! - **anchored**: the left edge is the last sample at or before the
//!   window's start (looked for up to one lookback delta before it), the
//!   right edge the last sample in the window. Allowed with `changes`,
//!   `delta`, `increase`, `rate`, `resets`.
//! - **smoothed**: both edges are linearly interpolated between the samples
//!   around them (the right one looked for up to a lookback after the
//!   window's end); an edge with a sample on only one side takes that
//!   sample. Allowed with `delta`, `increase`, `rate`.
//!
//! `increase` is then `right - left` plus, for counters, the value before
//! every reset among the samples strictly inside the window (and a reset
//! between the last inner sample and `right`); `rate` divides that by the
//! range, `delta` skips the reset correction. No extrapolation happens.
//!
//! Edge cases, as upstream (`extendedRate`, `extendedHistogramRate`,
//! `extendFloats` in Prometheus's `promql`):
//! - no sample after the window's start: no result; for smoothed, also no
//!   result when every sample is after the window's end;
//! - a counter reset between the two samples an edge is interpolated
//!   between makes the interpolation start from zero (`rate`/`increase`
//!   only; the instant `smoothed` selector and `delta` interpolate floats
//!   linearly, histograms as counters unless the later one is a gauge);
//! - a window mixing floats and histograms warns and gives nothing; so does
//!   one mixing exponential and custom-bucket histograms;
//! - histograms: the reset that the left interpolation already spans is not
//!   counted again, and the right edge is never compared with the sample it
//!   was taken from (it inherits that sample's reset hint);
//! - `changes`/`resets` with `anchored` walk floats and histograms in time
//!   order from the anchor; a float/histogram switch counts as a change and
//!   a reset.
//! - A range selector with a modifier evaluated on its own (not as a
//!   function argument) gives the window with a synthetic point at each
//!   edge holding the edge value (upstream's `extendFloats`).

use std::sync::Arc;

use emberlens_model::{CounterResetHint, FloatHistogram, Storage, is_stale_nan};

use crate::ast::{Call, MatrixSelector, PosRange, RangeMode, VectorSelector};
use crate::engine::{Evaluator, IValue};
use crate::error::EvalError;
use crate::value::{FPoint, HPoint, Sample, Series};

/// The window `(start, end]` of a range selector at `t`, and its length.
fn window<S: Storage>(
    ev: &Evaluator<'_, S>,
    m: &MatrixSelector,
    t: i64,
) -> Result<(i64, i64, i64), EvalError> {
    let end = ev.ref_time(&m.vs, t)?;
    let range = ev.duration_ms(&m.range)?;
    Ok((end.saturating_sub(range), end, range))
}

/// Every series' points in `(lo, hi]`, staleness markers dropped unless
/// `keep_stale`.
fn raw_points<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    vs: &VectorSelector,
    lo: i64,
    hi: i64,
    keep_stale: bool,
) -> Result<Vec<Series>, EvalError> {
    let data = ev.selector_data(vs)?;
    let mut out = Vec::with_capacity(data.len());
    for s in data.iter() {
        let fa = s.floats.partition_point(|p| p.t <= lo);
        let fb = s.floats.partition_point(|p| p.t <= hi);
        let ha = s.hists.partition_point(|p| p.t <= lo);
        let hb = s.hists.partition_point(|p| p.t <= hi);
        let floats: Vec<FPoint> = s.floats[fa..fb.max(fa)]
            .iter()
            .filter(|p| keep_stale || !is_stale_nan(p.f))
            .copied()
            .collect();
        let hists: Vec<HPoint> = s.hists[ha..hb.max(ha)]
            .iter()
            .filter(|p| keep_stale || !is_stale_nan(p.h.sum))
            .cloned()
            .collect();
        out.push(Series {
            metric: s.labels.clone(),
            floats,
            hists,
            drop_name: false,
        });
    }
    Ok(out)
}

/// The points a modified range selector needs around its window: one
/// lookback before the start, and for `smoothed` one after the end.
fn extended_points<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    m: &MatrixSelector,
    start: i64,
    end: i64,
) -> Result<Vec<Series>, EvalError> {
    let lb = ev.opts.lookback_ms;
    let hi = match m.mode {
        RangeMode::Smoothed => end.saturating_add(lb),
        _ => end,
    };
    raw_points(ev, &m.vs, start.saturating_sub(lb), hi, false)
}

/// Go's `sort.Search(n, pred)`: the first index in `[0, n)` where `pred`
/// holds (the predicate is monotone), or `n`.
fn search(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// The indexes of the samples that make the edges: `first` is the last
/// sample at or before `start` (or 0), `last` the last sample (anchored) or
/// the first at or after `end` (smoothed, else the last). `None` when no
/// sample is after `start`, or (smoothed) none is at or before `end`.
fn edge_indexes(ts: &[i64], start: i64, end: i64, smoothed: bool) -> Option<(usize, usize)> {
    let n = ts.len();
    if n == 0 {
        return None;
    }
    let mut last = n - 1;
    let first = search(last, |i| ts[i] > start).saturating_sub(1);
    if smoothed {
        last = search(last, |i| ts[i] >= end);
    }
    // `first > last` only for a negative range (start after end).
    if first > last || ts[last] <= start || (smoothed && ts[first] > end) {
        return None;
    }
    Some((first, last))
}

/// Linear interpolation of two float points at `t`; for counters a drop
/// between them is a reset, so the line starts from zero.
fn interpolate(p1: FPoint, p2: FPoint, t: i64, is_counter: bool) -> f64 {
    let y1 = if is_counter && p2.f < p1.f { 0.0 } else { p1.f };
    if p2.t == p1.t {
        return p2.f;
    }
    y1 + (p2.f - y1) * (t - p1.t) as f64 / (p2.t - p1.t) as f64
}

/// The float edge values (`left`, `right`) for `first`/`last`.
fn float_edges(
    f: &[FPoint],
    first: usize,
    last: usize,
    start: i64,
    end: i64,
    smoothed: bool,
    is_counter: bool,
) -> (f64, f64) {
    let left = match f.get(first + 1) {
        Some(&next) if smoothed && f[first].t < start => {
            interpolate(f[first], next, start, is_counter)
        }
        _ => f[first].f,
    };
    let right = if smoothed && last > 0 && f[last].t > end {
        interpolate(f[last - 1], f[last], end, is_counter)
    } else {
        f[last].f
    };
    (left, right)
}

/// The histogram at `t` between two points: a copy of an end point when `t`
/// is on it; for counters with a reset between them, the later one scaled
/// (the counter restarted from zero); else the straight line.
fn interpolate_hist(p1: &HPoint, p2: &HPoint, t: i64, is_counter: bool) -> Option<FloatHistogram> {
    if t == p1.t {
        return Some((*p1.h).clone());
    }
    if t == p2.t || p2.t == p1.t {
        return Some((*p2.h).clone());
    }
    let fraction = (t - p1.t) as f64 / (p2.t - p1.t) as f64;
    if is_counter && p2.h.detect_reset(&p1.h) {
        return Some(p2.h.mul(fraction));
    }
    let d = p2.h.sub(&p1.h).ok()?;
    d.mul(fraction).add(&p1.h).ok()
}

fn mix_exp_custom_msg(name: &str) -> String {
    format!(
        "vector contains a mix of histograms with exponential and custom buckets schemas for metric name {name:?}"
    )
}

fn mix_float_hist_msg(name: &str) -> String {
    format!("encountered a mix of histograms and floats for metric name {name:?}")
}

/// `rate`/`increase`/`delta` over an anchored or smoothed float window.
#[allow(clippy::too_many_arguments)]
fn extended_rate(
    f: &[FPoint],
    start: i64,
    end: i64,
    range: i64,
    smoothed: bool,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let ts: Vec<i64> = f.iter().map(|p| p.t).collect();
    let (first, last) = edge_indexes(&ts, start, end, smoothed)?;
    let (left, right) = float_edges(f, first, last, start, end, smoothed, is_counter);
    let mut result = right - left;
    if is_counter {
        // Only samples strictly inside the window: the edges already
        // account for resets across them.
        let a = if f[first].t <= start {
            first + 1
        } else {
            first
        };
        let b = if f[last].t >= end {
            last.checked_sub(1)
        } else {
            Some(last)
        };
        let mut prev = left;
        let mut correction = 0.0;
        if let Some(b) = b {
            for p in f.get(a..=b).unwrap_or(&[]) {
                if p.f < prev {
                    correction += prev;
                }
                prev = p.f;
            }
        }
        if right < prev {
            correction += prev;
        }
        result += correction;
    }
    if is_rate {
        result /= range as f64 / 1000.0;
    }
    Some(result)
}

/// `rate`/`increase`/`delta` over an anchored or smoothed histogram window.
#[allow(clippy::too_many_arguments)]
fn extended_histogram_rate<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    h: &[HPoint],
    name: &str,
    pos: PosRange,
    start: i64,
    end: i64,
    range: i64,
    smoothed: bool,
    is_counter: bool,
    is_rate: bool,
) -> Option<FloatHistogram> {
    let ts: Vec<i64> = h.iter().map(|p| p.t).collect();
    let (first, last) = edge_indexes(&ts, start, end, smoothed)?;
    let window = &h[first..=last];
    let custom = window[0].h.uses_custom_buckets();
    let mut not_counter = false;
    for p in window {
        if p.h.uses_custom_buckets() != custom {
            ev.ann.warn(ev.src, pos, mix_exp_custom_msg(name));
            return None;
        }
        if is_counter && p.h.counter_reset_hint == CounterResetHint::Gauge {
            not_counter = true;
        }
    }
    if not_counter {
        ev.ann.warn(
            ev.src,
            pos,
            format!("this native histogram metric is not a counter: {name:?}"),
        );
    }
    let left = match h.get(first + 1) {
        Some(next) if smoothed && h[first].t < start => {
            interpolate_hist(&h[first], next, start, is_counter)
        }
        _ => Some((*h[first].h).clone()),
    };
    let right = if smoothed && last > 0 && h[last].t > end {
        interpolate_hist(&h[last - 1], &h[last], end, is_counter)
    } else {
        Some((*h[last].h).clone())
    };
    let (Some(left), Some(right)) = (left, right) else {
        ev.ann.warn(ev.src, pos, mix_exp_custom_msg(name));
        return None;
    };
    if !is_counter
        && (left.counter_reset_hint != CounterResetHint::Gauge
            || right.counter_reset_hint != CounterResetHint::Gauge)
    {
        ev.ann.warn(
            ev.src,
            pos,
            format!("this native histogram metric is not a gauge: {name:?}"),
        );
    }
    let Ok(mut result) = right.sub(&left) else {
        ev.ann.warn(ev.src, pos, mix_exp_custom_msg(name));
        return None;
    };
    if is_counter {
        // The first sample is `left`; when the left interpolation spanned a
        // reset, the sample after it is accounted for too and becomes the
        // reference for what follows. The last sample is always excluded:
        // `right` carries its reset hint.
        let mut a = first + 1;
        let mut prev: FloatHistogram = left.clone();
        if smoothed
            && h[first].t < start
            && let Some(next) = h.get(first + 1)
            && next.h.detect_reset(&h[first].h)
        {
            prev = (*next.h).clone();
            a += 1;
        }
        let mut correction: Option<FloatHistogram> = None;
        let add = |c: &mut Option<FloatHistogram>, x: &FloatHistogram| -> bool {
            match c {
                None => {
                    *c = Some(x.clone());
                    true
                }
                Some(acc) => match acc.add(x) {
                    Ok(v) => {
                        *acc = v;
                        true
                    }
                    Err(_) => false,
                },
            }
        };
        if a <= last {
            for p in &h[a..last] {
                if p.h.detect_reset(&prev) && !add(&mut correction, &prev) {
                    ev.ann.warn(ev.src, pos, mix_exp_custom_msg(name));
                    return None;
                }
                prev = (*p.h).clone();
            }
            if right.detect_reset(&prev) && !add(&mut correction, &prev) {
                ev.ann.warn(ev.src, pos, mix_exp_custom_msg(name));
                return None;
            }
        }
        if let Some(c) = correction {
            match result.add(&c) {
                Ok(v) => result = v,
                Err(_) => {
                    ev.ann.warn(ev.src, pos, mix_exp_custom_msg(name));
                    return None;
                }
            }
        }
    }
    if is_rate {
        result = result.div(range as f64 / 1000.0);
    }
    result.counter_reset_hint = CounterResetHint::Gauge;
    Some(result.compact(0))
}

/// The samples of a float/histogram window in time order, as `(t, value)`.
enum Point<'a> {
    F(f64),
    H(&'a FloatHistogram),
}

fn merged(s: &Series) -> Vec<(i64, Point<'_>)> {
    let mut out: Vec<(i64, Point<'_>)> = Vec::with_capacity(s.floats.len() + s.hists.len());
    let (mut i, mut j) = (0, 0);
    while i < s.floats.len() || j < s.hists.len() {
        let take_float = match (s.floats.get(i), s.hists.get(j)) {
            (Some(f), Some(h)) => f.t <= h.t,
            (Some(_), None) => true,
            _ => false,
        };
        if take_float {
            out.push((s.floats[i].t, Point::F(s.floats[i].f)));
            i += 1;
        } else {
            out.push((s.hists[j].t, Point::H(&s.hists[j].h)));
            j += 1;
        }
    }
    out
}

/// `changes` (or `resets`) over an anchored window: from the anchor (the
/// last sample at or before `start`) to the last sample.
fn anchored_count(s: &Series, start: i64, resets: bool) -> Option<f64> {
    let pts = merged(s);
    let ts: Vec<i64> = pts.iter().map(|p| p.0).collect();
    let (first, _) = edge_indexes(&ts, start, i64::MAX, false)?;
    let mut n = 0.0;
    for w in pts[first..].windows(2) {
        let hit = match (&w[0].1, &w[1].1) {
            (Point::F(a), Point::F(b)) => {
                if resets {
                    b < a
                } else {
                    a != b && !(a.is_nan() && b.is_nan())
                }
            }
            (Point::H(a), Point::H(b)) => {
                if resets {
                    b.detect_reset(a)
                } else {
                    !b.equals(a)
                }
            }
            _ => true,
        };
        if hit {
            n += 1.0;
        }
    }
    Some(n)
}

/// `rate`, `increase`, `delta`, `changes` or `resets` of an anchored or
/// smoothed range selector at `t` (the modifier was checked against the
/// function by the caller).
pub(crate) fn eval_call<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    c: &Call,
    m: &MatrixSelector,
    t: i64,
) -> Result<IValue, EvalError> {
    let name = c.func.name;
    let (start, end, range) = window(ev, m, t)?;
    let smoothed = m.mode == RangeMode::Smoothed;
    let pos = m.pos;
    let series = extended_points(ev, m, start, end)?;
    let mut out = Vec::with_capacity(series.len());
    for s in series {
        if s.floats.is_empty() && s.hists.is_empty() {
            continue;
        }
        let metric_name = s.metric.metric_name().to_string();
        let val: Option<(f64, Option<Arc<FloatHistogram>>)> = match name {
            "changes" | "resets" => anchored_count(&s, start, name == "resets").map(|n| (n, None)),
            _ => {
                let is_counter = name != "delta";
                let is_rate = name == "rate";
                if !s.floats.is_empty() && !s.hists.is_empty() {
                    ev.ann.warn(ev.src, pos, mix_float_hist_msg(&metric_name));
                    None
                } else if !s.hists.is_empty() {
                    extended_histogram_rate(
                        ev,
                        &s.hists,
                        &metric_name,
                        pos,
                        start,
                        end,
                        range,
                        smoothed,
                        is_counter,
                        is_rate,
                    )
                    .map(|h| (0.0, Some(Arc::new(h))))
                } else {
                    if is_counter
                        && !metric_name.is_empty()
                        && !["_total", "_sum", "_count", "_bucket"]
                            .iter()
                            .any(|suf| metric_name.ends_with(suf))
                    {
                        ev.ann.info(
                            ev.src,
                            pos,
                            format!("metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {metric_name:?}"),
                        );
                    }
                    extended_rate(&s.floats, start, end, range, smoothed, is_counter, is_rate)
                        .map(|f| (f, None))
                }
            }
        };
        let Some((f, h)) = val else { continue };
        out.push(Sample {
            metric: s.metric,
            t,
            f,
            h,
            drop_name: true,
        });
    }
    Ok(IValue::Vector(out))
}

/// An anchored or smoothed range selector as a value: the window's points
/// with a synthetic point at each edge (upstream's `extendFloats`, which
/// interpolates floats as gauges). Histograms get the same treatment,
/// interpolated as counters unless gauges.
pub(crate) fn matrix_value<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    m: &MatrixSelector,
    t: i64,
) -> Result<Vec<Series>, EvalError> {
    let (start, end, _) = window(ev, m, t)?;
    let smoothed = m.mode == RangeMode::Smoothed;
    let series = extended_points(ev, m, start, end)?;
    let mut out = Vec::with_capacity(series.len());
    for s in series {
        let floats = extend_floats(&s.floats, start, end, smoothed);
        let hists = extend_hists(&s.hists, start, end, smoothed);
        if floats.is_empty() && hists.is_empty() {
            continue;
        }
        out.push(Series {
            metric: s.metric,
            floats,
            hists,
            drop_name: false,
        });
    }
    Ok(out)
}

fn extend_floats(f: &[FPoint], start: i64, end: i64, smoothed: bool) -> Vec<FPoint> {
    let ts: Vec<i64> = f.iter().map(|p| p.t).collect();
    let Some((first, last)) = edge_indexes(&ts, start, end, smoothed) else {
        return Vec::new();
    };
    let (left, right) = float_edges(f, first, last, start, end, smoothed, false);
    let a = if f[first].t <= start {
        first + 1
    } else {
        first
    };
    let b = if f[last].t >= end {
        last.checked_sub(1)
    } else {
        Some(last)
    };
    let mut out = vec![FPoint { t: start, f: left }];
    if let Some(b) = b {
        out.extend_from_slice(f.get(a..=b).unwrap_or(&[]));
    }
    out.push(FPoint { t: end, f: right });
    out
}

fn extend_hists(h: &[HPoint], start: i64, end: i64, smoothed: bool) -> Vec<HPoint> {
    let ts: Vec<i64> = h.iter().map(|p| p.t).collect();
    let Some((first, last)) = edge_indexes(&ts, start, end, smoothed) else {
        return Vec::new();
    };
    let is_counter = |p: &HPoint| p.h.counter_reset_hint != CounterResetHint::Gauge;
    let left = match h.get(first + 1) {
        Some(next) if smoothed && h[first].t < start => {
            interpolate_hist(&h[first], next, start, is_counter(next))
        }
        _ => Some((*h[first].h).clone()),
    };
    let right = if smoothed && last > 0 && h[last].t > end {
        interpolate_hist(&h[last - 1], &h[last], end, is_counter(&h[last]))
    } else {
        Some((*h[last].h).clone())
    };
    let (Some(left), Some(right)) = (left, right) else {
        return Vec::new();
    };
    let a = if h[first].t <= start {
        first + 1
    } else {
        first
    };
    let b = if h[last].t >= end {
        last.checked_sub(1)
    } else {
        Some(last)
    };
    let mut out = vec![HPoint {
        t: start,
        h: Arc::new(left),
    }];
    if let Some(b) = b {
        out.extend(h.get(a..=b).unwrap_or(&[]).iter().cloned());
    }
    out.push(HPoint {
        t: end,
        h: Arc::new(right),
    });
    out
}

/// `foo smoothed` at `t`: the value interpolated between the last sample
/// at or before the reference time (within the lookback) and the next one
/// after it (within a lookback ahead); the last sample's value when it is
/// exactly at the reference time or nothing follows it. Floats interpolate
/// as gauges, histograms as counters unless the later one is a gauge. A
/// float next to a histogram, or exponential next to custom buckets, warns
/// and gives nothing for that series.
pub(crate) fn smoothed_selector<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    vs: &VectorSelector,
    t: i64,
) -> Result<Vec<Sample>, EvalError> {
    let rt = ev.ref_time(vs, t)?;
    let lb = ev.opts.lookback_ms;
    let series = raw_points(ev, vs, rt.saturating_sub(lb), rt.saturating_add(lb), true)?;
    let mut out = Vec::new();
    for s in series {
        let pts = merged(&s);
        let split = pts.partition_point(|p| p.0 <= rt);
        let Some(prev) = split.checked_sub(1).and_then(|i| pts.get(i)) else {
            continue;
        };
        let stale = |p: &Point<'_>| match p {
            Point::F(f) => is_stale_nan(*f),
            Point::H(h) => is_stale_nan(h.sum),
        };
        if stale(&prev.1) {
            continue;
        }
        let next = pts.get(split).filter(|n| prev.0 != rt && !stale(&n.1));
        let name = s.metric.metric_name().to_string();
        let (f, h) = match (&prev.1, next.map(|n| &n.1)) {
            (Point::F(a), None) => (*a, None),
            (Point::H(a), None) => (0.0, Some(Arc::new((*a).clone()))),
            (Point::F(a), Some(Point::F(b))) => {
                let (p1, p2) = (
                    FPoint { t: prev.0, f: *a },
                    FPoint {
                        t: next.map_or(prev.0, |n| n.0),
                        f: *b,
                    },
                );
                (interpolate(p1, p2, rt, false), None)
            }
            (Point::H(a), Some(Point::H(b))) => {
                if a.uses_custom_buckets() != b.uses_custom_buckets() {
                    ev.ann.warn(ev.src, vs.pos, mix_exp_custom_msg(&name));
                    continue;
                }
                let p1 = HPoint {
                    t: prev.0,
                    h: Arc::new((*a).clone()),
                };
                let p2 = HPoint {
                    t: next.map_or(prev.0, |n| n.0),
                    h: Arc::new((*b).clone()),
                };
                let is_counter = b.counter_reset_hint != CounterResetHint::Gauge;
                match interpolate_hist(&p1, &p2, rt, is_counter) {
                    Some(h) => (0.0, Some(Arc::new(h))),
                    None => {
                        ev.ann.warn(ev.src, vs.pos, mix_exp_custom_msg(&name));
                        continue;
                    }
                }
            }
            _ => {
                ev.ann.warn(ev.src, vs.pos, mix_float_hist_msg(&name));
                continue;
            }
        };
        out.push(Sample {
            metric: s.metric,
            t: rt,
            f,
            h,
            drop_name: false,
        });
    }
    Ok(out)
}
