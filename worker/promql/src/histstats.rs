//! Selectors read as histogram statistics only, as upstream's
//! `HistogramStatsIterator`.
//!
//! Prometheus (`detectHistogramStatsDecoding`) marks a selector enclosed by
//! `histogram_count()`, `histogram_sum()` or `histogram_avg()` unless a
//! subquery, `histogram_quantile()`, `histogram_quantiles()`,
//! `histogram_fraction()` or a trim operator (`</`, `>/`) encloses it too,
//! and reads its histograms through an iterator that keeps only count, sum
//! and schema (zero bucket, buckets and custom bounds go; the schema is kept
//! since prometheus/prometheus#18660, so a mix of exponential and custom
//! buckets is still noticed). That iterator also re-derives counter-reset
//! hints on the fly: a histogram stored with hint `unknown` (one starting a
//! chunk) becomes `reset` or `not_reset` by comparing it, buckets included,
//! with the histogram the same iterator read before it; the first histogram
//! read after a seek keeps `unknown`. The visible effect is that
//! aggregations of such values may see `reset` next to `not_reset` and warn
//! about conflicting counter resets.
//!
//! Emulation: the iterator's position is per series and per selector and
//! carries over between the steps of a range query. Upstream seeks (and so
//! forgets the previous histogram) when the window's start, `rt - delta`
//! (`delta`: the lookback for an instant selector, the range for a range
//! selector), lies beyond the first sample at or after the previous step's
//! reference time; otherwise it keeps reading forward. A histogram gets its
//! re-derived hint when the histogram before it (stale markers skipped, as
//! the iterator does not remember them) was read in the same run, that is,
//! lies at or after the run's start. The first run of a range selector
//! starts just after `rt - range`, where upstream's selection begins.
//! Not emulated: `anchored`/`smoothed` selectors (see `extended.rs`) read
//! whole histograms.

use std::collections::HashSet;
use std::sync::Arc;

use emberlens_model::{CounterResetHint, FloatHistogram, is_stale_nan};

use crate::ast::{BinOp, Expr};
use crate::engine::{SeriesData, key};

/// The selectors (keyed as `Evaluator::selector_data`) read as statistics.
pub(crate) fn stats_selectors(e: &Expr) -> HashSet<usize> {
    let mut out = HashSet::new();
    walk(e, false, &mut out);
    out
}

/// `under`: a `histogram_count`/`_sum`/`_avg` encloses `e` with no subquery
/// or bucket-reading function on the way.
fn walk(e: &Expr, under: bool, out: &mut HashSet<usize>) {
    match e {
        Expr::Number { .. } | Expr::String { .. } => {}
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => walk(expr, under, out),
        Expr::Selector(vs) => {
            if under {
                out.insert(key(vs));
            }
        }
        Expr::Matrix(m) => {
            if under {
                out.insert(key(&m.vs));
            }
        }
        // Below a subquery, buckets are always read.
        Expr::Subquery(_) => {}
        // The trim operators read buckets.
        Expr::Binary(b) if matches!(b.op, BinOp::TrimUpper | BinOp::TrimLower) => {}
        Expr::Binary(b) => {
            walk(&b.lhs, under, out);
            walk(&b.rhs, under, out);
        }
        Expr::Call(c) => match c.func.name {
            "histogram_quantile" | "histogram_quantiles" | "histogram_fraction" => {}
            "histogram_count" | "histogram_sum" | "histogram_avg" => {
                for a in &c.args {
                    walk(a, true, out);
                }
            }
            _ => {
                for a in &c.args {
                    walk(a, under, out);
                }
            }
        },
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk(p, under, out);
            }
            walk(&a.expr, under, out);
        }
    }
}

/// One stats-only selector's series, index-aligned with its
/// [`SeriesData`].
pub(crate) struct StatsSelector {
    series: Vec<StatsSeries>,
}

struct StatsSeries {
    /// Times of all samples, floats and histograms, ascending.
    times: Vec<i64>,
    /// Per histogram: count and sum with the stored hint.
    plain: Vec<Arc<FloatHistogram>>,
    /// Per histogram stored as `unknown` with a non-stale histogram before
    /// it: that one's time and the copy with the re-derived hint.
    derived: Vec<Option<(i64, Arc<FloatHistogram>)>>,
    /// The previous reference time and the current run's first time.
    state: Option<(i64, i64)>,
}

/// Count, sum and schema of `h` with `hint`.
fn stats_of(h: &FloatHistogram, hint: CounterResetHint) -> Arc<FloatHistogram> {
    Arc::new(FloatHistogram {
        counter_reset_hint: hint,
        schema: h.schema,
        count: h.count,
        sum: h.sum,
        ..FloatHistogram::default()
    })
}

impl StatsSelector {
    pub(crate) fn new(data: &[SeriesData]) -> StatsSelector {
        let series = data
            .iter()
            .map(|s| {
                let mut times: Vec<i64> = s.floats.iter().map(|p| p.t).collect();
                times.extend(s.hists.iter().map(|p| p.t));
                times.sort_unstable();
                let plain = s
                    .hists
                    .iter()
                    .map(|p| stats_of(&p.h, p.h.counter_reset_hint))
                    .collect();
                let mut prev: Option<(i64, &FloatHistogram)> = None;
                let mut derived = Vec::with_capacity(s.hists.len());
                for p in s.hists.iter() {
                    if is_stale_nan(p.h.sum) {
                        derived.push(None);
                        continue;
                    }
                    derived.push(match prev {
                        Some((pt, ph)) if p.h.counter_reset_hint == CounterResetHint::Unknown => {
                            let hint = if p.h.detect_reset(ph) {
                                CounterResetHint::Reset
                            } else {
                                CounterResetHint::NotReset
                            };
                            Some((pt, stats_of(&p.h, hint)))
                        }
                        _ => None,
                    });
                    prev = Some((p.t, &p.h));
                }
                StatsSeries {
                    times,
                    plain,
                    derived,
                    state: None,
                }
            })
            .collect();
        StatsSelector { series }
    }

    /// Moves series `si`'s iterator to reference time `rt` (window start
    /// `rt - delta`, exclusive for a range selector's first read) and
    /// returns the current run's first time.
    pub(crate) fn advance(&mut self, si: usize, rt: i64, delta: i64, range: bool) -> i64 {
        let Some(s) = self.series.get_mut(si) else {
            return i64::MAX;
        };
        let t0 = rt.saturating_sub(delta);
        let run = match s.state {
            Some((prev_rt, run)) if prev_rt <= rt => {
                let i = s.times.partition_point(|&t| t < prev_rt);
                match s.times.get(i) {
                    Some(&at) if t0 > at => t0,
                    _ => run,
                }
            }
            _ if range => t0.saturating_add(1),
            _ => t0,
        };
        s.state = Some((rt, run));
        run
    }

    /// Histogram `i` of series `si` as read in a run starting at `run`.
    pub(crate) fn hist(&self, si: usize, i: usize, run: i64) -> Option<Arc<FloatHistogram>> {
        let s = self.series.get(si)?;
        if let Some(Some((pt, h))) = s.derived.get(i)
            && *pt >= run
        {
            return Some(h.clone());
        }
        s.plain.get(i).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn count(src: &str) -> usize {
        stats_selectors(&parse(src).expect("parses")).len()
    }

    #[test]
    fn detects_stats_only_selectors() {
        assert_eq!(count("histogram_count(sum(m))"), 1);
        assert_eq!(count("histogram_sum(rate(m[5m])) / histogram_count(m)"), 2);
        assert_eq!(count("histogram_avg(m) + m"), 1);
        assert_eq!(count("sum(m)"), 0);
        assert_eq!(count("histogram_count(max_over_time(m[5m:1m]))"), 0);
        assert_eq!(count("histogram_quantile(0.5, histogram_count(m))"), 0);
        assert_eq!(count("histogram_count(histogram_quantile(0.5, m))"), 0);
        assert_eq!(count("histogram_count(m </ 2)"), 0);
    }

    #[test]
    fn re_derives_unknown_hints_within_a_run() {
        use crate::value::HPoint;
        let h = |count: f64, hint| FloatHistogram {
            counter_reset_hint: hint,
            count,
            sum: count,
            ..FloatHistogram::default()
        };
        let data = vec![SeriesData {
            labels: Default::default(),
            floats: Arc::default(),
            hists: Arc::new(
                [
                    (0, h(5.0, CounterResetHint::Unknown)),
                    (60_000, h(6.0, CounterResetHint::NotReset)),
                    (120_000, h(2.0, CounterResetHint::Unknown)),
                ]
                .into_iter()
                .map(|(t, h)| HPoint { t, h: Arc::new(h) })
                .collect(),
            ),
            sts: None,
        }];
        let mut sel = StatsSelector::new(&data);
        let hint = |sel: &StatsSelector, i, run| sel.hist(0, i, run).map(|h| h.counter_reset_hint);
        // Instant read at 2m: the run starts at 2m - 5m, so the third
        // histogram was read after the second.
        let run = sel.advance(0, 120_000, 300_000, false);
        assert_eq!(hint(&sel, 0, run), Some(CounterResetHint::Unknown));
        assert_eq!(hint(&sel, 2, run), Some(CounterResetHint::Reset));
        // A fresh read whose window starts after the second histogram.
        let mut sel = StatsSelector::new(&data);
        let run = sel.advance(0, 120_000, 30_000, false);
        assert_eq!(hint(&sel, 2, run), Some(CounterResetHint::Unknown));
    }
}
