//! The TSDB blocks already in the data directory (`--storage.tsdb.path`),
//! read-only, queried together with the in-memory scrape store.
//!
//! Blocks are opened once at start-up with [`emberlens_tsdb::Db`] over the
//! native file set, index files read into memory, chunks read on demand; blocks added later are not seen until a restart, and
//! nothing is ever written to them (writing blocks is a later issue).
//! [`MergedStorage`] answers `select` from both sources and merges series
//! with the same labels as [`emberlens_tsdb::db::merge_series`] does for
//! blocks: on a shared timestamp, the block's sample wins.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use emberlens_model::{Labels, Matcher, Series, Storage, StorageError, StorageStats};
use emberlens_tsdb::{ByteSource, Db, FileSet, SourceError, TsdbError, db::merge_series};

use crate::fileset::{AnyFile, AnyFileSet};
use crate::storage::MemStorage;

/// The opened blocks of a data directory.
pub struct BlockStore {
    db: Db<AnyFile>,
}

impl fmt::Debug for BlockStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockStore")
            .field("blocks", &self.db.blocks().len())
            .finish()
    }
}

impl BlockStore {
    /// Opens every block under `dir` (a Prometheus data directory: `wal/`,
    /// `chunks_head/` and dot-directories are skipped). Blocks that fail to
    /// open are returned as errors beside the others.
    pub fn open(dir: &Path) -> Result<(Self, Vec<TsdbError>), TsdbError> {
        let fs = IndexInMemory(AnyFileSet::open(dir)?);
        let (db, errors) = Db::open_lenient(&fs);
        Ok((BlockStore { db }, errors))
    }

    /// The database.
    pub fn db(&self) -> &Db<AnyFile> {
        &self.db
    }
}

/// Block index files up to this size are read into memory at open (a
/// query reads one entry per series; chunks stay on disk, read by `pread`).
const MAX_INDEX_IN_MEMORY: u64 = 1 << 30;

/// A file set whose block `index` files are held in memory.
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

/// The blocks (if any) and the in-memory store, as one [`Storage`].
#[derive(Clone, Debug)]
pub struct MergedStorage {
    /// Read-only blocks, in `Db`'s order.
    pub blocks: Option<Arc<BlockStore>>,
    /// The scrape store.
    pub head: Arc<MemStorage>,
}

impl Storage for MergedStorage {
    fn select(
        &self,
        matchers: &[Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<Series>, StorageError> {
        let head = self.head.select(matchers, min_t_ms, max_t_ms)?;
        let Some(blocks) = &self.blocks else {
            return Ok(head);
        };
        let from_blocks = blocks.db.select(matchers, min_t_ms, max_t_ms)?;
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

    fn series_labels(
        &self,
        matchers: &[Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<Labels>, StorageError> {
        let head = self.head.series_labels(matchers, min_t_ms, max_t_ms)?;
        match &self.blocks {
            None => Ok(head),
            Some(b) => Ok(merge_sorted(
                Storage::series_labels(&b.db, matchers, min_t_ms, max_t_ms)?,
                head,
            )),
        }
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<String>, StorageError> {
        let head = self.head.label_names(matchers, min_t_ms, max_t_ms)?;
        match &self.blocks {
            None => Ok(head),
            Some(b) => Ok(merge_sorted(
                b.db.label_names(matchers, min_t_ms, max_t_ms)?,
                head,
            )),
        }
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_t_ms: i64,
        max_t_ms: i64,
    ) -> Result<Vec<String>, StorageError> {
        let head = self.head.label_values(name, matchers, min_t_ms, max_t_ms)?;
        match &self.blocks {
            None => Ok(head),
            Some(b) => Ok(merge_sorted(
                b.db.label_values(name, matchers, min_t_ms, max_t_ms)?,
                head,
            )),
        }
    }

    fn stats(&self) -> Result<StorageStats, StorageError> {
        let head = self.head.stats()?;
        match &self.blocks {
            None => Ok(head),
            Some(b) => Ok(b.db.stats()?.merge(head)),
        }
    }
}

/// Two sorted, duplicate-free lists as one.
fn merge_sorted<T: Ord>(a: Vec<T>, b: Vec<T>) -> Vec<T> {
    if a.is_empty() {
        return b;
    }
    if b.is_empty() {
        return a;
    }
    let mut all = a;
    all.extend(b);
    all.sort();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use emberlens_model::{Appendable, Appender, Sample, parse_selector};
    use emberlens_tsdb::meta::Compaction;
    use emberlens_tsdb::writer::{ulid, write_block};

    fn s(t_ms: i64, v: f64) -> Sample {
        Sample { t_ms, v }
    }

    #[test]
    fn merges_blocks_and_head_by_labels() {
        let dir = std::env::temp_dir().join(format!("emberlens-blocks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let up_a = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let up_b = Labels::from_pairs([("__name__", "up"), ("job", "b")]);
        let up_c = Labels::from_pairs([("__name__", "up"), ("job", "c")]);
        let block = write_block(
            &ulid(1, [7; 10]),
            vec![
                (up_a.clone(), vec![s(1_000, 1.0), s(2_000, 2.0)]),
                (up_b.clone(), vec![s(1_000, 10.0)]),
            ],
            Compaction::default(),
        )
        .unwrap();
        for (rel, bytes) in &block.files {
            let p = dir.join(&block.meta.ulid).join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        // A Prometheus data directory also holds a WAL; it is skipped.
        std::fs::create_dir_all(dir.join("wal")).unwrap();
        let (blocks, errors) = BlockStore::open(&dir).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(blocks.db().blocks().len(), 1);

        let head = Arc::new(MemStorage::new(i64::MAX / 4));
        let mut app = head.appender();
        app.append(&up_a, 2_000, 99.0).unwrap(); // same timestamp: the block wins
        app.append(&up_a, 3_000, 3.0).unwrap();
        app.append(&up_c, 3_000, 30.0).unwrap();
        app.commit().unwrap();
        let merged = MergedStorage {
            blocks: Some(Arc::new(blocks)),
            head,
        };
        let got = merged
            .select(&parse_selector("up").unwrap(), 0, 10_000)
            .unwrap();
        let labels: Vec<&Labels> = got.iter().map(|s| &s.labels).collect();
        assert_eq!(labels, [&up_a, &up_b, &up_c]);
        assert_eq!(
            got[0].samples,
            [s(1_000, 1.0), s(2_000, 2.0), s(3_000, 3.0)]
        );
        assert_eq!(got[1].samples, [s(1_000, 10.0)]);
        assert_eq!(got[2].samples, [s(3_000, 30.0)]);
        // Only the block in range: no head series.
        let early = merged
            .select(&parse_selector(r#"up{job=~"a|c"}"#).unwrap(), 0, 1_500)
            .unwrap();
        assert_eq!(early.len(), 1);
        assert_eq!(early[0].samples, [s(1_000, 1.0)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
