//! pprof's top table beside the flamegraph: flat, flat%, sum%, cum, cum%
//! and the function, sortable by clicking a column's header. The worker
//! computes the rows (`Request::FlameTop`, pprof's `-top` on what the
//! flamegraph shows, against the base in a diff); the table asks again
//! whenever the drawn tree changes (`FlameStatus::tree_version`). Clicking
//! a function opens its sandwich.
//!
//! Rows carry `data-name`, `data-flat` and `data-cum` (raw values) for
//! tests; in a diff the values are changes, signed.

use emberlens_flame::units::label;
use emberlens_protocol::{FlameStatus, Request, Response, TopAnswer, TopSort as SortBy};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::worker_client::client;

/// pprof's percentage column: `12.34%`.
fn pct(v: i64, total: i64) -> String {
    if total == 0 {
        return "-".into();
    }
    format!("{:.2}%", 100.0 * v as f64 / total as f64)
}

/// The top table.
#[component]
pub fn TopTable(
    /// The flamegraph's last draw (its `tree_version` triggers a refresh).
    status: RwSignal<Option<FlameStatus>>,
    /// Called with a function's name when its row is clicked.
    on_function: Callback<String>,
) -> impl IntoView {
    let table = RwSignal::new(None::<TopAnswer>);
    let error = RwSignal::new(None::<String>);
    let sort = RwSignal::new((SortBy::Flat, false));
    let asked = StoredValue::new(None::<u64>);

    Effect::new(move |_| {
        let Some(version) = status.with(|s| s.as_ref().map(|s| s.tree_version)) else {
            return;
        };
        if asked.get_value() == Some(version) {
            return;
        }
        asked.set_value(Some(version));
        let ticket = client().send(Request::FlameTop);
        spawn_local(async move {
            match ticket.answer().await {
                // A newer tree was drawn meanwhile: its own request answers.
                _ if asked.get_value() != Some(version) => {}
                Ok(Response::FlameTop(t)) => {
                    error.set(None);
                    table.set(Some(t));
                }
                Ok(Response::Error(e)) => error.set(Some(e.message)),
                Ok(other) => error.set(Some(format!("unexpected answer: {other:?}"))),
                Err(e) => error.set(Some(e)),
            }
        });
    });

    let header = move |label: &'static str, by: SortBy| {
        view! {
            <th
                data-testid=format!("top-sort-{}", label.trim_end_matches('%'))
                style="cursor:pointer;text-align:right;padding:0 6px;"
                on:click=move |_| {
                    sort.update(|(b, asc)| {
                        if *b == by {
                            *asc = !*asc;
                        } else {
                            *b = by;
                            *asc = by == SortBy::Name;
                        }
                    })
                }
            >
                {move || {
                    let (b, asc) = sort.get();
                    let arrow = if b != by { "" } else if asc { " ▲" } else { " ▼" };
                    format!("{label}{arrow}")
                }}
            </th>
        }
    };

    let rows = move || {
        let t = table.get()?;
        let (by, asc) = sort.get();
        let signed = |v: i64| {
            let s = label(v, &t.unit);
            if t.diff && v > 0 { format!("+{s}") } else { s }
        };
        let mut sum = 0i64;
        let rows = t
            .sorted(by, asc)
            .into_iter()
            .map(|r| {
                sum = sum.wrapping_add(r.flat);
                let name = r.name.clone();
                view! {
                    <tr
                        data-testid="top-row"
                        data-name=r.name.clone()
                        data-flat=r.flat.to_string()
                        data-cum=r.cum.to_string()
                    >
                        <td style="text-align:right;padding:0 6px;">{signed(r.flat)}</td>
                        <td style="text-align:right;padding:0 6px;">{pct(r.flat, t.total)}</td>
                        <td style="text-align:right;padding:0 6px;">{pct(sum, t.total)}</td>
                        <td style="text-align:right;padding:0 6px;">{signed(r.cum)}</td>
                        <td style="text-align:right;padding:0 6px;">{pct(r.cum, t.total)}</td>
                        <td>
                            <a
                                href="#"
                                data-testid="top-function"
                                title="show its callers and callees (sandwich)"
                                on:click=move |ev| {
                                    ev.prevent_default();
                                    on_function.run(name.clone());
                                }
                            >
                                {r.name.clone()}
                            </a>
                        </td>
                    </tr>
                }
            })
            .collect::<Vec<_>>();
        Some(rows)
    };

    view! {
        <div class="top-table" data-testid="top-table" hidden=move || table.get().is_none() && error.get().is_none()>
            <div class="top-caption" data-testid="top-caption">
                {move || {
                    table
                        .get()
                        .map(|t| {
                            let what = if t.diff { "top (change against the base)" } else { "top" };
                            format!("{what} · {} rows · {}", t.rows.len(), t.header.last().cloned().unwrap_or_default())
                        })
                }}
            </div>
            <span class="error" data-testid="top-error" hidden=move || error.get().is_none()>
                {move || error.get().unwrap_or_default()}
            </span>
            <table style="border-collapse:collapse;font:12px monospace;">
                <thead>
                    <tr>
                        {header("flat", SortBy::Flat)}
                        <th style="text-align:right;padding:0 6px;">"flat%"</th>
                        <th style="text-align:right;padding:0 6px;">"sum%"</th>
                        {header("cum", SortBy::Cum)}
                        <th style="text-align:right;padding:0 6px;">"cum%"</th>
                        {header("name", SortBy::Name)}
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}
