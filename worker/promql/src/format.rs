//! Text forms Prometheus uses in messages and results: label sets in braces
//! (`labels.Labels.String()`) and float values (`strconv.FormatFloat(f,
//! 'f', -1, 64)`, as `count_values` writes them).

use emberlens_model::{Labels, go_quote};

/// `{__name__="x", a="b"}`: every label inside braces, values Go-quoted.
pub fn labels_brace(l: &Labels) -> String {
    let parts: Vec<String> = l
        .iter()
        .map(|lb| format!("{}={}", lb.name, go_quote(&lb.value)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: shortest round-trip digits,
/// never an exponent; `NaN`, `+Inf`, `-Inf`.
pub fn format_float_f(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Rust's Display is shortest round-trip and never uses an exponent.
    let s = format!("{f}");
    if s == "-0" { "-0".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        assert_eq!(format_float_f(1e21), "1000000000000000000000");
        assert_eq!(format_float_f(0.1), "0.1");
        assert_eq!(format_float_f(f64::NEG_INFINITY), "-Inf");
        assert_eq!(
            labels_brace(&Labels::from_pairs([("__name__", "m"), ("a", "x\"y")])),
            r#"{__name__="m", a="x\"y"}"#
        );
    }
}
