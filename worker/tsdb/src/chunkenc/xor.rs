//! The XOR chunk encoding (Gorilla, with Prometheus's millisecond ranges).
//!
//! Layout: `num_samples u16 BE`, then a bit stream. Sample 0: timestamp as a
//! varint, value as 64 raw bits. Sample 1: timestamp delta as a uvarint, value
//! XOR-encoded. Later samples: delta-of-delta of the timestamp in one of five
//! buckets (`0`, `10`+14 bits, `110`+17, `1110`+20, `1111`+64), value XOR-encoded:
//! `0` for an unchanged value, `10` + the meaningful bits when they fit the
//! previous window of leading/trailing zeros, `11` + 5 bits of leading zeros +
//! 6 bits of length (0 meaning 64) + the bits otherwise.
//!
//! Edge cases: NaN (the staleness marker included) round-trips bit for bit;
//! a window that would exceed 64 bits, or a stream that ends early, is a
//! corruption error, never a panic.

use crate::chunkenc::bstream::{BitReader, BitWriter};
use crate::error::Corruption;

/// Decodes an XOR chunk's samples in order.
#[derive(Clone, Debug)]
pub struct XorIter<'a> {
    br: BitReader<'a>,
    total: u16,
    read: u16,
    t: i64,
    v: f64,
    t_delta: u64,
    window: XorWindow,
    failed: bool,
}

impl<'a> XorIter<'a> {
    /// An iterator over `data` (the chunk's bytes after the encoding byte),
    /// which starts at file offset `base`.
    pub fn new(data: &'a [u8], base: u64) -> Result<Self, Corruption> {
        if data.len() < 2 {
            return Err(Corruption::at(
                base,
                "XOR chunk shorter than its 2-byte header",
            ));
        }
        let total = u16::from_be_bytes([data[0], data[1]]);
        Ok(XorIter {
            br: BitReader::new(&data[2..], base + 2),
            total,
            read: 0,
            t: 0,
            v: 0.0,
            t_delta: 0,
            window: XorWindow::default(),
            failed: false,
        })
    }

    /// The sample count the header declares.
    pub fn len(&self) -> usize {
        usize::from(self.total)
    }

    /// Whether the chunk declares no samples.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    fn step(&mut self) -> Result<(i64, f64), Corruption> {
        match self.read {
            0 => {
                self.t = self.br.varint("first timestamp")?;
                self.v = f64::from_bits(self.br.bits(64, "first value")?);
            }
            1 => {
                self.t_delta = self.br.uvarint("timestamp delta")?;
                self.t = self.t.wrapping_add(self.t_delta as i64);
                self.read_value()?;
            }
            _ => {
                let mut prefix = 0u8;
                for _ in 0..4 {
                    prefix <<= 1;
                    if !self.br.bit("timestamp prefix")? {
                        break;
                    }
                    prefix |= 1;
                }
                let size = match prefix {
                    0b0 => 0,
                    0b10 => 14,
                    0b110 => 17,
                    0b1110 => 20,
                    _ => 64,
                };
                let dod = match size {
                    0 => 0,
                    64 => self.br.bits(64, "timestamp delta of delta")? as i64,
                    n => {
                        let mut bits = self.br.bits(n, "timestamp delta of delta")?;
                        // Negative numbers come back as large unsigned ones.
                        if bits > (1 << (n - 1)) {
                            bits = bits.wrapping_sub(1 << n);
                        }
                        bits as i64
                    }
                };
                self.t_delta = (self.t_delta as i64).wrapping_add(dod) as u64;
                self.t = self.t.wrapping_add(self.t_delta as i64);
                self.read_value()?;
            }
        }
        self.read += 1;
        Ok((self.t, self.v))
    }

    fn read_value(&mut self) -> Result<(), Corruption> {
        self.v = self.window.read(&mut self.br, self.v, "value")?;
        Ok(())
    }
}

/// The leading/trailing-zero window of Gorilla XOR values, shared by float
/// chunks (values) and histogram chunks (sums).
#[derive(Clone, Copy, Debug)]
pub struct XorWindow {
    leading: u8,
    trailing: u8,
}

impl Default for XorWindow {
    fn default() -> Self {
        // 0xff: no window yet (Prometheus's marker).
        XorWindow {
            leading: 0xff,
            trailing: 0,
        }
    }
}

impl XorWindow {
    /// Writes `v` XOR-encoded against `prev` (the inverse of [`XorWindow::read`]);
    /// Prometheus caps the leading-zero count at 31 to fit 5 bits.
    pub fn write(&mut self, w: &mut BitWriter, prev: f64, v: f64) {
        let delta = v.to_bits() ^ prev.to_bits();
        if delta == 0 {
            w.bit(false);
            return;
        }
        w.bit(true);
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            w.bit(false);
            let n = 64 - u32::from(self.leading) - u32::from(self.trailing);
            w.bits(delta >> self.trailing, n);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        w.bit(true);
        w.bits(u64::from(leading), 5);
        let sig = 64 - u32::from(leading) - u32::from(trailing);
        // 64 significant bits do not fit in 6 bits; 0 stands for 64.
        w.bits(u64::from(sig % 64), 6);
        w.bits(delta >> trailing, sig);
    }

    /// Reads the next value XOR-encoded against `prev`: `0` unchanged, `10` +
    /// the bits in the current window, `11` + 5 bits of leading zeros + 6 bits
    /// of length (0 meaning 64) + the bits.
    pub fn read(
        &mut self,
        br: &mut BitReader<'_>,
        prev: f64,
        what: &str,
    ) -> Result<f64, Corruption> {
        if !br.bit(what)? {
            return Ok(prev);
        }
        let mbits = if !br.bit(what)? {
            let used = u32::from(self.leading) + u32::from(self.trailing);
            if self.leading == 0xff || used >= 64 {
                return Err(Corruption::at(
                    br.offset(),
                    format!("{what}: XOR reuses a window before one was set"),
                ));
            }
            64 - used
        } else {
            let leading = br.bits(5, what)? as u8;
            let mut mbits = br.bits(6, what)? as u32;
            if mbits == 0 {
                mbits = 64;
            }
            if u32::from(leading) + mbits > 64 {
                return Err(Corruption::at(
                    br.offset(),
                    format!("{what}: XOR window of {leading} + {mbits} bits exceeds 64"),
                ));
            }
            self.leading = leading;
            self.trailing = (64 - u32::from(leading) - mbits) as u8;
            mbits
        };
        let bits = br.bits(mbits, what)?;
        let shifted = if self.trailing >= 64 {
            0
        } else {
            bits << self.trailing
        };
        Ok(f64::from_bits(prev.to_bits() ^ shifted))
    }
}

impl Iterator for XorIter<'_> {
    type Item = Result<(i64, f64), Corruption>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.read >= self.total {
            return None;
        }
        let r = self.step();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

/// Appends samples to a new XOR chunk.
#[derive(Clone, Debug)]
pub struct XorEncoder {
    w: BitWriter,
    num: u16,
    t: i64,
    v: f64,
    t_delta: u64,
    window: XorWindow,
}

impl Default for XorEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl XorEncoder {
    /// An empty chunk.
    pub fn new() -> Self {
        let mut w = BitWriter::new();
        w.bits(0, 16);
        XorEncoder {
            w,
            num: 0,
            t: 0,
            v: 0.0,
            t_delta: 0,
            window: XorWindow::default(),
        }
    }

    /// Samples appended so far.
    pub fn len(&self) -> usize {
        usize::from(self.num)
    }

    /// Whether nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.num == 0
    }

    /// Bytes the chunk takes now.
    pub fn size(&self) -> usize {
        self.w.bytes().len()
    }

    /// Appends one sample; timestamps must increase (the caller checks).
    /// Returns false when the chunk is full (u16::MAX samples).
    pub fn append(&mut self, t: i64, v: f64) -> bool {
        if self.num == u16::MAX {
            return false;
        }
        match self.num {
            0 => {
                self.w.varint(t);
                self.w.bits(v.to_bits(), 64);
            }
            1 => {
                let t_delta = t.wrapping_sub(self.t) as u64;
                self.w.uvarint(t_delta);
                self.write_value(v);
                self.t_delta = t_delta;
            }
            _ => {
                let t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                if dod == 0 {
                    self.w.bit(false);
                } else if bit_range(dod, 14) {
                    self.w.bits(0b10, 2);
                    self.w.bits(dod as u64, 14);
                } else if bit_range(dod, 17) {
                    self.w.bits(0b110, 3);
                    self.w.bits(dod as u64, 17);
                } else if bit_range(dod, 20) {
                    self.w.bits(0b1110, 4);
                    self.w.bits(dod as u64, 20);
                } else {
                    self.w.bits(0b1111, 4);
                    self.w.bits(dod as u64, 64);
                }
                self.write_value(v);
                self.t_delta = t_delta;
            }
        }
        self.t = t;
        self.v = v;
        self.num += 1;
        let n = self.num.to_be_bytes();
        let bytes = self.w.bytes_mut();
        bytes[0] = n[0];
        bytes[1] = n[1];
        true
    }

    fn write_value(&mut self, v: f64) {
        self.window.write(&mut self.w, self.v, v);
    }

    /// The chunk's bytes (header and bit stream).
    pub fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }
}

/// Whether `x` fits the `nbits` bucket as Prometheus defines it.
fn bit_range(x: i64, nbits: u32) -> bool {
    -((1i64 << (nbits - 1)) - 1) <= x && x <= 1i64 << (nbits - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use emberlens_model::{is_stale_nan, stale_nan};

    fn round_trip(samples: &[(i64, f64)]) {
        let mut enc = XorEncoder::new();
        for &(t, v) in samples {
            assert!(enc.append(t, v));
        }
        let got: Vec<(i64, f64)> = XorIter::new(enc.bytes(), 0)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got.len(), samples.len());
        for (g, w) in got.iter().zip(samples) {
            assert_eq!(g.0, w.0);
            assert_eq!(g.1.to_bits(), w.1.to_bits(), "value at {}", w.0);
        }
    }

    #[test]
    fn round_trips_every_bucket_and_special_values() {
        let mut s = vec![(1_000, 1.0), (16_000, 1.0), (31_000, 2.5), (46_001, -3.25)];
        // dod in each bucket, positive and negative
        let mut t = 46_001;
        let mut d = 15_001;
        for dod in [
            0i64,
            8_000,
            -8_000,
            65_000,
            -65_000,
            500_000,
            -500_000,
            10_000_000_000,
            -10_000_000_000,
        ] {
            d += dod;
            t += d;
            s.push((t, (t as f64).sqrt()));
        }
        s.push((t + 1, f64::NAN));
        s.push((t + 2, stale_nan()));
        s.push((t + 3, f64::INFINITY));
        s.push((t + 4, -0.0));
        s.push((t + 5, f64::MIN_POSITIVE));
        s.push((t + 6, f64::MAX));
        round_trip(&s);
        let mut enc = XorEncoder::new();
        enc.append(5, stale_nan());
        let (_, v) = XorIter::new(enc.bytes(), 0)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert!(is_stale_nan(v));
    }

    #[test]
    fn negative_first_timestamp() {
        round_trip(&[(-5_000, 1.0), (-4_000, 2.0), (0, 3.0)]);
    }

    #[test]
    fn truncated_chunk_is_an_error_not_a_panic() {
        let mut enc = XorEncoder::new();
        for i in 0..100 {
            enc.append(i * 15_000, i as f64 * 1.7);
        }
        let bytes = enc.bytes();
        for cut in 0..bytes.len() {
            let Ok(it) = XorIter::new(&bytes[..cut], 0) else {
                continue;
            };
            let results: Vec<_> = it.collect();
            assert!(
                results.iter().any(Result::is_err) || results.len() == 100,
                "cut at {cut}"
            );
        }
    }
}
