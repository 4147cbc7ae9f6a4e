//! The WAL segment reader and record decoder must never panic on any bytes;
//! every record they accept re-encodes (series and samples records) to one
//! that decodes to the same content, and re-fragmented reads back the same.
#![no_main]

use emberlens_tsdb::wal::{
    Record, SegmentReader, decode_record, encode_fragments, encode_samples, encode_series,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = SegmentReader::new("00000000", data);
    while let Ok(Some(rec)) = r.next_record() {
        let mut seg = Vec::new();
        encode_fragments(&mut seg, 0, &rec, false);
        let again = SegmentReader::new("again", &seg)
            .next_record()
            .expect("re-fragmented record reads")
            .expect("one record");
        assert_eq!(again, rec);
        match decode_record(&rec) {
            Ok(Record::Series(list)) => {
                let mut out = Vec::new();
                encode_series(&mut out, list.iter().map(|(r, l)| (*r, l)));
                assert_eq!(decode_record(&out).expect("re-encoded series"), Record::Series(list));
            }
            Ok(Record::Samples(list)) => {
                let mut out = Vec::new();
                encode_samples(&mut out, &list);
                match decode_record(&out).expect("re-encoded samples") {
                    Record::Samples(back) => {
                        assert_eq!(back.len(), list.len());
                        for (a, b) in back.iter().zip(&list) {
                            assert_eq!((a.series, a.t_ms, a.v.to_bits()), (b.series, b.t_ms, b.v.to_bits()));
                        }
                    }
                    other => panic!("samples decoded as {other:?}"),
                }
            }
            _ => {}
        }
    }
});
