//! From a loaded configuration to the targets to scrape, as Prometheus's
//! `PopulateLabels` does it: each static or file-SD target becomes a label
//! set (`__address__`, `__scheme__`, `__metrics_path__`,
//! `__scrape_interval__`, `__scrape_timeout__`, `job`, `__param_<name>`
//! and the group's labels), `relabel_configs` run over it (a dropped set is
//! a dropped target), `instance` defaults to `__address__`, and the
//! `__`-prefixed labels are removed after the URL, interval and timeout are
//! read from them.
//!
//! File-SD files are read when the targets are built (at start-up, on each
//! reload, and when [`file_sd_signature`] sees them change), relative to the
//! config file's directory; a file that cannot be read or parsed is logged
//! and contributes no targets, as in Prometheus.

use std::path::{Path, PathBuf};
use std::time::Duration;

use emberlens_config::{Config, FileSdFormat, ScrapeConfig, TargetGroup, parse_file_sd};
use emberlens_model::{Labels, format_duration_ms, parse_duration_ms};

use crate::scrape::{Auth, DEFAULT_BODY_LIMIT_BYTES, LabelLimits, Target};
use crate::tls::TlsSettings;

/// A target that `relabel_configs` dropped (or that lacks an address).
#[derive(Clone, Debug, PartialEq)]
pub struct DroppedTarget {
    /// The scrape pool.
    pub pool: String,
    /// Its labels before relabeling.
    pub discovered: Labels,
}

/// Everything a configuration scrapes, and what it dropped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetSet {
    /// Targets to scrape, in config order.
    pub active: Vec<Target>,
    /// Targets relabeling dropped.
    pub dropped: Vec<DroppedTarget>,
}

/// Builds the targets of `cfg`. `base_dir` resolves relative file paths
/// (file-SD files, password and credentials files, `tls_config` files).
/// The `tls_config` files are read here, once per scrape config; one that
/// does not read or parse fails every scrape of the config's targets with
/// the reason (Prometheus drops the pool and logs it instead).
pub fn build(cfg: &Config, base_dir: &Path) -> TargetSet {
    let mut out = TargetSet::default();
    for sc in &cfg.scrape_configs {
        let mut groups: Vec<TargetGroup> = sc.static_configs.clone();
        groups.extend(file_sd_groups(sc, base_dir));
        // Not logged here: each scrape reports it (and the loop logs it).
        let tls = TlsSettings::load(&sc.http.tls, base_dir).map_err(|e| e.to_string());
        let mut pool = Vec::new();
        for group in &groups {
            for address in &group.targets {
                let discovered = discovered_labels(sc, group, address);
                match populate(sc, &discovered, base_dir, &tls) {
                    Some(t) => pool.push(t),
                    None => out.dropped.push(DroppedTarget {
                        pool: sc.job_name.clone(),
                        discovered,
                    }),
                }
            }
        }
        // Over `target_limit`, every target of the pool fails (Prometheus).
        if sc.target_limit > 0 && pool.len() as u64 > sc.target_limit {
            let e = format!(
                "target_limit exceeded (number of targets: {}, limit: {})",
                pool.len(),
                sc.target_limit
            );
            for t in &mut pool {
                t.forced_error = Some(e.clone());
            }
        }
        out.active.extend(pool);
    }
    out
}

/// `file` relative to `base_dir` unless absolute.
pub fn resolve(base_dir: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}

/// The files a file-SD pattern names: itself, or, when its last path
/// segment holds `*` or `?` (as Prometheus's `filepath.Glob` patterns such as
/// `targets/*.json`), the matching files of that directory, sorted.
pub fn sd_files(base_dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let path = resolve(base_dir, pattern);
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return vec![path];
    };
    if !name.contains(['*', '?']) {
        return vec![path];
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| !n.starts_with('.') && wildcard_match(name, n))
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// `*` matches any run of characters, `?` one character.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn file_sd_groups(sc: &ScrapeConfig, base_dir: &Path) -> Vec<TargetGroup> {
    let mut out = Vec::new();
    for sd in &sc.file_sd_configs {
        for pattern in &sd.files {
            for path in sd_files(base_dir, pattern) {
                let Some(format) = path.to_str().and_then(FileSdFormat::from_path) else {
                    continue;
                };
                let bytes = match std::fs::read(&path) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, job = %sc.job_name, "reading a file-SD file");
                        continue;
                    }
                };
                match parse_file_sd(&bytes, format) {
                    Ok(groups) => {
                        let filepath = path.display().to_string();
                        out.extend(groups.into_iter().map(|mut g| {
                            g.labels = g.labels.with("__meta_filepath", &filepath);
                            g
                        }));
                    }
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, job = %sc.job_name, "parsing a file-SD file");
                    }
                }
            }
        }
    }
    out
}

/// Each file-SD file with its modification time and length (`None`: missing).
pub type FileSdSignature = Vec<(PathBuf, Option<(std::time::SystemTime, u64)>)>;

/// What the file-SD files of `cfg` look like on disk (path, modification
/// time, length; `None` for a missing file): when it changes, the targets
/// are rebuilt.
pub fn file_sd_signature(cfg: &Config, base_dir: &Path) -> FileSdSignature {
    cfg.scrape_configs
        .iter()
        .flat_map(|sc| &sc.file_sd_configs)
        .flat_map(|sd| &sd.files)
        .flat_map(|f| {
            let mut files = sd_files(base_dir, f);
            // A glob matching nothing still counts: a file appearing changes it.
            if files.is_empty() {
                files.push(resolve(base_dir, f));
            }
            files
        })
        .map(|path| {
            let meta = std::fs::metadata(&path)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            (path, meta)
        })
        .collect()
}

/// The label set of one discovered target, before relabeling.
fn discovered_labels(sc: &ScrapeConfig, group: &TargetGroup, address: &str) -> Labels {
    let mut labels = group.labels.with("__address__", address);
    let defaults = [
        ("job", sc.job_name.clone()),
        ("__scheme__", sc.scheme.as_str().to_string()),
        ("__metrics_path__", sc.metrics_path.clone()),
        (
            "__scrape_interval__",
            format_duration_ms(sc.scrape_interval_ms),
        ),
        (
            "__scrape_timeout__",
            format_duration_ms(sc.scrape_timeout_ms),
        ),
    ];
    for (name, value) in defaults {
        if labels.get(name).is_empty() {
            labels = labels.with(name, &value);
        }
    }
    for (name, values) in &sc.params {
        let label = format!("__param_{name}");
        if let Some(first) = values.first()
            && labels.get(&label).is_empty()
        {
            labels = labels.with(&label, first);
        }
    }
    labels
}

/// Relabels one discovered target; `None` when dropped or unusable. `tls`
/// is the scrape config's loaded `tls_config`, or why it did not load.
fn populate(
    sc: &ScrapeConfig,
    discovered: &Labels,
    base_dir: &Path,
    tls: &Result<Option<TlsSettings>, String>,
) -> Option<Target> {
    let labels = emberlens_config::process(discovered, &sc.relabel_configs)?;
    let address = labels.get("__address__").to_string();
    if address.is_empty() {
        return None;
    }
    let ms = |name: &str, fallback: i64| {
        parse_duration_ms(labels.get(name))
            .ok()
            .filter(|ms| *ms > 0)
            .unwrap_or(fallback)
    };
    let interval_ms = ms("__scrape_interval__", sc.scrape_interval_ms);
    let timeout_ms = ms("__scrape_timeout__", sc.scrape_timeout_ms).min(interval_ms);
    let url = scrape_url(sc, &labels, &address);
    let mut final_labels = labels.clone();
    if final_labels.get("instance").is_empty() {
        final_labels = final_labels.with("instance", &address);
    }
    let internal: Vec<String> = final_labels
        .iter()
        .filter(|l| l.name.starts_with("__"))
        .map(|l| l.name.clone())
        .collect();
    let final_labels = final_labels.without(&internal);
    Some(Target {
        pool: sc.job_name.clone(),
        discovered: discovered.clone(),
        labels: final_labels,
        url,
        interval: Duration::from_millis(interval_ms as u64),
        timeout: Duration::from_millis(timeout_ms as u64),
        honor_labels: sc.honor_labels,
        honor_timestamps: sc.honor_timestamps,
        sample_limit: usize::try_from(sc.sample_limit).unwrap_or(usize::MAX),
        label_limits: LabelLimits {
            labels: usize::try_from(sc.label_limit).unwrap_or(usize::MAX),
            name_length: usize::try_from(sc.label_name_length_limit).unwrap_or(usize::MAX),
            value_length: usize::try_from(sc.label_value_length_limit).unwrap_or(usize::MAX),
        },
        body_size_limit: match usize::try_from(sc.body_size_limit_bytes) {
            Ok(0) => DEFAULT_BODY_LIMIT_BYTES,
            Ok(n) => n,
            Err(_) => usize::MAX,
        },
        metric_relabel: sc.metric_relabel_configs.clone(),
        auth: auth(sc, base_dir),
        follow_redirects: sc.http.follow_redirects,
        proxy_url: sc.http.proxy_url.clone(),
        tls: tls.as_ref().ok().cloned().flatten(),
        forced_error: tls.as_ref().err().cloned(),
        profiling: sc.profiling.clone(),
    })
}

/// `scheme://address/path?params`, the `__param_*` labels overriding the
/// first value of the config's `params` (as Prometheus does).
fn scrape_url(sc: &ScrapeConfig, labels: &Labels, address: &str) -> String {
    let mut params: Vec<(String, Vec<String>)> = sc.params.clone();
    for l in labels.iter() {
        let Some(name) = l.name.strip_prefix("__param_") else {
            continue;
        };
        match params.iter_mut().find(|(n, _)| n == name) {
            Some((_, values)) if !values.is_empty() => values[0].clone_from(&l.value),
            Some((_, values)) => values.push(l.value.clone()),
            None => params.push((name.to_string(), vec![l.value.clone()])),
        }
    }
    let scheme = match labels.get("__scheme__") {
        "" => sc.scheme.as_str(),
        s => s,
    };
    let path = labels.get("__metrics_path__");
    let slash = if path.starts_with('/') { "" } else { "/" };
    let mut url = format!("{scheme}://{address}{slash}{path}");
    if !params.is_empty() {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (name, values) in &params {
            for v in values {
                q.append_pair(name, v);
            }
        }
        url.push('?');
        url.push_str(&q.finish());
    }
    url
}

fn auth(sc: &ScrapeConfig, base_dir: &Path) -> Option<Auth> {
    if let Some(b) = &sc.http.basic_auth {
        return Some(Auth::Basic {
            username: b.username.clone(),
            password: b.password.clone(),
            password_file: b.password_file.as_deref().map(|f| resolve(base_dir, f)),
        });
    }
    sc.http.authorization.as_ref().map(|a| Auth::Token {
        kind: a.kind.clone(),
        credentials: a.credentials.clone(),
        credentials_file: a.credentials_file.as_deref().map(|f| resolve(base_dir, f)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::unwrap_used)] // test input is a constant
    fn build_text(yaml: &str) -> TargetSet {
        build(&Config::parse(yaml).unwrap(), Path::new("."))
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn file_sd_globs_match_the_last_segment() {
        assert!(wildcard_match("tg_*.json", "tg_a.json"));
        assert!(wildcard_match("*.json", "x.y.json"));
        assert!(wildcard_match("a?c*", "abcdef"));
        assert!(!wildcard_match("tg_*.json", "tg_a.yml"));
        assert!(!wildcard_match("a*b*c", "ab"));
        let dir = std::env::temp_dir().join(format!("emberlens-sdglob-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["tg_b.json", "tg_a.json", "other.json", ".tg_hidden.json"] {
            std::fs::write(dir.join(f), "[]").unwrap();
        }
        let got = sd_files(&dir, "tg_*.json");
        assert_eq!(got, [dir.join("tg_a.json"), dir.join("tg_b.json")]);
        assert_eq!(sd_files(&dir, "plain.json"), [dir.join("plain.json")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn static_targets_get_prometheus_labels_and_urls() {
        let set = build_text(
            r#"
global: {scrape_interval: 15s}
scrape_configs:
- job_name: node
  scheme: http
  metrics_path: /probe
  params: {module: [http_2xx, x], target: [a]}
  static_configs:
  - targets: ["h1:9100", "h2:9100"]
    labels: {env: prod}
  relabel_configs:
  - {source_labels: [__address__], regex: "h2:.*", action: drop}
  - {source_labels: [__address__], regex: "(.*):.*", target_label: host, replacement: "$1"}
  - {target_label: __param_target, replacement: b}
"#,
        );
        assert_eq!(set.active.len(), 1);
        let t = &set.active[0];
        assert_eq!(
            t.labels.to_string(),
            r#"{env="prod", host="h1", instance="h1:9100", job="node"}"#
        );
        assert_eq!(
            t.url,
            "http://h1:9100/probe?module=http_2xx&module=x&target=b"
        );
        assert_eq!(t.interval, Duration::from_secs(15));
        assert_eq!(t.timeout, Duration::from_secs(10));
        assert_eq!(set.dropped.len(), 1);
        assert_eq!(set.dropped[0].discovered.get("__address__"), "h2:9100");
        assert_eq!(set.dropped[0].discovered.get("__scrape_interval__"), "15s");
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn an_unreadable_tls_file_fails_the_pool_with_the_resolved_path() {
        let cfg = Config::parse(
            "scrape_configs:\n- job_name: s\n  scheme: https\n  tls_config: {ca_file: certs/ca.pem}\n  static_configs: [{targets: [h:1, h:2]}]\n",
        )
        .unwrap();
        let set = build(&cfg, Path::new("/nonexistent-emberlens-dir"));
        assert_eq!(set.active.len(), 2);
        for t in &set.active {
            let e = t.forced_error.as_deref().unwrap();
            assert!(
                e.starts_with("unable to read CA cert /nonexistent-emberlens-dir/certs/ca.pem: "),
                "{e}"
            );
            assert!(t.tls.is_none() && t.url.starts_with("https://h:"));
        }
    }

    #[test]
    fn target_limit_fails_the_whole_pool() {
        let set = build_text(
            "scrape_configs:\n- job_name: a\n  target_limit: 1\n  static_configs: [{targets: [h1:1, h2:1]}]\n- job_name: b\n  target_limit: 1\n  static_configs: [{targets: [h1:1]}]\n",
        );
        let errors: Vec<Option<&str>> = set
            .active
            .iter()
            .map(|t| t.forced_error.as_deref())
            .collect();
        let e = "target_limit exceeded (number of targets: 2, limit: 1)";
        assert_eq!(errors, [Some(e), Some(e), None]);
    }
}
