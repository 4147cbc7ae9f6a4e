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
//! strings are indices and references are ids; [`decode()`] validates both
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
//! # Importers
//!
//! Module [`import`] turns the other common profile formats into the same
//! [`Profile`], so everything downstream (merge, flame model, CLI) sees
//! one model:
//!
//! - **Folded stacks** ([`import::folded`]): `root;caller;leaf 42` lines,
//!   as `stackcollapse-*`, inferno and speedscope use them; one sample type,
//!   `samples/count`. [`import::folded::write`] writes a profile back out
//!   in that format.
//! - **Chrome `.cpuprofile`** ([`import::cpuprofile`]): what Chrome
//!   DevTools and `node --cpu-prof` save, and trace-event files holding
//!   one; sample types `samples/count` and `cpu/nanoseconds`, each sample
//!   weighted by the time to the next one, as speedscope does.
//! - **Any of these** ([`decode_any`]): gzip is undone first (bounded, as
//!   for pprof), then the bytes are sniffed ([`import::sniff`]): JSON → the
//!   `.cpuprofile` importer, control bytes → the pprof decoder, otherwise
//!   folded text.
//!
//! Importers build the profile through one builder (identical frames share
//! a function and a location, identical stacks a sample) and check it with
//! [`validate`] before returning it. Their errors ([`ImportError`]) name the
//! line and byte offset (folded), the line and column (JSON syntax) or the
//! field (`nodes[3].children[1]`), and the reason. Memory is bounded by
//! [`ImportLimits`]: the input size after gzip, and the total frames of all
//! stacks (a `.cpuprofile`'s tree is checked before it is expanded).
//!
//! ```
//! use emberlens_pprof::{decode_any, import::folded};
//!
//! let p = decode_any(b"main;parse 3\nmain;render 1\n").unwrap();
//! assert_eq!(p.totals(), [4]);
//! assert_eq!(folded::write(&p, 0), "main;parse 3\nmain;render 1\n");
//! ```
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
pub mod import;
pub mod merge;
pub mod proto;

pub use decode::{
    DEFAULT_MAX_DECODED_BYTES, DecodeError, decode, decode_with_limit, is_gzip, validate,
};
pub use encode::{encode, encode_gzip, gzip};
pub use import::{Format, ImportError, ImportLimits, decode_any, decode_any_with_limits};
pub use merge::{MergeError, Merger, merge};
pub use proto::{Function, Label, Line, Location, Mapping, Profile, Sample, ValueType};
