//! The Emberlens server: scrapes targets into storage and serves the app, the
//! raw-samples API and its own metrics.
//!
//! The binary (`main.rs`) only parses flags and calls [`serve`]. Everything
//! here is a library so integration tests can run the real server in-process
//! on a loopback port.

pub mod api;
pub mod fileset;
pub mod manager;
pub mod metrics;
pub mod profiles;
pub mod query_api;
pub mod remote_api;
pub mod remote_write;
pub mod scrape;
pub mod security;
pub mod snapshot;
pub mod store;
pub mod targets;
pub mod tls;
pub mod tsdb_cli;
pub mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::manager::{ConfigSource, ScrapeManager};
use crate::metrics::Metrics;
use crate::profiles::scrape::{ProfileScraping, ProfileStatus};
use crate::profiles::store::ProfileStore;
use crate::scrape::{Target, TargetHealth};
use crate::store::{Tsdb, TsdbOptions};
use crate::web::AppState;

/// How often file-SD files are checked for changes (modification time and
/// length; Prometheus uses inotify, a poll is portable and cheap).
const FILE_SD_POLL: Duration = Duration::from_secs(1);

/// What `emberlens serve` needs to run.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Data directory (created if missing): a Prometheus data directory
    /// (WAL and blocks), see [`store`].
    pub data_dir: PathBuf,
    /// Folder with the built app (`index.html`).
    pub ui_dir: PathBuf,
    /// Storage settings (block range, retention, WAL).
    pub tsdb: TsdbOptions,
    /// `prometheus.yml` to load (`--config.file`); `None` uses the embedded
    /// default, which scrapes the server itself.
    pub config_file: Option<PathBuf>,
    /// Scrape interval of the embedded default config and of `extra_targets`.
    pub scrape_interval: Duration,
    /// Extra targets to scrape besides the configuration's (`job`, `url`).
    pub extra_targets: Vec<(String, String)>,
    /// Serve the app cross-origin isolated (COOP and COEP headers), so it can
    /// cancel queries in its worker through shared memory.
    pub cross_origin_isolation: bool,
    /// The token the admin, write and reload endpoints need
    /// (`--web.auth-token-file` or `EMBERLENS_TOKEN`); see [`security`].
    pub auth_token: Option<security::AuthToken>,
    /// Largest request body accepted (`--web.max-request-body-bytes`).
    pub max_request_body_bytes: usize,
    /// Origins allowed to read the API cross-origin, a regex anchored at
    /// both ends (`--web.cors.origin`).
    pub cors_origin: String,
    /// Accept `POST /api/v1/write` (`--web.enable-remote-write-receiver`).
    pub enable_remote_write_receiver: bool,
    /// `--storage.remote.read-sample-limit` (0: none).
    pub remote_read_sample_limit: usize,
    /// `--storage.remote.read-concurrent-limit` (0: none).
    pub remote_read_concurrent_limit: usize,
    /// `--storage.remote.read-max-bytes-in-frame`.
    pub remote_read_max_bytes_in_frame: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            data_dir: PathBuf::from("data"),
            ui_dir: PathBuf::from("app/dist"),
            tsdb: TsdbOptions::default(),
            config_file: None,
            scrape_interval: Duration::from_secs(5),
            extra_targets: Vec::new(),
            cross_origin_isolation: true,
            auth_token: None,
            max_request_body_bytes: security::DEFAULT_MAX_BODY_BYTES,
            cors_origin: security::DEFAULT_CORS_ORIGIN.to_string(),
            enable_remote_write_receiver: false,
            remote_read_sample_limit: remote_api::DEFAULT_READ_SAMPLE_LIMIT,
            remote_read_concurrent_limit: remote_api::DEFAULT_READ_CONCURRENT_LIMIT,
            remote_read_max_bytes_in_frame: emberlens_remote::frame::DEFAULT_MAX_BYTES_IN_FRAME,
        }
    }
}

/// A running server's handles, for tests and the binary.
#[derive(Debug)]
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// Shared state (store, metrics).
    pub state: AppState,
    /// Latest scrape report per target URL.
    pub health: TargetHealth,
    /// The HTTP server task; finishes only on error.
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts scraping and serving on `listener`. Without a config file the
/// embedded default config scrapes the server's own `/metrics` at the bound
/// address. A config file that does not load is an error here.
pub async fn serve(listener: TcpListener, opts: ServeOptions) -> std::io::Result<Running> {
    std::fs::create_dir_all(&opts.data_dir)?;
    let addr = listener.local_addr()?;
    let security = security::SecurityOptions {
        token: opts.auth_token.clone(),
        loopback: addr.ip().is_loopback(),
        max_body_bytes: opts.max_request_body_bytes,
        cors_origin: security::cors_regex(&opts.cors_origin).map_err(std::io::Error::other)?,
    };
    if !security.loopback && security.token.is_none() {
        tracing::warn!(%addr, "listening on a non-loopback address without a token: the admin, write and reload endpoints answer 403 (set --web.auth-token-file or EMBERLENS_TOKEN)");
    }
    let data_dir = opts.data_dir.clone();
    let tsdb_opts = opts.tsdb.clone();
    let store = tokio::task::spawn_blocking(move || Tsdb::open(&data_dir, tsdb_opts))
        .await
        .map_err(std::io::Error::other)?
        .map_err(std::io::Error::other)?;
    let store = Arc::new(store);
    let profile_dir = opts.data_dir.clone();
    let retention_ms = opts.tsdb.retention_ms;
    let profiles =
        tokio::task::spawn_blocking(move || ProfileStore::open(&profile_dir, retention_ms))
            .await
            .map_err(std::io::Error::other)?
            .map_err(std::io::Error::other)?;
    let profiles = Arc::new(profiles);
    spawn_store_tasks(&store, &profiles);
    let mut metrics = Metrics::with_store(&store);
    metrics.register_profile_store(&profiles);
    let metrics = Arc::new(metrics);
    let profile_status = ProfileStatus::default();
    let health = TargetHealth::default();
    // Like Prometheus, no proxy unless a scrape config sets `proxy_url`
    // (reqwest would otherwise read HTTP_PROXY from the environment).
    let client = reqwest::Client::builder()
        .user_agent(scrape::USER_AGENT)
        .no_proxy()
        .build()
        .map_err(std::io::Error::other)?;
    let extra_targets = opts
        .extra_targets
        .iter()
        .map(|(job, url)| {
            let instance = reqwest::Url::parse(url)
                .ok()
                .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
                .unwrap_or_else(|| url.clone());
            Target::simple(job, &instance, url, opts.scrape_interval)
        })
        .collect();
    let source = match &opts.config_file {
        Some(path) => ConfigSource::File(path.clone()),
        None => ConfigSource::Default {
            listen: addr.to_string(),
            interval: opts.scrape_interval,
        },
    };
    let scrape = Arc::new(
        ScrapeManager::new(
            source,
            extra_targets,
            client,
            store.clone(),
            metrics.clone(),
            health.clone(),
        )
        .with_profiles(ProfileScraping {
            store: profiles.clone(),
            metrics: metrics.clone(),
            status: profile_status.clone(),
        }),
    );
    // Remote write: committed samples are queued under <data dir>/remote_write.
    scrape.set_remote_write(Arc::new(remote_write::RemoteWrite::new(
        &opts.data_dir,
        metrics.clone(),
    )));
    scrape.reload().await.map_err(std::io::Error::other)?;
    scrape.watch_file_sd(FILE_SD_POLL);
    let state = AppState {
        store,
        metrics,
        scrape,
        profiles,
        profile_status,
        info: Arc::new(server_info(&opts, addr)),
        remote: Arc::new(remote_api::RemoteApi::new(
            opts.enable_remote_write_receiver,
            opts.remote_read_sample_limit,
            opts.remote_read_concurrent_limit,
            opts.remote_read_max_bytes_in_frame,
        )),
    };
    let app = security::protect(
        web::router(
            state.clone(),
            opts.ui_dir.clone(),
            opts.cross_origin_isolation,
        ),
        security,
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(Running {
        addr,
        state,
        health,
        server,
    })
}

/// How often the head is checked for a block to cut (as Prometheus).
const COMPACT_EVERY: Duration = Duration::from_secs(60);

/// The store's timers: WAL `fsync` and compaction + retention (of blocks
/// and of profiles), on the blocking pool. They end when the store is
/// closed (the last `Arc` besides theirs is gone).
fn spawn_store_tasks(store: &Arc<Tsdb>, profiles: &Arc<ProfileStore>) {
    let weak = Arc::downgrade(store);
    let fsync = store.options().wal_fsync.max(Duration::from_millis(10));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(fsync);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(db) = weak.upgrade() else { return };
            let r = tokio::task::spawn_blocking(move || db.sync_wal()).await;
            if let Ok(Err(e)) = r {
                tracing::error!(error = %e, "WAL fsync failed");
            }
        }
    });
    let weak = Arc::downgrade(store);
    let weak_profiles = Arc::downgrade(profiles);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(COMPACT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(db) = weak.upgrade() else { return };
            let r = tokio::task::spawn_blocking(move || {
                let r = db.compact();
                if r.is_err() {
                    db.stats
                        .compaction_failures
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                r
            })
            .await;
            if let Ok(Err(e)) = r {
                tracing::error!(error = %e, "compaction failed; retrying in a minute");
            }
            if let Some(p) = weak_profiles.upgrade() {
                let r =
                    tokio::task::spawn_blocking(move || p.apply_retention(scrape::now_ms())).await;
                if let Ok(Err(e)) = r {
                    tracing::error!(error = %e, "profile retention failed; retrying in a minute");
                }
            }
        }
    });
}

/// The start time and the flags as `/api/v1/status/flags` shows them.
fn server_info(opts: &ServeOptions, addr: SocketAddr) -> api::ServerInfo {
    let ms = |d: Duration| emberlens_model::format_duration_ms(d.as_millis() as i64);
    let flags = [
        ("web.listen-address", addr.to_string()),
        ("storage.tsdb.path", opts.data_dir.display().to_string()),
        (
            "storage.tsdb.retention.time",
            ms(Duration::from_millis(opts.tsdb.retention_ms.max(0) as u64)),
        ),
        (
            "storage.tsdb.retention.size",
            opts.tsdb.retention_bytes.to_string(),
        ),
        (
            "storage.tsdb.min-block-duration",
            ms(Duration::from_millis(opts.tsdb.block_range_ms.max(0) as u64)),
        ),
        (
            "storage.tsdb.max-block-duration",
            ms(Duration::from_millis(opts.tsdb.max_block_ms.max(0) as u64)),
        ),
        ("storage.tsdb.wal-fsync-interval", ms(opts.tsdb.wal_fsync)),
        (
            "config.file",
            opts.config_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        ("web.ui-path", opts.ui_dir.display().to_string()),
        ("scrape.interval", ms(opts.scrape_interval)),
        (
            "web.cross-origin-isolation",
            opts.cross_origin_isolation.to_string(),
        ),
        ("web.cors.origin", opts.cors_origin.clone()),
        (
            "web.max-request-body-bytes",
            opts.max_request_body_bytes.to_string(),
        ),
        // Whether a token is set, never the token.
        ("web.auth-token", opts.auth_token.is_some().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    api::ServerInfo {
        start_ms: scrape::now_ms(),
        flags,
        retention: Duration::from_millis(opts.tsdb.retention_ms.max(0) as u64),
    }
}
