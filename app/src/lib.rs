//! The Emberlens app: the UI on the browser's main thread.
//!
//! Layout, after the Leptos examples: `App` here; widgets in `components/`;
//! all IO in one client module ([`worker_client`]), through which every
//! request goes to the Web Worker. Components never call `postMessage`.
//!
//! Architecture invariant: the main thread does no heavy work. It draws what
//! the worker returns; fetching, decoding and (later) querying run in the
//! worker.

pub mod chart;
pub mod components;
pub mod share;
pub mod worker_client;

use leptos::prelude::*;

use crate::components::profile_view::ProfileView;
use crate::components::series_panel::SeriesPanel;
use crate::components::source_picker::{CurrentSource, SourcePicker};
use crate::components::worker_status::WorkerStatus;

/// The root component.
#[component]
pub fn App() -> impl IntoView {
    provide_context(CurrentSource(RwSignal::new(None)));
    view! {
        <header class="topbar">
            <span class="brand">"Emberlens"</span>
            <WorkerStatus/>
        </header>
        <main>
            <SourcePicker/>
            <SeriesPanel/>
            <ProfileView/>
        </main>
    }
}
