//! The head: the recent samples of every live series, in memory, as
//! compressed XOR chunks (the same encoding blocks use, so cutting a block
//! copies chunk bytes and never re-encodes).
//!
//! - Each series holds closed chunks and one open chunk. A chunk is cut at
//!   [`SAMPLES_PER_CHUNK`] samples or when a sample crosses a multiple of the
//!   block range, so every chunk lies inside one block's time range.
//! - Series are found by labels (a hash map) and by matchers (postings:
//!   label name → value → series references, ascending).
//! - References are the WAL's series references: they never repeat within
//!   a head's life and survive restarts through the WAL.
//! - Locking: the index is a `RwLock`, written only to add or drop series;
//!   each series has its own `Mutex`. Appends to different series never
//!   wait on each other.

use rustc_hash::{FxHashMap as HashMap, FxHashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

use emberlens_model::{Labels, MatchOp, Matcher, Sample, Series, StorageError, is_stale_nan};
use emberlens_tsdb::chunkenc::Encoding;
use emberlens_tsdb::chunkenc::xor::{XorEncoder, XorIter};
use emberlens_tsdb::writer::{
    BlockSink, BlockWriter, EncodedChunk, SAMPLES_PER_CHUNK, WriteError, encode_xor_chunks,
};

/// One series in the head.
#[derive(Debug)]
pub struct MemSeries {
    /// The series' reference (WAL and head).
    pub series_ref: u64,
    /// Its labels.
    pub labels: Labels,
    chunks: Mutex<SeriesChunks>,
    /// Its series record is in the WAL.
    logged: AtomicBool,
}

#[derive(Debug, Default)]
struct SeriesChunks {
    closed: Vec<EncodedChunk>,
    open: Option<OpenChunk>,
    /// Newest sample, for order and duplicate checks.
    last: Option<Sample>,
}

#[derive(Debug)]
struct OpenChunk {
    enc: XorEncoder,
    min_t: i64,
    max_t: i64,
    /// Exclusive end: the next multiple of the block range.
    end: i64,
}

impl OpenChunk {
    fn encoded(&self) -> EncodedChunk {
        EncodedChunk {
            min_t: self.min_t,
            max_t: self.max_t,
            encoding: Encoding::Xor,
            samples: self.enc.len() as u64,
            data: self.enc.bytes().to_vec(),
        }
    }
}

impl MemSeries {
    fn lock(&self) -> MutexGuard<'_, SeriesChunks> {
        // A panic while holding the lock leaves at worst a chunk without its
        // last sample; the data stays readable.
        self.chunks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether its series record was written to the WAL.
    pub fn is_logged(&self) -> bool {
        self.logged.load(Ordering::Acquire)
    }

    /// Notes that its series record is in the WAL.
    pub fn mark_logged(&self) {
        self.logged.store(true, Ordering::Release);
    }

    /// The newest sample.
    pub fn last(&self) -> Option<Sample> {
        self.lock().last
    }

    /// Checks that `(t, v)` can be appended: `Ok(false)` for an exact
    /// repeat of the newest sample (dropped, as Prometheus does).
    pub fn check(&self, t_ms: i64, v: f64) -> Result<bool, StorageError> {
        check_after(self.lock().last, &self.labels, t_ms, v)
    }

    /// Appends a sample the caller checked; returns false (and stores
    /// nothing) if it is no longer after the newest one.
    pub fn append(&self, t_ms: i64, v: f64, chunk_range: i64) -> bool {
        let mut c = self.lock();
        if c.last.is_some_and(|l| l.t_ms >= t_ms) {
            return false;
        }
        let full = c
            .open
            .as_ref()
            .is_none_or(|o| o.enc.len() >= SAMPLES_PER_CHUNK || t_ms >= o.end);
        if full {
            if let Some(o) = c.open.take() {
                let mut done = o.encoded();
                done.data.shrink_to_fit();
                c.closed.push(done);
            }
            c.open = Some(OpenChunk {
                enc: XorEncoder::new(),
                min_t: t_ms,
                max_t: t_ms,
                end: range_end(t_ms, chunk_range),
            });
        }
        if let Some(o) = c.open.as_mut() {
            o.enc.append(t_ms, v);
            o.max_t = t_ms;
        }
        c.last = Some(Sample { t_ms, v });
        true
    }

    /// Whether any of its chunks overlaps `[min_t, max_t]`.
    fn overlaps(&self, min_t: i64, max_t: i64) -> bool {
        let c = self.lock();
        let open = c.open.as_ref().map(|o| (o.min_t, o.max_t));
        c.closed
            .iter()
            .map(|k| (k.min_t, k.max_t))
            .chain(open)
            .any(|(lo, hi)| hi >= min_t && lo <= max_t)
    }

    /// Samples in `[min_t, max_t]`.
    fn samples(&self, min_t: i64, max_t: i64) -> Vec<Sample> {
        let c = self.lock();
        let mut out = Vec::new();
        let open = c.open.as_ref().map(|o| (o.min_t, o.max_t, o.enc.bytes()));
        let all = c
            .closed
            .iter()
            .map(|k| (k.min_t, k.max_t, k.data.as_slice()))
            .chain(open);
        for (lo, hi, data) in all {
            if hi < min_t || lo > max_t {
                continue;
            }
            decode_into(data, min_t, max_t, &mut out);
        }
        out
    }

    /// The chunks inside `[mint, maxt)`; a chunk straddling a bound (cut
    /// under another block range) is re-encoded to its part inside.
    fn chunks_in(&self, mint: i64, maxt: i64) -> Vec<EncodedChunk> {
        let c = self.lock();
        let open = c.open.as_ref().map(OpenChunk::encoded);
        let mut out = Vec::new();
        for k in c.closed.iter().cloned().chain(open) {
            if k.max_t < mint || k.min_t >= maxt {
                continue;
            }
            if k.min_t >= mint && k.max_t < maxt {
                out.push(k);
            } else {
                let mut part = Vec::new();
                decode_into(&k.data, mint, maxt - 1, &mut part);
                out.extend(encode_xor_chunks(&part));
            }
        }
        out
    }

    /// Drops the chunks that end before `mint`; true when none is left.
    fn truncate(&self, mint: i64) -> bool {
        let mut c = self.lock();
        c.closed.retain(|k| k.max_t >= mint);
        if c.open.as_ref().is_some_and(|o| o.max_t < mint) {
            c.open = None;
        }
        c.closed.is_empty() && c.open.is_none()
    }

    /// Chunks and compressed bytes held.
    fn stats(&self) -> (usize, usize) {
        let c = self.lock();
        let open = c.open.as_ref().map_or(0, |o| o.enc.size());
        (
            c.closed.len() + usize::from(c.open.is_some()),
            c.closed.iter().map(|k| k.data.len()).sum::<usize>() + open,
        )
    }
}

fn decode_into(data: &[u8], min_t: i64, max_t: i64, out: &mut Vec<Sample>) {
    // Head chunks are encoded by this process: a decoding error would be a
    // bug, and the samples up to it are still returned.
    let Ok(it) = XorIter::new(data, 0) else {
        return;
    };
    for s in it {
        let Ok((t, v)) = s else { return };
        if t > max_t {
            return;
        }
        if t >= min_t {
            out.push(Sample { t_ms: t, v });
        }
    }
}

/// The end of the block range holding `t`.
pub fn range_end(t: i64, range: i64) -> i64 {
    t.div_euclid(range).saturating_add(1).saturating_mul(range)
}

/// Whether `(t, v)` may follow `last` in a series.
pub fn check_after(
    last: Option<Sample>,
    labels: &Labels,
    t_ms: i64,
    v: f64,
) -> Result<bool, StorageError> {
    let Some(last) = last else { return Ok(true) };
    if t_ms > last.t_ms {
        return Ok(true);
    }
    if t_ms < last.t_ms {
        return Err(StorageError::OutOfOrder {
            series: labels.to_string(),
            t_ms,
            newest_ms: last.t_ms,
        });
    }
    if v.to_bits() == last.v.to_bits() || (is_stale_nan(v) && is_stale_nan(last.v)) {
        return Ok(false);
    }
    Err(StorageError::DuplicateTimestamp {
        series: labels.to_string(),
        t_ms,
    })
}

#[derive(Debug, Default)]
struct Index {
    by_labels: HashMap<Labels, Arc<MemSeries>>,
    by_ref: HashMap<u64, Arc<MemSeries>>,
    postings: HashMap<String, HashMap<String, Vec<u64>>>,
}

/// The in-memory head.
#[derive(Debug)]
pub struct Head {
    chunk_range: i64,
    index: RwLock<Index>,
    next_ref: AtomicU64,
    /// Samples before this are refused (they belong to cut blocks).
    min_valid_t: AtomicI64,
    min_t: AtomicI64,
    max_t: AtomicI64,
}

impl Head {
    /// An empty head cutting chunks at multiples of `chunk_range` ms.
    pub fn new(chunk_range: i64) -> Head {
        Head {
            chunk_range: chunk_range.max(1),
            index: RwLock::new(Index::default()),
            next_ref: AtomicU64::new(1),
            min_valid_t: AtomicI64::new(i64::MIN),
            min_t: AtomicI64::new(i64::MAX),
            max_t: AtomicI64::new(i64::MIN),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The block range chunks are aligned to.
    pub fn chunk_range(&self) -> i64 {
        self.chunk_range
    }

    /// Oldest and newest sample time (`i64::MAX`/`i64::MIN` when empty).
    pub fn time_range(&self) -> (i64, i64) {
        (
            self.min_t.load(Ordering::Acquire),
            self.max_t.load(Ordering::Acquire),
        )
    }

    /// Samples before this time are refused.
    pub fn min_valid_time(&self) -> i64 {
        self.min_valid_t.load(Ordering::Acquire)
    }

    /// Refuses samples before `t` from now on.
    pub fn set_min_valid_time(&self, t: i64) {
        self.min_valid_t.fetch_max(t, Ordering::AcqRel);
    }

    /// Number of series.
    pub fn series_count(&self) -> usize {
        self.read().by_ref.len()
    }

    /// The series with `labels`, if any.
    pub fn get(&self, labels: &Labels) -> Option<Arc<MemSeries>> {
        self.read().by_labels.get(labels).cloned()
    }

    /// The series with reference `r`, if any.
    pub fn get_ref(&self, r: u64) -> Option<Arc<MemSeries>> {
        self.read().by_ref.get(&r).cloned()
    }

    /// The series with `labels`, created if missing (true when created).
    /// `with_ref` forces the reference (WAL replay).
    pub fn get_or_create(&self, labels: &Labels, with_ref: Option<u64>) -> (Arc<MemSeries>, bool) {
        if let Some(s) = self.get(labels) {
            return (s, false);
        }
        let mut ix = self.index.write().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = ix.by_labels.get(labels) {
            return (s.clone(), false);
        }
        let series_ref = match with_ref {
            Some(r) => {
                self.next_ref.fetch_max(r + 1, Ordering::AcqRel);
                r
            }
            None => self.next_ref.fetch_add(1, Ordering::AcqRel),
        };
        let s = Arc::new(MemSeries {
            series_ref,
            labels: labels.clone(),
            chunks: Mutex::new(SeriesChunks::default()),
            logged: AtomicBool::new(false),
        });
        ix.by_labels.insert(labels.clone(), s.clone());
        ix.by_ref.insert(series_ref, s.clone());
        for l in labels.iter() {
            let list = ix
                .postings
                .entry(l.name.clone())
                .or_default()
                .entry(l.value.clone())
                .or_default();
            // Replay may create series out of reference order.
            match list.last() {
                Some(&last) if last > series_ref => {
                    let at = list.partition_point(|&r| r < series_ref);
                    list.insert(at, series_ref);
                }
                _ => list.push(series_ref),
            }
        }
        (s, true)
    }

    /// Appends a checked sample to `s` and widens the head's time range.
    pub fn append(&self, s: &MemSeries, t_ms: i64, v: f64) -> bool {
        if !s.append(t_ms, v, self.chunk_range) {
            return false;
        }
        self.min_t.fetch_min(t_ms, Ordering::AcqRel);
        self.max_t.fetch_max(t_ms, Ordering::AcqRel);
        true
    }

    /// The series matching all `matchers`, sorted by labels.
    pub fn matching(&self, matchers: &[Matcher]) -> Vec<Arc<MemSeries>> {
        let ix = self.read();
        // Narrow with the equality matchers' postings, then check all.
        let mut lists: Vec<&Vec<u64>> = Vec::new();
        for m in matchers {
            if m.op == MatchOp::Equal && !m.value.is_empty() {
                match ix.postings.get(&m.name).and_then(|v| v.get(&m.value)) {
                    Some(list) => lists.push(list),
                    None => return Vec::new(),
                }
            }
        }
        lists.sort_by_key(|l| l.len());
        let mut out: Vec<Arc<MemSeries>> = match lists.split_first() {
            Some((first, rest)) => first
                .iter()
                .filter(|r| rest.iter().all(|l| l.binary_search(r).is_ok()))
                .filter_map(|r| ix.by_ref.get(r))
                .filter(|s| matchers.iter().all(|m| m.matches_labels(&s.labels)))
                .cloned()
                .collect(),
            None => ix
                .by_ref
                .values()
                .filter(|s| matchers.iter().all(|m| m.matches_labels(&s.labels)))
                .cloned()
                .collect(),
        };
        drop(ix);
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Series matching `matchers` with their samples in `[min_t, max_t]`.
    pub fn select(&self, matchers: &[Matcher], min_t: i64, max_t: i64) -> Vec<Series> {
        let (lo, hi) = self.time_range();
        if hi < min_t || lo > max_t {
            return Vec::new();
        }
        self.matching(matchers)
            .into_iter()
            .filter_map(|s| {
                let samples = s.samples(min_t, max_t);
                (!samples.is_empty()).then(|| Series {
                    labels: s.labels.clone(),
                    samples,
                    histograms: Vec::new(),
                    start_timestamps: None,
                })
            })
            .collect()
    }

    /// Labels of the series matching `matchers` with a chunk overlapping
    /// `[min_t, max_t]`, sorted (no chunk is decoded).
    pub fn series_labels(&self, matchers: &[Matcher], min_t: i64, max_t: i64) -> Vec<Labels> {
        let (lo, hi) = self.time_range();
        if hi < min_t || lo > max_t {
            return Vec::new();
        }
        self.matching(matchers)
            .into_iter()
            .filter(|s| s.overlaps(min_t, max_t))
            .map(|s| s.labels.clone())
            .collect()
    }

    /// Every label name in the head's postings, sorted.
    pub fn label_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.read().postings.keys().cloned().collect();
        v.sort();
        v
    }

    /// Every value of label `name` in the head's postings, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .read()
            .postings
            .get(name)
            .map(|values| values.keys().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Adds every series' chunks inside `[mint, maxt)` to a block, in label
    /// order, one series at a time.
    pub fn write_block<S: BlockSink>(
        &self,
        mint: i64,
        maxt: i64,
        w: &mut BlockWriter<S>,
    ) -> Result<(), WriteError> {
        for s in self.matching(&[]) {
            w.add_series(&s.labels, &s.chunks_in(mint, maxt))?;
        }
        Ok(())
    }

    /// Drops everything before `mint` (now in a block), removes series left
    /// empty, and refuses samples before `mint` from now on. Returns the
    /// references still alive.
    pub fn truncate(&self, mint: i64) -> Vec<u64> {
        self.set_min_valid_time(mint);
        let all: Vec<Arc<MemSeries>> = self.read().by_ref.values().cloned().collect();
        let dead: Vec<u64> = all
            .iter()
            .filter(|s| s.truncate(mint))
            .map(|s| s.series_ref)
            .collect();
        let mut ix = self.index.write().unwrap_or_else(|e| e.into_inner());
        if !dead.is_empty() {
            for r in &dead {
                if let Some(s) = ix.by_ref.remove(r) {
                    ix.by_labels.remove(&s.labels);
                }
            }
            let dead: FxHashSet<u64> = dead.into_iter().collect();
            ix.postings.retain(|_, values| {
                values.retain(|_, list| {
                    list.retain(|r| !dead.contains(r));
                    !list.is_empty()
                });
                !values.is_empty()
            });
        }
        let alive: Vec<u64> = ix.by_ref.keys().copied().collect();
        drop(ix);
        let (old_min, max) = self.time_range();
        if max >= mint {
            self.min_t.store(old_min.max(mint), Ordering::Release);
        } else {
            self.min_t.store(i64::MAX, Ordering::Release);
            self.max_t.store(i64::MIN, Ordering::Release);
        }
        alive
    }

    /// Series, chunks and compressed chunk bytes held.
    pub fn stats(&self) -> (usize, usize, usize) {
        let all: Vec<Arc<MemSeries>> = self.read().by_ref.values().cloned().collect();
        let (chunks, bytes) = all.iter().fold((0, 0), |(c, b), s| {
            let (c2, b2) = s.stats();
            (c + c2, b + b2)
        });
        (all.len(), chunks, bytes)
    }

    /// Every label name and its values with series counts (for the TSDB
    /// status page and label APIs).
    pub fn postings_summary(&self) -> Vec<(String, Vec<(String, usize)>)> {
        let ix = self.read();
        let mut out: Vec<(String, Vec<(String, usize)>)> = ix
            .postings
            .iter()
            .map(|(n, values)| {
                let mut v: Vec<(String, usize)> =
                    values.iter().map(|(v, l)| (v.clone(), l.len())).collect();
                v.sort();
                (n.clone(), v)
            })
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use emberlens_model::parse_selector;

    fn l(job: &str) -> Labels {
        Labels::from_pairs([("__name__", "up"), ("job", job)])
    }

    #[test]
    fn chunks_are_cut_at_120_samples_and_block_boundaries() {
        let head = Head::new(1000);
        let (s, created) = head.get_or_create(&l("a"), None);
        assert!(created);
        for t in 0..300 {
            // 1 ms apart: 120-sample chunks inside [0,1000).
            assert!(head.append(&s, t, t as f64));
        }
        for t in [990, 995, 1005, 1500] {
            let _ = head.append(&s, t, 1.0);
        }
        let c = s.chunks_in(0, 1000);
        let counts: Vec<u64> = c.iter().map(|k| k.samples).collect();
        assert_eq!(counts, [120, 120, 62]);
        let later = s.chunks_in(1000, 2000);
        assert_eq!(later.len(), 1);
        assert_eq!((later[0].min_t, later[0].max_t), (1005, 1500));
        let got = head.select(&parse_selector("up").unwrap(), 295, 1005);
        assert_eq!(got[0].samples.len(), 8);
    }

    #[test]
    fn checks_order_and_duplicates() {
        let head = Head::new(1000);
        let (s, _) = head.get_or_create(&l("a"), None);
        assert!(s.check(5, 1.0).unwrap());
        head.append(&s, 5, 1.0);
        assert!(!s.check(5, 1.0).unwrap());
        assert!(matches!(
            s.check(5, 2.0),
            Err(StorageError::DuplicateTimestamp { .. })
        ));
        assert!(matches!(
            s.check(4, 2.0),
            Err(StorageError::OutOfOrder { .. })
        ));
    }

    #[test]
    fn matchers_use_postings_and_truncate_drops_empty_series() {
        let head = Head::new(1000);
        for (job, t) in [("a", 10), ("b", 10), ("c", 2500)] {
            let (s, _) = head.get_or_create(&l(job), None);
            head.append(&s, t, 1.0);
        }
        let names = |m: &str| -> Vec<String> {
            head.matching(&parse_selector(m).unwrap())
                .iter()
                .map(|s| s.labels.get("job").to_string())
                .collect()
        };
        assert_eq!(names(r#"up{job=~"a|c"}"#), ["a", "c"]);
        assert_eq!(names(r#"up{job="b"}"#), ["b"]);
        assert!(names(r#"up{job="zz"}"#).is_empty());
        let alive = head.truncate(2000);
        assert_eq!(alive.len(), 1);
        assert_eq!(names("up"), ["c"]);
        // As Prometheus, the head's min time becomes the truncation point.
        assert_eq!(head.time_range(), (2000, 2500));
        assert_eq!(head.min_valid_time(), 2000);
        assert_eq!(head.postings_summary()[1].1, [("c".to_string(), 1)]);
    }
}
