//! Applying [`Options`] to a [`Model`]: a [`View`] walks the samples that
//! survive the refinements, each as its stack of frames (root first) at
//! the chosen granularity.
//!
//! Work per location is done once, when the view is made: which
//! refinement each location matches, which of its lines survive `hide`,
//! `show` and `show_from`, and the frame id of each surviving line
//! ([`Frames`] interns frames by content, so two models — a diff's base
//! and new — share frame ids). The per-sample loop only reads small arrays.
//!
//! The order is pprof's (`applyFocus`): focus/ignore/hide/show, then
//! show_from, then the tag filters; granularity last.

use std::collections::HashMap;

use regex::Regex;

use crate::FlameError;
use crate::model::{LabelValue, Line, Location, Model, StrId};
use crate::options::{Granularity, Options, TagFilter, TagMatcher, in_range};
use crate::tree::FrameInfo;

/// What a frame is at a granularity: pprof's `NodeInfo` (without the
/// original name, which reports here never print).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FrameKey {
    /// Address (addresses granularity only), or 0.
    pub address: u64,
    /// Function name, or empty.
    pub name: String,
    /// Source file (cleaned), or empty.
    pub file: String,
    /// First line of the function (only when the name is empty).
    pub start_line: i64,
    /// Line number (lines and addresses granularity), or 0.
    pub line: i64,
    /// Mapping file (only when there is no name).
    pub objfile: String,
}

impl FrameKey {
    /// pprof's `PrintableName`: address, name, then `file:line`, the file,
    /// `[binary]` or `<unknown>`, separated by spaces.
    pub fn printable_name(&self) -> String {
        let mut parts: Vec<String> = Vec::with_capacity(3);
        if self.address != 0 {
            parts.push(format!("{:016x}", self.address));
        }
        if !self.name.is_empty() {
            parts.push(self.name.clone());
        }
        if self.line != 0 {
            parts.push(format!("{}:{}", self.file, self.line));
        } else if !self.file.is_empty() {
            parts.push(self.file.clone());
        } else if !self.name.is_empty() {
        } else if !self.objfile.is_empty() {
            let base = self.objfile.rsplit('/').next().unwrap_or(&self.objfile);
            parts.push(format!("[{base}]"));
        } else {
            parts.push("<unknown>".to_string());
        }
        parts.join(" ")
    }

    /// Go's `fmt.Sprint` of the `NodeInfo`, pprof's last tie-breaker.
    pub(crate) fn go_sprint(&self) -> String {
        format!(
            "{{{}  {} {} {} {} {}}}",
            self.name, self.address, self.file, self.start_line, self.line, self.objfile
        )
    }

    /// The [`FrameInfo`] a flamegraph draws for this frame.
    pub fn frame_info(&self) -> FrameInfo {
        let name = if self.name.is_empty() {
            self.printable_name()
        } else {
            self.name.clone()
        };
        FrameInfo {
            package: package_of(&name),
            name,
            file: self.file.clone(),
            line: self.line,
            address: self.address,
        }
    }
}

/// The package or module of a function name, for colouring:
/// `net/http.(*conn).serve` → `net/http`, `tokio::runtime::park` →
/// `tokio::runtime`, `main.f` → `main`; empty when there is none.
pub fn package_of(name: &str) -> String {
    if let Some(i) = name.rfind("::") {
        let head = &name[..i];
        // Generic arguments and trait impls (`<T as U>::f`) keep their head.
        return head.trim_start_matches('<').to_string();
    }
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].find('.') {
        Some(dot) => name[..slash + dot].to_string(),
        None => String::new(),
    }
}

/// Frames interned by content.
#[derive(Debug, Default)]
pub struct Frames {
    pub(crate) keys: Vec<FrameKey>,
    ids: HashMap<FrameKey, u32>,
}

impl Frames {
    /// The id of `key`, interning it on first use.
    pub fn intern(&mut self, key: FrameKey) -> u32 {
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let id = self.keys.len() as u32;
        self.keys.push(key.clone());
        self.ids.insert(key, id);
        id
    }

    /// The frame with id `id`.
    pub fn key(&self, id: u32) -> &FrameKey {
        &self.keys[id as usize]
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no frame.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

const FOCUSED: u8 = 1;
const IGNORED: u8 = 2;
const HIDDEN: u8 = 4;
const SHOW_FROM: u8 = 8;

/// Tag filters resolved against one model's strings.
struct CompiledTag<'o> {
    filter: &'o TagFilter,
    /// The key's string id in the model (None: the key never occurs).
    key: Option<Option<StrId>>,
    /// Numeric unit of the key (pprof's `NumLabelUnits`).
    key_unit: String,
}

/// A model seen through [`Options`] (see the module docs).
pub struct View<'a> {
    model: &'a Model,
    value_index: usize,
    /// Multiplies every value (−1 for a diff's base).
    sign: i64,
    loc_flags: Vec<u8>,
    /// Frames of each location, root first (outer call site first).
    loc_off: Vec<u32>,
    loc_frames: Vec<u32>,
    /// Whether each frame of `loc_frames` is inlined into the next one
    /// (is not its location's outermost line).
    loc_inlined: Vec<bool>,
    has_show_from: bool,
    tagfocus: Vec<CompiledTag<'a>>,
    tagignore: Vec<CompiledTag<'a>>,
    num_units: HashMap<String, String>,
}

fn matches_line(model: &Model, line: &Line, re: &Regex) -> bool {
    line.function.is_some_and(|f| {
        let f = &model.functions[f as usize];
        re.is_match(model.string(f.name)) || re.is_match(model.string(f.file))
    })
}

fn mapping_matches(model: &Model, loc: &Location, re: &Regex) -> bool {
    loc.mapping
        .is_some_and(|m| re.is_match(model.string(model.mappings[m as usize].file)))
}

fn matches_name(model: &Model, loc: &Location, lines: &[Line], re: &Regex) -> bool {
    lines.iter().any(|l| matches_line(model, l, re)) || mapping_matches(model, loc, re)
}

/// Go's `filepath.Clean` (lexical: `.` and `..` resolved, slashes collapsed).
pub(crate) fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            x => out.push(x),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// pprof's `trimPath` with no `-trim_path` and no `-source_path`: the
/// `/proc/self/cwd/` prefixes are removed.
fn trim_path(p: &str) -> &str {
    for prefix in ["/proc/self/cwd/./", "/proc/self/cwd/"] {
        if let Some(rest) = p.strip_prefix(prefix) {
            return rest;
        }
    }
    p
}

/// The frame of one line of `loc` (or of the location itself when it has
/// no line) at `gran`, as pprof's `Aggregate` + `nodeInfo` make it.
fn frame_key(model: &Model, loc: &Location, line: Option<&Line>, gran: Granularity) -> FrameKey {
    let (function, filename, linenumber, address) = match gran {
        Granularity::Functions => (true, false, false, false),
        Granularity::Filefunctions => (true, true, false, false),
        Granularity::Files => (false, true, false, false),
        Granularity::Lines => (true, true, true, false),
        Granularity::Addresses => (true, true, true, true),
    };
    let objfile = loc
        .mapping
        .map(|m| model.string(model.mappings[m as usize].file).to_string())
        .unwrap_or_default();
    let address = if address { loc.address } else { 0 };
    let Some(f) = line.and_then(|l| l.function) else {
        return FrameKey {
            address,
            objfile,
            ..FrameKey::default()
        };
    };
    let func = &model.functions[f as usize];
    let name = if function {
        model.string(func.name).to_string()
    } else {
        String::new()
    };
    let fname = if filename {
        trim_path(model.string(func.file))
    } else {
        ""
    };
    let mut key = FrameKey {
        address,
        line: if linenumber {
            line.map_or(0, |l| l.line)
        } else {
            0
        },
        file: if fname.is_empty() {
            String::new()
        } else {
            clean_path(fname)
        },
        name,
        ..FrameKey::default()
    };
    if key.name.is_empty() {
        key.objfile = objfile;
        key.start_line = func.start_line;
    }
    key
}

impl<'a> View<'a> {
    /// The view of `model` through `opts`; frames are interned in `frames`.
    pub fn new(
        model: &'a Model,
        opts: &'a Options,
        frames: &mut Frames,
    ) -> Result<View<'a>, FlameError> {
        let value_index = model.sample_index(opts.sample_index.as_ref())?;
        let mut loc_flags = vec![0u8; model.locations.len()];
        let mut loc_off = Vec::with_capacity(model.locations.len() + 1);
        let mut loc_frames = Vec::new();
        let mut loc_inlined = Vec::new();
        loc_off.push(0u32);
        let empty = [Line {
            function: None,
            line: 0,
        }];
        for (li, loc) in model.locations.iter().enumerate() {
            let mut flags = 0u8;
            if opts
                .ignore
                .as_ref()
                .is_some_and(|re| matches_name(model, loc, &loc.lines, re))
            {
                flags |= IGNORED;
            } else if opts
                .focus
                .as_ref()
                .is_none_or(|re| matches_name(model, loc, &loc.lines, re))
            {
                flags |= FOCUSED;
            }
            let mut lines: Vec<Line> = loc.lines.clone();
            if let Some(re) = &opts.hide
                && matches_name(model, loc, &lines, re)
            {
                if mapping_matches(model, loc, re) {
                    lines.clear();
                } else {
                    lines.retain(|l| !matches_line(model, l, re));
                }
                if lines.is_empty() {
                    flags |= HIDDEN;
                }
            }
            if let Some(re) = &opts.show {
                if !mapping_matches(model, loc, re) {
                    lines.retain(|l| l.function.is_none() || matches_line(model, l, re));
                }
                if lines.is_empty() {
                    flags |= HIDDEN;
                }
            }
            if let Some(re) = &opts.show_from {
                if mapping_matches(model, loc, re) {
                    flags |= SHOW_FROM;
                } else if let Some(i) = lines.iter().rposition(|l| matches_line(model, l, re)) {
                    lines.truncate(i + 1);
                    flags |= SHOW_FROM;
                }
            }
            loc_flags[li] = flags;
            let lines: &[Line] = if lines.is_empty() { &empty } else { &lines };
            // Root first: the outermost line (the last) first.
            for (k, l) in lines.iter().enumerate().rev() {
                loc_frames.push(frames.intern(frame_key(model, loc, Some(l), opts.granularity)));
                loc_inlined.push(k != lines.len() - 1);
            }
            loc_off.push(loc_frames.len() as u32);
        }
        let compile = |filters: &'a [TagFilter]| -> Vec<CompiledTag<'a>> {
            filters
                .iter()
                .map(|f| CompiledTag {
                    filter: f,
                    key: f.key.as_ref().map(|k| model_string_id(model, k)),
                    key_unit: String::new(),
                })
                .collect()
        };
        let num_units = model.num_label_units();
        let mut tagfocus = compile(&opts.tagfocus);
        let mut tagignore = compile(&opts.tagignore);
        for t in tagfocus.iter_mut().chain(tagignore.iter_mut()) {
            if let Some(k) = &t.filter.key {
                t.key_unit = num_units.get(k).cloned().unwrap_or_default();
            }
        }
        Ok(View {
            model,
            value_index,
            sign: 1,
            loc_flags,
            loc_off,
            loc_frames,
            loc_inlined,
            has_show_from: opts.show_from.is_some(),
            tagfocus,
            tagignore,
            num_units,
        })
    }

    /// Negates every value (a diff's base).
    pub fn negated(mut self) -> Self {
        self.sign = -self.sign;
        self
    }

    /// The model.
    pub fn model(&self) -> &'a Model {
        self.model
    }

    /// The sample type index in use.
    pub fn value_index(&self) -> usize {
        self.value_index
    }

    /// The sum of the absolute values of every sample, before any filter
    /// (pprof's report total).
    pub fn total_abs(&self) -> i64 {
        let n = self.model.sample_types().len();
        (0..self.model.sample_count())
            .map(|i| self.model.values[i * n + self.value_index].wrapping_abs())
            .fold(0i64, i64::wrapping_add)
    }

    fn tag_matches(&self, t: &CompiledTag<'_>, sample: usize) -> bool {
        let labels = self.model.sample_labels(sample);
        let m = self.model;
        match (&t.filter.matcher, t.key) {
            (TagMatcher::Regexes(rxs), Some(key)) => {
                let Some(key) = key else { return false };
                labels.iter().any(|l| {
                    l.key == key
                        && matches!(l.value, LabelValue::Str(v) if rxs.iter().any(|r| r.is_match(m.string(v))))
                })
            }
            (TagMatcher::Regexes(rxs), None) => rxs.iter().all(|r| {
                labels.iter().any(|l| match l.value {
                    LabelValue::Str(v) => {
                        r.is_match(&format!("{}:{}", m.string(l.key), m.string(v)))
                    }
                    LabelValue::Num { .. } => false,
                })
            }),
            (TagMatcher::Range { min, max, unit }, Some(key)) => {
                let Some(key) = key else { return false };
                labels.iter().any(|l| {
                    l.key == key
                        && matches!(l.value, LabelValue::Num { value, .. } if in_range(value, &t.key_unit, *min, *max, unit))
                })
            }
            (TagMatcher::Range { min, max, unit }, None) => labels.iter().any(|l| match l.value {
                LabelValue::Num { value, .. } => {
                    let u = self
                        .num_units
                        .get(m.string(l.key))
                        .map_or("", String::as_str);
                    in_range(value, u, *min, *max, unit)
                }
                LabelValue::Str(_) => false,
            }),
        }
    }

    /// Whether sample `s` passes the filters; if so, the end of the part of
    /// its stack (leaf first) that `show_from` keeps.
    pub(crate) fn keep(&self, s: usize) -> Option<usize> {
        let stack = self.model.sample_stack(s);
        let mut focused = false;
        let mut ignored = false;
        for &l in stack {
            let fl = self.loc_flags[l as usize];
            ignored |= fl & IGNORED != 0;
            focused |= fl & FOCUSED != 0;
        }
        if ignored || !focused {
            return None;
        }
        // The root-most location kept by show_from (or the root).
        let mut top = stack.len();
        if self.has_show_from {
            let i = stack
                .iter()
                .rposition(|&l| self.loc_flags[l as usize] & (SHOW_FROM | HIDDEN) == SHOW_FROM)?;
            top = i + 1;
        }
        if !self.tagfocus.iter().all(|t| self.tag_matches(t, s))
            || self.tagignore.iter().any(|t| self.tag_matches(t, s))
        {
            return None;
        }
        if stack[..top]
            .iter()
            .all(|&l| self.loc_flags[l as usize] & HIDDEN != 0)
        {
            return None;
        }
        Some(top)
    }

    /// The visible locations of sample `s` up to `top` (from [`View::keep`]),
    /// root first.
    pub(crate) fn locations(&self, s: usize, top: usize) -> impl Iterator<Item = u32> + '_ {
        self.model.sample_stack(s)[..top]
            .iter()
            .rev()
            .copied()
            .filter(|&l| self.loc_flags[l as usize] & HIDDEN == 0)
    }

    /// Whether location `l` is hidden (`hide`, `show`): it has no frames in
    /// [`View::locations`].
    pub(crate) fn is_hidden(&self, l: u32) -> bool {
        self.loc_flags[l as usize] & HIDDEN != 0
    }

    /// Where location `l`'s frames are in [`View::all_location_frames`].
    pub(crate) fn location_frame_range(&self, l: u32) -> std::ops::Range<usize> {
        self.loc_off[l as usize] as usize..self.loc_off[l as usize + 1] as usize
    }

    /// Every location's frames, concatenated.
    pub(crate) fn all_location_frames(&self) -> &[u32] {
        &self.loc_frames
    }

    /// Sample `s`'s value of the view's sample type (negated for a base).
    pub(crate) fn value(&self, s: usize) -> i64 {
        let n_types = self.model.sample_types().len();
        self.model.values[s * n_types + self.value_index].wrapping_mul(self.sign)
    }

    /// Calls `f(frames, inlined, value)` for every sample that passes the
    /// filters: `frames` root first, `inlined[i]` whether `frames[i]` is an
    /// inlined line (not its location's outermost one). Samples are visited
    /// in order; zero values are passed too.
    pub fn for_each_sample(&self, mut f: impl FnMut(&[u32], &[bool], i64)) {
        let mut frames: Vec<u32> = Vec::with_capacity(256);
        let mut inlined: Vec<bool> = Vec::with_capacity(256);
        for s in 0..self.model.sample_count() {
            let Some(top) = self.keep(s) else { continue };
            frames.clear();
            inlined.clear();
            for l in self.locations(s, top) {
                let (a, b) = (
                    self.loc_off[l as usize] as usize,
                    self.loc_off[l as usize + 1] as usize,
                );
                frames.extend_from_slice(&self.loc_frames[a..b]);
                inlined.extend_from_slice(&self.loc_inlined[a..b]);
            }
            f(&frames, &inlined, self.value(s));
        }
    }
}

fn model_string_id(model: &Model, s: &str) -> Option<StrId> {
    (0..u32::MAX)
        .take_while(|&i| (i as usize) < model.string_count())
        .find(|&i| model.string(i) == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_is_gos() {
        assert_eq!(clean_path("/a/./b/../c//d"), "/a/c/d");
        assert_eq!(clean_path("a/../../b"), "../b");
        assert_eq!(clean_path("/.."), "/");
        assert_eq!(clean_path("./"), ".");
    }

    #[test]
    fn packages_for_colours() {
        assert_eq!(package_of("net/http.(*conn).serve"), "net/http");
        assert_eq!(
            package_of("github.com/prometheus/prometheus/promql.(*evaluator).eval"),
            "github.com/prometheus/prometheus/promql"
        );
        assert_eq!(package_of("main.main"), "main");
        assert_eq!(package_of("tokio::runtime::park"), "tokio::runtime");
        assert_eq!(package_of("malloc"), "");
    }
}
