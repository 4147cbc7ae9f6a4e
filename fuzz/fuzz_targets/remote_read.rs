//! Remote read requests must never panic: snappy + protobuf decoding, raw
//! protobuf, and matcher conversion (regexes compiled from the input).
#![no_main]

use emberlens_remote::codec::decode_read_request;
use emberlens_remote::convert::matchers_from_proto;
use emberlens_remote::prompb::ReadRequest;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let raw = ReadRequest::decode(data).ok();
    for req in decode_read_request(data, 1 << 20)
        .ok()
        .into_iter()
        .chain(raw)
    {
        for q in &req.queries {
            if let Ok(ms) = matchers_from_proto(&q.matchers) {
                for m in &ms {
                    let _ = m.matches("value");
                }
            }
        }
    }
});
