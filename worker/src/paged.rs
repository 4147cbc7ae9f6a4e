//! A page cache in front of a slow [`ByteSource`]: every read of the inner
//! source fetches whole pages, and up to a byte budget of them are kept,
//! oldest dropped first: [`CACHE_BYTES`] for a lone file, or
//! [`SOURCE_CACHE_BYTES`] shared by the files of one opened source
//! ([`PageCache`]).
//!
//! Why: in the browser each read costs far more than its bytes — a
//! `FileReaderSync` call over `File.slice` crosses into the browser process,
//! an HTTP range request is a round trip — while the TSDB reader makes many
//! small reads close together (TOC, symbols, postings, series entries,
//! chunks). Grouping them into pages turns thousands of reads into tens.
//!
//! Pages are small ([`FILE_PAGE`], 4 KiB, for local files) with readahead:
//! a read that continues a sequential run fetches as many bytes past it as
//! the run has read so far (up to [`MAX_READAHEAD`]; so the window doubles
//! while the reader keeps consuming it), any other read fetches only its
//! own pages. (Counting reads instead of bytes misfires: one series' few
//! adjacent chunks, read in two parts each, looked like a long run and
//! fetched 256 KiB around every series.) So
//! the index's sequential walks take few large reads, and a query's chunks,
//! one per series and tens of KiB apart, cost a page each instead of
//! dragging in 64 KiB around every chunk (which read 150 MB per query of
//! 2,350 gauge series). Over HTTP, where a request's latency dwarfs its
//! bytes, pages are [`HTTP_PAGE`] (64 KiB).
//!
//! Edge cases: a read larger than half the cache bypasses it (fetched
//! exactly, not kept); the cache makes room before fetching, so a read's own
//! pages are never evicted under it; reads past the end are errors from the
//! bounds check, before any fetch. The worker is single-threaded, but the
//! cache sits behind a `Mutex` (never contended there) because byte sources
//! are `Sync` in native builds, where the worker's tests run.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use emberlens_tsdb::source::{PREFETCH_GAP, read_end};
use emberlens_tsdb::{ByteSource, SourceError};

/// Page size for local files (`Blob`s).
pub const FILE_PAGE: u64 = 4 * 1024;
/// Page size over HTTP range requests.
pub const HTTP_PAGE: u64 = 64 * 1024;
/// Bytes of pages a lone [`Paged::new`] keeps (16 MiB).
pub const CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// Bytes of pages the files of one opened source keep together
/// ([`PageCache`]): repeated queries over the same data (a dashboard's
/// refresh) are answered from memory.
pub const SOURCE_CACHE_BYTES: u64 = 192 * 1024 * 1024;
/// Most bytes fetched past a read that continues the previous one.
pub const MAX_READAHEAD: u64 = 1024 * 1024;

/// One file's reading state.
#[derive(Default, Clone, Copy)]
struct FileState {
    fetches: u64,
    /// Start of the current sequential run of reads, and the end of the
    /// previous read.
    run_start: u64,
    last_end: u64,
}

/// Pages of one or several files, oldest dropped first beyond `max_bytes`.
struct Cache {
    pages: BTreeMap<(u32, u64), Arc<Vec<u8>>>,
    order: VecDeque<(u32, u64)>,
    bytes: u64,
    max_bytes: u64,
    files: Vec<FileState>,
}

impl Cache {
    /// Drops the oldest pages until `more` bytes fit.
    fn make_room(&mut self, more: u64) {
        while self.bytes + more > self.max_bytes {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(p) = self.pages.remove(&old) {
                self.bytes -= p.as_slice().len() as u64;
            }
        }
    }

    fn insert(&mut self, key: (u32, u64), bytes: Vec<u8>) {
        let n = bytes.len() as u64;
        match self.pages.insert(key, Arc::new(bytes)) {
            Some(old) => self.bytes = self.bytes - old.as_slice().len() as u64 + n,
            None => {
                self.bytes += n;
                self.order.push_back(key);
            }
        }
    }

    fn file(&mut self, id: u32) -> &mut FileState {
        let i = id as usize;
        if i >= self.files.len() {
            self.files.resize(i + 1, FileState::default());
        }
        &mut self.files[i]
    }
}

/// A page cache shared by several files under one byte budget.
#[derive(Clone)]
pub struct PageCache(Arc<Mutex<Cache>>);

impl PageCache {
    /// An empty cache holding at most `max_bytes` of pages.
    pub fn new(max_bytes: u64) -> Self {
        PageCache(Arc::new(Mutex::new(Cache {
            pages: BTreeMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            max_bytes,
            files: Vec::new(),
        })))
    }

    /// The cache, locked (a panic while it was held left nothing half-done
    /// that matters: pages are inserted whole).
    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes of pages held.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// A number for a new file.
    fn add_file(&self) -> u32 {
        let mut c = self.lock();
        let id = c.files.len() as u32;
        c.files.push(FileState::default());
        id
    }
}

/// `inner` behind a page cache; clones share the cache.
#[derive(Clone)]
pub struct Paged<S> {
    inner: S,
    len: u64,
    page: u64,
    id: u32,
    cache: PageCache,
}

impl<S: ByteSource> Paged<S> {
    /// Wraps `inner` with [`FILE_PAGE`] pages in a cache of its own.
    pub fn new(inner: S) -> Self {
        Self::with_page(inner, FILE_PAGE)
    }

    /// Wraps `inner` with pages of `page` bytes (at least 512) in a cache
    /// of its own ([`CACHE_BYTES`]).
    pub fn with_page(inner: S, page: u64) -> Self {
        Self::in_cache(inner, page, &PageCache::new(CACHE_BYTES))
    }

    /// Wraps `inner` with pages of `page` bytes in `cache`, shared with
    /// other files.
    pub fn in_cache(inner: S, page: u64, cache: &PageCache) -> Self {
        let len = inner.len();
        Paged {
            inner,
            len,
            page: page.max(512),
            id: cache.add_file(),
            cache: cache.clone(),
        }
    }

    /// Reads made on the inner source so far.
    pub fn fetches(&self) -> u64 {
        self.cache.lock().file(self.id).fetches
    }

    /// The inner source.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Fetches pages `first..=last` in one inner read and caches those
    /// `keep` wants (a prefetch reads through gaps it does not keep).
    fn fetch(&self, first: u64, last: u64, keep: impl Fn(u64) -> bool) -> Result<(), SourceError> {
        let page = self.page;
        let start = first * page;
        let end = ((last + 1) * page).min(self.len);
        let body = self
            .inner
            .read_at(start, (end - start) as usize)?
            .into_owned();
        let mut c = self.cache.lock();
        c.file(self.id).fetches += 1;
        for (i, p) in (first..=last).enumerate() {
            if !keep(p) {
                continue;
            }
            let lo = i * page as usize;
            let hi = (lo + page as usize).min(body.len());
            let bytes = body.get(lo..hi).unwrap_or_default().to_vec();
            c.insert((self.id, p), bytes);
        }
        Ok(())
    }
}

impl<S: ByteSource> ByteSource for Paged<S> {
    fn len(&self) -> u64 {
        self.len
    }

    /// Reads the pages of `ranges` not cached yet, ranges closer than
    /// [`PREFETCH_GAP`] joined into one read (the gap read through, not
    /// kept), as long as they fit in half the cache.
    fn prefetch(&self, ranges: &[(u64, u64)]) {
        let page = self.page;
        let mut sorted: Vec<(u64, u64)> = ranges
            .iter()
            .map(|&(a, b)| (a.min(self.len), b.min(self.len)))
            .filter(|(a, b)| a < b)
            .collect();
        sorted.sort_unstable();
        // Extents to read: byte range, and the page spans its ranges want.
        type Extent = (u64, u64, Vec<(u64, u64)>);
        let mut extents: Vec<Extent> = Vec::new();
        for (a, b) in sorted {
            let pages = (a / page, (b - 1) / page);
            match extents.last_mut() {
                Some(x) if a <= x.1.saturating_add(PREFETCH_GAP) => {
                    x.1 = x.1.max(b);
                    x.2.push(pages);
                }
                _ => extents.push((a, b, vec![pages])),
            }
        }
        let mut budget = self.cache.lock().max_bytes / 2;
        for (a, b, wanted) in extents {
            let keep = |p: u64| wanted.iter().any(|&(f, l)| f <= p && p <= l);
            let (first, last) = (a / page, (b - 1) / page);
            let need: u64 = wanted.iter().map(|(f, l)| (l - f + 1) * page).sum();
            if need > budget {
                break;
            }
            let missing: Vec<u64> = {
                let mut c = self.cache.lock();
                c.make_room(need);
                (first..=last)
                    .filter(|&p| keep(p) && !c.pages.contains_key(&(self.id, p)))
                    .collect()
            };
            if let (Some(&lo), Some(&hi)) = (missing.first(), missing.last()) {
                // Errors surface again when the pages are read.
                if self.fetch(lo, hi, keep).is_err() {
                    return;
                }
                budget -= need;
            }
        }
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, SourceError> {
        let end = read_end(offset, len, self.len)?;
        if len == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        let page = self.page;
        let (first, last) = (offset / page, (end - 1) / page);
        let (missing, ahead) = {
            let mut c = self.cache.lock();
            if (last - first + 1) * page > c.max_bytes / 2 {
                drop(c);
                let bytes = self.inner.read_at(offset, len)?.into_owned();
                self.cache.lock().file(self.id).fetches += 1;
                return Ok(Cow::Owned(bytes));
            }
            // Readahead: a read starting at (or just around) where the
            // previous one ended is sequential.
            let f = c.file(self.id);
            let sequential = offset + page >= f.last_end && offset <= f.last_end + page;
            if !sequential {
                f.run_start = offset;
            }
            f.last_end = end;
            let ahead = end.saturating_sub(f.run_start).min(MAX_READAHEAD) / page;
            c.make_room((last - first + 1 + ahead) * page);
            let missing: Vec<u64> = (first..=last)
                .filter(|&p| !c.pages.contains_key(&(self.id, p)))
                .collect();
            (missing, ahead)
        };
        if let (Some(&lo), Some(&hi)) = (missing.first(), missing.last()) {
            let last_page = (self.len - 1) / page;
            self.fetch(lo, (hi + ahead).min(last_page), |_| true)?;
        }
        let c = self.cache.lock();
        let mut out = Vec::with_capacity(len);
        for p in first..=last {
            let bytes = c
                .pages
                .get(&(self.id, p))
                .ok_or_else(|| SourceError(format!("page {p} missing from the cache")))?;
            let page_start = p * page;
            let lo = offset.saturating_sub(page_start) as usize;
            let hi = ((end - page_start) as usize).min(bytes.as_slice().len());
            out.extend_from_slice(bytes.as_slice().get(lo..hi).unwrap_or_default());
        }
        if out.len() != len {
            return Err(SourceError(format!(
                "read of {len} bytes at {offset} got {}",
                out.len()
            )));
        }
        Ok(Cow::Owned(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use emberlens_tsdb::ReadCounter;

    #[test]
    fn small_reads_share_pages_and_bytes_are_exact() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let counter = ReadCounter::default();
        let src = Paged::new(counter.wrap(data.clone()));
        // Many small reads walking forward: pages with readahead growing
        // with the run, a handful of inner reads.
        for off in (0..60_000u64).step_by(97) {
            let got = src.read_at(off, 50).unwrap();
            assert_eq!(&got[..], &data[off as usize..off as usize + 50]);
        }
        assert!(counter.reads() <= 5, "{} reads", counter.reads());
        // A read across a page boundary and up to the end.
        let got = src.read_at(65_000, 2_000).unwrap();
        assert_eq!(&got[..], &data[65_000..67_000]);
        let got = src.read_at(299_990, 10).unwrap();
        assert_eq!(&got[..], &data[299_990..]);
        assert!(src.read_at(299_995, 10).is_err());
        assert_eq!(src.read_at(5, 0).unwrap().len(), 0);
        // The whole file in one read.
        let got = src.read_at(0, 300_000).unwrap();
        assert_eq!(&got[..], &data[..]);
    }

    #[test]
    fn scattered_reads_fetch_only_their_pages() {
        // One small read every 48 KiB, as a query's chunks of gauge series
        // are laid out: a page each, not the 48 KiB around them.
        let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 253) as u8).collect();
        let counter = ReadCounter::default();
        let src = Paged::new(counter.wrap(data.clone()));
        let offsets: Vec<u64> = (0..80u64).map(|i| 1_000 + i * 48 * 1024).collect();
        for &off in &offsets {
            let got = src.read_at(off, 300).unwrap();
            assert_eq!(&got[..], &data[off as usize..off as usize + 300]);
        }
        assert_eq!(counter.reads(), 80);
        assert!(
            counter.bytes() <= 80 * 2 * FILE_PAGE,
            "{} bytes",
            counter.bytes()
        );
        // Read again: all cached.
        for &off in &offsets {
            src.read_at(off, 300).unwrap();
        }
        assert_eq!(counter.reads(), 80);
    }

    #[test]
    fn prefetched_ranges_come_in_few_reads() {
        // 80 chunks 48 KiB apart: gaps under PREFETCH_GAP are read through,
        // so one read brings them all, and reading them costs nothing more.
        let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 253) as u8).collect();
        let counter = ReadCounter::default();
        let src = Paged::new(counter.wrap(data.clone()));
        let ranges: Vec<(u64, u64)> = (0..80u64)
            .map(|i| (1_000 + i * 48 * 1024, 1_300 + i * 48 * 1024))
            .collect();
        src.prefetch(&ranges);
        assert_eq!(counter.reads(), 1);
        for &(a, b) in &ranges {
            let got = src.read_at(a, (b - a) as usize).unwrap();
            assert_eq!(&got[..], &data[a as usize..b as usize]);
        }
        assert_eq!(counter.reads(), 1);
        // Cached: no read. The gaps read through were not kept, and ranges
        // far apart are separate reads: two.
        counter.reset();
        src.prefetch(&[
            (1_000, 1_010),
            (2_000_000, 2_000_010),
            (3_950_000, 3_950_100),
        ]);
        assert_eq!(counter.reads(), 2);
        // Out of range parts are ignored, not errors.
        src.prefetch(&[(3_999_990, 9_000_000), (7, 3)]);
    }

    #[test]
    fn files_share_one_budget() {
        let cache = PageCache::new(64 * 1024);
        let a: Vec<u8> = vec![1; 100_000];
        let b: Vec<u8> = vec![2; 100_000];
        let (ca, cb) = (ReadCounter::default(), ReadCounter::default());
        let pa = Paged::in_cache(ca.wrap(a), FILE_PAGE, &cache);
        let pb = Paged::in_cache(cb.wrap(b), FILE_PAGE, &cache);
        for off in (0..90_000u64).step_by(9_000) {
            assert_eq!(pa.read_at(off, 10).unwrap()[0], 1);
            assert_eq!(pb.read_at(off, 10).unwrap()[0], 2);
            assert!(cache.bytes() <= 64 * 1024, "{} bytes held", cache.bytes());
        }
        // Each file's pages are its own.
        assert_eq!(&pa.read_at(50_000, 3).unwrap()[..], &[1, 1, 1]);
        assert_eq!(&pb.read_at(50_000, 3).unwrap()[..], &[2, 2, 2]);
    }

    #[test]
    fn http_pages_are_larger() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let counter = ReadCounter::default();
        let src = Paged::with_page(counter.wrap(data.clone()), HTTP_PAGE);
        for off in (0..60_000u64).step_by(997) {
            assert_eq!(
                &src.read_at(off, 30).unwrap()[..],
                &data[off as usize..off as usize + 30]
            );
        }
        assert_eq!(counter.reads(), 1);
    }
}
