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

/// Appends `s` as a JSON string, as [`json_str`] writes it.
fn push_json_str(out: &mut String, s: &str) {
    // Printable ASCII without quotes or backslashes needs no escaping.
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&json_str(s));
    }
}

fn push_labels(out: &mut String, l: &Labels) {
    out.push('{');
    for (i, lb) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, &lb.name);
        out.push(':');
        push_json_str(out, &lb.value);
    }
    out.push('}');
}

/// Appends the decimal digits of `n` (the formatter's machinery costs more
/// than the digits, and answers hold hundreds of thousands of numbers).
fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(buf[i..].iter().map(|&b| b as char));
}

/// [`format_timestamp_secs`], appended.
fn push_ts(out: &mut String, t_ms: i64) {
    if t_ms < 0 {
        out.push('-');
    }
    let abs = t_ms.unsigned_abs();
    let (secs, frac) = (abs / 1000, abs % 1000);
    push_u64(out, secs);
    if frac != 0 {
        out.push('.');
        out.push((b'0' + (frac / 100) as u8) as char);
        out.push((b'0' + (frac / 10 % 10) as u8) as char);
        out.push((b'0' + (frac % 10) as u8) as char);
    }
}

/// `[t,"v"]` with [`format_value`]'s value, appended.
fn push_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    push_ts(out, t);
    out.push_str(",\"");
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v.fract() == 0.0 && v.abs() < 1e15 && v != 0.0 {
        // Whole numbers (counters) print as integers in both forms.
        if v < 0.0 {
            out.push('-');
        }
        push_u64(out, v.abs() as u64);
    } else {
        let _ = write!(out, "{v}");
    }
    out.push_str("\"]");
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
    let mut out = String::new();
    push_point(&mut out, t, v);
    out
}

fn hpoint(t: i64, h: &FloatHistogram) -> String {
    format!("[{},{}]", format_timestamp_secs(t), histogram_json(h))
}

fn push_series(out: &mut String, s: &Series) {
    out.push_str("{\"metric\":");
    push_labels(out, &s.metric);
    if !s.floats.is_empty() {
        out.push_str(",\"values\":[");
        for (i, p) in s.floats.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_point(out, p.t, p.f);
        }
        out.push(']');
    }
    if !s.hists.is_empty() {
        let pts: Vec<String> = s.hists.iter().map(|p| hpoint(p.t, &p.h)).collect();
        let _ = write!(out, ",\"histograms\":[{}]", pts.join(","));
    }
    out.push('}');
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
            let mut out = String::with_capacity(64 + 128 * vec.len());
            out.push('[');
            for (i, s) in vec.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(&mut out, &s.metric);
                match &s.h {
                    Some(h) => {
                        out.push_str(",\"histogram\":");
                        out.push_str(&hpoint(s.t, h));
                    }
                    None => {
                        out.push_str(",\"value\":");
                        push_point(&mut out, s.t, s.f);
                    }
                }
                out.push('}');
            }
            out.push(']');
            ("vector", out)
        }
        Value::Matrix(m) => {
            let points: usize = m.iter().map(|s| s.floats.len()).sum();
            let mut out = String::with_capacity(64 + 128 * m.len() + 24 * points);
            out.push('[');
            for (i, s) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_series(&mut out, s);
            }
            out.push(']');
            ("matrix", out)
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
    fn fast_number_paths_match_the_model_formatters() {
        for t in [
            0,
            1,
            999,
            1000,
            1500,
            -1500,
            -1,
            1_709_323_207_500,
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = String::new();
            push_ts(&mut out, t);
            assert_eq!(out, format_timestamp_secs(t), "{t}");
        }
        for v in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            42.0,
            1e14,
            999_999_999_999_999.0,
            1e15,
            1e21,
            -3e15,
            0.5,
            -2.25,
            1e-7,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            let mut out = String::new();
            push_point(&mut out, 0, v);
            assert_eq!(out, format!("[0,\"{}\"]", format_value(v)), "{v}");
        }
    }

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
