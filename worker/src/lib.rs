//! The Emberlens Web Worker.
//!
//! The entry (in `web`, wasm32 only) is tiny: it installs one message handler
//! that decodes an [`Envelope`](emberlens_protocol::Envelope) of a
//! [`Request`](emberlens_protocol::Request), runs [`dispatch::handle`], and
//! posts the [`Response`](emberlens_protocol::Response) back with the same id.
//! Everything else is plain Rust that builds and tests natively: the dispatcher
//! takes its HTTP client as a trait, so native tests give it a fake one and the
//! browser gives it `fetch` (gloo-net).
//!
//! Architecture invariant: the main thread never runs this code; the worker
//! never touches the DOM.

pub mod cancel;
pub mod dispatch;
pub mod flame_view;
pub mod paged;
pub mod profiles_server;
pub mod query;
pub mod source_server;

#[cfg(target_arch = "wasm32")]
pub mod blob;
#[cfg(target_arch = "wasm32")]
pub mod canvas;
#[cfg(target_arch = "wasm32")]
pub mod http_range;
#[cfg(target_arch = "wasm32")]
pub mod web;
