//! Prometheus's write-ahead log format (`wal/00000000`, …, `tsdb/wlog` and
//! `tsdb/record`): segment pages, record fragments and the series and
//! samples records. Pure: the server's store writes and syncs the files,
//! this module only encodes and decodes bytes (so it is fuzzed, and a
//! browser could read a data directory's WAL too).
//!
//! Written by hand: no crate implements this format. Layout:
//! - A segment is a file of 32 KiB pages (128 MiB per segment by default).
//!   A record never crosses a segment: one that does not fit what is left of
//!   the segment starts the next one.
//! - A record is written as fragments, each `type u8 | len u16 BE |
//!   CRC32-Castagnoli(data) u32 BE | data`, never crossing a page. Types: 1
//!   full, 2 first, 3 middle, 4 last; bit 3 set means the record is
//!   snappy-compressed. A zero byte (type 0) means the rest of the page is
//!   padding; a page with fewer than 7 bytes left is padded.
//! - The last page of a closed segment is zero-padded to its end; a segment
//!   cut short by a crash is read as if it were padded.
//!
//! Records: type 1 series (`ref u64 BE`, label count uvarint, then name and
//! value as uvarint-length strings), type 2 samples (first ref u64 BE and
//! first time i64 BE, then per sample ref delta varint, time delta varint,
//! value bits u64 BE). Other record types (tombstones, exemplars, metadata,
//! histograms) decode as [`Record::Other`].

use emberlens_model::Labels;

use crate::encoding::crc32;

/// Page size of WAL segments.
pub const PAGE_SIZE: usize = 32 * 1024;
/// Prometheus's default segment size.
pub const DEFAULT_SEGMENT_SIZE: usize = 128 * 1024 * 1024;
/// Bytes of a fragment header.
pub const HEADER: usize = 7;
const SNAPPY: u8 = 1 << 3;
const REC_FULL: u8 = 1;
const REC_FIRST: u8 = 2;
const REC_MIDDLE: u8 = 3;
const REC_LAST: u8 = 4;

/// Record type of series records.
pub const RECORD_SERIES: u8 = 1;
/// Record type of float sample records.
pub const RECORD_SAMPLES: u8 = 2;

/// A segment holds bytes that are not a valid record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: offset {offset}: {reason}")]
pub struct WalCorruption {
    /// The segment file.
    pub file: String,
    /// Byte offset of the fragment that failed.
    pub offset: usize,
    /// What is wrong.
    pub reason: String,
}

/// The name of segment `i`.
pub fn segment_name(i: u64) -> String {
    format!("{i:08}")
}

/// Appends `rec` as fragments to `out`, whose first byte lands at segment
/// offset `pos`; pads pages that fill up. `snappy`: `rec` is already
/// snappy-compressed (each fragment's type then carries the flag).
pub fn encode_fragments(out: &mut Vec<u8>, mut pos: usize, rec: &[u8], snappy: bool) {
    let flag = if snappy { SNAPPY } else { 0 };
    let mut rest = rec;
    let mut first = true;
    loop {
        let page_left = PAGE_SIZE - pos % PAGE_SIZE;
        if page_left < HEADER {
            out.resize(out.len() + page_left, 0);
            pos += page_left;
            continue;
        }
        let n = rest.len().min(page_left - HEADER);
        let last = n == rest.len();
        let typ = match (first, last) {
            (true, true) => REC_FULL,
            (true, false) => REC_FIRST,
            (false, true) => REC_LAST,
            (false, false) => REC_MIDDLE,
        };
        let part = &rest[..n];
        out.push(typ | flag);
        out.extend_from_slice(&(n as u16).to_be_bytes());
        out.extend_from_slice(&crc32(part).to_be_bytes());
        out.extend_from_slice(part);
        pos += HEADER + n;
        // Prometheus pads a page once fewer than a header's bytes are left.
        let left = PAGE_SIZE - pos % PAGE_SIZE;
        if left < HEADER {
            out.resize(out.len() + left, 0);
            pos += left;
        }
        rest = &rest[n..];
        first = false;
        if last {
            return;
        }
    }
}

/// Reads the records of one segment's bytes.
pub struct SegmentReader<'a> {
    file: &'a str,
    bytes: &'a [u8],
    pos: usize,
    buf: Vec<u8>,
    /// Inside a record (after its first fragment).
    in_record: bool,
    /// Offset where the record being assembled started.
    start: usize,
}

impl<'a> SegmentReader<'a> {
    /// A reader over `bytes`, read from `file` (named in errors).
    pub fn new(file: &'a str, bytes: &'a [u8]) -> Self {
        SegmentReader {
            file,
            bytes,
            pos: 0,
            buf: Vec::new(),
            in_record: false,
            start: 0,
        }
    }

    fn corrupt(&self, offset: usize, reason: impl Into<String>) -> WalCorruption {
        WalCorruption {
            file: self.file.to_string(),
            offset,
            reason: reason.into(),
        }
    }

    /// Offset just past the last record returned: where a torn segment is
    /// cut when repaired.
    pub fn good_end(&self) -> usize {
        self.start
    }

    /// The next record, `None` at the end of the segment.
    pub fn next_record(&mut self) -> Result<Option<Vec<u8>>, WalCorruption> {
        let b = self.bytes;
        let mut compressed = false;
        loop {
            if self.pos >= b.len() {
                if self.in_record {
                    return Err(
                        self.corrupt(self.start, "record cut short at the end of the segment")
                    );
                }
                return Ok(None);
            }
            let page_end = (self.pos / PAGE_SIZE + 1) * PAGE_SIZE;
            let typ = b[self.pos];
            if typ == 0 {
                // Padding: the rest of the page (as far as it was written) is zero.
                let end = page_end.min(b.len());
                if let Some(k) = b[self.pos..end].iter().position(|&x| x != 0) {
                    return Err(self.corrupt(self.pos + k, "non-zero byte in page padding"));
                }
                self.pos = end;
                if !self.in_record {
                    self.start = self.pos;
                }
                continue;
            }
            if self.pos + HEADER > page_end || self.pos + HEADER > b.len() {
                return Err(self.corrupt(self.pos, "record header cut short"));
            }
            let len = usize::from(u16::from_be_bytes([b[self.pos + 1], b[self.pos + 2]]));
            let crc = u32::from_be_bytes([
                b[self.pos + 3],
                b[self.pos + 4],
                b[self.pos + 5],
                b[self.pos + 6],
            ]);
            let data_at = self.pos + HEADER;
            if data_at + len > page_end {
                return Err(
                    self.corrupt(self.pos, format!("fragment of {len} bytes crosses a page"))
                );
            }
            if data_at + len > b.len() {
                return Err(self.corrupt(self.pos, "fragment cut short at the end of the segment"));
            }
            let data = &b[data_at..data_at + len];
            if crc32(data) != crc {
                return Err(self.corrupt(self.pos, "checksum mismatch"));
            }
            let kind = typ & !SNAPPY;
            if typ & !(SNAPPY | 7) != 0 || kind > REC_LAST {
                return Err(self.corrupt(self.pos, format!("unknown fragment type {typ:#x}")));
            }
            compressed |= typ & SNAPPY != 0;
            match kind {
                REC_FULL | REC_FIRST if self.in_record => {
                    return Err(self.corrupt(self.pos, "new record before the last one ended"));
                }
                REC_MIDDLE | REC_LAST if !self.in_record => {
                    return Err(self.corrupt(self.pos, "record continues without a start"));
                }
                _ => {}
            }
            if matches!(kind, REC_FULL | REC_FIRST) {
                self.start = self.pos;
                self.in_record = true;
            }
            self.buf.extend_from_slice(data);
            self.pos = data_at + len;
            if matches!(kind, REC_FULL | REC_LAST) {
                let rec = std::mem::take(&mut self.buf);
                self.in_record = false;
                let at = self.start;
                self.start = self.pos;
                if compressed {
                    return snap::raw::Decoder::new()
                        .decompress_vec(&rec)
                        .map(Some)
                        .map_err(|e| self.corrupt(at, format!("snappy: {e}")));
                }
                return Ok(Some(rec));
            }
        }
    }
}

/// One sample of a samples record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RefSample {
    /// The series' reference (from a series record).
    pub series: u64,
    /// Timestamp in milliseconds.
    pub t_ms: i64,
    /// The value.
    pub v: f64,
}

/// A decoded record.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// New series and their references.
    Series(Vec<(u64, Labels)>),
    /// Float samples.
    Samples(Vec<RefSample>),
    /// A record type replay skips (tombstones, exemplars, histograms, …).
    Other(u8),
}

/// Appends a series record.
pub fn encode_series<'a>(out: &mut Vec<u8>, series: impl IntoIterator<Item = (u64, &'a Labels)>) {
    out.push(RECORD_SERIES);
    for (r, labels) in series {
        out.extend_from_slice(&r.to_be_bytes());
        put_uvarint(out, labels.len() as u64);
        for l in labels.iter() {
            put_uvarint(out, l.name.len() as u64);
            out.extend_from_slice(l.name.as_bytes());
            put_uvarint(out, l.value.len() as u64);
            out.extend_from_slice(l.value.as_bytes());
        }
    }
}

/// Appends a samples record.
pub fn encode_samples(out: &mut Vec<u8>, samples: &[RefSample]) {
    out.push(RECORD_SAMPLES);
    let Some(first) = samples.first() else { return };
    out.extend_from_slice(&first.series.to_be_bytes());
    out.extend_from_slice(&first.t_ms.to_be_bytes());
    for s in samples {
        put_varint(out, (s.series as i64).wrapping_sub(first.series as i64));
        put_varint(out, s.t_ms.wrapping_sub(first.t_ms));
        out.extend_from_slice(&s.v.to_bits().to_be_bytes());
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// A cursor over a record's bytes; errors say which field ran out.
struct Dec<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Dec<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], String> {
        if self.b.len() - self.pos < n {
            return Err(format!("{what} cut short at record byte {}", self.pos));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn be64(&mut self, what: &str) -> Result<u64, String> {
        let s = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }
    fn uvarint(&mut self, what: &str) -> Result<u64, String> {
        let mut v: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = *self
                .b
                .get(self.pos)
                .ok_or_else(|| format!("{what} cut short at record byte {}", self.pos))?;
            self.pos += 1;
            if shift == 63 && byte > 1 {
                break;
            }
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(v);
            }
        }
        Err(format!(
            "{what}: varint overflows at record byte {}",
            self.pos
        ))
    }
    fn varint(&mut self, what: &str) -> Result<i64, String> {
        let u = self.uvarint(what)?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
    fn string(&mut self, what: &str) -> Result<String, String> {
        let n = self.uvarint(what)?;
        let n = usize::try_from(n).map_err(|_| format!("{what}: length {n} too large"))?;
        let s = self.take(n, what)?;
        String::from_utf8(s.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }
    fn done(&self) -> bool {
        self.pos >= self.b.len()
    }
}

/// Decodes a record; errors say which field failed and where.
pub fn decode_record(rec: &[u8]) -> Result<Record, String> {
    let Some(&typ) = rec.first() else {
        return Err("empty record".into());
    };
    let mut d = Dec { b: rec, pos: 1 };
    match typ {
        RECORD_SERIES => {
            let mut out = Vec::new();
            while !d.done() {
                let r = d.be64("series ref")?;
                let n = d.uvarint("label count")?;
                let mut pairs = Vec::new();
                for _ in 0..n {
                    let name = d.string("label name")?;
                    let value = d.string("label value")?;
                    pairs.push((name, value));
                }
                out.push((r, Labels::from_pairs(pairs)));
            }
            Ok(Record::Series(out))
        }
        RECORD_SAMPLES => {
            let mut out = Vec::new();
            if d.done() {
                return Ok(Record::Samples(out));
            }
            let base_ref = d.be64("first sample ref")?;
            let base_t = d.be64("first sample time")? as i64;
            while !d.done() {
                let dr = d.varint("sample ref delta")?;
                let dt = d.varint("sample time delta")?;
                let v = f64::from_bits(d.be64("sample value")?);
                out.push(RefSample {
                    series: (base_ref as i64).wrapping_add(dr) as u64,
                    t_ms: base_t.wrapping_add(dt),
                    v,
                });
            }
            Ok(Record::Samples(out))
        }
        other => Ok(Record::Other(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_and_samples_records_round_trip() {
        let a = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let b = Labels::from_pairs([("__name__", "x"), ("instance", "h:1")]);
        let mut rec = Vec::new();
        encode_series(&mut rec, [(1, &a), (7, &b)]);
        assert_eq!(
            decode_record(&rec).unwrap(),
            Record::Series(vec![(1, a), (7, b)])
        );
        let samples = vec![
            RefSample {
                series: 7,
                t_ms: 1000,
                v: 1.5,
            },
            RefSample {
                series: 1,
                t_ms: 999,
                v: f64::NEG_INFINITY,
            },
            RefSample {
                series: 9,
                t_ms: -5,
                v: 0.0,
            },
        ];
        let mut rec = Vec::new();
        encode_samples(&mut rec, &samples);
        assert_eq!(decode_record(&rec).unwrap(), Record::Samples(samples));
        assert!(
            decode_record(&rec[..rec.len() - 3])
                .unwrap_err()
                .contains("sample value")
        );
        assert_eq!(decode_record(&[3, 1, 2]).unwrap(), Record::Other(3));
    }

    #[test]
    fn fragments_split_across_pages_and_read_back() {
        let mut out = Vec::new();
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for rec in [&b"x"[..], &big, &[][..], &b"tail"[..]] {
            let pos = out.len();
            encode_fragments(&mut out, pos, rec, false);
        }
        // And a snappy-compressed one, as Prometheus writes by default.
        let packed = snap::raw::Encoder::new().compress_vec(&big).unwrap();
        let pos = out.len();
        encode_fragments(&mut out, pos, &packed, true);
        let mut r = SegmentReader::new("seg", &out);
        assert_eq!(r.next_record().unwrap().unwrap(), b"x");
        assert_eq!(r.next_record().unwrap().unwrap(), big);
        assert_eq!(r.next_record().unwrap().unwrap(), b"");
        assert_eq!(r.next_record().unwrap().unwrap(), b"tail");
        assert_eq!(r.next_record().unwrap().unwrap(), big);
        assert_eq!(r.next_record().unwrap(), None);
        // Garbage never panics, and names the offset.
        let err = SegmentReader::new("seg", &[9, 0, 5, 1, 2, 3, 4, 1])
            .next_record()
            .unwrap_err();
        assert_eq!(err.offset, 0);
    }
}
