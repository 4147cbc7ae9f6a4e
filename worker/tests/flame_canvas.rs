//! The flamegraph painted on an `OffscreenCanvas` inside a real dedicated
//! worker in headless Chromium: a real Go CPU profile (the known-tree
//! fixture: `main.run` → `main.funcA` (80 %) → `main.funcB` (60 %), and
//! `main.funcC` (20 %)) is decoded, laid out and painted at
//! `devicePixelRatio` 2, then the canvas's pixels are read back.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use emberlens_flame::FlameTree;
use emberlens_flame::layout::{BACKGROUND, DEFAULT_ROW_HEIGHT_CSS, Palette, Rgb, node_extent};
use emberlens_protocol::{
    Envelope, FlameOrientation, FlamePoint, FlameView, OpenProfile, Request, Response,
};
use emberlens_worker::canvas::CanvasSurface;
use emberlens_worker::flame_view::{self, FlameState};
use emberlens_worker::web::{Endpoint, serve};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;
use web_sys::{MessageChannel, MessageEvent, MessagePort, OffscreenCanvas};

wasm_bindgen_test_configure!(run_in_dedicated_worker);

const PROFILE: &[u8] = include_bytes!("fixtures/known-tree-cpu.pb.gz");
const WIDTH_CSS: f64 = 400.0;
const HEIGHT_CSS: f64 = 200.0;
const DPR: f64 = 2.0;

fn view(orientation: FlameOrientation) -> FlameView {
    FlameView {
        sample_type: None,
        orientation,
        search: String::new(),
        width_css: WIDTH_CSS,
        height_css: HEIGHT_CSS,
        dpr: DPR,
        window: None,
        refine: Default::default(),
        diff: false,
        sandwich: None,
    }
}

fn node_named(tree: &FlameTree, name: &str) -> u32 {
    (0..tree.nodes.len() as u32)
        .find(|&n| tree.frame(n).name == name)
        .unwrap_or_else(|| panic!("no {name} in the tree"))
}

/// The colour of the device pixel at CSS `(x, y)`.
fn pixel(canvas: &OffscreenCanvas, x_css: f64, y_css: f64) -> (u8, u8, u8, u8) {
    let ctx = canvas
        .get_context("2d")
        .unwrap()
        .unwrap()
        .dyn_into::<web_sys::OffscreenCanvasRenderingContext2d>()
        .unwrap();
    let d = ctx
        .get_image_data((x_css * DPR).floor(), (y_css * DPR).floor(), 1.0, 1.0)
        .unwrap()
        .data();
    (d[0], d[1], d[2], d[3])
}

fn opaque(c: Rgb) -> (u8, u8, u8, u8) {
    (c.0, c.1, c.2, 255)
}

#[wasm_bindgen_test]
fn a_real_profile_is_painted_where_layout_puts_it() {
    for orientation in [FlameOrientation::Icicle, FlameOrientation::Flame] {
        let canvas = OffscreenCanvas::new(1, 1).unwrap();
        let surface = CanvasSurface::new(canvas.clone()).unwrap();
        let mut st = FlameState::default();
        flame_view::open_profile(&mut st, "cpu.pb.gz", PROFILE).unwrap();
        let status =
            flame_view::set_view(&mut st, view(orientation), Some(Box::new(surface))).unwrap();
        assert!(status.boxes >= 7, "{status:?}");
        // The backing store is in device pixels.
        assert_eq!(
            (canvas.width(), canvas.height()),
            ((WIDTH_CSS * DPR) as u32, (HEIGHT_CSS * DPR) as u32)
        );

        let loaded = st.loaded.as_ref().unwrap();
        let tree = loaded.tree();
        let func_a = node_named(tree, "main.funcA");
        let (start, end) = node_extent(tree, func_a);
        let total = tree.total() as f64;
        assert!((end - start) / total > 0.7, "funcA is ~80 % of the profile");
        // 3/4 across funcA's box (clear of its label, which starts at the
        // left), in the middle of its row.
        let x = (start + 0.75 * (end - start)) / total * WIDTH_CSS;
        let depth = tree.nodes[func_a as usize].depth as f64;
        let row_mid = (depth + 0.5) * DEFAULT_ROW_HEIGHT_CSS;
        let y = match orientation {
            FlameOrientation::Icicle => row_mid,
            FlameOrientation::Flame => HEIGHT_CSS - row_mid,
        };
        let expected = Palette::new(tree).node_color(tree, func_a);
        assert_ne!(expected, BACKGROUND);
        assert_eq!(pixel(&canvas, x, y), opaque(expected), "{orientation:?}");

        // Hit-testing at that spot names funcA.
        let hit = flame_view::hover(&st, FlamePoint { x_css: x, y_css: y })
            .unwrap()
            .unwrap();
        assert_eq!(hit.name, "main.funcA");
        assert_eq!(hit.node, func_a);
        assert!((hit.total_percent - 79.84).abs() < 0.01, "{hit:?}");

        // One row past the deepest frame is background.
        let below = (tree.max_depth() as f64 + 1.5) * DEFAULT_ROW_HEIGHT_CSS;
        assert!(below < HEIGHT_CSS);
        let y_bg = match orientation {
            FlameOrientation::Icicle => below,
            FlameOrientation::Flame => HEIGHT_CSS - below,
        };
        assert_eq!(pixel(&canvas, x, y_bg), opaque(BACKGROUND));
        assert_eq!(
            flame_view::hover(
                &st,
                FlamePoint {
                    x_css: x,
                    y_css: y_bg
                }
            )
            .unwrap(),
            None
        );

        // Search: funcC matches and keeps its colour; funcA is dimmed.
        let mut v = view(orientation);
        v.search = "funcC".into();
        let s = flame_view::set_view(&mut st, v, None).unwrap();
        assert!(s.matched_total.unwrap() > 0);
        let dimmed = pixel(&canvas, x, y);
        assert_ne!(dimmed, opaque(expected));

        // Click-to-zoom: funcA now fills the width, so its colour is at x = 1 %.
        let mut v = view(orientation);
        v.search = String::new();
        flame_view::set_view(&mut st, v, None).unwrap();
        let z = flame_view::click(&mut st, FlamePoint { x_css: x, y_css: y }).unwrap();
        assert_eq!(z.hit.unwrap().name, "main.funcA");
        assert_eq!(pixel(&canvas, WIDTH_CSS * 0.99, y), opaque(expected));
    }
}

/// Posts `msg` (with `transfer`) on `port` and waits for the next message back.
async fn round_trip(port: &MessagePort, msg: &JsValue) -> Envelope<Response> {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        let on_message = Closure::once_into_js(move |ev: MessageEvent| {
            let _ = resolve.call1(&JsValue::NULL, &ev.data());
        });
        port.set_onmessage(Some(on_message.unchecked_ref()));
    });
    port.post_message(msg).unwrap();
    let v = wasm_bindgen_futures::JsFuture::from(promise).await.unwrap();
    serde_wasm_bindgen::from_value(v).unwrap()
}

/// The protocol path: the profile travels as a `File` beside the envelope,
/// and hover is answered by the worker's handler.
#[wasm_bindgen_test]
async fn open_profile_and_hover_through_the_protocol() {
    let ch = MessageChannel::new().unwrap();
    let port = ch.port1();
    serve(Endpoint::Port(ch.port2()));
    // The handler's Ready comes first.
    let ready = js_sys::Promise::new(&mut |resolve, _| {
        let f = Closure::once_into_js(move |ev: MessageEvent| {
            let _ = resolve.call1(&JsValue::NULL, &ev.data());
        });
        port.set_onmessage(Some(f.unchecked_ref()));
    });
    wasm_bindgen_futures::JsFuture::from(ready).await.unwrap();

    let msg = serde_wasm_bindgen::to_value(&Envelope::new(
        1,
        Request::OpenProfile(OpenProfile {
            name: "cpu.pb.gz".into(),
            url: None,
            as_base: false,
        }),
    ))
    .unwrap();
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(PROFILE));
    let blob = web_sys::Blob::new_with_u8_array_sequence(&parts).unwrap();
    js_sys::Reflect::set(&msg, &"files".into(), &js_sys::Array::of1(&blob)).unwrap();
    let resp = round_trip(&port, &msg).await;
    match resp.body {
        Response::ProfileOpened(info) => {
            assert_eq!(info.sample_types, ["samples/count", "cpu/nanoseconds"])
        }
        other => panic!("expected ProfileOpened, got {other:?}"),
    }

    let msg = serde_wasm_bindgen::to_value(&Envelope::new(
        2,
        Request::FlameView(view(FlameOrientation::Icicle)),
    ))
    .unwrap();
    let resp = round_trip(&port, &msg).await;
    assert!(
        matches!(&resp.body, Response::FlameDrawn(s) if s.boxes >= 7),
        "{resp:?}"
    );

    let msg = serde_wasm_bindgen::to_value(&Envelope::new(
        3,
        Request::FlameHover(FlamePoint {
            x_css: 1.0,
            y_css: 9.0,
        }),
    ))
    .unwrap();
    let resp = round_trip(&port, &msg).await;
    match resp.body {
        Response::FlameHit(Some(h)) => {
            assert_eq!((h.name.as_str(), h.total_percent), ("root", 100.0))
        }
        other => panic!("expected a hit on the root, got {other:?}"),
    }
}
