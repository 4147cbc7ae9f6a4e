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
pub mod raster;
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
    /// The sample's stack (leaf first) as [`View::keep`] kept it is
    /// `stack_locs[lo..hi]` …
    lo: u32,
    hi: u32,
    /// … and its next location, root first, is `stack_locs[at - 1]`.
    at: u32,
    /// Frames of that location already consumed.
    sub: u32,
    /// Frames shared with the stack before in the sorted order (set by
    /// [`sort_by_stack`]).
    shared: u32,
}

/// Sorts `cur` by stack (frame ranks, root first; a stack before its
/// extensions), as a most-significant-digit radix sort: a group of samples
/// sharing a prefix is split by the next frame, depth by depth, and a
/// group of one is done. `next(c)` gives the key at `c`'s cursor and
/// moves the cursor on.
///
/// Returns the sum, over neighbours in the sorted order, of the number of
/// frames they share (their common prefix): the tree has one node per
/// frame of every stack less that sum, plus the root, so its node array
/// can be allocated once, exactly.
///
/// Every (sample, depth) pair is read once, mostly from the same few
/// cache lines as the pair before; a comparison sort re-read both stacks'
/// shared prefixes ~log2(n) times from random places (memory-bound: 8 s of
/// the 50 MB benchmark profile's 10 s).
fn sort_by_stack(cur: &mut [Cursor], mut next: impl FnMut(&mut Cursor) -> u32) -> u64 {
    let mut shared: u64 = 0;
    // (start, end, depth): the group shares `depth` frames.
    let mut groups: Vec<(usize, usize, u64)> = vec![(0, cur.len(), 0)];
    while let Some((lo, hi, mut depth)) = groups.pop() {
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
            depth += 1;
        };
        if !split {
            shared += depth * (g.len() as u64 - 1);
            for c in &mut g[1..] {
                c.shared = depth as u32;
            }
            continue;
        }
        // The group's first place keeps what it shares with the place
        // before the group, whichever sample lands there.
        let head = g[0].shared;
        g.sort_unstable_by_key(|c| c.key);
        g[0].shared = head;
        let mut i = 0;
        while i < g.len() {
            let k = g[i].key;
            let j = i + g[i..].iter().take_while(|c| c.key == k).count();
            if i > 0 {
                shared += depth;
                g[i].shared = depth as u32;
            }
            if k == 0 {
                shared += depth * (j - i - 1) as u64;
                for c in &mut g[i + 1..j] {
                    c.shared = depth as u32;
                }
            } else if j - i > 1 {
                groups.push((lo + i, lo + j, depth + 1));
            }
            i = j;
        }
    }
    shared
}

/// [`FrameTable::one`]'s entry for a hidden location (no frames).
const NO_FRAME: u32 = u32::MAX;
/// [`FrameTable::one`]'s entry for a location with several frames.
const MANY_FRAMES: u32 = u32::MAX - 1;

/// Each location's frames as ranks, root first, with the common case (one
/// frame) in a flat array, so walking a stack reads one `u32` per location.
struct FrameTable<'v> {
    /// The rank of the location's one frame, [`NO_FRAME`] or [`MANY_FRAMES`].
    one: Vec<u32>,
    ranks: Vec<u32>,
    view: &'v View<'v>,
}

impl FrameTable<'_> {
    fn many(&self, l: u32) -> &[u32] {
        &self.ranks[self.view.location_frame_range(l)]
    }

    /// The next frame's rank plus one at `c`, moving `c` on; 0 at the end.
    fn next(&self, stack_locs: &[u32], c: &mut Cursor) -> u32 {
        while c.at > c.lo {
            let l = stack_locs[c.at as usize - 1];
            match self.one[l as usize] {
                NO_FRAME => {}
                MANY_FRAMES => {
                    let f = self.many(l);
                    if let Some(&r) = f.get(c.sub as usize) {
                        c.sub += 1;
                        if c.sub as usize == f.len() {
                            c.at -= 1;
                            c.sub = 0;
                        }
                        return r + 1;
                    }
                }
                r => {
                    c.at -= 1;
                    return r + 1;
                }
            }
            c.at -= 1;
            c.sub = 0;
        }
        0
    }

    /// The number of frames of `locs`.
    fn count(&self, locs: &[u32]) -> u64 {
        locs.iter()
            .map(|&l| match self.one[l as usize] {
                NO_FRAME => 0,
                MANY_FRAMES => self.many(l).len() as u64,
                _ => 1,
            })
            .sum()
    }

    /// Appends the frames of `locs` (leaf first) to `out`, root first,
    /// less the first `skip`.
    fn expand_after(&self, locs: &[u32], mut skip: usize, out: &mut Vec<u32>) {
        for &l in locs.iter().rev() {
            match self.one[l as usize] {
                NO_FRAME => {}
                MANY_FRAMES => {
                    let f = self.many(l);
                    if skip >= f.len() {
                        skip -= f.len();
                    } else {
                        out.extend_from_slice(&f[skip..]);
                        skip = 0;
                    }
                }
                r if skip == 0 => out.push(r),
                _ => skip -= 1,
            }
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
    /// ([`sort_by_stack`]), which also counts the nodes, so the only large
    /// allocation is the tree itself, made once.
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
        if infos.len() >= MANY_FRAMES as usize {
            return Err(FlameError::TooLarge(format!("{} frames", infos.len())));
        }
        let ranks: Vec<u32> = view
            .all_location_frames()
            .iter()
            .map(|&k| key_rank[k as usize])
            .collect();
        let one: Vec<u32> = (0..self.locations.len() as u32)
            .map(|l| {
                let r = view.location_frame_range(l);
                match (view.is_hidden(l), r.len()) {
                    (true, _) | (_, 0) => NO_FRAME,
                    (false, 1) => ranks[r.start],
                    _ => MANY_FRAMES,
                }
            })
            .collect();
        let table = FrameTable {
            one,
            ranks,
            view: &view,
        };
        let stack_locs = &self.stack_locs;
        let mut cur: Vec<Cursor> = Vec::new();
        // Every kept stack's frames: the tree's size before sharing.
        let mut frames_total: u64 = 0;
        for s in 0..self.sample_count() {
            if let Some(top) = view.keep(s)
                && view.value(s) != 0
            {
                let lo = self.stack_off[s];
                let hi = lo + top as u32;
                frames_total += table.count(&stack_locs[lo as usize..hi as usize]);
                cur.push(Cursor {
                    key: 0,
                    s: s as u32,
                    lo,
                    hi,
                    at: hi,
                    sub: 0,
                    shared: 0,
                });
            }
        }
        let shared = sort_by_stack(&mut cur, |c| table.next(stack_locs, c));
        let count = usize::try_from(1 + frames_total.saturating_sub(shared))
            .map_err(|_| FlameError::TooLarge(format!("{frames_total} frames")))?;
        Ok(tree::build_sorted_shared(
            infos,
            &by_rank,
            cur.len(),
            count,
            |k, buf| {
                let Cursor {
                    s, lo, hi, shared, ..
                } = cur[k];
                buf.clear();
                let shared = shared as usize;
                table.expand_after(&stack_locs[lo as usize..hi as usize], shared, buf);
                (view.value(s as usize), shared)
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
