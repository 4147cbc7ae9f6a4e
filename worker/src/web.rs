//! The browser side of the worker (wasm32 only): the message pipe, `fetch`
//! (aborted through an `AbortController` when the request is cancelled) and
//! the shared cancel flag.
//!
//! [`start`] runs when the module is instantiated. It installs the handler only
//! in a dedicated worker named `WORKER_NAME` (the app spawns it with that
//! name), so loading this module anywhere else, e.g. in a test harness's own
//! worker, has no side effects.

use emberlens_protocol::{
    CANCEL_FLAG_PROPERTY, CANVAS_PROPERTY, Envelope, ErrorKind, PROTOCOL_VERSION, READY_ID,
    Request, Response, WORKER_NAME, cancel_flag_value,
};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent, MessagePort};

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use emberlens_protocol::{ErrorBody, SourceInfo};
use emberlens_tsdb::{ByteSource, Db, FileSet};

use crate::blob::{OpenedSource, open_source};
use crate::cancel::{CancelToken, Interrupts, canceled_eval_error};
use crate::canvas::CanvasSurface;
use crate::dispatch::{self, Http, HttpBytes, Opener};
use crate::flame_view::Surface;
use crate::http_range::{UrlSource, open_url};
use crate::query::{Opened, State, db_info};

/// Where replies go: the worker's own scope, or a `MessagePort` (tests, and
/// later shared channels).
#[derive(Clone)]
pub enum Endpoint {
    /// The dedicated worker's global scope (the app's `Worker` object).
    Scope(DedicatedWorkerGlobalScope),
    /// One end of a `MessageChannel`.
    Port(MessagePort),
}

impl Endpoint {
    fn post(&self, msg: &JsValue) -> Result<(), JsValue> {
        match self {
            Endpoint::Scope(s) => s.post_message(msg),
            Endpoint::Port(p) => p.post_message(msg),
        }
    }

    fn set_onmessage(&self, f: Option<&js_sys::Function>) {
        match self {
            Endpoint::Scope(s) => s.set_onmessage(f),
            Endpoint::Port(p) => p.set_onmessage(f),
        }
    }
}

/// Module entry: serve the app's requests if this is the app's worker.
#[wasm_bindgen(start)]
pub fn start() {
    if let Ok(scope) = js_sys::global().dyn_into::<DedicatedWorkerGlobalScope>()
        && scope.name() == WORKER_NAME
    {
        serve(Endpoint::Scope(scope));
    }
}

/// Installs the request handler on `endpoint`: every message is decoded as an
/// `Envelope<Request>`, handled, and answered on the same endpoint.
pub fn serve(endpoint: Endpoint) {
    let reply_to = endpoint.clone();
    let state = Rc::new(State::default());
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        let reply_to = reply_to.clone();
        let state = state.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let opener = BrowserOpener {
                files: message_files(&ev.data()),
                canvas: js_sys::Reflect::get(&ev.data(), &CANVAS_PROPERTY.into())
                    .ok()
                    .filter(|v| !v.is_undefined() && !v.is_null()),
            };
            let interrupts = SharedFlag {
                sent: js_sys::Reflect::get(&ev.data(), &CANCEL_FLAG_PROPERTY.into()).ok(),
            };
            let response = match serde_wasm_bindgen::from_value::<Envelope<Request>>(ev.data()) {
                Ok(req) => dispatch::handle(req, &Fetch, &state, &opener, &interrupts).await,
                Err(e) => Envelope::new(
                    request_id(&ev.data()),
                    dispatch::error(
                        ErrorKind::Malformed,
                        format!("cannot decode the request: {e}"),
                    ),
                ),
            };
            match serde_wasm_bindgen::to_value(&response) {
                Ok(v) => {
                    if let Err(e) = reply_to.post(&v) {
                        web_sys::console::error_2(
                            &"emberlens worker: postMessage failed".into(),
                            &e,
                        );
                    }
                }
                Err(e) => web_sys::console::error_1(
                    &format!("emberlens worker: cannot encode a response: {e}").into(),
                ),
            }
        });
    });
    endpoint.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
    let ready = Envelope::new(
        READY_ID,
        Response::Ready {
            version: PROTOCOL_VERSION,
        },
    );
    match serde_wasm_bindgen::to_value(&ready) {
        Ok(v) => {
            if let Err(e) = endpoint.post(&v) {
                web_sys::console::error_2(
                    &"emberlens worker: cannot announce readiness".into(),
                    &e,
                );
            }
        }
        Err(e) => {
            web_sys::console::error_1(&format!("emberlens worker: cannot encode Ready: {e}").into())
        }
    }
}

/// The `id` of an undecodable message, so the app's pending request still
/// resolves (with an error) instead of hanging; 0 when there is none.
fn request_id(data: &JsValue) -> u64 {
    js_sys::Reflect::get(data, &"id".into())
        .ok()
        .and_then(|v| v.as_f64())
        .filter(|v| v.fract() == 0.0 && *v >= 0.0)
        .map_or(0, |v| v as u64)
}

/// `fetch` through gloo-net, which works in worker scopes; the cancel token
/// aborts it (the request and the body read) through an `AbortController`.
struct Fetch;

/// An abort signal that `cancel` fires.
fn abort_signal(cancel: &CancelToken) -> Result<web_sys::AbortSignal, String> {
    let controller = web_sys::AbortController::new()
        .map_err(|e| format!("cannot create an AbortController: {e:?}"))?;
    let signal = controller.signal();
    cancel.on_cancel(move || controller.abort());
    Ok(signal)
}

/// A response's status, content type and whole body.
async fn bytes_of(resp: gloo_net::http::Response) -> Result<HttpBytes, String> {
    let status = resp.status();
    let content_type = resp.headers().get("content-type").unwrap_or_default();
    let body = resp.binary().await.map_err(|e| e.to_string())?;
    Ok(HttpBytes {
        status,
        content_type,
        body,
    })
}

impl Http for Fetch {
    async fn get(&self, url: &str, cancel: &CancelToken) -> Result<(u16, String), String> {
        let signal = abort_signal(cancel)?;
        let resp = gloo_net::http::Request::get(url)
            .abort_signal(Some(&signal))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        Ok((status, text))
    }

    async fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        cancel: &CancelToken,
    ) -> Result<HttpBytes, String> {
        let signal = abort_signal(cancel)?;
        let mut req = gloo_net::http::Request::post(url).abort_signal(Some(&signal));
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let resp = req
            .body(js_sys::Uint8Array::from(body.as_slice()))
            .map_err(|e| e.to_string())?
            .send()
            .await
            .map_err(|e| e.to_string())?;
        bytes_of(resp).await
    }

    async fn get_bytes(&self, url: &str, cancel: &CancelToken) -> Result<HttpBytes, String> {
        let signal = abort_signal(cancel)?;
        let resp = gloo_net::http::Request::get(url)
            .abort_signal(Some(&signal))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        bytes_of(resp).await
    }
}

thread_local! {
    /// The cancel flag the app shared (`Request::ShareCancelFlag`): element
    /// 0 holds the flag value of the query to stop.
    static CANCEL_FLAG: RefCell<Option<js_sys::Int32Array>> = const { RefCell::new(None) };
}

/// The shared cancel flag: installed from a message, read by the engine's
/// interrupt with `Atomics.load` (one load per evaluation step and subquery
/// step; the engine never polls per sample).
struct SharedFlag {
    /// The message's `cancel_flag` property, if it had one.
    sent: Option<JsValue>,
}

impl Interrupts for SharedFlag {
    fn share_flag(&self) -> Result<(), ErrorBody> {
        let bad = |message: String| ErrorBody {
            kind: ErrorKind::BadRequest,
            message,
        };
        let flag = self
            .sent
            .clone()
            .filter(|v| !v.is_undefined())
            .ok_or_else(|| {
                bad(format!(
                    "no {CANCEL_FLAG_PROPERTY} arrived with the message (an Int32Array over a SharedArrayBuffer)"
                ))
            })?
            .dyn_into::<js_sys::Int32Array>()
            .map_err(|_| bad(format!("{CANCEL_FLAG_PROPERTY} is not an Int32Array")))?;
        if flag.length() == 0 {
            return Err(bad(format!("{CANCEL_FLAG_PROPERTY} is empty")));
        }
        // A plain ArrayBuffer arrives as a copy: the app's writes would
        // never be seen here, so refuse it rather than never cancel.
        if !flag.buffer().is_instance_of::<js_sys::SharedArrayBuffer>() {
            return Err(bad(format!(
                "{CANCEL_FLAG_PROPERTY} is not backed by a SharedArrayBuffer"
            )));
        }
        CANCEL_FLAG.with(|f| *f.borrow_mut() = Some(flag));
        Ok(())
    }

    fn for_query(&self, id: u64) -> Option<emberlens_promql::engine::Interrupt> {
        if CANCEL_FLAG.with(|f| f.borrow().is_none()) {
            return None;
        }
        let value = cancel_flag_value(id);
        // Captures only the id: the flag itself stays in the thread-local
        // (a JS object is neither Send nor Sync, which the engine asks of
        // its interrupt).
        Some(Arc::new(move || {
            let now = CANCEL_FLAG.with(|f| {
                f.borrow()
                    .as_ref()
                    .and_then(|a| js_sys::Atomics::load(a, 0).ok())
            });
            (now == Some(value)).then(canceled_eval_error)
        }))
    }
}

/// The `File`/`Blob` objects sent beside an envelope (its `files` array).
fn message_files(data: &JsValue) -> Vec<web_sys::Blob> {
    let Ok(files) = js_sys::Reflect::get(data, &"files".into()) else {
        return Vec::new();
    };
    let Ok(arr) = files.dyn_into::<js_sys::Array>() else {
        return Vec::new();
    };
    arr.iter()
        .filter_map(|v| v.dyn_into::<web_sys::Blob>().ok())
        .collect()
}

fn source_error(message: String) -> ErrorBody {
    ErrorBody {
        kind: ErrorKind::Source,
        message,
    }
}

/// Opens every block of a file set; the blocks that fail are listed, not fatal.
fn open_db<F>(fs: &F, description: &str) -> Opened
where
    F: FileSet,
    F::File: ByteSource + Clone + 'static,
{
    let (db, errors) = Db::open_lenient(fs);
    let info: SourceInfo = db_info(
        &db,
        description,
        errors.iter().map(|e| e.to_string()).collect(),
    );
    Opened {
        storage: Box::new(db),
        info,
    }
}

/// Opens the user's `File`s and snapshot URLs, and takes the canvases
/// the app hands over.
struct BrowserOpener {
    files: Vec<web_sys::Blob>,
    /// The message's `canvas` property, if it had one.
    canvas: Option<JsValue>,
}

impl Opener for BrowserOpener {
    fn open_files(&self, names: &[String]) -> Result<Opened, ErrorBody> {
        if names.len() != self.files.len() {
            return Err(ErrorBody {
                kind: ErrorKind::BadRequest,
                message: format!(
                    "{} file names but {} files arrived with the message",
                    names.len(),
                    self.files.len()
                ),
            });
        }
        let description = match names {
            [one] => one.clone(),
            _ => format!("{} files", names.len()),
        };
        let pairs: Vec<(String, web_sys::Blob)> = names
            .iter()
            .cloned()
            .zip(self.files.iter().cloned())
            .collect();
        match open_source(pairs).map_err(|e| source_error(e.to_string()))? {
            OpenedSource::Files(fs) => Ok(open_db(&fs, &description)),
            OpenedSource::Tar(fs) => Ok(open_db(&fs, &description)),
            OpenedSource::Unpacked(fs) => Ok(open_db(&fs, &description)),
        }
    }

    fn open_url(&self, url: &str) -> Result<Opened, ErrorBody> {
        match open_url(url).map_err(|e| source_error(e.to_string()))? {
            UrlSource::Tar(fs) => Ok(open_db(&fs, url)),
            UrlSource::Unpacked(fs) => Ok(open_db(&fs, url)),
        }
    }

    fn file_bytes(&self) -> Result<Vec<u8>, ErrorBody> {
        let [blob] = self.files.as_slice() else {
            return Err(ErrorBody {
                kind: ErrorKind::BadRequest,
                message: format!(
                    "one file must arrive with the message, not {}",
                    self.files.len()
                ),
            });
        };
        let reader = web_sys::FileReaderSync::new()
            .map_err(|e| source_error(format!("FileReaderSync is not available here: {e:?}")))?;
        let buf = reader
            .read_as_array_buffer(blob)
            .map_err(|e| source_error(format!("reading the file: {e:?}")))?;
        Ok(js_sys::Uint8Array::new(&buf).to_vec())
    }

    fn canvas(&self) -> Result<Option<Box<dyn Surface>>, ErrorBody> {
        let Some(v) = &self.canvas else {
            return Ok(None);
        };
        let bad = |message: String| ErrorBody {
            kind: ErrorKind::BadRequest,
            message,
        };
        let canvas = v
            .clone()
            .dyn_into::<web_sys::OffscreenCanvas>()
            .map_err(|_| bad(format!("{CANVAS_PROPERTY} is not an OffscreenCanvas")))?;
        let surface = CanvasSurface::new(canvas).map_err(bad)?;
        Ok(Some(Box::new(surface)))
    }
}
