//! pprof's `profile.proto`: decode, validate, encode and merge profiles.
//!
//! The foundation of Emberlens's profile engine. The server stores and
//! merges scraped profiles with it; the worker (issue 6) builds its
//! flamegraph model on the same [`Profile`].
//!
//! # Design
//!
//! A key design decision in this crate is that the wire types *are* the
//! model: [`Profile`] and friends are prost messages written by hand
//! (module [`proto`]), so a decoded profile re-encodes to the same
//! messages, and no `protoc` or build script is needed. The price is that
//! strings are indices and references are ids; [`decode`] validates both
//! (see [`validate`]) so readers can resolve them without checks failing.
//!
//! The crate does no IO and has no platform code: it compiles for
//! `wasm32-unknown-unknown` and takes bytes, not files.
//!
//! # Limits
//!
//! Hostile input returns an error, never a panic: gzip is inflated up to a
//! cap ([`DEFAULT_MAX_DECODED_BYTES`], or [`decode_with_limit`]); protobuf
//! lengths past the end of the input are refused before allocation; every
//! id and string index is checked. Errors name the field and, for
//! protobuf errors, the byte offset.
//!
//! ```
//! use emberlens_pprof::{Profile, ValueType, decode, encode_gzip, merge};
//!
//! let p = Profile {
//!     sample_type: vec![ValueType { r#type: 1, unit: 2 }],
//!     string_table: vec!["".into(), "samples".into(), "count".into()],
//!     ..Profile::default()
//! };
//! let back = decode(&encode_gzip(&p)).unwrap();
//! assert_eq!(back, p);
//! let both = merge([&p, &back]).unwrap();
//! assert_eq!(both.sample_type_names(), ["samples/count"]);
//! ```
#![deny(missing_docs)]

pub mod decode;
pub mod encode;
pub mod merge;
pub mod proto;

pub use decode::{
    DEFAULT_MAX_DECODED_BYTES, DecodeError, decode, decode_with_limit, is_gzip, validate,
};
pub use encode::{encode, encode_gzip, gzip};
pub use merge::{MergeError, Merger, merge};
pub use proto::{Function, Label, Line, Location, Mapping, Profile, Sample, ValueType};
