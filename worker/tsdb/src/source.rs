//! The byte-source seam: everything this crate reads comes through
//! [`ByteSource`] (one file, random access) and [`FileSet`] (a directory tree
//! of such files).
//!
//! A key design decision is that the crate does no IO of its own. Natively a
//! `ByteSource` is a file read with positioned reads; in the browser it is a
//! `File` read slice by slice with `FileReaderSync`; inside a `.tar` it is a
//! window of the archive. [`CountingSource`] wraps any source to measure how
//! many bytes a query really read (the lazy-read figure).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::SourceError;

/// Ranges to [`ByteSource::prefetch`] closer than this are worth reading as
/// one, gap included (in the browser a read costs about as much as 200 KiB
/// of bytes).
pub const PREFETCH_GAP: u64 = 256 << 10;

/// The end of a read of `len` bytes at `offset` from a source of `size`
/// bytes; reading past the end is an error saying so.
pub fn read_end(offset: u64, len: usize, size: u64) -> Result<u64, SourceError> {
    offset
        .checked_add(len as u64)
        .filter(|e| *e <= size)
        .ok_or_else(|| {
            SourceError(format!(
                "read of {len} bytes at {offset} past the end ({size} bytes)"
            ))
        })
}

/// One file, readable at any offset. Natively also `Sync`, so blocks
/// decode series on several threads (`emberlens_model::par`).
pub trait ByteSource: emberlens_model::par::MaybeSync {
    /// Total length in bytes.
    fn len(&self) -> u64;

    /// Whether the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Exactly `len` bytes from `offset`; reading past the end is an error.
    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, SourceError>;

    /// A hint: the byte ranges `[start, end)` (sorted) will be read soon.
    /// Sources where each read costs much more than its bytes (the
    /// worker's page cache over `File`s and HTTP) fetch them in a few large
    /// reads; errors are left for the reads themselves. Default: nothing.
    fn prefetch(&self, ranges: &[(u64, u64)]) {
        let _ = ranges;
    }
}

impl ByteSource for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, SourceError> {
        let end = offset
            .checked_add(len as u64)
            .filter(|e| *e <= ByteSource::len(self));
        match end {
            Some(end) => Ok(Cow::Borrowed(&self[offset as usize..end as usize])),
            None => Err(SourceError(format!(
                "read of {len} bytes at {offset} past the end ({} bytes)",
                ByteSource::len(self)
            ))),
        }
    }
}

impl ByteSource for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, SourceError> {
        self.as_slice().read_at(offset, len)
    }
}

impl<T: ByteSource + emberlens_model::par::MaybeSend + ?Sized> ByteSource for Arc<T> {
    fn len(&self) -> u64 {
        (**self).len()
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, SourceError> {
        (**self).read_at(offset, len)
    }

    fn prefetch(&self, ranges: &[(u64, u64)]) {
        (**self).prefetch(ranges)
    }
}

impl<T: ByteSource + ?Sized> ByteSource for Box<T> {
    fn len(&self) -> u64 {
        (**self).len()
    }

    fn prefetch(&self, ranges: &[(u64, u64)]) {
        (**self).prefetch(ranges)
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, SourceError> {
        (**self).read_at(offset, len)
    }
}

/// A tree of files addressed by `/`-separated relative paths
/// (`01M8…/index`, `01M8…/chunks/000001`).
///
/// The file type is an associated type, not a trait object, so a native set
/// can hand out `Send + Sync` files (the server reads blocks from many tasks)
/// while the browser's set hands out `File` handles that are neither.
pub trait FileSet {
    /// An opened file; cheap to clone (a handle, not the bytes).
    type File: ByteSource + Clone;
    /// Every file path in the set, sorted.
    fn paths(&self) -> Vec<String>;
    /// Opens one file.
    fn open(&self, path: &str) -> Result<Self::File, SourceError>;
}

/// Files held in memory: for tests, fuzzing and small uploads.
#[derive(Default, Clone)]
pub struct MemFileSet {
    files: BTreeMap<String, Arc<Vec<u8>>>,
}

impl MemFileSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a file.
    pub fn insert(&mut self, path: impl Into<String>, data: Vec<u8>) {
        self.files.insert(path.into(), Arc::new(data));
    }

    /// The bytes of a file, if present.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(|v| v.as_slice())
    }
}

impl FileSet for MemFileSet {
    type File = Arc<Vec<u8>>;

    fn paths(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    fn open(&self, path: &str) -> Result<Self::File, SourceError> {
        match self.files.get(path) {
            Some(data) => Ok(data.clone()),
            None => Err(SourceError(format!("{path}: no such file"))),
        }
    }
}

/// Counts the bytes read through it and the number of reads.
#[derive(Clone)]
pub struct CountingSource<S> {
    inner: S,
    counter: ReadCounter,
}

/// Shared counters of one or more [`CountingSource`]s.
#[derive(Clone, Default, Debug)]
pub struct ReadCounter {
    bytes: Arc<AtomicU64>,
    reads: Arc<AtomicU64>,
}

impl ReadCounter {
    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Reads so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Resets both counters.
    pub fn reset(&self) {
        self.bytes.store(0, Ordering::Relaxed);
        self.reads.store(0, Ordering::Relaxed);
    }

    /// Wraps `inner` so its reads add to these counters.
    pub fn wrap<S: ByteSource>(&self, inner: S) -> CountingSource<S> {
        CountingSource {
            inner,
            counter: self.clone(),
        }
    }
}

impl<S: ByteSource> ByteSource for CountingSource<S> {
    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, SourceError> {
        self.counter.bytes.fetch_add(len as u64, Ordering::Relaxed);
        self.counter.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.read_at(offset, len)
    }

    fn prefetch(&self, ranges: &[(u64, u64)]) {
        self.inner.prefetch(ranges)
    }
}

/// A [`FileSet`] whose files count their reads.
pub struct CountingFileSet<F> {
    inner: F,
    counter: ReadCounter,
}

impl<F: FileSet> CountingFileSet<F> {
    /// Wraps `inner`; the counters start at zero.
    pub fn new(inner: F) -> Self {
        CountingFileSet {
            inner,
            counter: ReadCounter::default(),
        }
    }

    /// The shared counters.
    pub fn counter(&self) -> &ReadCounter {
        &self.counter
    }
}

impl<F: FileSet> FileSet for CountingFileSet<F> {
    type File = CountingSource<F::File>;

    fn paths(&self) -> Vec<String> {
        self.inner.paths()
    }

    fn open(&self, path: &str) -> Result<Self::File, SourceError> {
        Ok(self.counter.wrap(self.inner.open(path)?))
    }
}
