//! The block index (format v1 and v2): TOC, symbol table, series, postings and
//! the postings offset table.
//!
//! Written by hand: no maintained crate reads Prometheus's index, and the
//! reader must be lazy. Opening reads the TOC, the symbol table and the
//! postings offset table (what every query needs); series entries and postings
//! lists are read on demand, one positioned read each, so a selective query
//! reads a few kilobytes of a multi-gigabyte index.
//!
//! Layout (all integers big-endian; see Prometheus `tsdb/docs/format/index.md`):
//! `magic 0xBAAAD700 | version u8 | symbols | series… | label indices… |
//! postings… | label offset table | postings offset table | TOC`. The TOC is
//! the last 52 bytes: six u64 section offsets and a CRC32 of them. Every
//! section is `len u32 | payload | CRC32(payload)` except series entries
//! (`len uvarint | payload | CRC32(payload)`).
//!
//! Version differences: v1 refers to symbols and series by byte offset; v2
//! numbers symbols in table order and aligns series entries to 16 bytes, a
//! series' id being its offset / 16.

use std::collections::BTreeMap;

use emberlens_model::Labels;

use crate::encoding::{Decbuf, crc32};
use crate::error::{Corruption, TsdbError};
use crate::source::ByteSource;

/// The index file's magic number.
pub const MAGIC_INDEX: u32 = 0xBAAA_D700;
/// Size of the TOC at the end of the file.
pub const TOC_LEN: u64 = 6 * 8 + 4;
/// Every how many symbols the reader remembers an offset.
const SYMBOL_FACTOR: usize = 32;

/// Offsets of the index sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Toc {
    /// Symbol table.
    pub symbols: u64,
    /// First series entry.
    pub series: u64,
    /// First label index (legacy).
    pub label_indices: u64,
    /// Label offset table (legacy).
    pub label_indices_table: u64,
    /// First postings list.
    pub postings: u64,
    /// Postings offset table.
    pub postings_table: u64,
}

/// Where a chunk of a series lives and what time it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkMeta {
    /// First sample's timestamp (ms).
    pub min_t: i64,
    /// Last sample's timestamp (ms).
    pub max_t: i64,
    /// Segment file number (upper 32 bits) and offset in it (lower 32 bits).
    pub chunk_ref: u64,
}

/// One series entry: its labels and its chunks in time order.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesEntry {
    /// The series' labels.
    pub labels: Labels,
    /// Its chunks, by increasing time.
    pub chunks: Vec<ChunkMeta>,
}

/// A lazily read index file.
pub struct IndexReader<S> {
    file: String,
    src: S,
    version: u8,
    toc: Toc,
    /// Symbol table payload (after `len` and `#symbols`).
    symbols: Vec<u8>,
    /// File offset of `symbols[0]`.
    symbols_base: u64,
    /// Offsets (into `symbols`) of every `SYMBOL_FACTOR`th symbol.
    symbol_marks: Vec<u32>,
    /// Every symbol, decoded (v2; validated once at open, looked up by
    /// number for every label of every series read).
    symbol_strs: Vec<Box<str>>,
    symbol_count: u32,
    /// name → sorted (value, postings offset).
    postings_table: BTreeMap<String, Vec<(String, u64)>>,
    /// Decoded label sets by series entry offset, so later reads of a
    /// series share one `Labels` (no strings built again); at most
    /// `MAX_CACHED_LABELS` entries.
    labels_cache: std::sync::RwLock<std::collections::HashMap<u64, Labels>>,
}

/// Label sets an index reader keeps decoded.
const MAX_CACHED_LABELS: usize = 1 << 20;

impl<S: ByteSource> IndexReader<S> {
    /// Opens an index: checks magic, version and TOC, and loads the symbol
    /// table and the postings offset table. `file` names it in errors.
    pub fn open(file: &str, src: S) -> Result<Self, TsdbError> {
        let corrupt = |section, c| TsdbError::corrupt(file, section, c);
        let read = |off: u64, len: usize| {
            src.read_at(off, len).map_err(|detail| TsdbError::Read {
                file: file.to_string(),
                detail,
            })
        };
        let size = src.len();
        if size < 5 + TOC_LEN {
            return Err(corrupt(
                "header",
                Corruption::at(0, format!("file too short for an index ({size} bytes)")),
            ));
        }
        let head = read(0, 5)?;
        let mut d = Decbuf::new(&head, 0);
        let magic = d.be32("magic").map_err(|c| corrupt("header", c))?;
        if magic != MAGIC_INDEX {
            return Err(corrupt(
                "header",
                Corruption::at(0, format!("invalid magic number {magic:#x}")),
            ));
        }
        let version = d.byte("version").map_err(|c| corrupt("header", c))?;
        if !(1..=2).contains(&version) {
            return Err(TsdbError::Unsupported {
                file: file.to_string(),
                what: format!("index format version {version} (this reader knows 1 and 2)"),
            });
        }
        let toc_at = size - TOC_LEN;
        let toc_bytes = read(toc_at, TOC_LEN as usize)?;
        let toc = parse_toc(&toc_bytes, toc_at, size).map_err(|c| corrupt("TOC", c))?;

        let mut ix = IndexReader {
            file: file.to_string(),
            src,
            version,
            toc,
            symbols: Vec::new(),
            symbols_base: 0,
            symbol_marks: Vec::new(),
            symbol_strs: Vec::new(),
            symbol_count: 0,
            postings_table: BTreeMap::new(),
            labels_cache: Default::default(),
        };
        ix.load_symbols()?;
        ix.load_postings_table()?;
        Ok(ix)
    }

    /// The index format version.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The section offsets.
    pub fn toc(&self) -> Toc {
        self.toc
    }

    /// Number of symbols.
    pub fn symbol_count(&self) -> u32 {
        self.symbol_count
    }

    fn read(&self, off: u64, len: usize) -> Result<std::borrow::Cow<'_, [u8]>, TsdbError> {
        self.src
            .read_at(off, len)
            .map_err(|detail| TsdbError::Read {
                file: self.file.clone(),
                detail,
            })
    }

    fn corrupt(&self, section: &'static str, c: Corruption) -> TsdbError {
        TsdbError::corrupt(&self.file, section, c)
    }

    /// Reads a `len u32 | payload | CRC32` section at `off`, checks the CRC and
    /// returns the payload.
    fn read_section(&self, off: u64, section: &'static str) -> Result<Vec<u8>, TsdbError> {
        let end = self.src.len();
        if off.checked_add(4).is_none_or(|e| e > end) {
            return Err(self.corrupt(
                section,
                Corruption::at(off, "section starts past the end of the file"),
            ));
        }
        let len_bytes = self.read(off, 4)?;
        let len =
            u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as u64;
        if off + 4 + len + 4 > end {
            return Err(self.corrupt(
                section,
                Corruption::at(
                    off,
                    format!("length {len} runs past the end of the file ({end} bytes)"),
                ),
            ));
        }
        let body = self.read(off + 4, len as usize + 4)?;
        let (payload, crc) = body.split_at(len as usize);
        let want = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let got = crc32(payload);
        if got != want {
            return Err(self.corrupt(
                section,
                Corruption::at(
                    off + 4 + len,
                    format!("checksum mismatch (stored {want:#010x}, computed {got:#010x})"),
                ),
            ));
        }
        Ok(payload.to_vec())
    }

    fn load_symbols(&mut self) -> Result<(), TsdbError> {
        let payload = self.read_section(self.toc.symbols, "symbol table")?;
        let base = self.toc.symbols + 4;
        let mut d = Decbuf::new(&payload, base);
        let count = d
            .be32("symbol count")
            .map_err(|c| self.corrupt("symbol table", c))?;
        let start = d.offset();
        let mut marks = Vec::new();
        let mut strs: Vec<Box<str>> = Vec::new();
        let mut prev: Option<&str> = None;
        for i in 0..count {
            if (i as usize).is_multiple_of(SYMBOL_FACTOR) {
                marks.push((d.offset() - start) as u32);
            }
            let at = d.offset();
            let s = d
                .uvarint_str("symbol")
                .map_err(|c| self.corrupt("symbol table", c))?;
            if prev.is_some_and(|p| p >= s) {
                return Err(self.corrupt(
                    "symbol table",
                    Corruption::at(at, format!("symbol {i} is out of order")),
                ));
            }
            prev = Some(s);
            if self.version != 1 {
                strs.push(s.into());
            }
        }
        if !d.is_empty() {
            return Err(self.corrupt(
                "symbol table",
                Corruption::at(
                    d.offset(),
                    format!("{} unexpected bytes after the symbols", d.remaining()),
                ),
            ));
        }
        // Keep the strings only (the payload after the 4-byte count).
        self.symbols = payload[4..].to_vec();
        self.symbols_base = start;
        self.symbol_marks = marks;
        self.symbol_strs = strs;
        self.symbol_count = count;
        Ok(())
    }

    /// The symbol a series entry refers to (a number in v2, a file offset in v1).
    pub fn symbol(&self, r: u32) -> Result<&str, Corruption> {
        let bad = |why: String| Corruption::at(self.symbols_base, why);
        let rel = if self.version == 1 {
            let off = u64::from(r);
            if off < self.symbols_base || off >= self.symbols_base + self.symbols.len() as u64 {
                return Err(bad(format!("symbol offset {r} outside the symbol table")));
            }
            (off - self.symbols_base) as usize
        } else {
            if r >= self.symbol_count {
                return Err(bad(format!(
                    "symbol {r} out of range ({} symbols)",
                    self.symbol_count
                )));
            }
            if let Some(s) = self.symbol_strs.get(r as usize) {
                return Ok(s);
            }
            let mark = self.symbol_marks[r as usize / SYMBOL_FACTOR] as usize;
            let mut d = Decbuf::new(&self.symbols[mark..], self.symbols_base + mark as u64);
            for _ in 0..r as usize % SYMBOL_FACTOR {
                d.uvarint_str("symbol")?;
            }
            return d.uvarint_str("symbol");
        };
        Decbuf::new(&self.symbols[rel..], self.symbols_base + rel as u64).uvarint_str("symbol")
    }

    fn load_postings_table(&mut self) -> Result<(), TsdbError> {
        const SECTION: &str = "postings offset table";
        let payload = self.read_section(self.toc.postings_table, SECTION)?;
        let mut d = Decbuf::new(&payload, self.toc.postings_table + 4);
        let count = d
            .be32("entry count")
            .map_err(|c| self.corrupt(SECTION, c))?;
        let mut table: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
        let mut prev: Option<(String, String)> = None;
        for _ in 0..count {
            let at = d.offset();
            let e = (|| -> Result<(String, String, u64), Corruption> {
                let n = d.uvarint("key count")?;
                if n != 2 {
                    return Err(Corruption::at(
                        at,
                        format!("entry has {n} keys, expected 2"),
                    ));
                }
                let name = d.uvarint_str("label name")?.to_string();
                let value = d.uvarint_str("label value")?.to_string();
                let off = d.uvarint("postings offset")?;
                Ok((name, value, off))
            })()
            .map_err(|c| self.corrupt(SECTION, c))?;
            let (name, value, off) = e;
            if off >= self.toc.postings_table {
                return Err(self.corrupt(
                    SECTION,
                    Corruption::at(
                        at,
                        format!("postings offset {off} points past the postings"),
                    ),
                ));
            }
            if let Some(p) = &prev
                && (p.0.as_str(), p.1.as_str()) >= (name.as_str(), value.as_str())
            {
                return Err(self.corrupt(SECTION, Corruption::at(at, "entries out of order")));
            }
            prev = Some((name.clone(), value.clone()));
            table.entry(name).or_default().push((value, off));
        }
        if !d.is_empty() {
            return Err(self.corrupt(
                SECTION,
                Corruption::at(
                    d.offset(),
                    format!("{} unexpected bytes after the entries", d.remaining()),
                ),
            ));
        }
        self.postings_table = table;
        Ok(())
    }

    /// Label names with postings, sorted (the all-postings key `""` excluded).
    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        self.postings_table
            .keys()
            .map(String::as_str)
            .filter(|n| !n.is_empty())
    }

    /// The values of a label name, sorted.
    pub fn label_values(&self, name: &str) -> impl Iterator<Item = &str> {
        self.postings_table
            .get(name)
            .into_iter()
            .flatten()
            .map(|(v, _)| v.as_str())
    }

    /// Number of (name, value) pairs with postings, the all-postings key included.
    pub fn postings_entries(&self) -> usize {
        self.postings_table.values().map(Vec::len).sum()
    }

    /// The series ids (v2) or offsets (v1) having `name=value`, sorted; empty when absent.
    pub fn postings(&self, name: &str, value: &str) -> Result<Vec<u32>, TsdbError> {
        let Some(values) = self.postings_table.get(name) else {
            return Ok(Vec::new());
        };
        let Ok(i) = values.binary_search_by(|(v, _)| v.as_str().cmp(value)) else {
            return Ok(Vec::new());
        };
        self.postings_at(values[i].1)
    }

    /// Every series of the index, sorted.
    pub fn all_postings(&self) -> Result<Vec<u32>, TsdbError> {
        self.postings("", "")
    }

    fn postings_at(&self, off: u64) -> Result<Vec<u32>, TsdbError> {
        const SECTION: &str = "postings";
        let payload = self.read_section(off, SECTION)?;
        let mut d = Decbuf::new(&payload, off + 4);
        let n = d
            .be32("entry count")
            .map_err(|c| self.corrupt(SECTION, c))? as usize;
        if d.remaining() != n * 4 {
            return Err(self.corrupt(
                SECTION,
                Corruption::at(
                    off,
                    format!(
                        "{n} entries need {} bytes, section has {}",
                        n * 4,
                        d.remaining()
                    ),
                ),
            ));
        }
        let mut out = Vec::with_capacity(n);
        let mut prev = None;
        for _ in 0..n {
            let at = d.offset();
            let r = d.be32("series ref").map_err(|c| self.corrupt(SECTION, c))?;
            if prev.is_some_and(|p| p >= r) {
                return Err(self.corrupt(SECTION, Corruption::at(at, "series refs out of order")));
            }
            prev = Some(r);
            out.push(r);
        }
        Ok(out)
    }

    /// Reads the series entry `id` (an id in v2, an offset in v1). Its
    /// label set is kept decoded for later reads (see `labels_cache`).
    pub fn series(&self, id: u32) -> Result<SeriesEntry, TsdbError> {
        self.read_series(id, true)
    }

    /// Like [`series`](Self::series), without keeping the labels decoded:
    /// for one pass over every series (compaction), where a cache would
    /// only hold a block's label sets in memory for nothing.
    pub fn series_uncached(&self, id: u32) -> Result<SeriesEntry, TsdbError> {
        self.read_series(id, false)
    }

    fn read_series(&self, id: u32, cache: bool) -> Result<SeriesEntry, TsdbError> {
        const SECTION: &str = "series";
        let off = if self.version == 1 {
            u64::from(id)
        } else {
            u64::from(id) * 16
        };
        let end = self.toc.label_indices.max(self.toc.series);
        if off < self.toc.series || off >= end {
            return Err(self.corrupt(
                SECTION,
                Corruption::at(off, format!("series ref {id} outside the series section")),
            ));
        }
        // One read for most entries: the length, the payload and the CRC.
        let first = (end - off).min(512) as usize;
        let head = self.read(off, first)?;
        let (len, n) = crate::encoding::read_uvarint(&head)
            .ok_or_else(|| self.corrupt(SECTION, Corruption::at(off, "invalid entry length")))?;
        let total = (n as u64).checked_add(len).and_then(|t| t.checked_add(4));
        let Some(total) = total.filter(|t| off.checked_add(*t).is_some_and(|e| e <= end)) else {
            return Err(self.corrupt(
                SECTION,
                Corruption::at(
                    off,
                    format!("entry length {len} runs past the series section"),
                ),
            ));
        };
        let owned;
        let body: &[u8] = if total as usize <= head.len() {
            &head[n..total as usize]
        } else {
            owned = self.read(off + n as u64, len as usize + 4)?;
            &owned
        };
        let (payload, crc) = body.split_at(len as usize);
        let want = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let got = crc32(payload);
        if want != got {
            return Err(self.corrupt(
                SECTION,
                Corruption::at(
                    off + n as u64 + len,
                    format!("checksum mismatch (stored {want:#010x}, computed {got:#010x})"),
                ),
            ));
        }
        self.decode_series(payload, off + n as u64, cache)
            .map_err(|c| self.corrupt(SECTION, c))
    }

    fn decode_series(
        &self,
        payload: &[u8],
        base: u64,
        cache: bool,
    ) -> Result<SeriesEntry, Corruption> {
        let mut d = Decbuf::new(payload, base);
        let nlabels = d.uvarint("label count")?;
        // A poisoned lock only means a reader panicked; the map is intact.
        let cached = self
            .labels_cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&base)
            .cloned();
        let mut pairs = Vec::with_capacity(if cached.is_some() {
            0
        } else {
            nlabels.min(64) as usize
        });
        for _ in 0..nlabels {
            let name_ref = d.uvarint32("label name ref")?;
            let value_ref = d.uvarint32("label value ref")?;
            if cached.is_none() {
                pairs.push((self.symbol(name_ref)?, self.symbol(value_ref)?));
            }
        }
        let nchunks = d.uvarint("chunk count")?;
        let mut chunks = Vec::with_capacity(nchunks.min(1024) as usize);
        let mut prev_max = 0i64;
        let mut prev_ref = 0u64;
        for i in 0..nchunks {
            let at = d.offset();
            let (min_t, max_t, chunk_ref) = if i == 0 {
                let min_t = d.varint("chunk mint")?;
                let span = d.uvarint("chunk span")?;
                let r = d.uvarint("chunk ref")?;
                (min_t, add_span(min_t, span, at)?, r)
            } else {
                let gap = d.uvarint("chunk mint delta")?;
                let min_t = add_span(prev_max, gap, at)?;
                let span = d.uvarint("chunk span")?;
                let delta = d.varint("chunk ref delta")?;
                let r = prev_ref
                    .checked_add_signed(delta)
                    .ok_or_else(|| Corruption::at(at, "chunk ref overflows"))?;
                (min_t, add_span(min_t, span, at)?, r)
            };
            prev_max = max_t;
            prev_ref = chunk_ref;
            chunks.push(ChunkMeta {
                min_t,
                max_t,
                chunk_ref,
            });
        }
        if !d.is_empty() {
            return Err(Corruption::at(
                d.offset(),
                format!("{} unexpected bytes after the chunks", d.remaining()),
            ));
        }
        let labels = match cached {
            Some(l) => l,
            None => {
                let l = Labels::from_pairs(pairs);
                if cache {
                    let mut cache = self.labels_cache.write().unwrap_or_else(|e| e.into_inner());
                    if cache.len() < MAX_CACHED_LABELS {
                        cache.insert(base, l.clone());
                    }
                }
                l
            }
        };
        Ok(SeriesEntry { labels, chunks })
    }
}

fn add_span(t: i64, span: u64, at: u64) -> Result<i64, Corruption> {
    i64::try_from(span)
        .ok()
        .and_then(|s| t.checked_add(s))
        .ok_or_else(|| Corruption::at(at, "chunk time range overflows"))
}

fn parse_toc(b: &[u8], at: u64, size: u64) -> Result<Toc, Corruption> {
    let (body, crc) = b.split_at(48);
    let want = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let got = crc32(body);
    if want != got {
        return Err(Corruption::at(
            at + 48,
            format!("checksum mismatch (stored {want:#010x}, computed {got:#010x})"),
        ));
    }
    let mut d = Decbuf::new(body, at);
    let mut next = |what| d.be64(what);
    let toc = Toc {
        symbols: next("symbols offset")?,
        series: next("series offset")?,
        label_indices: next("label indices offset")?,
        label_indices_table: next("label offset table offset")?,
        postings: next("postings offset")?,
        postings_table: next("postings offset table offset")?,
    };
    for (name, off) in [
        ("symbols", toc.symbols),
        ("series", toc.series),
        ("label indices", toc.label_indices),
        ("label offset table", toc.label_indices_table),
        ("postings", toc.postings),
        ("postings offset table", toc.postings_table),
    ] {
        if off > at || off > size {
            return Err(Corruption::at(
                at,
                format!("{name} offset {off} points past the TOC"),
            ));
        }
    }
    Ok(toc)
}
