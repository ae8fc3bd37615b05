//! Rows and labels as they arrive, before validation, whichever door they came in by (gRPC or
//! JSON over NATS). Converting to these types loses nothing validation needs to report.

/// One cell as sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Number(f64),
    Text(String),
    /// Explicitly missing (`FeatureValue.missing`, JSON `null`, or an unset oneof).
    Missing,
    /// Something that is no feature value at all (a JSON bool, array or object): its type name.
    Other(&'static str),
}

/// One row as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingRow {
    pub id: String,
    /// Unix milliseconds; 0 (unset) means "now".
    pub time_ms: i64,
    pub values: Vec<(String, Cell)>,
}

/// One label as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingLabel {
    pub row_id: String,
    pub label: String,
    /// Unix milliseconds; 0 (unset) means "now".
    pub time_ms: i64,
}
