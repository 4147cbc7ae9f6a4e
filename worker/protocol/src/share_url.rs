//! The share URL: view state in the URL fragment, so a link reopens the same
//! view: `#q=<selector>&range=<minutes>m`, then the profile view's keys,
//! all prefixed `p.` and written only when not at their default:
//!
//! | key | value |
//! |-----|-------|
//! | `p.src` | the profile: `file:<name>` (a local file: the link names it, the user must open it again), `url:<http(s) URL>`, `id:<stored id>` (on the server the page came from), `merge:<start ms>:<end ms>:<selector>` (the server's merge of a selector over a range) |
//! | `p.base` | the diff base, same forms |
//! | `p.st` | the sample type, `type/unit` |
//! | `p.focus` `p.ignore` `p.hide` `p.show` `p.tagfocus` `p.tagignore` | pprof's refinements |
//! | `p.gran` | granularity: `filefunctions`, `files`, `lines`, `addresses` |
//! | `p.o` | `icicle` (the default is `flame`) |
//! | `p.q` | the search regex |
//! | `p.win` | the zoom window in tree units, `start,end` |
//! | `p.sw` | the function whose sandwich is shown |
//!
//! Unknown keys are ignored. A bad metrics value falls back to the default
//! instead of breaking the page; a bad profile value is dropped and named
//! in [`ViewState::problems`], which the view shows. Reading is linear in
//! the fragment's length and a fragment over [`MAX_FRAGMENT_BYTES`] is not
//! read at all, so no link can hang the page; regexes are compiled by the
//! worker, whose regex engine (RE2 semantics) has no catastrophic cases.
//!
//! It lives here, next to the messages, because it is a contract of the same
//! kind: links written by one build are read by later ones.

use crate::{FlameOrientation, FlameRefine, FlameWindow};

/// Longest fragment read; a longer one is ignored with a problem.
pub const MAX_FRAGMENT_BYTES: usize = 64 * 1024;

/// Longest single profile value (a regex, a selector, a URL).
pub const MAX_VALUE_BYTES: usize = 8 * 1024;

/// The granularities pprof offers; `functions` is the default (empty).
pub const GRANULARITIES: [&str; 5] = ["functions", "filefunctions", "files", "lines", "addresses"];

/// The state a share URL carries.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewState {
    /// Series selector.
    pub selector: String,
    /// Range length in minutes.
    pub range_minutes: u32,
    /// The profile view.
    pub profile: ProfileState,
    /// What could not be read from the fragment, one message each (never
    /// written back).
    pub problems: Vec<String>,
}

/// Where a profile comes from, as a link can name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileSource {
    /// A file the user opened: it cannot be re-opened from a link.
    File {
        /// The file's name.
        name: String,
    },
    /// An `http(s)` URL.
    Url {
        /// The URL.
        url: String,
    },
    /// A profile stored by the Emberlens server the page came from.
    Stored {
        /// Its id.
        id: String,
    },
    /// The server's merge of the profiles matching a selector over a range.
    Merge {
        /// The selector (empty: all).
        selector: String,
        /// Range start, Unix milliseconds.
        start_ms: i64,
        /// Range end, Unix milliseconds.
        end_ms: i64,
    },
}

impl ProfileSource {
    /// The link's text of this source (the value of `p.src` / `p.base`).
    pub fn to_value(&self) -> String {
        match self {
            ProfileSource::File { name } => format!("file:{name}"),
            ProfileSource::Url { url } => format!("url:{url}"),
            ProfileSource::Stored { id } => format!("id:{id}"),
            ProfileSource::Merge {
                selector,
                start_ms,
                end_ms,
            } => format!("merge:{start_ms}:{end_ms}:{selector}"),
        }
    }

    /// Reads a `p.src` / `p.base` value.
    pub fn from_value(v: &str) -> Result<ProfileSource, String> {
        let (kind, rest) = v.split_once(':').ok_or_else(|| {
            format!("profile source {v:?} has no kind (file:, url:, id:, merge:)")
        })?;
        match kind {
            "file" if !rest.is_empty() => Ok(ProfileSource::File {
                name: rest.to_string(),
            }),
            "url" if rest.starts_with("http://") || rest.starts_with("https://") => {
                Ok(ProfileSource::Url {
                    url: rest.to_string(),
                })
            }
            "url" => Err(format!("profile URL {rest:?} is not http(s)")),
            "id" if !rest.is_empty()
                && rest.len() <= 64
                && rest.bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                Ok(ProfileSource::Stored {
                    id: rest.to_string(),
                })
            }
            "id" => Err(format!("stored profile id {rest:?} is not an id")),
            "merge" => {
                let mut parts = rest.splitn(3, ':');
                let start = parts.next().and_then(|p| p.parse::<i64>().ok());
                let end = parts.next().and_then(|p| p.parse::<i64>().ok());
                let selector = parts.next();
                match (start, end, selector) {
                    (Some(start_ms), Some(end_ms), Some(sel)) if start_ms <= end_ms => {
                        Ok(ProfileSource::Merge {
                            selector: sel.to_string(),
                            start_ms,
                            end_ms,
                        })
                    }
                    _ => Err(format!(
                        "profile merge {rest:?} is not <start ms>:<end ms>:<selector> with start <= end"
                    )),
                }
            }
            _ => Err(format!("unknown profile source {v:?}")),
        }
    }

    /// A short title: the file name, the URL's last segment, the id, the selector.
    pub fn title(&self) -> String {
        match self {
            ProfileSource::File { name } => name.clone(),
            ProfileSource::Url { url } => url
                .rsplit('/')
                .find(|s| !s.is_empty())
                .unwrap_or(url)
                .to_string(),
            ProfileSource::Stored { id } => format!("stored profile {id}"),
            ProfileSource::Merge { selector, .. } if selector.is_empty() => {
                "merge of all stored profiles".into()
            }
            ProfileSource::Merge { selector, .. } => format!("merge of {selector}"),
        }
    }

    /// The URL to fetch it from, relative to `origin` (the server's, no
    /// trailing slash); `None` for a local file.
    pub fn fetch_url(&self, origin: &str) -> Option<String> {
        match self {
            ProfileSource::File { .. } => None,
            ProfileSource::Url { url } => Some(url.clone()),
            ProfileSource::Stored { id } => Some(format!("{origin}/api/v1/profiles/{id}")),
            ProfileSource::Merge {
                selector,
                start_ms,
                end_ms,
            } => {
                let mut q = format!(
                    "{origin}/api/v1/profiles/merge?start={}&end={}",
                    secs(*start_ms),
                    secs(*end_ms)
                );
                if !selector.is_empty() {
                    q.push_str("&match[]=");
                    q.push_str(&encode(selector));
                }
                Some(q)
            }
        }
    }
}

/// Unix milliseconds as the API's seconds with a fraction (`12.345`).
fn secs(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let a = ms.unsigned_abs();
    format!("{sign}{}.{:03}", a / 1000, a % 1000)
}

/// The profile view's part of a share URL (see the module docs).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProfileState {
    /// The profile.
    pub source: Option<ProfileSource>,
    /// The diff base.
    pub base: Option<ProfileSource>,
    /// The sample type, `type/unit`; `None` for the profile's default.
    pub sample_type: Option<String>,
    /// pprof's refinements and granularity.
    pub refine: FlameRefine,
    /// Root at the bottom or the top.
    pub orientation: FlameOrientation,
    /// The search regex.
    pub search: String,
    /// The zoom window, tree units.
    pub window: Option<FlameWindow>,
    /// The function whose sandwich is shown.
    pub sandwich: Option<String>,
}

impl ProfileState {
    /// The `p.*` pairs of this state (defaults left out).
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut text = |k: &'static str, v: &str| {
            if !v.is_empty() {
                out.push((k, v.to_string()));
            }
        };
        text(
            "p.src",
            &self
                .source
                .as_ref()
                .map(|s| s.to_value())
                .unwrap_or_default(),
        );
        text(
            "p.base",
            &self.base.as_ref().map(|s| s.to_value()).unwrap_or_default(),
        );
        text("p.st", self.sample_type.as_deref().unwrap_or(""));
        let r = &self.refine;
        text("p.focus", &r.focus);
        text("p.ignore", &r.ignore);
        text("p.hide", &r.hide);
        text("p.show", &r.show);
        text("p.tagfocus", &r.tagfocus);
        text("p.tagignore", &r.tagignore);
        text(
            "p.gran",
            if r.granularity == "functions" {
                ""
            } else {
                &r.granularity
            },
        );
        if self.orientation == FlameOrientation::Icicle {
            text("p.o", "icicle");
        }
        text("p.q", &self.search);
        if let Some(w) = self.window {
            text("p.win", &format!("{},{}", w.start, w.end));
        }
        text("p.sw", self.sandwich.as_deref().unwrap_or(""));
        out
    }

    /// Applies one `p.*` pair; `Err` names what was wrong with it.
    fn apply(&mut self, key: &str, v: String) -> Result<(), String> {
        if v.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "{key} is {} bytes long, more than {MAX_VALUE_BYTES}",
                v.len()
            ));
        }
        let r = &mut self.refine;
        match key {
            "p.src" => self.source = Some(ProfileSource::from_value(&v)?),
            "p.base" => self.base = Some(ProfileSource::from_value(&v)?),
            "p.st" => self.sample_type = Some(v).filter(|v| !v.is_empty()),
            "p.focus" => r.focus = v,
            "p.ignore" => r.ignore = v,
            "p.hide" => r.hide = v,
            "p.show" => r.show = v,
            "p.tagfocus" => r.tagfocus = v,
            "p.tagignore" => r.tagignore = v,
            "p.gran" if GRANULARITIES.contains(&v.as_str()) => {
                r.granularity = if v == "functions" { String::new() } else { v }
            }
            "p.gran" => return Err(format!("unknown granularity {v:?}")),
            "p.o" => {
                self.orientation = match v.as_str() {
                    "flame" => FlameOrientation::Flame,
                    "icicle" => FlameOrientation::Icicle,
                    _ => return Err(format!("unknown orientation {v:?} (flame or icicle)")),
                }
            }
            "p.q" => self.search = v,
            "p.win" => {
                let w = v.split_once(',').and_then(|(a, b)| {
                    let (start, end) =
                        (a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?);
                    (start.is_finite() && end.is_finite() && 0.0 <= start && start < end)
                        .then_some(FlameWindow { start, end })
                });
                self.window = Some(w.ok_or_else(|| {
                    format!("zoom window {v:?} is not start,end with 0 <= start < end")
                })?);
            }
            "p.sw" => self.sandwich = Some(v).filter(|v| !v.is_empty()),
            _ => {}
        }
        Ok(())
    }
}

/// The ranges the picker offers, in minutes.
pub const RANGES_MINUTES: [u32; 5] = [5, 15, 60, 180, 360];

impl Default for ViewState {
    fn default() -> Self {
        ViewState {
            selector: "process_resident_memory_bytes".to_string(),
            range_minutes: 15,
            profile: ProfileState::default(),
            problems: Vec::new(),
        }
    }
}

impl ViewState {
    /// Reads a fragment (with or without the leading `#`).
    pub fn from_fragment(fragment: &str) -> Self {
        let mut state = ViewState::default();
        let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
        if fragment.len() > MAX_FRAGMENT_BYTES {
            state.problems.push(format!(
                "the link's view state is {} bytes, more than {MAX_FRAGMENT_BYTES}: ignored",
                fragment.len()
            ));
            return state;
        }
        for (k, v) in form_pairs(fragment) {
            match k.as_str() {
                p if p.starts_with("p.") => {
                    if let Err(e) = state.profile.apply(p, v) {
                        state.problems.push(format!("link: {e}"));
                    }
                }
                "q" if !v.trim().is_empty() => state.selector = v,
                "range" => {
                    if let Some(m) = v.strip_suffix('m').and_then(|m| m.parse().ok())
                        && RANGES_MINUTES.contains(&m)
                    {
                        state.range_minutes = m;
                    }
                }
                _ => {}
            }
        }
        state
    }

    /// The fragment for this state, starting with `#`.
    pub fn to_fragment(&self) -> String {
        let mut out = format!(
            "#q={}&range={}m",
            encode(&self.selector),
            self.range_minutes
        );
        for (k, v) in self.profile.pairs() {
            out.push('&');
            out.push_str(k);
            out.push('=');
            out.push_str(&encode(&v));
        }
        out
    }
}

fn form_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-decodes; malformed escapes are kept as written, invalid UTF-8 is replaced.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_garbage() {
        let s = ViewState {
            selector: r#"up{job="a b",x=~".+"}"#.into(),
            range_minutes: 60,
            ..ViewState::default()
        };
        assert_eq!(ViewState::from_fragment(&s.to_fragment()), s);
        assert_eq!(
            ViewState::from_fragment("#range=7m&q=&%zz"),
            ViewState::default()
        );
        assert_eq!(
            ViewState::from_fragment("q=%"),
            ViewState {
                selector: "%".into(),
                ..ViewState::default()
            }
        );
    }

    fn full_profile() -> ProfileState {
        ProfileState {
            source: Some(ProfileSource::Merge {
                selector: r#"{__name__="process_cpu", job="a&b=c"}"#.into(),
                start_ms: 1_700_000_000_123,
                end_ms: 1_700_000_900_000,
            }),
            base: Some(ProfileSource::Url {
                url: "https://h/x.pb.gz?a=1&b=%20".into(),
            }),
            sample_type: Some("cpu/nanoseconds".into()),
            refine: FlameRefine {
                focus: "main\\.(funcA|funcB)".into(),
                ignore: "runtime\\.".into(),
                hide: "#+%".into(),
                show: "é ✓".into(),
                tagfocus: "bytes=1kb:".into(),
                tagignore: "handler=/api".into(),
                granularity: "lines".into(),
            },
            orientation: FlameOrientation::Icicle,
            search: "^main\\.".into(),
            window: Some(FlameWindow {
                start: 0.1 + 0.2,
                end: 8036000000.0,
            }),
            sandwich: Some("main.funcB".into()),
        }
    }

    #[test]
    fn profile_state_round_trips() {
        let s = ViewState {
            profile: full_profile(),
            ..ViewState::default()
        };
        let f = s.to_fragment();
        assert_eq!(ViewState::from_fragment(&f), s, "{f}");
        for src in [
            ProfileSource::File {
                name: "cpu (1).pb.gz".into(),
            },
            ProfileSource::Stored {
                id: "01HXYZABC".into(),
            },
            ProfileSource::Merge {
                selector: String::new(),
                start_ms: -5,
                end_ms: 0,
            },
        ] {
            let s = ViewState {
                profile: ProfileState {
                    source: Some(src),
                    ..ProfileState::default()
                },
                ..ViewState::default()
            };
            assert_eq!(ViewState::from_fragment(&s.to_fragment()), s);
        }
        // The defaults write nothing: the metrics-only link is unchanged.
        assert_eq!(
            ViewState::default().to_fragment(),
            "#q=process_resident_memory_bytes&range=15m"
        );
    }

    /// Each hostile value is dropped with a problem naming it; the rest of
    /// the link still applies.
    #[test]
    fn hostile_profile_values_are_named_and_dropped() {
        let check = |frag: &str, problem: &str| {
            let s = ViewState::from_fragment(&format!("#p.q=kept&{frag}"));
            assert_eq!(s.profile.search, "kept", "{frag}");
            assert_eq!(s.problems.len(), 1, "{frag}: {:?}", s.problems);
            assert!(s.problems[0].contains(problem), "{frag}: {:?}", s.problems);
        };
        check("p.src=javascript:alert(1)", "unknown profile source");
        check("p.src=url:javascript:alert(1)", "not http(s)");
        check("p.src=url:file:///etc/passwd", "not http(s)");
        check("p.src=nokind", "has no kind");
        check("p.src=id:../../etc", "not an id");
        check("p.base=merge:9:1:up", "start <= end");
        check("p.src=merge:x:1:up", "merge");
        check("p.win=10,5", "zoom window");
        check("p.win=NaN,5", "zoom window");
        check("p.win=-1,inf", "zoom window");
        check("p.win=1", "zoom window");
        check("p.o=sideways", "orientation");
        check("p.gran=%00", "granularity");
        check(
            &format!("p.focus={}", "a".repeat(MAX_VALUE_BYTES + 1)),
            "bytes long",
        );
        // Broken escapes and invalid UTF-8 decode to text, never panic.
        let s = ViewState::from_fragment("#p.q=%ff%fe%&p.sw=%e2%82&p.st=%");
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        assert_eq!(s.profile.search, "\u{fffd}\u{fffd}%");
        // A huge fragment is not read at all.
        let huge = format!("#p.q=x&{}", "a=b&".repeat(MAX_FRAGMENT_BYTES / 4));
        let s = ViewState::from_fragment(&huge);
        assert_eq!(s.profile, ProfileState::default());
        assert!(s.problems[0].contains("ignored"), "{:?}", s.problems);
    }

    #[test]
    fn sources_fetch_from_the_server_or_their_url() {
        let m = ProfileSource::Merge {
            selector: r#"{job="a b"}"#.into(),
            start_ms: 1_500,
            end_ms: 61_000,
        };
        assert_eq!(
            m.fetch_url("http://h:1").as_deref(),
            Some(
                "http://h:1/api/v1/profiles/merge?start=1.500&end=61.000&match[]=%7Bjob%3D%22a%20b%22%7D"
            )
        );
        assert_eq!(
            ProfileSource::Stored { id: "01H".into() }
                .fetch_url("http://h")
                .as_deref(),
            Some("http://h/api/v1/profiles/01H")
        );
        assert_eq!(
            ProfileSource::File { name: "a".into() }.fetch_url("http://h"),
            None
        );
    }
}
