//! The `STREAMED_XOR_CHUNKS` framing of remote read responses.
//!
//! A response body is a sequence of frames, each:
//! `uvarint(len(msg))`, `CRC-32C(msg)` as 4 big-endian bytes (Castagnoli
//! polynomial, as Prometheus's `ChunkedWriter`), then `msg`, the protobuf of
//! one [`ChunkedReadResponse`]. The body is not snappy-compressed.
//!
//! [`FrameReader`] is push-based (feed it bytes as they arrive, take whole
//! frames out), so the browser worker can decode a streamed `fetch` body
//! chunk by chunk without holding the whole response. A frame declaring more
//! than the reader's cap is refused before its bytes are buffered; a
//! checksum mismatch, a truncated stream or a malformed varint is an error
//! naming the frame's byte offset in the stream.

use prost::Message;

use crate::error::RemoteError;
use crate::prompb::ChunkedReadResponse;

/// The CRC-32 with the Castagnoli polynomial (Go's `crc32.Castagnoli`).
pub const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Prometheus's `--storage.remote.read-max-bytes-in-frame` default (1 MiB):
/// a writer closes a frame once its series' labels and chunks reach this.
pub const DEFAULT_MAX_BYTES_IN_FRAME: usize = 1 << 20;

/// Prometheus's client-side cap on one frame (`DefaultChunkedReadLimit`, 50 MB).
pub const DEFAULT_FRAME_LIMIT_BYTES: usize = 50_000_000;

/// The content type of a streamed response, as Prometheus sends it.
pub const STREAMED_CONTENT_TYPE: &str =
    "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse";

/// Appends one frame holding `msg` (an encoded [`ChunkedReadResponse`]) to `out`.
pub fn write_frame(out: &mut Vec<u8>, msg: &[u8]) {
    let mut len = msg.len() as u64;
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(&CASTAGNOLI.checksum(msg).to_be_bytes());
    out.extend_from_slice(msg);
}

/// One frame holding `resp`.
pub fn encode_frame(resp: &ChunkedReadResponse) -> Vec<u8> {
    let msg = resp.encode_to_vec();
    let mut out = Vec::with_capacity(msg.len() + 14);
    write_frame(&mut out, &msg);
    out
}

/// Decodes frames from bytes pushed in as they arrive.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// Start of the unread part of `buf`.
    pos: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    limit: usize,
}

impl FrameReader {
    /// A reader refusing frames whose message exceeds `limit_bytes`.
    pub fn new(limit_bytes: usize) -> Self {
        FrameReader {
            buf: Vec::new(),
            pos: 0,
            base: 0,
            limit: limit_bytes,
        }
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.base += self.pos as u64;
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > (64 << 10) && self.pos * 2 > self.buf.len() {
            self.base += self.pos as u64;
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    fn err(&self, reason: impl Into<String>) -> RemoteError {
        RemoteError::Frame {
            offset: self.base + self.pos as u64,
            reason: reason.into(),
        }
    }

    /// The next whole frame, `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<ChunkedReadResponse>, RemoteError> {
        let rest = &self.buf[self.pos..];
        let mut len: u64 = 0;
        let mut header = None;
        for (i, &b) in rest.iter().enumerate().take(10) {
            if i == 9 && b > 1 {
                return Err(self.err("frame length varint overflows 64 bits"));
            }
            len |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                header = Some(i + 1);
                break;
            }
        }
        let Some(varint_len) = header else {
            if rest.len() >= 10 {
                return Err(self.err("frame length varint overflows 64 bits"));
            }
            return Ok(None);
        };
        if len > self.limit as u64 {
            return Err(self.err(format!(
                "message size exceeded the limit of {} bytes; got {len} bytes",
                self.limit
            )));
        }
        let len = len as usize;
        let need = varint_len + 4 + len;
        if rest.len() < need {
            return Ok(None);
        }
        let crc_at = varint_len;
        let want = u32::from_be_bytes([
            rest[crc_at],
            rest[crc_at + 1],
            rest[crc_at + 2],
            rest[crc_at + 3],
        ]);
        let msg = &rest[crc_at + 4..need];
        let got = CASTAGNOLI.checksum(msg);
        if got != want {
            return Err(self.err(format!(
                "checksum mismatch (stored {want:#010x}, computed {got:#010x})"
            )));
        }
        let resp = ChunkedReadResponse::decode(msg)
            .map_err(|e| self.err(format!("chunked read response: protobuf: {e}")))?;
        self.pos += need;
        Ok(Some(resp))
    }

    /// Checks the stream ended on a frame boundary (call after the last push
    /// and after [`FrameReader::next_frame`] returned `None`).
    pub fn finish(&self) -> Result<(), RemoteError> {
        if self.pos < self.buf.len() {
            return Err(self.err(format!(
                "stream ends inside a frame ({} bytes left over)",
                self.buf.len() - self.pos
            )));
        }
        Ok(())
    }
}

/// Every frame of a complete body.
pub fn read_frames(
    body: &[u8],
    limit_bytes: usize,
) -> Result<Vec<ChunkedReadResponse>, RemoteError> {
    let mut r = FrameReader::new(limit_bytes);
    r.push(body);
    let mut out = Vec::new();
    while let Some(f) = r.next_frame()? {
        out.push(f);
    }
    r.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompb::{ChunkedSeries, Label};

    fn frame(i: i64) -> ChunkedReadResponse {
        ChunkedReadResponse {
            chunked_series: vec![ChunkedSeries {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: format!("m{i}"),
                }],
                chunks: vec![],
            }],
            query_index: i,
        }
    }

    #[test]
    fn frames_round_trip_pushed_byte_by_byte() {
        let mut body = Vec::new();
        for i in 0..3 {
            body.extend(encode_frame(&frame(i)));
        }
        assert_eq!(
            read_frames(&body, 1 << 20).unwrap(),
            vec![frame(0), frame(1), frame(2)]
        );
        let mut r = FrameReader::new(1 << 20);
        let mut got = Vec::new();
        for b in &body {
            r.push(std::slice::from_ref(b));
            while let Some(f) = r.next_frame().unwrap() {
                got.push(f);
            }
        }
        r.finish().unwrap();
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn the_checksum_is_castagnoli_big_endian() {
        // Go: crc32.Checksum([]byte("123456789"), crc32.MakeTable(crc32.Castagnoli)) == 0xe3069283
        let mut out = Vec::new();
        write_frame(&mut out, b"123456789");
        assert_eq!(&out[..5], &[9, 0xe3, 0x06, 0x92, 0x83]);
    }

    #[test]
    fn bad_frames_name_their_offset() {
        let mut body = encode_frame(&frame(0));
        let second = body.len();
        body.extend(encode_frame(&frame(1)));
        let last = body.len() - 1;
        body[last] ^= 1;
        let err = read_frames(&body, 1 << 20).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "chunked read response: frame at byte {second}: checksum mismatch"
            )),
            "{err}"
        );
        let err = read_frames(&body[..body.len() - 2], 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(err.contains("stream ends inside a frame"), "{err}");
        let err = read_frames(&[0xff, 0xff, 0xff, 0x7f], 1 << 20)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "chunked read response: frame at byte 0: message size exceeded the limit of 1048576 bytes; got 268435455 bytes"
        );
    }
}
