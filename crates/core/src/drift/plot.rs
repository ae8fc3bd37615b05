//! What a report plots: per feature, reference and current shares over the same bars (numeric:
//! equal-width bins over the bulk of both sides; categorical: the most prominent categories, the
//! rest pooled) and the axis of the predicted-probability plots. The compact numbers that label
//! bars and bins are in `common.rs`.

use super::binned::Binned;
use super::common::short;
use super::divergence::shares;
use super::ks::sketch_cdf;
use super::reference::ReferenceFeature;
use super::report::Distribution;
use crate::profile::{NumericProfile, PROBABILITY_BINS};
use crate::stats::quantile_sorted;

/// Bars in a numeric feature's plot.
const PLOT_BINS: usize = 20;
/// Categories named in a categorical feature's plot; the rest are pooled.
const PLOT_CATEGORIES: usize = 15;

/// Equal-width bins over the bulk (1st-99th percentile) of both sides, tails in the end bins.
pub(super) fn numeric_plot(
    rf: &ReferenceFeature,
    p: &NumericProfile,
    sample: &[f64],
) -> Distribution {
    let q_ref = |u: f64| match &rf.sample {
        Some(s) => quantile_sorted(s, u),
        None => quantile_sorted(&p.sketch, u),
    };
    let f_ref = |x: f64| match &rf.sample {
        Some(s) => s.partition_point(|&v| v <= x) as f64 / s.len().max(1) as f64,
        None => sketch_cdf(&p.sketch, x),
    };
    let f_cur = |x: f64| sample.partition_point(|&v| v <= x) as f64 / sample.len().max(1) as f64;
    let mut lo = q_ref(0.01).min(quantile_sorted(sample, 0.01));
    let mut hi = q_ref(0.99).max(quantile_sorted(sample, 0.99));
    if !lo.is_finite() || !hi.is_finite() {
        return Distribution::default();
    }
    if hi <= lo {
        lo -= 0.5;
        hi += 0.5;
    }
    let edges: Vec<f64> = (0..=PLOT_BINS)
        .map(|i| lo + (hi - lo) * i as f64 / PLOT_BINS as f64)
        .collect();
    let share = |f: &dyn Fn(f64) -> f64| -> Vec<f64> {
        (0..PLOT_BINS)
            .map(|i| {
                let a = if i == 0 { 0.0 } else { f(edges[i]) };
                let b = if i == PLOT_BINS - 1 {
                    1.0
                } else {
                    f(edges[i + 1])
                };
                (b - a).max(0.0)
            })
            .collect()
    };
    Distribution {
        labels: (0..PLOT_BINS)
            .map(|i| short((edges[i] + edges[i + 1]) / 2.0))
            .collect(),
        reference: share(&f_ref),
        current: share(&f_cur),
        edges: Some(edges),
    }
}

/// The most prominent categories by name, the rest pooled, for a bar chart.
pub(super) fn category_plot(binned: &Binned) -> Distribution {
    let full = binned.distribution();
    if full.labels.len() <= PLOT_CATEGORIES {
        return full;
    }
    let mut order: Vec<usize> = (0..full.labels.len()).collect();
    order.sort_by(|&a, &b| {
        let ka = full.reference[a].max(full.current[a]);
        let kb = full.reference[b].max(full.current[b]);
        kb.total_cmp(&ka)
    });
    let (shown, rest) = order.split_at(PLOT_CATEGORIES - 1);
    let mut out = Distribution {
        labels: shown.iter().map(|&i| full.labels[i].clone()).collect(),
        edges: None,
        reference: shown.iter().map(|&i| full.reference[i]).collect(),
        current: shown.iter().map(|&i| full.current[i]).collect(),
    };
    out.labels.push(format!("({} others)", rest.len()));
    out.reference
        .push(rest.iter().map(|&i| full.reference[i]).sum());
    out.current
        .push(rest.iter().map(|&i| full.current[i]).sum());
    out
}

/// The axis of a predicted-probability plot: [`PROBABILITY_BINS`] equal bins on [0, 1],
/// labelled by their middles.
pub(super) struct ProbabilityAxis {
    labels: Vec<String>,
    edges: Vec<f64>,
}

impl Default for ProbabilityAxis {
    fn default() -> ProbabilityAxis {
        let labels: Vec<String> = (0..PROBABILITY_BINS)
            .map(|i| format!("{:.2}", (i as f64 + 0.5) / PROBABILITY_BINS as f64))
            .collect();
        let edges: Vec<f64> = (0..=PROBABILITY_BINS)
            .map(|i| i as f64 / PROBABILITY_BINS as f64)
            .collect();
        ProbabilityAxis { labels, edges }
    }
}

impl ProbabilityAxis {
    /// Reference and current shares of one class's probabilities over the axis.
    pub(super) fn distribution(
        &self,
        reference_bins: &[f64],
        current_bins: &[f64],
    ) -> Distribution {
        Distribution {
            labels: self.labels.clone(),
            edges: Some(self.edges.clone()),
            reference: shares(reference_bins),
            current: shares(current_bins),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::FeatureProfile;

    #[test]
    fn a_categorical_plot_names_the_most_prominent_categories_and_pools_the_rest() {
        // 20 categories c00..c19 with 1..20 values on both sides.
        let counts: Vec<f64> = (1..=20).map(f64::from).collect();
        let binned = Binned {
            labels: (0..20).map(|i| format!("c{i:02}")).collect(),
            edges: None,
            reference: counts.clone(),
            current: counts,
        };
        let plot = category_plot(&binned);
        // The 14 largest by name, largest first, then the 6 smallest pooled: 21 of 210 values.
        let mut expected: Vec<String> = (6..20).rev().map(|i| format!("c{i:02}")).collect();
        expected.push("(6 others)".into());
        assert_eq!(plot.labels, expected);
        assert_eq!(plot.edges, None);
        assert_eq!(plot.reference[0], 20.0 / 210.0);
        assert!((plot.reference[14] - 0.1).abs() < 1e-12);
        assert_eq!(plot.reference, plot.current);
        // Few categories: shown as they are.
        let few = Binned {
            labels: vec!["a".into(), "b".into()],
            edges: None,
            reference: vec![0.25, 0.75],
            current: vec![3.0, 1.0],
        };
        assert_eq!(category_plot(&few), few.distribution());
    }

    fn numeric(values: &[f64], with_sample: bool) -> (ReferenceFeature, NumericProfile) {
        let p = NumericProfile::from_values("x", values);
        let rf = ReferenceFeature {
            profile: FeatureProfile::Numeric(p.clone()),
            sample: with_sample.then(|| values.to_vec()),
            distinct: None,
        };
        (rf, p)
    }

    #[test]
    fn a_numeric_plot_spans_the_bulk_of_both_sides_in_equal_bars() {
        let values: Vec<f64> = (0..100).map(f64::from).collect();
        // From the reference's sample and from its sketch alike: 1st and 99th percentiles of
        // 0..99 are 0.99 and 98.01; the end bars take the tails, so the shares sum to 1.
        for with_sample in [true, false] {
            let (rf, p) = numeric(&values, with_sample);
            let plot = numeric_plot(&rf, &p, &values);
            let edges = plot.edges.clone().unwrap_or_default();
            assert_eq!((edges.len(), plot.labels.len()), (PLOT_BINS + 1, PLOT_BINS));
            assert!((edges[0] - 0.99).abs() < 1e-9 && (edges[PLOT_BINS] - 98.01).abs() < 1e-9);
            for shares in [&plot.reference, &plot.current] {
                assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            }
            if with_sample {
                assert_eq!(
                    plot.reference, plot.current,
                    "the same values on both sides"
                );
            }
        }
    }

    #[test]
    fn a_numeric_plot_of_one_value_widens_to_a_unit_span_and_of_none_is_empty() {
        let fives = [5.0; 10];
        let (rf, p) = numeric(&fives, true);
        let plot = numeric_plot(&rf, &p, &fives);
        let edges = plot.edges.clone().unwrap_or_default();
        assert_eq!((edges.first(), edges.last()), (Some(&4.5), Some(&5.5)));
        // Every value in the bar that ends at 5.
        let mut expected = vec![0.0; PLOT_BINS];
        expected[PLOT_BINS / 2 - 1] = 1.0;
        assert_eq!(plot.reference, expected);
        assert_eq!(plot.current, expected);

        let (rf, p) = numeric(&[], true);
        assert_eq!(numeric_plot(&rf, &p, &[]), Distribution::default());
    }

    #[test]
    fn the_probability_axis_has_equal_bins_on_the_unit_interval() {
        let axis = ProbabilityAxis::default();
        let mut reference = vec![0.0; PROBABILITY_BINS];
        reference[0] = 3.0;
        reference[PROBABILITY_BINS - 1] = 1.0;
        let plot = axis.distribution(&reference, &[2.0; PROBABILITY_BINS]);
        let edges = plot.edges.clone().unwrap_or_default();
        assert_eq!(edges.len(), PROBABILITY_BINS + 1);
        assert_eq!(
            (
                edges[0],
                edges[PROBABILITY_BINS / 2],
                edges[PROBABILITY_BINS]
            ),
            (0.0, 0.5, 1.0)
        );
        // Each bar is labelled by its middle, to two decimals.
        for (i, label) in plot.labels.iter().enumerate() {
            let middle = (edges[i] + edges[i + 1]) / 2.0;
            let read: f64 = label.parse().unwrap_or(f64::NAN);
            assert!(
                (read - middle).abs() <= 0.005 + 1e-12,
                "{label} for {middle}"
            );
        }
        assert_eq!(
            (plot.reference[0], plot.reference[PROBABILITY_BINS - 1]),
            (0.75, 0.25)
        );
        assert!(
            plot.current
                .iter()
                .all(|&s| s == 1.0 / PROBABILITY_BINS as f64)
        );
    }
}
