//! STREAMED_XOR_CHUNKS bodies must never panic: the push reader fed the
//! input in two pieces (split at the first byte's value), the XOR chunks of
//! every frame decoded and series reassembled.
#![no_main]

use emberlens_remote::convert::SeriesAssembler;
use emberlens_remote::frame::FrameReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |&b| usize::from(b).min(data.len()));
    let mut r = FrameReader::new(1 << 20);
    let mut a = SeriesAssembler::new();
    for piece in [&data[..split], &data[split..]] {
        r.push(piece);
        loop {
            match r.next_frame() {
                Ok(Some(f)) => {
                    if a.push(&f).is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = r.finish();
    let _ = a.finish().len();
});
