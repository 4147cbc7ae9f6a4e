//! Widgets.

pub mod profile_view;
pub mod series_panel;
pub mod source_picker;
pub mod worker_status;
