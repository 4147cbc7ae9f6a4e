//! Bit streams, most significant bit first, as Prometheus's `bstream`.

use crate::error::Corruption;

/// Reads bits from a byte slice, through a 64-bit buffer refilled a byte at
/// a time (the decode loop takes most fields from the buffer without touching
/// the slice).
#[derive(Clone, Debug)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte of `data` to load into `buf`.
    pos: usize,
    /// Unread bits, left-aligned (the next bit is bit 63).
    buf: u64,
    /// Number of valid bits in `buf`.
    valid: u32,
    /// File offset of `data[0]`, for errors.
    base: u64,
}

impl<'a> BitReader<'a> {
    /// A reader over `data`, which starts at file offset `base`.
    pub fn new(data: &'a [u8], base: u64) -> Self {
        BitReader {
            data,
            pos: 0,
            buf: 0,
            valid: 0,
            base,
        }
    }

    /// Bits consumed so far.
    fn consumed_bits(&self) -> usize {
        self.pos * 8 - self.valid as usize
    }

    /// File offset of the byte holding the next bit.
    pub fn offset(&self) -> u64 {
        self.base + (self.consumed_bits() / 8) as u64
    }

    fn eof(&self, what: &str) -> Corruption {
        Corruption::at(
            self.offset(),
            format!(
                "{what}: chunk data ends early (bit {} of {})",
                self.consumed_bits(),
                self.data.len() * 8
            ),
        )
    }

    /// Tops `buf` up with as many whole bytes as fit. Invariant: the bits of
    /// `buf` past `valid` are zero.
    #[inline]
    fn refill(&mut self) {
        let whole_bytes = (64 - self.valid) / 8;
        if whole_bytes == 0 {
            return;
        }
        if let Some(next) = self.data.get(self.pos..self.pos + 8) {
            // Fast path: one load, shifted in after the valid bits.
            let mut a = [0u8; 8];
            a.copy_from_slice(next);
            self.buf |= u64::from_be_bytes(a) >> self.valid;
            self.valid += whole_bytes * 8;
            self.pos += whole_bytes as usize;
            if self.valid < 64 {
                self.buf &= !(u64::MAX >> self.valid);
            }
            return;
        }
        while self.valid <= 56 && self.pos < self.data.len() {
            self.buf |= u64::from(self.data[self.pos]) << (56 - self.valid);
            self.pos += 1;
            self.valid += 8;
        }
    }

    /// One bit.
    #[inline]
    pub fn bit(&mut self, what: &str) -> Result<bool, Corruption> {
        if self.valid == 0 {
            self.refill();
            if self.valid == 0 {
                return Err(self.eof(what));
            }
        }
        let b = self.buf >> 63;
        self.buf <<= 1;
        self.valid -= 1;
        Ok(b == 1)
    }

    /// `n` bits (at most 64) as the low bits of a u64.
    #[inline]
    pub fn bits(&mut self, n: u32, what: &str) -> Result<u64, Corruption> {
        debug_assert!(n <= 64);
        if n == 0 {
            return Ok(0);
        }
        if n > 56 {
            let hi = self.bits(n - 32, what)?;
            let lo = self.bits(32, what)?;
            return Ok((hi << 32) | lo);
        }
        if self.valid < n {
            self.refill();
            if self.valid < n {
                return Err(self.eof(what));
            }
        }
        let v = self.buf >> (64 - n);
        self.buf <<= n;
        self.valid -= n;
        Ok(v)
    }

    /// 8 bits, aligned or not.
    pub fn byte(&mut self, what: &str) -> Result<u8, Corruption> {
        Ok(self.bits(8, what)? as u8)
    }

    /// Go's `binary.ReadUvarint` over the bit stream.
    pub fn uvarint(&mut self, what: &str) -> Result<u64, Corruption> {
        let mut x: u64 = 0;
        let mut s = 0u32;
        for i in 0..10 {
            let b = self.byte(what)?;
            if b < 0x80 {
                if i == 9 && b > 1 {
                    break;
                }
                return Ok(x | (u64::from(b) << s));
            }
            x |= u64::from(b & 0x7f) << s;
            s += 7;
        }
        Err(Corruption::at(
            self.offset(),
            format!("{what}: varint overflows"),
        ))
    }

    /// Go's `binary.ReadVarint` over the bit stream.
    pub fn varint(&mut self, what: &str) -> Result<i64, Corruption> {
        Ok(crate::encoding::zigzag_decode(self.uvarint(what)?))
    }

    /// The width bucket of a Prometheus "varbit" number: up to 8 leading one
    /// bits, ended by a zero (or not, after 8 ones).
    fn varbit_width(&mut self, what: &str) -> Result<u32, Corruption> {
        let mut ones = 0;
        while ones < 8 && self.bit(what)? {
            ones += 1;
        }
        Ok(match ones {
            0 => 0,
            1..=7 => VARBIT_WIDTHS[ones - 1].0,
            _ => 64,
        })
    }

    /// Prometheus's `readVarbitInt` (histogram chunks): 0 in one bit, else a
    /// prefix choosing 3, 6, 9, 12, 18, 25, 56 or 64 bits of two's complement.
    pub fn varbit_int(&mut self, what: &str) -> Result<i64, Corruption> {
        match self.varbit_width(what)? {
            0 => Ok(0),
            64 => Ok(self.bits(64, what)? as i64),
            n => {
                let mut bits = self.bits(n, what)?;
                if bits > (1 << (n - 1)) {
                    bits = bits.wrapping_sub(1 << n);
                }
                Ok(bits as i64)
            }
        }
    }

    /// Prometheus's `readVarbitUint`: the same widths, unsigned.
    pub fn varbit_uint(&mut self, what: &str) -> Result<u64, Corruption> {
        match self.varbit_width(what)? {
            0 => Ok(0),
            n => self.bits(n, what),
        }
    }
}

/// Prometheus's varbit widths below 64 bits: (value bits, prefix, prefix length).
const VARBIT_WIDTHS: [(u32, u64, u32); 7] = [
    (3, 0b10, 2),
    (6, 0b110, 3),
    (9, 0b1110, 4),
    (12, 0b11110, 5),
    (18, 0b111110, 6),
    (25, 0b1111110, 7),
    (56, 0b11111110, 8),
];

/// Writes bits, most significant first.
#[derive(Clone, Debug, Default)]
pub struct BitWriter {
    data: Vec<u8>,
    /// Bits used in the last byte (0 = the last byte is full or there is none).
    used: u32,
}

impl BitWriter {
    /// An empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// One bit.
    pub fn bit(&mut self, b: bool) {
        if self.used == 0 {
            self.data.push(0);
        }
        if b {
            let last = self.data.len() - 1;
            self.data[last] |= 1 << (7 - self.used);
        }
        self.used = (self.used + 1) % 8;
    }

    /// The low `n` bits of `v`, most significant first.
    pub fn bits(&mut self, v: u64, n: u32) {
        for i in (0..n).rev() {
            self.bit((v >> i) & 1 == 1);
        }
    }

    /// A whole byte.
    pub fn byte(&mut self, b: u8) {
        self.bits(u64::from(b), 8);
    }

    /// Go's `binary.PutUvarint`, bit-packed.
    pub fn uvarint(&mut self, v: u64) {
        let mut buf = Vec::with_capacity(10);
        crate::encoding::put_uvarint(&mut buf, v);
        for b in buf {
            self.byte(b);
        }
    }

    /// Go's `binary.PutVarint`, bit-packed.
    pub fn varint(&mut self, v: i64) {
        self.uvarint(crate::encoding::zigzag_encode(v));
    }

    /// Prometheus's `putVarbitInt`.
    pub fn varbit_int(&mut self, v: i64) {
        if v == 0 {
            self.bit(false);
            return;
        }
        for (n, prefix, prefix_len) in VARBIT_WIDTHS {
            // Prometheus's bitRange: -(2^(n-1) - 1) ..= 2^(n-1)
            if -((1i64 << (n - 1)) - 1) <= v && v <= 1i64 << (n - 1) {
                self.bits(prefix, prefix_len);
                self.bits(v as u64, n);
                return;
            }
        }
        self.bits(0b1111_1111, 8);
        self.bits(v as u64, 64);
    }

    /// Prometheus's `putVarbitUint`.
    pub fn varbit_uint(&mut self, v: u64) {
        if v == 0 {
            self.bit(false);
            return;
        }
        for (n, prefix, prefix_len) in VARBIT_WIDTHS {
            if v < 1u64 << n {
                self.bits(prefix, prefix_len);
                self.bits(v, n);
                return;
            }
        }
        self.bits(0b1111_1111, 8);
        self.bits(v, 64);
    }

    /// The bytes written (the last one zero-padded).
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// Mutable bytes (to patch a header in place).
    pub fn bytes_mut(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip() {
        let mut w = BitWriter::new();
        w.bit(true);
        w.bits(0b1011, 4);
        w.bits(u64::MAX, 64);
        w.bits(0x1234, 13);
        w.varint(-300);
        let mut r = BitReader::new(w.bytes(), 0);
        assert!(r.bit("a").unwrap());
        assert_eq!(r.bits(4, "b").unwrap(), 0b1011);
        assert_eq!(r.bits(64, "c").unwrap(), u64::MAX);
        assert_eq!(r.bits(13, "d").unwrap(), 0x1234);
        assert_eq!(r.varint("e").unwrap(), -300);
        assert!(r.bits(9, "f").is_err());
    }

    #[test]
    fn varbits_round_trip_at_every_width_edge() {
        let ints = [
            0i64,
            1,
            -1,
            4,
            -3,
            5,
            -4,
            32,
            -31,
            33,
            256,
            -255,
            257,
            2048,
            2049,
            1 << 17,
            (1 << 17) + 1,
            1 << 24,
            (1 << 24) + 1,
            1 << 55,
            (1 << 55) + 1,
            i64::MIN,
            i64::MAX,
        ];
        let uints = [
            0u64,
            1,
            7,
            8,
            63,
            64,
            511,
            512,
            4095,
            4096,
            (1 << 18) - 1,
            1 << 18,
            (1 << 25) - 1,
            1 << 25,
            (1 << 56) - 1,
            1 << 56,
            u64::MAX,
        ];
        let mut w = BitWriter::new();
        for v in ints {
            w.varbit_int(v);
        }
        for v in uints {
            w.varbit_uint(v);
        }
        let mut r = BitReader::new(w.bytes(), 0);
        for v in ints {
            assert_eq!(r.varbit_int("i").unwrap(), v);
        }
        for v in uints {
            assert_eq!(r.varbit_uint("u").unwrap(), v);
        }
    }
}
