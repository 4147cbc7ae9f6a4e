//! Conversion between the prompb messages and Emberlens's model types.
//!
//! Chunks: a series' float samples are cut into XOR chunks of at most
//! [`MAX_SAMPLES_PER_CHUNK`] samples (what Prometheus's head cuts at), encoded
//! with the TSDB crate's XOR encoder, so a streamed response holds chunks
//! byte-compatible with Prometheus's. Native-histogram samples are not sent
//! (the store keeps float samples only on this path); a received chunk in a
//! histogram encoding is an error naming the series and chunk.
//! Staleness markers travel as they are (their NaN bit pattern survives both
//! the protobuf double and the XOR encoding).

use emberlens_model::{Labels, MatchOp, Matcher, Sample, Series};
use emberlens_tsdb::chunkenc::xor::{XorEncoder, XorIter};
use prost::Message;

use crate::error::RemoteError;
use crate::prompb::{self, ChunkEncoding, ChunkedReadResponse, ChunkedSeries, MatcherType};

/// Samples per XOR chunk, as Prometheus's head cuts them.
pub const MAX_SAMPLES_PER_CHUNK: usize = 120;

/// The model's matchers for a query's matchers (regexes compiled, anchored).
pub fn matchers_from_proto(ms: &[prompb::LabelMatcher]) -> Result<Vec<Matcher>, RemoteError> {
    ms.iter()
        .enumerate()
        .map(|(index, m)| {
            let err = |reason: String| RemoteError::Matcher {
                index,
                name: m.name.clone(),
                reason,
            };
            let op = match MatcherType::try_from(m.r#type) {
                Ok(MatcherType::Eq) => MatchOp::Equal,
                Ok(MatcherType::Neq) => MatchOp::NotEqual,
                Ok(MatcherType::Re) => MatchOp::RegexMatch,
                Ok(MatcherType::Nre) => MatchOp::RegexNoMatch,
                Err(_) => return Err(err(format!("unknown matcher type {}", m.r#type))),
            };
            Matcher::new(&m.name, op, &m.value).map_err(|e| err(e.to_string()))
        })
        .collect()
}

/// A query's matchers for the model's matchers.
pub fn matchers_to_proto(ms: &[Matcher]) -> Vec<prompb::LabelMatcher> {
    ms.iter()
        .map(|m| prompb::LabelMatcher {
            r#type: match m.op {
                MatchOp::Equal => MatcherType::Eq,
                MatchOp::NotEqual => MatcherType::Neq,
                MatchOp::RegexMatch => MatcherType::Re,
                MatchOp::RegexNoMatch => MatcherType::Nre,
            } as i32,
            name: m.name.clone(),
            value: m.value.clone(),
        })
        .collect()
}

/// Labels from their protobuf form (sorted, empty values dropped).
pub fn labels_from_proto(ls: &[prompb::Label]) -> Labels {
    Labels::from_pairs(ls.iter().map(|l| (l.name.as_str(), l.value.as_str())))
}

/// Labels in their protobuf form.
pub fn labels_to_proto(ls: &Labels) -> Vec<prompb::Label> {
    ls.iter()
        .map(|l| prompb::Label {
            name: l.name.clone(),
            value: l.value.clone(),
        })
        .collect()
}

/// A series' float samples as a `TimeSeries`.
pub fn series_to_timeseries(s: &Series) -> prompb::TimeSeries {
    prompb::TimeSeries {
        labels: labels_to_proto(&s.labels),
        samples: s
            .samples
            .iter()
            .map(|s| prompb::Sample {
                value: s.v,
                timestamp: s.t_ms,
            })
            .collect(),
        exemplars: Vec::new(),
    }
}

/// A `TimeSeries` as a series (samples kept in the order received).
pub fn timeseries_to_series(ts: &prompb::TimeSeries) -> Series {
    Series {
        labels: labels_from_proto(&ts.labels),
        samples: ts
            .samples
            .iter()
            .map(|s| Sample {
                t_ms: s.timestamp,
                v: s.value,
            })
            .collect(),
        ..Series::default()
    }
}

/// Groups `(labels, t_ms, v)` samples by series, in first-seen order, into
/// a write request.
pub fn write_request_from_samples<'a>(
    samples: impl IntoIterator<Item = (&'a Labels, i64, f64)>,
) -> prompb::WriteRequest {
    let mut index: std::collections::HashMap<&'a Labels, usize> = Default::default();
    let mut timeseries: Vec<prompb::TimeSeries> = Vec::new();
    for (labels, t_ms, v) in samples {
        let i = *index.entry(labels).or_insert_with(|| {
            timeseries.push(prompb::TimeSeries {
                labels: labels_to_proto(labels),
                ..Default::default()
            });
            timeseries.len() - 1
        });
        timeseries[i].samples.push(prompb::Sample {
            value: v,
            timestamp: t_ms,
        });
    }
    prompb::WriteRequest {
        timeseries,
        metadata: Vec::new(),
    }
}

/// Float samples (increasing timestamps) as XOR chunks of at most
/// [`MAX_SAMPLES_PER_CHUNK`] samples each.
pub fn xor_chunks(samples: &[Sample]) -> Vec<prompb::Chunk> {
    samples
        .chunks(MAX_SAMPLES_PER_CHUNK)
        .filter_map(|part| {
            let (first, last) = (part.first()?, part.last()?);
            let mut enc = XorEncoder::new();
            for s in part {
                enc.append(s.t_ms, s.v);
            }
            Some(prompb::Chunk {
                min_time_ms: first.t_ms,
                max_time_ms: last.t_ms,
                r#type: ChunkEncoding::Xor as i32,
                data: enc.bytes().to_vec(),
            })
        })
        .collect()
}

/// The frames answering query `query_index` for one series, as Prometheus's
/// `StreamChunkedReadResponses` cuts them: chunks are added to a frame until
/// its labels and chunks reach `max_bytes_in_frame` (a frame always holds at
/// least one chunk, so one larger chunk makes a larger frame); a series with
/// many chunks spans several frames, each repeating its labels. A series
/// with no float samples yields no frame.
pub fn series_frames(
    series: &Series,
    query_index: i64,
    max_bytes_in_frame: usize,
) -> Vec<ChunkedReadResponse> {
    let labels = labels_to_proto(&series.labels);
    let labels_size: usize = labels
        .iter()
        .map(|l| {
            let n = l.encoded_len();
            n + prost::length_delimiter_len(n) + 1
        })
        .sum();
    let mut frames = Vec::new();
    let mut chunks = Vec::new();
    let mut left = max_bytes_in_frame as i64 - labels_size as i64;
    let all = xor_chunks(&series.samples);
    let n = all.len();
    for (i, c) in all.into_iter().enumerate() {
        let size = c.encoded_len();
        left -= (size + prost::length_delimiter_len(size) + 1) as i64;
        chunks.push(c);
        if left > 0 && i + 1 < n {
            continue;
        }
        frames.push(ChunkedReadResponse {
            chunked_series: vec![ChunkedSeries {
                labels: labels.clone(),
                chunks: std::mem::take(&mut chunks),
            }],
            query_index,
        });
        left = max_bytes_in_frame as i64 - labels_size as i64;
    }
    frames
}

/// Decodes a chunked series' XOR chunks into samples.
pub fn chunked_series_to_series(cs: &ChunkedSeries) -> Result<Series, RemoteError> {
    let labels = labels_from_proto(&cs.labels);
    let mut samples = Vec::new();
    for (index, c) in cs.chunks.iter().enumerate() {
        let err = |reason: String| RemoteError::Chunk {
            series: labels.to_string(),
            index,
            reason,
        };
        match ChunkEncoding::try_from(c.r#type) {
            Ok(ChunkEncoding::Xor) => {}
            Ok(other) => {
                return Err(err(format!(
                    "unsupported chunk encoding {}",
                    match other {
                        ChunkEncoding::Histogram => "HISTOGRAM",
                        ChunkEncoding::FloatHistogram => "FLOAT_HISTOGRAM",
                        _ => "UNKNOWN",
                    }
                )));
            }
            Err(_) => return Err(err(format!("unknown chunk encoding {}", c.r#type))),
        }
        let iter = XorIter::new(&c.data, 0).map_err(|e| err(e.to_string()))?;
        for s in iter {
            let (t_ms, v) = s.map_err(|e| err(e.to_string()))?;
            samples.push(Sample { t_ms, v });
        }
    }
    Ok(Series {
        labels,
        samples,
        ..Series::default()
    })
}

/// Puts streamed frames back together: the series of each query, in order,
/// a series split over consecutive frames joined into one.
#[derive(Debug, Default)]
pub struct SeriesAssembler {
    /// Per query index, the series so far.
    results: Vec<Vec<Series>>,
}

impl SeriesAssembler {
    /// An empty assembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one frame's series. A negative or absurd query index is an error.
    pub fn push(&mut self, frame: &ChunkedReadResponse) -> Result<(), RemoteError> {
        let qi = usize::try_from(frame.query_index)
            .ok()
            .filter(|&i| i < 1 << 16)
            .ok_or_else(|| RemoteError::Frame {
                offset: 0,
                reason: format!("query index {} out of range", frame.query_index),
            })?;
        if self.results.len() <= qi {
            self.results.resize_with(qi + 1, Vec::new);
        }
        let out = &mut self.results[qi];
        for cs in &frame.chunked_series {
            let s = chunked_series_to_series(cs)?;
            match out.last_mut() {
                Some(prev) if prev.labels == s.labels => prev.samples.extend(s.samples),
                _ => out.push(s),
            }
        }
        Ok(())
    }

    /// The series of each query index seen.
    pub fn finish(self) -> Vec<Vec<Series>> {
        self.results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, n: i64) -> Series {
        Series {
            labels: Labels::from_pairs([("__name__", name), ("job", "j")]),
            samples: (0..n)
                .map(|i| Sample {
                    t_ms: 1000 * i,
                    v: if i == 7 {
                        emberlens_model::stale_nan()
                    } else {
                        i as f64 * 0.5
                    },
                })
                .collect(),
            ..Series::default()
        }
    }

    #[test]
    fn chunks_hold_at_most_120_samples_and_round_trip() {
        let s = series("up", 250);
        let chunks = xor_chunks(&s.samples);
        assert_eq!(chunks.len(), 3);
        assert_eq!(
            (chunks[1].min_time_ms, chunks[1].max_time_ms),
            (120_000, 239_000)
        );
        let frames = series_frames(&s, 2, 1 << 20);
        assert_eq!(frames.len(), 1);
        let mut a = SeriesAssembler::new();
        a.push(&frames[0]).unwrap();
        let got = a.finish();
        assert_eq!(got.len(), 3);
        let back = &got[2][0];
        assert_eq!(back.labels, s.labels);
        assert_eq!(back.samples.len(), 250);
        for (x, y) in back.samples.iter().zip(&s.samples) {
            assert_eq!((x.t_ms, x.v.to_bits()), (y.t_ms, y.v.to_bits()));
        }
    }

    #[test]
    fn a_small_frame_budget_splits_a_series_over_frames() {
        let s = series("up", 600);
        let frames = series_frames(&s, 0, 10);
        assert_eq!(frames.len(), 5);
        let mut a = SeriesAssembler::new();
        for f in &frames {
            a.push(f).unwrap();
        }
        let got = a.finish();
        assert_eq!(got[0].len(), 1);
        assert_eq!(got[0][0].samples.len(), 600);
    }

    #[test]
    fn matchers_convert_both_ways() {
        let ms = vec![
            Matcher::new("__name__", MatchOp::Equal, "up").unwrap(),
            Matcher::new("job", MatchOp::RegexMatch, "a|b").unwrap(),
            Matcher::new("x", MatchOp::RegexNoMatch, "").unwrap(),
            Matcher::new("y", MatchOp::NotEqual, "z").unwrap(),
        ];
        assert_eq!(matchers_from_proto(&matchers_to_proto(&ms)).unwrap(), ms);
        let bad = [prompb::LabelMatcher {
            r#type: 2,
            name: "job".into(),
            value: "(".into(),
        }];
        let err = matchers_from_proto(&bad).unwrap_err().to_string();
        assert!(err.starts_with("matcher 0 (job): "), "{err}");
    }

    #[test]
    fn write_requests_group_samples_by_series() {
        let a = Labels::from_pairs([("__name__", "a")]);
        let b = Labels::from_pairs([("__name__", "b")]);
        let req = write_request_from_samples([(&a, 1, 1.0), (&b, 1, 2.0), (&a, 2, 3.0)]);
        assert_eq!(req.timeseries.len(), 2);
        assert_eq!(req.timeseries[0].samples.len(), 2);
        assert_eq!(timeseries_to_series(&req.timeseries[1]).labels, b);
    }

    #[test]
    fn histogram_chunks_are_refused_by_name() {
        let cs = ChunkedSeries {
            labels: labels_to_proto(&Labels::from_pairs([("__name__", "h")])),
            chunks: vec![prompb::Chunk {
                r#type: ChunkEncoding::Histogram as i32,
                ..Default::default()
            }],
        };
        assert_eq!(
            chunked_series_to_series(&cs).unwrap_err().to_string(),
            "series h: chunk 0: unsupported chunk encoding HISTOGRAM"
        );
    }
}
