//! The foundation's in-memory store, behind the model crate's storage traits.
//!
//! Samples live in a `BTreeMap` keyed by labels, so `select` returns series in
//! Prometheus's label order without sorting. Nothing is durable: a restart
//! loses everything. The server issue replaces this with the WAL + head +
//! blocks store, which implements the same traits.
//!
//! Memory is bounded by a retention window: on every commit, samples older
//! than `newest - retention` are dropped from the series that were appended
//! to, and series left empty are removed.

use std::collections::BTreeMap;
use std::sync::RwLock;

use emberlens_model::{
    Appendable, Appender, Labels, Matcher, Sample, Series, Storage, StorageError, is_stale_nan,
};

/// Samples by series, in memory.
#[derive(Debug)]
pub struct MemStorage {
    series: RwLock<BTreeMap<Labels, Vec<Sample>>>,
    retention_ms: i64,
}

impl MemStorage {
    /// An empty store keeping `retention_ms` of history per series.
    pub fn new(retention_ms: i64) -> Self {
        MemStorage {
            series: RwLock::new(BTreeMap::new()),
            retention_ms,
        }
    }

    /// Number of series held.
    pub fn series_count(&self) -> usize {
        self.read().len()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Labels, Vec<Sample>>> {
        // A poisoned lock only means another thread panicked mid-append; the
        // map itself is still consistent (appends are single pushes).
        self.series.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl Storage for MemStorage {
    fn select(
        &self,
        matchers: &[Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<Series>, StorageError> {
        let map = self.read();
        let mut out = Vec::new();
        for (labels, samples) in map.iter() {
            if !matchers.iter().all(|m| m.matches_labels(labels)) {
                continue;
            }
            let lo = samples.partition_point(|s| s.t_ms < min_t_ms);
            let hi = samples.partition_point(|s| s.t_ms <= max_t_ms);
            if lo < hi {
                out.push(Series {
                    labels: labels.clone(),
                    samples: samples[lo..hi].to_vec(),
                    histograms: Vec::new(),
                    start_timestamps: None,
                });
            }
        }
        Ok(out)
    }

    /// Like `select`, without copying samples (label and series API reads).
    fn series_labels(
        &self,
        matchers: &[Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<Labels>, StorageError> {
        let map = self.read();
        Ok(map
            .iter()
            .filter(|(labels, samples)| {
                matchers.iter().all(|m| m.matches_labels(labels))
                    && samples.partition_point(|s| s.t_ms < min_t_ms)
                        < samples.partition_point(|s| s.t_ms <= max_t_ms)
            })
            .map(|(labels, _)| labels.clone())
            .collect())
    }

    /// The span from each series' first and last sample, without copying.
    fn stats(&self) -> Result<emberlens_model::StorageStats, StorageError> {
        let map = self.read();
        let mut out = emberlens_model::StorageStats::default();
        for samples in map.values() {
            if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
                out = out.merge(emberlens_model::StorageStats {
                    min_t_ms: Some(first.t_ms),
                    max_t_ms: Some(last.t_ms),
                    chunks: None,
                });
            }
        }
        Ok(out)
    }
}

impl Appendable for MemStorage {
    fn appender(&self) -> impl Appender + '_ {
        MemAppender {
            store: self,
            batch: Vec::new(),
        }
    }
}

/// A batch of samples for [`MemStorage`], applied on commit.
struct MemAppender<'a> {
    store: &'a MemStorage,
    batch: Vec<(Labels, Sample)>,
}

impl Appender for MemAppender<'_> {
    fn append(&mut self, labels: &Labels, t_ms: i64, v: f64) -> Result<(), StorageError> {
        let stored_newest = self
            .store
            .read()
            .get(labels)
            .and_then(|s| s.last().copied());
        let batch_newest = self
            .batch
            .iter()
            .rev()
            .find(|(l, _)| l == labels)
            .map(|(_, s)| *s);
        if let Some(newest) = batch_newest.or(stored_newest) {
            if t_ms < newest.t_ms {
                return Err(StorageError::OutOfOrder {
                    series: labels.to_string(),
                    t_ms,
                    newest_ms: newest.t_ms,
                });
            }
            if t_ms == newest.t_ms {
                // Same timestamp and same bits is a harmless repeat (Prometheus drops it).
                if v.to_bits() == newest.v.to_bits() || (is_stale_nan(v) && is_stale_nan(newest.v))
                {
                    return Ok(());
                }
                return Err(StorageError::DuplicateTimestamp {
                    series: labels.to_string(),
                    t_ms,
                });
            }
        }
        self.batch.push((labels.clone(), Sample { t_ms, v }));
        Ok(())
    }

    fn commit(self) -> Result<usize, StorageError> {
        let n = self.batch.len();
        let mut map = self.store.series.write().unwrap_or_else(|e| e.into_inner());
        let mut touched: Vec<Labels> = Vec::new();
        for (labels, sample) in self.batch {
            let samples = map.entry(labels.clone()).or_default();
            // Another appender may have committed newer samples meanwhile.
            if samples.last().is_some_and(|last| last.t_ms >= sample.t_ms) {
                continue;
            }
            samples.push(sample);
            if touched.last() != Some(&labels) {
                touched.push(labels);
            }
        }
        for labels in touched {
            if let Some(samples) = map.get_mut(&labels) {
                let cutoff = samples
                    .last()
                    .map_or(i64::MIN, |s| s.t_ms - self.store.retention_ms);
                let keep_from = samples.partition_point(|s| s.t_ms < cutoff);
                samples.drain(..keep_from);
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use emberlens_model::parse_selector;

    fn labels(name: &str, job: &str) -> Labels {
        Labels::from_pairs([("__name__", name), ("job", job)])
    }

    #[test]
    fn select_by_matchers_and_range() {
        let store = MemStorage::new(3_600_000);
        let mut app = store.appender();
        for t in 0..5 {
            app.append(&labels("up", "b"), t * 1000, 1.0).unwrap();
            app.append(&labels("up", "a"), t * 1000, 0.0).unwrap();
            app.append(&labels("other", "a"), t * 1000, 2.0).unwrap();
        }
        assert_eq!(app.commit().unwrap(), 15);
        let got = store
            .select(&parse_selector("up").unwrap(), 1000, 3000)
            .unwrap();
        let names: Vec<String> = got.iter().map(|s| s.labels.to_string()).collect();
        assert_eq!(names, [r#"up{job="a"}"#, r#"up{job="b"}"#]);
        assert_eq!(got[0].samples.len(), 3);
        let none = store
            .select(&parse_selector("up").unwrap(), 10_000, 20_000)
            .unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn rejects_out_of_order_and_duplicates() {
        let store = MemStorage::new(3_600_000);
        let mut app = store.appender();
        app.append(&labels("up", "a"), 2000, 1.0).unwrap();
        assert!(matches!(
            app.append(&labels("up", "a"), 1000, 1.0),
            Err(StorageError::OutOfOrder { .. })
        ));
        app.append(&labels("up", "a"), 2000, 1.0).unwrap(); // exact repeat: ignored
        assert!(matches!(
            app.append(&labels("up", "a"), 2000, 5.0),
            Err(StorageError::DuplicateTimestamp { .. })
        ));
        assert_eq!(app.commit().unwrap(), 1);
    }

    #[test]
    fn retention_drops_old_samples() {
        let store = MemStorage::new(10_000);
        let mut app = store.appender();
        for t in 0..30 {
            app.append(&labels("up", "a"), t * 1000, 1.0).unwrap();
        }
        app.commit().unwrap();
        let got = store
            .select(&parse_selector("up").unwrap(), i64::MIN, i64::MAX)
            .unwrap();
        assert_eq!(got[0].samples.first().map(|s| s.t_ms), Some(19_000));
    }
}
