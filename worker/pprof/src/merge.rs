//! Merging profiles with the semantics of Go's `profile.Merge` (which
//! `go tool pprof` uses for several inputs):
//!
//! - The profiles must be compatible: the same sample types (type and unit,
//!   in order) and the same period type. Otherwise the merge is refused.
//! - Functions are unified by their content (name, system name, file, start
//!   line); mappings by their size rounded up to 4 KiB, file offset, and
//!   build id (or file name when there is none), so the same binary loaded
//!   at another address (ASLR) is one mapping; locations by their mapping,
//!   address relative to the mapping's start, lines and `is_folded`. A
//!   location's address is moved by the distance between its mapping's
//!   start and the merged mapping's start.
//! - Samples with the same locations and the same labels (string and
//!   numeric, with units; in any order) are one sample whose values are
//!   summed. Samples whose values are all zero are left out, as Go does.
//!   Locations, mappings and functions no sample refers to are left out,
//!   except the first mapping of the first profile that has one (the main
//!   binary, which pprof's `File:` header names).
//! - Header: `time_nanos` is the earliest non-zero time, `duration_nanos`
//!   the sum, `period` the largest, comments are the union in first-seen
//!   order, and `drop_frames`, `keep_frames`, `default_sample_type` and
//!   `doc_url` come from the first profile that sets them.
//!
//! Sums wrap on `i64` overflow like Go's arithmetic (never a panic).
//! [`Merger`] takes profiles one at a time, so a caller can merge many
//! stored profiles without holding them all in memory.

use std::collections::HashMap;

use crate::decode::{DecodeError, validate};
use crate::proto::{Function, Label, Line, Location, Mapping, Profile, Sample, ValueType};

/// Why profiles do not merge.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no profiles to merge")]
    Empty,
    /// One input is not a valid profile.
    #[error("profile {index}: {source}")]
    Invalid {
        /// Position of the profile among the inputs.
        index: usize,
        /// What is wrong with it.
        source: DecodeError,
    },
    /// One input's sample types or period type differ from the first one's.
    #[error("profile {index}: incompatible {what} {theirs} and {ours}")]
    Incompatible {
        /// Position of the profile among the inputs.
        index: usize,
        /// `sample types` or `period types`.
        what: &'static str,
        /// The first profile's, e.g. `[samples/count cpu/nanoseconds]`.
        ours: String,
        /// This profile's.
        theirs: String,
    },
}

/// Merges `profiles` (see the module docs for the rules).
pub fn merge<'a>(profiles: impl IntoIterator<Item = &'a Profile>) -> Result<Profile, MergeError> {
    let mut m = Merger::new();
    for p in profiles {
        m.add(p)?;
    }
    m.finish()
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct MappingKey {
    size: u64,
    offset: u64,
    build_id_or_file: i64,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct LocationKey {
    mapping_id: u64,
    address: u64,
    lines: Vec<(u64, i64, i64)>,
    is_folded: bool,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct SampleKey {
    locations: Vec<u64>,
    /// Sorted (key, str, num, num_unit), merged string indices.
    labels: Vec<(i64, i64, i64, i64)>,
}

/// Merges profiles one at a time; [`Merger::finish`] gives the result.
#[derive(Default)]
pub struct Merger {
    count: usize,
    strings: Vec<String>,
    string_index: HashMap<String, i64>,
    sample_type: Vec<ValueType>,
    sample_type_names: Vec<String>,
    period_type: Option<ValueType>,
    period_type_name: Option<String>,
    period: i64,
    time_nanos: i64,
    duration_nanos: i64,
    comments: Vec<i64>,
    drop_frames: i64,
    keep_frames: i64,
    default_sample_type: i64,
    doc_url: i64,
    functions: Vec<Function>,
    function_index: HashMap<(i64, i64, i64, i64), u64>,
    mappings: Vec<Mapping>,
    mapping_index: HashMap<MappingKey, u64>,
    locations: Vec<Location>,
    location_index: HashMap<LocationKey, u64>,
    samples: Vec<Sample>,
    sample_index: HashMap<SampleKey, usize>,
}

impl std::fmt::Debug for Merger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Merger")
            .field("profiles", &self.count)
            .field("samples", &self.samples.len())
            .finish_non_exhaustive()
    }
}

/// Per-input translation tables (source id or index → merged one).
struct Source<'a> {
    p: &'a Profile,
    strings: Vec<Option<i64>>,
    functions: HashMap<u64, u64>,
    /// Source mapping id → (merged id, merged start − source start).
    mappings: HashMap<u64, (u64, u64)>,
    locations: HashMap<u64, u64>,
    function_by_id: HashMap<u64, &'a Function>,
    mapping_by_id: HashMap<u64, &'a Mapping>,
    location_by_id: HashMap<u64, &'a Location>,
}

/// Mapping sizes are rounded up to this before comparing (as Go does: the
/// same binary may be mapped with slightly different lengths).
const MAP_SIZE_ROUNDING: u64 = 0x1000;

impl Merger {
    /// An empty merger.
    pub fn new() -> Self {
        let mut m = Merger::default();
        m.intern("");
        m
    }

    /// Profiles added so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether nothing was added yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn intern(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.string_index.get(s) {
            return i;
        }
        let i = self.strings.len() as i64;
        self.strings.push(s.to_string());
        self.string_index.insert(s.to_string(), i);
        i
    }

    fn string(&mut self, src: &mut Source<'_>, i: i64) -> i64 {
        let Ok(idx) = usize::try_from(i) else {
            return 0;
        };
        if let Some(Some(m)) = src.strings.get(idx) {
            return *m;
        }
        let m = match src.p.string_table.get(idx) {
            Some(s) => self.intern(s),
            None => 0,
        };
        if let Some(slot) = src.strings.get_mut(idx) {
            *slot = Some(m);
        }
        m
    }

    /// Adds one profile; on error the merger is unchanged.
    pub fn add(&mut self, p: &Profile) -> Result<(), MergeError> {
        let index = self.count;
        validate(p).map_err(|source| MergeError::Invalid { index, source })?;
        let types = p.sample_type_names();
        let period = p.period_type.as_ref().map(|vt| p.value_type_name(vt));
        if self.count > 0 {
            if types != self.sample_type_names {
                return Err(MergeError::Incompatible {
                    index,
                    what: "sample types",
                    ours: format!("[{}]", self.sample_type_names.join(" ")),
                    theirs: format!("[{}]", types.join(" ")),
                });
            }
            if period != self.period_type_name {
                return Err(MergeError::Incompatible {
                    index,
                    what: "period types",
                    ours: self.period_type_name.clone().unwrap_or_default(),
                    theirs: period.unwrap_or_default(),
                });
            }
        }
        let mut src = Source {
            p,
            strings: vec![None; p.string_table.len()],
            functions: HashMap::new(),
            mappings: HashMap::new(),
            locations: HashMap::new(),
            function_by_id: p.function.iter().map(|f| (f.id, f)).collect(),
            mapping_by_id: p.mapping.iter().map(|m| (m.id, m)).collect(),
            location_by_id: p.location.iter().map(|l| (l.id, l)).collect(),
        };
        if self.count == 0 {
            self.sample_type_names = types;
            self.period_type_name = period;
            self.sample_type = p
                .sample_type
                .iter()
                .map(|vt| ValueType {
                    r#type: self.string(&mut src, vt.r#type),
                    unit: self.string(&mut src, vt.unit),
                })
                .collect();
            self.period_type = p.period_type.map(|vt| ValueType {
                r#type: self.string(&mut src, vt.r#type),
                unit: self.string(&mut src, vt.unit),
            });
        }
        self.count += 1;
        // Header.
        if p.time_nanos != 0 && (self.time_nanos == 0 || p.time_nanos < self.time_nanos) {
            self.time_nanos = p.time_nanos;
        }
        self.duration_nanos = self.duration_nanos.wrapping_add(p.duration_nanos);
        self.period = self.period.max(p.period);
        for &c in &p.comment {
            let c = self.string(&mut src, c);
            if !self.comments.contains(&c) {
                self.comments.push(c);
            }
        }
        let drop_frames = self.first_set(&mut src, self.drop_frames, p.drop_frames);
        self.drop_frames = drop_frames;
        let keep_frames = self.first_set(&mut src, self.keep_frames, p.keep_frames);
        self.keep_frames = keep_frames;
        let default_sample_type =
            self.first_set(&mut src, self.default_sample_type, p.default_sample_type);
        self.default_sample_type = default_sample_type;
        let doc_url = self.first_set(&mut src, self.doc_url, p.doc_url);
        self.doc_url = doc_url;

        // As Go's `Merge`: the first mapping seen is the main binary, so it
        // is taken first (even when no sample refers to it) and stays first.
        if self.mappings.is_empty()
            && let Some(first) = p.mapping.first()
        {
            self.mapping(&mut src, first.id);
        }
        for s in &p.sample {
            if s.value.iter().all(|&v| v == 0) {
                continue;
            }
            let locations: Vec<u64> = s
                .location_id
                .iter()
                .map(|&id| self.location(&mut src, id))
                .collect();
            let mut labels: Vec<(i64, i64, i64, i64)> = s
                .label
                .iter()
                .map(|l| {
                    (
                        self.string(&mut src, l.key),
                        self.string(&mut src, l.str),
                        l.num,
                        self.string(&mut src, l.num_unit),
                    )
                })
                .collect();
            let in_order: Vec<Label> = labels
                .iter()
                .map(|&(key, str, num, num_unit)| Label {
                    key,
                    str,
                    num,
                    num_unit,
                })
                .collect();
            labels.sort_unstable_by(|a, b| {
                let name = |i: i64| self.strings.get(i as usize).map_or("", String::as_str);
                (name(a.0), name(a.1), a.2, name(a.3)).cmp(&(name(b.0), name(b.1), b.2, name(b.3)))
            });
            let key = SampleKey {
                locations: locations.clone(),
                labels,
            };
            match self.sample_index.get(&key) {
                Some(&i) => {
                    if let Some(merged) = self.samples.get_mut(i) {
                        for (m, v) in merged.value.iter_mut().zip(&s.value) {
                            *m = m.wrapping_add(*v);
                        }
                    }
                }
                None => {
                    self.sample_index.insert(key, self.samples.len());
                    self.samples.push(Sample {
                        location_id: locations,
                        value: s.value.clone(),
                        label: in_order,
                    });
                }
            }
        }
        Ok(())
    }

    /// `ours` if already set, else `theirs` (a string index) in the merged table.
    fn first_set(&mut self, src: &mut Source<'_>, ours: i64, theirs: i64) -> i64 {
        if ours != 0 {
            ours
        } else {
            self.string(src, theirs)
        }
    }

    fn function(&mut self, src: &mut Source<'_>, id: u64) -> u64 {
        if id == 0 {
            return 0;
        }
        if let Some(&m) = src.functions.get(&id) {
            return m;
        }
        let Some(f) = src.function_by_id.get(&id).copied() else {
            return 0;
        };
        let f = Function {
            id: 0,
            name: self.string(src, f.name),
            system_name: self.string(src, f.system_name),
            filename: self.string(src, f.filename),
            start_line: f.start_line,
        };
        let key = (f.name, f.system_name, f.filename, f.start_line);
        let merged = match self.function_index.get(&key) {
            Some(&m) => m,
            None => {
                let m = self.functions.len() as u64 + 1;
                self.functions.push(Function { id: m, ..f });
                self.function_index.insert(key, m);
                m
            }
        };
        src.functions.insert(id, merged);
        merged
    }

    fn mapping(&mut self, src: &mut Source<'_>, id: u64) -> (u64, u64) {
        if id == 0 {
            return (0, 0);
        }
        if let Some(&m) = src.mappings.get(&id) {
            return m;
        }
        let Some(m) = src.mapping_by_id.get(&id).copied() else {
            return (0, 0);
        };
        let mut size = m.memory_limit.wrapping_sub(m.memory_start);
        size = size.saturating_add(MAP_SIZE_ROUNDING - 1);
        size -= size % MAP_SIZE_ROUNDING;
        let build_id = self.string(src, m.build_id);
        let filename = self.string(src, m.filename);
        let key = MappingKey {
            size,
            offset: m.file_offset,
            build_id_or_file: if build_id != 0 { build_id } else { filename },
        };
        let merged = match self.mapping_index.get(&key) {
            Some(&mid) => {
                let start = usize::try_from(mid - 1)
                    .ok()
                    .and_then(|i| self.mappings.get(i))
                    .map_or(m.memory_start, |mm| mm.memory_start);
                (mid, start.wrapping_sub(m.memory_start))
            }
            None => {
                let mid = self.mappings.len() as u64 + 1;
                self.mappings.push(Mapping {
                    id: mid,
                    filename,
                    build_id,
                    ..m.clone()
                });
                self.mapping_index.insert(key, mid);
                (mid, 0)
            }
        };
        src.mappings.insert(id, merged);
        merged
    }

    fn location(&mut self, src: &mut Source<'_>, id: u64) -> u64 {
        if let Some(&m) = src.locations.get(&id) {
            return m;
        }
        let Some(l) = src.location_by_id.get(&id).copied() else {
            return 0;
        };
        let (mapping_id, shift) = self.mapping(src, l.mapping_id);
        let lines: Vec<Line> = l
            .line
            .iter()
            .map(|ln| Line {
                function_id: self.function(src, ln.function_id),
                line: ln.line,
                column: ln.column,
            })
            .collect();
        let address = l.address.wrapping_add(shift);
        let relative = if mapping_id != 0 {
            let start = usize::try_from(mapping_id - 1)
                .ok()
                .and_then(|i| self.mappings.get(i))
                .map_or(0, |m| m.memory_start);
            address.wrapping_sub(start)
        } else {
            address
        };
        let key = LocationKey {
            mapping_id,
            address: relative,
            lines: lines
                .iter()
                .map(|l| (l.function_id, l.line, l.column))
                .collect(),
            is_folded: l.is_folded,
        };
        let merged = match self.location_index.get(&key) {
            Some(&m) => m,
            None => {
                let m = self.locations.len() as u64 + 1;
                self.locations.push(Location {
                    id: m,
                    mapping_id,
                    address,
                    line: lines,
                    is_folded: l.is_folded,
                });
                self.location_index.insert(key, m);
                m
            }
        };
        src.locations.insert(id, merged);
        merged
    }

    /// The merged profile; [`MergeError::Empty`] when nothing was added.
    pub fn finish(self) -> Result<Profile, MergeError> {
        if self.count == 0 {
            return Err(MergeError::Empty);
        }
        Ok(Profile {
            sample_type: self.sample_type,
            sample: self.samples,
            mapping: self.mappings,
            location: self.locations,
            function: self.functions,
            string_table: self.strings,
            drop_frames: self.drop_frames,
            keep_frames: self.keep_frames,
            time_nanos: self.time_nanos,
            duration_nanos: self.duration_nanos,
            period_type: self.period_type,
            period: self.period,
            comment: self.comments,
            default_sample_type: self.default_sample_type,
            doc_url: self.doc_url,
        })
    }
}
