//! The PromQL lexer: source text → tokens with byte positions.
//!
//! Follows Prometheus's `lex.go` where it matters to users: keywords and
//! aggregation names are case-insensitive; `Inf` and `NaN` are numbers in any
//! case; numbers are decimal, hex (`0x1f`) or with an exponent; a number
//! directly followed by a unit (`ms s m h d w y`, chained: `1h30m`) is a
//! duration; strings use `"…"` or `'…'` with Go escapes, or raw `` `…` ``;
//! `#` starts a comment to the end of the line. The histogram trim operators
//! are `</` and `>/`.
//!
//! Edge cases: an identifier may contain `:` (recording-rule names) but a
//! label name may not (the parser checks); a bad escape or an unterminated
//! string is an error at its position, never a panic.

use crate::error::ParseError;

/// What a token is.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A name: metric, function or label (keywords are separate).
    Ident(String),
    /// A keyword or aggregation operator, lowercased.
    Keyword(Keyword),
    /// A number literal.
    Number(f64),
    /// A duration literal, in milliseconds.
    Duration(i64),
    /// A string literal, unescaped.
    Str(String),
    /// An operator or punctuation.
    Punct(Punct),
    /// End of input.
    Eof,
}

/// Keywords (matched case-insensitively).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keyword {
    And,
    Or,
    Unless,
    Atan2,
    Bool,
    By,
    Without,
    On,
    Ignoring,
    GroupLeft,
    GroupRight,
    Offset,
    Start,
    End,
    Anchored,
    Smoothed,
    Fill,
    FillLeft,
    FillRight,
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    CountValues,
    Quantile,
    Limitk,
    LimitRatio,
}

impl Keyword {
    fn from_lower(s: &str) -> Option<Keyword> {
        use Keyword::*;
        Some(match s {
            "and" => And,
            "or" => Or,
            "unless" => Unless,
            "atan2" => Atan2,
            "bool" => Bool,
            "by" => By,
            "without" => Without,
            "on" => On,
            "ignoring" => Ignoring,
            "group_left" => GroupLeft,
            "group_right" => GroupRight,
            "offset" => Offset,
            "start" => Start,
            "end" => End,
            "anchored" => Anchored,
            "smoothed" => Smoothed,
            "fill" => Fill,
            "fill_left" => FillLeft,
            "fill_right" => FillRight,
            "sum" => Sum,
            "avg" => Avg,
            "count" => Count,
            "min" => Min,
            "max" => Max,
            "group" => Group,
            "stddev" => Stddev,
            "stdvar" => Stdvar,
            "topk" => Topk,
            "bottomk" => Bottomk,
            "count_values" => CountValues,
            "quantile" => Quantile,
            "limitk" => Limitk,
            "limit_ratio" => LimitRatio,
            _ => return None,
        })
    }

    /// Whether this keyword names an aggregation.
    pub fn is_aggregator(self) -> bool {
        use Keyword::*;
        matches!(
            self,
            Sum | Avg
                | Count
                | Min
                | Max
                | Group
                | Stddev
                | Stdvar
                | Topk
                | Bottomk
                | CountValues
                | Quantile
                | Limitk
                | LimitRatio
        )
    }

    /// The keyword as written in lowercase.
    pub fn as_str(self) -> &'static str {
        use Keyword::*;
        match self {
            And => "and",
            Or => "or",
            Unless => "unless",
            Atan2 => "atan2",
            Bool => "bool",
            By => "by",
            Without => "without",
            On => "on",
            Ignoring => "ignoring",
            GroupLeft => "group_left",
            GroupRight => "group_right",
            Offset => "offset",
            Start => "start",
            End => "end",
            Anchored => "anchored",
            Smoothed => "smoothed",
            Fill => "fill",
            FillLeft => "fill_left",
            FillRight => "fill_right",
            Sum => "sum",
            Avg => "avg",
            Count => "count",
            Min => "min",
            Max => "max",
            Group => "group",
            Stddev => "stddev",
            Stdvar => "stdvar",
            Topk => "topk",
            Bottomk => "bottomk",
            CountValues => "count_values",
            Quantile => "quantile",
            Limitk => "limitk",
            LimitRatio => "limit_ratio",
        }
    }
}

/// Operators and punctuation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Punct {
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Colon,
    At,
    Assign,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    EqlC,
    Neq,
    Lss,
    Lte,
    Gtr,
    Gte,
    EqlRegex,
    NeqRegex,
    TrimUpper,
    TrimLower,
}

impl Punct {
    /// How Prometheus writes the token in messages.
    pub fn as_str(self) -> &'static str {
        use Punct::*;
        match self {
            LParen => "(",
            RParen => ")",
            LBrace => "{",
            RBrace => "}",
            LBracket => "[",
            RBracket => "]",
            Comma => ",",
            Colon => ":",
            At => "@",
            Assign => "=",
            Add => "+",
            Sub => "-",
            Mul => "*",
            Div => "/",
            Mod => "%",
            Pow => "^",
            EqlC => "==",
            Neq => "!=",
            Lss => "<",
            Lte => "<=",
            Gtr => ">",
            Gte => ">=",
            EqlRegex => "=~",
            NeqRegex => "!~",
            TrimUpper => "</",
            TrimLower => ">/",
        }
    }
}

/// A token and where it is (byte offsets into the source).
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Byte offset of its first character.
    pub start: usize,
    /// Byte offset just past it.
    pub end: usize,
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    // Inside `[…]` a `:` separates a subquery's range and step; elsewhere
    // it may start a name (`:rule:name`).
    let mut bracket_depth = 0usize;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        let tok = if c.is_ascii_alphabetic() || c == b'_' || (c == b':' && bracket_depth == 0) {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                i += 1;
            }
            let word = &src[start..i];
            let lower = word.to_ascii_lowercase();
            match lower.as_str() {
                "inf" => Tok::Number(f64::INFINITY),
                "nan" => Tok::Number(f64::NAN),
                _ => match Keyword::from_lower(&lower) {
                    Some(k) => Tok::Keyword(k),
                    None => Tok::Ident(word.to_string()),
                },
            }
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let (tok, end) = lex_number(src, start)?;
            i = end;
            tok
        } else if c == b'"' || c == b'\'' || c == b'`' {
            let (s, end) = lex_string(src, start)?;
            i = end;
            Tok::Str(s)
        } else {
            let two = b.get(i + 1).copied();
            let (p, len) = match (c, two) {
                (b'=', Some(b'=')) => (Punct::EqlC, 2),
                (b'=', Some(b'~')) => (Punct::EqlRegex, 2),
                (b'!', Some(b'=')) => (Punct::Neq, 2),
                (b'!', Some(b'~')) => (Punct::NeqRegex, 2),
                (b'<', Some(b'=')) => (Punct::Lte, 2),
                (b'>', Some(b'=')) => (Punct::Gte, 2),
                (b'<', Some(b'/')) => (Punct::TrimUpper, 2),
                (b'>', Some(b'/')) => (Punct::TrimLower, 2),
                (b'=', _) => (Punct::Assign, 1),
                (b'<', _) => (Punct::Lss, 1),
                (b'>', _) => (Punct::Gtr, 1),
                (b'(', _) => (Punct::LParen, 1),
                (b')', _) => (Punct::RParen, 1),
                (b'{', _) => (Punct::LBrace, 1),
                (b'}', _) => (Punct::RBrace, 1),
                (b'[', _) => (Punct::LBracket, 1),
                (b']', _) => (Punct::RBracket, 1),
                (b',', _) => (Punct::Comma, 1),
                (b':', _) => (Punct::Colon, 1),
                (b'@', _) => (Punct::At, 1),
                (b'+', _) => (Punct::Add, 1),
                (b'-', _) => (Punct::Sub, 1),
                (b'*', _) => (Punct::Mul, 1),
                (b'/', _) => (Punct::Div, 1),
                (b'%', _) => (Punct::Mod, 1),
                (b'^', _) => (Punct::Pow, 1),
                _ => {
                    let ch = src[start..].chars().next().unwrap_or('?');
                    return Err(ParseError::at(
                        start,
                        start + ch.len_utf8(),
                        format!("unexpected character: {ch:?}"),
                    ));
                }
            };
            i += len;
            match p {
                Punct::LBracket => bracket_depth += 1,
                Punct::RBracket => bracket_depth = bracket_depth.saturating_sub(1),
                _ => {}
            }
            Tok::Punct(p)
        };
        out.push(Token { tok, start, end: i });
    }
    out.push(Token {
        tok: Tok::Eof,
        start: b.len(),
        end: b.len(),
    });
    Ok(out)
}

/// Milliseconds per duration unit.
fn unit_ms(unit: &str) -> Option<i64> {
    Some(match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        "y" => 31_536_000_000,
        _ => return None,
    })
}

fn lex_number(src: &str, start: usize) -> Result<(Tok, usize), ParseError> {
    let b = src.as_bytes();
    let mut i = start;
    // Hex.
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        let digits_start = i;
        while i < b.len() && b[i].is_ascii_hexdigit() {
            i += 1;
        }
        let v = u64::from_str_radix(&src[digits_start..i], 16)
            .map_err(|_| ParseError::at(start, i, format!("bad number {:?}", &src[start..i])))?;
        return Ok((Tok::Number(v as f64), i));
    }
    // A duration: digits then a unit, repeated.
    let mut j = i;
    let mut total: i64 = 0;
    let mut is_duration = false;
    loop {
        let ds = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if ds == j {
            break;
        }
        let us = j;
        while j < b.len() && b[j].is_ascii_alphabetic() {
            j += 1;
        }
        let Some(ms) = unit_ms(&src[us..j]) else {
            j = ds;
            break;
        };
        let n: i64 = src[ds..us]
            .parse()
            .map_err(|_| ParseError::at(ds, us, "duration out of range"))?;
        total = n
            .checked_mul(ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| ParseError::at(start, j, "duration out of range"))?;
        is_duration = true;
    }
    if is_duration
        && !b
            .get(j)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'_')
    {
        return Ok((Tok::Duration(total), j));
    }
    // A decimal number with optional fraction and exponent.
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut k = i + 1;
        if k < b.len() && (b[k] == b'+' || b[k] == b'-') {
            k += 1;
        }
        if k < b.len() && b[k].is_ascii_digit() {
            while k < b.len() && b[k].is_ascii_digit() {
                k += 1;
            }
            i = k;
        }
    }
    if i < b.len() && (b[i].is_ascii_alphabetic() || b[i] == b'_') {
        let mut k = i;
        while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'_') {
            k += 1;
        }
        return Err(ParseError::at(
            start,
            k,
            format!("bad number or duration syntax: {:?}", &src[start..k]),
        ));
    }
    let v: f64 = src[start..i]
        .parse()
        .map_err(|_| ParseError::at(start, i, format!("bad number {:?}", &src[start..i])))?;
    Ok((Tok::Number(v), i))
}

/// Unescapes a quoted string starting at `start`; returns it and the end.
/// Go strings hold bytes: escapes of invalid UTF-8 (`"\xc5"`) become
/// U+FFFD here; [`string_literal_bytes`] gives the bytes themselves.
fn lex_string(src: &str, start: usize) -> Result<(String, usize), ParseError> {
    let (bytes, end) = lex_string_bytes(src, start)?;
    Ok((String::from_utf8_lossy(&bytes).into_owned(), end))
}

/// The bytes a quoted string literal (the whole literal, quotes included)
/// stands for, as Go sees them; `None` when it is not a valid literal.
pub(crate) fn string_literal_bytes(lit: &str) -> Option<Vec<u8>> {
    match lit.as_bytes().first() {
        Some(b'"' | b'\'' | b'`') => lex_string_bytes(lit, 0).ok().map(|(b, _)| b),
        _ => None,
    }
}

fn lex_string_bytes(src: &str, start: usize) -> Result<(Vec<u8>, usize), ParseError> {
    let quote = src.as_bytes().get(start).map_or('"', |b| *b as char);
    let mut out: Vec<u8> = Vec::new();
    let push = |out: &mut Vec<u8>, c: char| {
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    };
    let mut chars = src[start + 1..].char_indices();
    let unterminated = || ParseError::at(start, src.len(), "unterminated quoted string");
    while let Some((off, c)) = chars.next() {
        let at = start + 1 + off;
        if c == quote {
            return Ok((out, at + 1));
        }
        if quote == '`' {
            push(&mut out, c);
            continue;
        }
        if c == '\n' {
            return Err(ParseError::at(start, at, "unterminated quoted string"));
        }
        if c != '\\' {
            push(&mut out, c);
            continue;
        }
        let (_, e) = chars.next().ok_or_else(unterminated)?;
        let hex = |n: usize, chars: &mut std::str::CharIndices<'_>| {
            let mut v: u32 = 0;
            for _ in 0..n {
                let (_, h) = chars.next().ok_or_else(unterminated)?;
                let d = h
                    .to_digit(16)
                    .ok_or_else(|| ParseError::at(at, at + 2, "invalid escape sequence"))?;
                v = v * 16 + d;
            }
            Ok::<u32, ParseError>(v)
        };
        match e {
            'a' => push(&mut out, '\u{7}'),
            'b' => push(&mut out, '\u{8}'),
            'f' => push(&mut out, '\u{c}'),
            'n' => push(&mut out, '\n'),
            'r' => push(&mut out, '\r'),
            't' => push(&mut out, '\t'),
            'v' => push(&mut out, '\u{b}'),
            '\\' => push(&mut out, '\\'),
            '"' if quote == '"' => push(&mut out, '"'),
            '\'' if quote == '\'' => out.push(b'\''),
            'x' => {
                let v = hex(2, &mut chars)?;
                // Go strings hold bytes, valid UTF-8 or not.
                out.push(v as u8);
            }
            'u' | 'U' => {
                let v = hex(if e == 'u' { 4 } else { 8 }, &mut chars)?;
                push(
                    &mut out,
                    char::from_u32(v)
                        .ok_or_else(|| ParseError::at(at, at + 2, "invalid escape sequence"))?,
                );
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let (_, d) = chars.next().ok_or_else(unterminated)?;
                    v = v * 8
                        + d.to_digit(8)
                            .ok_or_else(|| ParseError::at(at, at + 2, "invalid escape sequence"))?;
                }
                let v = u8::try_from(v)
                    .map_err(|_| ParseError::at(at, at + 4, "octal escape value > 255"))?;
                out.push(v);
            }
            _ => {
                return Err(ParseError::at(
                    at,
                    at + 1 + e.len_utf8(),
                    format!("unknown escape sequence {e:?}"),
                ));
            }
        }
    }
    Err(unterminated())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn numbers_durations_and_keywords() {
        let t = toks("1h30m 0x1F 1e3 .5 Inf nan SUM by");
        assert_eq!(t[0], Tok::Duration(5_400_000));
        assert_eq!(t[1], Tok::Number(31.0));
        assert_eq!(t[2], Tok::Number(1000.0));
        assert_eq!(t[3], Tok::Number(0.5));
        assert_eq!(t[4], Tok::Number(f64::INFINITY));
        assert!(matches!(t[5], Tok::Number(v) if v.is_nan()));
        assert_eq!(t[6], Tok::Keyword(Keyword::Sum));
        assert_eq!(t[7], Tok::Keyword(Keyword::By));
        assert_eq!(t[8], Tok::Eof);
        assert_eq!(toks("5m")[0], Tok::Duration(300_000));
        assert_eq!(toks("1ms")[0], Tok::Duration(1));
        assert!(lex("5x").is_err());
    }

    #[test]
    fn operators_and_strings() {
        assert_eq!(
            toks(r#"a </ 1 >/ 2 =~ "x\n" 'y' `z\n`"#),
            vec![
                Tok::Ident("a".into()),
                Tok::Punct(Punct::TrimUpper),
                Tok::Number(1.0),
                Tok::Punct(Punct::TrimLower),
                Tok::Number(2.0),
                Tok::Punct(Punct::EqlRegex),
                Tok::Str("x\n".into()),
                Tok::Str("y".into()),
                Tok::Str("z\\n".into()),
                Tok::Eof,
            ]
        );
        assert!(lex("\"abc").is_err());
        assert!(lex(r#""\q""#).is_err());
        assert_eq!(toks("# c\nfoo")[0], Tok::Ident("foo".into()));
    }

    #[test]
    fn string_literals_keep_go_bytes() {
        assert_eq!(
            string_literal_bytes(r#""a\xc5z""#),
            Some(vec![b'a', 0xc5, b'z'])
        );
        assert_eq!(string_literal_bytes(r#""\305""#), Some(vec![0xc5]));
        assert_eq!(
            string_literal_bytes(r#""\u00e9""#),
            Some("é".as_bytes().to_vec())
        );
        assert_eq!(string_literal_bytes("`\\xc5`"), Some(b"\\xc5".to_vec()));
        assert_eq!(string_literal_bytes("abc"), None);
        assert_eq!(string_literal_bytes("\""), None);
        assert!(lex(r#""\777""#).is_err());
        assert_eq!(toks(r#""a\xc5z""#)[0], Tok::Str("a\u{fffd}z".into()));
    }
}
