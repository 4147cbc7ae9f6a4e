//! A page cache in front of a slow [`ByteSource`]: every read of the inner
//! source fetches whole pages (64 KiB), and up to [`MAX_CACHED_PAGES`] of
//! them are kept, oldest dropped first.
//!
//! Why: in the browser each read costs far more than its bytes — a
//! `FileReaderSync` call over `File.slice` crosses into the browser process,
//! an HTTP range request is a round trip — while the TSDB reader makes many
//! small reads close together (TOC, symbols, postings, series entries,
//! chunks). Grouping them into pages turns thousands of reads into tens.
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

use emberlens_tsdb::{ByteSource, SourceError};

/// Bytes per page (the unit fetched from the inner source).
pub const PAGE: u64 = 64 * 1024;
/// Pages kept (16 MiB).
pub const MAX_CACHED_PAGES: usize = 256;

#[derive(Default)]
struct Cache {
    pages: BTreeMap<u64, Arc<Vec<u8>>>,
    order: VecDeque<u64>,
    fetches: u64,
}

/// `inner` behind a page cache; clones share the cache.
#[derive(Clone)]
pub struct Paged<S> {
    inner: S,
    len: u64,
    cache: Arc<Mutex<Cache>>,
}

impl<S: ByteSource> Paged<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        let len = inner.len();
        Paged {
            inner,
            len,
            cache: Arc::new(Mutex::new(Cache::default())),
        }
    }

    /// Reads made on the inner source so far.
    pub fn fetches(&self) -> u64 {
        self.cache().fetches
    }

    /// The cache, locked (a panic while it was held left nothing half-done
    /// that matters: pages are inserted whole).
    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The inner source.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Fetches pages `first..=last` in one inner read and caches them.
    fn fetch(&self, first: u64, last: u64) -> Result<(), SourceError> {
        let start = first * PAGE;
        let end = ((last + 1) * PAGE).min(self.len);
        let body = self
            .inner
            .read_at(start, (end - start) as usize)?
            .into_owned();
        let mut c = self.cache();
        c.fetches += 1;
        for (i, page) in (first..=last).enumerate() {
            let lo = i * PAGE as usize;
            let hi = (lo + PAGE as usize).min(body.len());
            let bytes = body.get(lo..hi).unwrap_or_default().to_vec();
            if c.pages.insert(page, Arc::new(bytes)).is_none() {
                c.order.push_back(page);
            }
        }
        Ok(())
    }
}

impl<S: ByteSource> ByteSource for Paged<S> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, SourceError> {
        let end = offset
            .checked_add(len as u64)
            .filter(|e| *e <= self.len)
            .ok_or_else(|| {
                SourceError(format!(
                    "read of {len} bytes at {offset} past the end ({} bytes)",
                    self.len
                ))
            })?;
        if len == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        let (first, last) = (offset / PAGE, (end - 1) / PAGE);
        if last - first + 1 > (MAX_CACHED_PAGES / 2) as u64 {
            let bytes = self.inner.read_at(offset, len)?.into_owned();
            self.cache().fetches += 1;
            return Ok(Cow::Owned(bytes));
        }
        {
            let mut c = self.cache();
            while c.order.len() > MAX_CACHED_PAGES {
                if let Some(old) = c.order.pop_front() {
                    c.pages.remove(&old);
                }
            }
        }
        let missing: Vec<u64> = {
            let c = self.cache();
            (first..=last)
                .filter(|p| !c.pages.contains_key(p))
                .collect()
        };
        if let (Some(&lo), Some(&hi)) = (missing.first(), missing.last()) {
            self.fetch(lo, hi)?;
        }
        let c = self.cache();
        let mut out = Vec::with_capacity(len);
        for p in first..=last {
            let page = c
                .pages
                .get(&p)
                .ok_or_else(|| SourceError(format!("page {p} missing from the cache")))?;
            let page_start = p * PAGE;
            let lo = offset.saturating_sub(page_start) as usize;
            let hi = ((end - page_start) as usize).min(page.as_slice().len());
            out.extend_from_slice(page.as_slice().get(lo..hi).unwrap_or_default());
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
        // Many small reads inside the first page: one inner read.
        for off in (0..60_000u64).step_by(97) {
            let got = src.read_at(off, 50).unwrap();
            assert_eq!(&got[..], &data[off as usize..off as usize + 50]);
        }
        assert_eq!(counter.reads(), 1);
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
}
