//! The configuration model and its parser: YAML text → raw serde structs
//! (strict: every struct denies unknown fields, as Prometheus's
//! `yaml.UnmarshalStrict`) → a resolved [`Config`] with defaults applied,
//! job values inherited from `global`, and Prometheus's validation.
//!
//! Sections of `prometheus.yml` that Emberlens does not act on (`alerting`,
//! `remote_read`, `storage`, `tracing`, `runtime`, `otlp`,
//! and service discovery other than `static_configs` / `file_sd_configs`,
//! such as `docker_sd_configs`) are accepted without checking their contents
//! and listed in [`Config::ignored`], so the server can warn about them
//! rather than refuse a file Prometheus takes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use emberlens_model::{Labels, parse_duration_ms};
use regex::Regex;
use serde::Deserialize;

use crate::relabel::{
    Action, DEFAULT_REGEX, DEFAULT_REPLACEMENT, DEFAULT_SEPARATOR, RelabelConfig, RelabelRegex,
    is_valid_label_name,
};
use crate::units::parse_byte_size;

// ---------------------------------------------------------------- errors

/// A configuration that was refused: the field (a path such as
/// `scrape_configs[1] (job "node").scrape_timeout`), the line and column
/// where known, and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// Path of the offending field; empty when the YAML layer names it in the message.
    pub field: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// Why, lowercase, as Prometheus words it where it has a message.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(field: &str, message: impl Into<String>) -> Self {
        ConfigError::at(field, None, None, message)
    }

    pub(crate) fn at(
        field: &str,
        line: Option<usize>,
        column: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            field: field.to_string(),
            line,
            column,
            message: message.into(),
        }
    }

    pub(crate) fn from_yaml(e: yaml_serde::Error) -> Self {
        let msg = e.to_string();
        let (line, column) = e
            .location()
            .map_or((None, None), |l| (Some(l.line()), Some(l.column())));
        // yaml_serde appends " at line L column C"; we print the position first.
        let msg = match msg.rfind(" at line ") {
            Some(i) if line.is_some() => msg[..i].to_string(),
            _ => msg,
        };
        ConfigError::at("", line, column, msg)
    }

    fn with_line(mut self, line: Option<usize>) -> Self {
        if self.line.is_none() {
            self.line = line;
        }
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}: ")?,
            (Some(l), None) => write!(f, "line {l}: ")?,
            _ => {}
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

// ---------------------------------------------------------------- model

/// Prometheus's defaults.
pub mod defaults {
    /// `global.scrape_interval`: 1m.
    pub const SCRAPE_INTERVAL_MS: i64 = 60_000;
    /// `global.scrape_timeout`: 10s (never more than the interval).
    pub const SCRAPE_TIMEOUT_MS: i64 = 10_000;
    /// `global.evaluation_interval`: 1m.
    pub const EVALUATION_INTERVAL_MS: i64 = 60_000;
    /// `metrics_path`.
    pub const METRICS_PATH: &str = "/metrics";
    /// `remote_write[].remote_timeout`: 30s.
    pub const REMOTE_TIMEOUT_MS: i64 = 30_000;
    /// `remote_write[].queue_config.capacity`.
    pub const QUEUE_CAPACITY: u64 = 2500;
    /// `remote_write[].queue_config.max_shards`.
    pub const QUEUE_MAX_SHARDS: u64 = 200;
    /// `remote_write[].queue_config.min_shards`.
    pub const QUEUE_MIN_SHARDS: u64 = 1;
    /// `remote_write[].queue_config.max_samples_per_send`.
    pub const QUEUE_MAX_SAMPLES_PER_SEND: u64 = 500;
    /// `remote_write[].queue_config.batch_send_deadline`: 5s.
    pub const QUEUE_BATCH_SEND_DEADLINE_MS: i64 = 5_000;
    /// `remote_write[].queue_config.min_backoff`: 30ms.
    pub const QUEUE_MIN_BACKOFF_MS: i64 = 30;
    /// `remote_write[].queue_config.max_backoff`: 5s.
    pub const QUEUE_MAX_BACKOFF_MS: i64 = 5_000;
    /// `file_sd_configs[].refresh_interval`: 5m.
    pub const FILE_SD_REFRESH_MS: i64 = 300_000;
    /// `profiling_config.delta_profiling_duration`: 14s, as Grafana Alloy.
    pub const DELTA_PROFILING_MS: i64 = 14_000;
}

/// A whole configuration file, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `global`.
    pub global: GlobalConfig,
    /// `rule_files` (globs; loading rules is not part of this crate).
    pub rule_files: Vec<String>,
    /// `scrape_configs`, with global values inherited.
    pub scrape_configs: Vec<ScrapeConfig>,
    /// `remote_write`.
    pub remote_write: Vec<RemoteWriteConfig>,
    /// Accepted but unused settings, as field paths (`alerting`,
    /// `scrape_configs[0] (job "d").docker_sd_configs`): for a warning.
    pub ignored: Vec<String>,
}

/// `global`.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalConfig {
    /// Default scrape interval.
    pub scrape_interval_ms: i64,
    /// Default scrape timeout (≤ the interval).
    pub scrape_timeout_ms: i64,
    /// Rule evaluation interval (accepted; rules are not evaluated yet).
    pub evaluation_interval_ms: i64,
    /// Added to series and alerts leaving this server (federation, remote write).
    pub external_labels: Labels,
    /// Default `body_size_limit` in bytes, 0 for none.
    pub body_size_limit_bytes: u64,
    /// Default `sample_limit`, 0 for none.
    pub sample_limit: u64,
    /// Default `label_limit`, 0 for none.
    pub label_limit: u64,
    /// Default `label_name_length_limit`, 0 for none.
    pub label_name_length_limit: u64,
    /// Default `label_value_length_limit`, 0 for none.
    pub label_value_length_limit: u64,
    /// Default `target_limit`, 0 for none.
    pub target_limit: u64,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval_ms: defaults::SCRAPE_INTERVAL_MS,
            scrape_timeout_ms: defaults::SCRAPE_TIMEOUT_MS,
            evaluation_interval_ms: defaults::EVALUATION_INTERVAL_MS,
            external_labels: Labels::default(),
            body_size_limit_bytes: 0,
            sample_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            target_limit: 0,
        }
    }
}

/// `http` or `https`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `http` (the default).
    Http,
    /// `https`.
    Https,
}

impl Scheme {
    /// As written in configs and in the `__scheme__` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// One `scrape_configs` entry, with global values inherited.
#[derive(Clone, Debug, PartialEq)]
pub struct ScrapeConfig {
    /// `job_name`, unique in the file.
    pub job_name: String,
    /// Keep the target's labels on clashes instead of renaming them `exported_*`.
    pub honor_labels: bool,
    /// Keep the target's timestamps (default true).
    pub honor_timestamps: bool,
    /// URL query parameters, in file order, each name with its values.
    pub params: Vec<(String, Vec<String>)>,
    /// Scrape interval.
    pub scrape_interval_ms: i64,
    /// Scrape timeout (≤ the interval).
    pub scrape_timeout_ms: i64,
    /// Path of the metrics endpoint (default `/metrics`).
    pub metrics_path: String,
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Largest uncompressed body accepted, 0 for none.
    pub body_size_limit_bytes: u64,
    /// Most samples accepted after metric relabeling, 0 for none.
    pub sample_limit: u64,
    /// Most labels per series, 0 for none.
    pub label_limit: u64,
    /// Longest label name, 0 for none.
    pub label_name_length_limit: u64,
    /// Longest label value, 0 for none.
    pub label_value_length_limit: u64,
    /// Most targets after target relabeling, 0 for none.
    pub target_limit: u64,
    /// `static_configs`.
    pub static_configs: Vec<TargetGroup>,
    /// `file_sd_configs`.
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Target relabeling.
    pub relabel_configs: Vec<RelabelConfig>,
    /// Series relabeling after each scrape.
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// Authentication and transport.
    pub http: HttpClientConfig,
    /// Profile endpoints (Emberlens extension), when configured.
    pub profiling: Option<ProfilingConfig>,
}

/// A group of targets sharing labels (`static_configs` entry, or one item
/// of a file-SD file).
#[derive(Clone, Debug, PartialEq)]
pub struct TargetGroup {
    /// `host:port` addresses.
    pub targets: Vec<String>,
    /// Labels added to every target of the group.
    pub labels: Labels,
}

/// `file_sd_configs` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct FileSdConfig {
    /// File globs (`*` only in the last path element), ending in `.json`, `.yml` or `.yaml`.
    pub files: Vec<String>,
    /// How often the files are re-read besides on change (default 5m).
    pub refresh_interval_ms: i64,
}

/// A secret: printed as `<secret>` by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// `basic_auth`.
#[derive(Clone, Debug, PartialEq)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password given inline.
    pub password: Option<Secret>,
    /// Or a file whose content is the password (read at scrape time).
    pub password_file: Option<String>,
}

/// `authorization` (and the older `bearer_token` / `bearer_token_file`,
/// which become an `authorization` of type `Bearer`).
#[derive(Clone, Debug, PartialEq)]
pub struct Authorization {
    /// Scheme word of the header, default `Bearer`.
    pub kind: String,
    /// Credentials given inline.
    pub credentials: Option<Secret>,
    /// Or a file holding them.
    pub credentials_file: Option<String>,
}

/// `tls_config`: how a client verifies the server and authenticates to it.
/// File paths are as written; the server resolves relative ones against
/// the config file's directory (as Prometheus's `SetDirectory`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsConfig {
    /// PEM file of the CA certificates that verify the server, instead of
    /// the system's roots.
    pub ca_file: Option<String>,
    /// PEM file of the client certificate (chain); set with `key_file`.
    pub cert_file: Option<String>,
    /// PEM file of the client certificate's private key; set with `cert_file`.
    pub key_file: Option<String>,
    /// The name the server's certificate must carry, instead of the URL's host.
    pub server_name: Option<String>,
    /// Accept any server certificate (the handshake is still encrypted).
    pub insecure_skip_verify: bool,
    /// Oldest TLS version accepted (`min_version`).
    pub min_version: Option<TlsVersion>,
    /// Newest TLS version offered (`max_version`).
    pub max_version: Option<TlsVersion>,
}

impl TlsConfig {
    /// Whether anything is set: a client needs its own TLS settings.
    pub fn is_set(&self) -> bool {
        *self != TlsConfig::default()
    }
}

/// A TLS protocol version as `min_version` / `max_version` name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// `TLS10`.
    Tls10,
    /// `TLS11`.
    Tls11,
    /// `TLS12`.
    Tls12,
    /// `TLS13`.
    Tls13,
}

impl TlsVersion {
    /// Parses Prometheus's names (`TLS10` … `TLS13`, case-sensitive as in Go).
    pub fn parse(s: &str) -> Option<TlsVersion> {
        match s {
            "TLS10" => Some(TlsVersion::Tls10),
            "TLS11" => Some(TlsVersion::Tls11),
            "TLS12" => Some(TlsVersion::Tls12),
            "TLS13" => Some(TlsVersion::Tls13),
            _ => None,
        }
    }

    /// As written in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "TLS10",
            TlsVersion::Tls11 => "TLS11",
            TlsVersion::Tls12 => "TLS12",
            TlsVersion::Tls13 => "TLS13",
        }
    }
}

/// The HTTP client settings of a scrape config.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpClientConfig {
    /// `basic_auth`.
    pub basic_auth: Option<BasicAuth>,
    /// `authorization` or a bearer token.
    pub authorization: Option<Authorization>,
    /// `tls_config`.
    pub tls: TlsConfig,
    /// `proxy_url`.
    pub proxy_url: Option<String>,
    /// `follow_redirects` (default true).
    pub follow_redirects: bool,
    /// `enable_http2` (default true).
    pub enable_http2: bool,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        HttpClientConfig {
            basic_auth: None,
            authorization: None,
            tls: TlsConfig::default(),
            proxy_url: None,
            follow_redirects: true,
            enable_http2: true,
        }
    }
}

/// One `remote_write` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteWriteConfig {
    /// Endpoint URL (`http` or `https`).
    pub url: String,
    /// `name`, unique among the remote writes when set.
    pub name: Option<String>,
    /// Timeout of one send.
    pub remote_timeout_ms: i64,
    /// Extra request headers (none of Prometheus's reserved ones).
    pub headers: BTreeMap<String, String>,
    /// Relabeling applied to each series before it is queued.
    pub write_relabel_configs: Vec<RelabelConfig>,
    /// `queue_config`.
    pub queue: QueueConfig,
    /// Authentication and transport.
    pub http: HttpClientConfig,
}

/// `remote_write[].queue_config`, with Prometheus 2.42's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueConfig {
    /// Samples buffered per shard in Prometheus (2500).
    pub capacity: u64,
    /// Most parallel senders (200).
    pub max_shards: u64,
    /// Fewest parallel senders (1).
    pub min_shards: u64,
    /// Most samples in one request (500).
    pub max_samples_per_send: u64,
    /// How long a partial batch may wait before it is sent (5s).
    pub batch_send_deadline_ms: i64,
    /// First retry delay (30ms), doubled after each failure.
    pub min_backoff_ms: i64,
    /// Longest retry delay (5s).
    pub max_backoff_ms: i64,
    /// Retry on HTTP 429 instead of dropping the batch (false).
    pub retry_on_http_429: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: defaults::QUEUE_CAPACITY,
            max_shards: defaults::QUEUE_MAX_SHARDS,
            min_shards: defaults::QUEUE_MIN_SHARDS,
            max_samples_per_send: defaults::QUEUE_MAX_SAMPLES_PER_SEND,
            batch_send_deadline_ms: defaults::QUEUE_BATCH_SEND_DEADLINE_MS,
            min_backoff_ms: defaults::QUEUE_MIN_BACKOFF_MS,
            max_backoff_ms: defaults::QUEUE_MAX_BACKOFF_MS,
            retry_on_http_429: false,
        }
    }
}

/// Headers a `remote_write` may not set (Prometheus's `reservedHeaders`).
pub const RESERVED_HEADERS: [&str; 14] = [
    "Authorization",
    "Host",
    "Content-Encoding",
    "Content-Length",
    "Content-Type",
    "User-Agent",
    "Connection",
    "Keep-Alive",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Www-Authenticate",
    "Retry-After",
    "X-Prometheus-Remote-Write-Version",
    "X-Prometheus-Remote-Read-Version",
];

/// The profile types of `profiling_config.pprof_config`, named as in Grafana
/// Alloy's `pyroscope.scrape` (and Phlare's YAML before it), with their
/// default paths and whether they are on by default.
pub const PROFILE_TYPES: [(&str, &str, bool); 6] = [
    ("process_cpu", "/debug/pprof/profile", true),
    ("memory", "/debug/pprof/allocs", true),
    ("goroutine", "/debug/pprof/goroutine", true),
    ("mutex", "/debug/pprof/mutex", true),
    ("block", "/debug/pprof/block", true),
    ("heap", "/debug/pprof/heap", false),
];

/// One profile endpoint to scrape.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileEndpoint {
    /// Type name (`process_cpu`, `memory`, … or a custom name).
    pub name: String,
    /// Path, with `path_prefix` applied.
    pub path: String,
    /// A delta profile: the target collects for `delta_profiling_duration`
    /// (`?seconds=N` is added to the request).
    pub delta: bool,
}

impl ProfileEndpoint {
    /// Path and query to request: `path?seconds=N` for a delta profile.
    pub fn path_and_query(&self, delta_profiling_ms: i64) -> String {
        if self.delta {
            let secs = (delta_profiling_ms / 1000).max(1);
            let sep = if self.path.contains('?') { '&' } else { '?' };
            format!("{}{sep}seconds={secs}", self.path)
        } else {
            self.path.clone()
        }
    }
}

/// `profiling_config` (Emberlens extension): which pprof endpoints of each
/// target are scraped, at the job's `scrape_interval`, with the target's labels.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfilingConfig {
    /// Enabled endpoints, in `PROFILE_TYPES` order, then custom ones.
    pub endpoints: Vec<ProfileEndpoint>,
    /// How long a delta (CPU) profile collects; below the scrape interval.
    pub delta_profiling_ms: i64,
}

// ---------------------------------------------------------------- raw YAML

/// A string read from any YAML scalar, as Go's YAML decoder fills a string
/// field: `regex: true` is the text `true`, `targets: [9090]` the text `9090`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

type Opaque = yaml_serde::Value;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    global: Option<RawGlobal>,
    rule_files: Option<Vec<Text>>,
    scrape_config_files: Option<Vec<Text>>,
    scrape_configs: Option<Vec<Option<RawScrape>>>,
    alerting: Option<Opaque>,
    remote_write: Option<Vec<Option<RawRemoteWrite>>>,
    remote_read: Option<Opaque>,
    storage: Option<Opaque>,
    tracing: Option<Opaque>,
    runtime: Option<Opaque>,
    otlp: Option<Opaque>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGlobal {
    scrape_interval: Option<Text>,
    scrape_timeout: Option<Text>,
    evaluation_interval: Option<Text>,
    rule_query_offset: Option<Text>,
    external_labels: Option<BTreeMap<String, Text>>,
    query_log_file: Option<Text>,
    body_size_limit: Option<Text>,
    sample_limit: Option<u64>,
    label_limit: Option<u64>,
    label_name_length_limit: Option<u64>,
    label_value_length_limit: Option<u64>,
    target_limit: Option<u64>,
    keep_dropped_targets: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTargetGroup {
    targets: Option<Vec<Text>>,
    labels: Option<BTreeMap<String, Text>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileSd {
    files: Option<Vec<Text>>,
    refresh_interval: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelabel {
    source_labels: Option<Vec<Text>>,
    separator: Option<Text>,
    regex: Option<Text>,
    modulus: Option<u64>,
    target_label: Option<Text>,
    replacement: Option<Text>,
    action: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBasicAuth {
    username: Option<Text>,
    username_file: Option<Text>,
    password: Option<Text>,
    password_file: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthorization {
    #[serde(rename = "type")]
    kind: Option<Text>,
    credentials: Option<Text>,
    credentials_file: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca_file: Option<Text>,
    cert_file: Option<Text>,
    key_file: Option<Text>,
    server_name: Option<Text>,
    insecure_skip_verify: Option<bool>,
    min_version: Option<Text>,
    max_version: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemoteWrite {
    url: Option<Text>,
    name: Option<Text>,
    remote_timeout: Option<Text>,
    headers: Option<BTreeMap<String, Text>>,
    write_relabel_configs: Option<Vec<Option<RawRelabel>>>,
    queue_config: Option<RawQueueConfig>,
    metadata_config: Option<Opaque>,
    send_exemplars: Option<bool>,
    send_native_histograms: Option<bool>,
    sigv4: Option<Opaque>,
    azuread: Option<Opaque>,
    oauth2: Option<Opaque>,
    basic_auth: Option<RawBasicAuth>,
    authorization: Option<RawAuthorization>,
    bearer_token: Option<Text>,
    bearer_token_file: Option<Text>,
    tls_config: Option<RawTls>,
    proxy_url: Option<Text>,
    no_proxy: Option<Text>,
    proxy_from_environment: Option<bool>,
    proxy_connect_header: Option<Opaque>,
    follow_redirects: Option<bool>,
    enable_http2: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawQueueConfig {
    capacity: Option<u64>,
    max_shards: Option<u64>,
    min_shards: Option<u64>,
    max_samples_per_send: Option<u64>,
    batch_send_deadline: Option<Text>,
    min_backoff: Option<Text>,
    max_backoff: Option<Text>,
    retry_on_http_429: Option<bool>,
    sample_age_limit: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfileType {
    enabled: Option<bool>,
    path: Option<Text>,
    delta: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCustomProfile {
    name: Option<Text>,
    path: Option<Text>,
    enabled: Option<bool>,
    delta: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPprofConfig {
    process_cpu: Option<RawProfileType>,
    memory: Option<RawProfileType>,
    goroutine: Option<RawProfileType>,
    mutex: Option<RawProfileType>,
    block: Option<RawProfileType>,
    heap: Option<RawProfileType>,
    custom: Option<Vec<RawCustomProfile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfiling {
    pprof_config: Option<RawPprofConfig>,
    path_prefix: Option<Text>,
    delta_profiling_duration: Option<Text>,
}

/// Declares `RawScrape` with the scrape fields plus one opaque field per
/// service discovery mechanism Prometheus has and Emberlens does not run.
macro_rules! raw_scrape {
    ($($sd:ident),* $(,)?) => {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawScrape {
            job_name: Option<Text>,
            honor_labels: Option<bool>,
            honor_timestamps: Option<bool>,
            track_timestamps_staleness: Option<bool>,
            params: Option<BTreeMap<String, Vec<Text>>>,
            scrape_interval: Option<Text>,
            scrape_timeout: Option<Text>,
            metrics_path: Option<Text>,
            scheme: Option<Text>,
            enable_compression: Option<bool>,
            body_size_limit: Option<Text>,
            sample_limit: Option<u64>,
            label_limit: Option<u64>,
            label_name_length_limit: Option<u64>,
            label_value_length_limit: Option<u64>,
            target_limit: Option<u64>,
            keep_dropped_targets: Option<u64>,
            static_configs: Option<Vec<Option<RawTargetGroup>>>,
            file_sd_configs: Option<Vec<Option<RawFileSd>>>,
            relabel_configs: Option<Vec<Option<RawRelabel>>>,
            metric_relabel_configs: Option<Vec<Option<RawRelabel>>>,
            basic_auth: Option<RawBasicAuth>,
            authorization: Option<RawAuthorization>,
            bearer_token: Option<Text>,
            bearer_token_file: Option<Text>,
            tls_config: Option<RawTls>,
            proxy_url: Option<Text>,
            no_proxy: Option<Text>,
            proxy_from_environment: Option<bool>,
            follow_redirects: Option<bool>,
            enable_http2: Option<bool>,
            oauth2: Option<Opaque>,
            profiling_config: Option<RawProfiling>,
            $($sd: Option<Opaque>,)*
        }

        impl RawScrape {
            fn other_sd(&self) -> Vec<&'static str> {
                let mut v = Vec::new();
                $(if self.$sd.is_some() { v.push(stringify!($sd)); })*
                v
            }
        }
    };
}

raw_scrape!(
    azure_sd_configs,
    consul_sd_configs,
    digitalocean_sd_configs,
    docker_sd_configs,
    dockerswarm_sd_configs,
    dns_sd_configs,
    ec2_sd_configs,
    eureka_sd_configs,
    gce_sd_configs,
    hetzner_sd_configs,
    http_sd_configs,
    ionos_sd_configs,
    kubernetes_sd_configs,
    kuma_sd_configs,
    lightsail_sd_configs,
    linode_sd_configs,
    marathon_sd_configs,
    nerve_sd_configs,
    nomad_sd_configs,
    openstack_sd_configs,
    ovhcloud_sd_configs,
    puppetdb_sd_configs,
    scaleway_sd_configs,
    serverset_sd_configs,
    triton_sd_configs,
    uyuni_sd_configs,
    vultr_sd_configs,
);

// ---------------------------------------------------------------- resolve

impl Config {
    /// Parses and validates a `prometheus.yml`. An empty document is the
    /// default configuration (no scrape configs), as in Prometheus.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let raw: Option<RawConfig> = yaml_serde::from_str(text).map_err(ConfigError::from_yaml)?;
        resolve(raw.unwrap_or_default(), &job_lines(text))
    }
}

/// Line of each `job_name:` key, in order: a line hint for errors found
/// after parsing (the YAML layer keeps no positions past it).
fn job_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim_start().trim_start_matches('-').trim_start();
            t.starts_with("job_name:") || t.starts_with("\"job_name\":")
        })
        .map(|(i, _)| i + 1)
        .collect()
}

fn text(t: Option<Text>) -> Option<String> {
    t.map(|t| t.0)
}

fn duration(field: &str, t: Option<Text>) -> Result<Option<i64>, ConfigError> {
    match t {
        None => Ok(None),
        Some(t) => parse_duration_ms(&t.0)
            .map(Some)
            .map_err(|e| ConfigError::new(field, e.to_string())),
    }
}

fn byte_size(field: &str, t: Option<Text>) -> Result<Option<u64>, ConfigError> {
    match t {
        None => Ok(None),
        Some(t) => parse_byte_size(&t.0)
            .map(Some)
            .map_err(|e| ConfigError::new(field, e.to_string())),
    }
}

pub(crate) fn check_label_names<'a>(
    field: &str,
    line: Option<usize>,
    names: impl IntoIterator<Item = &'a String>,
) -> Result<(), ConfigError> {
    for n in names {
        if !is_valid_label_name(n) {
            return Err(ConfigError::at(
                field,
                line,
                None,
                format!("{n:?} is not a valid label name"),
            ));
        }
    }
    Ok(())
}

fn resolve(raw: RawConfig, job_lines: &[usize]) -> Result<Config, ConfigError> {
    let mut ignored = Vec::new();
    for (name, present) in [
        ("alerting", raw.alerting.is_some()),
        ("remote_read", raw.remote_read.is_some()),
        ("storage", raw.storage.is_some()),
        ("tracing", raw.tracing.is_some()),
        ("runtime", raw.runtime.is_some()),
        ("otlp", raw.otlp.is_some()),
    ] {
        if present {
            ignored.push(name.to_string());
        }
    }
    let global = resolve_global(raw.global.unwrap_or_default(), &mut ignored)?;
    let rule_path =
        Regex::new(r"^[^*]*(\*[^/]*)?$").map_err(|e| ConfigError::new("", e.to_string()))?;
    let mut rule_files = Vec::new();
    for f in raw.rule_files.unwrap_or_default() {
        if !rule_path.is_match(&f.0) {
            return Err(ConfigError::new(
                "rule_files",
                format!("invalid rule file path {:?}", f.0),
            ));
        }
        rule_files.push(f.0);
    }
    for f in raw.scrape_config_files.unwrap_or_default() {
        if !rule_path.is_match(&f.0) {
            return Err(ConfigError::new(
                "scrape_config_files",
                format!("invalid scrape config file path {:?}", f.0),
            ));
        }
        ignored.push(format!("scrape_config_files ({:?})", f.0));
    }
    let raw_jobs = raw.scrape_configs.unwrap_or_default();
    // Only trust the line hints when each job has exactly one.
    let lines_ok = job_lines.len() == raw_jobs.iter().filter(|j| j.is_some()).count();
    let mut scrape_configs = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, job) in raw_jobs.into_iter().enumerate() {
        let Some(job) = job else {
            return Err(ConfigError::new(
                &format!("scrape_configs[{i}]"),
                "empty or null scrape config section",
            ));
        };
        // Every earlier entry was a job (a null one is refused above).
        let line = if lines_ok {
            job_lines.get(i).copied()
        } else {
            None
        };
        let sc = resolve_scrape(i, job, &global, &mut ignored).map_err(|e| e.with_line(line))?;
        if !seen.insert(sc.job_name.clone()) {
            return Err(ConfigError::at(
                &format!("scrape_configs[{i}]"),
                line,
                None,
                format!(
                    "found multiple scrape configs with job name {:?}",
                    sc.job_name
                ),
            ));
        }
        scrape_configs.push(sc);
    }
    let remote_write = resolve_remote_writes(raw.remote_write.unwrap_or_default(), &mut ignored)?;
    Ok(Config {
        global,
        rule_files,
        scrape_configs,
        remote_write,
        ignored,
    })
}

fn resolve_remote_writes(
    raw: Vec<Option<RawRemoteWrite>>,
    ignored: &mut Vec<String>,
) -> Result<Vec<RemoteWriteConfig>, ConfigError> {
    let mut out: Vec<RemoteWriteConfig> = Vec::new();
    for (i, rw) in raw.into_iter().enumerate() {
        let at = format!("remote_write[{i}]");
        let Some(rw) = rw else {
            return Err(ConfigError::new(
                &at,
                "empty or null remote write config section",
            ));
        };
        let rw = resolve_remote_write(&at, rw, ignored)?;
        if let Some(name) = &rw.name
            && out.iter().any(|o| o.name.as_ref() == Some(name))
        {
            return Err(ConfigError::new(
                &at,
                format!("found multiple remote write configs with job name {name:?}"),
            ));
        }
        out.push(rw);
    }
    Ok(out)
}

fn resolve_remote_write(
    at: &str,
    rw: RawRemoteWrite,
    ignored: &mut Vec<String>,
) -> Result<RemoteWriteConfig, ConfigError> {
    let f = |name: &str| format!("{at}.{name}");
    let url = text(rw.url).unwrap_or_default();
    if url.is_empty() {
        return Err(ConfigError::new(&f("url"), "url for remote_write is empty"));
    }
    // Emberlens sends over HTTP(S) only; Prometheus fails at send time otherwise.
    let scheme_ok = url
        .split_once("://")
        .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && !rest.is_empty());
    if !scheme_ok {
        return Err(ConfigError::new(
            &f("url"),
            format!("{url:?} is not an http or https URL"),
        ));
    }
    for (name, present) in [
        ("metadata_config", rw.metadata_config.is_some()),
        ("send_exemplars", rw.send_exemplars.is_some()),
        (
            "send_native_histograms",
            rw.send_native_histograms.is_some(),
        ),
        ("sigv4", rw.sigv4.is_some()),
        ("azuread", rw.azuread.is_some()),
        ("oauth2", rw.oauth2.is_some()),
        ("no_proxy", rw.no_proxy.is_some()),
        (
            "proxy_from_environment",
            rw.proxy_from_environment.is_some(),
        ),
        ("proxy_connect_header", rw.proxy_connect_header.is_some()),
        (
            "queue_config.sample_age_limit",
            rw.queue_config
                .as_ref()
                .is_some_and(|q| q.sample_age_limit.is_some()),
        ),
    ] {
        if present {
            ignored.push(f(name));
        }
    }
    let mut headers = BTreeMap::new();
    for (k, v) in rw.headers.unwrap_or_default() {
        if let Some(r) = RESERVED_HEADERS.iter().find(|r| r.eq_ignore_ascii_case(&k)) {
            return Err(ConfigError::new(
                &f("headers"),
                format!("{r} is a reserved header. It must not be changed"),
            ));
        }
        headers.insert(k, v.0);
    }
    let mut write_relabel_configs = Vec::new();
    for (j, r) in rw
        .write_relabel_configs
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let rat = format!("{at}.write_relabel_configs[{j}]");
        let Some(r) = r else {
            return Err(ConfigError::new(
                &rat,
                "empty or null relabeling rule in remote write config",
            ));
        };
        write_relabel_configs.push(resolve_relabel(&rat, r)?);
    }
    let q = rw.queue_config.unwrap_or_default();
    let d = QueueConfig::default();
    let dur = |name: &str, t: Option<Text>, default: i64| -> Result<i64, ConfigError> {
        Ok(duration(&f(&format!("queue_config.{name}")), t)?.unwrap_or(default))
    };
    let queue = QueueConfig {
        capacity: q.capacity.unwrap_or(d.capacity),
        max_shards: q.max_shards.unwrap_or(d.max_shards),
        min_shards: q.min_shards.unwrap_or(d.min_shards),
        max_samples_per_send: q.max_samples_per_send.unwrap_or(d.max_samples_per_send),
        batch_send_deadline_ms: dur(
            "batch_send_deadline",
            q.batch_send_deadline,
            d.batch_send_deadline_ms,
        )?,
        min_backoff_ms: dur("min_backoff", q.min_backoff, d.min_backoff_ms)?,
        max_backoff_ms: dur("max_backoff", q.max_backoff, d.max_backoff_ms)?,
        retry_on_http_429: q.retry_on_http_429.unwrap_or(d.retry_on_http_429),
    };
    // Prometheus accepts these and then never sends (0 samples per send) or
    // spins; Emberlens refuses them up front.
    if queue.max_samples_per_send == 0 {
        return Err(ConfigError::new(
            &f("queue_config.max_samples_per_send"),
            "must be at least 1",
        ));
    }
    if queue.max_backoff_ms < queue.min_backoff_ms {
        return Err(ConfigError::new(
            &f("queue_config.max_backoff"),
            "must not be below min_backoff",
        ));
    }
    let remote_timeout_ms =
        duration(&f("remote_timeout"), rw.remote_timeout)?.unwrap_or(defaults::REMOTE_TIMEOUT_MS);
    let http = resolve_http(
        &f,
        rw.basic_auth,
        rw.authorization,
        rw.bearer_token,
        rw.bearer_token_file,
        rw.tls_config,
        rw.proxy_url,
        rw.follow_redirects,
        rw.enable_http2,
    )?;
    Ok(RemoteWriteConfig {
        url,
        name: text(rw.name).filter(|n| !n.is_empty()),
        remote_timeout_ms: if remote_timeout_ms == 0 {
            defaults::REMOTE_TIMEOUT_MS
        } else {
            remote_timeout_ms
        },
        headers,
        write_relabel_configs,
        queue,
        http,
    })
}

fn resolve_global(g: RawGlobal, ignored: &mut Vec<String>) -> Result<GlobalConfig, ConfigError> {
    let mut out = GlobalConfig::default();
    let interval = duration("global.scrape_interval", g.scrape_interval)?.unwrap_or(0);
    let timeout = duration("global.scrape_timeout", g.scrape_timeout)?.unwrap_or(0);
    let eval = duration("global.evaluation_interval", g.evaluation_interval)?.unwrap_or(0);
    duration("global.rule_query_offset", g.rule_query_offset)?;
    if interval != 0 {
        out.scrape_interval_ms = interval;
    }
    if timeout > out.scrape_interval_ms {
        return Err(ConfigError::new(
            "global.scrape_timeout",
            "global scrape timeout greater than scrape interval",
        ));
    }
    out.scrape_timeout_ms = if timeout == 0 {
        defaults::SCRAPE_TIMEOUT_MS.min(out.scrape_interval_ms)
    } else {
        timeout
    };
    if eval != 0 {
        out.evaluation_interval_ms = eval;
    }
    let labels: BTreeMap<String, String> = g
        .external_labels
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    check_label_names("global.external_labels", None, labels.keys())?;
    out.external_labels = Labels::from_pairs(labels);
    for (name, present) in [
        ("global.query_log_file", g.query_log_file.is_some()),
        (
            "global.keep_dropped_targets",
            g.keep_dropped_targets.is_some(),
        ),
    ] {
        if present {
            ignored.push(name.to_string());
        }
    }
    out.body_size_limit_bytes =
        byte_size("global.body_size_limit", g.body_size_limit)?.unwrap_or(0);
    out.sample_limit = g.sample_limit.unwrap_or(0);
    out.label_limit = g.label_limit.unwrap_or(0);
    out.label_name_length_limit = g.label_name_length_limit.unwrap_or(0);
    out.label_value_length_limit = g.label_value_length_limit.unwrap_or(0);
    out.target_limit = g.target_limit.unwrap_or(0);
    Ok(out)
}

fn nonzero_or(v: Option<u64>, global: u64) -> u64 {
    match v {
        Some(v) if v != 0 => v,
        _ => global,
    }
}

fn resolve_scrape(
    i: usize,
    s: RawScrape,
    global: &GlobalConfig,
    ignored: &mut Vec<String>,
) -> Result<ScrapeConfig, ConfigError> {
    let job_name = text(s.job_name.clone()).unwrap_or_default();
    let at = if job_name.is_empty() {
        format!("scrape_configs[{i}]")
    } else {
        format!("scrape_configs[{i}] (job {job_name:?})")
    };
    let f = |name: &str| format!("{at}.{name}");
    if job_name.is_empty() {
        return Err(ConfigError::new(&at, "job_name is empty"));
    }
    for sd in s.other_sd() {
        ignored.push(f(sd));
    }
    for (name, present) in [
        ("oauth2", s.oauth2.is_some()),
        (
            "track_timestamps_staleness",
            s.track_timestamps_staleness.is_some(),
        ),
        ("enable_compression", s.enable_compression.is_some()),
        ("keep_dropped_targets", s.keep_dropped_targets.is_some()),
        ("no_proxy", s.no_proxy.is_some()),
        ("proxy_from_environment", s.proxy_from_environment.is_some()),
        (
            "tls_config.min_version",
            s.tls_config
                .as_ref()
                .is_some_and(|t| t.min_version.is_some()),
        ),
    ] {
        if present {
            ignored.push(f(name));
        }
    }
    let interval = duration(&f("scrape_interval"), s.scrape_interval)?.unwrap_or(0);
    let timeout = duration(&f("scrape_timeout"), s.scrape_timeout)?.unwrap_or(0);
    let scrape_interval_ms = if interval == 0 {
        global.scrape_interval_ms
    } else {
        interval
    };
    if timeout > scrape_interval_ms {
        return Err(ConfigError::new(
            &f("scrape_timeout"),
            format!(
                "scrape timeout greater than scrape interval for scrape config with job name {job_name:?}"
            ),
        ));
    }
    let scrape_timeout_ms = if timeout == 0 {
        global.scrape_timeout_ms.min(scrape_interval_ms)
    } else {
        timeout
    };
    let scheme = match text(s.scheme).as_deref() {
        None | Some("") | Some("http") => Scheme::Http,
        Some("https") => Scheme::Https,
        Some(other) => {
            return Err(ConfigError::new(
                &f("scheme"),
                format!("unsupported scheme {other:?} (want http or https)"),
            ));
        }
    };
    let metrics_path = match text(s.metrics_path) {
        Some(p) if !p.is_empty() => p,
        _ => defaults::METRICS_PATH.to_string(),
    };
    let params = s
        .params
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().map(|t| t.0).collect()))
        .collect();
    let body = byte_size(&f("body_size_limit"), s.body_size_limit)?;

    let has_relabel = s.relabel_configs.as_ref().is_some_and(|r| !r.is_empty());
    let mut static_configs = Vec::new();
    for (j, g) in s.static_configs.unwrap_or_default().into_iter().enumerate() {
        let Some(g) = g else { continue };
        let field = f(&format!("static_configs[{j}]"));
        let labels: BTreeMap<String, String> = g
            .labels
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        check_label_names(&format!("{field}.labels"), None, labels.keys())?;
        let targets: Vec<String> = g
            .targets
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.0)
            .collect();
        if let Some(t) = targets.iter().find(|t| !has_relabel && t.contains('/')) {
            return Err(ConfigError::new(
                &format!("{field}.targets"),
                format!("{t:?} is not a valid hostname"),
            ));
        }
        static_configs.push(TargetGroup {
            targets,
            labels: Labels::from_pairs(labels),
        });
    }

    let file_name = Regex::new(r"^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$")
        .map_err(|e| ConfigError::new("", e.to_string()))?;
    let mut file_sd_configs = Vec::new();
    for (j, c) in s
        .file_sd_configs
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let field = f(&format!("file_sd_configs[{j}]"));
        let Some(c) = c else { continue };
        let files: Vec<String> = c
            .files
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.0)
            .collect();
        if files.is_empty() {
            return Err(ConfigError::new(
                &field,
                "file service discovery config must contain at least one path name",
            ));
        }
        if let Some(bad) = files.iter().find(|p| !file_name.is_match(p)) {
            return Err(ConfigError::new(
                &format!("{field}.files"),
                format!("path name {bad:?} is not valid for file discovery"),
            ));
        }
        let refresh = duration(&format!("{field}.refresh_interval"), c.refresh_interval)?;
        file_sd_configs.push(FileSdConfig {
            files,
            refresh_interval_ms: match refresh {
                Some(r) if r != 0 => r,
                _ => defaults::FILE_SD_REFRESH_MS,
            },
        });
    }

    let relabel_configs = resolve_relabels(&f("relabel_configs"), s.relabel_configs, "target")?;
    let metric_relabel_configs = resolve_relabels(
        &f("metric_relabel_configs"),
        s.metric_relabel_configs,
        "metric",
    )?;
    let http = resolve_http(
        &f,
        s.basic_auth,
        s.authorization,
        s.bearer_token,
        s.bearer_token_file,
        s.tls_config,
        s.proxy_url,
        s.follow_redirects,
        s.enable_http2,
    )?;
    let profiling = match s.profiling_config {
        None => None,
        Some(p) => Some(resolve_profiling(
            &f("profiling_config"),
            p,
            scrape_interval_ms,
        )?),
    };

    Ok(ScrapeConfig {
        job_name,
        honor_labels: s.honor_labels.unwrap_or(false),
        honor_timestamps: s.honor_timestamps.unwrap_or(true),
        params,
        scrape_interval_ms,
        scrape_timeout_ms,
        metrics_path,
        scheme,
        body_size_limit_bytes: nonzero_or(body, global.body_size_limit_bytes),
        sample_limit: nonzero_or(s.sample_limit, global.sample_limit),
        label_limit: nonzero_or(s.label_limit, global.label_limit),
        label_name_length_limit: nonzero_or(
            s.label_name_length_limit,
            global.label_name_length_limit,
        ),
        label_value_length_limit: nonzero_or(
            s.label_value_length_limit,
            global.label_value_length_limit,
        ),
        target_limit: nonzero_or(s.target_limit, global.target_limit),
        static_configs,
        file_sd_configs,
        relabel_configs,
        metric_relabel_configs,
        http,
        profiling,
    })
}

#[allow(clippy::too_many_arguments)]
fn resolve_http(
    f: &dyn Fn(&str) -> String,
    basic_auth: Option<RawBasicAuth>,
    authorization: Option<RawAuthorization>,
    bearer_token: Option<Text>,
    bearer_token_file: Option<Text>,
    tls: Option<RawTls>,
    proxy_url: Option<Text>,
    follow_redirects: Option<bool>,
    enable_http2: Option<bool>,
) -> Result<HttpClientConfig, ConfigError> {
    let bearer = text(bearer_token).filter(|s| !s.is_empty());
    let bearer_file = text(bearer_token_file).filter(|s| !s.is_empty());
    if bearer.is_some() && bearer_file.is_some() {
        return Err(ConfigError::new(
            &f("bearer_token"),
            "at most one of bearer_token & bearer_token_file must be configured",
        ));
    }
    let has_bearer = bearer.is_some() || bearer_file.is_some();
    if basic_auth.is_some() && has_bearer {
        return Err(ConfigError::new(
            &f("basic_auth"),
            "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured",
        ));
    }
    let basic_auth = match basic_auth {
        None => None,
        Some(b) => {
            let password = text(b.password).filter(|s| !s.is_empty());
            let password_file = text(b.password_file).filter(|s| !s.is_empty());
            let username = text(b.username).unwrap_or_default();
            let username_file = text(b.username_file).filter(|s| !s.is_empty());
            if !username.is_empty() && username_file.is_some() {
                return Err(ConfigError::new(
                    &f("basic_auth"),
                    "at most one of basic_auth username & username_file must be configured",
                ));
            }
            if username_file.is_some() {
                return Err(ConfigError::new(
                    &f("basic_auth.username_file"),
                    "username_file is not supported",
                ));
            }
            if password.is_some() && password_file.is_some() {
                return Err(ConfigError::new(
                    &f("basic_auth"),
                    "at most one of basic_auth password & password_file must be configured",
                ));
            }
            Some(BasicAuth {
                username,
                password: password.map(Secret),
                password_file,
            })
        }
    };
    let authorization = match authorization {
        Some(a) => {
            if has_bearer {
                return Err(ConfigError::new(
                    &f("authorization"),
                    "authorization is not compatible with bearer_token & bearer_token_file",
                ));
            }
            if basic_auth.is_some() {
                return Err(ConfigError::new(
                    &f("authorization"),
                    "at most one of basic_auth, oauth2 & authorization must be configured",
                ));
            }
            let credentials = text(a.credentials).filter(|s| !s.is_empty());
            let credentials_file = text(a.credentials_file).filter(|s| !s.is_empty());
            if credentials.is_some() && credentials_file.is_some() {
                return Err(ConfigError::new(
                    &f("authorization"),
                    "at most one of authorization credentials & credentials_file must be configured",
                ));
            }
            let kind = text(a.kind)
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| "Bearer".to_string());
            if kind.trim().eq_ignore_ascii_case("basic") {
                return Err(ConfigError::new(
                    &f("authorization.type"),
                    r#"authorization type cannot be set to "basic", use "basic_auth" instead"#,
                ));
            }
            Some(Authorization {
                kind: kind.trim().to_string(),
                credentials: credentials.map(Secret),
                credentials_file,
            })
        }
        None if has_bearer => Some(Authorization {
            kind: "Bearer".to_string(),
            credentials: bearer.map(Secret),
            credentials_file: bearer_file,
        }),
        None => None,
    };
    let tls = match tls {
        None => TlsConfig::default(),
        Some(t) => resolve_tls(&f("tls_config"), t)?,
    };
    Ok(HttpClientConfig {
        basic_auth,
        authorization,
        tls,
        proxy_url: text(proxy_url).filter(|s| !s.is_empty()),
        follow_redirects: follow_redirects.unwrap_or(true),
        enable_http2: enable_http2.unwrap_or(true),
    })
}

/// Validates a `tls_config` as Prometheus 2.42 does (its messages are
/// promtool's), plus what Emberlens cannot honour: a `max_version` below
/// TLS 1.2 (rustls speaks 1.2 and 1.3 only) or below `min_version`
/// (Prometheus fails every request instead). Empty strings mean unset.
fn resolve_tls(at: &str, t: RawTls) -> Result<TlsConfig, ConfigError> {
    let nonempty = |v: Option<Text>| text(v).filter(|s| !s.is_empty());
    let version = |name: &str, v: Option<Text>| -> Result<Option<TlsVersion>, ConfigError> {
        match nonempty(v) {
            None => Ok(None),
            Some(s) => TlsVersion::parse(&s).map(Some).ok_or_else(|| {
                ConfigError::new(&format!("{at}.{name}"), format!("unknown TLS version: {s}"))
            }),
        }
    };
    let cfg = TlsConfig {
        ca_file: nonempty(t.ca_file),
        cert_file: nonempty(t.cert_file),
        key_file: nonempty(t.key_file),
        server_name: nonempty(t.server_name),
        insecure_skip_verify: t.insecure_skip_verify.unwrap_or(false),
        min_version: version("min_version", t.min_version)?,
        max_version: version("max_version", t.max_version)?,
    };
    match (&cfg.cert_file, &cfg.key_file) {
        (Some(cert), None) => {
            return Err(ConfigError::new(
                at,
                format!("client cert file {cert:?} specified without client key file"),
            ));
        }
        (None, Some(key)) => {
            return Err(ConfigError::new(
                at,
                format!("client key file {key:?} specified without client cert file"),
            ));
        }
        _ => {}
    }
    if let Some(max) = cfg.max_version {
        if cfg.min_version.is_some_and(|min| max < min) {
            return Err(ConfigError::new(
                &format!("{at}.max_version"),
                "tls_config.max_version must be greater than or equal to tls_config.min_version if both are specified",
            ));
        }
        if max < TlsVersion::Tls12 {
            return Err(ConfigError::new(
                &format!("{at}.max_version"),
                format!(
                    "{} is not supported: Emberlens speaks TLS 1.2 and 1.3 only",
                    max.as_str()
                ),
            ));
        }
    }
    Ok(cfg)
}

fn resolve_relabels(
    field: &str,
    raw: Option<Vec<Option<RawRelabel>>>,
    kind: &str,
) -> Result<Vec<RelabelConfig>, ConfigError> {
    let mut out = Vec::new();
    for (j, r) in raw.unwrap_or_default().into_iter().enumerate() {
        let at = format!("{field}[{j}]");
        let Some(r) = r else {
            return Err(ConfigError::new(
                &at,
                format!("empty or null {kind} relabeling rule in scrape config"),
            ));
        };
        out.push(resolve_relabel(&at, r)?);
    }
    Ok(out)
}

/// Validates one rule as Prometheus's `relabel.Config.Validate`.
fn resolve_relabel(at: &str, r: RawRelabel) -> Result<RelabelConfig, ConfigError> {
    let err = |m: String| ConfigError::new(at, m);
    let action_text = text(r.action).unwrap_or_else(|| "replace".to_string());
    let action = if action_text.is_empty() {
        return Err(err("relabel action cannot be empty".to_string()));
    } else {
        Action::parse(&action_text)
            .ok_or_else(|| err(format!("unknown relabel action {action_text:?}")))?
    };
    let source_set = r.source_labels.is_some();
    let source_labels: Vec<String> = r
        .source_labels
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.0)
        .collect();
    check_label_names(&format!("{at}.source_labels"), None, source_labels.iter())?;
    let separator = text(r.separator).unwrap_or_else(|| DEFAULT_SEPARATOR.to_string());
    let regex_text = text(r.regex).unwrap_or_else(|| DEFAULT_REGEX.to_string());
    let regex = RelabelRegex::new(&regex_text).map_err(|e| {
        ConfigError::new(
            &format!("{at}.regex"),
            format!("invalid regex {regex_text:?}: {e}"),
        )
    })?;
    let modulus = r.modulus.unwrap_or(0);
    let target_label = text(r.target_label).unwrap_or_default();
    let replacement = text(r.replacement).unwrap_or_else(|| DEFAULT_REPLACEMENT.to_string());

    let needs_target = matches!(
        action,
        Action::Replace
            | Action::HashMod
            | Action::Lowercase
            | Action::Uppercase
            | Action::KeepEqual
            | Action::DropEqual
    );
    if modulus == 0 && action == Action::HashMod {
        return Err(err(
            "relabel configuration for hashmod requires non-zero modulus".into(),
        ));
    }
    if needs_target && target_label.is_empty() {
        return Err(err(format!(
            "relabel configuration for {action} action requires 'target_label' value"
        )));
    }
    let invalid_target = || {
        err(format!(
            "{target_label:?} is invalid 'target_label' for {action} action"
        ))
    };
    // A target with `$` references: letters, `_`, `$name` or `${name}` runs.
    let template =
        Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{[0-9A-Za-z_]+\}|[0-9A-Za-z_]+))+[0-9A-Za-z_]*)+$")
            .map_err(|e| err(e.to_string()))?;
    let target_ok = match action {
        Action::Replace if target_label.contains('$') => template.is_match(&target_label),
        Action::Replace
        | Action::HashMod
        | Action::Lowercase
        | Action::Uppercase
        | Action::KeepEqual
        | Action::DropEqual => is_valid_label_name(&target_label),
        _ => true,
    };
    if !target_ok {
        return Err(invalid_target());
    }
    let equal_or_case = matches!(
        action,
        Action::Lowercase | Action::Uppercase | Action::KeepEqual | Action::DropEqual
    );
    if equal_or_case && replacement != DEFAULT_REPLACEMENT {
        return Err(err(format!(
            "'replacement' can not be set for {action} action"
        )));
    }
    if action == Action::LabelMap && !template.is_match(&replacement) {
        return Err(err(format!(
            "{replacement:?} is invalid 'replacement' for {action} action"
        )));
    }
    if matches!(action, Action::KeepEqual | Action::DropEqual)
        && (regex_text != DEFAULT_REGEX || modulus != 0 || separator != DEFAULT_SEPARATOR)
    {
        return Err(err(format!(
            "{action} action requires only 'source_labels' and `target_label`, and no other fields"
        )));
    }
    if matches!(action, Action::LabelDrop | Action::LabelKeep)
        && (source_set
            || !target_label.is_empty()
            || modulus != 0
            || separator != DEFAULT_SEPARATOR
            || replacement != DEFAULT_REPLACEMENT)
    {
        return Err(err(format!(
            "{action} action requires only 'regex', and no other fields"
        )));
    }
    Ok(RelabelConfig {
        source_labels,
        separator,
        regex,
        modulus,
        target_label,
        replacement,
        action,
    })
}

fn resolve_profiling(
    at: &str,
    p: RawProfiling,
    scrape_interval_ms: i64,
) -> Result<ProfilingConfig, ConfigError> {
    let prefix = text(p.path_prefix).unwrap_or_default();
    let prefix = prefix.trim_end_matches('/');
    let delta_field = format!("{at}.delta_profiling_duration");
    let delta_profiling_ms = duration(&delta_field, p.delta_profiling_duration)?
        .unwrap_or_else(|| defaults::DELTA_PROFILING_MS.min(scrape_interval_ms - 1_000));
    if delta_profiling_ms < 1_000 || delta_profiling_ms >= scrape_interval_ms {
        return Err(ConfigError::new(
            &delta_field,
            format!(
                "delta profiling duration must be at least 1s and below the scrape interval ({} ms)",
                scrape_interval_ms
            ),
        ));
    }
    let mut pp = p.pprof_config.unwrap_or_default();
    let mut endpoints = Vec::new();
    for (name, path, on) in PROFILE_TYPES {
        let raw = match name {
            "process_cpu" => pp.process_cpu.take(),
            "memory" => pp.memory.take(),
            "goroutine" => pp.goroutine.take(),
            "mutex" => pp.mutex.take(),
            "block" => pp.block.take(),
            _ => pp.heap.take(),
        };
        let (enabled, path, delta) = match raw {
            None => (on, path.to_string(), name == "process_cpu"),
            Some(r) => (
                r.enabled.unwrap_or(on),
                text(r.path)
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| path.to_string()),
                r.delta.unwrap_or(name == "process_cpu"),
            ),
        };
        if enabled {
            endpoints.push(profile_endpoint(at, name, prefix, path, delta)?);
        }
    }
    for (j, c) in pp.custom.unwrap_or_default().into_iter().enumerate() {
        let field = format!("{at}.pprof_config.custom[{j}]");
        let name = text(c.name).unwrap_or_default();
        let path = text(c.path).unwrap_or_default();
        if name.is_empty() || path.is_empty() {
            return Err(ConfigError::new(
                &field,
                "a custom profile needs a name and a path",
            ));
        }
        if PROFILE_TYPES.iter().any(|(n, _, _)| *n == name)
            || endpoints.iter().any(|e| e.name == name)
        {
            return Err(ConfigError::new(
                &field,
                format!("duplicate profile name {name:?}"),
            ));
        }
        if c.enabled.unwrap_or(true) {
            endpoints.push(profile_endpoint(
                &field,
                &name,
                prefix,
                path,
                c.delta.unwrap_or(false),
            )?);
        }
    }
    Ok(ProfilingConfig {
        endpoints,
        delta_profiling_ms,
    })
}

fn profile_endpoint(
    at: &str,
    name: &str,
    prefix: &str,
    path: String,
    delta: bool,
) -> Result<ProfileEndpoint, ConfigError> {
    if !path.starts_with('/') {
        return Err(ConfigError::new(
            at,
            format!("profile path {path:?} of {name:?} must start with '/'"),
        ));
    }
    Ok(ProfileEndpoint {
        name: name.to_string(),
        path: format!("{prefix}{path}"),
        delta,
    })
}
