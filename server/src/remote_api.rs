//! Prometheus's remote read (`POST /api/v1/read`) and remote write receiver
//! (`POST /api/v1/write`) endpoints.
//!
//! # Remote read
//!
//! The body is a snappy-compressed `ReadRequest` (at most 32 MiB
//! compressed and decoded, Prometheus's `decodeReadLimit`). The response
//! type is the first of `accepted_response_types` the server implements
//! (`SAMPLES` when the list is empty), else 400:
//! - `SAMPLES`: one snappy-compressed `ReadResponse`
//!   (`Content-Type: application/x-protobuf`, `Content-Encoding: snappy`),
//!   with every raw sample in each query's range, staleness markers
//!   included. More than `--storage.remote.read-sample-limit` samples in one
//!   query answers 400 `exceeded sample limit (N)`, as Prometheus.
//! - `STREAMED_XOR_CHUNKS`: `Content-Type: application/x-streamed-protobuf;
//!   proto=prometheus.ChunkedReadResponse`, a stream of frames (see
//!   `emberlens_remote::frame`) built series by series as the body is sent:
//!   XOR chunks of at most 120 samples, frames closed at
//!   `--storage.remote.read-max-bytes-in-frame` (1 MiB). The sample limit
//!   does not apply (as in Prometheus, frames bound the memory).
//!
//! At most `--storage.remote.read-concurrent-limit` (10) reads run at
//! once; more wait their turn. A bad matcher answers 400, a storage error
//! 500, with Prometheus's plain-text bodies. Query hints are ignored.
//! External labels (`global.external_labels`) work as in Prometheus: an
//! equality matcher that an external label satisfies is dropped before the
//! storage is asked, and every answered series gets the external labels it
//! lacks.
//!
//! # Remote write receiver
//!
//! Off unless `--web.enable-remote-write-receiver` (404 with Prometheus's
//! message otherwise). The body is a snappy-compressed `WriteRequest`;
//! every float sample is appended through the store's `Appender` (and so
//! reaches this server's own `remote_write` queues too). Series without a
//! metric name are skipped with a warning. An out-of-order or duplicate
//! sample does not stop the request: the rest is appended and committed,
//! and the answer is 400 with one line per refused series in Prometheus's
//! wording (`out of order sample for series {…}`), so the sender does not
//! retry — Prometheus 3's receiver behaves so; 2.42's rolled the whole
//! request back instead. Success is 204. Native histograms and exemplars
//! in the request are ignored.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use emberlens_model::{Appendable, Appender, Labels, Series, Storage, StorageError};
use emberlens_remote::codec::{
    DEFAULT_READ_REQUEST_LIMIT_BYTES, DEFAULT_WRITE_REQUEST_LIMIT_BYTES, decode_read_request,
    decode_write_request, encode_read_response,
};
use emberlens_remote::convert::{
    labels_from_proto, matchers_from_proto, series_frames, series_to_timeseries,
};
use emberlens_remote::frame::{STREAMED_CONTENT_TYPE, encode_frame};
use emberlens_remote::prompb::{QueryResult, ReadResponse, ResponseType, WriteRequest};

use crate::remote_write::TeeStore;
use crate::web::AppState;

/// Prometheus's `--storage.remote.read-sample-limit` default.
pub const DEFAULT_READ_SAMPLE_LIMIT: usize = 50_000_000;
/// Prometheus's `--storage.remote.read-concurrent-limit` default.
pub const DEFAULT_READ_CONCURRENT_LIMIT: usize = 10;

/// Settings and limits of the remote endpoints.
#[derive(Debug)]
pub struct RemoteApi {
    /// `--web.enable-remote-write-receiver`.
    pub write_receiver: bool,
    /// Most samples in one `SAMPLES` query answer, 0 for no limit.
    pub read_sample_limit: usize,
    /// Frame budget of streamed answers.
    pub read_max_bytes_in_frame: usize,
    /// Concurrent reads.
    read_slots: tokio::sync::Semaphore,
}

impl Default for RemoteApi {
    fn default() -> Self {
        RemoteApi::new(
            false,
            DEFAULT_READ_SAMPLE_LIMIT,
            DEFAULT_READ_CONCURRENT_LIMIT,
            emberlens_remote::frame::DEFAULT_MAX_BYTES_IN_FRAME,
        )
    }
}

impl RemoteApi {
    /// Settings; a concurrency limit of 0 means unlimited.
    pub fn new(
        write_receiver: bool,
        read_sample_limit: usize,
        read_concurrent_limit: usize,
        read_max_bytes_in_frame: usize,
    ) -> Self {
        let slots = if read_concurrent_limit == 0 {
            tokio::sync::Semaphore::MAX_PERMITS
        } else {
            read_concurrent_limit
        };
        RemoteApi {
            write_receiver,
            read_sample_limit,
            read_max_bytes_in_frame,
            read_slots: tokio::sync::Semaphore::new(slots),
        }
    }
}

/// Prometheus's `http.Error`: a plain-text body ending in a newline.
fn plain_error(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        format!("{msg}\n"),
    )
        .into_response()
}

/// `POST /api/v1/read`.
pub async fn read_handler(State(state): State<AppState>, body: Bytes) -> Response {
    let remote = state.remote.clone();
    let Ok(_permit) = remote.read_slots.acquire().await else {
        return plain_error(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down");
    };
    let req = match decode_read_request(&body, DEFAULT_READ_REQUEST_LIMIT_BYTES) {
        Ok(r) => r,
        Err(e) => return plain_error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let response_type = if req.accepted_response_types.is_empty() {
        Some(ResponseType::Samples)
    } else {
        req.accepted_response_types
            .iter()
            .find_map(|&t| ResponseType::try_from(t).ok())
    };
    let Some(response_type) = response_type else {
        return plain_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "server does not support any of the requested response types: {:?}; supported: [SAMPLES STREAMED_XOR_CHUNKS]",
                req.accepted_response_types
            ),
        );
    };
    let external = state.scrape.external_labels();
    let mut queries = Vec::with_capacity(req.queries.len());
    for q in &req.queries {
        let mut q = q.clone();
        q.matchers.retain(|m| {
            let ext = external.get(&m.name);
            !(m.r#type == emberlens_remote::prompb::MatcherType::Eq as i32
                && !ext.is_empty()
                && ext == m.value)
        });
        match matchers_from_proto(&q.matchers) {
            Ok(m) => queries.push((m, q.start_timestamp_ms, q.end_timestamp_ms)),
            Err(e) => return plain_error(StatusCode::BAD_REQUEST, &e.to_string()),
        }
    }
    let storage = state.queryable();
    let selected = tokio::task::spawn_blocking(move || {
        queries
            .iter()
            .map(|(m, start, end)| storage.select(m, *start, *end))
            .collect::<Result<Vec<Vec<Series>>, StorageError>>()
    })
    .await;
    let mut results = match selected {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return plain_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => return plain_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    if !external.is_empty() {
        for s in results.iter_mut().flatten() {
            s.labels = crate::remote_write::with_external(&s.labels, &external);
        }
    }
    let kind = match response_type {
        ResponseType::Samples => "samples",
        ResponseType::StreamedXorChunks => "streamed_xor_chunks",
    };
    state
        .metrics
        .remote_read_queries
        .get_or_create(&crate::metrics::ReadLabels {
            response_type: kind.to_string(),
        })
        .inc_by(results.len() as u64);
    match response_type {
        ResponseType::Samples => samples_response(&results, remote.read_sample_limit),
        ResponseType::StreamedXorChunks => {
            streamed_response(results, remote.read_max_bytes_in_frame)
        }
    }
}

fn samples_response(results: &[Vec<Series>], limit: usize) -> Response {
    let mut resp = ReadResponse {
        results: Vec::with_capacity(results.len()),
    };
    for series in results {
        let mut n = 0usize;
        let mut out = QueryResult::default();
        for s in series {
            n += s.samples.len();
            if limit > 0 && n > limit {
                return plain_error(
                    StatusCode::BAD_REQUEST,
                    &format!("exceeded sample limit ({limit})"),
                );
            }
            if !s.samples.is_empty() {
                out.timeseries.push(series_to_timeseries(s));
            }
        }
        resp.results.push(out);
    }
    match encode_read_response(&resp) {
        Ok(body) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/x-protobuf"),
                (header::CONTENT_ENCODING, "snappy"),
            ],
            body,
        )
            .into_response(),
        Err(e) => plain_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// Frames are encoded lazily, one series per body chunk, as the client reads.
fn streamed_response(results: Vec<Vec<Series>>, max_bytes_in_frame: usize) -> Response {
    let chunks = results
        .into_iter()
        .enumerate()
        .flat_map(|(qi, series)| series.into_iter().map(move |s| (qi, s)))
        .filter_map(move |(qi, s)| {
            let frames = series_frames(&s, qi as i64, max_bytes_in_frame);
            if frames.is_empty() {
                return None;
            }
            let mut buf = Vec::new();
            for f in &frames {
                buf.extend(encode_frame(f));
            }
            Some(Ok::<_, Infallible>(Bytes::from(buf)))
        });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, STREAMED_CONTENT_TYPE)],
        Body::from_stream(futures_util::stream::iter(chunks)),
    )
        .into_response()
}

/// `POST /api/v1/write`.
pub async fn write_handler(State(state): State<AppState>, body: Bytes) -> Response {
    if !state.remote.write_receiver {
        return plain_error(
            StatusCode::NOT_FOUND,
            "remote write receiver needs to be enabled with --web.enable-remote-write-receiver",
        );
    }
    let req = match decode_write_request(&body, DEFAULT_WRITE_REQUEST_LIMIT_BYTES) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "error decoding remote write request");
            return plain_error(StatusCode::BAD_REQUEST, &e.to_string());
        }
    };
    let store = TeeStore::new(state.store.clone(), state.scrape.remote_write());
    let done = tokio::task::spawn_blocking(move || append_write_request(&store, &req)).await;
    if let Ok(Ok((n, _))) = &done {
        state.metrics.remote_write_received.inc_by(*n as u64);
    }
    let done = done.map(|r| r.map(|(_, refused)| refused));
    match done {
        Ok(Ok(refused)) if refused.is_empty() => StatusCode::NO_CONTENT.into_response(),
        Ok(Ok(refused)) => plain_error(StatusCode::BAD_REQUEST, &refused.join("\n")),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "error appending remote write");
            plain_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
        Err(e) => plain_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// Appends every sample of `req`; returns the number of samples stored and
/// the messages of the refused (out-of-order, duplicate) series, one per
/// series. Other storage errors abort the request.
pub fn append_write_request<S: Appendable>(
    store: &S,
    req: &WriteRequest,
) -> Result<(usize, Vec<String>), StorageError> {
    let mut app = store.appender();
    let mut refused = Vec::new();
    let mut invalid = 0usize;
    for ts in &req.timeseries {
        let labels: Labels = labels_from_proto(&ts.labels);
        if labels.metric_name().is_empty() {
            invalid += 1;
            continue;
        }
        let mut first_refusal: Option<&'static str> = None;
        for s in &ts.samples {
            match app.append(&labels, s.timestamp, s.value) {
                Ok(()) => {}
                Err(StorageError::OutOfOrder { .. }) => {
                    first_refusal.get_or_insert("out of order sample");
                }
                Err(StorageError::DuplicateTimestamp { .. }) => {
                    first_refusal.get_or_insert("duplicate sample for timestamp");
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(what) = first_refusal {
            let series = emberlens_model::labels_go_string(&labels);
            tracing::error!(series = %series, reason = what, "out of order sample from remote write");
            refused.push(format!("{what} for series {series}"));
        }
    }
    if invalid > 0 {
        tracing::warn!(
            series = invalid,
            "invalid metric names or labels in remote write; skipped"
        );
    }
    let n = app.commit()?;
    Ok((n, refused))
}
