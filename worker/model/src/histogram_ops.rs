//! Native-histogram arithmetic on [`FloatHistogram`], with Prometheus 3's
//! semantics: `+`/`-` (and the Kahan-compensated sum the `sum`/`avg`
//! aggregations and `sum_over_time`/`avg_over_time` use), scaling, schema
//! reduction, compaction, counter-reset detection, exact equality, and the
//! bucket walks `histogram_quantile`/`histogram_fraction` need.
//!
//! Why a port and not fresh maths: PromQL results are checked against the
//! upstream test files and a real Prometheus, and the order of float
//! additions, where buckets land when two layouts are merged, and when a zero
//! bucket swallows a neighbour all show up in the printed results. The
//! algorithms follow `model/histogram/float_histogram.go` and `generic.go`
//! step for step (the Kahan parts as in Prometheus 3.13+, where `sum` and
//! friends switched to `KahanAdd`), written anew in Rust. Caveat: the Go
//! source of 3.13's `KahanAdd` family (`kahanAddBuckets`,
//! `kahanReduceResolution`, the compensated zero-bucket reconciliation and
//! the compensated mapping of mismatched custom bounds) was not available
//! to us; those follow the merged design as described in the upstream pull
//! requests and an earlier revision of that code. The plain operations were
//! checked against the Go source itself.
//!
//! Design decisions:
//! - Methods take `&self` and return a new histogram, except
//!   [`FloatHistogram::kahan_add`], which is an accumulator and mutates.
//! - Upstream returns two flags from `Add`/`Sub` (a counter-reset-hint
//!   collision and "mismatched custom bounds were reconciled"); they surface
//!   as PromQL annotations. [`FloatHistogram::add`]/[`FloatHistogram::sub`]
//!   keep the simple signature and drop them; callers that annotate use
//!   [`FloatHistogram::add_with_flags`]/[`FloatHistogram::sub_with_flags`],
//!   which return an [`OpFlags`].
//!
//! Edge cases, stated once:
//! - Exponential plus custom-bucket (schema −53) histograms is an error
//!   ([`HistogramError::MixedExponentialCustom`]). Two custom-bucket
//!   histograms with different bounds are mapped onto the intersection of
//!   their bounds (a bucket goes to the first intersected bound at or above
//!   its own upper bound, or to +Inf) and `nhcb_bounds_reconciled` is set.
//! - Where upstream panics on impossible input (spans that promise more
//!   buckets than exist, reducing to a finer schema, a custom target schema)
//!   we stop early or return the input unchanged; nothing here panics.
//!   Bucket indexes are computed in `i64` and saturated into `i32` spans.
//! - A NaN zero threshold would make upstream's zero-bucket reconciliation
//!   loop forever; here the loop stops and the receiver's threshold stays.
//! - NaN counts compare like Go (every comparison false); [`FloatHistogram::equals`]
//!   compares counts by bit pattern, so a NaN sum equals the same NaN.
//! - `compact(n)` with `n > 0` merges spans separated by at most `n` empty
//!   buckets. Upstream misplaces buckets when more than one merge happens in
//!   a row (it forgets to step over the merged span); we place them where
//!   its documentation says. PromQL only uses `compact(0)`, where the two
//!   agree. A merge that would insert more than [`MAX_INSERTED_EMPTY_BUCKETS`]
//!   empty buckets in one call is skipped so a huge offset cannot allocate
//!   gigabytes.
//! - `detect_reset` keeps an upstream quirk: once the current histogram runs
//!   out of buckets, only the next bucket of the previous one decides.

use thiserror::Error;

use crate::histogram::{
    Bucket, CUSTOM_BUCKETS_SCHEMA, CounterResetHint, FloatHistogram, MAX_SCHEMA, MIN_SCHEMA, Span,
    bucket_bound,
};

/// Why two histograms cannot be combined. The message is upstream's
/// `ErrHistogramsIncompatibleSchema` text, which PromQL turns into the
/// "mixed exponential and custom buckets" warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HistogramError {
    /// One histogram has exponential buckets, the other custom ones.
    #[error(
        "cannot apply this operation on histograms with a mix of exponential and custom bucket schemas"
    )]
    MixedExponentialCustom,
}

/// What an addition or subtraction reports besides its result (upstream's
/// extra return values of `Add`, `Sub` and `KahanAdd`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpFlags {
    /// One operand's hint said `Reset` and the other's `NotReset`; the
    /// result's hint was set to `Unknown` (PromQL warns about it).
    pub counter_reset_collision: bool,
    /// Both operands had custom buckets with different bounds; the result
    /// uses the intersection of the bounds (PromQL adds an info annotation).
    pub nhcb_bounds_reconciled: bool,
}

/// The most empty buckets one `compact` call inserts when it merges spans;
/// larger gaps stay gaps. 2^20 buckets is 8 MiB of zeros, far more than any
/// real histogram has buckets at all.
pub const MAX_INSERTED_EMPTY_BUCKETS: usize = 1 << 20;

impl FloatHistogram {
    /// Whether the histogram has custom bucket bounds (schema −53, NHCB).
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// `self + other` (Prometheus `FloatHistogram.Add`), dropping the
    /// [`OpFlags`]; see [`FloatHistogram::add_with_flags`]. The result has the
    /// lower of the two schemas and the larger zero threshold (widened
    /// further if it would cut through a populated bucket); it may contain
    /// empty buckets and adjacent spans, which `compact(0)` removes.
    pub fn add(&self, other: &FloatHistogram) -> Result<FloatHistogram, HistogramError> {
        self.add_with_flags(other).map(|(h, _)| h)
    }

    /// `self - other` (Prometheus `FloatHistogram.Sub`), dropping the
    /// [`OpFlags`]. The counter-reset hint is adjusted as for addition; the
    /// PromQL `-` operator sets it to `Gauge` afterwards.
    pub fn sub(&self, other: &FloatHistogram) -> Result<FloatHistogram, HistogramError> {
        self.sub_with_flags(other).map(|(h, _)| h)
    }

    /// [`FloatHistogram::add`] plus the collision and reconciliation flags.
    pub fn add_with_flags(
        &self,
        other: &FloatHistogram,
    ) -> Result<(FloatHistogram, OpFlags), HistogramError> {
        let mut h = self.clone();
        let flags = h.add_or_sub_in_place(other, false)?;
        Ok((h, flags))
    }

    /// [`FloatHistogram::sub`] plus the collision and reconciliation flags.
    pub fn sub_with_flags(
        &self,
        other: &FloatHistogram,
    ) -> Result<(FloatHistogram, OpFlags), HistogramError> {
        let mut h = self.clone();
        let flags = h.add_or_sub_in_place(other, true)?;
        Ok((h, flags))
    }

    /// Adds `other` into `self` with Kahan–Neumaier compensation on every
    /// count, the sum, the zero count and every bucket (Prometheus
    /// `FloatHistogram.KahanAdd`, used by `sum`, `avg`, `sum_over_time` and
    /// `avg_over_time`).
    ///
    /// `compensation` is the running compensation histogram: pass `None` for
    /// the first addition of a fold (it is then created with the layout of
    /// `self` and all values zero) and the same variable on every later call.
    /// It always has `self`'s layout afterwards. At the end of the fold the
    /// result is `self.add(compensation)` (upstream adds the compensation
    /// histogram with plain `Add`, whose flags it keeps for `sum` but not for
    /// `avg`). Multiplying the running sum by `q` for an incremental mean
    /// means multiplying the compensation by `q` too.
    ///
    /// On error nothing is changed.
    pub fn kahan_add(
        &mut self,
        other: &FloatHistogram,
        compensation: &mut Option<FloatHistogram>,
    ) -> Result<OpFlags, HistogramError> {
        if self.uses_custom_buckets() != other.uses_custom_buckets() {
            return Err(HistogramError::MixedExponentialCustom);
        }
        let mut flags = OpFlags {
            counter_reset_collision: self.adjust_counter_reset(other),
            nhcb_bounds_reconciled: false,
        };
        // Created after the hint adjustment, as upstream does: the hint of
        // the compensation matters when it is finally added.
        let mut c = compensation
            .take()
            .unwrap_or_else(|| self.new_compensation());
        // A compensation from another fold would not line up; keep indexes
        // valid rather than panic.
        c.positive_buckets.resize(self.positive_buckets.len(), 0.0);
        c.negative_buckets.resize(self.negative_buckets.len(), 0.0);

        if !self.uses_custom_buckets() {
            let (other_zero, other_zero_c) = self.reconcile_zero_buckets(other, Some(&mut c));
            (self.zero_count, c.zero_count) = kahan_inc(other_zero, self.zero_count, c.zero_count);
            (self.zero_count, c.zero_count) =
                kahan_inc(other_zero_c, self.zero_count, c.zero_count);
        }
        (self.count, c.count) = kahan_inc(other.count, self.count, c.count);
        (self.sum, c.sum) = kahan_inc(other.sum, self.sum, c.sum);

        if self.uses_custom_buckets() {
            if custom_bounds_match(&self.custom_values, &other.custom_values) {
                add_buckets(
                    self.schema,
                    self.zero_threshold,
                    false,
                    SideMut {
                        spans: &mut self.positive_spans,
                        buckets: &mut self.positive_buckets,
                        comp: Some(&mut c.positive_buckets),
                    },
                    Side {
                        spans: &other.positive_spans,
                        buckets: &other.positive_buckets,
                        comp: None,
                    },
                );
            } else {
                flags.nhcb_bounds_reconciled = true;
                let bounds = intersect_custom_bounds(&self.custom_values, &other.custom_values);
                let (spans, buckets, comp) = add_custom_buckets_with_mismatches(
                    false,
                    Side {
                        spans: &self.positive_spans,
                        buckets: &self.positive_buckets,
                        comp: Some(&c.positive_buckets),
                    },
                    &self.custom_values,
                    Side {
                        spans: &other.positive_spans,
                        buckets: &other.positive_buckets,
                        comp: None,
                    },
                    &other.custom_values,
                    &bounds,
                );
                self.positive_spans = spans;
                self.positive_buckets = buckets;
                c.positive_buckets = comp;
                self.custom_values.clone_from(&bounds);
                c.custom_values = bounds;
            }
            c.positive_spans.clone_from(&self.positive_spans);
            *compensation = Some(c);
            return Ok(flags);
        }

        if other.schema < self.schema {
            let target = other.schema;
            (
                self.positive_spans,
                self.positive_buckets,
                c.positive_buckets,
            ) = kahan_reduce_resolution(
                &self.positive_spans,
                &self.positive_buckets,
                &c.positive_buckets,
                self.schema,
                target,
            );
            (
                self.negative_spans,
                self.negative_buckets,
                c.negative_buckets,
            ) = kahan_reduce_resolution(
                &self.negative_spans,
                &self.negative_buckets,
                &c.negative_buckets,
                self.schema,
                target,
            );
            self.schema = target;
        }
        // The other histogram starts without compensation; merging its
        // buckets into a coarser schema can create some.
        let reduced_other = (other.schema > self.schema).then(|| {
            let zeros_pos = vec![0.0; other.positive_buckets.len()];
            let zeros_neg = vec![0.0; other.negative_buckets.len()];
            (
                kahan_reduce_resolution(
                    &other.positive_spans,
                    &other.positive_buckets,
                    &zeros_pos,
                    other.schema,
                    self.schema,
                ),
                kahan_reduce_resolution(
                    &other.negative_spans,
                    &other.negative_buckets,
                    &zeros_neg,
                    other.schema,
                    self.schema,
                ),
            )
        });
        let (other_pos, other_neg) = match &reduced_other {
            Some(((ps, pb, pc), (ns, nb, nc))) => (
                Side {
                    spans: ps,
                    buckets: pb,
                    comp: Some(pc),
                },
                Side {
                    spans: ns,
                    buckets: nb,
                    comp: Some(nc),
                },
            ),
            None => (
                Side {
                    spans: &other.positive_spans,
                    buckets: &other.positive_buckets,
                    comp: None,
                },
                Side {
                    spans: &other.negative_spans,
                    buckets: &other.negative_buckets,
                    comp: None,
                },
            ),
        };
        add_buckets(
            self.schema,
            self.zero_threshold,
            false,
            SideMut {
                spans: &mut self.positive_spans,
                buckets: &mut self.positive_buckets,
                comp: Some(&mut c.positive_buckets),
            },
            other_pos,
        );
        add_buckets(
            self.schema,
            self.zero_threshold,
            false,
            SideMut {
                spans: &mut self.negative_spans,
                buckets: &mut self.negative_buckets,
                comp: Some(&mut c.negative_buckets),
            },
            other_neg,
        );
        c.schema = self.schema;
        c.zero_threshold = self.zero_threshold;
        c.positive_spans.clone_from(&self.positive_spans);
        c.negative_spans.clone_from(&self.negative_spans);
        *compensation = Some(c);
        Ok(flags)
    }

    /// Every count, the zero count and the sum times `factor` (Prometheus
    /// `Mul`). The layout stays, even for a zero factor. A negative factor
    /// makes the result a gauge histogram; NaN spreads to every value.
    pub fn mul(&self, factor: f64) -> FloatHistogram {
        let mut h = self.clone();
        h.zero_count *= factor;
        h.count *= factor;
        h.sum *= factor;
        h.positive_buckets.iter_mut().for_each(|b| *b *= factor);
        h.negative_buckets.iter_mut().for_each(|b| *b *= factor);
        if factor < 0.0 {
            h.counter_reset_hint = CounterResetHint::Gauge;
        }
        h
    }

    /// Every count, the zero count and the sum divided by `d` (Prometheus
    /// `Div`). Dividing by ±0 divides the count, zero count and sum (giving
    /// ±Inf, or NaN for 0/0) and removes every bucket, keeping the hint; a
    /// negative `d` makes the result a gauge histogram.
    pub fn div(&self, d: f64) -> FloatHistogram {
        let mut h = self.clone();
        h.zero_count /= d;
        h.count /= d;
        h.sum /= d;
        if d == 0.0 {
            h.positive_buckets.clear();
            h.negative_buckets.clear();
            h.positive_spans.clear();
            h.negative_spans.clear();
            return h;
        }
        h.positive_buckets.iter_mut().for_each(|b| *b /= d);
        h.negative_buckets.iter_mut().for_each(|b| *b /= d);
        if d < 0.0 {
            h.counter_reset_hint = CounterResetHint::Gauge;
        }
        h
    }

    /// Removes empty buckets at the edges of spans, splits spans at runs of
    /// more than `max_empty_buckets` empty buckets, merges spans at most
    /// that far apart and drops zero-length spans (Prometheus `Compact`;
    /// the test harness compares histograms after `compact(0)`).
    pub fn compact(&self, max_empty_buckets: usize) -> FloatHistogram {
        let mut h = self.clone();
        h.compact_in_place(max_empty_buckets, None);
        h
    }

    /// The histogram at the coarser `target_schema` (Prometheus
    /// `CopyToSchema`): neighbouring buckets are summed. Like upstream, the
    /// counter-reset hint is kept only when the schema does not change (then
    /// it is a plain copy); otherwise it is `Unknown`. A target that is
    /// finer than the current schema, or either side using custom buckets,
    /// returns an unchanged copy (upstream panics).
    pub fn reduce_resolution(&self, target_schema: i32) -> FloatHistogram {
        if target_schema == self.schema
            || self.uses_custom_buckets()
            || target_schema == CUSTOM_BUCKETS_SCHEMA
            || target_schema > self.schema
        {
            return self.clone();
        }
        let (positive_spans, positive_buckets) = reduce_resolution(
            &self.positive_spans,
            &self.positive_buckets,
            self.schema,
            target_schema,
        );
        let (negative_spans, negative_buckets) = reduce_resolution(
            &self.negative_spans,
            &self.negative_buckets,
            self.schema,
            target_schema,
        );
        FloatHistogram {
            counter_reset_hint: CounterResetHint::Unknown,
            schema: target_schema,
            zero_threshold: self.zero_threshold,
            zero_count: self.zero_count,
            count: self.count,
            sum: self.sum,
            positive_spans,
            negative_spans,
            positive_buckets,
            negative_buckets,
            custom_values: Vec::new(),
        }
    }

    /// Whether `self` follows `previous` only after a counter reset
    /// (Prometheus `DetectReset`). The hints `Reset`/`NotReset` decide
    /// alone; otherwise (also for gauges) any decrease of the count, the zero
    /// count or a bucket is a reset, as are a finer schema, a smaller zero
    /// threshold, a larger threshold that cuts through a populated bucket of
    /// `previous`, or switching between exponential and custom buckets. The
    /// sum is ignored. With different custom bounds, the cumulative counts
    /// at the common bounds are compared.
    pub fn detect_reset(&self, previous: &FloatHistogram) -> bool {
        match self.counter_reset_hint {
            CounterResetHint::Reset => return true,
            CounterResetHint::NotReset => return false,
            CounterResetHint::Unknown | CounterResetHint::Gauge => {}
        }
        if self.count < previous.count {
            return true;
        }
        if self.uses_custom_buckets() {
            if !previous.uses_custom_buckets() {
                return true;
            }
            if !custom_bounds_match(&self.custom_values, &previous.custom_values) {
                return self.detect_reset_mismatched_bounds(previous);
            }
        }
        if self.schema > previous.schema {
            return true;
        }
        if self.zero_threshold < previous.zero_threshold {
            return true;
        }
        let (previous_zero, threshold, _) =
            previous.zero_count_for_larger_threshold(self.zero_threshold, None);
        if threshold != self.zero_threshold {
            return true;
        }
        if self.zero_count < previous_zero {
            return true;
        }
        let zt = self.zero_threshold;
        detect_reset_walk(
            ForwardIter::new(self, true, zt, self.schema),
            ForwardIter::new(previous, true, zt, self.schema),
        ) || detect_reset_walk(
            ForwardIter::new(self, false, zt, self.schema),
            ForwardIter::new(previous, false, zt, self.schema),
        )
    }

    /// Exact equality (Prometheus `Equals`): same schema, zero threshold
    /// and custom bounds (compared as numbers); count, sum, zero count and
    /// every bucket bit for bit; the same bucket layout, where zero-length
    /// spans are folded into the next span first. Buckets must match one
    /// for one: an explicit empty bucket differs from a missing one. The
    /// counter-reset hint is not compared.
    pub fn equals(&self, other: &FloatHistogram) -> bool {
        if self.schema != other.schema
            || self.count.to_bits() != other.count.to_bits()
            || self.sum.to_bits() != other.sum.to_bits()
        {
            return false;
        }
        if self.uses_custom_buckets()
            && !custom_bounds_match(&self.custom_values, &other.custom_values)
        {
            return false;
        }
        if self.zero_threshold != other.zero_threshold
            || self.zero_count.to_bits() != other.zero_count.to_bits()
        {
            return false;
        }
        spans_match(&self.negative_spans, &other.negative_spans)
            && bits_match(&self.negative_buckets, &other.negative_buckets)
            && spans_match(&self.positive_spans, &other.positive_spans)
            && bits_match(&self.positive_buckets, &other.positive_buckets)
    }

    /// The zero bucket `[-threshold, threshold]` (Prometheus `ZeroBucket`;
    /// upstream panics for custom-bucket histograms, here it is simply the
    /// empty `[0,0]` bucket those have).
    pub fn zero_bucket(&self) -> Bucket {
        Bucket {
            boundaries: 3,
            lower: -self.zero_threshold,
            upper: self.zero_threshold,
            count: self.zero_count,
        }
    }

    /// Every stored bucket, empty ones included, from the lowest to the
    /// highest: negative buckets from the most negative up, the zero bucket
    /// (only if its count is above 0), then the positive buckets
    /// (Prometheus `AllBucketIterator`). A negative or positive bucket that
    /// reaches into the zero bucket has that end moved to the zero
    /// threshold. Custom-bucket histograms list their buckets with bounds
    /// from `custom_values`, the first from −Inf, the last to +Inf.
    pub fn all_buckets(&self) -> Vec<Bucket> {
        let zt = self.zero_threshold;
        let mut out =
            Vec::with_capacity(self.negative_buckets.len() + self.positive_buckets.len() + 1);
        for (idx, count) in ReverseIter::new(&self.negative_spans, &self.negative_buckets) {
            out.push(clamp_outer(
                make_bucket(idx, count, false, self.schema, &[]),
                zt,
            ));
        }
        if self.zero_count > 0.0 && !self.uses_custom_buckets() {
            out.push(self.zero_bucket());
        }
        for (idx, count) in ForwardIter::new(self, true, 0.0, self.schema) {
            out.push(clamp_outer(
                make_bucket(idx, count, true, self.schema, &self.custom_values),
                zt,
            ));
        }
        out
    }

    /// [`FloatHistogram::all_buckets`] from the highest bucket down
    /// (Prometheus `AllReverseBucketIterator`, which `histogram_quantile`
    /// walks for quantiles above 0.5).
    pub fn all_reverse_buckets(&self) -> Vec<Bucket> {
        let zt = self.zero_threshold;
        let mut out =
            Vec::with_capacity(self.negative_buckets.len() + self.positive_buckets.len() + 1);
        for (idx, count) in ReverseIter::new(&self.positive_spans, &self.positive_buckets) {
            out.push(clamp_outer(
                make_bucket(idx, count, true, self.schema, &self.custom_values),
                zt,
            ));
        }
        if self.zero_count > 0.0 && !self.uses_custom_buckets() {
            out.push(self.zero_bucket());
        }
        for (idx, count) in ForwardIter::new(self, false, 0.0, self.schema) {
            out.push(clamp_outer(
                make_bucket(idx, count, false, self.schema, &[]),
                zt,
            ));
        }
        out
    }

    /// Whether the count, the zero count, the sum or any bucket is ±Inf
    /// (Prometheus `HasOverflow`; `avg` switches to an incremental mean
    /// when a running sum overflows).
    pub fn has_overflow(&self) -> bool {
        self.zero_count.is_infinite()
            || self.count.is_infinite()
            || self.sum.is_infinite()
            || self.positive_buckets.iter().any(|b| b.is_infinite())
            || self.negative_buckets.iter().any(|b| b.is_infinite())
    }

    /// One side's stored buckets with bounds, empty ones included, going
    /// away from zero (upstream's `PositiveBucketIterator` and
    /// `NegativeBucketIterator`).
    pub(crate) fn side_buckets(&self, positive: bool) -> Vec<Bucket> {
        let custom: &[f64] = if positive { &self.custom_values } else { &[] };
        ForwardIter::new(self, positive, 0.0, self.schema)
            .map(|(idx, count)| make_bucket(idx, count, positive, self.schema, custom))
            .collect()
    }

    // ---- Internals ----

    fn add_or_sub_in_place(
        &mut self,
        other: &FloatHistogram,
        negative: bool,
    ) -> Result<OpFlags, HistogramError> {
        if self.uses_custom_buckets() != other.uses_custom_buckets() {
            return Err(HistogramError::MixedExponentialCustom);
        }
        let mut flags = OpFlags {
            counter_reset_collision: self.adjust_counter_reset(other),
            nhcb_bounds_reconciled: false,
        };
        if !self.uses_custom_buckets() {
            let (other_zero, _) = self.reconcile_zero_buckets(other, None);
            if negative {
                self.zero_count -= other_zero;
            } else {
                self.zero_count += other_zero;
            }
        }
        if negative {
            self.count -= other.count;
            self.sum -= other.sum;
        } else {
            self.count += other.count;
            self.sum += other.sum;
        }

        if self.uses_custom_buckets() {
            if custom_bounds_match(&self.custom_values, &other.custom_values) {
                add_buckets(
                    self.schema,
                    self.zero_threshold,
                    negative,
                    SideMut {
                        spans: &mut self.positive_spans,
                        buckets: &mut self.positive_buckets,
                        comp: None,
                    },
                    Side {
                        spans: &other.positive_spans,
                        buckets: &other.positive_buckets,
                        comp: None,
                    },
                );
            } else {
                flags.nhcb_bounds_reconciled = true;
                let bounds = intersect_custom_bounds(&self.custom_values, &other.custom_values);
                let (spans, buckets, _) = add_custom_buckets_with_mismatches(
                    negative,
                    Side {
                        spans: &self.positive_spans,
                        buckets: &self.positive_buckets,
                        comp: None,
                    },
                    &self.custom_values,
                    Side {
                        spans: &other.positive_spans,
                        buckets: &other.positive_buckets,
                        comp: None,
                    },
                    &other.custom_values,
                    &bounds,
                );
                self.positive_spans = spans;
                self.positive_buckets = buckets;
                self.custom_values = bounds;
            }
            return Ok(flags);
        }

        if other.schema < self.schema {
            (self.positive_spans, self.positive_buckets) = reduce_resolution(
                &self.positive_spans,
                &self.positive_buckets,
                self.schema,
                other.schema,
            );
            (self.negative_spans, self.negative_buckets) = reduce_resolution(
                &self.negative_spans,
                &self.negative_buckets,
                self.schema,
                other.schema,
            );
            self.schema = other.schema;
        }
        let reduced_other = (other.schema > self.schema).then(|| {
            (
                reduce_resolution(
                    &other.positive_spans,
                    &other.positive_buckets,
                    other.schema,
                    self.schema,
                ),
                reduce_resolution(
                    &other.negative_spans,
                    &other.negative_buckets,
                    other.schema,
                    self.schema,
                ),
            )
        });
        let (other_pos, other_neg) = match &reduced_other {
            Some(((ps, pb), (ns, nb))) => (
                Side {
                    spans: ps,
                    buckets: pb,
                    comp: None,
                },
                Side {
                    spans: ns,
                    buckets: nb,
                    comp: None,
                },
            ),
            None => (
                Side {
                    spans: &other.positive_spans,
                    buckets: &other.positive_buckets,
                    comp: None,
                },
                Side {
                    spans: &other.negative_spans,
                    buckets: &other.negative_buckets,
                    comp: None,
                },
            ),
        };
        add_buckets(
            self.schema,
            self.zero_threshold,
            negative,
            SideMut {
                spans: &mut self.positive_spans,
                buckets: &mut self.positive_buckets,
                comp: None,
            },
            other_pos,
        );
        add_buckets(
            self.schema,
            self.zero_threshold,
            negative,
            SideMut {
                spans: &mut self.negative_spans,
                buckets: &mut self.negative_buckets,
                comp: None,
            },
            other_neg,
        );
        Ok(flags)
    }

    /// Upstream `adjustCounterReset`: the hint of a sum or difference.
    /// Returns whether `Reset` met `NotReset`.
    fn adjust_counter_reset(&mut self, other: &FloatHistogram) -> bool {
        use CounterResetHint::{Gauge, Unknown};
        let (mine, theirs) = (self.counter_reset_hint, other.counter_reset_hint);
        // Upstream's order: a gauge on either side wins over "unknown".
        if mine == theirs || mine == Gauge {
            return false;
        }
        if theirs == Gauge {
            self.counter_reset_hint = Gauge;
            return false;
        }
        if mine == Unknown {
            return false;
        }
        if theirs == Unknown {
            self.counter_reset_hint = Unknown;
            return false;
        }
        // Reset against NotReset.
        self.counter_reset_hint = Unknown;
        true
    }

    /// Upstream `newCompensationHistogram`: the layout of `self`, every
    /// value zero.
    fn new_compensation(&self) -> FloatHistogram {
        FloatHistogram {
            counter_reset_hint: self.counter_reset_hint,
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count: 0.0,
            count: 0.0,
            sum: 0.0,
            positive_spans: self.positive_spans.clone(),
            negative_spans: self.negative_spans.clone(),
            positive_buckets: vec![0.0; self.positive_buckets.len()],
            negative_buckets: if self.uses_custom_buckets() {
                Vec::new()
            } else {
                vec![0.0; self.negative_buckets.len()]
            },
            custom_values: self.custom_values.clone(),
        }
    }

    /// Compacts both sides; with a compensation histogram, its buckets are
    /// kept parallel (a bucket is empty only if its compensation is 0 too).
    fn compact_in_place(&mut self, max_empty: usize, c: Option<&mut FloatHistogram>) {
        match c {
            Some(c) => {
                compact_buckets(
                    &mut self.positive_buckets,
                    Some(&mut c.positive_buckets),
                    &mut self.positive_spans,
                    max_empty,
                );
                compact_buckets(
                    &mut self.negative_buckets,
                    Some(&mut c.negative_buckets),
                    &mut self.negative_spans,
                    max_empty,
                );
            }
            None => {
                compact_buckets(
                    &mut self.positive_buckets,
                    None,
                    &mut self.positive_spans,
                    max_empty,
                );
                compact_buckets(
                    &mut self.negative_buckets,
                    None,
                    &mut self.negative_spans,
                    max_empty,
                );
            }
        }
    }

    /// Upstream `zeroCountForLargerThreshold`: the zero count if the zero
    /// threshold were `larger`, moved up to the edge of a populated bucket
    /// it would cut through. Returns (zero count, threshold, compensation of
    /// the zero count); with `c`, the compensation of every swallowed bucket
    /// is added too.
    fn zero_count_for_larger_threshold(
        &self,
        larger: f64,
        c: Option<&FloatHistogram>,
    ) -> (f64, f64, f64) {
        let mut c_zero = c.map_or(0.0, |c| c.zero_count);
        if larger == self.zero_threshold {
            return (self.zero_count, larger, c_zero);
        }
        if larger < self.zero_threshold || larger.is_nan() {
            // Upstream panics (smaller) or merges everything (NaN); keep
            // what we have.
            return (self.zero_count, self.zero_threshold, c_zero);
        }
        let mut larger = larger;
        // Each restart moves the threshold past one more negative bucket,
        // so this is bounded by the bucket count.
        for _ in 0..=self.negative_buckets.len() + 1 {
            let mut zero = self.zero_count;
            for (i, (idx, count)) in ForwardIter::new(self, true, 0.0, self.schema).enumerate() {
                let b = make_bucket(idx, count, true, self.schema, &self.custom_values);
                if b.lower >= larger {
                    break;
                }
                (zero, c_zero) = kahan_inc(count, zero, c_zero);
                if let Some(c) = c {
                    let comp = c.positive_buckets.get(i).copied().unwrap_or(0.0);
                    (zero, c_zero) = kahan_inc(comp, zero, c_zero);
                }
                if b.upper > larger {
                    if count != 0.0 {
                        larger = b.upper;
                    }
                    break;
                }
            }
            let mut restart = false;
            for (i, (idx, count)) in ForwardIter::new(self, false, 0.0, self.schema).enumerate() {
                let b = make_bucket(idx, count, false, self.schema, &[]);
                if b.upper <= -larger {
                    break;
                }
                (zero, c_zero) = kahan_inc(count, zero, c_zero);
                if let Some(c) = c {
                    let comp = c.negative_buckets.get(i).copied().unwrap_or(0.0);
                    (zero, c_zero) = kahan_inc(comp, zero, c_zero);
                }
                if b.lower < -larger {
                    if count != 0.0 {
                        larger = -b.lower;
                        restart = true;
                    }
                    break;
                }
            }
            if !restart {
                return (zero, larger, c_zero);
            }
        }
        (self.zero_count, self.zero_threshold, c_zero)
    }

    /// Upstream `trimBucketsInZeroBucket`: zeroes the buckets now inside
    /// the zero bucket (their counts are already in the zero count) and
    /// compacts them away.
    fn trim_buckets_in_zero_bucket(&mut self, mut c: Option<&mut FloatHistogram>) {
        let zt = self.zero_threshold;
        let inside_pos = ForwardIter::new(self, true, 0.0, self.schema)
            .take_while(|&(idx, count)| {
                make_bucket(idx, count, true, self.schema, &self.custom_values).lower < zt
            })
            .count();
        let inside_neg = ForwardIter::new(self, false, 0.0, self.schema)
            .take_while(|&(idx, count)| {
                make_bucket(idx, count, false, self.schema, &[]).upper > -zt
            })
            .count();
        for i in 0..inside_pos {
            zero_at(&mut self.positive_buckets, i);
            if let Some(c) = c.as_deref_mut() {
                zero_at(&mut c.positive_buckets, i);
            }
        }
        for i in 0..inside_neg {
            zero_at(&mut self.negative_buckets, i);
            if let Some(c) = c.as_deref_mut() {
                zero_at(&mut c.negative_buckets, i);
            }
        }
        self.compact_in_place(0, c);
    }

    /// Upstream `reconcileZeroBuckets`: widens the zero bucket of `self`
    /// (and of `c`) until both histograms' zero buckets fit and neither
    /// threshold cuts a populated bucket. Returns the zero count `other`
    /// would have with that threshold, and the compensation of that count.
    fn reconcile_zero_buckets(
        &mut self,
        other: &FloatHistogram,
        mut c: Option<&mut FloatHistogram>,
    ) -> (f64, f64) {
        let mut other_zero = other.zero_count;
        let mut other_zero_c = 0.0;
        let mut other_threshold = other.zero_threshold;
        // Every round moves a threshold past at least one bucket.
        let max_rounds = 2
            * (self.positive_buckets.len()
                + self.negative_buckets.len()
                + other.positive_buckets.len()
                + other.negative_buckets.len())
            + 4;
        let mut rounds = 0;
        while other_threshold != self.zero_threshold {
            if other_threshold.is_nan() || self.zero_threshold.is_nan() || rounds > max_rounds {
                break;
            }
            rounds += 1;
            if self.zero_threshold > other_threshold {
                (other_zero, other_threshold, other_zero_c) =
                    other.zero_count_for_larger_threshold(self.zero_threshold, None);
            }
            if other_threshold > self.zero_threshold {
                let (zero, threshold, zero_c) =
                    self.zero_count_for_larger_threshold(other_threshold, c.as_deref());
                self.zero_count = zero;
                self.zero_threshold = threshold;
                if let Some(c) = c.as_deref_mut() {
                    c.zero_count = zero_c;
                }
                self.trim_buckets_in_zero_bucket(c.as_deref_mut());
            }
        }
        (other_zero, other_zero_c)
    }

    /// Upstream `detectResetWithMismatchedCustomBounds`: compares the
    /// cumulative counts of both histograms at every bound they share
    /// (and +Inf).
    fn detect_reset_mismatched_bounds(&self, previous: &FloatHistogram) -> bool {
        let mut curr = RollUp::new(self);
        let mut prev = RollUp::new(previous);
        let (cb, pb) = (&self.custom_values, &previous.custom_values);
        let (mut ci, mut pi) = (0usize, 0usize);
        while ci <= cb.len() && pi <= pb.len() {
            let c_bound = cb.get(ci).copied().unwrap_or(f64::INFINITY);
            let p_bound = pb.get(pi).copied().unwrap_or(f64::INFINITY);
            if c_bound == p_bound {
                let c_sum = curr.sum_up_to(c_bound);
                let p_sum = prev.sum_up_to(c_bound);
                if c_sum < p_sum {
                    return true;
                }
                ci += 1;
                pi += 1;
            } else if c_bound < p_bound {
                ci += 1;
            } else {
                pi += 1;
            }
        }
        false
    }
}

/// Upstream's `rollupSumForBound` state: walks a custom-bucket histogram's
/// positive buckets and sums those not yet summed whose upper bound is at
/// most a given bound.
struct RollUp<'a> {
    iter: ForwardIter<'a>,
    h: &'a FloatHistogram,
    started: bool,
    has_more: bool,
    current: Option<Bucket>,
}

impl<'a> RollUp<'a> {
    fn new(h: &'a FloatHistogram) -> Self {
        RollUp {
            iter: ForwardIter::new(h, true, 0.0, h.schema),
            h,
            started: false,
            has_more: false,
            current: None,
        }
    }

    fn next_bucket(&mut self) -> Option<Bucket> {
        let (idx, count) = self.iter.next()?;
        Some(make_bucket(
            idx,
            count,
            true,
            self.h.schema,
            &self.h.custom_values,
        ))
    }

    fn sum_up_to(&mut self, bound: f64) -> f64 {
        if self.started && !self.has_more {
            return 0.0;
        }
        if !self.started {
            self.started = true;
            self.current = self.next_bucket();
        }
        let mut sum = 0.0;
        loop {
            let Some(b) = self.current else {
                self.has_more = false;
                return sum;
            };
            if b.upper > bound {
                self.has_more = true;
                return sum;
            }
            sum += b.count;
            self.current = self.next_bucket();
        }
    }
}

/// Upstream `kahansum.Inc`: Neumaier's variant of Kahan summation. The
/// compensation is reset when the sum overflows.
pub fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

fn is_exponential(schema: i32) -> bool {
    (MIN_SCHEMA..=MAX_SCHEMA).contains(&schema)
}

/// `i64` to `i32`, saturating (span offsets of absurd inputs).
fn sat_i32(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX })
}

/// `usize` to `u32`, saturating.
fn sat_u32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn zero_at(v: &mut [f64], i: usize) {
    if let Some(x) = v.get_mut(i) {
        *x = 0.0;
    }
}

/// Upstream `CustomBucketBoundsMatch`: same length, equal as numbers.
fn custom_bounds_match(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

fn bits_match(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Upstream `spansMatch`: the same layout once zero-length spans are folded
/// into the next span.
fn spans_match(s1: &[Span], s2: &[Span]) -> bool {
    fn next_span(s: &[Span], i: &mut usize) -> Span {
        let mut cur = s[*i];
        *i += 1;
        if cur.length == 0 {
            while *i < s.len() && s[*i].length == 0 {
                cur.offset = cur.offset.saturating_add(s[*i].offset);
                *i += 1;
            }
            if *i < s.len() {
                cur.offset = cur.offset.saturating_add(s[*i].offset);
                cur.length = s[*i].length;
                *i += 1;
            }
        }
        cur
    }
    let all_empty = |s: &[Span]| s.iter().all(|x| x.length == 0);
    if s1.is_empty() && s2.is_empty() {
        return true;
    }
    let (mut i1, mut i2) = (0usize, 0usize);
    loop {
        if i1 >= s1.len() {
            return all_empty(&s2[i2..]);
        }
        if i2 >= s2.len() {
            return all_empty(&s1[i1..]);
        }
        let a = next_span(s1, &mut i1);
        let b = next_span(s2, &mut i2);
        if a.length == 0 && b.length == 0 {
            return true;
        }
        if a != b {
            return false;
        }
    }
}

/// Upstream `getBound`: the upper bound of bucket `idx`. Custom buckets:
/// `custom_values[idx]`, +Inf past the last bound, −Inf below index 0.
fn get_bound(idx: i64, schema: i32, custom_values: &[f64]) -> f64 {
    if schema == CUSTOM_BUCKETS_SCHEMA {
        return match usize::try_from(idx) {
            Ok(i) => custom_values.get(i).copied().unwrap_or(f64::INFINITY),
            Err(_) => f64::NEG_INFINITY,
        };
    }
    bucket_bound(sat_i32(idx), schema)
}

/// A bucket with its bounds and which ends are inclusive, as upstream's
/// `baseBucketIterator.at`.
fn make_bucket(idx: i64, count: f64, positive: bool, schema: i32, custom_values: &[f64]) -> Bucket {
    let (lower, upper) = if positive {
        (
            get_bound(idx.saturating_sub(1), schema, custom_values),
            get_bound(idx, schema, custom_values),
        )
    } else {
        (
            -get_bound(idx, schema, custom_values),
            -get_bound(idx.saturating_sub(1), schema, custom_values),
        )
    };
    let (lower_inclusive, upper_inclusive) = if schema == CUSTOM_BUCKETS_SCHEMA {
        (idx == 0, true)
    } else {
        (lower < 0.0, upper > 0.0)
    };
    let boundaries = match (lower_inclusive, upper_inclusive) {
        (false, true) => 0,
        (true, false) => 1,
        (false, false) => 2,
        (true, true) => 3,
    };
    Bucket {
        boundaries,
        lower,
        upper,
        count,
    }
}

/// The bound adjustment of upstream's `allFloatBucketIterator`: a bucket
/// reaching into the zero bucket ends at the zero threshold.
fn clamp_outer(mut b: Bucket, zt: f64) -> Bucket {
    if b.upper < 0.0 && b.upper > -zt {
        b.upper = -zt;
    } else if b.lower > 0.0 && b.lower < zt {
        b.lower = zt;
    }
    b
}

/// Upstream `targetIdx`: the index at the coarser `target` schema of bucket
/// `idx` at `origin`.
fn target_idx(idx: i64, origin: i32, target: i32) -> i64 {
    let shift = (i64::from(origin) - i64::from(target)).clamp(0, 62);
    (idx.saturating_sub(1) >> shift).saturating_add(1)
}

/// Upstream `floatBucketIterator`: one side's buckets going away from zero
/// as `(index, count)`, merged down to `target` (≤ the histogram's
/// schema), skipping exponential buckets whose upper bound is at most
/// `abs_start` (unless that is 0).
struct ForwardIter<'a> {
    spans: &'a [Span],
    buckets: &'a [f64],
    schema: i32,
    target: i32,
    abs_start: f64,
    reached_start: bool,
    spans_idx: usize,
    idx_in_span: u32,
    buckets_idx: usize,
    orig_idx: i64,
    curr_idx: i64,
}

impl<'a> ForwardIter<'a> {
    fn new(h: &'a FloatHistogram, positive: bool, abs_start: f64, target: i32) -> Self {
        let (spans, buckets) = if positive {
            (&h.positive_spans[..], &h.positive_buckets[..])
        } else {
            (&h.negative_spans[..], &h.negative_buckets[..])
        };
        ForwardIter {
            spans,
            buckets,
            schema: h.schema,
            target,
            abs_start,
            reached_start: abs_start == 0.0,
            spans_idx: 0,
            idx_in_span: 0,
            buckets_idx: 0,
            orig_idx: 0,
            curr_idx: 0,
        }
    }

    fn next_raw(&mut self) -> Option<(i64, f64)> {
        let mut span = *self.spans.get(self.spans_idx)?;
        if self.schema == self.target {
            if self.buckets_idx == 0 {
                self.curr_idx = i64::from(span.offset);
            } else {
                self.curr_idx = self.curr_idx.saturating_add(1);
            }
            if self.buckets_idx >= self.buckets.len() {
                return None;
            }
            while self.idx_in_span >= span.length {
                self.idx_in_span = 0;
                self.spans_idx += 1;
                span = *self.spans.get(self.spans_idx)?;
                self.curr_idx = self.curr_idx.saturating_add(i64::from(span.offset));
            }
            let count = self.buckets[self.buckets_idx];
            self.idx_in_span += 1;
            self.buckets_idx += 1;
            return Some((self.curr_idx, count));
        }
        // Merge every original bucket that falls into one target bucket;
        // work on copies so the bucket that starts the next target bucket
        // is not consumed.
        let (mut orig, mut spans_idx, mut idx_in_span) =
            (self.orig_idx, self.spans_idx, self.idx_in_span);
        let mut first = true;
        let mut count = 0.0;
        'merge: loop {
            if self.buckets_idx == 0 {
                orig = i64::from(span.offset);
            } else {
                orig = orig.saturating_add(1);
            }
            if self.buckets_idx >= self.buckets.len() {
                if first {
                    return None;
                }
                break;
            }
            while idx_in_span >= span.length {
                idx_in_span = 0;
                spans_idx += 1;
                match self.spans.get(spans_idx) {
                    Some(s) => span = *s,
                    None if first => return None,
                    None => break 'merge,
                }
                orig = orig.saturating_add(i64::from(span.offset));
            }
            let t = target_idx(orig, self.schema, self.target);
            if first {
                self.curr_idx = t;
                first = false;
            } else if t != self.curr_idx {
                break;
            }
            count += self.buckets[self.buckets_idx];
            idx_in_span += 1;
            self.buckets_idx += 1;
            self.orig_idx = orig;
            self.spans_idx = spans_idx;
            self.idx_in_span = idx_in_span;
        }
        Some((self.curr_idx, count))
    }
}

impl Iterator for ForwardIter<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        loop {
            let (idx, count) = self.next_raw()?;
            if !self.reached_start
                && is_exponential(self.target)
                && bucket_bound(sat_i32(idx), self.target) <= self.abs_start
            {
                continue;
            }
            self.reached_start = true;
            return Some((idx, count));
        }
    }
}

/// Upstream `reverseFloatBucketIterator`: one side's buckets going towards
/// zero as `(index, count)`.
struct ReverseIter<'a> {
    spans: &'a [Span],
    buckets: &'a [f64],
    spans_idx: Option<usize>,
    buckets_idx: Option<usize>,
    idx_in_span: i64,
    curr_idx: i64,
}

impl<'a> ReverseIter<'a> {
    fn new(spans: &'a [Span], buckets: &'a [f64]) -> Self {
        let curr_idx = spans.iter().fold(0i64, |acc, s| {
            acc.saturating_add(i64::from(s.offset))
                .saturating_add(i64::from(s.length))
        });
        ReverseIter {
            spans,
            buckets,
            spans_idx: spans.len().checked_sub(1),
            buckets_idx: buckets.len().checked_sub(1),
            idx_in_span: spans.last().map_or(0, |s| i64::from(s.length) - 1),
            curr_idx,
        }
    }
}

impl Iterator for ReverseIter<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        self.curr_idx = self.curr_idx.saturating_sub(1);
        let bi = self.buckets_idx?;
        while self.idx_in_span < 0 {
            let si = self.spans_idx?.checked_sub(1)?;
            self.spans_idx = Some(si);
            self.idx_in_span = i64::from(self.spans[si].length) - 1;
            self.curr_idx = self
                .curr_idx
                .saturating_sub(i64::from(self.spans[si + 1].offset));
        }
        let count = self.buckets[bi];
        self.buckets_idx = bi.checked_sub(1);
        self.idx_in_span -= 1;
        Some((self.curr_idx, count))
    }
}

/// Upstream's `detectReset` over two bucket walks of the same schema.
/// Where upstream drains the previous walk without looking at the buckets
/// it skips, only the current previous bucket decides; kept as is.
fn detect_reset_walk(mut curr: ForwardIter<'_>, mut prev: ForwardIter<'_>) -> bool {
    let Some(mut p) = prev.next() else {
        return false;
    };
    let Some(mut c) = curr.next() else {
        return p.1 != 0.0;
    };
    loop {
        while c.0 < p.0 {
            match curr.next() {
                Some(next) => c = next,
                None => return p.1 != 0.0,
            }
        }
        if c.0 > p.0 {
            if p.1 != 0.0 {
                return true;
            }
        } else if c.1 < p.1 {
            return true;
        }
        match prev.next() {
            Some(next) => p = next,
            None => return false,
        }
    }
}

/// Upstream `reduceResolution` for absolute counts: the spans and buckets
/// at the coarser `target` schema. Stops at the last bucket when the spans
/// promise more; a bucket whose index goes backwards (a negative offset
/// after the first span) is dropped, as upstream's switch does.
fn reduce_resolution(
    spans: &[Span],
    buckets: &[f64],
    origin: i32,
    target: i32,
) -> (Vec<Span>, Vec<f64>) {
    let (s, b, _) = reduce_impl(spans, buckets, None, origin, target);
    (s, b)
}

/// Upstream `kahanReduceResolution`: like [`reduce_resolution`], merging
/// buckets with Kahan summation and carrying their compensation.
fn kahan_reduce_resolution(
    spans: &[Span],
    buckets: &[f64],
    comp: &[f64],
    origin: i32,
    target: i32,
) -> (Vec<Span>, Vec<f64>, Vec<f64>) {
    reduce_impl(spans, buckets, Some(comp), origin, target)
}

fn reduce_impl(
    spans: &[Span],
    buckets: &[f64],
    comp: Option<&[f64]>,
    origin: i32,
    target: i32,
) -> (Vec<Span>, Vec<f64>, Vec<f64>) {
    let mut out_spans: Vec<Span> = Vec::new();
    let mut out_buckets: Vec<f64> = Vec::with_capacity(buckets.len());
    let mut out_comp: Vec<f64> = Vec::new();
    let mut bucket_idx: i64 = 0;
    let mut pos = 0usize;
    let mut last_target: i64 = 0;
    'spans: for span in spans {
        bucket_idx = bucket_idx.saturating_add(i64::from(span.offset));
        for _ in 0..span.length {
            let Some(&value) = buckets.get(pos) else {
                break 'spans;
            };
            let value_c = comp.and_then(|c| c.get(pos).copied()).unwrap_or(0.0);
            let t = target_idx(bucket_idx, origin, target);
            let starts_bucket = if out_spans.is_empty() {
                out_spans.push(Span {
                    offset: sat_i32(t),
                    length: 1,
                });
                last_target = t;
                true
            } else if t == last_target {
                if let (Some(b), Some(c)) = (out_buckets.last_mut(), out_comp.last_mut()) {
                    if comp.is_some() {
                        (*b, *c) = kahan_inc(value, *b, *c);
                        (*b, *c) = kahan_inc(value_c, *b, *c);
                    } else {
                        *b += value;
                    }
                }
                false
            } else if t == last_target.saturating_add(1) {
                if let Some(s) = out_spans.last_mut() {
                    s.length = s.length.saturating_add(1);
                }
                last_target = t;
                true
            } else if t > last_target {
                out_spans.push(Span {
                    offset: sat_i32(t - last_target - 1),
                    length: 1,
                });
                last_target = t;
                true
            } else {
                false
            };
            if starts_bucket {
                out_buckets.push(value);
                out_comp.push(value_c);
            }
            bucket_idx = bucket_idx.saturating_add(1);
            pos += 1;
        }
    }
    if comp.is_none() {
        out_comp.clear();
    }
    (out_spans, out_buckets, out_comp)
}

/// One side (positive or negative) of a histogram being read.
struct Side<'a> {
    spans: &'a [Span],
    buckets: &'a [f64],
    comp: Option<&'a [f64]>,
}

/// One side of the histogram being added to.
struct SideMut<'a> {
    spans: &'a mut Vec<Span>,
    buckets: &'a mut Vec<f64>,
    comp: Option<&'a mut Vec<f64>>,
}

/// Adds `b` (Kahan-compensated when `a` has compensation) to bucket `i`.
fn accumulate(a: &mut SideMut<'_>, i: usize, b: f64, b_comp: f64) {
    let Some(x) = a.buckets.get_mut(i) else {
        return;
    };
    match a.comp.as_deref_mut().and_then(|c| c.get_mut(i)) {
        None => *x += b,
        Some(c) => {
            (*x, *c) = kahan_inc(b, *x, *c);
            if b_comp != 0.0 {
                (*x, *c) = kahan_inc(b_comp, *x, *c);
            }
        }
    }
}

/// Inserts a new bucket at position `i`; false if `i` is past the end
/// (spans that promise more buckets than exist).
fn insert_bucket(a: &mut SideMut<'_>, i: usize, b: f64, b_comp: f64) -> bool {
    if i > a.buckets.len() {
        return false;
    }
    a.buckets.insert(i, b);
    if let Some(c) = a.comp.as_deref_mut() {
        let at = i.min(c.len());
        c.insert(at, b_comp);
    }
    true
}

/// Upstream `addBuckets`/`kahanAddBuckets`: adds (or, with `negative`,
/// subtracts) the buckets of `b` into `a`, inserting buckets and extending
/// or creating spans where `a` has none, in upstream's span shapes. Buckets
/// of `b` whose upper bound is at most `threshold` (they are inside the
/// zero bucket) are skipped for exponential schemas.
fn add_buckets(schema: i32, threshold: f64, negative: bool, mut a: SideMut<'_>, b: Side<'_>) {
    if let Some(c) = a.comp.as_deref_mut() {
        c.resize(a.buckets.len(), 0.0);
    }
    let exponential = is_exponential(schema);
    // Position in `a` of the last bucket handled: span, bucket, index in
    // span, absolute index. `None` until the walk is inside `a`'s spans.
    let mut cursor: Option<(usize, usize, i64)> = None;
    let mut index_a: i64 = 0;
    let mut index_b: i64 = 0;
    let mut b_pos = 0usize;
    let mut below_threshold = true;
    for span_b in b.spans {
        index_b = index_b.saturating_add(i64::from(span_b.offset));
        for _ in 0..span_b.length {
            'body: {
                if below_threshold
                    && exponential
                    && bucket_bound(sat_i32(index_b), schema) <= threshold
                {
                    break 'body;
                }
                below_threshold = false;
                let Some(&raw) = b.buckets.get(b_pos) else {
                    return;
                };
                let mut bucket_b = raw;
                let mut comp_b = b.comp.and_then(|c| c.get(b_pos).copied()).unwrap_or(0.0);
                if negative {
                    bucket_b *= -1.0;
                    comp_b *= -1.0;
                }
                let (mut i_span, mut i_bucket, mut i_in_span) = match cursor {
                    Some(c) => c,
                    None => {
                        let first_offset = a.spans.first().map(|s| i64::from(s.offset));
                        match first_offset {
                            Some(off) if off == index_b => {
                                // Add to the first bucket.
                                accumulate(&mut a, 0, bucket_b, comp_b);
                                break 'body;
                            }
                            Some(off) if off < index_b => {
                                index_a = off;
                                (0, 0, 0)
                            }
                            _ => {
                                // Before all buckets of `a`.
                                if !insert_bucket(&mut a, 0, bucket_b, comp_b) {
                                    return;
                                }
                                if let Some(first) = a.spans.first_mut()
                                    && i64::from(first.offset) == index_b + 1
                                {
                                    first.length = first.length.saturating_add(1);
                                    first.offset = first.offset.saturating_sub(1);
                                    break 'body;
                                }
                                a.spans.insert(
                                    0,
                                    Span {
                                        offset: sat_i32(index_b),
                                        length: 1,
                                    },
                                );
                                if let Some(second) = a.spans.get_mut(1) {
                                    // Make the former first span's absolute
                                    // offset relative.
                                    second.offset = sat_i32(
                                        i64::from(second.offset)
                                            .saturating_sub(index_b.saturating_add(1)),
                                    );
                                }
                                break 'body;
                            }
                        }
                    }
                };
                let mut delta = index_b.saturating_sub(index_a);
                loop {
                    let Some(span) = a.spans.get(i_span) else {
                        return;
                    };
                    let remaining = i64::from(span.length) - i_in_span;
                    if delta < remaining {
                        // Inside the current span.
                        i_bucket += usize::try_from(delta).unwrap_or(0);
                        i_in_span += delta;
                        accumulate(&mut a, i_bucket, bucket_b, comp_b);
                        cursor = Some((i_span, i_bucket, i_in_span));
                        break 'body;
                    }
                    delta -= remaining;
                    i_bucket += usize::try_from(remaining).unwrap_or(0);
                    i_span += 1;
                    let next_offset = a.spans.get(i_span).map(|s| i64::from(s.offset));
                    match next_offset {
                        Some(off) if delta >= off => {
                            // Try the start of the next span.
                            delta -= off;
                            i_in_span = 0;
                        }
                        _ => {
                            // In the gap after the previous span (or after
                            // the last one).
                            if !insert_bucket(&mut a, i_bucket, bucket_b, comp_b) {
                                return;
                            }
                            if delta == 0 {
                                // Right after the previous span: extend it.
                                if let Some(next) = a.spans.get_mut(i_span) {
                                    next.offset = next.offset.saturating_sub(1);
                                }
                                i_span -= 1;
                                let prev = &mut a.spans[i_span];
                                i_in_span = i64::from(prev.length);
                                prev.length = prev.length.saturating_add(1);
                            } else if next_offset.is_some_and(|off| delta == off - 1) {
                                // Right before the next span: extend it.
                                i_in_span = 0;
                                let next = &mut a.spans[i_span];
                                next.offset = next.offset.saturating_sub(1);
                                next.length = next.length.saturating_add(1);
                            } else {
                                // A new span of its own.
                                i_in_span = 0;
                                if let Some(next) = a.spans.get_mut(i_span) {
                                    next.offset = sat_i32(
                                        i64::from(next.offset)
                                            .saturating_sub(delta.saturating_add(1)),
                                    );
                                }
                                a.spans.insert(
                                    i_span,
                                    Span {
                                        offset: sat_i32(delta),
                                        length: 1,
                                    },
                                );
                            }
                            cursor = Some((i_span, i_bucket, i_in_span));
                            break 'body;
                        }
                    }
                }
            }
            index_a = index_b;
            index_b = index_b.saturating_add(1);
            b_pos += 1;
        }
    }
}

/// Upstream `intersectCustomBucketBounds`: the bounds both lists have.
fn intersect_custom_bounds(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0usize, 0usize);
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(a[i]);
            i += 1;
            j += 1;
        } else if a[i] < b[j] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Upstream `addCustomBucketsWithMismatches`: maps both custom-bucket
/// histograms onto `bounds` (each bucket goes to the first bound at or
/// above its own upper bound, or to the +Inf bucket), adds or subtracts
/// them with Kahan summation (carrying `a`'s compensation when it has one)
/// and returns the non-empty buckets as spans, buckets and compensation.
fn add_custom_buckets_with_mismatches(
    negative: bool,
    a: Side<'_>,
    bounds_a: &[f64],
    b: Side<'_>,
    bounds_b: &[f64],
    bounds: &[f64],
) -> (Vec<Span>, Vec<f64>, Vec<f64>) {
    let n = bounds.len() + 1;
    let mut target = vec![0.0; n];
    let mut target_c = vec![0.0; n];
    let mut map = |side: &Side<'_>, own_bounds: &[f64], negative: bool| {
        let mut src_idx: i64 = 0;
        let mut pos = 0usize;
        let mut inter_idx = 0usize;
        for span in side.spans {
            src_idx = src_idx.saturating_add(i64::from(span.offset));
            for _ in 0..span.length {
                let Some(&value) = side.buckets.get(pos) else {
                    return;
                };
                let mut t = n - 1;
                if let Some(&src_bound) = usize::try_from(src_idx)
                    .ok()
                    .and_then(|i| own_bounds.get(i))
                {
                    while inter_idx < bounds.len() {
                        if bounds[inter_idx] >= src_bound {
                            t = inter_idx;
                            break;
                        }
                        inter_idx += 1;
                    }
                }
                if negative {
                    (target[t], target_c[t]) = kahan_inc(-value, target[t], target_c[t]);
                } else {
                    (target[t], target_c[t]) = kahan_inc(value, target[t], target_c[t]);
                    if let Some(comp) = side.comp {
                        let vc = comp.get(pos).copied().unwrap_or(0.0);
                        (target[t], target_c[t]) = kahan_inc(vc, target[t], target_c[t]);
                    }
                }
                src_idx = src_idx.saturating_add(1);
                pos += 1;
            }
        }
    };
    map(&a, bounds_a, false);
    map(&b, bounds_b, negative);

    let mut spans: Vec<Span> = Vec::new();
    let mut buckets = Vec::new();
    let mut comps = Vec::new();
    let mut last: Option<usize> = None;
    for (i, (&v, &c)) in target.iter().zip(&target_c).enumerate() {
        if v == 0.0 && c == 0.0 {
            continue;
        }
        buckets.push(v);
        comps.push(c);
        match (last, spans.last_mut()) {
            (Some(l), Some(s)) if i == l + 1 => s.length = s.length.saturating_add(1),
            _ => {
                let offset = match last {
                    Some(l) => i - l - 1,
                    None => i,
                };
                spans.push(Span {
                    offset: sat_i32(i64::try_from(offset).unwrap_or(i64::MAX)),
                    length: 1,
                });
            }
        }
        last = Some(i);
    }
    (spans, buckets, comps)
}

/// Upstream `compactBuckets` for absolute counts, with optional parallel
/// compensation buckets (a bucket is empty only if both are 0).
fn compact_buckets(
    buckets: &mut Vec<f64>,
    mut comp: Option<&mut Vec<f64>>,
    spans: &mut Vec<Span>,
    max_empty: usize,
) {
    if let Some(c) = comp.as_deref_mut() {
        c.resize(buckets.len(), 0.0);
    }
    let max_empty_i = i64::try_from(max_empty).unwrap_or(i64::MAX);
    // Fast path: nothing empty, nothing to merge.
    if !buckets.contains(&0.0)
        && !spans
            .iter()
            .any(|s| i64::from(s.offset) <= max_empty_i || s.length == 0)
    {
        return;
    }

    // Fold spans with offset 0 into their predecessor.
    if spans.len() > 1 {
        let mut w = 0usize;
        for i in 1..spans.len() {
            let s = spans[i];
            if s.offset == 0 {
                spans[w].length = spans[w].length.saturating_add(s.length);
                continue;
            }
            w += 1;
            spans[w] = s;
        }
        spans.truncate(w + 1);
    }
    // Drop zero-length spans, moving their offset to the next span.
    let mut w = 0usize;
    for i in 0..spans.len() {
        let s = spans[i];
        if s.length == 0 {
            if let Some(next) = spans.get_mut(i + 1) {
                next.offset = next.offset.saturating_add(s.offset);
            }
            continue;
        }
        spans[w] = s;
        w += 1;
    }
    spans.truncate(w);
    if spans.is_empty() {
        buckets.clear();
        if let Some(c) = comp.as_deref_mut() {
            c.clear();
        }
        return;
    }

    // Cut empty buckets at the start and end of spans, and runs of more
    // than `max_empty` in the middle of a span.
    let (mut ib, mut is, mut pos) = (0usize, 0usize, 0u32);
    while ib < buckets.len() && is < spans.len() {
        let span_len = spans[is].length;
        let n_empty = {
            let is_empty = |k: usize| {
                buckets[k] == 0.0 && comp.as_deref().is_none_or(|c| c.get(k) == Some(&0.0))
            };
            let mut n = 0usize;
            while (n as u64) + u64::from(pos) < u64::from(span_len)
                && ib + n < buckets.len()
                && is_empty(ib + n)
            {
                n += 1;
            }
            n
        };
        if n_empty == 0 {
            ib += 1;
            pos += 1;
            if pos >= spans[is].length {
                pos = 0;
                is += 1;
            }
            continue;
        }
        let left_in_span = (span_len - pos) as usize;
        if pos > 0 && n_empty < left_in_span && n_empty <= max_empty {
            // A short run inside a span: keep it.
            ib += n_empty;
            pos += sat_u32(n_empty);
            continue;
        }
        buckets.drain(ib..ib + n_empty);
        if let Some(c) = comp.as_deref_mut() {
            c.drain(ib..ib + n_empty);
        }
        let n_i32 = sat_i32(i64::try_from(n_empty).unwrap_or(i64::MAX));
        if pos == 0 {
            if n_empty == span_len as usize {
                // The whole span was empty.
                let offset = spans[is].offset;
                spans.remove(is);
                if let Some(next) = spans.get_mut(is) {
                    next.offset = next.offset.saturating_add(offset).saturating_add(n_i32);
                }
                continue;
            }
            spans[is].length -= sat_u32(n_empty);
            spans[is].offset = spans[is].offset.saturating_add(n_i32);
            continue;
        }
        // In the middle or at the end: split the span.
        let rest = span_len - pos - sat_u32(n_empty);
        spans[is].length = pos;
        is += 1;
        pos = 0;
        if rest == 0 {
            if let Some(next) = spans.get_mut(is) {
                next.offset = next.offset.saturating_add(n_i32);
            }
            continue;
        }
        spans.insert(
            is,
            Span {
                offset: n_i32,
                length: rest,
            },
        );
    }
    if max_empty == 0 || buckets.is_empty() {
        return;
    }

    // Merge spans at most `max_empty` buckets apart, filling the gaps with
    // empty buckets.
    let mut inserted = 0usize;
    let mut ib = spans[0].length as usize;
    let mut is = 1usize;
    while is < spans.len() {
        let gap = spans[is].offset;
        let len = spans[is].length as usize;
        let gap_u = usize::try_from(gap).unwrap_or(usize::MAX);
        if gap < 0
            || gap_u > max_empty
            || gap_u > MAX_INSERTED_EMPTY_BUCKETS - inserted
            || ib > buckets.len()
        {
            ib += len;
            is += 1;
            continue;
        }
        spans[is - 1].length = spans[is - 1]
            .length
            .saturating_add(sat_u32(gap_u))
            .saturating_add(spans[is].length);
        spans.remove(is);
        buckets.splice(ib..ib, std::iter::repeat_n(0.0, gap_u));
        if let Some(c) = comp.as_deref_mut() {
            let at = ib.min(c.len());
            c.splice(at..at, std::iter::repeat_n(0.0, gap_u));
        }
        inserted += gap_u;
        ib += gap_u + len;
    }
}

#[cfg(test)]
mod tests {
    //! Expected values are upstream's `float_histogram_test.go` cases and the
    //! PromQL test files, re-typed by hand; the few that are ours say so.

    use super::*;

    fn spans(s: &[(i32, u32)]) -> Vec<Span> {
        s.iter()
            .map(|&(offset, length)| Span { offset, length })
            .collect()
    }

    /// An exponential histogram: (zero threshold, zero count, count, sum).
    fn exp(
        schema: i32,
        (zero_threshold, zero_count, count, sum): (f64, f64, f64, f64),
        pos: &[(i32, u32)],
        pos_buckets: &[f64],
        neg: &[(i32, u32)],
        neg_buckets: &[f64],
    ) -> FloatHistogram {
        FloatHistogram {
            schema,
            zero_threshold,
            zero_count,
            count,
            sum,
            positive_spans: spans(pos),
            positive_buckets: pos_buckets.to_vec(),
            negative_spans: spans(neg),
            negative_buckets: neg_buckets.to_vec(),
            ..Default::default()
        }
    }

    fn nhcb(
        count: f64,
        sum: f64,
        pos: &[(i32, u32)],
        buckets: &[f64],
        bounds: &[f64],
    ) -> FloatHistogram {
        FloatHistogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            count,
            sum,
            positive_spans: spans(pos),
            positive_buckets: buckets.to_vec(),
            custom_values: bounds.to_vec(),
            ..Default::default()
        }
    }

    /// `a + b` and `b + a`, plain and Kahan (finished by adding the
    /// compensation, as upstream's test does), equal `want` after
    /// `compact(0)`.
    fn check_add(a: &FloatHistogram, b: &FloatHistogram, want: &FloatHistogram) {
        let want = want.compact(0);
        for (x, y) in [(a, b), (b, a)] {
            let got = x.add(y).unwrap().compact(0);
            assert_eq!(got, want, "plain add");
            let mut acc = x.clone();
            let mut c = None;
            acc.kahan_add(y, &mut c).unwrap();
            let got = acc.add(&c.unwrap()).unwrap().compact(0);
            assert_eq!(got, want, "kahan add");
        }
    }

    fn first() -> FloatHistogram {
        exp(
            0,
            (0.01, 11.0, 30.0, 2.345),
            &[(-2, 2), (1, 3)],
            &[1.0, 0.0, 3.0, 4.0, 7.0],
            &[(3, 2), (3, 2)],
            &[3.0, 1.0, 5.0, 6.0],
        )
    }

    /// `first()` with a gap of two buckets between its positive spans.
    fn first_gap() -> FloatHistogram {
        FloatHistogram {
            positive_spans: spans(&[(-2, 2), (2, 3)]),
            ..first()
        }
    }

    #[test]
    fn add_same_layout() {
        let b = exp(
            0,
            (0.01, 8.0, 21.0, 1.234),
            &[(-2, 2), (1, 3)],
            &[0.0, 0.0, 2.0, 3.0, 6.0],
            &[(3, 2), (3, 2)],
            &[1.0, 1.0, 4.0, 4.0],
        );
        let want = exp(
            0,
            (0.01, 19.0, 51.0, 3.579),
            &[(-2, 2), (1, 3)],
            &[1.0, 0.0, 5.0, 7.0, 13.0],
            &[(3, 2), (3, 2)],
            &[4.0, 2.0, 9.0, 10.0],
        );
        check_add(&first(), &b, &want);
    }

    #[test]
    fn add_same_layout_defined_differently_keeps_receiver_spans() {
        let a = exp(
            0,
            (0.01, 11.0, 30.0, 2.345),
            &[(-2, 2), (1, 1), (0, 2)],
            &[1.0, 0.0, 3.0, 4.0, 7.0],
            &[(3, 2), (3, 2)],
            &[3.0, 1.0, 5.0, 6.0],
        );
        let b = exp(
            0,
            (0.01, 8.0, 21.0, 1.234),
            &[(-2, 2), (1, 2), (0, 1)],
            &[0.0, 0.0, 2.0, 3.0, 6.0],
            &[(3, 7)],
            &[1.0, 1.0, 0.0, 0.0, 0.0, 4.0, 4.0],
        );
        // Before compaction, exactly upstream's spans.
        let got = a.add(&b).unwrap();
        assert_eq!(got.positive_spans, spans(&[(-2, 2), (1, 1), (0, 2)]));
        assert_eq!(got.positive_buckets, [1.0, 0.0, 5.0, 7.0, 13.0]);
        assert_eq!(got.negative_spans, spans(&[(3, 5), (0, 2)]));
        assert_eq!(got.negative_buckets, [4.0, 2.0, 0.0, 0.0, 0.0, 9.0, 10.0]);
    }

    #[test]
    fn add_non_overlapping_spans() {
        let a = exp(
            0,
            (0.001, 11.0, 30.0, 2.345),
            &[(-2, 2), (2, 3)],
            &[1.0, 0.0, 3.0, 4.0, 7.0],
            &[(3, 2), (3, 2)],
            &[3.0, 1.0, 5.0, 6.0],
        );
        let b = exp(
            0,
            (0.001, 8.0, 21.0, 1.234),
            &[(0, 2), (3, 3)],
            &[5.0, 4.0, 2.0, 3.0, 6.0],
            &[(-9, 2), (3, 2)],
            &[1.0, 1.0, 4.0, 4.0],
        );
        // Upstream's uncompacted shape for a + b.
        let got = a.add(&b).unwrap();
        assert_eq!(got.positive_spans, spans(&[(-2, 4), (0, 6)]));
        assert_eq!(
            got.positive_buckets,
            [1.0, 0.0, 5.0, 4.0, 3.0, 4.0, 7.0, 2.0, 3.0, 6.0]
        );
        assert_eq!(
            got.negative_spans,
            spans(&[(-9, 2), (3, 2), (5, 2), (3, 2)])
        );
        let want = exp(
            0,
            (0.001, 19.0, 51.0, 3.579),
            &[(-2, 4), (0, 6)],
            &[1.0, 0.0, 5.0, 4.0, 3.0, 4.0, 7.0, 2.0, 3.0, 6.0],
            &[(-9, 2), (3, 2), (5, 2), (3, 2)],
            &[1.0, 1.0, 4.0, 4.0, 3.0, 1.0, 5.0, 6.0],
        );
        check_add(&a, &b, &want);
    }

    #[test]
    fn add_overlapping_spans() {
        let a = exp(
            0,
            (0.01, 11.0, 30.0, 2.345),
            &[(-2, 2), (2, 3)],
            &[1.0, 0.0, 3.0, 4.0, 7.0],
            &[(3, 2), (3, 2)],
            &[3.0, 1.0, 5.0, 6.0],
        );
        let b = exp(
            0,
            (0.01, 8.0, 21.0, 1.234),
            &[(-1, 4), (0, 3)],
            &[5.0, 4.0, 2.0, 3.0, 6.0, 2.0, 5.0],
            &[(4, 2), (1, 2)],
            &[1.0, 1.0, 4.0, 4.0],
        );
        let got = a.add(&b).unwrap();
        assert_eq!(got.positive_spans, spans(&[(-2, 4), (0, 4)]));
        assert_eq!(got.negative_spans, spans(&[(3, 3), (1, 3)]));
        let got = b.add(&a).unwrap();
        assert_eq!(got.positive_spans, spans(&[(-2, 5), (0, 3)]));
        let want = exp(
            0,
            (0.01, 19.0, 51.0, 3.579),
            &[(-2, 5), (0, 3)],
            &[1.0, 5.0, 4.0, 2.0, 6.0, 10.0, 9.0, 5.0],
            &[(3, 3), (1, 3)],
            &[3.0, 2.0, 1.0, 4.0, 9.0, 6.0],
        );
        check_add(&a, &b, &want);
    }

    #[test]
    fn add_reduces_to_the_coarser_schema() {
        let a = exp(
            0,
            (0.01, 8.0, 21.0, 1.234),
            &[(-1, 4), (0, 3)],
            &[5.0, 4.0, 2.0, 3.0, 6.0, 2.0, 5.0],
            &[(4, 2), (1, 2)],
            &[1.0, 1.0, 4.0, 4.0],
        );
        let b = exp(
            1,
            (0.01, 11.0, 30.0, 2.345),
            &[(-4, 3), (5, 5)],
            &[1.0, 0.0, 0.0, 3.0, 2.0, 2.0, 3.0, 4.0],
            &[(6, 3), (6, 4)],
            &[3.0, 0.5, 0.5, 2.0, 3.0, 2.0, 4.0],
        );
        let want = exp(
            0,
            (0.01, 19.0, 51.0, 3.579),
            &[(-2, 5), (0, 3)],
            &[1.0, 5.0, 4.0, 2.0, 6.0, 10.0, 9.0, 5.0],
            &[(3, 3), (1, 3)],
            &[3.0, 2.0, 1.0, 4.0, 9.0, 6.0],
        );
        check_add(&a, &b, &want);
    }

    #[test]
    fn add_widens_the_zero_bucket() {
        let wide = exp(
            0,
            (1.0, 17.0, 21.0, 1.234),
            &[(1, 2), (0, 3)],
            &[2.0, 3.0, 6.0, 2.0, 5.0],
            &[(4, 2), (1, 2)],
            &[1.0, 1.0, 4.0, 4.0],
        );
        let want = exp(
            0,
            (1.0, 29.0, 51.0, 3.579),
            &[(1, 5)],
            &[2.0, 6.0, 10.0, 9.0, 5.0],
            &[(3, 3), (1, 3)],
            &[3.0, 2.0, 1.0, 4.0, 9.0, 6.0],
        );
        check_add(&wide, &first_gap(), &want);
    }

    #[test]
    fn add_moves_a_threshold_inside_a_populated_bucket_to_its_edge() {
        let a = exp(
            0,
            (0.2, 17.0, 21.0, 1.234),
            &[(1, 2), (0, 3)],
            &[2.0, 3.0, 6.0, 2.0, 5.0],
            &[(4, 2), (1, 2)],
            &[1.0, 1.0, 4.0, 4.0],
        );
        // 0.2 lies in (0.125, 0.25], populated in `first_gap()`: 0.25 it is.
        let want = exp(
            0,
            (0.25, 29.0, 51.0, 3.579),
            &[(1, 5)],
            &[2.0, 6.0, 10.0, 9.0, 5.0],
            &[(3, 3), (1, 3)],
            &[3.0, 2.0, 1.0, 4.0, 9.0, 6.0],
        );
        check_add(&a, &first_gap(), &want);
    }

    #[test]
    fn add_schema_change_with_larger_zero_bucket() {
        let a = exp(
            0,
            (0.01, 8.0, 21.0, 1.234),
            &[(-2, 5), (0, 3)],
            &[2.0, 5.0, 4.0, 2.0, 3.0, 6.0, 2.0, 5.0],
            &[(4, 2), (1, 2)],
            &[1.0, 1.0, 4.0, 4.0],
        );
        let b = exp(
            1,
            (0.25, 12.0, 30.0, 2.345),
            &[(-3, 2), (5, 5)],
            &[1.0, 0.0, 3.0, 2.0, 2.0, 3.0, 4.0],
            &[(6, 3), (6, 4)],
            &[3.0, 0.5, 0.5, 2.0, 3.0, 2.0, 4.0],
        );
        let want = exp(
            0,
            (0.25, 22.0, 51.0, 3.579),
            &[(-1, 7)],
            &[6.0, 4.0, 2.0, 6.0, 10.0, 9.0, 5.0],
            &[(3, 3), (1, 3)],
            &[3.0, 2.0, 1.0, 4.0, 9.0, 6.0],
        );
        check_add(&a, &b, &want);

        let a = exp(
            0,
            (0.25, 8.0, 21.0, 1.234),
            &[(-1, 4), (0, 3)],
            &[5.0, 4.0, 2.0, 3.0, 6.0, 2.0, 5.0],
            &[(4, 2), (1, 2)],
            &[1.0, 1.0, 4.0, 4.0],
        );
        let b = exp(
            1,
            (0.01, 11.0, 30.0, 2.345),
            &[(-4, 3), (5, 5)],
            &[1.0, 0.0, 0.0, 3.0, 2.0, 2.0, 3.0, 4.0],
            &[(6, 3), (6, 4)],
            &[3.0, 0.5, 0.5, 2.0, 3.0, 2.0, 4.0],
        );
        let want = exp(
            0,
            (0.25, 20.0, 51.0, 3.579),
            &[(-1, 4), (0, 3)],
            &[5.0, 4.0, 2.0, 6.0, 10.0, 9.0, 5.0],
            &[(3, 3), (1, 3)],
            &[3.0, 2.0, 1.0, 4.0, 9.0, 6.0],
        );
        check_add(&a, &b, &want);
    }

    #[test]
    fn add_custom_buckets_with_the_same_bounds() {
        let bounds = [1.0, 2.0, 3.0, 4.0];
        let a = nhcb(
            15.0,
            2.345,
            &[(0, 2), (2, 3)],
            &[1.0, 0.0, 3.0, 4.0, 7.0],
            &bounds,
        );
        let b = nhcb(
            27.0,
            1.234,
            &[(1, 4), (0, 3)],
            &[5.0, 4.0, 2.0, 3.0, 6.0, 2.0, 5.0],
            &bounds,
        );
        let want = nhcb(
            42.0,
            3.579,
            &[(0, 4), (0, 4)],
            &[1.0, 5.0, 4.0, 2.0, 6.0, 10.0, 9.0, 5.0],
            &bounds,
        );
        check_add(&a, &b, &want);
        let (_, flags) = a.add_with_flags(&b).unwrap();
        assert!(!flags.nhcb_bounds_reconciled);
    }

    #[test]
    fn mixing_exponential_and_custom_buckets_is_an_error() {
        let custom = nhcb(11.0, 12.0, &[(0, 2)], &[1.0, 2.0], &[1.0, 2.0]);
        let err = first().add(&custom).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot apply this operation on histograms with a mix of exponential and custom bucket schemas"
        );
        assert_eq!(
            custom.sub(&first()),
            Err(HistogramError::MixedExponentialCustom)
        );
        let mut acc = first();
        let mut c = None;
        assert!(acc.kahan_add(&custom, &mut c).is_err());
        assert_eq!(acc, first(), "unchanged on error");
        assert!(c.is_none());
    }

    #[test]
    fn sub_same_layout() {
        let a = exp(
            0,
            (0.01, 11.0, 30.0, 23.0),
            &[(-2, 2), (1, 3)],
            &[1.0, 0.0, 3.0, 4.0, 7.0],
            &[(3, 2), (3, 2)],
            &[3.0, 1.0, 5.0, 6.0],
        );
        let b = exp(
            0,
            (0.01, 8.0, 21.0, 12.0),
            &[(-2, 2), (1, 3)],
            &[0.0, 0.0, 2.0, 3.0, 6.0],
            &[(3, 2), (3, 2)],
            &[1.0, 1.0, 4.0, 4.0],
        );
        let want = exp(
            0,
            (0.01, 3.0, 9.0, 11.0),
            &[(-2, 2), (1, 3)],
            &[1.0, 0.0, 1.0, 1.0, 1.0],
            &[(3, 2), (3, 2)],
            &[2.0, 0.0, 1.0, 2.0],
        );
        assert_eq!(a.sub(&b).unwrap(), want);
    }

    // From native_histograms.test: irate over NHCBs whose bounds changed.
    #[test]
    fn sub_reconciles_mismatched_custom_bounds_to_their_intersection() {
        let prev = nhcb(
            15.0,
            55.0,
            &[(0, 4)],
            &[1.0, 2.0, 5.0, 7.0],
            &[2.0, 4.0, 6.0],
        );
        let last = nhcb(
            450.0,
            555.0,
            &[(0, 9)],
            &[10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        );
        let (got, flags) = last.sub_with_flags(&prev).unwrap();
        assert!(flags.nhcb_bounds_reconciled);
        assert_eq!(
            got,
            nhcb(
                435.0,
                500.0,
                &[(0, 4)],
                &[29.0, 68.0, 105.0, 233.0],
                &[2.0, 4.0, 6.0]
            )
        );

        let prev = nhcb(
            45.0,
            55.0,
            &[(0, 9)],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        );
        let last = nhcb(
            1000.0,
            5560.0,
            &[(0, 4)],
            &[100.0, 200.0, 300.0, 400.0],
            &[3.0, 5.0, 7.0],
        );
        let got = last.sub(&prev).unwrap();
        assert_eq!(
            got,
            nhcb(
                955.0,
                5505.0,
                &[(0, 4)],
                &[94.0, 191.0, 287.0, 383.0],
                &[3.0, 5.0, 7.0]
            )
        );
    }

    // From native_histograms.test: `sum` at 0m and `a + b` of series 2 and 3.
    #[test]
    fn add_reconciles_mismatched_custom_bounds() {
        let a = nhcb(1.0, 1.0, &[(0, 1)], &[1.0], &[10.0]);
        let b = nhcb(1.0, 1.0, &[(0, 1)], &[1.0], &[2.0, 10.0]);
        let want = nhcb(2.0, 2.0, &[(0, 1)], &[2.0], &[10.0]);
        let (got, flags) = a.add_with_flags(&b).unwrap();
        assert!(flags.nhcb_bounds_reconciled);
        assert_eq!(got, want);
        let mut acc = b.clone();
        let mut c = None;
        let flags = acc.kahan_add(&a, &mut c).unwrap();
        assert!(flags.nhcb_bounds_reconciled);
        assert_eq!(acc.add(&c.unwrap()).unwrap(), want);

        // Subtracting equal histograms leaves no buckets at all.
        let got = a.sub(&b).unwrap();
        assert_eq!(got, nhcb(0.0, 0.0, &[], &[], &[10.0]));
    }

    // Ours: buckets above the last common bound go to +Inf.
    #[test]
    fn mismatched_bounds_map_to_the_first_common_bound_at_or_above() {
        let a = nhcb(
            10.0,
            0.0,
            &[(0, 4)],
            &[1.0, 2.0, 3.0, 4.0],
            &[1.0, 2.0, 3.0],
        );
        let b = nhcb(60.0, 0.0, &[(0, 3)], &[10.0, 20.0, 30.0], &[1.0, 3.0]);
        let got = a.add(&b).unwrap();
        assert_eq!(got.custom_values, [1.0, 3.0]);
        assert_eq!(got.positive_buckets, [11.0, 25.0, 34.0]);
        let b = nhcb(60.0, 0.0, &[(0, 2)], &[10.0, 20.0], &[7.0]);
        let got = a.add(&b).unwrap();
        assert!(got.custom_values.is_empty());
        assert_eq!(got.positive_buckets, [40.0]);
    }

    #[test]
    fn counter_reset_hints_of_sums() {
        use CounterResetHint::*;
        let with = |hint| FloatHistogram {
            counter_reset_hint: hint,
            ..first()
        };
        let cases = [
            (NotReset, NotReset, NotReset, false),
            (Gauge, Reset, Gauge, false),
            (Reset, Gauge, Gauge, false),
            (Unknown, NotReset, Unknown, false),
            (NotReset, Unknown, Unknown, false),
            (Reset, NotReset, Unknown, true),
            (NotReset, Reset, Unknown, true),
        ];
        for (a, b, want, collision) in cases {
            let (got, flags) = with(a).add_with_flags(&with(b)).unwrap();
            assert_eq!(got.counter_reset_hint, want, "{a:?} + {b:?}");
            assert_eq!(flags.counter_reset_collision, collision, "{a:?} + {b:?}");
        }
    }

    #[test]
    fn mul_and_div_follow_upstream() {
        let h = first();
        let got = h.mul(3.0);
        assert_eq!(
            got,
            exp(
                0,
                (0.01, 33.0, 90.0, 2.345 * 3.0),
                &[(-2, 2), (1, 3)],
                &[3.0, 0.0, 9.0, 12.0, 21.0],
                &[(3, 2), (3, 2)],
                &[9.0, 3.0, 15.0, 18.0],
            )
        );
        assert_eq!(got.counter_reset_hint, CounterResetHint::Unknown);
        let got = h.mul(0.0);
        assert_eq!(got.positive_spans, h.positive_spans, "layout kept");
        assert_eq!(got.positive_buckets, [0.0; 5]);
        assert_eq!(h.mul(-2.0).counter_reset_hint, CounterResetHint::Gauge);
        assert_eq!(h.mul(-2.0).count, -60.0);
        assert!(h.mul(f64::NAN).positive_buckets.iter().all(|b| b.is_nan()));

        let got = h.div(2.0);
        assert_eq!(got.positive_buckets, [0.5, 0.0, 1.5, 2.0, 3.5]);
        assert_eq!(got.zero_count, 5.5);
        assert_eq!(h.div(-2.0).counter_reset_hint, CounterResetHint::Gauge);
        let got = h.div(0.0);
        assert_eq!(
            got,
            FloatHistogram {
                zero_threshold: 0.01,
                zero_count: f64::INFINITY,
                count: f64::INFINITY,
                sum: f64::INFINITY,
                ..Default::default()
            }
        );
        let empty = FloatHistogram::default().div(0.0);
        assert!(empty.count.is_nan() && empty.sum.is_nan());
    }

    #[test]
    fn compact_cuts_empty_buckets_like_upstream() {
        /// Spans and buckets in, `max_empty_buckets`, spans and buckets out.
        type Case = (
            &'static [(i32, u32)],
            &'static [f64],
            usize,
            &'static [(i32, u32)],
            &'static [f64],
        );
        let cases: &[Case] = &[
            (
                &[(-4, 4), (5, 6)],
                &[0.0, 0.0, 1.0, 3.3, 4.2, 0.1, 3.3, 0.0, 0.0, 0.0],
                0,
                &[(-2, 2), (5, 3)],
                &[1.0, 3.3, 4.2, 0.1, 3.3],
            ),
            (
                &[(5, 4)],
                &[1.0, 3.0, 0.0, 2.0],
                0,
                &[(5, 2), (1, 1)],
                &[1.0, 3.0, 2.0],
            ),
            (
                &[(-4, 6), (3, 6)],
                &[0.0, 0.0, 1.0, 3.3, 0.0, 0.0, 4.2, 0.1, 3.3, 0.0, 0.0, 0.0],
                0,
                &[(-2, 2), (5, 3)],
                &[1.0, 3.3, 4.2, 0.1, 3.3],
            ),
            (
                &[(-4, 4), (5, 3)],
                &[0.0, 0.0, 1.0, 3.3, 4.2, 0.1, 3.3],
                10,
                &[(-2, 10)],
                &[1.0, 3.3, 0.0, 0.0, 0.0, 0.0, 0.0, 4.2, 0.1, 3.3],
            ),
            (
                &[(-4, 3), (2, 2), (3, 4)],
                &[0.0, 0.0, 1.0, 0.0, 0.0, 3.3, 4.2, 0.1, 3.3],
                0,
                &[(-2, 1), (7, 4)],
                &[1.0, 3.3, 4.2, 0.1, 3.3],
            ),
            (
                &[(-2, 4)],
                &[1.0, 0.0, 0.0, 3.3],
                1,
                &[(-2, 1), (2, 1)],
                &[1.0, 3.3],
            ),
            (
                &[(-2, 4), (3, 1)],
                &[1.0, 0.0, 0.0, 3.3, 4.2],
                1,
                &[(-2, 1), (2, 1), (3, 1)],
                &[1.0, 3.3, 4.2],
            ),
            (
                &[(-4, 6), (3, 3)],
                &[0.0, 0.0, 1.0, 0.0, 0.0, 3.3, 4.2, 0.1, 3.3],
                2,
                &[(-2, 4), (3, 3)],
                &[1.0, 0.0, 0.0, 3.3, 4.2, 0.1, 3.3],
            ),
            (
                &[(-4, 6), (3, 3)],
                &[0.0, 0.0, 1.0, 0.0, 0.0, 3.3, 4.2, 0.1, 3.3],
                3,
                &[(-2, 10)],
                &[1.0, 0.0, 0.0, 3.3, 0.0, 0.0, 0.0, 4.2, 0.1, 3.3],
            ),
            (&[(-4, 6), (3, 3)], &[0.0; 9], 3, &[], &[]),
            (
                &[(-10, 2), (2, 1), (3, 3)],
                &[0.0, 0.0, 0.0, 0.0, 2.0, 3.0],
                0,
                &[(-1, 2)],
                &[2.0, 3.0],
            ),
            (
                &[(0, 2), (2, 0), (2, 0), (2, 0), (3, 3)],
                &[1.0, 3.3, 4.2, 0.1, 3.3],
                0,
                &[(0, 2), (9, 3)],
                &[1.0, 3.3, 4.2, 0.1, 3.3],
            ),
            (
                &[(0, 1), (0, 3), (0, 1)],
                &[1.0, 3.3, 4.2, 0.1, 3.3],
                0,
                &[(0, 5)],
                &[1.0, 3.3, 4.2, 0.1, 3.3],
            ),
        ];
        for (i, (sp, b, max, want_sp, want_b)) in cases.iter().enumerate() {
            let h = exp(0, (0.0, 0.0, 0.0, 0.0), sp, b, &[], &[]).compact(*max);
            assert_eq!(h.positive_spans, spans(want_sp), "case {i}");
            assert_eq!(h.positive_buckets, *want_b, "case {i}");
        }
    }

    // Ours: upstream would put the second gap's zeros in the wrong place.
    #[test]
    fn compact_merges_several_spans_in_a_row_in_order() {
        let h = exp(
            0,
            (0.0, 0.0, 0.0, 0.0),
            &[(0, 1), (1, 1), (1, 1)],
            &[1.0, 2.0, 3.0],
            &[],
            &[],
        );
        let got = h.compact(1);
        assert_eq!(got.positive_spans, spans(&[(0, 5)]));
        assert_eq!(got.positive_buckets, [1.0, 0.0, 2.0, 0.0, 3.0]);
    }

    #[test]
    fn compact_does_not_allocate_for_huge_gaps() {
        let h = exp(
            0,
            (0.0, 0.0, 0.0, 0.0),
            &[(0, 1), (i32::MAX, 1)],
            &[1.0, 2.0],
            &[],
            &[],
        );
        let got = h.compact(usize::MAX);
        assert_eq!(got.positive_spans, h.positive_spans);
        assert_eq!(got.positive_buckets, h.positive_buckets);
    }

    #[test]
    fn reduce_resolution_merges_neighbours() {
        let h = exp(
            1,
            (0.01, 11.0, 30.0, 2.345),
            &[(-4, 3), (5, 5)],
            &[1.0, 0.0, 0.0, 3.0, 2.0, 2.0, 3.0, 4.0],
            &[(6, 3), (6, 4)],
            &[3.0, 0.5, 0.5, 2.0, 3.0, 2.0, 4.0],
        );
        let got = FloatHistogram {
            counter_reset_hint: CounterResetHint::NotReset,
            ..h.clone()
        }
        .reduce_resolution(0);
        assert_eq!(got, first_gap(), "hint dropped like CopyToSchema");
        let same = FloatHistogram {
            counter_reset_hint: CounterResetHint::NotReset,
            ..h.clone()
        }
        .reduce_resolution(1);
        assert_eq!(same.counter_reset_hint, CounterResetHint::NotReset);
        assert_eq!(h.reduce_resolution(2), h, "finer target: unchanged");
        let got = h.reduce_resolution(-1);
        assert_eq!(got.positive_spans, spans(&[(-1, 4)]));
        assert_eq!(got.positive_buckets, [1.0, 0.0, 3.0, 11.0]);
    }

    #[test]
    fn detect_reset_cases() {
        let prev = exp(
            0,
            (0.01, 5.5, 3493.3, 2349209.324),
            &[(-2, 2), (1, 3)],
            &[1.0, 0.0, 3.3, 4.2, 0.1],
            &[(3, 2), (3, 2)],
            &[3.1, 3.0, 1.234e5, 1000.0],
        );
        let with = |f: &dyn Fn(&mut FloatHistogram)| {
            let mut h = prev.clone();
            f(&mut h);
            h
        };
        assert!(!FloatHistogram::default().detect_reset(&FloatHistogram::default()));
        assert!(!prev.detect_reset(&FloatHistogram::default()));
        assert!(FloatHistogram::default().detect_reset(&prev));
        // The unpopulated bucket may disappear.
        assert!(
            !with(&|h| {
                h.positive_spans = spans(&[(-2, 1), (2, 3)]);
                h.positive_buckets = vec![1.0, 3.3, 4.2, 0.1];
            })
            .detect_reset(&prev)
        );
        // A populated one may not.
        assert!(
            with(&|h| {
                h.positive_spans = spans(&[(-2, 1), (2, 2)]);
                h.positive_buckets = vec![1.0, 3.3, 4.2];
            })
            .detect_reset(&prev)
        );
        assert!(!with(&|h| h.zero_count = 5.6).detect_reset(&prev));
        assert!(with(&|h| h.zero_count = 5.4).detect_reset(&prev));
        assert!(with(&|h| h.count = 3493.2).detect_reset(&prev));
        assert!(
            !with(&|h| h.sum = 0.0).detect_reset(&prev),
            "sum is ignored"
        );
        assert!(with(&|h| h.positive_buckets[3] = 4.1).detect_reset(&prev));
        assert!(with(&|h| h.negative_buckets[1] = 2.9).detect_reset(&prev));
        assert!(!with(&|h| h.negative_buckets[1] = 3.1).detect_reset(&prev));
        assert!(with(&|h| h.zero_threshold = 0.009).detect_reset(&prev));
        assert!(!with(&|h| h.zero_threshold = 0.011).detect_reset(&prev));
        assert!(with(&|h| h.schema = 1).detect_reset(&prev));
        // Ours: a threshold of 1 swallows the buckets at -2 and -1 (1 + 0
        // observations), so the zero count must reach 6.5.
        let wide = |zc| {
            with(&|h| {
                h.zero_threshold = 1.0;
                h.zero_count = zc;
                h.positive_spans = spans(&[(1, 3)]);
                h.positive_buckets = vec![3.3, 4.2, 0.1];
            })
        };
        assert!(!wide(6.5).detect_reset(&prev));
        assert!(wide(6.4).detect_reset(&prev));
        // A threshold cutting through a populated bucket: 0.2 is inside
        // (0.125, 0.25]. 0.3 is inside the empty (0.25, 0.5], which is fine.
        let inside_empty = with(&|h| {
            h.zero_threshold = 0.3;
            h.zero_count = 100.0;
            h.positive_spans = spans(&[(1, 3)]);
            h.positive_buckets = vec![3.3, 4.2, 0.1];
        });
        assert!(!inside_empty.detect_reset(&prev));
        let cut = with(&|h| {
            h.zero_threshold = 0.2;
            h.zero_count = 100.0;
        });
        assert!(cut.detect_reset(&prev));
        // Hints decide alone.
        let reset = with(&|h| h.counter_reset_hint = CounterResetHint::Reset);
        assert!(reset.detect_reset(&prev));
        let not_reset = FloatHistogram {
            counter_reset_hint: CounterResetHint::NotReset,
            ..FloatHistogram::default()
        };
        assert!(!not_reset.detect_reset(&prev));
        // A coarser schema compares merged buckets.
        let coarse = prev.reduce_resolution(-1);
        assert!(!coarse.detect_reset(&prev));
        let mut smaller = coarse.clone();
        smaller.positive_buckets[0] -= 0.5;
        assert!(smaller.detect_reset(&prev));
    }

    // From native_histograms.test: a new bound splits a bucket whose count
    // then looks smaller.
    #[test]
    fn detect_reset_with_mismatched_custom_bounds() {
        let prev = nhcb(
            15.0,
            55.0,
            &[(0, 4)],
            &[1.0, 2.0, 5.0, 7.0],
            &[2.0, 4.0, 6.0],
        );
        let curr = nhcb(
            15.0,
            56.0,
            &[(0, 5)],
            &[1.0, 0.0, 1.0, 5.0, 8.0],
            &[2.0, 3.0, 4.0, 6.0],
        );
        assert!(curr.detect_reset(&prev));
        let grown = nhcb(
            16.0,
            56.0,
            &[(0, 5)],
            &[1.0, 1.0, 1.0, 5.0, 8.0],
            &[2.0, 3.0, 4.0, 6.0],
        );
        assert!(!grown.detect_reset(&prev));
        assert!(grown.detect_reset(&first()), "exponential before custom");
        assert!(first().detect_reset(&prev), "custom before exponential");
    }

    #[test]
    fn equals_is_exact() {
        let h = FloatHistogram {
            sum: f64::NAN,
            ..first()
        };
        assert!(h.equals(&h.clone()));
        assert_ne!(h, h.clone(), "derived PartialEq says NaN != NaN");
        let mut other = h.clone();
        other.positive_spans = spans(&[(-2, 2), (0, 0), (1, 3)]);
        assert!(h.equals(&other), "zero-length spans fold away");
        other.positive_spans = spans(&[(-2, 2), (1, 3), (0, 0)]);
        assert!(h.equals(&other));
        let compacted = h.compact(0);
        assert!(!h.equals(&compacted), "an explicit empty bucket counts");
        other = h.clone();
        other.zero_count = 11.0 + 0.0;
        assert!(h.equals(&other));
        other.counter_reset_hint = CounterResetHint::Gauge;
        assert!(h.equals(&other), "hint ignored");
        let a = nhcb(1.0, 1.0, &[(0, 1)], &[1.0], &[10.0]);
        let b = nhcb(1.0, 1.0, &[(0, 1)], &[1.0], &[5.0]);
        assert!(!a.equals(&b));
        let z = FloatHistogram {
            zero_count: 0.0,
            ..FloatHistogram::default()
        };
        let nz = FloatHistogram {
            zero_count: -0.0,
            ..FloatHistogram::default()
        };
        assert!(!z.equals(&nz), "bit patterns");
    }

    #[test]
    fn all_buckets_walk_every_bucket_with_clamped_edges() {
        let h = exp(
            0,
            (0.6, 2.0, 10.0, 0.0),
            &[(0, 3)],
            &[1.0, 0.0, 3.0],
            &[(0, 2)],
            &[4.0, 5.0],
        );
        let b = |boundaries, lower, upper, count| Bucket {
            boundaries,
            lower,
            upper,
            count,
        };
        let want = vec![
            b(1, -2.0, -1.0, 5.0),
            b(1, -1.0, -0.6, 4.0),
            b(3, -0.6, 0.6, 2.0),
            b(0, 0.6, 1.0, 1.0),
            b(0, 1.0, 2.0, 0.0),
            b(0, 2.0, 4.0, 3.0),
        ];
        assert_eq!(h.all_buckets(), want);
        let mut rev = want.clone();
        rev.reverse();
        assert_eq!(h.all_reverse_buckets(), rev);
        // No zero bucket without observations in it.
        let h = FloatHistogram {
            zero_count: 0.0,
            ..h
        };
        assert_eq!(h.all_buckets().len(), 5);
        assert_eq!(h.zero_bucket(), b(3, -0.6, 0.6, 0.0));
    }

    #[test]
    fn custom_buckets_take_their_bounds_from_custom_values() {
        let h = nhcb(4.0, 7.0, &[(0, 1), (1, 1)], &[1.0, 3.0], &[5.0, 10.0]);
        let b = |boundaries, lower, upper, count| Bucket {
            boundaries,
            lower,
            upper,
            count,
        };
        assert_eq!(
            h.all_buckets(),
            vec![
                b(3, f64::NEG_INFINITY, 5.0, 1.0),
                b(0, 10.0, f64::INFINITY, 3.0)
            ]
        );
        assert_eq!(h.to_string(), "{count:4, sum:7, [-Inf,5]:1, (10,+Inf]:3}");
        let h = nhcb(1.0, 1.0, &[(1, 1)], &[1.0], &[5.0, 10.0]);
        assert_eq!(h.to_string(), "{count:1, sum:1, (5,10]:1}");
    }

    // From native_histograms.test (`histogram_sum_over_time_3`): plain
    // addition loses the 1 next to 1e100, Kahan summation keeps it.
    #[test]
    fn kahan_add_recovers_what_plain_addition_loses() {
        let h = |count, sum, bucket| exp(0, (0.0, 0.0, count, sum), &[(0, 1)], &[bucket], &[], &[]);
        let inputs = [
            h(1.0, 1.0, 1.0),
            h(2.0, 1e100, 1e100),
            h(3.0, 1.0, 1.0),
            h(4.0, -1e100, -1e100),
        ];
        let mut plain = inputs[0].clone();
        for x in &inputs[1..] {
            plain = plain.add(x).unwrap();
        }
        assert_eq!(plain.sum, 0.0);
        let mut acc = inputs[0].clone();
        let mut c = None;
        for x in &inputs[1..] {
            acc.kahan_add(x, &mut c).unwrap();
        }
        let got = acc.add(&c.unwrap()).unwrap();
        assert_eq!(got.sum, 2.0);
        assert_eq!(got.count, 10.0);
        assert_eq!(got.positive_buckets, [2.0]);
    }

    // Ours: the compensation follows the sum through a schema reduction and
    // a widened zero bucket. Worked by hand: after the first step bucket
    // (0.5, 1] holds 1e100 with compensation 1; the threshold 0.6 cuts
    // through it, so the zero bucket grows to 1 and swallows it, and the
    // other histogram's -1e100 in (0.5, 1] goes there too: 1e100 + 1 + 1 -
    // 1e100 = 2 observations in the zero bucket.
    #[test]
    fn kahan_compensation_keeps_the_layout_of_the_sum() {
        let mut acc = exp(
            1,
            (0.001, 0.0, 2.0, 1e100),
            &[(0, 2)],
            &[1e100, 1.0],
            &[],
            &[],
        );
        let mut c = None;
        let step1 = exp(0, (0.001, 0.0, 1.0, 1.0), &[(0, 1)], &[1.0], &[], &[]);
        acc.kahan_add(&step1, &mut c).unwrap();
        assert_eq!(acc.schema, 0);
        assert_eq!(acc.positive_buckets, [1e100, 1.0]);
        assert_eq!(c.as_ref().unwrap().positive_buckets, [1.0, 0.0]);
        let step2 = exp(0, (0.6, 1.0, 1.0, -1e100), &[(0, 1)], &[-1e100], &[], &[]);
        acc.kahan_add(&step2, &mut c).unwrap();
        let comp = c.clone().unwrap();
        assert_eq!(comp.schema, acc.schema);
        assert_eq!(comp.zero_threshold, acc.zero_threshold);
        assert_eq!(comp.positive_spans, acc.positive_spans);
        assert_eq!(comp.positive_buckets.len(), acc.positive_buckets.len());
        let got = acc.add(&comp).unwrap().compact(0);
        assert_eq!(
            got,
            exp(0, (1.0, 2.0, 4.0, 1.0), &[(1, 1)], &[1.0], &[], &[])
        );
        // Plain addition loses the 1s.
        let plain = exp(
            1,
            (0.001, 0.0, 2.0, 1e100),
            &[(0, 2)],
            &[1e100, 1.0],
            &[],
            &[],
        )
        .add(&step1)
        .unwrap()
        .add(&step2)
        .unwrap();
        assert_eq!((plain.zero_count, plain.sum), (0.0, 0.0));
    }

    #[test]
    fn odd_input_does_not_panic() {
        // Spans promising more buckets than exist.
        let broken = exp(
            0,
            (0.01, 1.0, 1.0, 1.0),
            &[(0, 5), (2, 3)],
            &[1.0, 2.0],
            &[(-3, 4)],
            &[],
        );
        let fine = first();
        let _ = broken.add(&fine);
        let _ = fine.add(&broken);
        let _ = fine.sub(&broken);
        let _ = broken.compact(3);
        let _ = broken.reduce_resolution(-4);
        let _ = broken.all_buckets();
        let _ = broken.all_reverse_buckets();
        let _ = broken.detect_reset(&fine);
        let _ = fine.detect_reset(&broken);
        let mut acc = broken.clone();
        let mut c = Some(FloatHistogram::default());
        let _ = acc.kahan_add(&fine, &mut c);
        // A NaN threshold would loop forever upstream.
        let nan = FloatHistogram {
            zero_threshold: f64::NAN,
            ..fine.clone()
        };
        let _ = nan.add(&fine);
        let _ = fine.add(&nan);
        // Extreme offsets and schemas.
        let far = exp(
            8,
            (0.0, 0.0, 1.0, 1.0),
            &[(i32::MAX, 2), (i32::MAX, 1)],
            &[1.0, 2.0, 3.0],
            &[(i32::MIN, 1)],
            &[1.0],
        );
        let _ = far.add(&fine);
        let _ = fine.add(&far);
        let _ = far.reduce_resolution(-4);
        let _ = far.all_buckets();
        let weird = FloatHistogram {
            schema: 40,
            ..first()
        };
        let _ = weird.add(&fine);
        let _ = weird.reduce_resolution(-4);
        let short = nhcb(1.0, 1.0, &[(0, 3)], &[1.0, 2.0, 3.0], &[]);
        let _ = short.add(&nhcb(1.0, 1.0, &[(5, 1)], &[1.0], &[1.0]));
        let _ = short.all_buckets();
    }

    // Ours: the rewritten `buckets()` lists exponential histograms exactly as
    // the span walk it replaced did.
    #[test]
    fn buckets_of_exponential_histograms_are_unchanged() {
        for h in [first(), first_gap(), first().reduce_resolution(-2)] {
            for schema in [-4, 0, 3, 8] {
                let h = FloatHistogram {
                    schema,
                    ..h.clone()
                };
                let mut want = Vec::new();
                let neg = crate::span_indexes(&h.negative_spans);
                for (&idx, &count) in neg.iter().zip(&h.negative_buckets).rev() {
                    if count != 0.0 {
                        want.push(Bucket {
                            boundaries: 1,
                            lower: -bucket_bound(idx, schema),
                            upper: -bucket_bound(idx - 1, schema),
                            count,
                        });
                    }
                }
                want.push(h.zero_bucket());
                let pos = crate::span_indexes(&h.positive_spans);
                for (&idx, &count) in pos.iter().zip(&h.positive_buckets) {
                    if count != 0.0 {
                        want.push(Bucket {
                            boundaries: 0,
                            lower: bucket_bound(idx - 1, schema),
                            upper: bucket_bound(idx, schema),
                            count,
                        });
                    }
                }
                assert_eq!(h.buckets(), want, "schema {schema}");
            }
        }
    }

    #[test]
    fn has_overflow_looks_at_counts_and_buckets() {
        assert!(!first().has_overflow());
        let mut h = first();
        h.negative_buckets[2] = f64::INFINITY;
        assert!(h.has_overflow());
        let h = FloatHistogram {
            sum: f64::NEG_INFINITY,
            ..first()
        };
        assert!(h.has_overflow());
    }
}
