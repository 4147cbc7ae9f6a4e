//! The Emberlens server: scrapes targets into storage and serves the app, the
//! raw-samples API and its own metrics.
//!
//! The binary (`main.rs`) only parses flags and calls [`serve`]. Everything
//! here is a library so integration tests can run the real server in-process
//! on a loopback port.

pub mod fileset;
pub mod manager;
pub mod metrics;
pub mod profiles;
pub mod query_api;
pub mod scrape;
pub mod snapshot;
pub mod store;
pub mod targets;
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
    scrape.reload().await.map_err(std::io::Error::other)?;
    scrape.watch_file_sd(FILE_SD_POLL);
    let state = AppState {
        store,
        metrics,
        scrape,
        profiles,
        profile_status,
    };
    let app = web::router(
        state.clone(),
        opts.ui_dir.clone(),
        opts.cross_origin_isolation,
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
