//! The one owner of the Web Worker: spawns it, sends [`Request`]s, and resolves
//! one future per request id when the matching [`Response`] arrives.
//!
//! The worker is spawned once, at start-up (the first call to [`client`]), so
//! its Wasm compiles while the page renders. Requests made before the worker
//! announced itself with `Response::Ready` are queued and sent on that
//! message: a worker drops messages that arrive before its handler exists. If the worker dies (its script
//! fails to load, or it throws), every pending request resolves with an error
//! and later requests fail fast with the same message.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use emberlens_protocol::{Envelope, READY_ID, Request, Response, WORKER_NAME, WORKER_SCRIPT};
use futures_channel::oneshot;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{ErrorEvent, MessageEvent, Worker, WorkerOptions, WorkerType};

type Pending = Rc<RefCell<HashMap<u64, oneshot::Sender<Result<Response, String>>>>>;

/// Messages waiting for the worker's `Ready`; `None` once it is ready.
type Queue = Rc<RefCell<Option<Vec<JsValue>>>>;

/// Handle to the worker. Cheap to share through [`client`].
pub struct WorkerClient {
    worker: Option<Worker>,
    next_id: Cell<u64>,
    pending: Pending,
    queue: Queue,
    dead: Rc<RefCell<Option<String>>>,
    _on_message: Option<Closure<dyn FnMut(MessageEvent)>>,
    _on_error: Option<Closure<dyn FnMut(ErrorEvent)>>,
}

thread_local! {
    static CLIENT: Rc<WorkerClient> = Rc::new(WorkerClient::spawn(WORKER_SCRIPT));
}

/// The app's worker client, spawning the worker on first use.
pub fn client() -> Rc<WorkerClient> {
    CLIENT.with(Rc::clone)
}

impl WorkerClient {
    /// Spawns the worker from `script` (a classic worker script).
    pub fn spawn(script: &str) -> Self {
        let pending: Pending = Rc::default();
        let queue: Queue = Rc::new(RefCell::new(Some(Vec::new())));
        let dead: Rc<RefCell<Option<String>>> = Rc::default();
        let opts = WorkerOptions::new();
        opts.set_name(WORKER_NAME);
        opts.set_type(WorkerType::Classic);
        let worker = match Worker::new_with_options(script, &opts) {
            Ok(w) => w,
            Err(e) => {
                *dead.borrow_mut() =
                    Some(format!("cannot start the worker: {}", js_error_text(&e)));
                return WorkerClient {
                    worker: None,
                    next_id: Cell::new(1),
                    pending,
                    queue,
                    dead,
                    _on_message: None,
                    _on_error: None,
                };
            }
        };
        let on_message = {
            let pending = pending.clone();
            let queue = queue.clone();
            let worker = worker.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
                match serde_wasm_bindgen::from_value::<Envelope<Response>>(ev.data()) {
                    Ok(env) if env.id == READY_ID => {
                        for msg in queue.borrow_mut().take().unwrap_or_default() {
                            if let Err(e) = worker.post_message(&msg) {
                                web_sys::console::error_2(
                                    &"emberlens: postMessage failed".into(),
                                    &e,
                                );
                            }
                        }
                    }
                    Ok(env) => {
                        if let Some(tx) = pending.borrow_mut().remove(&env.id) {
                            let _ = tx.send(Ok(env.body));
                        }
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
            let pending = pending.clone();
            let dead = dead.clone();
            Closure::<dyn FnMut(ErrorEvent)>::new(move |ev: ErrorEvent| {
                let msg = format!("the worker failed: {}", ev.message());
                for (_, tx) in pending.borrow_mut().drain() {
                    let _ = tx.send(Err(msg.clone()));
                }
                *dead.borrow_mut() = Some(msg);
            })
        };
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        WorkerClient {
            worker: Some(worker),
            next_id: Cell::new(1),
            pending,
            queue,
            dead,
            _on_message: Some(on_message),
            _on_error: Some(on_error),
        }
    }

    /// Sends `body` and waits for its response. `Err` means the transport
    /// failed (worker dead, message not encodable); a failed request comes
    /// back as `Ok(Response::Error(..))`.
    pub async fn request(&self, body: Request) -> Result<Response, String> {
        if let Some(msg) = self.dead.borrow().clone() {
            return Err(msg);
        }
        let Some(worker) = &self.worker else {
            return Err("the worker is not running".into());
        };
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let msg = serde_wasm_bindgen::to_value(&Envelope::new(id, body))
            .map_err(|e| format!("cannot encode the request: {e}"))?;
        let (tx, rx) = oneshot::channel();
        self.pending.borrow_mut().insert(id, tx);
        if let Some(queued) = self.queue.borrow_mut().as_mut() {
            queued.push(msg);
        } else if let Err(e) = worker.post_message(&msg) {
            self.pending.borrow_mut().remove(&id);
            return Err(format!("postMessage failed: {}", js_error_text(&e)));
        }
        rx.await.map_err(|_| "the worker went away".to_string())?
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
