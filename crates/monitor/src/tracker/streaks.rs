//! Drift streaks: one window's verdict at Evidently's thresholds flags a calm feature now and
//! then (a distance of 0.1 is within sampling noise of a 500-row window); a real shift
//! persists. So a feature (or the prediction, under [`PREDICTION`]) is confirmed only once it
//! drifted in `confirm_windows` windows in a row, and its streak remembers where it began: the
//! start a drift event names, so a retrain reads from where the change began. Streaks are
//! saved in [`ModelState`] (`streaks`, `streak_starts`).

use std::collections::{BTreeMap, BTreeSet};

use mend_bus::events::DataWindow;
use mend_core::drift::DriftReport;

use crate::reports::PREDICTION_STREAK;
use crate::state::{ModelState, StreakStart};

/// The streak key of prediction drift.
pub(super) const PREDICTION: &str = PREDICTION_STREAK;

/// Updates the streaks with a window's verdicts and returns what is confirmed: drifted in
/// `confirm_windows` windows in a row. `window` is this window's start, which begins the
/// streak of a name that did not drift in the window before. A name that did not drift in
/// this window loses its streak.
pub(super) fn confirm(
    state: &mut ModelState,
    report: &DriftReport,
    window: StreakStart,
    confirm_windows: u32,
) -> BTreeSet<String> {
    let mut drifted: Vec<&str> = report.drifted_names();
    if report.prediction.as_ref().is_some_and(|p| p.drifted) {
        drifted.push(PREDICTION);
    }
    let previous = std::mem::take(&mut state.streaks);
    let mut previous_starts = std::mem::take(&mut state.streak_starts);
    let mut confirmed = BTreeSet::new();
    for name in drifted {
        let streak = previous.get(name).copied().unwrap_or(0) + 1;
        if streak >= confirm_windows {
            confirmed.insert(name.to_owned());
        }
        state.streaks.insert(name.to_owned(), streak);
        let start = match previous_starts.remove(name) {
            Some(start) if streak > 1 => StreakStart {
                rows: start.rows + window.rows,
                ..start
            },
            _ => window,
        };
        state.streak_starts.insert(name.to_owned(), start);
    }
    confirmed
}

/// The data-drift alarm: feature drift confirmed in at least `min_drifted_features` features,
/// or in any while the dataset drifts (the prediction's streak is not a feature).
pub(super) fn data_alarm(
    report: &DriftReport,
    confirmed: &BTreeSet<String>,
    min_drifted_features: usize,
) -> bool {
    let confirmed_features = report
        .features
        .iter()
        .filter(|f| confirmed.contains(f.name.as_str()))
        .count();
    confirmed_features > 0 && (report.dataset_drift || confirmed_features >= min_drifted_features)
}

/// The window an event about `names` reports: from the start of the earliest of their streaks
/// (where the drift began) to the end of the window that confirmed it. A name without a
/// recorded start, or a start after the confirming window's, leaves the confirming window.
pub(super) fn streak_window<'a>(
    starts: &BTreeMap<String, StreakStart>,
    names: impl Iterator<Item = &'a String>,
    confirming: &DataWindow,
) -> DataWindow {
    let earliest = names
        .filter_map(|name| starts.get(name))
        .min_by_key(|start| start.from_seq);
    match earliest {
        Some(start)
            if confirming
                .from_seq
                .is_none_or(|from| start.from_seq <= from) =>
        {
            DataWindow {
                from_seq: Some(start.from_seq),
                from_time_ms: start.from_time_ms,
                rows: Some(start.rows),
                ..confirming.clone()
            }
        }
        _ => confirming.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::fixtures::{feature, prediction, report};
    use super::*;

    fn start(from_seq: u64, rows: u64) -> StreakStart {
        StreakStart {
            from_seq,
            from_time_ms: Some(from_seq as i64 * 10),
            rows,
        }
    }

    fn names(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|&name| name.to_owned()).collect()
    }

    /// A window in which `drifted` drifted and `calm` did not.
    fn window(drifted: &[&str], calm: &[&str]) -> DriftReport {
        let features = drifted
            .iter()
            .map(|name| feature(name, true))
            .chain(calm.iter().map(|name| feature(name, false)))
            .collect();
        report(features, false)
    }

    #[test]
    fn drift_is_confirmed_after_enough_windows_in_a_row() {
        let mut state = ModelState::default();
        let first = confirm(&mut state, &window(&["x"], &["y"]), start(1, 100), 2);
        assert!(first.is_empty(), "one window is not enough");
        assert_eq!(state.streaks, BTreeMap::from([("x".to_owned(), 1)]));
        assert_eq!(state.streak_starts["x"], start(1, 100));

        let second = confirm(&mut state, &window(&["x", "y"], &[]), start(101, 50), 2);
        assert_eq!(second, names(&["x"]));
        assert_eq!(
            state.streaks,
            BTreeMap::from([("x".to_owned(), 2), ("y".to_owned(), 1)])
        );
        // x's streak keeps its start and counts both windows' rows; y's begins here.
        assert_eq!(
            state.streak_starts["x"],
            StreakStart {
                from_seq: 1,
                from_time_ms: Some(10),
                rows: 150,
            }
        );
        assert_eq!(state.streak_starts["y"], start(101, 50));

        // x calms down: its streak ends; y is confirmed in its second window.
        let third = confirm(&mut state, &window(&["y"], &["x"]), start(151, 50), 2);
        assert_eq!(third, names(&["y"]));
        assert_eq!(state.streaks, BTreeMap::from([("y".to_owned(), 2)]));
        assert_eq!(state.streak_starts.len(), 1);
        assert_eq!(state.streak_starts["y"].rows, 100);

        // x drifts again: a new streak from this window, not from its old start.
        confirm(&mut state, &window(&["x", "y"], &[]), start(201, 50), 2);
        assert_eq!(state.streak_starts["x"], start(201, 50));
        assert_eq!(state.streaks["y"], 3);
    }

    #[test]
    fn one_window_confirms_when_one_is_asked_for() {
        let mut state = ModelState::default();
        let confirmed = confirm(&mut state, &window(&["x"], &[]), start(1, 10), 1);
        assert_eq!(confirmed, names(&["x"]));
    }

    #[test]
    fn prediction_drift_has_its_own_streak() {
        let mut state = ModelState::default();
        let mut drifted = window(&[], &["x"]);
        drifted.prediction = Some(prediction(0.1, &[("yes", Some(0.3))]));
        assert!(confirm(&mut state, &drifted, start(1, 10), 2).is_empty());
        assert_eq!(state.streaks[PREDICTION], 1);
        assert_eq!(
            confirm(&mut state, &drifted, start(11, 10), 2),
            names(&[PREDICTION])
        );
        assert_eq!(state.streak_starts[PREDICTION].from_seq, 1);
        // A window whose prediction did not drift ends the streak.
        let mut calm = drifted.clone();
        calm.prediction = Some(prediction(0.1, &[("yes", Some(0.01))]));
        assert!(confirm(&mut state, &calm, start(21, 10), 2).is_empty());
        assert!(state.streaks.is_empty());
    }

    #[test]
    fn the_data_alarm_needs_enough_confirmed_features_or_dataset_drift() {
        let two = window(&["x", "y"], &["z"]);
        assert!(!data_alarm(&two, &names(&["x"]), 2), "one of two needed");
        assert!(data_alarm(&two, &names(&["x", "y"]), 2));
        let dataset = report(vec![feature("x", true), feature("y", false)], true);
        assert!(
            data_alarm(&dataset, &names(&["x"]), 2),
            "one is enough while the dataset drifts"
        );
        assert!(!data_alarm(&dataset, &names(&[]), 2), "nothing confirmed");
        assert!(
            !data_alarm(&dataset, &names(&[PREDICTION]), 1),
            "the prediction is not a feature"
        );
        assert!(
            !data_alarm(&two, &names(&["w"]), 1),
            "a name the report does not have"
        );
    }

    #[test]
    fn an_event_names_the_earliest_streak_start() {
        let starts = BTreeMap::from([
            ("x".to_owned(), start(1, 300)),
            ("y".to_owned(), start(101, 200)),
        ]);
        let confirming = DataWindow {
            from_time_ms: Some(2_010),
            to_time_ms: Some(3_000),
            ..DataWindow::sequence(201, 300, 100)
        };
        let both = names(&["y", "x"]);
        assert_eq!(
            streak_window(&starts, both.iter(), &confirming),
            DataWindow {
                from_seq: Some(1),
                from_time_ms: Some(10),
                rows: Some(300),
                to_seq: Some(300),
                to_time_ms: Some(3_000),
                last_rows: None,
            }
        );
        let y = names(&["y"]);
        let window = streak_window(&starts, y.iter(), &confirming);
        assert_eq!((window.from_seq, window.rows), (Some(101), Some(200)));
        // A name with no start (a state saved before starts were kept): the confirming window.
        let unknown = names(&["w"]);
        assert_eq!(
            streak_window(&starts, unknown.iter(), &confirming),
            confirming
        );
        // A start after the confirming window's cannot be the drift's: the confirming window.
        let late = BTreeMap::from([("x".to_owned(), start(250, 10))]);
        let x = names(&["x"]);
        assert_eq!(streak_window(&late, x.iter(), &confirming), confirming);
    }
}
