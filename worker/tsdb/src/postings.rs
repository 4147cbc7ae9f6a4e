//! Sorted postings lists and Prometheus's matcher → postings planning.
//!
//! `postings_for_matchers` follows Prometheus's `PostingsForMatchers`: matchers
//! that cannot match the empty string select by union of the postings of the
//! label values they match; matchers that do match it (`l=""`, `l!="x"`,
//! `l=~"x|"`) become subtractions, so series without the label are kept, as
//! PromQL requires. Only label values are scanned (in memory), never series.

use emberlens_model::{MatchOp, Matcher};

use crate::error::TsdbError;
use crate::index::IndexReader;
use crate::source::ByteSource;

/// Intersection of sorted lists.
pub fn intersect(lists: &[Vec<u32>]) -> Vec<u32> {
    let Some((shortest, _)) = lists.iter().enumerate().min_by_key(|(_, l)| l.len()) else {
        return Vec::new();
    };
    let mut out = lists[shortest].clone();
    for (i, l) in lists.iter().enumerate() {
        if i == shortest {
            continue;
        }
        let mut j = 0;
        out.retain(|&x| {
            while j < l.len() && l[j] < x {
                j += 1;
            }
            j < l.len() && l[j] == x
        });
    }
    out
}

/// Union of sorted lists.
pub fn merge(lists: Vec<Vec<u32>>) -> Vec<u32> {
    let mut out: Vec<u32> = lists.into_iter().flatten().collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// `a` without the elements of `b` (both sorted).
pub fn without(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut j = 0;
    a.iter()
        .copied()
        .filter(|&x| {
            while j < b.len() && b[j] < x {
                j += 1;
            }
            !(j < b.len() && b[j] == x)
        })
        .collect()
}

/// Postings of the series having `m.name` set to a value that `m` accepts
/// (`accepted`) or rejects (`!accepted`).
fn by_values<S: ByteSource>(
    ix: &IndexReader<S>,
    m: &Matcher,
    accepted: bool,
) -> Result<Vec<u32>, TsdbError> {
    if accepted && m.op == MatchOp::Equal {
        return ix.postings(&m.name, &m.value);
    }
    let values: Vec<String> = ix
        .label_values(&m.name)
        .filter(|v| m.matches(v) == accepted)
        .map(str::to_string)
        .collect();
    let mut lists = Vec::with_capacity(values.len());
    for v in values {
        lists.push(ix.postings(&m.name, &v)?);
    }
    Ok(merge(lists))
}

fn inverse(m: &Matcher) -> Matcher {
    let op = match m.op {
        MatchOp::Equal => MatchOp::NotEqual,
        MatchOp::NotEqual => MatchOp::Equal,
        MatchOp::RegexMatch => MatchOp::RegexNoMatch,
        MatchOp::RegexNoMatch => MatchOp::RegexMatch,
    };
    // Re-compiling a pattern that already compiled cannot fail; fall back to the
    // original (which keeps the selection conservative) if it somehow does.
    Matcher::new(&m.name, op, &m.value).unwrap_or_else(|_| m.clone())
}

/// The series of the index matching all `matchers`, sorted.
pub fn postings_for_matchers<S: ByteSource>(
    ix: &IndexReader<S>,
    matchers: &[Matcher],
) -> Result<Vec<u32>, TsdbError> {
    let must_be_set: Vec<&str> = matchers
        .iter()
        .filter(|m| !m.matches(""))
        .map(|m| m.name.as_str())
        .collect();
    let mut its: Vec<Vec<u32>> = Vec::new();
    let mut not_its: Vec<Vec<u32>> = Vec::new();
    for m in matchers {
        let matches_empty = m.matches("");
        let is_not = matches!(m.op, MatchOp::NotEqual | MatchOp::RegexNoMatch);
        if is_not && matches_empty {
            // l!="x": subtract the series with l="x" (via the inverse, so an
            // equality uses its postings list directly).
            not_its.push(by_values(ix, &inverse(m), true)?);
        } else if is_not {
            // l!="" or l!~"|x": the series with l set to something m accepts.
            its.push(by_values(ix, m, true)?);
        } else if matches_empty {
            if must_be_set.contains(&m.name.as_str()) {
                its.push(by_values(ix, m, true)?);
            } else {
                // l="" or l=~"x|": subtract the series whose l m rejects.
                not_its.push(by_values(ix, m, false)?);
            }
        } else {
            its.push(by_values(ix, m, true)?);
        }
        if its.last().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
    }
    if its.is_empty() {
        its.push(ix.all_postings()?);
    }
    let base = intersect(&its);
    if not_its.is_empty() {
        return Ok(base);
    }
    Ok(without(&base, &merge(not_its)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        assert_eq!(
            intersect(&[vec![1, 3, 5, 7], vec![3, 4, 5], vec![0, 3, 5, 9]]),
            [3, 5]
        );
        assert_eq!(merge(vec![vec![1, 5], vec![2, 5, 9], vec![]]), [1, 2, 5, 9]);
        assert_eq!(without(&[1, 2, 3, 4], &[2, 4, 6]), [1, 3]);
        assert!(intersect(&[]).is_empty());
    }
}
