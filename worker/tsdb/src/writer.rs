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

use std::collections::{BTreeMap, BTreeSet};

use emberlens_model::{Labels, Sample};

use crate::chunkenc::Encoding;
use crate::chunkenc::xor::XorEncoder;
use crate::chunks::ChunkWriter;
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
/// by time). `ulid` names the block; `level` and `parents` fill the
/// compaction section (level 1 and no parents for a fresh block).
pub fn write_block(
    ulid: &str,
    series: Vec<(Labels, Vec<Sample>)>,
    compaction: Compaction,
) -> Result<BlockFiles, WriteError> {
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
    let mut encoded = Vec::with_capacity(series.len());
    for (labels, samples) in series {
        if let Some(w) = samples.windows(2).find(|w| w[1].t_ms <= w[0].t_ms) {
            return Err(WriteError::OutOfOrder {
                series: labels.to_string(),
                t_ms: w[1].t_ms,
            });
        }
        let chunks = encode_xor_chunks(&samples);
        encoded.push((labels, chunks));
    }
    write_block_chunks(ulid, encoded, compaction)
}

/// Writes one block from encoded chunks: `series` sorted by labels, labels
/// unique, each series' chunks in time order and not overlapping. The chunk
/// bytes are copied as they are (the server's head cuts chunks at block
/// boundaries, so cutting a block never re-encodes).
pub fn write_block_chunks(
    ulid: &str,
    series: Vec<(Labels, Vec<EncodedChunk>)>,
    compaction: Compaction,
) -> Result<BlockFiles, WriteError> {
    let mut chunks = ChunkWriter::default();
    let mut entries: Vec<(Labels, Vec<ChunkMeta>)> = Vec::with_capacity(series.len());
    let (mut min_t, mut max_t) = (i64::MAX, i64::MIN);
    let mut stats = BlockStats::default();
    let mut prev: Option<&Labels> = None;
    for (labels, encoded) in &series {
        if encoded.is_empty() {
            continue;
        }
        if prev.is_some_and(|p| p >= labels) {
            return Err(WriteError::Unsorted {
                series: labels.to_string(),
            });
        }
        prev = Some(labels);
        let mut metas = Vec::with_capacity(encoded.len());
        let mut last_t = i64::MIN;
        for c in encoded {
            if c.min_t <= last_t && !metas.is_empty() || c.max_t < c.min_t {
                return Err(WriteError::OutOfOrder {
                    series: labels.to_string(),
                    t_ms: c.min_t,
                });
            }
            last_t = c.max_t;
            let chunk_ref = chunks.write(c.encoding, &c.data);
            metas.push(ChunkMeta {
                min_t: c.min_t,
                max_t: c.max_t,
                chunk_ref,
            });
            min_t = min_t.min(c.min_t);
            max_t = max_t.max(c.max_t);
            stats.num_samples += c.samples;
        }
        stats.num_chunks += metas.len() as u64;
        entries.push((labels.clone(), metas));
    }
    if entries.is_empty() {
        return Err(WriteError::Empty);
    }
    stats.num_series = entries.len() as u64;
    finish_block(ulid, &entries, chunks, min_t, max_t, stats, compaction)
}

/// The index, meta and file list of a block whose chunks are written.
fn finish_block(
    ulid: &str,
    entries: &[(Labels, Vec<ChunkMeta>)],
    chunks: ChunkWriter,
    min_t: i64,
    max_t: i64,
    stats: BlockStats,
    compaction: Compaction,
) -> Result<BlockFiles, WriteError> {
    let index = write_index(entries)?;
    let meta = BlockMeta {
        ulid: ulid.to_string(),
        min_time: min_t,
        // maxTime is exclusive.
        max_time: max_t.saturating_add(1),
        stats,
        compaction: Compaction {
            level: compaction.level.max(1),
            sources: if compaction.sources.is_empty() {
                vec![ulid.to_string()]
            } else {
                compaction.sources
            },
            parents: compaction.parents,
            extra: compaction.extra,
        },
        version: 1,
        extra: Default::default(),
    };
    let mut files = vec![
        ("meta.json".to_string(), meta.to_json().into_bytes()),
        ("index".to_string(), index),
    ];
    for (i, seg) in chunks.finish().into_iter().enumerate() {
        files.push((format!("chunks/{:06}", i + 1), seg));
    }
    files.push(("tombstones".to_string(), Tombstones::default().encode()));
    Ok(BlockFiles { meta, files })
}

struct Buf(Vec<u8>);

impl Buf {
    fn be32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn be64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn pad(&mut self, align: usize) {
        while !self.0.len().is_multiple_of(align) {
            self.0.push(0);
        }
    }
    fn pos(&self) -> u64 {
        self.0.len() as u64
    }
    /// `len u32 | payload | CRC32(payload)`.
    fn section(&mut self, payload: &[u8]) -> Result<(), WriteError> {
        let len = u32::try_from(payload.len())
            .map_err(|_| WriteError::TooLarge(format!("a section of {} bytes", payload.len())))?;
        self.be32(len);
        self.0.extend_from_slice(payload);
        self.be32(crc32(payload));
        Ok(())
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Writes an index (v2) for series sorted by labels.
fn write_index(series: &[(Labels, Vec<ChunkMeta>)]) -> Result<Vec<u8>, WriteError> {
    let mut symbols: BTreeSet<&str> = BTreeSet::new();
    for (labels, _) in series {
        for l in labels.iter() {
            symbols.insert(&l.name);
            symbols.insert(&l.value);
        }
    }
    let symbol_ids: BTreeMap<&str, u32> = symbols
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, i as u32))
        .collect();
    let sym = |s: &str| symbol_ids.get(s).copied().unwrap_or(0);

    let mut w = Buf(Vec::with_capacity(1 << 16));
    w.be32(MAGIC_INDEX);
    w.0.push(2);

    // Symbols.
    let toc_symbols = w.pos();
    let mut p = Vec::new();
    p.extend_from_slice(&(symbols.len() as u32).to_be_bytes());
    for s in &symbols {
        put_str(&mut p, s);
    }
    w.section(&p)?;

    // Series, 16-byte aligned; remember ids for the postings.
    w.pad(16);
    let toc_series = w.pos();
    let mut postings: BTreeMap<(&str, &str), Vec<u32>> = BTreeMap::new();
    let mut all = Vec::with_capacity(series.len());
    for (labels, chunks) in series {
        w.pad(16);
        let id = u32::try_from(w.pos() / 16)
            .map_err(|_| WriteError::TooLarge("series section beyond 64 GiB".into()))?;
        all.push(id);
        let mut e = Vec::new();
        put_uvarint(&mut e, labels.len() as u64);
        for l in labels.iter() {
            put_uvarint(&mut e, u64::from(sym(&l.name)));
            put_uvarint(&mut e, u64::from(sym(&l.value)));
            postings.entry((&l.name, &l.value)).or_default().push(id);
        }
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
        put_uvarint(&mut w.0, e.len() as u64);
        w.0.extend_from_slice(&e);
        w.be32(crc32(&e));
    }

    // Label indices (legacy), one per label name.
    let mut names: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, value) in postings.keys() {
        names.entry(name).or_default().push(value);
    }
    w.pad(4);
    let toc_label_indices = w.pos();
    let mut label_index_offsets = Vec::with_capacity(names.len());
    for (name, values) in &names {
        w.pad(4);
        label_index_offsets.push((*name, w.pos()));
        let mut p = Vec::with_capacity(8 + 4 * values.len());
        p.extend_from_slice(&1u32.to_be_bytes());
        p.extend_from_slice(&(values.len() as u32).to_be_bytes());
        for v in values {
            p.extend_from_slice(&sym(v).to_be_bytes());
        }
        w.section(&p)?;
    }

    // Postings, the all-postings list (key "", "") first.
    w.pad(4);
    let toc_postings = w.pos();
    let mut postings_offsets: Vec<(&str, &str, u64)> = Vec::with_capacity(postings.len() + 1);
    let write_list = |w: &mut Buf, ids: &[u32]| -> Result<u64, WriteError> {
        w.pad(4);
        let at = w.pos();
        let mut p = Vec::with_capacity(4 + 4 * ids.len());
        p.extend_from_slice(&(ids.len() as u32).to_be_bytes());
        for id in ids {
            p.extend_from_slice(&id.to_be_bytes());
        }
        w.section(&p)?;
        Ok(at)
    };
    postings_offsets.push(("", "", write_list(&mut w, &all)?));
    for ((name, value), ids) in &postings {
        postings_offsets.push((name, value, write_list(&mut w, ids)?));
    }

    // Label offset table (legacy).
    let toc_label_table = w.pos();
    let mut p = Vec::new();
    p.extend_from_slice(&(label_index_offsets.len() as u32).to_be_bytes());
    for (name, off) in &label_index_offsets {
        put_uvarint(&mut p, 1);
        put_str(&mut p, name);
        put_uvarint(&mut p, *off);
    }
    w.section(&p)?;

    // Postings offset table.
    let toc_postings_table = w.pos();
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
    let toc_start = w.0.len();
    for off in [
        toc_symbols,
        toc_series,
        toc_label_indices,
        toc_label_table,
        toc_postings,
        toc_postings_table,
    ] {
        w.be64(off);
    }
    let crc = crc32(&w.0[toc_start..]);
    w.be32(crc);
    Ok(w.0)
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
