//! Profiles from an Emberlens server: the list of stored profiles and
//! profiling targets (`/api/v1/profiles`, `/api/v1/profiles/targets`), and
//! the bytes of one profile or of a merge (`/api/v1/profiles/<id>`,
//! `/api/v1/profiles/merge?…`), fetched through the worker's [`Http`].
//!
//! The JSON is decoded here, in the worker, into the protocol's
//! [`ProfileList`]; the server's shapes are described in
//! `server/src/profiles/api.rs`. Fields this module does not use are
//! ignored, and a missing optional field reads as empty, so a newer server
//! stays readable.

use emberlens_protocol::{
    ErrorBody, ErrorKind, ListProfiles, ProfileList, ProfileTarget, StoredProfile,
};
use serde::Deserialize;

use crate::cancel::CancelToken;
use crate::dispatch::Http;

/// Prometheus's JSON envelope.
#[derive(Deserialize)]
struct Envelope<T> {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default = "Option::default")]
    data: Option<T>,
}

#[derive(Deserialize)]
struct RawProfile {
    id: String,
    #[serde(rename = "type", default)]
    type_name: String,
    #[serde(default)]
    labels: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    timestamp: f64,
    #[serde(default)]
    size: u64,
}

#[derive(Deserialize)]
struct RawTarget {
    #[serde(rename = "type", default)]
    type_name: String,
    #[serde(default)]
    labels: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    health: String,
    #[serde(rename = "lastError", default)]
    last_error: String,
}

fn bad_data(message: String) -> ErrorBody {
    ErrorBody {
        kind: ErrorKind::BadData,
        message,
    }
}

/// Labels as sorted pairs; non-string values are left out.
fn labels(m: &serde_json::Map<String, serde_json::Value>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = m
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    v.sort();
    v
}

/// Decodes an answer of `what` (for messages): the data, or the server's error.
fn decode<T: for<'de> Deserialize<'de>>(
    what: &str,
    status: u16,
    text: &str,
) -> Result<T, ErrorBody> {
    let env: Envelope<T> = serde_json::from_str(text).map_err(|e| {
        bad_data(format!(
            "{what}: the server's answer (HTTP {status}) is not Prometheus JSON: {e}"
        ))
    })?;
    if env.status != "success" {
        return Err(ErrorBody {
            kind: if status == 400 {
                ErrorKind::BadRequest
            } else {
                ErrorKind::Network
            },
            message: format!(
                "{what}: {}",
                env.error.unwrap_or_else(|| format!("HTTP {status}"))
            ),
        });
    }
    env.data
        .ok_or_else(|| bad_data(format!("{what}: success without data")))
}

/// Decodes `/api/v1/profiles`.
pub fn decode_list(status: u16, text: &str) -> Result<Vec<StoredProfile>, ErrorBody> {
    let raw: Vec<RawProfile> = decode("listing the stored profiles", status, text)?;
    Ok(raw
        .into_iter()
        .map(|p| StoredProfile {
            id: p.id,
            type_name: p.type_name,
            labels: labels(&p.labels),
            time_ms: (p.timestamp * 1000.0).round() as i64,
            size: p.size,
        })
        .collect())
}

/// Decodes `/api/v1/profiles/targets`.
pub fn decode_targets(status: u16, text: &str) -> Result<Vec<ProfileTarget>, ErrorBody> {
    let raw: Vec<RawTarget> = decode("listing the profiling targets", status, text)?;
    let mut targets: Vec<ProfileTarget> = raw
        .into_iter()
        .map(|t| ProfileTarget {
            type_name: t.type_name,
            labels: labels(&t.labels),
            health: t.health,
            last_error: t.last_error,
        })
        .collect();
    targets.sort_by(|a, b| (&a.labels, &a.type_name).cmp(&(&b.labels, &b.type_name)));
    Ok(targets)
}

/// The list URL of a request: `match[]` only when a selector is given.
pub fn list_url(req: &ListProfiles) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if !req.selector.trim().is_empty() {
        q.append_pair("match[]", &req.selector);
    }
    q.append_pair("start", &format_secs(req.start_ms));
    q.append_pair("end", &format_secs(req.end_ms));
    format!("{}/api/v1/profiles?{}", req.base_url, q.finish())
}

fn format_secs(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let a = ms.unsigned_abs();
    format!("{sign}{}.{:03}", a / 1000, a % 1000)
}

fn network(what: &str, e: String) -> ErrorBody {
    ErrorBody {
        kind: ErrorKind::Network,
        message: format!("{what}: {e}"),
    }
}

/// Fetches the list and the targets.
pub async fn list(
    http: &impl Http,
    req: &ListProfiles,
    cancel: &CancelToken,
) -> Result<ProfileList, ErrorBody> {
    let what = "listing the stored profiles";
    let (status, text) = http
        .get(&list_url(req), cancel)
        .await
        .map_err(|e| network(what, e))?;
    let profiles = decode_list(status, &text)?;
    let what = "listing the profiling targets";
    let (status, text) = http
        .get(&format!("{}/api/v1/profiles/targets", req.base_url), cancel)
        .await
        .map_err(|e| network(what, e))?;
    let targets = decode_targets(status, &text)?;
    Ok(ProfileList { profiles, targets })
}

/// Fetches a profile's bytes from `url`; an error status is an error
/// carrying the server's message.
pub async fn fetch_profile(
    http: &impl Http,
    name: &str,
    url: &str,
    cancel: &CancelToken,
) -> Result<Vec<u8>, ErrorBody> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ErrorBody {
            kind: ErrorKind::BadRequest,
            message: format!("{name}: profile URL {url:?} is not http(s)"),
        });
    }
    let r = http
        .get_bytes(url, cancel)
        .await
        .map_err(|e| network(name, e))?;
    if r.status != 200 {
        let text = String::from_utf8_lossy(&r.body);
        let message = serde_json::from_str::<Envelope<serde_json::Value>>(&text)
            .ok()
            .and_then(|e| e.error)
            .unwrap_or_else(|| format!("HTTP {}", r.status));
        return Err(ErrorBody {
            kind: if r.status == 400 {
                ErrorKind::BadRequest
            } else {
                ErrorKind::Network
            },
            message: format!("{name}: {message}"),
        });
    }
    Ok(r.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_list_decodes() {
        let list = decode_list(
            200,
            r#"{"status":"success","data":[{"id":"01J","type":"process_cpu",
            "labels":{"job":"emberlens","__name__":"process_cpu","n":3},"time":"2024-01-01T00:00:00Z",
            "timestamp":1704067200.123,"durationSeconds":1,"sampleTypes":["samples/count"],"size":42,"new":true}]}"#,
        )
        .unwrap();
        assert_eq!(
            list,
            [StoredProfile {
                id: "01J".into(),
                type_name: "process_cpu".into(),
                labels: vec![
                    ("__name__".into(), "process_cpu".into()),
                    ("job".into(), "emberlens".into())
                ],
                time_ms: 1_704_067_200_123,
                size: 42,
            }]
        );
        let targets = decode_targets(
            200,
            r#"{"status":"success","data":[{"scrapePool":"x","type":"process_cpu","labels":{"job":"b"},"health":"down","lastError":"boom"},
            {"type":"memory","labels":{"job":"a"},"health":"up"}]}"#,
        )
        .unwrap();
        assert_eq!(
            targets.iter().map(|t| t.selector()).collect::<Vec<_>>(),
            [
                r#"{__name__="memory", job="a"}"#,
                r#"{__name__="process_cpu", job="b"}"#
            ]
        );
        assert_eq!(targets[1].last_error, "boom");
    }

    #[test]
    fn errors_name_what_failed() {
        let e = decode_list(
            400,
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"match[]\": x"}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert_eq!(
            e.message,
            r#"listing the stored profiles: invalid parameter "match[]": x"#
        );
        let e = decode_targets(200, "<html>").unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadData);
        assert!(
            e.message.starts_with("listing the profiling targets: "),
            "{}",
            e.message
        );
        let e = decode_list(200, r#"{"status":"success"}"#).unwrap_err();
        assert!(e.message.ends_with("success without data"), "{}", e.message);
    }

    #[test]
    fn list_urls_carry_the_selector_only_when_given() {
        let mut req = ListProfiles {
            base_url: "http://h:1".into(),
            selector: " ".into(),
            start_ms: 1_500,
            end_ms: 2_000,
        };
        assert_eq!(
            list_url(&req),
            "http://h:1/api/v1/profiles?start=1.500&end=2.000"
        );
        req.selector = r#"{job="a b"}"#.into();
        assert_eq!(
            list_url(&req),
            "http://h:1/api/v1/profiles?match%5B%5D=%7Bjob%3D%22a+b%22%7D&start=1.500&end=2.000"
        );
    }
}
