//! The HTTP surface: `/metrics`, the raw-samples API, the PromQL query API
//! (`query_api`), the profiles API and `/debug/pprof/profile`
//! (`profiles::api`, `profiles::selfprof`), health checks, and the built
//! app as static files.
//!
//! API errors use Prometheus's JSON error shape
//! (`{"status":"error","errorType":"bad_data","error":"..."}`), so clients
//! written for Prometheus understand them.
//!
//! The app's files are served cross-origin isolated by default
//! (`Cross-Origin-Opener-Policy: same-origin`,
//! `Cross-Origin-Embedder-Policy: require-corp`): only then may the page
//! share a `SharedArrayBuffer` with its worker, the flag that stops a query
//! running in the worker. The worker script and Wasm are same-origin, so
//! they load under that policy; a snapshot opened by URL from another origin
//! is read with CORS requests, so its host must send CORS headers anyway.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, RawQuery, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use emberlens_model::{
    Labels, Sample, Storage, format_timestamp_secs, format_value, is_stale_nan, parse_selector,
    parse_time_ms,
};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeader;

use crate::manager::ScrapeManager;
use crate::metrics::{HttpLabels, Metrics};
use crate::scrape::now_ms;
use crate::store::Tsdb;

/// Shared state of every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The sample store: WAL, head and blocks (scrapes append here).
    pub store: Arc<Tsdb>,
    /// The server's own metrics.
    pub metrics: Arc<Metrics>,
    /// The configuration and the scrape loops.
    pub scrape: Arc<ScrapeManager>,
    /// Stored profiles (`<data>/profiles`).
    pub profiles: Arc<crate::profiles::store::ProfileStore>,
    /// Profile scrape loops' latest state.
    pub profile_status: crate::profiles::scrape::ProfileStatus,
    /// Start time, flags and retention, for the status endpoints.
    pub info: Arc<crate::api::ServerInfo>,
    /// Remote read/write settings and limits.
    pub remote: Arc<crate::remote_api::RemoteApi>,
}

impl AppState {
    /// What queries read: the blocks and the head, merged.
    pub fn queryable(&self) -> Queryable {
        Queryable(self.store.clone())
    }
}

/// The store as an owned [`Storage`] (queries run on the blocking pool).
#[derive(Clone, Debug)]
pub struct Queryable(pub Arc<Tsdb>);

impl Storage for Queryable {
    fn select(
        &self,
        matchers: &[emberlens_model::Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<emberlens_model::Series>, emberlens_model::StorageError> {
        self.0.select(matchers, min_t_ms, max_t_ms)
    }

    fn series_labels(
        &self,
        matchers: &[emberlens_model::Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<Labels>, emberlens_model::StorageError> {
        self.0.series_labels(matchers, min_t_ms, max_t_ms)
    }

    fn label_names(
        &self,
        matchers: &[emberlens_model::Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<String>, emberlens_model::StorageError> {
        self.0.label_names(matchers, min_t_ms, max_t_ms)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[emberlens_model::Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<String>, emberlens_model::StorageError> {
        self.0.label_values(name, matchers, min_t_ms, max_t_ms)
    }

    fn stats(&self) -> Result<emberlens_model::StorageStats, emberlens_model::StorageError> {
        self.0.stats()
    }
}

/// Default range of `/api/v1/raw` when `start` is omitted.
const DEFAULT_RANGE_MS: i64 = 15 * 60 * 1000;

/// The headers that make the app's page cross-origin isolated.
pub const CROSS_ORIGIN_ISOLATION: [(&str, &str); 2] = [
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-embedder-policy", "require-corp"),
];

/// Builds the router; `ui_dir` holds the trunk build (`index.html` and the
/// Wasm), served with [`CROSS_ORIGIN_ISOLATION`] when `isolate` is set.
pub fn router(state: AppState, ui_dir: PathBuf, isolate: bool) -> Router {
    let api = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/api/v1/raw", get(raw_handler))
        .route(
            "/api/v1/query",
            get(crate::query_api::query_handler).post(crate::query_api::query_handler),
        )
        .route(
            "/api/v1/query_range",
            get(crate::query_api::query_range_handler).post(crate::query_api::query_range_handler),
        )
        .route("/api/v1/read", post(crate::remote_api::read_handler))
        .route("/api/v1/write", post(crate::remote_api::write_handler))
        .route("/api/v1/status/config", get(config_handler))
        .route("/api/v1/targets", get(targets_handler))
        .route(
            "/api/v1/admin/tsdb/snapshot",
            post(snapshot_handler).put(snapshot_handler),
        )
        .route("/api/v1/snapshots/{file}", get(snapshot_download))
        .route("/api/v1/profiles", get(crate::profiles::api::list_handler))
        .route(
            "/api/v1/profiles/merge",
            get(crate::profiles::api::merge_handler),
        )
        .route(
            "/api/v1/profiles/targets",
            get(crate::profiles::api::targets_handler),
        )
        .route(
            "/api/v1/profiles/{id}",
            get(crate::profiles::api::get_handler),
        )
        .route(
            "/debug/pprof/profile",
            get(crate::profiles::selfprof::cpu_profile_handler),
        )
        .route(
            "/debug/pprof/heap",
            get(crate::profiles::selfprof::heap_profile_handler),
        )
        .route("/-/reload", post(reload_handler).put(reload_handler))
        .route("/-/healthy", get(|| async { "Emberlens is Healthy.\n" }))
        .route("/-/ready", get(|| async { "Emberlens is Ready.\n" }))
        .merge(crate::api::routes());
    let with_ui = if ui_dir.join("index.html").is_file() {
        let files = ServeDir::new(&ui_dir);
        if isolate {
            let [(coop, coop_v), (coep, coep_v)] = CROSS_ORIGIN_ISOLATION;
            api.fallback_service(SetResponseHeader::overriding(
                SetResponseHeader::overriding(
                    files,
                    HeaderName::from_static(coop),
                    HeaderValue::from_static(coop_v),
                ),
                HeaderName::from_static(coep),
                HeaderValue::from_static(coep_v),
            ))
        } else {
            api.fallback_service(files)
        }
    } else {
        tracing::warn!(dir = %ui_dir.display(), "no built app here; serving a placeholder page (run tools/run.sh to build it)");
        api.fallback(|| async { missing_ui_page() })
    };
    with_ui
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "/ui".to_string(), |p| p.as_str().to_string());
    let resp = next.run(req).await;
    state
        .metrics
        .http_requests
        .get_or_create(&HttpLabels {
            path,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}

async fn metrics_handler(State(state): State<AppState>) -> Response {
    match state.metrics.encode() {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            )],
            body,
        )
            .into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding metrics failed\n",
        )
            .into_response(),
    }
}

/// `POST /-/reload`: re-reads the config file. A refused config answers 500
/// with the reason (Prometheus's wording) and the old one keeps running.
async fn reload_handler(State(state): State<AppState>) -> Response {
    match state.scrape.reload().await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reloading the configuration failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed to reload config: {e}\n"),
            )
                .into_response()
        }
    }
}

/// `POST /api/v1/admin/tsdb/snapshot[?skip_head=true]`: Prometheus's
/// response, `{"status":"success","data":{"name":"…"}}`.
async fn snapshot_handler(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    body: String,
) -> Response {
    let mut skip_head = false;
    let params = form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .chain(form_urlencoded::parse(body.as_bytes()));
    for (k, v) in params {
        if k == "skip_head" {
            match v.parse::<bool>() {
                Ok(b) => skip_head = b,
                Err(_) => {
                    return api_error(
                        StatusCode::BAD_REQUEST,
                        "bad_data",
                        &format!(
                            "unable to parse boolean 'skip_head' argument: invalid syntax: {v:?}"
                        ),
                    );
                }
            }
        }
    }
    let (store, profiles) = (state.store.clone(), state.profiles.clone());
    match tokio::task::spawn_blocking(move || {
        crate::snapshot::create(&store, Some(&profiles), skip_head)
    })
    .await
    {
        Ok(Ok(name)) => {
            let body = serde_json::json!({"status": "success", "data": {"name": name}});
            json_response(StatusCode::OK, body.to_string())
        }
        Ok(Err(e)) => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &format!("create snapshot: {e}"),
        ),
        Err(e) => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        ),
    }
}

/// `GET /api/v1/snapshots/<name>.tar`: the snapshot directory as a tar,
/// streamed as it is read.
async fn snapshot_download(
    State(state): State<AppState>,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Response {
    let Some(name) = file.strip_suffix(".tar") else {
        return api_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "snapshots are downloaded as <name>.tar",
        );
    };
    if !crate::snapshot::valid_name(name) {
        return api_error(
            StatusCode::BAD_REQUEST,
            "bad_data",
            &format!("invalid snapshot name {name:?}"),
        );
    }
    let dir = crate::snapshot::snapshots_dir(state.store.dir()).join(name);
    if !dir.is_dir() {
        return api_error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no snapshot named {name:?}"),
        );
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<axum::body::Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let out = ChannelWriter(tx.clone());
        if let Err(e) = crate::snapshot::write_tar(&dir, out) {
            // The client sees a cut body; a closed channel means it left.
            let _ = tx.blocking_send(Err(e));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (
        [
            (header::CONTENT_TYPE, "application/x-tar".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.tar\""),
            ),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

/// A `Write` that sends what it is given to an HTTP body, 64 KiB at a time.
struct ChannelWriter(tokio::sync::mpsc::Sender<std::io::Result<axum::body::Bytes>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(64 << 10);
        self.0
            .blocking_send(Ok(axum::body::Bytes::copy_from_slice(&buf[..n])))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `GET /api/v1/status/config`: the loaded configuration's YAML.
async fn config_handler(State(state): State<AppState>) -> Response {
    let body = serde_json::json!({"status": "success", "data": {"yaml": state.scrape.yaml()}});
    json_response(StatusCode::OK, body.to_string())
}

/// `GET /api/v1/targets?state=active|dropped|any&scrapePool=P`, in
/// Prometheus's shape.
async fn targets_handler(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let (mut want_active, mut want_dropped, mut pool) = (true, true, None);
    for (k, v) in form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        match (&*k, &*v) {
            ("state", "active") => want_dropped = false,
            ("state", "dropped") => want_active = false,
            ("scrapePool", p) if !p.is_empty() => pool = Some(p.to_string()),
            _ => {}
        }
    }
    let (active, dropped) = state.scrape.targets();
    let in_pool = |p: &str| pool.as_deref().is_none_or(|want| want == p);
    let labels_json = |l: &Labels| {
        serde_json::Value::Object(
            l.iter()
                .map(|l| (l.name.clone(), serde_json::Value::String(l.value.clone())))
                .collect(),
        )
    };
    let active: Vec<serde_json::Value> = active
        .iter()
        .filter(|a| want_active && in_pool(&a.target.pool))
        .map(|a| {
            let t = &a.target;
            let (health, last_error, last_scrape, duration) = match &a.last {
                None => ("unknown", String::new(), "0001-01-01T00:00:00Z".to_string(), 0.0),
                Some((at, r)) => (
                    if r.up { "up" } else { "down" },
                    r.error.clone().unwrap_or_default(),
                    format_rfc3339(*at),
                    r.duration.as_secs_f64(),
                ),
            };
            serde_json::json!({
                "discoveredLabels": labels_json(&t.discovered),
                "labels": labels_json(&t.labels),
                "scrapePool": t.pool,
                "scrapeUrl": t.url,
                "globalUrl": t.url,
                "lastError": last_error,
                "lastScrape": last_scrape,
                "lastScrapeDuration": duration,
                "health": health,
                "scrapeInterval": emberlens_model::format_duration_ms(t.interval.as_millis() as i64),
                "scrapeTimeout": emberlens_model::format_duration_ms(t.timeout.as_millis() as i64),
            })
        })
        .collect();
    let dropped: Vec<serde_json::Value> = dropped
        .iter()
        .filter(|d| want_dropped && in_pool(&d.pool))
        .map(|d| serde_json::json!({"discoveredLabels": labels_json(&d.discovered)}))
        .collect();
    let body = serde_json::json!({
        "status": "success",
        "data": {"activeTargets": active, "droppedTargets": dropped},
    });
    json_response(StatusCode::OK, body.to_string())
}

/// `t_ms` as RFC 3339 in UTC, fraction trimmed as Go's `RFC3339Nano` does.
pub fn format_rfc3339(t_ms: i64) -> String {
    let secs = t_ms.div_euclid(1000);
    let ms = t_ms.rem_euclid(1000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    if ms > 0 {
        let frac = format!("{ms:03}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// `GET /api/v1/raw?match[]=SELECTOR&start=T&end=T`: stored samples of every
/// series matching any selector, in the shape of Prometheus's range-vector
/// answer (`resultType: matrix`). Staleness markers are left out, as in a
/// PromQL range selector. `end` defaults to now, `start` to 15 minutes before it.
async fn raw_handler(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    match raw_samples(&state, query.as_deref().unwrap_or("")) {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(msg) => api_error(StatusCode::BAD_REQUEST, "bad_data", &msg),
    }
}

fn raw_samples(state: &AppState, query: &str) -> Result<String, String> {
    let mut selectors = Vec::new();
    let (mut start, mut end) = (None, None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "match[]" => selectors.push(v.into_owned()),
            "start" => {
                start = Some(
                    parse_time_ms(&v).map_err(|e| format!("invalid parameter \"start\": {e}"))?,
                )
            }
            "end" => {
                end =
                    Some(parse_time_ms(&v).map_err(|e| format!("invalid parameter \"end\": {e}"))?)
            }
            _ => {}
        }
    }
    if selectors.is_empty() {
        return Err("no match[] parameter provided".into());
    }
    let end = end.unwrap_or_else(now_ms);
    let start = start.unwrap_or(end - DEFAULT_RANGE_MS);
    if end < start {
        return Err(
            "invalid parameter \"end\": end timestamp must not be before start time".into(),
        );
    }
    let mut found: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    for sel in &selectors {
        let matchers =
            parse_selector(sel).map_err(|e| format!("invalid parameter \"match[]\": {e}"))?;
        let series = state
            .queryable()
            .select(&matchers, start, end)
            .map_err(|e| e.to_string())?;
        for s in series {
            found.entry(s.labels).or_insert(s.samples);
        }
    }
    Ok(matrix_json(&found))
}

/// Prometheus's success envelope around a matrix, written by hand so that
/// timestamps and values are byte-for-byte what Prometheus prints.
fn matrix_json(series: &BTreeMap<Labels, Vec<Sample>>) -> String {
    let mut out = String::from(r#"{"status":"success","data":{"resultType":"matrix","result":["#);
    let mut first_series = true;
    for (labels, samples) in series {
        let live: Vec<&Sample> = samples.iter().filter(|s| !is_stale_nan(s.v)).collect();
        if live.is_empty() {
            continue;
        }
        if !first_series {
            out.push(',');
        }
        first_series = false;
        out.push_str(r#"{"metric":{"#);
        for (i, l) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&json_string(&l.name));
            out.push(':');
            out.push_str(&json_string(&l.value));
        }
        out.push_str(r#"},"values":["#);
        for (i, s) in live.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "[{},\"{}\"]",
                format_timestamp_secs(s.t_ms),
                format_value(s.v)
            );
        }
        out.push_str("]}");
    }
    out.push_str("]}}");
    out
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Prometheus's error shape, its keys in Prometheus's order.
pub fn api_error(status: StatusCode, error_type: &str, msg: &str) -> Response {
    let body = format!(
        r#"{{"status":"error","errorType":{},"error":{}}}"#,
        json_string(error_type),
        json_string(msg)
    );
    json_response(status, body)
}

fn missing_ui_page() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><title>Emberlens</title>",
        "<h1>Emberlens is running, but the app is not built</h1>",
        "<p>Build it with <code>tools/run.sh</code> (or <code>trunk build --release</code> in <code>app/</code>) ",
        "and restart, or pass <code>--web.ui-path</code>. The API is up: try <a href=\"metrics\">/metrics</a>.</p>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use emberlens_model::{Appendable, Appender, stale_nan};

    fn state_with(samples: &[(&str, i64, f64)]) -> AppState {
        let dir = std::env::temp_dir().join(format!(
            "emberlens-web-{}-{}",
            std::process::id(),
            samples.len()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Tsdb::open(&dir, Default::default()).unwrap();
        let mut app = store.appender();
        for (name, t, v) in samples {
            app.append(
                &Labels::from_pairs([("__name__", *name), ("job", "j")]),
                *t,
                *v,
            )
            .unwrap();
        }
        app.commit().unwrap();
        let store = Arc::new(store);
        let metrics = Arc::new(Metrics::new());
        let scrape = Arc::new(ScrapeManager::new(
            crate::manager::ConfigSource::Default {
                listen: "127.0.0.1:9190".into(),
                interval: std::time::Duration::from_secs(5),
            },
            Vec::new(),
            reqwest::Client::new(),
            store.clone(),
            metrics.clone(),
            crate::scrape::TargetHealth::default(),
        ));
        let profiles =
            Arc::new(crate::profiles::store::ProfileStore::open(&dir, i64::MAX).unwrap());
        AppState {
            store,
            metrics,
            scrape,
            profiles,
            profile_status: Default::default(),
            info: Arc::default(),
            remote: Default::default(),
        }
    }

    #[test]
    fn rfc3339_matches_go() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_709_250_077_300), "2024-02-29T23:41:17.3Z");
        assert_eq!(format_rfc3339(951_782_400_012), "2000-02-29T00:00:00.012Z");
    }

    #[test]
    fn raw_answers_in_prometheus_matrix_shape() {
        let st = state_with(&[
            ("up", 1_000, 1.0),
            ("up", 1_500, f64::INFINITY),
            ("up", 2_000, stale_nan()),
            ("x", 1_000, 2.0),
        ]);
        let body = raw_samples(&st, "match[]=up&start=0&end=10").unwrap();
        assert_eq!(
            body,
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"j"},"values":[[1,"1"],[1.500,"+Inf"]]}]}}"#
        );
        let both =
            raw_samples(&st, "match[]=up&match[]=%7Bjob%3D%22j%22%7D&start=0&end=10").unwrap();
        assert_eq!(both.matches("\"metric\"").count(), 2);
    }

    #[test]
    fn raw_rejects_bad_parameters() {
        let st = state_with(&[]);
        for (q, want) in [
            ("", "no match[] parameter provided"),
            (
                "match[]=up{",
                "invalid parameter \"match[]\": bad series selector at 3: expected a label name, found end of input",
            ),
            (
                "match[]=up&start=x",
                "invalid parameter \"start\": cannot parse \"x\" to a valid timestamp",
            ),
            (
                "match[]=up&start=10&end=5",
                "invalid parameter \"end\": end timestamp must not be before start time",
            ),
        ] {
            assert_eq!(raw_samples(&st, q).unwrap_err(), want, "{q}");
        }
    }
}
