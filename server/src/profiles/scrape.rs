//! Profile scraping (pull mode, as Grafana Alloy's `pyroscope.scrape`).
//!
//! For a target whose scrape config has `profiling_config`, one loop per
//! (target, endpoint) runs at the target's scrape interval, at the same
//! phase as its metrics loop. Each scrape fetches
//! `scheme://address/<path>[?seconds=N]` (N = `delta_profiling_duration`
//! for delta profiles such as `process_cpu`) with the target's credentials,
//! decodes the body as pprof (a body that does not decode is a failed
//! scrape and is not stored), and stores it with the target's labels plus
//! `__name__` = the profile type name.
//!
//! A delta profile's request lasts `delta_profiling_duration`, so its
//! timeout is that plus the target's `scrape_timeout`; other profiles use
//! the scrape timeout. Bodies over the target's `body_size_limit` fail.
//!
//! Failures are logged when they start or change (not on every tick),
//! counted in `emberlens_profile_scrapes_failed_total{job,type}`, and shown
//! in `GET /api/v1/profiles/targets` with the last error. The loops are
//! owned by the scrape manager's loop of the same target: a reload that
//! stops or changes the target stops them (dropping [`ProfileLoops`]).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use emberlens_config::ProfileEndpoint;

use crate::metrics::{Metrics, ProfileLabels};
use crate::profiles::store::ProfileStore;
use crate::scrape::{Target, now_ms, scrape_offset};

/// Decoded profiles may inflate to at most this (a scraped body is already
/// bounded by `body_size_limit`; this bounds its gzip ratio).
pub const MAX_DECODED_BYTES: usize = 512 << 20;

/// The latest state of one (target, endpoint) loop.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileTargetStatus {
    /// The scrape pool.
    pub pool: String,
    /// Profile type name.
    pub type_name: String,
    /// The target's labels.
    pub labels: emberlens_model::Labels,
    /// The URL fetched.
    pub url: String,
    /// Start of the last scrape (ms), 0 before the first one.
    pub last_scrape_ms: i64,
    /// How long it took.
    pub last_duration: Duration,
    /// Why it failed, if it did.
    pub last_error: Option<String>,
    /// Stored size of the last profile, in bytes.
    pub last_size: u64,
}

/// Key of a loop in [`ProfileStatus`]: target URL, profile type, and a
/// number unique to the loop (a restarted loop of the same target and type
/// never touches its predecessor's entry).
pub type ProfileLoopKey = (String, String, u64);

/// Status per loop, for `/api/v1/profiles/targets`.
pub type ProfileStatus = Arc<RwLock<BTreeMap<ProfileLoopKey, ProfileTargetStatus>>>;

/// Numbers the loops (see [`ProfileLoopKey`]).
static NEXT_LOOP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What profile loops share: the store, the metrics and the status map.
#[derive(Clone, Debug)]
pub struct ProfileScraping {
    /// Where profiles go.
    pub store: Arc<ProfileStore>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Latest state per loop.
    pub status: ProfileStatus,
}

/// The running profile loops of one target; dropping it stops them and
/// removes them from the status map (a loop that was mid-scrape removes
/// its entry again when it ends).
#[derive(Debug)]
pub struct ProfileLoops {
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    status: ProfileStatus,
    keys: Vec<ProfileLoopKey>,
}

impl Drop for ProfileLoops {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        if let Ok(mut s) = self.status.write() {
            for k in &self.keys {
                s.remove(k);
            }
        }
    }
}

impl ProfileScraping {
    /// Starts one loop per endpoint of `target`'s `profiling_config`;
    /// `None` when it has none.
    pub fn start(&self, client: &reqwest::Client, target: &Arc<Target>) -> Option<ProfileLoops> {
        let profiling = target.profiling.as_ref()?;
        let mut loops = ProfileLoops {
            stops: Vec::new(),
            status: self.status.clone(),
            keys: Vec::new(),
        };
        for endpoint in &profiling.endpoints {
            let (stop, stopped) = tokio::sync::oneshot::channel();
            let key = (
                target.url.clone(),
                endpoint.name.clone(),
                NEXT_LOOP.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            );
            tokio::spawn(run_loop(
                self.clone(),
                client.clone(),
                target.clone(),
                endpoint.clone(),
                profiling.delta_profiling_ms,
                key.clone(),
                stopped,
            ));
            loops.stops.push(stop);
            loops.keys.push(key);
        }
        Some(loops)
    }
}

/// The URL of `endpoint` on `target`: the metrics URL's scheme and
/// authority with the endpoint's path and query.
pub fn profile_url(target: &Target, endpoint: &ProfileEndpoint, delta_ms: i64) -> Option<String> {
    let mut url = reqwest::Url::parse(&target.url).ok()?;
    let pq = endpoint.path_and_query(delta_ms);
    let (path, query) = match pq.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (pq.as_str(), None),
    };
    url.set_path(path);
    url.set_query(query);
    url.set_fragment(None);
    Some(url.to_string())
}

async fn run_loop(
    ctx: ProfileScraping,
    client: reqwest::Client,
    target: Arc<Target>,
    endpoint: ProfileEndpoint,
    delta_ms: i64,
    key: ProfileLoopKey,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let url = profile_url(&target, &endpoint, delta_ms).unwrap_or_else(|| target.url.clone());
    let labels = ProfileLabels {
        job: target.job().to_string(),
        r#type: endpoint.name.clone(),
    };
    let timeout = if endpoint.delta {
        target.timeout + Duration::from_millis(u64::try_from(delta_ms).unwrap_or(0))
    } else {
        target.timeout
    };
    let mut status = ProfileTargetStatus {
        pool: target.pool.clone(),
        type_name: endpoint.name.clone(),
        labels: target.labels.clone(),
        url: url.clone(),
        last_scrape_ms: 0,
        last_duration: Duration::ZERO,
        last_error: None,
        last_size: 0,
    };
    if let Ok(mut s) = ctx.status.write() {
        s.insert(key.clone(), status.clone());
    }
    let first = tokio::time::Instant::now() + scrape_offset(&target, now_ms());
    let mut ticker = tokio::time::interval_at(first, target.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error: Option<String> = None;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {}
        }
        let t_ms = now_ms();
        let started = Instant::now();
        let result = tokio::select! {
            _ = &mut stop => break,
            r = tokio::time::timeout(timeout, scrape_once(&ctx, &client, &target, &endpoint, &url, t_ms)) => {
                r.unwrap_or_else(|_| Err(format!("timed out after {timeout:?}")))
            }
        };
        status.last_scrape_ms = t_ms;
        status.last_duration = started.elapsed();
        match result {
            Ok(size) => {
                status.last_size = size;
                status.last_error = None;
                ctx.metrics.profile_scrapes.get_or_create(&labels).inc();
            }
            Err(e) => {
                status.last_error = Some(e);
                ctx.metrics
                    .profile_scrape_failures
                    .get_or_create(&labels)
                    .inc();
            }
        }
        if status.last_error != last_error {
            match &status.last_error {
                Some(e) => {
                    tracing::warn!(url = %url, profile = %endpoint.name, error = %e, "profile scrape failed")
                }
                None => {
                    tracing::info!(url = %url, profile = %endpoint.name, "profile scrape recovered")
                }
            }
            last_error.clone_from(&status.last_error);
        }
        if let Ok(mut s) = ctx.status.write() {
            s.insert(key.clone(), status.clone());
        }
    }
    if let Ok(mut s) = ctx.status.write() {
        s.remove(&key);
    }
}

/// One scrape: fetch, decode, store. Returns the stored size.
async fn scrape_once(
    ctx: &ProfileScraping,
    client: &reqwest::Client,
    target: &Target,
    endpoint: &ProfileEndpoint,
    url: &str,
    t_ms: i64,
) -> Result<u64, String> {
    if let Some(e) = &target.forced_error {
        return Err(e.clone());
    }
    let req = client.get(url);
    let req = crate::scrape::authorize(req, &target.auth).await?;
    let mut resp = req
        .send()
        .await
        .map_err(|e| format!("fetching {url}: {}", crate::scrape::http_reason(&e)))?;
    if !resp.status().is_success() {
        return Err(format!("server returned HTTP status {}", resp.status()));
    }
    let limit = target.body_size_limit;
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("fetching {url}: {}", crate::scrape::http_reason(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(format!("body size limit exceeded ({limit} bytes)"));
        }
        body.extend_from_slice(&chunk);
    }
    let store = ctx.store.clone();
    let labels = target.labels.clone();
    let name = endpoint.name.clone();
    tokio::task::spawn_blocking(move || {
        let profile = emberlens_pprof::decode_with_limit(&body, MAX_DECODED_BYTES)
            .map_err(|e| format!("not a pprof profile: {e}"))?;
        store
            .append(&name, &labels, t_ms, &body, &profile)
            .map(|m| m.size)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("storing the profile: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_scheme_and_address() {
        let t = Target::simple(
            "j",
            "h:9",
            "https://h:9/metrics?x=1",
            Duration::from_secs(15),
        );
        let cpu = ProfileEndpoint {
            name: "process_cpu".into(),
            path: "/debug/pprof/profile".into(),
            delta: true,
        };
        assert_eq!(
            profile_url(&t, &cpu, 14_000).as_deref(),
            Some("https://h:9/debug/pprof/profile?seconds=14")
        );
        let heap = ProfileEndpoint {
            name: "heap".into(),
            path: "/p/debug/pprof/heap".into(),
            delta: false,
        };
        assert_eq!(
            profile_url(&t, &heap, 14_000).as_deref(),
            Some("https://h:9/p/debug/pprof/heap")
        );
    }
}
