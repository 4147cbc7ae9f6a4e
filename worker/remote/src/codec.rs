//! Snappy-compressed protobuf bodies (remote write requests, remote read
//! requests and `SAMPLES` responses use snappy's *block* format, not its
//! framed stream format).
//!
//! Decoding reads the decoded length from the snappy header first and
//! refuses a body that declares more than the caller's cap before
//! allocating anything, so a small hostile body cannot make us allocate
//! gigabytes.

use prost::Message;

use crate::error::RemoteError;
use crate::prompb::{ReadRequest, ReadResponse, WriteRequest};

/// Prometheus's cap on a remote read request body (`decodeReadLimit`, 32 MiB).
pub const DEFAULT_READ_REQUEST_LIMIT_BYTES: usize = 32 << 20;

/// Default cap on a decoded remote write request (Prometheus has none;
/// 64 MiB is far above what its senders produce: 2,000 samples per send).
pub const DEFAULT_WRITE_REQUEST_LIMIT_BYTES: usize = 64 << 20;

/// Decompresses a snappy block of at most `limit` decoded bytes.
pub fn snappy_decode(
    what: &'static str,
    body: &[u8],
    limit: usize,
) -> Result<Vec<u8>, RemoteError> {
    let snappy = |source| RemoteError::Snappy { what, source };
    let len = snap::raw::decompress_len(body).map_err(snappy)?;
    if len > limit {
        return Err(RemoteError::TooLarge { what, len, limit });
    }
    let mut out = vec![0; len];
    let n = snap::raw::Decoder::new()
        .decompress(body, &mut out)
        .map_err(snappy)?;
    out.truncate(n);
    Ok(out)
}

/// Compresses bytes as one snappy block.
pub fn snappy_encode(what: &'static str, bytes: &[u8]) -> Result<Vec<u8>, RemoteError> {
    snap::raw::Encoder::new()
        .compress_vec(bytes)
        .map_err(|source| RemoteError::Snappy { what, source })
}

fn decode<M: Message + Default>(
    what: &'static str,
    body: &[u8],
    limit: usize,
) -> Result<M, RemoteError> {
    let raw = snappy_decode(what, body, limit)?;
    M::decode(raw.as_slice()).map_err(|source| RemoteError::Protobuf { what, source })
}

fn encode<M: Message>(what: &'static str, msg: &M) -> Result<Vec<u8>, RemoteError> {
    snappy_encode(what, &msg.encode_to_vec())
}

/// Decodes a snappy-compressed [`WriteRequest`].
pub fn decode_write_request(body: &[u8], limit: usize) -> Result<WriteRequest, RemoteError> {
    decode("write request", body, limit)
}

/// Encodes a [`WriteRequest`] as a remote-write body.
pub fn encode_write_request(req: &WriteRequest) -> Result<Vec<u8>, RemoteError> {
    encode("write request", req)
}

/// Decodes a snappy-compressed [`ReadRequest`].
pub fn decode_read_request(body: &[u8], limit: usize) -> Result<ReadRequest, RemoteError> {
    decode("read request", body, limit)
}

/// Encodes a [`ReadRequest`] as a remote-read body.
pub fn encode_read_request(req: &ReadRequest) -> Result<Vec<u8>, RemoteError> {
    encode("read request", req)
}

/// Decodes a snappy-compressed [`ReadResponse`] (`SAMPLES`).
pub fn decode_read_response(body: &[u8], limit: usize) -> Result<ReadResponse, RemoteError> {
    decode("read response", body, limit)
}

/// Encodes a [`ReadResponse`] (`SAMPLES`).
pub fn encode_read_response(resp: &ReadResponse) -> Result<Vec<u8>, RemoteError> {
    encode("read response", resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompb::{Label, Sample, TimeSeries};

    #[test]
    fn write_request_round_trips() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: 1000,
                }],
                exemplars: vec![],
            }],
            metadata: vec![],
        };
        let body = encode_write_request(&req).unwrap();
        assert_eq!(decode_write_request(&body, 1 << 20).unwrap(), req);
    }

    #[test]
    fn declared_size_above_the_cap_is_refused_before_allocating() {
        // A snappy header declaring 2^32-1 bytes, followed by nothing.
        let body = [0xff, 0xff, 0xff, 0xff, 0x0f];
        let err = decode_write_request(&body, 1 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "write request: decoded size 4294967295 bytes exceeds the limit of 1048576 bytes"
        );
    }

    #[test]
    fn garbage_names_the_layer() {
        let err = decode_read_request(b"\x05hello", 1 << 20).unwrap_err();
        assert!(
            err.to_string().starts_with("read request: snappy: "),
            "{err}"
        );
        let body = snappy_encode("t", b"\xff\xff").unwrap();
        let err = decode_read_request(&body, 1 << 20).unwrap_err();
        assert!(
            err.to_string().starts_with("read request: protobuf: "),
            "{err}"
        );
    }
}
