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

use emberlens_flame::layout::{
    self, Layout, MeasureText, Orientation, Palette, Search, Viewport, hit_test,
};
use emberlens_flame::{FlameTree, Model, Options, SampleIndex, TextOptions};
use emberlens_protocol::{
    ErrorBody, ErrorKind, FlameHit, FlameNavigate, FlameOrientation, FlamePoint, FlameRefine,
    FlameStatus, FlameView, FlameWindow, ProfileInfo,
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
}

fn no_profile() -> ErrorBody {
    ErrorBody {
        kind: ErrorKind::NoProfile,
        message: "no profile is open".into(),
    }
}

/// The tree of sample type `index`, through the model with pprof's defaults.
fn tree_of(
    model: &Model,
    name: &str,
    index: usize,
    refine: &FlameRefine,
) -> Result<FlameTree, ErrorBody> {
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
    let opts =
        Options::from_text(Some(SampleIndex::Number(index)), &text).map_err(|e| ErrorBody {
            kind: ErrorKind::BadRequest,
            message: e.to_string(),
        })?;
    model.flame_tree(&opts).map_err(|e| ErrorBody {
        kind: ErrorKind::Source,
        message: format!("{name}: {e}"),
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
    let model = decode_profile(name, bytes)?;
    open_model(state, name, model)
}

/// The model of a profile file named `name` (see [`open_profile`]).
pub fn decode_profile(name: &str, bytes: &[u8]) -> Result<Model, ErrorBody> {
    // pprof is decoded straight into the model's columns (no per-sample
    // messages): the 50 MB benchmark profile fits in a tab.
    Model::from_any_bytes(bytes, emberlens_pprof::DEFAULT_MAX_DECODED_BYTES).map_err(|e| {
        ErrorBody {
            kind: ErrorKind::Source,
            message: format!("{name}: {e}"),
        }
    })
}

/// Makes `model` (from [`decode_profile`]) the flamegraph's profile, as
/// [`open_profile`] does; the caller can free the file's bytes first, so
/// the tree's build reuses their memory.
pub fn open_model(
    state: &mut FlameState,
    name: &str,
    model: Model,
) -> Result<ProfileInfo, ErrorBody> {
    state.loaded = None;
    let samples = model.sample_count();
    let types: Vec<(String, String)> = model
        .sample_types()
        .iter()
        .map(|t| (t.name.clone(), t.unit.clone()))
        .collect();
    let default = model.default_sample_type();
    let tree = tree_of(&model, name, default, &FlameRefine::default())?;
    let view = state.view.clone();
    let (w, h, dpr, o) = view
        .as_ref()
        .map_or((0.0, 0.0, 1.0, Orientation::Flame), |v| {
            (v.width_css, v.height_css, v.dpr, orientation(v.orientation))
        });
    let vp = Viewport::whole(&tree, w, h, dpr, o);
    let info = ProfileInfo {
        name: name.to_string(),
        sample_types: types.iter().map(|(t, u)| format!("{t}/{u}")).collect(),
        default_sample_type: default,
        samples,
    };
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
    });
    if let Some(v) = view {
        // Same options, new profile: the sample type and search apply anew.
        set_view(state, v, None)?;
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
    let mut rebuilt = false;
    if sample_type != loaded.sample_type || view.refine != loaded.refine {
        // A bad refinement answers an error and keeps what was drawn.
        loaded.tree = tree_of(&loaded.model, &loaded.name, sample_type, &view.refine)?;
        loaded.palette = Palette::new(&loaded.tree);
        loaded.sample_type = sample_type;
        loaded.refine = view.refine.clone();
        loaded.vp = Viewport::whole(&loaded.tree, 0.0, 0.0, 1.0, loaded.vp.orientation);
        rebuilt = true;
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

fn hit_info(loaded: &Loaded, p: FlamePoint) -> Option<FlameHit> {
    let h = hit_test(&loaded.tree, &loaded.vp, p.x_css, p.y_css)?;
    Some(FlameHit {
        node: h.node,
        file: loaded.tree.frame(h.node).file.clone(),
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
    if let Some(h) = &hit {
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
    let boxes = match state.surface.as_mut() {
        Some(surface) => {
            surface.begin(&vp).map_err(paint_error)?;
            let l = layout::layout(
                &loaded.tree,
                &vp,
                &loaded.palette,
                loaded.search.as_ref(),
                surface.as_mut(),
            );
            surface.paint(&vp, &l).map_err(paint_error)?;
            l.rects.len()
        }
        None => {
            let m = &mut layout::FixedWidth(FONT_CSS * 0.6 * vp.dpr);
            layout::layout(
                &loaded.tree,
                &vp,
                &loaded.palette,
                loaded.search.as_ref(),
                m,
            )
            .rects
            .len()
        }
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
    })
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
}
