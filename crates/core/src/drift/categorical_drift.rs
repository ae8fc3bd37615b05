//! A categorical feature against its reference: bins by category (new categories pooled into
//! the reference's [`OTHER_CATEGORY`] when it has one, else listed as unseen), the test the
//! policy picks over them, and its plot.

use std::collections::BTreeMap;

use super::binned::{Binned, binned_outcome};
use super::feature_drift::{finish, skipped};
use super::plot::category_plot;
use super::policy::{DriftPolicy, FeatureFacts};
use super::report::{FeatureDrift, SideStats, UnseenCategories};
use super::summary::CategoricalSummary;
use crate::profile::{CategoricalProfile, OTHER_CATEGORY};
use crate::schema::FeatureKind;

/// Unseen categories listed by name in a report.
const UNSEEN_LISTED: usize = 20;
/// Label of current values in new categories past the summary's cap.
pub const OVERFLOW_LABEL: &str = "(more new categories)";

pub(super) fn categorical_drift(
    p: &CategoricalProfile,
    s: &CategoricalSummary,
    policy: &DriftPolicy,
) -> FeatureDrift {
    let reference = SideStats {
        count: p.count as u64,
        missing_rate: p.missing_rate,
        mean: None,
        std: None,
    };
    let current = SideStats {
        count: s.count,
        missing_rate: s.missing_rate(),
        mean: None,
        std: None,
    };
    if p.count == 0 || s.count == 0 {
        let note = if p.count == 0 {
            "the reference has no present values"
        } else {
            "the window has no present values"
        };
        return skipped(
            &p.name,
            FeatureKind::Categorical,
            reference,
            current,
            note,
            policy,
        );
    }
    let pooled = p.frequencies.contains_key(OTHER_CATEGORY);
    // Bins: the reference's categories, then the window's new ones (pooled into the
    // reference's "other" when it has one).
    let mut bins: BTreeMap<String, (f64, f64)> = p
        .frequencies
        .iter()
        .map(|(k, &f)| (k.clone(), (f, 0.0)))
        .collect();
    let mut unseen: Vec<(String, u64)> = Vec::new();
    for (category, count) in s.observed() {
        if let Some(bin) = bins.get_mut(category) {
            bin.1 += count as f64;
        } else if pooled {
            if let Some(bin) = bins.get_mut(OTHER_CATEGORY) {
                bin.1 += count as f64;
            }
        } else {
            unseen.push((category.to_owned(), count));
            bins.insert(category.to_owned(), (0.0, count as f64));
        }
    }
    if s.overflow > 0 {
        let label = if pooled {
            OTHER_CATEGORY
        } else {
            OVERFLOW_LABEL
        };
        bins.entry(label.to_owned()).or_insert((0.0, 0.0)).1 += s.overflow as f64;
    }
    let binned = Binned {
        labels: bins.keys().cloned().collect(),
        edges: None,
        reference: bins.values().map(|b| b.0).collect(),
        current: bins.values().map(|b| b.1).collect(),
    };
    let unseen_report = (!pooled && (!unseen.is_empty() || s.overflow > 0)).then(|| {
        let count = unseen.iter().map(|u| u.1).sum::<u64>() + s.overflow;
        let distinct = unseen.len();
        unseen.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        unseen.truncate(UNSEEN_LISTED);
        UnseenCategories {
            count,
            share: count as f64 / s.count.max(1) as f64,
            distinct,
            top: unseen,
        }
    });
    let distinct = binned.distinct();
    let facts = FeatureFacts {
        numeric: false,
        reference_count: p.count,
        distinct: (distinct <= policy.discrete_max_unique).then_some(distinct),
    };
    let (test, threshold) = policy.choose(&p.name, facts);
    // Z-test reads two shares: compare the first (sorted) category against the rest.
    let outcome = binned_outcome(test, &binned, p.count as f64);
    let distribution = category_plot(&binned);
    finish(
        &p.name,
        FeatureKind::Categorical,
        test,
        threshold,
        outcome,
        &binned,
        reference,
        current,
        unseen_report,
        Vec::new(),
        distribution,
        policy,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::policy::StatTest;
    use crate::drift::summary::{FeatureLayout, SummaryConfig};

    fn profile(count: usize, frequencies: &[(&str, f64)]) -> CategoricalProfile {
        CategoricalProfile {
            name: "c".into(),
            count,
            missing_rate: 0.0,
            frequencies: frequencies
                .iter()
                .map(|&(k, f)| (k.to_owned(), f))
                .collect(),
        }
    }

    /// A window laid out by `p` (its categories known), counting `max_new` new ones by name.
    fn window(
        p: &CategoricalProfile,
        max_new: usize,
        values: &[(&str, usize)],
    ) -> CategoricalSummary {
        let layout = FeatureLayout {
            known_categories: p.frequencies.keys().cloned().collect(),
            ..FeatureLayout::categorical("c")
        };
        let config = SummaryConfig {
            max_categories: max_new,
            ..SummaryConfig::default()
        };
        let mut s = CategoricalSummary::new(&layout, &config);
        for &(v, n) in values {
            (0..n).for_each(|_| s.push(Some(v)));
        }
        s
    }

    #[test]
    fn categories_the_reference_never_saw_get_bins_of_their_own_and_are_listed() {
        let p = profile(100, &[("a", 0.5), ("b", 0.5)]);
        let s = window(&p, 1000, &[("a", 30), ("b", 10), ("c", 5), ("d", 5)]);
        let f = categorical_drift(&p, &s, &DriftPolicy::default());
        let unseen = f
            .unseen
            .as_ref()
            .map(|u| (u.count, u.share, u.distinct, u.top.clone()));
        let top = vec![("c".to_owned(), 5), ("d".to_owned(), 5)];
        assert_eq!(unseen, Some((10, 0.2, 2, top)));
        // Four categories on a small reference: chi-square over [50 50 0 0; 30 10 5 5], whose
        // expected counts give X² = 5/24 + 5/2 + 20/3 + 5/12 + 5 + 40/3 = 28.125.
        assert_eq!(f.test, Some(StatTest::ChiSquare));
        let statistic = f.statistic.unwrap_or(f64::NAN);
        assert!((statistic - 28.125).abs() < 1e-9, "{statistic}");
        assert!(f.drifted);
        assert_eq!(f.distribution.labels, ["a", "b", "c", "d"]);
        assert_eq!(f.distribution.reference, [0.5, 0.5, 0.0, 0.0]);
        assert_eq!(f.distribution.current, [0.6, 0.2, 0.1, 0.1]);
    }

    #[test]
    fn a_reference_that_pooled_its_rare_categories_takes_new_ones_as_pooled() {
        let p = profile(10, &[(OTHER_CATEGORY, 0.4), ("a", 0.6)]);
        // One new category counted by name (x), then the cap: y is overflow. Both are pooled.
        let s = window(&p, 1, &[("a", 3), ("x", 2), ("y", 1)]);
        assert_eq!(s.overflow, 1);
        let f = categorical_drift(&p, &s, &DriftPolicy::default());
        assert_eq!(f.unseen, None);
        assert_eq!(f.distribution.labels, [OTHER_CATEGORY, "a"]);
        assert_eq!(f.distribution.reference, [0.4, 0.6]);
        assert_eq!(f.distribution.current, [0.5, 0.5]);
    }

    #[test]
    fn new_categories_past_the_cap_are_counted_together_under_their_own_label() {
        let p = profile(10, &[("a", 1.0)]);
        let s = window(&p, 1, &[("a", 3), ("x", 2), ("y", 1)]);
        let f = categorical_drift(&p, &s, &DriftPolicy::default());
        assert_eq!(f.distribution.labels, [OVERFLOW_LABEL, "a", "x"]);
        assert_eq!(f.distribution.reference, [0.0, 1.0, 0.0]);
        assert_eq!(f.distribution.current, [1.0 / 6.0, 0.5, 2.0 / 6.0]);
        // Unseen: x by name and the one value past the cap; only x is listed.
        let unseen = f
            .unseen
            .as_ref()
            .map(|u| (u.count, u.share, u.distinct, u.top.clone()));
        assert_eq!(unseen, Some((3, 0.5, 1, vec![("x".to_owned(), 2)])));
    }

    #[test]
    fn a_window_without_present_values_leaves_the_feature_untested() {
        let p = profile(10, &[("a", 1.0)]);
        let mut s = window(&p, 10, &[]);
        s.push(None);
        let f = categorical_drift(&p, &s, &DriftPolicy::default());
        assert_eq!((f.test, f.kind), (None, FeatureKind::Categorical));
        assert_eq!(f.notes, ["the window has no present values"]);
        assert_eq!(f.current.missing_rate, 1.0);
    }
}
