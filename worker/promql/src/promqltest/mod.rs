//! The upstream `promqltest` language (`load`, `clear`, `eval`, `expect`):
//! [`script`] parses a test file into commands.

pub mod script;
