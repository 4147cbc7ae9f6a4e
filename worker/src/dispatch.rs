//! Requests in, responses out, over an abstract HTTP client and an abstract
//! way to open the user's files (`fetch` and `File`s in the browser, fakes
//! in native tests).

use emberlens_protocol::{Envelope, ErrorBody, ErrorKind, PROTOCOL_VERSION, Request, Response};

use crate::query::{self, Opened, State};
use crate::source_server;

/// Opens local sources: the browser's implementation reads `File`s and URLs
/// (see `web`), tests open in-memory blocks.
pub trait Opener {
    /// Opens the files sent with the request (names in message order).
    fn open_files(&self, names: &[String]) -> Result<Opened, ErrorBody>;
    /// Opens a snapshot archive by URL.
    fn open_url(&self, url: &str) -> Result<Opened, ErrorBody>;
}

/// An [`Opener`] for contexts that cannot open anything.
pub struct NoOpener;

impl Opener for NoOpener {
    fn open_files(&self, _: &[String]) -> Result<Opened, ErrorBody> {
        Err(ErrorBody {
            kind: ErrorKind::BadRequest,
            message: "opening files needs the browser worker".into(),
        })
    }

    fn open_url(&self, _: &str) -> Result<Opened, ErrorBody> {
        Err(ErrorBody {
            kind: ErrorKind::BadRequest,
            message: "opening URLs needs the browser worker".into(),
        })
    }
}

/// The HTTP the worker needs: a GET that yields the status and the body text.
/// Implemented with `fetch` in the browser and by fakes in tests.
pub trait Http {
    /// Fetches `url`; `Err` only for transport failures (the status is data).
    fn get(&self, url: &str) -> impl std::future::Future<Output = Result<(u16, String), String>>;
}

/// Answers one request. Never fails: every problem becomes [`Response::Error`].
pub async fn handle(
    request: Envelope<Request>,
    http: &impl Http,
    state: &State,
    opener: &impl Opener,
) -> Envelope<Response> {
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
        Request::OpenFiles(req) => opened(state, opener.open_files(&req.names)),
        Request::OpenUrl(req) => opened(state, opener.open_url(&req.url)),
        Request::Query(req) => {
            let r = match &req.base_url {
                Some(base) => query::run_remote(http, base, &req).await,
                None => query::run_local(state, &req),
            };
            match r {
                Ok(a) => Response::QueryResult(a),
                Err(e) => Response::Error(e),
            }
        }
    };
    Envelope::new(id, body)
}

/// Replaces the opened source (the previous one is dropped first, so its
/// memory is freed before the next query).
fn opened(state: &State, r: Result<Opened, ErrorBody>) -> Response {
    match r {
        Ok(o) => {
            let info = o.info.clone();
            let mut st = state.borrow_mut();
            st.opened = None;
            st.opened = Some(o);
            Response::Opened(info)
        }
        Err(e) => Response::Error(e),
    }
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
        let resp = block_on(handle(
            Envelope::new(42, Request::Hello),
            &NoHttp,
            &State::default(),
            &NoOpener,
        ));
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
        let resp = block_on(handle(req, &NoHttp, &State::default(), &NoOpener));
        assert!(matches!(
            resp.body,
            Response::Error(ErrorBody {
                kind: ErrorKind::VersionMismatch,
                ..
            })
        ));
    }
}
