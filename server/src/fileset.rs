//! Native byte sources for the TSDB crate: a directory tree read with
//! positioned reads (`pread`), so several tasks can read one file at once and
//! only the bytes a query needs are read.

use std::borrow::Cow;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use emberlens_tsdb::{ByteSource, FileSet, SourceError};

/// One open file.
#[derive(Debug)]
pub struct NativeFile {
    file: File,
    len: u64,
}

impl ByteSource for NativeFile {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, SourceError> {
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > self.len)
        {
            return Err(SourceError(format!(
                "read of {len} bytes at {offset} past the end ({} bytes)",
                self.len
            )));
        }
        let mut buf = vec![0u8; len];
        read_exact_at(&self.file, &mut buf, offset).map_err(|e| SourceError(e.to_string()))?;
        Ok(Cow::Owned(buf))
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = file.seek_read(buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

/// A directory tree; paths are relative, `/`-separated.
#[derive(Debug, Clone)]
pub struct DirFileSet {
    root: PathBuf,
    paths: Vec<String>,
}

impl DirFileSet {
    /// Lists every file under `root` (symlinks to files included).
    pub fn open(root: &Path) -> std::io::Result<Self> {
        let mut paths = Vec::new();
        walk(root, "", &mut paths)?;
        paths.sort();
        Ok(DirFileSet {
            root: root.to_path_buf(),
            paths,
        })
    }
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let meta = std::fs::metadata(entry.path())?;
        if meta.is_dir() {
            walk(&entry.path(), &rel, out)?;
        } else if meta.is_file() {
            out.push(rel);
        }
    }
    Ok(())
}

impl FileSet for DirFileSet {
    type File = Arc<NativeFile>;

    fn paths(&self) -> Vec<String> {
        self.paths.clone()
    }

    fn open(&self, path: &str) -> Result<Self::File, SourceError> {
        let full = self.root.join(path);
        let file = File::open(&full)
            .map_err(|e| SourceError(format!("opening {}: {e}", full.display())))?;
        let len = file
            .metadata()
            .map_err(|e| SourceError(e.to_string()))?
            .len();
        Ok(Arc::new(NativeFile { file, len }))
    }
}

/// A file of any kind of source, as one type.
pub type AnyFile = Arc<dyn ByteSource + Send + Sync>;

/// Opens one member of an [`AnyFileSet`].
type Opener = Box<dyn Fn(&str) -> Result<AnyFile, SourceError> + Send + Sync>;

/// A data directory, a snapshot directory, a `.tar` or a `.tar.gz`, behind one type.
pub struct AnyFileSet {
    paths: Vec<String>,
    open: Opener,
}

/// Unpacked `.tar.gz` snapshots larger than this are refused (they live in memory).
pub const MAX_TAR_GZ_BYTES: u64 = 8 << 30;

impl AnyFileSet {
    /// Opens `path`: a directory is walked, a file is sniffed as tar or tar.gz.
    pub fn open(path: &Path) -> Result<Self, emberlens_tsdb::TsdbError> {
        use emberlens_tsdb::archive::{ArchiveKind, TarFileSet, read_tar_gz, sniff};
        let name = path.display().to_string();
        let io = |e: std::io::Error| emberlens_tsdb::TsdbError::Read {
            file: name.clone(),
            detail: SourceError(e.to_string()),
        };
        if path.is_dir() {
            let fs = DirFileSet::open(path).map_err(io)?;
            let paths = fs.paths();
            return Ok(AnyFileSet {
                paths,
                open: Box::new(move |p| fs.open(p).map(|f| f as AnyFile)),
            });
        }
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let src = Arc::new(NativeFile { file, len });
        match sniff(&src) {
            ArchiveKind::Tar => {
                let fs = TarFileSet::open(&name, src)?;
                let paths = fs.paths();
                Ok(AnyFileSet {
                    paths,
                    open: Box::new(move |p| fs.open(p).map(|f| Arc::new(f) as AnyFile)),
                })
            }
            ArchiveKind::TarGz => {
                let fs = read_tar_gz(&name, &src, MAX_TAR_GZ_BYTES)?;
                let paths = fs.paths();
                Ok(AnyFileSet {
                    paths,
                    open: Box::new(move |p| fs.open(p).map(|f| f as AnyFile)),
                })
            }
            ArchiveKind::Unknown => Err(emberlens_tsdb::TsdbError::Unsupported {
                file: name,
                what: "not a directory, a .tar or a .tar.gz".into(),
            }),
        }
    }
}

impl FileSet for AnyFileSet {
    type File = AnyFile;

    fn paths(&self) -> Vec<String> {
        self.paths.clone()
    }

    fn open(&self, path: &str) -> Result<Self::File, SourceError> {
        (self.open)(path)
    }
}
