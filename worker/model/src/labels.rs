//! Label sets: sorted by name, unique names, no empty values.

use std::fmt;
use std::sync::Arc;

/// The label that holds a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label pair.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    /// Label name, e.g. `job`.
    pub name: String,
    /// Label value; never empty inside a [`Labels`].
    pub value: String,
}

/// A set of labels identifying one series.
///
/// Invariants: sorted by name, names unique, no empty values (an empty value
/// means "absent", as in Prometheus). The derived ordering is Prometheus's
/// series order: compare label by label, name then value.
///
/// The pairs are shared (`Arc`): a clone is a reference-count increment,
/// which the query engine relies on (it copies a series' labels into every
/// step's result).
#[derive(Clone, Debug, Default, Eq, PartialOrd, Ord)]
pub struct Labels(Arc<[Label]>);

/// Hashes the pairs (as the derived impl would), consistent with `eq`.
impl std::hash::Hash for Labels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

/// Equal when the pairs are; two handles to the same pairs are equal without
/// comparing them (stores and scrape loops look series up by labels they
/// handed out themselves).
impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Labels {
    /// Builds a label set from pairs in any order. Empty values are dropped;
    /// when a name repeats, the last value wins.
    pub fn from_pairs<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Self
    where
        N: Into<String>,
        V: Into<String>,
    {
        let mut v: Vec<Label> = pairs
            .into_iter()
            .map(|(n, v)| Label {
                name: n.into(),
                value: v.into(),
            })
            .collect();
        // Stable sort keeps insertion order among equal names, so `dedup` can
        // keep the last one after a reverse.
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v.reverse();
        v.dedup_by(|a, b| a.name == b.name);
        v.reverse();
        v.retain(|l| !l.value.is_empty());
        Labels(v.into())
    }

    /// The value of `name`, or `""` when absent.
    pub fn get(&self, name: &str) -> &str {
        match self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) => &self.0[i].value,
            Err(_) => "",
        }
    }

    /// The metric name (`__name__`), or `""`.
    pub fn metric_name(&self) -> &str {
        // `__name__` sorts before every lowercase name, so it is nearly
        // always first; this runs for every series at every query step.
        match self.0.first() {
            Some(l) if l.name == METRIC_NAME => &l.value,
            _ => self.get(METRIC_NAME),
        }
    }

    /// An identity for the shared pairs: two label sets with the same id
    /// are equal (the converse does not hold). Only meaningful while one of
    /// them is alive, since the address may be reused afterwards.
    pub fn shared_id(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// The same labels in a new allocation of their own (a different
    /// [`Self::shared_id`]): for label sets that threads clone and drop
    /// heavily, so each thread counts references on its own cache lines.
    pub fn unshared(&self) -> Labels {
        Labels(self.0.iter().cloned().collect())
    }

    /// The labels in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set has no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A copy without the labels named in `names`.
    pub fn without<S: AsRef<str>>(&self, names: &[S]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| !names.iter().any(|n| n.as_ref() == l.name))
                .cloned()
                .collect(),
        )
    }

    /// A copy with only the labels named in `names`.
    pub fn keep<S: AsRef<str>>(&self, names: &[S]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| names.iter().any(|n| n.as_ref() == l.name))
                .cloned()
                .collect(),
        )
    }

    /// A copy with `name` set to `value` (removed when `value` is empty).
    pub fn with(&self, name: &str, value: &str) -> Labels {
        let mut v = self.0.to_vec();
        match v.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                v.remove(i);
            }
            Ok(i) => v[i].value = value.to_string(),
            Err(_) if value.is_empty() => {}
            Err(i) => v.insert(
                i,
                Label {
                    name: name.to_string(),
                    value: value.to_string(),
                },
            ),
        }
        Labels(v.into())
    }
}

/// Prometheus's text form: `name{a="1", b="2"}`, or `{a="1"}` without a name.
/// Values are escaped like Go's `strconv.Quote` for `\`, `"` and newlines.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name();
        f.write_str(name)?;
        let mut rest = self.0.iter().filter(|l| l.name != METRIC_NAME).peekable();
        if rest.peek().is_none() && !name.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        let mut first = true;
        for l in rest {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}=\"", l.name)?;
            for c in l.value.chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '"' => f.write_str("\\\"")?,
                    '\n' => f.write_str("\\n")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_and_without_empty_values() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("b", "3"), ("c", "")]);
        let pairs: Vec<_> = l.iter().map(|l| (&*l.name, &*l.value)).collect();
        assert_eq!(pairs, [("a", "1"), ("b", "3")]);
        assert_eq!(l.get("c"), "");
    }

    #[test]
    fn display_like_prometheus() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a\"b"), ("instance", "x")]);
        assert_eq!(l.to_string(), r#"up{instance="x", job="a\"b"}"#);
        assert_eq!(Labels::from_pairs([("__name__", "up")]).to_string(), "up");
        assert_eq!(Labels::from_pairs([("a", "1")]).to_string(), r#"{a="1"}"#);
    }

    #[test]
    fn with_sets_and_removes() {
        let l = Labels::from_pairs([("a", "1")]);
        assert_eq!(l.with("b", "2").get("b"), "2");
        assert_eq!(l.with("a", "").len(), 0);
        assert_eq!(l.with("a", "9").get("a"), "9");
    }
}
