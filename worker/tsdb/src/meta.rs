//! `meta.json`: a block's id, time range, statistics and compaction history.
//!
//! Unknown fields are kept (`extra`) so a block written by a newer Prometheus
//! or by Thanos round-trips through our compactor without losing them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The block meta file, as Prometheus writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// The block's ULID (also its directory name).
    pub ulid: String,
    /// First timestamp covered (ms, inclusive).
    #[serde(rename = "minTime")]
    pub min_time: i64,
    /// End of the covered range (ms, exclusive).
    #[serde(rename = "maxTime")]
    pub max_time: i64,
    /// Counts.
    #[serde(default)]
    pub stats: BlockStats,
    /// Compaction history.
    #[serde(default)]
    pub compaction: Compaction,
    /// Meta format version (1).
    pub version: u32,
    /// Fields we do not interpret.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Series, sample and chunk counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockStats {
    /// Samples of all kinds.
    #[serde(rename = "numSamples", default, skip_serializing_if = "is_zero")]
    pub num_samples: u64,
    /// Float samples (newer Prometheus).
    #[serde(rename = "numFloatSamples", default, skip_serializing_if = "is_zero")]
    pub num_float_samples: u64,
    /// Histogram samples (newer Prometheus).
    #[serde(
        rename = "numHistogramSamples",
        default,
        skip_serializing_if = "is_zero"
    )]
    pub num_histogram_samples: u64,
    /// Series.
    #[serde(rename = "numSeries", default, skip_serializing_if = "is_zero")]
    pub num_series: u64,
    /// Chunks.
    #[serde(rename = "numChunks", default, skip_serializing_if = "is_zero")]
    pub num_chunks: u64,
    /// Tombstones.
    #[serde(rename = "numTombstones", default, skip_serializing_if = "is_zero")]
    pub num_tombstones: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// How the block came to be.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Compaction {
    /// 1 for a block cut from the head, +1 per compaction.
    #[serde(default)]
    pub level: u32,
    /// ULIDs of the level-1 blocks this one holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// The blocks compacted into this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<BlockDesc>,
    /// Fields we do not interpret (`deletable`, `failed`, `hints`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A parent block's id and range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockDesc {
    /// ULID.
    pub ulid: String,
    /// Range start (ms).
    #[serde(rename = "minTime")]
    pub min_time: i64,
    /// Range end (ms, exclusive).
    #[serde(rename = "maxTime")]
    pub max_time: i64,
}

impl BlockMeta {
    /// Parses `meta.json`; `file` names it in the error.
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Self, crate::TsdbError> {
        let meta: BlockMeta =
            serde_json::from_slice(bytes).map_err(|e| crate::TsdbError::BadMeta {
                file: file.to_string(),
                reason: format!("not a valid block meta file: {e}"),
            })?;
        if meta.version != 1 {
            return Err(crate::TsdbError::Unsupported {
                file: file.to_string(),
                what: format!("meta.json version {}", meta.version),
            });
        }
        if meta.max_time < meta.min_time {
            return Err(crate::TsdbError::BadMeta {
                file: file.to_string(),
                reason: format!(
                    "maxTime {} is before minTime {}",
                    meta.max_time, meta.min_time
                ),
            });
        }
        Ok(meta)
    }

    /// Prometheus's layout: tab-indented JSON.
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        // Serializing plain data into a Vec cannot fail.
        let _ = self.serialize(&mut ser);
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_meta_and_keeps_unknown_fields() {
        let text = r#"{
	"ulid": "01M8056S4GKBMV5PYXF1869NGA",
	"minTime": 1795301193122,
	"maxTime": 1795301794510,
	"stats": {"numSamples": 603100, "numSeries": 1013, "numChunks": 6005},
	"compaction": {"level": 1, "sources": ["01M8056S4GKBMV5PYXF1869NGA"], "hints": ["from-out-of-order"]},
	"version": 1,
	"thanos": {"labels": {"a": "b"}}
}"#;
        let m = BlockMeta::parse("meta.json", text.as_bytes()).unwrap();
        assert_eq!(m.stats.num_series, 1013);
        assert_eq!(m.compaction.extra["hints"][0], "from-out-of-order");
        let back = BlockMeta::parse("meta.json", m.to_json().as_bytes()).unwrap();
        assert_eq!(back, m);
        assert!(m.to_json().contains("\n\t\"ulid\""));
    }

    #[test]
    fn bad_meta_names_the_file() {
        let e = BlockMeta::parse("01X/meta.json", b"{\"ulid\": 3}").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("01X/meta.json: not a valid block meta file: invalid type"),
            "{e}"
        );
    }
}
