//! Boxes into pixels: fills a layout's boxes into an RGBA buffer (the
//! layout of `ImageData`), so a frame reaches the canvas in one
//! `putImageData` instead of one `fillRect` per box. In Chromium a
//! `fillRect` from Wasm costs a few microseconds whatever its size, and a
//! frame of ~4,000 boxes spent most of its time there; filling the same
//! pixels in Wasm is a handful of `memcpy`s per row.
//!
//! Edges are rounded to whole device pixels (crisp, no anti-aliasing); a box
//! narrower than half a pixel still gets one pixel column, as a box the
//! layout kept is one the user should see.

use crate::layout::{Layout, Rgb};

/// Fills `out` with a `width` × `height` RGBA image: `background`, then
/// every box of `layout` in its colour, its device-pixel coordinates
/// multiplied by `scale` (1 for device pixels; `1 / dpr` for an image in
/// CSS pixels that the canvas scales up). `out` is reused between frames.
pub fn rasterize(
    layout: &Layout,
    width: u32,
    height: u32,
    scale: f64,
    background: Rgb,
    out: &mut Vec<u8>,
) {
    let (w, h) = (width as usize, height as usize);
    let row_bytes = w * 4;
    out.clear();
    out.resize(row_bytes * h, 0);
    if w == 0 || h == 0 {
        return;
    }
    fill(&mut out[..row_bytes], background);
    for y in 1..h {
        out.copy_within(..row_bytes, y * row_bytes);
    }
    let span = |from: f64, len: f64, max: usize| -> (usize, usize) {
        let a = from.round().clamp(0.0, max as f64) as usize;
        let mut b = (from + len).round().clamp(0.0, max as f64) as usize;
        if b <= a && len > 0.0 && a < max {
            b = a + 1;
        }
        (a, b)
    };
    for r in &layout.rects {
        let (x0, x1) = span(r.x * scale, r.w * scale, w);
        let (y0, y1) = span(r.y * scale, r.h * scale, h);
        if x1 <= x0 || y1 <= y0 {
            continue;
        }
        let first = y0 * row_bytes;
        fill(&mut out[first + x0 * 4..first + x1 * 4], r.fill);
        for y in y0 + 1..y1 {
            let at = y * row_bytes;
            out.copy_within(first + x0 * 4..first + x1 * 4, at + x0 * 4);
        }
    }
}

/// Fills `px` (whole RGBA pixels) with `c`, opaque, by doubling copies.
fn fill(px: &mut [u8], c: Rgb) {
    if px.len() < 4 {
        return;
    }
    px[..4].copy_from_slice(&[c.0, c.1, c.2, 255]);
    let mut done = 4;
    while done < px.len() {
        let n = done.min(px.len() - done);
        px.copy_within(..n, done);
        done += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::FlameRect;

    fn rect(x: f64, y: f64, w: f64, h: f64, fill: Rgb) -> FlameRect {
        FlameRect {
            node: None,
            x,
            y,
            w,
            h,
            fill,
            label: None,
        }
    }

    fn at(out: &[u8], width: usize, x: usize, y: usize) -> [u8; 4] {
        let i = (y * width + x) * 4;
        [out[i], out[i + 1], out[i + 2], out[i + 3]]
    }

    #[test]
    fn boxes_land_on_rounded_pixels_over_the_background() {
        let bg = Rgb(1, 2, 3);
        let red = Rgb(200, 0, 0);
        let layout = Layout {
            rects: vec![
                rect(1.4, 1.0, 2.2, 2.0, red),
                // Thinner than a pixel: still one column.
                rect(7.2, 0.0, 0.2, 1.0, Rgb(0, 9, 0)),
                // Off the canvas on the right: clipped, not a panic.
                rect(9.0, 3.0, 50.0, 9.0, Rgb(0, 0, 7)),
            ],
            visited: 3,
        };
        let mut out = Vec::new();
        rasterize(&layout, 10, 4, 1.0, bg, &mut out);
        assert_eq!(out.len(), 10 * 4 * 4);
        assert_eq!(at(&out, 10, 0, 0), [1, 2, 3, 255]);
        // x 1.4..3.6 -> columns 1..4, rows 1..3.
        for (x, y) in [(1, 1), (3, 2)] {
            assert_eq!(at(&out, 10, x, y), [200, 0, 0, 255], "{x},{y}");
        }
        for (x, y) in [(0, 1), (4, 1), (1, 0), (1, 3)] {
            assert_eq!(at(&out, 10, x, y), [1, 2, 3, 255], "{x},{y}");
        }
        assert_eq!(at(&out, 10, 7, 0), [0, 9, 0, 255]);
        assert_eq!(at(&out, 10, 9, 3), [0, 0, 7, 255]);
        // An empty canvas is an empty buffer.
        rasterize(&layout, 0, 4, 1.0, bg, &mut out);
        assert!(out.is_empty());
        // At half scale, the red box (1.4..3.6 x 1..3) covers 1 x 1 pixel.
        rasterize(&layout, 5, 2, 0.5, bg, &mut out);
        assert_eq!(at(&out, 5, 1, 0), [1, 2, 3, 255]);
        assert_eq!(at(&out, 5, 1, 1), [200, 0, 0, 255]);
    }
}
