//! Collapsed ("folded") stacks: one stack per line, root first, frames
//! separated by `;`, then a space and the sample count:
//!
//! ```text
//! main;run;parse 42
//! main;run 7
//! ```
//!
//! This is what Brendan Gregg's `stackcollapse-*` scripts write and what
//! `flamegraph.pl`, inferno and speedscope read; `go tool pprof -raw` and
//! Emberlens's `profile collapsed` write it too. The result has one sample
//! type, `samples/count`.
//!
//! # Edge cases, and whom they follow
//!
//! - The value is what follows the **last** space or tab, so frame names
//!   may hold spaces (`std::vec::Vec<T, A> as Drop;free 3`).
//! - A value with a fractional part (`3.5`, which `flamegraph.pl` sums as
//!   a float) is truncated to its integer part, as inferno does: pprof
//!   values are integers. Negative values and values past `i64::MAX` are
//!   errors.
//! - Lines ending in `\r\n` read like `\n`; a UTF-8 byte-order mark at the
//!   start is skipped.
//! - Blank lines and lines starting with `#` are skipped. speedscope and
//!   `flamegraph.pl` skip *every* line they cannot parse, silently; here
//!   any other line without a value is an error naming its line, so a file
//!   that is not folded text is reported instead of imported half-empty.
//! - A file with no stack lines at all is an error (speedscope refuses it
//!   too).
//! - Identical frame names share one function and location; identical
//!   stacks on several lines are summed into one sample.
//! - Differential files (`difffolded.pl`'s `stack 10 12`, two counts) are
//!   not recognised: the first count would read as part of the leaf's name.
//! - Empty frame names (`a;;b 1`) are kept, as speedscope keeps them.
//!   A frame name cannot contain `;`: [`write()`] would split it.

use std::collections::{BTreeMap, HashMap};

use super::{Builder, ImportError, ImportLimits};
use crate::proto::Profile;

/// Parses folded stacks with the default [`ImportLimits`].
///
/// ```
/// use emberlens_pprof::import::folded;
///
/// let p = folded::parse(b"main;work 3\r\nmain;work 2\n# a comment\nmain 1\n").unwrap();
/// assert_eq!(p.totals(), [6]);
/// assert_eq!(folded::write(&p, 0), "main 1\nmain;work 5\n");
/// ```
pub fn parse(bytes: &[u8]) -> Result<Profile, ImportError> {
    parse_with_limits(bytes, ImportLimits::default())
}

/// Parses folded stacks; the input may be at most
/// [`ImportLimits::max_input_bytes`] long and its distinct stacks may hold
/// at most [`ImportLimits::max_frames`] frames together.
pub fn parse_with_limits(bytes: &[u8], limits: ImportLimits) -> Result<Profile, ImportError> {
    if bytes.len() > limits.max_input_bytes {
        return Err(ImportError::TooLarge {
            limit: limits.max_input_bytes,
        });
    }
    let (base, body) = match bytes.strip_prefix(b"\xef\xbb\xbf") {
        Some(rest) => (3, rest),
        None => (0, bytes),
    };
    let text = std::str::from_utf8(body).map_err(|e| {
        let offset = e.valid_up_to();
        ImportError::Folded {
            line: line_of(body, offset),
            offset: base + offset,
            reason: "invalid UTF-8".into(),
        }
    })?;

    let mut b = Builder::new(&[("samples", "count")]);
    let mut frames = 0usize;
    let mut stacks = 0usize;
    let mut offset = base;
    let mut line_no = 0;
    for raw in text.split('\n') {
        line_no += 1;
        let start = offset;
        offset += raw.len() + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw).trim_end();
        let err = |at: usize, reason: String| ImportError::Folded {
            line: line_no,
            offset: start + at,
            reason,
        };
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let Some(split) = line.rfind([' ', '\t']) else {
            return Err(err(
                0,
                "no sample value: expected \"frame;frame;...;leaf VALUE\"".into(),
            ));
        };
        let value = parse_value(&line[split + 1..]).map_err(|r| err(split + 1, r))?;
        let stack = line[..split].trim_end_matches([' ', '\t']);
        if stack.is_empty() {
            return Err(err(0, "empty stack before the value".into()));
        }
        let mut ids: Vec<u64> = stack.split(';').map(|f| b.frame(f, "", 0, 0)).collect();
        ids.reverse();
        if !b.has_stack(&ids) {
            frames = frames.saturating_add(ids.len());
            if frames > limits.max_frames {
                return Err(ImportError::TooManyFrames {
                    what: "folded",
                    limit: limits.max_frames,
                });
            }
        }
        b.add(ids, &[value]).ok_or_else(|| {
            err(
                split + 1,
                "the values of this stack sum past the 64-bit limit".into(),
            )
        })?;
        stacks += 1;
    }
    if stacks == 0 {
        return Err(ImportError::Folded {
            line: line_no,
            offset: bytes.len(),
            reason: "no stacks: not folded stacks text".into(),
        });
    }
    b.finish()
}

/// 1-based line number of byte `offset`.
fn line_of(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// `123` or `123.45` (truncated to 123).
fn parse_value(s: &str) -> Result<i64, String> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if s.starts_with('-') && s.len() > 1 && digits(&s[1..].replace('.', "")) {
        return Err(format!("negative sample value {s:?}"));
    }
    if int.is_empty() || !digits(int) || !digits(frac) {
        return Err(format!(
            "sample value {s:?} is not a non-negative number (expected \"frame;frame;...;leaf VALUE\")"
        ));
    }
    int.parse::<i64>()
        .map_err(|_| format!("sample value {s} is past the 64-bit limit"))
}

/// Writes one sample type of a profile as folded stacks: root first,
/// inlined frames expanded, identical stacks summed (wrapping, as Go's
/// `int64`), zero sums left out, lines sorted — what `go tool pprof -raw`
/// folded by `fold_raw.py` gives. A location without lines is written as
/// its address (`0x4a1f20`). Samples with no frames are left out: the
/// format cannot hold an empty stack. An out-of-range `sample_index`
/// writes nothing.
pub fn write(p: &Profile, sample_index: usize) -> String {
    let functions: HashMap<u64, &str> = p
        .function
        .iter()
        .map(|f| (f.id, p.string(f.name)))
        .collect();
    let locations: HashMap<u64, _> = p.location.iter().map(|l| (l.id, l)).collect();
    let mut sums: BTreeMap<String, i64> = BTreeMap::new();
    let mut stack = String::new();
    for s in &p.sample {
        let Some(&v) = s.value.get(sample_index) else {
            continue;
        };
        stack.clear();
        let mut frames = 0usize;
        let mut push = |name: &str| {
            // Count frames rather than test `stack.is_empty()`: a root
            // frame may have an empty name (`;b` is "" then "b").
            if frames > 0 {
                stack.push(';');
            }
            stack.push_str(name);
            frames += 1;
        };
        for id in s.location_id.iter().rev() {
            let Some(loc) = locations.get(id) else {
                continue;
            };
            if loc.line.is_empty() {
                push(&format!("0x{:x}", loc.address));
            }
            for line in loc.line.iter().rev() {
                push(functions.get(&line.function_id).copied().unwrap_or(""));
            }
        }
        if frames == 0 {
            continue;
        }
        let sum = sums.entry(stack.clone()).or_insert(0);
        *sum = sum.wrapping_add(v);
    }
    write_lines(&sums)
}

/// Folded lines `stack value`, one per stack with a non-zero sum, in the
/// map's (sorted) order, each ending in a newline.
pub fn write_lines(sums: &BTreeMap<String, i64>) -> String {
    let mut out = String::new();
    for (stack, v) in sums {
        if *v != 0 {
            out.push_str(stack);
            out.push(' ');
            out.push_str(&v.to_string());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(parse_value("42"), Ok(42));
        assert_eq!(parse_value("42.9"), Ok(42));
        assert_eq!(parse_value("0"), Ok(0));
        assert!(parse_value("-3").unwrap_err().contains("negative"));
        assert!(
            parse_value("9223372036854775808")
                .unwrap_err()
                .contains("64-bit")
        );
        assert!(parse_value("x1").is_err());
        assert!(parse_value(".5").is_err());
        assert!(parse_value("").is_err());
        assert!(parse_value("1e3").is_err());
    }

    #[test]
    fn lines_are_counted_from_one() {
        assert_eq!(line_of(b"a\nb\nc", 0), 1);
        assert_eq!(line_of(b"a\nb\nc", 2), 2);
        assert_eq!(line_of(b"a\nb\nc", 99), 3);
    }
}
