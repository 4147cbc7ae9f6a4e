//! Emberlens's own metrics, exposed on `/metrics` with `prometheus-client`.
//!
//! Families (names are part of the contract: dashboards and the default
//! self-scrape use them):
//! - `emberlens_http_requests_total{path, status}`: requests served, by the
//!   route template (`/api/v1/raw`, not the raw URL, to bound cardinality;
//!   static files count as `/ui`) and status code.
//! - `emberlens_scrape_duration_seconds{job}`: histogram of scrape durations.
//! - `emberlens_samples_appended_total`: samples committed to storage.
//! - `emberlens_remote_storage_samples{,_in,_failed,_retried,_dropped}_total{remote_name, url}`:
//!   remote write, as Prometheus's `prometheus_remote_storage_*` counters.
//! - `emberlens_remote_read_queries_total{response_type}`: remote read
//!   queries answered (`samples` or `streamed_xor_chunks`).
//! - `emberlens_remote_write_received_samples_total`: samples the remote
//!   write receiver appended.
//! - `process_*`: CPU seconds, resident and virtual memory, open fds, start
//!   time, read from `/proc/self` on Linux (nothing elsewhere).
//! - `emberlens_profile_scrapes_total{job, type}` and
//!   `emberlens_profile_scrapes_failed_total{job, type}`: profile scrapes
//!   stored and failed, by job and profile type; `emberlens_profiles_stored`,
//!   `emberlens_profiles_stored_bytes` and
//!   `emberlens_profiles_retention_deleted_total` from the profile store.
//! - `emberlens_tsdb_*`: the store (head series, chunks and bytes, samples
//!   appended and refused, blocks and their bytes, WAL bytes, cuts,
//!   compactions, checkpoints, retention deletions, WAL failures and
//!   corruptions), read from the store at scrape time.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `emberlens_http_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// Route template.
    pub path: String,
    /// HTTP status code.
    pub status: u16,
}

/// Labels of per-job scrape metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// Scrape job name.
    pub job: String,
}

/// Labels of per-profile-type scrape metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProfileLabels {
    /// Scrape job name.
    pub job: String,
    /// Profile type name (`process_cpu`, …).
    pub r#type: String,
}

/// Labels of the remote-write metrics (Prometheus's).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RemoteLabels {
    /// The endpoint's `name`, or its queue directory's name.
    pub remote_name: String,
    /// The endpoint's URL.
    pub url: String,
}

/// Labels of `emberlens_remote_read_queries_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadLabels {
    /// `samples` or `streamed_xor_chunks`.
    pub response_type: String,
}

/// The registry and handles to the metrics the server updates.
#[derive(Debug)]
pub struct Metrics {
    /// What `/metrics` encodes.
    pub registry: Registry,
    /// Requests by route and status.
    pub http_requests: Family<HttpLabels, Counter>,
    /// Scrape durations by job.
    pub scrape_duration: Family<JobLabels, Histogram>,
    /// Samples committed to storage.
    pub samples_appended: Counter,
    /// Profiles scraped and stored, by job and type.
    pub profile_scrapes: Family<ProfileLabels, Counter>,
    /// Profile scrapes that failed, by job and type.
    pub profile_scrape_failures: Family<ProfileLabels, Counter>,
    /// Remote write: samples delivered.
    pub remote_samples: Family<RemoteLabels, Counter>,
    /// Remote write: samples queued.
    pub remote_samples_in: Family<RemoteLabels, Counter>,
    /// Remote write: samples dropped after a non-recoverable error.
    pub remote_samples_failed: Family<RemoteLabels, Counter>,
    /// Remote write: samples in requests that were retried.
    pub remote_samples_retried: Family<RemoteLabels, Counter>,
    /// Remote write: samples dropped by `write_relabel_configs`.
    pub remote_samples_dropped: Family<RemoteLabels, Counter>,
    /// Remote read queries answered, by response type.
    pub remote_read_queries: Family<ReadLabels, Counter>,
    /// Samples received by the remote write receiver and appended.
    pub remote_write_received: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every family and the store's collector.
    pub fn with_store(store: &std::sync::Arc<crate::store::Tsdb>) -> Self {
        let mut m = Self::new();
        m.registry
            .register_collector(Box::new(TsdbCollector(std::sync::Arc::downgrade(store))));
        m
    }

    /// Registers every family, including the process collector.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "emberlens_http_requests",
            "HTTP requests served, by route and status code",
            http_requests.clone(),
        );
        let scrape_duration = Family::<JobLabels, Histogram>::new_with_constructor(|| {
            // 1 ms .. ~16 s: loopback scrapes take milliseconds, slow targets seconds.
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        registry.register(
            "emberlens_scrape_duration_seconds",
            "Duration of scrapes, by job",
            scrape_duration.clone(),
        );
        let samples_appended = Counter::default();
        registry.register(
            "emberlens_samples_appended",
            "Samples committed to storage",
            samples_appended.clone(),
        );
        let profile_scrapes = Family::<ProfileLabels, Counter>::default();
        registry.register(
            "emberlens_profile_scrapes",
            "Profiles scraped and stored, by job and profile type",
            profile_scrapes.clone(),
        );
        let profile_scrape_failures = Family::<ProfileLabels, Counter>::default();
        registry.register(
            "emberlens_profile_scrapes_failed",
            "Profile scrapes that failed (fetch, status, size, or not pprof), by job and profile type",
            profile_scrape_failures.clone(),
        );
        let remote = |registry: &mut Registry, name: &str, help: &str| {
            let f = Family::<RemoteLabels, Counter>::default();
            registry.register(name, help, f.clone());
            f
        };
        let remote_samples = remote(
            &mut registry,
            "emberlens_remote_storage_samples",
            "Samples sent to remote storage and acknowledged",
        );
        let remote_samples_in = remote(
            &mut registry,
            "emberlens_remote_storage_samples_in",
            "Samples queued for remote storage",
        );
        let remote_samples_failed = remote(
            &mut registry,
            "emberlens_remote_storage_samples_failed",
            "Samples dropped after a non-recoverable remote write error",
        );
        let remote_samples_retried = remote(
            &mut registry,
            "emberlens_remote_storage_samples_retried",
            "Samples in remote write requests that failed and were retried",
        );
        let remote_samples_dropped = remote(
            &mut registry,
            "emberlens_remote_storage_samples_dropped",
            "Samples dropped by write_relabel_configs",
        );
        let remote_read_queries = Family::<ReadLabels, Counter>::default();
        registry.register(
            "emberlens_remote_read_queries",
            "Remote read queries answered, by response type",
            remote_read_queries.clone(),
        );
        let remote_write_received = Counter::default();
        registry.register(
            "emberlens_remote_write_received_samples",
            "Samples appended by the remote write receiver",
            remote_write_received.clone(),
        );
        registry.register_collector(Box::new(ProcessCollector));
        Metrics {
            registry,
            http_requests,
            scrape_duration,
            samples_appended,
            profile_scrapes,
            profile_scrape_failures,
            remote_samples,
            remote_samples_in,
            remote_samples_failed,
            remote_samples_retried,
            remote_samples_dropped,
            remote_read_queries,
            remote_write_received,
        }
    }

    /// Adds the profile store's gauges (read at scrape time).
    pub fn register_profile_store(
        &mut self,
        store: &std::sync::Arc<crate::profiles::store::ProfileStore>,
    ) {
        self.registry
            .register_collector(Box::new(ProfileStoreCollector(std::sync::Arc::downgrade(
                store,
            ))));
    }

    /// The OpenMetrics text of every registered metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// The standard `process_*` metrics, read at scrape time.
#[derive(Debug)]
struct ProcessCollector;

/// What `/proc/self` told us; every field is optional because any read may fail.
#[derive(Debug, Default, PartialEq)]
struct ProcessStats {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<i64>,
    virtual_bytes: Option<i64>,
    open_fds: Option<i64>,
    start_time_seconds: Option<f64>,
}

/// `USER_HZ`: the unit of the tick counts in `/proc/self/stat`. It is 100 on
/// every Linux architecture we build for (the kernel fixes it for userspace);
/// Prometheus's procfs library makes the same assumption.
const USER_HZ: f64 = 100.0;

impl ProcessStats {
    #[cfg(target_os = "linux")]
    fn read() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let boot_time = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| parse_boot_time(&s));
        let mut stats = parse_stat(&stat, boot_time);
        stats.resident_bytes = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| parse_vm_rss(&s));
        stats.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as i64);
        stats
    }

    #[cfg(not(target_os = "linux"))]
    fn read() -> Self {
        Self::default()
    }
}

/// Fields of `/proc/self/stat` after the `(comm)` field, which may hold spaces.
fn parse_stat(stat: &str, boot_time_secs: Option<f64>) -> ProcessStats {
    let Some(after_comm) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return ProcessStats::default();
    };
    // after_comm starts at field 3 (state); field n is at index n - 3.
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    let cpu_seconds = match (num(14), num(15)) {
        (Some(u), Some(s)) => Some((u + s) / USER_HZ),
        _ => None,
    };
    let start_time_seconds = match (num(22), boot_time_secs) {
        (Some(ticks), Some(boot)) => Some(boot + ticks / USER_HZ),
        _ => None,
    };
    ProcessStats {
        cpu_seconds,
        virtual_bytes: num(23).map(|v| v as i64),
        start_time_seconds,
        ..ProcessStats::default()
    }
}

fn parse_boot_time(proc_stat: &str) -> Option<f64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn parse_vm_rss(status: &str) -> Option<i64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kb: i64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kb * 1024)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = ProcessStats::read();
        if let Some(v) = stats.cpu_seconds {
            let c = ConstCounter::new(v);
            let m = encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                c.metric_type(),
            )?;
            c.encode(m)?;
        }
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                stats.resident_bytes.map(|v| v as f64),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                stats.virtual_bytes.map(|v| v as f64),
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                stats.open_fds.map(|v| v as f64),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                stats.start_time_seconds,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let g = ConstGauge::new(v);
                let m = encoder.encode_descriptor(name, help, None, g.metric_type())?;
                g.encode(m)?;
            }
        }
        Ok(())
    }
}

/// The store's counters and sizes, read at scrape time.
#[derive(Debug)]
struct TsdbCollector(std::sync::Weak<crate::store::Tsdb>);

#[derive(Debug)]
struct ProfileStoreCollector(std::sync::Weak<crate::profiles::store::ProfileStore>);

impl Collector for ProfileStoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(store) = self.0.upgrade() else {
            return Ok(());
        };
        let st = store.stats();
        for (name, help, v) in [
            (
                "emberlens_profiles_stored",
                "Profiles in the profile store",
                st.profiles,
            ),
            (
                "emberlens_profiles_stored_bytes",
                "Bytes of the stored (gzipped) profiles",
                st.bytes,
            ),
        ] {
            let g = ConstGauge::new(v as i64);
            let m = encoder.encode_descriptor(name, help, None, g.metric_type())?;
            g.encode(m)?;
        }
        let c = ConstCounter::new(st.deleted);
        let m = encoder.encode_descriptor(
            "emberlens_profiles_retention_deleted",
            "Profiles deleted by retention",
            None,
            c.metric_type(),
        )?;
        c.encode(m)
    }
}

impl Collector for TsdbCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(db) = self.0.upgrade() else {
            return Ok(());
        };
        let st = &db.stats;
        let counters = [
            (
                "emberlens_tsdb_head_samples_appended",
                "Samples appended to the head",
                &st.samples_appended,
            ),
            (
                "emberlens_tsdb_out_of_order_samples",
                "Samples refused as out of order or duplicate",
                &st.out_of_order,
            ),
            (
                "emberlens_tsdb_out_of_bounds_samples",
                "Samples refused as older than the head",
                &st.out_of_bounds,
            ),
            (
                "emberlens_tsdb_head_blocks_cut",
                "Blocks cut from the head",
                &st.head_blocks,
            ),
            (
                "emberlens_tsdb_compactions",
                "Blocks compacted into a larger block",
                &st.compactions,
            ),
            (
                "emberlens_tsdb_compactions_failed",
                "Failed block cuts, compactions or retention runs",
                &st.compaction_failures,
            ),
            (
                "emberlens_tsdb_retention_deleted_blocks",
                "Blocks deleted by time or size retention",
                &st.retention_deletions,
            ),
            (
                "emberlens_tsdb_checkpoints",
                "WAL checkpoints written",
                &st.checkpoints,
            ),
            (
                "emberlens_tsdb_wal_writes_failed",
                "Commits refused because the WAL write failed",
                &st.wal_failures,
            ),
            (
                "emberlens_tsdb_wal_corruptions",
                "Corrupt or torn WAL records found at start-up",
                &st.wal_corruptions,
            ),
            (
                "emberlens_tsdb_replay_skipped_records",
                "WAL samples or records skipped at replay (unknown series or record types)",
                &st.replay_skipped,
            ),
        ];
        for (name, help, v) in counters {
            let c = ConstCounter::new(v.load(Relaxed));
            let m = encoder.encode_descriptor(name, help, None, c.metric_type())?;
            c.encode(m)?;
        }
        let (series, chunks, chunk_bytes) = db.head().stats();
        let (min_t, max_t) = db.head().time_range();
        let blocks = db.blocks_db();
        let gauges = [
            (
                "emberlens_tsdb_head_series",
                "Series in the head",
                series as f64,
            ),
            (
                "emberlens_tsdb_head_chunks",
                "Chunks in the head",
                chunks as f64,
            ),
            (
                "emberlens_tsdb_head_chunks_bytes",
                "Compressed bytes of the head's chunks",
                chunk_bytes as f64,
            ),
            (
                "emberlens_tsdb_head_min_time",
                "Oldest sample in the head (ms since the epoch)",
                if min_t <= max_t { min_t as f64 } else { 0.0 },
            ),
            (
                "emberlens_tsdb_head_max_time",
                "Newest sample in the head (ms since the epoch)",
                if min_t <= max_t { max_t as f64 } else { 0.0 },
            ),
            (
                "emberlens_tsdb_blocks_loaded",
                "Blocks in the data directory",
                blocks.blocks().len() as f64,
            ),
            (
                "emberlens_tsdb_storage_blocks_bytes",
                "Bytes of the blocks on disk",
                blocks.blocks().iter().map(|b| b.size_bytes()).sum::<u64>() as f64,
            ),
            (
                "emberlens_tsdb_wal_storage_size_bytes",
                "Bytes of the WAL (segments and checkpoint)",
                db.wal_bytes() as f64,
            ),
        ];
        for (name, help, v) in gauges {
            let g = ConstGauge::new(v);
            let m = encoder.encode_descriptor(name, help, None, g.metric_type())?;
            g.encode(m)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_spaces_in_comm() {
        let stat = "1234 (my (weird) name) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0 8 0 5000 123456789 2000 rest";
        let s = parse_stat(stat, Some(1_700_000_000.0));
        assert_eq!(s.cpu_seconds, Some(4.0));
        assert_eq!(s.start_time_seconds, Some(1_700_000_050.0));
        assert_eq!(s.virtual_bytes, Some(123_456_789));
        assert_eq!(parse_stat("garbage", None), ProcessStats::default());
    }

    #[test]
    fn parses_rss_and_boot_time() {
        assert_eq!(
            parse_vm_rss("Name: x\nVmRSS:\t  2048 kB\n"),
            Some(2 * 1024 * 1024)
        );
        assert_eq!(
            parse_boot_time("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000.0)
        );
    }

    #[test]
    fn exposition_parses_with_our_own_parser() {
        let m = Metrics::new();
        m.samples_appended.inc_by(3);
        m.http_requests
            .get_or_create(&HttpLabels {
                path: "/metrics".into(),
                status: 200,
            })
            .inc();
        let text = m.encode().unwrap();
        let entries = emberlens_textparse::parse(&text).unwrap();
        let names: Vec<String> = entries
            .iter()
            .filter_map(|e| match e {
                emberlens_textparse::Entry::Sample(s) => Some(s.labels.to_string()),
                _ => None,
            })
            .collect();
        assert!(
            names.contains(&"emberlens_samples_appended_total".to_string()),
            "{names:?}"
        );
        assert!(names.contains(
            &r#"emberlens_http_requests_total{path="/metrics", status="200"}"#.to_string()
        ));
        #[cfg(target_os = "linux")]
        assert!(
            names.contains(&"process_resident_memory_bytes".to_string()),
            "{names:?}"
        );
    }
}
