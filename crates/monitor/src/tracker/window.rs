//! The open data window: the bounded summary of the rows read since the last completed window,
//! where the window starts and ends (by sequence and by log time), and the sums behind its
//! label-free accuracy estimate (CBPE). A window closes after `window_rows` rows or, with a
//! time span, before the first row past it; the tracker then compares it with the reference
//! and opens a fresh one.

use mend_bus::events::DataWindow;
use mend_core::drift::WindowSummary;
use mend_core::record::Values;

use crate::performance::confidence;
use crate::state::StreakStart;

/// The window being filled.
#[derive(Debug)]
pub(super) struct OpenWindow {
    summary: WindowSummary,
    /// Sequence of the window's first row.
    from_seq: Option<u64>,
    /// Sequence of its newest row.
    last_seq: Option<u64>,
    /// Log times of its first and newest rows.
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    /// The top probabilities of its scored rows, summed, and how many there were.
    confidence_sum: f64,
    confidence_rows: u64,
}

impl OpenWindow {
    /// An empty window summarised into `summary` (fresh, laid out for the reference).
    pub(super) fn new(summary: WindowSummary) -> Self {
        OpenWindow {
            summary,
            from_seq: None,
            last_seq: None,
            from_ms: None,
            to_ms: None,
            confidence_sum: 0.0,
            confidence_rows: 0,
        }
    }

    /// When windows also close by time (`span` ms from their first row), the last sequence of
    /// this window if a row logged at `ms` falls past its span: the window closes before that
    /// row, which opens the next. `None` for an empty window.
    pub(super) fn overrun(&self, span: Option<i64>, ms: i64) -> Option<u64> {
        match (span, self.from_ms, self.last_seq) {
            (Some(span), Some(from_ms), Some(last)) if ms - from_ms >= span => Some(last),
            _ => None,
        }
    }

    /// Adds a row's values, logged at sequence `seq` and time `ms`.
    pub(super) fn push_row(&mut self, seq: u64, ms: i64, values: &Values) {
        self.summary.push_values(values);
        self.from_seq.get_or_insert(seq);
        self.last_seq = Some(seq);
        self.from_ms.get_or_insert(ms);
        self.to_ms = Some(ms);
    }

    /// Adds the champion's probabilities for the row just pushed.
    pub(super) fn push_probabilities(&mut self, probabilities: &[f64]) {
        self.summary.push_probabilities(probabilities);
        self.confidence_sum += confidence(probabilities);
        self.confidence_rows += 1;
    }

    /// Rows in the window.
    pub(super) fn rows(&self) -> u64 {
        self.summary.rows
    }

    /// What the window is compared with the reference by.
    pub(super) fn summary(&self) -> &WindowSummary {
        &self.summary
    }

    /// Expected accuracy from predicted probabilities alone (CBPE): the mean top probability
    /// of the scored rows; `None` when no row was scored.
    pub(super) fn estimated_accuracy(&self) -> Option<f64> {
        (self.confidence_rows > 0).then(|| self.confidence_sum / self.confidence_rows as f64)
    }

    /// The window as events and reports name it, ending at `last_seq` (which also stands in
    /// for its start when it holds no row).
    pub(super) fn bounds(&self, last_seq: u64) -> DataWindow {
        let mut window = DataWindow::sequence(
            self.from_seq.unwrap_or(last_seq),
            last_seq,
            self.summary.rows,
        );
        window.from_time_ms = self.from_ms;
        window.to_time_ms = self.to_ms;
        window
    }

    /// The start of a streak this window (ending at `last_seq`) would begin.
    pub(super) fn streak_start(&self, last_seq: u64) -> StreakStart {
        StreakStart {
            from_seq: self.from_seq.unwrap_or(last_seq),
            from_time_ms: self.from_ms,
            rows: self.summary.rows,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use mend_core::drift::{FeatureLayout, SummaryConfig};
    use mend_core::record::Value;

    use super::*;

    fn empty() -> OpenWindow {
        OpenWindow::new(WindowSummary::new(
            &[FeatureLayout::numeric("x")],
            &["no".to_owned(), "yes".to_owned()],
            SummaryConfig::default(),
        ))
    }

    fn values(x: f64) -> Values {
        Values::from([("x", Value::Number(x))])
    }

    #[test]
    fn a_window_spans_its_first_and_newest_rows() {
        let mut window = empty();
        window.push_row(5, 100, &values(1.0));
        window.push_row(7, 250, &values(2.0));
        window.push_row(9, 260, &values(3.0));
        assert_eq!(window.rows(), 3);
        assert_eq!(window.summary().rows, 3);
        assert_eq!(
            window.bounds(9),
            DataWindow {
                from_seq: Some(5),
                to_seq: Some(9),
                from_time_ms: Some(100),
                to_time_ms: Some(260),
                rows: Some(3),
                last_rows: None,
            }
        );
        assert_eq!(
            window.streak_start(9),
            StreakStart {
                from_seq: 5,
                from_time_ms: Some(100),
                rows: 3,
            }
        );
    }

    #[test]
    fn an_empty_window_is_named_by_its_end() {
        let window = empty();
        assert_eq!(window.bounds(12), DataWindow::sequence(12, 12, 0));
        assert_eq!(
            window.streak_start(12),
            StreakStart {
                from_seq: 12,
                from_time_ms: None,
                rows: 0,
            }
        );
    }

    #[test]
    fn a_time_window_closes_before_the_first_row_past_its_span() {
        let mut window = empty();
        assert_eq!(window.overrun(Some(200), 1_000), None, "nothing to close");
        window.push_row(5, 100, &values(1.0));
        window.push_row(7, 250, &values(2.0));
        assert_eq!(window.overrun(None, 1_000_000), None, "no span: rows only");
        assert_eq!(
            window.overrun(Some(200), 299),
            None,
            "199 ms after the first row"
        );
        assert_eq!(
            window.overrun(Some(200), 300),
            Some(7),
            "200 ms: past the span"
        );
    }

    #[test]
    fn the_estimate_is_the_mean_top_probability_of_scored_rows() {
        let mut window = empty();
        window.push_row(1, 0, &values(1.0));
        assert_eq!(window.estimated_accuracy(), None, "no row scored yet");
        window.push_probabilities(&[0.3, 0.7]);
        window.push_row(2, 0, &values(1.0));
        window.push_probabilities(&[0.9, 0.1]);
        // An unscored row counts in the window but not in the estimate.
        window.push_row(3, 0, &values(1.0));
        let estimate = window.estimated_accuracy().unwrap();
        assert!(
            (estimate - 0.8).abs() < 1e-12,
            "(0.7 + 0.9) / 2, got {estimate}"
        );
        assert_eq!(window.rows(), 3);
        assert_eq!(window.summary().prediction.rows, 2);
        assert_eq!(window.summary().prediction.predicted, [1, 1]);
    }
}
