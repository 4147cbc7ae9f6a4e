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

/// A kept sample while [`sort_by_stack`] orders samples: a cursor into its
/// visible frames, root first, and the key it is sorted by at the current
/// depth.
#[derive(Clone, Copy, Debug)]
struct Cursor {
    /// The rank of the frame at the current depth plus one, or 0 where the
    /// stack has ended (a stack sorts before its extensions).
    key: u32,
    /// The sample.
    s: u32,
    /// The end of the sample's stack that [`View::keep`] kept (leaf first).
    top: u32,
    /// The sample's stack starts at `stack_locs[lo]` (leaf first) …
    lo: u32,
    /// … and its next location, root first, is `stack_locs[at - 1]`.
    at: u32,
    /// Frames of that location already consumed.
    sub: u32,
}

/// Sorts `cur` by stack (frame ranks, root first; a stack before its
/// extensions), as a most-significant-digit radix sort: a group of samples
/// sharing a prefix is split by the next frame, depth by depth, and a
/// group of one is done. `next(c)` gives the key at `c`'s cursor and
/// moves the cursor on.
///
/// Every (sample, depth) pair is read once, mostly from the same few
/// cache lines as the pair before; a comparison sort re-read both stacks'
/// shared prefixes ~log2(n) times from random places (memory-bound: 8 s of
/// the 50 MB benchmark profile's 10 s).
fn sort_by_stack(cur: &mut [Cursor], mut next: impl FnMut(&mut Cursor) -> u32) {
    let mut groups: Vec<(usize, usize)> = vec![(0, cur.len())];
    while let Some((lo, hi)) = groups.pop() {
        let g = &mut cur[lo..hi];
        if g.len() < 2 {
            continue;
        }
        // Down the run of depths where the whole group has the same frame.
        let split = loop {
            let k0 = next(&mut g[0]);
            g[0].key = k0;
            let mut same = true;
            for c in g[1..].iter_mut() {
                c.key = next(c);
                same &= c.key == k0;
            }
            if !same {
                break true;
            }
            if k0 == 0 {
                // Identical stacks: any order.
                break false;
            }
        };
        if !split {
            continue;
        }
        g.sort_unstable_by_key(|c| c.key);
        let mut i = 0;
        while i < g.len() {
            let k = g[i].key;
            let j = i + g[i..].iter().take_while(|c| c.key == k).count();
            if k != 0 && j - i > 1 {
                groups.push((lo + i, lo + j));
            }
            i = j;
        }
    }
}

impl Model {
    /// The flamegraph of this profile through `opts`: one node per distinct
    /// call path, inlined frames expanded, zero-valued samples left out.
    ///
    /// Built like [`TreeBuilder::finish`] (stacks sorted by frame name, then
    /// one pass), but without copying the stacks: samples are radix-sorted
    /// by their frames read through the model's location table
    /// ([`sort_by_stack`]), so the only large allocation is the tree itself.
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
        let model = view.model();
        let mut cur: Vec<Cursor> = Vec::new();
        for s in 0..self.sample_count() {
            if let Some(top) = view.keep(s)
                && view.value(s) != 0
            {
                let lo = model.stack_off[s];
                cur.push(Cursor {
                    key: 0,
                    s: s as u32,
                    top: top as u32,
                    lo,
                    at: lo + top as u32,
                    sub: 0,
                });
            }
        }
        let loc_ranks: Vec<u32> = view
            .all_location_frames()
            .iter()
            .map(|&k| key_rank[k as usize])
            .collect();
        let slice = |l: u32| &loc_ranks[view.location_frame_range(l)];
        let stack_locs = &model.stack_locs;
        sort_by_stack(&mut cur, |c| {
            while c.at > c.lo {
                let l = stack_locs[c.at as usize - 1];
                if !view.is_hidden(l)
                    && let Some(&r) = slice(l).get(c.sub as usize)
                {
                    c.sub += 1;
                    return r.saturating_add(1);
                }
                c.at -= 1;
                c.sub = 0;
            }
            0
        });
        Ok(tree::build_sorted(
            infos,
            &by_rank,
            cur.len(),
            false,
            |k, buf| {
                let Cursor { s, top, .. } = cur[k];
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
