//! `remote_write`: sends every committed sample to the configured remote
//! endpoints (Prometheus, Mimir, Thanos, VictoriaMetrics), through an
//! on-disk queue per endpoint.
//!
//! # The path of a sample
//!
//! The scrape loops and the `/api/v1/write` receiver append through a
//! [`TeeStore`]: when a batch commits, the samples the store accepted are
//! handed to [`RemoteWrite::committed`]. For each endpoint the batch gets the
//! global `external_labels` (a series' own label of the same name wins, as
//! in Prometheus) and the endpoint's `write_relabel_configs`, and is then
//! appended as one record to the endpoint's queue directory
//! `<data dir>/remote_write/<name>/` (`name` when it is a plain file name,
//! otherwise `url-<FNV-1a hash of the URL>`). A sender task per endpoint
//! reads records in order, cuts requests of at most `max_samples_per_send`
//! samples (a partial one once `batch_send_deadline` has passed since its
//! oldest record was read), and posts them as snappy-compressed
//! `WriteRequest`s with Prometheus's headers.
//!
//! # Retries
//!
//! 5xx answers, network errors and timeouts (`remote_timeout`) are retried
//! with exponential backoff from `min_backoff`, doubling up to
//! `max_backoff`, for as long as it takes; 429 too when
//! `retry_on_http_429` is set (honouring `Retry-After` in seconds), and
//! otherwise it is dropped like any other 4xx, with an error logged and the
//! samples counted in `emberlens_remote_storage_samples_failed_total`.
//! Requests are sent one at a time in queue order (one shard:
//! `max_shards`/`min_shards`/`capacity` are accepted and validated but the
//! disk queue replaces Prometheus's in-memory shard buffers).
//!
//! # Queue format and delivery guarantee
//!
//! A queue directory holds segment files `%016x.seg` and an `ack` file.
//! Each record is `len u32 BE | CRC-32C(payload) u32 BE | payload`, the
//! payload being an uncompressed `WriteRequest`. A writer appends to the
//! newest segment and starts a new one at start-up and past 16 MiB. `ack`
//! holds the position (segment, offset) of the first record not yet fully
//! delivered, with its own CRC; it is replaced atomically (write, fsync,
//! rename) after each successful (or dropped) request, and segments wholly
//! before it are deleted.
//!
//! Delivery is **at-least-once across restarts**: a record leaves the queue
//! only after every one of its samples was acknowledged by the endpoint (or
//! refused with a non-retryable 4xx). After a crash or restart the sender
//! resumes at `ack`, so the records of a request in flight, and the whole
//! record a partially sent batch came from, are sent again (receivers take
//! an identical duplicate sample without error).
//!
//! fsync policy: each record is written with one `write(2)` as its batch
//! commits, so it survives the process being killed (`kill -9`); the
//! segment is fsynced at most once a second (on the next commit after a
//! second has passed) and when a segment is closed. A power loss or kernel
//! crash can therefore lose up to about one second of queued samples, and a
//! torn record at a segment's end is detected by its length or CRC and
//! skipped with a warning. A queue larger than [`MAX_QUEUE_BYTES`] drops
//! its oldest segments (logged as an error) rather than fill the disk.
//!
//! A reload restarts the sender of every endpoint whose configuration
//! changed, or whose `tls_config` files now hold something else (same
//! directory: queued samples go to the new settings), stops
//! removed ones (their queue stays on disk for a later config naming them
//! again) and leaves unchanged ones running.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use emberlens_config::{Config, RemoteWriteConfig};
use emberlens_model::{Appendable, Appender, Labels, StorageError};
use emberlens_remote::codec::encode_write_request;
use emberlens_remote::convert::{labels_from_proto, write_request_from_samples};
use emberlens_remote::frame::CASTAGNOLI;
use emberlens_remote::prompb::WriteRequest;
use prost::Message;

use crate::metrics::{Metrics, RemoteLabels};
use crate::tls::TlsSettings;

/// Segments are closed past this size.
const SEGMENT_BYTES: u64 = 16 << 20;

/// Oldest segments are dropped when a queue grows past this.
pub const MAX_QUEUE_BYTES: u64 = 1 << 30;

/// Most bytes of an error answer's body quoted in the log (as Prometheus).
const MAX_ERROR_BODY: usize = 512;

/// How often the segment is fsynced at most.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// The `User-Agent` of remote-write requests.
pub const USER_AGENT: &str = concat!("Emberlens/", env!("CARGO_PKG_VERSION"));

/// One committed sample.
pub type Committed = (Labels, i64, f64);

// ------------------------------------------------------------------ tee

/// A store whose appenders also hand each committed batch to remote write.
/// Generic over the store, so it wraps whatever `Appendable` the server uses.
#[derive(Debug)]
pub struct TeeStore<S> {
    inner: Arc<S>,
    remote: Option<Arc<RemoteWrite>>,
}

impl<S> TeeStore<S> {
    /// Wraps `inner`; with no `remote` it only forwards.
    pub fn new(inner: Arc<S>, remote: Option<Arc<RemoteWrite>>) -> Self {
        TeeStore { inner, remote }
    }
}

impl<S: Appendable> Appendable for TeeStore<S> {
    fn appender(&self) -> impl Appender + '_ {
        TeeAppender {
            inner: self.inner.appender(),
            // With no endpoint configured, nothing is collected at all.
            remote: self.remote.as_deref().filter(|r| r.is_active()),
            batch: Vec::new(),
        }
    }
}

struct TeeAppender<'a, A> {
    inner: A,
    remote: Option<&'a RemoteWrite>,
    batch: Vec<Committed>,
}

impl<A: Appender> Appender for TeeAppender<'_, A> {
    fn append(&mut self, labels: &Labels, t_ms: i64, v: f64) -> Result<(), StorageError> {
        self.inner.append(labels, t_ms, v)?;
        if self.remote.is_some() {
            self.batch.push((labels.clone(), t_ms, v));
        }
        Ok(())
    }

    fn append_ref(
        &mut self,
        series_ref: u64,
        labels: &Labels,
        t_ms: i64,
        v: f64,
    ) -> Result<u64, StorageError> {
        let r = self.inner.append_ref(series_ref, labels, t_ms, v)?;
        if self.remote.is_some() {
            self.batch.push((labels.clone(), t_ms, v));
        }
        Ok(r)
    }

    fn commit(self) -> Result<usize, StorageError> {
        let n = self.inner.commit()?;
        if let Some(r) = self.remote
            && !self.batch.is_empty()
        {
            r.committed(&self.batch);
        }
        Ok(n)
    }
}

// ------------------------------------------------------------------ manager

/// The remote-write endpoints of the loaded configuration and their senders.
#[derive(Debug)]
pub struct RemoteWrite {
    root: PathBuf,
    metrics: Arc<Metrics>,
    queues: RwLock<Vec<Arc<Endpoint>>>,
    /// Whether any endpoint is configured (read on every appender).
    active: std::sync::atomic::AtomicBool,
    /// Serialises [`RemoteWrite::apply`].
    applying: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Endpoint {
    cfg: RemoteWriteConfig,
    /// The config file's directory: relative `*_file` paths are resolved against it.
    base_dir: PathBuf,
    /// `tls_config` with its files as read when the config was applied, or
    /// why it did not load (then nothing is sent until a reload fixes it).
    tls: Result<Option<TlsSettings>, String>,
    dir_name: String,
    external: Labels,
    labels: RemoteLabels,
    queue: Arc<DiskQueue>,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl RemoteWrite {
    /// Queues live under `<data_dir>/remote_write/`.
    pub fn new(data_dir: &Path, metrics: Arc<Metrics>) -> Self {
        RemoteWrite {
            root: data_dir.join("remote_write"),
            metrics,
            queues: RwLock::new(Vec::new()),
            active: std::sync::atomic::AtomicBool::new(false),
            applying: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether any endpoint is configured.
    pub fn is_active(&self) -> bool {
        self.active.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Applies the configuration's `remote_write` section: unchanged
    /// endpoints keep running, changed ones restart, removed ones stop.
    /// An endpoint whose queue directory cannot be opened is logged and
    /// skipped. `base_dir` (the config file's directory) resolves relative
    /// paths; `tls_config` files are read now, and an endpoint whose files
    /// changed counts as changed.
    pub async fn apply(&self, cfg: &Config, base_dir: &Path) {
        let _serial = self.applying.lock().await;
        let external = cfg.global.external_labels.clone();
        let tls: Vec<Result<Option<TlsSettings>, String>> = cfg
            .remote_write
            .iter()
            .map(|rw| TlsSettings::load(&rw.http.tls, base_dir).map_err(|e| e.to_string()))
            .collect();
        let mut stopped = Vec::new();
        let mut started = Vec::new();
        {
            let Ok(mut queues) = self.queues.write() else {
                return;
            };
            let mut old: Vec<Arc<Endpoint>> = std::mem::take(&mut *queues);
            let mut used = std::collections::HashSet::new();
            for ((i, rw), tls) in cfg.remote_write.iter().enumerate().zip(tls) {
                // Two unnamed endpoints with one URL get distinct queues.
                let mut dir_name = queue_dir_name(rw);
                if !used.insert(dir_name.clone()) {
                    dir_name = format!("{dir_name}-{i}");
                    used.insert(dir_name.clone());
                }
                if let Some(i) = old.iter().position(|e| {
                    e.cfg == *rw
                        && e.external == external
                        && e.dir_name == dir_name
                        && e.base_dir == base_dir
                        && e.tls == tls
                }) {
                    queues.push(old.swap_remove(i));
                    continue;
                }
                // A changed endpoint's old writer must be gone before the
                // new one opens the same directory: it is removed from the
                // list here, under the lock, so nothing more reaches it.
                if let Some(i) = old.iter().position(|e| e.dir_name == dir_name) {
                    stopped.push(old.swap_remove(i));
                }
                let labels = RemoteLabels {
                    remote_name: rw.name.clone().unwrap_or_else(|| dir_name.clone()),
                    url: rw.url.clone(),
                };
                match DiskQueue::open(&self.root.join(&dir_name)) {
                    Ok(queue) => {
                        let e = Arc::new(Endpoint {
                            cfg: rw.clone(),
                            base_dir: base_dir.to_path_buf(),
                            tls,
                            dir_name: dir_name.clone(),
                            external: external.clone(),
                            labels,
                            queue: Arc::new(queue),
                            stop: Mutex::new(None),
                            task: Mutex::new(None),
                        });
                        queues.push(e.clone());
                        started.push(e);
                    }
                    Err(e) => tracing::error!(
                        remote = %labels.remote_name,
                        dir = %self.root.join(&dir_name).display(),
                        error = %e,
                        "opening the remote-write queue failed; not sending to this endpoint"
                    ),
                }
            }
            stopped.extend(old);
            self.active
                .store(!queues.is_empty(), std::sync::atomic::Ordering::Relaxed);
        }
        for e in &stopped {
            e.shutdown().await;
        }
        for e in &started {
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
            let task = tokio::spawn(run_sender(e.clone(), self.metrics.clone(), stop_rx));
            if let Ok(mut s) = e.stop.lock() {
                *s = Some(stop_tx);
            }
            if let Ok(mut t) = e.task.lock() {
                *t = Some(task);
            }
        }
        if !stopped.is_empty() || !started.is_empty() {
            tracing::info!(
                started = started.len(),
                stopped = stopped.len(),
                "remote-write endpoints applied"
            );
        }
    }

    /// Queues a committed batch for every endpoint.
    pub fn committed(&self, batch: &[Committed]) {
        let Ok(queues) = self.queues.read() else {
            return;
        };
        for e in queues.iter() {
            let mut kept = Vec::with_capacity(batch.len());
            let mut dropped = 0u64;
            for (labels, t, v) in batch {
                let labels = with_external(labels, &e.external);
                let labels = if e.cfg.write_relabel_configs.is_empty() {
                    Some(labels)
                } else {
                    emberlens_config::process(&labels, &e.cfg.write_relabel_configs)
                        .filter(|l| !l.is_empty())
                };
                match labels {
                    Some(l) => kept.push((l, *t, *v)),
                    None => dropped += 1,
                }
            }
            if dropped > 0 {
                self.metrics
                    .remote_samples_dropped
                    .get_or_create(&e.labels)
                    .inc_by(dropped);
            }
            if kept.is_empty() {
                continue;
            }
            let req = write_request_from_samples(kept.iter().map(|(l, t, v)| (l, *t, *v)));
            match e.queue.append(&req.encode_to_vec()) {
                Ok(()) => {
                    self.metrics
                        .remote_samples_in
                        .get_or_create(&e.labels)
                        .inc_by(kept.len() as u64);
                }
                Err(err) => {
                    tracing::error!(remote = %e.labels.remote_name, error = %err, "queueing samples for remote write failed; they are lost for this endpoint");
                    self.metrics
                        .remote_samples_failed
                        .get_or_create(&e.labels)
                        .inc_by(kept.len() as u64);
                }
            }
        }
    }

    /// Stops every sender (their queues stay on disk).
    pub async fn shutdown(&self) {
        let all: Vec<Arc<Endpoint>> = match self.queues.write() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(_) => return,
        };
        self.active
            .store(false, std::sync::atomic::Ordering::Relaxed);
        for e in all {
            e.shutdown().await;
        }
    }
}

impl Endpoint {
    async fn shutdown(&self) {
        if let Some(stop) = self.stop.lock().ok().and_then(|mut s| s.take()) {
            let _ = stop.send(());
        }
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
        if let Err(e) = self.queue.sync() {
            tracing::warn!(remote = %self.labels.remote_name, error = %e, "syncing the remote-write queue");
        }
    }
}

/// `labels` with the external labels it lacks.
pub fn with_external(labels: &Labels, external: &Labels) -> Labels {
    if external.is_empty() {
        return labels.clone();
    }
    let mut pairs: Vec<(&str, &str)> = external
        .iter()
        .filter(|l| labels.get(&l.name).is_empty())
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    if pairs.is_empty() {
        return labels.clone();
    }
    pairs.extend(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())));
    Labels::from_pairs(pairs)
}

/// The queue directory's name: the endpoint's `name` when it is a safe file
/// name, else `url-` and a hash of the URL.
pub fn queue_dir_name(rw: &RemoteWriteConfig) -> String {
    match &rw.name {
        Some(n)
            if !n.starts_with('.')
                && n.len() <= 100
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) =>
        {
            n.clone()
        }
        _ => {
            // FNV-1a, 64 bits: stable across builds and platforms.
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in rw.url.bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            format!("url-{h:016x}")
        }
    }
}

// ------------------------------------------------------------------ disk queue

/// A position in the queue: segment number and byte offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    seg: u64,
    offset: u64,
}

#[derive(Debug)]
struct Writer {
    seg: u64,
    file: File,
    size: u64,
    last_sync: Instant,
    dirty: bool,
}

/// The segmented, checksummed record queue of one endpoint.
#[derive(Debug)]
struct DiskQueue {
    dir: PathBuf,
    writer: Mutex<Writer>,
    notify: tokio::sync::Notify,
}

fn seg_path(dir: &Path, seg: u64) -> PathBuf {
    dir.join(format!("{seg:016x}.seg"))
}

fn segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name();
        let name = name.to_string_lossy();
        if let Some(hex) = name.strip_suffix(".seg")
            && let Ok(n) = u64::from_str_radix(hex, 16)
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

impl DiskQueue {
    fn open(dir: &Path) -> std::io::Result<DiskQueue> {
        std::fs::create_dir_all(dir)?;
        let existing = segments(dir)?;
        let next = existing.last().map_or(1, |s| s + 1);
        // Segments left empty by earlier runs carry nothing.
        for s in existing {
            let p = seg_path(dir, s);
            if std::fs::metadata(&p).is_ok_and(|m| m.len() == 0) {
                std::fs::remove_file(p)?;
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(seg_path(dir, next))?;
        Ok(DiskQueue {
            dir: dir.to_path_buf(),
            writer: Mutex::new(Writer {
                seg: next,
                file,
                size: 0,
                last_sync: Instant::now(),
                dirty: false,
            }),
            notify: tokio::sync::Notify::new(),
        })
    }

    fn current_segment(&self) -> u64 {
        self.writer.lock().map_or(u64::MAX, |w| w.seg)
    }

    /// Appends one record (one `write(2)`), rotating and fsyncing as the
    /// module doc says.
    fn append(&self, payload: &[u8]) -> std::io::Result<()> {
        let len = u32::try_from(payload.len())
            .map_err(|_| std::io::Error::other("record larger than 4 GiB"))?;
        let mut rec = Vec::with_capacity(payload.len() + 8);
        rec.extend_from_slice(&len.to_be_bytes());
        rec.extend_from_slice(&CASTAGNOLI.checksum(payload).to_be_bytes());
        rec.extend_from_slice(payload);
        let mut w = self
            .writer
            .lock()
            .map_err(|_| std::io::Error::other("queue writer poisoned"))?;
        if w.size > 0 && w.size + rec.len() as u64 > SEGMENT_BYTES {
            w.file.sync_data()?;
            let seg = w.seg + 1;
            w.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(seg_path(&self.dir, seg))?;
            w.seg = seg;
            w.size = 0;
            w.dirty = false;
            self.enforce_size_cap(seg);
        }
        w.file.write_all(&rec)?;
        w.size += rec.len() as u64;
        w.dirty = true;
        if w.last_sync.elapsed() >= SYNC_EVERY {
            w.file.sync_data()?;
            w.last_sync = Instant::now();
            w.dirty = false;
        }
        drop(w);
        self.notify.notify_one();
        Ok(())
    }

    fn sync(&self) -> std::io::Result<()> {
        let mut w = self
            .writer
            .lock()
            .map_err(|_| std::io::Error::other("queue writer poisoned"))?;
        if w.dirty {
            w.file.sync_data()?;
            w.dirty = false;
            w.last_sync = Instant::now();
        }
        Ok(())
    }

    /// Deletes the oldest segments while the queue is over [`MAX_QUEUE_BYTES`].
    fn enforce_size_cap(&self, current: u64) {
        let Ok(segs) = segments(&self.dir) else {
            return;
        };
        let sizes: Vec<(u64, u64)> = segs
            .iter()
            .map(|&s| {
                (
                    s,
                    std::fs::metadata(seg_path(&self.dir, s)).map_or(0, |m| m.len()),
                )
            })
            .collect();
        let mut total: u64 = sizes.iter().map(|(_, n)| n).sum();
        for (s, n) in sizes {
            if total <= MAX_QUEUE_BYTES || s >= current {
                break;
            }
            tracing::error!(dir = %self.dir.display(), segment = s, bytes = n, "remote-write queue over its size cap; dropping its oldest segment");
            let _ = std::fs::remove_file(seg_path(&self.dir, s));
            total -= n;
        }
    }

    fn read_ack(&self) -> Option<Pos> {
        let b = std::fs::read(self.dir.join("ack")).ok()?;
        if b.len() != 20 {
            return None;
        }
        let crc = u32::from_be_bytes([b[16], b[17], b[18], b[19]]);
        if CASTAGNOLI.checksum(&b[..16]) != crc {
            return None;
        }
        let mut seg = [0u8; 8];
        let mut off = [0u8; 8];
        seg.copy_from_slice(&b[..8]);
        off.copy_from_slice(&b[8..16]);
        Some(Pos {
            seg: u64::from_be_bytes(seg),
            offset: u64::from_be_bytes(off),
        })
    }

    /// Persists `pos` atomically and deletes the segments before it.
    fn write_ack(&self, pos: Pos) -> std::io::Result<()> {
        let mut b = Vec::with_capacity(20);
        b.extend_from_slice(&pos.seg.to_be_bytes());
        b.extend_from_slice(&pos.offset.to_be_bytes());
        let crc = CASTAGNOLI.checksum(&b);
        b.extend_from_slice(&crc.to_be_bytes());
        let tmp = self.dir.join("ack.tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&b)?;
            f.sync_data()?;
        }
        std::fs::rename(&tmp, self.dir.join("ack"))?;
        for s in segments(&self.dir)? {
            if s >= pos.seg {
                break;
            }
            std::fs::remove_file(seg_path(&self.dir, s))?;
        }
        Ok(())
    }
}

/// Reads records in order from the acknowledged position on.
#[derive(Debug)]
struct Reader {
    pos: Pos,
    file: Option<File>,
}

enum ReadOutcome {
    Record(Vec<u8>, Pos),
    /// Nothing more for now.
    Empty,
}

impl Reader {
    fn start(q: &DiskQueue) -> Reader {
        let first = segments(&q.dir)
            .ok()
            .and_then(|s| s.first().copied())
            .unwrap_or(1);
        let pos = match q.read_ack() {
            Some(p) if p.seg >= first => p,
            Some(_) => Pos {
                seg: first,
                offset: 0,
            },
            None => {
                if q.dir.join("ack").exists() {
                    tracing::warn!(dir = %q.dir.display(), "remote-write ack file is corrupt; resending the whole queue");
                }
                Pos {
                    seg: first,
                    offset: 0,
                }
            }
        };
        Reader { pos, file: None }
    }

    /// Moves to the next existing segment when the writer had already left
    /// the one being read (`current`, taken before the read that hit its end).
    fn advance(&mut self, q: &DiskQueue, current: u64) -> bool {
        if self.pos.seg >= current {
            return false;
        }
        let next = segments(&q.dir)
            .ok()
            .and_then(|s| s.into_iter().find(|&s| s > self.pos.seg))
            .unwrap_or(current);
        self.pos = Pos {
            seg: next,
            offset: 0,
        };
        self.file = None;
        true
    }

    fn next(&mut self, q: &DiskQueue) -> ReadOutcome {
        loop {
            // Taken before reading: a segment the writer has left is
            // complete, so reaching its end means moving on is safe.
            let current = q.current_segment();
            if self.file.is_none() {
                match File::open(seg_path(&q.dir, self.pos.seg)) {
                    Ok(f) => self.file = Some(f),
                    Err(_) => {
                        if self.advance(q, current) {
                            continue;
                        }
                        return ReadOutcome::Empty;
                    }
                }
            }
            let Some(f) = self.file.as_mut() else {
                return ReadOutcome::Empty;
            };
            match read_record(f, self.pos.offset) {
                Ok(Some(payload)) => {
                    self.pos.offset += 8 + payload.len() as u64;
                    return ReadOutcome::Record(payload, self.pos);
                }
                Ok(None) => {
                    // End of the written part: move on if the writer has.
                    if self.advance(q, current) {
                        continue;
                    }
                    return ReadOutcome::Empty;
                }
                Err(reason) => {
                    if self.pos.seg < current {
                        tracing::warn!(dir = %q.dir.display(), segment = self.pos.seg, offset = self.pos.offset, reason = %reason, "skipping the rest of a damaged remote-write queue segment");
                        self.advance(q, current);
                        continue;
                    }
                    // Damage in the segment being written: skip to its end.
                    tracing::warn!(dir = %q.dir.display(), segment = self.pos.seg, offset = self.pos.offset, reason = %reason, "damaged record in the remote-write queue; skipping it");
                    let end = f.seek(SeekFrom::End(0)).unwrap_or(self.pos.offset);
                    self.pos.offset = end;
                    return ReadOutcome::Empty;
                }
            }
        }
    }
}

/// The record at `offset`: `Ok(None)` when it is not (yet) complete.
fn read_record(f: &mut File, offset: u64) -> Result<Option<Vec<u8>>, String> {
    let len_total = f.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
    if len_total < offset + 8 {
        return Ok(None);
    }
    f.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
    let mut head = [0u8; 8];
    f.read_exact(&mut head).map_err(|e| e.to_string())?;
    let len = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
    let crc = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    if len_total < offset + 8 + len {
        return Ok(None);
    }
    if len > SEGMENT_BYTES * 4 {
        return Err(format!("record length {len} is implausible"));
    }
    let mut payload = vec![0u8; len as usize];
    f.read_exact(&mut payload).map_err(|e| e.to_string())?;
    if CASTAGNOLI.checksum(&payload) != crc {
        return Err("record checksum mismatch".into());
    }
    Ok(Some(payload))
}

// ------------------------------------------------------------------ sender

/// Samples read from the queue and not yet delivered.
struct PendingRecord {
    samples: Vec<Committed>,
    next: usize,
    end: Pos,
}

enum SendError {
    Recoverable(String, Option<Duration>),
    Fatal(String),
}

async fn run_sender(
    e: Arc<Endpoint>,
    metrics: Arc<Metrics>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let tls = match &e.tls {
        Ok(tls) => tls.as_ref(),
        Err(err) => {
            tracing::error!(remote = %e.labels.remote_name, error = %err, "tls_config of a remote-write endpoint; not sending until a reload fixes it");
            return;
        }
    };
    let client = match build_client(&e.cfg, tls) {
        Ok(c) => c,
        Err(err) => {
            tracing::error!(remote = %e.labels.remote_name, error = %err, "building the remote-write HTTP client failed");
            return;
        }
    };
    let max = usize::try_from(e.cfg.queue.max_samples_per_send)
        .unwrap_or(usize::MAX)
        .max(1);
    let deadline = Duration::from_millis(e.cfg.queue.batch_send_deadline_ms.max(0) as u64);
    let q = e.queue.clone();
    let mut reader = Reader::start(&q);
    let mut pending: VecDeque<PendingRecord> = VecDeque::new();
    let mut pending_samples = 0usize;
    let mut oldest: Option<Instant> = None;
    loop {
        while pending_samples < max {
            match reader.next(&q) {
                ReadOutcome::Record(payload, end) => {
                    let samples = match WriteRequest::decode(payload.as_slice()) {
                        Ok(req) => req
                            .timeseries
                            .iter()
                            .flat_map(|ts| {
                                let l = labels_from_proto(&ts.labels);
                                ts.samples
                                    .iter()
                                    .map(move |s| (l.clone(), s.timestamp, s.value))
                            })
                            .collect(),
                        Err(err) => {
                            tracing::warn!(remote = %e.labels.remote_name, error = %err, "skipping an undecodable remote-write queue record");
                            Vec::new()
                        }
                    };
                    pending_samples += samples.len();
                    pending.push_back(PendingRecord {
                        samples,
                        next: 0,
                        end,
                    });
                    oldest.get_or_insert_with(Instant::now);
                }
                ReadOutcome::Empty => break,
            }
        }
        let waited = oldest.map_or(Duration::ZERO, |o| o.elapsed());
        let ready = pending_samples >= max || (!pending.is_empty() && waited >= deadline);
        if !ready {
            let wait = if pending.is_empty() {
                Duration::from_secs(5)
            } else {
                deadline.saturating_sub(waited)
            };
            tokio::select! {
                _ = &mut stop => return,
                _ = q.notify.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        // Cut one request from the front of the pending records.
        let mut batch: Vec<&Committed> = Vec::with_capacity(max.min(pending_samples));
        for r in &pending {
            for s in &r.samples[r.next..] {
                if batch.len() == max {
                    break;
                }
                batch.push(s);
            }
            if batch.len() == max {
                break;
            }
        }
        let n = batch.len();
        let body = if n == 0 {
            None
        } else {
            let req = write_request_from_samples(batch.iter().map(|(l, t, v)| (l, *t, *v)));
            match encode_write_request(&req) {
                Ok(b) => Some(b),
                Err(err) => {
                    tracing::error!(remote = %e.labels.remote_name, error = %err, "encoding a remote-write request failed; dropping it");
                    None
                }
            }
        };
        if let Some(body) = body {
            let mut backoff = Duration::from_millis(e.cfg.queue.min_backoff_ms.max(1) as u64);
            let max_backoff = Duration::from_millis(e.cfg.queue.max_backoff_ms.max(1) as u64);
            let mut warned = false;
            loop {
                let sent = tokio::select! {
                    _ = &mut stop => return,
                    r = send_once(&client, &e.cfg, &e.base_dir, body.clone()) => r,
                };
                match sent {
                    Ok(()) => {
                        metrics
                            .remote_samples
                            .get_or_create(&e.labels)
                            .inc_by(n as u64);
                        if warned {
                            tracing::info!(remote = %e.labels.remote_name, "remote write recovered");
                        }
                        break;
                    }
                    Err(SendError::Fatal(msg)) => {
                        tracing::error!(remote = %e.labels.remote_name, url = %e.cfg.url, samples = n, error = %msg, "non-recoverable error sending samples; dropping them");
                        metrics
                            .remote_samples_failed
                            .get_or_create(&e.labels)
                            .inc_by(n as u64);
                        break;
                    }
                    Err(SendError::Recoverable(msg, retry_after)) => {
                        if !warned {
                            tracing::warn!(remote = %e.labels.remote_name, url = %e.cfg.url, error = %msg, "failed to send batch, retrying");
                            warned = true;
                        } else {
                            tracing::debug!(remote = %e.labels.remote_name, error = %msg, "retrying");
                        }
                        metrics
                            .remote_samples_retried
                            .get_or_create(&e.labels)
                            .inc_by(n as u64);
                        let delay = retry_after.unwrap_or(backoff);
                        tokio::select! {
                            _ = &mut stop => return,
                            _ = tokio::time::sleep(delay) => {}
                        }
                        backoff = (backoff * 2).min(max_backoff);
                    }
                }
            }
        }
        // Delivered (or dropped): advance and acknowledge whole records.
        let mut left = n;
        let mut acked = None;
        while let Some(r) = pending.front_mut() {
            let take = left.min(r.samples.len() - r.next);
            r.next += take;
            left -= take;
            if r.next < r.samples.len() {
                break;
            }
            acked = Some(r.end);
            pending.pop_front();
        }
        pending_samples -= n;
        oldest = if pending.is_empty() {
            None
        } else {
            Some(Instant::now())
        };
        if let Some(pos) = acked
            && let Err(err) = q.write_ack(pos)
        {
            tracing::warn!(remote = %e.labels.remote_name, error = %err, "writing the remote-write ack file failed");
        }
    }
}

fn build_client(
    cfg: &RemoteWriteConfig,
    tls: Option<&TlsSettings>,
) -> Result<reqwest::Client, reqwest::Error> {
    let mut b = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(Duration::from_millis(cfg.remote_timeout_ms.max(1) as u64))
        .no_proxy();
    if let Some(tls) = tls {
        b = tls.apply(b);
    }
    if !cfg.http.follow_redirects {
        b = b.redirect(reqwest::redirect::Policy::none());
    }
    if let Some(p) = &cfg.http.proxy_url {
        b = b.proxy(reqwest::Proxy::all(p)?);
    }
    b.build()
}

/// A `password_file` / `credentials_file`, relative to `base_dir` unless
/// absolute, read at each send (so a rotated secret is picked up).
fn read_secret_file(base_dir: &Path, file: &str) -> Result<String, SendError> {
    let path = crate::targets::resolve(base_dir, file);
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .map_err(|e| SendError::Recoverable(format!("reading {}: {e}", path.display()), None))
}

async fn send_once(
    client: &reqwest::Client,
    cfg: &RemoteWriteConfig,
    base_dir: &Path,
    body: Vec<u8>,
) -> Result<(), SendError> {
    let mut req = client
        .post(&cfg.url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0");
    for (k, v) in &cfg.headers {
        req = req.header(k, v);
    }
    if let Some(b) = &cfg.http.basic_auth {
        let password = match (&b.password, &b.password_file) {
            (Some(p), _) => Some(p.0.clone()),
            (None, Some(f)) => Some(read_secret_file(base_dir, f)?),
            (None, None) => None,
        };
        req = req.basic_auth(&b.username, password);
    }
    if let Some(a) = &cfg.http.authorization {
        let creds = match (&a.credentials, &a.credentials_file) {
            (Some(c), _) => c.0.clone(),
            (None, Some(f)) => read_secret_file(base_dir, f)?,
            (None, None) => String::new(),
        };
        req = req.header("Authorization", format!("{} {creds}", a.kind));
    }
    let resp = req
        .body(body)
        .send()
        .await
        .map_err(|e| SendError::Recoverable(error_chain(&e), None))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = resp
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = resp.bytes().await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text[..text.len().min(MAX_ERROR_BODY)]).into_owned();
    let msg = format!("server returned HTTP status {status}: {}", text.trim_end());
    if status.is_server_error() {
        Err(SendError::Recoverable(msg, None))
    } else if status == reqwest::StatusCode::TOO_MANY_REQUESTS && cfg.queue.retry_on_http_429 {
        Err(SendError::Recoverable(msg, retry_after))
    } else {
        Err(SendError::Fatal(msg))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "emberlens-rwq-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn read_all(q: &DiskQueue, r: &mut Reader) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let ReadOutcome::Record(p, _) = r.next(q) {
            out.push(p);
        }
        out
    }

    #[test]
    fn records_survive_reopen_and_ack_resumes() {
        let dir = temp_dir("reopen");
        let q = DiskQueue::open(&dir).unwrap();
        for i in 0..5u8 {
            q.append(&[i; 10]).unwrap();
        }
        let mut r = Reader::start(&q);
        let got = read_all(&q, &mut r);
        assert_eq!(got.len(), 5);
        // Acknowledge the first two records only.
        let mut r2 = Reader::start(&q);
        let _ = r2.next(&q);
        let ReadOutcome::Record(_, pos) = r2.next(&q) else {
            panic!()
        };
        q.write_ack(pos).unwrap();
        drop(q);
        let q = DiskQueue::open(&dir).unwrap();
        q.append(&[9; 3]).unwrap();
        let mut r = Reader::start(&q);
        let got = read_all(&q, &mut r);
        assert_eq!(got, vec![vec![2; 10], vec![3; 10], vec![4; 10], vec![9; 3]]);
        // Acknowledging past the first segment deletes it.
        q.write_ack(r.pos).unwrap();
        assert_eq!(segments(&dir).unwrap(), vec![2]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_record_in_an_old_segment_is_skipped() {
        let dir = temp_dir("torn");
        let q = DiskQueue::open(&dir).unwrap();
        q.append(b"first").unwrap();
        q.append(b"second").unwrap();
        drop(q);
        // Flip a payload byte of the second record.
        let p = seg_path(&dir, 1);
        let mut bytes = std::fs::read(&p).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&p, &bytes).unwrap();
        let q = DiskQueue::open(&dir).unwrap();
        q.append(b"third").unwrap();
        let mut r = Reader::start(&q);
        assert_eq!(
            read_all(&q, &mut r),
            vec![b"first".to_vec(), b"third".to_vec()]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn external_labels_do_not_override_series_labels() {
        let ext = Labels::from_pairs([("replica", "a"), ("job", "ext")]);
        let l = Labels::from_pairs([("__name__", "up"), ("job", "j")]);
        assert_eq!(
            with_external(&l, &ext),
            Labels::from_pairs([("__name__", "up"), ("job", "j"), ("replica", "a")])
        );
    }

    #[test]
    fn queue_dirs_are_safe_names() {
        let mut rw = emberlens_config::Config::parse("remote_write:\n- url: http://x/y\n")
            .unwrap()
            .remote_write
            .remove(0);
        let hashed = queue_dir_name(&rw);
        assert!(hashed.starts_with("url-") && hashed.len() == 20, "{hashed}");
        rw.name = Some("central".into());
        assert_eq!(queue_dir_name(&rw), "central");
        rw.name = Some("../etc".into());
        assert_eq!(queue_dir_name(&rw), hashed);
    }
}
