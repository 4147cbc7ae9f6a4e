//! Errors that name the file, the section and the offset.
//!
//! Decoders deep inside a file raise a [`Corruption`] (an offset and a
//! reason); the layer that knows which file and section it was reading wraps
//! it into [`TsdbError::Corrupt`]. So every message reads like
//! `01M8…/index: postings offset table: at offset 148210: checksum mismatch (…)`.

/// Something wrong at a known offset of a file being decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("at offset {offset}: {reason}")]
pub struct Corruption {
    /// Absolute byte offset in the file.
    pub offset: u64,
    /// What was wrong.
    pub reason: String,
}

impl Corruption {
    /// A corruption at `offset`.
    pub fn at(offset: u64, reason: impl Into<String>) -> Self {
        Corruption {
            offset,
            reason: reason.into(),
        }
    }
}

/// Why reading bytes failed (the byte source's own failure, not bad content).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// Every error of this crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TsdbError {
    /// The bytes of `file` are not what the format says.
    #[error("{file}: {section}: {detail}")]
    Corrupt {
        /// Path of the file within the data directory.
        file: String,
        /// The part of the file (`TOC`, `symbol table`, `series`, `chunk`...).
        section: &'static str,
        /// Offset and reason.
        detail: Corruption,
    },
    /// Reading `file` failed.
    #[error("{file}: {detail}")]
    Read {
        /// Path of the file.
        file: String,
        /// The byte source's error.
        detail: SourceError,
    },
    /// A file a block needs is missing.
    #[error("{0}: missing")]
    Missing(String),
    /// Valid data in a format or version we do not read.
    #[error("{file}: {what}")]
    Unsupported {
        /// Path of the file.
        file: String,
        /// What is unsupported.
        what: String,
    },
    /// `meta.json` is not valid.
    #[error("{file}: {reason}")]
    BadMeta {
        /// Path of the file.
        file: String,
        /// What was wrong.
        reason: String,
    },
    /// A query exceeded a limit.
    #[error("{0}")]
    Limit(String),
}

impl TsdbError {
    /// Wraps a corruption found in `section` of `file`.
    pub fn corrupt(file: &str, section: &'static str, detail: Corruption) -> Self {
        TsdbError::Corrupt {
            file: file.to_string(),
            section,
            detail,
        }
    }
}
