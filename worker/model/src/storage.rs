//! The storage seam: what the scraper writes to and what engines read from.
//!
//! The foundation's in-memory store (in `server`) implements both traits; the
//! TSDB head and block readers will implement them next. Times are Unix
//! milliseconds, as in Prometheus.

use crate::histogram::FloatHistogram;
use crate::labels::Labels;
use crate::selector::Matcher;

/// One sample: a timestamp in Unix milliseconds and a float value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Unix milliseconds.
    pub t_ms: i64,
    /// Value; may be a NaN, an infinity or the staleness marker.
    pub v: f64,
}

/// One native-histogram sample.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSample {
    /// Unix milliseconds.
    pub t_ms: i64,
    /// The histogram (its `sum` is the staleness marker for a stale sample).
    pub h: FloatHistogram,
}

/// A series and its samples in timestamp order. A series may change type
/// over time (a float metric replaced by a native histogram), so it holds
/// both kinds, as Prometheus's matrix does; no timestamp appears in both.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// The series' identity.
    pub labels: Labels,
    /// Float samples in increasing timestamp order, no duplicate timestamps.
    pub samples: Vec<Sample>,
    /// Histogram samples in increasing timestamp order, no duplicates.
    pub histograms: Vec<HistogramSample>,
    /// Per-sample start timestamps, when the store has them (`None` for
    /// stores that don't keep them, which is every store but the test one
    /// today).
    pub start_timestamps: Option<StartTimestamps>,
}

/// Start timestamps (OpenTelemetry's "start time", Prometheus's "created
/// timestamp") of a series' samples: the time from which a cumulative
/// sample counts, or the start of a delta sample's interval.
///
/// Index-aligned with [`Series::samples`] and [`Series::histograms`]
/// (same lengths; the selection that trims the samples trims these too).
/// As in Prometheus, 0 means unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StartTimestamps {
    /// One per float sample, Unix milliseconds, 0 when unknown.
    pub floats: Vec<i64>,
    /// One per histogram sample, Unix milliseconds, 0 when unknown.
    pub histograms: Vec<i64>,
}

/// Why storage refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A sample older than the last one of its series (Prometheus: `out of order sample`).
    #[error("out of order sample for {series} at {t_ms} (newest is {newest_ms})")]
    OutOfOrder {
        /// The series, in Prometheus text form.
        series: String,
        /// Rejected timestamp.
        t_ms: i64,
        /// Newest timestamp already stored.
        newest_ms: i64,
    },
    /// Same timestamp, different value (Prometheus: `duplicate sample for timestamp`).
    #[error("duplicate sample for timestamp {t_ms} in {series}")]
    DuplicateTimestamp {
        /// The series, in Prometheus text form.
        series: String,
        /// The timestamp.
        t_ms: i64,
    },
    /// A sample older than what storage still accepts: its time range is
    /// already in a block (Prometheus: `out of bounds`).
    #[error("out of bounds sample for {series} at {t_ms} (samples before {min_ms} are in blocks)")]
    OutOfBounds {
        /// The series, in Prometheus text form.
        series: String,
        /// Rejected timestamp.
        t_ms: i64,
        /// Oldest timestamp accepted.
        min_ms: i64,
    },
    /// Storage could not persist the batch (WAL write failed, disk full).
    #[error("{0}")]
    Write(String),
    /// A query would exceed a resource limit.
    #[error("{0}")]
    Limit(String),
    /// The underlying data could not be read (corrupt or unreadable files).
    #[error("{0}")]
    Read(String),
}

/// Reads series by label matchers over a time range. Natively also `Sync`:
/// range queries evaluate their steps on several threads.
pub trait Storage: crate::par::MaybeSync {
    /// Every series matching all `matchers`, with its samples in
    /// `[min_t_ms, max_t_ms]` (both inclusive); series with no sample in range
    /// are left out. Output is sorted by labels.
    fn select(
        &self,
        matchers: &[Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<Series>, StorageError>;
}

/// Writes samples; a batch becomes visible to readers on [`Appender::commit`].
pub trait Appender {
    /// Queues one sample. Errors for one sample don't poison the batch.
    fn append(&mut self, labels: &Labels, t_ms: i64, v: f64) -> Result<(), StorageError>;
    /// Makes the batch visible; returns the number of samples stored.
    fn commit(self) -> Result<usize, StorageError>;
}

/// A store that hands out appenders (the scraper's view of storage).
pub trait Appendable {
    /// A new, empty batch.
    fn appender(&self) -> impl Appender + '_;
}
