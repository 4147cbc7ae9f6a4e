//! The integer native-histogram chunk encoding (encoding 2), decoding only.
//!
//! Layout, after Prometheus's `chunkenc/histogram.go`: `num_samples u16 BE`,
//! a flags byte (counter-reset hint in its top two bits), then a bit stream.
//! The chunk's layout comes first and holds for every sample: zero threshold
//! (one byte: 0 → 0, 255 → 64 raw bits follow, n → 2^(n-243)/2), schema
//! (varbit int), positive spans and negative spans (each a varbit uint count,
//! then per span a varbit uint length and a varbit int offset). Sample 0:
//! t (varbit int), count and zero count (varbit uint), sum (64 raw bits),
//! then each bucket's value (varbit int). Later samples: delta-of-delta of
//! t, count and zero count (varbit int), the sum XOR-encoded as in float
//! chunks, then each bucket's delta-of-delta (varbit int); deltas start at 0,
//! so sample 1 is covered by the same rule.
//!
//! Bucket values are stored as Prometheus keeps them in memory: the first
//! bucket's count, then each next bucket's difference from the previous one
//! ([`IntHistogram::positive_counts`] turns them into counts).

use emberlens_model::{Bucket, CounterResetHint, FloatHistogram, Span};

use crate::chunkenc::bstream::{BitReader, BitWriter};
use crate::chunkenc::xor::XorWindow;
use crate::error::Corruption;

/// One integer native histogram sample.
#[derive(Clone, Debug, PartialEq)]
pub struct IntHistogram {
    /// Counter-reset hint of the chunk (0 unknown, 1 reset, 2 not reset, 3 gauge).
    pub counter_reset_hint: u8,
    /// Bucket resolution: boundaries at 2^(i·2^-schema).
    pub schema: i32,
    /// Observations with |v| ≤ this go to the zero bucket.
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: u64,
    /// All observations.
    pub count: u64,
    /// Sum of observations (a staleness marker when the series went stale).
    pub sum: f64,
    /// Spans of the positive buckets.
    pub positive_spans: Vec<Span>,
    /// Spans of the negative buckets.
    pub negative_spans: Vec<Span>,
    /// Positive buckets, delta-encoded (first absolute).
    pub positive_deltas: Vec<i64>,
    /// Negative buckets, delta-encoded (first absolute).
    pub negative_deltas: Vec<i64>,
}

fn cumulative(deltas: &[i64]) -> Vec<i64> {
    let mut acc = 0i64;
    deltas
        .iter()
        .map(|d| {
            acc = acc.wrapping_add(*d);
            acc
        })
        .collect()
}

impl IntHistogram {
    /// The non-empty buckets from most negative to most positive, with their
    /// bounds, as Prometheus's query API lists them.
    pub fn buckets(&self) -> Vec<Bucket> {
        self.to_float().buckets()
    }

    /// The histogram with float counts, as PromQL evaluates it.
    pub fn to_float(&self) -> FloatHistogram {
        FloatHistogram {
            counter_reset_hint: CounterResetHint::from_bits(self.counter_reset_hint),
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count: self.zero_count as f64,
            count: self.count as f64,
            sum: self.sum,
            positive_spans: self.positive_spans.clone(),
            negative_spans: self.negative_spans.clone(),
            positive_buckets: self
                .positive_counts()
                .into_iter()
                .map(|c| c as f64)
                .collect(),
            negative_buckets: self
                .negative_counts()
                .into_iter()
                .map(|c| c as f64)
                .collect(),
            custom_values: Vec::new(),
        }
    }

    /// Positive bucket counts in span order (increasing bucket index).
    pub fn positive_counts(&self) -> Vec<i64> {
        cumulative(&self.positive_deltas)
    }

    /// Negative bucket counts in span order (increasing magnitude).
    pub fn negative_counts(&self) -> Vec<i64> {
        cumulative(&self.negative_deltas)
    }
}

/// The part of a histogram chunk that holds for all its samples.
struct Layout {
    schema: i32,
    zero_threshold: f64,
    positive: Vec<Span>,
    negative: Vec<Span>,
    npos: usize,
    nneg: usize,
}

/// Prometheus 3's schema for custom-bucket histograms (NHCB), whose layout
/// adds the custom bounds; not decoded yet.
const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

fn read_spans(br: &mut BitReader<'_>, what: &str) -> Result<(Vec<Span>, usize), Corruption> {
    let at = br.offset();
    let n = br.varbit_uint(what)?;
    if n > MAX_BUCKETS {
        return Err(Corruption::at(at, format!("{what}: {n} spans")));
    }
    let mut spans = Vec::with_capacity(n as usize);
    let mut buckets = 0u64;
    for _ in 0..n {
        let length = br.varbit_uint(what)?;
        let offset = br.varbit_int(what)?;
        buckets = buckets.saturating_add(length);
        if buckets > MAX_BUCKETS || i32::try_from(offset).is_err() {
            return Err(Corruption::at(
                at,
                format!("{what}: implausible span ({length} buckets at offset {offset})"),
            ));
        }
        spans.push(Span {
            offset: offset as i32,
            length: length as u32,
        });
    }
    Ok((spans, buckets as usize))
}

/// Reads the layout: zero threshold (one byte: 0 → 0, 255 → 64 raw bits
/// follow, n → 2^(n-243)/2), schema (varbit int), positive then negative
/// spans.
fn read_layout(br: &mut BitReader<'_>) -> Result<Layout, Corruption> {
    let zero_threshold = match br.byte("zero threshold")? {
        0 => 0.0,
        255 => f64::from_bits(br.bits(64, "zero threshold")?),
        b => 0.5 * 2f64.powi(i32::from(b) - 243),
    };
    let at = br.offset();
    let schema = br.varbit_int("schema")?;
    let schema = i32::try_from(schema)
        .map_err(|_| Corruption::at(at, format!("schema {schema} out of range")))?;
    if schema == CUSTOM_BUCKETS_SCHEMA {
        return Err(Corruption::at(
            at,
            "custom-bucket histograms (schema -53, Prometheus 3's NHCB) are not decoded yet",
        ));
    }
    if !(emberlens_model::MIN_SCHEMA..=emberlens_model::MAX_SCHEMA).contains(&schema) {
        return Err(Corruption::at(
            at,
            format!("schema {schema} out of range -4…8"),
        ));
    }
    let (positive, npos) = read_spans(br, "positive spans")?;
    let (negative, nneg) = read_spans(br, "negative spans")?;
    Ok(Layout {
        schema,
        zero_threshold,
        positive,
        negative,
        npos,
        nneg,
    })
}

/// Decodes a histogram chunk's samples in order.
pub struct HistogramIter<'a> {
    br: BitReader<'a>,
    total: u16,
    read: u16,
    hint: u8,
    layout: Option<(i32, f64, Vec<Span>, Vec<Span>)>,
    t: i64,
    t_delta: i64,
    count: u64,
    count_delta: i64,
    zero_count: u64,
    zero_delta: i64,
    sum: f64,
    sum_window: XorWindow,
    pos: Vec<i64>,
    pos_delta: Vec<i64>,
    neg: Vec<i64>,
    neg_delta: Vec<i64>,
    failed: bool,
}

/// A chunk may not declare more buckets than this (a corrupt span count must
/// not allocate gigabytes). Prometheus caps schemas at 8 and buckets per
/// histogram in practice far lower.
const MAX_BUCKETS: u64 = 1 << 16;

impl<'a> HistogramIter<'a> {
    /// An iterator over `data` (the chunk's bytes after the encoding byte),
    /// which starts at file offset `base`.
    pub fn new(data: &'a [u8], base: u64) -> Result<Self, Corruption> {
        if data.len() < 3 {
            return Err(Corruption::at(
                base,
                "histogram chunk shorter than its 3-byte header",
            ));
        }
        Ok(HistogramIter {
            br: BitReader::new(&data[3..], base + 3),
            total: u16::from_be_bytes([data[0], data[1]]),
            read: 0,
            hint: data[2] >> 6,
            layout: None,
            t: 0,
            t_delta: 0,
            count: 0,
            count_delta: 0,
            zero_count: 0,
            zero_delta: 0,
            sum: 0.0,
            sum_window: XorWindow::default(),
            pos: Vec::new(),
            pos_delta: Vec::new(),
            neg: Vec::new(),
            neg_delta: Vec::new(),
            failed: false,
        })
    }

    fn read_layout(&mut self) -> Result<(), Corruption> {
        let layout = read_layout(&mut self.br)?;
        self.pos = vec![0; layout.npos];
        self.pos_delta = vec![0; layout.npos];
        self.neg = vec![0; layout.nneg];
        self.neg_delta = vec![0; layout.nneg];
        self.layout = Some((
            layout.schema,
            layout.zero_threshold,
            layout.positive,
            layout.negative,
        ));
        Ok(())
    }

    fn step(&mut self) -> Result<(i64, IntHistogram), Corruption> {
        if self.read == 0 {
            self.read_layout()?;
            self.t = self.br.varbit_int("timestamp")?;
            self.count = self.br.varbit_uint("count")?;
            self.zero_count = self.br.varbit_uint("zero count")?;
            self.sum = f64::from_bits(self.br.bits(64, "sum")?);
            for i in 0..self.pos.len() {
                self.pos[i] = self.br.varbit_int("positive bucket")?;
            }
            for i in 0..self.neg.len() {
                self.neg[i] = self.br.varbit_int("negative bucket")?;
            }
        } else {
            self.t_delta = self.t_delta.wrapping_add(self.br.varbit_int("timestamp")?);
            self.t = self.t.wrapping_add(self.t_delta);
            self.count_delta = self.count_delta.wrapping_add(self.br.varbit_int("count")?);
            self.count = (self.count as i64).wrapping_add(self.count_delta) as u64;
            self.zero_delta = self
                .zero_delta
                .wrapping_add(self.br.varbit_int("zero count")?);
            self.zero_count = (self.zero_count as i64).wrapping_add(self.zero_delta) as u64;
            self.sum = self.sum_window.read(&mut self.br, self.sum, "sum")?;
            for i in 0..self.pos.len() {
                self.pos_delta[i] =
                    self.pos_delta[i].wrapping_add(self.br.varbit_int("positive bucket")?);
                self.pos[i] = self.pos[i].wrapping_add(self.pos_delta[i]);
            }
            for i in 0..self.neg.len() {
                self.neg_delta[i] =
                    self.neg_delta[i].wrapping_add(self.br.varbit_int("negative bucket")?);
                self.neg[i] = self.neg[i].wrapping_add(self.neg_delta[i]);
            }
        }
        self.read += 1;
        let Some((schema, zero_threshold, pos_spans, neg_spans)) = &self.layout else {
            return Err(Corruption::at(
                self.br.offset(),
                "histogram chunk without a layout",
            ));
        };
        Ok((
            self.t,
            IntHistogram {
                counter_reset_hint: self.hint,
                schema: *schema,
                zero_threshold: *zero_threshold,
                zero_count: self.zero_count,
                count: self.count,
                sum: self.sum,
                positive_spans: pos_spans.clone(),
                negative_spans: neg_spans.clone(),
                positive_deltas: self.pos.clone(),
                negative_deltas: self.neg.clone(),
            },
        ))
    }
}

impl Iterator for HistogramIter<'_> {
    type Item = Result<(i64, IntHistogram), Corruption>;

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

/// Decodes a float-histogram chunk (encoding 3) in order. Same header and
/// layout as integer histograms; sample 0 has t (varbit int) and count, zero
/// count, sum and every bucket as 64 raw bits; later samples have the
/// delta-of-delta of t (varbit int) and each of those floats XOR-encoded
/// against its previous value, each with its own window.
pub struct FloatHistogramIter<'a> {
    br: BitReader<'a>,
    total: u16,
    read: u16,
    hint: CounterResetHint,
    layout: Option<Layout>,
    t: i64,
    t_delta: i64,
    /// count, zero count, sum, then positive and negative buckets.
    values: Vec<f64>,
    windows: Vec<XorWindow>,
    failed: bool,
}

impl<'a> FloatHistogramIter<'a> {
    /// An iterator over `data` (the chunk's bytes after the encoding byte),
    /// which starts at file offset `base`.
    pub fn new(data: &'a [u8], base: u64) -> Result<Self, Corruption> {
        if data.len() < 3 {
            return Err(Corruption::at(
                base,
                "float histogram chunk shorter than its 3-byte header",
            ));
        }
        Ok(FloatHistogramIter {
            br: BitReader::new(&data[3..], base + 3),
            total: u16::from_be_bytes([data[0], data[1]]),
            read: 0,
            hint: CounterResetHint::from_bits(data[2] >> 6),
            layout: None,
            t: 0,
            t_delta: 0,
            values: Vec::new(),
            windows: Vec::new(),
            failed: false,
        })
    }

    fn step(&mut self) -> Result<(i64, FloatHistogram), Corruption> {
        if self.read == 0 {
            let layout = read_layout(&mut self.br)?;
            let n = 3 + layout.npos + layout.nneg;
            self.t = self.br.varbit_int("timestamp")?;
            self.values = Vec::with_capacity(n);
            for i in 0..n {
                let what = match i {
                    0 => "count",
                    1 => "zero count",
                    2 => "sum",
                    _ => "bucket",
                };
                self.values.push(f64::from_bits(self.br.bits(64, what)?));
            }
            self.windows = vec![XorWindow::default(); n];
            self.layout = Some(layout);
        } else {
            self.t_delta = self.t_delta.wrapping_add(self.br.varbit_int("timestamp")?);
            self.t = self.t.wrapping_add(self.t_delta);
            for (i, (v, w)) in self.values.iter_mut().zip(&mut self.windows).enumerate() {
                let what = match i {
                    0 => "count",
                    1 => "zero count",
                    2 => "sum",
                    _ => "bucket",
                };
                *v = w.read(&mut self.br, *v, what)?;
            }
        }
        self.read += 1;
        let Some(layout) = &self.layout else {
            return Err(Corruption::at(
                self.br.offset(),
                "float histogram chunk without a layout",
            ));
        };
        let buckets = &self.values[3..];
        Ok((
            self.t,
            FloatHistogram {
                counter_reset_hint: self.hint,
                schema: layout.schema,
                zero_threshold: layout.zero_threshold,
                count: self.values[0],
                zero_count: self.values[1],
                sum: self.values[2],
                positive_spans: layout.positive.clone(),
                negative_spans: layout.negative.clone(),
                positive_buckets: buckets[..layout.npos].to_vec(),
                negative_buckets: buckets[layout.npos..].to_vec(),
                custom_values: Vec::new(),
            },
        ))
    }
}

impl Iterator for FloatHistogramIter<'_> {
    type Item = Result<(i64, FloatHistogram), Corruption>;

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

/// Writes float-histogram chunks (encoding 3), the inverse of
/// [`FloatHistogramIter`]. Every sample must share the first one's layout
/// (schema, zero threshold, spans): Prometheus cuts a new chunk when the
/// layout changes, and so must the caller ([`FloatHistogramEncoder::append`]
/// says when).
pub struct FloatHistogramEncoder {
    w: BitWriter,
    num: u16,
    layout: Option<FloatHistogram>,
    t: i64,
    t_delta: i64,
    values: Vec<f64>,
    windows: Vec<XorWindow>,
}

fn put_spans(w: &mut BitWriter, spans: &[Span]) {
    w.varbit_uint(spans.len() as u64);
    for s in spans {
        w.varbit_uint(u64::from(s.length));
        w.varbit_int(i64::from(s.offset));
    }
}

impl FloatHistogramEncoder {
    /// An empty chunk with counter-reset hint `hint` in its header.
    pub fn new(hint: CounterResetHint) -> Self {
        let mut w = BitWriter::new();
        w.bits(0, 16);
        let bits = match hint {
            CounterResetHint::Unknown => 0u8,
            CounterResetHint::Reset => 1,
            CounterResetHint::NotReset => 2,
            CounterResetHint::Gauge => 3,
        };
        w.byte(bits << 6);
        FloatHistogramEncoder {
            w,
            num: 0,
            layout: None,
            t: 0,
            t_delta: 0,
            values: Vec::new(),
            windows: Vec::new(),
        }
    }

    /// Appends one sample; false (and nothing written) when the chunk is
    /// full or `h`'s layout differs from the chunk's.
    pub fn append(&mut self, t: i64, h: &FloatHistogram) -> bool {
        let values: Vec<f64> = [h.count, h.zero_count, h.sum]
            .into_iter()
            .chain(h.positive_buckets.iter().copied())
            .chain(h.negative_buckets.iter().copied())
            .collect();
        match &self.layout {
            None => {
                let zt = h.zero_threshold;
                let (frac, exp) = frexp(zt);
                match exp.checked_add(243) {
                    _ if zt == 0.0 => self.w.byte(0),
                    Some(b @ 1..=254) if frac == 0.5 => self.w.byte(b as u8),
                    _ => {
                        self.w.byte(255);
                        self.w.bits(zt.to_bits(), 64);
                    }
                }
                self.w.varbit_int(i64::from(h.schema));
                put_spans(&mut self.w, &h.positive_spans);
                put_spans(&mut self.w, &h.negative_spans);
                self.w.varbit_int(t);
                for v in &values {
                    self.w.bits(v.to_bits(), 64);
                }
                self.windows = vec![XorWindow::default(); values.len()];
                self.layout = Some(h.clone());
            }
            Some(l) => {
                let same = l.schema == h.schema
                    && l.zero_threshold.to_bits() == h.zero_threshold.to_bits()
                    && l.positive_spans == h.positive_spans
                    && l.negative_spans == h.negative_spans
                    && values.len() == self.values.len();
                if !same || self.num == u16::MAX {
                    return false;
                }
                let t_delta = t.wrapping_sub(self.t);
                self.w.varbit_int(t_delta.wrapping_sub(self.t_delta));
                self.t_delta = t_delta;
                for ((w, prev), v) in self.windows.iter_mut().zip(&self.values).zip(&values) {
                    w.write(&mut self.w, *prev, *v);
                }
            }
        }
        self.t = t;
        self.values = values;
        self.num += 1;
        let n = self.num.to_be_bytes();
        let bytes = self.w.bytes_mut();
        bytes[0] = n[0];
        bytes[1] = n[1];
        true
    }

    /// The chunk's bytes (header and bit stream), without the encoding byte.
    pub fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }
}

/// `x = frac · 2^exp` with `frac` in [0.5, 1), like Go's `math.Frexp`
/// (finite non-zero `x` only; others give `(x, 0)`).
fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let raw_exp = ((bits >> 52) & 0x7ff) as i32;
    if raw_exp == 0 {
        // Subnormal: scale into the normal range first.
        let (f, e) = frexp(x * 2f64.powi(64));
        return (f, e - 64);
    }
    let frac = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (frac, raw_exp - 1022)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(count: f64, sum: f64, pos: Vec<f64>, neg: Vec<f64>) -> FloatHistogram {
        FloatHistogram {
            counter_reset_hint: CounterResetHint::NotReset,
            schema: 3,
            zero_threshold: 2f64.powi(-128),
            zero_count: 0.5,
            count,
            sum,
            positive_spans: vec![
                Span {
                    offset: -3,
                    length: 2,
                },
                Span {
                    offset: 4,
                    length: 1,
                },
            ],
            negative_spans: vec![Span {
                offset: 0,
                length: pos.len() as u32 - 2,
            }],
            positive_buckets: pos,
            negative_buckets: neg,
            custom_values: Vec::new(),
        }
    }

    #[test]
    fn float_histograms_round_trip_bit_for_bit() {
        let samples = vec![
            (1_000, hist(10.0, 3.25, vec![1.0, 2.0, 3.5], vec![4.0])),
            (2_000, hist(12.0, 3.25, vec![1.0, 2.5, 3.5], vec![4.0])),
            (
                3_500,
                hist(f64::NAN, -0.0, vec![0.0, 1e300, 3.5], vec![f64::INFINITY]),
            ),
            (
                3_501,
                hist(
                    15.0,
                    emberlens_model::stale_nan(),
                    vec![1.0, 2.0, 3.5],
                    vec![4.25],
                ),
            ),
        ];
        let mut enc = FloatHistogramEncoder::new(CounterResetHint::NotReset);
        for (t, h) in &samples {
            assert!(enc.append(*t, h));
        }
        let other_layout = FloatHistogram {
            schema: 2,
            ..samples[0].1.clone()
        };
        assert!(!enc.append(4_000, &other_layout));
        let got: Vec<(i64, FloatHistogram)> = FloatHistogramIter::new(enc.bytes(), 0)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(got.len(), samples.len());
        for ((t, h), (wt, wh)) in got.iter().zip(&samples) {
            assert_eq!(t, wt);
            // Compare bit patterns: NaNs must survive exactly.
            let bits = |h: &FloatHistogram| -> Vec<u64> {
                [h.count, h.zero_count, h.sum, h.zero_threshold]
                    .iter()
                    .chain(&h.positive_buckets)
                    .chain(&h.negative_buckets)
                    .map(|v| v.to_bits())
                    .collect()
            };
            assert_eq!(bits(h), bits(wh));
            assert_eq!(
                (h.schema, &h.positive_spans, &h.negative_spans),
                (wh.schema, &wh.positive_spans, &wh.negative_spans)
            );
            assert_eq!(h.counter_reset_hint, CounterResetHint::NotReset);
        }
    }

    #[test]
    fn truncated_float_histogram_chunks_error() {
        let mut enc = FloatHistogramEncoder::new(CounterResetHint::Unknown);
        assert!(enc.append(5, &hist(1.0, 1.0, vec![1.0, 0.0, 0.0], vec![0.0])));
        assert!(enc.append(6, &hist(2.0, 1.5, vec![1.0, 1.0, 0.0], vec![0.0])));
        let bytes = enc.bytes();
        for cut in 0..bytes.len() {
            let results: Vec<_> = match FloatHistogramIter::new(&bytes[..cut], 100) {
                Ok(it) => it.collect(),
                Err(_) => continue,
            };
            assert!(
                results.iter().any(|r| r.is_err()),
                "cut at {cut} decoded cleanly"
            );
        }
    }

    #[test]
    fn frexp_matches_go() {
        assert_eq!(frexp(1.0), (0.5, 1));
        assert_eq!(frexp(2f64.powi(-128)), (0.5, -127));
        assert_eq!(frexp(3.0), (0.75, 2));
        assert_eq!(frexp(f64::from_bits(1)), (0.5, -1073));
    }
}
