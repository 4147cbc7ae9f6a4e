//! The one owner of the Web Worker: spawns it, sends [`Request`]s, resolves
//! one future per request id when the matching [`Response`] arrives, and
//! cancels requests.
//!
//! The worker is spawned once, at start-up (the first call to [`client`]), so
//! its Wasm compiles while the page renders. Requests made before the worker
//! announced itself with `Response::Ready` are queued and sent on that
//! message: a worker drops messages that arrive before its handler exists. If
//! the worker dies (its script fails to load, or it throws), every pending
//! request resolves with an error and later requests fail fast with the same
//! message.
//!
//! Cancelling ([`WorkerClient::cancel`]): a query the worker forwards to a
//! server waits on `fetch`, so a `Request::Cancel` aborts it. A query the
//! worker runs itself blocks the worker's thread, so no message reaches it:
//! on a cross-origin isolated page the client shares a flag with the worker
//! (an `Int32Array` over a `SharedArrayBuffer`, `Request::ShareCancelFlag`)
//! and writes the query's id into it with `Atomics.store`; the engine reads
//! it at every step. Without isolation, or when the worker has not answered
//! [`CANCEL_GRACE`] after a cancel, the client terminates the worker, starts
//! a new one, opens the source that was open again (it keeps the last
//! `OpenFiles` with its `File`s, or `OpenUrl`), answers the cancelled request
//! with the canceled error and every other request in flight with an error
//! saying it was dropped.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::Duration;

use emberlens_protocol::{
    CANCEL_FLAG_PROPERTY, CANCELED_MESSAGE, CANVAS_PROPERTY, Envelope, ErrorBody, ErrorKind,
    READY_ID, Request, Response, WORKER_NAME, WORKER_SCRIPT, cancel_flag_value,
};
use futures_channel::oneshot;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{ErrorEvent, MessageEvent, Worker, WorkerOptions, WorkerType};

/// How long a cancelled request may take to be answered before the worker
/// is restarted (a local query checks the flag at every step, so it stops
/// in milliseconds; this covers a worker stuck in one long read).
pub const CANCEL_GRACE: Duration = Duration::from_millis(700);

/// The message of requests dropped because the worker was restarted.
const DROPPED: &str = "the worker was restarted to stop a cancelled query, and this request was dropped with it; try again";

/// How the last cancel was carried out (for the UI and the tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelPath {
    /// The shared flag stopped a query running in the worker.
    Flag,
    /// `Request::Cancel` aborted a request waiting on the network.
    Abort,
    /// The worker was terminated and started again.
    Restart,
}

impl CancelPath {
    /// A short name (`flag`, `abort`, `restart`).
    pub fn as_str(self) -> &'static str {
        match self {
            CancelPath::Flag => "flag",
            CancelPath::Abort => "abort",
            CancelPath::Restart => "restart",
        }
    }
}

/// A request to replay on a new worker: the source that was open.
#[derive(Clone)]
struct Replay {
    body: Request,
    files: Option<js_sys::Array>,
}

/// What a pending request is, for cancelling it.
enum Kind {
    /// Runs in the worker's thread (a local query, opening a source).
    Blocking,
    /// A local query, which the shared flag can stop.
    LocalQuery,
    /// Waits on the network in the worker; `Request::Cancel` stops it.
    Network,
    /// Opens a source; remembered for replay when it succeeds.
    Open(Replay),
}

struct Pending {
    tx: oneshot::Sender<Result<Response, String>>,
    kind: Kind,
}

type PendingMap = Rc<RefCell<HashMap<u64, Pending>>>;

/// State that outlives a worker (restarts keep it).
struct Shared {
    next_id: Cell<u64>,
    pending: PendingMap,
    /// The cancel flag, on a cross-origin isolated page whose worker took it.
    flag: RefCell<Option<js_sys::Int32Array>>,
    /// The last source opened successfully.
    source: Rc<RefCell<Option<Replay>>>,
    last_cancel: Cell<Option<CancelPath>>,
    /// Called after every restart (see [`WorkerClient::on_restart`]).
    on_restart: RefCell<Vec<Rc<dyn Fn()>>>,
}

/// A message waiting for the worker's `Ready`, with its transfer list.
type Queued = (JsValue, Option<js_sys::Array>);

/// Posts `msg`, transferring `transfer`'s objects (an `OffscreenCanvas`) if any.
fn post_to(
    worker: &Worker,
    msg: &JsValue,
    transfer: Option<&js_sys::Array>,
) -> Result<(), JsValue> {
    match transfer {
        Some(t) => worker.post_message_with_transfer(msg, t),
        None => worker.post_message(msg),
    }
}

/// One worker and its handlers.
struct Conn {
    worker: Option<Worker>,
    /// Messages waiting for the worker's `Ready`; `None` once it is ready.
    queue: Rc<RefCell<Option<Vec<Queued>>>>,
    dead: Rc<RefCell<Option<String>>>,
    _on_message: Option<Closure<dyn FnMut(MessageEvent)>>,
    _on_error: Option<Closure<dyn FnMut(ErrorEvent)>>,
}

/// Handle to the worker. Cheap to share through [`client`].
pub struct WorkerClient {
    script: String,
    shared: Shared,
    conn: RefCell<Conn>,
    me: Weak<WorkerClient>,
}

/// A sent request: its id (to cancel it) and its answer.
pub struct Ticket {
    id: u64,
    rx: oneshot::Receiver<Result<Response, String>>,
}

impl Ticket {
    /// The request id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Waits for the answer. `Err` means the transport failed (worker dead
    /// or restarted, message not encodable); a failed request comes back as
    /// `Ok(Response::Error(..))`.
    pub async fn answer(self) -> Result<Response, String> {
        self.rx
            .await
            .map_err(|_| "the worker went away".to_string())?
    }
}

thread_local! {
    static CLIENT: Rc<WorkerClient> = WorkerClient::spawn(WORKER_SCRIPT);
}

/// The app's worker client, spawning the worker on first use.
pub fn client() -> Rc<WorkerClient> {
    CLIENT.with(Rc::clone)
}

/// Whether this page may share memory with its worker.
fn cross_origin_isolated() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &"crossOriginIsolated".into())
        .ok()
        .and_then(|v| v.as_bool())
        == Some(true)
}

impl WorkerClient {
    /// Spawns the worker from `script` (a classic worker script) and, on a
    /// cross-origin isolated page, shares the cancel flag with it.
    pub fn spawn(script: &str) -> Rc<Self> {
        let flag = cross_origin_isolated()
            .then(|| js_sys::Int32Array::new(&js_sys::SharedArrayBuffer::new(4)));
        let shared = Shared {
            next_id: Cell::new(1),
            pending: Rc::default(),
            flag: RefCell::new(flag),
            source: Rc::default(),
            last_cancel: Cell::new(None),
            on_restart: RefCell::default(),
        };
        let client = Rc::new_cyclic(|me| WorkerClient {
            script: script.to_string(),
            conn: RefCell::new(Conn::start(script, &shared)),
            shared,
            me: me.clone(),
        });
        client.share_flag();
        client
    }

    /// Sends `body` and waits for its response (see [`Ticket::answer`]).
    pub async fn request(&self, body: Request) -> Result<Response, String> {
        self.send(body).answer().await
    }

    /// Sends `body`; the ticket's id can be passed to [`cancel`](Self::cancel).
    pub fn send(&self, body: Request) -> Ticket {
        self.post(body, None)
    }

    /// Sends `OpenFiles` with its `File`s beside the envelope.
    pub fn send_with_files(&self, body: Request, files: js_sys::Array) -> Ticket {
        self.post(body, Some(("files", files.into())))
    }

    /// Sends `body` with `canvas` beside the envelope (in
    /// `CANVAS_PROPERTY`), transferring it to the worker: from then on only
    /// the worker draws on it. A worker restarted to cancel a query does not
    /// get it back (a canvas is transferred once, and the old worker took
    /// it with it): the profile view, told through
    /// [`on_restart`](Self::on_restart), replaces its `<canvas>` element
    /// and transfers the new one.
    ///
    /// The profile view likewise reopens its profile in the new worker.
    pub fn send_with_canvas(&self, body: Request, canvas: web_sys::OffscreenCanvas) -> Ticket {
        self.post_transfer(
            body,
            Some((CANVAS_PROPERTY, canvas.clone().into())),
            Some(js_sys::Array::of1(&canvas)),
        )
    }

    /// Calls `f` after every restart of the worker (the new worker has the
    /// flag and the replayed source; it has no canvas and no profile).
    pub fn on_restart(&self, f: impl Fn() + 'static) {
        self.shared.on_restart.borrow_mut().push(Rc::new(f));
    }

    /// How a query running in the worker is cancelled on this page.
    pub fn local_cancel_path(&self) -> CancelPath {
        if self.shared.flag.borrow().is_some() {
            CancelPath::Flag
        } else {
            CancelPath::Restart
        }
    }

    /// How the last [`cancel`](Self::cancel) was carried out.
    pub fn last_cancel(&self) -> Option<CancelPath> {
        self.shared.last_cancel.get()
    }

    /// Cancels request `id` if it is still pending. It is then answered with
    /// `ErrorKind::Canceled` (Prometheus's message) by the worker, or by this
    /// client when it restarts the worker to stop it.
    pub fn cancel(&self, id: u64) {
        let class = match self.shared.pending.borrow().get(&id).map(|p| &p.kind) {
            None => return,
            Some(Kind::LocalQuery) => Kind::LocalQuery,
            Some(Kind::Network) => Kind::Network,
            Some(_) => Kind::Blocking,
        };
        match class {
            Kind::LocalQuery if self.flag_set(id) => {
                self.shared.last_cancel.set(Some(CancelPath::Flag));
                self.restart_unless_answered(id);
            }
            Kind::Network => {
                self.shared.last_cancel.set(Some(CancelPath::Abort));
                // Answered with CancelRequested; nothing to do with it.
                drop(self.send(Request::Cancel { id }));
                self.restart_unless_answered(id);
            }
            _ => self.restart(id),
        }
    }

    /// Writes `id` into the shared flag; false without a flag.
    fn flag_set(&self, id: u64) -> bool {
        let flag = self.shared.flag.borrow();
        let Some(flag) = flag.as_ref() else {
            return false;
        };
        match js_sys::Atomics::store(flag, 0, cancel_flag_value(id)) {
            Ok(_) => true,
            Err(e) => {
                web_sys::console::error_2(&"emberlens: Atomics.store failed".into(), &e);
                false
            }
        }
    }

    /// Restarts the worker if `id` is still pending after [`CANCEL_GRACE`].
    fn restart_unless_answered(&self, id: u64) {
        let me = self.me.clone();
        leptos::prelude::set_timeout(
            move || {
                if let Some(client) = me.upgrade()
                    && client.shared.pending.borrow().contains_key(&id)
                {
                    client.restart(id);
                }
            },
            CANCEL_GRACE,
        );
    }

    /// Terminates the worker and starts a new one: request `canceled` is
    /// answered with the canceled error, every other pending request with
    /// [`DROPPED`]; the flag is shared again and the open source reopened.
    fn restart(&self, canceled: u64) {
        self.shared.last_cancel.set(Some(CancelPath::Restart));
        let new = Conn::start(&self.script, &self.shared);
        let old = std::mem::replace(&mut *self.conn.borrow_mut(), new);
        if let Some(w) = &old.worker {
            w.terminate();
        }
        drop(old);
        let drained: Vec<(u64, Pending)> = self.shared.pending.borrow_mut().drain().collect();
        for (id, p) in drained {
            let answer = if id == canceled {
                Ok(Response::Error(ErrorBody {
                    kind: ErrorKind::Canceled,
                    message: CANCELED_MESSAGE.into(),
                }))
            } else {
                Err(DROPPED.to_string())
            };
            let _ = p.tx.send(answer);
        }
        self.share_flag();
        let replay = self.shared.source.borrow().clone();
        if let Some(r) = replay {
            let ticket = match r.files {
                Some(files) => self.send_with_files(r.body, files),
                None => self.send(r.body),
            };
            wasm_bindgen_futures::spawn_local(async move {
                match ticket.answer().await {
                    Ok(Response::Opened(_)) => {}
                    other => web_sys::console::error_1(
                        &format!(
                            "emberlens: reopening the source in the new worker failed: {other:?}"
                        )
                        .into(),
                    ),
                }
            });
        }
        // Cloned out first: a callback may send requests.
        let callbacks: Vec<Rc<dyn Fn()>> = self.shared.on_restart.borrow().clone();
        for f in callbacks {
            f();
        }
    }

    /// Hands the cancel flag to the (new) worker; forgets it if refused.
    fn share_flag(&self) {
        let Some(flag) = self.shared.flag.borrow().clone() else {
            return;
        };
        // A fresh worker starts idle: clear a cancel meant for the old one.
        let _ = js_sys::Atomics::store(&flag, 0, 0);
        let ticket = self.post(
            Request::ShareCancelFlag,
            Some((CANCEL_FLAG_PROPERTY, flag.into())),
        );
        let me = self.me.clone();
        wasm_bindgen_futures::spawn_local(async move {
            match ticket.answer().await {
                Ok(Response::CancelFlagShared) => {}
                other => {
                    web_sys::console::error_1(
                        &format!("emberlens: the worker refused the cancel flag ({other:?}); cancelling restarts it instead")
                            .into(),
                    );
                    if let Some(c) = me.upgrade() {
                        *c.shared.flag.borrow_mut() = None;
                    }
                }
            }
        });
    }

    fn post(&self, body: Request, attach: Option<(&str, JsValue)>) -> Ticket {
        self.post_transfer(body, attach, None)
    }

    fn post_transfer(
        &self,
        body: Request,
        attach: Option<(&str, JsValue)>,
        transfer: Option<js_sys::Array>,
    ) -> Ticket {
        let id = self.shared.next_id.get();
        self.shared.next_id.set(id + 1);
        let (tx, rx) = oneshot::channel();
        let ticket = Ticket { id, rx };
        let conn = self.conn.borrow();
        if let Some(msg) = conn.dead.borrow().clone() {
            let _ = tx.send(Err(msg));
            return ticket;
        }
        let Some(worker) = &conn.worker else {
            let _ = tx.send(Err("the worker is not running".into()));
            return ticket;
        };
        let kind = match &body {
            Request::Query(q) if q.base_url.is_none() => Kind::LocalQuery,
            Request::Query(_) | Request::FetchSeries(_) => Kind::Network,
            Request::OpenFiles(_) | Request::OpenUrl(_) => Kind::Open(Replay {
                body: body.clone(),
                files: attach
                    .as_ref()
                    .filter(|(k, _)| *k == "files")
                    .and_then(|(_, v)| v.clone().dyn_into::<js_sys::Array>().ok()),
            }),
            _ => Kind::Blocking,
        };
        let msg = match serde_wasm_bindgen::to_value(&Envelope::new(id, body)) {
            Ok(m) => m,
            Err(e) => {
                let _ = tx.send(Err(format!("cannot encode the request: {e}")));
                return ticket;
            }
        };
        if let Some((key, value)) = attach
            && let Err(e) = js_sys::Reflect::set(&msg, &key.into(), &value)
        {
            let _ = tx.send(Err(format!(
                "cannot attach {key} to the request: {}",
                js_error_text(&e)
            )));
            return ticket;
        }
        self.shared
            .pending
            .borrow_mut()
            .insert(id, Pending { tx, kind });
        if let Some(queued) = conn.queue.borrow_mut().as_mut() {
            queued.push((msg, transfer));
        } else if let Err(e) = post_to(worker, &msg, transfer.as_ref())
            && let Some(p) = self.shared.pending.borrow_mut().remove(&id)
        {
            let _ =
                p.tx.send(Err(format!("postMessage failed: {}", js_error_text(&e))));
        }
        ticket
    }
}

impl Conn {
    /// Starts a worker from `script` with handlers that answer `shared`'s
    /// pending requests.
    fn start(script: &str, shared: &Shared) -> Conn {
        let queue: Rc<RefCell<Option<Vec<Queued>>>> = Rc::new(RefCell::new(Some(Vec::new())));
        let dead: Rc<RefCell<Option<String>>> = Rc::default();
        let opts = WorkerOptions::new();
        opts.set_name(WORKER_NAME);
        opts.set_type(WorkerType::Classic);
        let worker = match Worker::new_with_options(script, &opts) {
            Ok(w) => w,
            Err(e) => {
                *dead.borrow_mut() =
                    Some(format!("cannot start the worker: {}", js_error_text(&e)));
                return Conn {
                    worker: None,
                    queue,
                    dead,
                    _on_message: None,
                    _on_error: None,
                };
            }
        };
        let on_message = {
            let pending = shared.pending.clone();
            let source = shared.source.clone();
            let queue = queue.clone();
            let worker = worker.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
                match serde_wasm_bindgen::from_value::<Envelope<Response>>(ev.data()) {
                    Ok(env) if env.id == READY_ID => {
                        for (msg, transfer) in queue.borrow_mut().take().unwrap_or_default() {
                            if let Err(e) = post_to(&worker, &msg, transfer.as_ref()) {
                                web_sys::console::error_2(
                                    &"emberlens: postMessage failed".into(),
                                    &e,
                                );
                            }
                        }
                    }
                    Ok(env) => {
                        let Some(p) = pending.borrow_mut().remove(&env.id) else {
                            return;
                        };
                        if let (Kind::Open(replay), Response::Opened(_)) = (p.kind, &env.body) {
                            *source.borrow_mut() = Some(replay);
                        }
                        let _ = p.tx.send(Ok(env.body));
                    }
                    Err(e) => {
                        web_sys::console::error_1(
                            &format!("emberlens: undecodable worker message: {e}").into(),
                        );
                    }
                }
            })
        };
        let on_error = {
            let pending = shared.pending.clone();
            let dead = dead.clone();
            Closure::<dyn FnMut(ErrorEvent)>::new(move |ev: ErrorEvent| {
                let msg = format!("the worker failed: {}", ev.message());
                let drained: Vec<Pending> = pending.borrow_mut().drain().map(|(_, p)| p).collect();
                for p in drained {
                    let _ = p.tx.send(Err(msg.clone()));
                }
                *dead.borrow_mut() = Some(msg);
            })
        };
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Conn {
            worker: Some(worker),
            queue,
            dead,
            _on_message: Some(on_message),
            _on_error: Some(on_error),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // A replaced worker's handlers go with it: nothing it might still
        // deliver may reach the new worker's requests.
        if let Some(w) = &self.worker {
            w.set_onmessage(None);
            w.set_onerror(None);
        }
    }
}

fn js_error_text(e: &JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{e:?}"))
}
