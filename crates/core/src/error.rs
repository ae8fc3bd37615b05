//! Errors of the ML domain, one enum for the crate: each variant names what is wrong.

use thiserror::Error;

use crate::frame::RowError;

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
