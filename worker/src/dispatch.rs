//! Requests in, responses out, over an abstract HTTP client.

use emberlens_protocol::{Envelope, ErrorBody, ErrorKind, PROTOCOL_VERSION, Request, Response};

use crate::source_server;

/// The HTTP the worker needs: a GET that yields the status and the body text.
/// Implemented with `fetch` in the browser and by fakes in tests.
pub trait Http {
    /// Fetches `url`; `Err` only for transport failures (the status is data).
    fn get(&self, url: &str) -> impl std::future::Future<Output = Result<(u16, String), String>>;
}

/// Answers one request. Never fails: every problem becomes [`Response::Error`].
pub async fn handle(request: Envelope<Request>, http: &impl Http) -> Envelope<Response> {
    let id = request.id;
    if request.version != PROTOCOL_VERSION {
        return Envelope::new(
            id,
            error(
                ErrorKind::VersionMismatch,
                format!(
                    "app speaks protocol version {} but the worker speaks {PROTOCOL_VERSION}; reload the page",
                    request.version
                ),
            ),
        );
    }
    let body = match request.body {
        Request::Hello => Response::Hello {
            version: PROTOCOL_VERSION,
            worker_version: env!("CARGO_PKG_VERSION").to_string(),
        },
        Request::FetchSeries(req) => match source_server::fetch_series(http, &req).await {
            Ok(set) => Response::Series(set),
            Err(e) => Response::Error(e),
        },
    };
    Envelope::new(id, body)
}

/// Shorthand for an error response.
pub fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
    Response::Error(ErrorBody {
        kind,
        message: message.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_executor::block_on;

    struct NoHttp;
    impl Http for NoHttp {
        async fn get(&self, url: &str) -> Result<(u16, String), String> {
            Err(format!("no network in this test ({url})"))
        }
    }

    #[test]
    fn hello_echoes_the_id_and_version() {
        let resp = block_on(handle(Envelope::new(42, Request::Hello), &NoHttp));
        assert_eq!(resp.id, 42);
        assert!(matches!(
            resp.body,
            Response::Hello {
                version: PROTOCOL_VERSION,
                ..
            }
        ));
    }

    #[test]
    fn version_skew_is_an_error_not_a_misread() {
        let mut req = Envelope::new(1, Request::Hello);
        req.version = PROTOCOL_VERSION + 1;
        let resp = block_on(handle(req, &NoHttp));
        assert!(matches!(
            resp.body,
            Response::Error(ErrorBody {
                kind: ErrorKind::VersionMismatch,
                ..
            })
        ));
    }
}
