//! `emberlens`: the command line. Flags follow Prometheus's names.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

/// mimalloc instead of glibc's malloc: scraping allocates small label
/// strings from every core, and glibc's arena locks and consolidation cost
/// a third of the ingest CPU (measured with perf at 1,000 targets ×
/// 1,000 series).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};
use emberlens_server::{ServeOptions, serve};

mod profile_cli;

#[derive(Parser, Debug)]
#[command(
    name = "emberlens",
    version,
    about = "Metrics and profiles, scraped, stored and analysed"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Scrape, store and serve (the default when no command is given).
    Serve(Box<ServeArgs>),
    /// Inspect Prometheus TSDB blocks (like `promtool tsdb`).
    #[command(subcommand)]
    Tsdb(TsdbCommand),
    /// Evaluate a PromQL expression at one time over TSDB blocks; prints the
    /// JSON body of Prometheus's `/api/v1/query`.
    Query(QueryArgs),
    /// Evaluate a PromQL expression over a time range; prints the JSON body
    /// of Prometheus's `/api/v1/query_range`.
    #[command(name = "query-range")]
    QueryRange(QueryRangeArgs),
    /// Run PromQL test files (Prometheus's promqltest language): prints a
    /// table per file and `N passed, M failed`; exits non-zero on a failure
    /// not in the known-failures list.
    Promqltest(PromqltestArgs),
    /// pprof reports: `top` (like `go tool pprof -top`), `collapsed`
    /// (folded stacks) or `svg` (a flamegraph) of one or more profiles,
    /// with pprof's refinements (--focus, --ignore, --hide, --show,
    /// --tagfocus, --diff-base, ...).
    Profile(Box<profile_cli::ProfileArgs>),
}

#[derive(clap::Args, Debug)]
struct QueryArgs {
    /// Data directory, snapshot directory, one block, or a .tar / .tar.gz of one.
    #[arg(long = "tsdb")]
    tsdb: PathBuf,
    /// Evaluation time: RFC 3339 or Unix seconds (default: now).
    #[arg(long = "time", allow_hyphen_values = true)]
    time: Option<String>,
    /// The PromQL expression (may start with `-`).
    #[arg(allow_hyphen_values = true)]
    expr: String,
}

#[derive(clap::Args, Debug)]
struct QueryRangeArgs {
    /// Data directory, snapshot directory, one block, or a .tar / .tar.gz of one.
    #[arg(long = "tsdb")]
    tsdb: PathBuf,
    /// Start: RFC 3339 or Unix seconds.
    #[arg(long = "start", allow_hyphen_values = true)]
    start: String,
    /// End: RFC 3339 or Unix seconds.
    #[arg(long = "end", allow_hyphen_values = true)]
    end: String,
    /// Step: a duration (`15s`) or seconds (`15`).
    #[arg(long = "step")]
    step: String,
    /// The PromQL expression (may start with `-`).
    #[arg(allow_hyphen_values = true)]
    expr: String,
}

/// A query step as Prometheus's API takes it: float seconds or a duration.
fn step_ms(text: &str) -> anyhow::Result<i64> {
    if let Ok(secs) = text.parse::<f64>() {
        let ms = (secs * 1000.0).round();
        if !ms.is_finite() || ms <= 0.0 || ms > 9.0e18 {
            anyhow::bail!("--step {text:?}: must be a positive duration");
        }
        return Ok(ms as i64);
    }
    emberlens_model::parse_duration_ms(text).with_context(|| format!("--step {text:?}"))
}

fn query_time(flag: &str, text: &str) -> anyhow::Result<i64> {
    emberlens_model::parse_time_ms(text).with_context(|| format!("--{flag} {text:?}"))
}

/// Writes `text` to stdout. A reader that went away (`| head`)
/// is not an error: the rest is not wanted.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn run_query(args: QueryArgs) -> anyhow::Result<bool> {
    let db = open_db(&args.tsdb)?;
    let t = match &args.time {
        Some(t) => query_time("time", t)?,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
    };
    let r = emberlens_promql::instant_query(&db, &Default::default(), &args.expr, t);
    emit(&format!("{}\n", emberlens_promql::api::response_json(&r)))?;
    Ok(r.is_ok())
}

fn run_query_range(args: QueryRangeArgs) -> anyhow::Result<bool> {
    let db = open_db(&args.tsdb)?;
    let start = query_time("start", &args.start)?;
    let end = query_time("end", &args.end)?;
    let step = step_ms(&args.step)?;
    let r = emberlens_promql::range_query(&db, &Default::default(), &args.expr, start, end, step);
    emit(&format!("{}\n", emberlens_promql::api::response_json(&r)))?;
    Ok(r.is_ok())
}

#[derive(clap::Args, Debug)]
struct PromqltestArgs {
    /// Test files (`load`, `eval`, `expect` …).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Cases expected to fail, one `<file name>:<eval line>  <reason>` per line.
    #[arg(long = "known-failures")]
    known_failures: Option<PathBuf>,
    /// Print every failure with its reason.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Subcommand, Debug)]
enum TsdbCommand {
    /// List the blocks of a data or snapshot directory (like `promtool tsdb list`).
    #[command(alias = "list")]
    Ls {
        /// Data directory, snapshot directory, one block, or a .tar / .tar.gz of one.
        dir: PathBuf,
        /// Print human readable values.
        #[arg(short = 'r', long = "human-readable")]
        human: bool,
    },
    /// Print every sample (like `promtool tsdb dump`): `{labels} value timestamp_ms`.
    Dump {
        /// Data directory, snapshot directory, one block, or a .tar / .tar.gz of one.
        dir: PathBuf,
        /// Series selector, e.g. `up{job="node"}`.
        #[arg(long = "match")]
        selector: Option<String>,
        /// Minimum timestamp to dump: milliseconds (as promtool) or RFC 3339.
        #[arg(long = "min-time", allow_hyphen_values = true)]
        min_time: Option<String>,
        /// Maximum timestamp to dump: milliseconds (as promtool) or RFC 3339.
        #[arg(long = "max-time", allow_hyphen_values = true)]
        max_time: Option<String>,
    },
}

#[derive(clap::Args, Debug, Clone)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long = "web.listen-address", default_value = "127.0.0.1:9190")]
    listen_address: String,
    /// Base path for metrics storage.
    #[arg(long = "storage.tsdb.path", default_value = "data")]
    tsdb_path: PathBuf,
    /// How long to retain samples in storage (a Prometheus duration).
    #[arg(long = "storage.tsdb.retention.time", default_value = "15d")]
    retention: String,
    /// Maximum bytes of storage blocks + WAL (e.g. 512MB, 10GB; 0 = no
    /// limit); the oldest blocks are deleted first.
    #[arg(long = "storage.tsdb.retention.size", default_value = "0")]
    retention_size: String,
    /// Range of the blocks cut from the head (Prometheus's hidden flag; 2h).
    #[arg(long = "storage.tsdb.min-block-duration", default_value = "2h")]
    min_block_duration: String,
    /// Largest block compaction makes (default: 10% of the retention time,
    /// at most 31d).
    #[arg(long = "storage.tsdb.max-block-duration")]
    max_block_duration: Option<String>,
    /// How often the WAL is fsynced. Commits reach the OS before they are
    /// acknowledged either way; this bounds what a machine crash can lose.
    #[arg(long = "storage.tsdb.wal-fsync-interval", default_value = "1s")]
    wal_fsync_interval: String,
    /// Folder holding the built app (trunk's output).
    #[arg(long = "web.ui-path", default_value = "app/dist")]
    ui_path: PathBuf,
    /// Prometheus configuration file (the prometheus.yml subset Emberlens
    /// reads). Without it an embedded default scrapes Emberlens itself.
    /// Re-read on SIGHUP and on `POST /-/reload`.
    #[arg(long = "config.file", value_name = "PATH")]
    config_file: Option<PathBuf>,
    /// Scrape interval of the embedded default config and of --scrape.target
    /// targets (a Prometheus duration).
    #[arg(long = "scrape.interval", default_value = "5s")]
    scrape_interval: String,
    /// Also scrape this target, as JOB=URL (repeatable), besides the
    /// configuration's targets.
    #[arg(long = "scrape.target", value_name = "JOB=URL")]
    targets: Vec<String>,
    /// Serve the app cross-origin isolated (Cross-Origin-Opener-Policy and
    /// -Embedder-Policy headers), which lets it stop a query running in its
    /// worker at once; with false it restarts the worker instead.
    #[arg(
        long = "web.cross-origin-isolation",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    cross_origin_isolation: bool,
    /// File holding the token that the admin (`/api/v1/admin/*`), remote
    /// write (`/api/v1/write`) and reload (`/-/reload`) endpoints require as
    /// `Authorization: Bearer <token>`. Without it, the EMBERLENS_TOKEN
    /// environment variable; without either, those endpoints answer only
    /// when listening on a loopback address.
    #[arg(long = "web.auth-token-file", value_name = "FILE")]
    auth_token_file: Option<PathBuf>,
    /// Largest request body accepted, in bytes (413 beyond).
    #[arg(long = "web.max-request-body-bytes", default_value_t = emberlens_server::security::DEFAULT_MAX_BODY_BYTES)]
    max_request_body_bytes: usize,
    /// Regex for CORS origin allowed to read /api/v1/*; anchored at both
    /// ends (Prometheus's flag and default).
    #[arg(long = "web.cors.origin", default_value = emberlens_server::security::DEFAULT_CORS_ORIGIN)]
    cors_origin: String,
    /// Accept remote write requests on /api/v1/write (Prometheus's flag).
    #[arg(long = "web.enable-remote-write-receiver")]
    enable_remote_write_receiver: bool,
    /// Most samples one remote read query may return (SAMPLES answers); 0 for no limit.
    #[arg(
        long = "storage.remote.read-sample-limit",
        default_value_t = 50_000_000
    )]
    remote_read_sample_limit: usize,
    /// Most remote reads served at once; 0 for no limit.
    #[arg(long = "storage.remote.read-concurrent-limit", default_value_t = 10)]
    remote_read_concurrent_limit: usize,
    /// Bytes at which a streamed remote read frame is closed.
    #[arg(
        long = "storage.remote.read-max-bytes-in-frame",
        default_value_t = 1_048_576
    )]
    remote_read_max_bytes_in_frame: usize,
}

/// The token from `--web.auth-token-file`, else from `EMBERLENS_TOKEN`
/// (unset or empty: none).
fn auth_token(
    file: Option<&std::path::Path>,
) -> anyhow::Result<Option<emberlens_server::security::AuthToken>> {
    use emberlens_server::security::{AuthToken, TOKEN_ENV};
    if let Some(path) = file {
        return Ok(Some(AuthToken::from_file(path)?));
    }
    match std::env::var(TOKEN_ENV) {
        Ok(t) if !t.trim().is_empty() => Ok(Some(AuthToken::new(&t, TOKEN_ENV)?)),
        _ => Ok(None),
    }
}

fn duration(flag: &str, text: &str) -> anyhow::Result<Duration> {
    let ms = emberlens_model::parse_duration_ms(text).with_context(|| format!("--{flag}"))?;
    Ok(Duration::from_millis(ms.max(0) as u64))
}

/// A byte size as Prometheus's flags take it: a number with an optional
/// unit B, KB, MB, GB, TB, PB, EB (powers of 1024, as Prometheus's `units`).
fn bytes(flag: &str, text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .with_context(|| format!("--{flag} {text:?}: expected a number and a unit like 512MB"))?;
    let mult: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        "PB" => 1 << 50,
        "EB" => 1 << 60,
        _ => anyhow::bail!("--{flag} {text:?}: unknown unit {unit:?} (B, KB, MB, GB, TB, PB, EB)"),
    };
    n.checked_mul(mult)
        .with_context(|| format!("--{flag} {text:?}: too large"))
}

/// A `--min-time`/`--max-time` value: integer milliseconds, or RFC 3339.
fn millis(flag: &str, text: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    if text.contains('T') {
        return emberlens_model::parse_time_ms(text).with_context(|| format!("--{flag}"));
    }
    anyhow::bail!("--{flag} {text:?}: expected milliseconds since the epoch or an RFC 3339 time")
}

fn open_db(
    dir: &std::path::Path,
) -> anyhow::Result<emberlens_tsdb::Db<emberlens_server::fileset::AnyFile>> {
    let fs = emberlens_server::fileset::AnyFileSet::open(dir)?;
    let db = emberlens_tsdb::Db::open(&fs)?;
    if db.blocks().is_empty() {
        anyhow::bail!("{}: no blocks (no */meta.json)", dir.display());
    }
    Ok(db)
}

fn run_tsdb(cmd: TsdbCommand) -> anyhow::Result<()> {
    use std::io::Write as _;
    match cmd {
        TsdbCommand::Ls { dir, human } => {
            let db = open_db(&dir)?;
            emit(&emberlens_server::tsdb_cli::list(&db, human))?;
        }
        TsdbCommand::Dump {
            dir,
            selector,
            min_time,
            max_time,
        } => {
            let db = open_db(&dir)?;
            let matchers = match selector {
                Some(s) => emberlens_model::parse_selector(&s).context("--match")?,
                None => Vec::new(),
            };
            let min_t = min_time
                .map(|t| millis("min-time", &t))
                .transpose()?
                .unwrap_or(i64::MIN);
            let max_t = max_time
                .map(|t| millis("max-time", &t))
                .transpose()?
                .unwrap_or(i64::MAX);
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let r = emberlens_server::tsdb_cli::dump(&db, &matchers, min_t, max_t, &mut out)
                .map_err(anyhow::Error::from)
                .and_then(|()| out.flush().map_err(anyhow::Error::from));
            // A reader that went away (`| head`) wanted no more.
            if let Err(e) = r
                && !e.chain().any(|c| {
                    c.downcast_ref::<std::io::Error>()
                        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
                })
            {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// `emberlens promqltest`: returns whether the run matched expectations.
fn run_promqltest(args: PromqltestArgs) -> anyhow::Result<bool> {
    use emberlens_promql::promqltest::suite::{parse_known, run_suite};
    let mut files = Vec::new();
    for p in &args.files {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string());
        files.push((name, text));
    }
    let known = match &args.known_failures {
        Some(p) => parse_known(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        ),
        None => Default::default(),
    };
    let outcome = run_suite(&files, &known);
    emit(&format!("{}\n", outcome.render(args.verbose)))?;
    Ok(outcome.ok())
}

/// Resolves on SIGTERM.
async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(a)) => *a,
        Some(Command::Tsdb(cmd)) => return run_tsdb(cmd),
        Some(Command::Query(a)) => {
            if !run_query(a)? {
                std::process::exit(1);
            }
            return Ok(());
        }
        Some(Command::QueryRange(a)) => {
            if !run_query_range(a)? {
                std::process::exit(1);
            }
            return Ok(());
        }
        Some(Command::Profile(a)) => return emit(&profile_cli::run(&a)?),
        Some(Command::Promqltest(a)) => {
            if !run_promqltest(a)? {
                std::process::exit(1);
            }
            return Ok(());
        }
        None => cli.serve,
    };
    let scrape_interval = duration("scrape.interval", &args.scrape_interval)?;
    if scrape_interval.is_zero() {
        anyhow::bail!("--scrape.interval must be greater than 0");
    }
    let mut extra_targets = Vec::new();
    for t in &args.targets {
        let (job, url) = t
            .split_once('=')
            .with_context(|| format!("--scrape.target {t:?}: expected JOB=URL"))?;
        extra_targets.push((job.to_string(), url.to_string()));
    }
    let retention_ms = duration("storage.tsdb.retention.time", &args.retention)?.as_millis() as i64;
    let block_range_ms =
        duration("storage.tsdb.min-block-duration", &args.min_block_duration)?.as_millis() as i64;
    if block_range_ms <= 0 {
        anyhow::bail!("--storage.tsdb.min-block-duration must be greater than 0");
    }
    let max_block_ms = match &args.max_block_duration {
        Some(d) => duration("storage.tsdb.max-block-duration", d)?.as_millis() as i64,
        None => emberlens_server::store::default_max_block(retention_ms, block_range_ms),
    };
    let tsdb = emberlens_server::store::TsdbOptions {
        block_range_ms,
        max_block_ms: max_block_ms.max(block_range_ms),
        retention_ms: if retention_ms > 0 {
            retention_ms
        } else {
            i64::MAX / 2
        },
        retention_bytes: bytes("storage.tsdb.retention.size", &args.retention_size)?,
        wal_fsync: duration("storage.tsdb.wal-fsync-interval", &args.wal_fsync_interval)?,
        ..Default::default()
    };
    let opts = ServeOptions {
        data_dir: args.tsdb_path,
        ui_dir: args.ui_path,
        tsdb,
        config_file: args.config_file,
        scrape_interval,
        extra_targets,
        cross_origin_isolation: args.cross_origin_isolation,
        auth_token: auth_token(args.auth_token_file.as_deref())?,
        max_request_body_bytes: args.max_request_body_bytes,
        cors_origin: args.cors_origin,
        enable_remote_write_receiver: args.enable_remote_write_receiver,
        remote_read_sample_limit: args.remote_read_sample_limit,
        remote_read_concurrent_limit: args.remote_read_concurrent_limit,
        remote_read_max_bytes_in_frame: args.remote_read_max_bytes_in_frame,
    };
    let listener = tokio::net::TcpListener::bind(&args.listen_address)
        .await
        .with_context(|| format!("listening on {}", args.listen_address))?;
    let running = serve(listener, opts).await.context("starting the server")?;
    let scrape = running.state.scrape.clone();
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            match scrape.reload().await {
                Ok(()) => tracing::info!("configuration reloaded (SIGHUP)"),
                Err(e) => {
                    tracing::error!(error = %e, "reloading the configuration failed; the old one keeps running")
                }
            }
        }
    });
    // Printed once SIGHUP is handled (its default action would kill us).
    // stdout carries exactly this line, so scripts and tests can find the port.
    println!("Emberlens listening on http://{}/", running.addr);
    tokio::select! {
        r = running.server => {
            r.context("server task")?.context("serving HTTP")?;
        }
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("interrupted, shutting down");
        }
        _ = terminate() => {
            tracing::info!("terminated, shutting down");
        }
    }
    // Pad and fsync the WAL's last page, as Prometheus does on shutdown.
    if let Err(e) = running.state.store.close() {
        tracing::error!(error = %e, "closing the WAL");
    }
    Ok(())
}
