//! Drawing series on a canvas with plotters.
//!
//! Plain functions over protocol data, so the drawing rules are in one place:
//! the x axis spans the requested range (not just the data, so a sparse series
//! shows where it is in time); the y axis spans the finite values with 5 %
//! headroom; NaN and infinite values break the line instead of distorting the
//! axis. Colours come from [`PALETTE`] by series index, the same index the
//! legend uses.

use emberlens_protocol::SeriesData;
use plotters::prelude::*;
use plotters_canvas::CanvasBackend;
use web_sys::HtmlCanvasElement;

/// Series colours (Grafana's classic palette), as RGB.
pub const PALETTE: [(u8, u8, u8); 8] = [
    (0x7e, 0xb2, 0x6d),
    (0xea, 0xb8, 0x39),
    (0x6e, 0xd0, 0xe0),
    (0xef, 0x84, 0x3c),
    (0xe2, 0x4d, 0x42),
    (0x1f, 0x78, 0xc1),
    (0xba, 0x43, 0xa9),
    (0x70, 0x5d, 0xa0),
];

/// CSS colour of series `i`.
pub fn css_colour(i: usize) -> String {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// The y range to draw: finite values with headroom; a flat line gets ±1.
pub fn y_range(series: &[SeriesData]) -> (f64, f64) {
    let finite = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        return (0.0, 1.0);
    }
    if lo == hi {
        return (lo - 1.0, hi + 1.0);
    }
    let pad = (hi - lo) * 0.05;
    (lo - pad, hi + pad)
}

/// Runs of consecutive finite points; a non-finite value ends a run.
pub fn finite_runs(s: &SeriesData) -> Vec<Vec<(i64, f64)>> {
    let mut runs = Vec::new();
    let mut run = Vec::new();
    for (&t, &v) in s.timestamps_ms.iter().zip(&s.values) {
        if v.is_finite() {
            run.push((t, v));
        } else if !run.is_empty() {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// `HH:MM:SS` in the browser's local time.
fn clock(ms: i64) -> String {
    let d = js_sys::Date::new(&(ms as f64).into());
    format!(
        "{:02}:{:02}:{:02}",
        d.get_hours(),
        d.get_minutes(),
        d.get_seconds()
    )
}

/// Short y labels: `1.5M`, `320k`, `0.25`.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    let (div, suffix) = if a >= 1e12 {
        (1e12, "T")
    } else if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let x = v / div;
    let text = format!("{x:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{suffix}")
}

/// Draws `series` over `[start_ms, end_ms]` on `canvas`.
pub fn draw(
    canvas: HtmlCanvasElement,
    series: &[SeriesData],
    start_ms: i64,
    end_ms: i64,
) -> Result<(), String> {
    let backend =
        CanvasBackend::with_canvas_object(canvas).ok_or("the canvas has no 2D context")?;
    let root = backend.into_drawing_area();
    let e = |e: DrawingAreaErrorKind<_>| format!("drawing the chart: {e}");
    root.fill(&WHITE).map_err(e)?;
    let (y_lo, y_hi) = y_range(series);
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(56)
        .build_cartesian_2d(start_ms..end_ms.max(start_ms + 1), y_lo..y_hi)
        .map_err(e)?;
    chart
        .configure_mesh()
        .max_light_lines(0)
        .bold_line_style(RGBColor(0xe4, 0xe6, 0xea))
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|ms| clock(*ms))
        .y_label_formatter(&|v| short_number(*v))
        .draw()
        .map_err(e)?;
    for (i, s) in series.iter().enumerate() {
        let (r, g, b) = PALETTE[i % PALETTE.len()];
        let style = ShapeStyle::from(RGBColor(r, g, b)).stroke_width(2);
        for run in finite_runs(s) {
            if run.len() == 1 {
                chart
                    .draw_series(run.iter().map(|&p| Circle::new(p, 2, style.filled())))
                    .map_err(e)?;
            } else {
                chart.draw_series(LineSeries::new(run, style)).map_err(e)?;
            }
        }
    }
    root.present().map_err(e)?;
    Ok(())
}
