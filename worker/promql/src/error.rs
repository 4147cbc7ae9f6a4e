//! Errors of parsing and evaluating PromQL.
//!
//! Parse errors carry the byte range of the offending text; [`ParseError::render`]
//! turns it into Prometheus's `line:col: parse error: …` form (1-based
//! column counted in characters, as Prometheus counts).

/// A syntax or type error in a PromQL expression.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{msg}")]
pub struct ParseError {
    /// Byte offset where the problem starts.
    pub start: usize,
    /// Byte offset where it ends.
    pub end: usize,
    /// What is wrong, in Prometheus's words where it has them.
    pub msg: String,
}

impl ParseError {
    /// An error covering `start..end`.
    pub fn at(start: usize, end: usize, msg: impl Into<String>) -> Self {
        ParseError {
            start,
            end,
            msg: msg.into(),
        }
    }

    /// `line:col: parse error: msg` for the expression `src`.
    pub fn render(&self, src: &str) -> String {
        let (line, col) = line_col(src, self.start);
        format!("{line}:{col}: parse error: {}", self.msg)
    }
}

/// 1-based line and column (in characters) of byte offset `pos` in `src`.
pub fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(src.len());
    let before = src.get(..pos).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// Why a query failed while evaluating (Prometheus's error kinds).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// The expression did not parse or type-check.
    #[error("{0}")]
    Parse(String),
    /// A runtime error (`execution` in Prometheus's API).
    #[error("{0}")]
    Execution(String),
    /// The query would hold more samples in memory than allowed.
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    /// The query ran past its deadline.
    #[error("query timed out in {0}")]
    Timeout(String),
    /// The query was cancelled.
    #[error("query was canceled in {0}")]
    Canceled(String),
    /// Storage failed.
    #[error("{0}")]
    Storage(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_positions_like_prometheus() {
        let e = ParseError::at(4, 5, "unexpected character: '!'");
        assert_eq!(
            e.render("foo !"),
            "1:5: parse error: unexpected character: '!'"
        );
        assert_eq!(line_col("a\nbé c", 6), (2, 4));
    }
}
