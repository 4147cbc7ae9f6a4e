//! `tls_config` end to end: the `emberlens` binary scrapes HTTPS exporters
//! and remote-writes to an HTTPS receiver, all on loopback, with a CA and
//! certificates made by the test (rcgen) and servers speaking rustls.
//!
//! Each check goes through the HTTP API: samples stored (`/api/v1/query`),
//! `up` and the reason of a failure (`/api/v1/targets` `lastError`).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

use common::TempDir;

// ------------------------------------------------------------------ PKI

/// A certificate authority made for the test.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A certificate and its key, PEM.
struct Leaf {
    cert_pem: String,
    key_pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = p.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `names` (DNS names or IP addresses) signed by this CA.
    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
        p.distinguished_name.push(DnType::CommonName, names[0]);
        p.extended_key_usages = vec![usage];
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A self-signed certificate for 127.0.0.1, signed by no CA.
fn self_signed() -> Leaf {
    let key = KeyPair::generate().unwrap();
    let p = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = p.self_signed(&key).unwrap();
    Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn server_leaf(ca: &Ca) -> Leaf {
    ca.issue(
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    )
}

// ------------------------------------------------------------------ HTTPS servers

/// How an HTTPS test server speaks TLS.
struct ServerTls<'a> {
    leaf: &'a Leaf,
    /// Require a client certificate signed by this CA.
    client_ca: Option<&'a Ca>,
    /// Speak TLS 1.2 only.
    tls12_only: bool,
}

impl<'a> ServerTls<'a> {
    fn new(leaf: &'a Leaf) -> Self {
        ServerTls {
            leaf,
            client_ca: None,
            tls12_only: false,
        }
    }

    fn config(&self) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = if self.tls12_only {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS12, &rustls::version::TLS13]
        };
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .unwrap();
        let builder = match self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots
                    .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap())
                    .unwrap();
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        let chain = CertificateDer::pem_slice_iter(self.leaf.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(self.leaf.key_pem.as_bytes()).unwrap();
        builder.with_single_cert(chain, key).unwrap()
    }
}

/// A TLS listener for `axum::serve`: a handshake that fails (the client
/// refused our certificate, or had none to give) is counted and skipped.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    failed_handshakes: Arc<AtomicUsize>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            let handshake =
                tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(tcp)).await;
            match handshake {
                Ok(Ok(tls)) => return (tls, addr),
                _ => {
                    self.failed_handshakes.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Serves `app` over HTTPS on a loopback port; returns `127.0.0.1:port`
/// and the count of failed handshakes.
async fn serve_https(tls: ServerTls<'_>, app: axum::Router) -> (String, Arc<AtomicUsize>) {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap().to_string();
    let failed = Arc::new(AtomicUsize::new(0));
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(tls.config())),
        failed_handshakes: failed.clone(),
    };
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, failed)
}

/// An exporter: `/metrics` open, `/bearer` wanting `Bearer s3cret`,
/// `/basic` wanting user `u` with password `pw`.
fn exporter() -> axum::Router {
    const BODY: &str = "# TYPE tls_probe gauge\ntls_probe 42\n";
    let wants = |expected: &'static str| {
        move |headers: HeaderMap| async move {
            let got = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if got == expected {
                (StatusCode::OK, BODY)
            } else {
                (StatusCode::UNAUTHORIZED, "")
            }
        }
    };
    axum::Router::new()
        .route("/metrics", get(|| async { BODY }))
        .route("/bearer", get(wants("Bearer s3cret")))
        // base64("u:pw")
        .route("/basic", get(wants("Basic dTpwdw==")))
}

// ------------------------------------------------------------------ emberlens

/// The `emberlens` binary on `config`, killed (by PID) when dropped.
struct Emberlens {
    child: std::process::Child,
    base: String,
}

impl Emberlens {
    fn start(dir: &Path, config: &str) -> Emberlens {
        let path = dir.join("prometheus.yml");
        std::fs::write(&path, config).unwrap();
        let (child, base) = common::spawn_emberlens(
            &dir.join("data"),
            &["--config.file", path.to_str().unwrap()],
        );
        Emberlens { child, base }
    }

    async fn get(&self, path: &str) -> Value {
        let resp = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        resp.json().await.unwrap()
    }

    /// Each active target's pool → (health, lastError).
    async fn targets(&self) -> Vec<(String, String, String)> {
        let t = self.get("/api/v1/targets").await;
        let mut out: Vec<(String, String, String)> = t["data"]["activeTargets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["scrapePool"].as_str().unwrap().to_string(),
                    t["health"].as_str().unwrap().to_string(),
                    t["lastError"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Waits until every pool has been scraped (health not `unknown`);
    /// returns pool → (health, lastError).
    async fn scraped(&self) -> Vec<(String, String, String)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let t = self.targets().await;
            if !t.is_empty() && t.iter().all(|(_, h, _)| h != "unknown") {
                return t;
            }
            assert!(Instant::now() < deadline, "targets never scraped: {t:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `job` label → value of an instant query's series.
    async fn by_job(&self, q: &str) -> Vec<(String, String)> {
        let v = self
            .get(&format!(
                "/api/v1/query?query={}",
                form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
            ))
            .await;
        let mut out: Vec<(String, String)> = v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["metric"]["job"].as_str().unwrap_or("").to_string(),
                    s["value"][1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        out.sort();
        out
    }
}

impl Drop for Emberlens {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scrape job YAML entry for `target`, indented for `scrape_configs:`.
fn job(name: &str, target: &str, path: &str, extra: &str) -> String {
    format!(
        "  - job_name: {name}\n    scheme: https\n    metrics_path: {path}\n    static_configs: [{{targets: [\"{target}\"]}}]\n{extra}"
    )
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn health<'a>(t: &'a [(String, String, String)], pool: &str) -> (&'a str, &'a str) {
    let (_, h, e) = t
        .iter()
        .find(|(p, _, _)| p == pool)
        .unwrap_or_else(|| panic!("no pool {pool} in {t:?}"));
    (h.as_str(), e.as_str())
}

// ------------------------------------------------------------------ tests

/// `ca_file` (relative to the config file), a wrong CA, the system roots,
/// `insecure_skip_verify` on a self-signed certificate, `server_name`,
/// `min_version`, an unreadable `ca_file`, and `bearer_token_file` /
/// `basic_auth.password_file` over HTTPS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_scrapes_verify_as_configured() {
    let tmp = TempDir::new("tls-scrape");
    let dir = &tmp.0;
    let ca = Ca::new("emberlens test ca");
    let other = Ca::new("some other ca");
    let leaf = server_leaf(&ca);
    let (main, _) = serve_https(ServerTls::new(&leaf), exporter()).await;
    let own = self_signed();
    let (selfsigned, _) = serve_https(ServerTls::new(&own), exporter()).await;
    let named = ca.issue(&["exporter.test"], ExtendedKeyUsagePurpose::ServerAuth);
    let (named_addr, _) = serve_https(ServerTls::new(&named), exporter()).await;
    let (tls12, _) = serve_https(
        ServerTls {
            tls12_only: true,
            ..ServerTls::new(&leaf)
        },
        exporter(),
    )
    .await;
    write(dir, "ca.pem", &ca.pem());
    write(dir, "other-ca.pem", &other.pem());
    write(dir, "token", "s3cret\n");
    write(dir, "password", "pw\n");
    let ca_file = "    tls_config: {ca_file: ca.pem}\n";
    let config = [
        "global: {scrape_interval: 500ms}\nscrape_configs:\n".to_string(),
        job("ca", &main, "/metrics", ca_file),
        job(
            "wrong_ca",
            &main,
            "/metrics",
            "    tls_config: {ca_file: other-ca.pem}\n",
        ),
        job("system_roots", &main, "/metrics", ""),
        job(
            "insecure",
            &selfsigned,
            "/metrics",
            "    tls_config: {insecure_skip_verify: true}\n",
        ),
        job("self_signed", &selfsigned, "/metrics", ca_file),
        job(
            "server_name",
            &named_addr,
            "/metrics",
            "    tls_config: {ca_file: ca.pem, server_name: exporter.test}\n",
        ),
        job("wrong_name", &named_addr, "/metrics", ca_file),
        job(
            "tls13_only",
            &tls12,
            "/metrics",
            "    tls_config: {ca_file: ca.pem, min_version: TLS13}\n",
        ),
        job(
            "tls12",
            &tls12,
            "/metrics",
            "    tls_config: {ca_file: ca.pem, max_version: TLS12}\n",
        ),
        job(
            "missing_ca",
            &main,
            "/metrics",
            "    tls_config: {ca_file: missing.pem}\n",
        ),
        job(
            "bearer",
            &main,
            "/bearer",
            &format!("    bearer_token_file: token\n{ca_file}"),
        ),
        job(
            "basic",
            &main,
            "/basic",
            &format!("    basic_auth: {{username: u, password_file: password}}\n{ca_file}"),
        ),
    ]
    .concat();
    let em = Emberlens::start(dir, &config);
    let t = em.scraped().await;
    for pool in ["ca", "insecure", "server_name", "tls12", "bearer", "basic"] {
        assert_eq!(health(&t, pool), ("up", ""), "{pool}");
    }
    let down = |pool: &str, wants: &str| {
        let (h, e) = health(&t, pool);
        assert_eq!(h, "down", "{pool}: {e}");
        assert!(e.contains(wants), "{pool}: {e:?} lacks {wants:?}");
    };
    down("wrong_ca", "invalid peer certificate: UnknownIssuer");
    down("system_roots", "invalid peer certificate: UnknownIssuer");
    down("self_signed", "invalid peer certificate");
    down("wrong_name", "certificate not valid for name");
    down("tls13_only", "ProtocolVersion");
    let missing = dir.join("missing.pem");
    down(
        "missing_ca",
        &format!("unable to read CA cert {}: ", missing.display()),
    );
    // The samples of the good scrapes are stored, with the job's labels.
    let probes = em.by_job("tls_probe").await;
    let jobs: Vec<&str> = probes.iter().map(|(j, _)| j.as_str()).collect();
    assert_eq!(
        jobs,
        ["basic", "bearer", "ca", "insecure", "server_name", "tls12"]
    );
    assert!(probes.iter().all(|(_, v)| v == "42"), "{probes:?}");
    let up = em.by_job("up == 0").await;
    assert_eq!(up.len(), 6, "{up:?}");
}

/// A server that requires a client certificate: `cert_file`/`key_file`
/// get in, no certificate (or one from an unknown CA) does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_presented() {
    let tmp = TempDir::new("tls-client-cert");
    let dir = &tmp.0;
    let ca = Ca::new("emberlens test ca");
    let leaf = server_leaf(&ca);
    let (addr, failed) = serve_https(
        ServerTls {
            client_ca: Some(&ca),
            ..ServerTls::new(&leaf)
        },
        exporter(),
    )
    .await;
    let client = ca.issue(&["emberlens"], ExtendedKeyUsagePurpose::ClientAuth);
    let stranger = Ca::new("stranger").issue(&["emberlens"], ExtendedKeyUsagePurpose::ClientAuth);
    write(dir, "ca.pem", &ca.pem());
    std::fs::create_dir_all(dir.join("client")).unwrap();
    write(dir, "client/cert.pem", &client.cert_pem);
    write(dir, "client/key.pem", &client.key_pem);
    write(dir, "stranger.pem", &stranger.cert_pem);
    write(dir, "stranger.key", &stranger.key_pem);
    let config = [
        "global: {scrape_interval: 500ms}\nscrape_configs:\n".to_string(),
        job(
            "with_cert",
            &addr,
            "/metrics",
            "    tls_config: {ca_file: ca.pem, cert_file: client/cert.pem, key_file: client/key.pem}\n",
        ),
        job(
            "without_cert",
            &addr,
            "/metrics",
            "    tls_config: {ca_file: ca.pem}\n",
        ),
        job(
            "unknown_cert",
            &addr,
            "/metrics",
            "    tls_config: {ca_file: ca.pem, cert_file: stranger.pem, key_file: stranger.key}\n",
        ),
    ]
    .concat();
    let em = Emberlens::start(dir, &config);
    let t = em.scraped().await;
    assert_eq!(health(&t, "with_cert"), ("up", ""));
    for pool in ["without_cert", "unknown_cert"] {
        let (h, e) = health(&t, pool);
        assert_eq!(h, "down", "{pool}");
        assert!(!e.is_empty(), "{pool}");
    }
    assert!(failed.load(Ordering::SeqCst) >= 2);
    assert_eq!(
        em.by_job("tls_probe").await,
        [("with_cert".to_string(), "42".to_string())]
    );
}

/// The `tls_config` files are read again on reload: a CA file fixed on disk
/// takes effect at `POST /-/reload`, without any change to the config text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_rereads_tls_files() {
    let tmp = TempDir::new("tls-reload");
    let dir = &tmp.0;
    let ca = Ca::new("emberlens test ca");
    let leaf = server_leaf(&ca);
    let (addr, _) = serve_https(ServerTls::new(&leaf), exporter()).await;
    write(dir, "ca.pem", &Ca::new("not this one").pem());
    let config = [
        "global: {scrape_interval: 500ms}\nscrape_configs:\n".to_string(),
        job(
            "rotating",
            &addr,
            "/metrics",
            "    tls_config: {ca_file: ca.pem}\n",
        ),
    ]
    .concat();
    let em = Emberlens::start(dir, &config);
    let t = em.scraped().await;
    let (h, e) = health(&t, "rotating");
    assert_eq!(h, "down");
    assert!(e.contains("UnknownIssuer"), "{e}");
    write(dir, "ca.pem", &ca.pem());
    let resp = reqwest::Client::new()
        .post(format!("{}/-/reload", em.base))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let t = em.targets().await;
        if health(&t, "rotating") == ("up", "") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never up after the reload: {t:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A remote-write receiver (over HTTPS) wanting basic auth `rw:pw`:
/// decodes each request and counts its samples and metric names.
#[derive(Clone, Default)]
struct Receiver {
    samples: Arc<AtomicUsize>,
    names: Arc<Mutex<std::collections::BTreeSet<String>>>,
}

impl Receiver {
    fn router(&self) -> axum::Router {
        let me = self.clone();
        axum::Router::new().route(
            "/api/v1/write",
            post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let me = me.clone();
                async move {
                    // base64("rw:pw")
                    if headers.get("authorization").and_then(|v| v.to_str().ok())
                        != Some("Basic cnc6cHc=")
                    {
                        return StatusCode::UNAUTHORIZED;
                    }
                    let Ok(req) = emberlens_remote::codec::decode_write_request(&body, 1 << 26)
                    else {
                        return StatusCode::BAD_REQUEST;
                    };
                    let mut names = me.names.lock().unwrap();
                    for ts in &req.timeseries {
                        me.samples.fetch_add(ts.samples.len(), Ordering::SeqCst);
                        if let Some(n) = ts.labels.iter().find(|l| l.name == "__name__") {
                            names.insert(n.value.clone());
                        }
                    }
                    StatusCode::NO_CONTENT
                }
            }),
        )
    }
}

/// Remote write to an HTTPS receiver that requires a client certificate
/// (with `basic_auth.password_file`, relative to the config file), and to
/// one whose CA the config gets wrong: nothing arrives there until the CA
/// file is fixed and the config reloaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_over_https_with_a_client_certificate() {
    let tmp = TempDir::new("tls-remote-write");
    let dir = &tmp.0;
    let ca = Ca::new("emberlens test ca");
    let leaf = server_leaf(&ca);
    let good = Receiver::default();
    let (good_addr, _) = serve_https(
        ServerTls {
            client_ca: Some(&ca),
            ..ServerTls::new(&leaf)
        },
        good.router(),
    )
    .await;
    let refused = Receiver::default();
    let (refused_addr, refused_handshakes) =
        serve_https(ServerTls::new(&leaf), refused.router()).await;
    let client = ca.issue(&["emberlens"], ExtendedKeyUsagePurpose::ClientAuth);
    write(dir, "ca.pem", &ca.pem());
    write(dir, "other-ca.pem", &Ca::new("other").pem());
    write(dir, "client.pem", &client.cert_pem);
    write(dir, "client.key", &client.key_pem);
    write(dir, "rw-password", "pw\n");
    let exporter = common::fake_target("tls_remote_probe 7\n").await;
    let exporter = exporter
        .trim_start_matches("http://")
        .trim_end_matches("/metrics");
    let config = format!(
        "global: {{scrape_interval: 500ms}}
scrape_configs:
  - job_name: plain
    static_configs: [{{targets: [\"{exporter}\"]}}]
remote_write:
  - url: https://{good_addr}/api/v1/write
    name: good
    basic_auth: {{username: rw, password_file: rw-password}}
    tls_config: {{ca_file: ca.pem, cert_file: client.pem, key_file: client.key}}
    queue_config: {{batch_send_deadline: 200ms, min_backoff: 50ms, max_backoff: 200ms}}
  - url: https://{refused_addr}/api/v1/write
    name: wrong_ca
    basic_auth: {{username: rw, password_file: rw-password}}
    tls_config: {{ca_file: other-ca.pem}}
    queue_config: {{batch_send_deadline: 200ms, min_backoff: 50ms, max_backoff: 200ms}}
"
    );
    let em = Emberlens::start(dir, &config);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !good.names.lock().unwrap().contains("tls_remote_probe") {
        assert!(
            Instant::now() < deadline,
            "nothing arrived over HTTPS; got {:?}",
            good.names.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(good.names.lock().unwrap().contains("up"));
    assert!(good.samples.load(Ordering::SeqCst) >= 2);
    // The endpoint with the wrong CA tried, and refused the certificate.
    let deadline = Instant::now() + Duration::from_secs(10);
    while refused_handshakes.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the wrong-CA endpoint never tried"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(refused.samples.load(Ordering::SeqCst), 0);
    // Fixing the CA file on disk and reloading restarts that sender (the
    // config text is unchanged); what it queued meanwhile arrives.
    write(dir, "other-ca.pem", &ca.pem());
    let resp = reqwest::Client::new()
        .post(format!("{}/-/reload", em.base))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !refused.names.lock().unwrap().contains("tls_remote_probe") {
        assert!(
            Instant::now() < deadline,
            "nothing arrived after fixing the CA file"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(em);
}

/// Profile scrapes (`profiling_config`) use the job's `tls_config` too: the
/// profile of the job with the right CA is fetched and stored, the one with
/// the wrong CA fails with the TLS reason in `/api/v1/profiles/targets`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_scrapes_use_the_jobs_tls_config() {
    use emberlens_pprof::{Profile, Sample, ValueType};
    let tmp = TempDir::new("tls-profiles");
    let dir = &tmp.0;
    let ca = Ca::new("emberlens test ca");
    let leaf = server_leaf(&ca);
    let profile = emberlens_pprof::encode_gzip(&Profile {
        sample_type: vec![ValueType { r#type: 1, unit: 2 }],
        sample: vec![Sample {
            value: vec![3],
            ..Sample::default()
        }],
        string_table: vec!["".into(), "goroutine".into(), "count".into()],
        ..Profile::default()
    });
    let app = exporter().route(
        "/debug/pprof/goroutine",
        get(move || {
            let profile = profile.clone();
            async move { profile }
        }),
    );
    let (addr, _) = serve_https(ServerTls::new(&leaf), app).await;
    write(dir, "ca.pem", &ca.pem());
    write(dir, "other-ca.pem", &Ca::new("other").pem());
    let profiling = "    profiling_config:\n      pprof_config: {process_cpu: {enabled: false}, memory: {enabled: false}, mutex: {enabled: false}, block: {enabled: false}, goroutine: {enabled: true}}\n";
    let config = [
        "global: {scrape_interval: 2s}\nscrape_configs:\n".to_string(),
        job(
            "good",
            &addr,
            "/metrics",
            &format!("    tls_config: {{ca_file: ca.pem}}\n{profiling}"),
        ),
        job(
            "bad",
            &addr,
            "/metrics",
            &format!("    tls_config: {{ca_file: other-ca.pem}}\n{profiling}"),
        ),
    ]
    .concat();
    let em = Emberlens::start(dir, &config);
    let deadline = Instant::now() + Duration::from_secs(20);
    let rows = loop {
        let v = em.get("/api/v1/profiles/targets").await;
        let mut rows: Vec<(String, String, String)> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["scrapePool"].as_str().unwrap().to_string(),
                    r["health"].as_str().unwrap().to_string(),
                    r["lastError"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        rows.sort();
        if rows.len() == 2 && rows.iter().all(|(_, h, _)| h != "unknown") {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "profiles never scraped: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(health(&rows, "good"), ("up", ""));
    let (h, e) = health(&rows, "bad");
    assert_eq!(h, "down");
    assert!(e.contains("invalid peer certificate: UnknownIssuer"), "{e}");
}
