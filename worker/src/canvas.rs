//! The flamegraph's paint surface in the browser (wasm32 only): an
//! `OffscreenCanvas` the app transferred to the worker (or one the worker
//! made, in tests), drawn with its 2D context.
//!
//! The backing store is sized in device pixels (CSS size × `devicePixelRatio`,
//! rounded) so boxes and text are sharp on high-density screens; the app
//! keeps the element's CSS size. Labels are measured with `measureText`,
//! once per character and font (the cache is emptied when the font size
//! changes): a frame of thousands of labels then costs a few map lookups
//! per character instead of a call into the browser per label.
//!
//! Boxes are filled into an RGBA buffer in Wasm
//! ([`emberlens_flame::raster`]) and put on the canvas with one
//! `putImageData`: one `fillRect` per box cost Chromium a few microseconds
//! each, most of a frame's time. Labels are drawn over it with `fillText`.

use std::collections::HashMap;

use emberlens_flame::layout::{
    BACKGROUND, LABEL_PADDING_CSS, Layout, MeasureText, Rgb, TEXT, Viewport,
};
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{ImageData, OffscreenCanvas, OffscreenCanvasRenderingContext2d};

use crate::flame_view::{FONT_CSS, Surface};

/// An `OffscreenCanvas` and its 2D context.
pub struct CanvasSurface {
    canvas: OffscreenCanvas,
    ctx: OffscreenCanvasRenderingContext2d,
    font: String,
    widths: HashMap<char, f64>,
    colors: HashMap<Rgb, String>,
    /// The frame's pixels, reused between frames.
    pixels: Vec<u8>,
    /// On high-density screens, the boxes' image in CSS pixels, which the
    /// visible canvas draws scaled up (see [`CanvasSurface::paint`]).
    boxes: Option<(OffscreenCanvas, OffscreenCanvasRenderingContext2d)>,
}

impl CanvasSurface {
    /// Takes `canvas` over; fails if it has no 2D context (e.g. a WebGL one
    /// was made on it before).
    pub fn new(canvas: OffscreenCanvas) -> Result<CanvasSurface, String> {
        let ctx = canvas
            .get_context("2d")
            .map_err(|e| format!("cannot get the canvas's 2d context: {e:?}"))?
            .ok_or("the canvas has no 2d context")?
            .dyn_into::<OffscreenCanvasRenderingContext2d>()
            .map_err(|_| "the canvas's 2d context is not an OffscreenCanvasRenderingContext2d")?;
        Ok(CanvasSurface {
            canvas,
            ctx,
            font: String::new(),
            widths: HashMap::new(),
            colors: HashMap::new(),
            pixels: Vec::new(),
            boxes: None,
        })
    }

    /// The canvas.
    pub fn canvas(&self) -> &OffscreenCanvas {
        &self.canvas
    }

    /// The 2D context (tests read pixels back through it).
    pub fn context(&self) -> &OffscreenCanvasRenderingContext2d {
        &self.ctx
    }

    fn css(&mut self, c: Rgb) -> &str {
        self.colors.entry(c).or_insert_with(|| c.css())
    }
}

impl CanvasSurface {
    /// At `dpr` ≥ 1.5 the boxes are filled at CSS resolution into a second
    /// canvas and drawn scaled up without smoothing: a quarter of the pixels
    /// to fill and upload at dpr 2 (a full-resolution frame of a large
    /// canvas is tens of MB), box edges on CSS pixels, and the labels drawn
    /// over them still at device resolution.
    fn paint_boxes_scaled(
        &mut self,
        dpr: f64,
        w: u32,
        h: u32,
        layout: &Layout,
    ) -> Result<(), String> {
        let (bw, bh) = (
            ((f64::from(w) / dpr).ceil() as u32).max(1),
            ((f64::from(h) / dpr).ceil() as u32).max(1),
        );
        if self.boxes.is_none() {
            let c = OffscreenCanvas::new(bw, bh).map_err(|e| format!("OffscreenCanvas: {e:?}"))?;
            let ctx = c
                .get_context("2d")
                .map_err(|e| format!("2d context: {e:?}"))?
                .ok_or("no 2d context")?
                .dyn_into::<OffscreenCanvasRenderingContext2d>()
                .map_err(|_| "not an OffscreenCanvasRenderingContext2d")?;
            self.boxes = Some((c, ctx));
        }
        let Some((c, bctx)) = &self.boxes else {
            return Ok(());
        };
        if c.width() != bw {
            c.set_width(bw);
        }
        if c.height() != bh {
            c.set_height(bh);
        }
        emberlens_flame::raster::rasterize(layout, bw, bh, 1.0 / dpr, BACKGROUND, &mut self.pixels);
        let image = ImageData::new_with_u8_clamped_array_and_sh(Clamped(&self.pixels), bw, bh)
            .map_err(|e| format!("ImageData: {e:?}"))?;
        bctx.put_image_data(&image, 0.0, 0.0)
            .map_err(|e| format!("putImageData: {e:?}"))?;
        self.ctx.set_image_smoothing_enabled(false);
        self.ctx
            .draw_image_with_offscreen_canvas_and_dw_and_dh(
                c,
                0.0,
                0.0,
                f64::from(bw) * dpr,
                f64::from(bh) * dpr,
            )
            .map_err(|e| format!("drawImage: {e:?}"))
    }
}

impl MeasureText for CanvasSurface {
    fn char_width(&mut self, c: char) -> f64 {
        if let Some(&w) = self.widths.get(&c) {
            return w;
        }
        let mut buf = [0u8; 4];
        let w = self
            .ctx
            .measure_text(c.encode_utf8(&mut buf))
            .map_or(0.0, |m| m.width());
        self.widths.insert(c, w);
        w
    }
}

impl Surface for CanvasSurface {
    fn begin(&mut self, vp: &Viewport) -> Result<(), String> {
        let (w, h) = (
            vp.width_dev().round().clamp(0.0, 16384.0) as u32,
            vp.height_dev().round().clamp(0.0, 16384.0) as u32,
        );
        // Setting the size clears the canvas and resets the context's state.
        if self.canvas.width() != w {
            self.canvas.set_width(w);
        }
        if self.canvas.height() != h {
            self.canvas.set_height(h);
        }
        let font = format!("{}px sans-serif", (FONT_CSS * vp.dpr).round());
        if font != self.font {
            self.widths.clear();
            self.font = font;
        }
        self.ctx.set_font(&self.font);
        self.ctx.set_text_baseline("middle");
        Ok(())
    }

    fn paint(&mut self, vp: &Viewport, layout: &Layout) -> Result<(), String> {
        let ctx = self.ctx.clone();
        let (w, h) = (self.canvas.width(), self.canvas.height());
        if w > 0 && h > 0 {
            if vp.dpr >= 1.5 {
                self.paint_boxes_scaled(vp.dpr, w, h, layout)?;
            } else {
                emberlens_flame::raster::rasterize(layout, w, h, 1.0, BACKGROUND, &mut self.pixels);
                let image =
                    ImageData::new_with_u8_clamped_array_and_sh(Clamped(&self.pixels), w, h)
                        .map_err(|e| format!("ImageData: {e:?}"))?;
                ctx.put_image_data(&image, 0.0, 0.0)
                    .map_err(|e| format!("putImageData: {e:?}"))?;
            }
        }
        let text = self.css(TEXT).to_string();
        ctx.set_fill_style_str(&text);
        let pad = LABEL_PADDING_CSS * vp.dpr;
        for r in &layout.rects {
            if let Some(label) = &r.label {
                ctx.fill_text(label, r.x + pad, r.y + r.h / 2.0)
                    .map_err(|e| format!("fillText: {e:?}"))?;
            }
        }
        Ok(())
    }
}
