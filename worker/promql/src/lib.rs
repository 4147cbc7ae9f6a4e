//! The PromQL engine: a parser for the whole language as Prometheus 3 speaks
//! it, an evaluator over [`emberlens_model::Storage`], and a runner for the
//! upstream `promqltest` files.
//!
//! Why our own parser rather than the `promql-parser` crate: measured on the
//! upstream corpus, `promql-parser` 0.11 parses 86.6 % of the expressions
//! (it lacks duration expressions, `anchored`/`smoothed` ranges, the
//! histogram trim operators `</` `>/`, `fill()` modifiers), and its AST
//! carries no source positions, which Prometheus's annotations and errors
//! quote (`(1:6)`); every extension would have meant patching someone else's
//! grammar. The lexer and a precedence-climbing parser are a few hundred
//! lines of our own.

mod aggregate;
pub mod api;
pub mod ast;
mod binary;
pub mod engine;
pub mod error;
mod extended;
pub mod format;
mod funcs;
pub mod functions;
pub mod hash;
mod histfuncs;
mod histstats;
mod info;
mod lexer;
mod nativehist;
pub mod parser;
pub mod promqltest;
mod startts;
pub mod value;

pub use engine::{EngineOpts, QueryResult, instant_query, range_query};
pub use error::{EvalError, ParseError};
pub use parser::parse;
