//! Why a row or label was not accepted: [`RejectReason`] (a stable code for metrics and a
//! sentence for people) and [`Rejection`], which places it in its batch.

use std::fmt;

/// One rejected row or label: where it was, which field was wrong, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Index of the row (or label) in its batch, from 0.
    pub index: usize,
    /// The producer's row id, as sent (may be empty: that can be the problem).
    pub row_id: String,
    /// The offending column or field; empty when the problem is the whole row.
    pub field: String,
    pub reason: RejectReason,
}

impl Rejection {
    pub fn new(
        index: usize,
        row_id: impl Into<String>,
        field: impl Into<String>,
        reason: RejectReason,
    ) -> Self {
        Rejection {
            index,
            row_id: row_id.into(),
            field: field.into(),
            reason,
        }
    }
}

/// Every way a row or label can fail validation.
#[derive(Debug, Clone, PartialEq)]
pub enum RejectReason {
    /// The row id (or a label's row id) is empty; nothing could ever join on it.
    EmptyId,
    /// The same row id came earlier in the same batch (at `first_index`).
    DuplicateId { first_index: usize },
    /// A column the champion's schema does not have (a typo, or a feature of another model).
    UnknownColumn,
    /// A missing value (left out, explicitly missing, NaN or a missing marker such as `NA`)
    /// where the schema does not allow missing values.
    MissingNotAllowed,
    /// A value of the wrong type for its feature.
    WrongType { expected: &'static str, got: String },
    /// ±infinity in a numeric feature: never imputed, since it is almost always a bug upstream.
    NotFinite(f64),
    /// The model name is not a valid name (one token of `[A-Za-z0-9_-]`, at most 64 chars).
    InvalidModel(String),
    /// The model has no champion, so there is no schema to validate against.
    UnknownModel(String),
    /// A label that is not one of the schema's classes.
    UnknownClass { classes: Vec<String> },
    /// A JSON row that does not have the shape of a row.
    Undecodable(String),
    /// A value or the whole row is larger than the configured limit.
    TooLarge {
        what: &'static str,
        bytes: usize,
        limit: usize,
        setting: &'static str,
    },
}

impl RejectReason {
    /// A short, stable code: the `reason` label of the rejection metrics.
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::EmptyId => "empty_id",
            RejectReason::DuplicateId { .. } => "duplicate_id",
            RejectReason::UnknownColumn => "unknown_column",
            RejectReason::MissingNotAllowed => "missing_not_allowed",
            RejectReason::WrongType { .. } => "wrong_type",
            RejectReason::NotFinite(_) => "not_finite",
            RejectReason::InvalidModel(_) => "invalid_model",
            RejectReason::UnknownModel(_) => "unknown_model",
            RejectReason::UnknownClass { .. } => "unknown_class",
            RejectReason::Undecodable(_) => "undecodable",
            RejectReason::TooLarge { .. } => "too_large",
        }
    }

    /// Every code, so metrics can be pre-registered at zero.
    pub const CODES: [&'static str; 11] = [
        "empty_id",
        "duplicate_id",
        "unknown_column",
        "missing_not_allowed",
        "wrong_type",
        "not_finite",
        "invalid_model",
        "unknown_model",
        "unknown_class",
        "undecodable",
        "too_large",
    ];
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::EmptyId => f.write_str("row id is empty"),
            RejectReason::DuplicateId { first_index } => write!(
                f,
                "row id appears earlier in the same batch (at index {first_index})"
            ),
            RejectReason::UnknownColumn => {
                f.write_str("unknown column: the champion's schema has no such feature")
            }
            RejectReason::MissingNotAllowed => {
                f.write_str("missing value, and the schema does not allow missing values")
            }
            RejectReason::WrongType { expected, got } => {
                write!(f, "wrong type: expected {expected}, got {got}")
            }
            RejectReason::NotFinite(x) => write!(f, "{x} is not a finite number"),
            RejectReason::InvalidModel(why) => write!(f, "invalid model name: {why}"),
            RejectReason::UnknownModel(why) => write!(f, "unknown model: {why}"),
            RejectReason::UnknownClass { classes } => {
                write!(f, "unknown class; the model's classes are {classes:?}")
            }
            RejectReason::Undecodable(why) => write!(f, "not a valid row: {why}"),
            RejectReason::TooLarge {
                what,
                bytes,
                limit,
                setting,
            } => write!(
                f,
                "{what} is {bytes} bytes; at most {limit} are accepted ({setting})"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_list_every_reason_once() {
        let reasons = [
            RejectReason::EmptyId,
            RejectReason::DuplicateId { first_index: 0 },
            RejectReason::UnknownColumn,
            RejectReason::MissingNotAllowed,
            RejectReason::WrongType {
                expected: "a number",
                got: "text".into(),
            },
            RejectReason::NotFinite(f64::INFINITY),
            RejectReason::InvalidModel(String::new()),
            RejectReason::UnknownModel(String::new()),
            RejectReason::UnknownClass { classes: vec![] },
            RejectReason::Undecodable(String::new()),
            RejectReason::TooLarge {
                what: "the value",
                bytes: 2,
                limit: 1,
                setting: "MEND_INGEST_MAX_VALUE_BYTES",
            },
        ];
        let codes: Vec<&str> = reasons.iter().map(RejectReason::code).collect();
        assert_eq!(codes, RejectReason::CODES);
    }
}
