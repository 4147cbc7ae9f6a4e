//! One block: `meta.json`, `index`, `chunks/`, `tombstones`.

use emberlens_model::par::par_map;
use emberlens_model::{HistogramSample, Labels, Matcher, Sample, Series};

use crate::chunkenc::Encoding;
use crate::chunkenc::histogram::{FloatHistogramIter, HistogramIter};
use crate::chunkenc::xor::XorIter;
use crate::chunks::ChunkReader;
use crate::error::TsdbError;
use crate::index::{ChunkMeta, IndexReader, SeriesEntry};

/// Bytes of chunk files (with the gaps a prefetch reads through, see
/// `source::PREFETCH_GAP`) announced at once by `select`: less than half
/// the worker's page cache, so a batch's pages outlive its decoding.
const PREFETCH_BATCH: u64 = 6 << 20;
/// A chunk's size when nothing follows it in its series (a guess; the read
/// of the chunk itself is exact).
const CHUNK_GUESS: u64 = 1024;
use crate::meta::BlockMeta;
use crate::postings::postings_for_matchers;
use crate::source::{ByteSource, FileSet, PREFETCH_GAP};
use crate::tombstones::Tombstones;

/// An opened block.
pub struct Block<S> {
    dir: String,
    meta: BlockMeta,
    index: IndexReader<S>,
    chunks: ChunkReader<S>,
    tombstones: Tombstones,
    /// Bytes of index + chunks + tombstones + meta.json, as Prometheus's `Block.Size()`.
    size_bytes: u64,
}

fn read_all<S: ByteSource>(path: &str, src: &S) -> Result<Vec<u8>, TsdbError> {
    let len = usize::try_from(src.len()).map_err(|_| TsdbError::Unsupported {
        file: path.to_string(),
        what: "file larger than the address space".into(),
    })?;
    src.read_at(0, len)
        .map(|b| b.into_owned())
        .map_err(|detail| TsdbError::Read {
            file: path.to_string(),
            detail,
        })
}

impl<S: ByteSource + Clone> Block<S> {
    /// Opens the block in directory `dir` (a path prefix inside `fs`, no
    /// trailing slash; `""` for the root).
    pub fn open<F: FileSet<File = S>>(fs: &F, dir: &str) -> Result<Self, TsdbError> {
        let join = |name: &str| {
            if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            }
        };
        let paths = fs.paths();
        let open = |path: &str| {
            if !paths.iter().any(|p| p == path) {
                return Err(TsdbError::Missing(path.to_string()));
            }
            fs.open(path).map_err(|detail| TsdbError::Read {
                file: path.to_string(),
                detail,
            })
        };
        let meta_path = join("meta.json");
        let meta_bytes = read_all(&meta_path, &open(&meta_path)?)?;
        let meta = BlockMeta::parse(&meta_path, &meta_bytes)?;
        let index_path = join("index");
        let index_file = open(&index_path)?;
        let mut size_bytes = meta_bytes.len() as u64 + index_file.len();
        let index = IndexReader::open(&index_path, index_file)?;
        let chunk_prefix = join("chunks/");
        let mut segments = Vec::new();
        for p in paths.iter().filter(|p| p.starts_with(&chunk_prefix)) {
            let name = &p[chunk_prefix.len()..];
            if name.len() == 6 && name.bytes().all(|b| b.is_ascii_digit()) {
                segments.push((p.clone(), open(p)?));
            }
        }
        segments.sort_by(|a, b| a.0.cmp(&b.0));
        for (i, (p, _)) in segments.iter().enumerate() {
            if !p.ends_with(&format!("{:06}", i + 1)) {
                return Err(TsdbError::Missing(format!(
                    "{chunk_prefix}{:06} (segments must be numbered from 000001 without gaps)",
                    i + 1
                )));
            }
        }
        let chunks = ChunkReader::open(segments)?;
        let tomb_path = join("tombstones");
        size_bytes += chunks.size();
        let tombstones = match open(&tomb_path) {
            Ok(src) => {
                size_bytes += src.len();
                Tombstones::parse(&tomb_path, &read_all(&tomb_path, &src)?)?
            }
            // Prometheus treats a missing tombstones file as "no deletions".
            Err(TsdbError::Missing(_)) => Tombstones::default(),
            Err(e) => return Err(e),
        };
        Ok(Block {
            dir: dir.to_string(),
            meta,
            index,
            chunks,
            tombstones,
            size_bytes,
        })
    }

    /// The block's directory inside its file set.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// `meta.json`.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The index reader.
    pub fn index(&self) -> &IndexReader<S> {
        &self.index
    }

    /// The chunk reader.
    pub fn chunks(&self) -> &ChunkReader<S> {
        &self.chunks
    }

    /// Bytes on disk: index, chunks, tombstones and meta.json.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// The tombstones.
    pub fn tombstones(&self) -> &Tombstones {
        &self.tombstones
    }

    /// Series matching `matchers` with their samples (floats and native
    /// histograms, deleted ones removed) in `[min_t, max_t]`, sorted by
    /// labels; series with no sample left are dropped.
    pub fn select(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<Series>, TsdbError> {
        if max_t < self.meta.min_time || min_t >= self.meta.max_time {
            return Ok(Vec::new());
        }
        let ids = postings_for_matchers(&self.index, matchers)?;
        let wanted = |c: &&ChunkMeta| c.max_t >= min_t && c.min_t <= max_t;
        // Series decode independently: natively over all cores (`par_map`).
        let entries = par_map(&ids, 64, |&id| self.index.series(id).map(|e| (id, e)));
        let one = |(id, entry): &(u32, SeriesEntry)| -> Result<Option<Series>, TsdbError> {
            let mut series = Series {
                labels: entry.labels.clone(),
                ..Series::default()
            };
            for c in entry.chunks.iter().filter(wanted) {
                self.decode_into(c, u64::from(*id), min_t, max_t, &mut series)?;
            }
            Ok((!series.samples.is_empty() || !series.histograms.is_empty()).then_some(series))
        };
        let mut out = Vec::with_capacity(ids.len());
        let mut entries = entries.into_iter();
        loop {
            // A batch of series whose chunks span about PREFETCH_BATCH bytes,
            // announced to the chunk files first: where every read costs a
            // round trip (the worker's `File`s), they come in a few reads.
            let mut batch = Vec::new();
            let mut ranges = Vec::new();
            let mut bytes = 0;
            for e in entries.by_ref() {
                let e = e?;
                for (k, c) in e.1.chunks.iter().enumerate() {
                    if !wanted(&c) {
                        continue;
                    }
                    let (seg, off) = (c.chunk_ref >> 32, c.chunk_ref & 0xffff_ffff);
                    // A series' next chunk usually starts where this one ends.
                    let end =
                        e.1.chunks
                            .get(k + 1)
                            .map(|n| (n.chunk_ref >> 32, n.chunk_ref & 0xffff_ffff))
                            .filter(|&(s, o)| s == seg && o > off && o - off <= 1 << 20)
                            .map_or(off + CHUNK_GUESS, |(_, o)| o);
                    // Sources read small gaps through: count them.
                    let from = match ranges.last() {
                        Some(&(s, _, e)) if s == seg && off >= e && off - e <= PREFETCH_GAP => e,
                        _ => off,
                    };
                    bytes += end.saturating_sub(from);
                    ranges.push((seg, off, end));
                }
                batch.push(e);
                if bytes >= PREFETCH_BATCH {
                    break;
                }
            }
            if batch.is_empty() {
                break;
            }
            self.chunks.prefetch(&mut ranges);
            for s in par_map(&batch, 64, one) {
                out.extend(s?);
            }
        }
        // Postings are in index order, which is label order for blocks
        // written by Prometheus; sort anyway so merged output is well defined.
        if !out.is_sorted_by(|a, b| a.labels <= b.labels) {
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
        }
        Ok(out)
    }

    /// The labels of the series matching `matchers` that have a chunk
    /// overlapping `[min_t, max_t]` not wholly deleted by a tombstone,
    /// sorted. Reads only the index (postings and series entries), no
    /// chunk, as Prometheus's block querier does for the series API; so
    /// a series whose chunk spans the range without a sample inside it is
    /// included (where [`Block::select`] would drop it).
    pub fn series_labels(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<Labels>, TsdbError> {
        if max_t < self.meta.min_time || min_t >= self.meta.max_time {
            return Ok(Vec::new());
        }
        let ids = postings_for_matchers(&self.index, matchers)?;
        let live = |id: u32, e: SeriesEntry| -> Option<Labels> {
            let deleted = self.tombstones.intervals(u64::from(id));
            e.chunks
                .iter()
                .any(|c| {
                    c.max_t >= min_t
                        && c.min_t <= max_t
                        && !deleted.iter().any(|&(a, b)| a <= c.min_t && c.max_t <= b)
                })
                .then_some(e.labels)
        };
        let mut out = Vec::with_capacity(ids.len());
        for got in par_map(&ids, 256, |&id| self.index.series(id).map(|e| live(id, e))) {
            out.extend(got?);
        }
        if !out.is_sorted() {
            out.sort();
        }
        Ok(out)
    }

    /// Appends the samples of chunk `c` of series `series` within the range
    /// to `out` (floats or histograms, by the chunk's encoding).
    pub fn decode_into(
        &self,
        c: &ChunkMeta,
        series: u64,
        min_t: i64,
        max_t: i64,
        out: &mut Series,
    ) -> Result<(), TsdbError> {
        let raw = self.chunks.chunk(c.chunk_ref)?;
        // Built only on error: this runs once per chunk of every query.
        let seg_path = || {
            let prefix = if self.dir.is_empty() {
                String::new()
            } else {
                format!("{}/", self.dir)
            };
            format!("{prefix}chunks/{:06}", (c.chunk_ref >> 32) + 1)
        };
        let deleted = self.tombstones.intervals(series);
        let keep = |t: i64| t >= min_t && !deleted.iter().any(|&(a, b)| a <= t && t <= b);
        match raw.encoding {
            Encoding::Xor => {
                let it = XorIter::new(&raw.data, raw.data_offset)
                    .map_err(|e| TsdbError::corrupt(&seg_path(), "XOR chunk", e))?;
                for s in it {
                    let (t, v) = s.map_err(|e| TsdbError::corrupt(&seg_path(), "XOR chunk", e))?;
                    if t > max_t {
                        break;
                    }
                    if keep(t) {
                        out.samples.push(Sample { t_ms: t, v });
                    }
                }
                Ok(())
            }
            Encoding::Histogram => {
                let what = "histogram chunk";
                let it = HistogramIter::new(&raw.data, raw.data_offset)
                    .map_err(|e| TsdbError::corrupt(&seg_path(), what, e))?;
                for s in it {
                    let (t, h) = s.map_err(|e| TsdbError::corrupt(&seg_path(), what, e))?;
                    if t > max_t {
                        break;
                    }
                    if keep(t) {
                        out.histograms.push(HistogramSample {
                            t_ms: t,
                            h: h.to_float(),
                        });
                    }
                }
                Ok(())
            }
            Encoding::FloatHistogram => {
                let what = "float histogram chunk";
                let it = FloatHistogramIter::new(&raw.data, raw.data_offset)
                    .map_err(|e| TsdbError::corrupt(&seg_path(), what, e))?;
                for s in it {
                    let (t, h) = s.map_err(|e| TsdbError::corrupt(&seg_path(), what, e))?;
                    if t > max_t {
                        break;
                    }
                    if keep(t) {
                        out.histograms.push(HistogramSample { t_ms: t, h });
                    }
                }
                Ok(())
            }
            other => Err(TsdbError::Unsupported {
                file: seg_path(),
                what: format!(
                    "chunk encoding {other} (chunk ref {:#x}) is not decoded yet",
                    c.chunk_ref
                ),
            }),
        }
    }
}
