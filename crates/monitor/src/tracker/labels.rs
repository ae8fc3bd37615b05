//! The label side of the tracker. Labels join the rows they name, whichever comes first (a
//! bounded memory of recent rows' probabilities, and of labels waiting for their rows); each
//! joined label scores the champion, feeds the Page-Hinkley detector (the error stream: 1 for
//! a wrong prediction) and the accuracy trend, and every `label_window` labels are judged
//! against the champion's holdout. The parts are [`crate::performance`]'s and
//! [`crate::detector`]'s; this is their wiring, and the tracker turns what it reports into
//! announcements.

use std::collections::VecDeque;

use mend_core::record::LabelRecord;

use super::TrackerSettings;
use crate::detector::PageHinkley;
use crate::performance::{
    AccuracyTrend, LabelWindow, PendingLabels, PerformanceWindow, RecentRows, score,
};

/// Accuracy points kept for the performance chart.
const HISTORY: usize = 60;

/// The champion's holdout metrics, the baselines live performance is judged against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Baseline {
    pub(super) accuracy: f64,
    pub(super) log_loss: f64,
}

/// What one joined label showed.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Judgement {
    /// The Page-Hinkley detector alarmed: the label sequence where it estimates the change
    /// began, and the labels of the open window so far (marked with the alarm), judged.
    pub(super) alarm: Option<(u64, PerformanceWindow)>,
    /// The label filled a window: the window, judged.
    pub(super) window: Option<PerformanceWindow>,
}

/// Labels, joined and judged.
#[derive(Debug)]
pub(super) struct LabelStream {
    baseline: Baseline,
    tolerance: f64,
    label_window: usize,
    recent: RecentRows,
    pending: PendingLabels,
    window: LabelWindow,
    detector: PageHinkley,
    /// The champion's accuracy on its newest labels against its older ones (since the
    /// tracker began with it: a restart starts the count again, as it does Page-Hinkley's).
    trend: AccuracyTrend,
    last: Option<PerformanceWindow>,
    history: VecDeque<(String, f64)>,
}

impl LabelStream {
    pub(super) fn new(settings: &TrackerSettings, baseline: Baseline) -> Self {
        LabelStream {
            baseline,
            tolerance: settings.accuracy_tolerance,
            label_window: settings.label_window,
            recent: RecentRows::new(settings.join_rows),
            pending: PendingLabels::new(settings.join_rows),
            window: LabelWindow::default(),
            detector: PageHinkley::new(settings.detector),
            trend: AccuracyTrend::new(settings.trend),
            last: None,
            history: VecDeque::new(),
        }
    }

    pub(super) fn baseline(&self) -> Baseline {
        self.baseline
    }

    /// The latest judged window, if any.
    pub(super) fn last(&self) -> Option<&PerformanceWindow> {
        self.last.as_ref()
    }

    /// The accuracy of each judged window, oldest first (at most the newest 60), named by
    /// the sequence it was judged at.
    pub(super) fn history(&self) -> Vec<(String, f64)> {
        self.history.iter().cloned().collect()
    }

    /// A row the champion scored over `classes`, read at sequence `seq`: a label that waited
    /// for it is judged, then its probabilities are kept for labels to come.
    pub(super) fn row(
        &mut self,
        seq: u64,
        id: String,
        probabilities: Vec<f64>,
        classes: &[String],
    ) -> Judgement {
        let judgement = match self.pending.take(&id) {
            Some((label, label_seq)) => self.judge(seq, label_seq, &probabilities, &label, classes),
            None => Judgement::default(),
        };
        self.recent.insert(id, probabilities);
        judgement
    }

    /// A label logged at sequence `seq`: judged at once when its row is remembered, else kept
    /// until the row comes.
    pub(super) fn label(&mut self, seq: u64, label: LabelRecord, classes: &[String]) -> Judgement {
        match self.recent.get(&label.row_id).map(<[f64]>::to_vec) {
            Some(probabilities) => self.judge(seq, seq, &probabilities, &label.label, classes),
            None => {
                self.pending.insert(label.row_id, label.label, seq);
                Judgement::default()
            }
        }
    }

    /// Scores one label. `seq` is where the log has been read to (the label, or the row a
    /// waiting label joined), `label_seq` where the label itself was logged: a drift's start
    /// is named in label sequences, which is what the trainer filters its labels by.
    fn judge(
        &mut self,
        seq: u64,
        label_seq: u64,
        probabilities: &[f64],
        label: &str,
        classes: &[String],
    ) -> Judgement {
        let mut judgement = Judgement::default();
        let Some(scored) = score(probabilities, classes, label) else {
            return judgement;
        };
        self.window.push(label_seq, scored);
        self.trend.push(label_seq, scored.correct);
        let error = if scored.correct { 0.0 } else { 1.0 };
        if let Some(change_seq) = self.detector.update_tagged(error, label_seq) {
            self.window.mark_alarm();
            judgement.alarm = Some((change_seq, self.judged()));
        }
        if self.window.labels() as usize >= self.label_window {
            let judged = self.judged();
            self.window = LabelWindow::default();
            self.history
                .push_back((format!("labels to #{seq}"), judged.accuracy));
            while self.history.len() > HISTORY {
                self.history.pop_front();
            }
            self.last = Some(judged.clone());
            judgement.window = Some(judged);
        }
        judgement
    }

    /// The open window's labels so far, judged.
    fn judged(&self) -> PerformanceWindow {
        self.window.judge(
            self.baseline.accuracy,
            self.baseline.log_loss,
            self.tolerance,
            self.trend.judge(),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use mend_core::drift::{DriftPolicy, SummaryConfig};

    use super::*;
    use crate::detector::PageHinkleyConfig;
    use crate::performance::{TrendConfig, TrendVerdict};

    /// No trend test, a detector that needs 30 labels; a holdout at 0.9 with 0.05 tolerated.
    fn stream(label_window: usize) -> LabelStream {
        with(label_window, PageHinkleyConfig::default(), 0)
    }

    fn with(label_window: usize, detector: PageHinkleyConfig, trend_window: usize) -> LabelStream {
        let settings = TrackerSettings {
            window_rows: 1_000,
            window_ms: None,
            label_window,
            accuracy_tolerance: 0.05,
            min_drifted_features: 1,
            confirm_windows: 2,
            join_rows: 100,
            policy: DriftPolicy::default(),
            detector,
            trend: TrendConfig {
                window: trend_window,
                z: 1.0,
            },
            summary: SummaryConfig::default(),
        };
        LabelStream::new(
            &settings,
            Baseline {
                accuracy: 0.9,
                log_loss: 0.3,
            },
        )
    }

    fn classes() -> Vec<String> {
        vec!["no".to_owned(), "yes".to_owned()]
    }

    /// Predicts `yes` (0.8).
    const YES: [f64; 2] = [0.2, 0.8];
    /// Predicts `no` (0.6).
    const NO: [f64; 2] = [0.6, 0.4];

    fn label(row_id: &str, label: &str) -> LabelRecord {
        LabelRecord {
            row_id: row_id.to_owned(),
            label: label.to_owned(),
            time_ms: 0,
        }
    }

    #[test]
    fn labels_join_their_rows_whichever_comes_first() {
        let mut labels = stream(2);
        // The label first: it waits for its row.
        assert_eq!(
            labels.label(1, label("a", "yes"), &classes()),
            Judgement::default()
        );
        assert_eq!(
            labels.row(2, "a".into(), YES.to_vec(), &classes()),
            Judgement::default(),
            "joined and right, one label of two"
        );
        // The row first: the label joins it at once.
        assert_eq!(
            labels.row(3, "b".into(), NO.to_vec(), &classes()),
            Judgement::default()
        );
        let judgement = labels.label(4, label("b", "yes"), &classes());
        assert_eq!(judgement.alarm, None);
        let judged = judgement.window.expect("two labels fill the window");
        let log_loss = (-(0.8f64.ln()) - 0.4f64.ln()) / 2.0;
        assert_eq!(judged.labels, 2);
        assert_eq!(judged.accuracy, 0.5);
        assert!((judged.log_loss - log_loss).abs() < 1e-12);
        assert_eq!(
            judged.first_seq,
            Some(1),
            "named by where the label was logged"
        );
        assert_eq!(
            (judged.baseline_accuracy, judged.baseline_log_loss),
            (0.9, 0.3)
        );
        assert_eq!(judged.tolerance, 0.05);
        assert!(judged.drifted, "0.5 is more than 0.05 under 0.9");
        assert!(!judged.detector_alarm);
        assert_eq!(judged.trend, None, "the trend test is off");
        assert_eq!(labels.last(), Some(&judged));
        assert_eq!(labels.history(), [("labels to #4".to_owned(), 0.5)]);

        // The next window starts empty: a second label for each remembered row.
        assert!(
            labels
                .label(5, label("a", "no"), &classes())
                .window
                .is_none()
        );
        let next = labels
            .label(6, label("b", "no"), &classes())
            .window
            .unwrap();
        assert_eq!(
            (next.labels, next.accuracy, next.first_seq),
            (2, 0.5, Some(5))
        );
        assert_eq!(labels.history().len(), 2);
    }

    #[test]
    fn a_label_the_model_does_not_know_is_not_counted() {
        let mut labels = stream(1);
        labels.row(1, "a".into(), YES.to_vec(), &classes());
        assert_eq!(
            labels.label(2, label("a", "maybe"), &classes()),
            Judgement::default()
        );
        assert_eq!(labels.last(), None);
        let judged = labels
            .label(3, label("a", "yes"), &classes())
            .window
            .unwrap();
        assert_eq!((judged.labels, judged.accuracy), (1, 1.0));
        assert!(!judged.drifted);
    }

    #[test]
    fn a_page_hinkley_alarm_dates_the_change_and_marks_the_window() {
        // Alarms once the statistic rises 0.5 above its minimum, from the first label.
        let detector = PageHinkleyConfig {
            min_instances: 1,
            delta: 0.0,
            threshold: 0.5,
            alpha: 1.0,
        };
        let mut labels = with(4, detector, 0);
        for (seq, id) in [(1, "a"), (2, "b"), (3, "c")] {
            labels.row(seq, id.into(), YES.to_vec(), &classes());
        }
        // Errors 0, 1, 1: the statistic is 0, 0.5, then 0.5 + 1/3 > 0.5 at the third label.
        assert_eq!(
            labels.label(10, label("a", "yes"), &classes()),
            Judgement::default()
        );
        assert_eq!(
            labels.label(11, label("b", "no"), &classes()),
            Judgement::default()
        );
        let judgement = labels.label(12, label("c", "no"), &classes());
        assert_eq!(judgement.window, None, "three labels of four");
        let (change_seq, judged) = judgement.alarm.expect("the detector alarms");
        assert_eq!(change_seq, 11, "the first wrong label");
        assert_eq!(judged.labels, 3);
        assert!((judged.accuracy - 1.0 / 3.0).abs() < 1e-12);
        assert!(judged.detector_alarm && judged.drifted);
        assert_eq!(judged.first_seq, Some(10));

        // The detector starts over; the window it alarmed in stays marked until judged.
        let judgement = labels.label(13, label("a", "yes"), &classes());
        assert_eq!(judgement.alarm, None);
        let window = judgement.window.unwrap();
        assert_eq!((window.labels, window.accuracy), (4, 0.5));
        assert!(window.detector_alarm);
        // The next window is clean.
        for seq in 14..18 {
            labels.label(seq, label("a", "yes"), &classes());
        }
        let clean = labels.last().unwrap();
        assert_eq!((clean.labels, clean.accuracy), (4, 1.0));
        assert!(!clean.detector_alarm && !clean.drifted);
    }

    #[test]
    fn the_trend_test_judges_every_label_since_the_start() {
        let mut labels = with(4, PageHinkleyConfig::default(), 2);
        labels.row(1, "a".into(), YES.to_vec(), &classes());
        // Right, right, then wrong, wrong: the newest 2 at 0 against the older 2 at 1.
        for (seq, truth) in [(10, "yes"), (11, "yes"), (12, "no"), (13, "no")] {
            labels.label(seq, label("a", truth), &classes());
        }
        let judged = labels.last().unwrap();
        // Pooled 0.5: a standard error of sqrt(0.25 * (1/2 + 1/2)) = 0.5, a drop of 1: z 2.
        assert_eq!(
            judged.trend,
            Some(TrendVerdict {
                recent_labels: 2,
                recent_accuracy: 0.0,
                older_labels: 2,
                older_accuracy: 1.0,
                z: 2.0,
                threshold: 1.0,
                drifted: true,
                from_seq: 12,
            })
        );
    }

    #[test]
    fn the_chart_keeps_the_newest_sixty_windows() {
        let mut labels = stream(1);
        for i in 0..61u64 {
            let id = format!("row-{i}");
            labels.row(2 * i + 1, id.clone(), YES.to_vec(), &classes());
            let judged = labels
                .label(2 * i + 2, label(&id, "yes"), &classes())
                .window;
            assert_eq!(judged.map(|j| j.accuracy), Some(1.0));
        }
        let history = labels.history();
        assert_eq!(history.len(), 60);
        assert_eq!(
            history[0].0, "labels to #4",
            "the first window's point is gone"
        );
        assert_eq!(history[59], ("labels to #122".to_owned(), 1.0));
    }
}
