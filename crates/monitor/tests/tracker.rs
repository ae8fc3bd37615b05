#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The per-model state machine on its own, with no log or bus: time windows, labels that
//! arrive before their rows, logged predictions as rows, and a new champion ending episodes.

mod common;

use std::sync::Arc;

use common::*;
use mend_bus::events::DriftKind;
use mend_core::record::PredictionRecord;
use mend_core::report::escape::escape;
use mend_monitor::detector::PageHinkleyConfig;
use mend_monitor::performance::TrendConfig;
use mend_monitor::state::ModelState;
use mend_monitor::tracker::{Entry, Tracker, TrackerSettings};
use mend_monitor::{Champion, MonitorReport};
use mend_worlds::Regime;

fn settings() -> TrackerSettings {
    TrackerSettings {
        window_rows: 1_000,
        window_ms: None,
        label_window: 300,
        accuracy_tolerance: 0.05,
        min_drifted_features: 1,
        confirm_windows: 2,
        join_rows: 10_000,
        policy: Default::default(),
        detector: PageHinkleyConfig::default(),
        trend: TrendConfig::default(),
        summary: Default::default(),
    }
}

fn champion(version: u64) -> Champion {
    Champion {
        version,
        artifact: Arc::new(train(&Regime::default(), 1)),
    }
}

#[test]
fn time_windows_close_before_the_first_row_past_their_span() {
    let mut tracker = Tracker::new(
        model(),
        TrackerSettings {
            window_rows: 100_000,
            window_ms: Some(1_000),
            ..settings()
        },
        champion(1),
        ModelState::default(),
    );
    let (rows, _) = World::new().draw(600, &Regime::default());
    let entries: Vec<Entry> = rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| Entry::Row {
            seq: i as u64 + 1,
            // 300 rows in the first second, 300 in the third.
            ms: if i < 300 { i as i64 } else { 2_000 + i as i64 },
            row,
        })
        .collect();
    let out = tracker.process(entries, 600);
    assert_eq!(out.reports.len(), 1, "the second window is still open");
    let report = &out.reports[0].0;
    assert_eq!(report.drift.current_rows, 300);
    assert_eq!(report.window.from_seq, Some(1));
    assert_eq!(report.window.to_seq, Some(300));
    assert_eq!(report.window.to_time_ms, Some(299));
    assert_eq!(tracker.state.resume_seq, 301);
    assert_eq!(tracker.next_seq(), 601);
}

#[test]
fn labels_that_arrive_first_wait_for_their_rows() {
    let mut tracker = Tracker::new(model(), settings(), champion(1), ModelState::default());
    let (rows, labels) = World::new().draw(600, &flipped());
    let mut entries: Vec<Entry> = labels
        .into_iter()
        .enumerate()
        .map(|(i, label)| Entry::Label {
            seq: i as u64 + 1,
            label,
        })
        .collect();
    entries.extend(rows.into_iter().enumerate().map(|(i, row)| Entry::Row {
        seq: 601 + i as u64,
        ms: 0,
        row,
    }));
    let out = tracker.process(entries, 1_200);
    let accuracy = out.accuracy.expect("two label windows were judged");
    assert!(accuracy < 0.5, "a flipped concept: accuracy {accuracy}");
    let performance: Vec<_> = out
        .announcements
        .iter()
        .filter(|a| a.event.kind == DriftKind::Performance)
        .collect();
    assert_eq!(performance.len(), 1, "once per episode");
    assert!(tracker.state.episodes.performance);
}

#[test]
fn logged_predictions_are_rows_with_their_own_probabilities() {
    let mut tracker = Tracker::new(model(), settings(), champion(1), ModelState::default());
    let (rows, _) = World::new().draw(1_000, &Regime::default());
    // Every logged prediction says "yes" with certainty: prediction drift, inputs unchanged.
    let entries: Vec<Entry> = rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| Entry::Prediction {
            seq: i as u64 + 1,
            ms: 0,
            prediction: PredictionRecord {
                row_id: row.id,
                time_ms: 0,
                model_version: 1,
                values: row.values,
                probabilities: vec![0.0, 1.0],
                label: "yes".into(),
            },
        })
        .collect();
    let out = tracker.process(entries, 1_000);
    let report = &out.reports[0].0;
    assert_eq!(report.drift.current_rows, 1_000);
    assert!(report.drift.prediction.as_ref().unwrap().drifted);
    assert!(report.drift.drifted_names().is_empty());
    assert_eq!(
        report.estimated_accuracy,
        Some(1.0),
        "CBPE trusts the probabilities"
    );
}

/// Issue 17: one shifted feature of six is feature drift, confirmed over two windows into a
/// data-drift alarm, and no dataset drift (the share rule). The JSON, the page's headline and
/// the lines `mend report` prints must all say that, in the same words.
#[test]
fn one_drifted_feature_of_six_reads_the_same_in_the_json_and_on_the_page() {
    let mut tracker = Tracker::new(model(), settings(), champion(1), ModelState::default());
    let (rows, _) = World::new().draw(2_000, &shift(1.0));
    let entries: Vec<Entry> = rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| Entry::Row {
            seq: i as u64 + 1,
            ms: 0,
            row,
        })
        .collect();
    let out = tracker.process(entries, 2_000);
    assert_eq!(out.reports.len(), 2);
    let (first, first_page) = &out.reports[0];
    let (report, page) = &out.reports[1];

    // The verdicts, by name.
    assert_eq!(first.feature_drift, ["x0"]);
    assert!(
        !first.alarm.data && !first.data_drift,
        "one window confirms nothing"
    );
    assert_eq!(report.feature_drift, ["x0"]);
    assert_eq!(report.drift.drifted_features, 1);
    assert_eq!(report.drift.tested_features, 6);
    assert!(!report.dataset_drift && !report.drift.dataset_drift);
    assert!(
        report.alarm.data && report.data_drift,
        "confirmed by the second window"
    );
    assert_eq!(report.performance_drift, None);
    let json = serde_json::to_value(report).unwrap();
    assert_eq!(json["feature_drift"], serde_json::json!(["x0"]));
    assert_eq!(json["dataset_drift"], false);
    assert_eq!(json["alarm"]["data"], true);
    assert_eq!(json["data_drift"], true);
    assert_eq!(json["performance_drift"], serde_json::Value::Null);

    // The page opens with exactly the lines `mend report` prints.
    let lines: Vec<String> = report.verdicts().iter().map(|v| v.line()).collect();
    assert_eq!(
        lines[1],
        "dataset drift: no (1 of 6 features drifted, share 0.17 < 0.50)"
    );
    assert!(
        lines[0].starts_with("alarm: yes (data: feature drift confirmed in x0"),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("feature drift: yes (x0: "),
        "{lines:?}"
    );
    for line in &lines {
        assert!(page.contains(&escape(line)), "{line} not on the page");
    }
    assert!(!page.contains("dataset drift: yes"));
    assert!(
        first_page.contains("alarm: no (drift in this window is not confirmed yet"),
        "the first window's page"
    );

    // A report written before the verdicts were named (no such fields; `prediction_drift`
    // then meant confirmed) reads back named the same.
    let mut old = json.clone();
    let fields = old.as_object_mut().unwrap();
    for name in [
        "feature_drift",
        "dataset_drift",
        "performance_drift",
        "alarm",
    ] {
        assert!(fields.remove(name).is_some(), "{name}");
    }
    fields.insert("prediction_drift".into(), serde_json::Value::Bool(false));
    let mut back: MonitorReport = serde_json::from_value(old).unwrap();
    back.name_verdicts();
    assert_eq!(back.feature_drift, report.feature_drift);
    assert_eq!(back.dataset_drift, report.dataset_drift);
    assert_eq!(back.prediction_drift, report.prediction_drift);
    assert_eq!(back.performance_drift, report.performance_drift);
    assert_eq!(back.alarm, report.alarm);
    let back_lines: Vec<String> = back.verdicts().iter().map(|v| v.line()).collect();
    assert_eq!(back_lines, lines);
}

#[test]
fn a_new_champion_ends_the_saved_episodes() {
    let mut state = ModelState {
        resume_seq: 10,
        champion_version: Some(1),
        ..ModelState::default()
    };
    state.episodes.open(DriftKind::Data);
    state.streaks.insert("x0".into(), 3);
    let same = Tracker::new(model(), settings(), champion(1), state.clone());
    assert!(
        same.state.episodes.data,
        "same champion: the episode goes on"
    );
    assert_eq!(same.next_seq(), 10);
    let next = Tracker::new(model(), settings(), champion(2), state);
    assert!(!next.state.episodes.data);
    assert!(next.state.streaks.is_empty());
    assert_eq!(next.state.champion_version, Some(2));
}
