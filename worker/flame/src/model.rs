//! [`Model`]: one format-agnostic profile, built once from a decoded
//! profile and then asked for flamegraphs, top tables and diffs.
//!
//! A key design decision is the memory layout: the model is columnar.
//! Strings are interned once ([`Model::string`]); locations are an array
//! with their (inlined) lines, leaf first as in pprof; samples are three
//! flat arrays (location indices, values, labels) with offsets, so a
//! 1.45 M-sample profile is a handful of allocations and no per-sample
//! `String`. Ids of the source format are resolved to array indices here,
//! once, so the hot loops never hash an id or a string.
//!
//! pprof's decode-time pruning is applied while building, as
//! `go tool pprof` does when it fetches a profile
//! (`Profile.RemoveUninteresting`): the profile's `drop_frames` regex
//! (anchored, matched on the simplified function name) removes matching
//! frames and everything called from them unless `keep_frames` matches. An
//! invalid `drop_frames` regex is ignored, as pprof ignores it.
//!
//! Edge cases: a label with neither a string value, a number nor a unit is
//! dropped (pprof's decoder does the same); a sample with fewer values than
//! sample types is refused.

use std::collections::HashMap;

use emberlens_pprof::Profile;
use regex::Regex;

use crate::FlameError;
use crate::hash::IdMap;

/// Index into [`Model::string`]'s table.
pub type StrId = u32;

/// What a sample value measures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleType {
    /// Type name, e.g. `cpu`, `alloc_space`.
    pub name: String,
    /// Unit, e.g. `nanoseconds`, `bytes`, `count`.
    pub unit: String,
}

/// A function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    /// Name.
    pub name: StrId,
    /// System (mangled) name.
    pub system_name: StrId,
    /// Source file.
    pub file: StrId,
    /// First line of the function.
    pub start_line: i64,
}

/// A binary mapped into the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// File name.
    pub file: StrId,
    /// Build id.
    pub build_id: StrId,
}

/// One source line of a location.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    /// Index into [`Model::functions`], if the line names a function.
    pub function: Option<u32>,
    /// Line number, or 0.
    pub line: i64,
}

/// A program location: an address and its lines, the innermost (inlined)
/// first and the real call site last, as in pprof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// Index into [`Model::mappings`].
    pub mapping: Option<u32>,
    /// Instruction address, or 0.
    pub address: u64,
    /// Lines, leaf first.
    pub lines: Vec<Line>,
}

/// A sample label's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LabelValue {
    /// A string label.
    Str(StrId),
    /// A numeric label with its unit (0 = none).
    Num {
        /// The number.
        value: i64,
        /// Its unit.
        unit: StrId,
    },
}

/// A sample label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label {
    /// Key.
    pub key: StrId,
    /// Value.
    pub value: LabelValue,
}

/// One profile, ready for analysis (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct Model {
    strings: Vec<String>,
    sample_types: Vec<SampleType>,
    default_sample_type: usize,
    /// Functions.
    pub(crate) functions: Vec<Function>,
    /// Mappings, in the profile's order (the first is the main binary).
    pub(crate) mappings: Vec<Mapping>,
    /// Locations.
    pub(crate) locations: Vec<Location>,
    /// Sample `i`'s locations (leaf first) are
    /// `stack_locs[stack_off[i]..stack_off[i + 1]]`.
    pub(crate) stack_off: Vec<u32>,
    pub(crate) stack_locs: Vec<u32>,
    /// `values[i * n_types + t]`.
    pub(crate) values: Vec<i64>,
    pub(crate) label_off: Vec<u32>,
    pub(crate) labels: Vec<Label>,
    pub(crate) period: i64,
    pub(crate) period_type: Option<SampleType>,
    pub(crate) time_nanos: i64,
    pub(crate) duration_nanos: i64,
    pub(crate) comments: Vec<String>,
}

struct Interner {
    strings: Vec<String>,
    ids: HashMap<String, StrId>,
}

impl Interner {
    fn new() -> Self {
        let mut ids = HashMap::new();
        ids.insert(String::new(), 0);
        Interner {
            strings: vec![String::new()],
            ids,
        }
    }
    fn intern(&mut self, s: &str) -> StrId {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.strings.len() as StrId;
        self.strings.push(s.to_string());
        self.ids.insert(s.to_string(), id);
        id
    }
}

fn offset(n: usize, what: &str) -> Result<u32, FlameError> {
    u32::try_from(n).map_err(|_| FlameError::TooLarge(format!("more than 4G {what}")))
}

impl Model {
    /// Builds the model of a decoded pprof profile (ideally one that
    /// [`emberlens_pprof::decode`] validated; an unvalidated one with a
    /// dangling reference is refused with an error, never a panic).
    pub fn from_pprof(p: &Profile) -> Result<Model, FlameError> {
        Self::assemble(p, &mut ProfileSamples(p))
    }

    /// Builds the model from the header, locations, functions, mappings
    /// and strings of `p` and the samples of `samples` (those of `p`, or
    /// columns decoded straight from the bytes by [`Model::from_bytes`]).
    pub(crate) fn assemble<S: SampleSource>(
        p: &Profile,
        samples: &mut S,
    ) -> Result<Model, FlameError> {
        let mut strs = Interner::new();
        // Profile string index → model string id (only the strings used).
        let mut smap: Vec<Option<StrId>> = vec![None; p.string_table.len()];
        let mut s = |i: i64, field: &str| -> Result<StrId, FlameError> {
            let idx = usize::try_from(i)
                .ok()
                .filter(|&i| i < p.string_table.len())
                .ok_or_else(|| {
                    FlameError::invalid(field, format!("string index {i} out of range"))
                })?;
            if let Some(id) = smap[idx] {
                return Ok(id);
            }
            let id = strs.intern(&p.string_table[idx]);
            smap[idx] = Some(id);
            Ok(id)
        };

        let mut sample_types = Vec::with_capacity(p.sample_type.len());
        for (i, vt) in p.sample_type.iter().enumerate() {
            let name = s(vt.r#type, &format!("sample_type[{i}].type"))?;
            let unit = s(vt.unit, &format!("sample_type[{i}].unit"))?;
            sample_types.push((name, unit));
        }

        let mut fn_index: IdMap<u64, u32> =
            IdMap::with_capacity_and_hasher(p.function.len(), Default::default());
        let mut functions = Vec::with_capacity(p.function.len());
        for (i, f) in p.function.iter().enumerate() {
            fn_index.insert(f.id, i as u32);
            functions.push(Function {
                name: s(f.name, "function.name")?,
                system_name: s(f.system_name, "function.system_name")?,
                file: s(f.filename, "function.filename")?,
                start_line: f.start_line,
            });
        }
        let mut map_index: IdMap<u64, u32> =
            IdMap::with_capacity_and_hasher(p.mapping.len(), Default::default());
        let mut mappings = Vec::with_capacity(p.mapping.len());
        for (i, m) in p.mapping.iter().enumerate() {
            map_index.insert(m.id, i as u32);
            mappings.push(Mapping {
                file: s(m.filename, "mapping.filename")?,
                build_id: s(m.build_id, "mapping.build_id")?,
            });
        }
        let mut loc_index: IdMap<u64, u32> =
            IdMap::with_capacity_and_hasher(p.location.len(), Default::default());
        let mut locations = Vec::with_capacity(p.location.len());
        for (i, l) in p.location.iter().enumerate() {
            loc_index.insert(l.id, offset(i, "locations")?);
            let mapping = match l.mapping_id {
                0 => None,
                id => Some(*map_index.get(&id).ok_or_else(|| {
                    FlameError::invalid(
                        format!("location[{i}].mapping_id"),
                        format!("no mapping {id}"),
                    )
                })?),
            };
            let mut lines = Vec::with_capacity(l.line.len());
            for ln in &l.line {
                let function = match ln.function_id {
                    0 => None,
                    id => Some(*fn_index.get(&id).ok_or_else(|| {
                        FlameError::invalid(
                            format!("location[{i}].line.function_id"),
                            format!("no function {id}"),
                        )
                    })?),
                };
                lines.push(Line {
                    function,
                    line: ln.line,
                });
            }
            locations.push(Location {
                mapping,
                address: l.address,
                lines,
            });
        }

        // Location ids are usually 1..=n: then a plain array replaces the map.
        let max_id = p.location.iter().map(|l| l.id).max().unwrap_or(0);
        let dense: Vec<u32> = if max_id <= 2 * p.location.len() as u64 + 64 {
            let mut d = vec![u32::MAX; max_id as usize + 1];
            for (&id, &i) in &loc_index {
                d[id as usize] = i;
            }
            d
        } else {
            Vec::new()
        };
        let find_loc = |id: u64| -> Option<u32> {
            if dense.is_empty() {
                loc_index.get(&id).copied()
            } else {
                dense.get(id as usize).copied().filter(|&i| i != u32::MAX)
            }
        };
        let n_types = p.sample_type.len();
        let n_samples = samples.count();
        let total_locs = samples.total_locations();
        let total_labels = samples.total_labels();
        offset(total_locs, "stack entries")?;
        offset(total_labels, "labels")?;
        // Location ids already in a `u32` column become the stack column in
        // place (on the 50 MB benchmark profile, 2 copies of ~150 MB were
        // alive at once otherwise).
        let taken = samples.take_stacks();
        let took = taken.is_some();
        let mut stack_off = Vec::with_capacity(n_samples + 1);
        let mut stack_locs = match &taken {
            Some(_) => Vec::new(),
            None => Vec::with_capacity(total_locs),
        };
        let (mut taken_ids, taken_ends) = taken.unwrap_or_default();
        let mut values = Vec::with_capacity(n_samples * n_types);
        let mut label_off = Vec::with_capacity(n_samples + 1);
        let mut labels = Vec::with_capacity(total_labels);
        stack_off.push(0);
        label_off.push(0);
        for i in 0..n_samples {
            let vals = samples.values(i);
            if vals.len() != n_types {
                return Err(FlameError::invalid(
                    format!("sample[{i}].value"),
                    format!("{} values for {n_types} sample types", vals.len()),
                ));
            }
            let no_location = |id: u64| {
                FlameError::invalid(
                    format!("sample[{i}].location_id"),
                    format!("no location {id}"),
                )
            };
            if let Some(&end) = taken_ends.get(i) {
                let start = stack_off.last().map_or(0, |&o| o as usize);
                for id in taken_ids.get_mut(start..end).unwrap_or_default() {
                    let v = u64::from(*id);
                    *id = find_loc(v).ok_or_else(|| no_location(v))?;
                }
                stack_off.push(end as u32);
            } else {
                samples.for_each_location(i, |id| {
                    stack_locs.push(find_loc(id).ok_or_else(|| no_location(id))?);
                    Ok(())
                })?;
                stack_off.push(stack_locs.len() as u32);
            }
            values.extend_from_slice(vals);
            for l in samples.labels(i) {
                let key = s(l.key, "label.key")?;
                let value = if l.str != 0 {
                    LabelValue::Str(s(l.str, "label.str")?)
                } else if l.num != 0 || l.num_unit != 0 {
                    LabelValue::Num {
                        value: l.num,
                        unit: s(l.num_unit, "label.num_unit")?,
                    }
                } else {
                    continue;
                };
                labels.push(Label { key, value });
            }
            label_off.push(labels.len() as u32);
        }

        if took {
            stack_locs = taken_ids;
        }
        let default_name = s(p.default_sample_type, "default_sample_type")?;
        let drop = s(p.drop_frames, "drop_frames")?;
        let keep = s(p.keep_frames, "keep_frames")?;
        let mut comments = Vec::with_capacity(p.comment.len());
        for &c in &p.comment {
            comments.push(s(c, "comment")?);
        }
        let period_type = match &p.period_type {
            Some(vt) => Some((s(vt.r#type, "period_type")?, s(vt.unit, "period_type")?)),
            None => None,
        };

        let strings = strs.strings;
        let st = |id: StrId| strings[id as usize].clone();
        let sample_types: Vec<SampleType> = sample_types
            .into_iter()
            .map(|(n, u)| SampleType {
                name: st(n),
                unit: st(u),
            })
            .collect();
        // pprof: the default sample type if it names one, else the last.
        let default_sample_type = sample_types
            .iter()
            .position(|t| default_name != 0 && t.name == strings[default_name as usize])
            .unwrap_or(sample_types.len().saturating_sub(1));
        let mut model = Model {
            comments: comments.into_iter().map(st).collect(),
            period_type: period_type.map(|(n, u)| SampleType {
                name: st(n),
                unit: st(u),
            }),
            sample_types,
            default_sample_type,
            functions,
            mappings,
            locations,
            stack_off,
            stack_locs,
            values,
            label_off,
            labels,
            period: p.period,
            time_nanos: p.time_nanos,
            duration_nanos: p.duration_nanos,
            strings,
        };
        if drop != 0 {
            let drop = model.strings[drop as usize].clone();
            let keep = model.strings[keep as usize].clone();
            model.prune(&drop, &keep);
        }
        Ok(model)
    }

    /// The string with id `id` (`""` when out of range).
    pub fn string(&self, id: StrId) -> &str {
        self.strings.get(id as usize).map_or("", String::as_str)
    }

    /// Number of interned strings.
    pub fn string_count(&self) -> usize {
        self.strings.len()
    }

    /// The sample types, in order.
    pub fn sample_types(&self) -> &[SampleType] {
        &self.sample_types
    }

    /// The sample type shown by default: the profile's
    /// `default_sample_type` when it names one, else the last (pprof's rule).
    pub fn default_sample_type(&self) -> usize {
        self.default_sample_type
    }

    /// Resolves pprof's `-sample_index`: `None` for the default, a number
    /// (`"0"`), or a type name (`alloc_space`; `inuse_` may be left out
    /// for profiles whose types are `space`/`objects`).
    pub fn sample_index(&self, sel: Option<&SampleIndex>) -> Result<usize, FlameError> {
        if self.sample_types.is_empty() {
            return Err(FlameError::NoSampleTypes);
        }
        let names = || {
            self.sample_types
                .iter()
                .map(|t| t.name.clone())
                .collect::<Vec<_>>()
                .join(" ")
        };
        match sel {
            None => Ok(self.default_sample_type),
            Some(SampleIndex::Number(i)) => {
                if *i < self.sample_types.len() {
                    Ok(*i)
                } else {
                    Err(FlameError::SampleIndex(format!(
                        "{i} is outside the range [0..{}]",
                        self.sample_types.len() - 1
                    )))
                }
            }
            Some(SampleIndex::Name(name)) => {
                if let Ok(i) = name.parse::<i64>() {
                    return match usize::try_from(i) {
                        Ok(i) => self.sample_index(Some(&SampleIndex::Number(i))),
                        Err(_) => Err(FlameError::SampleIndex(format!(
                            "{i} is outside the range [0..{}]",
                            self.sample_types.len() - 1
                        ))),
                    };
                }
                let no_inuse = name.strip_prefix("inuse_").unwrap_or(name);
                self.sample_types
                    .iter()
                    .position(|t| t.name == *name || t.name == no_inuse)
                    .ok_or_else(|| {
                        FlameError::SampleIndex(format!("{name:?} must be one of: [{}]", names()))
                    })
            }
        }
    }

    /// Number of samples.
    pub fn sample_count(&self) -> usize {
        self.stack_off.len().saturating_sub(1)
    }

    /// The sampling period.
    pub fn period(&self) -> i64 {
        self.period
    }

    /// What the period counts, if the profile says.
    pub fn period_type(&self) -> Option<&SampleType> {
        self.period_type.as_ref()
    }

    /// When the profile was taken (Unix nanoseconds, 0 = unknown).
    pub fn time_nanos(&self) -> i64 {
        self.time_nanos
    }

    /// How long the profile covers (nanoseconds, 0 = unknown).
    pub fn duration_nanos(&self) -> i64 {
        self.duration_nanos
    }

    /// Free-form comments.
    pub fn comments(&self) -> &[String] {
        &self.comments
    }

    /// The locations.
    pub fn locations(&self) -> &[Location] {
        &self.locations
    }

    /// The functions.
    pub fn functions(&self) -> &[Function] {
        &self.functions
    }

    /// The mappings (the first is the main binary).
    pub fn mappings(&self) -> &[Mapping] {
        &self.mappings
    }

    /// Sample `i`'s location indices, leaf first.
    pub fn sample_stack(&self, i: usize) -> &[u32] {
        &self.stack_locs[self.stack_off[i] as usize..self.stack_off[i + 1] as usize]
    }

    /// Sample `i`'s values, one per sample type.
    pub fn sample_values(&self, i: usize) -> &[i64] {
        let n = self.sample_types.len();
        &self.values[i * n..(i + 1) * n]
    }

    /// Sample `i`'s labels.
    pub fn sample_labels(&self, i: usize) -> &[Label] {
        &self.labels[self.label_off[i] as usize..self.label_off[i + 1] as usize]
    }

    /// Every string and numeric label key with its distinct values, for a
    /// label picker (numeric values printed in their unit), sorted.
    pub fn label_values(&self) -> Vec<(String, Vec<String>)> {
        let mut m: HashMap<StrId, Vec<String>> = HashMap::new();
        let mut seen: std::collections::HashSet<(StrId, LabelValue)> = Default::default();
        for l in &self.labels {
            if !seen.insert((l.key, l.value)) {
                continue;
            }
            let v = match l.value {
                LabelValue::Str(s) => self.string(s).to_string(),
                LabelValue::Num { value, unit } => crate::units::label(value, self.string(unit)),
            };
            m.entry(l.key).or_default().push(v);
        }
        let mut out: Vec<(String, Vec<String>)> = m
            .into_iter()
            .map(|(k, mut v)| {
                v.sort();
                (self.string(k).to_string(), v)
            })
            .collect();
        out.sort();
        out
    }

    /// The unit of each numeric label key, as pprof infers it: the first
    /// unit given, else `bytes` for `alignment` and `request`, else the key.
    pub fn num_label_units(&self) -> HashMap<String, String> {
        let mut units: HashMap<StrId, StrId> = HashMap::new();
        let mut keys: Vec<StrId> = Vec::new();
        for l in &self.labels {
            if let LabelValue::Num { unit, .. } = l.value {
                if !keys.contains(&l.key) {
                    keys.push(l.key);
                }
                if unit != 0 {
                    units.entry(l.key).or_insert(unit);
                }
            }
        }
        keys.into_iter()
            .map(|k| {
                let key = self.string(k).to_string();
                let unit = match units.get(&k) {
                    Some(&u) => self.string(u).to_string(),
                    None if key == "alignment" || key == "request" => "bytes".to_string(),
                    None => key.clone(),
                };
                (key, unit)
            })
            .collect()
    }

    /// pprof's `Profile.Prune(drop, keep)` with the profile's anchored
    /// `drop_frames`/`keep_frames` (see the module docs).
    fn prune(&mut self, drop: &str, keep: &str) {
        let Ok(drop_rx) = Regex::new(&format!("^(?:{drop})$")) else {
            return;
        };
        let keep_rx = if keep.is_empty() {
            None
        } else {
            match Regex::new(&format!("^(?:{keep})$")) {
                Ok(r) => Some(r),
                Err(_) => return,
            }
        };
        // 0 = keep, 1 = prune beneath (location kept), 2 = prune whole location.
        let mut state = vec![0u8; self.locations.len()];
        for (li, loc) in self.locations.iter_mut().enumerate() {
            let mut hit = None;
            for i in (0..loc.lines.len()).rev() {
                if let Some(f) = loc.lines[i].function {
                    let name = &self.strings[self.functions[f as usize].name as usize];
                    if name.is_empty() {
                        continue;
                    }
                    let simple = simplify_func(name);
                    if drop_rx.is_match(simple)
                        && !keep_rx.as_ref().is_some_and(|k| k.is_match(simple))
                    {
                        hit = Some(i);
                        break;
                    }
                }
            }
            if let Some(i) = hit {
                if i == loc.lines.len() - 1 {
                    state[li] = 2;
                } else {
                    state[li] = 1;
                    loc.lines.drain(..=i);
                }
            }
        }
        if state.iter().all(|&s| s == 0) {
            return;
        }
        let mut new_locs = Vec::with_capacity(self.stack_locs.len());
        let mut new_off = Vec::with_capacity(self.stack_off.len());
        new_off.push(0u32);
        for w in 0..self.sample_count() {
            let stack = self.sample_stack(w);
            let (mut from, to) = (0, stack.len());
            let mut found_user = false;
            for i in (0..stack.len()).rev() {
                let st = state[stack[i] as usize];
                if st == 0 {
                    found_user = true;
                    continue;
                }
                if !found_user {
                    continue;
                }
                from = if st == 2 { i + 1 } else { i };
                break;
            }
            new_locs.extend_from_slice(&stack[from..to]);
            new_off.push(new_locs.len() as u32);
        }
        self.stack_locs = new_locs;
        self.stack_off = new_off;
    }
}

/// Where [`Model::assemble`] reads samples from.
pub(crate) trait SampleSource {
    /// Number of samples.
    fn count(&self) -> usize;
    /// Sum of the stack lengths.
    fn total_locations(&self) -> usize;
    /// Sum of the label counts.
    fn total_labels(&self) -> usize;
    /// Sample `i`'s values.
    fn values(&self, i: usize) -> &[i64];
    /// Sample `i`'s labels.
    fn labels(&self, i: usize) -> &[emberlens_pprof::Label];
    /// Calls `f` with sample `i`'s location ids, leaf first.
    fn for_each_location(
        &self,
        i: usize,
        f: impl FnMut(u64) -> Result<(), FlameError>,
    ) -> Result<(), FlameError>;
    /// Every sample's location ids (leaf first, concatenated) and where
    /// each sample's end, if the source holds them as `u32`s it can give
    /// away; [`SampleSource::for_each_location`] is not called after.
    fn take_stacks(&mut self) -> Option<(Vec<u32>, Vec<usize>)> {
        None
    }
}

/// The samples of a decoded [`Profile`].
struct ProfileSamples<'a>(&'a Profile);

impl SampleSource for ProfileSamples<'_> {
    fn count(&self) -> usize {
        self.0.sample.len()
    }
    fn total_locations(&self) -> usize {
        self.0.sample.iter().map(|s| s.location_id.len()).sum()
    }
    fn total_labels(&self) -> usize {
        self.0.sample.iter().map(|s| s.label.len()).sum()
    }
    fn values(&self, i: usize) -> &[i64] {
        &self.0.sample[i].value
    }
    fn labels(&self, i: usize) -> &[emberlens_pprof::Label] {
        &self.0.sample[i].label
    }
    fn for_each_location(
        &self,
        i: usize,
        mut f: impl FnMut(u64) -> Result<(), FlameError>,
    ) -> Result<(), FlameError> {
        self.0.sample[i]
            .location_id
            .iter()
            .try_for_each(|&id| f(id))
    }
}

/// pprof's `simplifyFunc`: a leading `.` dropped, and the argument list
/// cut at the first `(` that does not start `(anonymous namespace)` or
/// belong to `operator()`.
pub(crate) fn simplify_func(f: &str) -> &str {
    let f = f.strip_prefix('.').unwrap_or(f);
    let b = f.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let rest = &f[i..];
        if rest.starts_with("(anonymous namespace)") {
            i += "(anonymous namespace)".len();
        } else if rest.starts_with("operator()") {
            i += "operator()".len();
        } else if b[i] == b'(' {
            return &f[..i];
        } else {
            i += 1;
            while i < b.len() && !f.is_char_boundary(i) {
                i += 1;
            }
        }
    }
    f
}

/// pprof's `-sample_index`: a position or a type name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SampleIndex {
    /// By position.
    Number(usize),
    /// By type name (or a number written as text).
    Name(String),
}

impl From<&str> for SampleIndex {
    fn from(s: &str) -> Self {
        SampleIndex::Name(s.to_string())
    }
}

impl From<usize> for SampleIndex {
    fn from(i: usize) -> Self {
        SampleIndex::Number(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simplify_func_cuts_argument_lists_but_not_reserved_names() {
        assert_eq!(simplify_func(".foo(int)"), "foo");
        assert_eq!(
            simplify_func("a::(anonymous namespace)::b(int)"),
            "a::(anonymous namespace)::b"
        );
        assert_eq!(simplify_func("X::operator()(int)"), "X::operator()");
        assert_eq!(simplify_func("main.(*T).m"), "main.");
        assert_eq!(simplify_func("plain"), "plain");
    }
}
