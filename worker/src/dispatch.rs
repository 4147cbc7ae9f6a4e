//! Requests in, responses out, over an abstract HTTP client, an abstract
//! way to open the user's files and an abstract cancel flag (`fetch`,
//! `File`s and a `SharedArrayBuffer` in the browser, fakes in native tests).
//!
//! Requests that wait on the network are registered under their id while
//! they wait, so a `Request::Cancel` handled meanwhile (the worker serves
//! each message as its own task) can stop them; see [`crate::cancel`].

use emberlens_protocol::{Envelope, ErrorBody, ErrorKind, PROTOCOL_VERSION, Request, Response};

use crate::cancel::{CancelToken, Interrupts, canceled_error};
use crate::flame_view::{self, Surface};
use crate::query::{self, Opened, State};
use crate::{profiles_server, source_server};

/// Opens local sources: the browser's implementation reads `File`s and URLs
/// (see `web`), tests open in-memory blocks.
pub trait Opener {
    /// Opens the files sent with the request (names in message order).
    fn open_files(&self, names: &[String]) -> Result<Opened, ErrorBody>;
    /// Opens a snapshot archive by URL.
    fn open_url(&self, url: &str) -> Result<Opened, ErrorBody>;
    /// The bytes of the one file sent with the request (a profile).
    fn file_bytes(&self) -> Result<Vec<u8>, ErrorBody> {
        Err(ErrorBody {
            kind: ErrorKind::BadRequest,
            message: "reading a profile file needs the browser worker".into(),
        })
    }
    /// The canvas sent with the request, if one was, as a paint surface.
    fn canvas(&self) -> Result<Option<Box<dyn Surface>>, ErrorBody> {
        Ok(None)
    }
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
    /// When `cancel` fires, the request should stop (the browser aborts the
    /// `fetch`) and fail.
    fn get(
        &self,
        url: &str,
        cancel: &CancelToken,
    ) -> impl std::future::Future<Output = Result<(u16, String), String>>;

    /// POSTs `body` with `headers` to `url` and reads the whole answer;
    /// `Err` only for transport failures. Cancelled as [`Http::get`].
    fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        cancel: &CancelToken,
    ) -> impl std::future::Future<Output = Result<HttpBytes, String>>;

    /// GETs `url` and reads the whole answer as bytes (a profile); `Err`
    /// only for transport failures. Cancelled as [`Http::get`]. Clients
    /// without binary GETs (most test fakes) answer an error.
    fn get_bytes(
        &self,
        url: &str,
        _cancel: &CancelToken,
    ) -> impl std::future::Future<Output = Result<HttpBytes, String>> {
        let e = format!("this client cannot fetch {url}");
        async move { Err(e) }
    }
}

/// A binary HTTP answer ([`Http::post`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpBytes {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, or empty.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// A request registered as cancellable while it waits; unregistered on drop.
struct Waiting<'a> {
    state: &'a State,
    id: u64,
    token: CancelToken,
}

impl<'a> Waiting<'a> {
    fn register(state: &'a State, id: u64) -> Self {
        let token = CancelToken::default();
        state.borrow_mut().waiting.insert(id, token.clone());
        Waiting { state, id, token }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.state.borrow_mut().waiting.remove(&self.id);
    }
}

/// Answers one request. Never fails: every problem becomes [`Response::Error`].
pub async fn handle(
    request: Envelope<Request>,
    http: &impl Http,
    state: &State,
    opener: &impl Opener,
    interrupts: &impl Interrupts,
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
        Request::FetchSeries(req) => {
            let waiting = Waiting::register(state, id);
            let r = source_server::fetch_series(http, &req, &waiting.token).await;
            match r {
                _ if waiting.token.is_canceled() => error(
                    ErrorKind::Canceled,
                    format!("fetching the series {} was canceled", req.selector),
                ),
                Ok(set) => Response::Series(set),
                Err(e) => Response::Error(e),
            }
        }
        Request::OpenFiles(req) => opened(state, opener.open_files(&req.names)),
        Request::OpenUrl(req) => opened(state, opener.open_url(&req.url)),
        Request::Query(req) => {
            let r = match &req.base_url {
                Some(base) => {
                    let waiting = Waiting::register(state, id);
                    let r = query::run_remote(http, base, &req, &waiting.token).await;
                    // Cancelled while the answer was on its way: the app
                    // asked for the cancel, so it gets the cancel.
                    if waiting.token.is_canceled() {
                        Err(canceled_error())
                    } else {
                        r
                    }
                }
                None => query::run_local(state, &req, interrupts.for_query(id)),
            };
            match r {
                Ok(a) => Response::QueryResult(a),
                Err(e) => Response::Error(e),
            }
        }
        Request::Cancel { id: target } => {
            // Cloned out first: firing runs callbacks, which must not find
            // the state borrowed.
            let token = state.borrow().waiting.get(&target).cloned();
            let stopped = token.is_some_and(|t| {
                t.cancel();
                true
            });
            Response::CancelRequested { stopped }
        }
        Request::ShareCancelFlag => match interrupts.share_flag() {
            Ok(()) => Response::CancelFlagShared,
            Err(e) => Response::Error(e),
        },
        Request::OpenProfile(req) => {
            let bytes = match &req.url {
                None => opener.file_bytes(),
                Some(url) => {
                    let waiting = Waiting::register(state, id);
                    let r =
                        profiles_server::fetch_profile(http, &req.name, url, &waiting.token).await;
                    if waiting.token.is_canceled() {
                        Err(canceled_error())
                    } else {
                        r
                    }
                }
            };
            let r = bytes.and_then(|bytes| {
                let mut st = state.borrow_mut();
                let flame = &mut st.flame;
                if req.as_base {
                    flame_view::open_base(flame, &req.name, &bytes)
                } else {
                    // The previous profile, then the file's bytes, are
                    // freed before the next tree is built.
                    flame.loaded = None;
                    let model = flame_view::decode(&req.name, &bytes)?;
                    drop(bytes);
                    flame_view::open_model(flame, &req.name, model)
                }
            });
            match r {
                Ok(info) => Response::ProfileOpened(info),
                Err(e) => Response::Error(e),
            }
        }
        Request::ListProfiles(req) => {
            let waiting = Waiting::register(state, id);
            let r = profiles_server::list(http, &req, &waiting.token).await;
            match r {
                _ if waiting.token.is_canceled() => Response::Error(canceled_error()),
                Ok(list) => Response::ProfileList(list),
                Err(e) => Response::Error(e),
            }
        }
        Request::FlameTop => match flame_view::top(&state.borrow().flame) {
            Ok(t) => Response::FlameTop(t),
            Err(e) => Response::Error(e),
        },
        Request::FlameView(view) => {
            drawn(opener.canvas().and_then(|canvas| {
                flame_view::set_view(&mut state.borrow_mut().flame, view, canvas)
            }))
        }
        Request::FlameNavigate(nav) => {
            drawn(flame_view::navigate(&mut state.borrow_mut().flame, nav))
        }
        Request::FlameClick(p) => drawn(flame_view::click(&mut state.borrow_mut().flame, p)),
        Request::FlameReset => drawn(flame_view::reset(&mut state.borrow_mut().flame)),
        Request::FlameHover(p) => match flame_view::hover(&state.borrow().flame, p) {
            Ok(hit) => Response::FlameHit(hit),
            Err(e) => Response::Error(e),
        },
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

fn drawn(r: Result<emberlens_protocol::FlameStatus, ErrorBody>) -> Response {
    match r {
        Ok(s) => Response::FlameDrawn(s),
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
    use crate::cancel::NoInterrupts;
    use emberlens_model::{Labels, Matcher, Sample, Series, Storage, StorageError};
    use emberlens_protocol::{CANCELED_MESSAGE, QueryRequest, QueryTime, SourceInfo};
    use futures_executor::block_on;
    use std::future::Future;
    use std::pin::pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::task::{Context, Poll, Waker};

    struct NoHttp;
    impl Http for NoHttp {
        async fn get(&self, url: &str, _: &CancelToken) -> Result<(u16, String), String> {
            Err(format!("no network in this test ({url})"))
        }
        async fn post(
            &self,
            url: &str,
            _: &[(&str, &str)],
            _: Vec<u8>,
            _: &CancelToken,
        ) -> Result<HttpBytes, String> {
            Err(format!("no network in this test ({url})"))
        }
    }

    /// A server that never answers: `get` waits until its token fires, then
    /// fails as an aborted `fetch` does.
    struct Hanging;
    impl Hanging {
        fn hang<T>(cancel: &CancelToken) -> impl Future<Output = Result<T, String>> {
            let cancel = cancel.clone();
            std::future::poll_fn(move |cx: &mut Context<'_>| {
                if cancel.is_canceled() {
                    return Poll::Ready(Err("the operation was aborted".to_string()));
                }
                let waker = cx.waker().clone();
                cancel.on_cancel(move || waker.wake());
                Poll::Pending
            })
        }
    }
    impl Http for Hanging {
        fn get(
            &self,
            _url: &str,
            cancel: &CancelToken,
        ) -> impl Future<Output = Result<(u16, String), String>> {
            Self::hang(cancel)
        }
        fn post(
            &self,
            _url: &str,
            _: &[(&str, &str)],
            _: Vec<u8>,
            cancel: &CancelToken,
        ) -> impl Future<Output = Result<HttpBytes, String>> {
            Self::hang(cancel)
        }
    }

    /// The shared flag, natively: an atomic the test writes.
    #[derive(Default)]
    struct TestFlag(Arc<AtomicU64>);
    impl Interrupts for TestFlag {
        fn share_flag(&self) -> Result<(), ErrorBody> {
            Ok(())
        }
        fn for_query(&self, id: u64) -> Option<emberlens_promql::engine::Interrupt> {
            let flag = self.0.clone();
            Some(Arc::new(move || {
                (flag.load(Ordering::Relaxed) == id).then(crate::cancel::canceled_eval_error)
            }))
        }
    }

    /// One series `x`, a sample every 15 s for an hour.
    struct OneSeries;
    impl Storage for OneSeries {
        fn select(&self, _: &[Matcher], _: i64, _: i64) -> Result<Vec<Series>, StorageError> {
            Ok(vec![Series {
                labels: Labels::from_pairs([("__name__", "x")]),
                samples: (0..240)
                    .map(|i| Sample {
                        t_ms: i * 15_000,
                        v: i as f64,
                    })
                    .collect(),
                histograms: Vec::new(),
                start_timestamps: None,
            }])
        }
    }

    fn opened_state() -> State {
        let state = State::default();
        state.borrow_mut().opened = Some(Opened {
            storage: Box::new(OneSeries),
            info: SourceInfo::default(),
        });
        state
    }

    fn query(base_url: Option<&str>) -> Request {
        Request::Query(QueryRequest {
            expr: "max_over_time(x[5m:1s])".into(),
            time: QueryTime::Range {
                start_ms: 0,
                end_ms: 3_600_000,
                step_ms: 60_000,
            },
            base_url: base_url.map(str::to_string),
        })
    }

    #[test]
    fn hello_echoes_the_id_and_version() {
        let resp = block_on(handle(
            Envelope::new(42, Request::Hello),
            &NoHttp,
            &State::default(),
            &NoOpener,
            &NoInterrupts,
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
        let resp = block_on(handle(
            req,
            &NoHttp,
            &State::default(),
            &NoOpener,
            &NoInterrupts,
        ));
        assert!(matches!(
            resp.body,
            Response::Error(ErrorBody {
                kind: ErrorKind::VersionMismatch,
                ..
            })
        ));
    }

    /// A forwarded query waits on the network; a `Cancel` handled meanwhile
    /// (its own task in the worker) stops it, and the query is answered
    /// with Prometheus's canceled error.
    #[test]
    fn cancel_stops_a_forwarded_query_waiting_on_the_network() {
        let state = State::default();
        let mut q = pin!(handle(
            Envelope::new(5, query(Some("http://h:9090"))),
            &Hanging,
            &state,
            &NoOpener,
            &NoInterrupts,
        ));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(q.as_mut().poll(&mut cx).is_pending());
        assert!(state.borrow().waiting.contains_key(&5));

        let other = block_on(handle(
            Envelope::new(6, Request::Cancel { id: 99 }),
            &Hanging,
            &state,
            &NoOpener,
            &NoInterrupts,
        ));
        assert_eq!(other.body, Response::CancelRequested { stopped: false });
        assert!(q.as_mut().poll(&mut cx).is_pending());

        let cancel = block_on(handle(
            Envelope::new(7, Request::Cancel { id: 5 }),
            &Hanging,
            &state,
            &NoOpener,
            &NoInterrupts,
        ));
        assert_eq!(cancel.id, 7);
        assert_eq!(cancel.body, Response::CancelRequested { stopped: true });
        let Poll::Ready(resp) = q.as_mut().poll(&mut cx) else {
            panic!("the cancelled query still waits");
        };
        assert_eq!(resp.id, 5);
        assert_eq!(
            resp.body,
            Response::Error(ErrorBody {
                kind: ErrorKind::Canceled,
                message: CANCELED_MESSAGE.into(),
            })
        );
        assert!(state.borrow().waiting.is_empty());
    }

    /// A query the engine runs in the worker stops at the next step once the
    /// shared flag names it, and only then.
    #[test]
    fn the_shared_flag_stops_the_local_query_it_names() {
        let state = opened_state();
        let flag = TestFlag::default();
        let share = block_on(handle(
            Envelope::new(1, Request::ShareCancelFlag),
            &NoHttp,
            &state,
            &NoOpener,
            &flag,
        ));
        assert_eq!(share.body, Response::CancelFlagShared);

        flag.0.store(3, Ordering::Relaxed);
        let other = block_on(handle(
            Envelope::new(2, query(None)),
            &NoHttp,
            &state,
            &NoOpener,
            &flag,
        ));
        assert!(
            matches!(&other.body, Response::QueryResult(a) if a.series.len() == 1),
            "{other:?}"
        );
        let named = block_on(handle(
            Envelope::new(3, query(None)),
            &NoHttp,
            &state,
            &NoOpener,
            &flag,
        ));
        assert_eq!(
            named.body,
            Response::Error(ErrorBody {
                kind: ErrorKind::Canceled,
                message: CANCELED_MESSAGE.into(),
            })
        );
    }

    #[test]
    fn without_the_browser_there_is_no_flag_to_share() {
        let resp = block_on(handle(
            Envelope::new(1, Request::ShareCancelFlag),
            &NoHttp,
            &State::default(),
            &NoOpener,
            &NoInterrupts,
        ));
        assert!(
            matches!(&resp.body, Response::Error(e) if e.kind == ErrorKind::BadRequest),
            "{resp:?}"
        );
    }

    /// A profile server: `/api/v1/profiles/a` is a folded-stacks profile,
    /// the list and targets answer canned JSON, anything else is a 404 in
    /// Prometheus's error shape.
    struct ProfileServer;
    impl Http for ProfileServer {
        async fn get(&self, url: &str, _: &CancelToken) -> Result<(u16, String), String> {
            Ok(if url.contains("/api/v1/profiles/targets") {
                (200, r#"{"status":"success","data":[{"type":"cpu","labels":{"job":"j"},"health":"up"}]}"#.into())
            } else if url.contains("/api/v1/profiles?") {
                (200, r#"{"status":"success","data":[{"id":"a","type":"cpu","labels":{"job":"j"},"timestamp":2}]}"#.into())
            } else {
                (404, String::new())
            })
        }
        async fn post(
            &self,
            url: &str,
            _: &[(&str, &str)],
            _: Vec<u8>,
            _: &CancelToken,
        ) -> Result<HttpBytes, String> {
            Err(format!("no POST in this test ({url})"))
        }
        async fn get_bytes(&self, url: &str, _: &CancelToken) -> Result<HttpBytes, String> {
            Ok(if url.ends_with("/api/v1/profiles/a") {
                HttpBytes {
                    status: 200,
                    body: b"main;work 3\nmain;idle 1\n".to_vec(),
                    ..HttpBytes::default()
                }
            } else {
                HttpBytes {
                    status: 404,
                    body:
                        br#"{"status":"error","errorType":"not_found","error":"no profiles match"}"#
                            .to_vec(),
                    ..HttpBytes::default()
                }
            })
        }
    }

    fn ask(state: &State, req: Request) -> Response {
        block_on(handle(
            Envelope::new(5, req),
            &ProfileServer,
            state,
            &NoOpener,
            &NoInterrupts,
        ))
        .body
    }

    #[test]
    fn profiles_are_listed_and_fetched_from_the_server() {
        use emberlens_protocol::{ListProfiles, OpenProfile};
        let state = State::default();
        let list = ask(
            &state,
            Request::ListProfiles(ListProfiles {
                base_url: "http://h".into(),
                selector: String::new(),
                start_ms: 0,
                end_ms: 10_000,
            }),
        );
        let Response::ProfileList(list) = list else {
            panic!("{list:?}")
        };
        assert_eq!(
            (list.profiles[0].id.as_str(), list.profiles[0].time_ms),
            ("a", 2000)
        );
        assert_eq!(list.targets[0].selector(), r#"{__name__="cpu", job="j"}"#);
        let open = |url: &str| {
            ask(
                &state,
                Request::OpenProfile(OpenProfile {
                    name: "stored a".into(),
                    url: Some(url.into()),
                    as_base: false,
                }),
            )
        };
        let opened = open("http://h/api/v1/profiles/a");
        assert!(
            matches!(&opened, Response::ProfileOpened(i) if i.samples == 2),
            "{opened:?}"
        );
        let Response::FlameTop(top) = ask(&state, Request::FlameTop) else {
            panic!("no top table")
        };
        assert_eq!(top.total, 4);
        assert_eq!(top.rows[0].name, "work");
        // The server's error message reaches the app, naming the profile.
        let missing = open("http://h/api/v1/profiles/merge?match[]=x");
        assert!(
            matches!(&missing, Response::Error(e) if e.kind == ErrorKind::Network && e.message == "stored a: no profiles match"),
            "{missing:?}"
        );
        let hostile = open("file:///etc/passwd");
        assert!(
            matches!(&hostile, Response::Error(e) if e.kind == ErrorKind::BadRequest),
            "{hostile:?}"
        );
    }
}
