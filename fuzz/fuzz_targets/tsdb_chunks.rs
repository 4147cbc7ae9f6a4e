//! Chunk decoding must never panic: the XOR, histogram and float-histogram decoders on raw
//! bytes (and bucket listing of what they decode), and the
//! segment reader on a file made of a valid header and the input.
#![no_main]

use emberlens_tsdb::chunkenc::histogram::{FloatHistogramIter, HistogramIter};
use emberlens_tsdb::chunkenc::xor::XorIter;
use emberlens_tsdb::chunks::{ChunkReader, MAGIC_CHUNKS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(it) = XorIter::new(data, 0) {
        for s in it {
            if s.is_err() {
                break;
            }
        }
    }
    if let Ok(it) = HistogramIter::new(data, 0) {
        for (t, h) in it.take(1 << 12).map_while(Result::ok) {
            let _ = (t, h.buckets().len());
        }
    }
    if let Ok(it) = FloatHistogramIter::new(data, 0) {
        for (t, h) in it.take(1 << 12).map_while(Result::ok) {
            let _ = (t, h.buckets().len(), h.to_string().len());
        }
    }
    let mut seg = MAGIC_CHUNKS.to_be_bytes().to_vec();
    seg.extend_from_slice(&[1, 0, 0, 0]);
    seg.extend_from_slice(data);
    if let Ok(r) = ChunkReader::open(vec![("chunks/000001".to_string(), seg)]) {
        for off in [8u64, 9, 16, (data.len() as u64 / 2) + 8] {
            if let Ok(c) = r.chunk(off) {
                if let Ok(it) = XorIter::new(&c.data, c.data_offset) {
                    let _ = it.take(1 << 16).count();
                }
            }
        }
    }
});
