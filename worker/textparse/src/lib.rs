//! The Prometheus text exposition format (version 0.0.4), as scraped from `/metrics`.
//!
//! Written by hand because no maintained crate parses the format with the
//! errors we need: every error names the 1-based line and column (in
//! characters) and what was expected there, so a user can find the bad line in
//! an exporter's output. The grammar follows Prometheus's `textparse` lexer:
//!
//! ```text
//! # HELP name docstring          (escapes \\ and \n)
//! # TYPE name counter|gauge|histogram|summary|untyped
//! # UNIT name unit               (OpenMetrics)
//! # any other comment            (ignored)
//! name{label="value",...} value [timestamp_ms]
//! {"quoted.name", label="value"} value
//! ```
//!
//! Edge cases: blank lines are skipped; a trailing comma inside braces is
//! allowed; values are Go floats (`NaN`, `+Inf`, `-Inf`, exponents); label
//! values escape `\\`, `\"` and `\n`; a repeated label name is an error; a
//! missing timestamp is `None` (the scraper uses the scrape time).
//!
//! ```
//! let entries = emberlens_textparse::parse("up{job=\"a\"} 1 1700000000000\n").unwrap();
//! let emberlens_textparse::Entry::Sample(s) = &entries[0] else { panic!() };
//! assert_eq!(s.labels.to_string(), "up{job=\"a\"}");
//! assert_eq!(s.timestamp_ms, Some(1_700_000_000_000));
//! ```

use emberlens_model::{Labels, METRIC_NAME};

/// The type a `# TYPE` line declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    /// `counter`
    Counter,
    /// `gauge`
    Gauge,
    /// `histogram`
    Histogram,
    /// `summary`
    Summary,
    /// `untyped`
    Untyped,
}

/// One parsed sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedSample {
    /// Labels including `__name__`.
    pub labels: Labels,
    /// The value, which may be NaN or infinite.
    pub value: f64,
    /// The explicit timestamp in Unix milliseconds, if the line had one.
    pub timestamp_ms: Option<i64>,
}

/// One meaningful line of the exposition.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// `# HELP name text`
    Help {
        /// Metric family name.
        metric: String,
        /// Unescaped help text.
        text: String,
    },
    /// `# TYPE name type`
    Type {
        /// Metric family name.
        metric: String,
        /// Declared type.
        kind: MetricType,
    },
    /// `# UNIT name unit` (OpenMetrics; a plain comment in text 0.0.4, but
    /// harmless to read there too).
    Unit {
        /// Metric family name.
        metric: String,
        /// The unit, e.g. `seconds`.
        unit: String,
    },
    /// A sample line.
    Sample(ParsedSample),
}

/// A malformed line. `line` and `column` are 1-based; the column counts characters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}, column {column}: {reason}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What was expected or wrong there.
    pub reason: String,
}

/// Parses a whole exposition; the first malformed line fails it, as in
/// Prometheus, where one bad line fails the scrape.
pub fn parse(text: &str) -> Result<Vec<Entry>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(entry) = parse_line(line, i + 1)? {
            out.push(entry);
        }
    }
    Ok(out)
}

/// Parses one line (without its newline); `None` for blank lines and plain comments.
pub fn parse_line(line: &str, line_no: usize) -> Result<Option<Entry>, ParseError> {
    let mut c = Cursor {
        s: line,
        pos: 0,
        line: line_no,
    };
    c.skip_blank();
    match c.peek() {
        None => Ok(None),
        Some('#') => c.comment(),
        Some(_) => c.sample().map(|s| Some(Entry::Sample(s))),
    }
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
    line: usize,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn bump(&mut self) {
        self.pos += self.peek().map_or(0, char::len_utf8);
    }

    fn skip_blank(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
    }

    fn err(&self, reason: impl Into<String>) -> ParseError {
        self.err_at(self.pos, reason)
    }

    fn err_at(&self, byte_pos: usize, reason: impl Into<String>) -> ParseError {
        let mut reason = reason.into();
        match self.s[byte_pos..].chars().next() {
            Some(c) => reason.push_str(&format!(", found {c:?}")),
            None => reason.push_str(", found end of line"),
        }
        ParseError {
            line: self.line,
            column: self.s[..byte_pos].chars().count() + 1,
            reason,
        }
    }

    fn name(&mut self, what: &str) -> Result<&'a str, ParseError> {
        let start = self.pos;
        if !self.peek().is_some_and(is_name_start) {
            return Err(self.err(format!("expected {what}")));
        }
        while self.peek().is_some_and(is_name_char) {
            self.pos += 1;
        }
        Ok(&self.s[start..self.pos])
    }

    fn comment(&mut self) -> Result<Option<Entry>, ParseError> {
        self.bump(); // '#'
        self.skip_blank();
        let word_start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            self.pos += 1;
        }
        let keyword = &self.s[word_start..self.pos];
        if keyword != "HELP" && keyword != "TYPE" && keyword != "UNIT" {
            return Ok(None);
        }
        if !matches!(self.peek(), Some(' ' | '\t')) {
            return Ok(None); // e.g. "#HELPER": a plain comment
        }
        self.skip_blank();
        let metric = self.name("a metric name")?.to_string();
        if keyword == "HELP" {
            if self.peek().is_some() && !matches!(self.peek(), Some(' ' | '\t')) {
                return Err(self.err("expected a space after the metric name"));
            }
            self.skip_blank();
            let text = unescape_help(&self.s[self.pos..]);
            return Ok(Some(Entry::Help { metric, text }));
        }
        self.skip_blank();
        if keyword == "UNIT" {
            let unit = self.s[self.pos..].trim_end().to_string();
            return Ok(Some(Entry::Unit { metric, unit }));
        }
        let type_at = self.pos;
        let word = self.s[self.pos..].trim_end();
        let kind = match word {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "untyped" => MetricType::Untyped,
            _ => {
                return Err(self.err_at(
                    type_at,
                    "expected one of counter, gauge, histogram, summary, untyped",
                ));
            }
        };
        Ok(Some(Entry::Type { metric, kind }))
    }

    fn sample(&mut self) -> Result<ParsedSample, ParseError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if self.peek() != Some('{') {
            pairs.push((
                METRIC_NAME.to_string(),
                self.name("a metric name")?.to_string(),
            ));
        }
        let before_blank = self.pos;
        self.skip_blank();
        if self.peek() == Some('{') {
            self.bump();
            self.label_set(&mut pairs)?;
            if !matches!(self.peek(), Some(' ' | '\t')) {
                return Err(self.err("expected a space before the value"));
            }
            self.skip_blank();
        } else if self.pos == before_blank {
            return Err(self.err("expected a space before the value"));
        }
        match pairs.iter().find(|(n, _)| n == METRIC_NAME) {
            None => return Err(self.err_at(0, "expected a metric name")),
            Some((_, v)) if v.is_empty() => return Err(self.err_at(0, "the metric name is empty")),
            Some(_) => {}
        }
        let value = self.value()?;
        self.skip_blank();
        let timestamp_ms = if self.peek().is_some() {
            Some(self.timestamp()?)
        } else {
            None
        };
        self.skip_blank();
        if self.peek().is_some() {
            return Err(self.err("expected end of line after the timestamp"));
        }
        Ok(ParsedSample {
            labels: Labels::from_pairs(pairs),
            value,
            timestamp_ms,
        })
    }

    /// Labels after `{`, through the closing `}`.
    fn label_set(&mut self, pairs: &mut Vec<(String, String)>) -> Result<(), ParseError> {
        loop {
            self.skip_blank();
            match self.peek() {
                Some('}') => {
                    self.bump();
                    return Ok(());
                }
                Some('"') => {
                    // Prometheus 3: a quoted name, either the metric name on its
                    // own or a label name followed by `=`.
                    let name_at = self.pos;
                    let name = self.quoted("a quoted name")?;
                    self.skip_blank();
                    if self.peek() == Some('=') {
                        self.push_label(pairs, name, name_at)?;
                    } else if pairs.iter().any(|(n, _)| n == METRIC_NAME) {
                        return Err(self.err_at(name_at, "metric name given twice"));
                    } else {
                        pairs.push((METRIC_NAME.to_string(), name));
                    }
                }
                _ => {
                    let name_at = self.pos;
                    let name = self.name("a label name or \"}\"")?.to_string();
                    self.skip_blank();
                    self.push_label(pairs, name, name_at)?;
                }
            }
            self.skip_blank();
            match self.peek() {
                Some(',') => self.bump(),
                Some('}') => {}
                _ => return Err(self.err("expected \",\" or \"}\" after a label")),
            }
        }
    }

    fn push_label(
        &mut self,
        pairs: &mut Vec<(String, String)>,
        name: String,
        name_at: usize,
    ) -> Result<(), ParseError> {
        if self.peek() != Some('=') {
            return Err(self.err("expected \"=\" after the label name"));
        }
        self.bump();
        self.skip_blank();
        let value = self.quoted("a quoted label value")?;
        if pairs.iter().any(|(n, _)| *n == name) {
            return Err(self.err_at(name_at, format!("label {name:?} repeated")));
        }
        pairs.push((name, value));
        Ok(())
    }

    /// A `"..."` string with the format's escapes `\\`, `\"`, `\n`.
    fn quoted(&mut self, what: &str) -> Result<String, ParseError> {
        if self.peek() != Some('"') {
            return Err(self.err(format!("expected {what}")));
        }
        let start = self.pos;
        self.bump();
        let mut out = String::new();
        loop {
            let at = self.pos;
            match self.peek() {
                None => return Err(self.err_at(start, "unterminated quoted string")),
                Some('"') => {
                    self.bump();
                    return Ok(out);
                }
                Some('\\') => {
                    self.bump();
                    match self.peek() {
                        Some('\\') => out.push('\\'),
                        Some('"') => out.push('"'),
                        Some('n') => out.push('\n'),
                        _ => return Err(self.err_at(at, "invalid escape sequence")),
                    }
                    self.bump();
                }
                Some(c) => {
                    out.push(c);
                    self.bump();
                }
            }
        }
    }

    fn token(&mut self) -> (usize, &'a str) {
        let start = self.pos;
        while self.peek().is_some_and(|c| c != ' ' && c != '\t') {
            self.bump();
        }
        (start, &self.s[start..self.pos])
    }

    fn value(&mut self) -> Result<f64, ParseError> {
        let (at, tok) = self.token();
        parse_go_float(tok).ok_or_else(|| self.err_at(at, "expected a float value"))
    }

    fn timestamp(&mut self) -> Result<i64, ParseError> {
        let (at, tok) = self.token();
        tok.parse::<i64>()
            .map_err(|_| self.err_at(at, "expected an integer timestamp in milliseconds"))
    }
}

/// Go's `strconv.ParseFloat` for what exporters write: decimal and exponent
/// forms, `NaN`, `Inf`/`+Inf`/`-Inf` (any case), `infinity`.
fn parse_go_float(tok: &str) -> Option<f64> {
    if tok.is_empty() {
        return None;
    }
    let body = tok.strip_prefix(['+', '-']).unwrap_or(tok);
    let neg = tok.starts_with('-');
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Some(if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if body.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    // Rust accepts exactly the decimal forms Go does, plus the words handled above.
    if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    tok.parse::<f64>().ok()
}

fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn check(input: &str, expect: Expect) {
        let got = match parse(input) {
            Ok(entries) => entries
                .iter()
                .map(|e| match e {
                    Entry::Help { metric, text } => format!("HELP {metric} {text:?}"),
                    Entry::Type { metric, kind } => format!("TYPE {metric} {kind:?}"),
                    Entry::Unit { metric, unit } => format!("UNIT {metric} {unit}"),
                    Entry::Sample(s) => format!("{} {:?} {:?}", s.labels, s.value, s.timestamp_ms),
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Err(e) => format!("error: {e}"),
        };
        expect.assert_eq(&got);
    }

    #[test]
    fn parses_a_real_exposition() {
        check(
            r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

metric_without_timestamp_and_labels 12.47
something_weird{problem="division by zero"} +Inf -3982045
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05",} 24054
http_request_duration_seconds_bucket{le="+Inf"} 144320
{"my.dotted.metric", "a.b"="c"} NaN
"#,
            expect![[r#"
                HELP http_requests_total "The total number of HTTP requests."
                TYPE http_requests_total Counter
                http_requests_total{code="200", method="post"} 1027.0 Some(1395066363000)
                http_requests_total{code="400", method="post"} 3.0 Some(1395066363000)
                msdos_file_access_time_seconds{error="Cannot find file:\n\"FILE.TXT\"", path="C:\\DIR\\FILE.TXT"} 1458255915.0 None
                metric_without_timestamp_and_labels 12.47 None
                something_weird{problem="division by zero"} inf Some(-3982045)
                TYPE http_request_duration_seconds Histogram
                http_request_duration_seconds_bucket{le="0.05"} 24054.0 None
                http_request_duration_seconds_bucket{le="+Inf"} 144320.0 None
                my.dotted.metric{a.b="c"} NaN None"#]],
        );
    }

    #[test]
    fn errors_name_line_and_column() {
        check(
            "ok 1\nbad{a=\"b\" 1\n",
            expect![[r#"error: line 2, column 11: expected "," or "}" after a label, found '1'"#]],
        );
        check(
            "m{a=b} 1",
            expect![[r#"error: line 1, column 5: expected a quoted label value, found 'b'"#]],
        );
        check(
            "m 1 2 3",
            expect![[
                r#"error: line 1, column 7: expected end of line after the timestamp, found '3'"#
            ]],
        );
        check(
            "m one",
            expect![[r#"error: line 1, column 3: expected a float value, found 'o'"#]],
        );
        check(
            "m",
            expect![[
                r#"error: line 1, column 2: expected a space before the value, found end of line"#
            ]],
        );
        check(
            "m 1 12.5",
            expect![[
                r#"error: line 1, column 5: expected an integer timestamp in milliseconds, found '1'"#
            ]],
        );
        check(
            "m{a=\"1\",a=\"2\"} 1",
            expect![[r#"error: line 1, column 9: label "a" repeated, found 'a'"#]],
        );
        check(
            "m{a=\"x\\q\"} 1",
            expect![[r#"error: line 1, column 7: invalid escape sequence, found '\\'"#]],
        );
        check(
            "m{a=\"x} 1",
            expect![[r#"error: line 1, column 5: unterminated quoted string, found '"'"#]],
        );
        check(
            "# TYPE m countr",
            expect![[
                r#"error: line 1, column 10: expected one of counter, gauge, histogram, summary, untyped, found 'c'"#
            ]],
        );
        check(
            "{a=\"1\"} 1",
            expect![[r#"error: line 1, column 1: expected a metric name, found '{'"#]],
        );
        check(
            "<html>garbage</html>",
            expect![[r#"error: line 1, column 1: expected a metric name, found '<'"#]],
        );
        check(
            "é 1",
            expect![[r#"error: line 1, column 1: expected a metric name, found 'é'"#]],
        );
    }

    #[test]
    fn unit_lines_are_read() {
        check(
            "# TYPE req_seconds counter\n# UNIT req_seconds seconds\n# UNIT x\nreq_seconds_total 1\n",
            expect![[r#"
                TYPE req_seconds Counter
                UNIT req_seconds seconds
                UNIT x 
                req_seconds_total 1.0 None"#]],
        );
    }

    #[test]
    fn plain_comments_and_blank_lines_are_skipped() {
        check("# just a comment\n#HELPER x\n\n  \n", expect![[""]]);
    }

    #[test]
    fn go_floats() {
        for (s, v) in [
            ("1e3", 1000.0),
            ("-Inf", f64::NEG_INFINITY),
            ("+1.5", 1.5),
            (".5", 0.5),
        ] {
            assert_eq!(parse_go_float(s), Some(v), "{s}");
        }
        for s in ["", "abc", "1.2.3", "0x", "--1"] {
            assert_eq!(parse_go_float(s), None, "{s}");
        }
        assert!(parse_go_float("nan").is_some_and(f64::is_nan));
    }
}
