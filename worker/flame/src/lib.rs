//! The flamegraph model of Emberlens's profile engine.
//!
//! A pure crate (no IO, no platform code; it compiles for
//! `wasm32-unknown-unknown`): the worker builds flamegraphs with it in the
//! browser and `emberlens profile` on the command line.
//!
//! The pipeline: a decoded profile becomes a [`Model`] (format-agnostic,
//! columnar, ids resolved once); [`Options`] (pprof's refinements) turn it
//! into a [`View`] of the surviving samples at a granularity; views become
//! a [`FlameTree`], a [`top::TopTable`], collapsed stacks or an SVG.
//!
//! - [`model`]: [`Model`], built by [`Model::from_pprof`].
//! - [`options`]: [`Options`], [`Granularity`], [`TagFilter`].
//! - [`refine`]: [`View`], the refinements applied (pprof's order and meanings).
//! - [`tree`]: [`FlameTree`], the call tree in depth-first pre-order that
//!   layout and rendering walk, and [`TreeBuilder`], which merges stacks
//!   into it.
//! - [`top`]: pprof's `-top` table (text and JSON).
//! - [`collapsed`]: folded stacks (`a;b;c 42`).
//! - [`sandwich`]: callers/callees of a function, and diff trees.
//! - [`svg`]: a self-contained SVG flamegraph.
//! - [`units`]: pprof's value formatting.
//! - [`layout`]: the boxes of one flamegraph frame for a viewport (zoom,
//!   scroll, orientation, device pixels), colours, labels, search and
//!   hit-testing.
#![deny(missing_docs)]

pub mod collapsed;
pub mod hash;
pub mod layout;
pub mod model;
pub mod options;
pub mod refine;
pub mod sandwich;
pub mod svg;
pub mod top;
pub mod tree;
pub mod units;

pub use model::{Model, SampleIndex, SampleType};
pub use options::{Granularity, Options, TagFilter};
pub use refine::{Frames, View};
pub use sandwich::Sandwich;
pub use tree::{FlameNode, FlameTree, FrameId, FrameInfo, NodeId, TreeBuilder};

/// Why a profile or a request cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum FlameError {
    /// The profile refers to something that is not there.
    #[error("invalid profile: {field}: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
    /// The profile has no sample types.
    #[error("profile has no samples")]
    NoSampleTypes,
    /// `sample_index` names no sample type.
    #[error("sample_index {0}")]
    SampleIndex(String),
    /// A regex option does not compile.
    #[error("parsing {option} regexp: {source}")]
    Regex {
        /// The option (`focus`, …).
        option: &'static str,
        /// The regex error.
        source: Box<regex::Error>,
    },
    /// Another option is wrong.
    #[error("{0}")]
    Option(String),
    /// Two profiles cannot be compared.
    #[error("incompatible profiles: {0}")]
    Incompatible(String),
    /// Over an internal limit.
    #[error("profile too large: {0}")]
    TooLarge(String),
}

impl FlameError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FlameError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl Model {
    /// The flamegraph of this profile through `opts`: one node per distinct
    /// call path, inlined frames expanded, zero-valued samples left out.
    pub fn flame_tree(&self, opts: &Options) -> Result<FlameTree, FlameError> {
        let mut frames = Frames::default();
        let view = View::new(self, opts, &mut frames)?;
        let mut b = TreeBuilder::new();
        add_view(&mut b, &view, &frames, false);
        Ok(b.finish())
    }
}

/// Adds every sample of `view` to `b` (as the base of a diff if `base`).
pub(crate) fn add_view(b: &mut TreeBuilder, view: &View<'_>, frames: &Frames, base: bool) {
    // Frame key id → tree frame id, filled on first use.
    let mut map: Vec<FrameId> = vec![FrameId::MAX; frames.len()];
    let mut stack: Vec<FrameId> = Vec::with_capacity(256);
    view.for_each_sample(|fs, _, v| {
        if v == 0 {
            return;
        }
        stack.clear();
        for &f in fs {
            let id = &mut map[f as usize];
            if *id == FrameId::MAX {
                *id = b.frame(frames.key(f).frame_info());
            }
            stack.push(*id);
        }
        if base {
            b.add_base(&stack, v);
        } else {
            b.add(&stack, v);
        }
    });
}
