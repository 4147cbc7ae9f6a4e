//! Decoding: gzipped or raw bytes → a checked [`Profile`].
//!
//! Three stages, each with its own error:
//! 1. **Gzip** (detected by the magic bytes `1f 8b`; several concatenated
//!    members are read like Go's `gzip.Reader` does) with a cap on the
//!    decompressed size, so a small "zip bomb" cannot exhaust memory.
//! 2. **Protobuf** with prost. prost names the message and field that failed
//!    but not where; on failure the top level is walked again by hand to
//!    report the byte offset of the field that does not decode.
//! 3. **Validation** ([`validate`]), as Go's `profile.Parse` + `CheckValid`:
//!    every string index in range and `string_table[0] == ""`; mapping,
//!    location and function ids non-zero and unique; every id a sample,
//!    location or line refers to exists; each sample has one value per
//!    sample type.
//!
//! prost's own limits apply too: a declared length past the end of the
//! buffer is an error (nothing is allocated for it) and nesting is bounded.

use std::collections::HashSet;
use std::io::Read;

use prost::Message;

use crate::proto::{Function, Location, Mapping, Profile, Sample, ValueType};

/// Default cap on the decompressed size: 1 GiB (the largest profiles we
/// benchmark are 50 MB gzipped).
pub const DEFAULT_MAX_DECODED_BYTES: usize = 1 << 30;

/// Why bytes are not a usable profile.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    /// The input is empty.
    #[error("empty input: not a profile")]
    Empty,
    /// Gzip data that does not inflate.
    #[error("gzip: at decompressed byte {decompressed}: {reason}")]
    Gzip {
        /// Bytes decompressed before the failure.
        decompressed: usize,
        /// Why.
        reason: String,
    },
    /// The decompressed profile is over the cap.
    #[error("gzip: decompressed size exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: usize,
    },
    /// The protobuf does not decode.
    #[error("protobuf: field {field} at offset {offset}: {reason}")]
    Protobuf {
        /// `Profile.<field>` (with its index among repeated fields), or `Profile`.
        field: String,
        /// Byte offset (in the decompressed bytes) of the field's tag.
        offset: usize,
        /// prost's reason.
        reason: String,
    },
    /// The profile decodes but refers to something that is not there.
    #[error("invalid profile: {field}: {reason}")]
    Invalid {
        /// The field, e.g. `sample[3].location_id[0]`.
        field: String,
        /// Why.
        reason: String,
    },
}

impl DecodeError {
    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        DecodeError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Decodes a profile, gzipped or not, with the [`DEFAULT_MAX_DECODED_BYTES`] cap.
pub fn decode(bytes: &[u8]) -> Result<Profile, DecodeError> {
    decode_with_limit(bytes, DEFAULT_MAX_DECODED_BYTES)
}

/// Decodes a profile, gzipped or not; gzipped input may inflate to at most
/// `max_decoded_bytes` (raw input longer than that is refused as well).
pub fn decode_with_limit(bytes: &[u8], max_decoded_bytes: usize) -> Result<Profile, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let raw;
    let data: &[u8] = if is_gzip(bytes) {
        raw = gunzip(bytes, max_decoded_bytes)?;
        &raw
    } else {
        if bytes.len() > max_decoded_bytes {
            return Err(DecodeError::TooLarge {
                limit: max_decoded_bytes,
            });
        }
        bytes
    };
    let profile = Profile::decode(data).map_err(|e| locate(data, &e))?;
    validate(&profile)?;
    Ok(profile)
}

/// Whether `bytes` start with the gzip magic number.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

pub(crate) fn gunzip(bytes: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut reader = flate2::read::MultiGzDecoder::new(bytes).take(cap);
    let mut buf = [0u8; 64 << 10];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if out.len() + n > limit {
                    return Err(DecodeError::TooLarge { limit });
                }
                out.extend_from_slice(&buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(DecodeError::Gzip {
                    decompressed: out.len(),
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// Top-level field names of `Profile`, by field number.
fn field_name(number: u64) -> &'static str {
    match number {
        1 => "sample_type",
        2 => "sample",
        3 => "mapping",
        4 => "location",
        5 => "function",
        6 => "string_table",
        7 => "drop_frames",
        8 => "keep_frames",
        9 => "time_nanos",
        10 => "duration_nanos",
        11 => "period_type",
        12 => "period",
        13 => "comment",
        14 => "default_sample_type",
        15 => "doc_url",
        _ => "unknown",
    }
}

/// Finds where prost's error happened: walks the top-level fields and
/// decodes each message field alone; the first that fails (or the first
/// malformed tag or length) names the field and its offset.
fn locate(data: &[u8], err: &prost::DecodeError) -> DecodeError {
    let mut pos = 0usize;
    let mut counts = [0usize; 16];
    let whole = |field: String, offset: usize, reason: String| DecodeError::Protobuf {
        field,
        offset,
        reason,
    };
    while pos < data.len() {
        let at = pos;
        let Some((key, n)) = varint(&data[pos..]) else {
            return whole(
                "Profile".into(),
                at,
                "truncated or overlong field key".into(),
            );
        };
        pos += n;
        let (number, wire) = (key >> 3, key & 7);
        let name = field_name(number);
        let index = usize::try_from(number)
            .ok()
            .and_then(|i| counts.get_mut(i))
            .map(|c| {
                *c += 1;
                *c - 1
            })
            .unwrap_or(0);
        let field = format!("Profile.{name}[{index}]");
        if number == 0 {
            return whole(field, at, "field number 0".into());
        }
        match wire {
            0 => match varint(&data[pos..]) {
                Some((_, n)) => pos += n,
                None => return whole(field, at, "truncated varint".into()),
            },
            1 => {
                if data.len() - pos < 8 {
                    return whole(field, at, "truncated 64-bit value".into());
                }
                pos += 8;
            }
            5 => {
                if data.len() - pos < 4 {
                    return whole(field, at, "truncated 32-bit value".into());
                }
                pos += 4;
            }
            2 => {
                let Some((len, n)) = varint(&data[pos..]) else {
                    return whole(field, at, "truncated length".into());
                };
                pos += n;
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                if len > data.len() - pos {
                    return whole(
                        field,
                        at,
                        format!(
                            "length {len} runs past the end ({} bytes left)",
                            data.len() - pos
                        ),
                    );
                }
                let body = &data[pos..pos + len];
                let reason = |e: prost::DecodeError| e.to_string();
                let inner = match number {
                    1 | 11 => ValueType::decode(body).err().map(reason),
                    2 => Sample::decode(body).err().map(reason),
                    3 => Mapping::decode(body).err().map(reason),
                    4 => Location::decode(body).err().map(reason),
                    5 => Function::decode(body).err().map(reason),
                    6 => std::str::from_utf8(body)
                        .err()
                        .map(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to())),
                    _ => None,
                };
                if let Some(e) = inner {
                    return whole(field, at, e);
                }
                pos += len;
            }
            w => return whole(field, at, format!("unsupported wire type {w}")),
        }
    }
    // The walk found nothing wrong at the top level: report prost's words.
    whole("Profile".into(), 0, err.to_string())
}

/// A base-128 varint at the start of `b`: its value and length.
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Checks references and indices, as Go's `profile.Parse` and
/// `Profile.CheckValid` do; the first problem is returned, naming the field.
pub fn validate(p: &Profile) -> Result<(), DecodeError> {
    let n_strings = p.string_table.len();
    match p.string_table.first() {
        None => {
            return Err(DecodeError::invalid(
                "string_table",
                "empty (index 0 must be \"\")",
            ));
        }
        Some(s) if !s.is_empty() => {
            return Err(DecodeError::invalid(
                "string_table[0]",
                format!("must be \"\", found {s:?}"),
            ));
        }
        Some(_) => {}
    }
    let string = |field: &dyn Fn() -> String, i: i64| {
        if i < 0 || usize::try_from(i).map_or(true, |i| i >= n_strings) {
            return Err(DecodeError::invalid(
                field(),
                format!("string index {i} out of range (string_table has {n_strings})"),
            ));
        }
        Ok(())
    };
    for (i, vt) in p.sample_type.iter().enumerate() {
        string(&|| format!("sample_type[{i}].type"), vt.r#type)?;
        string(&|| format!("sample_type[{i}].unit"), vt.unit)?;
    }
    if let Some(vt) = &p.period_type {
        string(&|| "period_type.type".into(), vt.r#type)?;
        string(&|| "period_type.unit".into(), vt.unit)?;
    }
    string(&|| "drop_frames".into(), p.drop_frames)?;
    string(&|| "keep_frames".into(), p.keep_frames)?;
    string(&|| "default_sample_type".into(), p.default_sample_type)?;
    string(&|| "doc_url".into(), p.doc_url)?;
    for (i, &c) in p.comment.iter().enumerate() {
        string(&|| format!("comment[{i}]"), c)?;
    }

    let mut mappings = HashSet::with_capacity(p.mapping.len());
    for (i, m) in p.mapping.iter().enumerate() {
        if m.id == 0 {
            return Err(DecodeError::invalid(format!("mapping[{i}].id"), "is 0"));
        }
        if !mappings.insert(m.id) {
            return Err(DecodeError::invalid(
                format!("mapping[{i}].id"),
                format!("duplicate id {}", m.id),
            ));
        }
        string(&|| format!("mapping[{i}].filename"), m.filename)?;
        string(&|| format!("mapping[{i}].build_id"), m.build_id)?;
    }
    let mut functions = HashSet::with_capacity(p.function.len());
    for (i, f) in p.function.iter().enumerate() {
        if f.id == 0 {
            return Err(DecodeError::invalid(format!("function[{i}].id"), "is 0"));
        }
        if !functions.insert(f.id) {
            return Err(DecodeError::invalid(
                format!("function[{i}].id"),
                format!("duplicate id {}", f.id),
            ));
        }
        string(&|| format!("function[{i}].name"), f.name)?;
        string(&|| format!("function[{i}].system_name"), f.system_name)?;
        string(&|| format!("function[{i}].filename"), f.filename)?;
    }
    let mut locations = HashSet::with_capacity(p.location.len());
    for (i, l) in p.location.iter().enumerate() {
        if l.id == 0 {
            return Err(DecodeError::invalid(format!("location[{i}].id"), "is 0"));
        }
        if !locations.insert(l.id) {
            return Err(DecodeError::invalid(
                format!("location[{i}].id"),
                format!("duplicate id {}", l.id),
            ));
        }
        if l.mapping_id != 0 && !mappings.contains(&l.mapping_id) {
            return Err(DecodeError::invalid(
                format!("location[{i}].mapping_id"),
                format!("no mapping with id {}", l.mapping_id),
            ));
        }
        for (j, line) in l.line.iter().enumerate() {
            if line.function_id != 0 && !functions.contains(&line.function_id) {
                return Err(DecodeError::invalid(
                    format!("location[{i}].line[{j}].function_id"),
                    format!("no function with id {}", line.function_id),
                ));
            }
        }
    }
    let types = p.sample_type.len();
    for (i, s) in p.sample.iter().enumerate() {
        if s.value.len() != types {
            return Err(DecodeError::invalid(
                format!("sample[{i}].value"),
                format!("{} values for {types} sample types", s.value.len()),
            ));
        }
        for (j, id) in s.location_id.iter().enumerate() {
            if !locations.contains(id) {
                return Err(DecodeError::invalid(
                    format!("sample[{i}].location_id[{j}]"),
                    format!("no location with id {id}"),
                ));
            }
        }
        for (j, l) in s.label.iter().enumerate() {
            string(&|| format!("sample[{i}].label[{j}].key"), l.key)?;
            string(&|| format!("sample[{i}].label[{j}].str"), l.str)?;
            string(&|| format!("sample[{i}].label[{j}].num_unit"), l.num_unit)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Label, Line};

    fn tiny() -> Profile {
        Profile {
            sample_type: vec![ValueType { r#type: 1, unit: 2 }],
            sample: vec![Sample {
                location_id: vec![1],
                value: vec![7],
                label: vec![Label {
                    key: 4,
                    str: 5,
                    num: 0,
                    num_unit: 0,
                }],
            }],
            mapping: vec![],
            location: vec![Location {
                id: 1,
                mapping_id: 0,
                address: 0x10,
                line: vec![Line {
                    function_id: 1,
                    line: 3,
                    column: 0,
                }],
                is_folded: false,
            }],
            function: vec![Function {
                id: 1,
                name: 3,
                system_name: 3,
                filename: 0,
                start_line: 1,
            }],
            string_table: ["", "samples", "count", "main", "k", "v"]
                .map(String::from)
                .to_vec(),
            ..Profile::default()
        }
    }

    #[test]
    fn raw_and_gzipped_decode_alike() {
        let p = tiny();
        let raw = crate::encode(&p);
        let gz = crate::encode_gzip(&p);
        assert!(is_gzip(&gz) && !is_gzip(&raw));
        assert_eq!(decode(&raw).unwrap(), p);
        assert_eq!(decode(&gz).unwrap(), p);
    }

    #[test]
    fn validation_names_the_field() {
        let check = |f: &dyn Fn(&mut Profile), want: &str| {
            let mut p = tiny();
            f(&mut p);
            let err = decode(&crate::encode(&p)).unwrap_err();
            assert_eq!(err.to_string(), want);
        };
        check(
            &|p| p.sample[0].location_id[0] = 9,
            "invalid profile: sample[0].location_id[0]: no location with id 9",
        );
        check(
            &|p| p.sample[0].value.push(1),
            "invalid profile: sample[0].value: 2 values for 1 sample types",
        );
        check(
            &|p| p.function[0].name = 99,
            "invalid profile: function[0].name: string index 99 out of range (string_table has 6)",
        );
        check(
            &|p| p.location[0].line[0].function_id = 2,
            "invalid profile: location[0].line[0].function_id: no function with id 2",
        );
        check(
            &|p| p.location[0].mapping_id = 4,
            "invalid profile: location[0].mapping_id: no mapping with id 4",
        );
        check(
            &|p| p.string_table[0] = "x".into(),
            "invalid profile: string_table[0]: must be \"\", found \"x\"",
        );
        check(
            &|p| p.comment.push(-1),
            "invalid profile: comment[0]: string index -1 out of range (string_table has 6)",
        );
        check(
            &|p| p.location.push(p.location[0].clone()),
            "invalid profile: location[1].id: duplicate id 1",
        );
        check(
            &|p| p.sample[0].label[0].num_unit = 6,
            "invalid profile: sample[0].label[0].num_unit: string index 6 out of range (string_table has 6)",
        );
    }

    #[test]
    fn broken_bytes_give_field_and_offset() {
        let raw = crate::encode(&tiny());
        // Cut inside the first sample message.
        let sample_at = raw.iter().position(|&b| b == 0x12).unwrap();
        let err = decode(&raw[..sample_at + 4]).unwrap_err();
        assert!(
            matches!(&err, DecodeError::Protobuf { field, offset, .. } if field == "Profile.sample[0]" && *offset == sample_at),
            "{err}"
        );
        assert_eq!(decode(&[]).unwrap_err(), DecodeError::Empty);
        let err = decode(&[0x1f, 0x8b, 0, 1, 2]).unwrap_err();
        assert!(matches!(err, DecodeError::Gzip { .. }), "{err}");
        // A field key with eleven continuation bytes.
        let err = decode(&[0xff; 11]).unwrap_err();
        assert!(err.to_string().contains("offset 0"), "{err}");
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_cap() {
        let mut p = tiny();
        p.string_table.push("x".repeat(1 << 20));
        let gz = crate::encode_gzip(&p);
        assert!(gz.len() < 10_000);
        assert_eq!(
            decode_with_limit(&gz, 1 << 19).unwrap_err(),
            DecodeError::TooLarge { limit: 1 << 19 }
        );
        assert!(decode_with_limit(&gz, 2 << 20).is_ok());
    }
}
