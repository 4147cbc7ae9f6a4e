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
//! validation of everything but the samples).
//!
//! A location id above `u32::MAX` (legal, never seen in practice) makes the
//! whole profile go through [`emberlens_pprof::decode`] instead.

use std::io::Read;

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
        self.loc_end.len()
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
    /// Gzipped input may inflate to at most `max_decoded_bytes`.
    pub fn from_bytes(bytes: &[u8], max_decoded_bytes: usize) -> Result<Model, FlameError> {
        let raw: Option<Vec<u8>> = if emberlens_pprof::is_gzip(bytes) {
            let mut out = Vec::new();
            let cap = u64::try_from(max_decoded_bytes)
                .unwrap_or(u64::MAX)
                .saturating_add(1);
            flate2::read::MultiGzDecoder::new(bytes)
                .take(cap)
                .read_to_end(&mut out)
                .map_err(|e| FlameError::invalid("gzip", e.to_string()))?;
            if out.len() > max_decoded_bytes {
                return Err(FlameError::TooLarge(format!(
                    "decompressed size exceeds the limit of {max_decoded_bytes} bytes"
                )));
            }
            Some(out)
        } else {
            if bytes.len() > max_decoded_bytes {
                return Err(FlameError::TooLarge(format!(
                    "size exceeds the limit of {max_decoded_bytes} bytes"
                )));
            }
            None
        };
        let data: &[u8] = raw.as_deref().unwrap_or(bytes);
        if data.is_empty() {
            return Err(FlameError::invalid("profile", "empty input"));
        }
        let mut cols = Columns::default();
        let mut rest: Vec<u8> = Vec::new();
        let mut r = Reader::new(data);
        while !r.done() {
            let start = r.pos;
            let key = r
                .varint()
                .ok_or_else(|| bad(start, "truncated field key"))?;
            let (tag, wire) = (key >> 3, key & 7);
            if tag == 2 && wire == 2 {
                let n = r.varint().ok_or_else(|| bad(start, "truncated length"))?;
                let body_at = r.pos;
                let msg = r
                    .bytes(n)
                    .ok_or_else(|| bad(start, "length past the end"))?;
                if !sample(&mut cols, msg, body_at)? {
                    return Self::via_profile(data);
                }
            } else {
                r.skip(wire).ok_or_else(|| bad(start, "bad field"))?;
                rest.extend_from_slice(&data[start..r.pos]);
            }
        }
        drop(raw);
        let skeleton = Profile::decode(rest.as_slice())
            .map_err(|e| FlameError::invalid("profile", e.to_string()))?;
        drop(rest);
        emberlens_pprof::validate(&skeleton)
            .map_err(|e| FlameError::invalid("profile", e.to_string()))?;
        Self::assemble(&skeleton, &cols)
    }

    fn via_profile(data: &[u8]) -> Result<Model, FlameError> {
        let p = emberlens_pprof::decode_with_limit(data, usize::MAX)
            .map_err(|e| FlameError::invalid("profile", e.to_string()))?;
        Model::from_pprof(&p)
    }
}
