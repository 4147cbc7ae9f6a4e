//! One graph panel: a PromQL expression, a range picker, the chart and its
//! legend. The worker evaluates the expression as a range query with up to
//! about 1,000 points across the panel (whole-second steps): against the
//! Emberlens server this page came from, ending now, or over the source the
//! worker opened (see `source_picker`), ending at its last sample.
//!
//! Against the server it refreshes every [`REFRESH`] like a Grafana panel on
//! auto-refresh (a tick is skipped while a query runs). One query runs at a
//! time: Cancel stops it (the worker client picks the way, see
//! `worker_client`) and shows Prometheus's canceled error; running another
//! expression cancels the one still running. The chart canvas carries
//! `data-series-count`, `data-sample-count` and `data-drawn-ms` (the
//! `performance.now()` of the last draw) for tests and for measuring time to
//! first chart; the panel carries `data-running` and, after a cancel,
//! `data-cancel-path` (`flag`, `abort` or `restart`).

use std::time::Duration;

use emberlens_protocol::{ErrorKind, QueryRequest, QueryTime, Request, Response, SeriesSet};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::chart;
use crate::components::source_picker::CurrentSource;
use crate::worker_client::client;
use emberlens_protocol::share_url::{RANGES_MINUTES, ViewState};

/// Auto-refresh period.
const REFRESH: Duration = Duration::from_secs(5);

/// What the panel shows after a fetch.
#[derive(Clone, Debug, Default, PartialEq)]
struct Loaded {
    set: SeriesSet,
    start_ms: i64,
    end_ms: i64,
}

fn window() -> web_sys::Window {
    leptos::prelude::window()
}

fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// The graph panel.
#[component]
pub fn SeriesPanel() -> impl IntoView {
    let initial = ViewState::from_fragment(&window().location().hash().unwrap_or_default());
    let view_state = RwSignal::new(initial.clone());
    let (draft, set_draft) = signal(initial.selector);
    let (loaded, set_loaded) = signal(None::<Loaded>);
    let (error, set_error) = signal(None::<String>);
    let (drawn_ms, set_drawn_ms) = signal(None::<f64>);
    let canvas = NodeRef::<leptos::html::Canvas>::new();

    let CurrentSource(source) = expect_context::<CurrentSource>();
    // The request id of the query in flight, if any.
    let (running, set_running) = signal(None::<u64>);
    let (cancel_path, set_cancel_path) = signal(None::<&'static str>);

    // `user`: the expression, range or source changed (a running query is
    // cancelled for the new one); otherwise a refresh tick (skipped while a
    // query runs, and for opened sources, whose data does not change).
    let fetch = move |user: bool| {
        let local = source.get_untracked();
        if let Some(id) = running.get_untracked() {
            if !user {
                return;
            }
            client().cancel(id);
        }
        if !user && local.is_some() {
            return;
        }
        let state = view_state.get_untracked();
        let range_ms = i64::from(state.range_minutes) * 60_000;
        // ~1,000 points (about one per pixel), whole seconds, at least 1 s.
        let step_ms = (range_ms / 1000 / 1000).max(1) * 1000;
        let (end_ms, base_url) = match &local {
            Some(info) => (info.max_time_ms, None),
            None => (
                now_ms(),
                Some(window().location().origin().unwrap_or_default()),
            ),
        };
        let start_ms = end_ms - range_ms;
        let req = Request::Query(QueryRequest {
            expr: state.selector,
            time: QueryTime::Range {
                start_ms,
                end_ms,
                step_ms,
            },
            base_url,
        });
        let ticket = client().send(req);
        let id = ticket.id();
        set_running.set(Some(id));
        spawn_local(async move {
            let answer = ticket.answer().await;
            // A later query replaced this one: its answer is stale.
            if running.get_untracked() != Some(id) {
                return;
            }
            set_running.set(None);
            match answer {
                Ok(Response::QueryResult(a)) => {
                    set_error.set(None);
                    set_loaded.set(Some(Loaded {
                        set: SeriesSet { series: a.series },
                        start_ms,
                        end_ms,
                    }));
                }
                Ok(Response::Error(e)) => {
                    if e.kind == ErrorKind::Canceled {
                        set_cancel_path.set(client().last_cancel().map(|p| p.as_str()));
                    }
                    set_error.set(Some(e.message));
                }
                Ok(other) => set_error.set(Some(format!("unexpected answer: {other:?}"))),
                Err(e) => set_error.set(Some(e)),
            }
        });
    };

    // Run on start, whenever the view or the source changes, and on every
    // refresh tick.
    Effect::new(move |_| {
        let state = view_state.get();
        source.track();
        crate::share::update(|s| {
            s.selector = state.selector.clone();
            s.range_minutes = state.range_minutes;
        });
        fetch(true);
    });
    if let Ok(handle) = set_interval_with_handle(move || fetch(false), REFRESH) {
        on_cleanup(move || handle.clear());
    }

    // Redraw when data arrives.
    Effect::new(move |_| {
        let Some(l) = loaded.get() else { return };
        let Some(el) = canvas.get() else { return };
        let width = el
            .parent_element()
            .map_or(900, |p| p.client_width().max(300)) as u32;
        el.set_width(width);
        el.set_height(360);
        match chart::draw(el, &l.set.series, l.start_ms, l.end_ms) {
            Ok(()) => set_drawn_ms.set(window().performance().map(|p| p.now())),
            Err(e) => set_error.set(Some(e)),
        }
    });

    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        view_state.update(|s| s.selector = draft.get_untracked());
    };
    let on_cancel = move |_| {
        if let Some(id) = running.get_untracked() {
            client().cancel(id);
        }
    };
    let on_range = move |ev| {
        if let Ok(m) = event_target_value(&ev).parse::<u32>() {
            view_state.update(|s| s.range_minutes = m);
        }
    };
    let series_count = move || loaded.get().map_or(0, |l| l.set.series.len());
    let sample_count = move || loaded.get().map_or(0, |l| l.set.sample_count());

    view! {
        <section
            class="panel"
            data-testid="series-panel"
            data-running=move || running.get().is_some().to_string()
            data-cancel-path=move || cancel_path.get().unwrap_or_default()
        >
            <form class="query" on:submit=on_submit>
                <input
                    data-testid="selector"
                    class="selector"
                    spellcheck="false"
                    prop:value=draft
                    on:input=move |ev| set_draft.set(event_target_value(&ev))
                />
                <select data-testid="range" on:change=on_range>
                    {RANGES_MINUTES
                        .iter()
                        .map(|m| {
                            let label = if *m >= 60 { format!("{}h", m / 60) } else { format!("{m}m") };
                            view! {
                                <option value=m.to_string() selected=*m == initial.range_minutes>
                                    {label}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
                <button type="submit" data-testid="run">"Run"</button>
                <button
                    type="button"
                    class="cancel"
                    data-testid="cancel"
                    prop:disabled=move || running.get().is_none()
                    on:click=on_cancel
                >
                    "Cancel"
                </button>
            </form>
            <p class="error" data-testid="error" hidden=move || error.get().is_none()>
                {move || error.get().unwrap_or_default()}
            </p>
            <div class="chart-box">
                <canvas
                    node_ref=canvas
                    data-testid="chart"
                    data-series-count=move || series_count().to_string()
                    data-sample-count=move || sample_count().to_string()
                    data-drawn-ms=move || drawn_ms.get().map(|v| v.to_string()).unwrap_or_default()
                ></canvas>
            </div>
            <p class="summary" data-testid="sample-count">
                {move || format!("{} samples in {} series", sample_count(), series_count())}
            </p>
            <ul class="legend" data-testid="legend">
                {move || {
                    loaded
                        .get()
                        .map(|l| l.set.series)
                        .unwrap_or_default()
                        .into_iter()
                        .enumerate()
                        .map(|(i, s)| {
                            let name = s.display_name();
                            let series_attr = name.clone();
                            let n = s.timestamps_ms.len();
                            view! {
                                <li data-testid="legend-item" data-series=series_attr data-samples=n.to_string()>
                                    <span class="swatch" style=format!("background:{}", chart::css_colour(i))></span>
                                    <span class="series-name">{name}</span>
                                    <span class="series-samples">{format!("{n} samples")}</span>
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ul>
        </section>
    }
}
