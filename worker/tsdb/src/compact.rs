//! Compaction: several blocks into one, as Prometheus's leveled compactor
//! does. Series are merged by labels; overlapping samples are merged with the
//! same rule as queries ([`crate::db::merge_samples`]); deleted samples
//! (tombstones) are dropped for good; the result's level is one more than the
//! highest input level, its sources the union of the inputs' sources and its
//! parents the inputs.
//!
//! Series holding native histograms are refused with
//! [`CompactError::Unsupported`]: the writer writes XOR chunks only, and a
//! compactor that silently dropped histogram samples would lose data.

use std::collections::BTreeMap;

use emberlens_model::{Labels, Sample};

use crate::block::Block;
use crate::db::merge_samples;
use crate::error::TsdbError;
use crate::index::SeriesEntry;
use crate::meta::{BlockDesc, BlockMeta, Compaction};
use crate::source::ByteSource;
use crate::writer::{
    BlockFiles, BlockSink, BlockWriter, EncodedChunk, MemSink, WriteError, write_block_to,
};

/// Why compaction failed.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    /// An input block could not be read.
    #[error(transparent)]
    Read(#[from] TsdbError),
    /// The output could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The inputs hold data the writer cannot write yet.
    #[error(
        "block {block}: series {series} holds native histograms, which compaction does not write yet"
    )]
    Unsupported {
        /// ULID of the input block.
        block: String,
        /// The series, in Prometheus text form.
        series: String,
    },
}

/// Compacts `blocks` into one block named `ulid`, kept in memory. See
/// [`compact_into`].
pub fn compact<S: ByteSource + Clone>(
    blocks: &[&Block<S>],
    ulid: &str,
) -> Result<BlockFiles, CompactError> {
    let (meta, sink) = compact_into(blocks, ulid, MemSink::default())?;
    Ok(BlockFiles {
        meta,
        files: sink.files,
    })
}

/// Compacts `blocks` into one block named `ulid`, written into `sink`;
/// returns its meta and the sink. Blocks that don't overlap in time and
/// have no tombstones are merged series by series, copying their chunks
/// as they are (what Prometheus's compactor does too): no sample is
/// decoded, and memory holds one series' chunks at a time plus the
/// writer's few bytes per series. Otherwise samples are decoded, merged and
/// re-encoded.
pub fn compact_into<S: ByteSource + Clone, K: BlockSink>(
    blocks: &[&Block<S>],
    ulid: &str,
    sink: K,
) -> Result<(BlockMeta, K), CompactError> {
    let mut sorted: Vec<&&Block<S>> = blocks.iter().collect();
    sorted.sort_by(|a, b| {
        (a.meta().min_time, &a.meta().ulid).cmp(&(b.meta().min_time, &b.meta().ulid))
    });
    let disjoint = sorted
        .windows(2)
        .all(|w| w[0].meta().max_time <= w[1].meta().min_time);
    if disjoint && sorted.iter().all(|b| b.tombstones().is_empty()) {
        return compact_chunks(&sorted, ulid, sink);
    }
    compact_samples(blocks, ulid, sink)
}

/// The compaction section of a block made from `sorted`.
fn compaction_of<S: ByteSource + Clone>(sorted: &[&&Block<S>]) -> Compaction {
    let mut sources: Vec<String> = sorted
        .iter()
        .flat_map(|b| b.meta().compaction.sources.iter().cloned())
        .collect();
    sources.sort();
    sources.dedup();
    Compaction {
        level: sorted
            .iter()
            .map(|b| b.meta().compaction.level)
            .max()
            .unwrap_or(0)
            + 1,
        sources,
        parents: sorted
            .iter()
            .map(|b| BlockDesc {
                ulid: b.meta().ulid.clone(),
                min_time: b.meta().min_time,
                max_time: b.meta().max_time,
            })
            .collect(),
        extra: Default::default(),
    }
}

/// One input block's series, read in label order.
struct Cursor<'b, S: ByteSource + Clone> {
    block: &'b Block<S>,
    ids: Vec<u32>,
    next: usize,
    current: Option<SeriesEntry>,
}

impl<S: ByteSource + Clone> Cursor<'_, S> {
    fn advance(&mut self) -> Result<(), TsdbError> {
        self.current = match self.ids.get(self.next) {
            Some(&id) => Some(self.block.index().series_uncached(id)?),
            None => None,
        };
        self.next += 1;
        Ok(())
    }
}

/// Merges disjoint blocks without tombstones by copying chunk bytes, one
/// series at a time: each block's series come in label order (series ids
/// follow label order in an index), so a k-way merge meets each series'
/// chunks from all blocks together, in time order.
fn compact_chunks<S: ByteSource + Clone, K: BlockSink>(
    sorted: &[&&Block<S>],
    ulid: &str,
    sink: K,
) -> Result<(BlockMeta, K), CompactError> {
    let mut cursors = Vec::with_capacity(sorted.len());
    for b in sorted {
        let mut c = Cursor {
            block: b,
            ids: b.index().all_postings()?,
            next: 0,
            current: None,
        };
        c.advance()?;
        cursors.push(c);
    }
    let mut w = BlockWriter::new(ulid, sink);
    let mut chunks: Vec<EncodedChunk> = Vec::new();
    while let Some(labels) = cursors
        .iter()
        .filter_map(|c| c.current.as_ref().map(|e| &e.labels))
        .min()
        .cloned()
    {
        chunks.clear();
        for c in cursors.iter_mut() {
            let Some(entry) = c.current.as_ref().filter(|e| e.labels == labels) else {
                continue;
            };
            for m in &entry.chunks {
                let raw = c.block.chunks().chunk(m.chunk_ref)?;
                // Every chunk encoding starts with its sample count (u16 BE).
                let samples = raw
                    .data
                    .get(..2)
                    .map_or(0, |n| u64::from(u16::from_be_bytes([n[0], n[1]])));
                chunks.push(EncodedChunk {
                    min_t: m.min_t,
                    max_t: m.max_t,
                    encoding: raw.encoding,
                    samples,
                    data: raw.data.into_owned(),
                });
            }
            c.advance()?;
        }
        w.add_series(&labels, &chunks)?;
    }
    // The block spans its inputs' ranges (as Prometheus's compactor).
    let (min, max) = (
        sorted.iter().map(|b| b.meta().min_time).min(),
        sorted.iter().map(|b| b.meta().max_time).max(),
    );
    if let (Some(min), Some(max)) = (min, max) {
        w.widen_time_range(min, max);
    }
    Ok(w.finish(compaction_of(sorted))?)
}

/// Merges blocks by decoding, merging and re-encoding their samples.
fn compact_samples<S: ByteSource + Clone, K: BlockSink>(
    blocks: &[&Block<S>],
    ulid: &str,
    sink: K,
) -> Result<(BlockMeta, K), CompactError> {
    let mut by_labels: BTreeMap<Labels, Vec<Vec<Sample>>> = BTreeMap::new();
    let mut sorted: Vec<&&Block<S>> = blocks.iter().collect();
    sorted.sort_by(|a, b| {
        (a.meta().min_time, &a.meta().ulid).cmp(&(b.meta().min_time, &b.meta().ulid))
    });
    let mut sources = Vec::new();
    let mut parents = Vec::new();
    let mut level = 0;
    for b in &sorted {
        let m = b.meta();
        for s in b.select(&[], i64::MIN, i64::MAX)? {
            if !s.histograms.is_empty() {
                return Err(CompactError::Unsupported {
                    block: m.ulid.clone(),
                    series: s.labels.to_string(),
                });
            }
            by_labels.entry(s.labels).or_default().push(s.samples);
        }
        level = level.max(m.compaction.level);
        sources.extend(m.compaction.sources.iter().cloned());
        parents.push(BlockDesc {
            ulid: m.ulid.clone(),
            min_time: m.min_time,
            max_time: m.max_time,
        });
    }
    sources.sort();
    sources.dedup();
    let series = by_labels
        .into_iter()
        .map(|(l, parts)| (l, merge_samples(parts)))
        .collect();
    let compaction = Compaction {
        level: level + 1,
        sources,
        parents,
        extra: Default::default(),
    };
    Ok(write_block_to(ulid, series, compaction, sink)?)
}
