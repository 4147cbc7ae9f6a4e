//! Native histograms as the engines share them: [`FloatHistogram`] (what
//! storage hands to PromQL, whatever the chunk encoding was), its spans and
//! buckets, and the bucket geometry: the bound of bucket `idx` at a schema,
//! exactly as Prometheus computes it.
//!
//! Bucket `idx` at schema `s` covers `(2^((idx-1)·2^-s), 2^(idx·2^-s)]`.
//! Prometheus does not evaluate that power at run time: for schemas 1–8 it
//! reads the fraction in `[0.5, 1)` from a precomputed table and scales it by
//! a power of two. Those table entries are not the correctly rounded powers
//! (22 of the 98 bounds in our native-histogram fixture differ by an ulp), so
//! to agree bit for bit we rebuild the table the way its authors describe it
//! in client_golang's `histogram.go`: schema `s` starts at 0.5; every entry
//! whose index is even is taken from schema `s-1` (the same point on the
//! coarser grid), every odd entry is the previous entry times the factor
//! `2^(2^-s)` as Go's `math.Exp2` returns it. Go's `Exp2(0.5)` is one ulp
//! below √2, and that ulp propagates into half of every finer schema, so the
//! factors are the exact bit patterns Go returns ([`FACTOR_BITS`]; the other
//! eight are the correctly rounded values). Checked once against the literal
//! table in Debian's client_golang 1.14 source (all 511 entries equal; with
//! Rust's correctly rounded `exp2` for the factors, 255 differ) and against
//! Prometheus 2.42's API answers in `worker/tsdb/tests/native_histograms.rs`.

use std::fmt;
use std::sync::OnceLock;

use crate::gofmt::format_go_g;

/// A run of consecutive buckets: `offset` buckets after the previous span's
/// end (or from index 0 for the first span), `length` buckets long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Gap to the previous span's end, in buckets.
    pub offset: i32,
    /// Number of buckets.
    pub length: u32,
}

/// What a histogram says about counter resets (Prometheus's
/// `CounterResetHint`, two bits in a chunk's header).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CounterResetHint {
    /// Nothing known; compare with the previous sample.
    #[default]
    Unknown,
    /// A counter reset happened just before this sample.
    Reset,
    /// No counter reset since the previous sample.
    NotReset,
    /// A gauge histogram: counter resets do not apply.
    Gauge,
}

impl CounterResetHint {
    /// From the two header bits (0–3).
    pub fn from_bits(b: u8) -> Self {
        match b & 3 {
            1 => CounterResetHint::Reset,
            2 => CounterResetHint::NotReset,
            3 => CounterResetHint::Gauge,
            _ => CounterResetHint::Unknown,
        }
    }
}

/// One native-histogram sample with float counts (integer histograms are
/// converted on read, as PromQL evaluates them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FloatHistogram {
    /// Counter-reset hint of the sample's chunk.
    pub counter_reset_hint: CounterResetHint,
    /// Bucket resolution: boundaries at 2^(i·2^-schema).
    pub schema: i32,
    /// Observations with |v| ≤ this go to the zero bucket.
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: f64,
    /// All observations.
    pub count: f64,
    /// Sum of observations (the staleness marker when the series went stale).
    pub sum: f64,
    /// Spans of the positive buckets.
    pub positive_spans: Vec<Span>,
    /// Spans of the negative buckets.
    pub negative_spans: Vec<Span>,
    /// Positive bucket counts, absolute, in span order.
    pub positive_buckets: Vec<f64>,
    /// Negative bucket counts, absolute, in span order (increasing magnitude).
    pub negative_buckets: Vec<f64>,
    /// Upper bounds of the custom buckets when `schema` is
    /// [`CUSTOM_BUCKETS_SCHEMA`] (Prometheus 3's NHCB); empty otherwise.
    pub custom_values: Vec<f64>,
}

/// The schema of histograms with custom bucket bounds (NHCB).
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// One bucket as Prometheus's query API lists it.
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
    pub count: f64,
}

/// Absolute bucket indexes of a span list, in order.
pub fn span_indexes(spans: &[Span]) -> Vec<i32> {
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

impl FloatHistogram {
    /// The non-empty buckets from most negative to most positive, with their
    /// bounds, as Prometheus's query API lists them (the zero bucket, when it
    /// has observations, between the negative and the positive ones).
    /// Custom-bucket histograms (schema −53) take their bounds from
    /// `custom_values`: bucket `i` is `(custom_values[i-1], custom_values[i]]`,
    /// the first `[-Inf, custom_values[0]]`, the last ends at `+Inf`.
    pub fn buckets(&self) -> Vec<Bucket> {
        let mut out: Vec<Bucket> = self
            .side_buckets(false)
            .into_iter()
            .filter(|b| b.count != 0.0)
            .collect();
        out.reverse();
        if self.zero_count != 0.0 {
            out.push(self.zero_bucket());
        }
        out.extend(
            self.side_buckets(true)
                .into_iter()
                .filter(|b| b.count != 0.0),
        );
        out
    }
}

impl fmt::Display for FloatHistogram {
    /// Prometheus's `FloatHistogram.String()` (what Prometheus 3's
    /// `promtool tsdb dump` prints): `{count:N, sum:S, [l,u):c, …}` with
    /// `%g` numbers, listing only non-empty buckets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{count:{}, sum:{}",
            format_go_g(self.count),
            format_go_g(self.sum)
        )?;
        for b in self.buckets() {
            let (open, close) = match b.boundaries {
                0 => ('(', ']'),
                1 => ('[', ')'),
                2 => ('(', ')'),
                _ => ('[', ']'),
            };
            write!(
                f,
                ", {open}{},{}{close}:{}",
                format_go_g(b.lower),
                format_go_g(b.upper),
                format_go_g(b.count)
            )?;
        }
        f.write_str("}")
    }
}

/// Highest schema with a table (finest resolution Prometheus accepts).
pub const MAX_SCHEMA: i32 = 8;
/// Lowest schema (coarsest resolution: factor 2^16).
pub const MIN_SCHEMA: i32 = -4;

/// Go's `math.Exp2(math.Exp2(-s))` for schemas 0–8, bit for bit (printed by
/// a Go program; only schema 1's differs from the correctly rounded value).
const FACTOR_BITS: [u64; MAX_SCHEMA as usize + 1] = [
    0x4000_0000_0000_0000,
    0x3ff6_a09e_667f_3bcc,
    0x3ff3_06fe_0a31_b715,
    0x3ff1_72b8_3c7d_517b,
    0x3ff0_b558_6cf9_890f,
    0x3ff0_59b0_d315_8574,
    0x3ff0_2c9a_3e77_8061,
    0x3ff0_163d_a9fb_3335,
    0x3ff0_0b1a_fa5a_bcbf,
];

/// `TABLE[s]` holds the 2^s fractions of schema `s` in `[0.5, 1)`.
fn table() -> &'static [Vec<f64>] {
    static TABLE: OnceLock<Vec<Vec<f64>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table: Vec<Vec<f64>> = Vec::with_capacity(MAX_SCHEMA as usize + 1);
        for schema in 0..=MAX_SCHEMA {
            let len = 1usize << schema;
            let factor = f64::from_bits(FACTOR_BITS[schema as usize]);
            let mut bounds = Vec::with_capacity(len);
            bounds.push(0.5);
            for j in 1..len {
                let b = match table.last() {
                    Some(coarser) if j % 2 == 0 => coarser[j / 2],
                    _ => bounds[j - 1] * factor,
                };
                bounds.push(b);
            }
            table.push(bounds);
        }
        table
    })
}

/// The upper bound of bucket `idx` at `schema`, as Prometheus's `getBound`.
/// The bucket ending at the largest finite float reports `f64::MAX`, not
/// infinity; schemas outside −4…8 are clamped (they never decode).
pub fn bucket_bound(idx: i32, schema: i32) -> f64 {
    let schema = schema.clamp(MIN_SCHEMA, MAX_SCHEMA);
    if schema < 0 {
        let exp = i64::from(idx) << -schema;
        if exp == 1024 {
            return f64::MAX;
        }
        return ldexp(1.0, exp);
    }
    let n = 1i64 << schema;
    let frac_idx = i64::from(idx).rem_euclid(n);
    let exp = i64::from(idx).div_euclid(n) + 1;
    let frac = table()[schema as usize][frac_idx as usize];
    if frac == 0.5 && exp == 1025 {
        return f64::MAX;
    }
    ldexp(frac, exp)
}

/// `frac · 2^exp` with one rounding, like Go's `math.Ldexp`, including
/// results that are subnormal or overflow to infinity.
fn ldexp(frac: f64, exp: i64) -> f64 {
    let exp = exp.clamp(-2200, 2200) as i32;
    // Split the scaling so no intermediate power of two overflows or
    // underflows on its own; each factor is exact, so only the last
    // multiplication can round.
    let mut x = frac;
    let mut e = exp;
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
    }
    x * 2f64.powi(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_zero_and_negative_are_powers_of_two() {
        assert_eq!(bucket_bound(0, 0), 1.0);
        assert_eq!(bucket_bound(1, 0), 2.0);
        assert_eq!(bucket_bound(-1, 0), 0.5);
        assert_eq!(bucket_bound(1, -2), 16.0);
        assert_eq!(bucket_bound(1024, 0), f64::MAX);
        assert_eq!(bucket_bound(256, -2), f64::MAX);
        assert_eq!(bucket_bound(-1074, 0), f64::from_bits(1));
    }

    #[test]
    fn table_entries_match_prometheus_where_exp2_does_not() {
        // Values from Prometheus 2.42's API for schema-3 buckets: one ulp
        // below the correctly rounded 2^(6/8)/2 and 2^(7/8)/2.
        assert_eq!(bucket_bound(-2, 3), 0.8408964152537144);
        assert_eq!(bucket_bound(-1, 3), 0.9170040432046711);
        assert_eq!(bucket_bound(3, 1), 2.82842712474619);
        assert_eq!(bucket_bound(1, 1), f64::from_bits(0x3ff6_a09e_667f_3bcc));
        assert_eq!(bucket_bound(1, 1).to_string(), "1.414213562373095");
    }

    #[test]
    fn factors_are_within_an_ulp_of_the_true_powers() {
        for (s, bits) in FACTOR_BITS.iter().enumerate() {
            let exact = (-(s as f64)).exp2().exp2();
            let ours = f64::from_bits(*bits);
            assert!((ours - exact).abs() <= f64::EPSILON * 2.0, "schema {s}");
        }
    }

    #[test]
    fn lists_buckets_and_prints_like_prometheus() {
        let h = FloatHistogram {
            schema: 0,
            zero_threshold: 0.001,
            zero_count: 2.0,
            count: 9.0,
            sum: -1.5,
            positive_spans: vec![Span {
                offset: 0,
                length: 2,
            }],
            negative_spans: vec![Span {
                offset: 1,
                length: 1,
            }],
            positive_buckets: vec![3.0, 0.0],
            negative_buckets: vec![4.0],
            ..Default::default()
        };
        assert_eq!(
            h.to_string(),
            "{count:9, sum:-1.5, [-2,-1):4, [-0.001,0.001]:2, (0.5,1]:3}"
        );
        assert_eq!(
            span_indexes(&[
                Span {
                    offset: -2,
                    length: 2
                },
                Span {
                    offset: 3,
                    length: 1
                }
            ]),
            [-2, -1, 3]
        );
    }

    #[test]
    fn bounds_increase_with_the_index_at_every_schema() {
        for schema in MIN_SCHEMA..=MAX_SCHEMA {
            let mut last = 0.0;
            for idx in -60..60 {
                let b = bucket_bound(idx, schema);
                assert!(b > last, "schema {schema} idx {idx}: {b} ≤ {last}");
                last = b;
            }
        }
    }
}
