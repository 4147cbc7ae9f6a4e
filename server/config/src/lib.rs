//! Emberlens's server configuration: the subset of Prometheus's
//! `prometheus.yml` that the server acts on, file-SD target files, and
//! Prometheus's relabeling.
//!
//! A pure library: callers pass text or bytes in (and read the files that
//! `file_sd_configs` and `*_file` settings name); nothing here does IO,
//! spawns or reads the clock. Nothing panics on input: every refusal is a
//! [`ConfigError`] naming the field and, where known, the line.
//!
//! ```
//! use emberlens_config::Config;
//! let cfg = Config::parse("scrape_configs:\n- job_name: node\n  static_configs:\n  - targets: [localhost:9100]\n").unwrap();
//! let job = &cfg.scrape_configs[0];
//! assert_eq!(job.scrape_interval_ms, 60_000); // Prometheus's default, from `global`
//! assert_eq!(job.metrics_path, "/metrics");
//! ```
//!
//! # What is accepted
//!
//! - `global`: `scrape_interval` (1m), `scrape_timeout` (10s, never above the
//!   interval), `evaluation_interval` (1m), `external_labels`, and the
//!   default limits `body_size_limit`, `sample_limit`, `label_limit`,
//!   `label_name_length_limit`, `label_value_length_limit`, `target_limit`.
//! - `scrape_configs[]`: `job_name`, `static_configs`, `file_sd_configs`
//!   (`files`, `refresh_interval`), `metrics_path`, `scheme`, `params`,
//!   `scrape_interval`, `scrape_timeout`, `honor_labels`, `honor_timestamps`,
//!   `basic_auth`, `authorization`, `bearer_token(_file)`, `tls_config`,
//!   `proxy_url`, `follow_redirects`, `enable_http2`, `relabel_configs`,
//!   `metric_relabel_configs`, the limits, and `profiling_config` (below).
//! - `remote_write[]`: `url`, `name`, `remote_timeout` (30s), `headers`
//!   (Prometheus's reserved ones refused), `write_relabel_configs`, the HTTP
//!   client settings of a scrape config, and `queue_config` with Prometheus
//!   2.42's defaults (`capacity` 2500, `max_shards` 200, `min_shards` 1,
//!   `max_samples_per_send` 500, `batch_send_deadline` 5s, `min_backoff`
//!   30ms, `max_backoff` 5s, `retry_on_http_429` false); duplicate names are
//!   refused. Beyond Prometheus, a non-HTTP(S) URL, `max_samples_per_send: 0`
//!   and `max_backoff` below `min_backoff` are refused. `metadata_config`,
//!   `send_exemplars`, `sigv4`, `azuread`, `oauth2` are accepted and listed
//!   in [`Config::ignored`].
//! - Accepted and listed in [`Config::ignored`] without their contents being
//!   checked: `alerting`, `remote_read`, `storage`,
//!   `tracing`, `runtime`, `otlp`, `scrape_config_files`, `oauth2`,
//!   `query_log_file` and the other service discoveries (`docker_sd_configs`,
//!   `kubernetes_sd_configs`, …), so a file written for Prometheus loads.
//! - Anything else is an error (Prometheus's strict unmarshalling), as are a
//!   duplicate `job_name`, a timeout above the interval, invalid label names,
//!   static targets containing `/` (a URL instead of `host:port`) when no
//!   relabeling could fix them, and relabel rules Prometheus refuses. One
//!   deliberate difference: a `scheme` other than `http`/`https` is refused
//!   here (Prometheus 2.42 accepts it and fails every scrape).
//!
//! # TLS: `tls_config`
//!
//! In a scrape config and in a `remote_write` entry: `ca_file`,
//! `cert_file`, `key_file`, `server_name`, `insecure_skip_verify`,
//! `min_version` and `max_version` (`TLS10` … `TLS13`), as in Prometheus
//! 2.42 (the inline `ca` / `cert` / `key` of later versions are refused as
//! unknown fields, as 2.42 does). Refused with promtool's messages: a
//! `cert_file` without `key_file` or the reverse, and an unknown version.
//! Refused beyond Prometheus (which fails every request instead): a
//! `max_version` below `min_version`, and a `max_version` below TLS12 (the
//! server speaks TLS 1.2 and 1.3 only). Paths are kept as written; the
//! server resolves relative ones against the config file's directory and
//! reads the files (this crate does no IO).
//!
//! # Profiles: `profiling_config`
//!
//! Pull-mode profiling in the style of Grafana Alloy's `pyroscope.scrape`
//! (whose YAML ancestor, Grafana Phlare, used these very keys):
//!
//! ```yaml
//! scrape_configs:
//!   - job_name: api
//!     static_configs: [{targets: ["api:6060"]}]
//!     profiling_config:
//!       delta_profiling_duration: 14s   # how long CPU is sampled per scrape
//!       path_prefix: /internal          # prepended to every path
//!       pprof_config:
//!         process_cpu: {enabled: true}  # /debug/pprof/profile?seconds=14
//!         memory: {enabled: true}       # /debug/pprof/allocs
//!         heap: {enabled: false}        # /debug/pprof/heap
//!         goroutine: {enabled: true}    # /debug/pprof/goroutine
//!         mutex: {enabled: true}        # /debug/pprof/mutex
//!         block: {enabled: false}       # /debug/pprof/block
//!         custom:
//!           - {name: fgprof, path: /debug/fgprof, delta: true}
//! ```
//!
//! Each type takes `enabled`, `path` and `delta` (a delta profile is
//! requested with `?seconds=N`, N = `delta_profiling_duration`); the
//! defaults are in [`PROFILE_TYPES`]: everything Alloy enables by default
//! (`process_cpu`, `memory`, `goroutine`, `mutex`, `block`), plus `heap`,
//! off by default because Go's `/debug/pprof/heap` and `/debug/pprof/allocs`
//! serve the same data (they differ only in the default sample type).
//! `delta_profiling_duration` defaults to 14s (Alloy's default) or 1s less
//! than the scrape interval when that is shorter, and must stay below the
//! interval. Without `profiling_config` no profiles are scraped.
//! Prometheus itself refuses this key, so a file using it is Emberlens-only.
//!
//! # Why `yaml_serde`
//!
//! `serde_yaml` is archived and `serde_yml` deprecated (and was unsound);
//! `yaml_serde` is the fork the YAML organization maintains, with
//! `serde_yaml`'s API and its error positions (`line 3 column 5`), and its
//! `deny_unknown_fields` behaves as Go's `yaml.UnmarshalStrict` needs.
//! `serde-saphyr` (pure Rust) was the alternative; we chose the fork with
//! the longer track record and the `Value` type the ignored sections use.
#![deny(missing_docs)]

mod config;
pub mod file_sd;
pub mod redact;
pub mod relabel;
pub mod units;

pub use config::{
    Authorization, BasicAuth, Config, ConfigError, FileSdConfig, GlobalConfig, HttpClientConfig,
    PROFILE_TYPES, ProfileEndpoint, ProfilingConfig, QueueConfig, RESERVED_HEADERS,
    RemoteWriteConfig, Scheme, ScrapeConfig, Secret, TargetGroup, Text, TlsConfig, TlsVersion,
    defaults,
};
pub use file_sd::{FileSdFormat, parse_file_sd};
pub use redact::redact_secrets;
pub use relabel::{Action, RelabelConfig, RelabelRegex, process};
