//! The JSON messages producers publish on `ingest.rows.<model>` and `ingest.labels.<model>`:
//!
//! ```json
//! {"v": 1, "rows": [{"id": "r1", "time_ms": 1700000000000, "values": {"age": 41, "plan": "pro", "score": null}}]}
//! {"v": 1, "labels": [{"row_id": "r1", "label": "yes", "time_ms": 1700000100000}]}
//! ```
//!
//! `time_ms` (alias `event_time_ms` for rows) is optional (unset means "when ingested"); ids
//! and labels may be JSON numbers, taken as their text. A message that is not such an object
//! is undecodable as a whole; a row inside it that does not have a row's shape is rejected
//! alone, keeping its index, while the other rows go on to validation.

use serde_json::{Map, Value};

use crate::incoming::{Cell, IncomingLabel, IncomingRow};
use crate::reject::{RejectReason, Rejection};

/// The newest ingest message version this build reads.
pub const INGEST_MESSAGE_VERSION: u64 = 1;

/// A decoded message: the records that have the right shape, with their index in the
/// message, and the ones that do not, already rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<T> {
    pub records: Vec<T>,
    /// `original_index[i]` is the position of `records[i]` in the message.
    pub original_index: Vec<usize>,
    pub rejected: Vec<Rejection>,
    /// Every entry of the message as sent, to quote in dead letters.
    pub raw: Vec<Value>,
}

impl<T> Decoded<T> {
    /// How many entries the message had.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}

/// Decodes `{"v":1,"rows":[...]}`.
pub fn decode_rows(payload: &[u8]) -> Result<Decoded<IncomingRow>, String> {
    decode(payload, "rows", decode_row)
}

/// Decodes `{"v":1,"labels":[...]}`.
pub fn decode_labels(payload: &[u8]) -> Result<Decoded<IncomingLabel>, String> {
    decode(payload, "labels", decode_label)
}

type Shape<T> = Result<T, (String, String)>;

fn decode<T>(
    payload: &[u8],
    list: &str,
    one: fn(&Value) -> Shape<T>,
) -> Result<Decoded<T>, String> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|error| format!("not JSON: {error}"))?;
    let Value::Object(mut object) = value else {
        return Err("a message must be a JSON object".into());
    };
    match object.get("v") {
        None => return Err("missing field `v` (the message version, e.g. \"v\": 1)".into()),
        Some(Value::Number(v)) => match v.as_u64() {
            Some(v) if (1..=INGEST_MESSAGE_VERSION).contains(&v) => {}
            Some(v) if v > INGEST_MESSAGE_VERSION => {
                return Err(format!(
                    "message version {v} is newer than the newest supported ({INGEST_MESSAGE_VERSION}); upgrade mend"
                ));
            }
            _ => return Err(format!("field `v` must be a positive integer, got {v}")),
        },
        Some(other) => return Err(format!("field `v` must be a positive integer, got {other}")),
    }
    let raw = match object.remove(list) {
        Some(Value::Array(entries)) => entries,
        Some(_) => return Err(format!("field `{list}` must be an array")),
        None => return Err(format!("missing field `{list}`")),
    };
    let mut decoded = Decoded {
        records: Vec::with_capacity(raw.len()),
        original_index: Vec::with_capacity(raw.len()),
        rejected: Vec::new(),
        raw: Vec::new(),
    };
    for (index, entry) in raw.iter().enumerate() {
        match one(entry) {
            Ok(record) => {
                decoded.records.push(record);
                decoded.original_index.push(index);
            }
            Err((field, why)) => {
                let row_id = entry
                    .get("id")
                    .or_else(|| entry.get("row_id"))
                    .and_then(id_text)
                    .unwrap_or_default();
                decoded.rejected.push(Rejection::new(
                    index,
                    row_id,
                    field,
                    RejectReason::Undecodable(why),
                ));
            }
        }
    }
    decoded.raw = raw;
    Ok(decoded)
}

fn decode_row(entry: &Value) -> Shape<IncomingRow> {
    let object = as_object(entry)?;
    let id = optional_id(object, "id")?;
    let time_ms = match object
        .get("time_ms")
        .or_else(|| object.get("event_time_ms"))
    {
        None | Some(Value::Null) => 0,
        Some(value) => value.as_i64().ok_or_else(|| {
            (
                "time_ms".to_owned(),
                "time_ms must be an integer (unix milliseconds)".to_owned(),
            )
        })?,
    };
    let values = match object.get("values") {
        Some(Value::Object(values)) => values
            .iter()
            .map(|(name, value)| (name.clone(), cell(value)))
            .collect(),
        Some(_) => {
            return Err((
                "values".into(),
                "values must be an object of column: value".into(),
            ));
        }
        None => return Err(("values".into(), "missing field `values`".into())),
    };
    Ok(IncomingRow {
        id,
        time_ms,
        values,
    })
}

fn decode_label(entry: &Value) -> Shape<IncomingLabel> {
    let object = as_object(entry)?;
    let row_id = optional_id(object, "row_id")?;
    let label = match object.get("label") {
        Some(value) => id_text(value)
            .ok_or_else(|| ("label".to_owned(), "label must be a string".to_owned()))?,
        None => return Err(("label".into(), "missing field `label`".into())),
    };
    let time_ms = match object.get("time_ms") {
        None | Some(Value::Null) => 0,
        Some(value) => value.as_i64().ok_or_else(|| {
            (
                "time_ms".to_owned(),
                "time_ms must be an integer (unix milliseconds)".to_owned(),
            )
        })?,
    };
    Ok(IncomingLabel {
        row_id,
        label,
        time_ms,
    })
}

fn as_object(entry: &Value) -> Shape<&Map<String, Value>> {
    entry
        .as_object()
        .ok_or_else(|| (String::new(), "an entry must be a JSON object".to_owned()))
}

/// An id that is left out is empty (and rejected as such by validation, with its reason).
fn optional_id(object: &Map<String, Value>, field: &str) -> Shape<String> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(value) => id_text(value).ok_or_else(|| {
            (
                field.to_owned(),
                format!("{field} must be a string or an integer"),
            )
        }),
    }
}

/// Strings as they are; integers (and other numbers) as their text.
fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn cell(value: &Value) -> Cell {
    match value {
        // Integers beyond 2^53 lose precision, as in any JSON reader.
        Value::Number(number) => number
            .as_f64()
            .map_or(Cell::Other("a number out of range"), Cell::Number),
        Value::String(text) => Cell::Text(text.clone()),
        Value::Null => Cell::Missing,
        Value::Bool(_) => Cell::Other("a boolean"),
        Value::Array(_) => Cell::Other("an array"),
        Value::Object(_) => Cell::Other("an object"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn decodes_rows_and_rejects_misshapen_ones_in_place() {
        let payload = br#"{"v":1,"rows":[
            {"id":"a","time_ms":5,"values":{"x":1.5,"c":"p","m":null,"b":true}},
            {"id":7,"values":[]},
            "nope",
            {"id":"d","event_time_ms":9,"values":{}}
        ],"extra":"tolerated"}"#;
        let decoded = decode_rows(payload).unwrap();
        assert_eq!(decoded.len(), 4);
        assert_eq!(decoded.original_index, vec![0, 3]);
        let a = &decoded.records[0];
        assert_eq!((a.id.as_str(), a.time_ms), ("a", 5));
        let cells: std::collections::HashMap<_, _> = a.values.iter().cloned().collect();
        assert_eq!(cells["x"], Cell::Number(1.5));
        assert_eq!(cells["c"], Cell::Text("p".into()));
        assert_eq!(cells["m"], Cell::Missing);
        assert_eq!(cells["b"], Cell::Other("a boolean"));
        assert_eq!(decoded.records[1].time_ms, 9);
        let rejected: Vec<(usize, &str, &str)> = decoded
            .rejected
            .iter()
            .map(|r| (r.index, r.row_id.as_str(), r.field.as_str()))
            .collect();
        assert_eq!(rejected, vec![(1, "7", "values"), (2, "", "")]);
    }

    #[test]
    fn whole_messages_that_are_not_ingest_messages_are_refused_with_a_reason() {
        for (payload, expected) in [
            (&b"not json"[..], "not JSON"),
            (br#"[1]"#, "JSON object"),
            (br#"{"rows":[]}"#, "missing field `v`"),
            (br#"{"v":2,"rows":[]}"#, "newer"),
            (br#"{"v":"1","rows":[]}"#, "positive integer"),
            (br#"{"v":1}"#, "missing field `rows`"),
            (br#"{"v":1,"rows":{}}"#, "must be an array"),
        ] {
            let error = decode_rows(payload).unwrap_err();
            assert!(
                error.contains(expected),
                "{error} should mention {expected}"
            );
        }
    }

    #[test]
    fn decodes_labels() {
        let decoded =
            decode_labels(br#"{"v":1,"labels":[{"row_id":"a","label":"yes"},{"row_id":"b"},{"row_id":3,"label":1,"time_ms":4}]}"#)
                .unwrap();
        assert_eq!(decoded.original_index, vec![0, 2]);
        assert_eq!(decoded.records[1].row_id, "3");
        assert_eq!(decoded.records[1].label, "1");
        assert_eq!(decoded.rejected[0].field, "label");
    }
}
