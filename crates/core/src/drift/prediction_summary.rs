//! The bounded summary of a window's predictions: per class, a histogram of the predicted
//! probabilities over the reference's [`PROBABILITY_BINS`] equal bins, their sum, and counts of
//! the predicted class.

use crate::metrics::argmax;
use crate::profile::{PROBABILITY_BINS, probability_bin};

/// Summary of predicted probabilities over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionSummary {
    pub classes: Vec<String>,
    pub rows: u64,
    /// Per class, counts over [`PROBABILITY_BINS`] equal bins on [0, 1].
    pub bins: Vec<Vec<u64>>,
    pub probability_sum: Vec<f64>,
    /// Rows predicted as each class (argmax).
    pub predicted: Vec<u64>,
}

impl PredictionSummary {
    /// An empty summary of a model with these classes (none: predictions are not tracked).
    pub(super) fn new(classes: &[String]) -> PredictionSummary {
        PredictionSummary {
            classes: classes.to_vec(),
            rows: 0,
            bins: vec![vec![0; PROBABILITY_BINS]; classes.len()],
            probability_sum: vec![0.0; classes.len()],
            predicted: vec![0; classes.len()],
        }
    }

    /// Adds one row of class probabilities (ignored unless it has one per class).
    pub fn push(&mut self, probabilities: &[f64]) {
        if probabilities.len() != self.classes.len() || probabilities.is_empty() {
            return;
        }
        self.rows += 1;
        for (c, &p) in probabilities.iter().enumerate() {
            self.bins[c][probability_bin(p)] += 1;
            self.probability_sum[c] += p;
        }
        self.predicted[argmax(probabilities.iter().copied())] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_binned_summed_and_counted_by_their_predicted_class() {
        let mut s = PredictionSummary::new(&["no".to_owned(), "yes".to_owned()]);
        s.push(&[0.25, 0.75]);
        s.push(&[0.625, 0.375]);
        // 1.0 falls in the last bin, not past it.
        s.push(&[1.0, 0.0]);
        // Not one probability per class: ignored.
        s.push(&[1.0]);
        s.push(&[0.2, 0.3, 0.5]);
        assert_eq!(s.rows, 3);
        // Bins are 0.05 wide: 0.25 -> 5, 0.625 -> 12, 1.0 -> 19; 0.75 -> 15, 0.375 -> 7.
        let mut no = vec![0; PROBABILITY_BINS];
        for bin in [5, 12, 19] {
            no[bin] = 1;
        }
        let mut yes = vec![0; PROBABILITY_BINS];
        for bin in [15, 7, 0] {
            yes[bin] = 1;
        }
        assert_eq!(s.bins, vec![no, yes]);
        assert_eq!(s.probability_sum, vec![1.875, 1.125]);
        assert_eq!(s.predicted, vec![2, 1]);
    }

    #[test]
    fn without_classes_nothing_is_counted() {
        let mut s = PredictionSummary::new(&[]);
        s.push(&[]);
        s.push(&[0.5, 0.5]);
        assert_eq!(s.rows, 0);
        assert!(s.bins.is_empty() && s.predicted.is_empty());
    }
}
