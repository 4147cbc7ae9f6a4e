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

    /// The labels of every series matching all `matchers` (none: every
    /// series) with data in `[min_t_ms, max_t_ms]`, sorted, no duplicates:
    /// what `/api/v1/series` lists.
    ///
    /// The default goes through [`Storage::select`], so it decodes samples.
    /// Stores with an index override it to read no chunks; there "data in
    /// range" means a chunk whose time span overlaps the range and is not
    /// wholly deleted, as in Prometheus's series API, so a series whose
    /// chunk spans the range without a sample inside it is listed too.
    fn series_labels(
        &self,
        matchers: &[Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<Labels>, StorageError> {
        Ok(self
            .select(matchers, min_t_ms, max_t_ms)?
            .into_iter()
            .map(|s| s.labels)
            .collect())
    }

    /// The label names of the series [`Storage::series_labels`] lists,
    /// sorted and unique (`__name__` included). Stores may answer with a
    /// superset when `matchers` is empty (Prometheus lists every name of
    /// every block that overlaps the range).
    fn label_names(
        &self,
        matchers: &[Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<String>, StorageError> {
        let mut names = std::collections::BTreeSet::new();
        for labels in self.series_labels(matchers, min_t_ms, max_t_ms)? {
            for l in labels.iter() {
                if !names.contains(l.name.as_str()) {
                    names.insert(l.name.clone());
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// The values of label `name` in the series [`Storage::series_labels`]
    /// lists, sorted and unique (series without the label add nothing).
    /// Same superset allowance as [`Storage::label_names`].
    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<String>, StorageError> {
        let mut values = std::collections::BTreeSet::new();
        for labels in self.series_labels(matchers, min_t_ms, max_t_ms)? {
            let v = labels.get(name);
            if !v.is_empty() && !values.contains(v) {
                values.insert(v.to_string());
            }
        }
        Ok(values.into_iter().collect())
    }

    /// Time span and chunk count of everything stored, for status pages.
    /// The default selects every sample (stores with metadata override it).
    fn stats(&self) -> Result<StorageStats, StorageError> {
        let mut out = StorageStats::default();
        for s in self.select(&[], i64::MIN, i64::MAX)? {
            let first = [
                s.samples.first().map(|x| x.t_ms),
                s.histograms.first().map(|h| h.t_ms),
            ];
            let last = [
                s.samples.last().map(|x| x.t_ms),
                s.histograms.last().map(|h| h.t_ms),
            ];
            for t in first.into_iter().flatten() {
                out.min_t_ms = Some(out.min_t_ms.map_or(t, |m| m.min(t)));
            }
            for t in last.into_iter().flatten() {
                out.max_t_ms = Some(out.max_t_ms.map_or(t, |m| m.max(t)));
            }
        }
        Ok(out)
    }
}

/// What [`Storage::stats`] reports; `None` where the store does not know.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Oldest sample's timestamp (Unix ms); `None` when empty.
    pub min_t_ms: Option<i64>,
    /// Newest sample's timestamp (Unix ms); `None` when empty.
    pub max_t_ms: Option<i64>,
    /// Chunks held, for stores that keep samples in chunks.
    pub chunks: Option<u64>,
}

impl StorageStats {
    /// Both stores' figures together (spans joined, chunks added; a figure
    /// one side does not know stays unknown only if neither knows it).
    pub fn merge(self, other: StorageStats) -> StorageStats {
        fn join(a: Option<i64>, b: Option<i64>, f: fn(i64, i64) -> i64) -> Option<i64> {
            match (a, b) {
                (Some(a), Some(b)) => Some(f(a, b)),
                (a, b) => a.or(b),
            }
        }
        StorageStats {
            min_t_ms: join(self.min_t_ms, other.min_t_ms, i64::min),
            max_t_ms: join(self.max_t_ms, other.max_t_ms, i64::max),
            chunks: match (self.chunks, other.chunks) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            },
        }
    }
}

/// Writes samples; a batch becomes visible to readers on [`Appender::commit`].
pub trait Appender {
    /// Queues one sample. Errors for one sample don't poison the batch.
    fn append(&mut self, labels: &Labels, t_ms: i64, v: f64) -> Result<(), StorageError>;
    /// Queues one sample as [`Appender::append`] does, given `series_ref`,
    /// what an earlier `append_ref` of the same labels returned (0 when
    /// unknown), and returns the series' reference for the next time (as
    /// Prometheus's `Append(ref, …)`): a store that has one finds the series
    /// by it without hashing the labels. A stale or unknown reference falls
    /// back to the labels. The default ignores references (returns 0).
    fn append_ref(
        &mut self,
        series_ref: u64,
        labels: &Labels,
        t_ms: i64,
        v: f64,
    ) -> Result<u64, StorageError> {
        let _ = series_ref;
        self.append(labels, t_ms, v).map(|()| 0)
    }
    /// Makes the batch visible; returns the number of samples stored.
    fn commit(self) -> Result<usize, StorageError>;
}

/// A store that hands out appenders (the scraper's view of storage).
pub trait Appendable {
    /// A new, empty batch.
    fn appender(&self) -> impl Appender + '_;
}
