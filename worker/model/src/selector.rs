//! Label matchers and the series-selector syntax `metric{label op "value", ...}`.
//!
//! This is the selector subset of PromQL that the raw-samples endpoint and the
//! TSDB tools take (`--match`). The PromQL engine has its own full parser; it
//! builds the same [`Matcher`] values.
//!
//! Semantics follow Prometheus's `labels.Matcher`: regexes are fully anchored,
//! an absent label matches as the empty string, and a selector must contain at
//! least one matcher that does not match the empty string.

use std::fmt;

use regex::Regex;

use crate::labels::{Labels, METRIC_NAME};

/// A matcher's operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    RegexMatch,
    /// `!~`
    RegexNoMatch,
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        })
    }
}

/// One label matcher, with its regex compiled once.
#[derive(Clone, Debug)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: MatchOp,
    /// The value or the regex source, as written.
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Matcher {
    /// Builds a matcher; regex operators compile `value` fully anchored.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, regex::Error> {
        let regex = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => {
                Some(Regex::new(&format!("^(?s:{value})$"))?)
            }
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// Whether a label value (`""` for an absent label) matches.
    pub fn matches(&self, v: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::RegexMatch, Some(re)) => re.is_match(v),
            (MatchOp::RegexNoMatch, Some(re)) => !re.is_match(v),
            // `new` always compiles a regex for the regex operators.
            (MatchOp::RegexMatch | MatchOp::RegexNoMatch, None) => false,
        }
    }

    /// Whether a series' labels satisfy this matcher.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name))
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op, self.value)
    }
}

/// A selector that could not be parsed, with the byte offset of the problem.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("bad series selector at {offset}: {reason}")]
pub struct SelectorError {
    /// Byte offset into the selector text.
    pub offset: usize,
    /// What was wrong there.
    pub reason: String,
}

/// Parses `metric`, `metric{a="b"}` or `{a=~"x", b!="y"}` into matchers.
/// The metric name, when present, becomes a `__name__=` matcher first.
pub fn parse_selector(text: &str) -> Result<Vec<Matcher>, SelectorError> {
    let mut p = Parser { s: text, pos: 0 };
    let mut out = Vec::new();
    p.skip_ws();
    if p.peek().is_some_and(is_name_start) {
        let name = p.ident(true);
        out.push(eq_matcher(METRIC_NAME, name));
    }
    p.skip_ws();
    if p.peek() == Some('{') {
        p.pos += 1;
        loop {
            p.skip_ws();
            if p.peek() == Some('}') {
                p.pos += 1;
                break;
            }
            let name_at = p.pos;
            let name = match p.peek() {
                Some('"') | Some('\'') => p.string()?,
                Some(c) if is_name_start(c) => p.ident(false).to_string(),
                _ => return Err(p.err("expected a label name")),
            };
            p.skip_ws();
            // `{"metric.name"}`: a quoted name on its own is the metric name.
            if matches!(p.peek(), Some(',') | Some('}')) && text[name_at..].starts_with(['"', '\''])
            {
                out.push(eq_matcher(METRIC_NAME, &name));
            } else {
                let op = p.op()?;
                p.skip_ws();
                let value_at = p.pos;
                let value = p.string()?;
                let m = Matcher::new(&name, op, &value).map_err(|e| SelectorError {
                    offset: value_at,
                    reason: format!("invalid regex {value:?}: {}", regex_reason(&e)),
                })?;
                out.push(m);
            }
            p.skip_ws();
            match p.peek() {
                Some(',') => p.pos += 1,
                Some('}') => {}
                _ => return Err(p.err("expected \",\" or \"}\"")),
            }
        }
    }
    p.skip_ws();
    if p.pos != text.len() {
        return Err(p.err("unexpected text after the selector"));
    }
    if !out.iter().any(|m| !m.matches("")) {
        return Err(SelectorError {
            offset: 0,
            reason: "vector selector must contain at least one non-empty matcher".into(),
        });
    }
    Ok(out)
}

/// The last line of a `regex` error ("unclosed group"), without the echo of
/// our anchored wrapper pattern, which would only confuse the user.
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text.lines().last().unwrap_or_default();
    last.strip_prefix("error: ").unwrap_or(last).to_string()
}

fn eq_matcher(name: &str, value: &str) -> Matcher {
    Matcher {
        name: name.to_string(),
        op: MatchOp::Equal,
        value: value.to_string(),
        regex: None,
    }
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn err(&self, reason: &str) -> SelectorError {
        let found = match self.peek() {
            Some(c) => format!(", found {c:?}"),
            None => ", found end of input".to_string(),
        };
        SelectorError {
            offset: self.pos,
            reason: format!("{reason}{found}"),
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += self.peek().map_or(0, char::len_utf8);
        }
    }

    /// An identifier; metric names may contain `:`, label names may not.
    fn ident(&mut self, allow_colon: bool) -> &'a str {
        let start = self.pos;
        for (i, c) in self.s[start..].char_indices() {
            let ok = c.is_ascii_alphanumeric() || c == '_' || (allow_colon && c == ':');
            if !ok {
                self.pos = start + i;
                return &self.s[start..self.pos];
            }
        }
        self.pos = self.s.len();
        &self.s[start..]
    }

    fn op(&mut self) -> Result<MatchOp, SelectorError> {
        let rest = &self.s[self.pos..];
        let (op, len) = if rest.starts_with("=~") {
            (MatchOp::RegexMatch, 2)
        } else if rest.starts_with("!~") {
            (MatchOp::RegexNoMatch, 2)
        } else if rest.starts_with("!=") {
            (MatchOp::NotEqual, 2)
        } else if rest.starts_with('=') {
            (MatchOp::Equal, 1)
        } else {
            return Err(self.err("expected one of =, !=, =~, !~"));
        };
        self.pos += len;
        Ok(op)
    }

    /// A PromQL string: `"..."` or `'...'` with Go escapes, or a raw `` `...` ``.
    fn string(&mut self) -> Result<String, SelectorError> {
        let start = self.pos;
        let quote = match self.peek() {
            Some(q @ ('"' | '\'' | '`')) => q,
            _ => return Err(self.err("expected a quoted string")),
        };
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.s[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            if c == quote {
                self.pos += i + 1;
                return Ok(out);
            }
            if c == '\\' && quote != '`' {
                let Some((_, e)) = chars.next() else { break };
                out.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '\\' | '"' | '\'' => e,
                    other => {
                        return Err(SelectorError {
                            offset: self.pos + i,
                            reason: format!("unknown escape sequence \\{other}"),
                        });
                    }
                });
            } else {
                out.push(c);
            }
        }
        Err(SelectorError {
            offset: start,
            reason: "unterminated quoted string".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect: &str) {
        let got = match parse_selector(text) {
            Ok(ms) => ms
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            Err(e) => e.to_string(),
        };
        assert_eq!(got, expect, "selector {text:?}");
    }

    #[test]
    fn parses_the_forms_users_write() {
        check("up", r#"__name__="up""#);
        check(
            r#"http_requests_total{job="api", code=~"5.."}"#,
            r#"__name__="http_requests_total" job="api" code=~"5..""#,
        );
        check(r#"{job="x",}"#, r#"job="x""#);
        check(r#"{"my.metric", a!~'b'}"#, r#"__name__="my.metric" a!~"b""#);
        check(r#"m{a="x\"y\n"}"#, r#"__name__="m" a="x\"y\n""#);
        check("m{a=`\\d+`}", r#"__name__="m" a="\\d+""#);
    }

    #[test]
    fn errors_name_the_offset() {
        check(
            "up{",
            "bad series selector at 3: expected a label name, found end of input",
        );
        check(
            r#"up{a~"b"}"#,
            "bad series selector at 4: expected one of =, !=, =~, !~, found '~'",
        );
        check(
            r#"up{a="b"#,
            "bad series selector at 5: unterminated quoted string",
        );
        check(
            r#"{a=~"("}"#,
            r#"bad series selector at 4: invalid regex "(": unclosed group"#,
        );
        check(
            r#"{a=""}"#,
            "bad series selector at 0: vector selector must contain at least one non-empty matcher",
        );
        check(
            "up x",
            "bad series selector at 3: unexpected text after the selector, found 'x'",
        );
    }

    #[test]
    fn regex_is_fully_anchored_and_absent_is_empty() {
        let m = Matcher::new("a", MatchOp::RegexMatch, "b|c").unwrap();
        assert!(m.matches("b"));
        assert!(!m.matches("ab"));
        let empty = Matcher::new("a", MatchOp::RegexMatch, "x|").unwrap();
        assert!(empty.matches_labels(&Labels::default()));
        let ne = Matcher::new("a", MatchOp::NotEqual, "x").unwrap();
        assert!(ne.matches_labels(&Labels::default()));
    }
}
