//! Remote write bodies must never panic: snappy + protobuf decoding (with a
//! cap on the decoded size), raw protobuf, and conversion to series.
#![no_main]

use emberlens_remote::codec::decode_write_request;
use emberlens_remote::convert::timeseries_to_series;
use emberlens_remote::prompb::WriteRequest;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let raw = WriteRequest::decode(data).ok();
    for req in decode_write_request(data, 1 << 20)
        .ok()
        .into_iter()
        .chain(raw)
    {
        for ts in &req.timeseries {
            let s = timeseries_to_series(ts);
            let _ = (s.labels.to_string().len(), s.samples.len());
        }
    }
});
