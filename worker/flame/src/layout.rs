//! Flamegraph layout: a [`FlameTree`] and a [`Viewport`] in, the boxes to
//! paint out — in device pixels, only the visible ones, with colours and
//! labels already fitted. The renderer (the worker's `OffscreenCanvas`
//! painter, or a test) only fills rectangles and draws text.
//!
//! Coordinates: horizontally a viewport is a window `[start, end)` of *tree
//! units* (the root spans `[0, total)`; a child starts where its previous
//! siblings end, siblings in name order as in [`FlameTree`]). Zooming and
//! panning move the window; clicking a box zooms the window to the box's
//! extent (as speedscope does: ancestors stay, clipped to the window).
//! Vertically every depth is one row of [`Viewport::row_height_css`]; the
//! root's row is at the bottom in [`Orientation::Flame`] and at the top in
//! [`Orientation::Icicle`], and [`Viewport::scroll_y_css`] moves the rows
//! towards the deep end (up for a flame graph, down for an icicle).
//!
//! A key design decision is that layout walks the tree from the root and
//! never descends into a box that is not drawn: boxes narrower than
//! [`Viewport::min_box_dev`] are not drawn and neither are their descendants
//! (which are narrower still); runs of such siblings are drawn as one
//! neutral box ([`FlameRect::node`] `None`) when the run itself is wide
//! enough to see. The work per frame is therefore bounded by what is on the
//! screen, not by the tree: a 2 M-node tree costs what its visible boxes
//! cost. Rows outside the vertical window are not descended into either.
//!
//! Colours ([`Palette`]): a stable hash of the frame's package (or module)
//! picks the hue, as pprof and speedscope do, so one package keeps one hue
//! across views and sessions; the name's hash varies the lightness a little
//! so that neighbouring frames of one package stay apart (a quantised
//! palette, see [`frame_color`]: fewer colours paint faster). Diff trees use
//! pprof's convention: **red = grew** (the new profile has more than the
//! base), **green = shrank**, grey = unchanged, saturation by the relative
//! change. A [`Search`] keeps the colours of matching boxes and dims the
//! rest.
//!
//! Labels are truncated at the end with `…` to fit their box (the
//! renderer passes a per-character width, which it caches from
//! `measureText`); boxes too narrow for one character and the ellipsis get
//! no label.
//!
//! Edge cases: a tree whose total is 0 draws nothing; negative totals count
//! as 0 width; a viewport with a non-finite, empty or inverted window falls
//! back to the whole tree (see [`Viewport::sanitized`]).

use regex::Regex;

use crate::tree::{FlameTree, FrameInfo, NodeId};

/// Boxes narrower than this many CSS pixels (and never less than one device
/// pixel) are not drawn, nor their descendants; see
/// [`Viewport::min_box_dev`]. Box edges are rounded to whole device pixels
/// (crisp edges, and Chromium's software rasteriser fills aligned
/// rectangles much faster than anti-aliased ones), so a box of at least one
/// device pixel keeps at least one column; one narrower than a CSS pixel is
/// a tint nobody can point at. Skipping them is also what keeps huge trees
/// fast: on the 2.26 M-node benchmark tree this halves the boxes of a
/// zoomed-out frame at `devicePixelRatio` 2.
pub const MIN_BOX_CSS_PX: f64 = 1.0;

/// The default row height, CSS pixels (pprof's and speedscope's rows are 16–20).
pub const DEFAULT_ROW_HEIGHT_CSS: f64 = 18.0;

/// Space between a box's left edge and its label, CSS pixels.
pub const LABEL_PADDING_CSS: f64 = 3.0;

/// The gap left between neighbouring boxes and rows, device pixels (boxes
/// narrower than three pixels get none, so they do not vanish).
pub const GAP_DEVICE_PX: f64 = 1.0;

/// The narrowest zoom window, in tree units. Sample values are integers,
/// so a window narrower than one unit shows nothing new; it also keeps the
/// unit → pixel scale finite.
pub const MIN_WINDOW_UNITS: f64 = 1.0;

/// The label ellipsis.
pub const ELLIPSIS: char = '…';

/// Which end the root is drawn at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Orientation {
    /// Root at the bottom, callees above (Brendan Gregg's flame graph).
    #[default]
    Flame,
    /// Root at the top, callees below (pprof's web flame graph, speedscope's left-heavy).
    Icicle,
}

/// What part of the tree is on screen, and how big the screen is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Viewport {
    /// Left edge of the window, tree units.
    pub start: f64,
    /// Right edge of the window (exclusive), tree units.
    pub end: f64,
    /// Vertical scroll towards the deep end, CSS pixels, ≥ 0.
    pub scroll_y_css: f64,
    /// Canvas width, CSS pixels.
    pub width_css: f64,
    /// Canvas height, CSS pixels.
    pub height_css: f64,
    /// Device pixels per CSS pixel (`devicePixelRatio`).
    pub dpr: f64,
    /// Height of one row, CSS pixels.
    pub row_height_css: f64,
    /// Root at the bottom or the top.
    pub orientation: Orientation,
    /// The tree's deepest depth ([`FlameTree::max_depth`]), cached by
    /// [`Viewport::whole`]: scanning a 2 M-node tree for it on every frame
    /// would cost more than the layout itself.
    pub max_depth: u32,
}

impl Viewport {
    /// The whole tree on a `width_css` × `height_css` canvas.
    pub fn whole(
        tree: &FlameTree,
        width_css: f64,
        height_css: f64,
        dpr: f64,
        orientation: Orientation,
    ) -> Viewport {
        Viewport {
            start: 0.0,
            end: tree_width(tree),
            scroll_y_css: 0.0,
            width_css,
            height_css,
            dpr,
            row_height_css: DEFAULT_ROW_HEIGHT_CSS,
            orientation,
            max_depth: tree.max_depth(),
        }
        .sanitized(tree)
    }

    /// The same viewport with every field usable: sizes finite and ≥ 0,
    /// `dpr` in `[0.25, 8]`, the row height in `[4, 200]`, the window
    /// inside `[0, total)` and at least [`MIN_WINDOW_UNITS`] wide (a
    /// non-finite or inverted window becomes the whole tree), the scroll in
    /// `[0, max_scroll_css]`.
    pub fn sanitized(mut self, tree: &FlameTree) -> Viewport {
        let finite_or = |v: f64, d: f64| if v.is_finite() { v } else { d };
        self.width_css = finite_or(self.width_css, 0.0).max(0.0);
        self.height_css = finite_or(self.height_css, 0.0).max(0.0);
        self.dpr = finite_or(self.dpr, 1.0).clamp(0.25, 8.0);
        self.row_height_css =
            finite_or(self.row_height_css, DEFAULT_ROW_HEIGHT_CSS).clamp(4.0, 200.0);
        let total = tree_width(tree);
        if !(self.start.is_finite() && self.end.is_finite() && self.end > self.start) {
            self.start = 0.0;
            self.end = total;
        }
        let (start, end) = clamp_window(self.start, self.end - self.start, total);
        self.start = start;
        self.end = end;
        self.scroll_y_css = finite_or(self.scroll_y_css, 0.0).clamp(0.0, self.max_scroll_css());
        self
    }

    /// Canvas width in device pixels.
    pub fn width_dev(&self) -> f64 {
        self.width_css * self.dpr
    }

    /// Canvas height in device pixels.
    pub fn height_dev(&self) -> f64 {
        self.height_css * self.dpr
    }

    /// The narrowest box drawn, device pixels: [`MIN_BOX_CSS_PX`] CSS
    /// pixels, at least one device pixel.
    pub fn min_box_dev(&self) -> f64 {
        (MIN_BOX_CSS_PX * self.dpr).max(1.0)
    }

    /// Row height in device pixels.
    pub fn row_dev(&self) -> f64 {
        self.row_height_css * self.dpr
    }

    /// Device pixels per tree unit.
    pub fn px_per_unit_dev(&self) -> f64 {
        self.width_dev() / (self.end - self.start)
    }

    /// The device x of tree offset `units`.
    pub fn x_dev(&self, units: f64) -> f64 {
        (units - self.start) * self.px_per_unit_dev()
    }

    /// The device y of the top of `depth`'s row.
    pub fn row_top_dev(&self, depth: u32) -> f64 {
        let (r, s) = (self.row_dev(), self.scroll_y_css * self.dpr);
        match self.orientation {
            Orientation::Icicle => depth as f64 * r - s,
            Orientation::Flame => self.height_dev() - (depth as f64 + 1.0) * r + s,
        }
    }

    /// The depth of the row at CSS `y`, if `y` is on the canvas (the row
    /// may hold no box there).
    pub fn depth_at(&self, y_css: f64) -> Option<u32> {
        if !(0.0..self.height_css).contains(&y_css) {
            return None;
        }
        let (r, s) = (self.row_height_css, self.scroll_y_css);
        let d = match self.orientation {
            Orientation::Icicle => ((y_css + s) / r).floor(),
            Orientation::Flame => ((self.height_css + s - y_css) / r).ceil() - 1.0,
        };
        (d >= 0.0 && d < u32::MAX as f64).then_some(d as u32)
    }

    /// The depths with a row at least partly on the canvas, inclusive
    /// (empty when `first > last`).
    pub fn visible_depths(&self) -> (u32, u32) {
        let (r, s, h) = (self.row_height_css, self.scroll_y_css, self.height_css);
        let first = (s / r).floor().max(0.0);
        let last = ((h + s) / r).ceil() - 1.0;
        if last < first {
            return (1, 0);
        }
        (first as u32, last.min(u32::MAX as f64) as u32)
    }

    /// How far the rows can scroll: the tree's height beyond the canvas's.
    pub fn max_scroll_css(&self) -> f64 {
        ((self.max_depth as f64 + 1.0) * self.row_height_css - self.height_css).max(0.0)
    }

    /// The window zoomed to `node`'s extent (click-to-zoom); the vertical
    /// scroll is kept.
    pub fn zoomed_to(&self, tree: &FlameTree, node: NodeId) -> Viewport {
        let (start, end) = node_extent(tree, node);
        Viewport {
            start,
            end,
            ..*self
        }
        .sanitized(tree)
    }

    /// The window scaled by `factor` (< 1 zooms in) around CSS x `anchor_x_css`,
    /// which keeps pointing at the same tree offset.
    pub fn zoomed(&self, tree: &FlameTree, factor: f64, anchor_x_css: f64) -> Viewport {
        if !(factor.is_finite() && factor > 0.0 && self.width_css > 0.0) {
            return *self;
        }
        let width = self.end - self.start;
        let frac = (anchor_x_css / self.width_css).clamp(0.0, 1.0);
        let anchor = self.start + frac * width;
        let new_width = (width * factor).clamp(MIN_WINDOW_UNITS, tree_width(tree));
        let (start, end) = clamp_window(anchor - frac * new_width, new_width, tree_width(tree));
        Viewport {
            start,
            end,
            ..*self
        }
        .sanitized(tree)
    }

    /// The window moved right by `dx_css` CSS pixels' worth of units (the
    /// boxes move left) and the rows scrolled by `dy_css` towards the deep end.
    pub fn panned(&self, tree: &FlameTree, dx_css: f64, dy_css: f64) -> Viewport {
        let mut v = *self;
        if dx_css.is_finite() && self.width_css > 0.0 {
            let width = self.end - self.start;
            let (start, end) = clamp_window(
                self.start + dx_css * width / self.width_css,
                width,
                tree_width(tree),
            );
            v.start = start;
            v.end = end;
        }
        if dy_css.is_finite() {
            v.scroll_y_css += dy_css;
        }
        v.sanitized(tree)
    }
}

/// The root's width in tree units (at least [`MIN_WINDOW_UNITS`], so an
/// empty tree still has a window).
fn tree_width(tree: &FlameTree) -> f64 {
    (tree.total().max(0) as f64).max(MIN_WINDOW_UNITS)
}

/// A window of `width` starting near `start`, moved (not shrunk, unless
/// wider than the tree) to lie inside `[0, total)`.
fn clamp_window(start: f64, width: f64, total: f64) -> (f64, f64) {
    let width = width.clamp(MIN_WINDOW_UNITS.min(total), total);
    let start = start.clamp(0.0, total - width);
    (start, start + width)
}

/// A node's extent `[start, end)` in tree units. Walks the path from the
/// root, summing the widths of earlier siblings: O(depth × siblings).
pub fn node_extent(tree: &FlameTree, node: NodeId) -> (f64, f64) {
    let Some(n) = tree.nodes.get(node as usize) else {
        return (0.0, tree_width(tree));
    };
    let mut path = vec![node];
    let mut at = node;
    while at != 0 {
        at = tree.nodes[at as usize].parent;
        path.push(at);
    }
    let mut offset = 0i64;
    for pair in path.windows(2).rev() {
        let (child, parent) = (pair[0], pair[1]);
        for sibling in tree.children(parent) {
            if sibling == child {
                break;
            }
            offset += tree.nodes[sibling as usize].total.max(0);
        }
    }
    (offset as f64, (offset + n.total.max(0)) as f64)
}

/// A colour, 8 bits per channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// CSS hex form, `#rrggbb`.
    pub fn css(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// `self` moved `t` (0..=1) of the way towards `other`.
    pub fn mix(self, other: Rgb, t: f64) -> Rgb {
        let t = t.clamp(0.0, 1.0);
        let m = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * t).round() as u8;
        Rgb(m(self.0, other.0), m(self.1, other.1), m(self.2, other.2))
    }
}

/// The canvas background.
pub const BACKGROUND: Rgb = Rgb(0xff, 0xff, 0xff);
/// Label text.
pub const TEXT: Rgb = Rgb(0x1a, 0x1a, 0x1a);
/// The root's box, and unchanged boxes of a diff.
pub const NEUTRAL: Rgb = Rgb(0xc8, 0xc8, 0xc8);
/// A run of boxes too narrow to draw one by one.
pub const MERGED: Rgb = Rgb(0xb4, 0xb4, 0xb4);
/// What a dimmed box (not matching a search) is blended towards.
pub const DIMMED: Rgb = Rgb(0xee, 0xee, 0xee);
/// A diff box that grew by 100 % (pprof's red).
pub const GREW: Rgb = Rgb(0xe0, 0x3c, 0x31);
/// A diff box that shrank to nothing (pprof's green).
pub const SHRANK: Rgb = Rgb(0x3c, 0xb0, 0x4a);
/// How far a dimmed box moves towards [`DIMMED`].
const DIM_AMOUNT: f64 = 0.75;

/// The package (or module) a frame is coloured by: [`FrameInfo::package`]
/// if set, else a guess from the name — Go's `path/pkg.Func` → `path/pkg`,
/// Rust's and C++'s `a::b::f` → `a::b`, else the name itself.
pub fn package_of(info: &FrameInfo) -> &str {
    if !info.package.is_empty() {
        return &info.package;
    }
    let name = info.name.as_str();
    // Generic arguments and parameter lists hold `::` and `.` of their own.
    let head = &name[..name.find(['<', '(']).unwrap_or(name.len())];
    if let Some(i) = head.rfind("::") {
        return &name[..i];
    }
    let last_slash = head.rfind('/').map_or(0, |i| i + 1);
    match head[last_slash..].find('.') {
        Some(i) if last_slash + i > 0 => &name[..last_slash + i],
        _ => name,
    }
}

/// FNV-1a, 32 bits: stable across builds and platforms (std's hasher is not).
fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

/// HSL (hue in degrees, saturation and lightness in 0..=1) to RGB.
fn hsl(h: f64, s: f64, l: f64) -> Rgb {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let hp = (h.rem_euclid(360.0)) / 60.0;
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    let to = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    Rgb(to(r), to(g), to(b))
}

/// Hues a package can get: 40 steps of 9°. The palette is quantised
/// because every distinct colour in a frame costs the painter a `fillStyle`
/// change, and in Chromium's software canvas those changes were half the
/// paint time of a zoomed-out frame of the benchmark tree (15 k boxes in as
/// many colours); 40 hues × [`SHADES`] lightness steps keep a frame to at
/// most 120 frame colours.
const HUES: u32 = 40;
/// Lightness steps within a package's hue (by name), so neighbouring frames
/// of one package stay apart.
const SHADES: u32 = 3;
/// Steps of a diff box's change from grey to full red or green.
const DIFF_STEPS: f64 = 8.0;

/// The colour of a frame, by package (see the module docs).
pub fn frame_color(info: &FrameInfo) -> Rgb {
    let hue = (fnv1a(package_of(info)) % HUES) as f64 * (360.0 / HUES as f64);
    let shade = (fnv1a(&info.name) % SHADES) as f64;
    hsl(hue, 0.62, 0.65 + 0.05 * shade)
}

/// The colour of a diff box: pprof's red for growth, green for shrinkage,
/// by the change relative to the larger of the two values (in
/// [`DIFF_STEPS`] steps, rounded up so any change shows).
pub fn diff_color(total: i64, base_total: i64) -> Rgb {
    let (new, base) = (total.max(0) as f64, base_total.max(0) as f64);
    let larger = new.max(base);
    if larger == 0.0 || new == base {
        return NEUTRAL;
    }
    let change = (new - base) / larger;
    let step = ((change.abs() * DIFF_STEPS).ceil() / DIFF_STEPS).min(1.0);
    if change > 0.0 {
        NEUTRAL.mix(GREW, step)
    } else {
        NEUTRAL.mix(SHRANK, step)
    }
}

/// Colours of a tree's frames, computed once per tree.
#[derive(Clone, Debug)]
pub struct Palette {
    frames: Vec<Rgb>,
}

impl Palette {
    /// Colours every frame of `tree`; the root is [`NEUTRAL`].
    pub fn new(tree: &FlameTree) -> Palette {
        let mut frames: Vec<Rgb> = tree.frames.iter().map(frame_color).collect();
        if let Some(root) = frames.get_mut(FlameTree::ROOT_FRAME as usize) {
            *root = NEUTRAL;
        }
        Palette { frames }
    }

    /// The fill of `node` before search dimming.
    pub fn node_color(&self, tree: &FlameTree, node: NodeId) -> Rgb {
        let n = &tree.nodes[node as usize];
        if node == 0 {
            NEUTRAL
        } else if tree.is_diff {
            diff_color(n.total, tree.base_total(node))
        } else {
            self.frames
                .get(n.frame as usize)
                .copied()
                .unwrap_or(NEUTRAL)
        }
    }
}

/// A search pattern that does not compile.
#[derive(Debug, thiserror::Error)]
#[error("bad search pattern {pattern:?}: {reason}")]
pub struct SearchError {
    /// The pattern as given.
    pub pattern: String,
    /// The regex engine's complaint.
    pub reason: String,
}

/// Frames matching a search, and the total they account for.
#[derive(Clone, Debug)]
pub struct Search {
    matches: Vec<bool>,
    /// The sum of the totals of matching nodes, each sample counted once (a
    /// match inside a matching node's subtree adds nothing): the share of
    /// the profile the search covers, as pprof's and speedscope's "matched".
    pub matched_total: i64,
    /// How many nodes match.
    pub matched_nodes: usize,
}

impl Search {
    /// Matches `pattern`, a regular expression (RE2 syntax, unanchored, as
    /// pprof's search), against every frame name of `tree`; the root never
    /// matches.
    pub fn new(tree: &FlameTree, pattern: &str) -> Result<Search, SearchError> {
        let re = Regex::new(pattern).map_err(|e| SearchError {
            pattern: pattern.to_string(),
            reason: e.to_string(),
        })?;
        let mut matches: Vec<bool> = tree.frames.iter().map(|f| re.is_match(&f.name)).collect();
        if let Some(root) = matches.get_mut(FlameTree::ROOT_FRAME as usize) {
            *root = false;
        }
        let mut matched_total = 0i64;
        let mut matched_nodes = 0usize;
        // Pre-order: a matching node's subtree is `id..end`; skip-counting
        // inside it counts each sample once.
        let mut covered_until = 0u32;
        for (i, n) in tree.nodes.iter().enumerate() {
            if matches.get(n.frame as usize).copied().unwrap_or(false) {
                matched_nodes += 1;
                if i as u32 >= covered_until {
                    matched_total = matched_total.wrapping_add(n.total.max(0));
                    covered_until = n.end;
                }
            }
        }
        Ok(Search {
            matches,
            matched_total,
            matched_nodes,
        })
    }

    /// Whether `node`'s frame matches.
    pub fn is_match(&self, tree: &FlameTree, node: NodeId) -> bool {
        let frame = tree.nodes[node as usize].frame;
        self.matches.get(frame as usize).copied().unwrap_or(false)
    }
}

/// Widths of text as the renderer draws it, in device pixels.
pub trait MeasureText {
    /// The advance of `c` in the label font.
    fn char_width(&mut self, c: char) -> f64;
}

/// Every character `.0` device pixels wide: for tests and for callers
/// without a font.
#[derive(Clone, Copy, Debug)]
pub struct FixedWidth(pub f64);

impl MeasureText for FixedWidth {
    fn char_width(&mut self, _: char) -> f64 {
        self.0
    }
}

/// `name` cut to fit `avail` device pixels: whole if it fits, else the
/// longest prefix followed by [`ELLIPSIS`], else `None` (not even one
/// character and the ellipsis fit).
pub fn fit_label(name: &str, avail: f64, measure: &mut dyn MeasureText) -> Option<String> {
    if avail <= 0.0 {
        return None;
    }
    let ellipsis = measure.char_width(ELLIPSIS);
    let mut used = 0.0;
    // Where the text would be cut if it turns out not to fit whole.
    let mut cut: Option<usize> = None;
    for (i, c) in name.char_indices() {
        let w = measure.char_width(c);
        if cut.is_none() && used + w + ellipsis > avail {
            cut = Some(i);
        }
        used += w;
        if used > avail {
            let cut = cut.unwrap_or(i);
            if cut == 0 {
                return None;
            }
            let mut s = String::with_capacity(cut + ELLIPSIS.len_utf8());
            s.push_str(&name[..cut]);
            s.push(ELLIPSIS);
            return Some(s);
        }
    }
    (!name.is_empty()).then(|| name.to_string())
}

/// One box to paint, in whole device pixels (gaps already taken off).
#[derive(Clone, Debug, PartialEq)]
pub struct FlameRect {
    /// The node, or `None` for a run of boxes too narrow to draw one by one.
    pub node: Option<NodeId>,
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width (> 0).
    pub w: f64,
    /// Height (> 0).
    pub h: f64,
    /// Fill colour (search dimming applied).
    pub fill: Rgb,
    /// The label, fitted to the visible part of the box, drawn from `x +`
    /// [`LABEL_PADDING_CSS`]` × dpr`, vertically centred.
    pub label: Option<String>,
}

/// The boxes of one frame.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Layout {
    /// Boxes to paint, in no particular order (they do not overlap).
    pub rects: Vec<FlameRect>,
    /// Nodes looked at (drawn or not): the work done, for benchmarks.
    pub visited: usize,
}

/// Lays out `tree` in `vp` (see the module docs). `vp` is used as given;
/// pass it through [`Viewport::sanitized`] first when it comes from outside.
pub fn layout(
    tree: &FlameTree,
    vp: &Viewport,
    palette: &Palette,
    search: Option<&Search>,
    measure: &mut dyn MeasureText,
) -> Layout {
    let mut out = Layout::default();
    if tree.nodes.is_empty() || tree.total() <= 0 || vp.width_css <= 0.0 || vp.height_css <= 0.0 {
        return out;
    }
    let (first, last) = vp.visible_depths();
    let width_dev = vp.width_dev();
    let min_box = vp.min_box_dev();
    let row_dev = vp.row_dev();
    let pad_dev = LABEL_PADDING_CSS * vp.dpr;
    let mut paint = |out: &mut Layout, node: Option<NodeId>, depth: u32, x0: f64, x1: f64| {
        if depth < first || depth > last {
            return;
        }
        // The visible part of the box, on whole device pixels: labels are
        // fitted to what is seen.
        let (x0, x1) = (x0.max(0.0).round(), x1.min(width_dev).round());
        let w = x1 - x0;
        if w <= 0.0 {
            return;
        }
        let w_drawn = if w >= 3.0 * GAP_DEVICE_PX {
            w - GAP_DEVICE_PX
        } else {
            w
        };
        let row = row_dev.round().max(1.0);
        let h = if row >= 3.0 * GAP_DEVICE_PX {
            row - GAP_DEVICE_PX
        } else {
            row
        };
        let (fill, label) = match node {
            Some(id) => {
                let base = palette.node_color(tree, id);
                let fill = match search {
                    Some(s) if !s.is_match(tree, id) => base.mix(DIMMED, DIM_AMOUNT),
                    _ => base,
                };
                let label = fit_label(&tree.frame(id).label(), w_drawn - 2.0 * pad_dev, measure);
                (fill, label)
            }
            None => (
                match search {
                    Some(_) => MERGED.mix(DIMMED, DIM_AMOUNT),
                    None => MERGED,
                },
                None,
            ),
        };
        out.rects.push(FlameRect {
            node,
            x: x0,
            y: vp.row_top_dev(depth).round(),
            w: w_drawn,
            h,
            fill,
            label,
        });
    };

    // The root spans the whole tree; it is drawn if the window shows any of it.
    out.visited = 1;
    let root_total = tree.nodes[0].total as f64;
    let (rx0, rx1) = (vp.x_dev(0.0), vp.x_dev(root_total));
    if rx1 <= 0.0 || rx0 >= width_dev || rx1 - rx0 < min_box {
        return out;
    }
    paint(&mut out, Some(0), 0, rx0, rx1);
    // (node, its offset in tree units); every node on the stack is drawn.
    let mut stack: Vec<(NodeId, i64)> = vec![(0, 0)];
    while let Some((id, offset)) = stack.pop() {
        let depth = tree.nodes[id as usize].depth + 1;
        if depth > last {
            continue;
        }
        let mut x = offset;
        // A run of adjacent boxes too narrow to draw: (x0, x1) device px.
        let mut run: Option<(f64, f64)> = None;
        for child in tree.children(id) {
            out.visited += 1;
            let total = tree.nodes[child as usize].total.max(0);
            let (x0, x1) = (vp.x_dev(x as f64), vp.x_dev((x + total) as f64));
            let child_offset = x;
            x += total;
            if x1 <= 0.0 || total == 0 {
                continue;
            }
            if x0 >= width_dev {
                break;
            }
            if x1 - x0 < min_box {
                run = Some(match run {
                    Some((r0, _)) => (r0, x1),
                    None => (x0, x1),
                });
                continue;
            }
            if let Some((r0, r1)) = run.take()
                && r1 - r0 >= min_box
            {
                paint(&mut out, None, depth, r0, r1);
            }
            paint(&mut out, Some(child), depth, x0, x1);
            stack.push((child, child_offset));
        }
        if let Some((r0, r1)) = run
            && r1 - r0 >= min_box
        {
            paint(&mut out, None, depth, r0, r1);
        }
    }
    out
}

/// What is under the pointer.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// The node.
    pub node: NodeId,
    /// Its frame's name.
    pub name: String,
    /// Its self value.
    pub self_value: i64,
    /// Its total.
    pub total: i64,
    /// In a diff, the base profile's total (0 otherwise).
    pub base_total: i64,
    /// `total` as a percentage of the root's.
    pub total_percent: f64,
    /// `self_value` as a percentage of the root's total.
    pub self_percent: f64,
}

/// The drawn box at CSS `(x_css, y_css)`, if any. Boxes too narrow to be
/// drawn on their own (merged runs) are not hit; the gaps between boxes
/// belong to the box on their left (or below/above).
pub fn hit_test(tree: &FlameTree, vp: &Viewport, x_css: f64, y_css: f64) -> Option<Hit> {
    if tree.nodes.is_empty() || tree.total() <= 0 || !(0.0..vp.width_css).contains(&x_css) {
        return None;
    }
    let depth = vp.depth_at(y_css)?;
    let at = vp.start + x_css * vp.dpr / vp.px_per_unit_dev();
    let root_total = tree.nodes[0].total;
    if !(0.0..root_total as f64).contains(&at) {
        return None;
    }
    let mut node: NodeId = 0;
    let mut offset = 0i64;
    for _ in 0..depth {
        let mut found = None;
        let mut x = offset;
        for child in tree.children(node) {
            let total = tree.nodes[child as usize].total.max(0);
            if (x as f64) <= at && at < (x + total) as f64 {
                found = Some((child, x));
                break;
            }
            x += total;
            if x as f64 > at {
                break;
            }
        }
        (node, offset) = found?;
    }
    let n = &tree.nodes[node as usize];
    let w = n.total.max(0) as f64 * vp.px_per_unit_dev();
    if w < vp.min_box_dev() {
        return None;
    }
    let pct = |v: i64| 100.0 * v as f64 / root_total as f64;
    let self_value = tree.self_value(node);
    Some(Hit {
        node,
        name: tree.frame(node).label().into_owned(),
        self_value,
        total: n.total,
        base_total: tree.base_total(node),
        total_percent: pct(n.total),
        self_percent: pct(self_value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::TreeBuilder;

    /// root 100 = a 60 (c 30 [d 30], self 30) + b 40.
    ///
    /// On a 100 × 72 CSS px canvas at dpr 1 with 18 px rows, one unit is
    /// one pixel, and the four rows fill the canvas exactly.
    fn small() -> FlameTree {
        let mut b = TreeBuilder::new();
        let mut f = |name: &str, package: &str| {
            b.frame(FrameInfo {
                name: name.into(),
                package: package.into(),
                ..FrameInfo::default()
            })
        };
        let (a, bb, c, d) = (f("a", "p"), f("b", "q"), f("c", "p"), f("d", "q"));
        b.add(&[a, c, d], 30);
        b.add(&[a], 30);
        b.add(&[bb], 40);
        b.finish()
    }

    fn vp(tree: &FlameTree, orientation: Orientation) -> Viewport {
        Viewport::whole(tree, 100.0, 72.0, 1.0, orientation)
    }

    /// `name x y w h [label]` per box, sorted by row then x.
    fn boxes(tree: &FlameTree, l: &Layout) -> Vec<String> {
        let mut rects = l.rects.clone();
        rects.sort_by(|a, b| (a.y, a.x).partial_cmp(&(b.y, b.x)).unwrap());
        rects
            .iter()
            .map(|r| {
                format!(
                    "{} {} {} {} {} {}",
                    r.node.map_or("<merged>", |n| tree.frame(n).name.as_str()),
                    r.x,
                    r.y,
                    r.w,
                    r.h,
                    r.label.as_deref().unwrap_or("-")
                )
            })
            .collect()
    }

    fn check(tree: &FlameTree, vp: &Viewport, expect: &[&str]) {
        let l = layout(tree, vp, &Palette::new(tree), None, &mut FixedWidth(6.0));
        assert_eq!(boxes(tree, &l), expect);
    }

    #[test]
    fn icicle_puts_the_root_on_top_and_children_in_name_order() {
        let t = small();
        // Labels: 6 px per char, 3 px padding each side.
        check(
            &t,
            &vp(&t, Orientation::Icicle),
            &[
                "root 0 0 99 17 root",
                "a 0 18 59 17 a",
                "b 60 18 39 17 b",
                "c 0 36 29 17 c",
                "d 0 54 29 17 d",
            ],
        );
    }

    #[test]
    fn flame_puts_the_root_at_the_bottom() {
        let t = small();
        check(
            &t,
            &vp(&t, Orientation::Flame),
            &[
                "d 0 0 29 17 d",
                "c 0 18 29 17 c",
                "a 0 36 59 17 a",
                "b 60 36 39 17 b",
                "root 0 54 99 17 root",
            ],
        );
    }

    #[test]
    fn device_pixel_ratio_scales_boxes_not_the_tree() {
        let t = small();
        let mut v = vp(&t, Orientation::Icicle);
        v.dpr = 2.0;
        check(
            &t,
            &v,
            &[
                "root 0 0 199 35 root",
                "a 0 36 119 35 a",
                "b 120 36 79 35 b",
                "c 0 72 59 35 c",
                "d 0 108 59 35 d",
            ],
        );
    }

    #[test]
    fn zooming_to_a_node_fills_the_width_and_clips_ancestors() {
        let t = small();
        let c = 2; // pre-order: root, a, c, d, b
        assert_eq!(t.frame(c).name, "c");
        assert_eq!(node_extent(&t, c), (0.0, 30.0));
        assert_eq!(node_extent(&t, 4), (60.0, 100.0));
        let v = vp(&t, Orientation::Icicle).zoomed_to(&t, c);
        assert_eq!((v.start, v.end), (0.0, 30.0));
        // b lies right of the window: gone. Root and a are clipped to it.
        check(
            &t,
            &v,
            &[
                "root 0 0 99 17 root",
                "a 0 18 99 17 a",
                "c 0 36 99 17 c",
                "d 0 54 99 17 d",
            ],
        );
    }

    #[test]
    fn vertical_scroll_hides_rows_and_skips_their_subtrees() {
        let t = small();
        let mut v = vp(&t, Orientation::Icicle);
        v.height_css = 36.0; // two rows on screen
        let v = v.panned(&t, 0.0, 18.0);
        assert_eq!(v.scroll_y_css, 18.0);
        check(
            &t,
            &v,
            &["a 0 0 59 17 a", "b 60 0 39 17 b", "c 0 18 29 17 c"],
        );
        // Scrolling past the end stops at the deepest row.
        assert_eq!(v.panned(&t, 0.0, 1000.0).scroll_y_css, 36.0);
    }

    #[test]
    fn narrow_boxes_merge_into_runs_and_are_not_descended_into() {
        // 1000 leaves of 1 unit under `main` plus one wide leaf: on 100 px
        // each leaf is 0.1 px.
        let mut b = TreeBuilder::new();
        let main = b.frame(FrameInfo {
            name: "main".into(),
            ..FrameInfo::default()
        });
        let wide = b.frame(FrameInfo {
            name: "zz_wide".into(),
            ..FrameInfo::default()
        });
        for i in 0..1000 {
            let leaf = b.frame(FrameInfo {
                name: format!("f{i:04}"),
                ..FrameInfo::default()
            });
            let deeper = b.frame(FrameInfo {
                name: format!("g{i:04}"),
                ..FrameInfo::default()
            });
            b.add(&[main, leaf, deeper], 1);
        }
        b.add(&[main, wide], 1000);
        let t = b.finish();
        let v = Viewport::whole(&t, 100.0, 72.0, 1.0, Orientation::Icicle);
        let l = layout(&t, &v, &Palette::new(&t), None, &mut FixedWidth(6.0));
        check(
            &t,
            &v,
            &[
                "root 0 0 99 17 root",
                "main 0 18 99 17 main",
                "<merged> 0 36 49 17 -",
                "zz_wide 50 36 49 17 zz_wide",
            ],
        );
        // root, main, 1001 children; no grandchild looked at.
        assert_eq!(l.visited, 1003);
        // The merged run is not a hit target.
        assert_eq!(hit_test(&t, &v, 10.0, 40.0), None);
        assert_eq!(
            hit_test(&t, &v, 60.0, 40.0).map(|h| h.name),
            Some("zz_wide".to_string())
        );
    }

    #[test]
    fn boxes_under_one_css_pixel_are_not_drawn_at_any_pixel_ratio() {
        let mut b = TreeBuilder::new();
        let mut f = |name: &str| {
            b.frame(FrameInfo {
                name: name.into(),
                ..FrameInfo::default()
            })
        };
        let (a, z) = (f("a"), f("z"));
        // On 100 CSS px: a is 0.75 CSS px, z the rest.
        b.add(&[a], 3);
        b.add(&[z], 397);
        let t = b.finish();
        for dpr in [1.0, 2.0] {
            let v = Viewport::whole(&t, 100.0, 36.0, dpr, Orientation::Icicle);
            let l = layout(&t, &v, &Palette::new(&t), None, &mut FixedWidth(6.0));
            let names: Vec<&str> = l
                .rects
                .iter()
                .map(|r| r.node.map_or("<merged>", |n| t.frame(n).name.as_str()))
                .collect();
            assert_eq!(names, ["root", "z"], "dpr {dpr}");
            assert_eq!(hit_test(&t, &v, 0.5, 20.0), None, "dpr {dpr}");
            assert_eq!(hit_test(&t, &v, 50.0, 20.0).unwrap().name, "z");
        }
    }

    #[test]
    fn labels_truncate_with_an_ellipsis_or_vanish() {
        let m = &mut FixedWidth(5.0);
        assert_eq!(fit_label("main", 20.0, m).as_deref(), Some("main"));
        assert_eq!(fit_label("main", 19.0, m).as_deref(), Some("ma…"));
        assert_eq!(fit_label("main", 10.0, m).as_deref(), Some("m…"));
        assert_eq!(fit_label("main", 9.0, m), None);
        assert_eq!(fit_label("", 90.0, m), None);
        // Multi-byte characters are cut on character boundaries.
        assert_eq!(fit_label("ééééé", 15.0, m).as_deref(), Some("éé…"));
    }

    #[test]
    fn hit_testing_finds_the_box_under_the_pointer_in_both_orientations() {
        let t = small();
        let v = vp(&t, Orientation::Icicle);
        let hit = hit_test(&t, &v, 10.0, 40.0).unwrap();
        assert_eq!((hit.name.as_str(), hit.total, hit.self_value), ("c", 30, 0));
        assert_eq!(hit.total_percent, 30.0);
        let a = hit_test(&t, &v, 59.5, 20.0).unwrap();
        assert_eq!((a.name.as_str(), a.self_percent), ("a", 30.0));
        assert_eq!(hit_test(&t, &v, 60.0, 20.0).unwrap().name, "b");
        // Nothing under b's row below it, nothing off the canvas.
        assert_eq!(hit_test(&t, &v, 70.0, 40.0), None);
        assert_eq!(hit_test(&t, &v, 100.0, 5.0), None);
        assert_eq!(hit_test(&t, &v, 10.0, -1.0), None);
        let f = vp(&t, Orientation::Flame);
        assert_eq!(hit_test(&t, &f, 10.0, 5.0).unwrap().name, "d");
        assert_eq!(hit_test(&t, &f, 10.0, 71.9).unwrap().name, "root");
        // Zoomed into c, x = 50 px is unit 15.
        let z = v.zoomed_to(&t, 2);
        assert_eq!(hit_test(&t, &z, 50.0, 60.0).unwrap().name, "d");
    }

    #[test]
    fn zoom_and_pan_keep_the_window_inside_the_tree() {
        let t = small();
        let v = vp(&t, Orientation::Icicle);
        let z = v.zoomed(&t, 0.5, 50.0);
        assert_eq!((z.start, z.end), (25.0, 75.0));
        let z = v.zoomed(&t, 0.5, 0.0);
        assert_eq!((z.start, z.end), (0.0, 50.0));
        // Panning right by 40 px of a 50-unit window on 100 px: 20 units.
        let p = z.panned(&t, 40.0, 0.0);
        assert_eq!((p.start, p.end), (20.0, 70.0));
        // ... and no further than the right edge.
        let p = z.panned(&t, 1000.0, 0.0);
        assert_eq!((p.start, p.end), (50.0, 100.0));
        // Zooming out stops at the whole tree, zooming in at one unit.
        let out = v.zoomed(&t, 10.0, 30.0);
        assert_eq!((out.start, out.end), (0.0, 100.0));
        let deep = v.zoomed(&t, 1e-9, 30.0);
        assert_eq!(deep.end - deep.start, MIN_WINDOW_UNITS);
        // Garbage in, whole tree out.
        let mut g = v;
        g.start = f64::NAN;
        g.dpr = 0.0;
        let g = g.sanitized(&t);
        assert_eq!((g.start, g.end, g.dpr), (0.0, 100.0, 0.25));
    }

    #[test]
    fn search_dims_the_rest_and_counts_nested_matches_once() {
        let t = small();
        // `a` and `c` match; c is inside a, so the matched total is a's 60.
        let s = Search::new(&t, "^[ac]$").unwrap();
        assert_eq!((s.matched_total, s.matched_nodes), (60, 2));
        let v = vp(&t, Orientation::Icicle);
        let p = Palette::new(&t);
        let l = layout(&t, &v, &p, Some(&s), &mut FixedWidth(6.0));
        for r in &l.rects {
            let id = r.node.unwrap();
            let base = p.node_color(&t, id);
            if ["a", "c"].contains(&t.frame(id).name.as_str()) {
                assert_eq!(r.fill, base);
            } else {
                assert_eq!(r.fill, base.mix(DIMMED, DIM_AMOUNT));
                assert_ne!(r.fill, base);
            }
        }
        assert_eq!(Search::new(&t, "zzz").unwrap().matched_total, 0);
        // The root never matches, so "" matches every frame below it once.
        assert_eq!(Search::new(&t, "").unwrap().matched_total, 100);
        let err = Search::new(&t, "(").unwrap_err();
        assert!(
            err.to_string().starts_with("bad search pattern \"(\""),
            "{err}"
        );
    }

    #[test]
    fn colours_follow_the_package_and_are_stable() {
        let t = small();
        let p = Palette::new(&t);
        // a and c are package p, b and d package q: same hue family.
        let (a, c, b) = (
            p.node_color(&t, 1),
            p.node_color(&t, 2),
            p.node_color(&t, 4),
        );
        assert_ne!(a, b);
        let hue = |c: Rgb| {
            let (r, g, b) = (c.0 as f64, c.1 as f64, c.2 as f64);
            let (max, min) = (r.max(g).max(b), r.min(g).min(b));
            let h = if max == r {
                (g - b) / (max - min)
            } else if max == g {
                2.0 + (b - r) / (max - min)
            } else {
                4.0 + (r - g) / (max - min)
            };
            (h * 60.0).rem_euclid(360.0)
        };
        assert!((hue(a) - hue(c)).abs() < 3.0, "{a:?} {c:?}");
        assert_eq!(p.node_color(&t, 0), NEUTRAL);
        // Pinned: the hash is FNV-1a, so colours survive rebuilds.
        assert_eq!(fnv1a("net/http"), 0xd83f_e715); // as Python computes FNV-1a
        let pkg = |name: &str| {
            package_of(&FrameInfo {
                name: name.into(),
                ..FrameInfo::default()
            })
            .to_string()
        };
        assert_eq!(pkg("net/http.(*conn).serve"), "net/http");
        assert_eq!(pkg("runtime.mallocgc"), "runtime");
        assert_eq!(
            pkg("tokio::runtime::park::<T>::park"),
            "tokio::runtime::park"
        );
        assert_eq!(pkg("main"), "main");
    }

    #[test]
    fn diff_colours_are_red_for_growth_and_green_for_shrinkage() {
        assert_eq!(diff_color(10, 10), NEUTRAL);
        assert_eq!(diff_color(10, 0), GREW);
        assert_eq!(diff_color(0, 10), SHRANK);
        let half_up = diff_color(20, 10);
        assert!(half_up.0 > half_up.1, "{half_up:?}");
        let half_down = diff_color(10, 20);
        assert!(half_down.1 > half_down.0, "{half_down:?}");
        // Any change shows; changes fall in a few steps.
        assert_ne!(diff_color(1000, 999), NEUTRAL);
        assert_eq!(diff_color(1000, 999), diff_color(1000, 900));
    }

    #[test]
    fn the_palette_has_few_colours_whatever_the_number_of_frames() {
        let mut colours = std::collections::HashSet::new();
        for i in 0..5000 {
            colours.insert(frame_color(&FrameInfo {
                name: format!("pkg{}.f{i}", i % 700),
                ..FrameInfo::default()
            }));
        }
        assert!(
            colours.len() <= (HUES * SHADES) as usize,
            "{}",
            colours.len()
        );
    }

    #[test]
    fn empty_trees_and_empty_canvases_draw_nothing() {
        let t = TreeBuilder::new().finish();
        let v = Viewport::whole(&t, 100.0, 100.0, 1.0, Orientation::Flame);
        let l = layout(&t, &v, &Palette::new(&t), None, &mut FixedWidth(6.0));
        assert!(l.rects.is_empty());
        assert_eq!(hit_test(&t, &v, 1.0, 99.0), None);
        let t = small();
        let v = Viewport::whole(&t, 0.0, 100.0, 1.0, Orientation::Flame);
        let l = layout(&t, &v, &Palette::new(&t), None, &mut FixedWidth(6.0));
        assert!(l.rects.is_empty());
    }
}
