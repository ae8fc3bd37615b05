//! Records as they travel through mend's data log: rows, labels and predictions.
//!
//! A row carries the producer's id (or `<request id>/<i>` when it came in through the
//! inference server); labels name that id, which is how inputs, predictions and outcomes join.

use serde::{Deserialize, Serialize};

pub use crate::values::Values;

/// One feature value as it arrived: a number, a text (categorical), or missing. On the wire a
/// JSON number, string or `null` (a hand-written `Deserialize`: serde's `untagged` would try
/// each variant in turn and build an error for every miss, which dominated reading the data log).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Number(f64),
    Text(String),
    Missing,
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> serde::de::Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a number, a string or null")
    }

    fn visit_f64<E>(self, x: f64) -> Result<Value, E> {
        Ok(Value::Number(x))
    }

    fn visit_i64<E>(self, x: i64) -> Result<Value, E> {
        Ok(Value::Number(x as f64))
    }

    fn visit_u64<E>(self, x: u64) -> Result<Value, E> {
        Ok(Value::Number(x as f64))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Text(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::Text(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Missing)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Missing)
    }
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
