//! Reading raw samples from an Emberlens server's `/api/v1/raw`.
//!
//! The answer has the shape of Prometheus's matrix result:
//! `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{..},"values":[[1.5,"1"],..]}]}}`
//! with values as strings (`"NaN"`, `"+Inf"`) and timestamps as float seconds.

use std::collections::BTreeMap;

use emberlens_protocol::{ErrorBody, ErrorKind, FetchSeries, SeriesData, SeriesSet};
use serde::Deserialize;

use crate::cancel::CancelToken;
use crate::dispatch::Http;

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<MatrixData>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MatrixData {
    result_type: String,
    result: Vec<MatrixSeries>,
}

#[derive(Deserialize)]
struct MatrixSeries {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

/// The URL of the raw-samples query for `req`.
pub fn raw_url(req: &FetchSeries) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("match[]", &req.selector)
        .append_pair("start", &ms_to_secs(req.start_ms))
        .append_pair("end", &ms_to_secs(req.end_ms))
        .finish();
    format!("{}/api/v1/raw?{query}", req.base_url.trim_end_matches('/'))
}

fn ms_to_secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
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
    let url = raw_url(req);
    let (status, body) = http
        .get(&url, cancel)
        .await
        .map_err(|e| err(ErrorKind::Network, format!("fetching {url}: {e}")))?;
    decode(status, &body)
}

/// Decodes the server's answer; a Prometheus error body becomes its message.
pub fn decode(status: u16, body: &str) -> Result<SeriesSet, ErrorBody> {
    let parsed: ApiResponse = serde_json::from_str(body).map_err(|e| {
        if (200..300).contains(&status) {
            err(
                ErrorKind::BadData,
                format!("server answer is not the expected JSON: {e}"),
            )
        } else {
            err(ErrorKind::Network, format!("server answered HTTP {status}"))
        }
    })?;
    if parsed.status != "success" {
        let kind = if status == 400 {
            ErrorKind::BadRequest
        } else {
            ErrorKind::Network
        };
        return Err(err(
            kind,
            parsed
                .error
                .unwrap_or_else(|| format!("server answered HTTP {status}")),
        ));
    }
    let data = parsed
        .data
        .ok_or_else(|| err(ErrorKind::BadData, "server answer has no data"))?;
    if data.result_type != "matrix" {
        return Err(err(
            ErrorKind::BadData,
            format!("expected a matrix, got {:?}", data.result_type),
        ));
    }
    let mut series = Vec::with_capacity(data.result.len());
    for (i, s) in data.result.into_iter().enumerate() {
        let mut timestamps_ms = Vec::with_capacity(s.values.len());
        let mut values = Vec::with_capacity(s.values.len());
        for (j, (t, v)) in s.values.into_iter().enumerate() {
            timestamps_ms.push((t * 1000.0).round() as i64);
            values.push(parse_value(&v).ok_or_else(|| {
                err(
                    ErrorKind::BadData,
                    format!("result[{i}].values[{j}]: {v:?} is not a number"),
                )
            })?);
        }
        series.push(SeriesData {
            labels: s.metric.into_iter().collect(),
            timestamps_ms,
            values,
        });
    }
    Ok(SeriesSet { series })
}

fn parse_value(v: &str) -> Option<f64> {
    match v {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => v.parse().ok(),
    }
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
    use futures_executor::block_on;

    struct Canned(u16, &'static str);
    impl Http for Canned {
        async fn get(&self, _url: &str, _: &CancelToken) -> Result<(u16, String), String> {
            Ok((self.0, self.1.to_string()))
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

    #[test]
    fn builds_the_raw_url() {
        assert_eq!(
            raw_url(&req("up{job=\"a\"}")),
            "http://h:1/api/v1/raw?match%5B%5D=up%7Bjob%3D%22a%22%7D&start=1.000&end=61.500"
        );
    }

    #[test]
    fn decodes_a_matrix() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a"},"values":[[1,"1"],[1.500,"+Inf"],[2,"NaN"]]}]}}"#;
        let set = block_on(fetch_series(
            &Canned(200, body),
            &req("up"),
            &CancelToken::default(),
        ))
        .unwrap();
        assert_eq!(set.sample_count(), 3);
        let s = &set.series[0];
        assert_eq!(s.display_name(), r#"up{job="a"}"#);
        assert_eq!(s.timestamps_ms, [1_000, 1_500, 2_000]);
        assert_eq!(s.values[1], f64::INFINITY);
        assert!(s.values[2].is_nan());
    }

    #[test]
    fn errors_are_classified_and_named() {
        let cases = [
            (
                Canned(
                    400,
                    r#"{"status":"error","errorType":"bad_data","error":"bad series selector at 3"}"#,
                ),
                ErrorKind::BadRequest,
                "bad series selector at 3",
            ),
            (
                Canned(502, "<html>bad gateway</html>"),
                ErrorKind::Network,
                "server answered HTTP 502",
            ),
            (
                Canned(200, "{"),
                ErrorKind::BadData,
                "server answer is not the expected JSON: EOF while parsing an object at line 1 column 1",
            ),
            (
                Canned(
                    200,
                    r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}}"#,
                ),
                ErrorKind::BadData,
                r#"result[0].values[0]: "x" is not a number"#,
            ),
        ];
        for (http, kind, message) in cases {
            let got =
                block_on(fetch_series(&http, &req("up"), &CancelToken::default())).unwrap_err();
            assert_eq!((got.kind, got.message.as_str()), (kind, message));
        }
        let empty = block_on(fetch_series(
            &Canned(200, ""),
            &req(" "),
            &CancelToken::default(),
        ))
        .unwrap_err();
        assert_eq!(empty.kind, ErrorKind::BadRequest);
    }
}
