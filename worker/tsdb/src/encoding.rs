//! Decoding primitives of the TSDB formats: big-endian integers, Go's varints,
//! length-prefixed strings, and CRC32-Castagnoli, all bounds-checked.
//!
//! A [`Decbuf`] reads from a byte slice that was loaded from position `base`
//! of a file; every error carries the absolute file offset where it happened.

use crc::{CRC_32_ISCSI, Crc, Table};

use crate::error::Corruption;

/// CRC32 with the Castagnoli polynomial, as every TSDB file uses.
pub static CASTAGNOLI: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISCSI);

/// CRC32-Castagnoli of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    CASTAGNOLI.checksum(data)
}

/// A cursor over bytes loaded from file offset `base`.
#[derive(Clone, Debug)]
pub struct Decbuf<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Decbuf<'a> {
    /// A cursor over `data`, which starts at file offset `base`.
    pub fn new(data: &'a [u8], base: u64) -> Self {
        Decbuf { data, pos: 0, base }
    }

    /// Absolute file offset of the next byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn short(&self, what: &str, want: usize) -> Corruption {
        Corruption::at(
            self.offset(),
            format!("{what}: need {want} bytes, {} left", self.remaining()),
        )
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], Corruption> {
        if self.remaining() < n {
            return Err(self.short(what, n));
        }
        let b = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize, what: &str) -> Result<(), Corruption> {
        self.bytes(n, what).map(|_| ())
    }

    /// One byte.
    pub fn byte(&mut self, what: &str) -> Result<u8, Corruption> {
        Ok(self.bytes(1, what)?[0])
    }

    /// Big-endian u32.
    pub fn be32(&mut self, what: &str) -> Result<u32, Corruption> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Big-endian u64.
    pub fn be64(&mut self, what: &str) -> Result<u64, Corruption> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// Go's `binary.Uvarint`: at most 10 bytes, no overflow.
    pub fn uvarint(&mut self, what: &str) -> Result<u64, Corruption> {
        let start = self.offset();
        match read_uvarint(&self.data[self.pos..]) {
            Some((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            None => Err(Corruption::at(
                start,
                format!("{what}: invalid or truncated uvarint"),
            )),
        }
    }

    /// Go's `binary.Varint` (zig-zag).
    pub fn varint(&mut self, what: &str) -> Result<i64, Corruption> {
        let u = self.uvarint(what)?;
        Ok(zigzag_decode(u))
    }

    /// A uvarint that must fit in u32.
    pub fn uvarint32(&mut self, what: &str) -> Result<u32, Corruption> {
        let start = self.offset();
        let v = self.uvarint(what)?;
        u32::try_from(v)
            .map_err(|_| Corruption::at(start, format!("{what}: {v} does not fit in 32 bits")))
    }

    /// A uvarint length followed by that many bytes of UTF-8.
    pub fn uvarint_str(&mut self, what: &str) -> Result<&'a str, Corruption> {
        let start = self.offset();
        let len = self.uvarint(what)?;
        let len = usize::try_from(len)
            .map_err(|_| Corruption::at(start, format!("{what}: length {len} too large")))?;
        let b = self.bytes(len, what)?;
        std::str::from_utf8(b)
            .map_err(|e| Corruption::at(start, format!("{what}: not UTF-8 ({e})")))
    }
}

/// Decodes a Go uvarint from the start of `b`: the value and the bytes used.
pub fn read_uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x: u64 = 0;
    let mut s: u32 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        if byte < 0x80 {
            if i == 9 && byte > 1 {
                return None; // overflow
            }
            return Some((x | (u64::from(byte) << s), i + 1));
        }
        x |= u64::from(byte & 0x7f) << s;
        s += 7;
    }
    None
}

/// Go's zig-zag decoding of a varint.
pub fn zigzag_decode(u: u64) -> i64 {
    let x = (u >> 1) as i64;
    if u & 1 != 0 { !x } else { x }
}

/// Go's zig-zag encoding.
pub fn zigzag_encode(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Appends a Go uvarint.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a Go varint.
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag_encode(v));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_like_go() {
        for v in [0i64, 1, -1, 63, -64, 64, 300, i64::MAX, i64::MIN] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut d = Decbuf::new(&buf, 0);
            assert_eq!(d.varint("v").unwrap(), v);
            assert!(d.is_empty());
        }
        // Go: binary.PutUvarint(300) = [0xac, 0x02]
        let mut buf = Vec::new();
        put_uvarint(&mut buf, 300);
        assert_eq!(buf, [0xac, 0x02]);
    }

    #[test]
    fn bad_varints_and_short_reads_name_the_offset() {
        let mut d = Decbuf::new(&[0x80, 0x80], 100);
        assert_eq!(
            d.uvarint("x").unwrap_err().to_string(),
            "at offset 100: x: invalid or truncated uvarint"
        );
        let mut d = Decbuf::new(&[1, 2], 7);
        assert_eq!(
            d.be32("len").unwrap_err().to_string(),
            "at offset 7: len: need 4 bytes, 2 left"
        );
        let overflow = [0xff; 10];
        assert!(read_uvarint(&overflow).is_none());
    }

    #[test]
    fn crc_is_castagnoli() {
        // The standard check value of CRC-32C.
        assert_eq!(crc32(b"123456789"), 0xe306_9283);
    }
}
