//! Live performance: labels join the rows they name (by row id, through a bounded memory of
//! recent rows' predicted probabilities), each joined label scores the champion (right or
//! wrong, log-loss), and every `label_window` labels become a [`PerformanceWindow`] judged
//! against the champion's holdout accuracy. Also the label-free estimate (CBPE): the expected
//! accuracy of a window is the mean of its top predicted probabilities.

use std::collections::{HashMap, VecDeque};

use mend_core::metrics::argmax;
use serde::{Deserialize, Serialize};

/// Log-loss clips probabilities here, as scikit-learn does, so a confident miss is finite.
const EPSILON: f64 = 1e-15;

/// A bounded map from row id to its predicted probabilities: the oldest entries go first.
#[derive(Debug)]
pub struct RecentRows {
    capacity: usize,
    order: VecDeque<String>,
    probabilities: HashMap<String, Vec<f64>>,
}

impl RecentRows {
    pub fn new(capacity: usize) -> Self {
        RecentRows {
            capacity: capacity.max(1),
            order: VecDeque::new(),
            probabilities: HashMap::new(),
        }
    }

    pub fn insert(&mut self, id: String, probabilities: Vec<f64>) {
        if self
            .probabilities
            .insert(id.clone(), probabilities)
            .is_none()
        {
            self.order.push_back(id);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.probabilities.remove(&old);
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&[f64]> {
        self.probabilities.get(id).map(Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.probabilities.len()
    }

    pub fn is_empty(&self) -> bool {
        self.probabilities.is_empty()
    }
}

/// Labels that arrived before their rows, bounded the same way, each with its data-log
/// sequence (a drift's start is named by where its labels were logged).
#[derive(Debug)]
pub struct PendingLabels {
    capacity: usize,
    order: VecDeque<String>,
    labels: HashMap<String, (String, u64)>,
}

impl PendingLabels {
    pub fn new(capacity: usize) -> Self {
        PendingLabels {
            capacity: capacity.max(1),
            order: VecDeque::new(),
            labels: HashMap::new(),
        }
    }

    pub fn insert(&mut self, row_id: String, label: String, seq: u64) {
        if self.labels.insert(row_id.clone(), (label, seq)).is_none() {
            self.order.push_back(row_id);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.labels.remove(&old);
            }
        }
    }

    /// The waiting label of a row and its sequence, removed.
    pub fn take(&mut self, row_id: &str) -> Option<(String, u64)> {
        // The id stays in `order` until it ages out; removing it there would cost O(n).
        self.labels.remove(row_id)
    }
}

/// One label scored against the champion's prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub correct: bool,
    pub log_loss: f64,
}

/// Scores a label against predicted probabilities over `classes`; `None` for a label the
/// model does not know (it cannot be right or wrong about it).
pub fn score(probabilities: &[f64], classes: &[String], label: &str) -> Option<Scored> {
    let truth = classes.iter().position(|class| class == label)?;
    let p = probabilities.get(truth).copied()?;
    let predicted = argmax(probabilities.iter().copied());
    Some(Scored {
        correct: predicted == truth,
        log_loss: -p.clamp(EPSILON, 1.0 - EPSILON).ln(),
    })
}

/// The label-free estimate of one row's chance of being right: its top probability.
pub fn confidence(probabilities: &[f64]) -> f64 {
    probabilities
        .iter()
        .copied()
        .filter(|p| p.is_finite())
        .fold(0.0, f64::max)
}

/// Live performance over a run of labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerformanceWindow {
    pub labels: u64,
    pub accuracy: f64,
    pub log_loss: f64,
    /// The champion's holdout accuracy and log-loss, the baselines.
    pub baseline_accuracy: f64,
    pub baseline_log_loss: f64,
    pub tolerance: f64,
    /// Whether the Page-Hinkley detector alarmed on this run of labels.
    pub detector_alarm: bool,
    pub drifted: bool,
    /// Data-log sequence of the first label of the run (where a drift it shows began, at the
    /// latest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seq: Option<u64>,
}

/// Accumulates scored labels until a window is full.
#[derive(Debug, Default)]
pub struct LabelWindow {
    first_seq: Option<u64>,
    labels: u64,
    correct: u64,
    log_loss_sum: f64,
    alarm: bool,
}

impl LabelWindow {
    /// Adds a label logged at data-log sequence `seq`.
    pub fn push(&mut self, seq: u64, scored: Scored) {
        self.first_seq = Some(self.first_seq.map_or(seq, |first| first.min(seq)));
        self.labels += 1;
        self.correct += u64::from(scored.correct);
        self.log_loss_sum += scored.log_loss;
    }

    pub fn mark_alarm(&mut self) {
        self.alarm = true;
    }

    pub fn labels(&self) -> u64 {
        self.labels
    }

    /// The window so far, judged: drifted when accuracy fell more than `tolerance` below the
    /// baseline, or the detector alarmed.
    pub fn judge(
        &self,
        baseline_accuracy: f64,
        baseline_log_loss: f64,
        tolerance: f64,
    ) -> PerformanceWindow {
        let n = self.labels.max(1) as f64;
        let accuracy = self.correct as f64 / n;
        PerformanceWindow {
            labels: self.labels,
            accuracy,
            log_loss: self.log_loss_sum / n,
            baseline_accuracy,
            baseline_log_loss,
            tolerance,
            detector_alarm: self.alarm,
            drifted: self.alarm || accuracy < baseline_accuracy - tolerance,
            first_seq: self.first_seq,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn classes() -> Vec<String> {
        vec!["no".into(), "yes".into()]
    }

    #[test]
    fn scores_labels_against_probabilities() {
        let right = score(&[0.2, 0.8], &classes(), "yes").unwrap();
        assert!(right.correct);
        assert!((right.log_loss - 0.8f64.ln().abs()).abs() < 1e-12);
        let wrong = score(&[0.2, 0.8], &classes(), "no").unwrap();
        assert!(!wrong.correct);
        assert!((wrong.log_loss - 0.2f64.ln().abs()).abs() < 1e-12);
        assert!(
            score(&[0.0, 1.0], &classes(), "no")
                .unwrap()
                .log_loss
                .is_finite()
        );
        assert!(score(&[0.2, 0.8], &classes(), "maybe").is_none());
        assert!((confidence(&[0.3, 0.7]) - 0.7).abs() < 1e-12);
    }

    #[test]
    fn windows_judge_against_the_baseline() {
        let mut window = LabelWindow::default();
        for i in 0..10 {
            window.push(
                100 - i,
                Scored {
                    correct: i < 8,
                    log_loss: 0.5,
                },
            );
        }
        let judged = window.judge(0.9, 0.3, 0.05);
        assert_eq!(judged.first_seq, Some(91), "the earliest label's sequence");
        assert!((judged.accuracy - 0.8).abs() < 1e-12);
        assert!(judged.drifted, "0.8 is more than 0.05 under 0.9");
        assert!(!window.judge(0.84, 0.3, 0.05).drifted);
        window.mark_alarm();
        assert!(
            window.judge(0.5, 0.3, 0.05).drifted,
            "an alarm drifts on its own"
        );
    }

    #[test]
    fn memories_are_bounded() {
        let mut recent = RecentRows::new(2);
        for id in ["a", "b", "c"] {
            recent.insert(id.into(), vec![0.5, 0.5]);
        }
        assert_eq!(recent.len(), 2);
        assert!(recent.get("a").is_none());
        assert!(recent.get("c").is_some());
        let mut pending = PendingLabels::new(1);
        pending.insert("a".into(), "yes".into(), 1);
        pending.insert("b".into(), "no".into(), 2);
        assert_eq!(pending.take("a"), None);
        assert_eq!(pending.take("b"), Some(("no".to_owned(), 2)));
    }
}
