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
