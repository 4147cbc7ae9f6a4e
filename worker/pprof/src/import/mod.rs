//! Importers: the other common profile formats → a checked [`Profile`].
//!
//! - [`folded`]: collapsed stacks (`main;run;leaf 42`), as Brendan Gregg's
//!   `stackcollapse-*` scripts, inferno and speedscope read them.
//! - [`cpuprofile`]: Chrome DevTools / `node --cpu-prof` `.cpuprofile` JSON,
//!   and the trace-event files of Chrome's Performance panel that carry one.
//! - [`decode_any`]: sniffs the bytes (gzip, pprof protobuf, folded text,
//!   JSON) and calls the right decoder, so a dropped file needs no
//!   extension or format picker.
//!
//! Every importer builds the same pprof [`Profile`] through one builder:
//! the string table starts with `""`, identical frames share one function
//! and one location (location id = function id), identical stacks share
//! one sample, and the result passes [`crate::validate`] (checked again
//! before it is returned).
//!
//! # Limits
//!
//! Hostile input returns an [`ImportError`], never a panic. Memory stays
//! proportional to the input, which is capped ([`ImportLimits`]): gzip
//! inflates up to `max_input_bytes`; JSON nesting is bounded by
//! `serde_json`'s recursion limit (128); the only step that could grow
//! faster than the input — expanding a `.cpuprofile` call tree into one
//! stack per sampled node, quadratic on a deep chain — is bounded by
//! `max_frames`, checked before anything is allocated for it.

pub mod cpuprofile;
pub mod folded;

use std::collections::HashMap;

use crate::decode::{DecodeError, decode_with_limit, gunzip, is_gzip, validate};
use crate::proto::{Function, Line, Location, Profile, Sample, ValueType};

/// Caps that bound the work and memory of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportLimits {
    /// The largest input accepted, after gzip decompression.
    pub max_input_bytes: usize,
    /// The most stack frames all samples may hold together (each distinct
    /// stack counted once, with its depth).
    pub max_frames: usize,
}

impl Default for ImportLimits {
    /// 1 GiB of input (as [`crate::DEFAULT_MAX_DECODED_BYTES`]) and 2^25
    /// frames (256 MiB of location ids).
    fn default() -> Self {
        ImportLimits {
            max_input_bytes: crate::DEFAULT_MAX_DECODED_BYTES,
            max_frames: 1 << 25,
        }
    }
}

/// Why bytes do not import as a profile.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ImportError {
    /// The input is empty.
    #[error("empty input: not a profile")]
    Empty,
    /// The input (decompressed) is over [`ImportLimits::max_input_bytes`].
    #[error("input exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: usize,
    },
    /// The stacks hold more frames than [`ImportLimits::max_frames`].
    #[error("{what}: the stacks hold more than {limit} frames (the limit)")]
    TooManyFrames {
        /// The format being imported.
        what: &'static str,
        /// The cap.
        limit: usize,
    },
    /// Gzip that does not inflate, or inflates past
    /// [`ImportLimits::max_input_bytes`].
    #[error("{0}")]
    Gzip(DecodeError),
    /// A pprof protobuf that does not decode.
    #[error("pprof: {0}")]
    Pprof(#[from] DecodeError),
    /// A folded-stacks line that does not parse.
    #[error("folded: line {line} (byte {offset}): {reason}")]
    Folded {
        /// 1-based line number.
        line: usize,
        /// Byte offset of the problem in the (decompressed) input.
        offset: usize,
        /// Why.
        reason: String,
    },
    /// JSON that does not parse, or does not have a `.cpuprofile`'s shape
    /// where `serde_json` checks it.
    #[error("cpuprofile: JSON at line {line} column {column}: {reason}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// `serde_json`'s reason.
        reason: String,
    },
    /// A `.cpuprofile` whose contents do not make a call tree.
    #[error("cpuprofile: {field}: {reason}")]
    CpuProfile {
        /// The field, e.g. `nodes[3].children[1]`.
        field: String,
        /// Why.
        reason: String,
    },
}

impl From<serde_json::Error> for ImportError {
    fn from(e: serde_json::Error) -> Self {
        // serde_json appends " at line L column C" to its message; keep
        // the reason alone, the position goes in its own fields.
        let full = e.to_string();
        let reason = match full.rfind(" at line ") {
            Some(i) => full[..i].to_string(),
            None => full,
        };
        ImportError::Json {
            line: e.line(),
            column: e.column(),
            reason,
        }
    }
}

/// A profile format [`decode_any`] recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// pprof's `profile.proto` (uncompressed here; gzip is undone first).
    Pprof,
    /// Collapsed / folded stacks text.
    Folded,
    /// JSON: a Chrome `.cpuprofile` or a trace-event file holding one.
    CpuProfile,
}

/// How many leading bytes [`sniff`] looks at.
const SNIFF_BYTES: usize = 4096;

/// Guesses the format of uncompressed bytes (undo gzip first).
///
/// - JSON: the first non-blank byte (after an optional UTF-8 BOM) is `{`
///   followed by `"` or `}`, or `[` followed by `{` or `]` — so a folded
///   line starting with a frame like `[unknown]` stays folded.
/// - pprof: any control byte other than tab, CR and LF among the first
///   4 KiB. A protobuf has them within a few bytes (every `ValueType`
///   starts with tag byte `0x08`); text has none.
/// - Folded text otherwise.
pub fn sniff(bytes: &[u8]) -> Format {
    let body = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut non_blank = body.iter().copied().filter(|b| !b.is_ascii_whitespace());
    match (non_blank.next(), non_blank.next()) {
        (Some(b'{'), Some(b'"' | b'}')) | (Some(b'['), Some(b'{' | b']')) => {
            return Format::CpuProfile;
        }
        _ => {}
    }
    let head = &body[..body.len().min(SNIFF_BYTES)];
    let control = |b: &u8| (*b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n')) || *b == 0x7f;
    if head.iter().any(control) {
        Format::Pprof
    } else {
        Format::Folded
    }
}

/// Decodes a profile in any supported format, gzipped or not, with the
/// default [`ImportLimits`].
///
/// ```
/// let p = emberlens_pprof::decode_any(b"main;work 3\nmain 1\n").unwrap();
/// assert_eq!(p.sample_type_names(), ["samples/count"]);
/// assert_eq!(p.totals(), [4]);
/// ```
pub fn decode_any(bytes: &[u8]) -> Result<Profile, ImportError> {
    decode_any_with_limits(bytes, ImportLimits::default())
}

/// [`decode_any`] with explicit limits.
pub fn decode_any_with_limits(bytes: &[u8], limits: ImportLimits) -> Result<Profile, ImportError> {
    if bytes.is_empty() {
        return Err(ImportError::Empty);
    }
    if is_gzip(bytes) {
        let raw = gunzip(bytes, limits.max_input_bytes).map_err(ImportError::Gzip)?;
        if raw.is_empty() {
            return Err(ImportError::Empty);
        }
        return decode_plain(&raw, limits);
    }
    decode_plain(bytes, limits)
}

fn decode_plain(bytes: &[u8], limits: ImportLimits) -> Result<Profile, ImportError> {
    if bytes.len() > limits.max_input_bytes {
        return Err(ImportError::TooLarge {
            limit: limits.max_input_bytes,
        });
    }
    match sniff(bytes) {
        Format::Pprof => Ok(decode_with_limit(bytes, limits.max_input_bytes)?),
        Format::Folded => folded::parse_with_limits(bytes, limits),
        Format::CpuProfile => cpuprofile::parse_with_limits(bytes, limits),
    }
}

/// Frames are deduplicated on everything pprof keeps about them.
#[derive(Hash, PartialEq, Eq)]
struct FrameKey {
    name: i64,
    file: i64,
    line: i64,
    column: i64,
}

/// Builds a [`Profile`] from frames and stacks; shared by the importers.
pub(crate) struct Builder {
    profile: Profile,
    strings: HashMap<String, i64>,
    frames: HashMap<FrameKey, u64>,
    stacks: HashMap<Vec<u64>, usize>,
}

impl Builder {
    /// A builder for samples with the given `(type, unit)` values.
    pub(crate) fn new(sample_types: &[(&str, &str)]) -> Self {
        let mut b = Builder {
            profile: Profile {
                string_table: vec![String::new()],
                ..Profile::default()
            },
            strings: HashMap::from([(String::new(), 0)]),
            frames: HashMap::new(),
            stacks: HashMap::new(),
        };
        for (t, u) in sample_types {
            let vt = b.value_type(t, u);
            b.profile.sample_type.push(vt);
        }
        b
    }

    pub(crate) fn string(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.strings.get(s) {
            return i;
        }
        let i = i64::try_from(self.profile.string_table.len()).unwrap_or(i64::MAX);
        self.profile.string_table.push(s.to_string());
        self.strings.insert(s.to_string(), i);
        i
    }

    pub(crate) fn value_type(&mut self, r#type: &str, unit: &str) -> ValueType {
        ValueType {
            r#type: self.string(r#type),
            unit: self.string(unit),
        }
    }

    /// The location id of a frame (one function, one location per
    /// distinct name/file/line/column). `line` and `column` are 1-based,
    /// 0 for unknown.
    pub(crate) fn frame(&mut self, name: &str, file: &str, line: i64, column: i64) -> u64 {
        let key = FrameKey {
            name: self.string(name),
            file: self.string(file),
            line,
            column,
        };
        if let Some(&id) = self.frames.get(&key) {
            return id;
        }
        let id = u64::try_from(self.profile.function.len()).unwrap_or(u64::MAX - 1) + 1;
        self.profile.function.push(Function {
            id,
            name: key.name,
            system_name: key.name,
            filename: key.file,
            start_line: line,
        });
        self.profile.location.push(Location {
            id,
            mapping_id: 0,
            address: 0,
            line: vec![Line {
                function_id: id,
                line,
                column,
            }],
            is_folded: false,
        });
        self.frames.insert(key, id);
        id
    }

    /// Adds `values` (one per sample type) to the stack (location ids,
    /// leaf first). `None` if a sum overflows `i64`.
    pub(crate) fn add(&mut self, stack: Vec<u64>, values: &[i64]) -> Option<()> {
        if let Some(&i) = self.stacks.get(&stack) {
            let sample = self.profile.sample.get_mut(i)?;
            for (have, add) in sample.value.iter_mut().zip(values) {
                *have = have.checked_add(*add)?;
            }
            return Some(());
        }
        self.stacks.insert(stack.clone(), self.profile.sample.len());
        self.profile.sample.push(Sample {
            location_id: stack,
            value: values.to_vec(),
            label: Vec::new(),
        });
        Some(())
    }

    /// Like [`Builder::add`], with sums saturating at `i64::MAX`.
    pub(crate) fn add_saturating(&mut self, stack: Vec<u64>, values: &[i64]) {
        if let Some(sample) = self
            .stacks
            .get(&stack)
            .and_then(|&i| self.profile.sample.get_mut(i))
        {
            for (have, add) in sample.value.iter_mut().zip(values) {
                *have = have.saturating_add(*add);
            }
            return;
        }
        let _ = self.add(stack, values);
    }

    /// Whether `stack` already has a sample.
    pub(crate) fn has_stack(&self, stack: &[u64]) -> bool {
        self.stacks.contains_key(stack)
    }

    /// The profile being built, for the fields an importer sets itself.
    pub(crate) fn profile_mut(&mut self) -> &mut Profile {
        &mut self.profile
    }

    /// The profile, checked by [`validate`] (a failure would be a bug in
    /// an importer; it is reported, not panicked on).
    pub(crate) fn finish(self) -> Result<Profile, ImportError> {
        validate(&self.profile)?;
        Ok(self.profile)
    }
}
