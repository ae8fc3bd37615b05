//! What finishes every feature's [`FeatureDrift`] once its kind's tests (`numeric_drift.rs`,
//! `categorical_drift.rs`) have an [`Outcome`]: the verdict at the policy's threshold, the
//! missing-rate rule, the notes, and the features that cannot be tested (no values, or another
//! kind than the reference's). The dispatch by kind is in `compare.rs`.

use super::binned::Binned;
use super::common::{Outcome, finite};
use super::policy::{DriftPolicy, StatTest};
use super::report::{Distribution, FeatureDrift, SideStats, UnseenCategories};
use crate::profile::FeatureProfile;
use crate::schema::FeatureKind;

pub(super) fn reference_side(profile: &FeatureProfile) -> SideStats {
    match profile {
        FeatureProfile::Numeric(p) => SideStats {
            count: p.count as u64,
            missing_rate: p.missing_rate,
            mean: finite(p.mean),
            std: finite(p.std),
        },
        FeatureProfile::Categorical(p) => SideStats {
            count: p.count as u64,
            missing_rate: p.missing_rate,
            mean: None,
            std: None,
        },
    }
}

pub(super) fn skipped(
    name: &str,
    kind: FeatureKind,
    reference: SideStats,
    current: SideStats,
    note: &str,
    policy: &DriftPolicy,
) -> FeatureDrift {
    FeatureDrift {
        name: name.to_owned(),
        kind,
        test: None,
        statistic: None,
        p_value: None,
        score: None,
        threshold: 0.0,
        drifted: false,
        ignored: policy.ignores(name),
        psi: None,
        jensen_shannon: None,
        reference,
        current,
        unseen: None,
        notes: vec![note.to_owned()],
        distribution: Distribution::default(),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn finish(
    name: &str,
    kind: FeatureKind,
    test: StatTest,
    threshold: f64,
    outcome: Outcome,
    binned: &Binned,
    reference: SideStats,
    current: SideStats,
    unseen: Option<UnseenCategories>,
    mut notes: Vec<String>,
    distribution: Distribution,
    policy: &DriftPolicy,
) -> FeatureDrift {
    let ignored = policy.ignores(name);
    let mut drifted = outcome
        .score
        .is_some_and(|score| test.drifted(score, threshold));
    if let Some(limit) = policy.missing_rate_increase
        && current.missing_rate - reference.missing_rate > limit
    {
        drifted = true;
        notes.push(format!(
            "missing rate rose from {:.3} to {:.3}",
            reference.missing_rate, current.missing_rate
        ));
    }
    if outcome.statistic.is_none() && outcome.score.is_some() {
        notes.push("infinite statistic: the window holds values the reference never saw".into());
    }
    notes.extend(outcome.note);
    FeatureDrift {
        name: name.to_owned(),
        kind,
        test: Some(test),
        statistic: outcome.statistic,
        p_value: outcome.p_value,
        score: outcome.score,
        threshold,
        drifted: drifted && !ignored,
        ignored,
        psi: binned.psi(),
        jensen_shannon: binned.jensen_shannon(),
        reference,
        current,
        unseen,
        notes,
        distribution,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::drift::policy::FeaturePolicy;

    pub(in crate::drift) fn ignoring(name: &str) -> DriftPolicy {
        let mut policy = DriftPolicy::default();
        let ignore = FeaturePolicy {
            ignore: true,
            ..FeaturePolicy::default()
        };
        policy.features.insert(name.to_owned(), ignore);
        policy
    }

    fn side(missing_rate: f64) -> SideStats {
        SideStats {
            count: 100,
            missing_rate,
            mean: None,
            std: None,
        }
    }

    /// Finishes feature `x` with `outcome`, the given notes and missing rates, over two equal
    /// bins on both sides (PSI and Jensen-Shannon both 0).
    fn finished(
        test: StatTest,
        threshold: f64,
        outcome: Outcome,
        notes: Vec<String>,
        missing_rates: (f64, f64),
        policy: &DriftPolicy,
    ) -> FeatureDrift {
        let binned = Binned {
            labels: vec!["low".into(), "high".into()],
            edges: None,
            reference: vec![0.5, 0.5],
            current: vec![5.0, 5.0],
        };
        finish(
            "x",
            FeatureKind::Numeric,
            test,
            threshold,
            outcome,
            &binned,
            side(missing_rates.0),
            side(missing_rates.1),
            None,
            notes,
            Distribution::default(),
            policy,
        )
    }

    #[test]
    fn a_distance_at_or_above_its_threshold_drifts_unless_the_feature_is_ignored() {
        let policy = DriftPolicy::default();
        let js = StatTest::JensenShannon;
        let f = finished(
            js,
            0.1,
            Outcome::distance(Some(0.2)),
            Vec::new(),
            (0.0, 0.0),
            &policy,
        );
        assert_eq!(
            (f.test, f.statistic, f.p_value, f.score),
            (Some(js), Some(0.2), None, Some(0.2))
        );
        assert!(f.drifted && !f.ignored);
        assert_eq!((f.psi, f.jensen_shannon), (Some(0.0), Some(0.0)));
        assert!(f.notes.is_empty());
        let below = finished(
            js,
            0.1,
            Outcome::distance(Some(0.05)),
            Vec::new(),
            (0.0, 0.0),
            &policy,
        );
        assert!(!below.drifted);

        let ignored = finished(
            js,
            0.1,
            Outcome::distance(Some(0.2)),
            Vec::new(),
            (0.0, 0.0),
            &ignoring("x"),
        );
        assert!(ignored.ignored && !ignored.drifted);
    }

    #[test]
    fn a_missing_rate_rising_past_the_policys_limit_is_drift_with_a_note() {
        let policy = DriftPolicy {
            missing_rate_increase: Some(0.1),
            ..DriftPolicy::default()
        };
        let js = StatTest::JensenShannon;
        // The test alone says no drift (0.05 < 0.1); the missing rate rose by 0.25.
        let f = finished(
            js,
            0.1,
            Outcome::distance(Some(0.05)),
            Vec::new(),
            (0.0, 0.25),
            &policy,
        );
        assert!(f.drifted);
        assert_eq!(f.notes, ["missing rate rose from 0.000 to 0.250"]);
        // A rise within the limit changes nothing.
        let within = finished(
            js,
            0.1,
            Outcome::distance(Some(0.05)),
            Vec::new(),
            (0.1, 0.15),
            &policy,
        );
        assert!(!within.drifted && within.notes.is_empty());
    }

    #[test]
    fn an_infinite_statistic_and_an_untestable_feature_are_explained_in_the_notes() {
        let policy = DriftPolicy::default();
        // Chi-square with a category the reference never saw: X² infinite, p = 0.
        let infinite = Outcome::p_value(f64::INFINITY, 0.0);
        let f = finished(
            StatTest::ChiSquare,
            0.05,
            infinite,
            Vec::new(),
            (0.0, 0.0),
            &policy,
        );
        assert_eq!(
            (f.statistic, f.p_value, f.score),
            (None, Some(0.0), Some(0.0))
        );
        assert!(f.drifted);
        assert_eq!(
            f.notes,
            ["infinite statistic: the window holds values the reference never saw"]
        );
        // No score: no verdict, and the outcome's note follows the caller's.
        let untestable = Outcome::not_applicable("no values to test".into());
        let notes = vec!["sampled".to_owned()];
        let f = finished(StatTest::Ks, 0.05, untestable, notes, (0.0, 0.0), &policy);
        assert_eq!((f.statistic, f.score), (None, None));
        assert!(!f.drifted);
        assert_eq!(f.notes, ["sampled", "no values to test"]);
    }
}
