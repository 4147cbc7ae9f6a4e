//! The PromQL syntax tree, with the byte range of every node (annotations
//! and errors quote positions, as Prometheus's do).
//!
//! Offsets, ranges and subquery steps may be duration expressions
//! (`[5m+1m]`, `offset step()`), which only resolve once the query's step
//! and range are known: they are kept as [`DurationExpr`] and resolved by the
//! evaluator. `@` is stored on the selector or subquery it applies to, as
//! Prometheus does.

use emberlens_model::Matcher;

/// A byte range in the expression text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PosRange {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl PosRange {
    /// A range from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Self {
        PosRange { start, end }
    }
}

/// The four types of PromQL values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// A single number.
    Scalar,
    /// An instant vector.
    Vector,
    /// A range vector.
    Matrix,
    /// A string.
    String,
}

impl ValueType {
    /// Prometheus's name for the type (`instant vector`, …).
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            ValueType::String => "string",
        }
    }

    /// The name of the type in API responses (`vector`, `matrix`, …).
    pub fn api_name(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "vector",
            ValueType::Matrix => "matrix",
            ValueType::String => "string",
        }
    }
}

/// A duration that may depend on the query (`step()`, `range()`), in seconds
/// until resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum DurationExpr {
    /// A number (seconds) or duration literal (converted to seconds).
    Number(f64),
    /// `step()`: the query's step.
    Step,
    /// `range()`: the query's end minus start.
    Range,
    /// `min_of(a, b)`.
    MinOf(Box<DurationExpr>, Box<DurationExpr>),
    /// `max_of(a, b)`.
    MaxOf(Box<DurationExpr>, Box<DurationExpr>),
    /// `-x`.
    Neg(Box<DurationExpr>),
    /// `a op b`.
    Binary(BinOp, Box<DurationExpr>, Box<DurationExpr>),
}

/// The `@` modifier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AtModifier {
    /// `@ <unix seconds>`, in milliseconds.
    Timestamp(i64),
    /// `@ start()`.
    Start,
    /// `@ end()`.
    End,
}

/// An instant vector selector.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSelector {
    /// The metric name if given outside the braces (or as a quoted first item).
    pub name: Option<String>,
    /// All matchers, including the one for `__name__`.
    pub matchers: Vec<Matcher>,
    /// `offset`, if any.
    pub offset: Option<DurationExpr>,
    /// `@`, if any.
    pub at: Option<AtModifier>,
    /// `anchored`/`smoothed` written on an instant selector (a range
    /// selector keeps its own in [`MatrixSelector::mode`]).
    pub mode: RangeMode,
    /// Position.
    pub pos: PosRange,
}

/// Range-selector modifiers of Prometheus 3's extended range selectors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RangeMode {
    /// Plain `[r]`.
    #[default]
    Plain,
    /// `[r] anchored`.
    Anchored,
    /// `[r] smoothed`.
    Smoothed,
}

/// `selector[range]`.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixSelector {
    /// The selector; its offset and `@` apply to the whole range.
    pub vs: VectorSelector,
    /// The range.
    pub range: DurationExpr,
    /// `anchored` / `smoothed`.
    pub mode: RangeMode,
    /// Whole node.
    pub pos: PosRange,
}

/// `expr[range:step]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SubqueryExpr {
    /// The inner expression.
    pub expr: Box<Expr>,
    /// The range.
    pub range: DurationExpr,
    /// The step, or `None` for the default evaluation interval.
    pub step: Option<DurationExpr>,
    /// `offset`, if any.
    pub offset: Option<DurationExpr>,
    /// `@`, if any.
    pub at: Option<AtModifier>,
    /// Whole node.
    pub pos: PosRange,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `atan2`
    Atan2,
    /// `==`
    Eql,
    /// `!=`
    Neq,
    /// `<`
    Lss,
    /// `<=`
    Lte,
    /// `>`
    Gtr,
    /// `>=`
    Gte,
    /// `and`
    And,
    /// `or`
    Or,
    /// `unless`
    Unless,
    /// `</`: keep the part of each histogram below the bound.
    TrimUpper,
    /// `>/`: keep the part of each histogram above the bound.
    TrimLower,
}

impl BinOp {
    /// Comparison operators (filter, or 0/1 with `bool`).
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eql | BinOp::Neq | BinOp::Lss | BinOp::Lte | BinOp::Gtr | BinOp::Gte
        )
    }

    /// `and`, `or`, `unless`.
    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }

    /// As written.
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Atan2 => "atan2",
            BinOp::Eql => "==",
            BinOp::Neq => "!=",
            BinOp::Lss => "<",
            BinOp::Lte => "<=",
            BinOp::Gtr => ">",
            BinOp::Gte => ">=",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Unless => "unless",
            BinOp::TrimUpper => "</",
            BinOp::TrimLower => ">/",
        }
    }
}

/// Cardinality of a vector match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cardinality {
    /// One to one (default).
    OneToOne,
    /// `group_left`.
    ManyToOne,
    /// `group_right`.
    OneToMany,
    /// Set operators.
    ManyToMany,
}

/// `on`/`ignoring` and `group_left`/`group_right`.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorMatching {
    /// Cardinality.
    pub card: Cardinality,
    /// The labels of `on(…)` or `ignoring(…)`.
    pub labels: Vec<String>,
    /// `on` (true) or `ignoring` (false; also when neither is given).
    pub on: bool,
    /// Extra labels copied from the "one" side (`group_left(…)`).
    pub include: Vec<String>,
}

/// `fill(v)`, `fill_left(v)`, `fill_right(v)`: values for the missing side.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Fill {
    /// Value used when the left side has no match.
    pub left: Option<f64>,
    /// Value used when the right side has no match.
    pub right: Option<f64>,
}

/// `lhs op rhs`.
#[derive(Clone, Debug, PartialEq)]
pub struct BinaryExpr {
    /// The operator.
    pub op: BinOp,
    /// Left operand.
    pub lhs: Box<Expr>,
    /// Right operand.
    pub rhs: Box<Expr>,
    /// Matching, when both sides are vectors.
    pub matching: Option<VectorMatching>,
    /// `bool`.
    pub return_bool: bool,
    /// `fill…` modifiers.
    pub fill: Fill,
    /// Whole node.
    pub pos: PosRange,
}

/// Aggregation operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggOp {
    /// `sum`
    Sum,
    /// `avg`
    Avg,
    /// `count`
    Count,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `group`
    Group,
    /// `stddev`
    Stddev,
    /// `stdvar`
    Stdvar,
    /// `topk`
    Topk,
    /// `bottomk`
    Bottomk,
    /// `count_values`
    CountValues,
    /// `quantile`
    Quantile,
    /// `limitk`
    Limitk,
    /// `limit_ratio`
    LimitRatio,
}

impl AggOp {
    /// As written.
    pub fn as_str(self) -> &'static str {
        match self {
            AggOp::Sum => "sum",
            AggOp::Avg => "avg",
            AggOp::Count => "count",
            AggOp::Min => "min",
            AggOp::Max => "max",
            AggOp::Group => "group",
            AggOp::Stddev => "stddev",
            AggOp::Stdvar => "stdvar",
            AggOp::Topk => "topk",
            AggOp::Bottomk => "bottomk",
            AggOp::CountValues => "count_values",
            AggOp::Quantile => "quantile",
            AggOp::Limitk => "limitk",
            AggOp::LimitRatio => "limit_ratio",
        }
    }

    /// Whether the operator takes a parameter before the vector.
    pub fn has_param(self) -> bool {
        matches!(
            self,
            AggOp::Topk
                | AggOp::Bottomk
                | AggOp::CountValues
                | AggOp::Quantile
                | AggOp::Limitk
                | AggOp::LimitRatio
        )
    }
}

/// `op by (…) (param, expr)`.
#[derive(Clone, Debug, PartialEq)]
pub struct AggregateExpr {
    /// The operator.
    pub op: AggOp,
    /// The vector aggregated.
    pub expr: Box<Expr>,
    /// The parameter (`k`, `φ`, label name, ratio).
    pub param: Option<Box<Expr>>,
    /// `by`/`without` labels.
    pub grouping: Vec<String>,
    /// `without` (true) or `by`.
    pub without: bool,
    /// Whole node.
    pub pos: PosRange,
}

/// A function call.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// The function.
    pub func: &'static crate::functions::FunctionDef,
    /// Arguments.
    pub args: Vec<Expr>,
    /// Whole node.
    pub pos: PosRange,
}

/// A PromQL expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A number.
    Number {
        /// Value.
        val: f64,
        /// Position.
        pos: PosRange,
    },
    /// A string.
    String {
        /// Value.
        val: String,
        /// Position.
        pos: PosRange,
    },
    /// An instant vector selector.
    Selector(VectorSelector),
    /// A range vector selector.
    Matrix(MatrixSelector),
    /// A subquery.
    Subquery(SubqueryExpr),
    /// `( expr )`.
    Paren {
        /// Inner expression.
        expr: Box<Expr>,
        /// Position.
        pos: PosRange,
    },
    /// `-expr` or `+expr`.
    Unary {
        /// True for `-`.
        neg: bool,
        /// Operand.
        expr: Box<Expr>,
        /// Position.
        pos: PosRange,
    },
    /// A binary operation.
    Binary(BinaryExpr),
    /// A function call.
    Call(Call),
    /// An aggregation.
    Aggregate(AggregateExpr),
}

impl Expr {
    /// The node's position.
    pub fn pos(&self) -> PosRange {
        match self {
            Expr::Number { pos, .. }
            | Expr::String { pos, .. }
            | Expr::Paren { pos, .. }
            | Expr::Unary { pos, .. } => *pos,
            Expr::Selector(v) => v.pos,
            Expr::Matrix(m) => m.pos,
            Expr::Subquery(s) => s.pos,
            Expr::Binary(b) => b.pos,
            Expr::Call(c) => c.pos,
            Expr::Aggregate(a) => a.pos,
        }
    }

    /// The type the expression evaluates to.
    pub fn value_type(&self) -> ValueType {
        match self {
            Expr::Number { .. } => ValueType::Scalar,
            Expr::String { .. } => ValueType::String,
            Expr::Selector(_) => ValueType::Vector,
            Expr::Matrix(_) | Expr::Subquery(_) => ValueType::Matrix,
            Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => expr.value_type(),
            Expr::Binary(b) => {
                if b.lhs.value_type() == ValueType::Scalar
                    && b.rhs.value_type() == ValueType::Scalar
                {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
            Expr::Call(c) => c.func.ret,
            Expr::Aggregate(_) => ValueType::Vector,
        }
    }

    /// Strips parentheses.
    pub fn unparen(&self) -> &Expr {
        match self {
            Expr::Paren { expr, .. } => expr.unparen(),
            e => e,
        }
    }
}
