//! A self-contained SVG flamegraph of a [`FlameTree`]: one `<g>` per node
//! with a `<title>` (name, value, share — the browser's tooltip), a
//! `<rect>` whose width is proportional to the node's total, and a
//! `<text>` label truncated to fit (with `..`). Roots at the bottom, as in
//! Brendan Gregg's flamegraphs.
//!
//! Nodes narrower than [`MIN_WIDTH_PX`] are left out: they could not be
//! seen and would only bloat the file (a 1.45 M-sample profile has
//! hundreds of thousands of nodes). Colours: a warm hue per package
//! (stable: a hash of the package name); in a diff, red for growth and
//! blue for shrink, paler the smaller the change.

use crate::tree::{FlameTree, NodeId};

/// Narrowest box drawn, in pixels.
pub const MIN_WIDTH_PX: f64 = 0.1;
/// Height of a row, in pixels.
pub const ROW_PX: f64 = 16.0;
/// Approximate width of one character of the 12 px label font.
const CHAR_PX: f64 = 7.0;

/// Layout of the picture.
#[derive(Clone, Debug)]
pub struct SvgOptions {
    /// Width of the picture, in pixels.
    pub width_px: f64,
    /// Title written on top.
    pub title: String,
    /// Unit of the values, for tooltips (e.g. `nanoseconds`).
    pub unit: String,
}

impl Default for SvgOptions {
    fn default() -> Self {
        SvgOptions {
            width_px: 1200.0,
            title: "Flame Graph".to_string(),
            unit: String::new(),
        }
    }
}

/// Escapes text for XML content and attributes.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 forbids.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

fn hash(s: &str) -> u32 {
    // FNV-1a: a stable colour per package across runs and platforms.
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn colour(tree: &FlameTree, node: NodeId) -> String {
    let n = &tree.nodes[node as usize];
    if tree.is_diff {
        let (new, old) = (n.total as f64, tree.base_total(node) as f64);
        let scale = new.abs().max(old.abs()).max(1.0);
        let change = ((new - old) / scale).clamp(-1.0, 1.0);
        let pale = (255.0 * (1.0 - change.abs())) as u8;
        return if change >= 0.0 {
            format!("rgb(255,{pale},{pale})")
        } else {
            format!("rgb({pale},{pale},255)")
        };
    }
    let f = tree.frame(node);
    let key = if f.package.is_empty() {
        &f.name
    } else {
        &f.package
    };
    let h = hash(key);
    let r = 205 + (h % 50);
    let g = (h >> 8) % 230;
    let b = (h >> 16) % 55;
    format!("rgb({r},{g},{b})")
}

/// Truncates `label` to `chars` characters, ending in `..`.
fn fit(label: &str, chars: usize) -> Option<String> {
    if chars < 3 {
        return None;
    }
    if label.chars().count() <= chars {
        return Some(label.to_string());
    }
    let mut s: String = label.chars().take(chars - 2).collect();
    s.push_str("..");
    Some(s)
}

/// The SVG document of `tree` (see the module docs).
pub fn svg(tree: &FlameTree, opts: &SvgOptions) -> String {
    let total = tree.total().max(1) as f64;
    let depth = tree.max_depth() as f64 + 1.0;
    let top_px = 40.0;
    let height = top_px + depth * ROW_PX + 10.0;
    let width = opts.width_px.max(10.0);
    let mut out = String::new();
    out.push_str(&format!(
        "<?xml version=\"1.0\" standalone=\"no\"?>\n<svg version=\"1.1\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" xmlns=\"http://www.w3.org/2000/svg\">\n"
    ));
    out.push_str("<style>text{font-family:Verdana,sans-serif;font-size:12px;fill:#000}rect{stroke:#fff;stroke-width:0.5}</style>\n");
    out.push_str(&format!(
        "<rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#f8f8f8\" style=\"stroke:none\"/>\n<text x=\"{:.1}\" y=\"24\" text-anchor=\"middle\" style=\"font-size:17px\">{}</text>\n",
        width / 2.0,
        xml_escape(&opts.title)
    ));
    // x of each node, computed in pre-order: a child starts where its
    // previous sibling ended.
    let mut x = vec![0.0f64; tree.nodes.len()];
    let mut next_child_x = vec![0.0f64; tree.nodes.len()];
    let usable = width - 20.0;
    for (i, n) in tree.nodes.iter().enumerate() {
        let xi = if i == 0 {
            10.0
        } else {
            let p = n.parent as usize;
            let xi = next_child_x[p];
            next_child_x[p] = xi + n.total.max(0) as f64 / total * usable;
            xi
        };
        x[i] = xi;
        next_child_x[i] = xi;
        let w = n.total.max(0) as f64 / total * usable;
        if w < MIN_WIDTH_PX {
            continue;
        }
        let y = height - 10.0 - (n.depth as f64 + 1.0) * ROW_PX;
        let f = tree.frame(i as NodeId);
        let name = if i == 0 { "all" } else { f.name.as_str() };
        let title = if tree.is_diff {
            format!(
                "{name} ({} → {} {}, {:+})",
                tree.base_total(i as NodeId),
                n.total,
                opts.unit,
                n.total.wrapping_sub(tree.base_total(i as NodeId))
            )
        } else {
            format!(
                "{name} ({} {}, {:.2}%)",
                n.total,
                opts.unit,
                n.total as f64 / total * 100.0
            )
        };
        out.push_str(&format!(
            "<g><title>{}</title><rect x=\"{xi:.2}\" y=\"{y:.1}\" width=\"{w:.2}\" height=\"{:.1}\" fill=\"{}\"/>",
            xml_escape(&title),
            ROW_PX - 1.0,
            colour(tree, i as NodeId)
        ));
        if let Some(label) = fit(name, ((w - 6.0) / CHAR_PX).floor().max(0.0) as usize) {
            out.push_str(&format!(
                "<text x=\"{:.2}\" y=\"{:.1}\">{}</text>",
                xi + 3.0,
                y + ROW_PX - 4.5,
                xml_escape(&label)
            ));
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{FrameInfo, TreeBuilder};

    #[test]
    fn boxes_are_proportional_and_labels_escaped_and_truncated() {
        let mut b = TreeBuilder::new();
        let long = "x".repeat(400);
        let a = b.frame(FrameInfo {
            name: "a<&>".into(),
            ..FrameInfo::default()
        });
        let l = b.frame(FrameInfo {
            name: long.clone(),
            ..FrameInfo::default()
        });
        b.add(&[a], 3);
        b.add(&[l], 1);
        let s = svg(&b.finish(), &SvgOptions::default());
        assert!(s.contains("a&lt;&amp;&gt;"));
        // The tooltip has the whole name; the label is cut to fit 295 px.
        assert!(!s.contains(&format!(">{long}</text>")));
        assert!(s.contains(&format!(">{}..</text>", "x".repeat(39))), "{s}");
        // Usable width 1180: a gets 3/4, the long one 1/4.
        assert!(s.contains("width=\"885.00\""), "{s}");
        assert!(s.contains("width=\"295.00\""));
        assert!(s.contains("x=\"895.00\""));
        assert_eq!(s.matches("<g>").count(), 3);
    }
}
