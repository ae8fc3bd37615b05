//! Validation against the champion's schema. Pure and synchronous: no I/O, so both doors
//! (gRPC and NATS) share it and tests call it directly.
//!
//! Rows are normalised on the way in: every feature of the schema is present (a left-out
//! column is missing, as the wire contract says), numbers sent for categoricals become their
//! text (`3` and `"3"` are the same category, as in `mend_core::frame`), numeric text becomes a
//! number, and NaN or a missing marker (`NA`, empty) becomes missing. Values under the schema's
//! label, id or time column are not features: they are dropped rather than called unknown, so a
//! training-shaped file can be ingested as it is.
//!
//! Each rejected row gets one [`Rejection`]: the first problem found, in a fixed order (id,
//! unknown columns by name, then features in schema order), so the answer is deterministic.

use std::collections::{HashMap, HashSet};

use mend_core::frame::format_number;
use mend_core::record::{LabelRecord, RowRecord, Value, Values};
use mend_core::schema::is_missing;
use mend_core::{FeatureKind, Schema};

use crate::config::{MEND_INGEST_MAX_ROW_BYTES, MEND_INGEST_MAX_VALUE_BYTES, SizeLimits};
use crate::incoming::{Cell, IncomingLabel, IncomingRow};
use crate::reject::{RejectReason, Rejection};

/// What validation made of one batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Validated<R> {
    /// The valid records, normalised, in batch order.
    pub accepted: Vec<R>,
    /// The rejected ones, in batch order.
    pub rejected: Vec<Rejection>,
}

/// Validates a batch of rows; `now_ms` stands in for an unset event time.
pub fn validate_rows(
    schema: &Schema,
    rows: Vec<IncomingRow>,
    now_ms: i64,
    limits: &SizeLimits,
) -> Validated<RowRecord> {
    let reserved: HashSet<&str> = [
        Some(schema.label.as_str()),
        schema.id_column.as_deref(),
        schema.time_column.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(rows.len());
    let mut out = Validated {
        accepted: Vec::with_capacity(rows.len()),
        rejected: Vec::new(),
    };
    for (index, row) in rows.into_iter().enumerate() {
        if let Some((field, reason)) = oversized_row(&row, limits) {
            out.rejected
                .push(Rejection::new(index, shorten(&row.id), &field, reason));
            continue;
        }
        if let Some(reason) = check_id(&row.id, index, &mut seen) {
            out.rejected
                .push(Rejection::new(index, row.id, "id", reason));
            continue;
        }
        match normalise_row(schema, &reserved, row, now_ms) {
            Ok(record) => out.accepted.push(record),
            Err((row_id, field, reason)) => out
                .rejected
                .push(Rejection::new(index, row_id, field, reason)),
        }
    }
    out
}

/// Validates a batch of labels: a row id, a known class, no id twice in one batch.
pub fn validate_labels(
    schema: &Schema,
    labels: Vec<IncomingLabel>,
    now_ms: i64,
    limits: &SizeLimits,
) -> Validated<LabelRecord> {
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(labels.len());
    let mut out = Validated {
        accepted: Vec::with_capacity(labels.len()),
        rejected: Vec::new(),
    };
    for (index, label) in labels.into_iter().enumerate() {
        if let Some((field, reason)) = oversized_label(&label, limits) {
            out.rejected
                .push(Rejection::new(index, shorten(&label.row_id), field, reason));
            continue;
        }
        if let Some(reason) = check_id(&label.row_id, index, &mut seen) {
            out.rejected
                .push(Rejection::new(index, label.row_id, "row_id", reason));
            continue;
        }
        // Producers often write labels with stray spaces; classes never have them.
        let class = label.label.trim();
        if schema.class_index(class).is_none() {
            out.rejected.push(Rejection::new(
                index,
                label.row_id,
                "label",
                RejectReason::UnknownClass {
                    classes: schema.classes.clone(),
                },
            ));
            continue;
        }
        out.accepted.push(LabelRecord {
            label: class.to_owned(),
            row_id: label.row_id,
            time_ms: or_now(label.time_ms, now_ms),
        });
    }
    out
}

/// Rejects every row of a batch for the same reason (a bad or unknown model).
pub fn reject_all(
    ids: impl IntoIterator<Item = String>,
    field: &str,
    reason: &RejectReason,
) -> Vec<Rejection> {
    ids.into_iter()
        .enumerate()
        .map(|(index, id)| Rejection::new(index, id, field, reason.clone()))
        .collect()
}

fn value_too_large(what: &'static str, bytes: usize, limits: &SizeLimits) -> Option<RejectReason> {
    (bytes > limits.max_value_bytes).then_some(RejectReason::TooLarge {
        what,
        bytes,
        limit: limits.max_value_bytes,
        setting: MEND_INGEST_MAX_VALUE_BYTES,
    })
}

/// The first value of `row` over the limits, or the row itself, with the field to name.
fn oversized_row(row: &IncomingRow, limits: &SizeLimits) -> Option<(String, RejectReason)> {
    if let Some(reason) = value_too_large("the row id", row.id.len(), limits) {
        return Some(("id".to_owned(), reason));
    }
    let mut total = row.id.len();
    for (name, cell) in &row.values {
        if let Some(reason) = value_too_large("the column name", name.len(), limits) {
            return Some((shorten(name), reason));
        }
        let value_bytes = match cell {
            Cell::Text(text) => text.len(),
            Cell::Number(_) => 8,
            Cell::Missing | Cell::Other(_) => 0,
        };
        if let Some(reason) = value_too_large("the value", value_bytes, limits) {
            return Some((name.clone(), reason));
        }
        total += name.len() + value_bytes;
    }
    (total > limits.max_row_bytes).then(|| {
        (
            String::new(),
            RejectReason::TooLarge {
                what: "the row (id, column names and values)",
                bytes: total,
                limit: limits.max_row_bytes,
                setting: MEND_INGEST_MAX_ROW_BYTES,
            },
        )
    })
}

fn oversized_label(
    label: &IncomingLabel,
    limits: &SizeLimits,
) -> Option<(&'static str, RejectReason)> {
    if let Some(reason) = value_too_large("the row id", label.row_id.len(), limits) {
        return Some(("row_id", reason));
    }
    value_too_large("the label", label.label.len(), limits).map(|reason| ("label", reason))
}

fn or_now(time_ms: i64, now_ms: i64) -> i64 {
    if time_ms == 0 { now_ms } else { time_ms }
}

fn check_id(id: &str, index: usize, seen: &mut HashMap<String, usize>) -> Option<RejectReason> {
    if id.trim().is_empty() {
        return Some(RejectReason::EmptyId);
    }
    if let Some(first_index) = seen.get(id) {
        return Some(RejectReason::DuplicateId {
            first_index: *first_index,
        });
    }
    seen.insert(id.to_owned(), index);
    None
}

type RowProblem = (String, String, RejectReason);

fn normalise_row(
    schema: &Schema,
    reserved: &HashSet<&str>,
    row: IncomingRow,
    now_ms: i64,
) -> Result<RowRecord, RowProblem> {
    let IncomingRow {
        id,
        time_ms,
        values,
    } = row;
    let mut cells: HashMap<String, Cell> = HashMap::with_capacity(values.len());
    let mut unknown: Vec<String> = Vec::new();
    for (name, cell) in values {
        if schema.feature_index(&name).is_some() {
            cells.insert(name, cell);
        } else if !reserved.contains(name.as_str()) {
            unknown.push(name);
        }
    }
    if let Some(name) = unknown.into_iter().min() {
        return Err((id, name, RejectReason::UnknownColumn));
    }
    let mut normalised = Values::with_capacity(schema.features.len());
    for feature in &schema.features {
        let cell = cells.remove(&feature.name).unwrap_or(Cell::Missing);
        match normalise_cell(cell, feature.kind, schema.allow_missing) {
            Ok(value) => {
                normalised.insert(&feature.name, value);
            }
            Err(reason) => return Err((id, feature.name.clone(), reason)),
        }
    }
    Ok(RowRecord {
        id,
        time_ms: or_now(time_ms, now_ms),
        values: normalised,
    })
}

fn normalise_cell(
    cell: Cell,
    kind: FeatureKind,
    allow_missing: bool,
) -> Result<Value, RejectReason> {
    let value = match (cell, kind) {
        (Cell::Missing, _) => Value::Missing,
        (Cell::Other(type_name), kind) => {
            return Err(RejectReason::WrongType {
                expected: expected(kind),
                got: type_name.to_owned(),
            });
        }
        (Cell::Number(x), _) if x.is_nan() => Value::Missing,
        (Cell::Number(x), _) if x.is_infinite() => return Err(RejectReason::NotFinite(x)),
        (Cell::Number(x), FeatureKind::Numeric) => Value::Number(x),
        (Cell::Number(x), FeatureKind::Categorical) => Value::Text(format_number(x)),
        (Cell::Text(text), _) if is_missing(&text) => Value::Missing,
        (Cell::Text(text), FeatureKind::Categorical) => Value::Text(text),
        (Cell::Text(text), FeatureKind::Numeric) => match text.trim().parse::<f64>() {
            Ok(x) if x.is_infinite() => return Err(RejectReason::NotFinite(x)),
            Ok(x) => Value::Number(x),
            Err(_) => {
                return Err(RejectReason::WrongType {
                    expected: expected(kind),
                    got: format!("text {:?}", shorten(&text)),
                });
            }
        },
    };
    if value == Value::Missing && !allow_missing {
        return Err(RejectReason::MissingNotAllowed);
    }
    Ok(value)
}

fn expected(kind: FeatureKind) -> &'static str {
    match kind {
        FeatureKind::Numeric => "a number",
        FeatureKind::Categorical => "a text or a number",
    }
}

/// Keeps reasons short when a producer sends a whole document as a cell.
fn shorten(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(MAX).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use mend_core::Feature;

    use super::*;

    fn schema(allow_missing: bool) -> Schema {
        Schema {
            features: vec![
                Feature {
                    name: "age".into(),
                    kind: FeatureKind::Numeric,
                },
                Feature {
                    name: "plan".into(),
                    kind: FeatureKind::Categorical,
                },
            ],
            label: "churned".into(),
            classes: vec!["no".into(), "yes".into()],
            id_column: Some("id".into()),
            time_column: None,
            allow_missing,
        }
    }

    fn row(id: &str, values: Vec<(&str, Cell)>) -> IncomingRow {
        IncomingRow {
            id: id.into(),
            time_ms: 5,
            values: values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        }
    }

    fn reasons(validated: &Validated<RowRecord>) -> Vec<(usize, &str, &str)> {
        validated
            .rejected
            .iter()
            .map(|r| (r.index, r.field.as_str(), r.reason.code()))
            .collect()
    }

    #[test]
    fn keeps_good_rows_and_names_the_field_of_each_bad_one() {
        let rows = vec![
            row(
                "a",
                vec![
                    ("age", Cell::Number(30.0)),
                    ("plan", Cell::Text("pro".into())),
                ],
            ),
            row(
                "b",
                vec![
                    ("age", Cell::Text("old".into())),
                    ("plan", Cell::Text("pro".into())),
                ],
            ),
            row(
                "c",
                vec![
                    ("age", Cell::Number(1.0)),
                    ("plna", Cell::Text("pro".into())),
                ],
            ),
            row("", vec![("age", Cell::Number(1.0))]),
            row("a", vec![("age", Cell::Number(2.0))]),
            row("d", vec![("age", Cell::Number(f64::INFINITY))]),
            row(
                "e",
                vec![("age", Cell::Other("bool")), ("plan", Cell::Number(3.0))],
            ),
            row(
                "f",
                vec![
                    ("age", Cell::Text(" 41.5 ".into())),
                    ("plan", Cell::Number(3.0)),
                ],
            ),
        ];
        let validated = validate_rows(&schema(true), rows, 99, &SizeLimits::default());
        assert_eq!(
            reasons(&validated),
            vec![
                (1, "age", "wrong_type"),
                (2, "plna", "unknown_column"),
                (3, "id", "empty_id"),
                (4, "id", "duplicate_id"),
                (5, "age", "not_finite"),
                (6, "age", "wrong_type"),
            ]
        );
        let ids: Vec<&str> = validated.accepted.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "f"]);
        let f = &validated.accepted[1];
        assert_eq!(f.values["age"], Value::Number(41.5));
        assert_eq!(f.values["plan"], Value::Text("3".into()));
        assert_eq!(f.time_ms, 5);
        assert!(validated.rejected[0].reason.to_string().contains("\"old\""));
    }

    #[test]
    fn missing_values_follow_the_schema_policy() {
        let rows = || {
            vec![
                row(
                    "a",
                    vec![
                        ("age", Cell::Number(f64::NAN)),
                        ("plan", Cell::Text("NA".into())),
                    ],
                ),
                row("b", vec![("plan", Cell::Text("basic".into()))]),
                row(
                    "c",
                    vec![("age", Cell::Number(3.0)), ("plan", Cell::Missing)],
                ),
            ]
        };
        let allowed = validate_rows(&schema(true), rows(), 0, &SizeLimits::default());
        assert!(allowed.rejected.is_empty());
        assert_eq!(allowed.accepted[0].values["age"], Value::Missing);
        assert_eq!(allowed.accepted[0].values["plan"], Value::Missing);
        assert_eq!(allowed.accepted[1].values["age"], Value::Missing);

        let strict = validate_rows(&schema(false), rows(), 0, &SizeLimits::default());
        assert!(strict.accepted.is_empty());
        assert_eq!(
            reasons(&strict),
            vec![
                (0, "age", "missing_not_allowed"),
                (1, "age", "missing_not_allowed"),
                (2, "plan", "missing_not_allowed"),
            ]
        );
    }

    #[test]
    fn label_id_and_time_columns_are_not_unknown_and_are_dropped() {
        let rows = vec![row(
            "a",
            vec![
                ("age", Cell::Number(1.0)),
                ("plan", Cell::Text("x".into())),
                ("churned", Cell::Text("yes".into())),
                ("id", Cell::Text("a".into())),
            ],
        )];
        let validated = validate_rows(&schema(true), rows, 0, &SizeLimits::default());
        assert!(validated.rejected.is_empty());
        assert_eq!(validated.accepted[0].values.len(), 2);
    }

    #[test]
    fn unset_event_time_is_now() {
        let mut r = row("a", vec![("age", Cell::Number(1.0))]);
        r.time_ms = 0;
        let validated = validate_rows(&schema(true), vec![r], 1234, &SizeLimits::default());
        assert_eq!(validated.accepted[0].time_ms, 1234);
    }

    #[test]
    fn labels_need_a_row_id_and_a_known_class() {
        let label = |id: &str, class: &str| IncomingLabel {
            row_id: id.into(),
            label: class.into(),
            time_ms: 0,
        };
        let validated = validate_labels(
            &schema(true),
            vec![
                label("a", "yes"),
                label("b", "maybe"),
                label("", "no"),
                label("a", "no"),
                label("c", " no "),
            ],
            7,
            &SizeLimits::default(),
        );
        let got: Vec<(usize, &str, &str)> = validated
            .rejected
            .iter()
            .map(|r| (r.index, r.field.as_str(), r.reason.code()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "label", "unknown_class"),
                (2, "row_id", "empty_id"),
                (3, "row_id", "duplicate_id")
            ]
        );
        assert_eq!(validated.accepted.len(), 2);
        assert_eq!(validated.accepted[1].label, "no");
        assert_eq!(validated.accepted[1].time_ms, 7);
        assert!(validated.rejected[0].reason.to_string().contains("\"yes\""));
    }

    #[test]
    fn values_and_rows_over_the_limits_are_rejected_naming_the_setting() {
        let limits = SizeLimits {
            max_value_bytes: 100,
            max_row_bytes: 150,
        };
        let rows = vec![
            row(
                "ok",
                vec![
                    ("age", Cell::Number(1.0)),
                    ("plan", Cell::Text("pro".into())),
                ],
            ),
            row("big", vec![("plan", Cell::Text("x".repeat(101)))]),
            row(&"i".repeat(101), vec![("age", Cell::Number(1.0))]),
            row(
                "wide",
                vec![
                    ("plan", Cell::Text("y".repeat(90))),
                    ("age", Cell::Number(2.0)),
                    ("zz", Cell::Text("z".repeat(60))),
                ],
            ),
        ];
        let validated = validate_rows(&schema(true), rows, 0, &limits);
        assert_eq!(validated.accepted.len(), 1);
        let got: Vec<(usize, &str, String)> = validated
            .rejected
            .iter()
            .map(|r| (r.index, r.field.as_str(), r.reason.to_string()))
            .collect();
        assert_eq!(got[0].0, 1);
        assert_eq!(got[0].1, "plan");
        assert_eq!(
            got[0].2,
            "the value is 101 bytes; at most 100 are accepted (MEND_INGEST_MAX_VALUE_BYTES)"
        );
        assert_eq!((got[1].0, got[1].1), (2, "id"));
        assert_eq!((got[2].0, got[2].1), (3, ""), "the whole row");
        assert!(
            got[2].2.contains("MEND_INGEST_MAX_ROW_BYTES"),
            "{}",
            got[2].2
        );

        let labels = vec![IncomingLabel {
            row_id: "a".into(),
            label: "n".repeat(101),
            time_ms: 0,
        }];
        let validated = validate_labels(&schema(true), labels, 0, &limits);
        assert_eq!(validated.rejected[0].field, "label");
        assert_eq!(validated.rejected[0].reason.code(), "too_large");
    }
}
