//! Profiles, continuous profiling in pull mode: scrape pprof endpoints
//! listed in a scrape config's `profiling_config`, keep each profile with
//! the target's labels and time, and serve them (one, a list, or merged).
//!
//! - [`store`]: `<data dir>/profiles/` (gzipped pprof files + a JSON-lines
//!   index), retention shared with the TSDB, hard-linked into snapshots.
//! - [`scrape`]: one loop per (target, profile endpoint), owned by the
//!   scrape manager's loop of the target (stopped and restarted with it on
//!   reload).
//! - [`api`]: `/api/v1/profiles`, `/api/v1/profiles/<id>`,
//!   `/api/v1/profiles/merge`, `/api/v1/profiles/targets`.
//! - [`selfprof`]: Emberlens's own CPU profile at `/debug/pprof/profile`.
//!
//! Decoding, validation and merging are `emberlens-pprof`'s: the server
//! only moves bytes and labels around.

pub mod api;
pub mod scrape;
pub mod selfprof;
pub mod store;
