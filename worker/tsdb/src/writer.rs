//! Writing blocks: chunk segments, the index (format v2), tombstones and
//! `meta.json`, in memory. The caller stores the files (the crate does no IO).
//!
//! The index is written in the order Prometheus's writer uses: symbols,
//! series (16-byte aligned), label indices (4-byte aligned), postings
//! (4-byte aligned, the all-postings list first), label offset table,
//! postings offset table, TOC. Label indices and the label offset table are
//! legacy sections no current reader needs; they are written so that old
//! readers still work.
//!
//! Samples are cut into XOR chunks of at most [`SAMPLES_PER_CHUNK`] samples, as
//! Prometheus's head and promtool's backfill do.

use std::collections::HashMap;

use emberlens_model::{Labels, Sample};

use crate::chunkenc::Encoding;
use crate::chunkenc::xor::XorEncoder;
use crate::chunks::{ChunkWriter, DEFAULT_MAX_SEGMENT_BYTES};
use crate::encoding::{crc32, put_uvarint, put_varint};
use crate::index::{ChunkMeta, MAGIC_INDEX};
use crate::meta::{BlockMeta, BlockStats, Compaction};
use crate::tombstones::Tombstones;

/// Samples per chunk, as Prometheus's head cuts them.
pub const SAMPLES_PER_CHUNK: usize = 120;

/// The files of a written block, relative to the block directory.
#[derive(Clone, Debug)]
pub struct BlockFiles {
    /// The block's meta (its `ulid` is the directory name).
    pub meta: BlockMeta,
    /// `(relative path, bytes)`: `meta.json`, `index`, `chunks/000001`…, `tombstones`.
    pub files: Vec<(String, Vec<u8>)>,
}

impl BlockFiles {
    /// Widens the block's time range to `[min_t, max_t)` (a head block spans
    /// its whole range, a compacted block its inputs') and rewrites
    /// `meta.json`.
    pub fn widen_time_range(&mut self, min_t: i64, max_t: i64) {
        self.meta.min_time = self.meta.min_time.min(min_t);
        self.meta.max_time = self.meta.max_time.max(max_t);
        let json = self.meta.to_json().into_bytes();
        for (rel, bytes) in self.files.iter_mut() {
            if rel == "meta.json" {
                bytes.clone_from(&json);
            }
        }
    }
}

/// Why a block could not be written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriteError {
    /// Samples of a series are not in strictly increasing time order.
    #[error("series {series}: sample at {t_ms} is not after the previous one")]
    OutOfOrder {
        /// The series, in Prometheus text form.
        series: String,
        /// The offending timestamp.
        t_ms: i64,
    },
    /// Nothing to write.
    #[error("no samples to write")]
    Empty,
    /// Series passed out of label order, or twice.
    #[error("series {series} is not after the previous one in label order")]
    Unsorted {
        /// The series, in Prometheus text form.
        series: String,
    },
    /// The index would exceed a format limit.
    #[error("index too large: {0}")]
    TooLarge(String),
    /// The sink could not store a file.
    #[error("{file}: {reason}")]
    Sink {
        /// The file (its path, as the sink knows it).
        file: String,
        /// What went wrong.
        reason: String,
    },
}

/// Crockford base32 ULID from a millisecond time and 10 random bytes.
pub fn ulid(time_ms: u64, random: [u8; 10]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut v: u128 = u128::from(time_ms & 0xFFFF_FFFF_FFFF) << 80;
    for (i, b) in random.iter().enumerate() {
        v |= u128::from(*b) << (8 * (9 - i));
    }
    (0..26)
        .rev()
        .map(|i| ALPHABET[((v >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// One encoded chunk, ready to be written to a block.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedChunk {
    /// First sample's timestamp.
    pub min_t: i64,
    /// Last sample's timestamp.
    pub max_t: i64,
    /// How the data is encoded (only [`Encoding::Xor`] is written today).
    pub encoding: Encoding,
    /// Samples in the chunk (for the block's stats).
    pub samples: u64,
    /// The chunk's bytes (header and bit stream).
    pub data: Vec<u8>,
}

/// Cuts `samples` (sorted by time) into XOR chunks of at most
/// [`SAMPLES_PER_CHUNK`] samples.
pub fn encode_xor_chunks(samples: &[Sample]) -> Vec<EncodedChunk> {
    samples
        .chunks(SAMPLES_PER_CHUNK)
        .map(|part| {
            let mut enc = XorEncoder::new();
            for s in part {
                enc.append(s.t_ms, s.v);
            }
            EncodedChunk {
                min_t: part[0].t_ms,
                max_t: part[part.len() - 1].t_ms,
                encoding: Encoding::Xor,
                samples: part.len() as u64,
                data: enc.bytes().to_vec(),
            }
        })
        .collect()
}

/// Writes one block holding `series` (any order; each one's samples sorted
/// by time), kept in memory. `ulid` names the block; `compaction` fills the
/// compaction section (level 1 and no parents for a fresh block).
pub fn write_block(
    ulid: &str,
    series: Vec<(Labels, Vec<Sample>)>,
    compaction: Compaction,
) -> Result<BlockFiles, WriteError> {
    let (meta, sink) = write_block_to(ulid, series, compaction, MemSink::default())?;
    Ok(BlockFiles {
        meta,
        files: sink.files,
    })
}

/// Like [`write_block`], writing into `sink`; returns the meta and the sink.
pub fn write_block_to<S: BlockSink>(
    ulid: &str,
    series: Vec<(Labels, Vec<Sample>)>,
    compaction: Compaction,
    sink: S,
) -> Result<(BlockMeta, S), WriteError> {
    let mut series: Vec<(Labels, Vec<Sample>)> =
        series.into_iter().filter(|(_, s)| !s.is_empty()).collect();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    series.dedup_by(|b, a| {
        if a.0 == b.0 {
            // Same labels twice: merge, keeping the first one's samples on ties.
            let mut merged = std::mem::take(&mut a.1);
            merged.append(&mut b.1);
            merged.sort_by_key(|s| s.t_ms);
            merged.dedup_by_key(|s| s.t_ms);
            a.1 = merged;
            true
        } else {
            false
        }
    });
    let mut w = BlockWriter::new(ulid, sink);
    for (labels, samples) in series {
        if let Some(win) = samples.windows(2).find(|win| win[1].t_ms <= win[0].t_ms) {
            return Err(WriteError::OutOfOrder {
                series: labels.to_string(),
                t_ms: win[1].t_ms,
            });
        }
        w.add_series(&labels, &encode_xor_chunks(&samples))?;
    }
    w.finish(compaction)
}

/// Writes one block from encoded chunks: `series` sorted by labels, labels
/// unique, each series' chunks in time order and not overlapping. The chunk
/// bytes are copied as they are (the server's head cuts chunks at block
/// boundaries, so cutting a block never re-encodes). The files are kept in
/// memory; [`BlockWriter`] streams them to a [`BlockSink`] instead.
pub fn write_block_chunks(
    ulid: &str,
    series: Vec<(Labels, Vec<EncodedChunk>)>,
    compaction: Compaction,
) -> Result<BlockFiles, WriteError> {
    let mut w = BlockWriter::new(ulid, MemSink::default());
    for (labels, chunks) in &series {
        w.add_series(labels, chunks)?;
    }
    drop(series);
    let (meta, sink) = w.finish(compaction)?;
    Ok(BlockFiles {
        meta,
        files: sink.files,
    })
}

/// Where a block's files go: the crate does no IO, the caller stores the
/// bytes. Each file is written front to back in one go, one file after the
/// other: the chunk segments while series are added, then `index`,
/// `tombstones` and `meta.json` last. A file is complete once the next one
/// starts, or when [`BlockWriter::finish`] returns.
pub trait BlockSink {
    /// Appends `bytes` to the file `rel` (relative to the block directory,
    /// `/`-separated), creating it on first use.
    fn append(&mut self, rel: &str, bytes: &[u8]) -> Result<(), WriteError>;
}

/// A [`BlockSink`] that keeps the files in memory.
#[derive(Clone, Debug, Default)]
pub struct MemSink {
    /// `(relative path, bytes)`, in the order the files were started.
    pub files: Vec<(String, Vec<u8>)>,
}

impl BlockSink for MemSink {
    fn append(&mut self, rel: &str, bytes: &[u8]) -> Result<(), WriteError> {
        match self.files.iter_mut().rev().find(|(r, _)| r == rel) {
            Some((_, b)) => b.extend_from_slice(bytes),
            None => self.files.push((rel.to_string(), bytes.to_vec())),
        }
        Ok(())
    }
}

/// Writes a block series by series, as Prometheus's compactor does: chunks
/// go to the sink as they are added, and per series only its label pairs
/// (as symbol numbers) and chunk metas are kept until the index is written
/// at [`finish`](Self::finish) (the index starts with the symbol table, so
/// it can only be written once every series is known). That is a few dozen
/// bytes per series instead of the labels and chunk bytes of the whole
/// block.
pub struct BlockWriter<S: BlockSink> {
    sink: S,
    ulid: String,
    chunks: ChunkWriter,
    /// Every label name and value seen, numbered in order of appearance.
    symbols: HashMap<Box<str>, u32>,
    /// Each series' `(name, value)` symbol numbers, all series end to end.
    label_ids: Vec<u32>,
    /// Where each series' pairs end in `label_ids`.
    label_ends: Vec<usize>,
    /// Each series' chunks, all series end to end.
    metas: Vec<ChunkMeta>,
    /// Where each series' chunks end in `metas`.
    meta_ends: Vec<usize>,
    /// The last series added (to check the order).
    prev: Option<Labels>,
    min_t: i64,
    max_t: i64,
    stats: BlockStats,
    span: Option<(i64, i64)>,
}

impl<S: BlockSink> BlockWriter<S> {
    /// A writer for the block named `ulid`, writing into `sink`.
    pub fn new(ulid: &str, sink: S) -> Self {
        Self::with_segment_size(ulid, sink, DEFAULT_MAX_SEGMENT_BYTES)
    }

    /// Like [`new`](Self::new), cutting chunk segments at `max_segment_bytes`.
    pub fn with_segment_size(ulid: &str, sink: S, max_segment_bytes: u64) -> Self {
        BlockWriter {
            sink,
            ulid: ulid.to_string(),
            chunks: ChunkWriter::new(max_segment_bytes),
            symbols: HashMap::new(),
            label_ids: Vec::new(),
            label_ends: Vec::new(),
            metas: Vec::new(),
            meta_ends: Vec::new(),
            prev: None,
            min_t: i64::MAX,
            max_t: i64::MIN,
            stats: BlockStats::default(),
            span: None,
        }
    }

    /// Series added so far.
    pub fn series(&self) -> usize {
        self.label_ends.len()
    }

    /// Adds one series: `labels` after the previous series' in label order,
    /// `chunks` in time order and not overlapping. A series without chunks
    /// is skipped.
    pub fn add_series(
        &mut self,
        labels: &Labels,
        chunks: &[EncodedChunk],
    ) -> Result<(), WriteError> {
        if chunks.is_empty() {
            return Ok(());
        }
        if self.prev.as_ref().is_some_and(|p| p >= labels) {
            return Err(WriteError::Unsorted {
                series: labels.to_string(),
            });
        }
        let mut last_t: Option<i64> = None;
        for c in chunks {
            if c.max_t < c.min_t || last_t.is_some_and(|t| c.min_t <= t) {
                return Err(WriteError::OutOfOrder {
                    series: labels.to_string(),
                    t_ms: c.min_t,
                });
            }
            last_t = Some(c.max_t);
        }
        for c in chunks {
            let chunk_ref = self.chunks.write(&mut self.sink, c.encoding, &c.data)?;
            self.metas.push(ChunkMeta {
                min_t: c.min_t,
                max_t: c.max_t,
                chunk_ref,
            });
            self.min_t = self.min_t.min(c.min_t);
            self.max_t = self.max_t.max(c.max_t);
            self.stats.num_samples += c.samples;
        }
        self.stats.num_chunks += chunks.len() as u64;
        self.meta_ends.push(self.metas.len());
        for l in labels.iter() {
            let name = self.intern(&l.name)?;
            let value = self.intern(&l.value)?;
            self.label_ids.extend([name, value]);
        }
        self.label_ends.push(self.label_ids.len());
        match &mut self.prev {
            Some(p) => p.clone_from(labels),
            None => self.prev = Some(labels.clone()),
        }
        Ok(())
    }

    fn intern(&mut self, s: &str) -> Result<u32, WriteError> {
        if let Some(&id) = self.symbols.get(s) {
            return Ok(id);
        }
        let id = u32::try_from(self.symbols.len())
            .map_err(|_| WriteError::TooLarge("more than 2^32 symbols".into()))?;
        self.symbols.insert(s.into(), id);
        Ok(id)
    }

    /// Makes the block span at least `[min_t, max_t)` (a head block spans
    /// its whole range, a compacted block its inputs').
    pub fn widen_time_range(&mut self, min_t: i64, max_t: i64) {
        self.span = Some(match self.span {
            Some((a, b)) => (a.min(min_t), b.max(max_t)),
            None => (min_t, max_t),
        });
    }

    /// Writes the index, tombstones and `meta.json`; returns the block's
    /// meta and the sink. `compaction` fills the compaction section (level 1
    /// and no sources for a fresh block).
    pub fn finish(mut self, compaction: Compaction) -> Result<(BlockMeta, S), WriteError> {
        if self.label_ends.is_empty() {
            return Err(WriteError::Empty);
        }
        self.stats.num_series = self.label_ends.len() as u64;
        self.write_index()?;
        self.sink
            .append("tombstones", &Tombstones::default().encode())?;
        let (mut min_time, mut max_time) = (self.min_t, self.max_t.saturating_add(1));
        if let Some((a, b)) = self.span {
            min_time = min_time.min(a);
            max_time = max_time.max(b);
        }
        let meta = BlockMeta {
            ulid: self.ulid.clone(),
            min_time,
            // maxTime is exclusive.
            max_time,
            stats: self.stats.clone(),
            compaction: Compaction {
                level: compaction.level.max(1),
                sources: if compaction.sources.is_empty() {
                    vec![self.ulid.clone()]
                } else {
                    compaction.sources
                },
                parents: compaction.parents,
                extra: compaction.extra,
            },
            version: 1,
            extra: Default::default(),
        };
        self.sink.append("meta.json", meta.to_json().as_bytes())?;
        Ok((meta, self.sink))
    }

    /// Writes the index (format v2): symbols, series, label indices,
    /// postings, label offset table, postings offset table, TOC.
    fn write_index(&mut self) -> Result<(), WriteError> {
        // Symbols, sorted; series refer to them by rank.
        let mut sorted: Vec<(&str, u32)> = self.symbols.iter().map(|(s, &id)| (&**s, id)).collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut rank = vec![0u32; sorted.len()];
        for (i, (_, id)) in sorted.iter().enumerate() {
            rank[*id as usize] = i as u32;
        }
        let names: Vec<&str> = sorted.into_iter().map(|(s, _)| s).collect();
        for id in self.label_ids.iter_mut() {
            *id = rank[*id as usize];
        }
        drop(rank);

        let mut w = IndexOut {
            sink: &mut self.sink,
            buf: Vec::with_capacity(INDEX_BUFFER),
            pos: 0,
        };
        w.be32(MAGIC_INDEX)?;
        w.bytes(&[2])?;

        let toc_symbols = w.pos;
        let mut p = Vec::new();
        p.extend_from_slice(&(names.len() as u32).to_be_bytes());
        for s in &names {
            put_str(&mut p, s);
        }
        w.section(&p)?;

        // Series, 16-byte aligned; an entry's id is its offset / 16.
        w.pad(16)?;
        let toc_series = w.pos;
        let mut series_ids = Vec::with_capacity(self.label_ends.len());
        let mut e = Vec::new();
        let (mut label_from, mut meta_from) = (0, 0);
        for (&label_end, &meta_end) in self.label_ends.iter().zip(&self.meta_ends) {
            w.pad(16)?;
            let id = u32::try_from(w.pos / 16)
                .map_err(|_| WriteError::TooLarge("series section beyond 64 GiB".into()))?;
            series_ids.push(id);
            e.clear();
            let pairs = &self.label_ids[label_from..label_end];
            put_uvarint(&mut e, (pairs.len() / 2) as u64);
            for s in pairs {
                put_uvarint(&mut e, u64::from(*s));
            }
            let chunks = &self.metas[meta_from..meta_end];
            put_uvarint(&mut e, chunks.len() as u64);
            let mut prev: Option<&ChunkMeta> = None;
            for c in chunks {
                match prev {
                    None => {
                        put_varint(&mut e, c.min_t);
                        put_uvarint(&mut e, (c.max_t - c.min_t) as u64);
                        put_uvarint(&mut e, c.chunk_ref);
                    }
                    Some(p) => {
                        put_uvarint(&mut e, (c.min_t - p.max_t) as u64);
                        put_uvarint(&mut e, (c.max_t - c.min_t) as u64);
                        put_varint(&mut e, c.chunk_ref as i64 - p.chunk_ref as i64);
                    }
                }
                prev = Some(c);
            }
            let mut len = Vec::with_capacity(5);
            put_uvarint(&mut len, e.len() as u64);
            w.bytes(&len)?;
            w.bytes(&e)?;
            w.be32(crc32(&e))?;
            label_from = label_end;
            meta_from = meta_end;
        }
        self.metas = Vec::new();
        self.meta_ends = Vec::new();

        // Postings lists by counting: one slot per (name, value) pair in
        // symbol order, each filled with its series in id order.
        let key = |pair: &[u32]| (u64::from(pair[0]) << 32) | u64::from(pair[1]);
        let mut slot_of: HashMap<u64, usize> = HashMap::new();
        for pair in self.label_ids.chunks_exact(2) {
            let next = slot_of.len();
            slot_of.entry(key(pair)).or_insert(next);
        }
        let mut keys: Vec<u64> = slot_of.keys().copied().collect();
        keys.sort_unstable();
        for (i, k) in keys.iter().enumerate() {
            slot_of.insert(*k, i);
        }
        let mut starts = vec![0usize; keys.len() + 1];
        for pair in self.label_ids.chunks_exact(2) {
            if let Some(&slot) = slot_of.get(&key(pair)) {
                starts[slot + 1] += 1;
            }
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut next = starts.clone();
        let mut lists = vec![0u32; self.label_ids.len() / 2];
        let mut from = 0;
        for (&end, &id) in self.label_ends.iter().zip(&series_ids) {
            for pair in self.label_ids[from..end].chunks_exact(2) {
                if let Some(&slot) = slot_of.get(&key(pair)) {
                    lists[next[slot]] = id;
                    next[slot] += 1;
                }
            }
            from = end;
        }
        drop(slot_of);
        drop(next);
        self.label_ids = Vec::new();
        self.label_ends = Vec::new();
        let name_of = |k: u64| names[(k >> 32) as usize];
        let value_of = |k: u64| names[(k & 0xFFFF_FFFF) as usize];

        // Label indices (legacy), one per label name: its values.
        w.pad(4)?;
        let toc_label_indices = w.pos;
        let mut label_index_offsets: Vec<(&str, u64)> = Vec::new();
        let mut i = 0;
        while i < keys.len() {
            let name = keys[i] >> 32;
            let j = i + keys[i..].iter().take_while(|k| *k >> 32 == name).count();
            w.pad(4)?;
            label_index_offsets.push((name_of(keys[i]), w.pos));
            let mut p = Vec::with_capacity(8 + 4 * (j - i));
            p.extend_from_slice(&1u32.to_be_bytes());
            p.extend_from_slice(&((j - i) as u32).to_be_bytes());
            for k in &keys[i..j] {
                p.extend_from_slice(&((k & 0xFFFF_FFFF) as u32).to_be_bytes());
            }
            w.section(&p)?;
            i = j;
        }

        // Postings, the all-postings list (key "", "") first.
        w.pad(4)?;
        let toc_postings = w.pos;
        let mut postings_offsets: Vec<(&str, &str, u64)> = Vec::with_capacity(keys.len() + 1);
        postings_offsets.push(("", "", w.postings_list(&series_ids)?));
        drop(series_ids);
        for (slot, k) in keys.iter().enumerate() {
            let at = w.postings_list(&lists[starts[slot]..starts[slot + 1]])?;
            postings_offsets.push((name_of(*k), value_of(*k), at));
        }
        drop(lists);

        // Label offset table (legacy).
        let toc_label_table = w.pos;
        let mut p = Vec::new();
        p.extend_from_slice(&(label_index_offsets.len() as u32).to_be_bytes());
        for (name, off) in &label_index_offsets {
            put_uvarint(&mut p, 1);
            put_str(&mut p, name);
            put_uvarint(&mut p, *off);
        }
        w.section(&p)?;

        // Postings offset table.
        let toc_postings_table = w.pos;
        let mut p = Vec::new();
        p.extend_from_slice(&(postings_offsets.len() as u32).to_be_bytes());
        for (name, value, off) in &postings_offsets {
            put_uvarint(&mut p, 2);
            put_str(&mut p, name);
            put_str(&mut p, value);
            put_uvarint(&mut p, *off);
        }
        w.section(&p)?;

        // TOC.
        let mut toc = Vec::with_capacity(52);
        for off in [
            toc_symbols,
            toc_series,
            toc_label_indices,
            toc_label_table,
            toc_postings,
            toc_postings_table,
        ] {
            toc.extend_from_slice(&off.to_be_bytes());
        }
        let crc = crc32(&toc);
        toc.extend_from_slice(&crc.to_be_bytes());
        w.bytes(&toc)?;
        w.flush()
    }
}

/// Index bytes are handed to the sink in pieces of about this size.
const INDEX_BUFFER: usize = 1 << 20;

/// The index file being written: buffered, with its length so far.
struct IndexOut<'s, S: BlockSink> {
    sink: &'s mut S,
    buf: Vec<u8>,
    pos: u64,
}

impl<S: BlockSink> IndexOut<'_, S> {
    fn bytes(&mut self, b: &[u8]) -> Result<(), WriteError> {
        self.buf.extend_from_slice(b);
        self.pos += b.len() as u64;
        if self.buf.len() >= INDEX_BUFFER {
            self.flush()?;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), WriteError> {
        if !self.buf.is_empty() {
            self.sink.append("index", &self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
    fn be32(&mut self, v: u32) -> Result<(), WriteError> {
        self.bytes(&v.to_be_bytes())
    }
    fn pad(&mut self, align: u64) -> Result<(), WriteError> {
        let n = (align - self.pos % align) % align;
        self.bytes(&[0u8; 16][..n as usize])
    }
    /// `len u32 | payload | CRC32(payload)`.
    fn section(&mut self, payload: &[u8]) -> Result<(), WriteError> {
        let len = u32::try_from(payload.len())
            .map_err(|_| WriteError::TooLarge(format!("a section of {} bytes", payload.len())))?;
        self.be32(len)?;
        self.bytes(payload)?;
        self.be32(crc32(payload))
    }
    /// One postings list, 4-byte aligned; returns its offset.
    fn postings_list(&mut self, ids: &[u32]) -> Result<u64, WriteError> {
        self.pad(4)?;
        let at = self.pos;
        let mut p = Vec::with_capacity(4 + 4 * ids.len());
        p.extend_from_slice(&(ids.len() as u32).to_be_bytes());
        for id in ids {
            p.extend_from_slice(&id.to_be_bytes());
        }
        self.section(&p)?;
        Ok(at)
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Block, MemFileSet};

    fn series(name: &str, job: &str, n: i64) -> (Labels, Vec<Sample>) {
        let samples = (0..n)
            .map(|i| Sample {
                t_ms: 1_000 + i * 15_000,
                v: (i * i) as f64 / 7.0,
            })
            .collect();
        (
            Labels::from_pairs([("__name__", name), ("job", job)]),
            samples,
        )
    }

    #[test]
    fn ulids_look_like_prometheus_ones() {
        assert_eq!(ulid(0, [0; 10]), "00000000000000000000000000");
        let u = ulid(1_795_301_193_122, [0xff; 10]);
        assert_eq!(u.len(), 26);
        assert!(u.ends_with("ZZZZZZZZZZZZZZZZ"));
    }

    #[test]
    fn written_blocks_read_back() {
        let input = vec![
            series("up", "b", 300),
            series("up", "a", 5),
            series("other", "a", 1),
        ];
        let files = write_block("01TEST", input.clone(), Compaction::default()).unwrap();
        let mut fs = MemFileSet::new();
        for (p, b) in &files.files {
            fs.insert(format!("01TEST/{p}"), b.clone());
        }
        let block = Block::open(&fs, "01TEST").unwrap();
        assert_eq!(block.meta().stats.num_samples, 306);
        assert_eq!(block.meta().stats.num_chunks, 3 + 1 + 1);
        let got = block.select(&[], i64::MIN, i64::MAX).unwrap();
        let mut want = input;
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got.len(), 3);
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.labels, w.0);
            assert_eq!(g.samples, w.1);
        }
        let m = emberlens_model::parse_selector(r#"up{job=~"a|c"}"#).unwrap();
        assert_eq!(block.select(&m, i64::MIN, i64::MAX).unwrap().len(), 1);
    }

    #[test]
    fn undecoded_encodings_are_reported_by_name() {
        let files = write_block("01E", vec![series("up", "a", 3)], Compaction::default()).unwrap();
        let mut fs = MemFileSet::new();
        for (p, b) in &files.files {
            let mut b = b.clone();
            if p == "chunks/000001" {
                // First chunk: uvarint length at 8, encoding byte after it; fix the CRC.
                let (len, n) = crate::encoding::read_uvarint(&b[8..]).unwrap();
                let enc_at = 8 + n;
                b[enc_at] = Encoding::Xor2.byte();
                let end = enc_at + 1 + len as usize;
                let crc = crc32(&b[enc_at..end]);
                b[end..end + 4].copy_from_slice(&crc.to_be_bytes());
            }
            fs.insert(format!("01E/{p}"), b);
        }
        let err = Block::open(&fs, "01E")
            .unwrap()
            .select(&[], i64::MIN, i64::MAX)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "01E/chunks/000001: chunk encoding XOR2 (chunk ref 0x8) is not decoded yet"
        );
    }

    #[test]
    fn out_of_order_samples_are_refused() {
        let l = Labels::from_pairs([("__name__", "x")]);
        let bad = vec![(
            l,
            vec![Sample { t_ms: 2, v: 1.0 }, Sample { t_ms: 2, v: 2.0 }],
        )];
        assert!(matches!(
            write_block("U", bad, Compaction::default()),
            Err(WriteError::OutOfOrder { .. })
        ));
        assert_eq!(
            write_block("U", vec![], Compaction::default()).unwrap_err(),
            WriteError::Empty
        );
    }
}
