//! Defaults, inheritance and the resolved model of `Config::parse`.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use emberlens_config::{Action, Config, Scheme};

fn parse(text: &str) -> Config {
    Config::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    Config::parse(text).unwrap_err().to_string()
}

#[test]
fn empty_file_is_prometheus_defaults() {
    for text in [
        "",
        "# only a comment\n",
        "global:\n",
        "global: {}\nscrape_configs: []\n",
    ] {
        let c = parse(text);
        assert_eq!(c.global.scrape_interval_ms, 60_000);
        assert_eq!(c.global.scrape_timeout_ms, 10_000);
        assert_eq!(c.global.evaluation_interval_ms, 60_000);
        assert!(c.scrape_configs.is_empty());
    }
}

#[test]
fn job_defaults_and_inheritance() {
    let c = parse(
        "global:\n  scrape_interval: 15s\n  body_size_limit: 1MB\n  sample_limit: 10\nscrape_configs:\n- job_name: a\n- job_name: b\n  scrape_interval: 5s\n  sample_limit: 20\n",
    );
    let a = &c.scrape_configs[0];
    assert_eq!(
        (a.scrape_interval_ms, a.scrape_timeout_ms),
        (15_000, 10_000)
    );
    assert_eq!(a.metrics_path, "/metrics");
    assert_eq!(a.scheme, Scheme::Http);
    assert!(a.honor_timestamps && !a.honor_labels);
    assert_eq!((a.body_size_limit_bytes, a.sample_limit), (1 << 20, 10));
    // The timeout never exceeds the job's own interval.
    let b = &c.scrape_configs[1];
    assert_eq!((b.scrape_interval_ms, b.scrape_timeout_ms), (5_000, 5_000));
    assert_eq!(b.sample_limit, 20);
    assert!(b.http.follow_redirects && b.http.enable_http2);
}

#[test]
fn global_timeout_defaults_below_a_short_interval() {
    let c = parse("global:\n  scrape_interval: 4s\n");
    assert_eq!(c.global.scrape_timeout_ms, 4_000);
}

#[test]
fn bearer_token_becomes_authorization_and_secrets_stay_hidden() {
    let c =
        parse("scrape_configs:\n- job_name: a\n  bearer_token: topsecret\n  basic_auth: null\n");
    let auth = c.scrape_configs[0].http.authorization.as_ref().unwrap();
    assert_eq!(auth.kind, "Bearer");
    assert_eq!(auth.credentials.as_ref().unwrap().0, "topsecret");
    assert!(!format!("{c:?}").contains("topsecret"));
}

#[test]
fn relabel_defaults_and_case_insensitive_action() {
    let c = parse(
        "scrape_configs:\n- job_name: a\n  relabel_configs:\n  - target_label: x\n  - action: LabelDrop\n    regex: y\n",
    );
    let r = &c.scrape_configs[0].relabel_configs;
    assert_eq!(r[0].action, Action::Replace);
    assert_eq!(
        (
            r[0].separator.as_str(),
            r[0].regex.as_str(),
            r[0].replacement.as_str()
        ),
        (";", "(.*)", "$1")
    );
    assert_eq!(r[1].action, Action::LabelDrop);
}

#[test]
fn scalars_are_read_as_go_reads_them() {
    let c = parse(
        "scrape_configs:\n- job_name: 1\n  static_configs:\n  - targets: [9090]\n    labels: {on: true}\n",
    );
    let j = &c.scrape_configs[0];
    assert_eq!(j.job_name, "1");
    assert_eq!(j.static_configs[0].targets, ["9090"]);
    assert_eq!(j.static_configs[0].labels.get("on"), "true");
}

#[test]
fn ignored_sections_are_listed() {
    let c = parse(
        "alerting:\n  alertmanagers: []\nremote_write:\n- url: http://x\nscrape_configs:\n- job_name: k\n  kubernetes_sd_configs:\n  - role: pod\n",
    );
    assert_eq!(
        c.ignored,
        [
            "alerting",
            "scrape_configs[0] (job \"k\").kubernetes_sd_configs"
        ]
    );
}

#[test]
fn errors_name_field_and_line() {
    assert_eq!(
        err(
            "scrape_configs:\n- job_name: a\n- job_name: b\n  scrape_interval: 10s\n  scrape_timeout: 11s\n"
        ),
        "line 3: scrape_configs[1] (job \"b\").scrape_timeout: scrape timeout greater than scrape interval for scrape config with job name \"b\""
    );
    assert_eq!(
        err("scrape_configs:\n- job_name: a\n  honor_labels: maybe\n"),
        "line 3, column 17: scrape_configs[0].honor_labels: invalid type: string \"maybe\", expected a boolean"
    );
    assert_eq!(err("scheme: https\n").split(',').next().unwrap(), "line 1");
    assert!(
        err("scrape_configs:\n- job_name: a\n  scheme: ftp\n")
            .contains("unsupported scheme \"ftp\"")
    );
}

#[test]
fn profiling_defaults_follow_alloy() {
    let c =
        parse("scrape_configs:\n- job_name: p\n  scrape_interval: 15s\n  profiling_config: {}\n");
    let p = c.scrape_configs[0].profiling.as_ref().unwrap();
    let names: Vec<_> = p.endpoints.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["process_cpu", "memory", "goroutine", "mutex", "block"]
    );
    assert_eq!(p.delta_profiling_ms, 14_000);
    assert_eq!(
        p.endpoints[0].path_and_query(p.delta_profiling_ms),
        "/debug/pprof/profile?seconds=14"
    );
    assert_eq!(
        p.endpoints[1].path_and_query(p.delta_profiling_ms),
        "/debug/pprof/allocs"
    );
    assert!(c.scrape_configs[1..].is_empty());
    let none = parse("scrape_configs:\n- job_name: p\n");
    assert!(none.scrape_configs[0].profiling.is_none());
}

#[test]
fn profiling_options() {
    let c = parse(
        "scrape_configs:\n- job_name: p\n  scrape_interval: 10s\n  profiling_config:\n    path_prefix: /app/\n    pprof_config:\n      memory: {enabled: false}\n      mutex: {enabled: false}\n      block: {enabled: false}\n      goroutine: {enabled: false}\n      heap: {enabled: true}\n      custom:\n      - {name: fgprof, path: /debug/fgprof, delta: true}\n",
    );
    let p = c.scrape_configs[0].profiling.as_ref().unwrap();
    let got: Vec<_> = p
        .endpoints
        .iter()
        .map(|e| e.path_and_query(p.delta_profiling_ms))
        .collect();
    // With a 10s interval the CPU window defaults to 9s.
    assert_eq!(
        got,
        [
            "/app/debug/pprof/profile?seconds=9",
            "/app/debug/pprof/heap",
            "/app/debug/fgprof?seconds=9"
        ]
    );
    assert!(err("scrape_configs:\n- job_name: p\n  scrape_interval: 10s\n  profiling_config: {delta_profiling_duration: 10s}\n").contains("delta_profiling_duration"));
    assert!(
        err("scrape_configs:\n- job_name: p\n  profiling_config: {pprof_config: {cpu: {}}}\n")
            .contains("unknown field `cpu`")
    );
    assert!(err("scrape_configs:\n- job_name: p\n  profiling_config: {pprof_config: {custom: [{name: memory, path: /x}]}}\n").contains("duplicate profile name"));
}

#[test]
fn no_panic_on_odd_input() {
    for text in [
        "[",
        "- a",
        "42",
        "null",
        "~",
        "scrape_configs: 3",
        "global: []",
        "scrape_configs:\n- job_name: [a]\n",
        "scrape_configs:\n- job_name: a\n  relabel_configs:\n  - regex: '\\p{Nope}'\n    target_label: x\n",
        "scrape_configs:\n- job_name: a\n  body_size_limit: 99999999999999EB\n",
        "scrape_configs:\n- job_name: a\n  scrape_interval: 9999999999999999999y\n",
        "\u{feff}global: {}\n",
        "a: &x [*x]\n",
    ] {
        let _ = Config::parse(text);
    }
}

#[test]
fn remote_write_takes_prometheus_defaults() {
    let c = parse("remote_write:\n- url: http://127.0.0.1:9201/api/v1/write\n");
    let rw = &c.remote_write[0];
    assert_eq!(rw.url, "http://127.0.0.1:9201/api/v1/write");
    assert_eq!(rw.name, None);
    assert_eq!(rw.remote_timeout_ms, 30_000);
    // As Prometheus 2.42's /api/v1/status/config shows them.
    assert_eq!(rw.queue, emberlens_config::QueueConfig::default());
    assert_eq!(
        (
            rw.queue.capacity,
            rw.queue.max_shards,
            rw.queue.min_shards,
            rw.queue.max_samples_per_send,
            rw.queue.batch_send_deadline_ms,
            rw.queue.min_backoff_ms,
            rw.queue.max_backoff_ms,
            rw.queue.retry_on_http_429,
        ),
        (2500, 200, 1, 500, 5_000, 30, 5_000, false)
    );
    assert!(c.ignored.is_empty(), "{:?}", c.ignored);
}

#[test]
fn remote_write_settings_and_refusals() {
    let c = parse(
        "remote_write:\n- url: https://m/push\n  name: central\n  headers: {X-Scope-OrgID: a}\n  bearer_token: t\n  write_relabel_configs:\n  - {source_labels: [__name__], regex: go_.*, action: drop}\n  queue_config: {max_samples_per_send: 7, min_backoff: 1s, max_backoff: 2s, retry_on_http_429: true}\n  metadata_config: {send: false}\n",
    );
    let rw = &c.remote_write[0];
    assert_eq!(rw.name.as_deref(), Some("central"));
    assert_eq!(
        rw.headers.get("X-Scope-OrgID").map(String::as_str),
        Some("a")
    );
    assert_eq!(rw.write_relabel_configs.len(), 1);
    assert_eq!(rw.queue.max_samples_per_send, 7);
    assert_eq!(
        (rw.queue.min_backoff_ms, rw.queue.max_backoff_ms),
        (1000, 2000)
    );
    assert!(rw.queue.retry_on_http_429);
    assert_eq!(rw.http.authorization.as_ref().unwrap().kind, "Bearer");
    assert_eq!(c.ignored, ["remote_write[0].metadata_config"]);
    for (text, want) in [
        (
            "remote_write:\n- name: a\n",
            "remote_write[0].url: url for remote_write is empty",
        ),
        (
            "remote_write:\n- url: http://x\n  headers: {content-type: x}\n",
            "remote_write[0].headers: Content-Type is a reserved header. It must not be changed",
        ),
        (
            "remote_write:\n- {url: http://x, name: a}\n- {url: http://y, name: a}\n",
            "remote_write[1]: found multiple remote write configs with job name \"a\"",
        ),
        (
            "remote_write:\n- url: ftp://x\n",
            "remote_write[0].url: \"ftp://x\" is not an http or https URL",
        ),
        (
            "remote_write:\n- url: http://x\n  queue_config: {max_samples_per_send: 0}\n",
            "remote_write[0].queue_config.max_samples_per_send: must be at least 1",
        ),
    ] {
        assert_eq!(err(text), want, "{text}");
    }
}

#[test]
fn tls_config_settings_and_refusals() {
    use emberlens_config::{TlsConfig, TlsVersion};
    let c = parse(
        "scrape_configs:\n- job_name: a\n  scheme: https\n  tls_config: {ca_file: ca.pem, cert_file: c.pem, key_file: k.pem, server_name: x.test, min_version: TLS12, max_version: TLS13}\n  static_configs: [{targets: [h:1]}]\nremote_write:\n- url: https://m/push\n  tls_config: {insecure_skip_verify: true, min_version: TLS10}\n",
    );
    assert_eq!(
        c.scrape_configs[0].http.tls,
        TlsConfig {
            ca_file: Some("ca.pem".into()),
            cert_file: Some("c.pem".into()),
            key_file: Some("k.pem".into()),
            server_name: Some("x.test".into()),
            insecure_skip_verify: false,
            min_version: Some(TlsVersion::Tls12),
            max_version: Some(TlsVersion::Tls13),
        }
    );
    let rw = &c.remote_write[0].http.tls;
    assert!(rw.insecure_skip_verify && rw.is_set());
    assert_eq!(rw.min_version, Some(TlsVersion::Tls10));
    // Empty strings are unset, as in Go.
    let empty = parse(
        "scrape_configs:\n- job_name: a\n  tls_config: {ca_file: '', cert_file: '', key_file: '', server_name: '', min_version: ''}\n",
    );
    assert!(!empty.scrape_configs[0].http.tls.is_set());

    let scrape = |tls: &str| {
        format!(
            "scrape_configs:\n- job_name: a\n  tls_config: {tls}\n  static_configs: [{{targets: [h:1]}}]\n"
        )
    };
    for (text, want) in [
        (
            scrape("{cert_file: c.pem}"),
            r#"line 2: scrape_configs[0] (job "a").tls_config: client cert file "c.pem" specified without client key file"#,
        ),
        (
            scrape("{key_file: k.pem, ca_file: ca.pem}"),
            r#"line 2: scrape_configs[0] (job "a").tls_config: client key file "k.pem" specified without client cert file"#,
        ),
        (
            scrape("{min_version: tls12}"),
            r#"line 2: scrape_configs[0] (job "a").tls_config.min_version: unknown TLS version: tls12"#,
        ),
        (
            scrape("{max_version: TLS14}"),
            r#"line 2: scrape_configs[0] (job "a").tls_config.max_version: unknown TLS version: TLS14"#,
        ),
        (
            scrape("{min_version: TLS13, max_version: TLS12}"),
            r#"line 2: scrape_configs[0] (job "a").tls_config.max_version: tls_config.max_version must be greater than or equal to tls_config.min_version if both are specified"#,
        ),
        (
            scrape("{max_version: TLS11}"),
            r#"line 2: scrape_configs[0] (job "a").tls_config.max_version: TLS11 is not supported: Emberlens speaks TLS 1.2 and 1.3 only"#,
        ),
        (
            "remote_write:\n- url: https://m/push\n  tls_config: {cert_file: c.pem}\n".to_string(),
            r#"remote_write[0].tls_config: client cert file "c.pem" specified without client key file"#,
        ),
    ] {
        assert_eq!(err(&text), want, "{text}");
    }
    // Unknown keys are refused, as Prometheus's strict unmarshalling does.
    let unknown = err(&scrape("{ca_pem: x}"));
    assert!(unknown.contains("unknown field `ca_pem`"), "{unknown}");
}
