//! Reference and current over the same bins, and the tests that read bins: chi-square, the
//! two-proportion Z-test, Jensen-Shannon and PSI. A discrete numeric feature is binned by value
//! ([`value_bins`]), a continuous one by the reference's deciles ([`decile_bins`]); a
//! categorical feature's bins are its categories (`categorical_drift.rs`).

use super::chisquare::chi_square_homogeneity;
use super::common::{Outcome, finite, short};
use super::divergence::{jensen_shannon, psi, shares};
use super::policy::StatTest;
use super::report::Distribution;
use super::summary::NumericSummary;
use super::ztest::two_proportion_z;
use crate::frame::format_number;
use crate::profile::{NumericProfile, bin_of};

/// Reference and current over the same bins: reference shares, current counts.
#[derive(Debug, Default)]
pub(super) struct Binned {
    pub(super) labels: Vec<String>,
    pub(super) edges: Option<Vec<f64>>,
    pub(super) reference: Vec<f64>,
    pub(super) current: Vec<f64>,
}

impl Binned {
    pub(super) fn distinct(&self) -> usize {
        self.reference
            .iter()
            .zip(&self.current)
            .filter(|(r, c)| **r > 0.0 || **c > 0.0)
            .count()
    }

    pub(super) fn psi(&self) -> Option<f64> {
        finite(psi(&self.reference, &shares(&self.current)))
    }

    pub(super) fn jensen_shannon(&self) -> Option<f64> {
        finite(jensen_shannon(&self.reference, &self.current))
    }

    pub(super) fn distribution(&self) -> Distribution {
        Distribution {
            labels: self.labels.clone(),
            edges: self.edges.clone(),
            reference: shares(&self.reference),
            current: shares(&self.current),
        }
    }
}

/// Tests that read bins: chi-square, Z, Jensen-Shannon and PSI.
pub(super) fn binned_outcome(test: StatTest, binned: &Binned, reference_count: f64) -> Outcome {
    match test {
        StatTest::ChiSquare => {
            let reference: Vec<f64> = binned
                .reference
                .iter()
                .map(|s| s * reference_count)
                .collect();
            let r = chi_square_homogeneity(&reference, &binned.current);
            Outcome::p_value(r.statistic, r.p_value)
        }
        StatTest::ZTest => {
            // Evidently tests the share of everything but the first value (sorted).
            let n1 = reference_count;
            let n2: f64 = binned.current.iter().sum();
            let first_ref = binned.reference.first().copied().unwrap_or(0.0);
            let first_cur = binned.current.first().copied().unwrap_or(0.0);
            let r = two_proportion_z((1.0 - first_ref) * n1, n1, n2 - first_cur, n2);
            Outcome::p_value(r.statistic, r.p_value)
        }
        StatTest::JensenShannon => Outcome::distance(binned.jensen_shannon()),
        StatTest::Psi => Outcome::distance(binned.psi()),
        StatTest::Ks | StatTest::Wasserstein => Outcome::not_applicable(format!(
            "{} needs numeric values; not applicable to this feature",
            test.label()
        )),
    }
}

/// Bins of a discrete numeric feature: one per value, in value order.
pub(super) fn value_bins(
    values: &[f64],
    reference: &[(f64, f64)],
    current: &[(f64, u64)],
) -> Binned {
    let find = |v: f64| -> f64 { reference.iter().find(|r| r.0 == v).map_or(0.0, |r| r.1) };
    let count = |v: f64| -> f64 {
        current
            .iter()
            .find(|c| c.0 == v)
            .map_or(0.0, |c| c.1 as f64)
    };
    Binned {
        labels: values.iter().map(|&v| format_number(v)).collect(),
        edges: None,
        reference: values.iter().map(|&v| find(v)).collect(),
        current: values.iter().map(|&v| count(v)).collect(),
    }
}

/// Bins of a continuous numeric feature: the reference's deciles. Current counts come from the
/// summary when it was binned by the same edges, else from its sample (scaled to its count).
pub(super) fn decile_bins(p: &NumericProfile, s: &NumericSummary, sample: &[f64]) -> Binned {
    let edges = &p.bin_edges;
    let bins = edges.len().saturating_sub(1).max(1);
    let current: Vec<f64> = if s.bin_edges.as_deref() == Some(edges.as_slice()) {
        s.bin_counts.iter().map(|&c| c as f64).collect()
    } else {
        let mut counts = vec![0.0; bins];
        for &x in sample {
            counts[bin_of(x, edges)] += 1.0;
        }
        let scale = s.count as f64 / sample.len().max(1) as f64;
        counts.iter().map(|c| c * scale).collect()
    };
    let reference = if p.bin_freqs.len() == bins {
        p.bin_freqs.clone()
    } else {
        vec![1.0 / bins as f64; bins]
    };
    let labels = (0..bins)
        .map(|i| match (edges.get(i), edges.get(i + 1)) {
            (Some(a), Some(b)) => format!("[{}, {})", short(*a), short(*b)),
            (Some(a), None) => format!("[{}]", short(*a)),
            _ => format!("bin {i}"),
        })
        .collect();
    Binned {
        labels,
        edges: Some(edges.clone()),
        reference,
        current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::summary::FeatureLayout;

    fn binned(reference: &[f64], current: &[f64]) -> Binned {
        Binned {
            labels: (0..reference.len()).map(|i| format!("bin {i}")).collect(),
            edges: None,
            reference: reference.to_vec(),
            current: current.to_vec(),
        }
    }

    #[test]
    fn value_bins_hold_every_value_of_either_side_in_order() {
        let b = value_bins(
            &[0.0, 1.0, 2.5],
            &[(0.0, 0.5), (2.5, 0.5)],
            &[(1.0, 3), (2.5, 1)],
        );
        assert_eq!(b.labels, ["0", "1", "2.5"]);
        assert_eq!(b.edges, None);
        assert_eq!(b.reference, [0.5, 0.0, 0.5]);
        assert_eq!(b.current, [0.0, 3.0, 1.0]);
        assert_eq!(b.distinct(), 3);
        // Bins empty on both sides are not distinct values.
        assert_eq!(
            binned(&[0.5, 0.0, 0.5, 0.0], &[0.0, 0.0, 3.0, 1.0]).distinct(),
            3
        );
    }

    #[test]
    fn decile_bins_take_the_windows_counts_by_the_same_edges_or_scale_its_sample() {
        let mut p = NumericProfile::from_values("x", &[0.0, 1.0, 2.0]);
        p.bin_edges = vec![0.0, 1.0, 2.0];
        p.bin_freqs = vec![0.25, 0.75];
        let values = [0.5, 1.5, 1.5, 7.0];
        let push = |layout: FeatureLayout| {
            let mut s = NumericSummary::new(&layout);
            values.iter().for_each(|&x| s.push(x));
            s
        };
        // Binned by the same edges: the summary's counts of every value (7 in the last bin).
        let same_edges = push(FeatureLayout {
            bin_edges: Some(vec![0.0, 1.0, 2.0]),
            ..FeatureLayout::numeric("x")
        });
        let b = decile_bins(&p, &same_edges, &[]);
        assert_eq!(b.current, [1.0, 3.0]);
        assert_eq!(b.reference, [0.25, 0.75]);
        assert_eq!(b.labels, ["[0, 1.000)", "[1.000, 2.000)"]);
        assert_eq!(b.edges, Some(vec![0.0, 1.0, 2.0]));
        // Not binned: the sample's counts, scaled from its 2 values to the window's 4.
        let unbinned = push(FeatureLayout::numeric("x"));
        assert_eq!(decile_bins(&p, &unbinned, &[0.5, 1.5]).current, [2.0, 2.0]);
        // Reference shares that do not fit the edges: even shares instead.
        p.bin_freqs = vec![1.0];
        assert_eq!(decile_bins(&p, &same_edges, &[]).reference, [0.5, 0.5]);
    }

    #[test]
    fn the_z_test_compares_the_share_of_everything_but_the_first_bin() {
        // Reference: half and half of 100; current: 30 and 70. Shares of the rest: 0.5 against
        // 0.7, pooled 0.6: z = -0.2 / sqrt(0.6 · 0.4 · (1/100 + 1/100)).
        let outcome = binned_outcome(StatTest::ZTest, &binned(&[0.5, 0.5], &[30.0, 70.0]), 100.0);
        let z = outcome.statistic.unwrap_or(f64::NAN);
        let expected = -0.2 / (0.6f64 * 0.4 * 0.02).sqrt();
        assert!((z - expected).abs() < 1e-12, "{z}");
        // 2 · scipy.stats.norm.sf(2.886751345948128) = 0.0038924171227786367
        let p = outcome.p_value.unwrap_or(f64::NAN);
        assert!((p / 0.003_892_417_122_778_637 - 1.0).abs() < 1e-9, "{p}");
        assert_eq!(outcome.score, outcome.p_value);
    }

    #[test]
    fn chi_square_scales_the_reference_shares_to_its_count() {
        // Shares 1/4, 3/4 of 200 reference values: the table [50 150; 50 50], X² = 18.75.
        let outcome = binned_outcome(
            StatTest::ChiSquare,
            &binned(&[0.25, 0.75], &[50.0, 50.0]),
            200.0,
        );
        let statistic = outcome.statistic.unwrap_or(f64::NAN);
        assert!((statistic - 18.75).abs() < 1e-9, "{statistic}");
        assert!(outcome.p_value.is_some_and(|p| p < 1e-4));
    }

    #[test]
    fn distances_read_the_bins_and_value_tests_do_not_apply() {
        let b = binned(&[0.5, 0.5], &[30.0, 70.0]);
        let psi = (0.5 - 0.3) * (0.5f64 / 0.3).ln() + (0.5 - 0.7) * (0.5f64 / 0.7).ln();
        let kl = |p: [f64; 2], m: [f64; 2]| p[0] * (p[0] / m[0]).ln() + p[1] * (p[1] / m[1]).ln();
        let js = ((kl([0.5, 0.5], [0.4, 0.6]) + kl([0.3, 0.7], [0.4, 0.6])) / 2.0).sqrt();
        for (test, expected) in [(StatTest::Psi, psi), (StatTest::JensenShannon, js)] {
            let outcome = binned_outcome(test, &b, 100.0);
            let score = outcome.score.unwrap_or(f64::NAN);
            assert!((score - expected).abs() < 1e-12, "{test:?}: {score}");
            assert_eq!((outcome.statistic, outcome.p_value), (Some(score), None));
        }
        let ks = binned_outcome(StatTest::Ks, &b, 100.0);
        assert_eq!(ks.score, None);
        assert_eq!(
            ks.note.as_deref(),
            Some("K-S p-value needs numeric values; not applicable to this feature")
        );
        // An empty side has no distance.
        assert_eq!(binned(&[1.0, 0.0], &[0.0, 0.0]).jensen_shannon(), None);
    }
}
