//! The call tree a flamegraph draws: [`FlameTree`].
//!
//! Nodes are stored in depth-first pre-order, each with the index one past
//! its subtree ([`FlameNode::end`]): a node's children are the nodes from
//! `id + 1` to `end`, stepping from one child to the next with the child's
//! own `end`. Layout therefore walks plain slices (no pointers, no
//! recursion), and a subtree is a contiguous range — zooming into a frame
//! is a range of the same vector.
//!
//! Siblings are sorted by frame name, as pprof's and speedscope's
//! flamegraphs order them, so a tree is the same whatever order the
//! samples came in.

use std::collections::HashMap;

use crate::hash::IdMap;

/// Index of a frame in [`FlameTree::frames`].
pub type FrameId = u32;
/// Index of a node in [`FlameTree::nodes`].
pub type NodeId = u32;

/// What a flamegraph box stands for: a function (or a line, or an address,
/// by granularity).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FrameInfo {
    /// The label drawn in the box, e.g. `main.(*Server).handle`.
    pub name: String,
    /// Source file, or empty.
    pub file: String,
    /// Source line, or 0 (granularity coarser than lines).
    pub line: i64,
    /// Address, or 0 (granularity coarser than addresses).
    pub address: u64,
    /// What colours the box: the package or module (`net/http`,
    /// `tokio::runtime`), or empty.
    pub package: String,
}

/// One box of the flamegraph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlameNode {
    /// The frame; the root's frame is [`FlameTree::ROOT_FRAME`].
    pub frame: FrameId,
    /// The parent node; the root's parent is itself (0).
    pub parent: NodeId,
    /// Distance from the root (the root is 0).
    pub depth: u32,
    /// One past the last node of this node's subtree.
    pub end: NodeId,
    /// The value of every sample through this node (its width).
    pub total: i64,
    /// The value of the samples whose stack ends here.
    pub self_value: i64,
    /// In a diff, `total` of the base profile through this node (0
    /// otherwise); `total` is then the new profile's.
    pub base_total: i64,
}

/// A call tree in depth-first pre-order (see the module docs). Node 0 is
/// the root: the sum of everything, named "root".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlameTree {
    /// The frames boxes refer to.
    pub frames: Vec<FrameInfo>,
    /// The boxes, pre-order; children sorted by frame name.
    pub nodes: Vec<FlameNode>,
    /// Whether `base_total` is meaningful (the tree is a diff).
    pub is_diff: bool,
}

impl FlameTree {
    /// The root's frame (always frame 0, named `root`).
    pub const ROOT_FRAME: FrameId = 0;

    /// The children of `node`, in order.
    pub fn children(&self, node: NodeId) -> Children<'_> {
        let n = &self.nodes[node as usize];
        Children {
            tree: self,
            next: node + 1,
            end: n.end,
        }
    }

    /// The frame of `node`.
    pub fn frame(&self, node: NodeId) -> &FrameInfo {
        &self.frames[self.nodes[node as usize].frame as usize]
    }

    /// The deepest depth of any node (0 for a tree with only a root).
    pub fn max_depth(&self) -> u32 {
        self.nodes.iter().map(|n| n.depth).max().unwrap_or(0)
    }

    /// The total of the whole tree (the root's width).
    pub fn total(&self) -> i64 {
        self.nodes.first().map_or(0, |n| n.total)
    }
}

/// Iterator over a node's children (see [`FlameTree::children`]).
pub struct Children<'a> {
    tree: &'a FlameTree,
    next: NodeId,
    end: NodeId,
}

impl Iterator for Children<'_> {
    type Item = NodeId;
    fn next(&mut self) -> Option<NodeId> {
        if self.next >= self.end {
            return None;
        }
        let id = self.next;
        self.next = self.tree.nodes[id as usize].end;
        Some(id)
    }
}

/// Merges stacks into a [`FlameTree`].
///
/// Frames are interned by their whole [`FrameInfo`]; stacks are given root
/// first as frame ids from [`TreeBuilder::frame`].
#[derive(Debug)]
pub struct TreeBuilder {
    frames: Vec<FrameInfo>,
    frame_ids: HashMap<FrameInfo, FrameId>,
    /// Trie while building: (parent, frame) → node; nodes in creation order.
    edges: IdMap<(u32, FrameId), u32>,
    raw: Vec<RawNode>,
    is_diff: bool,
}

#[derive(Clone, Copy, Debug)]
struct RawNode {
    frame: FrameId,
    parent: u32,
    total: i64,
    self_value: i64,
    base_total: i64,
}

impl Default for TreeBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TreeBuilder {
    /// An empty builder: just the root.
    pub fn new() -> Self {
        let root = FrameInfo {
            name: "root".into(),
            ..FrameInfo::default()
        };
        let mut frame_ids = HashMap::new();
        frame_ids.insert(root.clone(), 0);
        TreeBuilder {
            frames: vec![root],
            frame_ids,
            edges: IdMap::default(),
            raw: vec![RawNode {
                frame: 0,
                parent: 0,
                total: 0,
                self_value: 0,
                base_total: 0,
            }],
            is_diff: false,
        }
    }

    /// The id of `info`, interning it on first use.
    pub fn frame(&mut self, info: FrameInfo) -> FrameId {
        if let Some(&id) = self.frame_ids.get(&info) {
            return id;
        }
        let id = self.frames.len() as FrameId;
        self.frames.push(info.clone());
        self.frame_ids.insert(info, id);
        id
    }

    /// Adds `value` along `stack` (root first).
    pub fn add(&mut self, stack: &[FrameId], value: i64) {
        self.add_both(stack, value, 0);
    }

    /// Adds `base` (the base profile's value) along `stack`, for a diff.
    pub fn add_base(&mut self, stack: &[FrameId], base: i64) {
        self.is_diff = true;
        self.add_both(stack, 0, base);
    }

    fn add_both(&mut self, stack: &[FrameId], value: i64, base: i64) {
        let mut node = 0u32;
        // Sums wrap on overflow like Go's int64 (hostile values never panic).
        self.raw[0].total = self.raw[0].total.wrapping_add(value);
        self.raw[0].base_total = self.raw[0].base_total.wrapping_add(base);
        for &frame in stack {
            let next = self.raw.len() as u32;
            let child = *self.edges.entry((node, frame)).or_insert(next);
            if child == next {
                self.raw.push(RawNode {
                    frame,
                    parent: node,
                    total: 0,
                    self_value: 0,
                    base_total: 0,
                });
            }
            let r = &mut self.raw[child as usize];
            r.total = r.total.wrapping_add(value);
            r.base_total = r.base_total.wrapping_add(base);
            node = child;
        }
        let leaf = &mut self.raw[node as usize];
        leaf.self_value = leaf.self_value.wrapping_add(value);
    }

    /// The tree, in pre-order with siblings sorted by frame name.
    pub fn finish(self) -> FlameTree {
        let TreeBuilder {
            frames,
            raw,
            is_diff,
            ..
        } = self;
        let mut children: Vec<Vec<u32>> = vec![Vec::new(); raw.len()];
        for (i, r) in raw.iter().enumerate().skip(1) {
            children[r.parent as usize].push(i as u32);
        }
        for c in &mut children {
            c.sort_by(|&a, &b| {
                let (fa, fb) = (
                    &frames[raw[a as usize].frame as usize],
                    &frames[raw[b as usize].frame as usize],
                );
                fa.name
                    .cmp(&fb.name)
                    .then_with(|| raw[a as usize].frame.cmp(&raw[b as usize].frame))
            });
        }
        let mut nodes = Vec::with_capacity(raw.len());
        // Iterative pre-order: (raw id, new parent id, depth).
        let mut stack: Vec<(u32, u32, u32)> = vec![(0, 0, 0)];
        let mut new_id = vec![0u32; raw.len()];
        while let Some((id, parent, depth)) = stack.pop() {
            let r = raw[id as usize];
            let me = nodes.len() as u32;
            new_id[id as usize] = me;
            nodes.push(FlameNode {
                frame: r.frame,
                parent,
                depth,
                end: 0,
                total: r.total,
                self_value: r.self_value,
                base_total: r.base_total,
            });
            for &c in children[id as usize].iter().rev() {
                stack.push((c, me, depth + 1));
            }
        }
        // A subtree ends where the next node at the same or a smaller depth starts.
        let mut open: Vec<u32> = Vec::new();
        let len = nodes.len() as u32;
        for i in 0..len {
            let d = nodes[i as usize].depth;
            while let Some(&top) = open.last() {
                if nodes[top as usize].depth >= d {
                    nodes[top as usize].end = i;
                    open.pop();
                } else {
                    break;
                }
            }
            open.push(i);
        }
        for top in open {
            nodes[top as usize].end = len;
        }
        FlameTree {
            frames,
            nodes,
            is_diff,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(b: &mut TreeBuilder, name: &str) -> FrameId {
        b.frame(FrameInfo {
            name: name.into(),
            ..FrameInfo::default()
        })
    }

    #[test]
    fn stacks_merge_into_a_sorted_preorder_tree() {
        let mut b = TreeBuilder::new();
        let (main, z, a, leaf) = (
            f(&mut b, "main"),
            f(&mut b, "z"),
            f(&mut b, "a"),
            f(&mut b, "leaf"),
        );
        b.add(&[main, z], 3);
        b.add(&[main, a, leaf], 2);
        b.add(&[main, a], 1);
        b.add(&[main], 4);
        let t = b.finish();
        let names: Vec<(&str, u32, i64, i64)> = t
            .nodes
            .iter()
            .map(|n| {
                (
                    t.frames[n.frame as usize].name.as_str(),
                    n.depth,
                    n.total,
                    n.self_value,
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("root", 0, 10, 0),
                ("main", 1, 10, 4),
                ("a", 2, 3, 1),
                ("leaf", 3, 2, 2),
                ("z", 2, 3, 3)
            ]
        );
        assert_eq!(
            t.nodes.iter().map(|n| n.end).collect::<Vec<_>>(),
            [5, 5, 4, 4, 5]
        );
        assert_eq!(t.children(1).collect::<Vec<_>>(), [2, 4]);
        assert_eq!(t.children(0).collect::<Vec<_>>(), [1]);
        assert_eq!(t.nodes[3].parent, 2);
        assert_eq!(t.max_depth(), 3);
        assert_eq!(t.total(), 10);
    }
}
