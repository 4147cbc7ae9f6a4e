//! Series descriptions: `metric{label="value"} 0+10x3 _ stale {{sum:1 count:2}}`,
//! the little language that `load` lines and expected results share
//! (Prometheus's `ParseSeriesDesc`, a start symbol of its PromQL grammar).
//!
//! What a description is:
//! - A metric: a name (`[a-zA-Z_:][a-zA-Z0-9_:]*`, where PromQL keywords that
//!   cannot name a metric, such as `on` or `bool`, are refused), a label set
//!   `{a="b", "c"="d", "quoted.name"}`, both, or neither. Label names in
//!   braces are identifiers or quoted strings; a quoted string alone is the
//!   metric name (Prometheus 3's UTF-8 names); only `=` is allowed; a trailing
//!   comma is fine; a name outside the braces wins over one inside.
//! - Then values, each preceded by whitespace (space, tab):
//!   - `a` (a number, `Inf`, `NaN`, or `stale`), `axn` (`a` n+1 times),
//!     `a+bxn` / `a-bxn` (n+1 values, adding `b` each step by repeated
//!     floating-point addition, exactly as Go accumulates);
//!   - `_` (no sample), `_xn` (n missing samples, not n+1);
//!   - `{{...}}` native histograms, `{{...}}xn`, `{{a}}+{{b}}xn`, `{{a}}-{{b}}xn`.
//! - Numbers are read like Go's `ParseInt(s, 0, 64)` then `ParseFloat`, so
//!   `010` is 8; but hex is not a number here (Prometheus's lexer refuses it
//!   in series descriptions because `0x10` already means "0, 11 times").
//!
//! Histogram literals (`buildHistogramFromMap`): keys `schema`, `sum`,
//! `count`, `z_bucket`, `z_bucket_w` (the zero threshold), `buckets` and
//! `offset`, `n_buckets` and `n_offset`, `custom_values`,
//! `counter_reset_hint` (`unknown`, `reset`, `not_reset`, `gauge`), each at
//! most once, any order, keys and keywords in any case, separated by single
//! runs of whitespace. Missing fields are zero. A bucket list becomes exactly
//! one span `(offset, len)`, zero buckets included, as upstream builds it; a
//! bucket list is never empty (`[]` is a syntax error upstream too). Whether
//! `counter_reset_hint` was written is kept ([`SeqValue::Histogram`]'s
//! `hint_set`): expected results compare the hint only then. For
//! `{{a}}+{{b}}xn`, every produced value carries `b`'s flag, as upstream.
//!
//! Deliberate differences from upstream, all on inputs no test file uses:
//! duplicate label names are an error (upstream keeps both); label values
//! that unescape to invalid UTF-8 are an error; out-of-range `schema`,
//! `offset` and `n_offset` are errors instead of wrapping to 32 bits; `-Inf`
//! inside a bucket list is accepted; a description may expand to at most
//! [`MAX_VALUES`] values, so `1x99999999999` cannot exhaust memory.

use emberlens_model::{
    CUSTOM_BUCKETS_SCHEMA, CounterResetHint, FloatHistogram, Labels, MAX_SCHEMA, METRIC_NAME,
    MIN_SCHEMA, Span, stale_nan,
};

use super::golit::{parse_go_number, parse_go_uint10, unquote};

/// Most values one description may expand to (the corpus needs 10,001).
pub(crate) const MAX_VALUES: usize = 1_000_000;

/// One position of a value sequence.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SeqValue {
    /// `_`: no sample at this position.
    Omitted,
    /// A float sample (`stale` is the staleness-marker NaN).
    Float(f64),
    /// A native-histogram sample.
    Histogram {
        /// The histogram.
        histogram: FloatHistogram,
        /// Whether the literal spelled out `counter_reset_hint`.
        hint_set: bool,
    },
}

/// A parsed description: the labels and the expanded values.
#[derive(Debug)]
pub(crate) struct SeriesDesc {
    /// The series' labels.
    pub labels: Labels,
    /// One entry per position (step), omitted ones included.
    pub values: Vec<SeqValue>,
}

/// Why a description did not parse, and where (byte offset into the text).
#[derive(Debug, PartialEq)]
pub(crate) struct DescError {
    /// Byte offset of the offending input in the description.
    pub offset: usize,
    /// What is wrong, lowercase, no trailing period.
    pub reason: String,
}

/// Parses a whole description.
pub(crate) fn parse_series_desc(text: &str) -> Result<SeriesDesc, DescError> {
    let mut c = Cursor { s: text, pos: 0 };
    let labels = parse_metric(&mut c)?;
    let mut values = Vec::new();
    loop {
        if c.at_end() {
            break;
        }
        if !c.peek().is_some_and(is_space) {
            return Err(c.unexpected("in series values", "a space"));
        }
        c.skip_spaces();
        if c.at_end() {
            break;
        }
        parse_item(&mut c, &mut values)?;
    }
    Ok(SeriesDesc { labels, values })
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<u8> {
        self.s.as_bytes().get(self.pos + n).copied()
    }

    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    fn bump(&mut self) {
        self.pos += 1;
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_str(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
    }

    /// Consumes bytes while `f` holds; returns them.
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or("")
    }

    fn error_at(&self, offset: usize, reason: impl Into<String>) -> DescError {
        DescError {
            offset,
            reason: reason.into(),
        }
    }

    /// "unexpected <what is here> <context>, expected <expected>".
    fn unexpected(&self, context: &str, expected: &str) -> DescError {
        self.error_at(
            self.pos,
            format!(
                "unexpected {} {context}, expected {expected}",
                self.describe()
            ),
        )
    }

    /// Names what is at the cursor for error messages.
    fn describe(&self) -> String {
        match self.rest().chars().next() {
            None => "end of input".to_string(),
            Some(c) if c == ' ' || c == '\t' => "space".to_string(),
            Some(c) => format!("{:?}", c.to_string()),
        }
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn is_alpha(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphabetic()
}

fn is_alnum(b: u8) -> bool {
    is_alpha(b) || b.is_ascii_digit()
}

/// PromQL keywords the lexer turns into tokens that the grammar does not
/// accept as a metric name (`inf`/`nan` lex as numbers).
const NOT_METRIC_NAMES: [&str; 8] = [
    "atan2",
    "bool",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
];

fn parse_metric(c: &mut Cursor<'_>) -> Result<Labels, DescError> {
    match c.peek() {
        Some(b) if is_alpha(b) || b == b':' => {
            let start = c.pos;
            let name = c.take_while(|b| is_alnum(b) || b == b':');
            if NOT_METRIC_NAMES.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(c.error_at(start, format!("{name:?} cannot be a metric name")));
            }
            let mut pairs = if c.eat(b'{') {
                parse_label_set(c)?
            } else {
                Vec::new()
            };
            // Pushed last: `from_pairs` keeps the last value of a name.
            pairs.push((METRIC_NAME.to_string(), name.to_string()));
            Ok(Labels::from_pairs(pairs))
        }
        Some(b'{') => {
            c.bump();
            Ok(Labels::from_pairs(parse_label_set(c)?))
        }
        _ => Ok(Labels::default()),
    }
}

/// The inside of `{...}`, the `{` already consumed.
fn parse_label_set(c: &mut Cursor<'_>) -> Result<Vec<(String, String)>, DescError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    c.skip_spaces();
    if c.eat(b'}') {
        return Ok(pairs);
    }
    loop {
        c.skip_spaces();
        let item_start = c.pos;
        let (name, value) = match c.peek() {
            Some(b) if is_alpha(b) => {
                let name = c.take_while(is_alnum).to_string();
                c.skip_spaces();
                expect_equals(c)?;
                c.skip_spaces();
                (name, parse_string(c)?)
            }
            Some(b'"' | b'\'' | b'`') => {
                let first = parse_string(c)?;
                c.skip_spaces();
                if c.peek() == Some(b'=') && c.peek_at(1) != Some(b'~') {
                    c.bump();
                    c.skip_spaces();
                    (first, parse_string(c)?)
                } else {
                    (METRIC_NAME.to_string(), first)
                }
            }
            _ => return Err(c.unexpected("in label set", "identifier or \"}\"")),
        };
        if name.is_empty() {
            return Err(c.error_at(item_start, "empty label name"));
        }
        if pairs.iter().any(|(n, _)| *n == name) {
            return Err(c.error_at(item_start, format!("duplicate label name {name:?}")));
        }
        pairs.push((name, value));
        c.skip_spaces();
        if c.eat(b'}') {
            return Ok(pairs);
        }
        if c.eat(b',') {
            c.skip_spaces();
            if c.eat(b'}') {
                return Ok(pairs);
            }
            continue;
        }
        return Err(c.unexpected("in label set", "\",\" or \"}\""));
    }
}

fn expect_equals(c: &mut Cursor<'_>) -> Result<(), DescError> {
    let op = c.rest();
    if op.starts_with("=~") || op.starts_with("!=") || op.starts_with("!~") {
        return Err(c.error_at(
            c.pos,
            format!("unexpected {:?} in label set, expected \"=\"", &op[..2]),
        ));
    }
    if c.eat(b'=') {
        Ok(())
    } else {
        Err(c.unexpected("in label set", "\"=\""))
    }
}

/// A quoted string at the cursor, unquoted.
fn parse_string(c: &mut Cursor<'_>) -> Result<String, DescError> {
    let start = c.pos;
    let quote = match c.peek() {
        Some(q @ (b'"' | b'\'' | b'`')) => q,
        _ => return Err(c.unexpected("in label set", "string")),
    };
    c.bump();
    loop {
        match c.peek() {
            None => return Err(c.error_at(start, "unterminated quoted string")),
            Some(b'\n') if quote != b'`' => {
                return Err(c.error_at(start, "unterminated quoted string"));
            }
            Some(b'\\') if quote != b'`' => {
                c.bump();
                if c.at_end() {
                    return Err(c.error_at(start, "escape sequence not terminated"));
                }
                c.bump();
            }
            Some(b) if b == quote => {
                c.bump();
                break;
            }
            Some(_) => c.bump(),
        }
    }
    let literal = c.s.get(start..c.pos).unwrap_or("");
    unquote(literal, true).map_err(|e| c.error_at(start, e))
}

/// One item of the value sequence, appended to `out`.
fn parse_item(c: &mut Cursor<'_>, out: &mut Vec<SeqValue>) -> Result<(), DescError> {
    let start = c.pos;
    if c.rest().starts_with("{{") {
        return parse_histogram_item(c, out);
    }
    if c.eat(b'_') {
        if c.eat(b'x') {
            let n = parse_count(c)?;
            push_n(c, start, out, n, SeqValue::Omitted)?;
        } else {
            push_n(c, start, out, 1, SeqValue::Omitted)?;
        }
        return Ok(());
    }
    let first = parse_series_value(c)?;
    match c.peek() {
        Some(b'x') => {
            c.bump();
            let n = parse_count(c)?;
            push_n(c, start, out, n.saturating_add(1), SeqValue::Float(first))?;
        }
        Some(b'+' | b'-') => {
            let step = parse_signed_number(c)?;
            if !c.eat(b'x') {
                return Err(c.unexpected("in series values", "\"x\" and a repetition count"));
            }
            let n = parse_count(c)?;
            check_room(c, start, out, n.saturating_add(1))?;
            let mut v = first;
            for _ in 0..=n {
                out.push(SeqValue::Float(v));
                v += step;
            }
        }
        _ => out.push(SeqValue::Float(first)),
    }
    Ok(())
}

fn check_room(c: &Cursor<'_>, start: usize, out: &[SeqValue], n: u64) -> Result<(), DescError> {
    let total = u64::try_from(out.len())
        .unwrap_or(u64::MAX)
        .saturating_add(n);
    if total > MAX_VALUES as u64 {
        return Err(c.error_at(
            start,
            format!("series expands to more than {MAX_VALUES} values"),
        ));
    }
    Ok(())
}

fn push_n(
    c: &Cursor<'_>,
    start: usize,
    out: &mut Vec<SeqValue>,
    n: u64,
    v: SeqValue,
) -> Result<(), DescError> {
    check_room(c, start, out, n)?;
    for _ in 0..n {
        out.push(v.clone());
    }
    Ok(())
}

/// `series_value`: a number, a signed number, or `stale`.
fn parse_series_value(c: &mut Cursor<'_>) -> Result<f64, DescError> {
    match c.peek() {
        Some(b'+' | b'-') => parse_signed_number(c),
        Some(b'x') => Err(c.unexpected("in series values", "number or \"stale\"")),
        Some(b) if is_alpha(b) => {
            let start = c.pos;
            let word = c.take_while(|b| is_alnum(b) || b == b':');
            match word.to_ascii_lowercase().as_str() {
                "inf" => Ok(f64::INFINITY),
                "nan" => Ok(f64::NAN),
                // Case-sensitive, like the grammar's check.
                _ if word == "stale" => Ok(stale_nan()),
                _ => Err(c.error_at(
                    start,
                    format!("unexpected identifier {word:?} in series values, expected number or \"stale\""),
                )),
            }
        }
        _ => parse_number(c),
    }
}

/// `+number` or `-number` (never `stale`).
fn parse_signed_number(c: &mut Cursor<'_>) -> Result<f64, DescError> {
    let negative = match c.peek() {
        Some(b'-') => true,
        Some(b'+') => false,
        _ => return Err(c.unexpected("in series values", "\"+\" or \"-\"")),
    };
    c.bump();
    let v = parse_number(c)?;
    Ok(if negative { -v } else { v })
}

/// An unsigned number token: digits (`1`, `1.5e3`, `.5`, `010`) or `Inf`/`NaN`.
fn parse_number(c: &mut Cursor<'_>) -> Result<f64, DescError> {
    let start = c.pos;
    match c.peek() {
        Some(b)
            if b.is_ascii_digit()
                || (b == b'.' && c.peek_at(1).is_some_and(|d| d.is_ascii_digit())) =>
        {
            let text = scan_number(c)?;
            parse_go_number(text)
                .ok_or_else(|| c.error_at(start, format!("error parsing number {text:?}")))
        }
        Some(b) if is_alpha(b) => {
            let word = c.take_while(|b| is_alnum(b) || b == b':');
            match word.to_ascii_lowercase().as_str() {
                "inf" => Ok(f64::INFINITY),
                "nan" => Ok(f64::NAN),
                _ => Err(c.error_at(
                    start,
                    format!("unexpected identifier {word:?}, expected number"),
                )),
            }
        }
        _ => Err(c.unexpected("in series values", "number")),
    }
}

/// The lexer's number scanner for series descriptions (no hex): `[.]d[d._eE]*`
/// with one dot, one exponent (optionally signed), underscores between
/// digits, and no letter right after it except the `x` of a repetition.
fn scan_number<'a>(c: &mut Cursor<'a>) -> Result<&'a str, DescError> {
    let start = c.pos;
    let bad = |c: &Cursor<'_>| {
        let end = c.pos.min(c.s.len());
        c.error_at(
            start,
            format!("bad number syntax: {:?}", c.s.get(start..end).unwrap_or("")),
        )
    };
    c.eat(b'.');
    if c.peek().is_some_and(|b| b.is_ascii_digit()) {
        c.bump();
    }
    let mut dot = false;
    let mut exponent = false;
    while let Some(b) = c.peek() {
        match b {
            b'.' => {
                c.bump();
                if dot || matches!(c.peek(), Some(b'_' | b'.')) {
                    return Err(bad(c));
                }
                dot = true;
            }
            b'e' | b'E' => {
                c.bump();
                if exponent {
                    return Err(bad(c));
                }
                exponent = true;
                if matches!(c.peek(), Some(b'+' | b'-')) {
                    c.bump();
                }
                if matches!(c.peek(), None | Some(b'.' | b'_' | b'e' | b'E')) {
                    return Err(bad(c));
                }
            }
            b'_' => {
                c.bump();
                if matches!(c.peek(), None | Some(b'.' | b'_' | b'e' | b'E')) {
                    return Err(bad(c));
                }
            }
            b'0'..=b'9' => c.bump(),
            _ => break,
        }
    }
    if c.pos == start {
        return Err(bad(c));
    }
    if let Some(b) = c.peek()
        && b != b'x'
        && is_alnum(b)
    {
        c.bump();
        return Err(bad(c));
    }
    Ok(c.s.get(start..c.pos).unwrap_or(""))
}

/// A repetition count: `strconv.ParseUint(token, 10, 64)`.
fn parse_count(c: &mut Cursor<'_>) -> Result<u64, DescError> {
    let start = c.pos;
    if !c.peek().is_some_and(|b| b.is_ascii_digit() || b == b'.') {
        return Err(c.unexpected("in series values", "a repetition count"));
    }
    let text = scan_number(c)?;
    let n = parse_go_uint10(text).ok_or_else(|| {
        c.error_at(
            start,
            format!("invalid repetition in series values: {text:?}"),
        )
    })?;
    if n > MAX_VALUES as u64 {
        return Err(c.error_at(
            start,
            format!("repetition count {n} is above the limit of {MAX_VALUES}"),
        ));
    }
    Ok(n)
}

/// `{{...}}`, `{{...}}xn`, `{{a}}+{{b}}xn` or `{{a}}-{{b}}xn`.
fn parse_histogram_item(c: &mut Cursor<'_>, out: &mut Vec<SeqValue>) -> Result<(), DescError> {
    let start = c.pos;
    let (first, first_hint_set) = parse_histogram_literal(c)?;
    match c.peek() {
        Some(b'x') => {
            c.bump();
            let n = parse_count(c)?;
            push_n(
                c,
                start,
                out,
                n.saturating_add(1),
                SeqValue::Histogram {
                    histogram: first,
                    hint_set: first_hint_set,
                },
            )
        }
        Some(op @ (b'+' | b'-')) => {
            c.bump();
            if !c.rest().starts_with("{{") {
                return Err(c.unexpected("in series values", "a histogram \"{{\""));
            }
            let (inc, inc_hint_set) = parse_histogram_literal(c)?;
            if !c.eat(b'x') {
                return Err(c.unexpected("in series values", "\"x\" and a repetition count"));
            }
            let n = parse_count(c)?;
            check_room(c, start, out, n.saturating_add(1))?;
            expand_histograms(first, &inc, n, op == b'+', inc_hint_set, out)
                .map_err(|e| c.error_at(start, e))
        }
        _ => {
            out.push(SeqValue::Histogram {
                histogram: first,
                hint_set: first_hint_set,
            });
            Ok(())
        }
    }
}

/// `base, base±inc, base±2·inc, …` (n+1 values), each step computed from the
/// previous one with histogram addition or subtraction, like upstream's
/// `histogramsSeries`. Every value carries the increment's `hint_set`.
fn expand_histograms(
    base: FloatHistogram,
    inc: &FloatHistogram,
    n: u64,
    add: bool,
    hint_set: bool,
    out: &mut Vec<SeqValue>,
) -> Result<(), String> {
    for h in [&base, inc] {
        let s = h.schema;
        if s != CUSTOM_BUCKETS_SCHEMA && !(MIN_SCHEMA..=MAX_SCHEMA).contains(&s) {
            return Err(format!("error combining histograms: invalid schema {s}"));
        }
    }
    let mut cur = base;
    out.push(SeqValue::Histogram {
        histogram: cur.clone(),
        hint_set,
    });
    for _ in 0..n {
        if cur.schema > inc.schema {
            return Err(format!(
                "error combining histograms: cannot merge from schema {} to {}",
                inc.schema, cur.schema
            ));
        }
        let next = if add { cur.add(inc) } else { cur.sub(inc) };
        cur = next.map_err(|e| format!("error combining histograms: {e}"))?;
        out.push(SeqValue::Histogram {
            histogram: cur.clone(),
            hint_set,
        });
    }
    Ok(())
}

/// The fields of one `{{...}}`, each present at most once.
#[derive(Default)]
struct HistogramDesc {
    schema: Option<i32>,
    sum: Option<f64>,
    count: Option<f64>,
    zero_count: Option<f64>,
    zero_threshold: Option<f64>,
    buckets: Option<Vec<f64>>,
    offset: Option<i32>,
    negative_buckets: Option<Vec<f64>>,
    negative_offset: Option<i32>,
    custom_values: Option<Vec<f64>>,
    counter_reset_hint: Option<CounterResetHint>,
}

/// One `{{...}}` at the cursor: the histogram and whether it spelled out
/// `counter_reset_hint`.
fn parse_histogram_literal(c: &mut Cursor<'_>) -> Result<(FloatHistogram, bool), DescError> {
    let open = c.pos;
    if !c.eat_str("{{") {
        return Err(c.unexpected("in series values", "\"{{\""));
    }
    let mut desc = HistogramDesc::default();
    if !c.eat_str("}}") {
        if c.peek().is_some_and(is_space) {
            // Only `{{ }}` may start with a space.
            c.skip_spaces();
            if !c.eat_str("}}") {
                return Err(
                    c.unexpected("in histogram description", "\"}}\" (no space after \"{{\")")
                );
            }
        } else {
            loop {
                parse_histogram_field(c, &mut desc)?;
                if c.eat_str("}}") {
                    break;
                }
                if c.peek().is_some_and(is_space) {
                    c.skip_spaces();
                    if c.eat_str("}}") {
                        break;
                    }
                    continue;
                }
                if c.at_end() {
                    return Err(c.error_at(open, "unterminated histogram description"));
                }
                return Err(c.unexpected("in histogram description", "a space or \"}}\""));
            }
        }
    }
    Ok(build_histogram(desc))
}

fn parse_histogram_field(c: &mut Cursor<'_>, d: &mut HistogramDesc) -> Result<(), DescError> {
    let start = c.pos;
    let word = c.take_while(is_alpha);
    if word.is_empty() {
        return Err(c.unexpected(
            "in histogram description",
            "histogram description key, e.g. buckets:[5 10 7]",
        ));
    }
    let key = word.to_ascii_lowercase();
    const KEYS: [&str; 11] = [
        "schema",
        "sum",
        "count",
        "z_bucket",
        "z_bucket_w",
        "buckets",
        "offset",
        "n_buckets",
        "n_offset",
        "custom_values",
        "counter_reset_hint",
    ];
    if !KEYS.contains(&key.as_str()) {
        return Err(c.error_at(start, format!("bad histogram descriptor found: {word:?}")));
    }
    if !c.eat(b':') {
        return Err(c.error_at(c.pos, "missing `:` for histogram descriptor"));
    }
    fn set<T>(slot: &mut Option<T>, v: T) -> bool {
        slot.replace(v).is_none()
    }
    let fresh = match key.as_str() {
        "schema" => {
            let v = parse_hist_int(c)?;
            set(&mut d.schema, v)
        }
        "sum" => {
            let v = parse_hist_number(c, true)?;
            set(&mut d.sum, v)
        }
        "count" => {
            let v = parse_hist_number(c, true)?;
            set(&mut d.count, v)
        }
        "z_bucket" => {
            let v = parse_hist_number(c, true)?;
            set(&mut d.zero_count, v)
        }
        "z_bucket_w" => {
            let v = parse_hist_number(c, false)?;
            set(&mut d.zero_threshold, v)
        }
        "buckets" => {
            let v = parse_bucket_list(c)?;
            set(&mut d.buckets, v)
        }
        "offset" => {
            let v = parse_hist_int(c)?;
            set(&mut d.offset, v)
        }
        "n_buckets" => {
            let v = parse_bucket_list(c)?;
            set(&mut d.negative_buckets, v)
        }
        "n_offset" => {
            let v = parse_hist_int(c)?;
            set(&mut d.negative_offset, v)
        }
        "custom_values" => {
            let v = parse_bucket_list(c)?;
            set(&mut d.custom_values, v)
        }
        _ => {
            let hint_start = c.pos;
            let word = c.take_while(is_alpha);
            let hint = match word.to_ascii_lowercase().as_str() {
                "unknown" => CounterResetHint::Unknown,
                "reset" => CounterResetHint::Reset,
                "not_reset" => CounterResetHint::NotReset,
                "gauge" => CounterResetHint::Gauge,
                _ => {
                    return Err(c.error_at(
                        hint_start,
                        format!(
                            "bad counter_reset_hint {word:?}, expected unknown, reset, not_reset or gauge"
                        ),
                    ));
                }
            };
            set(&mut d.counter_reset_hint, hint)
        }
    };
    if fresh {
        Ok(())
    } else {
        Err(c.error_at(start, format!("duplicate key {key:?} in histogram")))
    }
}

/// `-`? digits, as a 32-bit integer (schema and offsets).
fn parse_hist_int(c: &mut Cursor<'_>) -> Result<i32, DescError> {
    let start = c.pos;
    let negative = c.eat(b'-');
    if !c.peek().is_some_and(|b| b.is_ascii_digit()) {
        return Err(c.unexpected("in histogram description", "an integer"));
    }
    let text = scan_number(c)?;
    let n = parse_go_uint10(text)
        .ok_or_else(|| c.error_at(start, format!("invalid integer {text:?} in histogram")))?;
    let n = i64::try_from(n).ok().map(|n| if negative { -n } else { n });
    n.and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| c.error_at(start, format!("integer {text:?} out of range in histogram")))
}

/// A number inside `{{...}}`: digits, or `Inf`/`NaN`; `-` first if allowed.
fn parse_hist_number(c: &mut Cursor<'_>, signed: bool) -> Result<f64, DescError> {
    let start = c.pos;
    let negative = signed && c.eat(b'-');
    let v = match c.peek() {
        Some(b) if b.is_ascii_digit() => {
            let text = scan_number(c)?;
            parse_go_number(text)
                .ok_or_else(|| c.error_at(start, format!("error parsing number {text:?}")))?
        }
        Some(b) if is_alpha(b) => {
            let word = c.take_while(is_alpha);
            match word.to_ascii_lowercase().as_str() {
                "inf" => f64::INFINITY,
                "nan" => f64::NAN,
                _ => {
                    return Err(c.error_at(
                        start,
                        format!("unexpected {word:?} in histogram description, expected number"),
                    ));
                }
            }
        }
        _ => return Err(c.unexpected("in histogram description", "number")),
    };
    Ok(if negative { -v } else { v })
}

/// `[n n n]`: at least one number, single runs of whitespace between them,
/// no space after `[`, optionally one before `]`.
fn parse_bucket_list(c: &mut Cursor<'_>) -> Result<Vec<f64>, DescError> {
    if !c.eat(b'[') {
        return Err(c.unexpected("in histogram description", "\"[\""));
    }
    let mut out = Vec::new();
    loop {
        out.push(parse_hist_number(c, true)?);
        if out.len() > MAX_VALUES {
            return Err(c.error_at(c.pos, format!("more than {MAX_VALUES} buckets")));
        }
        if c.eat(b']') {
            return Ok(out);
        }
        if c.peek().is_some_and(is_space) {
            c.skip_spaces();
            if c.eat(b']') {
                return Ok(out);
            }
            continue;
        }
        return Err(c.unexpected("in buckets description", "a space or \"]\""));
    }
}

fn build_histogram(d: HistogramDesc) -> (FloatHistogram, bool) {
    fn spans(buckets: &[f64], offset: i32) -> Vec<Span> {
        if buckets.is_empty() {
            return Vec::new();
        }
        vec![Span {
            offset,
            length: u32::try_from(buckets.len()).unwrap_or(u32::MAX),
        }]
    }
    let positive_buckets = d.buckets.unwrap_or_default();
    let negative_buckets = d.negative_buckets.unwrap_or_default();
    let h = FloatHistogram {
        counter_reset_hint: d.counter_reset_hint.unwrap_or_default(),
        schema: d.schema.unwrap_or(0),
        zero_threshold: d.zero_threshold.unwrap_or(0.0),
        zero_count: d.zero_count.unwrap_or(0.0),
        count: d.count.unwrap_or(0.0),
        sum: d.sum.unwrap_or(0.0),
        positive_spans: spans(&positive_buckets, d.offset.unwrap_or(0)),
        negative_spans: spans(&negative_buckets, d.negative_offset.unwrap_or(0)),
        positive_buckets,
        negative_buckets,
        custom_values: d.custom_values.unwrap_or_default(),
    };
    (h, d.counter_reset_hint.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<SeqValue> {
        parse_series_desc(text)
            .unwrap_or_else(|e| panic!("{text:?}: {e:?}"))
            .values
    }

    fn floats(text: &str) -> Vec<Option<f64>> {
        values(text)
            .into_iter()
            .map(|v| match v {
                SeqValue::Omitted => None,
                SeqValue::Float(f) => Some(f),
                SeqValue::Histogram { .. } => panic!("histogram in {text:?}"),
            })
            .collect()
    }

    fn err(text: &str) -> DescError {
        match parse_series_desc(text) {
            Ok(d) => panic!("{text:?} parsed: {d:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn expanding_notation() {
        assert_eq!(
            floats("m 1+2x3"),
            [Some(1.0), Some(3.0), Some(5.0), Some(7.0)]
        );
        assert_eq!(floats("m 10-2x2"), [Some(10.0), Some(8.0), Some(6.0)]);
        assert_eq!(floats("m -1-1x1"), [Some(-1.0), Some(-2.0)]);
        assert_eq!(floats("m 5x2"), [Some(5.0); 3]);
        assert_eq!(floats("m 1x0"), [Some(1.0)]);
        assert_eq!(floats("m _x3"), [None; 3]);
        assert_eq!(floats("m _x0"), []);
        assert_eq!(floats("m _ 1 _"), [None, Some(1.0), None]);
        assert_eq!(floats("m 1 +2 -3"), [Some(1.0), Some(2.0), Some(-3.0)]);
        assert_eq!(floats("m\t1\t \t2 "), [Some(1.0), Some(2.0)]);
        assert_eq!(floats("m"), []);
        // Go accumulates by repeated addition, not a + i*b.
        let got = floats("m 0+0.1x3");
        assert_eq!(got[3], Some(0.1 + 0.1 + 0.1));
    }

    #[test]
    fn special_values_and_number_forms() {
        let v = floats("m Inf -Inf +inf NaN 1e3 1.5E-1 .5 5. 010 08 1_000");
        assert_eq!(v[0], Some(f64::INFINITY));
        assert_eq!(v[1], Some(f64::NEG_INFINITY));
        assert_eq!(v[2], Some(f64::INFINITY));
        assert!(v[3].is_some_and(f64::is_nan));
        assert_eq!(
            &v[4..],
            [
                Some(1000.0),
                Some(0.15),
                Some(0.5),
                Some(5.0),
                Some(8.0),
                Some(8.0),
                Some(1000.0)
            ]
        );
        let stale = values("m stale");
        assert!(matches!(stale[0], SeqValue::Float(f) if emberlens_model::is_stale_nan(f)));
    }

    #[test]
    fn hex_is_not_a_number_in_series() {
        // `0x10` is "0 repeated 11 times", as Prometheus's lexer reads it.
        assert_eq!(floats("m 0x10"), [Some(0.0); 11]);
        assert!(err("m 0x1f").reason.contains("bad number syntax"));
    }

    #[test]
    fn value_errors() {
        assert!(err("m 1+2").reason.contains("repetition"));
        assert!(err("m Stale").reason.contains("\"Stale\""));
        assert!(err("m -stale").reason.contains("expected number"));
        assert!(err("m stalex3").reason.contains("stalex3"));
        assert!(err("m 1x3.5").reason.contains("invalid repetition"));
        assert!(err("m 1x-3").reason.contains("repetition count"));
        assert!(err("m 1 2x").reason.contains("repetition count"));
        assert!(err("m 1e").reason.contains("bad number"));
        assert!(err("m 5m").reason.contains("bad number"));
        assert!(err("m 1x3+2").reason.contains("expected a space"));
        assert!(err("m 1x99999999999").reason.contains("limit"));
        assert_eq!(err("m 1 2x").offset, 6);
    }

    #[test]
    fn metrics_and_labels() {
        let l = |s: &str| parse_series_desc(s).unwrap().labels;
        assert_eq!(
            l(r#"m{a="b", c='d',} 1"#),
            Labels::from_pairs([("__name__", "m"), ("a", "b"), ("c", "d")])
        );
        assert_eq!(
            l(r#"{__name__="x"} 1"#),
            Labels::from_pairs([("__name__", "x")])
        );
        assert_eq!(l("{} 1"), Labels::default());
        assert_eq!(
            l(r#"{"some.metric", "a.b"="c"} 1"#),
            Labels::from_pairs([("__name__", "some.metric"), ("a.b", "c")])
        );
        assert_eq!(
            l(r#"outer{"inner"} 1"#),
            Labels::from_pairs([("__name__", "outer")])
        );
        assert_eq!(
            l("ns:metric:rate5m 1"),
            Labels::from_pairs([("__name__", "ns:metric:rate5m")])
        );
        // Keywords that can name a metric.
        assert_eq!(l("sum 1").metric_name(), "sum");
        assert_eq!(l(r#"m{by="x"} 1"#).get("by"), "x");
        assert_eq!(l(r#"m{a="\"q\"\n"} 1"#).get("a"), "\"q\"\n");
        assert_eq!(l(r#"m{a=`raw\n`}"#).get("a"), "raw\\n");
    }

    #[test]
    fn label_errors() {
        assert!(err(r#"m{a=~"b"} 1"#).reason.contains("expected \"=\""));
        assert!(err(r#"m{a!="b"} 1"#).reason.contains("expected \"=\""));
        assert!(err(r#"m{a="b" 1"#).reason.contains("label set"));
        assert!(err(r#"m{a="b} 1"#).reason.contains("unterminated"));
        assert!(err(r#"m{a="b",,} 1"#).reason.contains("label set"));
        assert!(err(r#"m{a="b", a="c"} 1"#).reason.contains("duplicate"));
        assert!(err("on 1").reason.contains("metric name"));
        assert!(err("m {} 1").reason.contains("series values"));
        assert!(err(r#"m{}1"#).reason.contains("expected a space"));
        assert!(err("{{}} 1").reason.contains("label set"));
    }

    fn hist(text: &str) -> (FloatHistogram, bool) {
        match values(&format!("m {text}")).as_slice() {
            [
                SeqValue::Histogram {
                    histogram,
                    hint_set,
                },
            ] => (histogram.clone(), *hint_set),
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn histogram_literal_fields() {
        let (h, hint_set) = hist(
            "{{schema:1 sum:-0.3 count:3.1 z_bucket:7.1 z_bucket_w:0.05 buckets:[5.1 10 7] offset:-3 n_buckets:[4.1 5] n_offset:-5 counter_reset_hint:gauge}}",
        );
        assert!(hint_set);
        assert_eq!(
            h,
            FloatHistogram {
                counter_reset_hint: CounterResetHint::Gauge,
                schema: 1,
                zero_threshold: 0.05,
                zero_count: 7.1,
                count: 3.1,
                sum: -0.3,
                positive_spans: vec![Span {
                    offset: -3,
                    length: 3
                }],
                negative_spans: vec![Span {
                    offset: -5,
                    length: 2
                }],
                positive_buckets: vec![5.1, 10.0, 7.0],
                negative_buckets: vec![4.1, 5.0],
                custom_values: vec![],
            }
        );
        let (h, hint_set) =
            hist("{{schema:-53 sum:5 count:4 custom_values:[1 2 ] buckets:[0 4 0]}}");
        assert!(!hint_set);
        assert_eq!(h.schema, CUSTOM_BUCKETS_SCHEMA);
        assert_eq!(h.custom_values, [1.0, 2.0]);
        assert_eq!(
            h.positive_spans,
            [Span {
                offset: 0,
                length: 3
            }]
        );
        assert_eq!(hist("{{}}").0, FloatHistogram::default());
        assert_eq!(hist("{{ }}").0, FloatHistogram::default());
        assert_eq!(
            hist("{{SUM:Inf COUNT:NaN counter_reset_hint:RESET }}")
                .0
                .sum,
            f64::INFINITY
        );
        assert!(hist("{{counter_reset_hint:unknown}}").1);
        assert_eq!(hist("{{offset:2}}").0.positive_spans, []);
    }

    #[test]
    fn histogram_repetition() {
        let v = values("m {{sum:1 count:1}}x2 _ {{count:3}}");
        assert_eq!(v.len(), 5);
        assert_eq!(v[0], v[2]);
        assert_eq!(v[3], SeqValue::Omitted);
    }

    #[test]
    fn histogram_expansion_adds_and_subtracts() {
        let v = values(
            "m {{sum:1 count:1 buckets:[1]}}+{{sum:2 count:2 buckets:[2] counter_reset_hint:not_reset}}x2",
        );
        let got: Vec<(f64, f64, Vec<f64>, bool)> = v
            .iter()
            .map(|x| match x {
                SeqValue::Histogram {
                    histogram: h,
                    hint_set,
                } => (h.sum, h.count, h.positive_buckets.clone(), *hint_set),
                other => panic!("{other:?}"),
            })
            .collect();
        // Every value carries the increment's flag, the base included.
        assert_eq!(
            got,
            [
                (1.0, 1.0, vec![1.0], true),
                (3.0, 3.0, vec![3.0], true),
                (5.0, 5.0, vec![5.0], true),
            ]
        );
        let v = values("m {{sum:10 count:10 z_bucket:4}}-{{sum:3 count:3 z_bucket:1}}x1");
        assert!(
            matches!(&v[1], SeqValue::Histogram { histogram: h, hint_set: false }
            if h.sum == 7.0 && h.count == 7.0 && h.zero_count == 3.0)
        );
        assert_eq!(values("m {{sum:1}}+{{sum:1}}x0").len(), 1);
    }

    #[test]
    fn histogram_expansion_errors() {
        let e = |s: &str| err(&format!("m {s}"));
        let x = e("{{schema:1 sum:1}}+{{schema:0 sum:1}}x1");
        assert!(
            x.reason.contains("cannot merge from schema 0 to 1"),
            "{x:?}"
        );
        assert_eq!(x.offset, 2);
        let x = e("{{schema:-53 custom_values:[1] buckets:[1]}}+{{buckets:[1]}}x1");
        assert!(x.reason.contains("error combining histograms"), "{x:?}");
        let x = e("{{schema:100}}+{{schema:100}}x1");
        assert!(x.reason.contains("invalid schema 100"), "{x:?}");
    }

    #[test]
    fn histogram_literal_errors() {
        let e = |s: &str| err(&format!("m {s}")).reason;
        assert!(e("{{sum:1 sum:2}}").contains("duplicate key \"sum\""));
        assert!(e("{{foo:1}}").contains("bad histogram descriptor"));
        assert!(e("{{sum 1}}").contains("missing `:`"));
        assert!(e("{{ sum:1}}").contains("histogram description"));
        assert!(e("{{buckets:[]}}").contains("number"));
        assert!(e("{{buckets:[ 1]}}").contains("number"));
        assert!(e("{{buckets:[1,2]}}").contains("buckets description"));
        assert!(e("{{z_bucket_w:-1}}").contains("number"));
        assert!(e("{{schema:1.5}}").contains("invalid integer"));
        assert!(e("{{schema:99999999999}}").contains("out of range"));
        assert!(e("{{counter_reset_hint:maybe}}").contains("counter_reset_hint"));
        assert!(e("{{sum:1").contains("unterminated") || e("{{sum:1").contains("histogram"));
        assert!(e("{{sum:1}}+{{sum:1}}").contains("repetition"));
        assert!(e("{{sum:1}}-5").contains("histogram"));
        assert!(e("{{sum:+1}}").contains("number"));
    }
}
