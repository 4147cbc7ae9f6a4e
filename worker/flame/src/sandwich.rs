//! Callers and callees of a function (speedscope's "sandwich" view), and
//! the diff of two profiles as one tree.
//!
//! For the frames whose function name matches a regex:
//! - **callees**: every sample through a matching frame contributes its
//!   stack from the *outermost* matching frame down to the leaf, so the
//!   tree's first level is the matching function(s) and below are what
//!   they call;
//! - **callers**: the stack from the *innermost* matching frame up to the
//!   root, reversed, so the first level is the matching function(s) and
//!   below are their callers, then their callers' callers.
//!
//! Taking one occurrence per sample means recursion is counted once, so a
//! matching frame's total in either tree is its pprof `cum`.

use regex::Regex;

use crate::refine::{Frames, View};
use crate::top::{check_compatible, same_index};
use crate::tree::{FlameTree, FrameId, TreeBuilder};
use crate::{FlameError, Model, Options, add_view};

/// The two trees of a sandwich (see the module docs).
#[derive(Clone, Debug)]
pub struct Sandwich {
    /// The matching functions, then what they call.
    pub callees: FlameTree,
    /// The matching functions, then their callers (inverted).
    pub callers: FlameTree,
}

impl Model {
    /// Callers and callees of the frames whose name matches `function`
    /// (see the module docs), through `opts`.
    pub fn sandwich(&self, opts: &Options, function: &Regex) -> Result<Sandwich, FlameError> {
        let mut frames = Frames::default();
        let view = View::new(self, opts, &mut frames)?;
        let matching: Vec<bool> = frames
            .keys
            .iter()
            .map(|k| function.is_match(&k.name))
            .collect();
        let mut callees = TreeBuilder::new();
        let mut callers = TreeBuilder::new();
        let mut map: Vec<FrameId> = vec![FrameId::MAX; frames.len()];
        let mut ids: Vec<FrameId> = Vec::with_capacity(256);
        let mut up: Vec<FrameId> = Vec::with_capacity(256);
        view.for_each_sample(|fs, _, v| {
            if v == 0 {
                return;
            }
            let Some(first) = fs.iter().position(|&f| matching[f as usize]) else {
                return;
            };
            let last = fs
                .iter()
                .rposition(|&f| matching[f as usize])
                .unwrap_or(first);
            ids.clear();
            for &f in fs {
                let id = &mut map[f as usize];
                if *id == FrameId::MAX {
                    *id = callees.frame(frames.key(f).frame_info());
                    // Both builders intern the same frames in the same order.
                    callers.frame(frames.key(f).frame_info());
                }
                ids.push(*id);
            }
            callees.add(&ids[first..], v);
            up.clear();
            up.extend(ids[..=last].iter().rev());
            callers.add(&up, v);
        });
        Ok(Sandwich {
            callees: callees.finish(),
            callers: callers.finish(),
        })
    }

    /// The diff of `base` (before) and `self` (after) as one tree: each
    /// node's `total` is this profile's value and `base_total` the base's;
    /// the change is `total - base_total` (pprof's `-diff_base`, which
    /// subtracts the base). Both use the sample type `opts` selects on
    /// `self`.
    pub fn diff_tree(&self, base: &Model, opts: &Options) -> Result<FlameTree, FlameError> {
        check_compatible(self, base)?;
        let opts = same_index(self, opts)?;
        let mut frames = Frames::default();
        let view = View::new(self, &opts, &mut frames)?;
        let base_view = View::new(base, &opts, &mut frames)?;
        let mut b = TreeBuilder::new();
        add_view(&mut b, &view, &frames, false);
        add_view(&mut b, &base_view, &frames, true);
        let mut t = b.finish();
        t.is_diff = true;
        Ok(t)
    }
}
