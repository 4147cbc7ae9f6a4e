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
use crate::meta::{BlockDesc, Compaction};
use crate::source::ByteSource;
use crate::writer::{BlockFiles, WriteError, write_block};

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

/// Compacts `blocks` into one block named `ulid`.
pub fn compact<S: ByteSource + Clone>(
    blocks: &[&Block<S>],
    ulid: &str,
) -> Result<BlockFiles, CompactError> {
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
    Ok(write_block(ulid, series, compaction)?)
}
