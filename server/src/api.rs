//! The rest of Prometheus's HTTP API v1, in its shapes: `series`, `labels`,
//! `label/<name>/values`, `metadata`, `targets/metadata`, `status/buildinfo`,
//! `status/runtimeinfo`, `status/flags`, `status/tsdb`, and the empty
//! answers of `query_exemplars`, `rules` and `alerts` (Grafana asks for
//! them; Emberlens keeps no exemplars and evaluates no rules).
//!
//! Label reads go through [`Storage::series_labels`], `label_names` and
//! `label_values`, which the block store answers from its index alone.
//! They run on the blocking pool. As in Prometheus: `start`/`end` default to
//! the whole time range, `limit` 0 means none and a cut list carries the
//! warning `results truncated due to limit`; every `match[]` must have a
//! matcher that does not match the empty string; GET and POST (form) are both
//! accepted where Prometheus accepts both.
//!
//! `status/tsdb` is computed over everything stored (Prometheus reports its
//! head block only): series and label statistics from the series' labels,
//! the time span and chunk count from [`Storage::stats`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use emberlens_model::{Labels, Matcher, Storage, parse_selector, parse_time_ms};
use serde::Serialize;

use crate::query_api::params;
use crate::scrape::MetricMetadata;
use crate::web::{AppState, api_error, format_rfc3339};

/// Facts about the running server for the status endpoints.
#[derive(Clone, Debug, Default)]
pub struct ServerInfo {
    /// When it started (Unix ms).
    pub start_ms: i64,
    /// Its flags and their values, as `/api/v1/status/flags` lists them.
    pub flags: BTreeMap<String, String>,
    /// Sample retention.
    pub retention: Duration,
}

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/targets/metadata", get(targets_metadata))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/api/v1/status/runtimeinfo", get(runtimeinfo))
        .route("/api/v1/status/flags", get(flags))
        .route("/api/v1/status/tsdb", get(tsdb_status))
        .route(
            "/api/v1/query_exemplars",
            get(query_exemplars).post(query_exemplars),
        )
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/alerts", get(alerts))
        // Anything else under the API is a JSON 404, not the app's page
        // (routes added elsewhere are more specific and win).
        .route("/api/v1/{*rest}", any(unknown_endpoint))
}

async fn unknown_endpoint(uri: axum::http::Uri) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("unknown API endpoint {}", uri.path()),
    )
}

type Params = Vec<(String, String)>;

fn get_param<'a>(p: &'a Params, key: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Prometheus's success envelope: `status`, `data`, then `warnings` if any.
fn success<T: Serialize>(data: &T, truncated: bool) -> Response {
    let data = match serde_json::to_string(data) {
        Ok(d) => d,
        Err(e) => {
            return api_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                &e.to_string(),
            );
        }
    };
    let warnings = if truncated {
        r#","warnings":["results truncated due to limit"]"#
    } else {
        ""
    };
    json(
        StatusCode::OK,
        format!(r#"{{"status":"success","data":{data}{warnings}}}"#),
    )
}

fn bad(msg: impl AsRef<str>) -> Response {
    api_error(StatusCode::BAD_REQUEST, "bad_data", msg.as_ref())
}

/// A `bad_data` error of a parameter parser (small, unlike a `Response`).
#[derive(Debug)]
struct BadData(String);

impl BadData {
    fn new(msg: impl Into<String>) -> Self {
        BadData(msg.into())
    }
}

impl IntoResponse for BadData {
    fn into_response(self) -> Response {
        bad(self.0)
    }
}

/// `start`/`end`: RFC 3339 or Unix seconds; absent or empty is `default`.
fn time_param(p: &Params, key: &str, default: i64) -> Result<i64, BadData> {
    match get_param(p, key) {
        None | Some("") => Ok(default),
        // What Prometheus's clients send for "the whole range" (its
        // `minTimeFormatted`/`maxTimeFormatted`, beyond RFC 3339's years).
        Some("-292273086-05-16T16:47:06Z") => Ok(i64::MIN),
        Some("292277025-08-18T07:12:54.999999999Z") => Ok(i64::MAX),
        Some(v) => parse_time_ms(v).map_err(|e| {
            BadData::new(format!(
                "invalid parameter {key:?}: invalid time value for '{key}': {e}"
            ))
        }),
    }
}

/// `limit` of the label and series endpoints: a non-negative integer, 0 = none.
fn limit_param(p: &Params) -> Result<usize, BadData> {
    match get_param(p, "limit") {
        None | Some("") => Ok(0),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n as usize),
            Ok(_) => Err(BadData::new(
                "invalid parameter \"limit\": limit must be non-negative",
            )),
            Err(_) => Err(BadData::new(format!(
                "invalid parameter \"limit\": strconv.Atoi: parsing {v:?}: invalid syntax"
            ))),
        },
    }
}

/// The `match[]` selectors, each with a matcher that rejects `""`.
fn matcher_sets(p: &Params) -> Result<Vec<Vec<Matcher>>, BadData> {
    let mut sets = Vec::new();
    for (k, v) in p {
        if k != "match[]" {
            continue;
        }
        let ms = parse_selector(v).map_err(|e| BadData::new(e.to_string()))?;
        if ms.iter().all(|m| m.matches("")) {
            return Err(BadData::new(
                "match[] must contain at least one non-empty matcher",
            ));
        }
        sets.push(ms);
    }
    Ok(sets)
}

/// Start, end, limit and matcher sets of the label and series endpoints.
struct Selection {
    start: i64,
    end: i64,
    limit: usize,
    sets: Vec<Vec<Matcher>>,
}

fn selection(p: &Params) -> Result<Selection, BadData> {
    let limit = limit_param(p)?;
    let start = time_param(p, "start", i64::MIN)?;
    let end = time_param(p, "end", i64::MAX)?;
    let sets = matcher_sets(p)?;
    Ok(Selection {
        start,
        end,
        limit,
        sets,
    })
}

/// Runs a storage read on the blocking pool; a storage error is `internal`.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, emberlens_model::StorageError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        )),
        Err(e) => Err(api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &format!("storage read panicked: {e}"),
        )),
    }
}

/// Cuts `v` to `limit` (0: no limit); says whether it did.
fn cut<T>(v: &mut Vec<T>, limit: usize) -> bool {
    if limit > 0 && v.len() > limit {
        v.truncate(limit);
        return true;
    }
    false
}

fn labels_map(l: &Labels) -> BTreeMap<&str, &str> {
    l.iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect()
}

/// `GET|POST /api/v1/series?match[]=…&start=…&end=…&limit=…`.
async fn series(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    body: axum::body::Bytes,
) -> Response {
    let p = params(q.as_deref(), &body);
    if get_param(&p, "match[]").is_none() {
        return bad("no match[] parameter provided");
    }
    let sel = match selection(&p) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let store = state.queryable();
    let got = blocking(move || {
        let mut all: Vec<Labels> = Vec::new();
        for ms in &sel.sets {
            all.extend(store.series_labels(ms, sel.start, sel.end)?);
        }
        if sel.sets.len() > 1 {
            all.sort();
            all.dedup();
        }
        Ok(all)
    })
    .await;
    let mut all = match got {
        Ok(a) => a,
        Err(r) => return r,
    };
    let truncated = cut(&mut all, sel.limit);
    let data: Vec<BTreeMap<&str, &str>> = all.iter().map(labels_map).collect();
    success(&data, truncated)
}

/// What a label endpoint lists.
enum LabelQuery {
    Names,
    Values(String),
}

async fn label_list(state: AppState, p: Params, what: LabelQuery) -> Response {
    let sel = match selection(&p) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let store = state.queryable();
    let got = blocking(move || {
        let one = |ms: &[Matcher]| match &what {
            LabelQuery::Names => store.label_names(ms, sel.start, sel.end),
            LabelQuery::Values(name) => store.label_values(name, ms, sel.start, sel.end),
        };
        if sel.sets.is_empty() {
            return one(&[]);
        }
        let mut all = BTreeSet::new();
        for ms in &sel.sets {
            all.extend(one(ms)?);
        }
        Ok(all.into_iter().collect::<Vec<String>>())
    })
    .await;
    let mut list = match got {
        Ok(l) => l,
        Err(r) => return r,
    };
    let truncated = cut(&mut list, sel.limit);
    success(&list, truncated)
}

/// `GET|POST /api/v1/labels?match[]=…&start=…&end=…&limit=…`.
async fn labels(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    body: axum::body::Bytes,
) -> Response {
    label_list(state, params(q.as_deref(), &body), LabelQuery::Names).await
}

/// Whether `name` is a valid label name (Prometheus's legacy charset, which
/// is what the stores hold).
fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `GET /api/v1/label/<name>/values?match[]=…&start=…&end=…&limit=…`.
async fn label_values(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if !valid_label_name(&name) {
        return bad(format!("invalid label name: {name:?}"));
    }
    label_list(state, params(q.as_deref(), &[]), LabelQuery::Values(name)).await
}

/// One entry of `/api/v1/metadata`.
#[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
struct MetadataJson<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    help: &'a str,
    unit: &'a str,
}

impl<'a> From<&'a MetricMetadata> for MetadataJson<'a> {
    fn from(m: &'a MetricMetadata) -> Self {
        MetadataJson {
            kind: m.kind,
            help: &m.help,
            unit: &m.unit,
        }
    }
}

/// An optional integer parameter of the metadata endpoints; negative or
/// absent is "no limit" (`None`), as Prometheus's `-1`.
fn metadata_limit(p: &Params, key: &str) -> Result<Option<usize>, BadData> {
    match get_param(p, key) {
        None | Some("") => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) => Ok(usize::try_from(n).ok()),
            Err(_) => Err(BadData::new(format!("{key} must be a number"))),
        },
    }
}

/// `GET /api/v1/metadata?metric=…&limit=…&limit_per_metric=…`: the
/// distinct metadata of every active target, by metric family name.
async fn metadata(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = params(q.as_deref(), &[]);
    let (limit, per_metric) = match (
        metadata_limit(&p, "limit"),
        metadata_limit(&p, "limit_per_metric"),
    ) {
        (Ok(l), Ok(m)) => (l, m.filter(|&m| m > 0)),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    let metric = get_param(&p, "metric").filter(|m| !m.is_empty());
    let (active, _) = state.scrape.targets();
    let all: Vec<_> = active
        .iter()
        .filter_map(|a| a.last.as_ref().map(|(_, r)| r.metadata.clone()))
        .collect();
    let mut by_name: BTreeMap<&str, BTreeSet<MetadataJson<'_>>> = BTreeMap::new();
    for md in &all {
        for (name, m) in md.iter() {
            if metric.is_some_and(|want| want != name) {
                continue;
            }
            let set = by_name.entry(name).or_default();
            if per_metric.is_none_or(|n| set.len() < n) {
                set.insert(m.into());
            }
        }
    }
    let data: BTreeMap<&str, Vec<MetadataJson<'_>>> = by_name
        .into_iter()
        .take(limit.unwrap_or(usize::MAX))
        .map(|(k, v)| (k, v.into_iter().collect()))
        .collect();
    success(&data, false)
}

/// One entry of `/api/v1/targets/metadata`.
#[derive(Serialize)]
struct TargetMetadataJson<'a> {
    target: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    metric: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    help: &'a str,
    unit: &'a str,
}

/// `GET /api/v1/targets/metadata?match_target=…&metric=…&limit=…`.
async fn targets_metadata(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = params(q.as_deref(), &[]);
    let limit = match metadata_limit(&p, "limit") {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    let matchers = match get_param(&p, "match_target").filter(|m| !m.is_empty()) {
        None => Vec::new(),
        Some(sel) => match parse_selector(sel) {
            Ok(m) => m,
            Err(e) => return bad(e.to_string()),
        },
    };
    let metric = get_param(&p, "metric").filter(|m| !m.is_empty());
    let (active, _) = state.scrape.targets();
    let with_md: Vec<_> = active
        .iter()
        .filter(|a| matchers.iter().all(|m| m.matches_labels(&a.target.labels)))
        .filter_map(|a| {
            a.last
                .as_ref()
                .map(|(_, r)| (&a.target.labels, r.metadata.clone()))
        })
        .collect();
    let mut out = Vec::new();
    for (labels, md) in &with_md {
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        let target = labels_map(labels);
        match metric {
            None => out.extend(md.iter().map(|(name, m)| TargetMetadataJson {
                target: target.clone(),
                metric: name,
                kind: m.kind,
                help: &m.help,
                unit: &m.unit,
            })),
            Some(want) => out.extend(md.get(want).map(|m| TargetMetadataJson {
                target: target.clone(),
                metric: "",
                kind: m.kind,
                help: &m.help,
                unit: &m.unit,
            })),
        }
    }
    success(&out, false)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BuildInfo {
    version: &'static str,
    revision: &'static str,
    branch: &'static str,
    build_user: &'static str,
    build_date: &'static str,
    go_version: &'static str,
}

/// `GET /api/v1/status/buildinfo`. `goVersion` carries the Rust compiler's
/// version (Grafana reads only `version`); revision, branch, user and date
/// come from `EMBERLENS_REVISION`, `EMBERLENS_BRANCH`, `EMBERLENS_BUILD_USER`
/// and `EMBERLENS_BUILD_DATE` at build time, `unknown` without them.
async fn buildinfo() -> Response {
    success(
        &BuildInfo {
            version: env!("CARGO_PKG_VERSION"),
            revision: option_env!("EMBERLENS_REVISION").unwrap_or("unknown"),
            branch: option_env!("EMBERLENS_BRANCH").unwrap_or("unknown"),
            build_user: option_env!("EMBERLENS_BUILD_USER").unwrap_or("unknown"),
            build_date: option_env!("EMBERLENS_BUILD_DATE").unwrap_or("unknown"),
            go_version: env!("EMBERLENS_RUSTC_VERSION"),
        },
        false,
    )
}

#[derive(Serialize)]
#[allow(non_snake_case)] // Prometheus's field names
struct RuntimeInfo {
    startTime: String,
    CWD: String,
    hostname: String,
    serverTime: String,
    reloadConfigSuccess: bool,
    lastConfigTime: String,
    corruptionCount: i64,
    goroutineCount: i64,
    GOMAXPROCS: usize,
    GOMEMLIMIT: i64,
    GOGC: &'static str,
    GODEBUG: &'static str,
    storageRetention: String,
}

/// `GET /api/v1/status/runtimeinfo`, in Prometheus's shape. Go runtime
/// fields that have no Rust meaning are zero or empty; `GOMAXPROCS` is the
/// number of CPUs the process may use.
async fn runtimeinfo(State(state): State<AppState>) -> Response {
    let (ok, at) = state.scrape.reload_status();
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    success(
        &RuntimeInfo {
            startTime: format_rfc3339(state.info.start_ms),
            CWD: std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            hostname,
            serverTime: format_rfc3339(crate::scrape::now_ms()),
            reloadConfigSuccess: ok,
            lastConfigTime: format_rfc3339(at),
            corruptionCount: 0,
            goroutineCount: 0,
            GOMAXPROCS: std::thread::available_parallelism().map_or(1, |n| n.get()),
            GOMEMLIMIT: 0,
            GOGC: "",
            GODEBUG: "",
            storageRetention: emberlens_model::format_duration_ms(
                state.info.retention.as_millis() as i64
            ),
        },
        false,
    )
}

/// `GET /api/v1/status/flags`: flag name → value, as strings.
async fn flags(State(state): State<AppState>) -> Response {
    success(&state.info.flags, false)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HeadStats {
    num_series: u64,
    num_label_pairs: u64,
    chunk_count: u64,
    min_time: i64,
    max_time: i64,
}

#[derive(Serialize)]
struct Stat {
    name: String,
    value: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TsdbStatus {
    head_stats: HeadStats,
    series_count_by_metric_name: Vec<Stat>,
    label_value_count_by_label_name: Vec<Stat>,
    memory_in_bytes_by_label_name: Vec<Stat>,
    series_count_by_label_value_pair: Vec<Stat>,
}

/// The `limit` largest, by value then name.
fn top(counts: HashMap<String, u64>, limit: usize) -> Vec<Stat> {
    let mut v: Vec<Stat> = counts
        .into_iter()
        .map(|(name, value)| Stat { name, value })
        .collect();
    v.sort_by(|a, b| b.value.cmp(&a.value).then_with(|| a.name.cmp(&b.name)));
    v.truncate(limit);
    v
}

/// Prometheus's cardinality statistics over `series`.
fn tsdb_status_of(
    series: &[Labels],
    stats: emberlens_model::StorageStats,
    limit: usize,
) -> TsdbStatus {
    let mut by_metric: HashMap<String, u64> = HashMap::new();
    let mut by_pair: HashMap<String, u64> = HashMap::new();
    let mut values: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for labels in series {
        for l in labels.iter() {
            if l.name == emberlens_model::METRIC_NAME {
                *by_metric.entry(l.value.clone()).or_default() += 1;
            }
            *by_pair
                .entry(format!("{}={}", l.name, l.value))
                .or_default() += 1;
            values.entry(&l.name).or_default().insert(&l.value);
        }
    }
    let value_counts = values
        .iter()
        .map(|(n, v)| (n.to_string(), v.len() as u64))
        .collect();
    let bytes = values
        .iter()
        .map(|(n, v)| (n.to_string(), v.iter().map(|s| s.len() as u64).sum()))
        .collect();
    TsdbStatus {
        head_stats: HeadStats {
            num_series: series.len() as u64,
            num_label_pairs: by_pair.len() as u64,
            chunk_count: stats.chunks.unwrap_or(0),
            // Prometheus's values for an empty head.
            min_time: stats.min_t_ms.unwrap_or(i64::MAX),
            max_time: stats.max_t_ms.unwrap_or(i64::MIN),
        },
        series_count_by_metric_name: top(by_metric, limit),
        label_value_count_by_label_name: top(value_counts, limit),
        memory_in_bytes_by_label_name: top(bytes, limit),
        series_count_by_label_value_pair: top(by_pair, limit),
    }
}

/// `GET /api/v1/status/tsdb?limit=N` (default 10).
async fn tsdb_status(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = params(q.as_deref(), &[]);
    let limit = match get_param(&p, "limit").filter(|v| !v.is_empty()) {
        None => 10,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => return bad("limit must be a positive number"),
        },
    };
    let store = state.queryable();
    let got = blocking(move || {
        let series = store.series_labels(&[], i64::MIN, i64::MAX)?;
        Ok(tsdb_status_of(&series, store.stats()?, limit))
    })
    .await;
    match got {
        Ok(s) => success(&s, false),
        Err(r) => r,
    }
}

/// `GET|POST /api/v1/query_exemplars`: Emberlens skips exemplars when
/// scraping, so the answer is always an empty list.
async fn query_exemplars() -> Response {
    success(&Vec::<()>::new(), false)
}

/// `GET /api/v1/rules`: no rule groups (Emberlens evaluates no rules).
async fn rules() -> Response {
    json(
        StatusCode::OK,
        r#"{"status":"success","data":{"groups":[]}}"#.to_string(),
    )
}

/// `GET /api/v1/alerts`: no alerts.
async fn alerts() -> Response {
    json(
        StatusCode::OK,
        r#"{"status":"success","data":{"alerts":[]}}"#.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsdb_statistics_count_as_prometheus() {
        let series = [
            Labels::from_pairs([("__name__", "up"), ("job", "a")]),
            Labels::from_pairs([("__name__", "up"), ("job", "bb")]),
            Labels::from_pairs([("__name__", "x"), ("job", "a")]),
        ];
        let st = tsdb_status_of(&series, emberlens_model::StorageStats::default(), 2);
        let text = serde_json::to_string(&st).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"headStats":{"numSeries":3,"numLabelPairs":4,"chunkCount":0,"minTime":9223372036854775807,"maxTime":-9223372036854775808},"#,
                r#""seriesCountByMetricName":[{"name":"up","value":2},{"name":"x","value":1}],"#,
                r#""labelValueCountByLabelName":[{"name":"__name__","value":2},{"name":"job","value":2}],"#,
                r#""memoryInBytesByLabelName":[{"name":"__name__","value":3},{"name":"job","value":3}],"#,
                r#""seriesCountByLabelValuePair":[{"name":"__name__=up","value":2},{"name":"job=a","value":2}]}"#
            )
        );
    }

    #[test]
    fn label_names_follow_prometheus_charset() {
        assert!(valid_label_name("__name__"));
        assert!(valid_label_name("job_2"));
        assert!(!valid_label_name("2job"));
        assert!(!valid_label_name("a-b"));
        assert!(!valid_label_name(""));
    }
}
