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

/// The accuracy-trend test (STEPD, Nishida & Yamauchi 2007): the champion's accuracy on its
/// newest `window` labels against its accuracy on every older label it was scored on (since it
/// became champion), by a one-sided two-proportion z-test. It finds the slow slide of a
/// gradually moving concept, which a fixed tolerance against the holdout sees late: the older
/// labels are live ones, thousands of them, so their accuracy is known far better than a
/// 400-row holdout's, and the test compares like with like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrendConfig {
    /// Newest labels compared against the older ones; 0 switches the test off.
    pub window: usize,
    /// The z-score the drop must reach (one-sided).
    pub z: f64,
}

impl Default for TrendConfig {
    fn default() -> Self {
        TrendConfig {
            window: 1_000,
            z: 4.0,
        }
    }
}

/// The trend test's verdict at one point of the label stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendVerdict {
    pub recent_labels: u64,
    pub recent_accuracy: f64,
    pub older_labels: u64,
    pub older_accuracy: f64,
    /// How many standard errors the recent accuracy lies below the older one.
    pub z: f64,
    pub threshold: f64,
    pub drifted: bool,
    /// Data-log sequence of the first recent label: where the slide shows, at the latest.
    pub from_seq: u64,
}

/// The labels the trend test keeps: the newest `window` (with their sequences) and counts of
/// all older ones.
#[derive(Debug, Default)]
pub struct AccuracyTrend {
    config: Option<TrendConfig>,
    recent: VecDeque<(u64, bool)>,
    recent_correct: u64,
    older_labels: u64,
    older_correct: u64,
}

impl AccuracyTrend {
    pub fn new(config: TrendConfig) -> Self {
        AccuracyTrend {
            config: (config.window > 0).then_some(config),
            ..AccuracyTrend::default()
        }
    }

    pub fn push(&mut self, seq: u64, correct: bool) {
        let Some(config) = self.config else {
            return;
        };
        self.recent.push_back((seq, correct));
        self.recent_correct += u64::from(correct);
        while self.recent.len() > config.window {
            if let Some((_, old)) = self.recent.pop_front() {
                self.recent_correct -= u64::from(old);
                self.older_labels += 1;
                self.older_correct += u64::from(old);
            }
        }
    }

    /// The test, once there are a full window of recent labels and at least as many older
    /// ones; `None` before that, or when the test is off.
    pub fn judge(&self) -> Option<TrendVerdict> {
        let config = self.config?;
        let (&(from_seq, _), n_recent) = (self.recent.front()?, self.recent.len() as u64);
        if n_recent < config.window as u64 || self.older_labels < n_recent {
            return None;
        }
        let n_older = self.older_labels;
        let recent_accuracy = self.recent_correct as f64 / n_recent as f64;
        let older_accuracy = self.older_correct as f64 / n_older as f64;
        let pooled =
            (self.recent_correct + self.older_correct) as f64 / (n_recent + n_older) as f64;
        let se = (pooled * (1.0 - pooled) * (1.0 / n_recent as f64 + 1.0 / n_older as f64)).sqrt();
        let drop = older_accuracy - recent_accuracy;
        // Every label right or every label wrong: no spread to measure a drop against.
        let z = if se > 0.0 { drop / se } else { 0.0 };
        Some(TrendVerdict {
            recent_labels: n_recent,
            recent_accuracy,
            older_labels: n_older,
            older_accuracy,
            z,
            threshold: config.z,
            drifted: z >= config.z,
            from_seq,
        })
    }
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
    /// The accuracy-trend test at the end of the run (`None` before it has enough labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trend: Option<TrendVerdict>,
}

impl PerformanceWindow {
    /// Whether the run shows drift only through the trend test (neither the tolerance against
    /// the holdout nor the detector saw it).
    pub fn drifted_by_trend_only(&self) -> bool {
        self.drifted
            && !self.detector_alarm
            && self.accuracy >= self.baseline_accuracy - self.tolerance
    }
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
    /// baseline, the detector alarmed, or the trend test (`trend`) found a slide.
    pub fn judge(
        &self,
        baseline_accuracy: f64,
        baseline_log_loss: f64,
        tolerance: f64,
        trend: Option<TrendVerdict>,
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
            drifted: self.alarm
                || accuracy < baseline_accuracy - tolerance
                || trend.as_ref().is_some_and(|t| t.drifted),
            first_seq: self.first_seq,
            trend,
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
        let judged = window.judge(0.9, 0.3, 0.05, None);
        assert_eq!(judged.first_seq, Some(91), "the earliest label's sequence");
        assert!((judged.accuracy - 0.8).abs() < 1e-12);
        assert!(judged.drifted, "0.8 is more than 0.05 under 0.9");
        assert!(!window.judge(0.84, 0.3, 0.05, None).drifted);
        window.mark_alarm();
        assert!(
            window.judge(0.5, 0.3, 0.05, None).drifted,
            "an alarm drifts on its own"
        );
    }

    #[test]
    fn the_trend_test_waits_for_enough_labels_then_finds_a_slide() {
        let config = TrendConfig {
            window: 100,
            z: 3.0,
        };
        let mut trend = AccuracyTrend::new(config);
        // 9 in 10 right for 150 labels: not yet a full window plus as many older ones.
        for seq in 0..150 {
            trend.push(seq, seq % 10 != 0);
        }
        assert_eq!(trend.judge(), None);
        for seq in 150..300 {
            trend.push(seq, seq % 10 != 0);
        }
        let calm = trend.judge().unwrap();
        assert!(!calm.drifted, "{calm:?}");
        assert_eq!((calm.recent_labels, calm.older_labels), (100, 200));
        assert!((calm.recent_accuracy - 0.9).abs() < 1e-12);
        assert_eq!(calm.from_seq, 200, "the first of the newest 100");
        // Then 6 in 10 right: the newest 100 against 300 older at 0.9.
        for seq in 300..400 {
            trend.push(seq, seq % 10 >= 4);
        }
        let slid = trend.judge().unwrap();
        assert!(slid.drifted, "{slid:?}");
        assert!((slid.recent_accuracy - 0.6).abs() < 1e-12);
        assert!((slid.older_accuracy - 0.9).abs() < 1e-12);
        assert!(slid.z > 3.0);
        assert_eq!(slid.from_seq, 300);
        // Better than before is not a slide (the test is one-sided).
        let mut better = AccuracyTrend::new(config);
        for seq in 0..200 {
            better.push(seq, seq % 2 == 0);
        }
        for seq in 200..300 {
            better.push(seq, true);
        }
        let judged = better.judge().unwrap();
        assert!(!judged.drifted && judged.z < 0.0, "{judged:?}");
        // A window of 0 is off.
        let mut off = AccuracyTrend::new(TrendConfig { window: 0, z: 3.0 });
        for seq in 0..1_000 {
            off.push(seq, seq > 500);
        }
        assert_eq!(off.judge(), None);
    }

    #[test]
    fn a_window_drifts_on_the_trend_alone_and_says_so() {
        let mut window = LabelWindow::default();
        for i in 0..10 {
            window.push(
                i,
                Scored {
                    correct: i < 9,
                    log_loss: 0.1,
                },
            );
        }
        let slide = TrendVerdict {
            recent_labels: 100,
            recent_accuracy: 0.8,
            older_labels: 400,
            older_accuracy: 0.9,
            z: 4.0,
            threshold: 3.5,
            drifted: true,
            from_seq: 3,
        };
        let judged = window.judge(0.9, 0.3, 0.1, Some(slide.clone()));
        assert!(judged.drifted && judged.drifted_by_trend_only());
        let calm = TrendVerdict {
            drifted: false,
            z: 1.0,
            ..slide
        };
        let judged = window.judge(0.9, 0.3, 0.1, Some(calm));
        assert!(!judged.drifted && !judged.drifted_by_trend_only());
        // Under the tolerance it is the tolerance's verdict, trend or not.
        let judged = window.judge(1.0, 0.3, 0.05, None);
        assert!(judged.drifted && !judged.drifted_by_trend_only());
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
