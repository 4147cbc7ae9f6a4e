//! Chunk segment files (`chunks/000001`, …) of a block.
//!
//! Layout: `magic 0x85BD40DD | version u8 (1) | 3 bytes padding`, then chunks,
//! each `len uvarint | encoding u8 | data (len bytes) | CRC32(encoding, data)`.
//! A chunk reference is `(segment index << 32) | offset`, the index counting
//! from 0 for `000001`.

use std::borrow::Cow;

use crate::chunkenc::Encoding;
use crate::encoding::{crc32, read_uvarint};
use crate::error::{Corruption, TsdbError};
use crate::source::ByteSource;
use crate::writer::{BlockSink, WriteError};

/// Segment files' magic number.
pub const MAGIC_CHUNKS: u32 = 0x85BD_40DD;
/// Header size of a segment file.
pub const SEGMENT_HEADER_LEN: u64 = 8;
/// Bytes read at once for a chunk; most chunks (≤120 samples) fit.
const CHUNK_READ_GUESS: usize = 512;

/// One chunk's encoding and data.
#[derive(Clone, Debug, PartialEq)]
pub struct RawChunk<'a> {
    /// The encoding byte.
    pub encoding: Encoding,
    /// The chunk data (without length, encoding and CRC).
    pub data: Cow<'a, [u8]>,
    /// File offset of `data[0]`.
    pub data_offset: u64,
}

/// The segment files of one block, in order.
pub struct ChunkReader<S> {
    segments: Vec<(String, S)>,
}

impl<S: ByteSource> ChunkReader<S> {
    /// Checks each segment's header. `segments` are `(path, file)` in order.
    pub fn open(segments: Vec<(String, S)>) -> Result<Self, TsdbError> {
        for (path, src) in &segments {
            let head = src
                .read_at(0, SEGMENT_HEADER_LEN as usize)
                .map_err(|detail| {
                    if src.len() < SEGMENT_HEADER_LEN {
                        TsdbError::corrupt(
                            path,
                            "header",
                            Corruption::at(0, format!("file too short ({} bytes)", src.len())),
                        )
                    } else {
                        TsdbError::Read {
                            file: path.clone(),
                            detail,
                        }
                    }
                })?;
            let magic = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            if magic != MAGIC_CHUNKS {
                return Err(TsdbError::corrupt(
                    path,
                    "header",
                    Corruption::at(0, format!("invalid magic number {magic:#x}")),
                ));
            }
            if head[4] != 1 {
                return Err(TsdbError::Unsupported {
                    file: path.clone(),
                    what: format!("chunk segment version {}", head[4]),
                });
            }
        }
        Ok(ChunkReader { segments })
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Total bytes of all segment files.
    pub fn size(&self) -> u64 {
        self.segments.iter().map(|(_, s)| s.len()).sum()
    }

    /// Announces reads of `(segment, start, end)` byte ranges (sorted here)
    /// to the segment files ([`ByteSource::prefetch`]).
    pub fn prefetch(&self, ranges: &mut [(u64, u64, u64)]) {
        ranges.sort_unstable();
        for group in ranges.chunk_by(|a, b| a.0 == b.0) {
            if let Some((_, src)) = usize::try_from(group[0].0)
                .ok()
                .and_then(|s| self.segments.get(s))
            {
                let r: Vec<(u64, u64)> = group.iter().map(|&(_, a, b)| (a, b)).collect();
                src.prefetch(&r);
            }
        }
    }

    /// Reads and checks the chunk at `chunk_ref`.
    pub fn chunk(&self, chunk_ref: u64) -> Result<RawChunk<'_>, TsdbError> {
        let seq = (chunk_ref >> 32) as usize;
        let off = chunk_ref & 0xffff_ffff;
        let Some((path, src)) = self.segments.get(seq) else {
            return Err(TsdbError::Missing(format!(
                "chunk segment {:06} (chunk ref {chunk_ref:#x})",
                seq + 1
            )));
        };
        let corrupt = |c| TsdbError::corrupt(path, "chunk", c);
        let read = |o: u64, n: usize| {
            src.read_at(o, n).map_err(|detail| TsdbError::Read {
                file: path.clone(),
                detail,
            })
        };
        let size = src.len();
        if off < SEGMENT_HEADER_LEN || off >= size {
            return Err(corrupt(Corruption::at(
                off,
                format!("chunk offset outside the file ({size} bytes)"),
            )));
        }
        let first = read(off, (size - off).min(CHUNK_READ_GUESS as u64) as usize)?;
        let (len, n) = read_uvarint(&first)
            .ok_or_else(|| corrupt(Corruption::at(off, "invalid chunk length")))?;
        let total = (n as u64)
            .checked_add(1)
            .and_then(|x| x.checked_add(len))
            .and_then(|x| x.checked_add(4));
        let Some(total) = total.filter(|t| off.checked_add(*t).is_some_and(|end| end <= size))
        else {
            return Err(corrupt(Corruption::at(
                off,
                format!("chunk length {len} runs past the end of the file ({size} bytes)"),
            )));
        };
        let body: Cow<'_, [u8]> = if total as usize <= first.len() {
            match first {
                Cow::Borrowed(b) => Cow::Borrowed(&b[n..total as usize]),
                Cow::Owned(v) => Cow::Owned(v[n..total as usize].to_vec()),
            }
        } else {
            read(off + n as u64, len as usize + 5)?
        };
        let (payload, crc) = body.split_at(len as usize + 1);
        let want = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let got = crc32(payload);
        if want != got {
            return Err(corrupt(Corruption::at(
                off + n as u64 + 1 + len,
                format!("checksum mismatch (stored {want:#010x}, computed {got:#010x})"),
            )));
        }
        let encoding = Encoding::from_byte(payload[0]);
        let data = match body {
            Cow::Borrowed(b) => Cow::Borrowed(&b[1..len as usize + 1]),
            Cow::Owned(v) => Cow::Owned(v[1..len as usize + 1].to_vec()),
        };
        Ok(RawChunk {
            encoding,
            data,
            data_offset: off + n as u64 + 1,
        })
    }
}

/// Writes segment files through a [`BlockSink`] as chunks come, and returns
/// their references: nothing but the current segment's name and length is
/// kept, so a block's chunks never sit in memory all at once.
#[derive(Debug)]
pub struct ChunkWriter {
    /// The segment being written (`chunks/000001` is 0) and its length.
    current: Option<(u32, String, u64)>,
    max_segment_bytes: u64,
}

/// Prometheus's default segment size limit (512 MiB).
pub const DEFAULT_MAX_SEGMENT_BYTES: u64 = 512 << 20;

impl Default for ChunkWriter {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_SEGMENT_BYTES)
    }
}

impl ChunkWriter {
    /// A writer cutting a new segment before one would exceed `max_segment_bytes`.
    pub fn new(max_segment_bytes: u64) -> Self {
        ChunkWriter {
            current: None,
            max_segment_bytes,
        }
    }

    /// Appends a chunk; returns its reference.
    pub fn write<S: BlockSink + ?Sized>(
        &mut self,
        sink: &mut S,
        encoding: Encoding,
        data: &[u8],
    ) -> Result<u64, WriteError> {
        let mut header = Vec::with_capacity(11);
        crate::encoding::put_uvarint(&mut header, data.len() as u64);
        let need = (header.len() + 1 + data.len() + 4) as u64;
        let full = self.current.as_ref().is_none_or(|(_, _, len)| {
            *len > SEGMENT_HEADER_LEN && *len + need > self.max_segment_bytes
        });
        if full {
            let seq = match &self.current {
                None => 0,
                Some((seq, _, _)) => seq
                    .checked_add(1)
                    .ok_or_else(|| WriteError::TooLarge("more than 2^32 chunk segments".into()))?,
            };
            let name = format!("chunks/{:06}", u64::from(seq) + 1);
            let mut head = MAGIC_CHUNKS.to_be_bytes().to_vec();
            head.extend_from_slice(&[1, 0, 0, 0]);
            sink.append(&name, &head)?;
            self.current = Some((seq, name, SEGMENT_HEADER_LEN));
        }
        let Some((seq, name, len)) = self.current.as_mut() else {
            return Err(WriteError::TooLarge("no chunk segment".into()));
        };
        let off = *len;
        if off > u64::from(u32::MAX) {
            return Err(WriteError::TooLarge(format!(
                "{name}: chunk offset {off} beyond 4 GiB"
            )));
        }
        let mut crc = crate::encoding::CASTAGNOLI.digest();
        crc.update(&[encoding.byte()]);
        crc.update(data);
        sink.append(name, &header)?;
        sink.append(name, &[encoding.byte()])?;
        sink.append(name, data)?;
        sink.append(name, &crc.finalize().to_be_bytes())?;
        *len += need;
        Ok((u64::from(*seq) << 32) | off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::MemSink;

    fn segment(body: &[u8]) -> Vec<u8> {
        let mut seg = MAGIC_CHUNKS.to_be_bytes().to_vec();
        seg.extend_from_slice(&[1, 0, 0, 0]);
        seg.extend_from_slice(body);
        seg
    }

    #[test]
    fn written_chunks_read_back() {
        let mut w = ChunkWriter::new(64);
        let mut sink = MemSink::default();
        let a = w.write(&mut sink, Encoding::Xor, &[1, 2, 3]).unwrap();
        let b = w.write(&mut sink, Encoding::Histogram, &[9; 50]).unwrap();
        let segs = sink.files;
        assert_eq!(
            segs.len(),
            2,
            "the second chunk does not fit the 64-byte segment"
        );
        let r = ChunkReader::open(segs).unwrap();
        assert_eq!(&r.chunk(a).unwrap().data[..], &[1, 2, 3]);
        let c = r.chunk(b).unwrap();
        assert_eq!((c.encoding, c.data.len()), (Encoding::Histogram, 50));
        assert!(matches!(r.chunk(5 << 32), Err(TsdbError::Missing(_))));
    }

    // Regression (found by fuzzing): a length near u64::MAX overflowed `offset + length`.
    #[test]
    fn huge_chunk_length_is_an_error() {
        let r = ChunkReader::open(vec![(
            "c/000001".into(),
            segment(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
        )])
        .unwrap();
        let e = r.chunk(8).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "c/000001: chunk: at offset 8: chunk length 18446744073709551615 runs past the end"
            ),
            "{e}"
        );
    }
}
