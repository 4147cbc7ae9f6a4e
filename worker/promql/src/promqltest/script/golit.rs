//! Go's literal syntax, as far as the promqltest language leans on it.
//!
//! The test files are read by Go code, so a number or a string means what Go's
//! `strconv` makes of it, which is not always what Rust's `str::parse` would
//! say:
//! - [`parse_go_number`] is "an integer in any Go base, else a float": `010`
//!   is 8 (octal), `0x1f` is 31, `1_000` is 1000, `08` is 8 (not octal, so
//!   it falls through to the float parser), `0x1p-2` is 0.25 (a hex float).
//!   PromQL's parser reads every number of a series description this way, and
//!   the test harness reads a bare scalar result line this way.
//! - Floats: `Inf`, `+inf`, `-Infinity`, `NaN` (any case; no sign on NaN, as
//!   in Go), underscores only between digits, a hex mantissa only with a `p`
//!   exponent. A value out of range (`1e400`) is an error in Go, so it is here
//!   too; underflow (`1e-400`) silently gives 0, as in Go.
//! - [`unquote`] is `strconv.Unquote` (with `multi_char_single_quotes`, the
//!   PromQL flavour that allows `'abc'`): `"..."` with Go escapes, raw
//!   `` `...` `` (carriage returns dropped), `'x'`. Go strings may hold any
//!   bytes (`"\xff"`); ours are UTF-8, so a string that unescapes to invalid
//!   UTF-8 is an error rather than a silently altered value.

/// Parses a number the way PromQL's parser and the test harness do:
/// `strconv.ParseInt(s, 0, 64)`, and if that fails `strconv.ParseFloat(s, 64)`.
pub(crate) fn parse_go_number(s: &str) -> Option<f64> {
    // Beyond 2^53 an i64 is not exactly representable, but Go converts with
    // `float64(n)` too, which rounds to nearest like `as`.
    parse_go_int_base0(s)
        .map(|n| n as f64)
        .or_else(|| parse_go_float(s))
}

/// `strconv.ParseUint(s, 10, 64)`: ASCII digits only, no sign, no underscores.
pub(crate) fn parse_go_uint10(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `strconv.ParseInt(s, 0, 64)`: optional sign, then `0x`/`0o`/`0b`/`0`
/// (octal) prefixes or decimal, underscores allowed between digits.
pub(crate) fn parse_go_int_base0(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let bytes = body.as_bytes();
    if bytes.is_empty() {
        return None;
    }
    let (base, digits) = if bytes[0] == b'0' && bytes.len() >= 3 {
        match bytes[1].to_ascii_lowercase() {
            b'b' => (2, &body[2..]),
            b'o' => (8, &body[2..]),
            b'x' => (16, &body[2..]),
            _ => (8, &body[1..]),
        }
    } else if bytes[0] == b'0' {
        (8, &body[1..])
    } else {
        (10, body)
    };
    let mut value: u64 = 0;
    let mut underscores = false;
    for b in digits.bytes() {
        if b == b'_' {
            underscores = true;
            continue;
        }
        let d = u64::from(char::from(b).to_digit(16)?);
        if d >= base {
            return None;
        }
        value = value.checked_mul(base)?.checked_add(d)?;
    }
    if underscores && !underscore_ok(body) {
        return None;
    }
    const CUTOFF: u64 = 1 << 63;
    if neg {
        if value > CUTOFF {
            return None;
        }
        // -(2^63) is the one value whose magnitude does not fit in i64.
        Some(0i64.wrapping_sub_unsigned(value))
    } else {
        i64::try_from(value).ok()
    }
}

/// Go's rule for digit separators: an underscore must sit between two digits
/// (a base prefix counts as a digit). `s` has no sign.
fn underscore_ok(s: &str) -> bool {
    let b = s.as_bytes();
    // What was seen last: '^' start, '0' digit or prefix, '_', '!' other.
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let c = b[i];
        i += 1;
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
            continue;
        }
        if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
            continue;
        }
        if saw == b'_' {
            return false;
        }
        saw = b'!';
    }
    saw != b'_'
}

/// `strconv.ParseFloat(s, 64)`, errors (including out-of-range) as `None`.
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    if let Some(v) = parse_special(s) {
        return Some(v);
    }
    let (neg, body) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if body.contains('_') && !underscore_ok(body) {
        return None;
    }
    let clean: String = body.chars().filter(|&c| c != '_').collect();
    let magnitude =
        if clean.len() > 2 && clean.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("0x")) {
            parse_hex_float(&clean[2..])?
        } else {
            if !is_go_decimal_float(&clean) {
                return None;
            }
            clean.parse::<f64>().ok()?
        };
    if magnitude.is_infinite() {
        // Go reports a finite literal beyond f64's range as ErrRange.
        return None;
    }
    Some(if neg { -magnitude } else { magnitude })
}

/// `inf`, `infinity` (optionally signed) and `nan` (unsigned), any case.
fn parse_special(s: &str) -> Option<f64> {
    let (sign, body) = match s.as_bytes().first()? {
        b'+' => (1.0, &s[1..]),
        b'-' => (-1.0, &s[1..]),
        _ => (0.0, s),
    };
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Some(if sign < 0.0 {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if sign == 0.0 && body.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    None
}

/// Digits with at most one `.`, at least one digit, then optionally
/// `e`/`E`, a sign and at least one digit. No sign, no underscores.
fn is_go_decimal_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut dots = 0;
    let mut digits = 0;
    for b in mantissa.bytes() {
        match b {
            b'.' => dots += 1,
            b'0'..=b'9' => digits += 1,
            _ => return false,
        }
    }
    if dots > 1 || digits == 0 {
        return false;
    }
    match exponent {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
        }
    }
}

/// A hex float after `0x`: hex digits with at most one `.`, at least one
/// digit, and a mandatory `p` exponent (Go's syntax). Rounds to nearest; in
/// the subnormal range the result may be one rounding step off.
fn parse_hex_float(s: &str) -> Option<f64> {
    let p = s.find(['p', 'P'])?;
    let (mantissa, exponent) = (&s[..p], &s[p + 1..]);
    let exp_digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    if exp_digits.is_empty() || !exp_digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Clamp absurd exponents: the result is 0 or infinite long before.
    let exp_abs: i64 = exp_digits.parse::<i64>().unwrap_or(i64::MAX).min(100_000);
    let mut exp: i64 = if exponent.starts_with('-') {
        -exp_abs
    } else {
        exp_abs
    };
    let mut mant: u64 = 0;
    let mut sticky = false;
    let mut seen_dot = false;
    let mut digits = 0;
    for c in mantissa.chars() {
        if c == '.' {
            if seen_dot {
                return None;
            }
            seen_dot = true;
            continue;
        }
        let d = u64::from(c.to_digit(16)?);
        digits += 1;
        if mant >> 60 == 0 {
            mant = (mant << 4) | d;
            if seen_dot {
                exp -= 4;
            }
        } else {
            // No room: remember that something non-zero was dropped.
            sticky |= d != 0;
            if !seen_dot {
                exp += 4;
            }
        }
    }
    if digits == 0 {
        return None;
    }
    // With at least 61 significant bits, a set low bit acts as the sticky
    // bit for round-to-nearest when converting to 53 bits.
    if sticky {
        mant |= 1;
    }
    let mut v = mant as f64;
    while exp > 0 && v.is_finite() {
        let step = exp.min(1000);
        v *= 2f64.powi(i32::try_from(step).ok()?);
        exp -= step;
    }
    while exp < 0 && v != 0.0 {
        let step = (-exp).min(1000);
        v /= 2f64.powi(i32::try_from(step).ok()?);
        exp += step;
    }
    Some(v)
}

/// Go's `strconv.Unquote`: a double-quoted, single-quoted or back-quoted
/// string literal. With `multi_char_single_quotes`, a single-quoted literal
/// may hold any number of characters (PromQL's `strutil.Unquote`); without,
/// exactly one (Go's rune literal).
pub(crate) fn unquote(s: &str, multi_char_single_quotes: bool) -> Result<String, String> {
    let bytes = s.as_bytes();
    let quote = match bytes.first() {
        Some(&q @ (b'"' | b'\'' | b'`')) => q,
        _ => return Err("string does not start with a quote".to_string()),
    };
    if bytes.len() < 2 || bytes[bytes.len() - 1] != quote {
        return Err("unterminated string".to_string());
    }
    let inner = &s[1..s.len() - 1];
    if quote == b'`' {
        if inner.contains('`') {
            return Err("back-quoted string contains a back quote".to_string());
        }
        return Ok(inner.replace('\r', ""));
    }
    let quote = char::from(quote);
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.chars();
    let mut count = 0;
    while let Some(c) = chars.next() {
        count += 1;
        if c == quote {
            return Err(format!("unescaped {quote} inside the string"));
        }
        if c == '\n' {
            return Err("newline inside the string".to_string());
        }
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let e = chars
            .next()
            .ok_or_else(|| "escape sequence not terminated".to_string())?;
        match e {
            'a' => out.push(0x07),
            'b' => out.push(0x08),
            'f' => out.push(0x0c),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(0x0b),
            '\\' => out.push(b'\\'),
            '\'' | '"' if e == quote => out.push(e as u8),
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let d = chars
                        .next()
                        .and_then(|c| c.to_digit(8))
                        .ok_or_else(|| "invalid octal escape".to_string())?;
                    v = v * 8 + d;
                }
                let b = u8::try_from(v).map_err(|_| "octal escape above \\377".to_string())?;
                out.push(b);
            }
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut v: u32 = 0;
                for _ in 0..n {
                    let d = chars
                        .next()
                        .and_then(|c| c.to_digit(16))
                        .ok_or_else(|| format!("invalid \\{e} escape"))?;
                    v = v * 16 + d;
                }
                if e == 'x' {
                    out.push(u8::try_from(v).unwrap_or(0));
                } else {
                    let c = char::from_u32(v).ok_or_else(|| {
                        "escape sequence is an invalid Unicode code point".to_string()
                    })?;
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
            other => return Err(format!("unknown escape sequence \\{other}")),
        }
    }
    if quote == '\'' && !multi_char_single_quotes && count != 1 {
        return Err("a single-quoted literal must hold exactly one character".to_string());
    }
    String::from_utf8(out).map_err(|_| "string is not valid UTF-8 once unescaped".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_go_strconv() {
        let cases: &[(&str, Option<f64>)] = &[
            ("1", Some(1.0)),
            ("-1", Some(-1.0)),
            ("+1", Some(1.0)),
            ("010", Some(8.0)),
            ("08", Some(8.0)),
            ("0x1f", Some(31.0)),
            ("0X1F", Some(31.0)),
            ("0b101", Some(5.0)),
            ("0o17", Some(15.0)),
            ("1_000", Some(1000.0)),
            ("1__0", None),
            ("_1", None),
            ("1_", None),
            ("1.5", Some(1.5)),
            (".5", Some(0.5)),
            ("5.", Some(5.0)),
            ("1e3", Some(1000.0)),
            ("1E-3", Some(0.001)),
            ("1.5_5", Some(1.55)),
            ("1e", None),
            ("1e400", None),
            ("1e-400", Some(0.0)),
            ("0x1p-2", Some(0.25)),
            ("0x1.8p1", Some(3.0)),
            ("0x1.8", None),
            ("Inf", Some(f64::INFINITY)),
            ("-inf", Some(f64::NEG_INFINITY)),
            ("+Infinity", Some(f64::INFINITY)),
            ("infin", None),
            ("", None),
            ("-", None),
            ("1 2", None),
            ("9223372036854775807", Some(9_223_372_036_854_775_807.0)),
            ("-9223372036854775808", Some(-9_223_372_036_854_775_808.0)),
            ("99999999999999999999", Some(1e20)),
        ];
        for &(s, want) in cases {
            let got = parse_go_number(s);
            assert_eq!(got, want, "{s:?}");
        }
        assert!(parse_go_number("NaN").is_some_and(f64::is_nan));
        assert!(parse_go_number("nan").is_some_and(f64::is_nan));
        assert_eq!(parse_go_number("-nan"), None);
        assert_eq!(parse_go_number("+nan"), None);
    }

    #[test]
    fn int_base0_edges() {
        assert_eq!(parse_go_int_base0("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_go_int_base0("9223372036854775808"), None);
        assert_eq!(parse_go_int_base0("0"), Some(0));
        assert_eq!(parse_go_int_base0("0x"), None);
        assert_eq!(parse_go_int_base0("0x_1"), Some(1));
        assert_eq!(parse_go_int_base0("09"), None);
    }

    #[test]
    fn uint10() {
        assert_eq!(parse_go_uint10("03"), Some(3));
        assert_eq!(parse_go_uint10("+3"), None);
        assert_eq!(parse_go_uint10("1_0"), None);
        assert_eq!(parse_go_uint10("18446744073709551616"), None);
    }

    #[test]
    fn unquote_like_go() {
        assert_eq!(unquote(r#""a\"b""#, false).unwrap(), "a\"b");
        assert_eq!(
            unquote(r#""\x41\101\u00e9\U0001F600""#, false).unwrap(),
            "AAé😀"
        );
        assert_eq!(unquote("`a\\nb`", false).unwrap(), "a\\nb");
        assert_eq!(unquote("'x'", false).unwrap(), "x");
        assert!(unquote("'xy'", false).is_err());
        assert_eq!(unquote("'xy'", true).unwrap(), "xy");
        assert_eq!(unquote(r"'\''", true).unwrap(), "'");
        assert!(unquote(r#""\'""#, false).is_err());
        assert!(unquote(r#""a"b""#, false).is_err());
        assert!(unquote(r#""\xff""#, false).is_err());
        assert!(unquote(r#""\q""#, false).is_err());
        assert!(unquote(r#""abc"#, false).is_err());
        assert!(unquote("abc", false).is_err());
        assert!(unquote("\"", false).is_err());
        assert_eq!(unquote("\"\"", false).unwrap(), "");
    }
}
