//! Errors of the ML domain, one enum for the crate: each variant names what is wrong. A bad
//! cell is a [`RowError`] (re-exported as `frame::RowError`, where loading reports it).

use std::fmt;

use serde::Serialize;
use thiserror::Error;

/// Everything that can go wrong in mend-core.
#[derive(Debug, Error)]
pub enum CoreError {
    #[error("csv: {0}")]
    Csv(String),
    #[error("{} bad value(s) in the data; first: {}", .0.len(), .0.first().map(|e| e.to_string()).unwrap_or_default())]
    Rows(Vec<RowError>),
    #[error("schema: {0}")]
    Schema(String),
    #[error("training: {0}")]
    Training(String),
    #[error("invalid input: {0}")]
    Input(String),
    #[error("artifact: {0}")]
    Artifact(String),
    #[error(
        "artifact checksum mismatch: header says {expected}, content hashes to {actual} (the file was modified or corrupted)"
    )]
    Checksum { expected: String, actual: String },
    #[error(
        "artifact format version {found} is newer than this mend supports ({supported}); upgrade mend"
    )]
    NewerFormat { found: u32, supported: u32 },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;

/// One bad cell: where it is, what it holds, and why it was refused.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowError {
    pub line: u64,
    pub column: String,
    pub value: String,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column `{}`, value {:?}: {}",
            self.line, self.column, self.value, self.reason
        )
    }
}

/// The bad cells of a frame for a person: the first 20 (line, column, value, reason), how
/// many more there are, and, when a number was expected, how to declare the column instead.
/// `mend train` and `mend bench-heal --stream` print it for the same data.
pub fn describe_rows(errors: &[RowError]) -> String {
    let mut msg = format!("{} bad value(s) in the data:", errors.len());
    for err in errors.iter().take(20) {
        msg.push_str(&format!("\n  {err}"));
    }
    if errors.len() > 20 {
        msg.push_str(&format!("\n  ... and {} more", errors.len() - 20));
    }
    if errors.iter().any(|err| err.reason == "not a number") {
        msg.push_str(
            "\na column whose values are mostly numbers is numeric: fix the cells above, \
             or declare the column in a --schema file, e.g. \
             {\"columns\": {\"<column>\": \"categorical\"}} (or \"ignore\")",
        );
    }
    msg
}
