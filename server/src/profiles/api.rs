//! The profiles HTTP API, in Prometheus's JSON envelope and error shape:
//!
//! - `GET /api/v1/profiles?match[]=<selector>&start=<t>&end=<t>`: the
//!   stored profiles whose labels match any selector (all when no
//!   `match[]`) with `start <= time <= end` (both optional; RFC 3339 or
//!   Unix seconds), oldest first: `{"status":"success","data":[{"id",
//!   "type","labels","time","timestamp","durationSeconds","sampleTypes",
//!   "periodType","size"}]}`. `time` is RFC 3339, `timestamp` Unix seconds.
//! - `GET /api/v1/profiles/<id>`: the stored pprof, gzipped, byte for byte
//!   what the target served when it served gzip.
//! - `GET /api/v1/profiles/merge?match[]=…&start=…&end=…`: the matching
//!   profiles merged into one gzipped pprof ([`emberlens_pprof::merge`]);
//!   `X-Emberlens-Merged-Profiles` says how many. Profiles of different
//!   sample types (say CPU and heap) are refused with 400 `bad_data`; no
//!   match is 404; more than [`MAX_MERGE`] is 400 (narrow the query).
//! - `GET /api/v1/profiles/targets`: each (target, profile type) loop with
//!   its URL, health, last scrape and last error.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use emberlens_model::{Matcher, format_timestamp_secs, parse_selector, parse_time_ms};

use crate::profiles::store::{ProfileMeta, ProfileStore, valid_id};
use crate::web::{AppState, api_error, format_rfc3339};

/// Most profiles one merge reads.
pub const MAX_MERGE: usize = 10_000;

/// A parsed `match[]`/`start`/`end` query.
#[derive(Debug)]
struct Query {
    selectors: Vec<Vec<Matcher>>,
    start_ms: i64,
    end_ms: i64,
}

fn parse_query(query: &str) -> Result<Query, String> {
    let mut q = Query {
        selectors: Vec::new(),
        start_ms: i64::MIN,
        end_ms: i64::MAX,
    };
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "match[]" => q.selectors.push(
                parse_selector(&v).map_err(|e| format!("invalid parameter \"match[]\": {e}"))?,
            ),
            "start" => {
                q.start_ms =
                    parse_time_ms(&v).map_err(|e| format!("invalid parameter \"start\": {e}"))?
            }
            "end" => {
                q.end_ms =
                    parse_time_ms(&v).map_err(|e| format!("invalid parameter \"end\": {e}"))?
            }
            _ => {}
        }
    }
    if q.end_ms < q.start_ms {
        return Err(
            "invalid parameter \"end\": end timestamp must not be before start time".into(),
        );
    }
    Ok(q)
}

fn meta_json(m: &ProfileMeta) -> serde_json::Value {
    serde_json::json!({
        "id": m.id,
        "type": m.type_name,
        "labels": m.labels,
        "time": format_rfc3339(m.time_ms),
        "timestamp": serde_json::from_str::<serde_json::Value>(&format_timestamp_secs(m.time_ms)).unwrap_or_default(),
        "durationSeconds": m.duration_ms as f64 / 1000.0,
        "sampleTypes": m.sample_types,
        "periodType": m.period_type,
        "size": m.size,
    })
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn pprof_response(bytes: Vec<u8>, file: &str, extra: Option<(&'static str, String)>) -> Response {
    let mut resp = (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        bytes,
    )
        .into_response();
    if let Some((name, value)) = extra
        && let Ok(v) = axum::http::HeaderValue::from_str(&value)
    {
        resp.headers_mut().insert(name, v);
    }
    resp
}

/// `GET /api/v1/profiles`.
pub async fn list_handler(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let q = match parse_query(query.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(msg) => return api_error(StatusCode::BAD_REQUEST, "bad_data", &msg),
    };
    let store = state.profiles.clone();
    let found = tokio::task::spawn_blocking(move || store.list(&q.selectors, q.start_ms, q.end_ms))
        .await
        .unwrap_or_default();
    let data: Vec<serde_json::Value> = found.iter().map(meta_json).collect();
    json(
        StatusCode::OK,
        &serde_json::json!({"status": "success", "data": data}),
    )
}

/// `GET /api/v1/profiles/<id>`.
pub async fn get_handler(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    if !valid_id(&id) {
        return api_error(
            StatusCode::BAD_REQUEST,
            "bad_data",
            &format!("invalid profile id {id:?}"),
        );
    }
    let store = state.profiles.clone();
    let lookup = id.clone();
    match tokio::task::spawn_blocking(move || store.read(&lookup)).await {
        Ok(Ok(bytes)) => pprof_response(bytes, &format!("{id}.pb.gz"), None),
        Ok(Err(crate::profiles::store::ProfileStoreError::NotFound(_))) => api_error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no profile with id {id:?}"),
        ),
        Ok(Err(e)) => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        ),
        Err(e) => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        ),
    }
}

/// Why a merge request fails.
#[derive(Debug, thiserror::Error)]
enum MergeFailure {
    #[error("no profiles match")]
    NoMatch,
    #[error(
        "{0} profiles match; at most {MAX_MERGE} are merged at once: narrow the selector or the time range"
    )]
    TooMany(usize),
    #[error("profile {id}: {reason}")]
    Unreadable { id: String, reason: String },
    #[error("{0}")]
    Incompatible(String),
}

fn merge_stored(store: &ProfileStore, q: &Query) -> Result<(Vec<u8>, usize), MergeFailure> {
    let metas = store.list(&q.selectors, q.start_ms, q.end_ms);
    if metas.is_empty() {
        return Err(MergeFailure::NoMatch);
    }
    if metas.len() > MAX_MERGE {
        return Err(MergeFailure::TooMany(metas.len()));
    }
    let mut merger = emberlens_pprof::Merger::new();
    for m in &metas {
        let unreadable = |reason: String| MergeFailure::Unreadable {
            id: m.id.clone(),
            reason,
        };
        let bytes = store.read(&m.id).map_err(|e| unreadable(e.to_string()))?;
        let p =
            emberlens_pprof::decode_with_limit(&bytes, crate::profiles::scrape::MAX_DECODED_BYTES)
                .map_err(|e| unreadable(e.to_string()))?;
        merger.add(&p).map_err(|e| match e {
            emberlens_pprof::MergeError::Incompatible {
                what, ours, theirs, ..
            } => MergeFailure::Incompatible(format!(
                "cannot merge profile {} ({}): incompatible {what} {theirs} and {ours}; select one profile type, e.g. {{__name__=\"{}\"}}",
                m.id, m.type_name, metas[0].type_name
            )),
            other => unreadable(other.to_string()),
        })?;
    }
    let merged = merger
        .finish()
        .map_err(|e| MergeFailure::Incompatible(e.to_string()))?;
    Ok((emberlens_pprof::encode_gzip(&merged), metas.len()))
}

/// `GET /api/v1/profiles/merge`.
pub async fn merge_handler(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let q = match parse_query(query.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(msg) => return api_error(StatusCode::BAD_REQUEST, "bad_data", &msg),
    };
    let store: Arc<ProfileStore> = state.profiles.clone();
    match tokio::task::spawn_blocking(move || merge_stored(&store, &q)).await {
        Ok(Ok((bytes, n))) => pprof_response(
            bytes,
            "merged.pb.gz",
            Some(("x-emberlens-merged-profiles", n.to_string())),
        ),
        Ok(Err(e @ MergeFailure::NoMatch)) => {
            api_error(StatusCode::NOT_FOUND, "not_found", &e.to_string())
        }
        Ok(Err(e @ (MergeFailure::TooMany(_) | MergeFailure::Incompatible(_)))) => {
            api_error(StatusCode::BAD_REQUEST, "bad_data", &e.to_string())
        }
        Ok(Err(e)) => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        ),
        Err(e) => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        ),
    }
}

/// `GET /api/v1/profiles/targets`.
pub async fn targets_handler(State(state): State<AppState>) -> Response {
    let rows: Vec<serde_json::Value> = state
        .profile_status
        .read()
        .map(|s| {
            s.values()
                .map(|t| {
                    let labels: serde_json::Map<String, serde_json::Value> = t
                        .labels
                        .iter()
                        .map(|l| (l.name.clone(), serde_json::Value::String(l.value.clone())))
                        .collect();
                    serde_json::json!({
                        "scrapePool": t.pool,
                        "type": t.type_name,
                        "labels": labels,
                        "scrapeUrl": t.url,
                        "health": match (&t.last_error, t.last_scrape_ms) {
                            (_, 0) => "unknown",
                            (None, _) => "up",
                            (Some(_), _) => "down",
                        },
                        "lastError": t.last_error.clone().unwrap_or_default(),
                        "lastScrape": if t.last_scrape_ms == 0 { "0001-01-01T00:00:00Z".to_string() } else { format_rfc3339(t.last_scrape_ms) },
                        "lastScrapeDuration": t.last_duration.as_secs_f64(),
                        "lastSize": t.last_size,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json(
        StatusCode::OK,
        &serde_json::json!({"status": "success", "data": rows}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_checked() {
        let q = parse_query("match[]=%7Bjob%3D%22a%22%7D&start=10&end=20").unwrap();
        assert_eq!(
            (q.selectors.len(), q.start_ms, q.end_ms),
            (1, 10_000, 20_000)
        );
        let q = parse_query("").unwrap();
        assert_eq!((q.start_ms, q.end_ms), (i64::MIN, i64::MAX));
        assert_eq!(
            parse_query("start=20&end=10").unwrap_err(),
            "invalid parameter \"end\": end timestamp must not be before start time"
        );
        assert!(
            parse_query("match[]=%7B")
                .unwrap_err()
                .starts_with("invalid parameter \"match[]\"")
        );
    }
}
