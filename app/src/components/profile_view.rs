//! The profile view: open a pprof file (picker or drop), and look at its
//! flamegraph, which the worker lays out and paints on a canvas the view
//! transferred to it (`transferControlToOffscreen`).
//!
//! The view only sends what the user does — options (sample type, search,
//! orientation, size), hover, click, wheel and drag — and shows what the
//! worker answers (tooltip, matched share, errors). Controls: wheel zooms
//! around the pointer, shift+wheel scrolls the rows, a horizontal wheel or
//! a drag pans, a click zooms to a box, "Reset" shows the whole tree.
//!
//! Beside the flamegraph: profiles stored by the server (`server_profiles`),
//! a diff base (pprof's `-diff_base`: a second profile; the flamegraph and
//! the top table then show the change), pprof's top table (`top_table`,
//! computed by the worker), and a function's sandwich (clicking a row of
//! the table).
//!
//! The view's state lives in the share URL (`p.*` keys, see
//! [`emberlens_protocol::share_url`]): opening a link reopens the profile
//! (from the server or a URL; a local file cannot travel in a link, so the
//! view says which file to open, and applies the link's options to it) and
//! restores sample type, refinements, orientation, search, zoom, diff base
//! and sandwich. What the link got wrong is listed, never fatal.

use emberlens_flame::units::label;
use emberlens_protocol::share_url::{GRANULARITIES, ProfileSource, ProfileState};
use emberlens_protocol::{
    FlameHit, FlameNavigate, FlameOrientation, FlamePoint, FlameRefine, FlameStatus, FlameView,
    FlameWindow, OpenProfile, ProfileInfo, Request, Response,
};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::components::server_profiles::ServerProfiles;
use crate::components::top_table::TopTable;
use crate::worker_client::{Ticket, client};

/// Opens `src` in the worker (the picked `file`, or fetched by the worker
/// from the server or a URL), as the profile or as the diff base.
async fn open_source(
    src: &ProfileSource,
    file: Option<web_sys::File>,
    as_base: bool,
) -> Result<ProfileInfo, String> {
    let origin = web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default();
    let url = src.fetch_url(&origin);
    let req = Request::OpenProfile(OpenProfile {
        name: src.title(),
        url: url.clone(),
        as_base,
    });
    let ticket = match (file, url) {
        (Some(f), _) => client().send_with_files(req, js_sys::Array::of1(&f)),
        (None, Some(_)) => client().send(req),
        (None, None) => return Err(format!("open the file {} to see it", src.title())),
    };
    match ticket.answer().await? {
        Response::ProfileOpened(i) => Ok(i),
        Response::Error(e) => Err(e.message),
        other => Err(format!("unexpected answer: {other:?}")),
    }
}

/// Whether `w` is the whole tree (not worth a place in the link).
fn is_whole(w: &FlameWindow, total: i64) -> bool {
    w.start <= 0.0 && w.end >= total as f64
}

/// Navigation requests while one is being drawn: wheel and drag events
/// come faster than a large profile draws, so they are folded into one
/// request sent when the current one is answered (no backlog, no lag).
#[derive(Default)]
struct NavQueue {
    in_flight: bool,
    pending: Option<FlameNavigate>,
}

/// `a` then `b` as one step: zooms multiply (around `b`'s anchor), pans add.
fn fold(a: FlameNavigate, b: FlameNavigate) -> FlameNavigate {
    FlameNavigate {
        zoom_factor: a.zoom_factor * b.zoom_factor,
        anchor_x_css: b.anchor_x_css,
        pan_x_css: a.pan_x_css + b.pan_x_css,
        pan_y_css: a.pan_y_css + b.pan_y_css,
    }
}

/// Shows a draw's answer: the status, or the error.
fn show_drawn(
    answer: Result<Response, String>,
    status: RwSignal<Option<FlameStatus>>,
    error: RwSignal<Option<String>>,
) {
    match answer {
        Ok(Response::FlameDrawn(s)) => {
            error.set(None);
            status.set(Some(s));
        }
        // A canvas handed over before any profile: kept by the worker.
        Ok(Response::Error(e)) if e.kind == emberlens_protocol::ErrorKind::NoProfile => {}
        Ok(Response::Error(e)) => error.set(Some(e.message)),
        Ok(other) => error.set(Some(format!("unexpected answer: {other:?}"))),
        Err(e) => error.set(Some(e)),
    }
}

/// Sends `nav`, or folds it into the waiting one while a draw is in flight.
fn send_navigate(
    nav: FlameNavigate,
    queue: StoredValue<NavQueue>,
    status: RwSignal<Option<FlameStatus>>,
    error: RwSignal<Option<String>>,
) {
    if queue.with_value(|q| q.in_flight) {
        queue.update_value(|q| q.pending = Some(q.pending.map_or(nav, |p| fold(p, nav))));
        return;
    }
    queue.update_value(|q| q.in_flight = true);
    let ticket = client().send(Request::FlameNavigate(nav));
    spawn_local(async move {
        show_drawn(ticket.answer().await, status, error);
        let mut next = None;
        queue.update_value(|q| {
            q.in_flight = false;
            next = q.pending.take();
        });
        if let Some(n) = next {
            send_navigate(n, queue, status, error);
        }
    });
}

/// A text field for one of pprof's refinements; the worker gets it on
/// Enter or when the field loses focus (each change rebuilds the tree).
fn refine_field(
    name: &'static str,
    placeholder: &'static str,
    refine: RwSignal<FlameRefine>,
    field: fn(&mut FlameRefine) -> &mut String,
) -> impl IntoView {
    view! {
        <input
            data-testid=format!("refine-{name}")
            placeholder=placeholder
            size="14"
            prop:value=move || {
                let mut r = refine.get();
                field(&mut r).clone()
            }
            on:change=move |ev| {
                let v = event_target_value(&ev);
                refine.update(|r| *field(r) = v);
            }
        />
    }
}

/// The canvas's CSS size and the screen's pixel ratio.
fn canvas_size(el: &web_sys::HtmlCanvasElement) -> (f64, f64, f64) {
    let dpr = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio());
    (el.client_width() as f64, el.client_height() as f64, dpr)
}

/// The flamegraph view.
#[component]
pub fn ProfileView() -> impl IntoView {
    let link = crate::share::read();
    let linked = link.profile.clone();
    let info = RwSignal::new(None::<ProfileInfo>);
    let base_info = RwSignal::new(None::<ProfileInfo>);
    let source = RwSignal::new(None::<ProfileSource>);
    let base_source = RwSignal::new(None::<ProfileSource>);
    let sample_type = RwSignal::new(None::<usize>);
    let orientation = RwSignal::new(linked.orientation);
    let search = RwSignal::new(linked.search.clone());
    let refine = RwSignal::new(linked.refine.clone());
    let sandwich = RwSignal::new(linked.sandwich.clone());
    let normalize = RwSignal::new(linked.normalize);
    // From a link, applied once the profile is open: the sample type (by
    // name) and the zoom window.
    let pending_sample = StoredValue::new(linked.sample_type.clone());
    let pending_window = StoredValue::new(linked.window);
    // While a link is being restored, the URL is left as the link wrote it.
    let restoring = RwSignal::new(linked.source.is_some() || linked.base.is_some());
    let link_problems = link.problems.clone();
    let notice = RwSignal::new(None::<String>);
    let size = RwSignal::new((0.0f64, 0.0f64, 1.0f64));
    let status = RwSignal::new(None::<FlameStatus>);
    let hover = RwSignal::new(None::<(FlameHit, f64, f64)>);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let canvas_ref = NodeRef::<leptos::html::Canvas>::new();
    // Set once the canvas went to the worker.
    let attached = StoredValue::new(false);
    // Bumped to replace the <canvas> element (after a worker restart: the
    // old worker took the transferred canvas with it).
    let canvas_key = RwSignal::new(0u64);
    // The files opened, to open them again in a restarted worker.
    let last_file = StoredValue::new_local(None::<web_sys::File>);
    let last_base_file = StoredValue::new_local(None::<web_sys::File>);
    // Drag state: where the button went down and whether it moved.
    let drag = StoredValue::new(None::<(f64, f64)>);
    let dragged = StoredValue::new(false);

    let current_view = move || {
        let (w, h, dpr) = size.get_untracked();
        FlameView {
            sample_type: sample_type.get_untracked(),
            orientation: orientation.get_untracked(),
            search: search.get_untracked(),
            width_css: w,
            height_css: h,
            dpr,
            // A link's zoom, once there is a profile to zoom in.
            window: if info.with_untracked(Option::is_some) {
                pending_window.try_update_value(Option::take).flatten()
            } else {
                None
            },
            refine: refine.get_untracked(),
            diff: base_info.with_untracked(Option::is_some),
            normalize: normalize.get_untracked(),
            sandwich: sandwich.get_untracked(),
        }
    };
    let on_drawn = move |ticket: Ticket| {
        spawn_local(async move { show_drawn(ticket.answer().await, status, error) });
    };
    let nav_queue = StoredValue::new(NavQueue::default());

    // Hand the canvas to the worker once it exists, and watch its size.
    Effect::new(move |_| {
        let Some(el) = canvas_ref.get() else { return };
        if attached.get_value() {
            return;
        }
        attached.set_value(true);
        size.set(canvas_size(&el));
        match el.transfer_control_to_offscreen() {
            Ok(off) => on_drawn(client().send_with_canvas(Request::FlameView(current_view()), off)),
            Err(e) => error.set(Some(format!("cannot hand the canvas to the worker: {e:?}"))),
        }
        let observed = el.clone();
        let on_resize = Closure::<dyn FnMut()>::new(move || size.set(canvas_size(&observed)));
        match web_sys::ResizeObserver::new(on_resize.as_ref().unchecked_ref()) {
            Ok(ro) => ro.observe(&el),
            Err(e) => error.set(Some(format!("cannot watch the canvas's size: {e:?}"))),
        }
        // The observer calls it as long as the page lives.
        on_resize.forget();
    });

    // Any option change redraws.
    Effect::new(move |_| {
        let _ = (
            sample_type.get(),
            orientation.get(),
            search.get(),
            refine.get(),
            size.get(),
            base_info.get(),
            sandwich.get(),
            normalize.get(),
        );
        if info.get().is_some() && attached.get_value() {
            on_drawn(client().send(Request::FlameView(current_view())));
        }
    });

    // The view's state into the share URL.
    Effect::new(move |_| {
        let sample = info.with(|i| {
            let i = i.as_ref()?;
            i.sample_types
                .get(sample_type.get()?)
                .filter(|_| sample_type.get() != Some(i.default_sample_type))
                .cloned()
        });
        let state = ProfileState {
            source: source.get(),
            base: base_source.get(),
            sample_type: sample,
            refine: refine.get(),
            orientation: orientation.get(),
            search: search.get(),
            window: status
                .get()
                .and_then(|s| s.window.filter(|w| !is_whole(w, s.total))),
            sandwich: sandwich.get(),
            normalize: normalize.get(),
        };
        if !restoring.get() {
            crate::share::update(|s| s.profile = state);
        }
    });

    // A profile (or base) opened: show it. `user`: the user picked it, so
    // the last profile's sandwich goes.
    let opened = move |src: ProfileSource,
                       as_base: bool,
                       user: bool,
                       r: Result<ProfileInfo, String>| {
        match r {
            Ok(i) if as_base => {
                base_source.set(Some(src));
                base_info.set(Some(i));
            }
            Ok(i) => {
                let linked = pending_sample
                    .try_update_value(Option::take)
                    .flatten()
                    .and_then(|n| i.sample_types.iter().position(|t| *t == n));
                if user && linked.is_none() {
                    sandwich.set(None);
                }
                sample_type.set(linked);
                source.set(Some(src));
                notice.set(None);
                info.set(Some(i));
            }
            Err(e) => error.set(Some(e)),
        }
    };
    let open_from = move |src: ProfileSource, file: Option<web_sys::File>, as_base: bool| {
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let keep = file.clone();
            let r = open_source(&src, file, as_base).await;
            if r.is_ok() {
                let kept = if as_base { last_base_file } else { last_file };
                kept.set_value(keep);
            }
            opened(src, as_base, true, r);
            busy.set(false);
            restoring.set(false);
        });
    };
    // A restarted worker has neither the canvas nor the profile: a new
    // <canvas> is transferred (the effect above sees the new element) and
    // what was open is opened again, base first.
    client().on_restart(move || {
        attached.set_value(false);
        hover.set(None);
        status.set(None);
        canvas_key.update(|k| *k += 1);
        let (main, base) = (source.get_untracked(), base_source.get_untracked());
        spawn_local(async move {
            if let Some(b) = base
                && let Err(e) = open_source(&b, last_base_file.get_value(), true).await
            {
                base_source.set(None);
                base_info.set(None);
                error.set(Some(e));
            }
            if let Some(m) = main {
                match open_source(&m, last_file.get_value(), false).await {
                    Ok(i) => info.set(Some(i)),
                    Err(e) => error.set(Some(e)),
                }
            }
        });
    });
    let open = move |file: web_sys::File| {
        open_from(ProfileSource::File { name: file.name() }, Some(file), false)
    };

    // Restore a link: its base first (so the first drawing is already the
    // diff), then its profile; a local file is named, for the user to open.
    {
        let mut notes = Vec::new();
        if let Some(ProfileSource::File { name }) = &linked.source {
            notes.push(format!(
                "this link was made from the local file {name:?}: a link cannot carry a file, so open it to restore the view"
            ));
        }
        if let Some(ProfileSource::File { name }) = &linked.base {
            notes.push(format!(
                "the link's diff base is the local file {name:?}: open it as the base to see the diff"
            ));
        }
        if !notes.is_empty() {
            notice.set(Some(notes.join("; ")));
        }
        let fetchable = |s: &Option<ProfileSource>| {
            s.clone()
                .filter(|s| !matches!(s, ProfileSource::File { .. }))
        };
        let (main, base) = (fetchable(&linked.source), fetchable(&linked.base));
        if main.is_some() || base.is_some() {
            busy.set(true);
            spawn_local(async move {
                if let Some(b) = base {
                    let r = open_source(&b, None, true).await;
                    opened(b, true, false, r);
                }
                if let Some(m) = main {
                    let r = open_source(&m, None, false).await;
                    opened(m, false, false, r);
                }
                busy.set(false);
                restoring.set(false);
            });
        }
    }
    let open_base = move |ev: leptos::ev::Event| {
        if let Some(f) = picked_file(&ev) {
            open_from(ProfileSource::File { name: f.name() }, Some(f), true);
        }
    };
    let on_server_open =
        Callback::new(move |(src, as_base): (ProfileSource, bool)| open_from(src, None, as_base));
    let on_pick = move |ev: leptos::ev::Event| {
        if let Some(f) = picked_file(&ev) {
            open(f);
        }
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        if let Some(f) = ev
            .data_transfer()
            .and_then(|d| d.files())
            .and_then(|l| l.get(0))
        {
            open(f);
        }
    };

    let point = |ev: &leptos::ev::MouseEvent| FlamePoint {
        x_css: ev.offset_x() as f64,
        y_css: ev.offset_y() as f64,
    };
    let navigate = move |nav: FlameNavigate| {
        if info.get_untracked().is_some() {
            send_navigate(nav, nav_queue, status, error);
        }
    };
    let on_move = move |ev: leptos::ev::MouseEvent| {
        if info.get_untracked().is_none() {
            return;
        }
        if let Some((x0, y0)) = drag.get_value() {
            let (dx, dy) = (ev.offset_x() as f64 - x0, ev.offset_y() as f64 - y0);
            if dx.abs() + dy.abs() > 2.0 {
                dragged.set_value(true);
                drag.set_value(Some((ev.offset_x() as f64, ev.offset_y() as f64)));
                let pan_y = match orientation.get_untracked() {
                    FlameOrientation::Icicle => -dy,
                    FlameOrientation::Flame => dy,
                };
                navigate(FlameNavigate {
                    zoom_factor: 1.0,
                    anchor_x_css: 0.0,
                    pan_x_css: -dx,
                    pan_y_css: pan_y,
                });
            }
            return;
        }
        let p = point(&ev);
        let ticket = client().send(Request::FlameHover(p));
        spawn_local(async move {
            if let Ok(Response::FlameHit(h)) = ticket.answer().await {
                hover.set(h.map(|h| (h, p.x_css, p.y_css)));
            }
        });
    };
    let on_click = move |ev: leptos::ev::MouseEvent| {
        if dragged.get_value() || info.get_untracked().is_none() {
            return;
        }
        on_drawn(client().send(Request::FlameClick(point(&ev))));
    };
    let on_wheel = move |ev: leptos::ev::WheelEvent| {
        ev.prevent_default();
        let (dx, dy) = (ev.delta_x(), ev.delta_y());
        let nav = if ev.shift_key() {
            FlameNavigate {
                zoom_factor: 1.0,
                anchor_x_css: 0.0,
                pan_x_css: 0.0,
                pan_y_css: match orientation.get_untracked() {
                    FlameOrientation::Icicle => dy,
                    FlameOrientation::Flame => -dy,
                },
            }
        } else if dx.abs() > dy.abs() {
            FlameNavigate {
                zoom_factor: 1.0,
                anchor_x_css: 0.0,
                pan_x_css: dx,
                pan_y_css: 0.0,
            }
        } else {
            FlameNavigate {
                // 100 wheel units (one notch) zoom by ~18 %.
                zoom_factor: (dy * 0.002).exp(),
                anchor_x_css: ev.offset_x() as f64,
                pan_x_css: 0.0,
                pan_y_css: 0.0,
            }
        };
        navigate(nav);
    };

    let summary = move || {
        let s = status.get()?;
        let mut text = format!(
            "total {} · {} nodes · {} boxes",
            label(s.total, &s.unit),
            s.nodes,
            s.boxes
        );
        if let Some(m) = s.matched_total {
            let pct = if s.total > 0 {
                100.0 * m as f64 / s.total as f64
            } else {
                0.0
            };
            text.push_str(&format!(" · matched {} ({pct:.2}%)", label(m, &s.unit)));
        }
        if let Some(e) = s.search_error {
            text.push_str(&format!(" · {e}"));
        }
        Some(text)
    };
    let tooltip = move || {
        hover.get().map(|(h, x, y)| {
            view! {
                <div
                    class="flame-tooltip"
                    data-testid="flame-tooltip"
                    data-name=h.name.clone()
                    style=format!(
                        "position:absolute;left:{}px;top:{}px;pointer-events:none;background:#fff;border:1px solid #888;padding:4px;font:12px sans-serif;max-width:40em;",
                        x + 12.0,
                        y + 12.0,
                    )
                >
                    <div><b>{h.name.clone()}</b></div>
                    <div>
                        {format!(
                            "total {} ({:.2}%) · self {} ({:.2}%)",
                            label(h.total, &h.unit),
                            h.total_percent,
                            label(h.self_value, &h.unit),
                            h.self_percent,
                        )}
                    </div>
                    <div>{h.file.clone()}</div>
                </div>
            }
        })
    };

    view! {
        <section
            class="profile-view"
            data-testid="profile-view"
            on:dragover=move |ev: leptos::ev::DragEvent| ev.prevent_default()
            on:drop=on_drop
        >
            <div class="profile-bar">
                <label class="open">
                    "Open profile"
                    <input
                        type="file"
                        data-testid="open-profile"
                        accept=".pb,.gz,.pprof,.prof,.folded,.collapsed,.txt,.cpuprofile,.json"
                        on:change=on_pick
                        prop:disabled=busy
                    />
                </label>
                <span data-testid="profile-name">
                    {move || info.get().map(|i| i.name).unwrap_or("drop a pprof file here".into())}
                </span>
                <select
                    data-testid="sample-type"
                    prop:disabled=move || info.get().is_none()
                    on:change=move |ev| sample_type.set(event_target_value(&ev).parse().ok())
                >
                    {move || {
                        info.get()
                            .map(|i| {
                                let chosen = sample_type.get().unwrap_or(i.default_sample_type);
                                i.sample_types
                                    .iter()
                                    .enumerate()
                                    .map(|(n, t)| {
                                        view! {
                                            <option value=n.to_string() selected=n == chosen>
                                                {t.clone()}
                                            </option>
                                        }
                                    })
                                    .collect::<Vec<_>>()
                            })
                    }}
                </select>
                <input
                    data-testid="flame-search"
                    placeholder="search (regexp)"
                    prop:value=search
                    on:input=move |ev| search.set(event_target_value(&ev))
                />
                <button
                    data-testid="flame-orientation"
                    on:click=move |_| {
                        orientation
                            .update(|o| {
                                *o = match o {
                                    FlameOrientation::Flame => FlameOrientation::Icicle,
                                    FlameOrientation::Icicle => FlameOrientation::Flame,
                                }
                            })
                    }
                >
                    {move || match orientation.get() {
                        FlameOrientation::Flame => "Flame ▲",
                        FlameOrientation::Icicle => "Icicle ▼",
                    }}
                </button>
                <button
                    data-testid="flame-reset"
                    on:click=move |_| {
                        if info.get_untracked().is_some() {
                            on_drawn(client().send(Request::FlameReset));
                        }
                    }
                >
                    "Reset"
                </button>
                <label class="open">
                    "Open base"
                    <input
                        type="file"
                        data-testid="open-base"
                        title="a second profile to compare with (pprof's -diff_base): red grew, green shrank"
                        on:change=open_base
                        prop:disabled=busy
                    />
                </label>
                <span data-testid="base-name" hidden=move || base_info.get().is_none()>
                    {move || base_info.get().map(|b| format!("diff against {}", b.name))}
                </span>
                <label
                    title="scale the profile to the base's totals first (pprof's -normalize): the diff shows changes in shape, not in volume"
                    hidden=move || base_info.get().is_none()
                >
                    <input
                        type="checkbox"
                        data-testid="diff-normalize"
                        prop:checked=move || normalize.get()
                        on:change=move |ev| normalize.set(event_target_checked(&ev))
                    />
                    "normalise"
                </label>
                <button
                    data-testid="remove-base"
                    hidden=move || base_info.get().is_none()
                    on:click=move |_| {
                        base_source.set(None);
                        base_info.set(None);
                    }
                >
                    "Remove base"
                </button>
                <span
                    data-testid="flame-status"
                    data-diff=move || status.get().map(|s| s.diff.to_string())
                    data-sandwich=move || status.get().and_then(|s| s.sandwich)
                    data-name=move || info.get().map(|i| i.name)
                    data-boxes=move || status.get().map(|s| s.boxes.to_string())
                    data-total=move || status.get().map(|s| s.total.to_string())
                    data-matched=move || status.get().and_then(|s| s.matched_total).map(|m| m.to_string())
                    data-window=move || {
                        status.get().and_then(|s| s.window).map(|w| format!("{} {}", w.start, w.end))
                    }
                >
                    {summary}
                </span>
                <span class="error" data-testid="profile-error" hidden=move || error.get().is_none()>
                    {move || error.get().unwrap_or_default()}
                </span>
            </div>
            <div class="notice" data-testid="profile-notice" hidden=move || notice.get().is_none()>
                {move || notice.get().unwrap_or_default()}
            </div>
            <div
                class="error"
                data-testid="profile-link-error"
                hidden=link_problems.is_empty()
            >
                {format!("this link is partly broken: {}", link_problems.join("; "))}
            </div>
            <ServerProfiles on_open=on_server_open/>
            <div class="profile-bar refine" title="pprof's refinements: applied on Enter or when a field loses focus">
                {refine_field("focus", "focus (regexp)", refine, |r| &mut r.focus)}
                {refine_field("ignore", "ignore", refine, |r| &mut r.ignore)}
                {refine_field("hide", "hide", refine, |r| &mut r.hide)}
                {refine_field("show", "show", refine, |r| &mut r.show)}
                {refine_field("tagfocus", "tagfocus (key=regexp)", refine, |r| &mut r.tagfocus)}
                {refine_field("tagignore", "tagignore", refine, |r| &mut r.tagignore)}
                <select
                    data-testid="refine-granularity"
                    prop:value=move || {
                        let g = refine.get().granularity;
                        if g.is_empty() { "functions".to_string() } else { g }
                    }
                    on:change=move |ev| {
                        let g = event_target_value(&ev);
                        refine.update(|r| r.granularity = g);
                    }
                >
                    {GRANULARITIES
                        .into_iter()
                        .map(|g| view! { <option value=g>{g}</option> })
                        .collect::<Vec<_>>()}
                </select>
            </div>
            <div style="position:relative;">
                {move || {
                    canvas_key.track();
                    view! {
                <canvas
                    node_ref=canvas_ref
                    data-testid="flame-canvas"
                    data-generation=canvas_key.get_untracked().to_string()
                    style="width:100%;height:480px;display:block;cursor:pointer;"
                    on:mousemove=on_move
                    on:mouseleave=move |_| {
                        hover.set(None);
                        drag.set_value(None);
                    }
                    on:mousedown=move |ev: leptos::ev::MouseEvent| {
                        dragged.set_value(false);
                        drag.set_value(Some((ev.offset_x() as f64, ev.offset_y() as f64)));
                    }
                    on:mouseup=move |_| drag.set_value(None)
                    on:click=on_click
                    on:wheel=on_wheel
                ></canvas>
                    }
                }}
                {tooltip}
            </div>
            <div class="sandwich-bar" data-testid="sandwich-bar" hidden=move || sandwich.get().is_none()>
                {move || {
                    sandwich
                        .get()
                        .map(|f| format!("sandwich of {f}: callers above, callees below"))
                }}
                <button data-testid="sandwich-close" on:click=move |_| sandwich.set(None)>
                    "Back to the flamegraph"
                </button>
            </div>
            <TopTable status=status on_function=Callback::new(move |f: String| sandwich.set(Some(f)))/>
        </section>
    }
}

/// The file picked in the `<input type="file">` that fired `ev`; the input
/// is emptied, so picking the same file again fires again.
fn picked_file(ev: &leptos::ev::Event) -> Option<web_sys::File> {
    let input = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())?;
    let file = input.files().and_then(|l| l.get(0));
    input.set_value("");
    file
}
