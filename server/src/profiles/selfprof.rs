//! Emberlens's own CPU profile: `GET /debug/pprof/profile?seconds=N`, in
//! pprof format (gzipped), as Go's `net/http/pprof` serves it, so the
//! default configuration can scrape it like any Go service's.
//!
//! The `pprof` crate samples every thread with `SIGPROF` (`setitimer`) at
//! 100 Hz, Go's rate, and unwinds each sample's stack. The profiler is
//! process-wide, so one profile runs at a time: a second request while one
//! runs gets 409. `seconds` defaults to 30 (Go's default; 0 or a negative
//! value too) and may be at most [`MAX_SECONDS`].
//!
//! A heap profile is not offered: Rust's global allocator keeps no
//! allocation samples, and getting them needs a sampling allocator
//! (jemalloc built with profiling, or a wrapper around the system
//! allocator), which Emberlens does not ship. `GET /debug/pprof/heap`
//! answers 501 saying so.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::RawQuery;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::web::api_error;

/// Longest CPU profile served.
pub const MAX_SECONDS: u64 = 60;

/// Samples per second (Go's `runtime.SetCPUProfileRate` default).
const FREQUENCY_HZ: i32 = 100;

/// Set while a profile runs (the profiler is global to the process).
static BUSY: AtomicBool = AtomicBool::new(false);

/// Clears [`BUSY`] when the profile ends, however it ends.
struct Busy;

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.store(false, Ordering::SeqCst);
    }
}

/// `seconds` from the query string: 30 when absent, zero, negative or not
/// a number (Go's behaviour); an error above [`MAX_SECONDS`].
pub fn parse_seconds(query: &str) -> Result<u64, String> {
    let mut secs = 30u64;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == "seconds" {
            secs = match v.trim().parse::<i64>() {
                Ok(n) if n > 0 => n as u64,
                _ => 30,
            };
        }
    }
    if secs > MAX_SECONDS {
        return Err(format!(
            "profile duration {secs}s exceeds the limit of {MAX_SECONDS}s"
        ));
    }
    Ok(secs)
}

/// `GET /debug/pprof/profile?seconds=N`.
pub async fn cpu_profile_handler(RawQuery(query): RawQuery) -> Response {
    let secs = match parse_seconds(query.as_deref().unwrap_or("")) {
        Ok(s) => s,
        Err(msg) => return api_error(StatusCode::BAD_REQUEST, "bad_data", &msg),
    };
    if BUSY.swap(true, Ordering::SeqCst) {
        return api_error(
            StatusCode::CONFLICT,
            "unavailable",
            "a CPU profile is already being collected; try again when it ends",
        );
    }
    let busy = Busy;
    let collected = tokio::task::spawn_blocking(move || {
        let _busy = busy;
        collect(Duration::from_secs(secs))
    })
    .await;
    match collected {
        Ok(Ok(body)) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"profile\"",
                ),
            ],
            body,
        )
            .into_response(),
        Ok(Err(e)) => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &format!("could not collect a CPU profile: {e}"),
        ),
        Err(e) => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        ),
    }
}

/// `GET /debug/pprof/heap`: not available (see the module docs).
pub async fn heap_profile_handler() -> Response {
    api_error(
        StatusCode::NOT_IMPLEMENTED,
        "unavailable",
        "no heap profile: Emberlens's allocator keeps no allocation samples (only /debug/pprof/profile, CPU, is served)",
    )
}

/// Profiles the process for `d` (blocking the calling thread) and returns
/// the gzipped pprof.
fn collect(d: Duration) -> Result<Vec<u8>, pprof::Error> {
    use pprof::protos::Message as _;
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY_HZ)
        // Unwinding through these from a signal handler is unsafe or useless.
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()?;
    std::thread::sleep(d);
    let report = guard.report().build()?;
    drop(guard);
    let profile = report.pprof()?;
    Ok(emberlens_pprof::gzip(&profile.encode_to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_follow_go_defaults_and_the_cap() {
        assert_eq!(parse_seconds(""), Ok(30));
        assert_eq!(parse_seconds("seconds=5"), Ok(5));
        assert_eq!(parse_seconds("seconds=0"), Ok(30));
        assert_eq!(parse_seconds("seconds=-3"), Ok(30));
        assert_eq!(parse_seconds("seconds=x"), Ok(30));
        assert_eq!(
            parse_seconds("seconds=61"),
            Err("profile duration 61s exceeds the limit of 60s".into())
        );
    }
}
