//! Files the user opened, read in the worker with `FileReaderSync` over
//! `Blob.slice`: only the byte ranges a query needs are read, so a 2 GB
//! snapshot never sits in the tab's memory (wasm32 only).
//!
//! A folder upload arrives as many `File`s with relative paths; a `.tar`
//! arrives as one `File` and is read in place through the TSDB crate's
//! [`TarFileSet`]; a `.tar.gz` is decompressed once into memory. Every file
//! is read through a [`Paged`] cache: each `FileReaderSync` call crosses
//! into the browser process, so the TSDB reader's many small reads are
//! grouped into 64 KiB pages.

use std::borrow::Cow;
use std::collections::BTreeMap;

use emberlens_tsdb::archive::{ArchiveKind, TarFileSet, read_tar_gz, sniff};
use emberlens_tsdb::source::read_end;
use emberlens_tsdb::{ByteSource, FileSet, MemFileSet, SourceError, TsdbError};
use web_sys::{Blob, FileReaderSync};

use crate::paged::{FILE_PAGE, PageCache, Paged, SOURCE_CACHE_BYTES};

/// One `Blob` (or `File`) as a random-access byte source.
#[derive(Clone)]
pub struct BlobSource {
    blob: Blob,
    len: u64,
    reader: FileReaderSync,
}

impl BlobSource {
    /// Wraps `blob`; fails outside a worker (no `FileReaderSync` there).
    pub fn new(blob: Blob) -> Result<Self, SourceError> {
        let reader = FileReaderSync::new()
            .map_err(|e| SourceError(format!("FileReaderSync is not available here: {e:?}")))?;
        let len = blob.size() as u64;
        Ok(BlobSource { blob, len, reader })
    }
}

impl ByteSource for BlobSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, SourceError> {
        let end = read_end(offset, len, self.len)?;
        // f64 holds offsets exactly up to 2^53 bytes.
        let slice = self
            .blob
            .slice_with_f64_and_f64(offset as f64, end as f64)
            .map_err(|e| SourceError(format!("Blob.slice failed: {e:?}")))?;
        let buf = self
            .reader
            .read_as_array_buffer(&slice)
            .map_err(|e| SourceError(format!("reading the file failed: {e:?}")))?;
        Ok(Cow::Owned(js_sys::Uint8Array::new(&buf).to_vec()))
    }
}

/// Files addressed by relative path, each a `Blob`.
#[derive(Clone, Default)]
pub struct BlobFileSet {
    files: BTreeMap<String, Paged<BlobSource>>,
}

impl BlobFileSet {
    /// Files with their relative paths (a folder upload's `webkitRelativePath`).
    pub fn new(files: Vec<(String, Blob)>) -> Result<Self, SourceError> {
        let mut map = BTreeMap::new();
        // One page budget for all the files of the source.
        let cache = PageCache::new(SOURCE_CACHE_BYTES);
        for (path, blob) in files {
            map.insert(
                path.trim_start_matches("./").to_string(),
                Paged::in_cache(BlobSource::new(blob)?, FILE_PAGE, &cache),
            );
        }
        Ok(BlobFileSet { files: map })
    }
}

impl FileSet for BlobFileSet {
    type File = Paged<BlobSource>;

    fn paths(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    fn open(&self, path: &str) -> Result<Self::File, SourceError> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| SourceError(format!("{path}: not among the opened files")))
    }
}

/// Anything the user can open as TSDB data.
pub enum OpenedSource {
    /// A folder of files (or single files) read slice by slice.
    Files(BlobFileSet),
    /// A `.tar` read in place.
    Tar(TarFileSet<Paged<BlobSource>>),
    /// A `.tar.gz`, decompressed into memory.
    Unpacked(MemFileSet),
}

/// Largest `.tar.gz` unpacked size accepted in the browser (it is held in memory).
pub const MAX_TAR_GZ_BYTES: u64 = 1 << 30;

/// Opens what the user picked: one archive, or a folder's files.
pub fn open_source(files: Vec<(String, Blob)>) -> Result<OpenedSource, TsdbError> {
    if let [(name, blob)] = files.as_slice() {
        let src = Paged::in_cache(
            BlobSource::new(blob.clone()).map_err(|detail| TsdbError::Read {
                file: name.clone(),
                detail,
            })?,
            FILE_PAGE,
            &PageCache::new(SOURCE_CACHE_BYTES),
        );
        match sniff(&src) {
            ArchiveKind::Tar => return Ok(OpenedSource::Tar(TarFileSet::open(name, src)?)),
            ArchiveKind::TarGz => {
                return Ok(OpenedSource::Unpacked(read_tar_gz(
                    name,
                    &src,
                    MAX_TAR_GZ_BYTES,
                )?));
            }
            ArchiveKind::Unknown => {}
        }
    }
    BlobFileSet::new(files)
        .map(OpenedSource::Files)
        .map_err(|detail| TsdbError::Read {
            file: "opened files".into(),
            detail,
        })
}
