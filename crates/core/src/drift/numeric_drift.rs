//! A numeric feature against its reference: the test the policy picks (KS and Wasserstein on
//! the values: the reference's sample or quantile sketch against the window's row sample, or
//! Wasserstein against the window's counts between the sketch points; the binned tests over
//! value bins when the feature is discrete, else over the reference's deciles), and its plot.

use super::binned::{binned_outcome, decile_bins, value_bins};
use super::common::{Outcome, finite};
use super::feature_drift::{finish, reference_side, skipped};
use super::ks::{ks_2samp_sorted, ks_sketch_vs_sample};
use super::plot::numeric_plot;
use super::policy::{DriftPolicy, FeatureFacts, StatTest};
use super::reference::{ReferenceFeature, reference_support};
use super::report::{FeatureDrift, SideStats};
use super::summary::NumericSummary;
use super::wasserstein::{
    normed, wasserstein_sketch_vs_counts, wasserstein_sketch_vs_sample, wasserstein_sorted,
};
use crate::profile::NumericProfile;
use crate::schema::FeatureKind;

/// A numeric feature's values in the window's row sample.
pub(super) struct WindowSample {
    pub(super) sorted: Vec<f64>,
    /// Whether the sample holds every row of the window.
    pub(super) complete: bool,
}

pub(super) fn numeric_drift(
    rf: &ReferenceFeature,
    p: &NumericProfile,
    s: &NumericSummary,
    window_sample: WindowSample,
    policy: &DriftPolicy,
) -> FeatureDrift {
    let reference = reference_side(&rf.profile);
    let current = SideStats {
        count: s.count,
        missing_rate: s.missing_rate(),
        mean: s.mean(),
        std: s.std(),
    };
    if p.count == 0 || s.count == 0 {
        let note = if p.count == 0 {
            "the reference has no present values"
        } else {
            "the window has no present values"
        };
        return skipped(
            &p.name,
            FeatureKind::Numeric,
            reference,
            current,
            note,
            policy,
        );
    }
    let cap = policy.discrete_max_unique;
    let support = reference_support(rf, cap);
    let current_distinct = s.distinct_values();
    let discrete = match (&support, &current_distinct) {
        (Some(r), Some(c)) => {
            let mut values: Vec<f64> = r.iter().map(|x| x.0).chain(c.iter().map(|x| x.0)).collect();
            values.sort_by(f64::total_cmp);
            values.dedup();
            (values.len() <= cap).then_some(values)
        }
        _ => None,
    };
    let facts = FeatureFacts {
        numeric: true,
        reference_count: p.count,
        distinct: discrete.as_ref().map(Vec::len),
    };
    let (test, threshold) = policy.choose(&p.name, facts);
    let sample = window_sample.sorted;
    let binned = match (&discrete, &support, &current_distinct) {
        (Some(values), Some(r), Some(c)) => value_bins(values, r, c),
        _ => decile_bins(p, s, &sample),
    };
    let mut notes = Vec::new();
    let outcome = match test {
        StatTest::Ks => {
            let result = match &rf.sample {
                Some(reference_sample) => ks_2samp_sorted(reference_sample, &sample),
                None => {
                    notes.push(
                        "KS against the reference's 201-point quantile sketch (D within ~0.005)"
                            .to_owned(),
                    );
                    ks_sketch_vs_sample(&p.sketch, p.count, &sample)
                }
            };
            match result {
                Some(r) => Outcome::p_value(r.statistic, r.p_value),
                None => Outcome::not_applicable("KS needs values on both sides".into()),
            }
        }
        StatTest::Wasserstein => {
            let counted = s
                .quantile_counts
                .as_ref()
                .filter(|q| q.points == p.sketch && rf.sample.is_none());
            let w = match (&rf.sample, counted) {
                (Some(reference_sample), _) => wasserstein_sorted(reference_sample, &sample),
                (None, Some(q)) => wasserstein_sketch_vs_counts(
                    &p.sketch,
                    &q.counts,
                    q.below_distance,
                    q.above_distance,
                ),
                (None, None) => wasserstein_sketch_vs_sample(&p.sketch, &sample),
            };
            Outcome::distance(finite(normed(w, p.std)))
        }
        other => binned_outcome(other, &binned, p.count as f64),
    };
    let used_counts = test == StatTest::Wasserstein
        && rf.sample.is_none()
        && s.quantile_counts
            .as_ref()
            .is_some_and(|q| q.points == p.sketch);
    if test.needs_numeric_values() && !window_sample.complete && !used_counts {
        notes.push(format!(
            "{} on a uniform sample of {} of the window's {} values",
            test.label(),
            sample.len(),
            s.count
        ));
    }
    let distribution = if discrete.is_some() {
        binned.distribution()
    } else {
        numeric_plot(rf, p, &sample)
    };
    finish(
        &p.name,
        FeatureKind::Numeric,
        test,
        threshold,
        outcome,
        &binned,
        reference,
        current,
        None,
        notes,
        distribution,
        policy,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::summary::FeatureLayout;
    use crate::profile::FeatureProfile;

    fn summary_of(values: &[f64]) -> NumericSummary {
        let mut s = NumericSummary::new(&FeatureLayout::numeric("x"));
        values.iter().for_each(|&x| s.push(x));
        s
    }

    /// A reference built from data: its values, sorted, as the sample.
    fn reference_of(values: &[f64], distinct: Option<Vec<(f64, f64)>>) -> ReferenceFeature {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        ReferenceFeature {
            profile: FeatureProfile::Numeric(NumericProfile::from_values("x", values)),
            sample: Some(sorted),
            distinct,
        }
    }

    fn drift(
        rf: &ReferenceFeature,
        s: &NumericSummary,
        sample: &[f64],
        complete: bool,
    ) -> FeatureDrift {
        let FeatureProfile::Numeric(p) = &rf.profile else {
            panic!("a numeric reference")
        };
        let window_sample = WindowSample {
            sorted: sample.to_vec(),
            complete,
        };
        numeric_drift(rf, p, s, window_sample, &DriftPolicy::default())
    }

    fn repeated(counts: &[(f64, usize)]) -> Vec<f64> {
        counts
            .iter()
            .flat_map(|&(v, n)| std::iter::repeat_n(v, n))
            .collect()
    }

    #[test]
    fn a_feature_with_few_values_is_tested_over_one_bin_per_value() {
        // Reference 0, 1, 2 in shares 1/4, 1/4, 1/2; window 1/4, 1/2, 1/4 (40 values each).
        let reference = repeated(&[(0.0, 10), (1.0, 10), (2.0, 20)]);
        let rf = reference_of(&reference, Some(vec![(0.0, 0.25), (1.0, 0.25), (2.0, 0.5)]));
        let current = repeated(&[(0.0, 10), (1.0, 20), (2.0, 10)]);
        let f = drift(&rf, &summary_of(&current), &current, true);
        // At most 1,000 reference values, three values in all: chi-square over the 2×3 table
        // [10 10 20; 10 20 10]: X² = 20/3 on 2 degrees of freedom, p = e^(-10/3).
        assert_eq!(f.test, Some(StatTest::ChiSquare));
        let statistic = f.statistic.unwrap_or(f64::NAN);
        assert!((statistic - 20.0 / 3.0).abs() < 1e-12, "{statistic}");
        let p = f.p_value.unwrap_or(f64::NAN);
        assert!((p - (-10.0f64 / 3.0).exp()).abs() < 1e-10, "{p}");
        assert!(f.drifted, "p ≈ 0.036 < 0.05");
        // PSI and Jensen-Shannon over the same value bins.
        let psi = f.psi.unwrap_or(f64::NAN);
        assert!((psi - 0.5 * 2.0f64.ln()).abs() < 1e-12, "{psi}");
        let js = f.jensen_shannon.unwrap_or(f64::NAN);
        let expected_js = (0.25 * (2.0f64 / 3.0).ln() + 0.5 * (4.0f64 / 3.0).ln()).sqrt();
        assert!((js - expected_js).abs() < 1e-12, "{js}");
        // The plot shows the value bins.
        assert_eq!(f.distribution.labels, ["0", "1", "2"]);
        assert_eq!(f.distribution.edges, None);
        assert_eq!(f.distribution.reference, [0.25, 0.25, 0.5]);
        assert_eq!(f.distribution.current, [0.25, 0.5, 0.25]);
        assert_eq!((f.current.count, f.current.mean), (40, Some(1.0)));
        assert!(f.notes.is_empty(), "{:?}", f.notes);
    }

    #[test]
    fn ks_reads_the_reference_sample_when_there_is_one_and_its_sketch_otherwise() {
        // Reference 0..100, window 50..150: the empirical CDFs differ by 1/2 below 50.
        let reference: Vec<f64> = (0..100).map(f64::from).collect();
        let current: Vec<f64> = (50..150).map(f64::from).collect();
        let s = summary_of(&current);
        let exact = drift(&reference_of(&reference, None), &s, &current, true);
        assert_eq!(exact.test, Some(StatTest::Ks));
        assert_eq!(exact.statistic, Some(0.5));
        assert!(exact.p_value.is_some_and(|p| p < 1e-9) && exact.drifted);
        assert!(exact.notes.is_empty(), "{:?}", exact.notes);

        // Without a sample, the sketch's CDF is linear between its points (F(x) = x/99 here):
        // at 99 it reaches 1 where the window's ECDF is 0.49, so D = 0.51.
        let sketch_only = ReferenceFeature {
            sample: None,
            ..reference_of(&reference, None)
        };
        let f = drift(&sketch_only, &s, &current, true);
        assert_eq!(f.test, Some(StatTest::Ks));
        let d = f.statistic.unwrap_or(f64::NAN);
        assert!((d - 0.51).abs() < 1e-12, "{d}");
        assert_eq!(
            f.notes,
            ["KS against the reference's 201-point quantile sketch (D within ~0.005)"]
        );
    }

    #[test]
    fn a_test_on_a_partial_sample_says_how_many_values_it_read() {
        let reference: Vec<f64> = (0..100).map(f64::from).collect();
        // The window saw 1,000 values; its sample kept 100 of them.
        let sample: Vec<f64> = (50..150).map(f64::from).collect();
        let all: Vec<f64> = (0..10).flat_map(|_| sample.iter().copied()).collect();
        let f = drift(
            &reference_of(&reference, None),
            &summary_of(&all),
            &sample,
            false,
        );
        assert_eq!(f.test, Some(StatTest::Ks));
        assert_eq!(f.current.count, 1000);
        assert_eq!(
            f.notes,
            ["K-S p-value on a uniform sample of 100 of the window's 1000 values"]
        );
    }

    #[test]
    fn a_side_without_present_values_leaves_the_feature_untested() {
        let values = [1.0, 2.0, 3.0];
        let no_reference = drift(
            &reference_of(&[], None),
            &summary_of(&values),
            &values,
            true,
        );
        assert_eq!(no_reference.test, None);
        assert_eq!(no_reference.notes, ["the reference has no present values"]);
        let no_window = drift(
            &reference_of(&values, None),
            &summary_of(&[f64::NAN]),
            &[],
            true,
        );
        assert_eq!(no_window.test, None);
        assert_eq!(no_window.notes, ["the window has no present values"]);
        assert_eq!(no_window.current.missing_rate, 1.0);
    }
}
