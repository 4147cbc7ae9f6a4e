//! Prometheus's remote read/write protobuf messages (`prompb/types.proto`
//! and `prompb/remote.proto`, package `prometheus`), written by hand with
//! prost's derive so the build needs no `protoc`.
//!
//! Only the fields Emberlens reads or writes are declared. Everything else
//! (native histograms in `TimeSeries` field 4, fields added by later
//! protocol versions) is an unknown field to prost, skipped on decode, so
//! a request that carries them still decodes: its float samples are used and
//! the rest is ignored.

/// `prometheus.WriteRequest`: the body of a remote-write request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series and their samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Metric metadata (type, help, unit), sent by Prometheus on its own schedule.
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.MetricMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    /// A [`MetricType`] value.
    #[prost(enumeration = "MetricType", tag = "1")]
    pub r#type: i32,
    /// The metric family's name.
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// `# HELP` text.
    #[prost(string, tag = "4")]
    pub help: String,
    /// `# UNIT` text.
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// `prometheus.MetricMetadata.MetricType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    /// Untyped.
    Unknown = 0,
    /// Counter.
    Counter = 1,
    /// Gauge.
    Gauge = 2,
    /// Classic histogram.
    Histogram = 3,
    /// Gauge histogram.
    Gaugehistogram = 4,
    /// Summary.
    Summary = 5,
    /// Info.
    Info = 6,
    /// State set.
    Stateset = 7,
}

/// `prometheus.TimeSeries`: labels and samples in timestamp order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Labels, sorted by name.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Float samples.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Exemplars (decoded, not stored).
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Label {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    /// Value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Unix milliseconds.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.Exemplar`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    /// The exemplar's own labels (a trace id, typically).
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Value.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Unix milliseconds.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `prometheus.ReadRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadRequest {
    /// The queries; the response answers them in order.
    #[prost(message, repeated, tag = "1")]
    pub queries: Vec<Query>,
    /// [`ResponseType`] values the client accepts, preferred first; empty
    /// means [`ResponseType::Samples`].
    #[prost(enumeration = "ResponseType", repeated, tag = "2")]
    pub accepted_response_types: Vec<i32>,
}

/// `prometheus.ReadRequest.ResponseType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ResponseType {
    /// One snappy-compressed [`ReadResponse`] holding raw samples.
    Samples = 0,
    /// A stream of [`ChunkedReadResponse`] frames holding XOR chunks
    /// (see [`crate::frame`]).
    StreamedXorChunks = 1,
}

/// `prometheus.Query`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Query {
    /// Start, Unix milliseconds, inclusive.
    #[prost(int64, tag = "1")]
    pub start_timestamp_ms: i64,
    /// End, Unix milliseconds, inclusive.
    #[prost(int64, tag = "2")]
    pub end_timestamp_ms: i64,
    /// Matchers, all of which must match.
    #[prost(message, repeated, tag = "3")]
    pub matchers: Vec<LabelMatcher>,
    /// What the query is for (advisory).
    #[prost(message, optional, tag = "4")]
    pub hints: Option<ReadHints>,
}

/// `prometheus.LabelMatcher`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelMatcher {
    /// A [`MatcherType`] value.
    #[prost(enumeration = "MatcherType", tag = "1")]
    pub r#type: i32,
    /// Label name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Value or regex.
    #[prost(string, tag = "3")]
    pub value: String,
}

/// `prometheus.LabelMatcher.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MatcherType {
    /// `=`
    Eq = 0,
    /// `!=`
    Neq = 1,
    /// `=~`
    Re = 2,
    /// `!~`
    Nre = 3,
}

/// `prometheus.ReadHints`: what the querying engine will do with the data.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadHints {
    /// Query step, milliseconds.
    #[prost(int64, tag = "1")]
    pub step_ms: i64,
    /// The function wrapping the selector, if any.
    #[prost(string, tag = "2")]
    pub func: String,
    /// Start, Unix milliseconds.
    #[prost(int64, tag = "3")]
    pub start_ms: i64,
    /// End, Unix milliseconds.
    #[prost(int64, tag = "4")]
    pub end_ms: i64,
    /// Aggregation labels.
    #[prost(string, repeated, tag = "5")]
    pub grouping: Vec<String>,
    /// `by` (true) or `without` (false).
    #[prost(bool, tag = "6")]
    pub by: bool,
    /// Range of a range selector, milliseconds.
    #[prost(int64, tag = "7")]
    pub range_ms: i64,
}

/// `prometheus.ReadResponse`: the answer of a [`ResponseType::Samples`] read.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadResponse {
    /// One result per query, in order.
    #[prost(message, repeated, tag = "1")]
    pub results: Vec<QueryResult>,
}

/// `prometheus.QueryResult`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryResult {
    /// Matching series with their samples in range.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.ChunkedReadResponse`: one frame of a streamed read.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChunkedReadResponse {
    /// Series (Prometheus sends one per frame; a series may span frames).
    #[prost(message, repeated, tag = "1")]
    pub chunked_series: Vec<ChunkedSeries>,
    /// Index of the query in the request this frame answers.
    #[prost(int64, tag = "2")]
    pub query_index: i64,
}

/// `prometheus.ChunkedSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChunkedSeries {
    /// Labels, sorted by name.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Chunks in time order.
    #[prost(message, repeated, tag = "2")]
    pub chunks: Vec<Chunk>,
}

/// `prometheus.Chunk`: one TSDB chunk, bytes as in a chunk segment file
/// (without the encoding byte, which is [`Chunk::r#type`]).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Chunk {
    /// First sample's timestamp, Unix milliseconds.
    #[prost(int64, tag = "1")]
    pub min_time_ms: i64,
    /// Last sample's timestamp, Unix milliseconds.
    #[prost(int64, tag = "2")]
    pub max_time_ms: i64,
    /// A [`ChunkEncoding`] value.
    #[prost(enumeration = "ChunkEncoding", tag = "3")]
    pub r#type: i32,
    /// The chunk's bytes.
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
}

/// `prometheus.Chunk.Encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ChunkEncoding {
    /// Not set.
    Unknown = 0,
    /// Gorilla XOR floats.
    Xor = 1,
    /// Native histograms.
    Histogram = 2,
    /// Native float histograms.
    FloatHistogram = 3,
}
