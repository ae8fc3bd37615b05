//! Compares a window summary with a reference, into a [`DriftReport`]: every feature (on every
//! core for a large window), then the dataset verdict (the share rule over the tested
//! features) and the predictions. Pure and bounded: the work depends on sample, bin and category
//! sizes only.
//!
//! The parts, private modules of [`drift`](super):
//! - `numeric_drift.rs` and `categorical_drift.rs` test each kind (dispatched here, feature by
//!   feature); `feature_drift.rs` finishes a feature: the verdict, the missing-rate rule, the
//!   notes, and the features that cannot be tested.
//! - `binned.rs`: reference and current over the same bins, and the tests that read bins.
//! - `plot.rs`: the distributions a report plots.
//! - `prediction_drift.rs`: the predicted probabilities.

use super::categorical_drift::categorical_drift;
use super::feature_drift::{reference_side, skipped};
use super::numeric_drift::{WindowSample, numeric_drift};
use super::policy::DriftPolicy;
use super::prediction_drift::prediction_drift;
use super::reference::{DriftReference, ReferenceFeature};
use super::report::{DriftReport, FeatureDrift, SideStats};
use super::summary::{FeatureSummary, WindowSummary};
use crate::profile::{FeatureProfile, ReferenceProfile};
use crate::schema::FeatureKind;

pub use super::categorical_drift::OVERFLOW_LABEL;
pub use super::common::PARALLEL_ROWS;

/// Compares a window with a model's reference profile (as kept in its artifact).
pub fn compare(
    profile: &ReferenceProfile,
    window: &WindowSummary,
    policy: &DriftPolicy,
) -> DriftReport {
    compare_reference(&DriftReference::from_profile(profile), window, policy)
}

/// Compares a window with any reference (a profile, or one built from data).
pub fn compare_reference(
    reference: &DriftReference,
    window: &WindowSummary,
    policy: &DriftPolicy,
) -> DriftReport {
    // Large windows compare large samples (sorting dominates): features on every core.
    let parallel = window.rows >= PARALLEL_ROWS;
    let features: Vec<FeatureDrift> = crate::parallel::map(&reference.features, parallel, |rf| {
        let index = window.feature_index(rf.profile.name());
        let current = index.and_then(|i| window.features.get(i).map(|s| (i, s)));
        compare_feature(rf, window, current, policy)
    });
    let dataset = DatasetDrift::of(&features, policy.dataset_drift_share);
    DriftReport {
        reference_rows: reference.rows,
        current_rows: window.rows,
        tested_features: dataset.tested,
        drifted_features: dataset.drifted,
        drift_share: dataset.share,
        dataset_drift_threshold: policy.dataset_drift_share,
        dataset_drift: dataset.drift,
        prediction: prediction_drift(reference, window, policy),
        features,
    }
}

/// One feature of a window against its reference: the dispatch by kind (`numeric_drift.rs`,
/// `categorical_drift.rs`), or untested (no values, or another kind than the reference's).
fn compare_feature(
    reference: &ReferenceFeature,
    window: &WindowSummary,
    current: Option<(usize, &FeatureSummary)>,
    policy: &DriftPolicy,
) -> FeatureDrift {
    match (&reference.profile, current) {
        (FeatureProfile::Numeric(p), Some((i, FeatureSummary::Numeric(s)))) => {
            let sample = WindowSample {
                sorted: window.sorted_sample(i).unwrap_or_default(),
                complete: window.sample.is_complete(),
            };
            numeric_drift(reference, p, s, sample, policy)
        }
        (FeatureProfile::Categorical(p), Some((_, FeatureSummary::Categorical(s)))) => {
            categorical_drift(p, s, policy)
        }
        (profile, other) => {
            let kind = match profile {
                FeatureProfile::Numeric(_) => FeatureKind::Numeric,
                FeatureProfile::Categorical(_) => FeatureKind::Categorical,
            };
            let note = if other.is_some() {
                "the window holds this feature with another kind than the reference"
            } else {
                "the window has no values for this feature"
            };
            skipped(
                profile.name(),
                kind,
                reference_side(profile),
                empty_side(),
                note,
                policy,
            )
        }
    }
}

fn empty_side() -> SideStats {
    SideStats {
        count: 0,
        missing_rate: 0.0,
        mean: None,
        std: None,
    }
}

/// The dataset verdict: the share rule over the tested features (those with a score that the
/// policy does not ignore).
#[derive(Debug, Clone, Copy, PartialEq)]
struct DatasetDrift {
    tested: usize,
    drifted: usize,
    /// `drifted / tested` (0 when nothing was tested).
    share: f64,
    /// Dataset drift: something was tested and `share >= threshold`.
    drift: bool,
}

impl DatasetDrift {
    fn of(features: &[FeatureDrift], threshold: f64) -> DatasetDrift {
        let tested = features
            .iter()
            .filter(|f| !f.ignored && f.score.is_some())
            .count();
        let drifted = features.iter().filter(|f| f.drifted).count();
        let share = if tested == 0 {
            0.0
        } else {
            drifted as f64 / tested as f64
        };
        DatasetDrift {
            tested,
            drifted,
            share,
            drift: tested > 0 && share >= threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::feature_drift::tests::ignoring;
    use crate::drift::report::Distribution;
    use crate::drift::summary::{FeatureLayout, SummaryConfig};
    use crate::profile::NumericProfile;
    use crate::record::Value;
    use crate::values::Values;

    fn feature(name: &str, score: Option<f64>, drifted: bool, ignored: bool) -> FeatureDrift {
        let side = SideStats {
            count: 10,
            missing_rate: 0.0,
            mean: None,
            std: None,
        };
        FeatureDrift {
            name: name.to_owned(),
            kind: FeatureKind::Numeric,
            test: None,
            statistic: score,
            p_value: None,
            score,
            threshold: 0.1,
            drifted,
            ignored,
            psi: None,
            jensen_shannon: None,
            reference: side.clone(),
            current: side,
            unseen: None,
            notes: Vec::new(),
            distribution: Distribution::default(),
        }
    }

    #[test]
    fn the_dataset_verdict_counts_only_scored_features_the_policy_keeps() {
        let features = [
            feature("drifted", Some(0.5), true, false),
            feature("steady", Some(0.01), false, false),
            feature("ignored", Some(0.9), false, true),
            feature("untested", None, false, false),
        ];
        // Two tested, one drifted: a share of exactly one half.
        let at_half = DatasetDrift::of(&features, 0.5);
        assert_eq!(
            at_half,
            DatasetDrift {
                tested: 2,
                drifted: 1,
                share: 0.5,
                drift: true,
            }
        );
        assert!(!DatasetDrift::of(&features, 0.6).drift);
        // Nothing tested: no share, and no dataset drift at any threshold.
        let none = DatasetDrift::of(&features[2..], 0.0);
        assert_eq!((none.tested, none.share, none.drift), (0, 0.0, false));
    }

    /// A summary of 100 rows: `x` is 0..100, `c` alternates `a` and `b`.
    fn rows(layout: &[FeatureLayout]) -> WindowSummary {
        let mut summary = WindowSummary::new(layout, &[], SummaryConfig::default());
        for i in 0..100 {
            let mut row = Values::new();
            row.insert("x", Value::Number(f64::from(i)));
            row.insert("c", Value::Text(if i % 2 == 0 { "a" } else { "b" }.into()));
            summary.push_values(&row);
        }
        summary
    }

    #[test]
    fn a_window_is_compared_feature_by_feature_in_the_references_order() {
        let layout = [FeatureLayout::numeric("x"), FeatureLayout::categorical("c")];
        let reference = DriftReference::from_summary(&rows(&layout));
        let policy = DriftPolicy::default();

        // The same rows again: every feature tested (KS, then the Z-test), none drifted.
        let same = compare_reference(&reference, &rows(&reference.layout()), &policy);
        let names: Vec<&str> = same.features.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["x", "c"]);
        assert_eq!((same.reference_rows, same.current_rows), (100, 100));
        assert_eq!((same.tested_features, same.drifted_features), (2, 0));
        assert_eq!((same.drift_share, same.dataset_drift), (0.0, false));
        assert_eq!(same.dataset_drift_threshold, 0.5);
        assert!(same.prediction.is_none(), "no predictions on either side");

        // A window without `c`: `c` is reported untested, and the share counts `x` alone.
        let without_c = compare_reference(&reference, &rows(&layout[..1]), &policy);
        let c = &without_c.features[1];
        assert_eq!((c.name.as_str(), c.test, c.score), ("c", None, None));
        assert_eq!(c.notes, ["the window has no values for this feature"]);
        assert_eq!(without_c.tested_features, 1);
    }

    #[test]
    fn a_feature_missing_from_the_window_or_of_another_kind_is_reported_untested() {
        let reference = ReferenceFeature {
            profile: FeatureProfile::Numeric(NumericProfile::from_values("x", &[1.0, 2.0, 3.0])),
            sample: None,
            distinct: None,
        };
        let layout = [FeatureLayout::categorical("x")];
        let window = WindowSummary::new(&layout, &[], SummaryConfig::default());
        let policy = DriftPolicy::default();

        let other_kind =
            compare_feature(&reference, &window, Some((0, &window.features[0])), &policy);
        assert_eq!(
            other_kind.notes,
            ["the window holds this feature with another kind than the reference"]
        );
        // Reported as the reference knows it, with nothing on the window's side.
        assert_eq!(other_kind.kind, FeatureKind::Numeric);
        assert_eq!((other_kind.test, other_kind.score), (None, None));
        assert_eq!(
            (other_kind.reference.count, other_kind.reference.mean),
            (3, Some(2.0))
        );
        assert_eq!(
            (other_kind.current.count, other_kind.current.mean),
            (0, None)
        );
        assert!(!other_kind.drifted && !other_kind.ignored);

        let absent = compare_feature(&reference, &window, None, &ignoring("x"));
        assert_eq!(absent.notes, ["the window has no values for this feature"]);
        assert!(absent.ignored && !absent.drifted);
    }
}
