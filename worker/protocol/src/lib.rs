//! The protocol between the app (main thread) and the worker.
//!
//! Every message is an [`Envelope`]: a request id, the [`PROTOCOL_VERSION`]
//! and a body. The app sends [`Request`]s; the worker answers each with exactly
//! one [`Response`] carrying the same id. Both enums are closed: adding a
//! message means changing this crate, and both sides fail to compile until
//! they handle it.
//!
//! A key design decision is that these types are the *only* serializable types
//! that cross the boundary (as rust-analyzer puts it, "if a type is
//! serializable, it is part of some IPC boundary"). Engine types stay plain
//! Rust; the worker converts at the edge. The transport (postMessage with
//! `serde-wasm-bindgen` today) lives in the app's `WorkerClient` and in the
//! worker's entry, not here, so this crate builds and tests natively.
//!
//! Start-up: a worker drops messages that arrive before its Wasm has installed
//! the handler, so the worker announces itself with [`Response::Ready`] (id
//! [`READY_ID`]) once it listens, and the app queues requests until then.
//!
//! Version skew (an old cached worker script next to a new app) is caught by
//! comparing [`Envelope::version`]: the worker answers a mismatched request
//! with [`ErrorKind::VersionMismatch`] instead of misreading it.
//!
//! Cancellation: the worker reads messages only between requests that run
//! synchronously (a query over opened files blocks its thread), so a
//! [`Request::Cancel`] reaches only requests that wait on the network (a
//! forwarded query, [`Request::FetchSeries`]): it aborts their `fetch`. A
//! query running in the worker sees a cancel through the shared flag of
//! [`Request::ShareCancelFlag`] (an `Int32Array` over a `SharedArrayBuffer`,
//! only available on cross-origin isolated pages): the app stores the id of
//! the query to stop in element 0 with `Atomics.store`, and the engine's
//! interrupt reads it at every evaluation step. Without the flag the app
//! stops a local query by terminating the worker and starting a new one.
//! A cancelled request is answered with [`ErrorKind::Canceled`] and
//! [`CANCELED_MESSAGE`], Prometheus's words.

use serde::{Deserialize, Serialize};

pub mod share_url;

/// Bumped on every incompatible change to the messages below.
pub const PROTOCOL_VERSION: u32 = 5;

/// The `name` the app gives its worker. The worker's entry point serves
/// requests only in a worker of this name, so loading its module anywhere
/// else (a test harness's worker) has no side effects.
pub const WORKER_NAME: &str = "emberlens-worker";

/// The id of the unsolicited [`Response::Ready`] message; the app never uses it for a request.
pub const READY_ID: u64 = 0;

/// The script the app spawns the worker from (trunk's loader shim, a classic
/// worker script), relative to `index.html`.
pub const WORKER_SCRIPT: &str = "./emberlens-worker_loader.js";

/// The message of a cancelled query: Prometheus's error for a query whose
/// context was cancelled (`errorType` `canceled`), wherever it stopped (the
/// worker's engine, the app restarting the worker, or an aborted request to
/// a server).
pub const CANCELED_MESSAGE: &str = "query was canceled in expression evaluation";

/// The name of the message property that carries the shared cancel flag
/// beside a [`Request::ShareCancelFlag`] envelope (as `files` carries the
/// `File`s of [`Request::OpenFiles`]).
pub const CANCEL_FLAG_PROPERTY: &str = "cancel_flag";

/// The name of the message property that carries an `OffscreenCanvas`
/// beside a [`Request::FlameView`] envelope (and in the message's transfer
/// list): the worker keeps it and paints the flamegraph on it from then on.
pub const CANVAS_PROPERTY: &str = "canvas";

/// The value of the cancel flag for request `id`: the low 31 bits, never 0
/// (0 is the flag's initial value, "nothing to cancel"). Ids that are 2^31
/// apart share a value; the app never has that many requests in flight.
pub fn cancel_flag_value(id: u64) -> i32 {
    ((id & 0x7fff_ffff) as i32).max(1)
}

/// A message with its request id and the sender's protocol version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Chosen by the app, unique among its pending requests; echoed in the response.
    pub id: u64,
    /// The sender's [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The message.
    pub body: T,
}

impl<T> Envelope<T> {
    /// Wraps `body` with `id` and this build's protocol version.
    pub fn new(id: u64, body: T) -> Self {
        Envelope {
            id,
            version: PROTOCOL_VERSION,
            body,
        }
    }
}

/// Everything the app can ask the worker.
// A request is built once per user action and serialized straight away, so
// the size of the largest variant (`FlameView`, ~300 bytes natively, under
// the lint's limit on wasm32) costs nothing; boxing it would only add an
// allocation and noise at every call site.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Liveness and version check; the app sends it at start-up.
    Hello,
    /// Raw samples of the series matching a selector, from an Emberlens server.
    FetchSeries(FetchSeries),
    /// Open files the user picked (a snapshot folder's files, a `.tar` or a
    /// `.tar.gz`) as the worker's local source. The `File` objects travel
    /// beside the envelope, in the message's `files` array, in `names` order.
    OpenFiles(OpenFiles),
    /// Open a snapshot archive by URL (read with HTTP range requests).
    OpenUrl(OpenUrl),
    /// Evaluate PromQL over a server (`base_url`) or the opened local source.
    Query(QueryRequest),
    /// Stop the request with this id if it is waiting on the network; it is
    /// then answered with [`ErrorKind::Canceled`]. Answered with
    /// [`Response::CancelRequested`] either way.
    Cancel {
        /// The id of the request to stop.
        id: u64,
    },
    /// Keep the `Int32Array` (over a `SharedArrayBuffer`) sent beside the
    /// envelope, in the message's [`CANCEL_FLAG_PROPERTY`] property, as the
    /// cancel flag of later queries: a query with id `n` stops with
    /// [`ErrorKind::Canceled`] once element 0 holds
    /// [`cancel_flag_value`]`(n)`. Answered with [`Response::CancelFlagShared`].
    ShareCancelFlag,
    /// Decode a profile (pprof `profile.proto`, gzipped or not, folded
    /// stacks, `.cpuprofile`) and make it the flamegraph's profile, or its
    /// diff base. Without [`OpenProfile::url`] it is the file the user
    /// picked, travelling beside the envelope in the message's `files`
    /// array (one entry); with one, the worker fetches it (a stored profile
    /// or a merge from an Emberlens server). Answered with
    /// [`Response::ProfileOpened`].
    OpenProfile(OpenProfile),
    /// List the profiles an Emberlens server stores
    /// (`/api/v1/profiles`) and its profiling targets
    /// (`/api/v1/profiles/targets`). Answered with [`Response::ProfileList`].
    ListProfiles(ListProfiles),
    /// pprof's `-top` table of what the flamegraph shows (its sample type
    /// and refinements; against the base when diffing). Answered with
    /// [`Response::FlameTop`].
    FlameTop,
    /// Set the flamegraph's options and canvas size, and draw. An
    /// `OffscreenCanvas` may travel beside the envelope in
    /// [`CANVAS_PROPERTY`] (the first time, or to replace it). Changing the
    /// sample type rebuilds the tree and resets the zoom. Answered with
    /// [`Response::FlameDrawn`].
    FlameView(FlameView),
    /// Zoom around a point and/or pan, then draw. Answered with
    /// [`Response::FlameDrawn`].
    FlameNavigate(FlameNavigate),
    /// What is under the pointer. Answered with [`Response::FlameHit`].
    FlameHover(FlamePoint),
    /// Zoom to the box under the pointer (nothing happens off the boxes),
    /// then draw. Answered with [`Response::FlameDrawn`], whose `hit` names the box.
    FlameClick(FlamePoint),
    /// Back to the whole tree, then draw. Answered with [`Response::FlameDrawn`].
    FlameReset,
}

/// Parameters of [`Request::OpenProfile`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenProfile {
    /// The file's name (or a title for a fetched profile), for titles and
    /// error messages.
    pub name: String,
    /// Fetch the profile from this `http(s)` URL instead of reading the
    /// file sent beside the envelope.
    #[serde(default)]
    pub url: Option<String>,
    /// Open it as the diff base (pprof's `-diff_base`) instead of as the
    /// profile; the profile stays.
    #[serde(default)]
    pub as_base: bool,
}

/// Parameters of [`Request::ListProfiles`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListProfiles {
    /// The server's origin, without a trailing slash.
    pub base_url: String,
    /// A series selector over the profiles' labels (`__name__` is the
    /// profile type); empty for all.
    pub selector: String,
    /// Range start, Unix milliseconds, inclusive.
    pub start_ms: i64,
    /// Range end, Unix milliseconds, inclusive.
    pub end_ms: i64,
}

/// Answer to [`Request::ListProfiles`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfileList {
    /// Stored profiles, oldest first.
    pub profiles: Vec<StoredProfile>,
    /// The server's profiling loops.
    pub targets: Vec<ProfileTarget>,
}

/// One profile an Emberlens server stores.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredProfile {
    /// The store's id (`/api/v1/profiles/<id>`).
    pub id: String,
    /// The profile type (`process_cpu`, `memory`, …).
    pub type_name: String,
    /// The target's labels, sorted by name, `__name__` (the type) included.
    pub labels: Vec<(String, String)>,
    /// When it was taken, Unix milliseconds.
    pub time_ms: i64,
    /// Its size in bytes, as stored.
    pub size: u64,
}

/// One (target, profile type) loop of an Emberlens server.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfileTarget {
    /// The profile type.
    pub type_name: String,
    /// The target's labels, sorted by name.
    pub labels: Vec<(String, String)>,
    /// `up`, `down` or `unknown`.
    pub health: String,
    /// The last scrape's error, or empty.
    pub last_error: String,
}

impl ProfileTarget {
    /// The selector of this loop's profiles: `{__name__="type", job="…", …}`.
    pub fn selector(&self) -> String {
        let mut parts = vec![format!("__name__={:?}", self.type_name)];
        parts.extend(self.labels.iter().map(|(k, v)| format!("{k}={v:?}")));
        format!("{{{}}}", parts.join(", "))
    }
}

/// Answer to [`Request::FlameTop`]: pprof's `-top` rows, in the sample
/// type's raw unit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TopAnswer {
    /// One row per frame, in pprof's order (|flat| descending).
    pub rows: Vec<TopEntry>,
    /// The 100 % of the percentages (the base's total in a diff).
    pub total: i64,
    /// The sample type's unit.
    pub unit: String,
    /// Whether the values are differences against the base.
    pub diff: bool,
    /// pprof's header lines (`Showing nodes …`, `Dropped …`).
    pub header: Vec<String>,
}

/// A column [`TopAnswer::sorted`] sorts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopSort {
    /// |flat| (pprof's order).
    Flat,
    /// |cum|.
    Cum,
    /// The function's name.
    Name,
}

impl TopAnswer {
    /// The rows in display order: by `by`, descending unless `ascending`
    /// (by magnitude, so a diff's biggest changes either way come first);
    /// ties by name, so the order is stable.
    pub fn sorted(&self, by: TopSort, ascending: bool) -> Vec<TopEntry> {
        let mut out = self.rows.clone();
        out.sort_by(|a, b| {
            let o = match by {
                TopSort::Flat => a.flat.unsigned_abs().cmp(&b.flat.unsigned_abs()),
                TopSort::Cum => a.cum.unsigned_abs().cmp(&b.cum.unsigned_abs()),
                TopSort::Name => a.name.cmp(&b.name),
            };
            let o = if ascending { o } else { o.reverse() };
            o.then_with(|| a.name.cmp(&b.name))
        });
        out
    }
}

/// One row of [`TopAnswer`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TopEntry {
    /// pprof's printable name of the frame.
    pub name: String,
    /// The value of samples whose leaf it is.
    pub flat: i64,
    /// The value of samples through it.
    pub cum: i64,
}

/// Which end of the flamegraph the root is drawn at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlameOrientation {
    /// Root at the bottom.
    #[default]
    Flame,
    /// Root at the top.
    Icicle,
}

/// A zoom window in tree units: the root spans `[0, total)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlameWindow {
    /// Left edge.
    pub start: f64,
    /// Right edge (exclusive).
    pub end: f64,
}

/// Parameters of [`Request::FlameView`]: everything the app controls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlameView {
    /// Index into [`ProfileInfo::sample_types`]; `None` for the profile's default.
    pub sample_type: Option<usize>,
    /// Root at the bottom or the top.
    pub orientation: FlameOrientation,
    /// A regular expression (RE2 syntax) matched against frame names; empty
    /// for no search.
    pub search: String,
    /// Canvas width, CSS pixels.
    pub width_css: f64,
    /// Canvas height, CSS pixels.
    pub height_css: f64,
    /// `devicePixelRatio`.
    pub dpr: f64,
    /// A zoom window to show (a share URL's); `None` keeps the current one.
    pub window: Option<FlameWindow>,
    /// pprof's refinements; changing them rebuilds the tree and resets the zoom.
    #[serde(default)]
    pub refine: FlameRefine,
    /// Draw the difference against the diff base (opened with
    /// [`OpenProfile::as_base`]) instead of the profile.
    #[serde(default)]
    pub diff: bool,
    /// Show the sandwich of this function instead of the flamegraph: its
    /// callers above (the function at the bottom row), its callees below.
    #[serde(default)]
    pub sandwich: Option<String>,
}

/// pprof's refinements of the flamegraph, with `go tool pprof`'s (and
/// `emberlens profile`'s) names and meanings; an empty string is off.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlameRefine {
    /// Keep only samples with a frame matching this regex.
    pub focus: String,
    /// Drop samples with a frame matching this regex.
    pub ignore: String,
    /// Drop frames matching this regex (their samples stay).
    pub hide: String,
    /// Keep only frames matching this regex.
    pub show: String,
    /// Keep samples whose label matches: `KEY=REGEX`, `KEY=RANGE`, or `REGEX`.
    pub tagfocus: String,
    /// Drop samples whose label matches (same syntax as `tagfocus`).
    pub tagignore: String,
    /// What a box is: `functions` (empty: the default), `filefunctions`,
    /// `files`, `lines` or `addresses`.
    pub granularity: String,
}

/// Parameters of [`Request::FlameNavigate`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlameNavigate {
    /// Window scale: < 1 zooms in, > 1 out, 1 leaves it.
    pub zoom_factor: f64,
    /// The CSS x that stays in place while zooming.
    pub anchor_x_css: f64,
    /// Move the window right by this many CSS pixels (the boxes move left).
    pub pan_x_css: f64,
    /// Scroll the rows towards the deep end by this many CSS pixels.
    pub pan_y_css: f64,
}

/// A pointer position on the flamegraph canvas, CSS pixels from its top left.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlamePoint {
    /// From the left edge.
    pub x_css: f64,
    /// From the top edge.
    pub y_css: f64,
}

/// Parameters of [`Request::OpenFiles`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenFiles {
    /// Each file's relative path (a folder upload's `webkitRelativePath`, or
    /// the file name).
    pub names: Vec<String>,
}

/// Parameters of [`Request::OpenUrl`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenUrl {
    /// URL of a `.tar` or `.tar.gz` snapshot.
    pub url: String,
}

/// When to evaluate a query.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum QueryTime {
    /// One instant, Unix milliseconds.
    Instant {
        /// Evaluation time.
        time_ms: i64,
    },
    /// Every `step_ms` from `start_ms` to `end_ms`.
    Range {
        /// First step.
        start_ms: i64,
        /// Last possible step.
        end_ms: i64,
        /// Step width, > 0.
        step_ms: i64,
    },
}

/// Parameters of [`Request::Query`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryRequest {
    /// The PromQL expression.
    pub expr: String,
    /// Instant or range.
    pub time: QueryTime,
    /// An Emberlens (or Prometheus) server to ask, or `None` for the source
    /// opened with [`Request::OpenFiles`] / [`Request::OpenUrl`].
    pub base_url: Option<String>,
}

/// Parameters of [`Request::FetchSeries`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FetchSeries {
    /// The server's origin, e.g. `http://127.0.0.1:9190`, without a trailing slash.
    pub base_url: String,
    /// A series selector such as `up{job="emberlens"}`.
    pub selector: String,
    /// Range start, Unix milliseconds, inclusive.
    pub start_ms: i64,
    /// Range end, Unix milliseconds, inclusive.
    pub end_ms: i64,
}

/// Everything the worker can answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Sent once, unasked, with id [`READY_ID`], when the worker listens.
    Ready {
        /// The worker's [`PROTOCOL_VERSION`].
        version: u32,
    },
    /// Answer to [`Request::Hello`].
    Hello {
        /// The worker's [`PROTOCOL_VERSION`].
        version: u32,
        /// The worker crate's version, for the about box and bug reports.
        worker_version: String,
    },
    /// Answer to [`Request::FetchSeries`].
    Series(SeriesSet),
    /// Answer to [`Request::OpenFiles`] / [`Request::OpenUrl`].
    Opened(SourceInfo),
    /// Answer to [`Request::Query`].
    QueryResult(QueryAnswer),
    /// Answer to [`Request::Cancel`].
    CancelRequested {
        /// Whether a request with that id was waiting and has been stopped.
        stopped: bool,
    },
    /// Answer to [`Request::ShareCancelFlag`]: the flag is in use.
    CancelFlagShared,
    /// Answer to [`Request::OpenProfile`].
    ProfileOpened(ProfileInfo),
    /// Answer to [`Request::ListProfiles`].
    ProfileList(ProfileList),
    /// Answer to [`Request::FlameTop`].
    FlameTop(TopAnswer),
    /// Answer to the flamegraph requests that draw.
    FlameDrawn(FlameStatus),
    /// Answer to [`Request::FlameHover`]: the box under the pointer, if any.
    FlameHit(Option<FlameHit>),
    /// The request failed; nothing else is sent for its id.
    Error(ErrorBody),
}

/// Series with their samples, as plain columns.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesSet {
    /// Series sorted by labels.
    pub series: Vec<SeriesData>,
}

impl SeriesSet {
    /// Total number of samples over all series.
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.timestamps_ms.len()).sum()
    }
}

/// One series: labels and two equally long columns.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesData {
    /// Label pairs sorted by name, `__name__` included.
    pub labels: Vec<(String, String)>,
    /// Unix milliseconds, increasing.
    pub timestamps_ms: Vec<i64>,
    /// Values, same length as `timestamps_ms`.
    pub values: Vec<f64>,
}

impl SeriesData {
    /// Prometheus's text form of the labels, `name{a="1", b="2"}`, for legends.
    pub fn display_name(&self) -> String {
        let name = self
            .labels
            .iter()
            .find(|(n, _)| n == "__name__")
            .map_or("", |(_, v)| v.as_str());
        let rest: Vec<String> = self
            .labels
            .iter()
            .filter(|(n, _)| n != "__name__")
            .map(|(n, v)| format!("{n}={v:?}"))
            .collect();
        if rest.is_empty() && !name.is_empty() {
            name.to_string()
        } else {
            format!("{name}{{{}}}", rest.join(", "))
        }
    }
}

/// What an opened source holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// What was opened (file or URL), for the title bar.
    pub description: String,
    /// TSDB blocks found.
    pub blocks: usize,
    /// Earliest sample time, Unix milliseconds (0 when empty).
    pub min_time_ms: i64,
    /// Latest sample time, Unix milliseconds (0 when empty).
    pub max_time_ms: i64,
    /// Series over all blocks (a series in several blocks counts once per block).
    pub series: u64,
    /// Blocks that could not be opened, with the reason.
    pub errors: Vec<String>,
}

/// A query's result, as columns the app can chart.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryAnswer {
    /// Prometheus's result type: `vector`, `matrix`, `scalar` or `string`.
    pub result_type: String,
    /// Series (vector results have one point each); float samples only.
    pub series: Vec<SeriesData>,
    /// Native-histogram samples left out of `series` (not charted yet).
    pub histogram_samples_omitted: usize,
    /// A scalar result: time and value.
    pub scalar: Option<(i64, f64)>,
    /// A string result.
    pub string: Option<String>,
    /// Prometheus's warnings.
    pub warnings: Vec<String>,
    /// Prometheus's infos.
    pub infos: Vec<String>,
}

/// What an opened profile holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfileInfo {
    /// The file's name.
    pub name: String,
    /// Sample types as pprof prints them, `type/unit` (e.g. `cpu/nanoseconds`).
    pub sample_types: Vec<String>,
    /// The index of the default sample type (pprof's: `default_sample_type`, else the last).
    pub default_sample_type: usize,
    /// Number of samples.
    pub samples: usize,
}

/// The state of the flamegraph after a draw.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FlameStatus {
    /// The sample type drawn (index into [`ProfileInfo::sample_types`]).
    pub sample_type: usize,
    /// Its unit (`nanoseconds`, `bytes`, `count`).
    pub unit: String,
    /// The root's total.
    pub total: i64,
    /// Nodes in the tree.
    pub nodes: usize,
    /// The zoom window shown.
    pub window: Option<FlameWindow>,
    /// The vertical scroll, CSS pixels, and how far it can go.
    pub scroll_y_css: f64,
    /// The largest useful `scroll_y_css`.
    pub max_scroll_css: f64,
    /// Boxes painted.
    pub boxes: usize,
    /// The total of the boxes matching the search (each sample once), if searching.
    pub matched_total: Option<i64>,
    /// Why the search pattern was not used, if it was bad.
    pub search_error: Option<String>,
    /// For [`Request::FlameClick`]: the box zoomed to.
    pub hit: Option<FlameHit>,
    /// Bumped whenever the tree drawn changes (another profile, sample
    /// type, refinement, base, diff or sandwich), so the app knows when to
    /// ask for the top table again.
    #[serde(default)]
    pub tree_version: u64,
    /// Whether the drawing is the difference against the base.
    #[serde(default)]
    pub diff: bool,
    /// The function whose sandwich is drawn, if any.
    #[serde(default)]
    pub sandwich: Option<String>,
}

/// A flamegraph box, for tooltips.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlameHit {
    /// The node's id in the current tree.
    pub node: u32,
    /// The frame's name.
    pub name: String,
    /// Its source file, if known.
    pub file: String,
    /// The value of samples ending here.
    pub self_value: i64,
    /// The value of samples through here.
    pub total: i64,
    /// `total` as a percentage of the root's.
    pub total_percent: f64,
    /// `self_value` as a percentage of the root's total.
    pub self_percent: f64,
    /// The sample type's unit.
    pub unit: String,
}

/// What went wrong, in a form the app can show and act on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The class of failure.
    pub kind: ErrorKind,
    /// A lowercase message naming the thing that failed.
    pub message: String,
}

/// Classes of failure the app distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The request itself is invalid (a bad selector, an empty range).
    BadRequest,
    /// The server could not be reached or answered with an error status.
    Network,
    /// The server's answer could not be understood.
    BadData,
    /// App and worker were built from different protocol versions.
    VersionMismatch,
    /// A message could not be decoded at all.
    Malformed,
    /// The query failed while running (Prometheus's `execution` errors).
    Execution,
    /// The request needs an opened local source and there is none.
    NoSource,
    /// The source could not be opened or read (names the file and offset).
    Source,
    /// The app cancelled the request (Prometheus's `canceled`).
    Canceled,
    /// A flamegraph request came before any profile was opened.
    NoProfile,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_through_serde() {
        let req = Envelope::new(
            7,
            Request::FetchSeries(FetchSeries {
                base_url: "http://127.0.0.1:9190".into(),
                selector: "up".into(),
                start_ms: 1,
                end_ms: 2,
            }),
        );
        let json = serde_json::to_string(&req).unwrap();
        let back: Envelope<Request> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, req);
        assert_eq!(back.version, PROTOCOL_VERSION);
    }

    #[test]
    fn cancel_messages_round_trip_through_serde() {
        for req in [
            Envelope::new(8, Request::Cancel { id: 7 }),
            Envelope::new(9, Request::ShareCancelFlag),
        ] {
            let json = serde_json::to_string(&req).unwrap();
            let back: Envelope<Request> = serde_json::from_str(&json).unwrap();
            assert_eq!(back, req);
        }
        for resp in [
            Envelope::new(8, Response::CancelRequested { stopped: true }),
            Envelope::new(9, Response::CancelFlagShared),
            Envelope::new(
                7,
                Response::Error(ErrorBody {
                    kind: ErrorKind::Canceled,
                    message: CANCELED_MESSAGE.into(),
                }),
            ),
        ] {
            let json = serde_json::to_string(&resp).unwrap();
            let back: Envelope<Response> = serde_json::from_str(&json).unwrap();
            assert_eq!(back, resp);
        }
        // The externally tagged layout JavaScript sees (serde-wasm-bindgen
        // writes the same shape), e.g. tools/bench/wasm_bench.mjs.
        assert_eq!(
            serde_json::to_string(&Request::Cancel { id: 7 }).unwrap(),
            r#"{"Cancel":{"id":7}}"#
        );
        assert_eq!(
            serde_json::to_string(&Request::ShareCancelFlag).unwrap(),
            r#""ShareCancelFlag""#
        );
    }

    #[test]
    fn flame_messages_round_trip_through_serde() {
        let reqs = [
            Request::OpenProfile(OpenProfile {
                name: "cpu.pb.gz".into(),
                url: None,
                as_base: false,
            }),
            Request::OpenProfile(OpenProfile {
                name: "merge".into(),
                url: Some("http://h/api/v1/profiles/merge?match[]=up".into()),
                as_base: true,
            }),
            Request::ListProfiles(ListProfiles {
                base_url: "http://h".into(),
                selector: String::new(),
                start_ms: 1,
                end_ms: 2,
            }),
            Request::FlameTop,
            Request::FlameView(FlameView {
                sample_type: Some(1),
                orientation: FlameOrientation::Icicle,
                search: "^runtime\\.".into(),
                width_css: 800.0,
                height_css: 400.5,
                dpr: 1.5,
                window: Some(FlameWindow {
                    start: 10.0,
                    end: 20.0,
                }),
                refine: FlameRefine {
                    focus: "main\\.".into(),
                    tagfocus: "handler=/api".into(),
                    granularity: "lines".into(),
                    ..FlameRefine::default()
                },
                diff: true,
                sandwich: Some("main.funcB".into()),
            }),
            Request::FlameNavigate(FlameNavigate {
                zoom_factor: 0.8,
                anchor_x_css: 12.0,
                pan_x_css: -3.0,
                pan_y_css: 0.0,
            }),
            Request::FlameHover(FlamePoint {
                x_css: 1.0,
                y_css: 2.0,
            }),
            Request::FlameClick(FlamePoint {
                x_css: 1.0,
                y_css: 2.0,
            }),
            Request::FlameReset,
        ];
        for req in reqs {
            let env = Envelope::new(3, req);
            let json = serde_json::to_string(&env).unwrap();
            let back: Envelope<Request> = serde_json::from_str(&json).unwrap();
            assert_eq!(back, env);
        }
        let resp = Envelope::new(
            3,
            Response::FlameHit(Some(FlameHit {
                node: 4,
                name: "main.main".into(),
                file: "main.go".into(),
                self_value: 1,
                total: 2,
                total_percent: 50.0,
                self_percent: 25.0,
                unit: "nanoseconds".into(),
            })),
        );
        let json = serde_json::to_string(&resp).unwrap();
        let back: Envelope<Response> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, resp);
    }

    #[test]
    fn top_rows_sort_by_magnitude_then_name() {
        let row = |name: &str, flat: i64, cum: i64| TopEntry {
            name: name.into(),
            flat,
            cum,
        };
        let t = TopAnswer {
            rows: vec![row("b", 5, 9), row("a", -7, 7), row("c", 5, 20)],
            ..TopAnswer::default()
        };
        let names = |by, asc| {
            t.sorted(by, asc)
                .into_iter()
                .map(|r| r.name)
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(names(TopSort::Flat, false), "a,b,c");
        assert_eq!(names(TopSort::Flat, true), "b,c,a");
        assert_eq!(names(TopSort::Cum, false), "c,b,a");
        assert_eq!(names(TopSort::Name, true), "a,b,c");
        assert_eq!(names(TopSort::Name, false), "c,b,a");
    }

    #[test]
    fn a_target_selects_its_own_profiles() {
        let t = ProfileTarget {
            type_name: "process_cpu".into(),
            labels: vec![
                ("instance".into(), "127.0.0.1:9190".into()),
                ("job".into(), "emberlens".into()),
            ],
            ..ProfileTarget::default()
        };
        assert_eq!(
            t.selector(),
            r#"{__name__="process_cpu", instance="127.0.0.1:9190", job="emberlens"}"#
        );
    }

    #[test]
    fn cancel_flag_values_are_never_the_idle_zero() {
        assert_eq!(cancel_flag_value(1), 1);
        assert_eq!(cancel_flag_value(0x7fff_ffff), 0x7fff_ffff);
        assert_eq!(cancel_flag_value(0x8000_0000), 1);
        assert_eq!(cancel_flag_value(0x8000_0005), 5);
        assert_ne!(cancel_flag_value(0), 0);
    }

    #[test]
    fn display_name_is_prometheus_text_form() {
        let s = SeriesData {
            labels: vec![("__name__".into(), "up".into()), ("job".into(), "a".into())],
            ..SeriesData::default()
        };
        assert_eq!(s.display_name(), r#"up{job="a"}"#);
        let bare = SeriesData {
            labels: vec![("__name__".into(), "up".into())],
            ..SeriesData::default()
        };
        assert_eq!(bare.display_name(), "up");
    }
}
