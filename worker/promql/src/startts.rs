//! Start timestamps (STs) in PromQL: the experimental `start_timestamp()`
//! function and the rules `rate`, `increase`, `irate` and `resets` use to
//! read counter resets from STs (Prometheus's `UseStartTimestamps`, which
//! the upstream test corpus assumes on).
//!
//! Why: a cumulative sample's ST says since when it counts, and a delta
//! sample's ST where its interval starts, so a counter reset (or a delta
//! sample, which is a reset every time) is visible even when the value
//! doesn't drop.
//!
//! Semantics and edge cases (0 always means "unknown"):
//! - a sample is a reset when its ST is known, before its own timestamp,
//!   and after the previous sample's timestamp; an ST *equal* to the
//!   previous timestamp is a reset only when the previous sample's ST was
//!   known and before the previous timestamp (a delta series), not when it
//!   was unknown or equal to it (OTel's "cumulative with unknown start");
//! - an ST known, before the previous timestamp and different from the
//!   previous ST overlaps the previous sample: `rate`/`increase` warn;
//! - when the first sample's ST lies inside the window (after its start,
//!   before the sample), `rate`/`increase` assume a zero sample at the ST
//!   instead of extrapolating to the window's start (see
//!   `funcs::extrapolated_rate`); a single such sample gives a result;
//! - STs come only from a range selector read directly by the function: a
//!   subquery or any other expression carries none, and
//!   `start_timestamp()` of anything but a selector is empty.

use emberlens_model::{Labels, Storage};

use crate::ast::{Call, Expr};
use crate::engine::{Evaluator, IValue};
use crate::error::EvalError;
use crate::value::Sample;

/// Whether `cur` restarts counting relative to `prev`, by start timestamps.
pub(crate) fn is_st_reset(prev_st: i64, prev_t: i64, cur_st: i64, cur_t: i64) -> bool {
    if cur_st == 0 || cur_st >= cur_t || cur_st < prev_t {
        return false;
    }
    if cur_st > prev_t {
        return true;
    }
    // `cur_st == prev_t`: a delta sample when the previous one had a real
    // interval, a cumulative series with an unknown start otherwise.
    prev_st != 0 && prev_st < prev_t
}

/// Whether `cur`'s interval overlaps the previous sample's.
pub(crate) fn is_st_overlap(prev_st: i64, prev_t: i64, cur_st: i64) -> bool {
    cur_st != 0 && cur_st < prev_t && cur_st != prev_st
}

/// The overlap warning's text.
pub(crate) fn overlap_msg(metric: &Labels) -> String {
    format!(
        "sample has start time that overlaps with previous sample timestamp for metric {:?}",
        metric.metric_name()
    )
}

/// `start_timestamp(v)`: the start timestamp (seconds, 0 when unknown) of
/// each sample an instant selector picks; nothing for other expressions.
pub(crate) fn eval_start_timestamp<S: Storage>(
    ev: &mut Evaluator<'_, S>,
    c: &Call,
    t: i64,
) -> Result<IValue, EvalError> {
    let Some(arg) = c.args.first() else {
        return Err(EvalError::Execution(
            "missing argument 0 of start_timestamp".into(),
        ));
    };
    let Expr::Selector(vs) = arg.unparen() else {
        // Evaluated for its errors and annotations; the STs are lost.
        ev.eval_vector(arg, t)?;
        return Ok(IValue::Vector(Vec::new()));
    };
    let out = ev
        .eval_selector_st(vs, t)?
        .into_iter()
        .map(|(s, st)| Sample {
            f: st as f64 / 1000.0,
            h: None,
            drop_name: true,
            ..s
        })
        .collect();
    Ok(IValue::Vector(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn st_resets_as_the_corpus_describes() {
        // Unknown, after the sample, or before the previous sample: no reset.
        assert!(!is_st_reset(0, 1000, 0, 2000));
        assert!(!is_st_reset(0, 1000, 2000, 2000));
        assert!(!is_st_reset(500, 1000, 900, 2000));
        // After the previous sample: reset (GCP-style deltas, restarts).
        assert!(is_st_reset(500, 1000, 1001, 2000));
        // Equal to the previous timestamp: a delta only when the previous
        // sample had a real interval.
        assert!(is_st_reset(500, 1000, 1000, 2000));
        assert!(!is_st_reset(0, 1000, 1000, 2000));
        assert!(!is_st_reset(1000, 1000, 1000, 2000));
        assert!(!is_st_reset(1500, 1000, 1000, 2000));
    }

    #[test]
    fn overlaps_need_a_known_earlier_different_start() {
        assert!(is_st_overlap(0, 2000, 1000));
        assert!(!is_st_overlap(1000, 2000, 1000));
        assert!(!is_st_overlap(1000, 2000, 2000));
        assert!(!is_st_overlap(1000, 2000, 0));
    }
}
