//! Widgets.

pub mod series_panel;
pub mod source_picker;
pub mod worker_status;
