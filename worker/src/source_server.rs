//! Reading raw samples from a server with remote read (`/api/v1/read`),
//! asking for `STREAMED_XOR_CHUNKS`: the server sends its XOR chunks as they
//! are stored, in frames of about 1 MiB, and the worker decodes them. An
//! Emberlens server and a Prometheus server answer alike; one that only
//! speaks the older `SAMPLES` answer (a single snappy-compressed
//! `ReadResponse`) is read too.
//!
//! Samples outside the asked range (chunks cover whole stretches) and stale
//! markers are dropped, and series left empty are left out, so the answer
//! equals the matrix of `/api/v1/query_range`'s raw samples.

use emberlens_model::{Labels, is_stale_nan};
use emberlens_protocol::{ErrorBody, ErrorKind, FetchSeries, SeriesData, SeriesSet};
use emberlens_remote::prompb::{Query, ReadRequest, ResponseType};
use emberlens_remote::{codec, convert, frame};

use crate::cancel::CancelToken;
use crate::dispatch::Http;

/// Largest answer accepted (after decompression, per frame or for a whole
/// `SAMPLES` answer).
const MAX_MESSAGE_BYTES: usize = frame::DEFAULT_FRAME_LIMIT_BYTES;

/// The remote-read URL of a server.
pub fn read_url(base_url: &str) -> String {
    format!("{}/api/v1/read", base_url.trim_end_matches('/'))
}

/// The remote-read request body (snappy-compressed protobuf) for `req`.
pub fn read_request(req: &FetchSeries) -> Result<Vec<u8>, ErrorBody> {
    let expr = emberlens_promql::parse(&req.selector).map_err(|e| {
        err(
            ErrorKind::BadRequest,
            format!("invalid series selector {:?}: {e}", req.selector),
        )
    })?;
    let emberlens_promql::ast::Expr::Selector(vs) = expr else {
        return Err(err(
            ErrorKind::BadRequest,
            format!(
                "{:?} is not a series selector (such as up{{job=\"a\"}})",
                req.selector
            ),
        ));
    };
    if vs.offset.is_some() || vs.at.is_some() {
        return Err(err(
            ErrorKind::BadRequest,
            format!(
                "a series selector takes no offset or @ modifier: {:?}",
                req.selector
            ),
        ));
    }
    let rr = ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: req.start_ms,
            end_timestamp_ms: req.end_ms,
            matchers: convert::matchers_to_proto(&vs.matchers),
            hints: None,
        }],
        accepted_response_types: vec![ResponseType::StreamedXorChunks as i32],
    };
    codec::encode_read_request(&rr).map_err(|e| err(ErrorKind::BadRequest, e.to_string()))
}

/// Fetches and decodes the samples `req` asks for; `cancel` aborts the request.
pub async fn fetch_series(
    http: &impl Http,
    req: &FetchSeries,
    cancel: &CancelToken,
) -> Result<SeriesSet, ErrorBody> {
    if req.selector.trim().is_empty() {
        return Err(err(ErrorKind::BadRequest, "the series selector is empty"));
    }
    if req.end_ms < req.start_ms {
        return Err(err(
            ErrorKind::BadRequest,
            "the range ends before it starts",
        ));
    }
    let body = read_request(req)?;
    let url = read_url(&req.base_url);
    // Only Content-Type: the body is snappy-compressed all the same (servers
    // don't check `Content-Encoding`), and any other header would need a
    // CORS allowance that Prometheus's `--web.cors.origin` doesn't give.
    let headers = [("Content-Type", "application/x-protobuf")];
    let resp = http
        .post(&url, &headers, body, cancel)
        .await
        .map_err(|e| err(ErrorKind::Network, format!("fetching {url}: {e}")))?;
    decode(resp.status, &resp.content_type, &resp.body, req)
}

/// Decodes the server's remote-read answer to the query `req`.
pub fn decode(
    status: u16,
    content_type: &str,
    body: &[u8],
    req: &FetchSeries,
) -> Result<SeriesSet, ErrorBody> {
    if !(200..300).contains(&status) {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let kind = if status == 400 {
            ErrorKind::BadRequest
        } else {
            ErrorKind::Network
        };
        return Err(err(
            kind,
            if text.is_empty() || text.starts_with('<') {
                format!("server answered HTTP {status}")
            } else {
                format!("server answered HTTP {status}: {text}")
            },
        ));
    }
    let bad = |e: emberlens_remote::RemoteError| {
        err(
            ErrorKind::BadData,
            format!("server's remote-read answer: {e}"),
        )
    };
    let series = if content_type.starts_with("application/x-streamed-protobuf") {
        let mut reader = frame::FrameReader::new(MAX_MESSAGE_BYTES);
        reader.push(body);
        let mut assembler = convert::SeriesAssembler::new();
        while let Some(f) = reader.next_frame().map_err(bad)? {
            assembler.push(&f).map_err(bad)?;
        }
        reader.finish().map_err(bad)?;
        assembler.finish().into_iter().next().unwrap_or_default()
    } else {
        let resp = codec::decode_read_response(body, MAX_MESSAGE_BYTES).map_err(bad)?;
        resp.results
            .first()
            .map(|r| {
                r.timeseries
                    .iter()
                    .map(convert::timeseries_to_series)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out: Vec<(Labels, SeriesData)> = Vec::with_capacity(series.len());
    for s in series {
        let (mut timestamps_ms, mut values) = (Vec::new(), Vec::new());
        for p in &s.samples {
            if p.t_ms >= req.start_ms && p.t_ms <= req.end_ms && !is_stale_nan(p.v) {
                timestamps_ms.push(p.t_ms);
                values.push(p.v);
            }
        }
        if timestamps_ms.is_empty() {
            continue;
        }
        let labels = s
            .labels
            .iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect();
        out.push((
            s.labels,
            SeriesData {
                labels,
                timestamps_ms,
                values,
            },
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(SeriesSet {
        series: out.into_iter().map(|(_, d)| d).collect(),
    })
}

fn err(kind: ErrorKind, message: impl Into<String>) -> ErrorBody {
    ErrorBody {
        kind,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::HttpBytes;
    use emberlens_model::{Sample, Series, stale_nan};
    use emberlens_remote::prompb::{QueryResult, ReadResponse};
    use futures_executor::block_on;
    use std::cell::RefCell;

    /// Answers every POST with one canned answer and keeps the request body.
    struct Canned {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
        sent: RefCell<Vec<u8>>,
    }
    impl Canned {
        fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
            Canned {
                status,
                content_type,
                body,
                sent: RefCell::default(),
            }
        }
    }
    impl Http for Canned {
        async fn get(&self, _url: &str, _: &CancelToken) -> Result<(u16, String), String> {
            Err("no GET in this test".into())
        }
        async fn post(
            &self,
            _url: &str,
            _headers: &[(&str, &str)],
            body: Vec<u8>,
            _: &CancelToken,
        ) -> Result<HttpBytes, String> {
            *self.sent.borrow_mut() = body;
            Ok(HttpBytes {
                status: self.status,
                content_type: self.content_type.into(),
                body: self.body.clone(),
            })
        }
    }

    fn req(selector: &str) -> FetchSeries {
        FetchSeries {
            base_url: "http://h:1/".into(),
            selector: selector.into(),
            start_ms: 1_000,
            end_ms: 61_500,
        }
    }

    fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> Series {
        Series {
            labels: Labels::from_pairs(labels.iter().copied()),
            samples: samples
                .iter()
                .map(|&(t_ms, v)| Sample { t_ms, v })
                .collect(),
            ..Series::default()
        }
    }

    /// What a server streams for `series` (frames of at most `max` bytes).
    fn streamed(series: &[Series], max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for s in series {
            for f in convert::series_frames(s, 0, max) {
                out.extend(frame::encode_frame(&f));
            }
        }
        out
    }

    #[test]
    fn asks_for_streamed_chunks_with_the_selector_and_range() {
        let http = Canned::new(200, frame::STREAMED_CONTENT_TYPE, Vec::new());
        let set = block_on(fetch_series(
            &http,
            &req(r#"up{job=~"a|b"}"#),
            &CancelToken::default(),
        ))
        .unwrap();
        assert!(set.series.is_empty());
        let sent = codec::decode_read_request(&http.sent.borrow(), 1 << 20).unwrap();
        assert_eq!(
            sent.accepted_response_types,
            [ResponseType::StreamedXorChunks as i32]
        );
        let q = &sent.queries[0];
        assert_eq!((q.start_timestamp_ms, q.end_timestamp_ms), (1_000, 61_500));
        let ms = convert::matchers_from_proto(&q.matchers).unwrap();
        assert_eq!(
            ms.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            [r#"__name__="up""#, r#"job=~"a|b""#]
        );
        assert_eq!(read_url("http://h:1/"), "http://h:1/api/v1/read");
    }

    #[test]
    fn decodes_streamed_chunks_clipped_to_the_range_without_stale_markers() {
        // 300 samples 1 s apart: three chunks, split over frames of ~100 bytes.
        let long: Vec<(i64, f64)> = (0..300).map(|i| (i * 1000, i as f64 * 0.5)).collect();
        let b = series(&[("__name__", "up"), ("job", "b")], &long);
        let a = series(
            &[("__name__", "up"), ("job", "a")],
            &[
                (1_000, 1.0),
                (1_500, f64::INFINITY),
                (2_000, stale_nan()),
                (3_000, f64::NAN),
            ],
        );
        let gone = series(
            &[("__name__", "up"), ("job", "c")],
            &[(500, 1.0), (62_000, 2.0)],
        );
        let http = Canned::new(
            200,
            frame::STREAMED_CONTENT_TYPE,
            streamed(&[b, a, gone], 100),
        );
        let set = block_on(fetch_series(&http, &req("up"), &CancelToken::default())).unwrap();
        assert_eq!(set.series.len(), 2, "job c has no sample in range");
        let a = &set.series[0];
        assert_eq!(a.display_name(), r#"up{job="a"}"#);
        assert_eq!(a.timestamps_ms, [1_000, 1_500, 3_000]);
        assert_eq!(a.values[1], f64::INFINITY);
        assert!(a.values[2].is_nan() && !is_stale_nan(a.values[2]));
        let b = &set.series[1];
        assert_eq!(b.timestamps_ms.len(), 61, "1 s .. 61 s of the 300 samples");
        assert_eq!((b.timestamps_ms[0], b.values[0]), (1_000, 0.5));
        assert_eq!((b.timestamps_ms[60], b.values[60]), (61_000, 30.5));
    }

    #[test]
    fn reads_a_samples_answer_too() {
        let resp = ReadResponse {
            results: vec![QueryResult {
                timeseries: vec![convert::series_to_timeseries(&series(
                    &[("__name__", "up"), ("job", "a")],
                    &[(2_000, 1.0)],
                ))],
            }],
        };
        let body = codec::encode_read_response(&resp).unwrap();
        let http = Canned::new(200, "application/x-protobuf", body);
        let set = block_on(fetch_series(&http, &req("up"), &CancelToken::default())).unwrap();
        assert_eq!(set.sample_count(), 1);
        assert_eq!(
            set.series[0].labels,
            [("__name__".into(), "up".into()), ("job".into(), "a".into())]
        );
    }

    #[test]
    fn errors_are_classified_and_named() {
        let truncated = {
            let mut b = streamed(&[series(&[("__name__", "up")], &[(1_000, 1.0)])], 1 << 20);
            b.truncate(b.len() - 3);
            b
        };
        let cases = [
            (
                Canned::new(400, "text/plain", b"bad matcher\n".to_vec()),
                ErrorKind::BadRequest,
                "server answered HTTP 400: bad matcher",
            ),
            (
                Canned::new(502, "text/html", b"<html>bad gateway</html>".to_vec()),
                ErrorKind::Network,
                "server answered HTTP 502",
            ),
            (
                Canned::new(200, frame::STREAMED_CONTENT_TYPE, truncated),
                ErrorKind::BadData,
                "server's remote-read answer: ",
            ),
            (
                Canned::new(200, "application/x-protobuf", b"not snappy".to_vec()),
                ErrorKind::BadData,
                "server's remote-read answer: ",
            ),
        ];
        for (http, kind, message) in cases {
            let got =
                block_on(fetch_series(&http, &req("up"), &CancelToken::default())).unwrap_err();
            assert_eq!(got.kind, kind, "{}", got.message);
            assert!(got.message.starts_with(message), "{}", got.message);
        }
        for (selector, message) in [
            (" ", "the series selector is empty"),
            ("rate(up[5m])", "is not a series selector"),
            ("up offset 5m", "takes no offset"),
            ("up{", "invalid series selector"),
        ] {
            let http = Canned::new(200, frame::STREAMED_CONTENT_TYPE, Vec::new());
            let got =
                block_on(fetch_series(&http, &req(selector), &CancelToken::default())).unwrap_err();
            assert_eq!(got.kind, ErrorKind::BadRequest);
            assert!(got.message.contains(message), "{selector}: {}", got.message);
        }
    }
}
