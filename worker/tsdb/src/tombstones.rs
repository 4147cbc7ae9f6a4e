//! Tombstones: deleted time ranges per series.
//!
//! Layout: `magic 0x0130BA30 | version u8 (1)`, then entries `series ref
//! uvarint | mint varint | maxt varint`, then a CRC32 of the entries. Ranges
//! are inclusive on both ends and may overlap; [`Tombstones::covers`] merges
//! them implicitly.

use std::collections::BTreeMap;

use crate::encoding::{Decbuf, crc32, put_uvarint, put_varint};
use crate::error::{Corruption, TsdbError};

/// Tombstone files' magic number.
pub const MAGIC_TOMBSTONES: u32 = 0x0130_BA30;

/// Deleted ranges by series ref.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tombstones {
    by_series: BTreeMap<u64, Vec<(i64, i64)>>,
}

impl Tombstones {
    /// Decodes a tombstones file; `file` names it in errors.
    pub fn parse(file: &str, b: &[u8]) -> Result<Self, TsdbError> {
        let corrupt = |c| TsdbError::corrupt(file, "tombstones", c);
        if b.len() < 9 {
            return Err(corrupt(Corruption::at(
                0,
                format!("file too short ({} bytes)", b.len()),
            )));
        }
        let mut d = Decbuf::new(b, 0);
        let magic = d.be32("magic").map_err(corrupt)?;
        if magic != MAGIC_TOMBSTONES {
            return Err(corrupt(Corruption::at(
                0,
                format!("invalid magic number {magic:#x}"),
            )));
        }
        let version = d.byte("version").map_err(corrupt)?;
        if version != 1 {
            return Err(TsdbError::Unsupported {
                file: file.to_string(),
                what: format!("tombstones version {version}"),
            });
        }
        let body = &b[5..b.len() - 4];
        let crc_at = (b.len() - 4) as u64;
        let tail = &b[b.len() - 4..];
        let want = u32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]);
        let got = crc32(body);
        if want != got {
            return Err(corrupt(Corruption::at(
                crc_at,
                format!("checksum mismatch (stored {want:#010x}, computed {got:#010x})"),
            )));
        }
        let mut d = Decbuf::new(body, 5);
        let mut t = Tombstones::default();
        while !d.is_empty() {
            let series = d.uvarint("series ref").map_err(corrupt)?;
            let at = d.offset();
            let min_t = d.varint("mint").map_err(corrupt)?;
            let max_t = d.varint("maxt").map_err(corrupt)?;
            if max_t < min_t {
                return Err(corrupt(Corruption::at(
                    at,
                    format!("interval [{min_t}, {max_t}] ends before it starts"),
                )));
            }
            t.add(series, min_t, max_t);
        }
        Ok(t)
    }

    /// Marks `[min_t, max_t]` of `series` deleted.
    pub fn add(&mut self, series: u64, min_t: i64, max_t: i64) {
        let v = self.by_series.entry(series).or_default();
        v.push((min_t, max_t));
        v.sort_unstable();
    }

    /// Number of (series, interval) entries.
    pub fn len(&self) -> usize {
        self.by_series.values().map(Vec::len).sum()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.by_series.is_empty()
    }

    /// The deleted intervals of `series`, sorted by start.
    pub fn intervals(&self, series: u64) -> &[(i64, i64)] {
        self.by_series.get(&series).map_or(&[], Vec::as_slice)
    }

    /// Whether sample time `t` of `series` is deleted.
    pub fn covers(&self, series: u64, t: i64) -> bool {
        self.intervals(series)
            .iter()
            .any(|&(a, b)| a <= t && t <= b)
    }

    /// The file bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC_TOMBSTONES.to_be_bytes());
        out.push(1);
        let start = out.len();
        for (&series, ivs) in &self.by_series {
            for &(a, b) in ivs {
                put_uvarint(&mut out, series);
                put_varint(&mut out, a);
                put_varint(&mut out, b);
            }
        }
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_nine_bytes_like_prometheus() {
        let b = Tombstones::default().encode();
        assert_eq!(b, [0x01, 0x30, 0xba, 0x30, 1, 0, 0, 0, 0]);
        assert!(Tombstones::parse("t", &b).unwrap().is_empty());
    }

    #[test]
    fn round_trip_and_coverage() {
        let mut t = Tombstones::default();
        t.add(16, 100, 200);
        t.add(16, -50, 0);
        t.add(32, i64::MIN, i64::MAX);
        let back = Tombstones::parse("t", &t.encode()).unwrap();
        assert_eq!(back, t);
        assert!(back.covers(16, 150) && back.covers(16, -50) && !back.covers(16, 50));
        assert!(back.covers(32, 0));
    }

    #[test]
    fn corruption_names_file_and_offset() {
        let mut b = Tombstones::default().encode();
        b[8] ^= 1;
        assert_eq!(
            Tombstones::parse("01X/tombstones", &b)
                .unwrap_err()
                .to_string(),
            "01X/tombstones: tombstones: at offset 5: checksum mismatch (stored 0x00000001, computed 0x00000000)"
        );
    }
}
