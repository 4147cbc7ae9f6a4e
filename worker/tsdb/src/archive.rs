//! Snapshots packed as `.tar` (random access, nothing unpacked) or `.tar.gz`
//! (decompressed once, as a stream, into memory: gzip offers no random
//! access, so a large snapshot is better shared as a plain `.tar`).
//!
//! Entry headers are parsed by the `tar` crate (ustar, GNU long names, pax)
//! through a `Read + Seek` view of the byte source; only headers are read
//! while listing, file contents are read later through windows of the
//! archive. Paths drop a leading `./`; everything else is kept, so block
//! directories nested in a snapshot folder are found as in a directory.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};

use crate::error::{SourceError, TsdbError};
use crate::source::{ByteSource, FileSet, MemFileSet};

/// What the first bytes say the source is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveKind {
    /// A POSIX tar (`ustar` magic at offset 257).
    Tar,
    /// gzip (magic `1f 8b`), assumed to hold a tar.
    TarGz,
    /// Neither.
    Unknown,
}

/// Sniffs the archive kind of `src`.
pub fn sniff<S: ByteSource>(src: &S) -> ArchiveKind {
    if src.len() >= 2 && src.read_at(0, 2).is_ok_and(|b| b[..] == [0x1f, 0x8b]) {
        return ArchiveKind::TarGz;
    }
    if src.len() >= 262 && src.read_at(257, 5).is_ok_and(|b| &b[..] == b"ustar") {
        return ArchiveKind::Tar;
    }
    ArchiveKind::Unknown
}

/// `Read + Seek` over a byte source.
struct Reader<'a, S> {
    src: &'a S,
    pos: u64,
}

impl<S: ByteSource> Read for Reader<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.src.len().saturating_sub(self.pos);
        // Large reads in one go, but bounded so a `File` slice stays small.
        let n = (buf.len() as u64).min(left).min(1 << 20) as usize;
        if n == 0 {
            return Ok(0);
        }
        let bytes = self
            .src
            .read_at(self.pos, n)
            .map_err(|e| std::io::Error::other(e.0))?;
        buf[..n].copy_from_slice(&bytes);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<S: ByteSource> Seek for Reader<'_, S> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let new = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.src.len().checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos)
    }
}

fn clean(path: &str) -> String {
    path.trim_start_matches("./")
        .trim_end_matches('/')
        .to_string()
}

/// A window `[offset, offset + len)` of an archive: one member file.
#[derive(Clone, Debug)]
pub struct Window<S> {
    src: S,
    offset: u64,
    len: u64,
}

impl<S: ByteSource> ByteSource for Window<S> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, SourceError> {
        if offset.checked_add(len as u64).is_none_or(|e| e > self.len) {
            return Err(SourceError(format!(
                "read of {len} bytes at {offset} past the end ({} bytes)",
                self.len
            )));
        }
        self.src.read_at(self.offset + offset, len)
    }

    fn prefetch(&self, ranges: &[(u64, u64)]) {
        let inside: Vec<(u64, u64)> = ranges
            .iter()
            .map(|&(a, b)| (a.min(self.len), b.min(self.len)))
            .filter(|(a, b)| a < b)
            .map(|(a, b)| (self.offset + a, self.offset + b))
            .collect();
        self.src.prefetch(&inside)
    }
}

/// The regular files of a `.tar`, read in place.
#[derive(Clone, Debug)]
pub struct TarFileSet<S> {
    src: S,
    entries: BTreeMap<String, (u64, u64)>,
}

impl<S: ByteSource + Clone> TarFileSet<S> {
    /// Lists the archive's regular files (reads only the headers). `name`
    /// names the archive in errors.
    pub fn open(name: &str, src: S) -> Result<Self, TsdbError> {
        let bad = |e: std::io::Error| TsdbError::Corrupt {
            file: name.to_string(),
            section: "tar header",
            detail: crate::Corruption::at(0, e.to_string()),
        };
        let mut entries = BTreeMap::new();
        {
            let mut archive = tar::Archive::new(Reader { src: &src, pos: 0 });
            for entry in archive.entries_with_seek().map_err(bad)? {
                let entry = entry.map_err(|e| {
                    let msg = e.to_string();
                    TsdbError::Corrupt {
                        file: name.to_string(),
                        section: "tar entry",
                        detail: crate::Corruption::at(0, msg),
                    }
                })?;
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let path = entry.path().map_err(bad)?.to_string_lossy().into_owned();
                let offset = entry.raw_file_position();
                let size = entry.size();
                if offset.checked_add(size).is_none_or(|e| e > src.len()) {
                    return Err(TsdbError::Corrupt {
                        file: name.to_string(),
                        section: "tar entry",
                        detail: crate::Corruption::at(
                            offset,
                            format!("{path}: {size} bytes run past the end of the archive"),
                        ),
                    });
                }
                entries.insert(clean(&path), (offset, size));
            }
        }
        Ok(TarFileSet { src, entries })
    }
}

impl<S: ByteSource + Clone> FileSet for TarFileSet<S> {
    type File = Window<S>;

    fn paths(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    fn open(&self, path: &str) -> Result<Self::File, SourceError> {
        let (offset, len) = self
            .entries
            .get(path)
            .copied()
            .ok_or_else(|| SourceError(format!("{path}: not in the archive")))?;
        Ok(Window {
            src: self.src.clone(),
            offset,
            len,
        })
    }
}

/// Decompresses a `.tar.gz` into memory. `max_bytes` bounds the unpacked size
/// (a gzip bomb stops with an error, not an out-of-memory).
pub fn read_tar_gz<S: ByteSource>(
    name: &str,
    src: &S,
    max_bytes: u64,
) -> Result<MemFileSet, TsdbError> {
    let bad = |section: &'static str, e: std::io::Error| TsdbError::Corrupt {
        file: name.to_string(),
        section,
        detail: crate::Corruption::at(0, e.to_string()),
    };
    let gz = flate2::read::GzDecoder::new(Reader { src, pos: 0 });
    let mut archive = tar::Archive::new(gz);
    let mut files = MemFileSet::new();
    let mut total = 0u64;
    for entry in archive.entries().map_err(|e| bad("gzip stream", e))? {
        let mut entry = entry.map_err(|e| bad("tar entry", e))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = clean(
            &entry
                .path()
                .map_err(|e| bad("tar entry", e))?
                .to_string_lossy(),
        );
        total = total.saturating_add(entry.size());
        if total > max_bytes {
            return Err(TsdbError::Limit(format!(
                "{name}: unpacks to more than {max_bytes} bytes"
            )));
        }
        let mut data = Vec::with_capacity(entry.size().min(1 << 26) as usize);
        entry
            .read_to_end(&mut data)
            .map_err(|e| bad("gzip stream", e))?;
        files.insert(path, data);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn lists_and_reads_members_in_place() {
        let long = format!("{}/meta.json", "d".repeat(150));
        let tar = tar_of(&[
            ("./snap/01A/meta.json", b"{}"),
            ("snap/01A/index", b"0123456789"),
            (&long, b"x"),
        ]);
        assert_eq!(sniff(&tar), ArchiveKind::Tar);
        let fs = TarFileSet::open("s.tar", tar).unwrap();
        assert_eq!(
            fs.paths(),
            [
                long.clone(),
                "snap/01A/index".into(),
                "snap/01A/meta.json".into()
            ]
        );
        let idx = fs.open("snap/01A/index").unwrap();
        assert_eq!(&idx.read_at(3, 4).unwrap()[..], b"3456");
        assert!(idx.read_at(8, 4).is_err());
    }

    #[test]
    fn tar_gz_unpacks_with_a_limit() {
        let tar = tar_of(&[("a/meta.json", b"{}"), ("a/index", &[7u8; 1000])]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(sniff(&gz), ArchiveKind::TarGz);
        let fs = read_tar_gz("s.tar.gz", &gz, 1 << 20).unwrap();
        assert_eq!(fs.get("a/index").map(<[u8]>::len), Some(1000));
        assert!(matches!(
            read_tar_gz("s.tar.gz", &gz, 500),
            Err(TsdbError::Limit(_))
        ));
        let garbage = vec![0x1f, 0x8b, 0, 0, 1, 2, 3];
        assert!(read_tar_gz("bad.tar.gz", &garbage, 1 << 20).is_err());
    }
}
