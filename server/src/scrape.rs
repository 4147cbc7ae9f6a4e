//! Scraping: fetch a target's exposition, parse it, append it with the
//! synthetic series Prometheus adds.
//!
//! One loop per target; loops never wait on one another. A failed scrape
//! (connection refused, timeout, bad status, body too large, a malformed
//! line, more samples than `sample_limit`) appends nothing from the body,
//! `up 0` and the other synthetic series, logs the reason once, keeps it as
//! the target's last error, and the loop carries on.
//!
//! Labels follow Prometheus's `mutateSampleLabels`: with `honor_labels:
//! false` the target's labels win and a clashing exposed label is kept as
//! `exported_<name>`; with `honor_labels: true` the exposed label wins. Then
//! `metric_relabel_configs` run on each sample (a dropped sample is not
//! counted in `scrape_samples_post_metric_relabeling`). Explicit timestamps
//! are used unless `honor_timestamps: false`; otherwise a sample's time is
//! the scrape's start, moved onto the loop's schedule when within 2 ms of it
//! ([`scrape_timestamp`]), so regular scrapes compress to a bit per timestamp.
//!
//! Staleness: a series that was in the previous scrape and is missing from
//! this one (or the scrape failed) gets a staleness marker, and so does every
//! series of a target whose loop is stopped (a reload removed it). Series
//! exposed with their own timestamps are left alone, as in Prometheus.
//!
//! Metadata: the `# TYPE`, `# HELP` and `# UNIT` lines of every scrape whose
//! body parses replace the target's metadata (by metric family name, before
//! relabeling, as Prometheus's scrape cache keeps it; `untyped` is reported
//! as `unknown`); a scrape that fails before parsing keeps the previous one. `/api/v1/metadata`
//! and `/api/v1/targets/metadata` read it from the targets' last reports.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use emberlens_config::{RelabelConfig, Secret};
use emberlens_model::{Appendable, Appender, Labels, METRIC_NAME, stale_nan};
use emberlens_textparse::{Entry, MetricType};
use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::metrics::{JobLabels, Metrics};

/// The `Accept` header Prometheus sends for the text formats.
const ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1";

/// Bodies larger than this fail the scrape when the config sets no
/// `body_size_limit` (Prometheus's 0 means unlimited; we keep a guard).
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 64 << 20;

/// One thing to scrape: a target after relabeling.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// The scrape pool (`job_name` of its scrape config).
    pub pool: String,
    /// The labels before `relabel_configs` (`__address__`, `__scheme__`, …).
    pub discovered: Labels,
    /// The target labels every sample gets (`job`, `instance`, static labels).
    pub labels: Labels,
    /// Full URL of the metrics endpoint, query parameters included.
    pub url: String,
    /// Time between scrapes.
    pub interval: Duration,
    /// Give up on a scrape after this long.
    pub timeout: Duration,
    /// Exposed labels win over target labels.
    pub honor_labels: bool,
    /// Use the timestamps in the exposition.
    pub honor_timestamps: bool,
    /// More samples than this (after metric relabeling) fail the scrape; 0 = no limit.
    pub sample_limit: usize,
    /// Label limits per sample (`label_limit`, `label_name_length_limit`,
    /// `label_value_length_limit`); 0 = no limit. Exceeding one fails the scrape.
    pub label_limits: LabelLimits,
    /// Larger bodies fail the scrape.
    pub body_size_limit: usize,
    /// Rules applied to each scraped sample's labels.
    pub metric_relabel: Vec<RelabelConfig>,
    /// Basic auth or an `Authorization` token.
    pub auth: Option<Auth>,
    /// `follow_redirects` (default true).
    pub follow_redirects: bool,
    /// `proxy_url`: an HTTP proxy for this target's scrapes.
    pub proxy_url: Option<String>,
    /// `tls_config` with its files as read when the target was built;
    /// `None`: the shared client's settings (system roots).
    pub tls: Option<crate::tls::TlsSettings>,
    /// Fail every scrape with this error without fetching (the pool is over
    /// its `target_limit`, as Prometheus's `setForcedError`).
    pub forced_error: Option<String>,
    /// The scrape config's `profiling_config`: pprof endpoints scraped
    /// besides the metrics (see [`crate::profiles::scrape`]).
    pub profiling: Option<emberlens_config::ProfilingConfig>,
}

/// How a target's scrapes authenticate. Files are read at each scrape (as
/// Prometheus does), so a rotated secret is picked up without a reload.
#[derive(Clone, Debug, PartialEq)]
pub enum Auth {
    /// `basic_auth`.
    Basic {
        /// User name.
        username: String,
        /// Inline password.
        password: Option<Secret>,
        /// Or a file holding it (trailing newline trimmed).
        password_file: Option<PathBuf>,
    },
    /// `authorization` / `bearer_token(_file)`: `Authorization: <kind> <credentials>`.
    Token {
        /// `Bearer` unless configured.
        kind: String,
        /// Inline credentials.
        credentials: Option<Secret>,
        /// Or a file holding them.
        credentials_file: Option<PathBuf>,
    },
}

/// An inline secret, or a file's content without its trailing newline.
async fn secret(inline: &Option<Secret>, file: &Option<PathBuf>) -> Result<String, ScrapeError> {
    if let Some(path) = file {
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|e| ScrapeError::SecretFile(path.display().to_string(), e))?;
        return Ok(text.trim_end_matches(['\r', '\n']).to_string());
    }
    Ok(inline.as_ref().map(|s| s.0.clone()).unwrap_or_default())
}

impl Target {
    /// A target with Prometheus's defaults, for `job`/`instance` at `url`.
    pub fn simple(job: &str, instance: &str, url: &str, interval: Duration) -> Target {
        Target {
            pool: job.to_string(),
            discovered: Labels::default(),
            labels: Labels::from_pairs([("instance", instance), ("job", job)]),
            url: url.to_string(),
            interval,
            timeout: interval,
            honor_labels: false,
            honor_timestamps: true,
            sample_limit: 0,
            label_limits: LabelLimits::default(),
            body_size_limit: DEFAULT_BODY_LIMIT_BYTES,
            metric_relabel: Vec::new(),
            auth: None,
            follow_redirects: true,
            proxy_url: None,
            tls: None,
            forced_error: None,
            profiling: None,
        }
    }

    /// The `job` label.
    pub fn job(&self) -> &str {
        self.labels.get("job")
    }
}

/// Per-sample label limits; 0 = no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LabelLimits {
    /// Most labels a sample may have (`__name__` included).
    pub labels: usize,
    /// Longest label name, in bytes.
    pub name_length: usize,
    /// Longest label value, in bytes.
    pub value_length: usize,
}

impl LabelLimits {
    /// Prometheus's `verifyLabelLimits`, with its messages.
    pub fn check(&self, labels: &Labels) -> Result<(), String> {
        let met: String = labels.metric_name().chars().take(50).collect();
        if self.labels > 0 && labels.len() > self.labels {
            return Err(format!(
                "label_limit exceeded (metric: {met}, number of labels: {}, limit: {})",
                labels.len(),
                self.labels
            ));
        }
        for l in labels.iter() {
            let name: String = l.name.chars().take(50).collect();
            if self.name_length > 0 && l.name.len() > self.name_length {
                return Err(format!(
                    "label_name_length_limit exceeded (metric: {met}, label name: {name}, length: {}, limit: {})",
                    l.name.len(),
                    self.name_length
                ));
            }
            if self.value_length > 0 && l.value.len() > self.value_length {
                let value: String = l.value.chars().take(50).collect();
                return Err(format!(
                    "label_value_length_limit exceeded (metric: {met}, label name: {name}, value: {value:?}, length: {}, limit: {})",
                    l.value.len(),
                    self.value_length
                ));
            }
        }
        Ok(())
    }
}

/// The HTTP client for `target`: `shared` unless the target needs its own
/// redirect policy, proxy or TLS settings (then a new one; on a bad proxy
/// URL, `shared` and a warning — the config parser has already checked it).
pub fn client_for(shared: &reqwest::Client, target: &Target) -> reqwest::Client {
    if target.follow_redirects && target.proxy_url.is_none() && target.tls.is_none() {
        return shared.clone();
    }
    let mut b = reqwest::Client::builder().user_agent(USER_AGENT).no_proxy();
    if let Some(tls) = &target.tls {
        b = tls.apply(b);
    }
    if !target.follow_redirects {
        b = b.redirect(reqwest::redirect::Policy::none());
    }
    if let Some(url) = &target.proxy_url {
        match reqwest::Proxy::all(url) {
            Ok(p) => b = b.proxy(p),
            Err(e) => tracing::warn!(proxy = %url, error = %e, "ignoring proxy_url"),
        }
    }
    b.build().unwrap_or_else(|e| {
        tracing::warn!(target = %target.url, error = %e, "building an HTTP client; using the default one");
        shared.clone()
    })
}

/// The `User-Agent` of scrapes.
pub const USER_AGENT: &str = concat!("Emberlens/", env!("CARGO_PKG_VERSION"));

/// What one scrape did.
#[derive(Clone, Debug, PartialEq)]
pub struct ScrapeReport {
    /// Whether the scrape succeeded (`up`).
    pub up: bool,
    /// Samples in the exposition.
    pub samples_scraped: usize,
    /// Samples committed, the synthetic series and staleness markers included.
    pub samples_appended: usize,
    /// Wall time of the fetch and parse.
    pub duration: Duration,
    /// Why it failed.
    pub error: Option<String>,
    /// The target's metadata: this scrape's if it succeeded, else the
    /// previous one's.
    pub metadata: TargetMetadata,
}

/// One metric family's metadata, as Prometheus's API shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetricMetadata {
    /// `counter`, `gauge`, `histogram`, `summary` or `unknown`.
    pub kind: &'static str,
    /// The `# HELP` text.
    pub help: String,
    /// The `# UNIT` (OpenMetrics), else empty.
    pub unit: String,
}

/// A target's metadata by metric family name (shared, cheap to clone).
pub type TargetMetadata = Arc<BTreeMap<String, MetricMetadata>>;

fn type_name(t: MetricType) -> &'static str {
    match t {
        MetricType::Counter => "counter",
        MetricType::Gauge => "gauge",
        MetricType::Histogram => "histogram",
        MetricType::Summary => "summary",
        MetricType::Untyped => "unknown",
    }
}

/// The metadata lines of an exposition, by family name.
fn metadata_of(entries: &[Entry]) -> BTreeMap<String, MetricMetadata> {
    fn entry<'a>(
        out: &'a mut BTreeMap<String, MetricMetadata>,
        metric: &str,
    ) -> &'a mut MetricMetadata {
        out.entry(metric.to_string())
            .or_insert_with(|| MetricMetadata {
                kind: "unknown",
                ..MetricMetadata::default()
            })
    }
    let mut out = BTreeMap::new();
    for e in entries {
        match e {
            Entry::Help { metric, text } => entry(&mut out, metric).help.clone_from(text),
            Entry::Type { metric, kind } => entry(&mut out, metric).kind = type_name(*kind),
            Entry::Unit { metric, unit } => entry(&mut out, metric).unit.clone_from(unit),
            Entry::Sample(_) => {}
        }
    }
    out
}

/// The latest report per target URL, for logs and tests.
pub type TargetHealth = Arc<RwLock<HashMap<String, (i64, ScrapeReport)>>>;

/// The latest report of one target (`None` before its first scrape), for
/// `/api/v1/targets`.
pub type LastScrape = Arc<RwLock<Option<(i64, ScrapeReport)>>>;

/// Why a scrape failed before anything was appended.
#[derive(Debug, thiserror::Error)]
enum ScrapeError {
    #[error("fetching {url}: {}", http_reason(.source))]
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
    #[error("reading {0}: {1}")]
    SecretFile(String, std::io::Error),
    #[error("sample limit exceeded ({0} samples)")]
    SampleLimit(usize),
    #[error("{0}")]
    Forced(String),
    #[error("missing metric name (__name__ label)")]
    NameLabelMandatory,
    #[error("{0}")]
    LabelLimit(String),
}

/// Why a request failed, with the underlying causes (a TLS failure such as
/// `invalid peer certificate: UnknownIssuer` is only in the sources). The
/// "error sending request for url (…)" wrapper is left out: the caller
/// names the URL.
pub(crate) fn http_reason(e: &reqwest::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) if e.is_request() || e.is_connect() => crate::tls::error_chain(cause),
        _ => crate::tls::error_chain(e),
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What a target's loop keeps between scrapes.
#[derive(Debug, Default)]
pub struct ScrapeState {
    /// The series the previous scrape wrote, by the hash of their stored
    /// labels (for staleness markers, as Prometheus's `seriesPrev`).
    previous: HashMap<u64, Labels, IdHash>,
    metadata: TargetMetadata,
    /// The labels as exposed → what they became (`None`: dropped by metric
    /// relabeling), for the series of the last successful scrape (and any
    /// seen since): a series seen before skips target labels, relabeling
    /// and limit checks, and is appended by its store reference, with no
    /// hashing of its stored labels (as Prometheus's scrape cache). A
    /// target's rules never change within its loop (a changed target is a
    /// new loop with a new state).
    cache: FxHashMap<Labels, CacheSlot>,
    /// The number of the current scrape (marks the cache slots it saw).
    scrape_no: u64,
}

#[derive(Debug)]
struct CacheSlot {
    series: Option<Arc<CachedSeries>>,
    /// The last scrape that exposed these labels.
    seen: u64,
}

/// A stored series as the scrape cache knows it.
#[derive(Debug)]
struct CachedSeries {
    /// The stored labels (one handle, shared with the store's head).
    labels: Labels,
    /// `hash` of `labels` (the key of [`ScrapeState::previous`]).
    hash: u64,
    /// The store's reference, from the last append (0: none yet).
    series_ref: AtomicU64,
}

/// A hasher for keys that are already hashes.
#[derive(Clone, Copy, Debug, Default)]
struct IdHash;

impl std::hash::BuildHasher for IdHash {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

#[derive(Debug)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys use this hasher; fold anything else in anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Scrapes `target` once at `t_ms` and appends the result to `store`.
/// `state` carries the previous scrape's series between calls.
pub async fn scrape_once<S: Appendable>(
    client: &reqwest::Client,
    target: &Target,
    store: &S,
    metrics: &Metrics,
    state: &mut ScrapeState,
    t_ms: i64,
) -> ScrapeReport {
    let started = Instant::now();
    let fetched = match &target.forced_error {
        Some(e) => Err(ScrapeError::Forced(e.clone())),
        None => tokio::time::timeout(target.timeout, fetch(client, target))
            .await
            .unwrap_or(Err(ScrapeError::Timeout(target.timeout))),
    };
    let parsed = fetched.and_then(|body| Ok(emberlens_textparse::parse(&body)?));
    if let Ok(entries) = &parsed {
        state.metadata = Arc::new(metadata_of(entries));
    }
    let duration = started.elapsed();
    metrics
        .scrape_duration
        .get_or_create(&JobLabels {
            job: target.job().to_string(),
        })
        .observe(duration.as_secs_f64());

    // Relabel everything before appending: a sample limit fails the whole scrape.
    state.scrape_no += 1;
    let scrape_no = state.scrape_no;
    let cache = &mut state.cache;
    let processed = parsed.and_then(|entries| {
        let mut scraped = 0usize;
        let mut kept: Vec<(Arc<CachedSeries>, i64, f64, bool)> = Vec::new();
        for entry in entries {
            let Entry::Sample(s) = entry else { continue };
            scraped += 1;
            let slot = match cache.entry(s.labels) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let stored =
                        relabel_sample(sample_labels(target, v.key()), &target.metric_relabel);
                    if let Some(labels) = &stored {
                        if labels.metric_name().is_empty() {
                            return Err(ScrapeError::NameLabelMandatory);
                        }
                        target
                            .label_limits
                            .check(labels)
                            .map_err(ScrapeError::LabelLimit)?;
                    }
                    v.insert(CacheSlot {
                        series: stored.map(|labels| {
                            Arc::new(CachedSeries {
                                hash: FxBuildHasher.hash_one(&labels),
                                labels,
                                series_ref: AtomicU64::new(0),
                            })
                        }),
                        seen: 0,
                    })
                }
            };
            slot.seen = scrape_no;
            let Some(series) = &slot.series else {
                continue;
            };
            let (t, explicit) = match s.timestamp_ms {
                Some(t) if target.honor_timestamps => (t, true),
                _ => (t_ms, false),
            };
            kept.push((series.clone(), t, s.value, explicit));
            if target.sample_limit > 0 && kept.len() > target.sample_limit {
                return Err(ScrapeError::SampleLimit(target.sample_limit));
            }
        }
        Ok((scraped, kept))
    });
    // Only a successful scrape forgets the series it did not see; a failed
    // one keeps them all.
    if processed.is_ok() {
        state.cache.retain(|_, slot| slot.seen == scrape_no);
    }

    let mut app = store.appender();
    let mut rejected = 0usize;
    let mut current: HashMap<u64, Labels, IdHash> = HashMap::default();
    let (up, samples_scraped, post_relabel, error) = match processed {
        Ok((scraped, kept)) => {
            let n = kept.len();
            current.reserve(n);
            for (series, t, v, explicit) in kept {
                let known = series.series_ref.load(Ordering::Relaxed);
                match app.append_ref(known, &series.labels, t, v) {
                    Ok(r) if r != known => series.series_ref.store(r, Ordering::Relaxed),
                    Ok(_) => {}
                    Err(_) => rejected += 1,
                }
                // As in Prometheus, series with explicit timestamps are not
                // tracked for staleness.
                if !explicit {
                    current.insert(series.hash, series.labels.clone());
                }
            }
            (true, scraped, n, None)
        }
        Err(e) => (false, 0, 0, Some(e.to_string())),
    };
    let added = current
        .keys()
        .filter(|h| !state.previous.contains_key(*h))
        .count();
    for (h, gone) in &state.previous {
        if !current.contains_key(h) && app.append(gone, t_ms, stale_nan()).is_err() {
            rejected += 1;
        }
    }
    state.previous = current;
    let synthetic = [
        ("up", if up { 1.0 } else { 0.0 }),
        ("scrape_duration_seconds", duration.as_secs_f64()),
        ("scrape_samples_scraped", samples_scraped as f64),
        ("scrape_samples_post_metric_relabeling", post_relabel as f64),
        ("scrape_series_added", added as f64),
    ];
    for (name, v) in synthetic {
        if app
            .append(&synthetic_labels(target, name), t_ms, v)
            .is_err()
        {
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
        metadata: state.metadata.clone(),
    }
}

fn synthetic_labels(target: &Target, name: &str) -> Labels {
    target.labels.with(METRIC_NAME, name)
}

/// Writes staleness markers for every series of the target at `t_ms`: its
/// last scrape's series and its synthetic series (the target went away).
pub fn mark_target_stale<S: Appendable>(
    target: &Target,
    store: &S,
    state: &ScrapeState,
    t_ms: i64,
) {
    let mut app = store.appender();
    for labels in state.previous.values() {
        let _ = app.append(labels, t_ms, stale_nan());
    }
    for name in [
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    ] {
        let _ = app.append(&synthetic_labels(target, name), t_ms, stale_nan());
    }
    let _ = app.commit();
}

async fn fetch(client: &reqwest::Client, target: &Target) -> Result<String, ScrapeError> {
    let http = |source| ScrapeError::Http {
        url: target.url.clone(),
        source,
    };
    let mut req = client
        .get(&target.url)
        .header(reqwest::header::ACCEPT, ACCEPT)
        .header(
            "X-Prometheus-Scrape-Timeout-Seconds",
            target.timeout.as_secs_f64().to_string(),
        );
    req = with_auth(req, &target.auth).await?;
    let mut resp = req.send().await.map_err(http)?;
    if !resp.status().is_success() {
        return Err(ScrapeError::Status(resp.status()));
    }
    let limit = target.body_size_limit;
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(http)? {
        if body.len() + chunk.len() > limit {
            return Err(ScrapeError::BodyTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|e| ScrapeError::NotUtf8(e.utf8_error().valid_up_to()))
}

/// `req` with the target's credentials (files read now).
async fn with_auth(
    mut req: reqwest::RequestBuilder,
    auth: &Option<Auth>,
) -> Result<reqwest::RequestBuilder, ScrapeError> {
    match auth {
        None => {}
        Some(Auth::Basic {
            username,
            password,
            password_file,
        }) => {
            let password = secret(password, password_file).await?;
            req = req.basic_auth(username, Some(password));
        }
        Some(Auth::Token {
            kind,
            credentials,
            credentials_file,
        }) => {
            let credentials = secret(credentials, credentials_file).await?;
            req = req.header(
                reqwest::header::AUTHORIZATION,
                format!("{kind} {credentials}"),
            );
        }
    }
    Ok(req)
}

/// [`with_auth`] for other scrapers (profiles): the error as text.
pub(crate) async fn authorize(
    req: reqwest::RequestBuilder,
    auth: &Option<Auth>,
) -> Result<reqwest::RequestBuilder, String> {
    with_auth(req, auth).await.map_err(|e| e.to_string())
}

/// The exposed labels with the target's labels applied (Prometheus's
/// `mutateSampleLabels`): with `honor_labels` the exposed value wins,
/// otherwise the target's does and a clashing exposed label becomes
/// `exported_<name>`. Empty values are dropped.
fn sample_labels(target: &Target, exposed: &Labels) -> Labels {
    let mut out = exposed.clone();
    for l in target.labels.iter() {
        let clash = exposed.get(&l.name);
        if target.honor_labels {
            if clash.is_empty() {
                out = out.with(&l.name, &l.value);
            }
        } else {
            if !clash.is_empty() {
                out = out.with(&format!("exported_{}", l.name), clash);
            }
            out = out.with(&l.name, &l.value);
        }
    }
    out
}

/// `metric_relabel_configs` over one sample; `None` when dropped.
fn relabel_sample(labels: Labels, rules: &[RelabelConfig]) -> Option<Labels> {
    if rules.is_empty() {
        return Some(labels);
    }
    let out = emberlens_config::process(&labels, rules)?;
    (!out.is_empty()).then_some(out)
}

/// How long until `target`'s first scrape, as Prometheus's `scrapeLoop`
/// offsets it: each target scrapes at its own fixed phase within the
/// interval (a hash of its pool, labels and URL), so targets are spread over
/// the interval instead of all scraping at once, and a target keeps its
/// phase across restarts.
pub fn scrape_offset(target: &Target, now_ms: i64) -> Duration {
    use std::hash::{Hash as _, Hasher as _};
    let interval = target.interval.as_millis().max(1) as u64;
    let mut h = std::hash::DefaultHasher::new();
    (&target.pool, &target.labels, &target.url).hash(&mut h);
    let phase = h.finish() % interval;
    let into_interval = now_ms.rem_euclid(interval as i64) as u64;
    Duration::from_millis((phase + interval - into_interval) % interval)
}

/// Scrape timestamps this close to the loop's schedule are moved onto it,
/// as Prometheus does by default (`--scrape.adjust-timestamps`): a target
/// scraped every interval then stores timestamps whose delta-of-delta is 0,
/// one bit per sample in an XOR chunk, where a millisecond of jitter costs
/// 16 bits.
pub const TIMESTAMP_TOLERANCE_MS: i64 = 2;

/// The timestamp of a scrape that starts at `now_ms`: the loop's schedule
/// (`schedule_ms`, its last timestamp, moved on by the nearest whole number
/// of intervals) when that is within [`TIMESTAMP_TOLERANCE_MS`] of now,
/// otherwise now, which becomes the new schedule (the first scrape, a
/// delayed tick, a clock step). Intervals up to 100 times the tolerance are
/// not aligned, as in Prometheus. Aligned timestamps always move forward.
pub fn scrape_timestamp(schedule_ms: &mut Option<i64>, interval_ms: i64, now_ms: i64) -> i64 {
    if interval_ms <= 100 * TIMESTAMP_TOLERANCE_MS {
        return now_ms;
    }
    if let Some(last) = *schedule_ms {
        let intervals = (now_ms - last + interval_ms / 2).div_euclid(interval_ms);
        let scheduled = last + intervals * interval_ms;
        if intervals >= 1 && (now_ms - scheduled).abs() <= TIMESTAMP_TOLERANCE_MS {
            *schedule_ms = Some(scheduled);
            return scheduled;
        }
    }
    *schedule_ms = Some(now_ms);
    now_ms
}

/// Runs the scrape loop for `target` until `stop` fires (or its sender is
/// dropped): the first scrape at the target's offset ([`scrape_offset`]),
/// then one per interval. A slow scrape delays
/// the next tick instead of bunching scrapes up. On stop, the target's series
/// get staleness markers.
pub async fn run_loop<S: Appendable + Send + Sync + 'static>(
    client: reqwest::Client,
    target: Arc<Target>,
    store: Arc<S>,
    metrics: Arc<Metrics>,
    health: TargetHealth,
    last: LastScrape,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let first = tokio::time::Instant::now() + scrape_offset(&target, now_ms());
    let mut ticker = tokio::time::interval_at(first, target.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error: Option<String> = None;
    let mut state = ScrapeState::default();
    let interval_ms = i64::try_from(target.interval.as_millis()).unwrap_or(i64::MAX);
    let mut schedule_ms = None;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {}
        }
        let t_ms = scrape_timestamp(&mut schedule_ms, interval_ms, now_ms());
        let report = tokio::select! {
            _ = &mut stop => break,
            r = scrape_once(&client, &target, store.as_ref(), &metrics, &mut state, t_ms) => r,
        };
        // Log a failure when it starts or changes, not on every tick.
        if report.error != last_error {
            match &report.error {
                Some(e) => tracing::warn!(target = %target.url, error = %e, "scrape failed"),
                None => tracing::info!(target = %target.url, "scrape recovered"),
            }
            last_error.clone_from(&report.error);
        }
        if let Ok(mut h) = health.write() {
            h.insert(target.url.clone(), (t_ms, report.clone()));
        }
        if let Ok(mut l) = last.write() {
            *l = Some((t_ms, report));
        }
    }
    mark_target_stale(target.as_ref(), store.as_ref(), &state, now_ms());
    if let Ok(mut h) = health.write() {
        h.remove(&target.url);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(honor_labels: bool) -> Target {
        let mut t = Target::simple(
            "node",
            "h:9100",
            "http://h:9100/metrics",
            Duration::from_secs(5),
        );
        t.labels = t.labels.with("env", "prod");
        t.honor_labels = honor_labels;
        t
    }

    #[test]
    fn target_labels_win_and_clashes_are_exported() {
        let exposed = Labels::from_pairs([("__name__", "m"), ("job", "inner"), ("a", "1")]);
        assert_eq!(
            sample_labels(&target(false), &exposed).to_string(),
            r#"m{a="1", env="prod", exported_job="inner", instance="h:9100", job="node"}"#
        );
    }

    #[test]
    fn offsets_are_a_fixed_phase_within_the_interval() {
        let t = target(false);
        let interval = t.interval.as_millis() as i64;
        for now in [0, 1, 4_999, 1_700_000_000_123] {
            let off = scrape_offset(&t, now).as_millis() as i64;
            assert!(off < interval);
            // Every target scrapes at the same phase whenever it starts.
            assert_eq!(
                (now + off) % interval,
                scrape_offset(&t, 0).as_millis() as i64
            );
        }
    }

    #[test]
    fn scrape_timestamps_snap_to_the_schedule_within_the_tolerance() {
        let mut schedule = None;
        let mut at = |now| scrape_timestamp(&mut schedule, 15_000, now);
        assert_eq!(at(1_000_000), 1_000_000);
        // Jitter within 2 ms, either way: on the schedule.
        assert_eq!(at(1_015_002), 1_015_000);
        assert_eq!(at(1_029_999), 1_030_000);
        // A tick skipped: still on the schedule, whole intervals later.
        assert_eq!(at(1_060_001), 1_060_000);
        // 3 ms off: kept, and the schedule follows it.
        assert_eq!(at(1_075_003), 1_075_003);
        assert_eq!(at(1_090_004), 1_090_003);
        // Less than an interval on: a new schedule, never an earlier time.
        assert_eq!(at(1_090_004), 1_090_004);
        // Short intervals are not aligned.
        let mut short = None;
        assert_eq!(scrape_timestamp(&mut short, 200, 1_000), 1_000);
        assert_eq!(scrape_timestamp(&mut short, 200, 1_201), 1_201);
    }

    #[test]
    fn label_limits_use_prometheus_messages() {
        let l = Labels::from_pairs([("__name__", "m"), ("a", "12345"), ("bb", "1")]);
        let ok = LabelLimits {
            labels: 3,
            name_length: 8,
            value_length: 5,
        };
        assert_eq!(ok.check(&l), Ok(()));
        let few = LabelLimits { labels: 2, ..ok };
        assert_eq!(
            few.check(&l).unwrap_err(),
            "label_limit exceeded (metric: m, number of labels: 3, limit: 2)"
        );
        let short = LabelLimits {
            value_length: 4,
            ..ok
        };
        assert_eq!(
            short.check(&l).unwrap_err(),
            "label_value_length_limit exceeded (metric: m, label name: a, value: \"12345\", length: 5, limit: 4)"
        );
    }

    #[test]
    fn honor_labels_keeps_exposed_values() {
        let exposed = Labels::from_pairs([("__name__", "m"), ("job", "inner")]);
        assert_eq!(
            sample_labels(&target(true), &exposed).to_string(),
            r#"m{env="prod", instance="h:9100", job="inner"}"#
        );
    }
}
