//! Collapsed ("folded") stacks, Brendan Gregg's format:
//! `root_fn;caller;…;leaf VALUE`, one line per distinct stack, lines
//! sorted (byte order), stacks with a zero value left out. The tree's
//! root is not a frame of the stacks.
//!
//! A frame is written as its name; at line or address granularity the
//! `file:line` follows after a space (so lines stay distinct). A `;` or a
//! line break inside a name would break the format: they are replaced by
//! `:` and a space.

use std::collections::BTreeMap;

use crate::tree::{FlameTree, FrameInfo, NodeId};

/// How a frame is written in a folded stack.
pub fn frame_label(f: &FrameInfo) -> String {
    let mut s = if f.line != 0 {
        format!("{} {}:{}", f.name, f.file, f.line)
    } else {
        f.name.clone()
    };
    if s.contains([';', '\n', '\r']) {
        s = s.replace(';', ":").replace(['\n', '\r'], " ");
    }
    s
}

/// The folded stacks of `tree` (each node's self value), sorted, with a
/// trailing newline after every line.
pub fn collapsed(tree: &FlameTree) -> String {
    let labels: Vec<String> = tree.frames.iter().map(frame_label).collect();
    let mut stacks: BTreeMap<String, i64> = BTreeMap::new();
    // The path of the current node, as label ids, maintained in pre-order.
    let mut path: Vec<u32> = Vec::new();
    for (i, n) in tree.nodes.iter().enumerate() {
        if i == 0 {
            continue;
        }
        path.truncate(n.depth as usize - 1);
        path.push(n.frame);
        let self_value = tree.self_value(i as NodeId);
        if self_value != 0 {
            let key = path
                .iter()
                .map(|&f| labels[f as usize].as_str())
                .collect::<Vec<_>>()
                .join(";");
            let e = stacks.entry(key).or_insert(0);
            *e = e.wrapping_add(self_value);
        }
    }
    emberlens_pprof::import::folded::write_lines(&stacks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::TreeBuilder;

    #[test]
    fn stacks_fold_sorted_without_zeros() {
        let mut b = TreeBuilder::new();
        let f = |b: &mut TreeBuilder, n: &str| {
            b.frame(FrameInfo {
                name: n.into(),
                ..FrameInfo::default()
            })
        };
        let (m, a, z) = (f(&mut b, "main"), f(&mut b, "a;b"), f(&mut b, "z"));
        b.add(&[m, z], 3);
        b.add(&[m, a], 2);
        b.add(&[m], 0);
        b.add(&[m, z], -3);
        assert_eq!(collapsed(&b.finish()), "main;a:b 2\n");
    }
}
