//! The Emberlens server: scrapes targets into storage and serves the app, the
//! raw-samples API and its own metrics.
//!
//! The binary (`main.rs`) only parses flags and calls [`serve`]. Everything
//! here is a library so integration tests can run the real server in-process
//! on a loopback port.

pub mod blocks;
pub mod fileset;
pub mod manager;
pub mod metrics;
pub mod query_api;
pub mod remote_api;
pub mod remote_write;
pub mod scrape;
pub mod storage;
pub mod targets;
pub mod tsdb_cli;
pub mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::blocks::BlockStore;
use crate::manager::{ConfigSource, ScrapeManager};
use crate::metrics::Metrics;
use crate::scrape::{Target, TargetHealth};
use crate::storage::MemStorage;
use crate::web::AppState;

/// How often file-SD files are checked for changes (modification time and
/// length; Prometheus uses inotify, a poll is portable and cheap).
const FILE_SD_POLL: Duration = Duration::from_secs(1);

/// What `emberlens serve` needs to run.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Data directory (created if missing). TSDB blocks in it are opened at
    /// start-up and queried read-only with the in-memory store; nothing is
    /// written to it yet.
    pub data_dir: PathBuf,
    /// Folder with the built app (`index.html`).
    pub ui_dir: PathBuf,
    /// How long samples are kept.
    pub retention: Duration,
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
            retention: Duration::from_secs(6 * 3600),
            config_file: None,
            scrape_interval: Duration::from_secs(5),
            extra_targets: Vec::new(),
            cross_origin_isolation: true,
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
    let store = Arc::new(MemStorage::new(opts.retention.as_millis() as i64));
    let blocks = open_blocks(&opts.data_dir)?;
    let metrics = Arc::new(Metrics::new());
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
    let scrape = Arc::new(ScrapeManager::new(
        source,
        extra_targets,
        client,
        store.clone(),
        metrics.clone(),
        health.clone(),
    ));
    // Remote write: committed samples are queued under <data dir>/remote_write.
    scrape.set_remote_write(Arc::new(remote_write::RemoteWrite::new(
        &opts.data_dir,
        metrics.clone(),
    )));
    scrape.reload().await.map_err(std::io::Error::other)?;
    scrape.watch_file_sd(FILE_SD_POLL);
    let state = AppState {
        store,
        blocks,
        metrics,
        scrape,
        remote: Arc::new(remote_api::RemoteApi::new(
            opts.enable_remote_write_receiver,
            opts.remote_read_sample_limit,
            opts.remote_read_concurrent_limit,
            opts.remote_read_max_bytes_in_frame,
        )),
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

/// Opens the blocks of the data directory; `None` when it holds none. A
/// block that fails to open is logged and skipped, as Prometheus does not
/// refuse to start over one either (it would delete it; we only read).
fn open_blocks(dir: &std::path::Path) -> std::io::Result<Option<Arc<BlockStore>>> {
    let (blocks, errors) = BlockStore::open(dir).map_err(std::io::Error::other)?;
    for e in &errors {
        tracing::warn!(error = %e, "skipping a block that does not open");
    }
    let n = blocks.db().blocks().len();
    if n == 0 {
        return Ok(None);
    }
    tracing::info!(dir = %dir.display(), blocks = n, "serving TSDB blocks read-only");
    Ok(Some(Arc::new(blocks)))
}
