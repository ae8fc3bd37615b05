//! The `drift.detected` events the tracker announces, one builder per kind (data, prediction,
//! performance), each from the evidence that raised it. Each event carries an id
//! fixed by the model, the champion, the kind and the sequence it was decided at, so
//! publishing it again after a retry or a restart stores it once.

use std::collections::{BTreeMap, BTreeSet};

use mend_bus::ModelName;
use mend_bus::events::{DataWindow, DriftDetected, DriftKind, FeatureDrift};
use mend_core::drift::StatTest;

use super::Announcement;
use crate::performance::PerformanceWindow;
use crate::reports::MonitorReport;

/// Performance drift found by the Page-Hinkley detector on the error stream.
const PAGE_HINKLEY: &str = "page_hinkley";
/// Performance drift found by a window of labels against the holdout accuracy.
const ACCURACY: &str = "accuracy";
/// Performance drift found by the accuracy-trend test alone.
const ACCURACY_TREND: &str = "accuracy_trend";

/// Whom the events are about: the model and the champion its data was compared with.
#[derive(Debug, Clone, Copy)]
pub(super) struct Subject<'a> {
    pub(super) model: &'a ModelName,
    pub(super) champion_version: u64,
}

impl Subject<'_> {
    fn event_id(&self, kind: &str, seq: u64) -> String {
        format!(
            "monitor-{}-{kind}-v{}-{seq}",
            self.model.as_str(),
            self.champion_version
        )
    }

    /// Performance drift the Page-Hinkley detector found at `seq`, the change estimated at
    /// label sequence `change_seq`; `judged` is the labels of the open window so far.
    pub(super) fn page_hinkley(
        &self,
        change_seq: u64,
        seq: u64,
        judged: &PerformanceWindow,
    ) -> Announcement {
        self.performance(change_seq, seq, judged, PAGE_HINKLEY)
    }

    /// Performance drift a full window of labels, judged at `seq`, shows: from its first label
    /// or, when only the trend test saw the drift, from the first of the trend's recent labels
    /// (a slide only the trend test sees began within them).
    pub(super) fn label_window(&self, seq: u64, judged: &PerformanceWindow) -> Announcement {
        let (from_seq, method) = match &judged.trend {
            Some(trend) if judged.drifted_by_trend_only() => (trend.from_seq, ACCURACY_TREND),
            _ => (judged.first_seq.unwrap_or(seq), ACCURACY),
        };
        self.performance(from_seq, seq, judged, method)
    }

    /// A performance drift event over labels `from_seq..=seq`: `from_seq` is the estimated
    /// change point (Page-Hinkley) or the first label of the window judged bad (accuracy).
    fn performance(
        &self,
        from_seq: u64,
        seq: u64,
        judged: &PerformanceWindow,
        method: &str,
    ) -> Announcement {
        let mut metrics = BTreeMap::new();
        metrics.insert("accuracy".to_owned(), judged.accuracy);
        metrics.insert("log_loss".to_owned(), judged.log_loss);
        metrics.insert("baseline_accuracy".to_owned(), judged.baseline_accuracy);
        metrics.insert("baseline_log_loss".to_owned(), judged.baseline_log_loss);
        metrics.insert("labels".to_owned(), judged.labels as f64);
        if let Some(trend) = &judged.trend {
            metrics.insert("trend.recent_accuracy".to_owned(), trend.recent_accuracy);
            metrics.insert("trend.older_accuracy".to_owned(), trend.older_accuracy);
            metrics.insert("trend.older_labels".to_owned(), trend.older_labels as f64);
            metrics.insert("trend.z".to_owned(), trend.z);
        }
        let (score, threshold) = match &judged.trend {
            Some(trend) if method == ACCURACY_TREND => (trend.z, trend.threshold),
            _ => (
                (judged.baseline_accuracy - judged.accuracy).max(0.0),
                judged.tolerance,
            ),
        };
        Announcement {
            id: self.event_id("performance", seq),
            event: DriftDetected {
                kind: DriftKind::Performance,
                window: DataWindow {
                    from_seq: Some(from_seq.min(seq)),
                    to_seq: Some(seq),
                    rows: Some(judged.labels),
                    ..DataWindow::default()
                },
                features: vec![FeatureDrift {
                    feature: "accuracy".to_owned(),
                    method: method.to_owned(),
                    score,
                    threshold,
                    drifted: true,
                }],
                dataset_share: 0.0,
                dataset_drift: false,
                report_id: None,
                champion_version: Some(self.champion_version),
                metrics,
            },
        }
    }

    /// Data drift in a window's `report`: the features that drifted in it and are
    /// `confirmed`, over `window` (from the start of their streaks).
    pub(super) fn data(
        &self,
        report: &MonitorReport,
        confirmed: &BTreeSet<String>,
        window: DataWindow,
    ) -> Announcement {
        let features = report
            .drift
            .features
            .iter()
            .filter(|f| f.drifted && confirmed.contains(&f.name))
            .map(|f| FeatureDrift {
                feature: f.name.clone(),
                method: f.test.map(test_name).unwrap_or_default(),
                score: f.score.unwrap_or(0.0),
                threshold: f.threshold,
                drifted: true,
            })
            .collect();
        Announcement {
            id: self.event_id("data", window.to_seq.unwrap_or_default()),
            event: DriftDetected {
                kind: DriftKind::Data,
                window,
                features,
                dataset_share: report.drift.drift_share,
                dataset_drift: report.drift.dataset_drift,
                report_id: Some(report.id.clone()),
                champion_version: Some(self.champion_version),
                metrics: BTreeMap::new(),
            },
        }
    }

    /// Prediction drift in a window's `report`, over `window` (from the start of its streak):
    /// each class's Jensen-Shannon distance, and the window's CBPE estimate when it has one.
    pub(super) fn prediction(&self, report: &MonitorReport, window: DataWindow) -> Announcement {
        let features = report
            .drift
            .prediction
            .iter()
            .flat_map(|p| {
                p.classes.iter().map(move |class| FeatureDrift {
                    feature: format!("prediction:{}", class.class),
                    method: "jensen_shannon".to_owned(),
                    score: class.jensen_shannon.unwrap_or(0.0),
                    threshold: p.threshold,
                    drifted: class.jensen_shannon.is_some_and(|js| js >= p.threshold),
                })
            })
            .collect();
        let mut metrics = BTreeMap::new();
        if let Some(estimate) = report.estimated_accuracy {
            metrics.insert("estimated_accuracy".to_owned(), estimate);
        }
        Announcement {
            id: self.event_id("prediction", window.to_seq.unwrap_or_default()),
            event: DriftDetected {
                kind: DriftKind::Prediction,
                window,
                features,
                dataset_share: report.drift.drift_share,
                dataset_drift: report.drift.dataset_drift,
                report_id: Some(report.id.clone()),
                champion_version: Some(self.champion_version),
                metrics,
            },
        }
    }
}

/// A test's name as the policy spells it (`ks`, `chi_square`, …).
fn test_name(test: StatTest) -> String {
    serde_json::to_value(test)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| test.label().to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::fixtures::{feature, model, monitor_report, prediction, report};
    use super::*;
    use crate::performance::TrendVerdict;

    fn v3(model: &ModelName) -> Subject<'_> {
        Subject {
            model,
            champion_version: 3,
        }
    }

    /// What an event says about one feature (or class, or the accuracy).
    fn says(
        feature: &str,
        method: &str,
        score: f64,
        threshold: f64,
        drifted: bool,
    ) -> FeatureDrift {
        FeatureDrift {
            feature: feature.to_owned(),
            method: method.to_owned(),
            score,
            threshold,
            drifted,
        }
    }

    fn metric(announcement: &Announcement, name: &str) -> f64 {
        announcement.event.metrics[name]
    }

    /// 40 labels at 0.6 against a holdout at 0.9 (tolerance 0.05), the first logged at 100.
    fn bad_labels() -> PerformanceWindow {
        PerformanceWindow {
            labels: 40,
            accuracy: 0.6,
            log_loss: 0.9,
            baseline_accuracy: 0.9,
            baseline_log_loss: 0.3,
            tolerance: 0.05,
            detector_alarm: false,
            drifted: true,
            first_seq: Some(100),
            trend: None,
        }
    }

    fn slide() -> TrendVerdict {
        TrendVerdict {
            recent_labels: 1_000,
            recent_accuracy: 0.8,
            older_labels: 3_000,
            older_accuracy: 0.9,
            z: 4.5,
            threshold: 4.0,
            drifted: true,
            from_seq: 70,
        }
    }

    #[test]
    fn a_page_hinkley_alarm_names_the_change_point() {
        let churn = model();
        let subject = v3(&churn);
        let judged = PerformanceWindow {
            detector_alarm: true,
            ..bad_labels()
        };
        let alarm = subject.page_hinkley(120, 150, &judged);
        assert_eq!(alarm.id, "monitor-churn-performance-v3-150");
        let event = &alarm.event;
        assert_eq!(event.kind, DriftKind::Performance);
        assert_eq!(
            event.window,
            DataWindow {
                from_seq: Some(120),
                to_seq: Some(150),
                rows: Some(40),
                ..DataWindow::default()
            }
        );
        // The drop below the holdout, against the tolerance.
        let fall = 0.9 - 0.6;
        assert_eq!(
            event.features,
            [says("accuracy", "page_hinkley", fall, 0.05, true)]
        );
        assert_eq!(
            event.metrics.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "accuracy",
                "baseline_accuracy",
                "baseline_log_loss",
                "labels",
                "log_loss"
            ]
        );
        assert_eq!(metric(&alarm, "labels"), 40.0);
        assert_eq!(metric(&alarm, "baseline_log_loss"), 0.3);
        assert_eq!(
            (event.report_id.as_deref(), event.champion_version),
            (None, Some(3))
        );
        assert!(!event.dataset_drift && event.dataset_share == 0.0);
        // A change point past the alarm's own label is clamped to it.
        let late = subject.page_hinkley(200, 150, &judged);
        assert_eq!(late.event.window.from_seq, Some(150));
        // Accuracy above the baseline scores 0, not a negative drop.
        let better = subject.page_hinkley(
            120,
            150,
            &PerformanceWindow {
                accuracy: 0.95,
                ..judged
            },
        );
        assert_eq!(better.event.features[0].score, 0.0);
    }

    #[test]
    fn a_label_window_names_its_first_label_or_the_trend() {
        let churn = model();
        let subject = v3(&churn);
        let window = subject.label_window(400, &bad_labels());
        assert_eq!(window.id, "monitor-churn-performance-v3-400");
        assert_eq!(window.event.window.from_seq, Some(100));
        assert_eq!(window.event.features[0].method, "accuracy");
        let unknown_first = PerformanceWindow {
            first_seq: None,
            ..bad_labels()
        };
        assert_eq!(
            subject
                .label_window(400, &unknown_first)
                .event
                .window
                .from_seq,
            Some(400)
        );

        // Within tolerance of the holdout, no detector alarm: only the trend saw it.
        let trend_only = PerformanceWindow {
            accuracy: 0.88,
            trend: Some(slide()),
            ..bad_labels()
        };
        let trend = subject.label_window(400, &trend_only);
        assert_eq!(trend.event.window.from_seq, Some(70));
        assert_eq!(
            trend.event.features,
            [says("accuracy", "accuracy_trend", 4.5, 4.0, true)]
        );
        assert_eq!(trend.event.metrics.len(), 9);
        assert_eq!(metric(&trend, "trend.recent_accuracy"), 0.8);
        assert_eq!(metric(&trend, "trend.older_accuracy"), 0.9);
        assert_eq!(metric(&trend, "trend.older_labels"), 3_000.0);
        assert_eq!(metric(&trend, "trend.z"), 4.5);

        // Under the tolerance it is the accuracy's event, the trend reported alongside.
        let both = PerformanceWindow {
            trend: Some(slide()),
            ..bad_labels()
        };
        let event = subject.label_window(400, &both);
        assert_eq!(event.event.window.from_seq, Some(100));
        assert_eq!(event.event.features[0].method, "accuracy");
        assert_eq!(event.event.features[0].threshold, 0.05);
        assert_eq!(event.event.metrics.len(), 9);
    }

    #[test]
    fn a_data_event_lists_the_confirmed_drifted_features() {
        let churn = model();
        let subject = v3(&churn);
        let chi = mend_core::drift::FeatureDrift {
            test: Some(StatTest::ChiSquare),
            score: None,
            threshold: 0.01,
            ..feature("c0", true)
        };
        let untested = mend_core::drift::FeatureDrift {
            test: None,
            ..feature("c1", true)
        };
        let drift = report(
            vec![
                feature("x0", true),
                feature("x1", true),
                feature("x2", false),
                chi,
                untested,
            ],
            true,
        );
        let report = monitor_report(drift, DataWindow::sequence(201, 300, 100), None);
        let confirmed: BTreeSet<String> = ["x0", "x2", "c0", "c1"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let streak = DataWindow::sequence(1, 300, 300);
        let data = subject.data(&report, &confirmed, streak.clone());
        assert_eq!(data.id, "monitor-churn-data-v3-300");
        assert_eq!(data.event.kind, DriftKind::Data);
        assert_eq!(data.event.window, streak);
        // x1 drifted but is not confirmed; x2 is confirmed but did not drift in this window.
        assert_eq!(
            data.event.features,
            [
                says("x0", "ks", 0.01, 0.05, true),
                says("c0", "chi_square", 0.0, 0.01, true),
                says("c1", "", 0.01, 0.05, true),
            ]
        );
        assert_eq!(data.event.dataset_share, 0.8, "4 of 5 drifted");
        assert!(data.event.dataset_drift);
        assert_eq!(
            data.event.report_id.as_deref(),
            Some("00000000000000000300")
        );
        assert_eq!(data.event.champion_version, Some(3));
        assert!(data.event.metrics.is_empty());
    }

    #[test]
    fn a_prediction_event_lists_every_class() {
        let churn = model();
        let subject = v3(&churn);
        let mut drift = report(vec![feature("x0", false)], false);
        drift.prediction = Some(prediction(0.1, &[("yes", Some(0.25)), ("no", None)]));
        let report = monitor_report(drift, DataWindow::sequence(201, 300, 100), Some(0.75));
        let event = subject.prediction(&report, DataWindow::sequence(101, 300, 200));
        assert_eq!(event.id, "monitor-churn-prediction-v3-300");
        assert_eq!(event.event.kind, DriftKind::Prediction);
        assert_eq!(event.event.window, DataWindow::sequence(101, 300, 200));
        assert_eq!(
            event.event.features,
            [
                says("prediction:yes", "jensen_shannon", 0.25, 0.1, true),
                says("prediction:no", "jensen_shannon", 0.0, 0.1, false),
            ]
        );
        assert_eq!(
            event.event.metrics,
            BTreeMap::from([("estimated_accuracy".to_owned(), 0.75)])
        );
        assert_eq!(event.event.dataset_share, 0.0);
        let unestimated = monitor_report(
            report.drift.clone(),
            DataWindow::sequence(201, 300, 100),
            None,
        );
        assert!(
            subject
                .prediction(&unestimated, DataWindow::sequence(201, 300, 100))
                .event
                .metrics
                .is_empty()
        );
    }

    #[test]
    fn test_names_are_the_policy_spellings() {
        assert_eq!(test_name(StatTest::Ks), "ks");
        assert_eq!(test_name(StatTest::ChiSquare), "chi_square");
        assert_eq!(test_name(StatTest::ZTest), "z_test");
        assert_eq!(test_name(StatTest::Wasserstein), "wasserstein");
        assert_eq!(test_name(StatTest::JensenShannon), "jensen_shannon");
        assert_eq!(test_name(StatTest::Psi), "psi");
    }
}
