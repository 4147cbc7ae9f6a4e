//! [`Model::from_bytes`]: a model straight from pprof bytes, without the
//! decoded [`Profile`]'s per-sample vectors.
//!
//! A key design decision: a decoded `Profile` holds three `Vec`s per sample
//! (locations as `u64`, values, labels); on the 50 MB benchmark profile
//! (1.45 M samples) that is ~550 MB, which the model then copies into its
//! columns. Here the top level of the protobuf is walked by hand: every
//! `sample` field (tag 2) is decoded straight into flat columns (location
//! ids as `u32`), and all other fields — a few MB of locations, functions
//! and strings — are copied into a second buffer that prost decodes as a
//! `Profile` without samples. The model is then assembled from both, with
//! the same checks as [`Model::from_pprof`] (plus `emberlens_pprof`'s
//! validation of everything but the samples). Gzip is inflated as the walk
//! reads it (the 157 MB the 50 MB benchmark file inflates to are never held
//! whole: growing that buffer by doubling peaked at 384 MB), and the
//! location-id column becomes the model's stack column in place.
//!
//! A location id above `u32::MAX` (legal, never seen in practice) makes the
//! whole profile go through [`emberlens_pprof::decode`] instead.

use std::io::{BufRead, Read};

use bytes_reader::Reader;
use emberlens_pprof::{Label, Profile};
use prost::Message;

use crate::FlameError;
use crate::model::{Model, SampleSource};

/// Samples as columns (see the module docs).
#[derive(Default)]
struct Columns {
    loc_ids: Vec<u32>,
    loc_end: Vec<usize>,
    values: Vec<i64>,
    value_end: Vec<usize>,
    labels: Vec<Label>,
    label_end: Vec<usize>,
}

fn range(ends: &[usize], i: usize) -> std::ops::Range<usize> {
    (if i == 0 { 0 } else { ends[i - 1] })..ends[i]
}

impl SampleSource for Columns {
    fn count(&self) -> usize {
        self.value_end.len()
    }
    fn total_locations(&self) -> usize {
        self.loc_ids.len()
    }
    fn total_labels(&self) -> usize {
        self.labels.len()
    }
    fn values(&self, i: usize) -> &[i64] {
        &self.values[range(&self.value_end, i)]
    }
    fn labels(&self, i: usize) -> &[Label] {
        &self.labels[range(&self.label_end, i)]
    }
    fn for_each_location(
        &self,
        i: usize,
        mut f: impl FnMut(u64) -> Result<(), FlameError>,
    ) -> Result<(), FlameError> {
        self.loc_ids[range(&self.loc_end, i)]
            .iter()
            .try_for_each(|&id| f(u64::from(id)))
    }
    fn take_stacks(&mut self) -> Option<(Vec<u32>, Vec<usize>)> {
        let ids = std::mem::take(&mut self.loc_ids);
        Some((ids, std::mem::take(&mut self.loc_end)))
    }
}

/// A minimal protobuf reader over a byte slice (varints, keys, lengths).
mod bytes_reader {
    /// Reads protobuf primitives; every read checks the bounds.
    pub struct Reader<'a> {
        pub buf: &'a [u8],
        pub pos: usize,
    }

    impl<'a> Reader<'a> {
        pub fn new(buf: &'a [u8]) -> Self {
            Reader { buf, pos: 0 }
        }
        pub fn done(&self) -> bool {
            self.pos >= self.buf.len()
        }
        pub fn varint(&mut self) -> Option<u64> {
            let mut v: u64 = 0;
            for shift in (0..70).step_by(7) {
                let b = *self.buf.get(self.pos)?;
                self.pos += 1;
                if shift == 63 && b > 1 {
                    return None;
                }
                v |= u64::from(b & 0x7f) << shift;
                if b & 0x80 == 0 {
                    return Some(v);
                }
            }
            None
        }
        pub fn bytes(&mut self, n: u64) -> Option<&'a [u8]> {
            let n = usize::try_from(n).ok()?;
            let end = self.pos.checked_add(n)?;
            let s = self.buf.get(self.pos..end)?;
            self.pos = end;
            Some(s)
        }
        /// Skips a field's value of `wire` type; `None` on a bad type or
        /// truncation.
        pub fn skip(&mut self, wire: u64) -> Option<()> {
            match wire {
                0 => self.varint().map(|_| ()),
                1 => self.bytes(8).map(|_| ()),
                2 => {
                    let n = self.varint()?;
                    self.bytes(n).map(|_| ())
                }
                5 => self.bytes(4).map(|_| ()),
                _ => None,
            }
        }
    }
}

fn bad(offset: usize, what: &str) -> FlameError {
    FlameError::invalid(format!("protobuf at offset {offset}"), what.to_string())
}

/// Decodes one `Sample` message into the columns. `false`: a location id
/// does not fit in `u32` (the caller falls back to the full decoder).
fn sample(cols: &mut Columns, msg: &[u8], base: usize) -> Result<bool, FlameError> {
    let mut r = Reader::new(msg);
    while !r.done() {
        let at = base + r.pos;
        let key = r
            .varint()
            .ok_or_else(|| bad(at, "truncated sample field key"))?;
        let (tag, wire) = (key >> 3, key & 7);
        match (tag, wire) {
            (1 | 2, 2) => {
                let n = r.varint().ok_or_else(|| bad(at, "truncated length"))?;
                let packed = r.bytes(n).ok_or_else(|| bad(at, "length past the end"))?;
                let mut p = Reader::new(packed);
                while !p.done() {
                    let v = p.varint().ok_or_else(|| bad(at, "bad packed varint"))?;
                    if !push(cols, tag, v) {
                        return Ok(false);
                    }
                }
            }
            (1 | 2, 0) => {
                let v = r.varint().ok_or_else(|| bad(at, "bad varint"))?;
                if !push(cols, tag, v) {
                    return Ok(false);
                }
            }
            (3, 2) => {
                let n = r.varint().ok_or_else(|| bad(at, "truncated length"))?;
                let m = r.bytes(n).ok_or_else(|| bad(at, "length past the end"))?;
                let label = Label::decode(m).map_err(|e| bad(at, &format!("label: {e}")))?;
                cols.labels.push(label);
            }
            (0, _) => return Err(bad(at, "field number 0")),
            (_, w) => {
                r.skip(w).ok_or_else(|| bad(at, "bad field in sample"))?;
            }
        }
    }
    cols.loc_end.push(cols.loc_ids.len());
    cols.value_end.push(cols.values.len());
    cols.label_end.push(cols.labels.len());
    Ok(true)
}

fn push(cols: &mut Columns, tag: u64, v: u64) -> bool {
    if tag == 1 {
        match u32::try_from(v) {
            Ok(id) => cols.loc_ids.push(id),
            Err(_) => return false,
        }
    } else {
        // int64 on the wire: the varint is the two's complement.
        cols.values.push(v as i64);
    }
    true
}

impl Model {
    /// The model of a profile file in any format Emberlens reads (gzipped
    /// or not): pprof through [`Model::from_bytes`]; folded stacks and Chrome
    /// `.cpuprofile` through `emberlens_pprof`'s importers
    /// ([`emberlens_pprof::decode_any`]). The format is sniffed from the
    /// first (inflated) bytes.
    pub fn from_any_bytes(bytes: &[u8], max_decoded_bytes: usize) -> Result<Model, FlameError> {
        let mut head = Vec::new();
        let head: &[u8] = if emberlens_pprof::is_gzip(bytes) {
            // A truncated or corrupt stream fails later, with its reason.
            let _ = flate2::read::MultiGzDecoder::new(bytes)
                .take(4096)
                .read_to_end(&mut head);
            &head
        } else {
            bytes
        };
        match emberlens_pprof::import::sniff(head) {
            emberlens_pprof::Format::Pprof => Self::from_bytes(bytes, max_decoded_bytes),
            _ => {
                let limits = emberlens_pprof::ImportLimits {
                    max_input_bytes: max_decoded_bytes,
                    ..emberlens_pprof::ImportLimits::default()
                };
                let p = emberlens_pprof::decode_any_with_limits(bytes, limits)
                    .map_err(|e| FlameError::invalid("profile", e.to_string()))?;
                Self::from_pprof(&p)
            }
        }
    }

    /// The model of pprof bytes (gzipped or raw), decoded without building
    /// the per-sample vectors of a [`Profile`] (see the module docs).
    /// Gzipped input may inflate to at most `max_decoded_bytes`; it is
    /// inflated as it is read, never held whole.
    pub fn from_bytes(bytes: &[u8], max_decoded_bytes: usize) -> Result<Model, FlameError> {
        let walked = if emberlens_pprof::is_gzip(bytes) {
            let cap = u64::try_from(max_decoded_bytes)
                .unwrap_or(u64::MAX)
                .saturating_add(1);
            let inflate = flate2::read::MultiGzDecoder::new(bytes).take(cap);
            // Gzip's trailer holds the inflated size (of the last member,
            // modulo 4 GiB: a hint only).
            let inflated = bytes
                .last_chunk::<4>()
                .map_or(0, |t| u32::from_le_bytes(*t) as usize)
                .min(max_decoded_bytes)
                .min(bytes.len().saturating_mul(16));
            let walked = walk(
                std::io::BufReader::with_capacity(1 << 16, inflate),
                inflated,
            )?;
            if walked.read > max_decoded_bytes {
                return Err(FlameError::TooLarge(format!(
                    "decompressed size exceeds the limit of {max_decoded_bytes} bytes"
                )));
            }
            walked
        } else {
            if bytes.len() > max_decoded_bytes {
                return Err(FlameError::TooLarge(format!(
                    "size exceeds the limit of {max_decoded_bytes} bytes"
                )));
            }
            walk(bytes, bytes.len())?
        };
        if walked.read == 0 {
            return Err(FlameError::invalid("profile", "empty input"));
        }
        let Some(mut cols) = walked.cols else {
            return Self::via_profile(bytes, max_decoded_bytes);
        };
        let skeleton = Profile::decode(walked.rest.as_slice())
            .map_err(|e| FlameError::invalid("profile", e.to_string()))?;
        drop(walked.rest);
        emberlens_pprof::validate(&skeleton)
            .map_err(|e| FlameError::invalid("profile", e.to_string()))?;
        Self::assemble(&skeleton, &mut cols)
    }

    fn via_profile(bytes: &[u8], max_decoded_bytes: usize) -> Result<Model, FlameError> {
        let p = emberlens_pprof::decode_with_limit(bytes, max_decoded_bytes)
            .map_err(|e| FlameError::invalid("profile", e.to_string()))?;
        Model::from_pprof(&p)
    }
}

/// What [`walk`] read.
struct Walked {
    /// The samples as columns; `None` when a location id does not fit in
    /// `u32` (the caller decodes the whole profile instead).
    cols: Option<Columns>,
    /// Every top-level field but the samples, as protobuf.
    rest: Vec<u8>,
    /// Bytes read.
    read: usize,
}

/// Walks the top level of a profile read from `r`, about `size` bytes:
/// samples into columns, every other field copied (see the module docs).
///
/// The location-id column, by far the largest (206 MB for the 50 MB
/// benchmark profile), is reserved up front for one id per two bytes of
/// input, then shrunk: a reservation costs address space only until it is
/// written, where growing by doubling wrote every byte twice and left the
/// old buffers behind (Wasm memory never shrinks).
fn walk(r: impl BufRead, size: usize) -> Result<Walked, FlameError> {
    let mut st = Stream { r, pos: 0 };
    let mut cols = Columns::default();
    // A reservation refused (no address space left) is no error: the
    // column grows as it is filled.
    let _ = cols.loc_ids.try_reserve_exact(size / 2);
    let mut rest: Vec<u8> = Vec::new();
    let mut msg: Vec<u8> = Vec::new();
    loop {
        let start = st.pos;
        let Some(key) = st.varint(start, "truncated field key")? else {
            break;
        };
        let (tag, wire) = (key >> 3, key & 7);
        if tag == 2 && wire == 2 {
            let n = st.varint_or(start, "truncated length")?;
            let body_at = st.pos;
            msg.clear();
            st.append(n, &mut msg, start)?;
            if !sample(&mut cols, &msg, body_at)? {
                return Ok(Walked {
                    cols: None,
                    rest: Vec::new(),
                    read: st.pos,
                });
            }
            continue;
        }
        put_varint(&mut rest, key);
        match wire {
            0 => {
                let v = st.varint_or(start, "bad field")?;
                put_varint(&mut rest, v);
            }
            1 => st.append(8, &mut rest, start)?,
            2 => {
                let n = st.varint_or(start, "truncated length")?;
                put_varint(&mut rest, n);
                st.append(n, &mut rest, start)?;
            }
            5 => st.append(4, &mut rest, start)?,
            _ => return Err(bad(start, "bad field")),
        }
    }
    cols.loc_ids.shrink_to_fit();
    Ok(Walked {
        cols: Some(cols),
        rest,
        read: st.pos,
    })
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Protobuf primitives from a stream, with the offset read so far.
struct Stream<R> {
    r: R,
    pos: usize,
}

fn read_error(e: std::io::Error) -> FlameError {
    FlameError::invalid("gzip", e.to_string())
}

impl<R: BufRead> Stream<R> {
    /// The next byte, `None` at the end.
    fn byte(&mut self) -> Result<Option<u8>, FlameError> {
        let b = loop {
            match self.r.fill_buf() {
                Ok(buf) => break buf.first().copied(),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_error(e)),
            }
        };
        if b.is_some() {
            self.r.consume(1);
            self.pos += 1;
        }
        Ok(b)
    }

    /// A varint; `None` at the end of the input before its first byte, an
    /// error (`what` at `at`) if it ends or overflows inside one.
    fn varint(&mut self, at: usize, what: &str) -> Result<Option<u64>, FlameError> {
        let mut v: u64 = 0;
        for shift in (0..70).step_by(7) {
            let Some(b) = self.byte()? else {
                return if shift == 0 {
                    Ok(None)
                } else {
                    Err(bad(at, what))
                };
            };
            if shift == 63 && b > 1 {
                return Err(bad(at, what));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(Some(v));
            }
        }
        Err(bad(at, what))
    }

    /// A varint that must be there.
    fn varint_or(&mut self, at: usize, what: &str) -> Result<u64, FlameError> {
        self.varint(at, what)?.ok_or_else(|| bad(at, what))
    }

    /// Appends the next `n` bytes to `out` (growing it as they come, so a
    /// hostile length allocates no more than the input holds).
    fn append(&mut self, n: u64, out: &mut Vec<u8>, at: usize) -> Result<(), FlameError> {
        let got = (&mut self.r).take(n).read_to_end(out).map_err(read_error)?;
        self.pos += got;
        if (got as u64) < n {
            return Err(bad(at, "length past the end"));
        }
        Ok(())
    }
}
