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

use emberlens_model::bucket_bound;

use crate::chunkenc::bstream::BitReader;
use crate::chunkenc::xor::XorWindow;
use crate::error::Corruption;

/// A run of consecutive buckets: `offset` buckets after the previous span
/// (or from index 0 for the first), `length` buckets long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Gap to the previous span's end, in buckets.
    pub offset: i32,
    /// Number of buckets.
    pub length: u32,
}

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

/// One bucket as Prometheus's API lists it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// Which ends are inclusive, Prometheus's JSON code: 0 `(l, u]`,
    /// 1 `[l, u)`, 2 `(l, u)`, 3 `[l, u]`.
    pub boundaries: u8,
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Observations in the bucket.
    pub count: i64,
}

/// Absolute bucket indexes of a span list, in order.
fn indexes(spans: &[Span]) -> Vec<i32> {
    let mut out = Vec::new();
    let mut next = 0i32;
    for (i, s) in spans.iter().enumerate() {
        next = if i == 0 {
            s.offset
        } else {
            next.saturating_add(s.offset)
        };
        for _ in 0..s.length {
            out.push(next);
            next = next.saturating_add(1);
        }
    }
    out
}

impl IntHistogram {
    /// The non-empty buckets from most negative to most positive, with their
    /// bounds, as Prometheus's query API lists them (the zero bucket, when it
    /// has observations, between the negative and the positive ones).
    pub fn buckets(&self) -> Vec<Bucket> {
        let mut out = Vec::new();
        let neg = self.negative_counts();
        for (idx, count) in indexes(&self.negative_spans).into_iter().zip(neg).rev() {
            if count != 0 {
                out.push(Bucket {
                    boundaries: 1,
                    lower: -bucket_bound(idx, self.schema),
                    upper: -bucket_bound(idx - 1, self.schema),
                    count,
                });
            }
        }
        if self.zero_count > 0 {
            out.push(Bucket {
                boundaries: 3,
                lower: -self.zero_threshold,
                upper: self.zero_threshold,
                count: self.zero_count as i64,
            });
        }
        for (idx, count) in indexes(&self.positive_spans)
            .into_iter()
            .zip(self.positive_counts())
        {
            if count != 0 {
                out.push(Bucket {
                    boundaries: 0,
                    lower: bucket_bound(idx - 1, self.schema),
                    upper: bucket_bound(idx, self.schema),
                    count,
                });
            }
        }
        out
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

    fn spans(&mut self, what: &str) -> Result<(Vec<Span>, u64), Corruption> {
        let at = self.br.offset();
        let n = self.br.varbit_uint(what)?;
        if n > MAX_BUCKETS {
            return Err(Corruption::at(at, format!("{what}: {n} spans")));
        }
        let mut spans = Vec::with_capacity(n as usize);
        let mut buckets = 0u64;
        for _ in 0..n {
            let length = self.br.varbit_uint(what)?;
            let offset = self.br.varbit_int(what)?;
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
        Ok((spans, buckets))
    }

    fn read_layout(&mut self) -> Result<(), Corruption> {
        let zero_threshold = match self.br.byte("zero threshold")? {
            0 => 0.0,
            255 => f64::from_bits(self.br.bits(64, "zero threshold")?),
            b => 0.5 * 2f64.powi(i32::from(b) - 243),
        };
        let at = self.br.offset();
        let schema = self.br.varbit_int("schema")?;
        let schema = i32::try_from(schema)
            .map_err(|_| Corruption::at(at, format!("schema {schema} out of range")))?;
        let (pos, npos) = self.spans("positive spans")?;
        let (neg, nneg) = self.spans("negative spans")?;
        self.pos = vec![0; npos as usize];
        self.pos_delta = vec![0; npos as usize];
        self.neg = vec![0; nneg as usize];
        self.neg_delta = vec![0; nneg as usize];
        self.layout = Some((schema, zero_threshold, pos, neg));
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
