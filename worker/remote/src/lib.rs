//! Prometheus's remote read and remote write protocols, without IO.
//!
//! - [`prompb`]: the protobuf messages, declared by hand with prost's derive.
//! - [`codec`]: snappy block bodies with a cap on the decoded size.
//! - [`frame`]: the `STREAMED_XOR_CHUNKS` frames (writer and push-based reader).
//! - [`convert`]: to and from the model's labels, matchers and series,
//!   including XOR chunks built with `emberlens_tsdb`'s encoder.
//!
//! A key design decision: this crate knows nothing about HTTP, files or
//! clocks, so the server (native) and the browser worker (Wasm) share it;
//! the worker will feed [`frame::FrameReader`] from a streamed `fetch` body.
//! Nothing here panics on input: every refusal is a [`RemoteError`] naming
//! what was decoded and where.
#![deny(missing_docs)]

pub mod codec;
pub mod convert;
mod error;
pub mod frame;
pub mod prompb;

pub use error::RemoteError;
