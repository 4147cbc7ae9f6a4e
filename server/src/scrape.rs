//! Scraping: fetch a target's exposition, parse it, append it with the
//! synthetic series Prometheus adds.
//!
//! One loop per target; loops never wait on one another. A failed scrape
//! (connection refused, timeout, bad status, body too large, a malformed line)
//! appends `up 0` and the other synthetic series, logs the reason once, keeps
//! it as the target's last error, and the loop carries on.
//!
//! Label handling follows Prometheus with `honor_labels: false`: the target's
//! `job` and `instance` win, and an exposed label of the same name is kept as
//! `exported_<name>`. Explicit timestamps in the exposition are honoured.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use emberlens_model::{Appendable, Appender, Labels, METRIC_NAME};
use emberlens_textparse::Entry;

use crate::metrics::{JobLabels, Metrics};

/// The `Accept` header Prometheus sends for the text formats.
const ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1";

/// Bodies larger than this fail the scrape instead of exhausting memory.
const DEFAULT_BODY_LIMIT_BYTES: usize = 64 << 20;

/// One thing to scrape.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// `job` label.
    pub job: String,
    /// `instance` label, usually `host:port`.
    pub instance: String,
    /// Full URL of the metrics endpoint.
    pub url: String,
    /// Time between scrapes.
    pub interval: Duration,
    /// Give up on a scrape after this long.
    pub timeout: Duration,
}

/// What one scrape did.
#[derive(Clone, Debug, PartialEq)]
pub struct ScrapeReport {
    /// Whether the scrape succeeded (`up`).
    pub up: bool,
    /// Samples in the exposition.
    pub samples_scraped: usize,
    /// Samples committed, the synthetic series included.
    pub samples_appended: usize,
    /// Wall time of the fetch and parse.
    pub duration: Duration,
    /// Why it failed.
    pub error: Option<String>,
}

/// The latest report per target, for logs and (later) `/api/v1/targets`.
pub type TargetHealth = Arc<RwLock<HashMap<String, (i64, ScrapeReport)>>>;

/// Why a scrape failed before anything was appended.
#[derive(Debug, thiserror::Error)]
enum ScrapeError {
    #[error("fetching {url}: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("server returned HTTP status {0}")]
    Status(reqwest::StatusCode),
    #[error("body size limit exceeded ({0} bytes)")]
    BodyTooLarge(usize),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("parsing the exposition: {0}")]
    Parse(#[from] emberlens_textparse::ParseError),
    #[error("body is not UTF-8 at byte {0}")]
    NotUtf8(usize),
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Scrapes `target` once at `t_ms` and appends the result to `store`.
pub async fn scrape_once<S: Appendable>(
    client: &reqwest::Client,
    target: &Target,
    store: &S,
    metrics: &Metrics,
    t_ms: i64,
) -> ScrapeReport {
    let started = Instant::now();
    let fetched = tokio::time::timeout(target.timeout, fetch(client, target))
        .await
        .unwrap_or(Err(ScrapeError::Timeout(target.timeout)));
    let parsed = fetched.and_then(|body| Ok(emberlens_textparse::parse(&body)?));
    let duration = started.elapsed();
    metrics
        .scrape_duration
        .get_or_create(&JobLabels {
            job: target.job.clone(),
        })
        .observe(duration.as_secs_f64());

    let mut app = store.appender();
    let mut rejected = 0usize;
    let (up, samples_scraped, error) = match parsed {
        Ok(entries) => {
            let mut n = 0;
            for entry in entries {
                let Entry::Sample(s) = entry else { continue };
                n += 1;
                let labels = target_labels(target, &s.labels);
                if app
                    .append(&labels, s.timestamp_ms.unwrap_or(t_ms), s.value)
                    .is_err()
                {
                    rejected += 1;
                }
            }
            (true, n, None)
        }
        Err(e) => (false, 0, Some(e.to_string())),
    };
    let synthetic = [
        ("up", if up { 1.0 } else { 0.0 }),
        ("scrape_duration_seconds", duration.as_secs_f64()),
        ("scrape_samples_scraped", samples_scraped as f64),
        (
            "scrape_samples_post_metric_relabeling",
            samples_scraped as f64,
        ),
    ];
    for (name, v) in synthetic {
        let labels = Labels::from_pairs([
            (METRIC_NAME, name),
            ("job", &target.job),
            ("instance", &target.instance),
        ]);
        if app.append(&labels, t_ms, v).is_err() {
            rejected += 1;
        }
    }
    let samples_appended = app.commit().unwrap_or(0);
    metrics.samples_appended.inc_by(samples_appended as u64);
    if rejected > 0 {
        tracing::debug!(target = %target.url, rejected, "samples rejected by storage");
    }
    ScrapeReport {
        up,
        samples_scraped,
        samples_appended,
        duration,
        error,
    }
}

async fn fetch(client: &reqwest::Client, target: &Target) -> Result<String, ScrapeError> {
    let http = |source| ScrapeError::Http {
        url: target.url.clone(),
        source,
    };
    let mut resp = client
        .get(&target.url)
        .header(reqwest::header::ACCEPT, ACCEPT)
        .header(
            "X-Prometheus-Scrape-Timeout-Seconds",
            target.timeout.as_secs_f64().to_string(),
        )
        .send()
        .await
        .map_err(http)?;
    if !resp.status().is_success() {
        return Err(ScrapeError::Status(resp.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(http)? {
        if body.len() + chunk.len() > DEFAULT_BODY_LIMIT_BYTES {
            return Err(ScrapeError::BodyTooLarge(DEFAULT_BODY_LIMIT_BYTES));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|e| ScrapeError::NotUtf8(e.utf8_error().valid_up_to()))
}

/// The exposed labels with the target's `job` and `instance` applied
/// (`honor_labels: false`): clashing exposed labels become `exported_*`.
fn target_labels(target: &Target, exposed: &Labels) -> Labels {
    let mut out = exposed.clone();
    for (name, value) in [("job", &target.job), ("instance", &target.instance)] {
        let clash = exposed.get(name);
        if !clash.is_empty() {
            out = out.with(&format!("exported_{name}"), clash);
        }
        out = out.with(name, value);
    }
    out
}

/// Runs the scrape loop for `target` until the task is dropped: one scrape at
/// start, then one per interval. A slow scrape delays the next tick instead of
/// bunching scrapes up.
pub async fn run_loop<S: Appendable + Send + Sync + 'static>(
    client: reqwest::Client,
    target: Target,
    store: Arc<S>,
    metrics: Arc<Metrics>,
    health: TargetHealth,
) {
    let mut ticker = tokio::time::interval(target.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error: Option<String> = None;
    loop {
        ticker.tick().await;
        let t_ms = now_ms();
        let report = scrape_once(&client, &target, store.as_ref(), &metrics, t_ms).await;
        // Log a failure when it starts or changes, not on every tick.
        if report.error != last_error {
            match &report.error {
                Some(e) => tracing::warn!(target = %target.url, error = %e, "scrape failed"),
                None => tracing::info!(target = %target.url, "scrape recovered"),
            }
            last_error.clone_from(&report.error);
        }
        if let Ok(mut h) = health.write() {
            h.insert(target.url.clone(), (t_ms, report));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_labels_win_and_clashes_are_exported() {
        let target = Target {
            job: "node".into(),
            instance: "h:9100".into(),
            url: "http://h:9100/metrics".into(),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
        };
        let exposed = Labels::from_pairs([("__name__", "m"), ("job", "inner"), ("a", "1")]);
        assert_eq!(
            target_labels(&target, &exposed).to_string(),
            r#"m{a="1", exported_job="inner", instance="h:9100", job="node"}"#
        );
    }
}
