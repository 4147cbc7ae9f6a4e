//! `load_with_nhcb`: converts the classic histograms of one `load` command
//! (`<name>_bucket{le=…}`, `<name>_count`, `<name>_sum` float series) into
//! native histograms with custom buckets (NHCB, schema −53) named `<name>`,
//! as upstream's promqltest (`appendCustomHistogram`) with its converter
//! `util/convertnhcb`. The runner loads them next to the float series.
//!
//! Per base series (labels without `le`, name without the suffix) and per
//! timestamp, buckets are collected sorted by bound; a duplicate bound is
//! ignored, a count below a lower bound's (or above a higher bound's) count
//! is an error, as are a NaN bound and negative counts. Without a `_count`
//! series the count is the highest bucket's; without a `+Inf` bucket one is
//! added holding the count; the count must equal the `+Inf` bucket's.
//! Bucket counts are de-cumulated. When every count is an integer the
//! result is compacted as upstream's integer histograms are (`Compact(2)`),
//! otherwise `Compact(0)`.
//!
//! [`head_hints`] gives loaded histograms the counter-reset hints they have
//! when read back from upstream's TSDB head, which the test files observe.
//!
//! Edge cases: upstream fails the whole `load` on a conversion error; here
//! the histogram of that timestamp is left out (the float series still
//! load). Series whose `le` does not parse, and histogram samples of the
//! classic series, are ignored as upstream does.

use std::collections::BTreeMap;

use emberlens_model::{
    CUSTOM_BUCKETS_SCHEMA, CounterResetHint, FloatHistogram, Labels, Span, is_stale_nan,
};

use super::script::{LoadSeries, TestValue};
use crate::histfuncs::parse_le;

#[derive(Clone, Debug, Default)]
struct TempHistogram {
    buckets: Vec<(f64, f64)>,
    count: f64,
    sum: f64,
    has_count: bool,
    err: bool,
}

impl TempHistogram {
    fn set_bucket_count(&mut self, le: f64, count: f64) {
        if self.err {
            return;
        }
        if le.is_nan() || count < 0.0 {
            self.err = true;
            return;
        }
        let i = self.buckets.partition_point(|b| b.0 < le);
        if self.buckets.get(i).is_some_and(|b| b.0 == le) {
            return;
        }
        if i > 0 && count < self.buckets[i - 1].1 {
            self.err = true;
            return;
        }
        if self.buckets.get(i).is_some_and(|b| count > b.1) {
            self.err = true;
            return;
        }
        self.buckets.insert(i, (le, count));
    }

    fn set_count(&mut self, count: f64) {
        if self.err {
            return;
        }
        if count < 0.0 {
            self.err = true;
            return;
        }
        self.count = count;
        self.has_count = true;
    }

    fn convert(mut self) -> Option<FloatHistogram> {
        if self.err {
            return None;
        }
        if !self.has_count {
            self.count = self.buckets.last()?.1;
        }
        if self.buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
            self.buckets.push((f64::INFINITY, self.count));
        }
        let integer =
            self.buckets.iter().all(|b| b.1 == b.1.round()) && self.count == self.count.round();
        let last = self.buckets.last()?.1;
        if self.count != last {
            return None;
        }
        let mut positive_buckets = Vec::with_capacity(self.buckets.len());
        let mut custom_values = Vec::with_capacity(self.buckets.len());
        let mut prev = 0.0;
        for &(le, c) in &self.buckets {
            positive_buckets.push(c - prev);
            prev = c;
            if le != f64::INFINITY {
                custom_values.push(le);
            }
        }
        let h = FloatHistogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            count: self.count,
            sum: self.sum,
            positive_spans: vec![Span {
                offset: 0,
                length: u32::try_from(positive_buckets.len()).ok()?,
            }],
            positive_buckets,
            custom_values,
            ..Default::default()
        };
        Some(h.compact(if integer { 2 } else { 0 }))
    }
}

enum Suffix {
    Bucket,
    Count,
    Sum,
}

/// The native histograms (labels, samples) that `load_with_nhcb` adds for
/// the classic histograms among `series`.
pub(crate) fn convert(series: &[LoadSeries]) -> Vec<(Labels, Vec<(i64, TestValue)>)> {
    let mut hists: BTreeMap<Labels, BTreeMap<i64, TempHistogram>> = BTreeMap::new();
    for s in series {
        let name = s.labels.metric_name();
        let (suffix, base) = if let Some(b) = name.strip_suffix("_bucket") {
            (Suffix::Bucket, b)
        } else if let Some(b) = name.strip_suffix("_sum") {
            (Suffix::Sum, b)
        } else if let Some(b) = name.strip_suffix("_count") {
            (Suffix::Count, b)
        } else {
            continue;
        };
        let le = match suffix {
            Suffix::Bucket => match parse_le(s.labels.get("le")) {
                Some(le) if !le.is_nan() => Some(le),
                _ => continue,
            },
            _ => None,
        };
        let key = s.labels.without(&["le"]).with("__name__", base);
        let by_ts = hists.entry(key).or_default();
        for (t, v) in &s.samples {
            let TestValue::Float(f) = v else { continue };
            let th = by_ts.entry(*t).or_default();
            match (&suffix, le) {
                (Suffix::Bucket, Some(le)) => th.set_bucket_count(le, *f),
                (Suffix::Count, _) => th.set_count(*f),
                (Suffix::Sum, _) if !th.err => th.sum = *f,
                _ => {}
            }
        }
    }
    hists
        .into_iter()
        .filter_map(|(labels, by_ts)| {
            let samples: Vec<(i64, TestValue)> = by_ts
                .into_iter()
                .filter_map(|(t, th)| th.convert().map(|h| (t, TestValue::Histogram(h))))
                .collect();
            (!samples.is_empty()).then_some((labels, samples))
        })
        .collect()
}

/// The counter-reset hints a series' histograms (in time order) carry when
/// read back from upstream's TSDB head: gauges stay gauges; a counter
/// histogram starting a chunk (the first one, one after a gauge, after a
/// counter reset, or after a change of schema, zero threshold or custom
/// bounds) reads as `unknown` (a reset's own `reset` hint is not kept, see
/// prometheus/prometheus#15346), every other one as `not_reset`. Staleness
/// markers keep their hint and are skipped.
pub(crate) fn head_hints<'a>(
    hists: impl IntoIterator<Item = &'a FloatHistogram>,
) -> Vec<CounterResetHint> {
    let mut out = Vec::new();
    let mut prev: Option<&FloatHistogram> = None;
    for h in hists {
        if is_stale_nan(h.sum) {
            out.push(h.counter_reset_hint);
            continue;
        }
        let hint = if h.counter_reset_hint == CounterResetHint::Gauge {
            CounterResetHint::Gauge
        } else {
            let new_chunk = match prev {
                None => true,
                Some(p) => {
                    p.counter_reset_hint == CounterResetHint::Gauge
                        || p.schema != h.schema
                        || p.zero_threshold != h.zero_threshold
                        || p.custom_values != h.custom_values
                        || h.detect_reset(p)
                }
            };
            if new_chunk {
                CounterResetHint::Unknown
            } else {
                CounterResetHint::NotReset
            }
        };
        out.push(hint);
        prev = Some(h);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(labels: &[(&str, &str)], vals: &[f64]) -> LoadSeries {
        LoadSeries {
            line: 1,
            labels: Labels::from_pairs(labels.iter().copied()),
            samples: vals
                .iter()
                .enumerate()
                .map(|(i, v)| (i as i64 * 60_000, TestValue::Float(*v)))
                .collect(),
            start_timestamps: None,
        }
    }

    #[test]
    fn converts_buckets_count_and_sum() {
        let out = convert(&[
            series(&[("__name__", "m_bucket"), ("le", "2")], &[3.0]),
            series(&[("__name__", "m_bucket"), ("le", "1")], &[1.0]),
            series(&[("__name__", "m_bucket"), ("le", "+Inf")], &[4.0]),
            series(&[("__name__", "m_sum")], &[7.5]),
            series(&[("__name__", "other")], &[1.0]),
        ]);
        assert_eq!(out.len(), 1);
        let (labels, samples) = &out[0];
        assert_eq!(labels.metric_name(), "m");
        let TestValue::Histogram(h) = &samples[0].1 else {
            panic!("not a histogram")
        };
        assert_eq!(h.custom_values, vec![1.0, 2.0]);
        assert_eq!(h.positive_buckets, vec![1.0, 2.0, 1.0]);
        assert_eq!(h.count, 4.0);
        assert_eq!(h.sum, 7.5);
    }

    #[test]
    fn bad_input_is_skipped() {
        // Not cumulative.
        let out = convert(&[
            series(&[("__name__", "m_bucket"), ("le", "1")], &[5.0]),
            series(&[("__name__", "m_bucket"), ("le", "2")], &[3.0]),
        ]);
        assert!(out.is_empty());
        // Count mismatch with the +Inf bucket.
        let out = convert(&[
            series(&[("__name__", "m_bucket"), ("le", "+Inf")], &[5.0]),
            series(&[("__name__", "m_count")], &[3.0]),
        ]);
        assert!(out.is_empty());
    }
}
