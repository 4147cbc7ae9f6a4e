//! Several blocks read as one database: a Prometheus data directory or
//! snapshot (every subdirectory holding a `meta.json`).
//!
//! Series with the same labels in several blocks are merged by timestamp.
//! Where blocks overlap and hold the same timestamp, one sample is kept and
//! the others dropped, as in Prometheus's `chainSampleIterator`, whose choice
//! among the duplicates is unspecified ("one sample from random overlapped
//! ones"); ours is deterministic: the block that sorts first (by min time,
//! then ULID) wins.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use emberlens_model::{Labels, Matcher, Sample, Series, Storage, StorageError, StorageStats};

use crate::block::Block;
use crate::error::TsdbError;
use crate::source::{ByteSource, FileSet};

/// Blocks, sorted by min time then ULID. Blocks are shared (`Arc`), so a
/// live store can build a new `Db` with one block more or less without
/// reopening the others.
pub struct Db<S> {
    blocks: Vec<Arc<Block<S>>>,
}

/// The block directories of a file set: parents of a `meta.json`, skipping
/// `wal/`, `chunks_head/` and dot-directories.
pub fn block_dirs(paths: &[String]) -> Vec<String> {
    let mut dirs: Vec<String> = paths
        .iter()
        .filter_map(|p| {
            let dir = p
                .strip_suffix("/meta.json")
                .or_else(|| (p == "meta.json").then_some(""))?;
            let skip = dir
                .split('/')
                .any(|part| part.starts_with('.') || part == "wal" || part == "chunks_head");
            (!skip).then(|| dir.to_string())
        })
        .collect();
    dirs.sort();
    dirs
}

impl<S: ByteSource + Clone> Db<S> {
    /// Opens every block of `fs`. One unreadable block fails the open; use
    /// [`Db::open_lenient`] to keep the others.
    pub fn open<F: FileSet<File = S>>(fs: &F) -> Result<Self, TsdbError> {
        let mut blocks = Vec::new();
        for dir in block_dirs(&fs.paths()) {
            blocks.push(Block::open(fs, &dir)?);
        }
        Ok(Self::from_blocks(blocks))
    }

    /// Opens every block it can; returns the errors of the others.
    pub fn open_lenient<F: FileSet<File = S>>(fs: &F) -> (Self, Vec<TsdbError>) {
        let mut blocks = Vec::new();
        let mut errors = Vec::new();
        for dir in block_dirs(&fs.paths()) {
            match Block::open(fs, &dir) {
                Ok(b) => blocks.push(b),
                Err(e) => errors.push(e),
            }
        }
        (Self::from_blocks(blocks), errors)
    }

    /// A database of already opened blocks.
    pub fn from_blocks(blocks: Vec<Block<S>>) -> Self {
        Self::from_shared(blocks.into_iter().map(Arc::new).collect())
    }

    /// A database of shared opened blocks.
    pub fn from_shared(mut blocks: Vec<Arc<Block<S>>>) -> Self {
        blocks.sort_by(|a, b| {
            (a.meta().min_time, &a.meta().ulid).cmp(&(b.meta().min_time, &b.meta().ulid))
        });
        Db { blocks }
    }

    /// The blocks, sorted by min time.
    pub fn blocks(&self) -> &[Arc<Block<S>>] {
        &self.blocks
    }

    /// Series matching `matchers` with samples in `[min_t, max_t]`, merged
    /// over all blocks, sorted by labels.
    pub fn select_series(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<Series>, TsdbError> {
        let mut parts: Vec<Vec<Series>> = Vec::new();
        for b in &self.blocks {
            let got = b.select(matchers, min_t, max_t)?;
            if !got.is_empty() {
                parts.push(got);
            }
        }
        // One block in range (the common case): already sorted, nothing to merge.
        if parts.len() <= 1 {
            return Ok(parts.pop().unwrap_or_default());
        }
        let mut by_labels: BTreeMap<Labels, Vec<Series>> = BTreeMap::new();
        for s in parts.into_iter().flatten() {
            by_labels.entry(s.labels.clone()).or_default().push(s);
        }
        Ok(by_labels.into_values().map(merge_series).collect())
    }
}

impl<S: ByteSource + Clone> Db<S> {
    /// The labels of series matching `matchers` with a chunk in
    /// `[min_t, max_t]`, over all blocks, sorted and unique; reads only the
    /// blocks' indexes ([`Block::series_labels`]).
    pub fn series_labels(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<Labels>, TsdbError> {
        let mut parts: Vec<Vec<Labels>> = Vec::new();
        for b in &self.blocks {
            let got = b.series_labels(matchers, min_t, max_t)?;
            if !got.is_empty() {
                parts.push(got);
            }
        }
        if parts.len() <= 1 {
            return Ok(parts.pop().unwrap_or_default());
        }
        let mut all: Vec<Labels> = parts.into_iter().flatten().collect();
        all.sort();
        all.dedup();
        Ok(all)
    }

    /// The blocks overlapping `[min_t, max_t]`.
    fn overlapping(&self, min_t: i64, max_t: i64) -> impl Iterator<Item = &Block<S>> {
        self.blocks
            .iter()
            .filter(move |b| max_t >= b.meta().min_time && min_t < b.meta().max_time)
            .map(|b| &**b)
    }
}

/// Merges one series' parts from several blocks (same labels, in block
/// order): floats and histograms each by [`merge_samples`]'s rule, then a
/// timestamp that has both a float and a histogram keeps the one from the
/// earlier block, so no timestamp appears twice.
pub fn merge_series(mut parts: Vec<Series>) -> Series {
    if parts.len() == 1 {
        return parts.pop().unwrap_or_default();
    }
    let labels = parts.first().map(|s| s.labels.clone()).unwrap_or_default();
    let mut floats = Vec::with_capacity(parts.len());
    let mut hists = Vec::with_capacity(parts.len());
    // Which block first holds each timestamp of each kind, for the
    // float-versus-histogram tie-break.
    let mut float_from: BTreeMap<i64, usize> = BTreeMap::new();
    let mut hist_from: BTreeMap<i64, usize> = BTreeMap::new();
    let mixed = parts.iter().any(|p| !p.histograms.is_empty())
        && parts.iter().any(|p| !p.samples.is_empty());
    for (i, p) in parts.into_iter().enumerate() {
        if mixed {
            for s in &p.samples {
                float_from.entry(s.t_ms).or_insert(i);
            }
            for h in &p.histograms {
                hist_from.entry(h.t_ms).or_insert(i);
            }
        }
        floats.push(p.samples);
        hists.push(p.histograms);
    }
    let mut samples = merge_samples(floats);
    let mut histograms = merge_runs(hists, |h| h.t_ms);
    if mixed {
        samples.retain(|s| {
            hist_from
                .get(&s.t_ms)
                .is_none_or(|&h| float_from[&s.t_ms] < h)
        });
        histograms.retain(|h| {
            float_from
                .get(&h.t_ms)
                .is_none_or(|&f| hist_from[&h.t_ms] < f)
        });
    }
    Series {
        labels,
        samples,
        histograms,
        start_timestamps: None,
    }
}

/// Merges sorted runs by `key`; on equal keys the earlier run's item wins.
fn merge_runs<T>(mut parts: Vec<Vec<T>>, key: impl Fn(&T) -> i64) -> Vec<T> {
    if parts.len() == 1 {
        return parts.pop().unwrap_or_default();
    }
    // Fast path: runs that do not overlap concatenate.
    let disjoint = parts.windows(2).all(|w| match (w[0].last(), w[1].first()) {
        (Some(a), Some(b)) => key(a) < key(b),
        _ => true,
    });
    if disjoint {
        return parts.into_iter().flatten().collect();
    }
    let mut all: Vec<(i64, usize, T)> = Vec::new();
    for (i, p) in parts.into_iter().enumerate() {
        all.extend(p.into_iter().map(|s| (key(&s), i, s)));
    }
    all.sort_by_key(|s| (s.0, s.1));
    all.dedup_by_key(|s| s.0);
    all.into_iter().map(|(_, _, s)| s).collect()
}

/// Merges per-block sample runs (each sorted) into one run; on equal
/// timestamps the earlier run's sample wins.
pub fn merge_samples(parts: Vec<Vec<Sample>>) -> Vec<Sample> {
    merge_runs(parts, |s| s.t_ms)
}

impl<S: ByteSource + Clone + emberlens_model::par::MaybeSend> Storage for Db<S> {
    fn select(
        &self,
        matchers: &[Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<Series>, StorageError> {
        self.select_series(matchers, min_t_ms, max_t_ms)
            .map_err(read_error)
    }

    fn series_labels(
        &self,
        matchers: &[Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<Labels>, StorageError> {
        Db::series_labels(self, matchers, min_t_ms, max_t_ms).map_err(read_error)
    }

    /// Without matchers, straight from the postings tables of the blocks
    /// overlapping the range (as Prometheus); else from [`Db::series_labels`].
    fn label_names(
        &self,
        matchers: &[Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<String>, StorageError> {
        if !matchers.is_empty() {
            return label_names_of(
                &Db::series_labels(self, matchers, min_t_ms, max_t_ms).map_err(read_error)?,
            );
        }
        let mut names = BTreeSet::new();
        for b in self.overlapping(min_t_ms, max_t_ms) {
            names.extend(b.index().label_names());
        }
        Ok(names.into_iter().map(str::to_string).collect())
    }

    /// Without matchers, straight from the postings tables of the blocks
    /// overlapping the range (as Prometheus); else from [`Db::series_labels`].
    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<String>, StorageError> {
        if !matchers.is_empty() {
            let mut values: Vec<String> = Db::series_labels(self, matchers, min_t_ms, max_t_ms)
                .map_err(read_error)?
                .iter()
                .map(|l| l.get(name))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .collect();
            values.sort();
            values.dedup();
            return Ok(values);
        }
        let mut values = BTreeSet::new();
        for b in self.overlapping(min_t_ms, max_t_ms) {
            values.extend(b.index().label_values(name).filter(|v| !v.is_empty()));
        }
        Ok(values.into_iter().map(str::to_string).collect())
    }

    /// From the blocks' `meta.json`: the span (`maxTime` is exclusive, so
    /// the newest possible sample is one less) and `numChunks`.
    fn stats(&self) -> Result<StorageStats, StorageError> {
        Ok(self
            .blocks
            .iter()
            .map(|b| StorageStats {
                min_t_ms: Some(b.meta().min_time),
                max_t_ms: Some(b.meta().max_time.saturating_sub(1)),
                chunks: Some(b.meta().stats.num_chunks),
            })
            .fold(StorageStats::default(), StorageStats::merge))
    }
}

fn read_error(e: TsdbError) -> StorageError {
    StorageError::Read(e.to_string())
}

/// Sorted unique label names of `series`.
fn label_names_of(series: &[Labels]) -> Result<Vec<String>, StorageError> {
    let mut names = BTreeSet::new();
    for l in series {
        names.extend(l.iter().map(|l| l.name.as_str()));
    }
    Ok(names.into_iter().map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample { t_ms: t, v }
    }

    #[test]
    fn merges_overlapping_runs_first_wins() {
        let got = merge_samples(vec![
            vec![s(1, 1.0), s(3, 3.0)],
            vec![s(2, 2.0), s(3, 9.0), s(4, 4.0)],
        ]);
        assert_eq!(got, [s(1, 1.0), s(2, 2.0), s(3, 3.0), s(4, 4.0)]);
        assert_eq!(
            merge_samples(vec![vec![s(1, 1.0)], vec![s(2, 2.0)]]),
            [s(1, 1.0), s(2, 2.0)]
        );
    }

    #[test]
    fn finds_block_dirs() {
        let paths: Vec<String> = [
            "a/meta.json",
            "a/index",
            "wal/00000",
            "snapshots/x/meta.json",
            ".tmp/meta.json",
            "chunks_head/meta.json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(block_dirs(&paths), ["a", "snapshots/x"]);
    }
}
