//! Widgets.

pub mod series_panel;
pub mod worker_status;
