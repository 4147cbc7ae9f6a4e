//! Parses Prometheus's `promqltest` files (`load`, `clear`, `eval`, `expect`)
//! into [`Script`]: a list of commands a runner executes in order. Only
//! parsing happens here; the PromQL expression of an `eval` stays a string,
//! with the line and column where it starts, so the runner can map PromQL
//! parse errors and annotation positions back into the file.
//!
//! The language is defined by upstream's `promql/promqltest/test.go`; this
//! parser follows it line for line where that matters:
//! - Lines are trimmed; a line starting with `#` is blank; a blank line ends
//!   a command's block. The command word is matched case-insensitively
//!   (`CLEAR`), but the rest of a `load`/`eval` line is matched with the same
//!   case-sensitive patterns as upstream, so `LOAD 5m` is an error there and
//!   here. `clear` ignores anything after the word, as upstream.
//! - Durations (`load` step, `at`, `from`/`to`/`step`) are Prometheus
//!   durations: `0`, `5m`, `1h30m`, no sign, no fractions.
//! - Lines and columns are 1-based; columns count bytes of the raw line,
//!   indentation included.
//! - A bare number line ends the `eval` block (upstream stops reading there),
//!   as do the deprecated `expected_fail_message`/`expected_fail_regexp`; any
//!   further non-blank line is read as a new command, which is usually an
//!   "invalid command" error, as upstream.
//!
//! Upstream details that shape the data (see the types for each):
//! - Deprecated forms map onto [`Expect`]: `eval_fail` is `expect fail`,
//!   `eval_warn` is `expect warn`, `eval_info` is `expect info`,
//!   `eval_ordered` is `expect ordered`; `expected_fail_message <s>` /
//!   `expected_fail_regexp <re>` give that `eval_fail` expectation its
//!   message. They are equivalent: upstream's `eval_warn` means "at least one
//!   warning", which is exactly an `expect warn` without a message.
//! - A `load` line `metric{..}@st <seq>` gives start timestamps for the next
//!   sample line (same labels, same number of positions); a bare `@st <seq>`
//!   line is a default for the following lines of that `load`, cycled over
//!   their positions. Both resolve into [`LoadSeries::start_timestamps`].
//!
//! Stricter than upstream, where upstream would accept a file whose test then
//! cannot pass or silently drops a line: the same series twice in one
//! `eval`'s expected results (in a `load`, the later line wins, as upstream:
//! the corpus relies on it); an
//! expected series with no values; a scalar, string, series or range-vector
//! expectation mixed with another kind; `expect range vector` after a range
//! `eval` (upstream would silently re-time the range query); `eval_warn`
//! with `expect no_warn` (and likewise for info), which upstream accepts and
//! then always fails. Upstream also rejects an `eval` whose expression does
//! not parse as PromQL while reading the file, even with `expect fail`; this
//! parser cannot check that, so a runner should treat an expression parse
//! error as a script error.

mod golit;
mod series;

use std::collections::HashMap;
use std::sync::LazyLock;

use emberlens_model::{FloatHistogram, Labels, parse_duration_ms};
use regex::Regex;

use self::series::{DescError, MAX_VALUES, SeqValue, parse_series_desc};

/// A parsed test file: its commands in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct Script {
    /// The commands, in the order they run.
    pub commands: Vec<Command>,
}

/// One command of a test file.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// `load <step>` or `load_with_nhcb <step>` and its series lines.
    Load(Load),
    /// `clear`: drop everything loaded so far.
    Clear {
        /// 1-based line of the `clear`.
        line: usize,
    },
    /// `eval instant …` or `eval range …` with its expectations.
    Eval(Eval),
}

/// `load <step>`: series whose value *i* is at `i * step_ms` (Unix 0 first).
///
/// Loads add to what is stored; they replace nothing. With `with_nhcb`
/// (`load_with_nhcb`), the runner also converts classic-histogram series
/// (`_bucket` with `le`, `_count`, `_sum`) into native histograms with
/// custom buckets and loads both.
#[derive(Clone, Debug, PartialEq)]
pub struct Load {
    /// 1-based line of the `load` word.
    pub line: usize,
    /// Interval between consecutive values, in milliseconds.
    pub step_ms: i64,
    /// `load_with_nhcb`.
    pub with_nhcb: bool,
    /// The series lines, in file order; no two have the same labels (a
    /// later line for the same labels replaces the earlier one in place, as
    /// upstream).
    pub series: Vec<LoadSeries>,
}

/// One series line of a `load`.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadSeries {
    /// 1-based line of the series.
    pub line: usize,
    /// The series' labels.
    pub labels: Labels,
    /// `(timestamp_ms, value)` for every position that is not `_`, in time
    /// order. `stale` is [`TestValue::Float`] of
    /// [`emberlens_model::stale_nan`].
    pub samples: Vec<(i64, TestValue)>,
    /// Start timestamps (absolute, in ms), one per entry of `samples`, from
    /// an `@st` line for this series or from a bare `@st` default line
    /// earlier in the same `load`; `None` inside the vector where the `@st`
    /// sequence has `_`. `None` when no `@st` applies. As upstream, the
    /// start timestamp is the sample's timestamp plus the `@st` offset, and
    /// an `@st` offset is given for every position, `_` samples included
    /// (those entries are dropped with the samples). Upstream's appender
    /// treats a start timestamp of 0 as unknown; that is left to the runner.
    pub start_timestamps: Option<Vec<Option<i64>>>,
}

/// A sample value in a `load` or an expected result.
#[derive(Clone, Debug, PartialEq)]
pub enum TestValue {
    /// A float; `stale` is [`emberlens_model::stale_nan`].
    Float(f64),
    /// A native histogram from a `{{...}}` literal or its expansion.
    Histogram(FloatHistogram),
}

/// `eval instant at …` or `eval range from … to … step …`, with the lines
/// that follow it.
#[derive(Clone, Debug, PartialEq)]
pub struct Eval {
    /// 1-based line of the `eval`.
    pub line: usize,
    /// The PromQL expression, exactly as written (not parsed here).
    pub expr: String,
    /// 1-based byte column in the raw line where `expr` starts.
    pub expr_column: usize,
    /// When to evaluate.
    pub query: EvalQuery,
    /// Expectations on errors, annotations and ordering, in file order,
    /// deprecated forms included (see the module docs). At most one `Fail`
    /// comes from an `expect fail` line; `eval_fail` may add another, and
    /// then both must match the error, as upstream. No `Expect` at all means
    /// the query must succeed and annotations are not checked.
    pub expects: Vec<Expect>,
    /// What the query must return when it succeeds.
    pub result: ExpectedResult,
}

/// The time parameters of an `eval`, in ms since Unix 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalQuery {
    /// `eval instant at <at>`.
    Instant {
        /// Evaluation time.
        at_ms: i64,
    },
    /// `eval range from <start> to <end> step <step>`; `end_ms >= start_ms`.
    Range {
        /// First step.
        start_ms: i64,
        /// Last possible step.
        end_ms: i64,
        /// Step width (0 is accepted here; the engine rejects it).
        step_ms: i64,
    },
}

/// One expectation line (`expect <kind> [msg|regex: <s>]`) or a deprecated
/// equivalent.
#[derive(Clone, Debug, PartialEq)]
pub struct Expect {
    /// 1-based line it came from (the `eval` line for `eval_fail` and
    /// friends, the `expected_fail_*` line once that gave a message).
    pub line: usize,
    /// What is expected.
    pub kind: ExpectKind,
    /// How the error or annotation message must look; `None` matches any.
    /// Upstream accepts (and ignores) a message on `ordered`, `no_warn` and
    /// `no_info`; so does this parser.
    pub message: Option<MessageMatch>,
}

/// The kinds of `expect` lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpectKind {
    /// The query must fail, with an error matching the message if given.
    Fail,
    /// At least one warning annotation must match; once any `Warn` is given,
    /// every warning must be matched by one.
    Warn,
    /// As `Warn`, for info annotations.
    Info,
    /// No warning annotation at all.
    NoWarn,
    /// No info annotation at all.
    NoInfo,
    /// An instant vector must come back in the order of the expected series.
    Ordered,
}

/// How an expected message is matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageMatch {
    /// `msg: <s>`: the whole message equals the trimmed text (quotes, if
    /// written, are part of it).
    Exact(String),
    /// `regex: <re>`: the regex (RE2 syntax, checked to compile) matches
    /// somewhere in the message, unanchored.
    Regex(String),
}

/// The expected result of an `eval`.
#[derive(Clone, Debug, PartialEq)]
pub enum ExpectedResult {
    /// Expected series: for an instant `eval` one value each (compared as a
    /// set unless `expect ordered`, then in this order), for a range `eval`
    /// one value per step from the start (missing trailing steps mean no
    /// samples there). Empty: the result must be an empty vector or matrix;
    /// as upstream, a string result equal to `""` also passes.
    Series(Vec<ExpectedSeries>),
    /// A bare number line: the query returns this scalar.
    Scalar(f64),
    /// `expect string "<s>"`: the query returns this string.
    String(String),
    /// `expect range vector from <s> to <e> step <st>`: an instant query
    /// returning a range vector (matrix) whose values sit at `start_ms`,
    /// `start_ms + step_ms`, …; upstream evaluates such a query at `end_ms`,
    /// not at the `at` of the `eval` line.
    RangeVector {
        /// Timestamp of each series' first value.
        start_ms: i64,
        /// Last timestamp a value may have.
        end_ms: i64,
        /// Distance between values.
        step_ms: i64,
        /// The expected series, values `_` where there is no sample.
        series: Vec<ExpectedSeries>,
    },
}

/// One expected series line.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedSeries {
    /// 1-based line of the series.
    pub line: usize,
    /// The labels the result must have, exactly (`__name__` included).
    pub labels: Labels,
    /// One entry per step; `None` for `_` (no sample at that step).
    pub values: Vec<Option<TestValue>>,
    /// Parallel to `values`: whether that histogram literal spelled out
    /// `counter_reset_hint` (only then is the hint compared, as upstream;
    /// for `{{a}}+{{b}}xn` it is `b`'s). Always false for floats and `_`.
    pub counter_reset_hint_set: Vec<bool>,
}

/// Why a script did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: {reason}", column_suffix(*.column))]
pub struct ScriptError {
    /// 1-based line.
    pub line: usize,
    /// 1-based byte column in the raw line, where one is known.
    pub column: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

fn column_suffix(column: Option<usize>) -> String {
    column.map(|c| format!(":{c}")).unwrap_or_default()
}

/// Parses a whole promqltest file.
pub fn parse_script(text: &str) -> Result<Script, ScriptError> {
    let lines: Vec<Line<'_>> = text.split('\n').map(Line::new).collect();
    let mut commands = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        if l.text.is_empty() {
            i += 1;
            continue;
        }
        let word = l
            .text
            .split([' ', '\t'])
            .next()
            .unwrap_or_default()
            .to_lowercase();
        if word == "clear" {
            commands.push(Command::Clear { line: i + 1 });
        } else if word.starts_with("load") {
            let (last, load) = parse_load(&lines, i)?;
            commands.push(Command::Load(load));
            i = last;
        } else if word.starts_with("eval") {
            let (last, eval) = parse_eval(&lines, i)?;
            commands.push(Command::Eval(eval));
            i = last;
        } else {
            return Err(error(i, format!("invalid command {:?}", l.text)));
        }
        i += 1;
    }
    Ok(Script { commands })
}

/// One line of the file: raw, and trimmed (empty for comments).
struct Line<'a> {
    text: &'a str,
    /// Byte offset of `text` in the raw line.
    lead: usize,
}

impl<'a> Line<'a> {
    fn new(raw: &'a str) -> Self {
        let trimmed_start = raw.trim_start();
        let lead = raw.len() - trimmed_start.len();
        let text = trimmed_start.trim_end();
        let text = if text.starts_with('#') { "" } else { text };
        Line { text, lead }
    }

    /// 1-based column of byte `offset` of the trimmed text.
    fn column(&self, offset: usize) -> usize {
        self.lead + offset + 1
    }
}

/// An error on line index `i` (0-based).
fn error(i: usize, reason: impl Into<String>) -> ScriptError {
    ScriptError {
        line: i + 1,
        column: None,
        reason: reason.into(),
    }
}

fn error_at(lines: &[Line<'_>], i: usize, offset: usize, reason: impl Into<String>) -> ScriptError {
    ScriptError {
        line: i + 1,
        column: Some(lines[i].column(offset)),
        reason: reason.into(),
    }
}

/// Go's RE2 `\s`, which unlike the `regex` crate's is ASCII only.
macro_rules! re {
    ($pattern:literal) => {
        LazyLock::new(|| {
            Regex::new(&$pattern.replace(r"\s", r"[\t\n\f\r ]")).expect("constant regex compiles")
        })
    };
}

static LOAD_RE: LazyLock<Regex> = re!(r"^load(?:_(with_nhcb))?\s+(.+?)$");
static EVAL_INSTANT_RE: LazyLock<Regex> =
    re!(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$");
static EVAL_RANGE_RE: LazyLock<Regex> =
    re!(r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$");
static EXPECT_RE: LazyLock<Regex> =
    re!(r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$");
static EXPECT_RANGE_RE: LazyLock<Regex> =
    re!(r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$");

const RANGE_VECTOR_PREFIX: &str = "expect range vector";
const EXPECT_STRING_PREFIX: &str = "expect string";

fn duration(text: &str, what: &str) -> Result<i64, String> {
    parse_duration_ms(text).map_err(|e| format!("invalid {what} {text:?}: {e}"))
}

/// From, to and step, with `to >= from` (upstream's `parseDurations`).
fn range_durations(from: &str, to: &str, step: &str) -> Result<(i64, i64, i64), String> {
    let start = duration(from, "start timestamp definition")?;
    let end = duration(to, "end timestamp definition")?;
    if end < start {
        return Err(format!(
            "invalid test definition, end timestamp ({to}) is before start timestamp ({from})"
        ));
    }
    let step = duration(step, "step definition")?;
    Ok((start, end, step))
}

/// Parses a series description on line `i`, mapping its error position.
fn parse_series_line(lines: &[Line<'_>], i: usize) -> Result<series::SeriesDesc, ScriptError> {
    parse_series_desc(lines[i].text)
        .map_err(|DescError { offset, reason }| error_at(lines, i, offset, reason))
}

/// Start-timestamp offsets pending for the next sample line.
struct PendingSt {
    labels: Labels,
    offsets: Vec<Option<i64>>,
    line: usize,
}

/// `load` at line `i` and its block; returns the last line index consumed.
fn parse_load(lines: &[Line<'_>], mut i: usize) -> Result<(usize, Load), ScriptError> {
    let caps = LOAD_RE
        .captures(lines[i].text)
        .ok_or_else(|| error(i, "invalid load command (load[_with_nhcb] <step:duration>)"))?;
    let with_nhcb = caps.get(1).is_some();
    let step = caps.get(2).map_or("", |m| m.as_str());
    let step_ms = duration(step, "step definition").map_err(|e| error(i, e))?;
    let mut load = Load {
        line: i + 1,
        step_ms,
        with_nhcb,
        series: Vec::new(),
    };
    let mut seen: HashMap<Labels, usize> = HashMap::new();
    let mut pending: Option<PendingSt> = None;
    let mut default_st: Option<Vec<Option<i64>>> = None;
    while i + 1 < lines.len() {
        i += 1;
        let text = lines[i].text;
        if text.is_empty() {
            i -= 1;
            break;
        }
        if is_st_line(text) {
            if let Some(p) = &pending {
                return Err(error(p.line, "@st line has no following sample line"));
            }
            let (labels, offsets) = parse_st_line(lines, i)?;
            match labels {
                None => default_st = Some(offsets),
                Some(labels) => {
                    pending = Some(PendingSt {
                        labels,
                        offsets,
                        line: i,
                    });
                }
            }
            continue;
        }
        let desc = parse_series_line(lines, i)?;
        let explicit_st = match pending.take() {
            Some(p) => {
                if p.labels != desc.labels {
                    return Err(error(
                        p.line,
                        "@st metric does not match the following sample line metric",
                    ));
                }
                if p.offsets.len() != desc.values.len() {
                    return Err(error(
                        p.line,
                        format!(
                            "@st line has {} values but sample line has {}",
                            p.offsets.len(),
                            desc.values.len()
                        ),
                    ));
                }
                Some(p.offsets)
            }
            None => None,
        };
        let series = load_series(
            i,
            desc,
            step_ms,
            explicit_st.as_deref(),
            default_st.as_deref(),
        )
        .map_err(|e| error(i, e))?;
        // As upstream, a later line for the same series replaces the earlier
        // one (aggregators.test relies on it).
        match seen.get(&series.labels) {
            Some(&k) => load.series[k] = series,
            None => {
                seen.insert(series.labels.clone(), load.series.len());
                load.series.push(series);
            }
        }
    }
    if let Some(p) = pending {
        return Err(error(p.line, "@st line has no following sample line"));
    }
    Ok((i, load))
}

/// Timestamps the values of a load line and resolves its start timestamps.
fn load_series(
    i: usize,
    desc: series::SeriesDesc,
    step_ms: i64,
    explicit_st: Option<&[Option<i64>]>,
    default_st: Option<&[Option<i64>]>,
) -> Result<LoadSeries, String> {
    let mut samples = Vec::new();
    let mut starts = Vec::new();
    for (pos, v) in desc.values.into_iter().enumerate() {
        let value = match v {
            SeqValue::Omitted => continue,
            SeqValue::Float(f) => TestValue::Float(f),
            SeqValue::Histogram { histogram, .. } => TestValue::Histogram(histogram),
        };
        let ts = i64::try_from(pos)
            .ok()
            .and_then(|p| p.checked_mul(step_ms))
            .ok_or_else(|| format!("timestamp of value {pos} overflows"))?;
        let offset = match (explicit_st, default_st) {
            (Some(st), _) => st.get(pos).copied().flatten(),
            (None, Some(st)) if !st.is_empty() => st[pos % st.len()],
            _ => None,
        };
        let start = offset
            .map(|o| {
                ts.checked_add(o)
                    .ok_or_else(|| format!("start timestamp of value {pos} overflows"))
            })
            .transpose()?;
        samples.push((ts, value));
        starts.push(start);
    }
    let has_st = explicit_st.is_some() || default_st.is_some_and(|st| !st.is_empty());
    Ok(LoadSeries {
        line: i + 1,
        labels: desc.labels,
        samples,
        start_timestamps: has_st.then_some(starts),
    })
}

/// Whether the first word of the line ends in `@st`.
fn is_st_line(text: &str) -> bool {
    match text.find([' ', '\t']) {
        Some(space) => text[..space].ends_with("@st"),
        None => false,
    }
}

/// `metric{..}@st <seq>` (labels) or `@st <seq>` (no labels: a default).
fn parse_st_line(
    lines: &[Line<'_>],
    i: usize,
) -> Result<(Option<Labels>, Vec<Option<i64>>), ScriptError> {
    let text = lines[i].text;
    let space = text.find([' ', '\t']).unwrap_or(text.len());
    let metric = text[..space].strip_suffix("@st").unwrap_or(&text[..space]);
    let seq = text[space..].trim();
    let offsets =
        parse_st_sequence(seq).map_err(|e| error(i, format!("invalid @st sequence: {e}")))?;
    if metric.is_empty() {
        return Ok((None, offsets));
    }
    let desc = parse_series_desc(metric).map_err(|e| {
        error_at(
            lines,
            i,
            e.offset,
            format!("invalid @st line metric {metric:?}: {}", e.reason),
        )
    })?;
    if !desc.values.is_empty() {
        return Err(error(i, format!("invalid @st line metric {metric:?}")));
    }
    Ok((Some(desc.labels), offsets))
}

/// The `@st` sequence: `_`, `_xN` (N ≥ 1 omitted), `*` / `*xN` (the last
/// offset given, or 0, once / N+1 times), `<dur>`, `<dur>xN`,
/// `<dur>+<dur>xN`, `<dur>-<dur>xN`; durations may carry a sign and hold a
/// single unit (`-1m`, `59999ms`, `0`).
fn parse_st_sequence(seq: &str) -> Result<Vec<Option<i64>>, String> {
    let mut out: Vec<Option<i64>> = Vec::new();
    for item in seq.split_whitespace() {
        let prev = out.iter().rev().find_map(|v| *v).unwrap_or(0);
        parse_st_item(item, prev, &mut out)
            .map_err(|e| format!("invalid ST item {item:?}: {e}"))?;
        if out.len() > MAX_VALUES {
            return Err(format!("more than {MAX_VALUES} values"));
        }
    }
    Ok(out)
}

fn st_count(text: &str) -> Result<usize, String> {
    let n = golit::parse_go_uint10(text).ok_or_else(|| "invalid repeat count".to_string())?;
    usize::try_from(n)
        .ok()
        .filter(|&n| n <= MAX_VALUES)
        .ok_or_else(|| "repeat count too large".to_string())
}

fn parse_st_item(item: &str, prev: i64, out: &mut Vec<Option<i64>>) -> Result<(), String> {
    if item == "_" {
        out.push(None);
        return Ok(());
    }
    if let Some(n) = item.strip_prefix("_x") {
        let n = st_count(n)?;
        if n == 0 {
            return Err("invalid repeat count".to_string());
        }
        out.extend(std::iter::repeat_n(None, n));
        return Ok(());
    }
    if item == "*" {
        out.push(Some(prev));
        return Ok(());
    }
    if let Some(n) = item.strip_prefix("*x") {
        let n = st_count(n)?;
        out.extend(std::iter::repeat_n(Some(prev), n + 1));
        return Ok(());
    }
    let (base, rest) = duration_prefix(item)?;
    if rest.is_empty() {
        out.push(Some(base));
        return Ok(());
    }
    if let Some(n) = rest.strip_prefix('x') {
        let n = st_count(n)?;
        out.extend(std::iter::repeat_n(Some(base), n + 1));
        return Ok(());
    }
    let negative = match rest.as_bytes()[0] {
        b'+' => false,
        b'-' => true,
        _ => {
            let c = rest.chars().next().unwrap_or_default();
            return Err(format!("unexpected character {c:?} after duration"));
        }
    };
    let (delta, rest) =
        duration_prefix(&rest[1..]).map_err(|e| format!("invalid step duration: {e}"))?;
    let delta = if negative { -delta } else { delta };
    let n = rest
        .strip_prefix('x')
        .ok_or_else(|| "expected 'x<count>' after step duration".to_string())?;
    let n = st_count(n)?;
    let mut offset = base;
    for k in 0..=n {
        out.push(Some(offset));
        if k < n {
            offset = offset
                .checked_add(delta)
                .ok_or_else(|| "offset overflows".to_string())?;
        }
    }
    Ok(())
}

/// A signed duration with one unit at the start of `s` (letters stop at
/// `x`, the repetition marker), in ms, and the rest of `s`.
fn duration_prefix(s: &str) -> Result<(i64, &str), String> {
    if s.is_empty() {
        return Err("empty duration".to_string());
    }
    let (negative, body) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let digits = body.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!("expected digits in duration {s:?}"));
    }
    let unit = body[digits..]
        .bytes()
        .take_while(|&b| b.is_ascii_alphabetic() && b != b'x')
        .count();
    let text = &body[..digits + unit];
    let ms = parse_duration_ms(text).map_err(|e| format!("invalid duration {text:?}: {e}"))?;
    Ok((if negative { -ms } else { ms }, &body[digits + unit..]))
}

/// What the lines after an `eval` have said so far.
#[derive(Default)]
struct EvalBody {
    range_vector: Option<(usize, i64, i64, i64)>,
    string: Option<(usize, String)>,
    scalar: Option<f64>,
    series: Vec<ExpectedSeries>,
    seen: HashMap<Labels, usize>,
}

/// `eval` at line `i` and its block; returns the last line index consumed.
fn parse_eval(lines: &[Line<'_>], mut i: usize) -> Result<(usize, Eval), ScriptError> {
    let eval_line = i;
    let text = lines[i].text;
    let (modifier, expr, query) = if let Some(c) = EVAL_INSTANT_RE.captures(text) {
        let at = c.get(2).map_or("", |m| m.as_str());
        let at_ms = duration(at, "timestamp definition").map_err(|e| error(i, e))?;
        (c.get(1), c.get(3), EvalQuery::Instant { at_ms })
    } else if let Some(c) = EVAL_RANGE_RE.captures(text) {
        let part = |n| c.get(n).map_or("", |m: regex::Match<'_>| m.as_str());
        let (start_ms, end_ms, step_ms) =
            range_durations(part(2), part(3), part(4)).map_err(|e| error(i, e))?;
        (
            c.get(1),
            c.get(5),
            EvalQuery::Range {
                start_ms,
                end_ms,
                step_ms,
            },
        )
    } else {
        return Err(error(
            i,
            "invalid evaluation command, must be either \
             'eval[_fail|_warn|_info|_ordered] instant [at <offset:duration>] <query>' or \
             'eval[_fail|_warn|_info] range from <from> to <to> step <step> <query>'",
        ));
    };
    let expr = expr.ok_or_else(|| error(i, "eval without an expression"))?;
    let instant = matches!(query, EvalQuery::Instant { .. });
    let mut expects = Vec::new();
    let mut deprecated_fail = None;
    if let Some(m) = modifier {
        let kind = match m.as_str() {
            "fail" => ExpectKind::Fail,
            "warn" => ExpectKind::Warn,
            "info" => ExpectKind::Info,
            _ => ExpectKind::Ordered,
        };
        if kind == ExpectKind::Fail {
            deprecated_fail = Some(expects.len());
        }
        expects.push(Expect {
            line: i + 1,
            kind,
            message: None,
        });
    }
    let mut explicit_fails = 0;
    let mut body = EvalBody::default();
    while i + 1 < lines.len() {
        i += 1;
        let t = lines[i].text;
        if t.is_empty() {
            i -= 1;
            break;
        }
        if let Some(idx) = deprecated_fail {
            if let Some(rest) = t.strip_prefix("expected_fail_message") {
                let msg = rest.trim();
                expects[idx].line = i + 1;
                if !msg.is_empty() {
                    expects[idx].message = Some(MessageMatch::Exact(msg.to_string()));
                }
                break;
            }
            if let Some(rest) = t.strip_prefix("expected_fail_regexp") {
                let pattern = rest.trim();
                Regex::new(pattern).map_err(|e| {
                    error(
                        i,
                        format!("invalid regexp '{pattern}' for expected_fail_regexp: {e}"),
                    )
                })?;
                expects[idx].line = i + 1;
                expects[idx].message = Some(MessageMatch::Regex(pattern.to_string()));
                break;
            }
        }
        if t.starts_with(RANGE_VECTOR_PREFIX) {
            if !instant {
                return Err(error(
                    i,
                    "expect range vector is only allowed after an instant eval",
                ));
            }
            if body.range_vector.is_some() {
                return Err(error(i, "more than one expect range vector line"));
            }
            let c = EXPECT_RANGE_RE
                .captures(t)
                .ok_or_else(|| error(i, format!("invalid range vector definition {t:?}")))?;
            let part = |n| c.get(n).map_or("", |m: regex::Match<'_>| m.as_str());
            let (start, end, step) =
                range_durations(part(1), part(2), part(3)).map_err(|e| error(i, e))?;
            body.range_vector = Some((i, start, end, step));
            continue;
        }
        if t.starts_with(EXPECT_STRING_PREFIX) {
            if body.string.is_some() {
                return Err(error(i, "more than one expect string line"));
            }
            let s = parse_expect_string(t).map_err(|e| error(i, e))?;
            body.string = Some((i, s));
            continue;
        }
        // As upstream: a metric named `expect` must be written `expect{}`.
        if t.split(' ').next() == Some("expect") {
            let e = parse_expect(t).map_err(|e| error(i, e))?;
            explicit_fails += usize::from(e.kind == ExpectKind::Fail);
            expects.push(Expect { line: i + 1, ..e });
            validate_expects(&expects, explicit_fails).map_err(|e| error(i, e))?;
            continue;
        }
        if let Some(f) = golit::parse_go_number(t) {
            body.scalar = Some(f);
            break;
        }
        let desc = parse_series_line(lines, i)?;
        if desc.values.len() > 1 && instant && body.range_vector.is_none() {
            return Err(error(
                i,
                "expecting multiple values in instant evaluation not allowed. consider using \
                 'expect range vector' directive to enable a range vector result for an instant query",
            ));
        }
        if desc.values.is_empty() {
            return Err(error(
                i,
                format!("expected series {} has no values", desc.labels),
            ));
        }
        if let Some(first) = body.seen.insert(desc.labels.clone(), i) {
            return Err(error(
                i,
                format!(
                    "expected series {} is already given on line {}",
                    desc.labels,
                    first + 1
                ),
            ));
        }
        body.series.push(expected_series(i, desc));
    }
    let result = expected_result(body).map_err(|(line, e)| error(line, e))?;
    Ok((
        i,
        Eval {
            line: eval_line + 1,
            expr: expr.as_str().to_string(),
            expr_column: lines[eval_line].column(expr.start()),
            query,
            expects,
            result,
        },
    ))
}

fn expected_series(i: usize, desc: series::SeriesDesc) -> ExpectedSeries {
    let mut values = Vec::with_capacity(desc.values.len());
    let mut hint_set = Vec::with_capacity(desc.values.len());
    for v in desc.values {
        let (value, set) = match v {
            SeqValue::Omitted => (None, false),
            SeqValue::Float(f) => (Some(TestValue::Float(f)), false),
            SeqValue::Histogram {
                histogram,
                hint_set,
            } => (Some(TestValue::Histogram(histogram)), hint_set),
        };
        values.push(value);
        hint_set.push(set);
    }
    ExpectedSeries {
        line: i + 1,
        labels: desc.labels,
        values,
        counter_reset_hint_set: hint_set,
    }
}

/// Combines what the block said into one result; mixed kinds are an error
/// (reported on the 0-based line index returned).
fn expected_result(body: EvalBody) -> Result<ExpectedResult, (usize, String)> {
    let first_series_line = body.series.first().map(|s| s.line - 1);
    match (body.scalar, body.string, body.range_vector) {
        (Some(f), None, None) => match first_series_line {
            None => Ok(ExpectedResult::Scalar(f)),
            Some(line) => Err((
                line,
                "expected series cannot be combined with a scalar result".to_string(),
            )),
        },
        (None, Some((_, s)), None) => match first_series_line {
            None => Ok(ExpectedResult::String(s)),
            Some(line) => Err((
                line,
                "expected series cannot be combined with expect string".to_string(),
            )),
        },
        (None, None, Some((_, start_ms, end_ms, step_ms))) => Ok(ExpectedResult::RangeVector {
            start_ms,
            end_ms,
            step_ms,
            series: body.series,
        }),
        (None, None, None) => Ok(ExpectedResult::Series(body.series)),
        (_, string, range) => {
            let line = string
                .map(|(l, _)| l)
                .into_iter()
                .chain(range.map(|r| r.0))
                .max()
                .unwrap_or_default();
            Err((
                line,
                "a scalar result, expect string and expect range vector exclude each other"
                    .to_string(),
            ))
        }
    }
}

/// `expect <kind> [msg|regex: <text>]`.
fn parse_expect(t: &str) -> Result<Expect, String> {
    let c = EXPECT_RE.captures(t.trim()).ok_or_else(|| {
        "invalid expect statement, must match `expect <type> <match_type>: <string>` format"
            .to_string()
    })?;
    let mode = c.get(1).map_or("", |m| m.as_str());
    let kind = match mode {
        "fail" => ExpectKind::Fail,
        "warn" => ExpectKind::Warn,
        "info" => ExpectKind::Info,
        "no_warn" => ExpectKind::NoWarn,
        "no_info" => ExpectKind::NoInfo,
        _ => ExpectKind::Ordered,
    };
    let text = c.get(3).map_or("", |m| m.as_str().trim());
    let message = match c.get(2).map(|m| m.as_str()) {
        None => None,
        Some("msg") => Some(MessageMatch::Exact(text.to_string())),
        Some(_) => {
            Regex::new(text).map_err(|e| format!("invalid regex {text} for {mode}: {e}"))?;
            Some(MessageMatch::Regex(text.to_string()))
        }
    };
    Ok(Expect {
        line: 0,
        kind,
        message,
    })
}

/// Upstream's `validateExpectedCmds`, over explicit and deprecated forms.
fn validate_expects(expects: &[Expect], explicit_fails: usize) -> Result<(), String> {
    let has = |k| expects.iter().any(|e| e.kind == k);
    if has(ExpectKind::Info) && has(ExpectKind::NoInfo) {
        return Err("invalid expect lines, info and no_info cannot be used together".to_string());
    }
    if has(ExpectKind::Warn) && has(ExpectKind::NoWarn) {
        return Err("invalid expect lines, warn and no_warn cannot be used together".to_string());
    }
    if explicit_fails > 1 {
        return Err("invalid expect lines, multiple expect fail lines are not allowed".to_string());
    }
    Ok(())
}

/// `expect string <Go string literal>`.
fn parse_expect_string(t: &str) -> Result<String, String> {
    const REQUIRED: &str =
        "expected string literal not valid - a quoted string literal is required";
    if t == EXPECT_STRING_PREFIX {
        return Err(REQUIRED.to_string());
    }
    // Exactly one space, as upstream's TrimPrefix.
    let s = t
        .strip_prefix(&format!("{EXPECT_STRING_PREFIX} "))
        .unwrap_or(t);
    if s.is_empty() {
        return Err(REQUIRED.to_string());
    }
    golit::unquote(s, false).map_err(|e| {
        format!(
            "expected string literal not valid - check that the string is correctly quoted: {e}"
        )
    })
}

#[cfg(test)]
mod tests;
