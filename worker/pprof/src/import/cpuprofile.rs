//! Chrome DevTools `.cpuprofile` JSON (also what `node --cpu-prof` writes),
//! and Chrome trace-event files that carry one.
//!
//! A `.cpuprofile` is a call tree plus a time line:
//!
//! ```json
//! {"nodes": [{"id": 1, "callFrame": {"functionName": "(root)", "url": "",
//!             "lineNumber": -1, "columnNumber": -1, "scriptId": "0"},
//!             "hitCount": 0, "children": [2]}, ...],
//!  "startTime": 0, "endTime": 3000,
//!  "samples": [2, 2, 3], "timeDeltas": [1000, 1000, 1000]}
//! ```
//!
//! `samples[i]` is the node on top of the stack at sample `i`;
//! `timeDeltas[i]` is the time in microseconds since the previous sample
//! (the first: since `startTime`).
//!
//! # Conversion
//!
//! - Sample types `samples/count` (one per sample) and `cpu/nanoseconds`
//!   (the default, last). Like speedscope, a sample weighs the time until
//!   the *next* sample (`timeDeltas[i + 1]`), and negative deltas count as
//!   0. speedscope gives the last sample no time; here it gets the time up
//!   to `endTime` when that is later.
//! - A node's stack is its path from the root; the synthetic root node
//!   `(root)` is left out. `(program)`, `(idle)` and `(garbage collector)`
//!   stay as frames where Chrome put them (under the root), so the time
//!   they take is visible; speedscope instead drops `(idle)` and stacks
//!   the other two on the previous sample.
//! - A frame is its function name (`(anonymous)` when empty, as DevTools
//!   shows it), `url` as the file, and `lineNumber`/`columnNumber` turned
//!   from 0-based to 1-based (negative, i.e. unknown, becomes 0). Frames
//!   equal in all four share one function and location.
//! - Without `samples` (some old exporters), each node's `hitCount` gives
//!   the count, and CPU time is spread evenly over the hits.
//! - `duration_nanos` is `endTime - startTime`; `period` is the mean
//!   sampling interval. `startTime` is a monotonic clock, not the epoch,
//!   so `time_nanos` stays 0.
//!
//! # Trace-event files
//!
//! The Performance panel saves a JSON array of events (or an object with a
//! `traceEvents` array). The first profile found is imported: either a
//! `CpuProfile` event (`args.data.cpuProfile` is a whole profile) or a
//! `Profile` event plus the `ProfileChunk` events with the same `id`, in
//! timestamp order, whose nodes name their `parent` instead of children.
//!
//! # Hostile input
//!
//! A `.cpuprofile` is deserialized straight into typed nodes; trace-event
//! files, whose events vary in shape, are held as `serde_json::Value` (a
//! few times the input's size, which [`ImportLimits::max_input_bytes`]
//! caps). Unknown fields are skipped without recursion; nesting in parsed
//! values stops at `serde_json`'s recursion limit (128).
//!
//! Errors name the field (`nodes[3].children[1]`) or, for JSON syntax, the
//! line and column. Node ids must be unique and every id a child, parent
//! or sample names must exist; a node with two parents and a cycle are
//! errors. The nodes' depths are computed once, iteratively, before any
//! stack is built, so that a deep chain cannot overflow the stack and the
//! total stack size is checked against [`ImportLimits::max_frames`] before
//! it is allocated.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::{Builder, ImportError, ImportLimits};
use crate::proto::Profile;

/// Parses a `.cpuprofile` (or trace-event JSON) with the default
/// [`ImportLimits`].
pub fn parse(bytes: &[u8]) -> Result<Profile, ImportError> {
    parse_with_limits(bytes, ImportLimits::default())
}

/// Parses a `.cpuprofile` (or trace-event JSON) within `limits`.
pub fn parse_with_limits(bytes: &[u8], limits: ImportLimits) -> Result<Profile, ImportError> {
    if bytes.len() > limits.max_input_bytes {
        return Err(ImportError::TooLarge {
            limit: limits.max_input_bytes,
        });
    }
    let body = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let raw = if first == Some(&b'[') {
        let events: Vec<Value> = serde_json::from_slice(body)?;
        from_trace_events(&events, "")?
    } else {
        let top: TopLevel = serde_json::from_slice(body)?;
        match (top.nodes, top.trace_events) {
            (Some(nodes), _) => Parts {
                prefix: String::new(),
                nodes,
                start_time: top.start_time,
                end_time: top.end_time,
                samples: top.samples,
                time_deltas: top.time_deltas,
            },
            (None, Some(events)) => from_trace_events(&events, "traceEvents")?,
            (None, None) if top.head.is_some() => {
                return Err(field_err(
                    "head",
                    "the pre-2016 Chrome profile format (nested \"head\") is not supported; re-save the profile from a current Chrome",
                ));
            }
            (None, None) => {
                return Err(field_err(
                    "nodes",
                    "missing: not a Chrome CPU profile (no \"nodes\" or \"traceEvents\")",
                ));
            }
        }
    };
    convert(raw, limits)
}

fn field_err(field: impl Into<String>, reason: impl Into<String>) -> ImportError {
    ImportError::CpuProfile {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The top-level object: a `.cpuprofile`, or a trace with `traceEvents`.
/// (Not `#[serde(flatten)]` over [`RawProfile`]: that would buffer the
/// whole document once more before deserializing it.)
#[derive(Deserialize)]
struct TopLevel {
    nodes: Option<Vec<RawNode>>,
    #[serde(rename = "startTime")]
    start_time: Option<f64>,
    #[serde(rename = "endTime")]
    end_time: Option<f64>,
    samples: Option<Vec<u64>>,
    #[serde(rename = "timeDeltas")]
    time_deltas: Option<Vec<f64>>,
    #[serde(rename = "traceEvents")]
    trace_events: Option<Vec<Value>>,
    head: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize, Default)]
struct RawProfile {
    nodes: Option<Vec<RawNode>>,
    #[serde(rename = "startTime")]
    start_time: Option<f64>,
    #[serde(rename = "endTime")]
    end_time: Option<f64>,
    samples: Option<Vec<u64>>,
    #[serde(rename = "timeDeltas")]
    time_deltas: Option<Vec<f64>>,
}

#[derive(Deserialize)]
struct RawNode {
    id: u64,
    #[serde(rename = "callFrame")]
    call_frame: CallFrame,
    #[serde(rename = "hitCount")]
    hit_count: Option<u64>,
    #[serde(default)]
    children: Vec<u64>,
    parent: Option<u64>,
}

#[derive(Deserialize)]
struct CallFrame {
    #[serde(rename = "functionName", default)]
    function_name: String,
    #[serde(default)]
    url: String,
    #[serde(rename = "lineNumber")]
    line_number: Option<i64>,
    #[serde(rename = "columnNumber")]
    column_number: Option<i64>,
}

/// A profile's parts, from either layout, with the field path prefix
/// errors should use.
struct Parts {
    prefix: String,
    nodes: Vec<RawNode>,
    start_time: Option<f64>,
    end_time: Option<f64>,
    samples: Option<Vec<u64>>,
    time_deltas: Option<Vec<f64>>,
}

impl RawProfile {
    fn into_parts(self) -> Parts {
        Parts {
            prefix: String::new(),
            nodes: self.nodes.unwrap_or_default(),
            start_time: self.start_time,
            end_time: self.end_time,
            samples: self.samples,
            time_deltas: self.time_deltas,
        }
    }
}

/// Finds the first profile in trace events (see the module docs).
fn from_trace_events(events: &[Value], prefix: &str) -> Result<Parts, ImportError> {
    let at = |i: usize, rest: &str| {
        if prefix.is_empty() {
            format!("[{i}]{rest}")
        } else {
            format!("{prefix}[{i}]{rest}")
        }
    };
    // Events are not always in time order; a stable sort keeps file order
    // among equal (or missing) timestamps.
    let mut order: Vec<usize> = (0..events.len()).collect();
    let ts = |i: usize| events[i].get("ts").and_then(Value::as_f64).unwrap_or(0.0);
    order.sort_by(|&a, &b| ts(a).total_cmp(&ts(b)));

    let mut parts: Option<(Option<&Value>, Parts)> = None;
    for i in order {
        let e = &events[i];
        let name = e.get("name").and_then(Value::as_str).unwrap_or("");
        let data = e.get("args").and_then(|a| a.get("data"));
        match (name, &mut parts) {
            ("CpuProfile", None) => {
                let field = at(i, ".args.data.cpuProfile");
                let cpu = data
                    .and_then(|d| d.get("cpuProfile"))
                    .ok_or_else(|| field_err(&field, "missing"))?;
                let raw =
                    RawProfile::deserialize(cpu).map_err(|e| field_err(&field, e.to_string()))?;
                let mut p = raw.into_parts();
                p.prefix = format!("{field}.");
                return Ok(p);
            }
            ("Profile", None) => {
                let field = at(i, ".args.data");
                let raw = match data {
                    Some(d) => {
                        RawProfile::deserialize(d).map_err(|e| field_err(&field, e.to_string()))?
                    }
                    None => RawProfile::default(),
                };
                let mut p = raw.into_parts();
                let id = e.get("id").unwrap_or(&Value::Null);
                p.prefix = format!("{} (profile id {id}): ", at(i, ""));
                parts = Some((e.get("id"), p));
            }
            ("ProfileChunk", Some((id, p))) if e.get("id") == *id => {
                let field = at(i, ".args.data");
                let Some(d) = data else { continue };
                let chunk =
                    ChunkData::deserialize(d).map_err(|e| field_err(&field, e.to_string()))?;
                if let Some(cpu) = chunk.cpu_profile {
                    p.nodes.extend(cpu.nodes.unwrap_or_default());
                    if let Some(s) = cpu.samples {
                        p.samples.get_or_insert_with(Vec::new).extend(s);
                    }
                    // Some Chrome versions put timeDeltas inside cpuProfile.
                    if let Some(t) = cpu.time_deltas {
                        p.time_deltas.get_or_insert_with(Vec::new).extend(t);
                    }
                }
                if let Some(t) = chunk.time_deltas {
                    p.time_deltas.get_or_insert_with(Vec::new).extend(t);
                }
                if chunk.start_time.is_some() {
                    p.start_time = chunk.start_time;
                }
                if chunk.end_time.is_some() {
                    p.end_time = chunk.end_time;
                }
            }
            _ => {}
        }
    }
    match parts {
        Some((_, p)) => Ok(p),
        None => Err(field_err(
            if prefix.is_empty() { "[]" } else { prefix },
            "no CpuProfile or Profile event: the trace holds no CPU profile",
        )),
    }
}

#[derive(Deserialize)]
struct ChunkData {
    #[serde(rename = "cpuProfile")]
    cpu_profile: Option<RawProfile>,
    #[serde(rename = "timeDeltas")]
    time_deltas: Option<Vec<f64>>,
    #[serde(rename = "startTime")]
    start_time: Option<f64>,
    #[serde(rename = "endTime")]
    end_time: Option<f64>,
}

/// Microseconds (as JSON numbers may be fractional) → whole nanoseconds,
/// saturating; negative becomes 0.
fn ns(us: f64) -> i64 {
    // `as` saturates (and maps NaN to 0): no overflow whatever the input.
    (us * 1000.0).round().max(0.0) as i64
}

const NO_DEPTH: usize = usize::MAX;
const VISITING: usize = usize::MAX - 1;

fn convert(parts: Parts, limits: ImportLimits) -> Result<Profile, ImportError> {
    let Parts {
        prefix,
        nodes,
        start_time,
        end_time,
        samples,
        time_deltas,
    } = parts;
    let f = |s: String| format!("{prefix}{s}");

    // Ids → indices.
    let mut index: HashMap<u64, usize> = HashMap::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        if index.insert(n.id, i).is_some() {
            return Err(field_err(
                f(format!("nodes[{i}].id")),
                format!("duplicate node id {}", n.id),
            ));
        }
    }
    let lookup = |id: u64, field: &dyn Fn() -> String| {
        index
            .get(&id)
            .copied()
            .ok_or_else(|| field_err(field(), format!("no node with id {id}")))
    };

    // Parents, from `children` and from `parent`.
    let mut parent: Vec<Option<usize>> = vec![None; nodes.len()];
    let mut set_parent = |child: usize, p: usize, field: String| match parent[child] {
        Some(q) if q != p => Err(field_err(
            field,
            format!(
                "node id {} is already a child of node id {}",
                nodes[child].id, nodes[q].id
            ),
        )),
        _ => {
            parent[child] = Some(p);
            Ok(())
        }
    };
    for (i, n) in nodes.iter().enumerate() {
        for (j, &c) in n.children.iter().enumerate() {
            let field = || f(format!("nodes[{i}].children[{j}]"));
            let c = lookup(c, &field)?;
            set_parent(c, i, field())?;
        }
        if let Some(p) = n.parent {
            let field = || f(format!("nodes[{i}].parent"));
            let p = lookup(p, &field)?;
            set_parent(i, p, field())?;
        }
    }

    // The synthetic root is not a frame.
    let skipped = |i: usize| parent[i].is_none() && nodes[i].call_frame.function_name == "(root)";

    // Depths (frames in each node's stack), iteratively; a cycle shows as
    // a node met again while its own depth is being worked out.
    let mut depth = vec![NO_DEPTH; nodes.len()];
    let mut path = Vec::new();
    for start in 0..nodes.len() {
        let mut at = start;
        let base = loop {
            match depth[at] {
                VISITING => {
                    return Err(field_err(
                        f(format!("nodes[{at}]")),
                        format!("cycle in the call tree through node id {}", nodes[at].id),
                    ));
                }
                NO_DEPTH => {}
                d => break d,
            }
            depth[at] = VISITING;
            path.push(at);
            match parent[at] {
                Some(p) => at = p,
                None => break 0,
            }
        };
        let mut d = base;
        while let Some(i) = path.pop() {
            if !skipped(i) {
                d += 1;
            }
            depth[i] = d;
        }
    }

    // Per-node count and CPU time.
    let mut count = vec![0i64; nodes.len()];
    let mut cpu = vec![0i64; nodes.len()];
    let mut period = 0i64;
    match samples {
        Some(samples) => {
            let deltas = time_deltas.unwrap_or_default();
            if deltas.len() != samples.len() {
                return Err(field_err(
                    f("timeDeltas".into()),
                    format!("{} time deltas for {} samples", deltas.len(), samples.len()),
                ));
            }
            let last_time = start_time.map(|s| s + deltas.iter().sum::<f64>());
            let tail = match (last_time, end_time) {
                (Some(t), Some(e)) if e > t => e - t,
                _ => 0.0,
            };
            for (i, &id) in samples.iter().enumerate() {
                let node = lookup(id, &|| f(format!("samples[{i}]")))?;
                let weight = deltas.get(i + 1).copied().unwrap_or(tail).max(0.0);
                count[node] = count[node].saturating_add(1);
                cpu[node] = cpu[node].saturating_add(ns(weight));
            }
            if samples.len() > 1 {
                let span: f64 = deltas[1..].iter().map(|d| d.max(0.0)).sum();
                period = ns(span / (samples.len() - 1) as f64);
            }
        }
        None => {
            let hits: u64 = nodes
                .iter()
                .map(|n| n.hit_count.unwrap_or(0))
                .fold(0, u64::saturating_add);
            let span = match (start_time, end_time) {
                (Some(s), Some(e)) if e > s && hits > 0 => (e - s) / hits as f64,
                _ => 0.0,
            };
            period = ns(span);
            for (i, n) in nodes.iter().enumerate() {
                let h = i64::try_from(n.hit_count.unwrap_or(0)).unwrap_or(i64::MAX);
                count[i] = h;
                cpu[i] = ns(span * h as f64);
            }
        }
    }

    // Check the total stack size before building any stack.
    let frames = (0..nodes.len())
        .filter(|&i| count[i] != 0 || cpu[i] != 0)
        .map(|i| depth[i])
        .fold(0usize, usize::saturating_add);
    if frames > limits.max_frames {
        return Err(ImportError::TooManyFrames {
            what: "cpuprofile",
            limit: limits.max_frames,
        });
    }

    let mut b = Builder::new(&[("samples", "count"), ("cpu", "nanoseconds")]);
    let mut location = vec![0u64; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        if skipped(i) {
            continue;
        }
        let cf = &n.call_frame;
        let name = if cf.function_name.is_empty() {
            "(anonymous)"
        } else {
            &cf.function_name
        };
        let one_based = |v: Option<i64>| match v {
            Some(v) if v >= 0 => v.saturating_add(1),
            _ => 0,
        };
        location[i] = b.frame(
            name,
            &cf.url,
            one_based(cf.line_number),
            one_based(cf.column_number),
        );
    }
    for i in 0..nodes.len() {
        if count[i] == 0 && cpu[i] == 0 {
            continue;
        }
        let mut stack = Vec::with_capacity(depth[i]);
        let mut at = Some(i);
        while let Some(n) = at {
            if !skipped(n) {
                stack.push(location[n]);
            }
            at = parent[n];
        }
        // Two nodes with the same frames on the same path share a sample;
        // their sums saturate, as the per-node sums do.
        b.add_saturating(stack, &[count[i], cpu[i]]);
    }

    let period_type = b.value_type("cpu", "nanoseconds");
    let p = b.profile_mut();
    p.period_type = Some(period_type);
    p.period = period;
    if let (Some(s), Some(e)) = (start_time, end_time) {
        p.duration_nanos = ns(e - s);
    }
    b.finish()
}
