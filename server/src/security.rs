//! Access control and limits in front of every route, by path prefix, so a
//! route added later under a protected prefix is covered without being
//! listed here.
//!
//! - **Protected endpoints** (`/api/v1/admin/…`, `/api/v1/write`,
//!   `/-/reload`): with a token configured (`--web.auth-token-file` or
//!   `EMBERLENS_TOKEN`), they need `Authorization: Bearer <token>` (compared
//!   in constant time), else 401. Without a token they answer only on a
//!   loopback bind (the *bound* address decides, not the peer's): bound
//!   elsewhere they answer 403 saying how to set one. On loopback without a
//!   token, a browser's cross-site request (an `Origin` other than the
//!   `Host`, or `Sec-Fetch-Site: cross-site`) is refused with 403 too: any
//!   web page could otherwise make the user's browser post a reload.
//! - **Request bodies** are limited to `--web.max-request-body-bytes`: a
//!   declared `Content-Length` beyond it is answered 413 at once, and a body
//!   without one stops being read at the limit (the extractor answers 413).
//! - **CORS** for `/api/v1/…`, as Prometheus's `httputil.SetCORS`: when the
//!   request has an `Origin`, the allowed methods and headers are sent, and
//!   `Access-Control-Allow-Origin` is `*` for the default `.*` or the origin
//!   itself when it matches the anchored `--web.cors.origin` regex. A
//!   preflight (`OPTIONS`) is answered 204 by this layer, whatever the path.
//!
//! Errors use Prometheus's JSON error shape; the error types `unauthorized`
//! and `forbidden` are ours (Prometheus has no built-in authentication).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use regex::Regex;

use crate::web::api_error;

/// Prometheus's default `--web.cors.origin`.
pub const DEFAULT_CORS_ORIGIN: &str = ".*";

/// Default `--web.max-request-body-bytes`: 32 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 << 20;

/// The environment variable holding the token when no file is given.
pub const TOKEN_ENV: &str = "EMBERLENS_TOKEN";

const ALLOW_HEADERS: &str = "Accept, Authorization, Content-Type, Origin, X-Requested-With, \
     Content-Encoding, X-Prometheus-Remote-Read-Version, X-Prometheus-Remote-Write-Version";
const ALLOW_METHODS: &str = "GET, POST, OPTIONS";

/// Why a security setting was refused.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// The token file could not be read.
    #[error("reading the token file {path}: {source}")]
    TokenFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The token is empty (after trimming whitespace).
    #[error("the token from {0} is empty")]
    EmptyToken(String),
    /// `--web.cors.origin` is not a valid regex.
    #[error("invalid --web.cors.origin {pattern:?}: {source}")]
    CorsOrigin {
        /// The pattern as given.
        pattern: String,
        /// Why it does not compile.
        source: Box<regex::Error>,
    },
}

/// The bearer token; its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthToken(String);

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(<secret>)")
    }
}

impl AuthToken {
    /// A token from text; surrounding whitespace (a file's newline) is
    /// dropped; `from` names the source in the error.
    pub fn new(text: &str, from: &str) -> Result<Self, SecurityError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(SecurityError::EmptyToken(from.to_string()));
        }
        Ok(AuthToken(t.to_string()))
    }

    /// Reads the token from a file.
    pub fn from_file(path: &Path) -> Result<Self, SecurityError> {
        let text = std::fs::read_to_string(path).map_err(|source| SecurityError::TokenFile {
            path: path.display().to_string(),
            source,
        })?;
        AuthToken::new(&text, &path.display().to_string())
    }

    /// Whether an `Authorization` header value carries this token.
    fn accepts(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(given) = authorization.and_then(|v| v.as_bytes().strip_prefix(b"Bearer ")) else {
            return false;
        };
        constant_time_eq(given, self.0.as_bytes())
    }
}

/// Equal bytes, in time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The CORS origin regex, anchored as Prometheus anchors it.
pub fn cors_regex(pattern: &str) -> Result<Regex, SecurityError> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|source| SecurityError::CorsOrigin {
        pattern: pattern.to_string(),
        source: Box::new(source),
    })
}

/// What the security layer enforces.
#[derive(Clone, Debug)]
pub struct SecurityOptions {
    /// The token protected endpoints need, if any.
    pub token: Option<AuthToken>,
    /// Whether the server is bound to a loopback address.
    pub loopback: bool,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Origins allowed to read `/api/v1/…` cross-origin (anchored).
    pub cors_origin: Regex,
}

/// Wraps every route of `router` (and its fallback) in the checks above.
pub fn protect<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    opts: SecurityOptions,
) -> Router<S> {
    let max = opts.max_body_bytes;
    router
        .layer(middleware::from_fn_with_state(Arc::new(opts), guard))
        .layer(DefaultBodyLimit::max(max))
}

/// Whether `path` is an endpoint that changes the server's state.
fn is_protected(path: &str) -> bool {
    let path = normalize(path);
    path.starts_with("/api/v1/admin/")
        || path == "/api/v1/admin"
        || path == "/api/v1/write"
        || path.starts_with("/api/v1/write/")
        || path == "/-/reload"
}

/// Percent-decoded, repeated slashes folded: the checks must not be
/// sidestepped by spelling a path differently from the router's match.
fn normalize(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let decoded = (b == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        let (c, step) = match decoded {
            Some(c) => (c, 3),
            None => (b, 1),
        };
        if !(c == b'/' && out.last() == Some(&b'/')) {
            out.push(c);
        }
        i += step;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a browser sent this request from another site.
fn cross_site(headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    !authority.eq_ignore_ascii_case(host)
}

fn set_cors(opts: &SecurityOptions, req_headers: &HeaderMap, resp: &mut Response) {
    let Some(origin) = req_headers.get(header::ORIGIN) else {
        return;
    };
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Date"),
    );
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if opts.cors_origin.as_str() == "^(?:.*)$" {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    } else if origin.to_str().is_ok_and(|o| opts.cors_origin.is_match(o)) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    }
}

async fn guard(State(opts): State<Arc<SecurityOptions>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let is_api = normalize(path).starts_with("/api/v1/");
    let headers = req.headers().clone();
    let mut resp = if is_api && req.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else if let Some(refused) = check(&opts, &req) {
        refused
    } else {
        let (parts, body) = req.into_parts();
        let body = axum::body::Body::new(http_body_util::Limited::new(body, opts.max_body_bytes));
        next.run(Request::from_parts(parts, body)).await
    };
    if is_api {
        set_cors(&opts, &headers, &mut resp);
    }
    resp
}

/// The refusal for `req`, if any.
fn check(opts: &SecurityOptions, req: &Request) -> Option<Response> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|&n| n > opts.max_body_bytes as u64) {
        return Some(api_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "bad_data",
            &format!(
                "request body of {n} bytes is larger than the limit of {} bytes (--web.max-request-body-bytes)",
                opts.max_body_bytes
            ),
        ));
    }
    if !is_protected(req.uri().path()) {
        return None;
    }
    let path = req.uri().path();
    match &opts.token {
        Some(token) if token.accepts(req.headers().get(header::AUTHORIZATION)) => None,
        Some(_) => {
            let mut resp = api_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                &format!("{path} needs the server's token: send \"Authorization: Bearer <token>\""),
            );
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Some(resp)
        }
        None if !opts.loopback => Some(api_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!(
                "{path} is disabled: the server listens on a non-loopback address and no token is set; \
                 start it with --web.auth-token-file=FILE or the {TOKEN_ENV} environment variable \
                 and send \"Authorization: Bearer <token>\""
            ),
        )),
        None if cross_site(req.headers()) => Some(api_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!(
                "{path} refuses cross-site browser requests; set a token (--web.auth-token-file=FILE \
                 or {TOKEN_ENV}) to call it from another origin"
            ),
        )),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_paths_cannot_be_spelled_around() {
        for p in [
            "/api/v1/admin/tsdb/snapshot",
            "/api/v1//admin/tsdb/snapshot",
            "//api/v1/admin/x",
            "/api/v1/%61dmin/x",
            "/api/v1/write",
            "/-/reload",
            "/-%2Freload",
        ] {
            assert!(is_protected(p), "{p}");
        }
        for p in [
            "/api/v1/query",
            "/api/v1/writer",
            "/-/ready",
            "/api/v1/read",
        ] {
            assert!(!is_protected(p), "{p}");
        }
    }

    #[test]
    fn tokens_compare_whole() {
        let t = AuthToken::new(" s3cret\n", "test").unwrap();
        assert!(t.accepts(Some(&HeaderValue::from_static("Bearer s3cret"))));
        for bad in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "bearer s3cret",
            "s3cret",
            "",
        ] {
            assert!(!t.accepts(Some(&HeaderValue::from_static(bad))), "{bad}");
        }
        assert!(!t.accepts(None));
        assert_eq!(format!("{t:?}"), "AuthToken(<secret>)");
        assert!(AuthToken::new(" \n", "test").is_err());
    }

    #[test]
    fn cross_site_is_judged_by_origin_against_host() {
        let mut h = HeaderMap::new();
        assert!(!cross_site(&h));
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9190"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:9190"),
        );
        assert!(!cross_site(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(cross_site(&h));
    }
}
