//! The JSON bodies of Prometheus's `/api/v1/query` and `/api/v1/query_range`,
//! byte for byte: `{"status":"success","data":{"resultType":…,"result":…}}`
//! with `warnings`/`infos` when there are any, or
//! `{"status":"error","errorType":…,"error":…}`.
//!
//! Formatting as Prometheus's jsoniter encoders: timestamps as seconds with
//! up to three decimals (`1.5` is written `1.500`), values as strings in
//! Go's shortest `'f'` form with `NaN`/`+Inf`/`-Inf`, labels in name order,
//! histograms as `{"count","sum","buckets":[[boundaries,"lower","upper","count"]…]}`.

use std::fmt::Write as _;

use emberlens_model::{FloatHistogram, Labels, format_timestamp_secs, format_value};

use crate::engine::QueryResult;
use crate::error::EvalError;
use crate::value::{Series, Value};

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn labels_json(l: &Labels) -> String {
    let parts: Vec<String> = l
        .iter()
        .map(|lb| format!("{}:{}", json_str(&lb.name), json_str(&lb.value)))
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn histogram_json(h: &FloatHistogram) -> String {
    let mut s = format!(
        "{{\"count\":\"{}\",\"sum\":\"{}\"",
        format_value(h.count),
        format_value(h.sum)
    );
    let buckets = h.buckets();
    if !buckets.is_empty() {
        s.push_str(",\"buckets\":[");
        for (i, b) in buckets.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(
                s,
                "[{},\"{}\",\"{}\",\"{}\"]",
                b.boundaries,
                format_value(b.lower),
                format_value(b.upper),
                format_value(b.count)
            );
        }
        s.push(']');
    }
    s.push('}');
    s
}

fn point(t: i64, v: f64) -> String {
    format!("[{},\"{}\"]", format_timestamp_secs(t), format_value(v))
}

fn hpoint(t: i64, h: &FloatHistogram) -> String {
    format!("[{},{}]", format_timestamp_secs(t), histogram_json(h))
}

fn series_json(s: &Series) -> String {
    let mut out = format!("{{\"metric\":{}", labels_json(&s.metric));
    if !s.floats.is_empty() {
        let pts: Vec<String> = s.floats.iter().map(|p| point(p.t, p.f)).collect();
        let _ = write!(out, ",\"values\":[{}]", pts.join(","));
    }
    if !s.hists.is_empty() {
        let pts: Vec<String> = s.hists.iter().map(|p| hpoint(p.t, &p.h)).collect();
        let _ = write!(out, ",\"histograms\":[{}]", pts.join(","));
    }
    out.push('}');
    out
}

/// The `data` object of a successful query.
pub fn data_json(v: &Value) -> String {
    let (kind, result) = match v {
        Value::Scalar { t, v } => ("scalar", point(*t, *v)),
        Value::String { t, s } => (
            "string",
            format!("[{},{}]", format_timestamp_secs(*t), json_str(s)),
        ),
        Value::Vector(vec) => {
            let items: Vec<String> = vec
                .iter()
                .map(|s| match &s.h {
                    Some(h) => format!(
                        "{{\"metric\":{},\"histogram\":{}}}",
                        labels_json(&s.metric),
                        hpoint(s.t, h)
                    ),
                    None => format!(
                        "{{\"metric\":{},\"value\":{}}}",
                        labels_json(&s.metric),
                        point(s.t, s.f)
                    ),
                })
                .collect();
            ("vector", format!("[{}]", items.join(",")))
        }
        Value::Matrix(m) => {
            let items: Vec<String> = m.iter().map(series_json).collect();
            ("matrix", format!("[{}]", items.join(",")))
        }
    };
    format!("{{\"resultType\":\"{kind}\",\"result\":{result}}}")
}

/// Prometheus's `errorType` for an error.
pub fn error_type(e: &EvalError) -> &'static str {
    match e {
        EvalError::Parse(_) => "bad_data",
        EvalError::Timeout(_) => "timeout",
        EvalError::Canceled(_) => "canceled",
        EvalError::Execution(_) | EvalError::TooManySamples | EvalError::Storage(_) => "execution",
    }
}

/// The whole response body for a query's outcome.
pub fn response_json(r: &Result<QueryResult, EvalError>) -> String {
    match r {
        Ok(q) => {
            let mut s = format!("{{\"status\":\"success\",\"data\":{}", data_json(&q.value));
            if !q.annotations.warnings.is_empty() {
                let w: Vec<String> = q.annotations.warnings.iter().map(|x| json_str(x)).collect();
                let _ = write!(s, ",\"warnings\":[{}]", w.join(","));
            }
            if !q.annotations.infos.is_empty() {
                let w: Vec<String> = q.annotations.infos.iter().map(|x| json_str(x)).collect();
                let _ = write!(s, ",\"infos\":[{}]", w.join(","));
            }
            s.push('}');
            s
        }
        Err(EvalError::Parse(msg)) => {
            error_json("bad_data", &format!("invalid parameter \"query\": {msg}"))
        }
        Err(e) => error_json(error_type(e), &e.to_string()),
    }
}

/// `{"status":"error","errorType":…,"error":…}`.
pub fn error_json(kind: &str, msg: &str) -> String {
    format!(
        "{{\"status\":\"error\",\"errorType\":{},\"error\":{}}}",
        json_str(kind),
        json_str(msg)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{FPoint, Sample};

    #[test]
    fn shapes_like_prometheus() {
        let v = Value::Vector(vec![Sample {
            metric: Labels::from_pairs([("__name__", "up"), ("job", "a\"b")]),
            t: 1500,
            f: f64::INFINITY,
            h: None,
            drop_name: false,
        }]);
        assert_eq!(
            data_json(&v),
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a\"b"},"value":[1.500,"+Inf"]}]}"#
        );
        let m = Value::Matrix(vec![Series {
            metric: Labels::default(),
            floats: vec![FPoint { t: 0, f: 1e21 }, FPoint { t: 60_000, f: -0.5 }],
            hists: Vec::new(),
            drop_name: false,
        }]);
        assert_eq!(
            data_json(&m),
            r#"{"resultType":"matrix","result":[{"metric":{},"values":[[0,"1000000000000000000000"],[60,"-0.5"]]}]}"#
        );
        assert_eq!(
            data_json(&Value::Scalar { t: 1000, v: 2.0 }),
            r#"{"resultType":"scalar","result":[1,"2"]}"#
        );
        assert_eq!(
            error_json("bad_data", "1:1: parse error: x"),
            r#"{"status":"error","errorType":"bad_data","error":"1:1: parse error: x"}"#
        );
    }
}
