//! The scrape manager: holds the loaded configuration and one scrape loop
//! per target, and applies a new configuration on reload (SIGHUP or
//! `POST /-/reload`).
//!
//! A reload re-reads the config file; a file that does not read or parse is
//! refused with the error and the running configuration stays as it was.
//! Otherwise the new targets are compared with the running ones: a loop
//! whose target is unchanged (same pool, labels, URL and scrape settings)
//! keeps running untouched, a removed or changed one is stopped (its series
//! get staleness markers), and a new one starts. Reloads are serialised.
//!
//! A target's profile loops ([`crate::profiles::scrape`]) belong to its
//! metrics loop: they start with it and stop when it is dropped. The
//! target's `profiling_config` is part of [`Target`], so changing it
//! restarts the target's loops like any other scrape setting.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use emberlens_config::{Config, ConfigError};

use crate::metrics::Metrics;
use crate::profiles::scrape::{ProfileLoops, ProfileScraping};
use crate::remote_write::{RemoteWrite, TeeStore};
use crate::scrape::{self, LastScrape, Target, TargetHealth};
use crate::store::Tsdb;
use crate::targets::{self, DroppedTarget, FileSdSignature, TargetSet};

/// The embedded default configuration (see `default_config.yml`).
const DEFAULT_CONFIG: &str = include_str!("default_config.yml");

/// Where the configuration comes from.
#[derive(Clone, Debug)]
pub enum ConfigSource {
    /// `--config.file`: read at start-up and on each reload.
    File(PathBuf),
    /// The embedded default, scraping the server at `listen` every `interval`.
    Default {
        /// The server's bound address.
        listen: String,
        /// `--scrape.interval`.
        interval: Duration,
    },
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file does not read.
    #[error("couldn't load configuration (--config.file={path}): {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not parse or validate.
    #[error("couldn't load configuration (--config.file={path}): {source}")]
    Parse {
        /// The file (or `<default>`).
        path: String,
        /// Why.
        source: ConfigError,
    },
}

/// The embedded default configuration's text for `listen` and `interval`.
///
/// With an interval of 2 s or more it also profiles Emberlens's own CPU
/// (`/debug/pprof/profile?seconds=N`) at that interval, N being 2 s less
/// than the interval (at least 1 s, at most Alloy's 14 s): the config
/// requires the delta duration below the interval, and the margin leaves
/// time to encode and store each profile. Shorter intervals (tests use
/// 200 ms) leave no room for a delta profile, so none is configured.
pub fn default_config_text(listen: &str, interval: Duration) -> String {
    let interval_ms = interval.as_millis() as i64;
    let profiling = if interval_ms >= 2_000 {
        let delta_ms =
            (interval_ms - 2_000).clamp(1_000, emberlens_config::defaults::DELTA_PROFILING_MS);
        format!(
            "    profiling_config:\n      delta_profiling_duration: {}\n      pprof_config:\n        process_cpu: {{enabled: true}}\n        memory: {{enabled: false}}\n        goroutine: {{enabled: false}}\n        mutex: {{enabled: false}}\n        block: {{enabled: false}}\n",
            emberlens_model::format_duration_ms(delta_ms)
        )
    } else {
        String::new()
    };
    DEFAULT_CONFIG
        .replace("{{LISTEN}}", listen)
        .replace(
            "{{INTERVAL}}",
            &emberlens_model::format_duration_ms(interval_ms),
        )
        .replace("{{PROFILING}}\n", &profiling)
}

impl ConfigSource {
    /// Reads and parses the configuration: its text, the parsed config and
    /// the directory relative paths in it are resolved against.
    pub async fn load(&self) -> Result<(String, Config, PathBuf), LoadError> {
        let (path, text, dir) = match self {
            ConfigSource::File(path) => {
                let text =
                    tokio::fs::read_to_string(path)
                        .await
                        .map_err(|source| LoadError::Read {
                            path: path.display().to_string(),
                            source,
                        })?;
                let dir = path
                    .parent()
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
                (path.display().to_string(), text, dir)
            }
            ConfigSource::Default { listen, interval } => (
                "<default>".to_string(),
                default_config_text(listen, *interval),
                PathBuf::from("."),
            ),
        };
        let cfg = Config::parse(&text).map_err(|source| LoadError::Parse { path, source })?;
        for section in &cfg.ignored {
            tracing::warn!(section = %section, "configuration section not acted on");
        }
        Ok((text, cfg, dir))
    }
}

/// One running scrape loop.
#[derive(Debug)]
struct Loop {
    target: Arc<Target>,
    last: LastScrape,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The target's profile loops (`profiling_config`), stopped with it.
    _profiles: Option<ProfileLoops>,
}

impl Drop for Loop {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[derive(Debug, Default)]
struct State {
    yaml: String,
    /// The loaded config and its directory (for file-SD refreshes).
    config: Option<Arc<(Config, PathBuf)>>,
    /// Its file-SD files as last read ([`targets::file_sd_signature`]).
    file_sd: FileSdSignature,
    loops: Vec<Loop>,
    dropped: Vec<DroppedTarget>,
}

/// One active target as `/api/v1/targets` shows it.
#[derive(Clone, Debug)]
pub struct ActiveTarget {
    /// The target.
    pub target: Arc<Target>,
    /// Its latest scrape, if any.
    pub last: Option<(i64, scrape::ScrapeReport)>,
}

/// Owns the configuration and the scrape loops.
#[derive(Debug)]
pub struct ScrapeManager {
    source: ConfigSource,
    /// `--scrape.target` targets, scraped besides the configuration's.
    extra_targets: Vec<Target>,
    client: reqwest::Client,
    store: Arc<Tsdb>,
    metrics: Arc<Metrics>,
    health: TargetHealth,
    reload_lock: tokio::sync::Mutex<()>,
    state: Mutex<State>,
    /// Where profile loops store; `None`: `profiling_config` is not acted on.
    profiles: Option<ProfileScraping>,
    /// Whether the last (re)load succeeded, and when it was tried (Unix ms).
    last_reload: Mutex<(bool, i64)>,
    /// Remote write, when the server runs it (set once, before the first reload).
    remote_write: std::sync::OnceLock<Arc<RemoteWrite>>,
}

impl ScrapeManager {
    /// A manager with nothing running; call [`ScrapeManager::reload`] to start.
    pub fn new(
        source: ConfigSource,
        extra_targets: Vec<Target>,
        client: reqwest::Client,
        store: Arc<Tsdb>,
        metrics: Arc<Metrics>,
        health: TargetHealth,
    ) -> Self {
        ScrapeManager {
            source,
            extra_targets,
            client,
            store,
            metrics,
            health,
            reload_lock: tokio::sync::Mutex::new(()),
            state: Mutex::new(State::default()),
            profiles: None,
            last_reload: Mutex::new((false, 0)),
            remote_write: std::sync::OnceLock::new(),
        }
    }

    /// Scrapes the profile endpoints of targets whose scrape config has
    /// `profiling_config` (one loop per target and endpoint, started and
    /// stopped with the target's metrics loop).
    pub fn with_profiles(mut self, profiles: ProfileScraping) -> Self {
        self.profiles = Some(profiles);
        self
    }

    /// Hands committed scrape samples to `rw` from now on, and applies each
    /// loaded configuration's `remote_write` section to it. Set once.
    pub fn set_remote_write(&self, rw: Arc<RemoteWrite>) {
        let _ = self.remote_write.set(rw);
    }

    /// The remote-write fan-out, when set.
    pub fn remote_write(&self) -> Option<Arc<RemoteWrite>> {
        self.remote_write.get().cloned()
    }

    /// (Re)loads the configuration and applies it; on error nothing changes.
    pub async fn reload(&self) -> Result<(), LoadError> {
        let _serial = self.reload_lock.lock().await;
        let loaded = self.source.load().await;
        if let Ok(mut last) = self.last_reload.lock() {
            *last = (loaded.is_ok(), scrape::now_ms());
        }
        let (yaml, cfg, dir) = loaded?;
        if let Some(rw) = self.remote_write.get() {
            rw.apply(&cfg, &dir).await;
        }
        self.rebuild(yaml, Arc::new((cfg, dir))).await;
        Ok(())
    }

    /// Whether the last (re)load succeeded and when it ran (Unix ms), for
    /// `/api/v1/status/runtimeinfo`.
    pub fn reload_status(&self) -> (bool, i64) {
        self.last_reload.lock().map_or((false, 0), |l| *l)
    }

    /// Builds the targets of `loaded` (reading file-SD files) and applies them.
    async fn rebuild(&self, yaml: String, loaded: Arc<(Config, PathBuf)>) {
        let build = loaded.clone();
        // The signature is taken first: a change while building is seen next time.
        let (sig, set) = tokio::task::spawn_blocking(move || {
            let sig = targets::file_sd_signature(&build.0, &build.1);
            (sig, targets::build(&build.0, &build.1))
        })
        .await
        .unwrap_or_default();
        let TargetSet {
            mut active,
            dropped,
        } = set;
        active.extend(self.extra_targets.iter().cloned());
        self.apply(yaml, loaded, sig, active, dropped);
    }

    /// Watches the loaded config's file-SD files (polling their modification
    /// time and length every `every`) and rebuilds the targets when one
    /// changes. Ends when the manager is dropped.
    pub fn watch_file_sd(self: &Arc<Self>, every: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(me) = weak.upgrade() else { return };
                let _serial = me.reload_lock.lock().await;
                let Some((yaml, loaded, old)) = me
                    .state
                    .lock()
                    .ok()
                    .and_then(|s| Some((s.yaml.clone(), s.config.clone()?, s.file_sd.clone())))
                else {
                    continue;
                };
                if old.is_empty() {
                    continue;
                }
                let check = loaded.clone();
                let Ok(now) = tokio::task::spawn_blocking(move || {
                    targets::file_sd_signature(&check.0, &check.1)
                })
                .await
                else {
                    continue;
                };
                if now != old {
                    tracing::info!("file-SD files changed; rebuilding targets");
                    me.rebuild(yaml, loaded).await;
                }
            }
        });
    }

    fn apply(
        &self,
        yaml: String,
        loaded: Arc<(Config, PathBuf)>,
        file_sd: FileSdSignature,
        active: Vec<Target>,
        dropped: Vec<DroppedTarget>,
    ) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.config = Some(loaded);
        state.file_sd = file_sd;
        let mut old: HashMap<(String, String, String), Vec<Loop>> = HashMap::new();
        for l in std::mem::take(&mut state.loops) {
            old.entry(key(&l.target)).or_default().push(l);
        }
        let (mut kept, mut started) = (0usize, 0usize);
        let mut loops: Vec<Loop> = Vec::with_capacity(active.len());
        for target in active {
            let k = key(&target);
            // Prometheus keeps one target per distinct label set in a pool.
            if loops.iter().any(|l| key(&l.target) == k) {
                continue;
            }
            let reuse = old.get_mut(&k).and_then(|ls| {
                let i = ls.iter().position(|l| *l.target == target)?;
                Some(ls.swap_remove(i))
            });
            match reuse {
                Some(l) => {
                    kept += 1;
                    loops.push(l);
                }
                None => {
                    started += 1;
                    loops.push(self.start(target));
                }
            }
        }
        let stopped: usize = old.values().map(Vec::len).sum();
        // Dropping the old loops stops them (they write staleness markers).
        drop(old);
        state.loops = loops;
        state.dropped = dropped;
        state.yaml = yaml;
        tracing::info!(
            kept,
            started,
            stopped,
            dropped = state.dropped.len(),
            "configuration loaded"
        );
    }

    fn start(&self, target: Target) -> Loop {
        let target = Arc::new(target);
        let last = LastScrape::default();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let client = scrape::client_for(&self.client, &target);
        let profiles = self
            .profiles
            .as_ref()
            .and_then(|p| p.start(&client, &target));
        tokio::spawn(scrape::run_loop(
            client,
            target.clone(),
            Arc::new(TeeStore::new(self.store.clone(), self.remote_write())),
            self.metrics.clone(),
            self.health.clone(),
            last.clone(),
            stopped,
        ));
        Loop {
            target,
            last,
            stop: Some(stop),
            _profiles: profiles,
        }
    }

    /// The loaded configuration's `global.external_labels`.
    pub fn external_labels(&self) -> emberlens_model::Labels {
        self.state
            .lock()
            .ok()
            .and_then(|s| Some(s.config.as_ref()?.0.global.external_labels.clone()))
            .unwrap_or_default()
    }

    /// The loaded configuration's YAML, secrets shown as `<secret>`.
    pub fn yaml(&self) -> String {
        let text = self
            .state
            .lock()
            .map(|s| s.yaml.clone())
            .unwrap_or_default();
        emberlens_config::redact_secrets(&text).unwrap_or_default()
    }

    /// The running targets with their latest scrape, and the dropped ones.
    pub fn targets(&self) -> (Vec<ActiveTarget>, Vec<DroppedTarget>) {
        let Ok(state) = self.state.lock() else {
            return (Vec::new(), Vec::new());
        };
        let active = state
            .loops
            .iter()
            .map(|l| ActiveTarget {
                target: l.target.clone(),
                last: l.last.read().ok().and_then(|r| r.clone()),
            })
            .collect();
        (active, state.dropped.clone())
    }

    /// Stops every loop (their series get staleness markers).
    pub fn stop_all(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.loops.clear();
        }
    }
}

fn key(t: &Target) -> (String, String, String) {
    (t.pool.clone(), t.labels.to_string(), t.url.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_profiles_itself_when_the_interval_allows() {
        for (secs_ms, delta) in [
            (5_000, Some(3_000)),
            (2_000, Some(1_000)),
            (60_000, Some(14_000)),
            (200, None),
        ] {
            let text = default_config_text("127.0.0.1:9190", Duration::from_millis(secs_ms));
            let cfg = Config::parse(&text).unwrap_or_else(|e| panic!("{secs_ms} ms: {e}\n{text}"));
            let sc = &cfg.scrape_configs[0];
            match delta {
                Some(d) => {
                    let p = sc.profiling.as_ref().unwrap();
                    assert_eq!(p.delta_profiling_ms, d, "{text}");
                    let names: Vec<&str> = p.endpoints.iter().map(|e| e.name.as_str()).collect();
                    assert_eq!(names, ["process_cpu"]);
                    assert_eq!(
                        p.endpoints[0].path_and_query(d),
                        format!("/debug/pprof/profile?seconds={}", d / 1000)
                    );
                }
                None => assert!(sc.profiling.is_none(), "{text}"),
            }
        }
    }
}
