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

impl FrameInfo {
    /// The text a box shows: the name, and at line granularity the file's
    /// base name and the line, at address granularity the address (as
    /// pprof's `-lines` and `-addresses` labels: `main.work main.go:27`).
    pub fn label(&self) -> std::borrow::Cow<'_, str> {
        let mut out = String::new();
        if self.address != 0 {
            out = format!("{:#x} ", self.address);
        }
        if out.is_empty() && self.line == 0 {
            return std::borrow::Cow::Borrowed(&self.name);
        }
        out.push_str(&self.name);
        if self.line != 0 {
            let base = self.file.rsplit('/').next().unwrap_or(&self.file);
            out.push_str(&format!(" {base}:{}", self.line));
        }
        std::borrow::Cow::Owned(out)
    }
}

/// One box of the flamegraph: 24 bytes, as a large profile's tree has
/// tens of millions of them (15.7 M for the 50 MB benchmark profile). Its
/// self value and, in a diff, its base total are [`FlameTree`] methods.
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
}

const _: () = assert!(std::mem::size_of::<FlameNode>() == 24);

/// A call tree in depth-first pre-order (see the module docs). Node 0 is
/// the root: the sum of everything, named "root".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlameTree {
    /// The frames boxes refer to.
    pub frames: Vec<FrameInfo>,
    /// The boxes, pre-order; children sorted by frame name.
    pub nodes: Vec<FlameNode>,
    /// In a diff, the base profile's total through each node (`total` is
    /// then the new profile's); empty otherwise.
    pub base_totals: Vec<i64>,
    /// Whether the tree is a diff.
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

    /// The value of the samples whose stack ends at `node`: its total less
    /// its children's (sums wrap like Go's `int64`, so this is exact).
    pub fn self_value(&self, node: NodeId) -> i64 {
        self.children(node)
            .fold(self.nodes[node as usize].total, |v, c| {
                v.wrapping_sub(self.nodes[c as usize].total)
            })
    }

    /// In a diff, the base profile's total through `node`; 0 otherwise.
    pub fn base_total(&self, node: NodeId) -> i64 {
        self.base_totals.get(node as usize).copied().unwrap_or(0)
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
///
/// A key design decision: stacks are collected and the tree is built in
/// one pass at [`TreeBuilder::finish`], by sorting the stacks (by frame
/// name, lexicographically) and walking them in order. Consecutive sorted
/// stacks share their longest common prefix, so the tree comes out in
/// pre-order with sorted siblings directly, with no hash table of
/// (parent, frame) edges: a trie built by hashing missed the cache on
/// nearly every frame (80 % of the time on a 2.3 M-node tree) and needed
/// two node arrays.
#[derive(Debug)]
pub struct TreeBuilder {
    frames: Vec<FrameInfo>,
    frame_ids: HashMap<FrameInfo, FrameId>,
    /// Every stack's frames, concatenated; stack `i` ends at `ends[i]`.
    stack_frames: Vec<FrameId>,
    ends: Vec<usize>,
    values: Vec<i64>,
    bases: Vec<i64>,
    is_diff: bool,
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
            stack_frames: Vec::new(),
            ends: Vec::new(),
            values: Vec::new(),
            bases: Vec::new(),
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
        self.push(stack, value, 0);
    }

    /// Adds `base` (the base profile's value) along `stack`, for a diff.
    pub fn add_base(&mut self, stack: &[FrameId], base: i64) {
        self.is_diff = true;
        self.push(stack, 0, base);
    }

    fn push(&mut self, stack: &[FrameId], value: i64, base: i64) {
        self.stack_frames.extend_from_slice(stack);
        self.ends.push(self.stack_frames.len());
        self.values.push(value);
        self.bases.push(base);
    }

    /// The tree, in pre-order with siblings sorted by frame name (then by
    /// file, line, address: see [`rank_frames`]).
    pub fn finish(self) -> FlameTree {
        let TreeBuilder {
            frames,
            mut stack_frames,
            ends,
            values,
            bases,
            is_diff,
            ..
        } = self;
        let (by_rank, rank) = rank_frames(&frames);
        for f in &mut stack_frames {
            // An id that was never interned sorts last and is kept as is.
            *f = rank.get(*f as usize).copied().unwrap_or(u32::MAX - 1);
        }
        let range = |i: usize| {
            let start = if i == 0 { 0 } else { ends[i - 1] };
            start..ends[i]
        };
        let mut order: Vec<u32> = (0..ends.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            stack_frames[range(a as usize)].cmp(&stack_frames[range(b as usize)])
        });
        build_sorted(frames, &by_rank, order.len(), is_diff, |k, buf| {
            let i = order[k] as usize;
            buf.clear();
            buf.extend_from_slice(&stack_frames[range(i)]);
            (values[i], bases[i])
        })
    }
}

/// Frames ranked by name, then file, line, address and package (so the
/// order does not depend on the order frames were interned): `by_rank[r]`
/// is the frame of rank `r`, `rank[f]` the rank of frame `f`.
pub(crate) fn rank_frames(frames: &[FrameInfo]) -> (Vec<FrameId>, Vec<u32>) {
    let mut by_rank: Vec<FrameId> = (0..frames.len() as FrameId).collect();
    by_rank.sort_by(|&a, &b| {
        let (x, y) = (&frames[a as usize], &frames[b as usize]);
        (&x.name, &x.file, x.line, x.address, &x.package)
            .cmp(&(&y.name, &y.file, y.line, y.address, &y.package))
            .then(a.cmp(&b))
    });
    let mut rank = vec![0u32; frames.len()];
    for (r, &f) in by_rank.iter().enumerate() {
        rank[f as usize] = r as u32;
    }
    (by_rank, rank)
}

/// Builds a tree from `n` stacks given in sorted order: `stack(k, buf)`
/// fills `buf` with the ranks (see [`rank_frames`]) of the `k`-th stack,
/// root first, and returns its (value, base value). It is called twice per
/// stack: once to count the nodes, so the node array is allocated once,
/// exactly (growing by doubling would briefly need 1.5 to 3 times its
/// size: 15.7 M nodes for the 50 MB benchmark profile), then to build.
///
/// Consecutive sorted stacks share their longest common prefix, so nodes
/// come out in pre-order with siblings sorted by rank.
pub(crate) fn build_sorted(
    frames: Vec<FrameInfo>,
    by_rank: &[FrameId],
    n: usize,
    is_diff: bool,
    mut stack: impl FnMut(usize, &mut Vec<u32>) -> (i64, i64),
) -> FlameTree {
    let mut cur: Vec<u32> = Vec::with_capacity(256);
    let mut prev: Vec<u32> = Vec::with_capacity(256);
    let mut count = 1usize;
    for k in 0..n {
        stack(k, &mut cur);
        let common = prev.iter().zip(&cur).take_while(|(a, b)| a == b).count();
        count += cur.len() - common;
        std::mem::swap(&mut prev, &mut cur);
    }
    let mut nodes: Vec<FlameNode> = Vec::with_capacity(count);
    nodes.push(FlameNode {
        frame: 0,
        parent: 0,
        depth: 0,
        end: 0,
        total: 0,
    });
    // Only a diff has base totals.
    let mut base_totals: Vec<i64> = Vec::with_capacity(if is_diff { count } else { 0 });
    if is_diff {
        base_totals.push(0);
    }
    // The current path: node ids, path[0] the root.
    let mut path: Vec<NodeId> = vec![0];
    prev.clear();
    for k in 0..n {
        let (value, base) = stack(k, &mut cur);
        let common = prev
            .iter()
            .zip(&cur)
            .take_while(|(a, b)| a == b)
            .count()
            .min(path.len() - 1);
        // Close the nodes below the common prefix.
        let len = nodes.len() as NodeId;
        for &n in &path[common + 1..] {
            nodes[n as usize].end = len;
        }
        path.truncate(common + 1);
        for &r in &cur[common..] {
            let parent = *path.last().unwrap_or(&0);
            let frame = by_rank.get(r as usize).copied().unwrap_or(r);
            path.push(nodes.len() as NodeId);
            nodes.push(FlameNode {
                frame,
                parent,
                depth: path.len() as u32 - 1,
                end: 0,
                total: 0,
            });
            if is_diff {
                base_totals.push(0);
            }
        }
        // Sums wrap on overflow like Go's int64 (hostile values never panic).
        for &n in &path {
            let node = &mut nodes[n as usize];
            node.total = node.total.wrapping_add(value);
            if let Some(b) = base_totals.get_mut(n as usize) {
                *b = b.wrapping_add(base);
            }
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let len = nodes.len() as NodeId;
    for &n in &path {
        nodes[n as usize].end = len;
    }
    FlameTree {
        frames,
        nodes,
        base_totals,
        is_diff,
    }
}

/// Builds a tree (not a diff) from `n` stacks given in sorted order, as
/// [`build_sorted`] does, when the caller knows how many frames each stack
/// shares with the one before and how many nodes there are (`count`; a
/// wrong count only costs a reallocation): `stack(k, buf)` fills `buf`
/// with the ranks of the `k`-th stack's frames after the shared ones and
/// returns (value, frames shared).
///
/// A stack's value is added to its leaf only; one pass from the last node
/// back then adds each node's total to its parent's (pre-order puts every
/// child after its parent), so a frame is touched once per node, not once
/// per stack through it (62 M times for the 50 MB benchmark profile's
/// 15.7 M nodes).
pub(crate) fn build_sorted_shared(
    frames: Vec<FrameInfo>,
    by_rank: &[FrameId],
    n: usize,
    count: usize,
    mut stack: impl FnMut(usize, &mut Vec<u32>) -> (i64, usize),
) -> FlameTree {
    let mut nodes: Vec<FlameNode> = Vec::with_capacity(count);
    nodes.push(FlameNode {
        frame: 0,
        parent: 0,
        depth: 0,
        end: 0,
        total: 0,
    });
    let mut path: Vec<NodeId> = vec![0];
    let mut buf: Vec<u32> = Vec::with_capacity(256);
    for k in 0..n {
        let (value, shared) = stack(k, &mut buf);
        let common = shared.min(path.len() - 1);
        let len = nodes.len() as NodeId;
        for &n in &path[common + 1..] {
            nodes[n as usize].end = len;
        }
        path.truncate(common + 1);
        for &r in &buf {
            let parent = *path.last().unwrap_or(&0);
            path.push(nodes.len() as NodeId);
            nodes.push(FlameNode {
                frame: by_rank.get(r as usize).copied().unwrap_or(r),
                parent,
                depth: path.len() as u32 - 1,
                end: 0,
                total: 0,
            });
        }
        let leaf = &mut nodes[*path.last().unwrap_or(&0) as usize];
        // Sums wrap on overflow like Go's int64 (hostile values never panic).
        leaf.total = leaf.total.wrapping_add(value);
    }
    debug_assert_eq!(nodes.len(), count, "the caller's node count");
    let len = nodes.len() as NodeId;
    for &n in &path {
        nodes[n as usize].end = len;
    }
    for i in (1..nodes.len()).rev() {
        let (p, t) = (nodes[i].parent as usize, nodes[i].total);
        nodes[p].total = nodes[p].total.wrapping_add(t);
    }
    FlameTree {
        frames,
        nodes,
        base_totals: Vec::new(),
        is_diff: false,
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
            .enumerate()
            .map(|(i, n)| {
                (
                    t.frames[n.frame as usize].name.as_str(),
                    n.depth,
                    n.total,
                    t.self_value(i as NodeId),
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

    /// The tree against a naive one (a map from path to sums) on random
    /// stacks, and the structural invariants: pre-order, `end`, `parent`,
    /// `depth`, siblings sorted by (name, frame id).
    #[test]
    fn random_stacks_build_the_same_tree_as_a_naive_map() {
        use std::collections::BTreeMap;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..200 {
            let mut b = TreeBuilder::new();
            // Same names in other files: distinct frames that sort together.
            let ids: Vec<FrameId> = (0..6)
                .map(|i| {
                    b.frame(FrameInfo {
                        name: ["b", "a", "c"][i % 3].into(),
                        file: format!("f{}", i / 3),
                        ..FrameInfo::default()
                    })
                })
                .collect();
            let mut want: BTreeMap<Vec<FrameId>, (i64, i64, i64)> = BTreeMap::new();
            for _ in 0..rnd(40) {
                let stack: Vec<FrameId> = (0..rnd(6)).map(|_| ids[rnd(6) as usize]).collect();
                let (v, base) = (rnd(100) as i64 - 20, rnd(3) as i64);
                if rnd(4) == 0 {
                    b.add_base(&stack, base);
                } else {
                    b.add(&stack, v);
                }
            }
            // `want` from the recorded stacks: every prefix gets the value.
            want.insert(Vec::new(), (0, 0, 0));
            for i in 0..b.ends.len() {
                let start = if i == 0 { 0 } else { b.ends[i - 1] };
                let stack = b.stack_frames[start..b.ends[i]].to_vec();
                for d in 0..=stack.len() {
                    let e = want.entry(stack[..d].to_vec()).or_insert((0, 0, 0));
                    e.0 += b.values[i];
                    e.2 += b.bases[i];
                    if d == stack.len() {
                        e.1 += b.values[i];
                    }
                }
            }
            let t = b.finish();
            let mut got: BTreeMap<Vec<FrameId>, (i64, i64, i64)> = BTreeMap::new();
            let mut path: Vec<FrameId> = Vec::new();
            for (i, n) in t.nodes.iter().enumerate() {
                path.truncate((n.depth as usize).saturating_sub(1));
                if i > 0 {
                    path.push(n.frame);
                    assert!(n.parent < i as u32, "round {round}");
                    assert_eq!(t.nodes[n.parent as usize].depth + 1, n.depth);
                }
                let next_out = t.nodes[i + 1..]
                    .iter()
                    .position(|m| m.depth <= n.depth)
                    .map_or(t.nodes.len(), |p| i + 1 + p);
                assert_eq!(n.end as usize, next_out, "round {round} node {i}");
                let kids: Vec<(String, FrameId)> = t
                    .children(i as u32)
                    .map(|c| (t.frame(c).name.clone(), t.nodes[c as usize].frame))
                    .collect();
                assert!(
                    kids.windows(2).all(|w| w[0] < w[1]),
                    "round {round}: {kids:?}"
                );
                assert!(
                    got.insert(
                        path.clone(),
                        (
                            n.total,
                            t.self_value(i as NodeId),
                            t.base_total(i as NodeId)
                        )
                    )
                    .is_none()
                );
            }
            assert_eq!(got, want, "round {round}");
        }
    }
}
