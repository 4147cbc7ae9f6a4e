//! The server's storage: a WAL, an in-memory head and 2 h blocks in a
//! Prometheus data directory (`--storage.tsdb.path`).
//!
//! ```text
//! scrape → Appender::commit → WAL write (wal.rs) → head (head.rs)
//!                                   every minute: head older than 1.5 block ranges
//!                                   → block (emberlens-tsdb writer) → head truncated
//!                                   → WAL checkpoint → blocks compacted → retention
//! ```
//!
//! - **Layout** is Prometheus's: `wal/` (segments and `checkpoint.N/`), one
//!   directory per block named by its ULID. Prometheus can open the
//!   directory (WAL included); Emberlens opens Prometheus's.
//! - **Durability**: a commit's WAL records are written to the OS before the
//!   commit returns; the WAL is `fsync`ed every [`TsdbOptions::wal_fsync`],
//!   when a segment is finished, and at shutdown. A killed process loses
//!   nothing acknowledged; a machine crash loses at most the last fsync
//!   interval. Blocks are written to `<ulid>.tmp-for-creation`, synced and
//!   renamed, so a block directory is complete or absent.
//! - **Start-up**: leftover temporary directories are removed, blocks that
//!   a compacted block replaced are deleted, blocks are opened, and the WAL
//!   is replayed (latest checkpoint, then the segments after it). A corrupt
//!   or torn record ends the replay: its segment is cut there and later
//!   segments are removed (Prometheus's repair), with a warning.
//! - **Reads** merge blocks and head by labels; where both hold a timestamp
//!   (between cutting a block and truncating the head) the block's sample
//!   is kept.
//! - **Compaction** is leveled like Prometheus's: ranges of 3× the previous
//!   (2 h, 6 h, 18 h, …) up to `max_block_ms`; a window is compacted once
//!   the head has moved past it and it holds two or more blocks.
//! - **Retention** deletes whole blocks: those ending more than
//!   `retention_ms` before the newest block's end, then the oldest while
//!   blocks + WAL exceed `retention_bytes`.

pub mod head;
pub mod wal;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use emberlens_model::{
    Appendable, Appender, Labels, Matcher, Sample, Series, Storage, StorageError, StorageStats,
};
use emberlens_tsdb::block::Block;
use emberlens_tsdb::compact::{CompactError, compact_into};
use emberlens_tsdb::db::{Db, merge_series};
use emberlens_tsdb::meta::{BlockMeta, Compaction};
use emberlens_tsdb::writer::{BlockSink, BlockWriter, WriteError, ulid};
use emberlens_tsdb::{ByteSource, FileSet, SourceError, TsdbError};

use crate::fileset::{AnyFile, AnyFileSet};
use head::{Head, MemSeries, check_after};
use wal::{
    Record, RefSample, SegmentReader, Wal, WalError, decode_record, encode_samples, encode_series,
    list_segments, read_segment, sync_dir,
};

/// Two hours, Prometheus's block range.
pub const DEFAULT_BLOCK_RANGE_MS: i64 = 2 * 3600 * 1000;

/// Storage settings (Prometheus's `--storage.tsdb.*` flags).
#[derive(Clone, Debug)]
pub struct TsdbOptions {
    /// Range of head blocks (`--storage.tsdb.min-block-duration`, 2 h).
    pub block_range_ms: i64,
    /// Largest compacted block (`--storage.tsdb.max-block-duration`;
    /// Prometheus: 10% of retention, at most 31 d).
    pub max_block_ms: i64,
    /// Blocks older than this are deleted (`--storage.tsdb.retention.time`).
    pub retention_ms: i64,
    /// Blocks + WAL above this many bytes lose their oldest blocks
    /// (`--storage.tsdb.retention.size`; 0 = no limit).
    pub retention_bytes: u64,
    /// WAL segment size.
    pub wal_segment_size: usize,
    /// How often the WAL is `fsync`ed.
    pub wal_fsync: Duration,
}

impl Default for TsdbOptions {
    fn default() -> Self {
        let retention_ms = 15 * 24 * 3600 * 1000;
        TsdbOptions {
            block_range_ms: DEFAULT_BLOCK_RANGE_MS,
            max_block_ms: default_max_block(retention_ms, DEFAULT_BLOCK_RANGE_MS),
            retention_ms,
            retention_bytes: 0,
            wal_segment_size: wal::DEFAULT_SEGMENT_SIZE,
            wal_fsync: Duration::from_secs(1),
        }
    }
}

/// Prometheus's default max block duration: 10% of the retention, at most
/// 31 days, at least the block range.
pub fn default_max_block(retention_ms: i64, block_range_ms: i64) -> i64 {
    (retention_ms / 10)
        .min(31 * 24 * 3600 * 1000)
        .max(block_range_ms)
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The WAL could not be written or read.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// A block could not be read.
    #[error(transparent)]
    Tsdb(#[from] TsdbError),
    /// A block could not be built.
    #[error("writing block: {0}")]
    Write(String),
}

/// Counters of what the store did (exported on `/metrics`).
#[derive(Debug, Default)]
pub struct TsdbStats {
    /// Samples appended to the head.
    pub samples_appended: AtomicU64,
    /// Samples refused as out of order or duplicate.
    pub out_of_order: AtomicU64,
    /// Samples refused as older than the head.
    pub out_of_bounds: AtomicU64,
    /// Blocks cut from the head.
    pub head_blocks: AtomicU64,
    /// Compactions of blocks into a larger one.
    pub compactions: AtomicU64,
    /// Failed block cuts, compactions or retention runs.
    pub compaction_failures: AtomicU64,
    /// Blocks deleted by retention.
    pub retention_deletions: AtomicU64,
    /// WAL checkpoints written.
    pub checkpoints: AtomicU64,
    /// WAL write failures (commits refused).
    pub wal_failures: AtomicU64,
    /// Corrupt or torn WAL records found at start-up.
    pub wal_corruptions: AtomicU64,
    /// Samples for unknown series or of unknown record types skipped at replay.
    pub replay_skipped: AtomicU64,
}

/// The store.
pub struct Tsdb {
    dir: PathBuf,
    opts: TsdbOptions,
    head: Head,
    wal: Mutex<Option<Wal>>,
    blocks: RwLock<Arc<Db<AnyFile>>>,
    compacting: Mutex<()>,
    /// Counters.
    pub stats: TsdbStats,
}

impl std::fmt::Debug for Tsdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tsdb")
            .field("dir", &self.dir)
            .field("series", &self.head.series_count())
            .field("blocks", &self.blocks_db().blocks().len())
            .finish()
    }
}

const TMP_CREATE: &str = ".tmp-for-creation";
const TMP_DELETE: &str = ".tmp-for-deletion";

impl Tsdb {
    /// Opens (or creates) the data directory: removes leftovers, opens the
    /// blocks and replays the WAL.
    pub fn open(dir: &Path, opts: TsdbOptions) -> Result<Tsdb, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| WalError::io(dir, e))?;
        remove_leftovers(dir)?;
        let blocks = open_blocks(dir)?;
        let head = Head::new(opts.block_range_ms);
        if let Some(max) = blocks.iter().map(|b| b.meta().max_time).max() {
            head.set_min_valid_time(max);
        }
        let db = Tsdb {
            dir: dir.to_path_buf(),
            head,
            wal: Mutex::new(None),
            blocks: RwLock::new(Arc::new(Db::from_shared(blocks))),
            compacting: Mutex::new(()),
            stats: TsdbStats::default(),
            opts,
        };
        let wal_dir = dir.join("wal");
        db.replay(&wal_dir)?;
        *db.wal_lock() = Some(Wal::open(&wal_dir, db.opts.wal_segment_size)?);
        Ok(db)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options it runs with.
    pub fn options(&self) -> &TsdbOptions {
        &self.opts
    }

    /// The head.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The blocks as they are now.
    pub fn blocks_db(&self) -> Arc<Db<AnyFile>> {
        self.blocks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn wal_lock(&self) -> MutexGuard<'_, Option<Wal>> {
        self.wal.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn replay(&self, wal_dir: &Path) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let mut refs: HashMap<u64, Arc<MemSeries>> = HashMap::new();
        let (checkpoint, after) = match latest_checkpoint(wal_dir)? {
            Some((n, cp)) => {
                for (_, p) in list_segments(&cp)? {
                    self.replay_segment(&p, &mut refs, false)?;
                }
                (Some(n), n + 1)
            }
            None => (None, 0),
        };
        let segments: Vec<(u64, PathBuf)> = list_segments(wal_dir)?
            .into_iter()
            .filter(|(i, _)| *i >= after)
            .collect();
        for (k, (_, p)) in segments.iter().enumerate() {
            if !self.replay_segment(p, &mut refs, true)? {
                // Cut at the corruption: later segments can't be trusted to
                // follow on, as in Prometheus's repair.
                for (_, later) in &segments[k + 1..] {
                    tracing::warn!(segment = %later.display(), "removing WAL segment after a corrupt one");
                    std::fs::remove_file(later).map_err(|e| WalError::io(later, e))?;
                }
                break;
            }
        }
        let (series, _, _) = self.head.stats();
        tracing::info!(
            checkpoint = ?checkpoint,
            segments = segments.len(),
            series,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "WAL replayed"
        );
        Ok(())
    }

    /// Replays one segment; false when it ended in a corrupt record (then
    /// cut there if `repair`).
    fn replay_segment(
        &self,
        path: &Path,
        refs: &mut HashMap<u64, Arc<MemSeries>>,
        repair: bool,
    ) -> Result<bool, StoreError> {
        let bytes = read_segment(path)?;
        let name = path.display().to_string();
        let mut r = SegmentReader::new(&name, &bytes);
        let min_valid = self.head.min_valid_time();
        loop {
            let rec = match r.next_record() {
                Ok(Some(rec)) => rec,
                Ok(None) => return Ok(true),
                Err(e) => {
                    self.stats.wal_corruptions.fetch_add(1, Ordering::Relaxed);
                    if !repair {
                        return Err(WalError::from(e).into());
                    }
                    let keep = r.good_end();
                    tracing::warn!(error = %e, keep_bytes = keep, "cutting the WAL at a corrupt record");
                    let f = std::fs::OpenOptions::new()
                        .write(true)
                        .open(path)
                        .map_err(|e| WalError::io(path, e))?;
                    f.set_len(keep as u64).map_err(|e| WalError::io(path, e))?;
                    f.sync_all().map_err(|e| WalError::io(path, e))?;
                    return Ok(false);
                }
            };
            match decode_record(&rec) {
                Ok(Record::Series(list)) => {
                    for (r, labels) in list {
                        let (s, _) = self.head.get_or_create(&labels, Some(r));
                        s.mark_logged();
                        refs.insert(r, s);
                    }
                }
                Ok(Record::Samples(list)) => {
                    for s in list {
                        match refs.get(&s.series) {
                            Some(series) if s.t_ms >= min_valid => {
                                self.head.append(series, s.t_ms, s.v);
                            }
                            Some(_) => {}
                            None => {
                                self.stats.replay_skipped.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
                Ok(Record::Other(_)) => {
                    self.stats.replay_skipped.fetch_add(1, Ordering::Relaxed);
                }
                Err(reason) => {
                    // The record's checksum was right, so this is a record
                    // we can't parse, not a torn write: skip it.
                    self.stats.wal_corruptions.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(segment = %path.display(), %reason, "skipping an undecodable WAL record");
                }
            }
        }
    }

    /// `fsync`s the WAL (the timer calls this).
    pub fn sync_wal(&self) -> Result<(), WalError> {
        match self.wal_lock().as_mut() {
            Some(w) => w.sync(),
            None => Ok(()),
        }
    }

    /// Pads and syncs the WAL; later commits fail.
    pub fn close(&self) -> Result<(), WalError> {
        match self.wal_lock().take() {
            Some(w) => w.close(),
            None => Ok(()),
        }
    }

    /// Cuts head blocks that are due, compacts blocks and applies
    /// retention. Returns whether anything changed.
    pub fn compact(&self) -> Result<bool, StoreError> {
        let _one = self.compacting.lock().unwrap_or_else(|e| e.into_inner());
        let mut changed = false;
        let range = self.opts.block_range_ms;
        loop {
            let (min, max) = self.head.time_range();
            if min > max || max - min <= range / 2 * 3 {
                break;
            }
            let end = head::range_end(min, range);
            self.cut_head_block(min, end)?;
            changed = true;
        }
        changed |= self.compact_blocks()?;
        changed |= self.apply_retention()?;
        Ok(changed)
    }

    /// Writes the head's `[mint, maxt)` as a block, then truncates head and WAL.
    fn cut_head_block(&self, mint: i64, maxt: i64) -> Result<(), StoreError> {
        // Refuse samples for the range first, so none lands after the read.
        self.head.set_min_valid_time(maxt);
        let id = new_ulid();
        let written = self.persist_block(&id, |sink| {
            let mut w = BlockWriter::new(&id, sink);
            self.head.write_block(mint, maxt, &mut w)?;
            // Prometheus's head blocks span exactly their range.
            w.widen_time_range(mint, maxt);
            Ok(w.finish(Compaction::default())?)
        })?;
        if let Some((block, meta)) = written {
            self.swap_blocks(vec![block], &[]);
            self.stats.head_blocks.fetch_add(1, Ordering::Relaxed);
            tracing::info!(ulid = %id, mint, maxt, series = meta.stats.num_series, "head block written");
        }
        let alive: HashSet<u64> = self.head.truncate(maxt).into_iter().collect();
        self.checkpoint(&alive, maxt)
    }

    /// Folds the WAL up to the current segment into a checkpoint keeping
    /// the series in `alive` and samples from `mint` on, then deletes the
    /// folded segments and older checkpoints.
    fn checkpoint(&self, alive: &HashSet<u64>, mint: i64) -> Result<(), StoreError> {
        let wal_dir = self.dir.join("wal");
        let last = match self.wal_lock().as_mut() {
            Some(w) => w.next_segment()?,
            None => return Ok(()),
        };
        let previous = latest_checkpoint(&wal_dir)?;
        let mut sources: Vec<PathBuf> = Vec::new();
        if let Some((_, cp)) = &previous {
            sources.extend(list_segments(cp)?.into_iter().map(|(_, p)| p));
        }
        let from = previous.as_ref().map_or(0, |(n, _)| n + 1);
        sources.extend(
            list_segments(&wal_dir)?
                .into_iter()
                .filter(|(i, _)| *i >= from && *i <= last)
                .map(|(_, p)| p),
        );
        let name = format!("checkpoint.{last:08}");
        let tmp = wal_dir.join(format!("{name}.tmp"));
        let _ = std::fs::remove_dir_all(&tmp);
        if let Err(e) = self.write_checkpoint(&tmp, &sources, alive, mint) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let dest = wal_dir.join(&name);
        std::fs::rename(&tmp, &dest).map_err(|e| WalError::io(&dest, e))?;
        sync_dir(&wal_dir)?;
        for (i, p) in list_segments(&wal_dir)? {
            if i <= last {
                std::fs::remove_file(&p).map_err(|e| WalError::io(&p, e))?;
            }
        }
        for entry in std::fs::read_dir(&wal_dir).map_err(|e| WalError::io(&wal_dir, e))? {
            let entry = entry.map_err(|e| WalError::io(&wal_dir, e))?;
            let n = entry.file_name().to_string_lossy().into_owned();
            if n.starts_with("checkpoint.") && n != name {
                let p = entry.path();
                std::fs::remove_dir_all(&p).map_err(|e| WalError::io(&p, e))?;
            }
        }
        self.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Writes the checkpoint's segments into `tmp`.
    fn write_checkpoint(
        &self,
        tmp: &Path,
        sources: &[PathBuf],
        alive: &HashSet<u64>,
        mint: i64,
    ) -> Result<(), StoreError> {
        let mut out = Wal::open(tmp, self.opts.wal_segment_size)?;
        let mut written: HashSet<u64> = HashSet::new();
        for path in sources {
            let bytes = read_segment(path)?;
            let name = path.display().to_string();
            let mut r = SegmentReader::new(&name, &bytes);
            while let Some(rec) = r.next_record().map_err(WalError::from)? {
                let mut buf = Vec::new();
                match decode_record(&rec) {
                    Ok(Record::Series(list)) => {
                        let keep: Vec<(u64, &Labels)> = list
                            .iter()
                            .filter(|(r, _)| alive.contains(r) && written.insert(*r))
                            .map(|(r, l)| (*r, l))
                            .collect();
                        if !keep.is_empty() {
                            encode_series(&mut buf, keep);
                        }
                    }
                    Ok(Record::Samples(list)) => {
                        let keep: Vec<RefSample> = list
                            .into_iter()
                            .filter(|s| s.t_ms >= mint && alive.contains(&s.series))
                            .collect();
                        if !keep.is_empty() {
                            encode_samples(&mut buf, &keep);
                        }
                    }
                    Ok(Record::Other(_)) | Err(_) => {}
                }
                if !buf.is_empty() {
                    out.log(&[&buf])?;
                }
            }
        }
        out.close()?;
        Ok(())
    }

    /// Writes a block with `write` into `<ulid>.tmp-for-creation` (files
    /// streamed to disk as they are made, then synced) and renames the
    /// directory into place; returns the opened block and its meta, or
    /// `None` when there was nothing to write.
    fn persist_block<F>(&self, id: &str, write: F) -> Result<Option<PersistedBlock>, StoreError>
    where
        F: FnOnce(DirSink) -> Result<(BlockMeta, DirSink), CompactError>,
    {
        let tmp = self.dir.join(format!("{id}{TMP_CREATE}"));
        let dest = self.dir.join(id);
        let written = write(DirSink::new(&tmp)).and_then(|(meta, sink)| {
            sink.close()?;
            Ok(meta)
        });
        let meta = match written {
            Ok(meta) => meta,
            Err(e) => {
                // Leave no half-written block behind (a full disk, typically).
                let _ = std::fs::remove_dir_all(&tmp);
                return match e {
                    CompactError::Write(WriteError::Empty) => Ok(None),
                    e => Err(StoreError::Write(e.to_string())),
                };
            }
        };
        std::fs::rename(&tmp, &dest).map_err(|e| WalError::io(&dest, e))?;
        sync_dir(&self.dir)?;
        Ok(Some((Arc::new(open_block(&dest)?), meta)))
    }

    /// Replaces the blocks: adds `add`, drops those named in `remove`.
    fn swap_blocks(&self, add: Vec<Arc<Block<AnyFile>>>, remove: &[String]) {
        let mut guard = self.blocks.write().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<Arc<Block<AnyFile>>> = guard
            .blocks()
            .iter()
            .filter(|b| !remove.contains(&b.meta().ulid))
            .cloned()
            .collect();
        all.extend(add);
        *guard = Arc::new(Db::from_shared(all));
    }

    fn delete_block_dirs(&self, ulids: &[String]) -> Result<(), StoreError> {
        for id in ulids {
            let dir = self.dir.join(id);
            let tmp = self.dir.join(format!("{id}{TMP_DELETE}"));
            std::fs::rename(&dir, &tmp).map_err(|e| WalError::io(&dir, e))?;
            std::fs::remove_dir_all(&tmp).map_err(|e| WalError::io(&tmp, e))?;
        }
        if !ulids.is_empty() {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Leveled compaction of blocks whose window the head has passed.
    fn compact_blocks(&self) -> Result<bool, StoreError> {
        let mut changed = false;
        let mut range = self.opts.block_range_ms.saturating_mul(3);
        let horizon = self.head.min_valid_time();
        while range <= self.opts.max_block_ms {
            loop {
                let db = self.blocks_db();
                let mut windows: BTreeMap<i64, Vec<&Arc<Block<AnyFile>>>> = BTreeMap::new();
                for b in db.blocks() {
                    let m = b.meta();
                    let w = m.min_time.div_euclid(range) * range;
                    // Only blocks entirely inside one window.
                    if m.max_time <= w + range {
                        windows.entry(w).or_default().push(b);
                    }
                }
                let due = windows
                    .into_iter()
                    .find(|(w, bs)| bs.len() > 1 && w + range <= horizon);
                let Some((_, group)) = due else { break };
                let inputs: Vec<&Block<AnyFile>> = group.iter().map(|b| &***b).collect();
                let id = new_ulid();
                let written = self.persist_block(&id, |sink| compact_into(&inputs, &id, sink))?;
                let parents: Vec<String> = inputs.iter().map(|b| b.meta().ulid.clone()).collect();
                let add: Vec<Arc<Block<AnyFile>>> = written.into_iter().map(|(b, _)| b).collect();
                self.swap_blocks(add, &parents);
                self.delete_block_dirs(&parents)?;
                self.stats.compactions.fetch_add(1, Ordering::Relaxed);
                tracing::info!(ulid = %id, parents = parents.len(), range_ms = range, "blocks compacted");
                changed = true;
            }
            range = range.saturating_mul(3);
        }
        Ok(changed)
    }

    /// Deletes blocks beyond the time and size retention.
    fn apply_retention(&self) -> Result<bool, StoreError> {
        let db = self.blocks_db();
        let blocks = db.blocks();
        let Some(newest) = blocks.iter().map(|b| b.meta().max_time).max() else {
            return Ok(false);
        };
        let mut doomed: Vec<String> = blocks
            .iter()
            .filter(|b| b.meta().max_time <= newest - self.opts.retention_ms)
            .map(|b| b.meta().ulid.clone())
            .collect();
        if self.opts.retention_bytes > 0 {
            let mut total = self.wal_bytes()
                + blocks
                    .iter()
                    .filter(|b| !doomed.contains(&b.meta().ulid))
                    .map(|b| b.size_bytes())
                    .sum::<u64>();
            // Oldest first (blocks are sorted by min time).
            for b in blocks {
                if total <= self.opts.retention_bytes {
                    break;
                }
                if !doomed.contains(&b.meta().ulid) {
                    total = total.saturating_sub(b.size_bytes());
                    doomed.push(b.meta().ulid.clone());
                }
            }
        }
        if doomed.is_empty() {
            return Ok(false);
        }
        self.swap_blocks(Vec::new(), &doomed);
        self.delete_block_dirs(&doomed)?;
        self.stats
            .retention_deletions
            .fetch_add(doomed.len() as u64, Ordering::Relaxed);
        tracing::info!(blocks = doomed.len(), "retention deleted blocks");
        Ok(true)
    }

    /// Bytes of the WAL directory (segments and checkpoint).
    pub fn wal_bytes(&self) -> u64 {
        dir_size(&self.dir.join("wal"))
    }

    /// Bytes of all blocks.
    pub fn block_bytes(&self) -> u64 {
        self.blocks_db()
            .blocks()
            .iter()
            .map(|b| b.size_bytes())
            .sum()
    }
}

/// A block just written and opened, with its meta.
type PersistedBlock = (Arc<Block<AnyFile>>, BlockMeta);

/// A [`BlockSink`] writing a block's files under a directory as they are
/// made, each through a buffer and `fsync`ed once complete (when the next
/// file starts, or at [`DirSink::close`]).
pub struct DirSink {
    dir: PathBuf,
    current: Option<(String, PathBuf, std::io::BufWriter<std::fs::File>)>,
}

impl DirSink {
    /// A sink writing under `dir` (created on the first write).
    pub fn new(dir: &Path) -> Self {
        DirSink {
            dir: dir.to_path_buf(),
            current: None,
        }
    }

    fn finish_current(&mut self) -> Result<(), WriteError> {
        if let Some((_, path, f)) = self.current.take() {
            // `into_inner` flushes the buffer.
            f.into_inner()
                .map_err(|e| sink_error(&path, e.error()))?
                .sync_all()
                .map_err(|e| sink_error(&path, &e))?;
        }
        Ok(())
    }

    /// Completes the last file and syncs the block's directories.
    pub fn close(mut self) -> Result<(), WriteError> {
        self.finish_current()?;
        for d in [self.dir.join("chunks"), self.dir.clone()] {
            if d.exists() {
                sync_dir(&d).map_err(|e| WriteError::Sink {
                    file: d.display().to_string(),
                    reason: e.to_string(),
                })?;
            }
        }
        Ok(())
    }
}

fn sink_error(path: &Path, e: &std::io::Error) -> WriteError {
    WriteError::Sink {
        file: path.display().to_string(),
        reason: e.to_string(),
    }
}

impl BlockSink for DirSink {
    fn append(&mut self, rel: &str, bytes: &[u8]) -> Result<(), WriteError> {
        if self.current.as_ref().is_none_or(|(r, _, _)| r != rel) {
            self.finish_current()?;
            let path = self.dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| sink_error(parent, &e))?;
            }
            let f = std::fs::File::create(&path).map_err(|e| sink_error(&path, &e))?;
            self.current = Some((
                rel.to_string(),
                path,
                std::io::BufWriter::with_capacity(1 << 20, f),
            ));
        }
        if let Some((_, path, f)) = self.current.as_mut() {
            std::io::Write::write_all(f, bytes).map_err(|e| sink_error(path, &e))?;
        }
        Ok(())
    }
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The newest `checkpoint.N` directory (not a `.tmp` one).
fn latest_checkpoint(wal_dir: &Path) -> Result<Option<(u64, PathBuf)>, WalError> {
    let entries = match std::fs::read_dir(wal_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(WalError::io(wal_dir, e)),
    };
    let mut best: Option<(u64, PathBuf)> = None;
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io(wal_dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(n) = name.strip_prefix("checkpoint.") else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        if best.as_ref().is_none_or(|(b, _)| n > *b) {
            best = Some((n, entry.path()));
        }
    }
    Ok(best)
}

/// Removes temporary block directories, unfinished checkpoints, and blocks
/// that a compacted block lists as parents (a crash between writing the
/// new block and deleting the old ones).
fn remove_leftovers(dir: &Path) -> Result<(), StoreError> {
    let io = |p: &Path, e| StoreError::Wal(WalError::io(p, e));
    let mut parents: HashSet<String> = HashSet::new();
    let mut blocks: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let p = entry.path();
        if name.ends_with(TMP_CREATE) || name.ends_with(TMP_DELETE) {
            tracing::warn!(dir = %p.display(), "removing an unfinished block directory");
            std::fs::remove_dir_all(&p).map_err(|e| io(&p, e))?;
            continue;
        }
        if let Ok(bytes) = std::fs::read(p.join("meta.json")) {
            if let Ok(meta) = emberlens_tsdb::meta::BlockMeta::parse("meta.json", &bytes) {
                parents.extend(meta.compaction.parents.iter().map(|d| d.ulid.clone()));
            }
            blocks.push((name, p));
        }
    }
    for (name, p) in blocks {
        if parents.contains(&name) {
            tracing::warn!(dir = %p.display(), "removing a block already compacted into another");
            std::fs::remove_dir_all(&p).map_err(|e| io(&p, e))?;
        }
    }
    let wal_dir = dir.join("wal");
    if let Ok(entries) = std::fs::read_dir(&wal_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("checkpoint.") && name.ends_with(".tmp") {
                let p = entry.path();
                std::fs::remove_dir_all(&p).map_err(|e| io(&p, e))?;
            }
        }
    }
    Ok(())
}

/// Opens every block directory of `dir`; a block that fails is skipped
/// with a warning (Prometheus refuses to start; we keep serving the rest).
fn open_blocks(dir: &Path) -> Result<Vec<Arc<Block<AnyFile>>>, StoreError> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| WalError::io(dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("meta.json").is_file())
        .collect();
    entries.sort();
    for p in entries {
        match open_block(&p) {
            Ok(b) => out.push(Arc::new(b)),
            Err(e) => {
                tracing::warn!(block = %p.display(), error = %e, "skipping a block that does not open")
            }
        }
    }
    Ok(out)
}

/// Opens one block directory, its index read into memory.
pub fn open_block(dir: &Path) -> Result<Block<AnyFile>, TsdbError> {
    let fs = IndexInMemory(AnyFileSet::open(dir)?);
    Block::open(&fs, "")
}

/// Block index files up to this size are read into memory at open (a
/// query reads one entry per series; chunks stay on disk, read by `pread`).
const MAX_INDEX_IN_MEMORY: u64 = 1 << 30;

/// A file set whose `index` file is held in memory.
struct IndexInMemory(AnyFileSet);

impl FileSet for IndexInMemory {
    type File = AnyFile;

    fn paths(&self) -> Vec<String> {
        self.0.paths()
    }

    fn open(&self, path: &str) -> Result<AnyFile, SourceError> {
        let f = self.0.open(path)?;
        let is_index = path == "index" || path.ends_with("/index");
        if !is_index || f.len() > MAX_INDEX_IN_MEMORY {
            return Ok(f);
        }
        let len = usize::try_from(f.len()).map_err(|e| SourceError(e.to_string()))?;
        let bytes = f.read_at(0, len)?.into_owned();
        Ok(Arc::new(bytes))
    }
}

/// A fresh block ULID (time-ordered within this process).
pub fn new_ulid() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    // Ten bytes of entropy from the clock's nanoseconds, the process id and
    // a counter: unique per process, and ULIDs from one process sort by time.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut r = [0u8; 10];
    r[..2].copy_from_slice(&(seq as u16).to_be_bytes());
    r[2..6].copy_from_slice(&nanos.to_be_bytes());
    r[6..10].copy_from_slice(&std::process::id().to_be_bytes());
    ulid(now, r)
}

impl Storage for Tsdb {
    fn select(
        &self,
        matchers: &[Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<Series>, StorageError> {
        let from_blocks = self.blocks_db().select(matchers, min_t_ms, max_t_ms)?;
        let head = self.head.select(matchers, min_t_ms, max_t_ms);
        if head.is_empty() {
            return Ok(from_blocks);
        }
        if from_blocks.is_empty() {
            return Ok(head);
        }
        let mut by_labels: BTreeMap<Labels, Vec<Series>> = BTreeMap::new();
        for s in from_blocks.into_iter().chain(head) {
            by_labels.entry(s.labels.clone()).or_default().push(s);
        }
        Ok(by_labels.into_values().map(merge_series).collect())
    }

    /// Blocks from their indexes, the head from its postings: no chunk is
    /// decoded.
    fn series_labels(
        &self,
        matchers: &[Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<Labels>, StorageError> {
        let mut all = self
            .blocks_db()
            .series_labels(matchers, min_t_ms, max_t_ms)
            .map_err(|e| StorageError::Read(e.to_string()))?;
        let head = self.head.series_labels(matchers, min_t_ms, max_t_ms);
        if all.is_empty() {
            return Ok(head);
        }
        if !head.is_empty() {
            all.extend(head);
            all.sort();
            all.dedup();
        }
        Ok(all)
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<String>, StorageError> {
        let mut names: std::collections::BTreeSet<String> = self
            .blocks_db()
            .label_names(matchers, min_t_ms, max_t_ms)?
            .into_iter()
            .collect();
        if matchers.is_empty() {
            let (lo, hi) = self.head.time_range();
            if hi >= min_t_ms && lo <= max_t_ms {
                names.extend(self.head.label_names());
            }
        } else {
            for l in self.head.series_labels(matchers, min_t_ms, max_t_ms) {
                names.extend(l.iter().map(|l| l.name.clone()));
            }
        }
        Ok(names.into_iter().collect())
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<String>, StorageError> {
        let mut values: std::collections::BTreeSet<String> = self
            .blocks_db()
            .label_values(name, matchers, min_t_ms, max_t_ms)?
            .into_iter()
            .collect();
        if matchers.is_empty() {
            let (lo, hi) = self.head.time_range();
            if hi >= min_t_ms && lo <= max_t_ms {
                values.extend(self.head.label_values(name));
            }
        } else {
            for l in self.head.series_labels(matchers, min_t_ms, max_t_ms) {
                let v = l.get(name);
                if !v.is_empty() {
                    values.insert(v.to_string());
                }
            }
        }
        Ok(values.into_iter().collect())
    }

    fn stats(&self) -> Result<StorageStats, StorageError> {
        let blocks = self.blocks_db().stats()?;
        let (lo, hi) = self.head.time_range();
        let (_, chunks, _) = self.head.stats();
        let head = StorageStats {
            min_t_ms: (lo <= hi).then_some(lo),
            max_t_ms: (lo <= hi).then_some(hi),
            chunks: Some(chunks as u64),
        };
        Ok(blocks.merge(head))
    }
}

impl Appendable for Tsdb {
    fn appender(&self) -> impl Appender + '_ {
        TsdbAppender {
            db: self,
            samples: Vec::new(),
            pending: rustc_hash::FxHashMap::default(),
        }
    }
}

/// A batch: checked at `append`, logged to the WAL and applied at `commit`.
struct TsdbAppender<'a> {
    db: &'a Tsdb,
    samples: Vec<(Arc<MemSeries>, i64, f64)>,
    /// Newest pending sample per series reference.
    pending: rustc_hash::FxHashMap<u64, Sample>,
}

impl Appender for TsdbAppender<'_> {
    fn append(&mut self, labels: &Labels, t_ms: i64, v: f64) -> Result<(), StorageError> {
        self.append_ref(0, labels, t_ms, v).map(|_| ())
    }

    fn append_ref(
        &mut self,
        series_ref: u64,
        labels: &Labels,
        t_ms: i64,
        v: f64,
    ) -> Result<u64, StorageError> {
        let min = self.db.head.min_valid_time();
        if t_ms < min {
            self.db.stats.out_of_bounds.fetch_add(1, Ordering::Relaxed);
            return Err(StorageError::OutOfBounds {
                series: labels.to_string(),
                t_ms,
                min_ms: min,
            });
        }
        // References are never reused, so a known one is this series (it
        // is gone once head GC dropped the series: then by labels).
        let s = match (series_ref != 0)
            .then(|| self.db.head.get_ref(series_ref))
            .flatten()
        {
            Some(s) => s,
            None => self.db.head.get_or_create(labels, None).0,
        };
        let series_ref = s.series_ref;
        let last = match self.pending.get(&s.series_ref) {
            Some(p) => Some(*p),
            None => s.last(),
        };
        match check_after(last, labels, t_ms, v) {
            Ok(true) => {
                self.pending.insert(s.series_ref, Sample { t_ms, v });
                self.samples.push((s, t_ms, v));
                Ok(series_ref)
            }
            Ok(false) => Ok(series_ref),
            Err(e) => {
                self.db.stats.out_of_order.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    fn commit(self) -> Result<usize, StorageError> {
        if self.samples.is_empty() {
            return Ok(0);
        }
        let db = self.db;
        let mut unlogged: Vec<&Arc<MemSeries>> = Vec::new();
        let mut seen: rustc_hash::FxHashSet<u64> = Default::default();
        for (s, _, _) in &self.samples {
            if !s.is_logged() && seen.insert(s.series_ref) {
                unlogged.push(s);
            }
        }
        let mut series_rec = Vec::new();
        if !unlogged.is_empty() {
            encode_series(
                &mut series_rec,
                unlogged.iter().map(|s| (s.series_ref, &s.labels)),
            );
        }
        let refs: Vec<RefSample> = self
            .samples
            .iter()
            .map(|(s, t, v)| RefSample {
                series: s.series_ref,
                t_ms: *t,
                v: *v,
            })
            .collect();
        let mut samples_rec = Vec::with_capacity(refs.len() * 12 + 17);
        encode_samples(&mut samples_rec, &refs);
        {
            let mut wal = db.wal_lock();
            let Some(w) = wal.as_mut() else {
                return Err(StorageError::Write("storage is closed".into()));
            };
            let recs: Vec<&[u8]> = if series_rec.is_empty() {
                vec![&samples_rec]
            } else {
                vec![&series_rec, &samples_rec]
            };
            if let Err(e) = w.log(&recs) {
                db.stats.wal_failures.fetch_add(1, Ordering::Relaxed);
                return Err(StorageError::Write(format!("WAL: {e}")));
            }
        }
        for s in unlogged {
            s.mark_logged();
        }
        let mut n = 0;
        for (s, t, v) in &self.samples {
            if db.head.append(s, *t, *v) {
                n += 1;
            }
        }
        db.stats
            .samples_appended
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
