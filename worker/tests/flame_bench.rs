//! Flamegraph frame times in the browser: the large generated profile
//! decoded, its tree built, then drawn on an `OffscreenCanvas` for every
//! step of a zoom/pan sequence (the one of
//! `worker/flame/benches/layout.rs`), inside a dedicated worker in headless
//! Chromium. Prints figures; asserts nothing about time.
//!
//! ```sh
//! python3 ../shared/fixtures/pprof/gen_large_pprof.py --functions 10000 --samples 172000 -o /tmp/large-5mb.pb.gz
//! EMBERLENS_LARGE_PPROF=/tmp/large-5mb.pb.gz CHROMEDRIVER=/usr/bin/chromedriver \
//!   CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner WASM_BINDGEN_TEST_TIMEOUT=600 \
//!   cargo test --release --target wasm32-unknown-unknown -p emberlens-worker --test flame_bench -- --include-ignored
//! ```
//!
//! A frame's time runs from the request to the canvas's pixels being
//! final: `getImageData` of one pixel forces Chromium to rasterise the
//! queued 2D commands, so painting is measured, not just queued.
#![cfg(all(target_arch = "wasm32", large_pprof))]
#![allow(clippy::unwrap_used)] // a benchmark: a failed unwrap is a failed run

use emberlens_flame::layout::{self, FixedWidth, Palette};
use emberlens_protocol::{FlameNavigate, FlameOrientation, FlameView};
use emberlens_worker::canvas::CanvasSurface;
use emberlens_worker::flame_view::{self, FlameState, Surface};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::OffscreenCanvas;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

const PROFILE: &[u8] = include_bytes!(env!("EMBERLENS_LARGE_PPROF_FILE"));

fn now_ms() -> f64 {
    js_sys::global()
        .dyn_into::<web_sys::WorkerGlobalScope>()
        .unwrap()
        .performance()
        .unwrap()
        .now()
}

/// The steps of `benches/layout.rs`'s `sequence`, as navigation requests.
fn steps(width_css: f64) -> Vec<FlameNavigate> {
    let nav = |zoom_factor: f64, anchor: f64, pan_x_css: f64, pan_y_css: f64| FlameNavigate {
        zoom_factor,
        anchor_x_css: anchor * width_css,
        pan_x_css,
        pan_y_css,
    };
    let mut out = Vec::new();
    out.extend((0..24).map(|_| nav(0.7, 0.3, 40.0, 0.0)));
    out.extend((0..12).map(|_| nav(1.0, 0.0, 300.0, 0.0)));
    out.push(nav(1.0, 0.0, 0.0, 400.0));
    out.push(nav(1.0, 0.0, 0.0, -400.0));
    out.extend((0..24).map(|_| nav(1.0 / 0.7, 0.5, 0.0, 0.0)));
    out
}

/// Waits for the canvas's pixels: reading one forces Chromium to rasterise.
fn flush(s: &CanvasSurface) {
    s.context().get_image_data(0.0, 0.0, 1.0, 1.0).unwrap();
}

fn stats(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(|a, b| a.total_cmp(b));
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    console_log!(
        "{name}: {} frames, ms per frame: mean {mean:.2}, median {:.2}, p95 {:.2}, max {:.2}",
        ms.len(),
        pick(0.5),
        pick(0.95),
        pick(1.0)
    );
}

#[wasm_bindgen_test]
#[ignore = "a benchmark: needs EMBERLENS_LARGE_PPROF, run with --include-ignored"]
fn flame_frame_times_while_zooming_and_panning() {
    let t0 = now_ms();
    let mut st = FlameState::default();
    flame_view::open_profile(&mut st, "large", PROFILE).unwrap();
    let t1 = now_ms();
    let tree = st.loaded.as_ref().unwrap().tree();
    console_log!(
        "decode + tree ({} bytes, {} nodes): {:.0} ms",
        PROFILE.len(),
        tree.nodes.len(),
        t1 - t0
    );
    for dpr in [1.0, 2.0] {
        let (w, h) = (1600.0, 1000.0);
        let canvas = OffscreenCanvas::new(1, 1).unwrap();
        let surface = CanvasSurface::new(canvas).unwrap();
        let ctx = surface.context().clone();
        let view = FlameView {
            sample_type: None,
            orientation: FlameOrientation::Icicle,
            search: String::new(),
            width_css: w,
            height_css: h,
            dpr,
            window: None,
            refine: Default::default(),
            diff: false,
            sandwich: None,
        };
        let first = now_ms();
        let s = flame_view::set_view(&mut st, view.clone(), Some(Box::new(surface))).unwrap();
        ctx.get_image_data(0.0, 0.0, 1.0, 1.0).unwrap();
        let mut frame_ms = vec![now_ms() - first];
        let mut boxes = vec![s.boxes];
        let mut layout_ms = Vec::new();
        // A second canvas, painted directly, splits paint time into boxes and labels.
        let mut split = CanvasSurface::new(OffscreenCanvas::new(1, 1).unwrap()).unwrap();
        let (mut rects_ms, mut labels_ms, mut label_counts) = (Vec::new(), Vec::new(), Vec::new());
        let mut one_colour_ms = Vec::new();
        for step in steps(w) {
            let t = now_ms();
            let s = flame_view::navigate(&mut st, step).unwrap();
            ctx.get_image_data(0.0, 0.0, 1.0, 1.0).unwrap();
            frame_ms.push(now_ms() - t);
            boxes.push(s.boxes);
            // The layout alone, on the same viewport.
            let loaded = st.loaded.as_ref().unwrap();
            let palette = Palette::new(loaded.tree());
            let t = now_ms();
            let l = layout::layout(
                loaded.tree(),
                loaded.viewport(),
                &palette,
                None,
                &mut FixedWidth(7.0 * dpr),
            );
            layout_ms.push(now_ms() - t);
            assert_eq!(l.rects.len(), s.boxes);
            let vp = *loaded.viewport();
            split.begin(&vp).unwrap();
            let mut bare = l.clone();
            for r in &mut bare.rects {
                r.label = None;
            }
            let t = now_ms();
            split.paint(&vp, &bare).unwrap();
            flush(&split);
            rects_ms.push(now_ms() - t);
            let t = now_ms();
            split.paint(&vp, &l).unwrap();
            flush(&split);
            labels_ms.push(now_ms() - t);
            // The same boxes in one colour: what colour changes cost.
            for r in &mut bare.rects {
                r.fill = layout::NEUTRAL;
            }
            let t = now_ms();
            split.paint(&vp, &bare).unwrap();
            flush(&split);
            one_colour_ms.push(now_ms() - t);
            label_counts.push(l.rects.iter().filter(|r| r.label.is_some()).count());
        }
        console_log!(
            "{w}x{h} css px at dpr {dpr}: {:.0} boxes per frame on average (max {})",
            boxes.iter().sum::<usize>() as f64 / boxes.len() as f64,
            boxes.iter().max().unwrap()
        );
        stats(&format!("  layout + paint (dpr {dpr})"), frame_ms);
        stats(&format!("  layout only    (dpr {dpr})"), layout_ms);
        stats(&format!("  paint, boxes only      (dpr {dpr})"), rects_ms);
        stats(&format!("  paint, boxes + labels  (dpr {dpr})"), labels_ms);
        stats(
            &format!("  paint, boxes in one colour (dpr {dpr})"),
            one_colour_ms,
        );
        console_log!(
            "  {:.0} labels per frame on average (max {})",
            label_counts.iter().sum::<usize>() as f64 / label_counts.len() as f64,
            label_counts.iter().max().unwrap()
        );
        // Search highlighting on: every box's colour depends on it.
        let mut v = view;
        v.search = "Handler|handler".into();
        flame_view::set_view(&mut st, v, None).unwrap();
        flame_view::reset(&mut st).unwrap();
        let mut search_ms = Vec::new();
        for step in steps(w) {
            let t = now_ms();
            flame_view::navigate(&mut st, step).unwrap();
            ctx.get_image_data(0.0, 0.0, 1.0, 1.0).unwrap();
            search_ms.push(now_ms() - t);
        }
        stats(&format!("  with search    (dpr {dpr})"), search_ms);
        flame_view::reset(&mut st).unwrap();
    }
}
