//! Chunk encodings: what the bytes of one chunk mean.
//!
//! Prometheus writes one encoding byte before each chunk's data. This module
//! names every encoding Prometheus has defined and decodes the ones this
//! build reads; the rest are reported by name, never misread.

pub mod bstream;
pub mod histogram;
pub mod xor;

use std::fmt;

/// A chunk's encoding byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// 0: no encoding (never written to blocks).
    None,
    /// 1: Gorilla XOR floats.
    Xor,
    /// 2: integer native histograms.
    Histogram,
    /// 3: float native histograms.
    FloatHistogram,
    /// 4: XOR2, the float encoding with start timestamps of Prometheus 3.x
    /// (behind a feature flag there); reported by name, not decoded yet.
    Xor2,
    /// Any other byte.
    Unknown(u8),
}

impl Encoding {
    /// Decodes the encoding byte.
    pub fn from_byte(b: u8) -> Self {
        match b {
            0 => Encoding::None,
            1 => Encoding::Xor,
            2 => Encoding::Histogram,
            3 => Encoding::FloatHistogram,
            4 => Encoding::Xor2,
            other => Encoding::Unknown(other),
        }
    }

    /// The encoding byte.
    pub fn byte(self) -> u8 {
        match self {
            Encoding::None => 0,
            Encoding::Xor => 1,
            Encoding::Histogram => 2,
            Encoding::FloatHistogram => 3,
            Encoding::Xor2 => 4,
            Encoding::Unknown(b) => b,
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encoding::None => f.write_str("none"),
            Encoding::Xor => f.write_str("XOR"),
            Encoding::Histogram => f.write_str("histogram"),
            Encoding::FloatHistogram => f.write_str("floathistogram"),
            Encoding::Xor2 => f.write_str("XOR2"),
            Encoding::Unknown(b) => {
                write!(f, "unknown encoding {b} (written by a newer Prometheus?)")
            }
        }
    }
}
