//! The flamegraph model of Emberlens's profile engine.
//!
//! A pure crate (no IO, no platform code; it compiles for
//! `wasm32-unknown-unknown`): the worker builds flamegraphs with it in the
//! browser and `emberlens profile` on the command line.
//!
//! - [`tree`]: [`FlameTree`], the call tree in depth-first pre-order that
//!   layout and rendering walk, and [`TreeBuilder`], which merges stacks
//!   into it.
//! - [`layout`]: the boxes of one flamegraph frame for a viewport (zoom,
//!   scroll, orientation, device pixels), colours, labels, search and
//!   hit-testing.
#![deny(missing_docs)]

pub mod layout;
pub mod tree;

pub use tree::{FlameNode, FlameTree, FrameId, FrameInfo, NodeId, TreeBuilder};
