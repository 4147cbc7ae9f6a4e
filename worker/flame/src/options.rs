//! [`Options`]: pprof's refinements, with pprof's names and meanings.
//!
//! - `focus` / `ignore` keep or drop whole samples: a sample is kept when
//!   at least one of its locations matches `focus` (function name or file
//!   name of any of its lines, or the mapping's file) and none matches
//!   `ignore`. A sample with an empty stack never passes (pprof's rule).
//! - `hide` / `show` remove frames: lines whose function or file matches
//!   `hide` (or does not match `show`) are removed; a location left with no
//!   line is removed from the stacks; a sample left with no location is
//!   dropped.
//! - `show_from` drops the frames above the root-most matching one.
//! - `tagfocus` / `tagignore` keep or drop samples by label: `key=regex`
//!   (several regexes separated by `,`: any matches), or without a key,
//!   every regex must match some `key:value`; a value that looks like a
//!   range (`32kb`, `:64kb`, `4mb:`, `12kb:64mb`) compares numeric labels
//!   in their units instead.
//! - `granularity` decides what a frame is: a function, a function in a
//!   file, a source line, or an address.

use regex::Regex;

use crate::FlameError;
use crate::model::SampleIndex;
use crate::units::scale;

/// What one frame (one node of a tree or one row of a top table) stands for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Granularity {
    /// A function (pprof's default).
    #[default]
    Functions,
    /// A function in a source file.
    Filefunctions,
    /// A source file.
    Files,
    /// A source line.
    Lines,
    /// An instruction address (with its inlined lines).
    Addresses,
}

impl std::str::FromStr for Granularity {
    type Err = FlameError;
    fn from_str(s: &str) -> Result<Self, FlameError> {
        Ok(match s {
            "functions" => Granularity::Functions,
            "filefunctions" => Granularity::Filefunctions,
            "files" => Granularity::Files,
            "lines" => Granularity::Lines,
            "addresses" => Granularity::Addresses,
            _ => {
                return Err(FlameError::Option(format!(
                    "unknown granularity {s:?} (functions, filefunctions, files, lines, addresses)"
                )));
            }
        })
    }
}

/// A tag filter: pprof's `-tagfocus`/`-tagignore` value, parsed.
#[derive(Clone, Debug)]
pub struct TagFilter {
    /// The label key, or `None` to match `key:value` of every string label.
    pub key: Option<String>,
    /// What to match.
    pub matcher: TagMatcher,
    /// The text it was parsed from (for the `Active filters:` header).
    pub source: String,
}

/// How a [`TagFilter`] matches values.
#[derive(Clone, Debug)]
pub enum TagMatcher {
    /// String values: any (with a key) or every (without) regex matches.
    Regexes(Vec<Regex>),
    /// Numeric values in a range of a unit (inclusive; `None` = open).
    Range {
        /// Lower bound, in `unit`.
        min: Option<f64>,
        /// Upper bound, in `unit`.
        max: Option<f64>,
        /// The unit both bounds are in (pprof's canonical name, e.g. `kB`).
        unit: String,
    },
}

impl TagFilter {
    /// Parses pprof's syntax, `[key=]regex[,regex...]` or `[key=]range`.
    pub fn parse(s: &str) -> Result<TagFilter, FlameError> {
        let (key, value) = match s.split_once('=') {
            Some((k, v)) => (Some(k.to_string()), v),
            None => (None, s),
        };
        let matcher = match parse_range(value) {
            Some(r) => r,
            None => {
                let mut rx = Vec::new();
                for part in value.split(',') {
                    rx.push(Regex::new(part).map_err(|e| FlameError::Regex {
                        option: "tagfilter",
                        source: Box::new(e),
                    })?);
                }
                TagMatcher::Regexes(rx)
            }
        };
        Ok(TagFilter {
            key,
            matcher,
            source: s.to_string(),
        })
    }
}

/// pprof's `parseTagFilterRange`: `32kb`, `:64kb`, `4mb:`, `12kb:64mb`.
fn parse_range(filter: &str) -> Option<TagMatcher> {
    // Go: ([+-]?[[:digit:]]+)([[:alpha:]]+)?, the first two matches.
    let rx = Regex::new(r"([+-]?[0-9]+)([A-Za-z]+)?").ok()?;
    let caps: Vec<regex::Captures> = rx.captures_iter(filter).take(2).collect();
    let first = caps.first()?;
    let v: i64 = first[1].parse().ok()?;
    let u1 = first.get(2).map_or("", |m| m.as_str());
    let (scaled, unit) = scale(v, u1, u1);
    let whole = &first[0];
    if caps.len() == 1 {
        let (min, max) = if filter == whole {
            (Some(scaled), Some(scaled))
        } else if filter == format!("{whole}:") {
            (Some(scaled), None)
        } else if filter == format!(":{whole}") {
            (None, Some(scaled))
        } else {
            return None;
        };
        return Some(TagMatcher::Range { min, max, unit });
    }
    let second = &caps[1];
    if filter != format!("{whole}:{}", &second[0]) {
        return None;
    }
    let v2: i64 = second[1].parse().ok()?;
    let (scaled2, unit2) = scale(v2, second.get(2).map_or("", |m| m.as_str()), &unit);
    if unit != unit2 {
        return None;
    }
    Some(TagMatcher::Range {
        min: Some(scaled),
        max: Some(scaled2),
        unit,
    })
}

/// The refinements of a view (see the module docs). `Default` is pprof's
/// default: the default sample type, functions, no filter.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `-sample_index`: `None` for the default sample type.
    pub sample_index: Option<SampleIndex>,
    /// `-granularity`.
    pub granularity: Granularity,
    /// `-focus`.
    pub focus: Option<Regex>,
    /// `-ignore`.
    pub ignore: Option<Regex>,
    /// `-hide`.
    pub hide: Option<Regex>,
    /// `-show`.
    pub show: Option<Regex>,
    /// `-show_from`.
    pub show_from: Option<Regex>,
    /// `-tagfocus` (every filter must pass).
    pub tagfocus: Vec<TagFilter>,
    /// `-tagignore` (a sample any filter matches is dropped).
    pub tagignore: Vec<TagFilter>,
}

/// Refinements as a user types them (the app's fields): regexes and tag
/// filters as text, an empty string meaning off. [`Options::from_text`]
/// compiles them.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextOptions<'a> {
    /// `functions` (or empty), `filefunctions`, `files`, `lines`, `addresses`.
    pub granularity: &'a str,
    /// `-focus`.
    pub focus: &'a str,
    /// `-ignore`.
    pub ignore: &'a str,
    /// `-hide`.
    pub hide: &'a str,
    /// `-show`.
    pub show: &'a str,
    /// `-show_from`.
    pub show_from: &'a str,
    /// `-tagfocus`.
    pub tagfocus: &'a str,
    /// `-tagignore`.
    pub tagignore: &'a str,
}

impl Options {
    /// Compiles `t` for the sample type `sample_index`; an error names the
    /// option (`parsing focus regexp: …`).
    pub fn from_text(
        sample_index: Option<SampleIndex>,
        t: &TextOptions<'_>,
    ) -> Result<Options, FlameError> {
        let re = |option: &'static str, text: &str| -> Result<Option<Regex>, FlameError> {
            if text.is_empty() {
                return Ok(None);
            }
            Regex::new(text).map(Some).map_err(|e| FlameError::Regex {
                option,
                source: Box::new(e),
            })
        };
        let tags = |option: &str, text: &str| -> Result<Vec<TagFilter>, FlameError> {
            if text.is_empty() {
                return Ok(Vec::new());
            }
            TagFilter::parse(text)
                .map(|f| vec![f])
                .map_err(|e| FlameError::Option(format!("{option} {text:?}: {e}")))
        };
        Ok(Options {
            sample_index,
            granularity: if t.granularity.is_empty() {
                Granularity::default()
            } else {
                t.granularity.parse()?
            },
            focus: re("focus", t.focus)?,
            ignore: re("ignore", t.ignore)?,
            hide: re("hide", t.hide)?,
            show: re("show", t.show)?,
            show_from: re("show_from", t.show_from)?,
            tagfocus: tags("tagfocus", t.tagfocus)?,
            tagignore: tags("tagignore", t.tagignore)?,
        })
    }

    /// pprof's `Active filters:` entries, `name=value`, in pprof's order.
    pub fn active_filters(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut add = |k: &str, v: Option<&Regex>| {
            if let Some(r) = v {
                out.push(format!("{k}={}", r.as_str()));
            }
        };
        add("focus", self.focus.as_ref());
        add("ignore", self.ignore.as_ref());
        add("hide", self.hide.as_ref());
        add("show", self.show.as_ref());
        add("show_from", self.show_from.as_ref());
        if !self.tagfocus.is_empty() {
            out.push(format!("tagfocus={}", join_sources(&self.tagfocus)));
        }
        if !self.tagignore.is_empty() {
            out.push(format!("tagignore={}", join_sources(&self.tagignore)));
        }
        out
    }
}

fn join_sources(f: &[TagFilter]) -> String {
    f.iter()
        .map(|t| t.source.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether a numeric value with unit `u` lies in the range (pprof converts
/// the value to the range's unit and requires the same canonical unit).
pub(crate) fn in_range(v: i64, u: &str, min: Option<f64>, max: Option<f64>, unit: &str) -> bool {
    let (sv, su) = scale(v, u, unit);
    su == unit && min.is_none_or(|m| sv >= m) && max.is_none_or(|m| sv <= m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_ranges_parse_like_pprof() {
        let TagMatcher::Range { min, max, unit } =
            TagFilter::parse("bytes=12kb:64mb").unwrap().matcher
        else {
            panic!("not a range")
        };
        assert_eq!((min, max, unit.as_str()), (Some(12.0), Some(65536.0), "kB"));
        assert!(in_range(16384, "bytes", min, max, "kB"));
        assert!(!in_range(1024, "bytes", min, max, "kB"));
        assert!(matches!(
            TagFilter::parse("handler=api.*").unwrap().matcher,
            TagMatcher::Regexes(_)
        ));
        // "32kb," is not a whole range: a regex.
        assert!(matches!(
            TagFilter::parse("32kb,").unwrap().matcher,
            TagMatcher::Regexes(_)
        ));
        let TagMatcher::Range { min, max, .. } = TagFilter::parse(":64").unwrap().matcher else {
            panic!()
        };
        assert_eq!((min, max), (None, Some(64.0)));
    }
}
