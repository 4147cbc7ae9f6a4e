//! Text forms Prometheus uses in messages: label sets in braces
//! (`labels.Labels.String()`). Float values use `emberlens_model::format_value`
//! (Go's `strconv.FormatFloat(f, 'f', -1, 64)`).

use emberlens_model::{Labels, go_quote};

/// `{__name__="x", a="b"}`: every label inside braces, values Go-quoted.
pub fn labels_brace(l: &Labels) -> String {
    let parts: Vec<String> = l
        .iter()
        .map(|lb| format!("{}={}", lb.name, go_quote(&lb.value)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        assert_eq!(
            labels_brace(&Labels::from_pairs([("__name__", "m"), ("a", "x\"y")])),
            r#"{__name__="m", a="x\"y"}"#
        );
    }
}
