//! Query values: samples, vectors, series (matrices), and the annotations a
//! query collects, in Prometheus's shapes.
//!
//! A sample carries `drop_name`: Prometheus 3 removes `__name__` from the
//! results of functions and arithmetic only at the end of a query ("delayed
//! name removal"), so `label_replace(rate(x[1m]), "__name__", …)` can still
//! see and set it.

use std::collections::BTreeSet;
use std::sync::Arc;

use emberlens_model::{FloatHistogram, Labels};

use crate::ast::PosRange;
use crate::error::line_col;

/// One element of an instant vector: a float or a histogram.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Labels.
    pub metric: Labels,
    /// Timestamp (ms).
    pub t: i64,
    /// Float value (ignored when `h` is set).
    pub f: f64,
    /// Native histogram value.
    pub h: Option<Arc<FloatHistogram>>,
    /// Remove `__name__` when the query finishes.
    pub drop_name: bool,
}

/// A float point of a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FPoint {
    /// Timestamp (ms).
    pub t: i64,
    /// Value.
    pub f: f64,
}

/// A histogram point of a series.
#[derive(Clone, Debug, PartialEq)]
pub struct HPoint {
    /// Timestamp (ms).
    pub t: i64,
    /// Value.
    pub h: Arc<FloatHistogram>,
}

/// A series of a matrix: floats and histograms, each in time order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// Labels.
    pub metric: Labels,
    /// Float points.
    pub floats: Vec<FPoint>,
    /// Histogram points.
    pub hists: Vec<HPoint>,
    /// Remove `__name__` when the query finishes.
    pub drop_name: bool,
}

/// A query result.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar at a time.
    Scalar {
        /// Timestamp (ms).
        t: i64,
        /// Value.
        v: f64,
    },
    /// A string at a time.
    String {
        /// Timestamp (ms).
        t: i64,
        /// Value.
        s: String,
    },
    /// An instant vector.
    Vector(Vec<Sample>),
    /// A range vector (or a range query's result).
    Matrix(Vec<Series>),
}

/// Warnings and infos, as Prometheus's `annotations` (sorted, unique).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Annotations {
    /// `PromQL warning: …` messages.
    pub warnings: BTreeSet<String>,
    /// `PromQL info: …` messages.
    pub infos: BTreeSet<String>,
}

impl Annotations {
    /// Adds a warning about the expression at `pos` of `src`.
    pub fn warn(&mut self, src: &str, pos: PosRange, msg: impl AsRef<str>) {
        self.warnings
            .insert(format!("PromQL warning: {}{}", msg.as_ref(), at(src, pos)));
    }

    /// Adds an info about the expression at `pos` of `src`.
    pub fn info(&mut self, src: &str, pos: PosRange, msg: impl AsRef<str>) {
        self.infos
            .insert(format!("PromQL info: {}{}", msg.as_ref(), at(src, pos)));
    }

    /// Adds everything from `other`.
    pub fn merge(&mut self, other: Annotations) {
        self.warnings.extend(other.warnings);
        self.infos.extend(other.infos);
    }
}

fn at(src: &str, pos: PosRange) -> String {
    if src.is_empty() {
        return String::new();
    }
    let (line, col) = line_col(src, pos.start);
    format!(" ({line}:{col})")
}
