//! Widgets.

pub mod profile_view;
pub mod series_panel;
pub mod server_profiles;
pub mod source_picker;
pub mod top_table;
pub mod worker_status;
