//! The shared vocabulary of Emberlens's engines: label sets, samples, series
//! selectors, Prometheus durations, and the storage traits every engine reads
//! through.
//!
//! A key design decision in this crate is that it does no IO and knows nothing
//! about where samples live. The server's in-memory store, the TSDB block
//! reader and the browser worker's sources all implement [`Storage`]; the
//! scraper writes through [`Appender`]. Engines (PromQL, the raw-samples
//! endpoint) only see these traits.
//!
//! Edge cases, stated once:
//! - A label that is absent is the same as a label with the empty value, as in
//!   Prometheus: `{foo=""}` selects series without `foo`, and `{foo!="x"}`
//!   selects them too.
//! - Regex matchers are fully anchored (`=~"a|b"` means `^(?:a|b)$`), with RE2
//!   semantics from the `regex` crate, like Prometheus's `labels.Matcher`.
//! - Staleness markers are a specific NaN bit pattern ([`STALE_NAN_BITS`]); they
//!   are stored like any sample and are never equal to an ordinary NaN.

mod duration;
mod gofmt;
mod histogram;
mod histogram_ops;
mod labels;
pub mod par;
mod selector;
mod storage;
mod time;

pub use duration::{DurationError, format_duration_ms, parse_duration_ms};
pub use gofmt::{format_go_g, go_quote, labels_go_string};
pub use histogram::{
    Bucket, CUSTOM_BUCKETS_SCHEMA, CounterResetHint, FloatHistogram, MAX_SCHEMA, MIN_SCHEMA, Span,
    bucket_bound, span_indexes,
};
pub use histogram_ops::{HistogramError, MAX_INSERTED_EMPTY_BUCKETS, OpFlags, kahan_inc};
pub use labels::{Label, Labels, METRIC_NAME};
pub use selector::{MatchOp, Matcher, SelectorError, parse_selector};
pub use storage::{
    Appendable, Appender, HistogramSample, Sample, Series, StartTimestamps, Storage, StorageError,
    StorageStats,
};
pub use time::{TimeError, civil_from_days, format_timestamp_secs, format_value, parse_time_ms};

/// The bit pattern Prometheus writes as a staleness marker (`value.StaleNaN`).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as an `f64`.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is a staleness marker (and not just any NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_nan_is_distinct_from_plain_nan() {
        assert!(is_stale_nan(stale_nan()));
        assert!(stale_nan().is_nan());
        assert!(!is_stale_nan(f64::NAN));
    }
}
