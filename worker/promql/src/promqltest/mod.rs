//! The upstream `promqltest` language (`load`, `clear`, `eval`, `expect`):
//! [`script`] parses a test file into commands, [`runner`] runs them
//! against the engine with the Go harness's extra checks.

mod nhcb;
pub mod runner;
pub mod script;
pub mod suite;
