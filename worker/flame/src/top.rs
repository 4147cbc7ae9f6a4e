//! pprof's `-top` table: one row per frame with its flat and cumulative
//! values, built exactly as `go tool pprof` builds its text report.
//!
//! pprof's steps (`report.newTrimmedGraph` and `printText`), kept here:
//! 1. A graph of the filtered samples: per frame, `flat` (samples whose
//!    leaf it is) and `cum` (samples it appears in, once per sample even
//!    under recursion); per caller → callee pair an edge with its weight
//!    and whether the callee was inlined.
//! 2. Frames with `|cum|` under `nodefraction` × (sum of flat) are dropped
//!    and the graph is rebuilt without them ("Dropped N nodes (cum <= X)",
//!    where X is `nodefraction` × the report total). A sample whose leaf
//!    was dropped gives its flat to nobody.
//! 3. Rows sorted by |flat|, then name, then |cum|; `nodecount` keeps the
//!    first N and rebuilds again.
//! 4. Edges under `edgefraction` are dropped; a row is `(inline)` when all
//!    its remaining incoming edges are inlined calls, `(partial-inline)`
//!    when some are.
//!
//! The report total is the sum of |value| over *all* samples, before any
//! filter (so percentages stay relative to the whole profile, as pprof's
//! default); in a diff it is the base's total.

use crate::hash::IdMap;
use crate::model::Model;
use crate::refine::{Frames, View};
use crate::units::{format_time_utc, label, percentage, scale, scaled_label};
use crate::{FlameError, Options};

/// Trimming options of the table (pprof's flags of the same names).
#[derive(Clone, Copy, Debug)]
pub struct TopOptions {
    /// `-nodecount`: at most this many rows (0 = all).
    pub node_count: usize,
    /// `-nodefraction`: drop frames with |cum| at most this share.
    pub node_fraction: f64,
    /// `-edgefraction`: drop edges under this share (decides `(inline)`).
    pub edge_fraction: f64,
}

impl Default for TopOptions {
    fn default() -> Self {
        TopOptions {
            node_count: 0,
            node_fraction: 0.005,
            edge_fraction: 0.001,
        }
    }
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopRow {
    /// pprof's printable name of the frame.
    pub name: String,
    /// `""`, `"(inline)"` or `"(partial-inline)"`.
    pub inline: &'static str,
    /// Value of the samples whose leaf this frame is.
    pub flat: i64,
    /// Value of the samples through this frame.
    pub cum: i64,
}

/// A top table: pprof's header lines, then rows (see the module docs).
#[derive(Clone, Debug)]
pub struct TopTable {
    /// Header lines (`File:`, `Type:`, …, `Showing nodes …`, `Dropped …`).
    pub header: Vec<String>,
    /// The rows, in pprof's order.
    pub rows: Vec<TopRow>,
    /// The report total (the 100 % of the percentages).
    pub total: i64,
    /// The sample type's unit (the raw unit of `flat` and `cum`).
    pub sample_unit: String,
    /// The unit values are printed in (pprof's `minimum` choice).
    pub output_unit: String,
}

impl TopTable {
    /// A value as this table prints it (`4.72s`).
    pub fn format_value(&self, v: i64) -> String {
        scaled_label(v, &self.sample_unit, &self.output_unit)
    }

    /// The table as `go tool pprof -top` prints it (ends with a newline).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for h in &self.header {
            out.push_str(h);
            out.push('\n');
        }
        out.push_str(&format!(
            "{:>10} {:>5}% {:>5}% {:>10} {:>5}%\n",
            "flat", "flat", "sum", "cum", "cum"
        ));
        let mut sum = 0i64;
        for r in &self.rows {
            sum = sum.wrapping_add(r.flat);
            let inl = if r.inline.is_empty() {
                String::new()
            } else {
                format!(" {}", r.inline)
            };
            out.push_str(&format!(
                "{:>10} {} {} {:>10} {}  {}{}\n",
                self.format_value(r.flat),
                percentage(r.flat, self.total),
                percentage(sum, self.total),
                self.format_value(r.cum),
                percentage(r.cum, self.total),
                r.name,
                inl
            ));
        }
        out
    }

    /// The rows as a JSON array of `{"function", "flat", "cum"}` in the
    /// sample type's raw unit, sorted by flat descending (then by name).
    pub fn to_json(&self) -> String {
        let mut rows: Vec<&TopRow> = self.rows.iter().collect();
        rows.sort_by(|a, b| b.flat.cmp(&a.flat).then_with(|| a.name.cmp(&b.name)));
        let mut out = String::from("[");
        for (i, r) in rows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                "{{\"function\":{},\"flat\":{},\"cum\":{}}}",
                json_string(&r.name),
                r.flat,
                r.cum
            ));
        }
        out.push(']');
        out
    }
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[derive(Clone, Copy)]
struct Edge {
    weight: i64,
    inline: bool,
    seen: u32,
}

/// pprof's call graph of some views (flat, cum and edges per frame).
struct Graph {
    flat: Vec<i64>,
    cum: Vec<i64>,
    edges: IdMap<(u32, u32), Edge>,
    /// Frames with a non-zero flat or cum, in frame order.
    nodes: Vec<u32>,
}

fn build_graph(views: &[View<'_>], n_frames: usize, kept: Option<&[bool]>) -> Graph {
    let mut flat = vec![0i64; n_frames];
    let mut cum = vec![0i64; n_frames];
    let mut seen = vec![0u32; n_frames];
    let mut edges: IdMap<(u32, u32), Edge> = IdMap::default();
    let mut stamp = 0u32;
    for view in views {
        view.for_each_sample(|frames, inlined, w| {
            if w == 0 {
                return;
            }
            stamp = stamp.wrapping_add(1);
            if stamp == 0 {
                seen.iter_mut().for_each(|s| *s = 0);
                edges.values_mut().for_each(|e| e.seen = 0);
                stamp = 1;
            }
            let mut parent: Option<u32> = None;
            let mut residual = false;
            for (&n, &inl) in frames.iter().zip(inlined) {
                if kept.is_some_and(|k| !k[n as usize]) {
                    residual = true;
                    continue;
                }
                if seen[n as usize] != stamp {
                    seen[n as usize] = stamp;
                    cum[n as usize] = cum[n as usize].wrapping_add(w);
                }
                if let Some(p) = parent
                    && p != n
                {
                    let e = edges.entry((p, n)).or_insert(Edge {
                        weight: 0,
                        inline: inl,
                        seen: 0,
                    });
                    if e.seen != stamp {
                        e.seen = stamp;
                        e.weight = e.weight.wrapping_add(w);
                        if !inl {
                            e.inline = false;
                        }
                    }
                }
                parent = Some(n);
                residual = false;
            }
            if let Some(p) = parent
                && !residual
            {
                flat[p as usize] = flat[p as usize].wrapping_add(w);
            }
        });
    }
    let nodes = (0..n_frames as u32)
        .filter(|&n| {
            (flat[n as usize] != 0 || cum[n as usize] != 0) && kept.is_none_or(|k| k[n as usize])
        })
        .collect();
    Graph {
        flat,
        cum,
        edges,
        nodes,
    }
}

/// Go's `int64(float64(v) * f)`, absolute.
fn cutoff(v: i64, f: f64) -> i64 {
    ((v as f64 * f) as i64).wrapping_abs()
}

impl Graph {
    fn sort(&mut self, names: &[String], frames: &Frames) {
        let (flat, cum) = (&self.flat, &self.cum);
        self.nodes.sort_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            flat[b]
                .wrapping_abs()
                .cmp(&flat[a].wrapping_abs())
                .then_with(|| names[a].cmp(&names[b]))
                .then_with(|| cum[b].wrapping_abs().cmp(&cum[a].wrapping_abs()))
                .then_with(|| {
                    frames
                        .key(a as u32)
                        .go_sprint()
                        .cmp(&frames.key(b as u32).go_sprint())
                })
        });
    }

    fn kept(&self, n_frames: usize, nodes: &[u32]) -> Vec<bool> {
        let mut k = vec![false; n_frames];
        for &n in nodes {
            k[n as usize] = true;
        }
        k
    }
}

/// The header of a profile shown through some options (pprof's
/// `ProfileLabels`), without the lines that depend on the graph.
struct HeaderInfo<'a> {
    model: &'a Model,
    type_name: String,
    time_nanos: i64,
    duration_nanos: i64,
}

/// Builds the top table of `views` (all with the same sample type; a
/// diff's base negated) over `frames`.
fn build_table(
    views: &[View<'_>],
    frames: &Frames,
    total: i64,
    info: HeaderInfo<'_>,
    opts: &Options,
    top: &TopOptions,
) -> TopTable {
    let n = frames.len();
    let names: Vec<String> = frames.keys.iter().map(|k| k.printable_name()).collect();
    let mut g = build_graph(views, n, None);
    let total_value = g
        .nodes
        .iter()
        .fold(0i64, |s, &x| s.wrapping_add(g.flat[x as usize]));
    let node_cutoff = cutoff(total_value, top.node_fraction);
    let edge_cutoff = cutoff(total_value, top.edge_fraction);
    let mut dropped_nodes = 0;
    if node_cutoff > 0 {
        let kept_nodes: Vec<u32> = g
            .nodes
            .iter()
            .copied()
            .filter(|&x| g.cum[x as usize].wrapping_abs() >= node_cutoff)
            .collect();
        if kept_nodes.len() != g.nodes.len() {
            dropped_nodes = g.nodes.len() - kept_nodes.len();
            let kept = g.kept(n, &kept_nodes);
            g = build_graph(views, n, Some(&kept));
        }
    }
    let orig_count = g.nodes.len();
    g.sort(&names, frames);
    if top.node_count > 0 && top.node_count < g.nodes.len() {
        let kept = g.kept(n, &g.nodes[..top.node_count]);
        g = build_graph(views, n, Some(&kept));
        g.sort(&names, frames);
    }
    // Inline labels from the edges that survive the edge cutoff.
    let mut inline_in = vec![false; n];
    let mut direct_in = vec![false; n];
    for (&(_, to), e) in &g.edges {
        if e.weight.wrapping_abs() < edge_cutoff {
            continue;
        }
        if e.inline {
            inline_in[to as usize] = true;
        } else {
            direct_in[to as usize] = true;
        }
    }
    let rows: Vec<TopRow> = g
        .nodes
        .iter()
        .map(|&x| {
            let x = x as usize;
            TopRow {
                name: names[x].clone(),
                inline: match (inline_in[x], direct_in[x]) {
                    (true, true) => "(partial-inline)",
                    (true, false) => "(inline)",
                    _ => "",
                },
                flat: g.flat[x],
                cum: g.cum[x],
            }
        })
        .collect();

    let model = info.model;
    let sample_unit = model.sample_types()[views[0].value_index()].unit.clone();
    let output_unit = select_output_unit(&g, total, &sample_unit);
    let mut table = TopTable {
        header: Vec::new(),
        rows,
        total,
        sample_unit,
        output_unit,
    };
    let fv = |v: i64| table.format_value(v);
    let mut header = Vec::new();
    if let Some(m) = model.mappings().first() {
        let file = model.string(m.file);
        if !file.is_empty() {
            header.push(format!(
                "File: {}",
                file.rsplit('/').find(|s| !s.is_empty()).unwrap_or("/")
            ));
        }
        let build_id = model.string(m.build_id);
        if !build_id.is_empty() {
            header.push(format!("Build ID: {build_id}"));
        }
    }
    for c in model.comments() {
        if !c.starts_with('#') {
            header.push(c.clone());
        }
    }
    header.push(format!("Type: {}", info.type_name));
    if info.time_nanos != 0 {
        header.push(format!("Time: {}", format_time_utc(info.time_nanos)));
    }
    if info.duration_nanos != 0 {
        let (nanos, unit) = scale(total, &table.sample_unit, "nanoseconds");
        let ratio = if unit == "ns" && nanos != 0.0 {
            format!("({})", percentage(nanos as i64, info.duration_nanos))
        } else {
            String::new()
        };
        header.push(format!(
            "Duration: {}, Total samples = {} {}",
            label(info.duration_nanos, "nanoseconds"),
            fv(total),
            ratio
        ));
    }
    let filters = opts.active_filters();
    if !filters.is_empty() {
        header.push("Active filters:".to_string());
        for f in filters {
            let f = if f.chars().count() > 80 {
                format!("{}…", f.chars().take(80).collect::<String>())
            } else {
                f
            };
            header.push(format!("   {f}"));
        }
    }
    let flat_sum = table.rows.iter().fold(0i64, |s, r| s.wrapping_add(r.flat));
    header.push(format!(
        "Showing nodes accounting for {}, {} of {} total",
        fv(flat_sum),
        percentage(flat_sum, total).trim(),
        fv(total)
    ));
    if total != 0 {
        if dropped_nodes > 0 {
            header.push(format!(
                "Dropped {} node{} (cum <= {})",
                dropped_nodes,
                if dropped_nodes > 1 { "s" } else { "" },
                fv(cutoff(total, top.node_fraction))
            ));
        }
        let count = table.rows.len();
        if count > 0 && count < orig_count {
            header.push(format!("Showing top {count} nodes out of {orig_count}"));
        }
    }
    table.header = header;
    table
}

/// pprof's `selectOutputUnit` for `minimum`: the unit of the smallest
/// non-zero row, or one 100× larger when the total is much larger.
fn select_output_unit(g: &Graph, total: i64, sample_unit: &str) -> String {
    let mut min = 0i64;
    for &x in &g.nodes {
        let mut v = g.flat[x as usize].wrapping_abs();
        if v == 0 {
            v = g.cum[x as usize].wrapping_abs();
        }
        if v > 0 && (min == 0 || v < min) {
            min = v;
        }
    }
    if g.nodes.is_empty() {
        return "minimum".to_string();
    }
    let max = total;
    if min == 0 {
        min = max;
    }
    let (_, min_unit) = scale(min, sample_unit, "minimum");
    let (_, max_unit) = scale(max, sample_unit, "minimum");
    let mut unit = min_unit.clone();
    if min_unit != max_unit && min.wrapping_mul(100) < max {
        unit = scale(min.wrapping_mul(100), sample_unit, "minimum").1;
    }
    if unit.is_empty() {
        sample_unit.to_string()
    } else {
        unit
    }
}

impl Model {
    /// pprof's `-top` table of this profile through `opts`.
    pub fn top(&self, opts: &Options, top: &TopOptions) -> Result<TopTable, FlameError> {
        let mut frames = Frames::default();
        let view = View::new(self, opts, &mut frames)?;
        let total = view.total_abs();
        let info = HeaderInfo {
            model: self,
            type_name: self.sample_types()[view.value_index()].name.clone(),
            time_nanos: self.time_nanos(),
            duration_nanos: self.duration_nanos(),
        };
        Ok(build_table(
            std::slice::from_ref(&view),
            &frames,
            total,
            info,
            opts,
            top,
        ))
    }

    /// pprof's `-top -diff_base=BASE`: `self` minus `base` per frame; the
    /// percentages are of the base's total.
    pub fn top_diff(
        &self,
        base: &Model,
        opts: &Options,
        top: &TopOptions,
    ) -> Result<TopTable, FlameError> {
        check_compatible(self, base)?;
        let opts = &same_index(self, opts)?;
        let mut frames = Frames::default();
        let view = View::new(self, opts, &mut frames)?;
        let base_view = View::new(base, opts, &mut frames)?.negated();
        let base_total = base_view.total_abs();
        let total = if base_total > 0 {
            base_total
        } else {
            view.total_abs()
        };
        let info = HeaderInfo {
            model: self,
            type_name: self.sample_types()[view.value_index()].name.clone(),
            time_nanos: min_nonzero(self.time_nanos(), base.time_nanos()),
            duration_nanos: self.duration_nanos().wrapping_add(base.duration_nanos()),
        };
        Ok(build_table(
            &[view, base_view],
            &frames,
            total,
            info,
            opts,
            top,
        ))
    }
}

fn min_nonzero(a: i64, b: i64) -> i64 {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (a, b) => a.min(b),
    }
}

/// Whether two models have the same sample types (names and units).
pub(crate) fn check_compatible(a: &Model, b: &Model) -> Result<(), FlameError> {
    if a.sample_types() != b.sample_types() {
        let names = |m: &Model| {
            m.sample_types()
                .iter()
                .map(|t| format!("{}/{}", t.name, t.unit))
                .collect::<Vec<_>>()
                .join(" ")
        };
        return Err(FlameError::Incompatible(format!(
            "sample types [{}] and [{}]",
            names(a),
            names(b)
        )));
    }
    Ok(())
}

/// `opts` with the sample index resolved on `new`, so a diff's base uses
/// the same sample type even when its own default differs (as pprof's merged
/// profile has one default).
pub(crate) fn same_index(new: &Model, opts: &Options) -> Result<Options, FlameError> {
    let index = new.sample_index(opts.sample_index.as_ref())?;
    Ok(Options {
        sample_index: Some(crate::SampleIndex::Number(index)),
        ..opts.clone()
    })
}
