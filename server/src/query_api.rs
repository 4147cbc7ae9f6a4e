//! `/api/v1/query` and `/api/v1/query_range` (GET with a query string, POST
//! with a form body), answered by the PromQL engine over the server's
//! storage (the data directory's blocks merged with the in-memory store), with Prometheus's parameters, checks, status codes and bodies.
//!
//! Parameters: `query`, `time` (default now) / `start`, `end`, `step` (a
//! float number of seconds or a duration), `timeout` (shortens the default
//! 2 m deadline, as Prometheus's `--query.timeout`). The sample limit is
//! Prometheus's default 50,000,000. Errors as Prometheus: `bad_data` (400) for bad
//! parameters and parse errors (`invalid parameter "query": 1:5: parse
//! error: …`), `execution` (422) for runtime errors, `timeout`/`canceled`
//! (503). Queries run on the blocking pool, never on the async workers.
//! A query whose client goes away (the app cancelled it and aborted the
//! request) stops at its next evaluation step, as Prometheus's does when the
//! request's context is cancelled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use emberlens_model::{parse_duration_ms, parse_time_ms};
use emberlens_promql::api::{error_json, response_json};
use emberlens_promql::{EngineOpts, EvalError, instant_query, range_query};

use crate::scrape::now_ms;
use crate::web::AppState;

/// Prometheus refuses range queries with more points than this per series.
const MAX_POINTS: i64 = 11_000;

/// Prometheus's default `--query.timeout`.
const DEFAULT_TIMEOUT_MS: i64 = 120_000;

/// Engine options with a deadline (the request's `timeout` if shorter than
/// the default, else the default) and a cancel flag: set, the query stops
/// with Prometheus's canceled error.
fn query_opts(timeout_ms: Option<i64>, canceled: Arc<AtomicBool>) -> EngineOpts {
    let ms = timeout_ms
        .filter(|t| *t > 0)
        .map_or(DEFAULT_TIMEOUT_MS, |t| t.min(DEFAULT_TIMEOUT_MS));
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(ms as u64);
    EngineOpts {
        interrupt: Some(Arc::new(move || {
            if canceled.load(Ordering::Relaxed) {
                Some(EvalError::Canceled("expression evaluation".into()))
            } else {
                (std::time::Instant::now() > deadline)
                    .then(|| EvalError::Timeout("expression evaluation".into()))
            }
        })),
        ..EngineOpts::default()
    }
}

/// Sets its flag when dropped. The handler's future holds it: when the
/// client closes the connection, the server drops that future, and the
/// query on the blocking pool sees the flag at its next step.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn bad(msg: String) -> Response {
    json(StatusCode::BAD_REQUEST, error_json("bad_data", &msg))
}

fn status_of(e: &EvalError) -> StatusCode {
    match e {
        EvalError::Parse(_) => StatusCode::BAD_REQUEST,
        EvalError::Timeout(_) | EvalError::Canceled(_) => StatusCode::SERVICE_UNAVAILABLE,
        EvalError::Execution(_) | EvalError::TooManySamples => StatusCode::UNPROCESSABLE_ENTITY,
        EvalError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// All parameters from the query string and, for POST, the form body.
pub(crate) fn params(query: Option<&str>, body: &[u8]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    out.extend(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())));
    out
}

fn get<'a>(p: &'a [(String, String)], key: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Errors are `bad_data` messages.
fn time_param(p: &[(String, String)], key: &str) -> Result<Option<i64>, String> {
    match get(p, key) {
        None | Some("") => Ok(None),
        Some(v) => parse_time_ms(v)
            .map(Some)
            .map_err(|e| format!("invalid parameter {key:?}: {e}")),
    }
}

/// A step or timeout: float seconds or a Prometheus duration.
fn duration_param(p: &[(String, String)], key: &str) -> Result<Option<i64>, String> {
    let Some(v) = get(p, key).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Ok(secs) = v.parse::<f64>() {
        let ms = (secs * 1000.0).round();
        if !ms.is_finite() || ms.abs() > 9.0e18 {
            return Err(format!(
                "invalid parameter {key:?}: cannot parse {v:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(Some(ms as i64));
    }
    parse_duration_ms(v)
        .map(Some)
        .map_err(|_| format!("invalid parameter {key:?}: cannot parse {v:?} to a valid duration"))
}

fn query_param(p: &[(String, String)]) -> String {
    get(p, "query").unwrap_or("").to_string()
}

/// Runs `f` on the blocking pool with the request's engine options; the
/// query is cancelled if this future is dropped before it ends.
async fn run<F>(timeout_ms: Option<i64>, f: F) -> Response
where
    F: FnOnce(EngineOpts) -> Result<emberlens_promql::QueryResult, EvalError> + Send + 'static,
{
    let guard = CancelOnDrop(Arc::default());
    let opts = query_opts(timeout_ms, guard.0.clone());
    let r = tokio::task::spawn_blocking(move || f(opts)).await;
    drop(guard);
    let r = match r {
        Ok(r) => r,
        Err(e) => Err(EvalError::Execution(format!("query panicked: {e}"))),
    };
    let status = match &r {
        Ok(_) => StatusCode::OK,
        Err(e) => status_of(e),
    };
    json(status, response_json(&r))
}

/// `GET|POST /api/v1/query`.
pub async fn query_handler(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    body: axum::body::Bytes,
) -> Response {
    let p = params(q.as_deref(), &body);
    let t = match time_param(&p, "time") {
        Ok(t) => t.unwrap_or_else(now_ms),
        Err(m) => return bad(m),
    };
    let timeout = match duration_param(&p, "timeout") {
        Ok(t) => t,
        Err(m) => return bad(m),
    };
    let expr = query_param(&p);
    let store = state.queryable();
    run(timeout, move |opts| instant_query(&store, &opts, &expr, t)).await
}

/// `GET|POST /api/v1/query_range`.
pub async fn query_range_handler(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    body: axum::body::Bytes,
) -> Response {
    let p = params(q.as_deref(), &body);
    let (start, end) = match (time_param(&p, "start"), time_param(&p, "end")) {
        (Ok(Some(s)), Ok(Some(e))) => (s, e),
        (Err(m), _) | (_, Err(m)) => return bad(m),
        (Ok(None), _) => {
            return bad(
                "invalid parameter \"start\": cannot parse \"\" to a valid timestamp".into(),
            );
        }
        (_, Ok(None)) => {
            return bad("invalid parameter \"end\": cannot parse \"\" to a valid timestamp".into());
        }
    };
    if end < start {
        return bad(
            "invalid parameter \"end\": end timestamp must not be before start time".into(),
        );
    }
    let step = match duration_param(&p, "step") {
        Ok(Some(s)) => s,
        Ok(None) => {
            return bad("invalid parameter \"step\": cannot parse \"\" to a valid duration".into());
        }
        Err(m) => return bad(m),
    };
    if step <= 0 {
        return bad(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"
                .into(),
        );
    }
    if (end - start) / step > MAX_POINTS {
        return bad(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
                .into(),
        );
    }
    let timeout = match duration_param(&p, "timeout") {
        Ok(t) => t,
        Err(m) => return bad(m),
    };
    let expr = query_param(&p);
    let store = state.queryable();
    run(timeout, move |opts| {
        range_query(&store, &opts, &expr, start, end, step)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interrupt(opts: &EngineOpts) -> Option<EvalError> {
        opts.interrupt.as_ref().and_then(|f| f())
    }

    #[test]
    fn a_dropped_request_cancels_its_query_with_prometheus_error() {
        let guard = CancelOnDrop(Arc::default());
        let opts = query_opts(None, guard.0.clone());
        assert_eq!(interrupt(&opts), None);
        drop(guard);
        let e = interrupt(&opts).unwrap();
        assert_eq!(e.to_string(), "query was canceled in expression evaluation");
        assert_eq!(status_of(&e), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response_json(&Err(e)),
            r#"{"status":"error","errorType":"canceled","error":"query was canceled in expression evaluation"}"#
        );
    }

    #[test]
    fn a_passed_deadline_is_a_timeout() {
        let opts = query_opts(Some(1), Arc::default());
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(
            interrupt(&opts).map(|e| e.to_string()),
            Some("query timed out in expression evaluation".to_string())
        );
    }
}
