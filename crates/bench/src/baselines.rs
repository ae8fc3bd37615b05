//! The offline contenders of `mend bench-heal --stream`, replayed in this process on the rows
//! the services saw, under the same prequential protocol: every row is predicted before its
//! label is learned, and with a label delay of D rows the label of row i is known only once
//! row i + D has been served.
//!
//! - *static*: the first model, never retrained.
//! - *blind every k*: at every k-th streamed row (k, 2k, ... before the stream's end; a retrain
//!   after the last row would serve nothing), retrain on the newest k labeled rows known then
//!   (train rows included while the stream has fewer) and swap unconditionally.
//! - *oracle*: told the drift points; for each point p it retrains on rows [p, p + N) as soon
//!   as their labels are known (row p + N + D) and swaps unconditionally.
//! - *online*: [`crate::online::OnlineLogistic`], warmed on the train rows in one pass, then
//!   predicting each row and learning each label as it becomes known.
//!
//! Rows are indexed in one frame holding the train rows, then the streamed rows.

use std::ops::Range;

use anyhow::{Context, Result};
use mend_core::metrics::argmax;
use mend_core::{Artifact, Column, Frame, Schema, TrainSettings};

use crate::online::{Cell, OnlineLogistic};

/// A model swap: from stream row `at` on, the model trained on frame rows `window` serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swap {
    pub at: usize,
    pub window: Range<usize>,
}

/// What a replayed contender did: whether it got each streamed row right, and its retrains.
#[derive(Debug, Clone, Default)]
pub struct Replayed {
    pub right: Vec<bool>,
    /// Stream rows from which each new model served.
    pub retrained_at: Vec<usize>,
    /// Retrains whose training failed (the previous model kept serving).
    pub failed: Vec<(usize, String)>,
}

/// The labeled rows of a run: `frame` holds `train_rows` train rows, then the streamed ones.
pub struct History<'a> {
    pub schema: &'a Schema,
    pub frame: &'a Frame,
    pub train_rows: usize,
}

impl History<'_> {
    pub fn stream_rows(&self) -> usize {
        self.frame.len() - self.train_rows
    }

    fn labels(&self) -> &[usize] {
        self.frame.labels.as_deref().unwrap_or(&[])
    }

    /// Frame rows `range`.
    pub fn rows(&self, range: Range<usize>) -> Frame {
        self.frame.select(&range.collect::<Vec<_>>())
    }
}

/// The blind retrainer's swaps: every `every` streamed rows, the newest `every` labeled rows.
pub fn blind_schedule(train_rows: usize, rows: usize, every: usize, delay: usize) -> Vec<Swap> {
    if every == 0 {
        return Vec::new();
    }
    (1..)
        .map(|m| m * every)
        .take_while(|&at| at < rows)
        .map(|at| {
            // Labels known after serving stream rows [0, at): rows below at - delay.
            let end = (train_rows + at).saturating_sub(delay);
            Swap {
                at,
                window: end.saturating_sub(every)..end,
            }
        })
        .collect()
}

/// The oracle's swaps: for each drift point p, rows [p, p + after) once all their labels are
/// known, at stream row p + after + delay (if the stream is still going then).
pub fn oracle_schedule(
    train_rows: usize,
    rows: usize,
    points: &[usize],
    after: usize,
    delay: usize,
) -> Vec<Swap> {
    let mut points = points.to_vec();
    points.sort_unstable();
    points.dedup();
    points
        .into_iter()
        .filter(|_| after > 0)
        .map(|p| Swap {
            at: p + after + delay,
            window: train_rows + p..train_rows + p + after,
        })
        .filter(|swap| swap.at < rows)
        .collect()
}

/// Replays the first model with `swaps` (in stream order) over the stream.
pub fn replay_swaps(
    history: &History<'_>,
    first: &Artifact,
    settings: &TrainSettings,
    swaps: &[Swap],
) -> Result<Replayed> {
    let rows = history.stream_rows();
    let mut out = Replayed::default();
    let mut model = first.clone();
    let mut from = 0;
    for swap in swaps {
        predict_into(history, &model, from..swap.at, &mut out.right)?;
        from = swap.at;
        let window = history.rows(swap.window.clone());
        match mend_core::train(history.schema, &window, settings) {
            Ok(trained) => {
                model = trained;
                out.retrained_at.push(swap.at);
            }
            Err(e) => out.failed.push((swap.at, e.to_string())),
        }
    }
    predict_into(history, &model, from..rows, &mut out.right)?;
    debug_assert_eq!(out.right.len(), rows);
    Ok(out)
}

/// Appends, for stream rows `range`, whether `model` predicts each right.
fn predict_into(
    history: &History<'_>,
    model: &Artifact,
    range: Range<usize>,
    right: &mut Vec<bool>,
) -> Result<()> {
    if range.is_empty() {
        return Ok(());
    }
    let start = history.train_rows + range.start;
    let end = history.train_rows + range.end;
    let frame = history.rows(start..end);
    let proba = model
        .predict_proba(&frame)
        .context("a baseline model failed to predict")?;
    let labels = &history.labels()[start..end];
    right.extend(
        proba
            .rows()
            .into_iter()
            .zip(labels)
            .map(|(p, &label)| argmax(p.iter().copied()) == label),
    );
    Ok(())
}

/// The online learner over the stream: warmed on the train rows, then each streamed row is
/// predicted, and the label `delay` rows back is learned once that row is served.
pub fn replay_online(history: &History<'_>, delay: usize) -> Replayed {
    let schema = history.schema;
    let numeric: Vec<bool> = history
        .frame
        .columns
        .iter()
        .map(|c| matches!(c, Column::Numeric(_)))
        .collect();
    let mut model = OnlineLogistic::new(&numeric, schema.classes.len());
    let labels = history.labels();
    let mut cells = Vec::with_capacity(numeric.len());
    for (i, &label) in labels.iter().enumerate().take(history.train_rows) {
        row_cells(history.frame, i, &mut cells);
        model.learn(&cells, label);
    }
    let mut right = Vec::with_capacity(history.stream_rows());
    for s in 0..history.stream_rows() {
        let i = history.train_rows + s;
        row_cells(history.frame, i, &mut cells);
        right.push(model.predict(&cells) == labels[i]);
        // Serving stream row s releases the label of stream row s - delay.
        if s >= delay {
            let j = i - delay;
            row_cells(history.frame, j, &mut cells);
            model.learn(&cells, labels[j]);
        }
    }
    Replayed {
        right,
        ..Replayed::default()
    }
}

fn row_cells<'a>(frame: &'a Frame, row: usize, out: &mut Vec<Cell<'a>>) {
    out.clear();
    out.extend(frame.columns.iter().map(|column| match column {
        Column::Numeric(values) => Cell::Number(values[row]),
        Column::Categorical(values) => Cell::Category(values[row].as_deref()),
    }));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn blind_retrains_every_k_rows_on_the_newest_known_labels() {
        let swaps = blind_schedule(3_000, 6_000, 2_000, 0);
        assert_eq!(
            swaps,
            vec![
                Swap {
                    at: 2_000,
                    window: 3_000..5_000
                },
                Swap {
                    at: 4_000,
                    window: 5_000..7_000
                },
            ]
        );
        // With labels 500 rows late the window ends 500 rows earlier, reaching into the train
        // rows at first.
        let swaps = blind_schedule(3_000, 6_000, 2_000, 500);
        assert_eq!(swaps[0].window, 2_500..4_500);
        // A stream shorter than the cadence never retrains; k = rows would only serve nothing.
        assert!(blind_schedule(3_000, 6_000, 10_000, 0).is_empty());
        assert!(blind_schedule(3_000, 6_000, 6_000, 0).is_empty());
        assert_eq!(blind_schedule(3_000, 6_001, 6_000, 0).len(), 1);
    }

    #[test]
    fn the_oracle_retrains_once_the_rows_after_each_point_are_labeled() {
        let swaps = oracle_schedule(3_000, 6_000, &[3_000], 1_000, 0);
        assert_eq!(
            swaps,
            vec![Swap {
                at: 4_000,
                window: 6_000..7_000
            }]
        );
        let swaps = oracle_schedule(3_000, 6_000, &[3_000, 1_000, 3_000], 1_000, 500);
        assert_eq!(swaps.len(), 2);
        assert_eq!(swaps[0].at, 2_500);
        assert_eq!(swaps[0].window, 4_000..5_000);
        assert_eq!(swaps[1].at, 4_500);
        // Too late to serve any row: no retrain.
        assert!(oracle_schedule(3_000, 6_000, &[5_500], 1_000, 0).is_empty());
    }
}
