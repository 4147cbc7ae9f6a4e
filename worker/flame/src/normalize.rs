//! pprof's `-normalize`: before a diff, scale the new profile so that each
//! sample type sums to the base profile's total, so the diff shows changes
//! in shape rather than in volume (a 30 s profile against a 10 s one).
//!
//! Semantics from pprof's `Profile.Normalize` and `ScaleN`: the ratio per
//! sample type is base sum / new sum over all samples (0 when the new sum is
//! 0), each value becomes `round(value × ratio)` (half away from zero), and
//! the scaling happens before any refinement.

use crate::FlameError;
use crate::model::Model;
use crate::top::check_compatible;

impl Model {
    /// Scales this profile's values so that each sample type sums to
    /// `base`'s (pprof's `-normalize`, used with `-diff_base`). The
    /// profiles must have the same sample types.
    pub fn normalize_to(&mut self, base: &Model) -> Result<(), FlameError> {
        check_compatible(self, base)?;
        let n = self.sample_types().len();
        if n == 0 {
            return Ok(());
        }
        let sums = |m: &Model| {
            let mut s = vec![0i64; n];
            for row in m.values.chunks_exact(n) {
                for (acc, v) in s.iter_mut().zip(row) {
                    // Go's int64 sums wrap; so do these.
                    *acc = acc.wrapping_add(*v);
                }
            }
            s
        };
        let (base_sums, own_sums) = (sums(base), sums(self));
        let ratios: Vec<f64> = base_sums
            .iter()
            .zip(&own_sums)
            .map(|(b, o)| if *o == 0 { 0.0 } else { *b as f64 / *o as f64 })
            .collect();
        if ratios.iter().all(|r| *r == 1.0) {
            return Ok(());
        }
        for row in self.values.chunks_exact_mut(n) {
            for (v, r) in row.iter_mut().zip(&ratios) {
                if *r != 1.0 {
                    // `as` saturates where Go's conversion would be undefined.
                    *v = (*v as f64 * r).round() as i64;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(text: &str) -> Model {
        Model::from_any_bytes(text.as_bytes(), 1 << 20).unwrap()
    }

    #[test]
    fn the_new_profile_is_scaled_to_the_bases_total() {
        let mut new = folded("main;a 30\nmain;b 10\n");
        let base = folded("main;a 5\nmain;b 5\n");
        new.normalize_to(&base).unwrap();
        // Ratio 10 / 40: 30 -> 7.5 -> 8 (half away from zero), 10 -> 2.5 -> 3.
        let mut v = new.values.clone();
        v.sort();
        assert_eq!(v, vec![3, 8]);
    }

    #[test]
    fn an_empty_profile_scales_to_zero_and_equal_totals_change_nothing() {
        let mut new = folded("main;a 4\n");
        let same = folded("main;b 4\n");
        new.normalize_to(&same).unwrap();
        assert_eq!(new.values, vec![4]);
        let mut zero = folded("main;a 0\n");
        zero.normalize_to(&same).unwrap();
        assert_eq!(zero.values, vec![0]);
    }
}
