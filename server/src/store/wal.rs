//! The write-ahead log, in Prometheus's WAL format (`wal/00000000`, …), so a
//! data directory written by Emberlens is one Prometheus can open, WAL
//! included, and Emberlens replays a WAL that Prometheus wrote.
//!
//! The format (pages, fragments, records) is encoded and decoded by
//! [`emberlens_tsdb::wal`]; this module owns the files: it appends to the
//! current segment, cuts segments, pads and syncs them. A checkpoint
//! (`checkpoint.NNNNNNNN/`) holds segments in the same format that replace
//! segments `0..=NNNNNNNN` (see [`super::Tsdb`]).
//!
//! Durability: [`Wal::log`] hands a commit's records to the OS with one
//! `write` before the commit returns, so a killed process loses nothing it
//! acknowledged. [`Wal::sync`] (`fsync`) runs on a timer, when a segment is
//! finished and at shutdown; a machine crash or power loss can lose the
//! commits since the last `fsync`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub use emberlens_tsdb::wal::{
    DEFAULT_SEGMENT_SIZE, PAGE_SIZE, RECORD_SAMPLES, RECORD_SERIES, Record, RefSample,
    SegmentReader, WalCorruption, decode_record, encode_fragments, encode_samples, encode_series,
    segment_name,
};

const HEADER: usize = emberlens_tsdb::wal::HEADER;

/// Why the WAL could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A segment holds bytes that are not a valid record.
    #[error(transparent)]
    Corrupt(#[from] WalCorruption),
}

impl WalError {
    /// An IO error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        WalError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The segments in `dir` (files named by a number), sorted by index.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(WalError::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(i) = name.parse::<u64>() {
            out.push((i, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Appends records to the last segment of a WAL directory.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    segment_size: usize,
    file: File,
    path: PathBuf,
    index: u64,
    /// Bytes written to the segment so far.
    written: usize,
    /// Written since the last `fsync`.
    dirty: bool,
    /// A failed write could not be taken back: start a new segment.
    broken: bool,
    snappy: snap::raw::Encoder,
    buf: Vec<u8>,
}

impl Wal {
    /// Starts a new segment in `dir` after the existing ones (Prometheus
    /// also starts a fresh segment at every start, after replay).
    pub fn open(dir: &Path, segment_size: usize) -> Result<Wal, WalError> {
        std::fs::create_dir_all(dir).map_err(|e| WalError::io(dir, e))?;
        let next = list_segments(dir)?.last().map_or(0, |(i, _)| i + 1);
        let (file, path) = create_segment(dir, next)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            segment_size: segment_size.max(2 * PAGE_SIZE),
            file,
            path,
            index: next,
            written: 0,
            dirty: false,
            broken: false,
            snappy: snap::raw::Encoder::new(),
            buf: Vec::with_capacity(PAGE_SIZE),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Index of the segment being written.
    pub fn segment_index(&self) -> u64 {
        self.index
    }

    /// Writes `records` (one commit) with a single `write`.
    pub fn log(&mut self, records: &[&[u8]]) -> Result<(), WalError> {
        if self.broken {
            self.next_segment()?;
        }
        self.buf.clear();
        for rec in records {
            // Snappy-compressed when that is smaller, as Prometheus's default
            // `--storage.tsdb.wal-compression` (samples records shrink ~2-3x).
            let packed = self
                .snappy
                .compress_vec(rec)
                .ok()
                .filter(|p| p.len() < rec.len());
            let (rec, snappy) = match &packed {
                Some(p) => (p.as_slice(), true),
                None => (*rec, false),
            };
            let mut pos = self.written + self.buf.len();
            // What fits in the rest of this segment, headers counted.
            let page_left = PAGE_SIZE - pos % PAGE_SIZE;
            let pages_left = (self.segment_size - pos)
                .div_ceil(PAGE_SIZE)
                .saturating_sub(1);
            let room = if pos >= self.segment_size {
                0
            } else {
                page_left.saturating_sub(HEADER) + pages_left * (PAGE_SIZE - HEADER)
            };
            if rec.len() > room && pos > 0 {
                self.flush_buf()?;
                self.next_segment()?;
                pos = 0;
            }
            encode_fragments(&mut self.buf, pos, rec, snappy);
        }
        self.flush_buf()
    }

    fn flush_buf(&mut self) -> Result<(), WalError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            // Take back a partial write (disk full), so the segment stays
            // readable and the next commit continues from a record boundary.
            self.buf.clear();
            if self.file.set_len(self.written as u64).is_err() {
                self.broken = true;
            }
            return Err(WalError::io(&self.path, e));
        }
        self.written += self.buf.len();
        self.buf.clear();
        self.dirty = true;
        Ok(())
    }

    /// Pads and syncs the current segment and starts the next one; returns
    /// the index of the finished segment.
    pub fn next_segment(&mut self) -> Result<u64, WalError> {
        if !self.broken {
            self.finish_segment()?;
        }
        let done = self.index;
        let (file, path) = create_segment(&self.dir, self.index + 1)?;
        self.file = file;
        self.path = path;
        self.index += 1;
        self.written = 0;
        self.broken = false;
        Ok(done)
    }

    fn finish_segment(&mut self) -> Result<(), WalError> {
        let rem = self.written % PAGE_SIZE;
        if rem != 0 {
            let pad = vec![0u8; PAGE_SIZE - rem];
            self.file
                .write_all(&pad)
                .map_err(|e| WalError::io(&self.path, e))?;
            self.written += pad.len();
            self.dirty = true;
        }
        self.sync()
    }

    /// `fsync`s the current segment if anything was written since the last one.
    pub fn sync(&mut self) -> Result<(), WalError> {
        if self.dirty {
            self.file
                .sync_data()
                .map_err(|e| WalError::io(&self.path, e))?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Pads the last page and syncs (as Prometheus's `Close`).
    pub fn close(mut self) -> Result<(), WalError> {
        self.finish_segment()
    }
}

fn create_segment(dir: &Path, i: u64) -> Result<(File, PathBuf), WalError> {
    let path = dir.join(segment_name(i));
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| WalError::io(&path, e))?;
    sync_dir(dir)?;
    Ok((file, path))
}

/// `fsync`s a directory, so entries created or renamed in it persist.
pub fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io(dir, e))
}

/// Reads a whole segment file.
pub fn read_segment(path: &Path) -> Result<Vec<u8>, WalError> {
    std::fs::read(path).map_err(|e| WalError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("emberlens-wal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// Bytes snappy cannot shrink, so records are written as they are.
    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn compressible_records_are_written_snappy_compressed() {
        let dir = temp("snappy");
        let mut wal = Wal::open(&dir, DEFAULT_SEGMENT_SIZE).unwrap();
        let rec = vec![7u8; 100_000];
        wal.log(&[&rec]).unwrap();
        wal.close().unwrap();
        // One page holds it, flagged compressed, and it reads back whole.
        let (_, p) = list_segments(&dir).unwrap().pop().unwrap();
        let bytes = read_segment(&p).unwrap();
        assert_eq!(bytes.len(), PAGE_SIZE);
        assert_eq!(bytes[0], 1 | 8);
        assert_eq!(read_all(&dir), [rec]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn read_all(dir: &Path) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (_, p) in list_segments(dir).unwrap() {
            let bytes = read_segment(&p).unwrap();
            let name = p.display().to_string();
            let mut r = SegmentReader::new(&name, &bytes);
            while let Some(rec) = r.next_record().unwrap() {
                out.push(rec);
            }
        }
        out
    }

    #[test]
    fn records_of_every_size_round_trip_across_pages_and_segments() {
        let dir = temp("sizes");
        let mut wal = Wal::open(&dir, 4 * PAGE_SIZE).unwrap();
        let mut want = Vec::new();
        for (i, n) in [
            0usize,
            1,
            5,
            PAGE_SIZE - 14,
            PAGE_SIZE,
            3 * PAGE_SIZE,
            100,
            7,
            70_000,
        ]
        .into_iter()
        .enumerate()
        {
            let rec = noise(n, i as u64);
            wal.log(&[&rec]).unwrap();
            want.push(rec);
        }
        wal.log(&[b"a", b"bc"]).unwrap();
        want.push(b"a".to_vec());
        want.push(b"bc".to_vec());
        wal.close().unwrap();
        assert_eq!(read_all(&dir), want);
        for (_, p) in list_segments(&dir).unwrap() {
            assert_eq!(std::fs::metadata(&p).unwrap().len() % PAGE_SIZE as u64, 0);
        }
        assert!(list_segments(&dir).unwrap().len() > 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn torn_and_corrupt_tails_are_reported_with_offsets() {
        let dir = temp("torn");
        let mut wal = Wal::open(&dir, DEFAULT_SEGMENT_SIZE).unwrap();
        wal.log(&[b"hello"]).unwrap();
        wal.log(&[&noise(50_000, 9)]).unwrap();
        drop(wal); // a crash: no padding
        let (_, p) = list_segments(&dir).unwrap().pop().unwrap();
        let bytes = read_segment(&p).unwrap();
        // Cut inside the second record.
        let cut = &bytes[..bytes.len() - 10];
        let name = p.display().to_string();
        let mut r = SegmentReader::new(&name, cut);
        assert_eq!(r.next_record().unwrap().unwrap(), b"hello");
        let err = r.next_record().unwrap_err().to_string();
        assert!(err.contains("offset 32768: fragment cut short"), "{err}");
        assert_eq!(r.good_end(), 12);
        // A flipped bit fails the checksum.
        let mut bad = bytes.clone();
        bad[9] ^= 1;
        let err = SegmentReader::new(&name, &bad).next_record().unwrap_err();
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
