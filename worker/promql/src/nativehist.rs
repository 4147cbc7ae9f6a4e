//! The histogram functions over native histograms (and their classic
//! counterparts where one call handles both): `histogram_quantile`,
//! `histogram_quantiles`, `histogram_fraction`, `histogram_stddev`,
//! `histogram_stdvar`, `histogram_count`, `histogram_sum`, `histogram_avg`,
//! as Prometheus 3's `promql/functions.go` and `promql/quantile.go`.
//!
//! Why one module: the quantile and fraction functions share the split of
//! their input vector into native histograms and classic bucket groups
//! (upstream's `resetHistograms`), and the same annotations.
//!
//! Semantics, as upstream:
//! - Quantiles of exponential buckets interpolate on a log scale (a bucket's
//!   lower and upper bound are linear in `log2`), linearly in the zero
//!   bucket and for custom buckets (NHCB); a zero bucket of a histogram that
//!   only has positive (negative) buckets starts (ends) at 0. In an NHCB,
//!   the first bucket (from −Inf) starts at 0 unless its upper bound is ≤ 0
//!   (then that bound is the answer), and a rank in the last bucket (to
//!   +Inf) answers its lower bound.
//! - NaN observations count in `count` but in no bucket (the sum is NaN):
//!   the forward walk is used, a rank above every bucket gives NaN with the
//!   "result is NaN" info, otherwise the "skewed higher" info is added when
//!   the buckets hold fewer observations than `count`. `histogram_fraction`
//!   excludes them from the ranks (not the denominator) with its own info.
//! - The quantile parameter outside [0, 1] (or NaN) gives a warning, even
//!   when the input is empty.
//! - A native histogram with exactly the labels of a classic group (labels
//!   without `le`) makes both yield nothing, with the "mix of classic and
//!   native histograms" warning; a float without a parsable `le` is skipped
//!   with the "bucket label" warning.
//! - `histogram_stddev`/`stdvar` estimate every observation at its bucket's
//!   geometric mean (arithmetic for custom buckets, 0 in the zero bucket).
//!
//! Nothing here panics: empty bucket lists, zero counts and infinite
//! bounds all have defined results.

use std::collections::HashMap;

use emberlens_model::{
    Bucket, CounterResetHint, FloatHistogram, HistogramError, Labels, Storage, format_go_g,
};

use crate::aggregate::kahan_inc;
use crate::ast::{Call, PosRange};
use crate::engine::{Evaluator, IValue};
use crate::error::EvalError;
use crate::funcs::{scalar_arg, vector_arg};
use crate::histfuncs::{Bucket as ClassicBucket, bucket_quantile, parse_le};
use crate::value::{HPoint, Sample};

/// What a native quantile adds besides its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QuantileInfo {
    /// The rank is above every bucket because of NaN observations.
    NanResult,
    /// NaN observations (ranked as +Inf) push the result up.
    NanSkew,
}

fn log_interpolate(lower: f64, upper: f64, fraction: f64) -> f64 {
    let log_lower = lower.abs().log2();
    let log_upper = upper.abs().log2();
    if lower > 0.0 {
        (log_lower + (log_upper - log_lower) * fraction).exp2()
    } else {
        -(log_upper + (log_lower - log_upper) * (1.0 - fraction)).exp2()
    }
}

/// `histogram_quantile` of one native histogram (upstream
/// `HistogramQuantile`).
pub(crate) fn native_quantile(q: f64, h: &FloatHistogram) -> (f64, Option<QuantileInfo>) {
    if q < 0.0 {
        return (f64::NEG_INFINITY, None);
    }
    if q > 1.0 {
        return (f64::INFINITY, None);
    }
    if h.count == 0.0 || q.is_nan() {
        return (f64::NAN, None);
    }
    let forward = h.sum.is_nan() || q < 0.5;
    let buckets = if forward {
        h.all_buckets()
    } else {
        h.all_reverse_buckets()
    };
    let mut rank = if forward {
        q * h.count
    } else {
        (1.0 - q) * h.count
    };
    let mut bucket = Bucket {
        boundaries: 0,
        lower: 0.0,
        upper: 0.0,
        count: 0.0,
    };
    let mut count = 0.0;
    let mut next = buckets.len();
    for (i, b) in buckets.iter().enumerate() {
        bucket = *b;
        if b.count == 0.0 {
            continue;
        }
        count += b.count;
        if count >= rank {
            next = i + 1;
            break;
        }
    }
    let custom = h.uses_custom_buckets();
    if !custom && bucket.lower < 0.0 && bucket.upper > 0.0 {
        if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() {
            bucket.lower = 0.0;
        } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty() {
            bucket.upper = 0.0;
        }
    } else if custom {
        if bucket.lower == f64::NEG_INFINITY {
            if bucket.upper <= 0.0 {
                return (bucket.upper, None);
            }
            bucket.lower = 0.0;
        } else if bucket.upper == f64::INFINITY {
            return (bucket.lower, None);
        }
    }
    if count > h.count {
        count = h.count;
    }
    if count < rank {
        if h.sum.is_nan() {
            return (f64::NAN, Some(QuantileInfo::NanResult));
        }
        return (bucket.upper, None);
    }
    if forward {
        rank -= count - bucket.count;
    } else {
        rank = count - rank;
    }
    let mut info = None;
    if h.sum.is_nan() {
        let rest: f64 = buckets[next.min(buckets.len())..]
            .iter()
            .map(|b| b.count)
            .sum();
        if count + rest < h.count {
            info = Some(QuantileInfo::NanSkew);
        }
    }
    let fraction = rank / bucket.count;
    if custom || (bucket.lower <= 0.0 && bucket.upper >= 0.0) {
        return (
            bucket.lower + (bucket.upper - bucket.lower) * fraction,
            info,
        );
    }
    (log_interpolate(bucket.lower, bucket.upper, fraction), info)
}

/// `histogram_fraction` of one native histogram (upstream
/// `HistogramFraction`); the flag says NaN observations were excluded.
pub(crate) fn native_fraction(lower: f64, upper: f64, h: &FloatHistogram) -> (f64, bool) {
    if h.count == 0.0 || lower.is_nan() || upper.is_nan() {
        return (f64::NAN, false);
    }
    if lower >= upper {
        return (0.0, false);
    }
    let custom = h.uses_custom_buckets();
    let buckets = h.all_buckets();
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut count = 0.0;
    let mut next = buckets.len();
    for (i, b0) in buckets.iter().enumerate() {
        let mut b = *b0;
        count += b.count;
        next = i + 1;
        let mut zero_bucket = false;
        if b.lower <= 0.0 && b.upper >= 0.0 {
            zero_bucket = true;
            if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() {
                b.lower = 0.0;
            } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty() {
                b.upper = 0.0;
            }
        }
        let linear = |v: f64| {
            if b.lower == f64::NEG_INFINITY {
                return b.count;
            }
            rank + b.count * (v - b.lower) / (b.upper - b.lower)
        };
        let exponential = |v: f64| {
            let log_lower = b.lower.abs().log2();
            let log_upper = b.upper.abs().log2();
            let log_v = v.abs().log2();
            let fraction = if v > 0.0 {
                (log_v - log_lower) / (log_upper - log_lower)
            } else {
                1.0 - ((log_v - log_upper) / (log_lower - log_upper))
            };
            rank + b.count * fraction
        };
        if !lower_set && b.lower >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && b.lower >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && b.lower < lower && b.upper > lower {
            lower_rank = if custom || zero_bucket {
                linear(lower)
            } else {
                exponential(lower)
            };
            lower_set = true;
        }
        if !upper_set && b.lower < upper && b.upper > upper {
            upper_rank = if custom || zero_bucket {
                linear(upper)
            } else {
                exponential(upper)
            };
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank += b.count;
    }
    let mut nans = false;
    if h.sum.is_nan() {
        count += buckets[next.min(buckets.len())..]
            .iter()
            .map(|b| b.count)
            .sum::<f64>();
        nans = count < h.count;
    } else {
        count = h.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    ((upper_rank - lower_rank) / h.count, nans)
}

/// `histogram_fraction` of a classic histogram (upstream `BucketFraction`):
/// the buckets are sorted and coalesced; counts are cumulative.
pub(crate) fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<ClassicBucket>) -> f64 {
    if buckets.is_empty() {
        return f64::NAN;
    }
    buckets.sort_by(|a, b| a.upper.total_cmp(&b.upper));
    if buckets.last().is_none_or(|b| b.upper != f64::INFINITY) {
        return f64::NAN;
    }
    let mut merged: Vec<ClassicBucket> = Vec::with_capacity(buckets.len());
    for b in buckets.drain(..) {
        match merged.last_mut() {
            Some(l) if l.upper == b.upper => l.count += b.count,
            _ => merged.push(b),
        }
    }
    let buckets = merged;
    let count = buckets.last().map(|b| b.count).unwrap_or(0.0);
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut lower_bound = if buckets[0].upper <= 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    for (i, b) in buckets.iter().enumerate() {
        if i > 0 {
            lower_bound = buckets[i - 1].upper;
        }
        let upper_bound = b.upper;
        let linear = |v: f64| {
            if lower_bound == f64::NEG_INFINITY {
                return b.count;
            }
            rank + (b.count - rank) * (v - lower_bound) / (upper_bound - lower_bound)
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = linear(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = linear(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = b.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

/// The estimated variance of the observations of `h` (upstream
/// `histogramVariance`).
pub(crate) fn native_variance(h: &FloatHistogram) -> f64 {
    let mean = h.sum / h.count;
    let (mut var, mut c) = (0.0, 0.0);
    for b in h.all_buckets() {
        if b.count == 0.0 {
            continue;
        }
        let val = if h.uses_custom_buckets() {
            (b.upper + b.lower) / 2.0
        } else if b.lower <= 0.0 && b.upper >= 0.0 {
            0.0
        } else {
            let v = (b.upper * b.lower).sqrt();
            if b.upper < 0.0 { -v } else { v }
        };
        let delta = val - mean;
        (var, c) = kahan_inc(b.count * delta * delta, var, c);
    }
    (var + c) / h.count
}

/// The part of one bucket `[l, u]` (count `c`) that a trim keeps, and the
/// value every kept observation is estimated at; `None` keeps it whole at
/// its own estimate. `below`: `</ x` (keep what is below `x`), else `>/ x`.
fn trim_bucket(l: f64, u: f64, x: f64, below: bool, kind: BucketKind) -> Trimmed {
    // The kept range, before any interpolation.
    let (a, b) = if below { (l, u.min(x)) } else { (l.max(x), u) };
    if (below && u <= x) || (!below && l >= x) {
        return Trimmed::Whole;
    }
    if (below && l >= x) || (!below && u <= x) {
        return Trimmed::Drop;
    }
    // x is strictly inside (l, u).
    let fraction_below = match kind {
        BucketKind::Exponential => {
            let (ll, lu, lx) = (l.abs().log2(), u.abs().log2(), x.abs().log2());
            if x > 0.0 {
                (lx - ll) / (lu - ll)
            } else {
                (ll - lx) / (ll - lu)
            }
        }
        BucketKind::Linear => (x - l) / (u - l),
    };
    let kept = if below {
        fraction_below
    } else {
        1.0 - fraction_below
    };
    Trimmed::Part { kept, a, b }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BucketKind {
    Exponential,
    Linear,
}

enum Trimmed {
    Whole,
    Drop,
    /// The kept fraction of the count and the kept range `[a, b]`.
    Part {
        kept: f64,
        a: f64,
        b: f64,
    },
}

/// The value observations in `[a, b]` are estimated at: the geometric mean
/// for exponential buckets, the midpoint otherwise.
fn estimate(a: f64, b: f64, kind: BucketKind) -> f64 {
    match kind {
        BucketKind::Exponential => {
            let v = (a * b).sqrt();
            if b < 0.0 { -v } else { v }
        }
        BucketKind::Linear => (a + b) / 2.0,
    }
}

/// `h </ x` (`below`) or `h >/ x`: the histogram with only the observations
/// below (above) `x`, as Prometheus's trim operators. Buckets across `x`
/// keep the interpolated part of their count (log-linear for exponential
/// buckets, linear in the zero bucket and for custom buckets; the zero
/// bucket starts or ends at 0 when only positive or only negative buckets
/// exist). Custom buckets reaching to ±Inf cannot be interpolated: their
/// observations count as lying at the infinite end, except that a first
/// bucket with a positive upper bound is taken to start at 0 (and lost for
/// a cut below 0). The count is the sum of the kept counts and the sum is
/// re-estimated from them (geometric bucket means, midpoints for linear
/// buckets, the finite bound or the cut for half-infinite ones); a trim that
/// keeps everything returns `h` unchanged. `x` of NaN keeps everything.
pub(crate) fn trim_histogram(h: &FloatHistogram, x: f64, below: bool) -> FloatHistogram {
    if x.is_nan() || (below && x == f64::INFINITY) || (!below && x == f64::NEG_INFINITY) {
        return h.clone();
    }
    let mut out = h.clone();
    let mut changed = false;
    let (mut count, mut sum) = (0.0, 0.0);
    let custom = h.uses_custom_buckets();
    let zt = h.zero_threshold;
    if !custom {
        // Zero bucket.
        let (mut l, mut u) = (-zt, zt);
        if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() {
            l = 0.0;
        } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty() {
            u = 0.0;
        }
        let c = h.zero_count;
        match trim_bucket(l, u, x, below, BucketKind::Linear) {
            Trimmed::Whole => {
                count += c;
                sum += c * estimate(l, u, BucketKind::Linear);
            }
            Trimmed::Drop => {
                changed |= c != 0.0;
                out.zero_count = 0.0;
            }
            Trimmed::Part { kept, a, b } => {
                changed = true;
                out.zero_count = c * kept;
                count += c * kept;
                sum += c * kept * estimate(a, b, BucketKind::Linear);
            }
        }
    }
    for positive in [true, false] {
        let (spans, buckets) = if positive {
            (&h.positive_spans, &mut out.positive_buckets)
        } else {
            (&h.negative_spans, &mut out.negative_buckets)
        };
        let idxs = emberlens_model::span_indexes(spans);
        for (i, &idx) in idxs.iter().enumerate() {
            let Some(bc) = buckets.get_mut(i) else { break };
            let c = *bc;
            let (l, u, kind) = if custom {
                let ci = usize::try_from(idx).unwrap_or(usize::MAX);
                let l = match ci.checked_sub(1) {
                    None => f64::NEG_INFINITY,
                    Some(j) => h.custom_values.get(j).copied().unwrap_or(f64::INFINITY),
                };
                let u = h.custom_values.get(ci).copied().unwrap_or(f64::INFINITY);
                (l, u, BucketKind::Linear)
            } else {
                let hi = emberlens_model::bucket_bound(idx, h.schema);
                let lo = emberlens_model::bucket_bound(idx.saturating_sub(1), h.schema);
                let (l, u) = if positive {
                    (lo.max(zt), hi)
                } else {
                    (-hi, (-lo).min(-zt))
                };
                (l, u, BucketKind::Exponential)
            };
            let (kept_count, value) = trim_one(l, u, c, x, below, kind);
            if kept_count != c {
                changed = true;
            }
            *bc = kept_count;
            count += kept_count;
            if kept_count != 0.0 {
                sum += kept_count * value;
            }
        }
    }
    if !changed {
        return h.clone();
    }
    out.count = count;
    out.sum = sum;
    out
}

/// One non-zero bucket: the kept count and the value it is estimated at,
/// with the custom-bucket rules for infinite bounds.
fn trim_one(l: f64, u: f64, c: f64, x: f64, below: bool, kind: BucketKind) -> (f64, f64) {
    if x.is_infinite() {
        // `</ -Inf` or `>/ +Inf` (the other two return early): nothing is kept.
        return (0.0, 0.0);
    }
    if l == f64::NEG_INFINITY && u == f64::INFINITY {
        // Nothing is known about where the observations are.
        return (0.0, 0.0);
    }
    if l == f64::NEG_INFINITY {
        if u > 0.0 {
            if x < 0.0 {
                return (0.0, 0.0);
            }
            return finite_trim(0.0, u, c, x, below, kind);
        }
        // Observations count as lying at -Inf.
        return match (below, u <= x) {
            (_, true) => (if below { c } else { 0.0 }, u),
            (true, false) => (c, x),
            (false, false) => (0.0, 0.0),
        };
    }
    if u == f64::INFINITY {
        // Observations count as lying at +Inf.
        return match (below, l >= x) {
            (_, true) => (if below { 0.0 } else { c }, l),
            (true, false) => (0.0, 0.0),
            (false, false) => (c, x),
        };
    }
    finite_trim(l, u, c, x, below, kind)
}

fn finite_trim(l: f64, u: f64, c: f64, x: f64, below: bool, kind: BucketKind) -> (f64, f64) {
    match trim_bucket(l, u, x, below, kind) {
        Trimmed::Whole => (c, estimate(l, u, kind)),
        Trimmed::Drop => (0.0, 0.0),
        Trimmed::Part { kept, a, b } => (c * kept, estimate(a, b, kind)),
    }
}

/// The increase of a histogram series over `points` (at least two) for
/// `rate`/`increase` (`is_counter`) and `delta`, as upstream's
/// `histogramRate`: counter resets (by value, or where `reset_at(i)` says
/// the start timestamps show one before point `i`) add the value before the
/// reset; a reset right after the first point discards the first point (so
/// its layout may differ); all points are reduced to the smallest schema.
/// Annotations at `pos`: a gauge histogram in a counter function ("not a
/// counter"), a non-gauge in `delta` ("not a gauge"), a mix of exponential
/// and custom buckets (then `None`), reconciled custom bounds (info). The
/// result is a gauge histogram, compacted.
pub(crate) fn histogram_rate<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    points: &[HPoint],
    is_counter: bool,
    metric: &Labels,
    pos: PosRange,
    reset_at: impl Fn(usize) -> bool,
) -> Option<FloatHistogram> {
    let name = metric.metric_name();
    let (first, last) = (&points.first()?.h, &points.last()?.h);
    let not_counter = format!("this native histogram metric is not a counter: {name:?}");
    let mixed = format!(
        "vector contains a mix of histograms with exponential and custom buckets schemas for metric name {name:?}"
    );
    let mut prev: FloatHistogram = (**first).clone();
    let mut custom = prev.uses_custom_buckets();
    if is_counter
        && (first.counter_reset_hint == CounterResetHint::Gauge
            || last.counter_reset_hint == CounterResetHint::Gauge)
    {
        ev.ann.warn(ev.src, pos, &not_counter);
    }
    if is_counter
        && let Some(second) = points.get(1)
        && (reset_at(1) || second.h.detect_reset(&prev))
    {
        prev = FloatHistogram {
            schema: second.h.schema,
            custom_values: second.h.custom_values.clone(),
            ..Default::default()
        };
        custom = second.h.uses_custom_buckets();
    }
    if last.uses_custom_buckets() != custom {
        ev.ann.warn(ev.src, pos, &mixed);
        return None;
    }
    let mut min_schema = last.schema.min(prev.schema);
    if is_counter {
        for p in points.iter().skip(1).take(points.len().saturating_sub(2)) {
            if p.h.counter_reset_hint == CounterResetHint::Gauge {
                ev.ann.warn(ev.src, pos, &not_counter);
            }
            min_schema = min_schema.min(p.h.schema);
            if p.h.uses_custom_buckets() != custom {
                ev.ann.warn(ev.src, pos, &mixed);
                return None;
            }
        }
    }
    let Ok((mut h, flags)) = last.reduce_resolution(min_schema).sub_with_flags(&prev) else {
        ev.ann.warn(ev.src, pos, &mixed);
        return None;
    };
    if flags.nhcb_bounds_reconciled {
        ev.ann.info(
            ev.src,
            pos,
            "mismatched custom buckets were reconciled during subtraction",
        );
    }
    if is_counter {
        for (i, p) in points.iter().enumerate().skip(1) {
            if reset_at(i) || p.h.detect_reset(&prev) {
                let Ok((sum, flags)) = h.add_with_flags(&prev) else {
                    ev.ann.warn(ev.src, pos, &mixed);
                    return None;
                };
                h = sum;
                if flags.nhcb_bounds_reconciled {
                    ev.ann.info(
                        ev.src,
                        pos,
                        "mismatched custom buckets were reconciled during addition",
                    );
                }
            }
            prev = (*p.h).clone();
        }
    } else if first.counter_reset_hint != CounterResetHint::Gauge
        || last.counter_reset_hint != CounterResetHint::Gauge
    {
        ev.ann.warn(
            ev.src,
            pos,
            format!("this native histogram metric is not a gauge: {name:?}"),
        );
    }
    h.counter_reset_hint = CounterResetHint::Gauge;
    Some(h.compact(0))
}

/// The running sum or mean of histograms for `sum`/`avg` and
/// `sum_over_time`/`avg_over_time`, as upstream: Kahan-compensated
/// (`kahan_add`), the mean computed from the sum until the sum would
/// overflow and incrementally from then on; the counter-reset hints seen
/// (a `reset` and a `not_reset` among the inputs are a conflict upstream
/// warns about) and whether custom bounds had to be reconciled.
#[derive(Clone, Debug)]
pub(crate) struct HistAgg {
    sum: FloatHistogram,
    mean: Option<FloatHistogram>,
    comp: Option<FloatHistogram>,
    count: f64,
    incremental: bool,
    reset_seen: bool,
    not_reset_seen: bool,
    /// Custom bucket bounds were reconciled in some addition.
    pub(crate) reconciled: bool,
}

impl HistAgg {
    /// Starts with the first histogram.
    pub(crate) fn new(h: &FloatHistogram) -> Self {
        let mut a = HistAgg {
            sum: h.clone(),
            mean: None,
            comp: None,
            count: 1.0,
            incremental: false,
            reset_seen: false,
            not_reset_seen: false,
            reconciled: false,
        };
        a.track(h);
        a
    }

    fn track(&mut self, h: &FloatHistogram) {
        match h.counter_reset_hint {
            CounterResetHint::Reset => self.reset_seen = true,
            CounterResetHint::NotReset => self.not_reset_seen = true,
            _ => {}
        }
    }

    /// Whether a `reset` and a `not_reset` hint were both seen.
    pub(crate) fn collision(&self) -> bool {
        self.reset_seen && self.not_reset_seen
    }

    /// Adds `h` to the sum. On error (exponential and custom buckets mixed)
    /// nothing changes.
    pub(crate) fn add_sum(&mut self, h: &FloatHistogram) -> Result<(), HistogramError> {
        self.track(h);
        let flags = self.sum.kahan_add(h, &mut self.comp)?;
        self.reconciled |= flags.nhcb_bounds_reconciled;
        Ok(())
    }

    /// Adds `h` to the mean.
    pub(crate) fn add_avg(&mut self, h: &FloatHistogram) -> Result<(), HistogramError> {
        self.track(h);
        self.count += 1.0;
        let n = self.count;
        if !self.incremental {
            let mut sum = self.sum.clone();
            let mut comp = self.comp.clone();
            let flags = sum.kahan_add(h, &mut comp)?;
            self.reconciled |= flags.nhcb_bounds_reconciled;
            if !sum.has_overflow() {
                self.sum = sum;
                self.comp = comp;
                return Ok(());
            }
            self.incremental = true;
            self.mean = Some(self.sum.div(n - 1.0));
            self.comp = self.comp.take().map(|c| c.div(n - 1.0));
        }
        let q = (n - 1.0) / n;
        self.comp = self.comp.take().map(|c| c.mul(q));
        let mut mean = self.mean.take().unwrap_or_else(|| self.sum.clone()).mul(q);
        let res = mean.kahan_add(&h.div(n), &mut self.comp);
        self.mean = Some(mean);
        self.reconciled |= res?.nhcb_bounds_reconciled;
        Ok(())
    }

    /// The sum, compensation added.
    pub(crate) fn finish_sum(self) -> FloatHistogram {
        match &self.comp {
            Some(c) => self.sum.add(c).unwrap_or(self.sum),
            None => self.sum,
        }
    }

    /// The mean, compensation added, compacted.
    pub(crate) fn finish_avg(self) -> FloatHistogram {
        let h = if self.incremental {
            let mean = self.mean.unwrap_or(self.sum);
            match &self.comp {
                Some(c) => mean.add(c).unwrap_or(mean),
                None => mean,
            }
        } else {
            let v = self.sum.div(self.count);
            match &self.comp {
                Some(c) => v.add(&c.div(self.count)).unwrap_or(v),
                None => v,
            }
        };
        h.compact(0)
    }
}

/// `sum_over_time` (or, with `avg`, `avg_over_time`) of a range holding
/// only histograms, with upstream's annotations at `pos`: conflicting
/// counter-reset hints (warning), reconciled custom bounds (info), and a
/// mix of exponential and custom buckets (warning, no result).
pub(crate) fn hist_over_time<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    hists: &[HPoint],
    avg: bool,
    metric: &Labels,
    pos: PosRange,
) -> Option<FloatHistogram> {
    let (first, rest) = hists.split_first()?;
    let mut acc = HistAgg::new(&first.h);
    for p in rest {
        let r = if avg {
            acc.add_avg(&p.h)
        } else {
            acc.add_sum(&p.h)
        };
        if r.is_err() {
            ev.ann.warn(
                ev.src,
                pos,
                format!(
                    "vector contains a mix of histograms with exponential and custom buckets schemas for metric name {:?}",
                    metric.metric_name()
                ),
            );
            return None;
        }
    }
    if acc.collision() {
        ev.ann.warn(
            ev.src,
            pos,
            "conflicting counter resets during histogram aggregation",
        );
    }
    if acc.reconciled {
        ev.ann.info(
            ev.src,
            pos,
            "mismatched custom buckets were reconciled during aggregation",
        );
    }
    Some(if avg {
        acc.finish_avg()
    } else {
        acc.finish_sum()
    })
}

/// `irate` (`is_rate`) or `idelta` of the last two histogram points `p`
/// and `l`, `dt` seconds apart, as upstream's `instantValue`: a gauge in
/// `irate` warns "not a counter", a non-gauge in `idelta` "not a gauge";
/// `irate` after a counter reset (`reset_by_st`, or detected) is `l` itself;
/// otherwise the difference (reconciled custom bounds give an info, mixed
/// exponential and custom buckets a warning and no result). The result is
/// a gauge histogram, compacted, divided by `dt` for `irate`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn instant_hist_delta<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    p: &FloatHistogram,
    l: &FloatHistogram,
    dt: f64,
    reset_by_st: bool,
    is_rate: bool,
    metric: &Labels,
    pos: PosRange,
) -> Option<FloatHistogram> {
    let name = metric.metric_name();
    let gauge = |h: &FloatHistogram| h.counter_reset_hint == CounterResetHint::Gauge;
    if is_rate && (gauge(l) || gauge(p)) {
        ev.ann.warn(
            ev.src,
            pos,
            format!("this native histogram metric is not a counter: {name:?}"),
        );
    }
    if !is_rate && (!gauge(l) || !gauge(p)) {
        ev.ann.warn(
            ev.src,
            pos,
            format!("this native histogram metric is not a gauge: {name:?}"),
        );
    }
    let mut h = l.clone();
    if !is_rate || (!reset_by_st && !l.detect_reset(p)) {
        let Ok((d, flags)) = l.sub_with_flags(p) else {
            ev.ann.warn(
                ev.src,
                pos,
                format!(
                    "vector contains a mix of histograms with exponential and custom buckets schemas for metric name {name:?}"
                ),
            );
            return None;
        };
        if flags.nhcb_bounds_reconciled {
            ev.ann.info(
                ev.src,
                pos,
                "mismatched custom buckets were reconciled during subtraction",
            );
        }
        h = d;
    }
    h.counter_reset_hint = CounterResetHint::Gauge;
    let h = h.compact(0);
    Some(if is_rate { h.div(dt) } else { h })
}

/// Prometheus's `labels.FormatOpenMetricsFloat` (the `histogram_quantiles`
/// label value): `1.0`, `0.0`, `NaN`, `+Inf`, otherwise Go's `%g` with `.0`
/// appended when it has neither a point nor an exponent.
pub(crate) fn format_openmetrics_float(f: f64) -> String {
    if f == 0.0 {
        return "0.0".into();
    }
    let s = format_go_g(f);
    if f.is_nan() || f.is_infinite() || s.contains(['.', 'e']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// A classic histogram: its result labels and buckets.
struct ClassicGroup {
    metric: Labels,
    buckets: Vec<ClassicBucket>,
}

/// The input of a quantile/fraction function, split as upstream's
/// `resetHistograms`: native histograms (conflicting ones removed) and
/// classic bucket groups in first-seen order (conflicting ones removed).
struct Split {
    native: Vec<Sample>,
    classic: Vec<ClassicGroup>,
}

fn split_histograms<S: Storage>(ev: &mut Evaluator<'_, S>, v: Vec<Sample>, pos: PosRange) -> Split {
    let mut order: Vec<Labels> = Vec::new();
    let mut groups: HashMap<Labels, ClassicGroup> = HashMap::new();
    let mut natives = Vec::new();
    for s in v {
        if s.h.is_some() {
            natives.push(s);
            continue;
        }
        let le = s.metric.get("le");
        let Some(upper) = parse_le(le) else {
            ev.ann.warn(
                ev.src,
                pos,
                format!(
                    "bucket label \"le\" is missing or has a malformed value of {le:?}{}",
                    for_metric(s.metric.metric_name())
                ),
            );
            continue;
        };
        let key = s.metric.without(&["le"]);
        groups
            .entry(key.clone())
            .or_insert_with(|| {
                order.push(key.clone());
                ClassicGroup {
                    metric: key,
                    buckets: Vec::new(),
                }
            })
            .buckets
            .push(ClassicBucket { upper, count: s.f });
    }
    let mut native = Vec::with_capacity(natives.len());
    for s in natives {
        if groups.remove(&s.metric).is_some() {
            ev.ann.warn(
                ev.src,
                pos,
                format!(
                    "vector contains a mix of classic and native histograms{}",
                    for_metric(s.metric.metric_name())
                ),
            );
            continue;
        }
        native.push(s);
    }
    let classic = order
        .into_iter()
        .filter_map(|k| groups.remove(&k))
        .collect();
    Split { native, classic }
}

fn for_metric(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!(" for metric name {name:?}")
    }
}

fn arg_pos(c: &Call, i: usize) -> PosRange {
    c.args.get(i).map(|a| a.pos()).unwrap_or(c.pos)
}

fn warn_quantile<S: Storage>(ev: &mut Evaluator<'_, S>, q: f64, pos: PosRange) {
    if q.is_nan() || !(0.0..=1.0).contains(&q) {
        ev.ann.warn(
            ev.src,
            pos,
            format!(
                "quantile value should be between 0 and 1, got {}",
                format_go_g(q)
            ),
        );
    }
}

fn quantile_info<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    info: Option<QuantileInfo>,
    metric: &Labels,
    pos: PosRange,
) {
    let msg = match info {
        None => return,
        Some(QuantileInfo::NanResult) => {
            "input to histogram_quantile has NaN observations, result is NaN"
        }
        Some(QuantileInfo::NanSkew) => {
            "input to histogram_quantile has NaN observations, result is skewed higher"
        }
    };
    ev.ann.info(
        ev.src,
        pos,
        format!("{msg}{}", for_metric(metric.metric_name())),
    );
}

fn forced_info<S: Storage>(ev: &mut Evaluator<'_, S>, metric: &Labels, pos: PosRange) {
    ev.ann.info(
        ev.src,
        pos,
        format!(
            "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile){}",
            for_metric(metric.metric_name())
        ),
    );
}

fn out_sample(metric: Labels, t: i64, f: f64) -> Sample {
    Sample {
        metric,
        t,
        f,
        h: None,
        drop_name: true,
    }
}

/// Evaluates one of this module's functions; `None` if `c` is not one.
pub(crate) fn eval_histogram_call<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    c: &Call,
    t: i64,
) -> Option<Result<IValue, EvalError>> {
    let r = match c.func.name {
        "histogram_quantile" => histogram_quantile(ev, c, t),
        "histogram_quantiles" => histogram_quantiles(ev, c, t),
        "histogram_fraction" => histogram_fraction(ev, c, t),
        "histogram_stddev" | "histogram_stdvar" | "histogram_count" | "histogram_sum"
        | "histogram_avg" => simple(ev, c, t),
        _ => return None,
    };
    Some(r.map(IValue::Vector))
}

fn simple<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    c: &Call,
    t: i64,
) -> Result<Vec<Sample>, EvalError> {
    let v = vector_arg(ev, c, 0, t)?;
    let name = c.func.name;
    Ok(v.into_iter()
        .filter_map(|s| {
            let h = s.h.as_deref()?;
            let f = match name {
                "histogram_count" => h.count,
                "histogram_sum" => h.sum,
                "histogram_avg" => h.sum / h.count,
                "histogram_stdvar" => native_variance(h),
                _ => native_variance(h).sqrt(),
            };
            Some(Sample {
                metric: s.metric,
                t,
                f,
                h: None,
                drop_name: true,
            })
        })
        .collect())
}

fn histogram_quantile<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    c: &Call,
    t: i64,
) -> Result<Vec<Sample>, EvalError> {
    let q = scalar_arg(ev, c, 0, t)?;
    let v = vector_arg(ev, c, 1, t)?;
    warn_quantile(ev, q, arg_pos(c, 0));
    let pos = arg_pos(c, 1);
    let split = split_histograms(ev, v, pos);
    let mut out = Vec::new();
    for s in split.native {
        let Some(h) = s.h.as_deref() else { continue };
        let (f, info) = native_quantile(q, h);
        quantile_info(ev, info, &s.metric, pos);
        out.push(out_sample(s.metric, t, f));
    }
    for mut g in split.classic {
        let (f, forced) = bucket_quantile(q, &mut g.buckets);
        if forced {
            forced_info(ev, &g.metric, pos);
        }
        out.push(out_sample(g.metric, t, f));
    }
    Ok(out)
}

fn histogram_quantiles<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    c: &Call,
    t: i64,
) -> Result<Vec<Sample>, EvalError> {
    let v = vector_arg(ev, c, 0, t)?;
    let label = match c.args.get(1).map(|e| e.unparen()) {
        Some(crate::ast::Expr::String { val, .. }) => val.clone(),
        _ => {
            return Err(EvalError::Execution(
                "histogram_quantiles: the second argument must be a string literal".into(),
            ));
        }
    };
    let mut qs = Vec::new();
    for i in 2..c.args.len() {
        let q = scalar_arg(ev, c, i, t)?;
        warn_quantile(ev, q, arg_pos(c, i));
        qs.push(q);
    }
    let pos = arg_pos(c, 0);
    let split = split_histograms(ev, v, pos);
    let mut classic = split.classic;
    let mut out = Vec::new();
    for &q in &qs {
        let qs_label = format_openmetrics_float(q);
        for s in &split.native {
            let Some(h) = s.h.as_deref() else { continue };
            let (f, info) = native_quantile(q, h);
            quantile_info(ev, info, &s.metric, pos);
            out.push(out_sample(s.metric.with(&label, &qs_label), t, f));
        }
        for g in &mut classic {
            let mut buckets = g.buckets.clone();
            let (f, forced) = bucket_quantile(q, &mut buckets);
            if forced {
                forced_info(ev, &g.metric, pos);
            }
            out.push(out_sample(g.metric.with(&label, &qs_label), t, f));
        }
    }
    Ok(out)
}

fn histogram_fraction<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    c: &Call,
    t: i64,
) -> Result<Vec<Sample>, EvalError> {
    let lower = scalar_arg(ev, c, 0, t)?;
    let upper = scalar_arg(ev, c, 1, t)?;
    let v = vector_arg(ev, c, 2, t)?;
    let pos = arg_pos(c, 2);
    let split = split_histograms(ev, v, pos);
    let mut out = Vec::new();
    for s in split.native {
        let Some(h) = s.h.as_deref() else { continue };
        let (f, nans) = native_fraction(lower, upper, h);
        if nans {
            ev.ann.info(
                ev.src,
                pos,
                format!(
                    "input to histogram_fraction has NaN observations, which are excluded from all fractions{}",
                    for_metric(s.metric.metric_name())
                ),
            );
        }
        out.push(out_sample(s.metric, t, f));
    }
    for mut g in split.classic {
        let f = bucket_fraction(lower, upper, &mut g.buckets);
        out.push(out_sample(g.metric, t, f));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use emberlens_model::Span;

    fn exp_hist(buckets: &[f64], zero: f64) -> FloatHistogram {
        FloatHistogram {
            schema: 0,
            zero_threshold: 0.001,
            zero_count: zero,
            count: buckets.iter().sum::<f64>() + zero,
            sum: 1.0,
            positive_spans: vec![Span {
                offset: 0,
                length: buckets.len() as u32,
            }],
            positive_buckets: buckets.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn quantile_interpolates_exponentially() {
        // One bucket (1,2]: the median is √2.
        let h = FloatHistogram {
            schema: 0,
            count: 4.0,
            sum: 6.0,
            positive_spans: vec![Span {
                offset: 1,
                length: 1,
            }],
            positive_buckets: vec![4.0],
            ..Default::default()
        };
        let (v, info) = native_quantile(0.5, &h);
        assert!((v - std::f64::consts::SQRT_2).abs() < 1e-12);
        assert_eq!(info, None);
        assert_eq!(native_quantile(-1.0, &h).0, f64::NEG_INFINITY);
        assert_eq!(native_quantile(2.0, &h).0, f64::INFINITY);
        assert!(native_quantile(f64::NAN, &h).0.is_nan());
    }

    #[test]
    fn quantile_nan_observations() {
        let mut h = exp_hist(&[12.0], 0.0);
        h.count = 15.0;
        h.sum = f64::NAN;
        let (v, info) = native_quantile(1.0, &h);
        assert!(v.is_nan());
        assert_eq!(info, Some(QuantileInfo::NanResult));
        let (v, info) = native_quantile(0.8, &h);
        assert_eq!(v, 1.0);
        assert_eq!(info, Some(QuantileInfo::NanSkew));
        let (f, nans) = native_fraction(f64::NEG_INFINITY, f64::INFINITY, &h);
        assert!((f - 0.8).abs() < 1e-12);
        assert!(nans);
    }

    #[test]
    fn empty_histogram_gives_nan() {
        let h = FloatHistogram::default();
        assert!(native_quantile(0.5, &h).0.is_nan());
        assert!(native_fraction(0.0, 1.0, &h).0.is_nan());
        assert!(native_variance(&h).is_nan());
    }

    #[test]
    fn classic_fraction() {
        let mut b = vec![
            ClassicBucket {
                upper: 1.0,
                count: 1.0,
            },
            ClassicBucket {
                upper: f64::INFINITY,
                count: 2.0,
            },
            ClassicBucket {
                upper: 2.0,
                count: 2.0,
            },
        ];
        assert!((bucket_fraction(0.0, 1.5, &mut b) - 0.75).abs() < 1e-12);
        assert!(bucket_fraction(0.0, 1.0, &mut Vec::new()).is_nan());
    }

    fn cbh(custom: &[f64], buckets: &[f64], sum: f64) -> FloatHistogram {
        FloatHistogram {
            schema: emberlens_model::CUSTOM_BUCKETS_SCHEMA,
            count: buckets.iter().sum(),
            sum,
            positive_spans: vec![Span {
                offset: 0,
                length: buckets.len() as u32,
            }],
            positive_buckets: buckets.to_vec(),
            custom_values: custom.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn trim_custom_buckets() {
        let h = cbh(&[5.0, 10.0, 15.0, 20.0], &[1.0, 6.0, 4.0, 3.0, 1.0], 172.5);
        let t = trim_histogram(&h, 13.0, true);
        assert!((t.count - 9.4).abs() < 1e-12);
        assert!((t.sum - 75.1).abs() < 1e-9);
        let t = trim_histogram(&h, 13.0, false);
        assert!((t.count - 5.6).abs() < 1e-12);
        assert!((t.sum - 94.9).abs() < 1e-9);
        // Keeping everything returns the input, sum included.
        assert_eq!(trim_histogram(&h, 0.0, false), h);
        assert_eq!(trim_histogram(&h, f64::INFINITY, true), h);
        let t = trim_histogram(&h, f64::INFINITY, false);
        assert_eq!((t.count, t.sum), (0.0, 0.0));
        // Half-infinite buckets: mass at the infinite end.
        let h = cbh(&[-5.0], &[1.0, 100.0], 33.0);
        let t = trim_histogram(&h, -10.0, true);
        assert_eq!((t.count, t.sum), (1.0, -10.0));
        let t = trim_histogram(&h, -2.0, false);
        assert_eq!((t.count, t.sum), (100.0, -200.0));
    }

    #[test]
    fn trim_exponential_buckets() {
        // (0.5,1]:2 (1,2]:4, zero bucket 1 of width 0.001: cut at √2.
        let h = exp_hist(&[2.0, 4.0], 1.0);
        let h = FloatHistogram {
            positive_spans: vec![Span {
                offset: 0,
                length: 2,
            }],
            ..h
        };
        let t = trim_histogram(&h, std::f64::consts::SQRT_2, true);
        assert!((t.count - 5.0).abs() < 1e-9);
        assert!((t.positive_buckets[1] - 2.0).abs() < 1e-9);
        let t = trim_histogram(&h, 0.0005, false);
        // Only positive buckets: the zero bucket is [0, 0.001].
        assert!((t.zero_count - 0.5).abs() < 1e-12);
    }

    #[test]
    fn openmetrics_floats() {
        assert_eq!(format_openmetrics_float(0.0), "0.0");
        assert_eq!(format_openmetrics_float(1.0), "1.0");
        assert_eq!(format_openmetrics_float(0.25), "0.25");
        assert_eq!(format_openmetrics_float(-0.1), "-0.1");
        assert_eq!(format_openmetrics_float(f64::NAN), "NaN");
        assert_eq!(format_openmetrics_float(f64::INFINITY), "+Inf");
        assert_eq!(format_openmetrics_float(100.0), "100.0");
    }
}
