//! Go's text forms of numbers and labels, where our output must match Go
//! tools byte for byte (`promtool tsdb dump` prints samples with `%g` and
//! labels with `Labels.String()`).

use crate::labels::Labels;

/// Go's `fmt.Sprintf("%g", v)`: shortest round-trip digits; exponent form when
/// the decimal exponent is below -4 or at least 6 (then `e+06`, at least two
/// exponent digits); `NaN`, `+Inf`, `-Inf`.
pub fn format_go_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Rust's `{:e}` is the shortest round-trip form: `-1.2345e-7`, `0e0`.
    let sci = format!("{v:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let nd = digits.len() as i32;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if nd > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    } else {
        let dp = exp + 1; // digits before the decimal point
        if dp <= 0 {
            out.push_str("0.");
            for _ in 0..-dp {
                out.push('0');
            }
            out.push_str(&digits);
        } else if dp >= nd {
            out.push_str(&digits);
            for _ in 0..dp - nd {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..dp as usize]);
            out.push('.');
            out.push_str(&digits[dp as usize..]);
        }
    }
    out
}

/// Go's `strconv.Quote` for the characters label values hold.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Prometheus's `labels.Labels.String()`: `{__name__="up", job="a"}`.
pub fn labels_go_string(labels: &Labels) -> String {
    let mut out = String::from("{");
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&l.name);
        out.push('=');
        out.push_str(&go_quote(&l.value));
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_go_percent_g() {
        // Each pair was checked against Go's fmt.Sprintf("%g", v).
        let cases: [(f64, &str); 16] = [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (603100.0, "603100"),
            (1_000_000.0, "1e+06"),
            (1_234_567.0, "1.234567e+06"),
            (123_456_789.0, "1.23456789e+08"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000123, "0.000123"),
            (1.5e-7, "1.5e-07"),
            (12.375, "12.375"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (1795301193.122, "1.795301193122e+09"),
            (-42.5, "-42.5"),
            (5e-324, "5e-324"),
        ];
        for (v, want) in cases {
            assert_eq!(format_go_g(v), want, "{v:?}");
        }
        assert_eq!(format_go_g(f64::NAN), "NaN");
        assert_eq!(format_go_g(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn labels_like_prometheus() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a\"b\n"), ("x", "\u{1}")]);
        assert_eq!(
            labels_go_string(&l),
            r#"{__name__="up", job="a\"b\n", x="\x01"}"#
        );
    }
}
