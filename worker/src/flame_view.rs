//! The flamegraph in the worker: the opened profile, its tree for the
//! chosen sample type, the viewport (zoom, scroll, size, orientation), the
//! search, and the surface it is painted on.
//!
//! Plain Rust, tested natively: painting goes through the [`Surface`]
//! trait, which the browser implements over an `OffscreenCanvas`
//! (`crate::canvas`) and tests with a recorder. Every request that changes
//! what is seen lays out the visible window again
//! ([`emberlens_flame::layout`]) and paints it; hover and click are answered
//! from the same geometry ([`emberlens_flame::layout::hit_test`]), so what the
//! pointer names is what is drawn under it.
//!
//! The tree comes from the flamegraph model (`emberlens_flame::Model`),
//! inlined frames expanded, through pprof's refinements as the app sent
//! them ([`FlameRefine`]: focus, ignore, hide, show, tag filters,
//! granularity); a change of sample type or refinement rebuilds it.
//!
//! A second profile can be opened as the diff base (pprof's `-diff_base`):
//! with [`FlameView::diff`] the tree is `Model::diff_tree` (each node's
//! value and its base's; boxes coloured red where it grew, green where it
//! shrank) and the top table is `Model::top_diff`. With
//! [`FlameView::sandwich`] the canvas shows one function's sandwich: its
//! callers in the top half (the function on the bottom row, callers above)
//! and its callees in the bottom half (the function on the top row); the
//! halves always show their whole tree, so zoom and pan do not apply, and a
//! click names the box without zooming.

use emberlens_flame::layout::{
    self, Layout, MeasureText, Orientation, Palette, Search, Viewport, hit_test,
};
use emberlens_flame::top::TopOptions;
use emberlens_flame::{FlameTree, Model, Options, SampleIndex, TextOptions};
use emberlens_protocol::{
    ErrorBody, ErrorKind, FlameHit, FlameNavigate, FlameOrientation, FlamePoint, FlameRefine,
    FlameStatus, FlameView, FlameWindow, ProfileInfo, TopAnswer, TopEntry,
};

/// Where the flamegraph is painted: an `OffscreenCanvas` in the browser.
/// Label widths are measured in the font [`Surface::begin`] set.
pub trait Surface: MeasureText {
    /// Gets ready for a frame of `vp`: sizes the backing store to the
    /// viewport's device pixels and sets the label font.
    fn begin(&mut self, vp: &Viewport) -> Result<(), String>;
    /// Paints the background, then the boxes and their labels.
    fn paint(&mut self, vp: &Viewport, layout: &Layout) -> Result<(), String>;
}

/// The label font size, CSS pixels (scaled by `devicePixelRatio` on the canvas).
pub const FONT_CSS: f64 = 12.0;

/// A decoded profile and what is drawn of it.
pub struct Loaded {
    name: String,
    model: Model,
    sample_types: Vec<(String, String)>,
    default_sample_type: usize,
    sample_type: usize,
    refine: FlameRefine,
    tree: FlameTree,
    palette: Palette,
    search_pattern: String,
    search: Option<Search>,
    search_error: Option<String>,
    vp: Viewport,
    /// Whether `tree` is the diff against the base of generation `base_generation`.
    diff: bool,
    /// Whether the diff is normalised (pprof's `-normalize`).
    normalize: bool,
    /// The model scaled to the base's totals, for the base of this generation.
    normalized: Option<(u64, Model)>,
    base_generation: u64,
    sandwich: Option<Sandwiched>,
}

/// One function's sandwich, ready to draw.
struct Sandwiched {
    function: String,
    callers: FlameTree,
    callers_palette: Palette,
    callees: FlameTree,
    callees_palette: Palette,
}

/// The diff base.
struct Base {
    name: String,
    model: Model,
}

impl Loaded {
    /// The tree being drawn.
    pub fn tree(&self) -> &FlameTree {
        &self.tree
    }

    /// The viewport being drawn.
    pub fn viewport(&self) -> &Viewport {
        &self.vp
    }

    /// The profile a diff against the base uses: the model, or with
    /// `normalize` its copy scaled to the base's totals (made by
    /// [`Loaded::normalize_for`]).
    fn diff_model(&self, normalize: bool) -> &Model {
        match (&self.normalized, normalize) {
            (Some((_, m)), true) => m,
            _ => &self.model,
        }
    }

    /// Makes the model's copy scaled to `base`'s totals (pprof's
    /// `-normalize`), once per base.
    fn normalize_for(&mut self, base: &Base, generation: u64) -> Result<(), ErrorBody> {
        if self
            .normalized
            .as_ref()
            .is_some_and(|(g, _)| *g == generation)
        {
            return Ok(());
        }
        let mut m = self.model.clone();
        m.normalize_to(&base.model).map_err(|e| ErrorBody {
            kind: ErrorKind::BadRequest,
            message: format!("{} normalised to the base {}: {e}", self.name, base.name),
        })?;
        self.normalized = Some((generation, m));
        Ok(())
    }
}

/// The worker's flamegraph state (one profile, one canvas).
#[derive(Default)]
pub struct FlameState {
    /// The opened profile, if any.
    pub loaded: Option<Loaded>,
    /// The canvas the app handed over, if any.
    pub surface: Option<Box<dyn Surface>>,
    /// The app's last options, kept for the next profile.
    view: Option<FlameView>,
    /// The diff base, if one was opened.
    base: Option<Base>,
    /// Bumped on every base opened.
    base_generation: u64,
    /// Bumped on every change of the tree drawn ([`FlameStatus::tree_version`]).
    tree_version: u64,
}

fn no_profile() -> ErrorBody {
    ErrorBody {
        kind: ErrorKind::NoProfile,
        message: "no profile is open".into(),
    }
}

fn no_base() -> ErrorBody {
    ErrorBody {
        kind: ErrorKind::BadRequest,
        message: "no diff base is open".into(),
    }
}

/// pprof's options for sample type `index` and the app's refinements.
fn options_of(index: usize, refine: &FlameRefine) -> Result<Options, ErrorBody> {
    let text = TextOptions {
        granularity: &refine.granularity,
        focus: &refine.focus,
        ignore: &refine.ignore,
        hide: &refine.hide,
        show: &refine.show,
        show_from: "",
        tagfocus: &refine.tagfocus,
        tagignore: &refine.tagignore,
    };
    Options::from_text(Some(SampleIndex::Number(index)), &text).map_err(|e| ErrorBody {
        kind: ErrorKind::BadRequest,
        message: e.to_string(),
    })
}

/// The tree of sample type `index`, through the model with pprof's
/// defaults; with a base, the diff against it.
fn tree_of(
    model: &Model,
    name: &str,
    index: usize,
    refine: &FlameRefine,
    base: Option<&Base>,
) -> Result<FlameTree, ErrorBody> {
    let opts = options_of(index, refine)?;
    match base {
        None => model.flame_tree(&opts).map_err(|e| ErrorBody {
            kind: ErrorKind::Source,
            message: format!("{name}: {e}"),
        }),
        Some(b) => model.diff_tree(&b.model, &opts).map_err(|e| ErrorBody {
            kind: ErrorKind::BadRequest,
            message: format!("{name} against the base {}: {e}", b.name),
        }),
    }
}

/// The sandwich of the function named `function` (a top table's row name:
/// the function, or for finer granularities its first word).
fn sandwich_of(
    model: &Model,
    index: usize,
    refine: &FlameRefine,
    function: &str,
) -> Result<Sandwiched, ErrorBody> {
    let opts = options_of(index, refine)?;
    let name = match refine.granularity.as_str() {
        "" | "functions" => function,
        _ => function.split(' ').next().unwrap_or(function),
    };
    let re = regex::Regex::new(&format!("^{}$", regex::escape(name))).map_err(|e| ErrorBody {
        kind: ErrorKind::BadRequest,
        message: format!("sandwich of {function:?}: {e}"),
    })?;
    let s = model.sandwich(&opts, &re).map_err(|e| ErrorBody {
        kind: ErrorKind::Source,
        message: format!("sandwich of {function:?}: {e}"),
    })?;
    Ok(Sandwiched {
        function: function.to_string(),
        callers_palette: Palette::new(&s.callers),
        callees_palette: Palette::new(&s.callees),
        callers: s.callers,
        callees: s.callees,
    })
}

/// Decodes a profile for `name`'s error messages.
/// The model of a profile file named `name` (see [`open_profile`]).
pub fn decode(name: &str, bytes: &[u8]) -> Result<Model, ErrorBody> {
    // pprof is decoded straight into the model's columns (no per-sample
    // messages): the 50 MB benchmark profile fits in a tab.
    Model::from_any_bytes(bytes, emberlens_pprof::DEFAULT_MAX_DECODED_BYTES).map_err(|e| {
        ErrorBody {
            kind: ErrorKind::Source,
            message: format!("{name}: {e}"),
        }
    })
}

fn info_of(name: &str, model: &Model) -> ProfileInfo {
    ProfileInfo {
        name: name.to_string(),
        sample_types: model
            .sample_types()
            .iter()
            .map(|t| format!("{}/{}", t.name, t.unit))
            .collect(),
        default_sample_type: model.default_sample_type(),
        samples: model.sample_count(),
    }
}

/// Decodes `bytes` and makes it the diff base; the profile is redrawn
/// against it on the next [`FlameView`] with `diff` set.
pub fn open_base(
    state: &mut FlameState,
    name: &str,
    bytes: &[u8],
) -> Result<ProfileInfo, ErrorBody> {
    state.base = None;
    let model = decode(name, bytes)?;
    let info = info_of(name, &model);
    state.base = Some(Base {
        name: name.to_string(),
        model,
    });
    state.base_generation += 1;
    Ok(info)
}

/// pprof's `-top` table of what is drawn (against the base when diffing).
pub fn top(state: &FlameState) -> Result<TopAnswer, ErrorBody> {
    let loaded = state.loaded.as_ref().ok_or_else(no_profile)?;
    let opts = options_of(loaded.sample_type, &loaded.refine)?;
    let t = if loaded.diff {
        let base = state.base.as_ref().ok_or_else(no_base)?;
        loaded
            .diff_model(loaded.normalize)
            .top_diff(&base.model, &opts, &TopOptions::default())
    } else {
        loaded.model.top(&opts, &TopOptions::default())
    }
    .map_err(|e| ErrorBody {
        kind: ErrorKind::BadRequest,
        message: format!("top table of {}: {e}", loaded.name),
    })?;
    Ok(TopAnswer {
        rows: t
            .rows
            .iter()
            .map(|r| TopEntry {
                name: r.name.clone(),
                flat: r.flat,
                cum: r.cum,
            })
            .collect(),
        total: t.total,
        unit: t.sample_unit.clone(),
        diff: loaded.diff,
        header: t.header.clone(),
    })
}

fn orientation(o: FlameOrientation) -> Orientation {
    match o {
        FlameOrientation::Flame => Orientation::Flame,
        FlameOrientation::Icicle => Orientation::Icicle,
    }
}

/// Decodes `bytes` (pprof, folded stacks or Chrome `.cpuprofile`, gzipped
/// or not) and makes it the flamegraph's profile, drawn with the last
/// options the app sent.
pub fn open_profile(
    state: &mut FlameState,
    name: &str,
    bytes: &[u8],
) -> Result<ProfileInfo, ErrorBody> {
    // Free the previous profile before building the next model.
    state.loaded = None;
    let model = decode(name, bytes)?;
    open_model(state, name, model)
}

/// Makes `model` (from [`decode`]) the flamegraph's profile, as
/// [`open_profile`] does; the caller can free the file's bytes first, so
/// the tree's build reuses their memory.
pub fn open_model(
    state: &mut FlameState,
    name: &str,
    model: Model,
) -> Result<ProfileInfo, ErrorBody> {
    state.loaded = None;
    let info = info_of(name, &model);
    let types: Vec<(String, String)> = model
        .sample_types()
        .iter()
        .map(|t| (t.name.clone(), t.unit.clone()))
        .collect();
    let default = model.default_sample_type();
    let tree = tree_of(&model, name, default, &FlameRefine::default(), None)?;
    state.tree_version += 1;
    let view = state.view.clone();
    let (w, h, dpr, o) = view
        .as_ref()
        .map_or((0.0, 0.0, 1.0, Orientation::Flame), |v| {
            (v.width_css, v.height_css, v.dpr, orientation(v.orientation))
        });
    let vp = Viewport::whole(&tree, w, h, dpr, o);
    state.loaded = Some(Loaded {
        name: name.to_string(),
        palette: Palette::new(&tree),
        model,
        sample_types: types,
        default_sample_type: default,
        sample_type: default,
        refine: FlameRefine::default(),
        tree,
        search_pattern: String::new(),
        search: None,
        search_error: None,
        vp,
        diff: false,
        normalize: false,
        normalized: None,
        base_generation: 0,
        sandwich: None,
    });
    if let Some(mut v) = view {
        // Same options, new profile: the sample type and search apply
        // anew; the last profile's zoom window does not. An option that
        // fails on this profile (a diff base of other sample types) is
        // reported by the app's next view request, which follows every open.
        v.window = None;
        let _ = set_view(state, v, None);
    }
    Ok(info)
}

/// Applies the app's options (and a new canvas, if one came), then draws.
pub fn set_view(
    state: &mut FlameState,
    view: FlameView,
    surface: Option<Box<dyn Surface>>,
) -> Result<FlameStatus, ErrorBody> {
    if let Some(s) = surface {
        state.surface = Some(s);
    }
    state.view = Some(view.clone());
    let loaded = state.loaded.as_mut().ok_or_else(no_profile)?;
    let sample_type = view
        .sample_type
        .unwrap_or(loaded.default_sample_type)
        .min(loaded.sample_types.len().saturating_sub(1));
    let base = if view.diff {
        Some(state.base.as_ref().ok_or_else(no_base)?)
    } else {
        None
    };
    let base_generation = if view.diff { state.base_generation } else { 0 };
    let normalize = view.diff && view.normalize;
    let mut rebuilt = false;
    if sample_type != loaded.sample_type
        || view.refine != loaded.refine
        || view.diff != loaded.diff
        || normalize != loaded.normalize
        || base_generation != loaded.base_generation
    {
        if let (Some(b), true) = (base, normalize) {
            loaded.normalize_for(b, base_generation)?;
        }
        // A bad refinement answers an error and keeps what was drawn.
        loaded.tree = tree_of(
            loaded.diff_model(normalize),
            &loaded.name,
            sample_type,
            &view.refine,
            base,
        )?;
        loaded.palette = Palette::new(&loaded.tree);
        loaded.sample_type = sample_type;
        loaded.refine = view.refine.clone();
        loaded.diff = view.diff;
        loaded.normalize = normalize;
        loaded.base_generation = base_generation;
        loaded.vp = Viewport::whole(&loaded.tree, 0.0, 0.0, 1.0, loaded.vp.orientation);
        state.tree_version += 1;
        rebuilt = true;
    }
    let sandwich_now = loaded.sandwich.as_ref().map(|s| s.function.as_str());
    if rebuilt || view.sandwich.as_deref() != sandwich_now {
        loaded.sandwich = match &view.sandwich {
            Some(f) => Some(sandwich_of(&loaded.model, sample_type, &view.refine, f)?),
            None => None,
        };
        state.tree_version += 1;
    }
    if rebuilt || view.search != loaded.search_pattern {
        loaded.search_pattern = view.search.clone();
        (loaded.search, loaded.search_error) = if view.search.is_empty() {
            (None, None)
        } else {
            match Search::new(&loaded.tree, &view.search) {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(e.to_string())),
            }
        };
    }
    let mut vp = loaded.vp;
    vp.width_css = view.width_css;
    vp.height_css = view.height_css;
    vp.dpr = view.dpr;
    vp.orientation = orientation(view.orientation);
    if let Some(w) = view.window {
        vp.start = w.start;
        vp.end = w.end;
    }
    loaded.vp = vp.sanitized(&loaded.tree);
    draw(state, None)
}

/// Zooms and pans, then draws.
pub fn navigate(state: &mut FlameState, nav: FlameNavigate) -> Result<FlameStatus, ErrorBody> {
    let loaded = state.loaded.as_mut().ok_or_else(no_profile)?;
    let tree = &loaded.tree;
    loaded.vp = loaded
        .vp
        .zoomed(tree, nav.zoom_factor, nav.anchor_x_css)
        .panned(tree, nav.pan_x_css, nav.pan_y_css);
    draw(state, None)
}

/// Back to the whole tree (scroll to the root), then draws.
pub fn reset(state: &mut FlameState) -> Result<FlameStatus, ErrorBody> {
    let loaded = state.loaded.as_mut().ok_or_else(no_profile)?;
    let vp = loaded.vp;
    loaded.vp = Viewport {
        start: 0.0,
        end: f64::INFINITY,
        scroll_y_css: 0.0,
        ..vp
    }
    .sanitized(&loaded.tree);
    draw(state, None)
}

/// The two halves of a sandwich: (callers' viewport, callees' viewport),
/// each over its whole tree; the callees' starts `half_css` lower.
fn sandwich_viewports(vp: &Viewport, s: &Sandwiched) -> (Viewport, Viewport, f64) {
    let half_css = (vp.height_css / 2.0).floor();
    let mut callers = Viewport::whole(
        &s.callers,
        vp.width_css,
        half_css,
        vp.dpr,
        Orientation::Flame,
    );
    callers.row_height_css = vp.row_height_css;
    let mut callees = Viewport::whole(
        &s.callees,
        vp.width_css,
        vp.height_css - half_css,
        vp.dpr,
        Orientation::Icicle,
    );
    callees.row_height_css = vp.row_height_css;
    (
        callers.sanitized(&s.callers),
        callees.sanitized(&s.callees),
        half_css,
    )
}

fn hit_info(loaded: &Loaded, p: FlamePoint) -> Option<FlameHit> {
    let (tree, h) = match &loaded.sandwich {
        None => (
            &loaded.tree,
            hit_test(&loaded.tree, &loaded.vp, p.x_css, p.y_css)?,
        ),
        Some(s) => {
            let (callers, callees, half_css) = sandwich_viewports(&loaded.vp, s);
            if p.y_css < half_css {
                (
                    &s.callers,
                    hit_test(&s.callers, &callers, p.x_css, p.y_css)?,
                )
            } else {
                (
                    &s.callees,
                    hit_test(&s.callees, &callees, p.x_css, p.y_css - half_css)?,
                )
            }
        }
    };
    Some(FlameHit {
        node: h.node,
        file: tree.frame(h.node).file.clone(),
        name: h.name,
        self_value: h.self_value,
        total: h.total,
        total_percent: h.total_percent,
        self_percent: h.self_percent,
        unit: loaded.unit().to_string(),
    })
}

impl Loaded {
    fn unit(&self) -> &str {
        self.sample_types
            .get(self.sample_type)
            .map_or("", |(_, u)| u.as_str())
    }
}

/// The box under the pointer.
pub fn hover(state: &FlameState, p: FlamePoint) -> Result<Option<FlameHit>, ErrorBody> {
    let loaded = state.loaded.as_ref().ok_or_else(no_profile)?;
    Ok(hit_info(loaded, p))
}

/// Zooms to the box under the pointer, then draws.
pub fn click(state: &mut FlameState, p: FlamePoint) -> Result<FlameStatus, ErrorBody> {
    let loaded = state.loaded.as_mut().ok_or_else(no_profile)?;
    let hit = hit_info(loaded, p);
    if let Some(h) = &hit
        && loaded.sandwich.is_none()
    {
        loaded.vp = loaded.vp.zoomed_to(&loaded.tree, h.node);
    }
    draw(state, hit)
}

/// Lays out the visible window and paints it on the surface (if any).
pub fn draw(state: &mut FlameState, hit: Option<FlameHit>) -> Result<FlameStatus, ErrorBody> {
    let loaded = state.loaded.as_ref().ok_or_else(no_profile)?;
    let vp = loaded.vp;
    let paint_error = |e: String| ErrorBody {
        kind: ErrorKind::Execution,
        message: format!("painting the flamegraph of {}: {e}", loaded.name),
    };
    let mut fixed = layout::FixedWidth(FONT_CSS * 0.6 * vp.dpr);
    let boxes = match state.surface.as_mut() {
        Some(surface) => {
            surface.begin(&vp).map_err(paint_error)?;
            let l = layout_of(loaded, &vp, surface.as_mut());
            surface.paint(&vp, &l).map_err(paint_error)?;
            l.rects.len()
        }
        None => layout_of(loaded, &vp, &mut fixed).rects.len(),
    };
    Ok(FlameStatus {
        sample_type: loaded.sample_type,
        unit: loaded.unit().to_string(),
        total: loaded.tree.total(),
        nodes: loaded.tree.nodes.len(),
        window: Some(FlameWindow {
            start: vp.start,
            end: vp.end,
        }),
        scroll_y_css: vp.scroll_y_css,
        max_scroll_css: vp.max_scroll_css(),
        boxes,
        matched_total: loaded.search.as_ref().map(|s| s.matched_total),
        search_error: loaded.search_error.clone(),
        hit,
        tree_version: state.tree_version,
        diff: loaded.diff,
        sandwich: loaded.sandwich.as_ref().map(|s| s.function.clone()),
    })
}

/// The boxes of one frame: the flamegraph, or the sandwich's two halves
/// (the callees' boxes moved down by the callers' half).
fn layout_of(loaded: &Loaded, vp: &Viewport, measure: &mut dyn MeasureText) -> Layout {
    let Some(s) = &loaded.sandwich else {
        return layout::layout(
            &loaded.tree,
            vp,
            &loaded.palette,
            loaded.search.as_ref(),
            measure,
        );
    };
    let (callers, callees, half_css) = sandwich_viewports(vp, s);
    let mut out = layout::layout(&s.callers, &callers, &s.callers_palette, None, measure);
    let lower = layout::layout(&s.callees, &callees, &s.callees_palette, None, measure);
    let dy_dev = half_css * vp.dpr;
    out.visited += lower.visited;
    out.rects.extend(lower.rects.into_iter().map(|mut r| {
        r.y += dy_dev;
        r
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use emberlens_flame::layout::FixedWidth;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// The known-tree fixture: a Go program with a known call tree.
    fn fixture() -> Vec<u8> {
        include_bytes!("../tests/fixtures/known-tree-cpu.pb.gz").to_vec()
    }

    /// Records what was painted.
    #[derive(Clone, Default)]
    struct Recorder(Rc<RefCell<Vec<(Viewport, Layout)>>>);
    impl MeasureText for Recorder {
        fn char_width(&mut self, c: char) -> f64 {
            FixedWidth(7.0).char_width(c)
        }
    }
    impl Surface for Recorder {
        fn begin(&mut self, _: &Viewport) -> Result<(), String> {
            Ok(())
        }
        fn paint(&mut self, vp: &Viewport, layout: &Layout) -> Result<(), String> {
            self.0.borrow_mut().push((*vp, layout.clone()));
            Ok(())
        }
    }

    fn view() -> FlameView {
        FlameView {
            sample_type: None,
            orientation: FlameOrientation::Icicle,
            search: String::new(),
            width_css: 800.0,
            height_css: 600.0,
            dpr: 1.0,
            window: None,
            refine: Default::default(),
            diff: false,
            normalize: false,
            sandwich: None,
        }
    }

    #[test]
    fn the_known_tree_draws_hovers_and_zooms() {
        let mut st = FlameState::default();
        let rec = Recorder::default();
        assert_eq!(
            set_view(&mut st, view(), Some(Box::new(rec.clone())))
                .unwrap_err()
                .kind,
            ErrorKind::NoProfile
        );
        let info = open_profile(&mut st, "cpu.pb.gz", &fixture()).unwrap();
        assert_eq!(info.sample_types, ["samples/count", "cpu/nanoseconds"]);
        assert_eq!(info.default_sample_type, 1);
        // The options sent before the profile apply to it: one frame painted.
        assert_eq!(rec.0.borrow().len(), 1);
        let status = draw(&mut st, None).unwrap();
        assert!(status.boxes > 3, "{status:?}");
        assert_eq!(status.unit, "nanoseconds");
        let tree = st.loaded.as_ref().unwrap().tree().clone();
        // The root's row (icicle: the top row) names the root.
        let root = hover(
            &st,
            FlamePoint {
                x_css: 400.0,
                y_css: 5.0,
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!((root.name.as_str(), root.total), ("root", tree.total()));
        assert_eq!(root.total_percent, 100.0);
        // Click on the second row zooms to that box.
        let p = FlamePoint {
            x_css: 1.0,
            y_css: 20.0,
        };
        let under = hover(&st, p).unwrap().unwrap();
        let zoomed = click(&mut st, p).unwrap();
        assert_eq!(zoomed.hit.as_ref().map(|h| h.node), Some(under.node));
        let w = zoomed.window.unwrap();
        assert_eq!(w.end - w.start, under.total as f64);
        // Search: the matched total is reported; a bad pattern is an error message.
        let mut v = view();
        v.search = "^main\\.".into();
        let s = set_view(&mut st, v.clone(), None).unwrap();
        assert!(s.matched_total.unwrap() > 0, "{s:?}");
        v.search = "(".into();
        let s = set_view(&mut st, v, None).unwrap();
        assert!(s.search_error.is_some() && s.matched_total.is_none());
        let r = reset(&mut st).unwrap();
        assert_eq!(r.window.unwrap().end, tree.total() as f64);
        // The other sample type has another total and starts unzoomed.
        let mut v = view();
        v.sample_type = Some(0);
        let s = set_view(&mut st, v, None).unwrap();
        assert_eq!((s.sample_type, s.unit.as_str()), (0, "count"));
        assert_ne!(s.total, tree.total());
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let mut st = FlameState::default();
        let e = open_profile(&mut st, "bad.pb", b"\x1f\x8b\x08garbage").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Source);
        assert!(e.message.starts_with("bad.pb: "), "{}", e.message);
        assert!(st.loaded.is_none());
    }

    #[test]
    fn stacks_are_root_first_with_inlined_frames_expanded() {
        let mut st = FlameState::default();
        open_profile(&mut st, "cpu.pb.gz", &fixture()).unwrap();
        let t = st.loaded.as_ref().unwrap().tree();
        let names =
            |n: u32| -> Vec<&str> { t.children(n).map(|c| t.frame(c).name.as_str()).collect() };
        let child = |n: u32, name: &str| t.children(n).find(|&c| t.frame(c).name == name).unwrap();
        // The program's tree (expected.json): runtime.main → main.main →
        // main.run → funcA (→ funcB) and funcC, leaves first in pprof's
        // stacks and last in ours.
        assert_eq!(names(0), ["runtime.main"]);
        let run = child(child(child(0, "runtime.main"), "main.main"), "main.run");
        assert_eq!(names(run), ["main.funcA", "main.funcC"]);
        let a = child(run, "main.funcA");
        assert!(names(a).contains(&"main.funcB"), "{:?}", names(a));
        let share = t.nodes[a as usize].total as f64 / t.nodes[run as usize].total as f64;
        assert!((share - 0.7984).abs() < 1e-3, "{share}");
    }

    #[test]
    fn refinements_rebuild_the_tree_and_a_bad_one_keeps_the_drawing() {
        let mut st = FlameState::default();
        let rec = Recorder::default();
        open_profile(&mut st, "cpu.pb.gz", &fixture()).unwrap();
        let all = set_view(&mut st, view(), Some(Box::new(rec.clone()))).unwrap();
        let total_of = |st: &FlameState, name: &str| -> i64 {
            let t = st.loaded.as_ref().unwrap().tree();
            t.nodes
                .iter()
                .filter(|n| t.frames[n.frame as usize].name == name)
                .map(|n| n.total)
                .sum()
        };
        let func_c = total_of(&st, "main.funcC");
        assert!(func_c > 0 && func_c < all.total);
        // focus: only samples through funcC remain.
        let mut v = view();
        v.refine.focus = "funcC".into();
        let focused = set_view(&mut st, v.clone(), None).unwrap();
        assert_eq!(focused.total, func_c);
        assert_eq!(total_of(&st, "main.funcA"), 0);
        // hide: funcB's frames go, its samples stay (under funcA).
        v.refine = FlameRefine {
            hide: "funcB".into(),
            ..FlameRefine::default()
        };
        let hidden = set_view(&mut st, v.clone(), None).unwrap();
        assert_eq!(hidden.total, all.total);
        assert_eq!(total_of(&st, "main.funcB"), 0);
        // lines granularity: one box per line, labelled with file:line.
        v.refine = FlameRefine {
            granularity: "lines".into(),
            ..FlameRefine::default()
        };
        set_view(&mut st, v.clone(), None).unwrap();
        let t = st.loaded.as_ref().unwrap().tree();
        assert!(
            t.frames
                .iter()
                .any(|f| f.label() == "main.funcB main.go:27"),
            "{:?}",
            t.frames
        );
        // A bad regex names the option; the last tree stays drawn.
        let nodes = st.loaded.as_ref().unwrap().tree().nodes.len();
        v.refine = FlameRefine {
            ignore: "(".into(),
            ..FlameRefine::default()
        };
        let e = set_view(&mut st, v, None).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(e.message.contains("ignore"), "{}", e.message);
        assert_eq!(st.loaded.as_ref().unwrap().tree().nodes.len(), nodes);
    }

    const NEW: &[u8] = b"main;grow 30\nmain;same 10\nmain;shrink 5\n";
    const OLD: &[u8] = b"main;grow 10\nmain;same 10\nmain;shrink 20\n";

    #[test]
    fn a_diff_base_turns_the_tree_and_the_top_table_into_changes() {
        let mut st = FlameState::default();
        let rec = Recorder::default();
        open_profile(&mut st, "new.folded", NEW).unwrap();
        let plain = set_view(&mut st, view(), Some(Box::new(rec.clone()))).unwrap();
        assert!(!plain.diff);
        // Diffing before a base is open is an error naming the missing base.
        let mut v = view();
        v.diff = true;
        assert_eq!(
            set_view(&mut st, v.clone(), None).unwrap_err().message,
            "no diff base is open"
        );
        open_base(&mut st, "old.folded", OLD).unwrap();
        let d = set_view(&mut st, v.clone(), None).unwrap();
        assert!(d.diff && d.tree_version > plain.tree_version, "{d:?}");
        let t = st.loaded.as_ref().unwrap().tree();
        assert!(t.is_diff);
        let node = |name: &str| {
            (0..t.nodes.len() as u32)
                .find(|&n| t.frame(n).name == name)
                .map(|n| (t.nodes[n as usize].total, t.base_total(n)))
        };
        assert_eq!(node("grow"), Some((30, 10)));
        assert_eq!(node("shrink"), Some((5, 20)));
        // pprof's -top -diff_base: new minus base, the base's total as 100 %.
        let top = top(&st).unwrap();
        assert!(top.diff);
        assert_eq!(top.total, 40);
        let row = |name: &str| {
            top.rows
                .iter()
                .find(|r| r.name == name)
                .map(|r| (r.flat, r.cum))
        };
        assert_eq!(row("grow"), Some((20, 20)));
        assert_eq!(row("shrink"), Some((-15, -15)));
        // Grown boxes are red, shrunk ones green (layout's diff colours).
        let painted = rec.0.borrow().last().unwrap().1.clone();
        let fill = |node_name: &str| {
            painted
                .rects
                .iter()
                .find(|r| r.node.is_some_and(|n| t.frame(n).name == node_name))
                .map(|r| r.fill)
                .unwrap()
        };
        let (g, s) = (fill("grow"), fill("shrink"));
        assert!(g.0 > g.1 && s.1 > s.0, "grow {g:?} shrink {s:?}");
        // Normalised (pprof's -normalize): the profile scaled to the base's
        // total of 40 first, each value rounded: 30 -> 27, 10 -> 9, 5 -> 4.
        v.normalize = true;
        let n = set_view(&mut st, v.clone(), None).unwrap();
        assert!(n.tree_version > d.tree_version);
        let t = st.loaded.as_ref().unwrap().tree();
        let node = |name: &str| {
            (0..t.nodes.len() as u32)
                .find(|&n| t.frame(n).name == name)
                .map(|n| (t.nodes[n as usize].total, t.base_total(n)))
        };
        assert_eq!(node("grow"), Some((27, 10)));
        assert_eq!(node("same"), Some((9, 10)));
        assert_eq!(node("shrink"), Some((4, 20)));
        let normalised = top_of(&st);
        assert_eq!(
            normalised
                .rows
                .iter()
                .find(|r| r.name == "grow")
                .map(|r| (r.flat, r.cum)),
            Some((17, 17))
        );
        // Without the diff flag, the plain profile again.
        let back = set_view(&mut st, view(), None).unwrap();
        assert_eq!((back.diff, back.total), (false, 45));
        assert!(!top_of(&st).diff);
    }

    fn top_of(st: &FlameState) -> TopAnswer {
        top(st).unwrap()
    }

    #[test]
    fn a_base_of_other_sample_types_is_refused_by_name() {
        let mut st = FlameState::default();
        open_profile(&mut st, "cpu.pb.gz", &fixture()).unwrap();
        open_base(&mut st, "old.folded", OLD).unwrap();
        let mut v = view();
        v.diff = true;
        let e = set_view(&mut st, v, None).unwrap_err();
        assert!(
            e.message
                .starts_with("cpu.pb.gz against the base old.folded: "),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_sandwich_draws_callers_above_and_callees_below() {
        let mut st = FlameState::default();
        let rec = Recorder::default();
        open_profile(
            &mut st,
            "s.folded",
            b"main;a;c;x 3\nmain;b;c 2\nmain;c 1\nmain;d 4\n",
        )
        .unwrap();
        let mut v = view();
        v.sandwich = Some("c".into());
        let s = set_view(&mut st, v, Some(Box::new(rec.clone()))).unwrap();
        assert_eq!(s.sandwich.as_deref(), Some("c"));
        let row = DEFAULT_ROW;
        // Top half (300 px): callers, the function on the row above the
        // root, which is at the bottom; its callers above it.
        let name_at = |st: &FlameState, x: f64, y: f64| {
            hover(st, FlamePoint { x_css: x, y_css: y })
                .unwrap()
                .map(|h| (h.name, h.total))
        };
        assert_eq!(
            name_at(&st, 400.0, 300.0 - 1.5 * row),
            Some(("c".into(), 6))
        );
        let callers: Vec<String> = (0..8)
            .filter_map(|i| name_at(&st, 50.0 + 100.0 * i as f64, 300.0 - 2.5 * row))
            .map(|(n, _)| n)
            .collect();
        assert!(
            callers.contains(&"a".into()) && callers.contains(&"main".into()),
            "{callers:?}"
        );
        // Bottom half: callees, the function under the root row, x below it.
        assert_eq!(
            name_at(&st, 400.0, 300.0 + 1.5 * row),
            Some(("c".into(), 6))
        );
        let callee = name_at(&st, 1.0, 300.0 + 2.5 * row);
        assert_eq!(callee, Some(("x".into(), 3)));
        // Both halves were painted in one frame, the callees' boxes lower.
        let (_, painted) = rec.0.borrow().last().unwrap().clone();
        assert!(painted.rects.iter().any(|r| r.y < 300.0));
        assert!(painted.rects.iter().any(|r| r.y >= 300.0));
        // A click names the box and does not zoom.
        let c = click(
            &mut st,
            FlamePoint {
                x_css: 400.0,
                y_css: 300.0 + 1.5 * row,
            },
        )
        .unwrap();
        assert_eq!(c.hit.map(|h| h.name).as_deref(), Some("c"));
        // Back to the flamegraph.
        let back = set_view(&mut st, view(), None).unwrap();
        assert_eq!(back.sandwich, None);
        assert_eq!(name_at(&st, 400.0, 5.0), Some(("root".into(), 10)));
    }

    const DEFAULT_ROW: f64 = emberlens_flame::layout::DEFAULT_ROW_HEIGHT_CSS;

    #[test]
    fn a_new_profile_does_not_inherit_the_last_zoom() {
        let mut st = FlameState::default();
        open_profile(&mut st, "a.folded", NEW).unwrap();
        let mut v = view();
        v.window = Some(FlameWindow {
            start: 10.0,
            end: 20.0,
        });
        let zoomed = set_view(&mut st, v, None).unwrap();
        assert_eq!(
            zoomed.window,
            Some(FlameWindow {
                start: 10.0,
                end: 20.0
            })
        );
        open_profile(&mut st, "b.folded", OLD).unwrap();
        let s = draw(&mut st, None).unwrap();
        assert_eq!(
            s.window,
            Some(FlameWindow {
                start: 0.0,
                end: 40.0
            })
        );
    }
}
