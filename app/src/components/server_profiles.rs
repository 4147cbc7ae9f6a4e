//! Profiles stored by the Emberlens server this page came from: its
//! profiling targets (each gives a selector) and the profiles matching a
//! selector over the series panel's time range, ending now. Each profile
//! opens in the flamegraph, or as the diff base; "Merge" opens the
//! server's merge of every match (`/api/v1/profiles/merge`). The worker
//! fetches and decodes everything (`Request::ListProfiles`,
//! `Request::OpenProfile` with a URL).
//!
//! On a static host there is no server: listing then shows the fetch's
//! error, and the rest of the view works on files.

use emberlens_protocol::share_url::ProfileSource;
use emberlens_protocol::{ListProfiles, ProfileList, Request, Response};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::worker_client::client;

/// Most profiles listed (the newest).
const MAX_LISTED: usize = 50;

/// The range to list and merge over: the series panel's, ending now.
fn range_ms() -> (i64, i64) {
    let end_ms = js_sys::Date::now() as i64;
    let minutes = i64::from(crate::share::read().range_minutes);
    (end_ms - minutes * 60_000, end_ms)
}

/// Unix milliseconds as `HH:MM:SS` UTC.
fn clock(ms: i64) -> String {
    let s = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// The server's profiles.
#[component]
pub fn ServerProfiles(
    /// Called with a source to open, and whether as the diff base.
    on_open: Callback<(ProfileSource, bool)>,
) -> impl IntoView {
    let list = RwSignal::new(None::<ProfileList>);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let selector = RwSignal::new(String::new());

    let refresh = move || {
        busy.set(true);
        let (start_ms, end_ms) = range_ms();
        let ticket = client().send(Request::ListProfiles(ListProfiles {
            base_url: leptos::prelude::window()
                .location()
                .origin()
                .unwrap_or_default(),
            selector: selector.get_untracked(),
            start_ms,
            end_ms,
        }));
        spawn_local(async move {
            match ticket.answer().await {
                Ok(Response::ProfileList(l)) => {
                    error.set(None);
                    list.set(Some(l));
                }
                Ok(Response::Error(e)) => error.set(Some(e.message)),
                Ok(other) => error.set(Some(format!("unexpected answer: {other:?}"))),
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let merge = move |_| {
        let (start_ms, end_ms) = range_ms();
        on_open.run((
            ProfileSource::Merge {
                selector: selector.get_untracked().trim().to_string(),
                start_ms,
                end_ms,
            },
            false,
        ));
    };

    let targets = move || {
        list.get().map(|l| {
            l.targets
                .iter()
                .map(|t| {
                    let sel = t.selector();
                    let title = if t.last_error.is_empty() {
                        t.health.clone()
                    } else {
                        format!("{}: {}", t.health, t.last_error)
                    };
                    view! { <option value=sel.clone() title=title>{sel.clone()}</option> }
                })
                .collect::<Vec<_>>()
        })
    };
    let rows = move || {
        list.get().map(|l| {
            l.profiles
                .iter()
                .rev()
                .take(MAX_LISTED)
                .map(|p| {
                    let id = p.id.clone();
                    let id_base = p.id.clone();
                    let labels = p
                        .labels
                        .iter()
                        .filter(|(k, _)| k != "__name__")
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ");
                    view! {
                        <li data-testid="server-profile" data-id=p.id.clone()>
                            {format!("{} {} {} ({} bytes) ", clock(p.time_ms), p.type_name, labels, p.size)}
                            <button
                                data-testid="server-profile-open"
                                on:click=move |_| on_open.run((ProfileSource::Stored { id: id.clone() }, false))
                            >
                                "Open"
                            </button>
                            <button
                                data-testid="server-profile-base"
                                on:click=move |_| {
                                    on_open.run((ProfileSource::Stored { id: id_base.clone() }, true))
                                }
                            >
                                "As base"
                            </button>
                        </li>
                    }
                })
                .collect::<Vec<_>>()
        })
    };

    view! {
        <details class="server-profiles" data-testid="server-profiles">
            <summary>"Server profiles"</summary>
            <div class="profile-bar">
                <button
                    data-testid="server-profiles-list"
                    prop:disabled=busy
                    on:click=move |_| refresh()
                >
                    "List"
                </button>
                <select
                    data-testid="server-profiles-target"
                    on:change=move |ev| selector.set(event_target_value(&ev))
                >
                    <option value="">"all targets"</option>
                    {targets}
                </select>
                <input
                    data-testid="server-profiles-selector"
                    placeholder="selector, e.g. {__name__=\"process_cpu\"}"
                    size="40"
                    prop:value=selector
                    on:change=move |ev| selector.set(event_target_value(&ev))
                />
                <button
                    data-testid="server-profiles-merge"
                    title="open the server's merge of the matching profiles over the time range"
                    on:click=merge
                >
                    "Merge"
                </button>
                <span data-testid="server-profiles-count">
                    {move || list.get().map(|l| format!("{} profiles", l.profiles.len()))}
                </span>
                <span class="error" data-testid="server-profiles-error" hidden=move || error.get().is_none()>
                    {move || error.get().unwrap_or_default()}
                </span>
            </div>
            <ul class="server-profile-list">{rows}</ul>
        </details>
    }
}
