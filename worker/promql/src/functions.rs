//! The table of PromQL functions: names and signatures, as Prometheus 3's
//! `parser/functions.go` declares them (the parser checks calls against it;
//! the evaluator dispatches on the name).
//!
//! `variadic`: 0 = exactly `args`; n > 0 = the last n arguments are
//! optional; −1 = the last argument type repeats any number of times
//! (at least once unless the fixed part is shorter).

use crate::ast::ValueType;
use crate::ast::ValueType::{Matrix as M, Scalar as S, String as Str, Vector as V};

/// One function's signature.
#[derive(Debug, PartialEq)]
pub struct FunctionDef {
    /// Name.
    pub name: &'static str,
    /// Argument types.
    pub args: &'static [ValueType],
    /// Optional/repeated arguments, see the module doc.
    pub variadic: i32,
    /// Result type.
    pub ret: ValueType,
    /// Experimental in Prometheus (behind a feature flag there; always on here).
    pub experimental: bool,
}

const fn f(
    name: &'static str,
    args: &'static [ValueType],
    variadic: i32,
    ret: ValueType,
) -> FunctionDef {
    FunctionDef {
        name,
        args,
        variadic,
        ret,
        experimental: false,
    }
}

const fn x(
    name: &'static str,
    args: &'static [ValueType],
    variadic: i32,
    ret: ValueType,
) -> FunctionDef {
    FunctionDef {
        name,
        args,
        variadic,
        ret,
        experimental: true,
    }
}

/// Every function.
pub static FUNCTIONS: &[FunctionDef] = &[
    f("abs", &[V], 0, V),
    f("absent", &[V], 0, V),
    f("absent_over_time", &[M], 0, V),
    f("acos", &[V], 0, V),
    f("acosh", &[V], 0, V),
    f("asin", &[V], 0, V),
    f("asinh", &[V], 0, V),
    f("atan", &[V], 0, V),
    f("atanh", &[V], 0, V),
    f("avg_over_time", &[M], 0, V),
    f("ceil", &[V], 0, V),
    f("changes", &[M], 0, V),
    f("clamp", &[V, S, S], 0, V),
    f("clamp_max", &[V, S], 0, V),
    f("clamp_min", &[V, S], 0, V),
    f("cos", &[V], 0, V),
    f("cosh", &[V], 0, V),
    f("count_over_time", &[M], 0, V),
    f("day_of_month", &[V], 1, V),
    f("day_of_week", &[V], 1, V),
    f("day_of_year", &[V], 1, V),
    f("days_in_month", &[V], 1, V),
    f("deg", &[V], 0, V),
    f("delta", &[M], 0, V),
    f("deriv", &[M], 0, V),
    x("double_exponential_smoothing", &[M, S, S], 0, V),
    f("exp", &[V], 0, V),
    f("first_over_time", &[M], 0, V),
    f("floor", &[V], 0, V),
    f("histogram_avg", &[V], 0, V),
    f("histogram_count", &[V], 0, V),
    f("histogram_fraction", &[S, S, V], 0, V),
    f("histogram_quantile", &[S, V], 0, V),
    x("histogram_quantiles", &[V, Str, S], -1, V),
    f("histogram_stddev", &[V], 0, V),
    f("histogram_stdvar", &[V], 0, V),
    f("histogram_sum", &[V], 0, V),
    f("hour", &[V], 1, V),
    f("idelta", &[M], 0, V),
    f("increase", &[M], 0, V),
    x("info", &[V, V], 1, V),
    f("irate", &[M], 0, V),
    f("label_join", &[V, Str, Str, Str], -1, V),
    f("label_replace", &[V, Str, Str, Str, Str], 0, V),
    f("last_over_time", &[M], 0, V),
    f("ln", &[V], 0, V),
    f("log10", &[V], 0, V),
    f("log2", &[V], 0, V),
    x("mad_over_time", &[M], 0, V),
    f("max_over_time", &[M], 0, V),
    f("min_over_time", &[M], 0, V),
    f("minute", &[V], 1, V),
    f("month", &[V], 1, V),
    f("pi", &[], 0, S),
    f("predict_linear", &[M, S], 0, V),
    f("present_over_time", &[M], 0, V),
    f("quantile_over_time", &[S, M], 0, V),
    f("rad", &[V], 0, V),
    f("rate", &[M], 0, V),
    f("resets", &[M], 0, V),
    f("round", &[V, S], 1, V),
    f("scalar", &[V], 0, S),
    f("sgn", &[V], 0, V),
    f("sin", &[V], 0, V),
    f("sinh", &[V], 0, V),
    f("sort", &[V], 0, V),
    x("sort_by_label", &[V, Str], -1, V),
    x("sort_by_label_desc", &[V, Str], -1, V),
    f("sort_desc", &[V], 0, V),
    f("sqrt", &[V], 0, V),
    x("start_timestamp", &[V], 0, V),
    f("stddev_over_time", &[M], 0, V),
    f("stdvar_over_time", &[M], 0, V),
    f("sum_over_time", &[M], 0, V),
    f("tan", &[V], 0, V),
    f("tanh", &[V], 0, V),
    f("time", &[], 0, S),
    f("timestamp", &[V], 0, V),
    x("ts_of_first_over_time", &[M], 0, V),
    x("ts_of_last_over_time", &[M], 0, V),
    x("ts_of_max_over_time", &[M], 0, V),
    x("ts_of_min_over_time", &[M], 0, V),
    f("vector", &[S], 0, V),
    f("year", &[V], 1, V),
    // Duration-expression helpers, also usable as scalars.
    x("step", &[], 0, S),
    x("range", &[], 0, S),
    x("start", &[], 0, S),
    x("end", &[], 0, S),
    x("min_of", &[S, S], 0, S),
    x("max_of", &[S, S], 0, S),
];

/// The function called `name`.
pub fn lookup(name: &str) -> Option<&'static FunctionDef> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prometheus_3_function_is_known() {
        // The 90 of Prometheus 3.14 (`../shared/promql-testdata/README.md`).
        assert_eq!(FUNCTIONS.len(), 90);
        let mut names: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 90);
        assert!(lookup("rate").is_some() && lookup("holt_winters").is_none());
    }
}
