//! Errors: each names what was being decoded and, for streams, the offset.

/// Why a remote read/write body or stream was refused.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The snappy block is malformed.
    #[error("{what}: snappy: {source}")]
    Snappy {
        /// What was being decoded (`write request`, `read request`, …).
        what: &'static str,
        /// The decoder's reason.
        source: snap::Error,
    },
    /// The decoded size (from the snappy header) is above the caller's cap;
    /// nothing was allocated for it.
    #[error("{what}: decoded size {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// What was being decoded.
        what: &'static str,
        /// The size the body declares.
        len: usize,
        /// The cap.
        limit: usize,
    },
    /// The protobuf message is malformed.
    #[error("{what}: protobuf: {source}")]
    Protobuf {
        /// What was being decoded.
        what: &'static str,
        /// prost's reason.
        source: prost::DecodeError,
    },
    /// A STREAMED_XOR_CHUNKS frame is malformed.
    #[error("chunked read response: frame at byte {offset}: {reason}")]
    Frame {
        /// Stream offset of the frame's first byte.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A chunk does not decode.
    #[error("series {series}: chunk {index}: {reason}")]
    Chunk {
        /// The series, in Prometheus text form.
        series: String,
        /// Index of the chunk in its series.
        index: usize,
        /// What was wrong.
        reason: String,
    },
    /// A label matcher is invalid.
    #[error("matcher {index} ({name}): {reason}")]
    Matcher {
        /// Index in the query's matchers.
        index: usize,
        /// The label name.
        name: String,
        /// What was wrong.
        reason: String,
    },
}
