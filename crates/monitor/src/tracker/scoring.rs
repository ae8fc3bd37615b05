//! The champion's probabilities for what the data log carries: rows it scores itself, in one
//! batch (a row that does not fit its schema stays unscored, the others keep their places),
//! and logged predictions, which carry the probabilities the server answered with.

use mend_bus::ModelName;
use mend_core::Frame;
use mend_core::record::{PredictionRecord, RowRecord};

use crate::champion::Champion;

/// The champion's probabilities for each row (`None` for a row it cannot score; all `None`
/// when it cannot score the batch, which is logged against `model`).
pub(super) fn predict(
    champion: &Champion,
    model: &ModelName,
    rows: &[&RowRecord],
) -> Vec<Option<Vec<f64>>> {
    if rows.is_empty() {
        return Vec::new();
    }
    let schema = &champion.artifact.schema;
    let (frame, rejected) = Frame::from_records(schema, rows);
    let mut out = vec![None; rows.len()];
    let proba = match champion.artifact.predict_proba(&frame) {
        Ok(proba) => proba,
        Err(error) => {
            tracing::warn!(model = %model, %error, "cannot score rows with the champion");
            return out;
        }
    };
    let mut rejected_rows = rejected.iter().map(|(index, _)| *index).peekable();
    let mut scored = proba.rows().into_iter();
    for (index, slot) in out.iter_mut().enumerate() {
        if rejected_rows.peek() == Some(&index) {
            rejected_rows.next();
            continue;
        }
        *slot = scored.next().map(|row| row.to_vec());
    }
    out
}

/// A logged prediction's probabilities, when it has one per class of the champion's.
pub(super) fn logged(prediction: &PredictionRecord, classes: &[String]) -> Option<Vec<f64>> {
    let probabilities: Vec<f64> = prediction
        .probabilities
        .iter()
        .map(|&p| f64::from(p))
        .collect();
    (probabilities.len() == classes.len()).then_some(probabilities)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;

    use mend_core::record::{Value, Values};

    use super::super::fixtures::model;
    use super::*;

    fn row(id: &str, x0: Value) -> RowRecord {
        RowRecord {
            id: id.to_owned(),
            time_ms: 0,
            values: Values::from([("x0", x0), ("x1", Value::Number(0.5))]),
        }
    }

    #[test]
    fn rows_the_champion_cannot_read_stay_unscored_in_their_places() {
        // Two numeric features, x0 and x1; two classes.
        let champion = Champion {
            version: 1,
            artifact: Arc::new(mend_testkit::artifacts::trained(1)),
        };
        let low = row("low", Value::Number(-2.0));
        let text = row("text", Value::Text("not a number".to_owned()));
        let high = row("high", Value::Number(2.0));
        let alone = |row: &RowRecord| predict(&champion, &model(), &[row]).remove(0).unwrap();
        let (low_alone, high_alone) = (alone(&low), alone(&high));
        assert_eq!(low_alone.len(), 2);
        assert!((low_alone.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert_ne!(low_alone, high_alone, "x0 moves the prediction");
        assert_eq!(
            predict(&champion, &model(), &[&low, &text, &high]),
            [Some(low_alone), None, Some(high_alone)]
        );
        assert_eq!(
            predict(&champion, &model(), &[]),
            Vec::<Option<Vec<f64>>>::new()
        );
    }

    #[test]
    fn a_logged_prediction_counts_with_one_probability_per_class() {
        let classes = ["no".to_owned(), "yes".to_owned()];
        let mut prediction = PredictionRecord {
            row_id: "a".to_owned(),
            time_ms: 0,
            model_version: 1,
            values: Values::new(),
            probabilities: vec![0.25, 0.75],
            label: "yes".to_owned(),
        };
        assert_eq!(logged(&prediction, &classes), Some(vec![0.25, 0.75]));
        prediction.probabilities = vec![1.0];
        assert_eq!(logged(&prediction, &classes), None);
    }
}
