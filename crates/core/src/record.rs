//! Records as they travel through mend's data log: rows, labels and predictions.
//!
//! A row carries the producer's id (or `<request id>/<i>` when it came in through the
//! inference server); labels name that id, which is how inputs, predictions and outcomes join.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One feature value as it arrived: a number, a text (categorical), or missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Number(f64),
    Text(String),
    Missing,
}

impl Value {
    /// The value as a number, if it is one (or a text that parses as one).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(x) => Some(*x),
            Value::Text(s) => s.trim().parse().ok(),
            Value::Missing => None,
        }
    }
}

/// An input row: producer id, event time (unix milliseconds) and feature values by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowRecord {
    pub id: String,
    pub time_ms: i64,
    pub values: BTreeMap<String, Value>,
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
    pub values: BTreeMap<String, Value>,
    pub probabilities: Vec<f32>,
    pub label: String,
}
