//! File-based service discovery target files: a list of target groups,
//! `[{"targets": ["host:port", ...], "labels": {"name": "value"}}]`, as JSON
//! (`.json`) or YAML (`.yml`, `.yaml`).
//!
//! As in Prometheus, the YAML form is strict (unknown keys are errors) while
//! the JSON form ignores unknown keys (Go's `encoding/json`); label names
//! must be valid, a `null` group is an error, and an empty file is an empty
//! list. Reading the files, watching them and adding `__meta_filepath` is the
//! caller's job: this module only turns bytes into groups.

use std::collections::BTreeMap;

use emberlens_model::Labels;
use serde::Deserialize;

use crate::config::{ConfigError, TargetGroup, Text, check_label_names};

/// The two encodings of a target file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileSdFormat {
    /// `.json`
    Json,
    /// `.yml` / `.yaml`
    Yaml,
}

impl FileSdFormat {
    /// The format for a file name by its extension (any case), as Prometheus
    /// picks it; `None` for other extensions.
    pub fn from_path(path: &str) -> Option<Self> {
        let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "json" => Some(FileSdFormat::Json),
            "yml" | "yaml" => Some(FileSdFormat::Yaml),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictGroup {
    #[serde(default)]
    targets: Option<Vec<Text>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, Text>>,
}

#[derive(Deserialize)]
struct LenientGroup {
    #[serde(default)]
    targets: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// Parses a target file's bytes. Errors name the group index and, for
/// syntax errors, the line.
pub fn parse_file_sd(bytes: &[u8], format: FileSdFormat) -> Result<Vec<TargetGroup>, ConfigError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ConfigError::new("", format!("file is not UTF-8: {e}")))?;
    let raw: Vec<(Vec<String>, BTreeMap<String, String>)> = match format {
        FileSdFormat::Json => {
            if text.trim().is_empty() {
                return Ok(Vec::new());
            }
            let groups: Vec<Option<LenientGroup>> = serde_json::from_str(text).map_err(|e| {
                ConfigError::at(
                    "",
                    Some(e.line()),
                    Some(e.column()),
                    strip_json_position(&e.to_string()),
                )
            })?;
            groups
                .into_iter()
                .enumerate()
                .map(|(i, g)| {
                    let g = g.ok_or_else(|| null_group(i))?;
                    Ok((g.targets.unwrap_or_default(), g.labels.unwrap_or_default()))
                })
                .collect::<Result<_, ConfigError>>()?
        }
        FileSdFormat::Yaml => {
            let groups: Option<Vec<Option<StrictGroup>>> =
                yaml_serde::from_str(text).map_err(ConfigError::from_yaml)?;
            groups
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, g)| {
                    let g = g.ok_or_else(|| null_group(i))?;
                    Ok((
                        g.targets
                            .unwrap_or_default()
                            .into_iter()
                            .map(|t| t.0)
                            .collect(),
                        g.labels
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, v.0))
                            .collect(),
                    ))
                })
                .collect::<Result<_, ConfigError>>()?
        }
    };
    raw.into_iter()
        .enumerate()
        .map(|(i, (targets, labels))| {
            check_label_names(&format!("[{i}].labels"), None, labels.keys())?;
            Ok(TargetGroup {
                targets,
                labels: Labels::from_pairs(labels),
            })
        })
        .collect()
}

fn null_group(i: usize) -> ConfigError {
    ConfigError::new(&format!("[{i}]"), "nil target group item found")
}

fn strip_json_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(groups: &[TargetGroup]) -> String {
        groups
            .iter()
            .map(|g| format!("{:?} {}", g.targets, g.labels))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn json_and_yaml_give_the_same_groups() {
        let json =
            br#"[{"targets": ["a:1", "b:2"], "labels": {"env": "prod"}}, {"targets": ["c:3"]}]"#;
        let yaml = b"- targets: [a:1, b:2]\n  labels: {env: prod}\n- targets: ['c:3']\n";
        let j = parse_file_sd(json, FileSdFormat::Json).unwrap();
        let y = parse_file_sd(yaml, FileSdFormat::Yaml).unwrap();
        assert_eq!(show(&j), show(&y));
        assert_eq!(show(&j), "[\"a:1\", \"b:2\"] {env=\"prod\"}\n[\"c:3\"] {}");
    }

    #[test]
    fn empty_files_are_empty_lists() {
        assert!(parse_file_sd(b"", FileSdFormat::Json).unwrap().is_empty());
        assert!(
            parse_file_sd(b"  \n", FileSdFormat::Yaml)
                .unwrap()
                .is_empty()
        );
        assert!(parse_file_sd(b"[]", FileSdFormat::Yaml).unwrap().is_empty());
    }

    #[test]
    fn yaml_is_strict_json_is_lenient() {
        let e = parse_file_sd(b"- targets: [a]\n  lables: {}\n", FileSdFormat::Yaml).unwrap_err();
        assert!(e.to_string().contains("unknown field `lables`"), "{e}");
        assert_eq!(e.line, Some(2));
        parse_file_sd(br#"[{"targets": ["a"], "extra": 1}]"#, FileSdFormat::Json).unwrap();
    }

    #[test]
    fn errors_name_the_group() {
        let e = parse_file_sd(
            br#"[{"targets": ["a"], "labels": {"1x": "v"}}]"#,
            FileSdFormat::Json,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"[0].labels: "1x" is not a valid label name"#
        );
        let e = parse_file_sd(b"[null]", FileSdFormat::Json).unwrap_err();
        assert_eq!(e.to_string(), "[0]: nil target group item found");
        let e = parse_file_sd(b"[{\"targets\": [1]}]", FileSdFormat::Json).unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
        assert!(parse_file_sd(b"\xff", FileSdFormat::Yaml).is_err());
    }

    #[test]
    fn format_from_extension() {
        assert_eq!(
            FileSdFormat::from_path("a/b.JSON"),
            Some(FileSdFormat::Json)
        );
        assert_eq!(FileSdFormat::from_path("t.yaml"), Some(FileSdFormat::Yaml));
        assert_eq!(FileSdFormat::from_path("t.yml"), Some(FileSdFormat::Yaml));
        assert_eq!(FileSdFormat::from_path("t.txt"), None);
    }
}
