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
//! - [`stream`]: [`Model::from_bytes`], the model straight from pprof bytes
//!   (no per-sample vectors: the large-profile path).
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
pub mod normalize;
pub mod options;
pub mod refine;
pub mod sandwich;
pub mod stream;
pub mod svg;
pub mod top;
pub mod tree;
pub mod units;

pub use model::{Model, SampleIndex, SampleType};
pub use options::{Granularity, Options, TagFilter, TextOptions};
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

/// Orders two stacks (location indices, root first) by their frames'
/// name ranks (`slice(l)`: location `l`'s frame ranks, root first).
/// Locations are compared whole while the stacks stay aligned location by
/// location, so most of a shared prefix is skipped by comparing indices.
fn compare_locations<'s, I: Iterator<Item = u32>>(
    mut la: I,
    mut lb: I,
    slice: &impl Fn(u32) -> &'s [u32],
) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    loop {
        let (x, y) = match (la.next(), lb.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => (x, y),
        };
        if x == y {
            continue;
        }
        let (fx, fy) = (slice(x), slice(y));
        if fx == fy {
            continue;
        }
        let n = fx.len().min(fy.len());
        match fx[..n].cmp(&fy[..n]) {
            Ordering::Equal => {}
            other => return other,
        }
        // One location's frames are a prefix of the other's: the stacks
        // are no longer aligned by location; compare the rest frame by
        // frame.
        let rest_a = fx[n..]
            .iter()
            .copied()
            .chain(la.flat_map(|l| slice(l).iter().copied()));
        let rest_b = fy[n..]
            .iter()
            .copied()
            .chain(lb.flat_map(|l| slice(l).iter().copied()));
        return rest_a.cmp(rest_b);
    }
}

impl Model {
    /// The flamegraph of this profile through `opts`: one node per distinct
    /// call path, inlined frames expanded, zero-valued samples left out.
    ///
    /// Built like [`TreeBuilder::finish`] (stacks sorted by frame name, then
    /// one pass), but without copying the stacks: samples are sorted by
    /// comparing their frames through the model's location table, so the
    /// only large allocation is the tree itself.
    pub fn flame_tree(&self, opts: &Options) -> Result<FlameTree, FlameError> {
        let mut frames = Frames::default();
        let view = View::new(self, opts, &mut frames)?;
        // Tree frames (interned by FrameInfo, as TreeBuilder does).
        let mut infos: Vec<FrameInfo> = vec![FrameInfo {
            name: "root".into(),
            ..FrameInfo::default()
        }];
        let mut ids: std::collections::HashMap<FrameInfo, FrameId> =
            std::collections::HashMap::new();
        ids.insert(infos[0].clone(), 0);
        let key_frame: Vec<FrameId> = frames
            .keys
            .iter()
            .map(|k| {
                let info = k.frame_info();
                *ids.entry(info.clone()).or_insert_with(|| {
                    infos.push(info);
                    infos.len() as FrameId - 1
                })
            })
            .collect();
        drop(ids);
        let (by_rank, rank) = tree::rank_frames(&infos);
        let key_rank: Vec<u32> = key_frame.iter().map(|&f| rank[f as usize]).collect();
        let mut kept: Vec<(u32, u32)> = Vec::new();
        for s in 0..self.sample_count() {
            if let Some(top) = view.keep(s)
                && view.value(s) != 0
            {
                kept.push((s as u32, top as u32));
            }
        }
        // Location by location: the same location means the same frames, so
        // most of a shared prefix is skipped by comparing location indices.
        let loc_ranks: Vec<u32> = view
            .all_location_frames()
            .iter()
            .map(|&k| key_rank[k as usize])
            .collect();
        let slice = |l: u32| &loc_ranks[view.location_frame_range(l)];
        let compare = |a: usize, ta: usize, b: usize, tb: usize| -> std::cmp::Ordering {
            match (view.plain_stack(a, ta), view.plain_stack(b, tb)) {
                // Nothing hidden: skip the common root-side run of the two
                // stacks in one tight loop, then compare from there.
                (Some(sa), Some(sb)) => {
                    let common = sa
                        .iter()
                        .rev()
                        .zip(sb.iter().rev())
                        .take_while(|(x, y)| x == y)
                        .count();
                    compare_locations(
                        sa[..sa.len() - common].iter().rev().copied(),
                        sb[..sb.len() - common].iter().rev().copied(),
                        &slice,
                    )
                }
                _ => compare_locations(view.locations(a, ta), view.locations(b, tb), &slice),
            }
        };
        kept.sort_unstable_by(|&(a, ta), &(b, tb)| {
            compare(a as usize, ta as usize, b as usize, tb as usize)
        });
        Ok(tree::build_sorted(
            infos,
            &by_rank,
            kept.len(),
            false,
            |k, buf| {
                let (s, top) = kept[k];
                buf.clear();
                for l in view.locations(s as usize, top as usize) {
                    buf.extend_from_slice(slice(l));
                }
                (view.value(s as usize), 0)
            },
        ))
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
