//! TLS for Emberlens's outgoing HTTP: scrapes (metrics and profiles) and
//! remote write, with Prometheus's `tls_config`.
//!
//! Every client speaks TLS through rustls with the `ring` provider. A client
//! without `tls_config` verifies servers against the system's roots (the
//! Debian CA bundle, through `rustls-native-certs`, which also honours
//! `SSL_CERT_FILE`). With `tls_config`:
//!
//! - `ca_file`: the server is verified against these CAs only, as in
//!   Prometheus (the system's roots are not added).
//! - `cert_file` + `key_file`: the client certificate offered when the
//!   server asks for one.
//! - `server_name`: the name the server's certificate must carry instead of
//!   the URL's host. Unlike Go, the SNI extension still carries the URL's
//!   host (none for an IP address): reqwest builds the connection and offers
//!   no way to change it.
//! - `insecure_skip_verify`: any certificate is accepted; the handshake
//!   signatures are still checked, so the session is encrypted to whoever
//!   holds the presented certificate's key.
//! - `min_version` / `max_version`: rustls speaks TLS 1.2 and 1.3 only, so
//!   `TLS10` and `TLS11` as a minimum mean TLS 1.2 (the config refuses them
//!   as a maximum).
//!
//! Relative paths are resolved against the config file's directory. The
//! files are read when the configuration is applied (start-up, reload, and
//! a file-SD change for scrape targets) and their contents become part of
//! the target or endpoint, so a reload that finds a rotated certificate
//! restarts the loops that use it, and an unchanged one restarts nothing.
//! (Prometheus re-reads them before every request; here, send SIGHUP or
//! `POST /-/reload` after rotating.) A file that does not read or parse is
//! the error of every scrape of the target (`up` 0, the reason in
//! `/api/v1/targets`), or of the remote-write endpoint (logged; its queue
//! keeps filling on disk until a reload fixes it), with Prometheus's words:
//! `unable to read CA cert …`, `unable to use specified CA cert …`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use emberlens_config::{TlsConfig, TlsVersion};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Why a `tls_config` could not be turned into a client.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `ca_file` does not read.
    #[error("unable to read CA cert {path}: {source}")]
    ReadCa {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// `ca_file` holds no usable certificate.
    #[error("unable to use specified CA cert {path}: {reason}")]
    BadCa {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// `cert_file` does not read.
    #[error("unable to read specified client cert {path}: {source}")]
    ReadCert {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// `key_file` does not read.
    #[error("unable to read specified client key {path}: {source}")]
    ReadKey {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The client certificate and key do not make a usable pair.
    #[error("unable to use specified client cert ({cert}) & key ({key}): {reason}")]
    BadPair {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// Why.
        reason: String,
    },
    /// `server_name` is neither a DNS name nor an IP address.
    #[error("invalid server_name {0:?}")]
    ServerName(String),
    /// rustls refused the combination.
    #[error("building the TLS configuration: {0}")]
    Rustls(String),
}

/// A `tls_config` with its files read and its rustls configuration built;
/// cheap to clone. Two are equal when their settings and file contents are,
/// which is what decides whether a reload restarts a loop.
#[derive(Clone)]
pub struct TlsSettings(Arc<Loaded>);

struct Loaded {
    cfg: TlsConfig,
    /// The directory relative paths were resolved against.
    base_dir: PathBuf,
    /// The contents of `ca_file`, `cert_file`, `key_file` as read.
    contents: [Option<Vec<u8>>; 3],
    rustls: rustls::ClientConfig,
}

impl PartialEq for TlsSettings {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.cfg == other.0.cfg
                && self.0.base_dir == other.0.base_dir
                && self.0.contents == other.0.contents)
    }
}

impl std::fmt::Debug for TlsSettings {
    // The key's bytes are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("cfg", &self.0.cfg)
            .field("base_dir", &self.0.base_dir)
            .finish_non_exhaustive()
    }
}

impl TlsSettings {
    /// Reads the files of `cfg` (relative to `base_dir`) and builds the
    /// client configuration; `None` when `cfg` sets nothing (the default
    /// client fits). Blocking file IO: call it off the async runtime, or
    /// where a few small reads don't matter.
    pub fn load(cfg: &TlsConfig, base_dir: &Path) -> Result<Option<TlsSettings>, TlsError> {
        if !cfg.is_set() {
            return Ok(None);
        }
        let read = |file: &Option<String>| -> Option<(String, std::io::Result<Vec<u8>>)> {
            let path = crate::targets::resolve(base_dir, file.as_deref()?);
            Some((path.display().to_string(), std::fs::read(&path)))
        };
        let ca = match read(&cfg.ca_file) {
            None => None,
            Some((path, Ok(b))) => Some((path, b)),
            Some((path, Err(source))) => return Err(TlsError::ReadCa { path, source }),
        };
        let cert = match read(&cfg.cert_file) {
            None => None,
            Some((path, Ok(b))) => Some((path, b)),
            Some((path, Err(source))) => return Err(TlsError::ReadCert { path, source }),
        };
        let key = match read(&cfg.key_file) {
            None => None,
            Some((path, Ok(b))) => Some((path, b)),
            Some((path, Err(source))) => return Err(TlsError::ReadKey { path, source }),
        };
        let rustls = client_config(cfg, ca.as_ref(), cert.as_ref().zip(key.as_ref()))?;
        Ok(Some(TlsSettings(Arc::new(Loaded {
            cfg: cfg.clone(),
            base_dir: base_dir.to_path_buf(),
            contents: [ca.map(|c| c.1), cert.map(|c| c.1), key.map(|c| c.1)],
            rustls,
        }))))
    }

    /// `builder` using these settings for TLS.
    pub fn apply(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        builder.use_preconfigured_tls(self.0.rustls.clone())
    }
}

/// The crypto provider of every client (`ring`), chosen explicitly so that
/// no process-wide default is needed.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system's trusted roots, loaded once. Unreadable or unparsable
/// entries are skipped with a warning (an empty store fails every https
/// request with an unknown-issuer error, which names the problem).
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "loading the system's CA certificates");
            }
            let mut store = RootCertStore::empty();
            let (_, bad) = store.add_parsable_certificates(found.certs);
            if bad > 0 {
                tracing::debug!(skipped = bad, "unusable system CA certificates");
            }
            Arc::new(store)
        })
        .clone()
}

/// A file as read: its resolved path (for messages) and its contents.
type FileRead = (String, Vec<u8>);

/// The rustls configuration of `cfg`, with the CA and the client
/// certificate and key already read.
fn client_config(
    cfg: &TlsConfig,
    ca: Option<&FileRead>,
    pair: Option<(&FileRead, &FileRead)>,
) -> Result<rustls::ClientConfig, TlsError> {
    let provider = provider();
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| cfg.min_version.is_none_or(|min| *v >= min))
    .filter(|(v, _)| cfg.max_version.is_none_or(|max| *v <= max))
    .map(|(_, p)| p)
    .collect();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;

    let verifier: Arc<dyn ServerCertVerifier> = if cfg.insecure_skip_verify {
        Arc::new(AnyCertificate(provider.clone()))
    } else {
        let roots = match ca {
            None => system_roots(),
            Some((path, pem)) => Arc::new(ca_roots(path, pem)?),
        };
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        match &cfg.server_name {
            None => webpki as Arc<dyn ServerCertVerifier>,
            Some(name) => Arc::new(AsServerName {
                inner: webpki,
                name: ServerName::try_from(name.clone())
                    .map_err(|_| TlsError::ServerName(name.clone()))?,
            }),
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match pair {
        None => builder.with_no_client_auth(),
        Some(((cert_path, cert_pem), (key_path, key_pem))) => {
            let bad = |reason: String| TlsError::BadPair {
                cert: cert_path.clone(),
                key: key_path.clone(),
                reason,
            };
            let chain = CertificateDer::pem_slice_iter(cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(format!("certificate: {e}")))?;
            if chain.is_empty() {
                return Err(bad("no certificate in the cert file".into()));
            }
            let key = PrivateKeyDer::from_pem_slice(key_pem)
                .map_err(|e| bad(format!("private key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad(e.to_string()))?
        }
    };
    // reqwest is built without HTTP/2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The certificates of a `ca_file` as a root store; an error when none
/// parses (as Go's `AppendCertsFromPEM` returning false).
fn ca_roots(path: &str, pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let bad = |reason: String| TlsError::BadCa {
        path: path.to_string(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let mut store = RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(bad("no certificate found".into()));
    }
    Ok(store)
}

/// `insecure_skip_verify`: any certificate chain and name pass; the
/// handshake signatures are verified with the presented certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `server_name`: WebPKI verification against the configured name
/// instead of the URL's host.
#[derive(Debug)]
struct AsServerName {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for AsServerName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `e` and its sources, `: `-separated, for an error report (reqwest's
/// own message names only the URL; the TLS reason is in the sources).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let next = c.to_string();
        // hyper and reqwest often wrap an error whose text they repeat.
        if !s.ends_with(&next) {
            s.push_str(": ");
            s.push_str(&next);
        }
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_set_needs_no_client_of_its_own() {
        let got = TlsSettings::load(&TlsConfig::default(), Path::new("."));
        assert!(matches!(got, Ok(None)));
    }

    #[test]
    fn unreadable_and_unusable_files_name_the_resolved_path() {
        let dir = std::env::temp_dir().join(format!("emberlens-tls-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("junk.pem"), "not a certificate\n").unwrap();
        let cfg = |ca: &str| TlsConfig {
            ca_file: Some(ca.to_string()),
            ..TlsConfig::default()
        };
        let err = |c: &TlsConfig| TlsSettings::load(c, &dir).unwrap_err().to_string();
        let missing = err(&cfg("missing.pem"));
        assert!(
            missing.starts_with(&format!(
                "unable to read CA cert {}: ",
                dir.join("missing.pem").display()
            )),
            "{missing}"
        );
        assert_eq!(
            err(&cfg("junk.pem")),
            format!(
                "unable to use specified CA cert {}: no certificate found",
                dir.join("junk.pem").display()
            )
        );
        let pair = TlsConfig {
            cert_file: Some("junk.pem".into()),
            key_file: Some("junk.pem".into()),
            insecure_skip_verify: true,
            ..TlsConfig::default()
        };
        let bad = err(&pair);
        assert!(
            bad.starts_with("unable to use specified client cert (")
                && bad.contains("no certificate in the cert file"),
            "{bad}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn settings_compare_by_content() {
        let cfg = TlsConfig {
            insecure_skip_verify: true,
            ..TlsConfig::default()
        };
        let a = TlsSettings::load(&cfg, Path::new("/a")).unwrap();
        let b = TlsSettings::load(&cfg, Path::new("/a")).unwrap();
        let c = TlsSettings::load(&cfg, Path::new("/c")).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
