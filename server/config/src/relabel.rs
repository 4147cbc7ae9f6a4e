//! Prometheus's relabeling (`relabel.Process`), over [`Labels`].
//!
//! Each rule reads the values of its `source_labels` (an absent label reads
//! as `""`), joins them with `separator` and acts on the joined value:
//!
//! - `replace`: when the fully anchored `regex` matches, `target_label` and
//!   `replacement` are expanded with the match (`$1`, `${1}`, `$name`,
//!   `${name}`, `$$` for a dollar, as Go's `Regexp.Expand`); an expanded
//!   target that is not a valid label name does nothing, an empty expanded
//!   value deletes the target label. No match: nothing changes.
//! - `keep` / `drop`: the label set is dropped unless / if `regex` matches.
//! - `keepequal` / `dropequal`: dropped unless / if the joined value equals
//!   the value of `target_label`.
//! - `hashmod`: `target_label` = the last 8 bytes of the MD5 of the joined
//!   value, read big-endian as a `u64`, modulo `modulus`.
//! - `lowercase` / `uppercase`: `target_label` = the joined value's case
//!   mapped (char by char, like Go's `strings.ToLower`).
//! - `labelmap`: every label whose name matches `regex` is copied to the name
//!   `replacement` expands to (the source label stays).
//! - `labeldrop` / `labelkeep`: labels whose names match / don't match are
//!   removed.
//!
//! Rules run in order on one working set; a dropping rule ends the run.
//! Labels starting with `__` are kept: dropping them (after target
//! relabeling) is the caller's business. Labels whose value ends up empty are
//! absent from the result ([`Labels`] holds no empty values).
//!
//! Known differences from Go, all at edges no real config reaches: `labelmap`
//! visits the working set in name order (Go visits the original labels, then
//! the ones earlier rules added, in the order they were added), and skips a
//! mapped name that expands to `""` (Go would set a label with an empty
//! name); Rust's `\w`, `\d`, `\s` and `\b` are Unicode-aware where RE2's are
//! ASCII-only.

use std::collections::BTreeMap;
use std::fmt;

use emberlens_model::Labels;
use md5::{Digest, Md5};
use regex::{Captures, Regex};

/// What a relabeling rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Regex replacement into `target_label` (the default).
    Replace,
    /// Drop the label set unless the regex matches.
    Keep,
    /// Drop the label set if the regex matches.
    Drop,
    /// Drop the label set unless the joined value equals `target_label`'s.
    KeepEqual,
    /// Drop the label set if the joined value equals `target_label`'s.
    DropEqual,
    /// Set `target_label` to the MD5-based hash of the joined value mod `modulus`.
    HashMod,
    /// Copy labels whose names match to the expanded `replacement` name.
    LabelMap,
    /// Remove labels whose names match.
    LabelDrop,
    /// Remove labels whose names don't match.
    LabelKeep,
    /// Set `target_label` to the joined value in lower case.
    Lowercase,
    /// Set `target_label` to the joined value in upper case.
    Uppercase,
}

impl Action {
    /// Parses an action name, case-insensitively as Prometheus does.
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return None,
        })
    }

    /// The name used in configuration files.
    pub fn name(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A relabeling regex: compiled fully anchored (`^(?:…)$`), printed as written.
#[derive(Clone, Debug)]
pub struct RelabelRegex {
    source: String,
    re: Regex,
}

impl RelabelRegex {
    /// Compiles `source` anchored at both ends.
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        Ok(RelabelRegex {
            source: source.to_string(),
            re: Regex::new(&format!("^(?:{source})$"))?,
        })
    }

    /// The pattern as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `s` matches.
    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// The default regex, `(.*)`.
pub const DEFAULT_REGEX: &str = "(.*)";
/// The default separator, `;`.
pub const DEFAULT_SEPARATOR: &str = ";";
/// The default replacement, `$1`.
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// One relabeling rule, validated (see `Config` parsing for the checks).
#[derive(Clone, Debug, PartialEq)]
pub struct RelabelConfig {
    /// Labels whose values are joined.
    pub source_labels: Vec<String>,
    /// Put between the joined values.
    pub separator: String,
    /// Matched against the joined value (or label names for the label* actions).
    pub regex: RelabelRegex,
    /// For `hashmod`.
    pub modulus: u64,
    /// The label written or compared.
    pub target_label: String,
    /// The value template for `replace`, the name template for `labelmap`.
    pub replacement: String,
    /// What the rule does.
    pub action: Action,
}

impl RelabelConfig {
    /// A rule with Prometheus's defaults (`replace`, `;`, `(.*)`, `$1`).
    pub fn new(action: Action) -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: DEFAULT_SEPARATOR.to_string(),
            // The default pattern always compiles.
            regex: default_regex(),
            modulus: 0,
            target_label: String::new(),
            replacement: DEFAULT_REPLACEMENT.to_string(),
            action,
        }
    }
}

#[allow(clippy::unwrap_used)] // a constant pattern, covered by every test
fn default_regex() -> RelabelRegex {
    RelabelRegex::new(DEFAULT_REGEX).unwrap()
}

/// Applies `rules` in order. `None` when a rule dropped the label set.
pub fn process(labels: &Labels, rules: &[RelabelConfig]) -> Option<Labels> {
    let mut set: BTreeMap<String, String> = labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect();
    for rule in rules {
        if !apply(rule, &mut set) {
            return None;
        }
    }
    Some(Labels::from_pairs(set))
}

fn set_or_delete(set: &mut BTreeMap<String, String>, name: &str, value: String) {
    if value.is_empty() {
        set.remove(name);
    } else {
        set.insert(name.to_string(), value);
    }
}

fn apply(rule: &RelabelConfig, set: &mut BTreeMap<String, String>) -> bool {
    let value = rule
        .source_labels
        .iter()
        .map(|n| set.get(n).map_or("", String::as_str))
        .collect::<Vec<_>>()
        .join(&rule.separator);
    let target_value = || set.get(&rule.target_label).map_or("", String::as_str);
    match rule.action {
        Action::Drop => return !rule.regex.is_match(&value),
        Action::Keep => return rule.regex.is_match(&value),
        Action::DropEqual => return target_value() != value,
        Action::KeepEqual => return target_value() == value,
        Action::Replace => {
            let Some(caps) = rule.regex.re.captures(&value) else {
                return true;
            };
            let target = expand(&rule.regex.re, &caps, &rule.target_label);
            if !is_valid_label_name(&target) {
                return true;
            }
            let res = expand(&rule.regex.re, &caps, &rule.replacement);
            set_or_delete(set, &target, res);
        }
        Action::Lowercase => {
            let v: String = value.chars().flat_map(char::to_lowercase).collect();
            set_or_delete(set, &rule.target_label, v);
        }
        Action::Uppercase => {
            let v: String = value.chars().flat_map(char::to_uppercase).collect();
            set_or_delete(set, &rule.target_label, v);
        }
        Action::HashMod => {
            let sum = Md5::digest(value.as_bytes());
            let mut last = [0u8; 8];
            last.copy_from_slice(&sum[8..16]);
            // Validation rejects a zero modulus; guard anyway, never divide by 0.
            let m = u64::from_be_bytes(last) % rule.modulus.max(1);
            set.insert(rule.target_label.clone(), m.to_string());
        }
        Action::LabelMap => {
            let snapshot: Vec<(String, String)> =
                set.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
            for (name, v) in snapshot {
                if let Some(caps) = rule.regex.re.captures(&name) {
                    let new_name = expand(&rule.regex.re, &caps, &rule.replacement);
                    if !new_name.is_empty() {
                        set.insert(new_name, v);
                    }
                }
            }
        }
        Action::LabelDrop => set.retain(|n, _| !rule.regex.is_match(n)),
        Action::LabelKeep => set.retain(|n, _| rule.regex.is_match(n)),
    }
    true
}

/// Whether `name` is a valid (legacy, ASCII) Prometheus label name:
/// `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Expands `template` with a match, as Go's `Regexp.ExpandString`.
///
/// `$$` is a dollar; `$name` takes the longest run of letters, digits and
/// `_` (so `$1x` names group `1x`, use `${1}x`); a name of digits without a
/// leading zero (below 10^8) is a group number; an unknown or unmatched
/// group expands to nothing; a `$` not followed by a valid reference is kept
/// as text.
pub fn expand(re: &Regex, caps: &Captures<'_>, template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let Some((name, after)) = extract_ref(rest) else {
            out.push('$');
            continue;
        };
        rest = after;
        let group = match group_number(name) {
            Some(n) => caps.get(n),
            None => re
                .capture_names()
                .position(|n| n == Some(name))
                .and_then(|i| caps.get(i)),
        };
        if let Some(m) = group {
            out.push_str(m.as_str());
        }
    }
    out.push_str(rest);
    out
}

/// The reference after a `$`: its name and the text after it.
fn extract_ref(s: &str) -> Option<(&str, &str)> {
    let (body, braced) = match s.strip_prefix('{') {
        Some(b) => (b, true),
        None => (s, false),
    };
    let end = body
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    let after = &body[end..];
    if braced {
        let after = after.strip_prefix('}')?;
        return Some((name, after));
    }
    Some((name, after))
}

fn group_number(name: &str) -> Option<usize> {
    if !name.bytes().all(|b| b.is_ascii_digit()) || (name.len() > 1 && name.starts_with('0')) {
        return None;
    }
    let n: usize = name.parse().ok()?;
    (n < 100_000_000).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    fn rule(action: Action, f: impl FnOnce(&mut RelabelConfig)) -> RelabelConfig {
        let mut r = RelabelConfig::new(action);
        f(&mut r);
        r
    }

    fn src(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn re(s: &str) -> RelabelRegex {
        RelabelRegex::new(s).unwrap()
    }

    /// Runs `rules` over `input`, printing the result or `dropped`.
    fn check(input: &[(&str, &str)], rules: &[RelabelConfig], expect: &str) {
        let got = match process(&labels(input), rules) {
            Some(l) => l.to_string(),
            None => "dropped".to_string(),
        };
        assert_eq!(got, expect);
    }

    #[test]
    fn replace_defaults_copy_the_joined_value() {
        let r = rule(Action::Replace, |r| {
            r.source_labels = src(&["a", "b"]);
            r.target_label = "c".into();
        });
        check(
            &[("a", "x"), ("b", "y")],
            &[r],
            r#"{a="x", b="y", c="x;y"}"#,
        );
    }

    #[test]
    fn replace_with_groups_names_and_literal_dollars() {
        let r = rule(Action::Replace, |r| {
            r.source_labels = src(&["__address__"]);
            r.regex = re(r"(?P<host>[^:]+):(\d+)");
            r.target_label = "inst_${2}".into();
            r.replacement = "$host-$2-$$-${host}x-$9-$1x".into();
        });
        check(
            &[("__address__", "db:5432")],
            &[r],
            r#"{__address__="db:5432", inst_5432="db-5432-$-dbx--"}"#,
        );
    }

    #[test]
    fn replace_without_match_changes_nothing() {
        let r = rule(Action::Replace, |r| {
            r.source_labels = src(&["a"]);
            r.regex = re("b.*");
            r.target_label = "t".into();
            r.replacement = "new".into();
        });
        check(&[("a", "abc"), ("t", "old")], &[r], r#"{a="abc", t="old"}"#);
    }

    #[test]
    fn regex_is_fully_anchored() {
        let r = rule(Action::Keep, |r| {
            r.source_labels = src(&["a"]);
            r.regex = re("b|c");
        });
        check(&[("a", "abc")], std::slice::from_ref(&r), "dropped");
        check(&[("a", "c")], &[r], r#"{a="c"}"#);
    }

    #[test]
    fn replace_to_empty_deletes_and_from_absent_sets() {
        let del = rule(Action::Replace, |r| {
            r.source_labels = src(&["missing"]);
            r.target_label = "a".into();
        });
        check(&[("a", "1")], &[del], "{}");
        let set = rule(Action::Replace, |r| {
            r.target_label = "env".into();
            r.replacement = "prod".into();
        });
        check(&[("a", "1")], &[set], r#"{a="1", env="prod"}"#);
    }

    #[test]
    fn replace_into_invalid_expanded_target_is_skipped() {
        let r = rule(Action::Replace, |r| {
            r.source_labels = src(&["a"]);
            r.target_label = "$1".into();
        });
        check(&[("a", "9bad")], std::slice::from_ref(&r), r#"{a="9bad"}"#);
        check(&[("a", "good")], &[r], r#"{a="good", good="good"}"#);
    }

    #[test]
    fn keep_and_drop_on_joined_values_with_separator() {
        let keep = rule(Action::Keep, |r| {
            r.source_labels = src(&["a", "b"]);
            r.separator = "|".into();
            r.regex = re("x\\|y");
        });
        check(
            &[("a", "x"), ("b", "y")],
            std::slice::from_ref(&keep),
            r#"{a="x", b="y"}"#,
        );
        check(&[("a", "x")], &[keep], "dropped");
        let drop = rule(Action::Drop, |r| {
            r.source_labels = src(&["__name__"]);
            r.regex = re("go_.*");
        });
        check(
            &[("__name__", "go_gc")],
            std::slice::from_ref(&drop),
            "dropped",
        );
        check(&[("__name__", "up")], &[drop], "up");
    }

    #[test]
    fn default_keep_regex_matches_empty_value() {
        // `(.*)` matches "", so an absent source label is kept.
        let keep = rule(Action::Keep, |r| r.source_labels = src(&["nope"]));
        check(&[("a", "1")], &[keep], r#"{a="1"}"#);
    }

    #[test]
    fn keepequal_and_dropequal_compare_with_target() {
        let keepeq = rule(Action::KeepEqual, |r| {
            r.source_labels = src(&["port"]);
            r.target_label = "expected".into();
        });
        check(
            &[("port", "80"), ("expected", "80")],
            std::slice::from_ref(&keepeq),
            r#"{expected="80", port="80"}"#,
        );
        check(
            &[("port", "80"), ("expected", "81")],
            std::slice::from_ref(&keepeq),
            "dropped",
        );
        // Both absent: "" == "".
        check(&[("x", "1")], &[keepeq], r#"{x="1"}"#);
        let dropeq = rule(Action::DropEqual, |r| {
            r.source_labels = src(&["a"]);
            r.target_label = "b".into();
        });
        check(
            &[("a", "1"), ("b", "1")],
            std::slice::from_ref(&dropeq),
            "dropped",
        );
        check(&[("a", "1"), ("b", "2")], &[dropeq], r#"{a="1", b="2"}"#);
    }

    #[test]
    fn hashmod_uses_last_eight_bytes_of_md5() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e; last 8 bytes
        // e9800998ecf8427e = 16825458760271544958.
        let r = |m| {
            rule(Action::HashMod, |r| {
                r.source_labels = src(&["a"]);
                r.target_label = "shard".into();
                r.modulus = m;
            })
        };
        check(&[("b", "1")], &[r(1000)], r#"{b="1", shard="958"}"#);
        check(
            &[("b", "1")],
            &[r(u64::MAX)],
            r#"{b="1", shard="16825458760271544958"}"#,
        );
        // md5("abc") = 900150983cd24fb0d6963f7d28e17f72; last 8 bytes
        // d6963f7d28e17f72 = 15462616177412505458 = 7 * 2208945168201786494.
        check(&[("a", "abc")], &[r(7)], r#"{a="abc", shard="0"}"#);
        check(&[("a", "abc")], &[r(1000)], r#"{a="abc", shard="458"}"#);
    }

    #[test]
    fn lowercase_and_uppercase() {
        let lower = rule(Action::Lowercase, |r| {
            r.source_labels = src(&["a", "b"]);
            r.target_label = "l".into();
        });
        check(
            &[("a", "MiXéD"), ("b", "Ä")],
            &[lower],
            r#"{a="MiXéD", b="Ä", l="mixéd;ä"}"#,
        );
        let upper = rule(Action::Uppercase, |r| {
            r.source_labels = src(&["a"]);
            r.target_label = "a".into();
        });
        check(&[("a", "ok")], &[upper], r#"{a="OK"}"#);
    }

    #[test]
    fn labelmap_copies_matching_names() {
        let r = rule(Action::LabelMap, |r| {
            r.regex = re("__meta_docker_container_label_(.+)");
        });
        check(
            &[("__meta_docker_container_label_team", "db"), ("job", "x")],
            &[r],
            r#"{__meta_docker_container_label_team="db", job="x", team="db"}"#,
        );
        let prefix = rule(Action::LabelMap, |r| {
            r.regex = re("(a|b)");
            r.replacement = "copy_${1}".into();
        });
        check(
            &[("a", "1"), ("c", "3")],
            &[prefix],
            r#"{a="1", c="3", copy_a="1"}"#,
        );
    }

    #[test]
    fn labeldrop_and_labelkeep_match_names() {
        let drop = rule(Action::LabelDrop, |r| r.regex = re("tmp_.*"));
        check(
            &[("tmp_a", "1"), ("tmp", "2"), ("b", "3")],
            &[drop],
            r#"{b="3", tmp="2"}"#,
        );
        let keep = rule(Action::LabelKeep, |r| r.regex = re("__name__|job"));
        check(
            &[("__name__", "up"), ("job", "j"), ("x", "1")],
            &[keep],
            r#"up{job="j"}"#,
        );
    }

    #[test]
    fn internal_labels_survive_until_the_caller_drops_them() {
        let r = rule(Action::Replace, |r| {
            r.source_labels = src(&["__address__"]);
            r.target_label = "instance".into();
        });
        check(
            &[("__address__", "h:1"), ("__scheme__", "http")],
            &[r],
            r#"{__address__="h:1", __scheme__="http", instance="h:1"}"#,
        );
    }

    #[test]
    fn rules_run_in_order_and_stop_at_a_drop() {
        let set = rule(Action::Replace, |r| {
            r.target_label = "x".into();
            r.replacement = "1".into();
        });
        let drop = rule(Action::Drop, |r| {
            r.source_labels = src(&["x"]);
            r.regex = re("1");
        });
        check(&[("a", "b")], &[set.clone(), drop.clone()], "dropped");
        check(&[("a", "b")], &[drop, set], r#"{a="b", x="1"}"#);
    }

    #[test]
    fn expand_matches_go_edge_cases() {
        let rx = Regex::new("^(?:(a)(?P<n>b)?(c)?)$").unwrap();
        let caps = rx.captures("a").unwrap();
        let e = |t: &str| expand(&rx, &caps, t);
        assert_eq!(e("$1"), "a");
        assert_eq!(e("${1}x"), "ax");
        assert_eq!(e("$1x"), ""); // group "1x" does not exist
        assert_eq!(e("$n$3"), ""); // unmatched groups
        assert_eq!(e("$01"), ""); // leading zero: a name, not a number
        assert_eq!(e("$"), "$");
        assert_eq!(e("$-"), "$-");
        assert_eq!(e("${1"), "${1");
        assert_eq!(e("$$1"), "$1");
        assert_eq!(e("${0}"), "a");
        assert_eq!(e("$999999999"), "");
    }

    #[test]
    fn label_name_validity() {
        for ok in ["a", "_", "A_9", "__name__"] {
            assert!(is_valid_label_name(ok), "{ok}");
        }
        for bad in ["", "9a", "a-b", "é", "a.b"] {
            assert!(!is_valid_label_name(bad), "{bad}");
        }
    }
}
