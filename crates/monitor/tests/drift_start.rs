#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Drift events name where the drift began (`window.from_seq`), in the data log's one
//! sequence space shared by rows and labels: the trainer retrains on the labels logged at or
//! after it. Data drift: the first entry of the first window of the confirming streak.
//! Performance drift: Page-Hinkley's estimated change point, or the first label of the label
//! window judged bad.

mod common;

use std::sync::Arc;

use common::*;
use mend_bus::events::{DriftDetected, DriftKind};
use mend_core::record::{LabelRecord, RowRecord};
use mend_monitor::Champion;
use mend_monitor::detector::PageHinkleyConfig;
use mend_monitor::performance::TrendConfig;
use mend_monitor::state::ModelState;
use mend_monitor::tracker::{Entry, Tracker, TrackerSettings};
use mend_worlds::Regime;

fn settings() -> TrackerSettings {
    TrackerSettings {
        window_rows: 1_000,
        window_ms: None,
        label_window: 500,
        accuracy_tolerance: 0.05,
        min_drifted_features: 1,
        confirm_windows: 2,
        join_rows: 100_000,
        policy: Default::default(),
        detector: PageHinkleyConfig::default(),
        trend: TrendConfig::default(),
        summary: Default::default(),
    }
}

fn tracker(settings: TrackerSettings) -> Tracker {
    let champion = Champion {
        version: 1,
        artifact: Arc::new(train(&Regime::default(), 1)),
    };
    Tracker::new(model(), settings, champion, ModelState::default())
}

/// Rows at odd sequences and each row's label right after it, as ingest logs them when a
/// producer sends both: rows and labels share one sequence space with gaps between a
/// kind's entries.
fn interleave(
    start_seq: u64,
    rows: Vec<RowRecord>,
    labels: Option<Vec<LabelRecord>>,
) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut seq = start_seq;
    let mut labels = labels.map(Vec::into_iter);
    for row in rows {
        entries.push(Entry::Row { seq, ms: 0, row });
        seq += 1;
        if let Some(label) = labels.as_mut().and_then(Iterator::next) {
            entries.push(Entry::Label { seq, label });
            seq += 1;
        }
    }
    entries
}

fn of_kind(events: &[DriftDetected], kind: DriftKind) -> Vec<&DriftDetected> {
    events.iter().filter(|event| event.kind == kind).collect()
}

#[test]
fn data_drift_starts_at_the_first_window_of_its_streak() {
    for confirm_windows in [2, 3] {
        data_drift_start(confirm_windows);
    }
}

fn data_drift_start(confirm_windows: u32) {
    let mut tracker = tracker(TrackerSettings {
        confirm_windows,
        ..settings()
    });
    let mut world = World::new();
    let mut events = Vec::new();
    // Three clean windows, then shifted ones; rows every other sequence (other models'
    // entries fill the gaps in a shared log).
    let mut seq = 1;
    let mut first_shifted = None;
    for window in 0..8 {
        let regime = if window < 3 {
            Regime::default()
        } else {
            shift(0.5)
        };
        let (rows, _) = world.draw(1_000, &regime);
        let entries: Vec<Entry> = rows
            .into_iter()
            .map(|row| {
                let entry = Entry::Row { seq, ms: 0, row };
                seq += 2;
                entry
            })
            .collect();
        if window == 3 {
            first_shifted = Some(entries[0].seq());
        }
        let read_to = seq - 1;
        let out = tracker.process(entries, read_to);
        events.extend(out.announcements.into_iter().map(|a| a.event));
    }
    let data = of_kind(&events, DriftKind::Data);
    assert_eq!(data.len(), 1, "one episode: {events:?}");
    let event = data[0];
    assert_eq!(event.features[0].feature, "x0");
    assert_eq!(
        event.window.from_seq, first_shifted,
        "confirm {confirm_windows}: the drift began with the first shifted window, not the one that confirmed it"
    );
    // The event spans the confirming streak, ending with the window that confirmed it.
    let rows = 1_000 * u64::from(confirm_windows);
    assert_eq!(event.window.rows, Some(rows));
    assert_eq!(
        event.window.to_seq,
        first_shifted.map(|from| from + 2 * (rows - 1))
    );
}

/// Feeds `good` labels of the trained concept, then flipped ones, a row and its label at a
/// time; returns the performance events and the sequence of the first flipped label.
fn flip_after(good: usize, settings: TrackerSettings) -> (Vec<DriftDetected>, u64) {
    let mut tracker = tracker(settings);
    let mut world = World::new();
    let (rows, labels) = world.draw(good, &Regime::default());
    let mut entries = interleave(1, rows, Some(labels));
    let next = entries.last().map_or(1, |entry| entry.seq() + 1);
    let (rows, labels) = world.draw(2_000, &flipped());
    let flipped_entries = interleave(next, rows, Some(labels));
    let first_flipped_label = flipped_entries[1].seq();
    entries.extend(flipped_entries);
    let read_to = entries.last().unwrap().seq();
    let out = tracker.process(entries, read_to);
    let events = out
        .announcements
        .into_iter()
        .map(|a| a.event)
        .filter(|event| event.kind == DriftKind::Performance)
        .collect();
    (events, first_flipped_label)
}

#[test]
fn page_hinkley_names_the_change_point() {
    // A wide tolerance: only the detector judges here.
    let detector_only = TrackerSettings {
        accuracy_tolerance: 0.3,
        ..settings()
    };
    let (events, change) = flip_after(3_200, detector_only);
    assert_eq!(events.len(), 1, "once per episode: {events:?}");
    let event = &events[0];
    assert_eq!(event.features[0].method, "page_hinkley");
    let from = event.window.from_seq.expect("a start");
    let to = event.window.to_seq.expect("an end");
    // Labels are every other sequence: 20 sequences is 10 labels.
    assert!(
        from.abs_diff(change) <= 20,
        "estimated start {from}, the first flipped label is at {change}"
    );
    assert!(to > change && from <= to, "window {from}..={to}");
}

#[test]
fn the_accuracy_rule_names_the_first_label_of_the_bad_window() {
    // Page-Hinkley switched off: the rolling accuracy alone judges, with a tolerance that a
    // calm window of 500 labels does not cross by chance.
    let quiet = TrackerSettings {
        detector: PageHinkleyConfig {
            threshold: f64::INFINITY,
            ..PageHinkleyConfig::default()
        },
        accuracy_tolerance: 0.1,
        ..settings()
    };
    let (events, change) = flip_after(3_200, quiet);
    assert_eq!(events.len(), 1, "once per episode: {events:?}");
    let event = &events[0];
    assert_eq!(event.features[0].method, "accuracy");
    // Label windows of 500: the seventh (labels 3,001..3,500) is the first with flipped
    // labels (its last 300), and is judged bad. Its first label is label 3,001: 200 labels,
    // 400 sequences, before the first flipped one.
    assert_eq!(event.window.from_seq, Some(change - 400));
    assert_eq!(event.window.rows, Some(500));
}

#[test]
fn a_label_waiting_for_its_row_keeps_its_own_sequence() {
    // Labels logged before their rows: the drift's start is where the labels were logged
    // (what the trainer filters by), not where the row that joined them was.
    let quiet = TrackerSettings {
        detector: PageHinkleyConfig {
            threshold: f64::INFINITY,
            ..PageHinkleyConfig::default()
        },
        label_window: 1_000,
        ..settings()
    };
    let mut tracker = tracker(quiet);
    let (rows, labels) = World::new().draw(1_000, &flipped());
    let mut entries: Vec<Entry> = labels
        .into_iter()
        .enumerate()
        .map(|(i, label)| Entry::Label {
            seq: 10 + i as u64,
            label,
        })
        .collect();
    entries.extend(rows.into_iter().enumerate().map(|(i, row)| Entry::Row {
        seq: 5_000 + i as u64,
        ms: 0,
        row,
    }));
    let out = tracker.process(entries, 5_999);
    let events: Vec<_> = out
        .announcements
        .into_iter()
        .map(|a| a.event)
        .filter(|event| event.kind == DriftKind::Performance)
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].window.from_seq, Some(10));
    assert_eq!(events[0].window.to_seq, Some(5_999));
}

#[test]
fn the_trend_test_finds_a_slide_the_tolerance_does_not_and_names_its_recent_labels() {
    // Neither Page-Hinkley nor the tolerance judge here: only the accuracy-trend test.
    let trend_only = TrackerSettings {
        detector: PageHinkleyConfig {
            threshold: f64::INFINITY,
            ..PageHinkleyConfig::default()
        },
        accuracy_tolerance: 1.0,
        trend: TrendConfig {
            window: 1_000,
            z: 3.5,
        },
        ..settings()
    };
    // 3,000 labels of the trained concept, then 2,000 with the boundary turned 50 degrees.
    let run = |settings: TrackerSettings| {
        let mut tracker = tracker(settings);
        let mut world = World::new();
        let (rows, labels) = world.draw(3_000, &Regime::default());
        let mut entries = interleave(1, rows, Some(labels));
        let next = entries.last().map_or(1, |entry| entry.seq() + 1);
        let turned = Regime {
            rotation: 50f64.to_radians(),
            ..Regime::default()
        };
        let (rows, labels) = world.draw(2_000, &turned);
        entries.extend(interleave(next, rows, Some(labels)));
        let read_to = entries.last().unwrap().seq();
        let out = tracker.process(entries, read_to);
        out.announcements
            .into_iter()
            .map(|a| a.event)
            .filter(|event| event.kind == DriftKind::Performance)
            .collect::<Vec<_>>()
    };
    let events = run(trend_only.clone());
    assert_eq!(events.len(), 1, "once per episode: {events:?}");
    let event = &events[0];
    assert_eq!(event.features[0].method, "accuracy_trend");
    assert!(event.features[0].score >= 3.5, "{:?}", event.features[0]);
    assert!(event.metrics["trend.recent_accuracy"] < event.metrics["trend.older_accuracy"]);
    // Tested every 500 labels: the window it fired on ends at label 3,500, 4,000, 4,500 or
    // 5,000, and its start is the first of the newest 1,000 labels there (label k at
    // sequence 2k).
    let to = event.window.to_seq.unwrap();
    let from = event.window.from_seq.unwrap();
    assert_eq!(to % 1_000, 0, "a window boundary: {to}");
    assert!((7_000..=10_000).contains(&to), "{to}");
    assert_eq!(
        from,
        to - 2 * 1_000 + 2,
        "the newest 1,000 labels: {from}..={to}"
    );
    // With the trend test off, the same labels raise nothing.
    let off = TrackerSettings {
        trend: TrendConfig {
            window: 0,
            ..TrendConfig::default()
        },
        ..trend_only
    };
    assert!(run(off).is_empty());
}
