//! Writes the seed corpus of the `remote_*` fuzz targets (`fuzz/corpus/`):
//! `cargo test -p emberlens-remote --test fuzz_seeds -- --ignored`.
//! Ignored by default: it writes into the repository. A native-only test
//! helper, so the file system is fine here.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::path::PathBuf;

use emberlens_model::{Labels, Sample, Series};
use emberlens_remote::codec::{encode_read_request, encode_write_request};
use emberlens_remote::convert::{series_frames, series_to_timeseries};
use emberlens_remote::frame::encode_frame;
use emberlens_remote::prompb::{
    LabelMatcher, MetricMetadata, Query, ReadHints, ReadRequest, WriteRequest,
};
use prost::Message;

fn series(name: &str, n: i64) -> Series {
    Series {
        labels: Labels::from_pairs([("__name__", name), ("job", "j"), ("instance", "h:1")]),
        samples: (0..n)
            .map(|i| Sample {
                t_ms: 1_700_000_000_000 + 15_000 * i + (i % 3),
                v: if i == 5 {
                    emberlens_model::stale_nan()
                } else {
                    (i * i) as f64 / 7.0
                },
            })
            .collect(),
        ..Series::default()
    }
}

fn save(target: &str, name: &str, bytes: &[u8]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

#[test]
#[ignore = "writes the fuzz seed corpus into the repository"]
fn write_fuzz_seeds() {
    let write = WriteRequest {
        timeseries: vec![
            series_to_timeseries(&series("up", 3)),
            series_to_timeseries(&series("x", 1)),
        ],
        metadata: vec![MetricMetadata {
            r#type: 2,
            metric_family_name: "up".into(),
            help: "h".into(),
            unit: String::new(),
        }],
    };
    save(
        "remote_write",
        "snappy",
        &encode_write_request(&write).unwrap(),
    );
    save("remote_write", "raw", &write.encode_to_vec());

    let read = ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: 1,
            end_timestamp_ms: 1_000_000,
            matchers: vec![
                LabelMatcher {
                    r#type: 0,
                    name: "__name__".into(),
                    value: "up".into(),
                },
                LabelMatcher {
                    r#type: 2,
                    name: "job".into(),
                    value: "a|b.*".into(),
                },
            ],
            hints: Some(ReadHints {
                step_ms: 15_000,
                func: "rate".into(),
                start_ms: 1,
                end_ms: 2,
                grouping: vec!["job".into()],
                by: true,
                range_ms: 60_000,
            }),
        }],
        accepted_response_types: vec![1, 0],
    };
    save(
        "remote_read",
        "snappy",
        &encode_read_request(&read).unwrap(),
    );
    save("remote_read", "raw", &read.encode_to_vec());

    let mut body = Vec::new();
    for f in series_frames(&series("up", 130), 0, 1 << 20) {
        body.extend(encode_frame(&f));
    }
    for f in series_frames(&series("y", 2), 1, 10) {
        body.extend(encode_frame(&f));
    }
    save("remote_frames", "two_queries", &body);
}
