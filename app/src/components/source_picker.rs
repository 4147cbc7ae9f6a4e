//! Where panels get their data: the Emberlens server this page came from
//! (the default), or a source opened in the worker: files the user picks (a
//! snapshot `.tar`/`.tar.gz`, or a snapshot folder) or a snapshot URL.
//!
//! The choice is the [`CurrentSource`] context: `None` is the server,
//! `Some(info)` the source the worker opened. The worker client remembers
//! the opened source, so a worker restarted to cancel a query opens it again.

use emberlens_protocol::{OpenFiles, OpenUrl, Request, Response, SourceInfo};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

use crate::worker_client::client;

/// The panels' data source: `None` for the server, else what the worker opened.
#[derive(Clone, Copy)]
pub struct CurrentSource(pub RwSignal<Option<SourceInfo>>);

/// The `File`s of an input with their relative names (a folder upload's
/// `webkitRelativePath`, else the file name).
fn picked(input: &web_sys::HtmlInputElement) -> Option<(Vec<String>, js_sys::Array)> {
    let list = input.files()?;
    let files = js_sys::Array::new();
    let mut names = Vec::new();
    for i in 0..list.length() {
        let Some(f) = list.get(i) else { continue };
        // (web-sys has `webkitRelativePath` only behind its unstable APIs.)
        let rel = js_sys::Reflect::get(&f, &"webkitRelativePath".into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default();
        names.push(if rel.is_empty() { f.name() } else { rel });
        files.push(&f);
    }
    (!names.is_empty()).then_some((names, files))
}

/// The source bar.
#[component]
pub fn SourcePicker() -> impl IntoView {
    let CurrentSource(source) = expect_context::<CurrentSource>();
    let (busy, set_busy) = signal(false);
    let (error, set_error) = signal(None::<String>);
    let (url, set_url) = signal(String::new());
    let folder = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(el) = folder.get() {
            el.set_webkitdirectory(true);
        }
    });

    let open = move |req: Request, files: Option<js_sys::Array>| {
        set_busy.set(true);
        set_error.set(None);
        let ticket = match files {
            Some(f) => client().send_with_files(req, f),
            None => client().send(req),
        };
        spawn_local(async move {
            match ticket.answer().await {
                Ok(Response::Opened(info)) => {
                    if !info.errors.is_empty() {
                        set_error.set(Some(info.errors.join("; ")));
                    }
                    source.set(Some(info));
                }
                Ok(Response::Error(e)) => set_error.set(Some(e.message)),
                Ok(other) => set_error.set(Some(format!("unexpected answer: {other:?}"))),
                Err(e) => set_error.set(Some(e)),
            }
            set_busy.set(false);
        });
    };
    let on_files = move |ev: leptos::ev::Event| {
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        if let Some((names, files)) = picked(&input) {
            open(Request::OpenFiles(OpenFiles { names }), Some(files));
        }
        // Picking the same files again opens them again.
        input.set_value("");
    };
    let on_url = move |ev: SubmitEvent| {
        ev.prevent_default();
        let u = url.get_untracked().trim().to_string();
        if !u.is_empty() {
            open(Request::OpenUrl(OpenUrl { url: u }), None);
        }
    };
    let label = move || match source.get() {
        None => "server".to_string(),
        Some(i) => format!(
            "{} · {} block{} · {} series",
            i.description,
            i.blocks,
            if i.blocks == 1 { "" } else { "s" },
            i.series
        ),
    };

    view! {
        <div class="source-bar" data-testid="source-bar">
            <span class="source-label">"Source:"</span>
            <span
                class="source"
                data-testid="source"
                data-kind=move || if source.get().is_some() { "local" } else { "server" }
            >
                {label}
            </span>
            <label class="open">
                "Open files"
                <input
                    type="file"
                    multiple
                    data-testid="open-files"
                    on:change=on_files
                    prop:disabled=busy
                />
            </label>
            <label class="open">
                "Open folder"
                <input
                    type="file"
                    node_ref=folder
                    data-testid="open-folder"
                    on:change=on_files
                    prop:disabled=busy
                />
            </label>
            <form class="open-url" on:submit=on_url>
                <input
                    data-testid="open-url"
                    placeholder="snapshot URL (.tar, .tar.gz)"
                    prop:value=url
                    on:input=move |ev| set_url.set(event_target_value(&ev))
                />
                <button type="submit" data-testid="open-url-button" prop:disabled=busy>
                    "Open URL"
                </button>
            </form>
            <button
                data-testid="use-server"
                prop:disabled=move || source.get().is_none()
                on:click=move |_| source.set(None)
            >
                "Use server"
            </button>
            <span class="error" data-testid="source-error" hidden=move || error.get().is_none()>
                {move || error.get().unwrap_or_default()}
            </span>
        </div>
    }
}
