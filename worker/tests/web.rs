//! The protocol round trip inside a real dedicated worker in headless Chromium.
//!
//! The test body runs in a dedicated worker (`run_in_dedicated_worker`). It
//! installs the worker's own handler (`web::serve`, the code the app's worker
//! runs) on one end of a `MessageChannel` and talks to it from the other end,
//! so every message goes through `serde-wasm-bindgen` and a real structured
//! clone, exactly as between the app and its worker.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use emberlens_protocol::{
    Envelope, ErrorKind, FetchSeries, PROTOCOL_VERSION, READY_ID, Request, Response,
};
use emberlens_worker::web::{Endpoint, serve};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;
use web_sys::{MessageChannel, MessageEvent, MessagePort};

wasm_bindgen_test_configure!(run_in_dedicated_worker);

/// Posts `msg` on `port` and waits for the next message back.
async fn round_trip(port: &MessagePort, msg: &JsValue) -> JsValue {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        let on_message = Closure::once_into_js(move |ev: MessageEvent| {
            let _ = resolve.call1(&JsValue::NULL, &ev.data());
        });
        port.set_onmessage(Some(on_message.unchecked_ref()));
    });
    port.post_message(msg).unwrap();
    wasm_bindgen_futures::JsFuture::from(promise).await.unwrap()
}

/// A channel with the worker's handler on the far end, after its `Ready`.
async fn channel() -> MessagePort {
    let ch = MessageChannel::new().unwrap();
    let port = ch.port1();
    let ready = js_sys::Promise::new(&mut |resolve, _reject| {
        let on_message = Closure::once_into_js(move |ev: MessageEvent| {
            let _ = resolve.call1(&JsValue::NULL, &ev.data());
        });
        port.set_onmessage(Some(on_message.unchecked_ref()));
    });
    serve(Endpoint::Port(ch.port2()));
    let ready = wasm_bindgen_futures::JsFuture::from(ready).await.unwrap();
    let ready: Envelope<Response> = serde_wasm_bindgen::from_value(ready).unwrap();
    assert_eq!(ready.id, READY_ID);
    assert_eq!(
        ready.body,
        Response::Ready {
            version: PROTOCOL_VERSION
        }
    );
    port
}

async fn request(port: &MessagePort, req: Envelope<Request>) -> Envelope<Response> {
    let msg = serde_wasm_bindgen::to_value(&req).unwrap();
    serde_wasm_bindgen::from_value(round_trip(port, &msg).await).unwrap()
}

#[wasm_bindgen_test]
async fn hello_round_trip_in_a_dedicated_worker() {
    assert!(js_sys::global().is_instance_of::<web_sys::DedicatedWorkerGlobalScope>());
    let port = channel().await;
    let resp = request(&port, Envelope::new(7, Request::Hello)).await;
    assert_eq!(resp.id, 7);
    assert_eq!(resp.version, PROTOCOL_VERSION);
    match resp.body {
        Response::Hello {
            version,
            worker_version,
        } => {
            assert_eq!(version, PROTOCOL_VERSION);
            assert_eq!(worker_version, env!("CARGO_PKG_VERSION"));
        }
        other => panic!("expected Hello, got {other:?}"),
    }
}

#[wasm_bindgen_test]
async fn fetch_failure_comes_back_as_a_network_error_with_the_same_id() {
    let port = channel().await;
    let req = Request::FetchSeries(FetchSeries {
        // Port 9 (discard) on loopback: nothing listens, fetch fails fast.
        base_url: "http://127.0.0.1:9".into(),
        selector: "up".into(),
        start_ms: 0,
        end_ms: 1000,
    });
    let resp = request(&port, Envelope::new(8, req)).await;
    assert_eq!(resp.id, 8);
    match resp.body {
        Response::Error(e) => {
            assert_eq!(e.kind, ErrorKind::Network);
            assert!(
                e.message
                    .starts_with("fetching http://127.0.0.1:9/api/v1/read: "),
                "{}",
                e.message
            );
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[wasm_bindgen_test]
async fn undecodable_messages_get_a_malformed_error() {
    let port = channel().await;
    let msg =
        js_sys::JSON::parse(r#"{"id": 9, "version": 1, "body": {"NoSuchRequest": 1}}"#).unwrap();
    let resp: Envelope<Response> =
        serde_wasm_bindgen::from_value(round_trip(&port, &msg).await).unwrap();
    assert_eq!(resp.id, 9);
    assert!(
        matches!(resp.body, Response::Error(ref e) if e.kind == ErrorKind::Malformed),
        "{resp:?}"
    );
}

#[wasm_bindgen_test]
async fn protocol_version_skew_is_reported() {
    let port = channel().await;
    let mut req = Envelope::new(10, Request::Hello);
    req.version = PROTOCOL_VERSION + 1;
    let resp = request(&port, req).await;
    assert!(matches!(resp.body, Response::Error(ref e) if e.kind == ErrorKind::VersionMismatch));
}

macro_rules! fixture {
    ($name:literal) => {
        (
            concat!("snapshot/01M80FK4BC5XGERVR66QV25WDZ/", $name),
            &include_bytes!(concat!(
                "../tsdb/testdata/native-histograms/snapshot/01M80FK4BC5XGERVR66QV25WDZ/",
                $name
            ))[..],
        )
    };
}

/// Opening a snapshot's files and querying them with PromQL, through the
/// message pipe with the `File`s beside the envelope, as the app does.
#[wasm_bindgen_test]
async fn open_files_then_promql_in_the_worker() {
    use emberlens_protocol::{OpenFiles, QueryRequest, QueryTime};
    let port = channel().await;
    let files = [
        fixture!("meta.json"),
        fixture!("index"),
        fixture!("chunks/000001"),
        fixture!("tombstones"),
    ];
    let names: Vec<String> = files.iter().map(|(n, _)| n.to_string()).collect();
    let blobs = js_sys::Array::new();
    for (_, bytes) in &files {
        let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(*bytes));
        blobs.push(&web_sys::Blob::new_with_u8_array_sequence(&parts).unwrap());
    }
    let msg =
        serde_wasm_bindgen::to_value(&Envelope::new(11, Request::OpenFiles(OpenFiles { names })))
            .unwrap();
    js_sys::Reflect::set(&msg, &"files".into(), &blobs).unwrap();
    let resp: Envelope<Response> =
        serde_wasm_bindgen::from_value(round_trip(&port, &msg).await).unwrap();
    let Response::Opened(info) = resp.body else {
        panic!("expected Opened, got {resp:?}");
    };
    assert_eq!((info.blocks, info.series), (1, 8), "{info:?}");

    // An instant query over the opened block: every target was up.
    let q = |time| {
        Request::Query(QueryRequest {
            expr: "sum(up) + count(histogram_count(fx_native_latency_seconds))".into(),
            time,
            base_url: None,
        })
    };
    let resp = request(
        &port,
        Envelope::new(
            12,
            q(QueryTime::Instant {
                time_ms: 1_795_312_680_000,
            }),
        ),
    )
    .await;
    let Response::QueryResult(a) = resp.body else {
        panic!("expected a result, got {resp:?}");
    };
    assert_eq!(a.result_type, "vector");
    assert_eq!(a.series[0].values, [3.0], "{a:?}");

    // A range query: one point per step.
    let resp = request(
        &port,
        Envelope::new(
            13,
            q(QueryTime::Range {
                start_ms: 1_795_312_660_000,
                end_ms: 1_795_312_680_000,
                step_ms: 5_000,
            }),
        ),
    )
    .await;
    let Response::QueryResult(a) = resp.body else {
        panic!("expected a result, got {resp:?}");
    };
    assert_eq!(a.result_type, "matrix");
    assert_eq!(a.series[0].timestamps_ms.len(), 5, "{a:?}");

    // A parse error is a BadRequest with Prometheus's position.
    let bad = Request::Query(QueryRequest {
        expr: "sum(".into(),
        time: QueryTime::Instant { time_ms: 0 },
        base_url: None,
    });
    let resp = request(&port, Envelope::new(14, bad)).await;
    assert!(
        matches!(&resp.body, Response::Error(e) if e.kind == ErrorKind::BadRequest && e.message.starts_with("1:5: parse error")),
        "{resp:?}"
    );
}

/// Opens the native-histograms snapshot through the pipe (request id `id`).
async fn open_snapshot(port: &MessagePort, id: u64) {
    use emberlens_protocol::OpenFiles;
    let files = [
        fixture!("meta.json"),
        fixture!("index"),
        fixture!("chunks/000001"),
        fixture!("tombstones"),
    ];
    let names: Vec<String> = files.iter().map(|(n, _)| n.to_string()).collect();
    let blobs = js_sys::Array::new();
    for (_, bytes) in &files {
        let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(*bytes));
        blobs.push(&web_sys::Blob::new_with_u8_array_sequence(&parts).unwrap());
    }
    let msg =
        serde_wasm_bindgen::to_value(&Envelope::new(id, Request::OpenFiles(OpenFiles { names })))
            .unwrap();
    js_sys::Reflect::set(&msg, &"files".into(), &blobs).unwrap();
    let resp: Envelope<Response> =
        serde_wasm_bindgen::from_value(round_trip(port, &msg).await).unwrap();
    assert!(matches!(resp.body, Response::Opened(_)), "{resp:?}");
}

/// A query slow enough to be cancelled mid-run: every step sorts a window
/// of 86,400 subquery points (seconds of work even in release builds).
fn slow_query() -> Request {
    use emberlens_protocol::{QueryRequest, QueryTime};
    Request::Query(QueryRequest {
        expr: "quantile_over_time(0.5, vector(time())[6h:250ms])".into(),
        time: QueryTime::Range {
            start_ms: 1_795_312_680_000,
            end_ms: 1_795_312_680_000 + 600_000,
            step_ms: 1_000,
        },
        base_url: None,
    })
}

/// The shared flag stops a query while it runs in the worker's thread: a
/// second thread (a helper worker, as the app's main thread would) writes
/// the query's id into the `SharedArrayBuffer` 300 ms into the query, and
/// the engine's interrupt sees it at its next step. The test runner serves
/// its page cross-origin isolated (COOP/COEP, unless
/// `WASM_BINDGEN_TEST_NO_ORIGIN_ISOLATION` is set), as Emberlens serves the app.
#[wasm_bindgen_test]
async fn the_shared_flag_stops_a_running_local_query() {
    use emberlens_protocol::{CANCEL_FLAG_PROPERTY, CANCELED_MESSAGE, cancel_flag_value};
    let isolated = js_sys::Reflect::get(&js_sys::global(), &"crossOriginIsolated".into())
        .unwrap()
        .as_bool()
        == Some(true);
    if !isolated {
        // Without isolation there is no SharedArrayBuffer; the native test
        // `dispatch::tests::the_shared_flag_stops_the_local_query_it_names`
        // covers the interrupt with a plain flag.
        assert!(
            option_env!("CI") != Some("true"),
            "CI=true but the test page is not cross-origin isolated"
        );
        web_sys::console::log_1(&"SKIPPED: the test page is not cross-origin isolated".into());
        return;
    }
    let port = channel().await;
    open_snapshot(&port, 20).await;

    let flag = js_sys::Int32Array::new(&js_sys::SharedArrayBuffer::new(4));
    let msg = serde_wasm_bindgen::to_value(&Envelope::new(21, Request::ShareCancelFlag)).unwrap();
    js_sys::Reflect::set(&msg, &CANCEL_FLAG_PROPERTY.into(), &flag).unwrap();
    let resp: Envelope<Response> =
        serde_wasm_bindgen::from_value(round_trip(&port, &msg).await).unwrap();
    assert_eq!(resp.body, Response::CancelFlagShared);

    // The other thread: stores `value` into the flag `ms` after it gets it.
    let src = "onmessage = (e) => { const [flag, value, ms] = e.data; \
               setTimeout(() => Atomics.store(flag, 0, value), ms); postMessage('armed'); };";
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type("text/javascript");
    let blob =
        web_sys::Blob::new_with_str_sequence_and_options(&js_sys::Array::of1(&src.into()), &opts)
            .unwrap();
    let url = web_sys::Url::create_object_url_with_blob(&blob).unwrap();
    let helper = web_sys::Worker::new(&url).unwrap();
    let armed = js_sys::Promise::new(&mut |resolve, reject| {
        let on_message = Closure::once_into_js(move |ev: MessageEvent| {
            let _ = resolve.call1(&JsValue::NULL, &ev.data());
        });
        helper.set_onmessage(Some(on_message.unchecked_ref()));
        let on_error = Closure::once_into_js(move |ev: web_sys::ErrorEvent| {
            let _ = reject.call1(&JsValue::NULL, &ev.message().into());
        });
        helper.set_onerror(Some(on_error.unchecked_ref()));
    });
    helper
        .post_message(&js_sys::Array::of3(
            &flag,
            &cancel_flag_value(22).into(),
            &300.into(),
        ))
        .unwrap();
    // A nested worker starts through its parent's event loop: wait until it
    // runs, or the blocked query below would keep it from ever starting.
    let armed = wasm_bindgen_futures::JsFuture::from(armed).await;
    assert_eq!(armed.unwrap(), "armed");

    let t0 = js_sys::Date::now();
    let resp = request(&port, Envelope::new(22, slow_query())).await;
    let elapsed = js_sys::Date::now() - t0;
    helper.terminate();
    assert_eq!(resp.id, 22);
    assert_eq!(
        resp.body,
        Response::Error(emberlens_protocol::ErrorBody {
            kind: ErrorKind::Canceled,
            message: CANCELED_MESSAGE.into(),
        })
    );
    web_sys::console::log_1(&format!("query cancelled by the flag after {elapsed:.0} ms").into());
    // It ran until the flag was written, and stopped soon after.
    assert!((250.0..5_000.0).contains(&elapsed), "{elapsed} ms");

    // The flag names query 22 only: the next query runs to its end.
    let quick = Request::Query(emberlens_protocol::QueryRequest {
        expr: "sum(up)".into(),
        time: emberlens_protocol::QueryTime::Instant {
            time_ms: 1_795_312_680_000,
        },
        base_url: None,
    });
    let resp = request(&port, Envelope::new(23, quick)).await;
    assert!(
        matches!(&resp.body, Response::QueryResult(a) if a.series[0].values == [1.0]),
        "{resp:?}"
    );
}

/// `Cancel` answers whether it stopped something: nothing waits here.
#[wasm_bindgen_test]
async fn cancel_of_nothing_waiting_says_so() {
    let port = channel().await;
    let resp = request(&port, Envelope::new(30, Request::Cancel { id: 29 })).await;
    assert_eq!(resp.id, 30);
    assert_eq!(resp.body, Response::CancelRequested { stopped: false });
}
