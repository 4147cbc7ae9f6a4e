//! The messages of pprof's `profile.proto`, written by hand with prost's
//! derives (field numbers and types as in `github.com/google/pprof`'s
//! `proto/profile.proto`), so building needs neither `protoc` nor a build
//! script.
//!
//! These are the wire types: string fields are indices into
//! [`Profile::string_table`] and references between messages are ids
//! (`Location::mapping_id`, `Line::function_id`, `Sample::location_id`).
//! [`crate::decode()`] checks both before handing a profile out, so code that
//! reads a decoded profile can rely on every index and id resolving.

/// A whole profile (`perftools.profiles.Profile`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Profile {
    /// What each value of a sample measures (type and unit), in order.
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    /// The samples: a stack, one value per sample type, labels.
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    /// The binaries mapped into the profiled process.
    #[prost(message, repeated, tag = "3")]
    pub mapping: Vec<Mapping>,
    /// Program locations (an address, with its inlined lines).
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    /// Functions named by the locations' lines.
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    /// Every string of the profile; index 0 is always `""`.
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    /// A regex (string index): frames matching it and above are dropped.
    #[prost(int64, tag = "7")]
    pub drop_frames: i64,
    /// A regex (string index): frames matching it are kept despite `drop_frames`.
    #[prost(int64, tag = "8")]
    pub keep_frames: i64,
    /// When the profile was collected, in nanoseconds since the Unix epoch.
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    /// How long the profile covers, in nanoseconds.
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    /// What `period` counts (e.g. `cpu/nanoseconds`).
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    /// The number of events between sampled occurrences.
    #[prost(int64, tag = "12")]
    pub period: i64,
    /// Free-form comments (string indices).
    #[prost(int64, repeated, tag = "13")]
    pub comment: Vec<i64>,
    /// The sample type shown by default (string index of its type name; 0 = the last one).
    #[prost(int64, tag = "14")]
    pub default_sample_type: i64,
    /// Documentation link for the profile's sample types (string index).
    #[prost(int64, tag = "15")]
    pub doc_url: i64,
}

/// A measured quantity: type and unit, both string indices
/// (`perftools.profiles.ValueType`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct ValueType {
    /// Type name (string index), e.g. `cpu`.
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    /// Unit (string index), e.g. `nanoseconds`.
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

/// One stack with its values and labels (`perftools.profiles.Sample`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// Location ids, leaf first.
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    /// One value per [`Profile::sample_type`].
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
    /// Labels: a string (`str`) or a number (`num`, with `num_unit`).
    #[prost(message, repeated, tag = "3")]
    pub label: Vec<Label>,
}

/// A sample label (`perftools.profiles.Label`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct Label {
    /// Key (string index).
    #[prost(int64, tag = "1")]
    pub key: i64,
    /// String value (string index), or 0.
    #[prost(int64, tag = "2")]
    pub str: i64,
    /// Numeric value, used when `str` is 0.
    #[prost(int64, tag = "3")]
    pub num: i64,
    /// Unit of `num` (string index), or 0.
    #[prost(int64, tag = "4")]
    pub num_unit: i64,
}

/// A binary mapped into memory (`perftools.profiles.Mapping`).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Mapping {
    /// Unique non-zero id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Start address.
    #[prost(uint64, tag = "2")]
    pub memory_start: u64,
    /// End address (exclusive).
    #[prost(uint64, tag = "3")]
    pub memory_limit: u64,
    /// Offset in the file of `memory_start`.
    #[prost(uint64, tag = "4")]
    pub file_offset: u64,
    /// File name (string index).
    #[prost(int64, tag = "5")]
    pub filename: i64,
    /// Build id (string index).
    #[prost(int64, tag = "6")]
    pub build_id: i64,
    /// Symbolization state: function names present.
    #[prost(bool, tag = "7")]
    pub has_functions: bool,
    /// Symbolization state: file names present.
    #[prost(bool, tag = "8")]
    pub has_filenames: bool,
    /// Symbolization state: line numbers present.
    #[prost(bool, tag = "9")]
    pub has_line_numbers: bool,
    /// Symbolization state: inlined frames present.
    #[prost(bool, tag = "10")]
    pub has_inline_frames: bool,
}

/// A program location (`perftools.profiles.Location`).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Location {
    /// Unique non-zero id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The mapping holding `address`, or 0.
    #[prost(uint64, tag = "2")]
    pub mapping_id: u64,
    /// Instruction address, or 0.
    #[prost(uint64, tag = "3")]
    pub address: u64,
    /// Source lines at this address; the last is the caller of the ones
    /// before it (inlined frames first).
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
    /// Several functions folded into this location (e.g. by identical code folding).
    #[prost(bool, tag = "5")]
    pub is_folded: bool,
}

/// A source line (`perftools.profiles.Line`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct Line {
    /// The function, or 0.
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    /// Line number, or 0.
    #[prost(int64, tag = "2")]
    pub line: i64,
    /// Column number, or 0.
    #[prost(int64, tag = "3")]
    pub column: i64,
}

/// A function (`perftools.profiles.Function`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct Function {
    /// Unique non-zero id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Human-readable name (string index).
    #[prost(int64, tag = "2")]
    pub name: i64,
    /// Mangled or system name (string index).
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    /// Source file (string index).
    #[prost(int64, tag = "4")]
    pub filename: i64,
    /// Line of the function's start.
    #[prost(int64, tag = "5")]
    pub start_line: i64,
}

impl Profile {
    /// The string at `index`, or `""` when out of range (never after
    /// [`crate::decode()`], which checks every index).
    pub fn string(&self, index: i64) -> &str {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.string_table.get(i))
            .map_or("", String::as_str)
    }

    /// `type/unit` of a value type, pprof's spelling (`cpu/nanoseconds`).
    pub fn value_type_name(&self, vt: &ValueType) -> String {
        format!("{}/{}", self.string(vt.r#type), self.string(vt.unit))
    }

    /// The sample types as `type/unit`, in order.
    pub fn sample_type_names(&self) -> Vec<String> {
        self.sample_type
            .iter()
            .map(|vt| self.value_type_name(vt))
            .collect()
    }

    /// The sum of each sample type's values over all samples (wrapping on
    /// overflow, as Go's `int64` does).
    pub fn totals(&self) -> Vec<i64> {
        let mut out = vec![0i64; self.sample_type.len()];
        for s in &self.sample {
            for (t, v) in out.iter_mut().zip(&s.value) {
                *t = t.wrapping_add(*v);
            }
        }
        out
    }

    /// The comments as text.
    pub fn comments(&self) -> Vec<&str> {
        self.comment.iter().map(|&c| self.string(c)).collect()
    }
}
