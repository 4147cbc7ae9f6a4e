//! The worker's state in the top bar: starting, ready (with its version), or
//! failed, and how a query running in the worker is cancelled on this page
//! (`data-cancel`: `flag` when the page is cross-origin isolated and shares
//! a flag with the worker, else `restart`).

use emberlens_protocol::{Request, Response};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::worker_client::{CancelPath, client};

/// Sends `Hello` at start-up and shows the answer.
#[component]
pub fn WorkerStatus() -> impl IntoView {
    let (status, set_status) = signal(("starting".to_string(), "worker starting…".to_string()));
    spawn_local(async move {
        let text = match client().request(Request::Hello).await {
            Ok(Response::Hello {
                version,
                worker_version,
            }) => (
                "ready".into(),
                format!(
                    "worker {worker_version} · protocol v{version} · cancel by {}",
                    match client().local_cancel_path() {
                        CancelPath::Flag => "shared flag",
                        _ => "restart",
                    }
                ),
            ),
            Ok(Response::Error(e)) => ("failed".into(), e.message),
            Ok(other) => ("failed".into(), format!("unexpected answer: {other:?}")),
            Err(e) => ("failed".into(), e),
        };
        set_status.set(text);
    });
    view! {
        <span
            class="worker-status"
            data-testid="worker-status"
            data-state=move || status.get().0
            data-cancel=move || {
                status.track();
                client().local_cancel_path().as_str()
            }
        >
            {move || status.get().1}
        </span>
    }
}
