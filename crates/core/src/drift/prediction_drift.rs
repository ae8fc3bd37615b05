//! Prediction drift: the model's predicted probabilities in the window against the reference's,
//! per class (the positive class only for a binary model): Jensen-Shannon distance (the verdict)
//! and PSI over [`PROBABILITY_BINS`](crate::profile::PROBABILITY_BINS) equal bins, mean
//! probabilities, and the shares of each predicted class.

use super::common::finite;
use super::divergence::{jensen_shannon, psi, shares};
use super::plot::ProbabilityAxis;
use super::policy::DriftPolicy;
use super::reference::DriftReference;
use super::report::{ClassPredictionDrift, PredictionDrift};
use super::summary::WindowSummary;

/// The prediction drift of a window, when the reference and the window both have predictions
/// of the same classes.
pub(super) fn prediction_drift(
    reference: &DriftReference,
    window: &WindowSummary,
    policy: &DriftPolicy,
) -> Option<PredictionDrift> {
    let profile = reference.prediction.as_ref()?;
    let current = &window.prediction;
    if current.rows == 0
        || current.classes != profile.classes
        || profile.probability_bins.len() != profile.classes.len()
    {
        return None;
    }
    let k = profile.classes.len();
    let checked: Vec<usize> = if k == 2 { vec![1] } else { (0..k).collect() };
    let n = current.rows as f64;
    let axis = ProbabilityAxis::default();
    let classes: Vec<ClassPredictionDrift> = checked
        .into_iter()
        .map(|c| {
            let reference_bins = &profile.probability_bins[c];
            let current_bins: Vec<f64> = current.bins[c].iter().map(|&x| x as f64).collect();
            ClassPredictionDrift {
                class: profile.classes[c].clone(),
                jensen_shannon: finite(jensen_shannon(reference_bins, &current_bins)),
                psi: finite(psi(reference_bins, &shares(&current_bins))),
                reference_mean: profile.mean_probability.get(c).copied().unwrap_or(0.0),
                current_mean: current.probability_sum[c] / n,
                distribution: axis.distribution(reference_bins, &current_bins),
            }
        })
        .collect();
    let drifted = classes.iter().any(|c| {
        c.jensen_shannon
            .is_some_and(|js| js >= policy.prediction_threshold)
    });
    Some(PredictionDrift {
        rows: current.rows,
        threshold: policy.prediction_threshold,
        drifted,
        classes,
        reference_predicted_share: profile.predicted_share.clone(),
        current_predicted_share: current.predicted.iter().map(|&c| c as f64 / n).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::summary::SummaryConfig;
    use crate::profile::{PROBABILITY_BINS, PredictionProfile};

    fn classes(names: &[&str]) -> Vec<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    /// Shares over the probability bins with everything in `bin`.
    fn all_in(bin: usize) -> Vec<f64> {
        let mut shares = vec![0.0; PROBABILITY_BINS];
        shares[bin] = 1.0;
        shares
    }

    fn reference(profile: PredictionProfile) -> DriftReference {
        DriftReference {
            rows: 10,
            features: Vec::new(),
            prediction: Some(profile),
        }
    }

    fn window(names: &[&str], rows: &[&[f64]]) -> WindowSummary {
        let mut window = WindowSummary::new(&[], &classes(names), SummaryConfig::default());
        rows.iter().for_each(|row| window.push_probabilities(row));
        window
    }

    /// A binary model that gave P(yes) in [0.20, 0.25) to every reference row.
    fn binary() -> DriftReference {
        reference(PredictionProfile {
            classes: classes(&["no", "yes"]),
            probability_bins: vec![all_in(15), all_in(4)],
            mean_probability: vec![0.775, 0.225],
            predicted_share: vec![1.0, 0.0],
        })
    }

    #[test]
    fn a_binary_model_is_judged_by_its_positive_class() {
        // Every window row says P(yes) = 0.875: bin 17, disjoint from the reference's bin 4.
        let row: &[f64] = &[0.125, 0.875];
        let drift = prediction_drift(
            &binary(),
            &window(&["no", "yes"], &[row; 4]),
            &DriftPolicy::default(),
        );
        let Some(drift) = drift else {
            panic!("both sides have predictions of the same classes")
        };
        assert_eq!((drift.rows, drift.threshold), (4, 0.1));
        assert_eq!(drift.classes.len(), 1);
        let yes = &drift.classes[0];
        assert_eq!(yes.class, "yes");
        // Disjoint histograms: the largest Jensen-Shannon distance, √ln 2.
        let js = yes.jensen_shannon.unwrap_or(f64::NAN);
        assert!((js - std::f64::consts::LN_2.sqrt()).abs() < 1e-12, "{js}");
        assert!(drift.drifted);
        // PSI: two bins each 1 on one side and Evidently's 0.0001 on the other.
        let psi = yes.psi.unwrap_or(f64::NAN);
        assert!(
            (psi - 2.0 * (1.0 - 1e-4) * 1e4f64.ln()).abs() < 1e-9,
            "{psi}"
        );
        assert_eq!((yes.reference_mean, yes.current_mean), (0.225, 0.875));
        assert_eq!(
            (
                yes.distribution.reference.clone(),
                yes.distribution.current.clone()
            ),
            (all_in(4), all_in(17))
        );
        assert_eq!(
            yes.distribution.edges.as_ref().map(Vec::len),
            Some(PROBABILITY_BINS + 1)
        );
        assert_eq!(drift.reference_predicted_share, [1.0, 0.0]);
        assert_eq!(drift.current_predicted_share, [0.0, 1.0]);
    }

    #[test]
    fn every_class_of_a_multiclass_model_is_judged() {
        let profile = PredictionProfile {
            classes: classes(&["a", "b", "c"]),
            probability_bins: vec![all_in(5), all_in(5), all_in(10)],
            mean_probability: vec![0.25, 0.25, 0.5],
            predicted_share: vec![0.0, 0.0, 1.0],
        };
        // The same probabilities as the reference: no distance anywhere.
        let row: &[f64] = &[0.25, 0.25, 0.5];
        let w = window(&["a", "b", "c"], &[row, row]);
        let drift = prediction_drift(&reference(profile), &w, &DriftPolicy::default());
        let Some(drift) = drift else {
            panic!("both sides have predictions of the same classes")
        };
        let judged: Vec<(&str, Option<f64>)> = drift
            .classes
            .iter()
            .map(|c| (c.class.as_str(), c.jensen_shannon))
            .collect();
        assert_eq!(
            judged,
            [("a", Some(0.0)), ("b", Some(0.0)), ("c", Some(0.0))]
        );
        assert!(!drift.drifted);
        assert_eq!(drift.current_predicted_share, [0.0, 0.0, 1.0]);
    }

    #[test]
    fn without_comparable_predictions_there_is_no_prediction_drift() {
        let policy = DriftPolicy::default();
        let row: &[f64] = &[0.5, 0.5];
        // No rows in the window.
        assert!(prediction_drift(&binary(), &window(&["no", "yes"], &[]), &policy).is_none());
        // Other classes.
        assert!(prediction_drift(&binary(), &window(&["yes", "no"], &[row]), &policy).is_none());
        // No predictions in the reference.
        let mut none = binary();
        none.prediction = None;
        assert!(prediction_drift(&none, &window(&["no", "yes"], &[row]), &policy).is_none());
        // A reference without one histogram per class.
        let mut short = binary();
        if let Some(p) = short.prediction.as_mut() {
            p.probability_bins.pop();
        }
        assert!(prediction_drift(&short, &window(&["no", "yes"], &[row]), &policy).is_none());
    }
}
