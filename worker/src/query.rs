//! PromQL in the worker: [`Request::Query`](emberlens_protocol::Request::Query)
//! answered either by the engine over the locally opened source (files or a
//! snapshot URL: the same engine the server runs) or by a server's
//! `/api/v1/query(_range)` (whose JSON is decoded here), and the opened
//! source's state.
//!
//! Results cross to the app as [`QueryAnswer`] columns; native-histogram
//! samples are counted but not sent (the chart draws floats).

use std::cell::RefCell;
use std::collections::HashMap;

use emberlens_model::{Matcher, Series, Storage, StorageError};
use emberlens_promql::engine::Interrupt;
use emberlens_promql::value::Value;
use emberlens_promql::{EngineOpts, EvalError, QueryResult, instant_query, range_query};
use emberlens_protocol::{
    ErrorBody, ErrorKind, QueryAnswer, QueryRequest, QueryTime, SeriesData, SourceInfo,
};
use emberlens_tsdb::{ByteSource, Db};
use serde::Deserialize;

use crate::cancel::CancelToken;
use crate::dispatch::Http;

/// A source the user opened, behind the storage trait.
pub struct Opened {
    /// The data.
    pub storage: Box<dyn Storage>,
    /// What it holds.
    pub info: SourceInfo,
}

/// The worker's mutable state: at most one opened local source, and the
/// requests waiting on the network (which `Request::Cancel` can stop).
#[derive(Default)]
pub struct WorkerState {
    /// The opened source, if any.
    pub opened: Option<Opened>,
    /// Cancel tokens of the requests now waiting on the network, by id.
    pub waiting: HashMap<u64, CancelToken>,
    /// The opened profile and its flamegraph.
    pub flame: crate::flame_view::FlameState,
}

/// Shared handle to the state (the worker is single-threaded).
pub type State = RefCell<WorkerState>;

/// Describes a database for [`SourceInfo`].
pub fn db_info<S: ByteSource + Clone>(
    db: &Db<S>,
    description: &str,
    errors: Vec<String>,
) -> SourceInfo {
    let blocks = db.blocks();
    SourceInfo {
        description: description.to_string(),
        blocks: blocks.len(),
        min_time_ms: blocks.iter().map(|b| b.meta().min_time).min().unwrap_or(0),
        max_time_ms: blocks.iter().map(|b| b.meta().max_time).max().unwrap_or(0),
        series: blocks.iter().map(|b| b.meta().stats.num_series).sum(),
        errors,
    }
}

/// `&dyn Storage` as a sized [`Storage`] for the generic engine.
struct DynStorage<'a>(&'a dyn Storage);

impl Storage for DynStorage<'_> {
    fn select(&self, m: &[Matcher], min_t: i64, max_t: i64) -> Result<Vec<Series>, StorageError> {
        self.0.select(m, min_t, max_t)
    }
}

fn eval_error(e: EvalError) -> ErrorBody {
    let kind = match e {
        EvalError::Parse(_) => ErrorKind::BadRequest,
        EvalError::Storage(_) => ErrorKind::Source,
        EvalError::Canceled(_) => ErrorKind::Canceled,
        _ => ErrorKind::Execution,
    };
    ErrorBody {
        kind,
        message: e.to_string(),
    }
}

/// Converts an engine result into the protocol's columns.
pub fn answer(r: QueryResult) -> QueryAnswer {
    let mut a = QueryAnswer {
        warnings: r.annotations.warnings.into_iter().collect(),
        infos: r.annotations.infos.into_iter().collect(),
        ..QueryAnswer::default()
    };
    let labels = |l: &emberlens_model::Labels| -> Vec<(String, String)> {
        l.iter()
            .map(|x| (x.name.clone(), x.value.clone()))
            .collect()
    };
    match r.value {
        Value::Scalar { t, v } => {
            a.result_type = "scalar".into();
            a.scalar = Some((t, v));
        }
        Value::String { s, .. } => {
            a.result_type = "string".into();
            a.string = Some(s);
        }
        Value::Vector(v) => {
            a.result_type = "vector".into();
            for s in v {
                if s.h.is_some() {
                    a.histogram_samples_omitted += 1;
                    continue;
                }
                a.series.push(SeriesData {
                    labels: labels(&s.metric),
                    timestamps_ms: vec![s.t],
                    values: vec![s.f],
                });
            }
        }
        Value::Matrix(m) => {
            a.result_type = "matrix".into();
            for s in m {
                a.histogram_samples_omitted += s.hists.len();
                if s.floats.is_empty() {
                    continue;
                }
                a.series.push(SeriesData {
                    labels: labels(&s.metric),
                    timestamps_ms: s.floats.iter().map(|p| p.t).collect(),
                    values: s.floats.iter().map(|p| p.f).collect(),
                });
            }
        }
    }
    a
}

/// Runs `req` over the opened source; `interrupt` (the app's shared cancel
/// flag) is polled at every evaluation step and subquery step.
pub fn run_local(
    state: &State,
    req: &QueryRequest,
    interrupt: Option<Interrupt>,
) -> Result<QueryAnswer, ErrorBody> {
    let st = state.borrow();
    let Some(opened) = &st.opened else {
        return Err(ErrorBody {
            kind: ErrorKind::NoSource,
            message: "no files or snapshot are open; open one first, or query a server".into(),
        });
    };
    let storage = DynStorage(opened.storage.as_ref());
    let opts = EngineOpts {
        interrupt,
        ..EngineOpts::default()
    };
    let r = match req.time {
        QueryTime::Instant { time_ms } => instant_query(&storage, &opts, &req.expr, time_ms),
        QueryTime::Range {
            start_ms,
            end_ms,
            step_ms,
        } => range_query(&storage, &opts, &req.expr, start_ms, end_ms, step_ms),
    };
    r.map(answer).map_err(eval_error)
}

#[derive(Deserialize)]
struct ApiBody {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    infos: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiData {
    result_type: String,
    result: serde_json::Value,
}

fn secs_ms(s: &str) -> String {
    let ms = s.parse::<i64>().unwrap_or(0);
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn parse_value(v: &serde_json::Value) -> Option<(i64, f64)> {
    let t = v.get(0)?.as_f64()?;
    let s = v.get(1)?.as_str()?;
    let f = match s {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => s.parse().ok()?,
    };
    Some(((t * 1000.0).round() as i64, f))
}

fn bad_data(msg: impl Into<String>) -> ErrorBody {
    ErrorBody {
        kind: ErrorKind::BadData,
        message: msg.into(),
    }
}

/// Decodes a Prometheus query API body.
pub fn decode_api(status: u16, text: &str) -> Result<QueryAnswer, ErrorBody> {
    let body: ApiBody = serde_json::from_str(text).map_err(|e| {
        bad_data(format!(
            "the server's answer (HTTP {status}) is not Prometheus JSON: {e}"
        ))
    })?;
    if body.status != "success" {
        let kind = match body.error_type.as_deref() {
            Some("bad_data") => ErrorKind::BadRequest,
            Some("canceled") => ErrorKind::Canceled,
            _ => ErrorKind::Execution,
        };
        return Err(ErrorBody {
            kind,
            message: body.error.unwrap_or_else(|| format!("HTTP {status}")),
        });
    }
    let data = body.data.ok_or_else(|| bad_data("success without data"))?;
    let mut a = QueryAnswer {
        result_type: data.result_type.clone(),
        warnings: body.warnings,
        infos: body.infos,
        ..QueryAnswer::default()
    };
    let labels = |m: &serde_json::Value| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = m
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    match data.result_type.as_str() {
        "scalar" => a.scalar = parse_value(&data.result),
        "string" => {
            a.string = data
                .result
                .get(1)
                .and_then(|s| s.as_str())
                .map(str::to_string)
        }
        "vector" | "matrix" => {
            for s in data
                .result
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let mut sd = SeriesData {
                    labels: labels(&s["metric"]),
                    ..SeriesData::default()
                };
                let points: Vec<&serde_json::Value> = match s.get("values") {
                    Some(v) => v.as_array().map(|a| a.iter().collect()).unwrap_or_default(),
                    None => s.get("value").into_iter().collect(),
                };
                for p in points {
                    let (t, f) =
                        parse_value(p).ok_or_else(|| bad_data(format!("bad sample {p}")))?;
                    sd.timestamps_ms.push(t);
                    sd.values.push(f);
                }
                a.histogram_samples_omitted += s
                    .get("histograms")
                    .and_then(|h| h.as_array())
                    .map_or(0, Vec::len)
                    + usize::from(s.get("histogram").is_some());
                if !sd.timestamps_ms.is_empty() {
                    a.series.push(sd);
                }
            }
        }
        other => return Err(bad_data(format!("unknown result type {other:?}"))),
    }
    Ok(a)
}

/// The server URL for `req`.
pub fn api_url(base_url: &str, req: &QueryRequest) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("query", &req.expr);
    let path = match req.time {
        QueryTime::Instant { time_ms } => {
            q.append_pair("time", &secs_ms(&time_ms.to_string()));
            "query"
        }
        QueryTime::Range {
            start_ms,
            end_ms,
            step_ms,
        } => {
            q.append_pair("start", &secs_ms(&start_ms.to_string()));
            q.append_pair("end", &secs_ms(&end_ms.to_string()));
            q.append_pair("step", &secs_ms(&step_ms.to_string()));
            "query_range"
        }
    };
    format!(
        "{}/api/v1/{path}?{}",
        base_url.trim_end_matches('/'),
        q.finish()
    )
}

/// Asks a server; `cancel` aborts the request.
pub async fn run_remote(
    http: &impl Http,
    base_url: &str,
    req: &QueryRequest,
    cancel: &CancelToken,
) -> Result<QueryAnswer, ErrorBody> {
    let url = api_url(base_url, req);
    let (status, text) = http.get(&url, cancel).await.map_err(|e| ErrorBody {
        kind: ErrorKind::Network,
        message: format!("{url}: {e}"),
    })?;
    decode_api(status, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_prometheus_answers() {
        let a = decode_api(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"a","__name__":"up"},"value":[1.5,"+Inf"]}]},"warnings":["w"]}"#,
        )
        .unwrap();
        assert_eq!(a.result_type, "vector");
        assert_eq!(
            a.series[0].labels[0],
            ("__name__".to_string(), "up".to_string())
        );
        assert_eq!(a.series[0].timestamps_ms, [1500]);
        assert_eq!(a.series[0].values, [f64::INFINITY]);
        assert_eq!(a.warnings, ["w"]);
        let e = decode_api(400, r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:1: parse error: x"}"#)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(decode_api(502, "<html>").is_err());
    }

    #[test]
    fn builds_api_urls() {
        let req = QueryRequest {
            expr: "rate(x[5m])".into(),
            time: QueryTime::Range {
                start_ms: 1000,
                end_ms: 61_500,
                step_ms: 15_000,
            },
            base_url: None,
        };
        assert_eq!(
            api_url("http://h:9090/", &req),
            "http://h:9090/api/v1/query_range?query=rate%28x%5B5m%5D%29&start=1.000&end=61.500&step=15.000"
        );
    }
}
