//! Records as they travel through mend's data log: rows, labels and predictions.
//!
//! A row carries the producer's id (or `<request id>/<i>` when it came in through the
//! inference server); labels name that id, which is how inputs, predictions and outcomes join.
//! A row's [`Value`]s and [`Values`] are defined in [`crate::values`] and re-exported here.

use serde::{Deserialize, Serialize};

pub use crate::values::{Value, Values};

/// An input row: producer id, event time (unix milliseconds) and feature values by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowRecord {
    pub id: String,
    pub time_ms: i64,
    pub values: Values,
}

/// A ground-truth outcome for an earlier row, joined by `row_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelRecord {
    pub row_id: String,
    pub label: String,
    pub time_ms: i64,
}

/// A (sampled) prediction made by the inference server, with the inputs it saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionRecord {
    pub row_id: String,
    pub time_ms: i64,
    pub model_version: u64,
    pub values: Values,
    pub probabilities: Vec<f32>,
    pub label: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn values_keep_their_json_shape_both_ways() {
        let text = r#"{"a":1.5,"b":-3,"c":7,"d":"red","e":null,"f":"1.5"}"#;
        let values: Values = serde_json::from_str(text).unwrap();
        assert_eq!(values["a"], Value::Number(1.5));
        assert_eq!(values["b"], Value::Number(-3.0));
        assert_eq!(values["c"], Value::Number(7.0));
        assert_eq!(values["d"], Value::Text("red".into()));
        assert_eq!(values["e"], Value::Missing);
        assert_eq!(values["f"], Value::Text("1.5".into()));
        let again: Values = serde_json::from_str(&serde_json::to_string(&values).unwrap()).unwrap();
        assert_eq!(again, values);
        let err = serde_json::from_str::<Value>("true")
            .unwrap_err()
            .to_string();
        assert!(err.contains("a number, a string or null"), "{err}");
        assert!(serde_json::from_str::<Value>("[1]").is_err());
    }
}
