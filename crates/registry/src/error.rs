//! What can go wrong in a registry store.

use crate::AliasExpectation;

/// A registry store error. The gRPC layer maps each variant to one status code
/// (`InvalidArgument` → INVALID_ARGUMENT, the `*NotFound`s → NOT_FOUND, `Conflict` → ABORTED,
/// `CorruptArtifact` → DATA_LOSS, the rest → UNAVAILABLE or INTERNAL).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },

    #[error("model {model:?} not found")]
    ModelNotFound { model: String },

    #[error("version {version} of model {model:?} not found")]
    VersionNotFound { model: String, version: u64 },

    #[error("alias {alias:?} of model {model:?} not found")]
    AliasNotFound { model: String, alias: String },

    /// A compare-and-set on an alias found it somewhere else than expected.
    #[error(
        "alias {alias:?} of model {model:?} is at {}, expected {expected}",
        actual.map_or_else(|| "no version (absent)".to_owned(), |v| format!("version {v}"))
    )]
    Conflict {
        model: String,
        alias: String,
        expected: AliasExpectation,
        /// Where the alias points now (`None`: it does not exist).
        actual: Option<u64>,
    },

    /// Stored artifact bytes no longer match the sha256 recorded at registration.
    #[error(
        "artifact of model {model:?} version {version} is corrupt: recorded sha256 {expected}, stored bytes hash to {actual}"
    )]
    CorruptArtifact {
        model: String,
        version: u64,
        expected: String,
        actual: String,
    },

    #[error("artifact of model {model:?} version {version} is missing from storage")]
    MissingArtifact { model: String, version: u64 },

    /// An alias watcher fell behind and missed moves; it should re-read the aliases.
    #[error("alias watch missed {missed} moves; re-read the aliases")]
    WatchLagged { missed: u64 },

    /// Too many concurrent writers kept winning the race for the next log position.
    #[error("model {model:?} is too contended: gave up after {attempts} attempts")]
    Contended { model: String, attempts: u32 },

    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),

    #[error("nats {operation} failed: {source}")]
    Nats {
        operation: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("stored record is unreadable: {0}")]
    Decode(#[from] serde_json::Error),

    #[error("storage task failed: {0}")]
    Task(String),
}

impl StoreError {
    /// Wraps a NATS client error with the operation that failed.
    pub(crate) fn nats(
        operation: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Nats {
            operation,
            source: Box::new(source),
        }
    }
}
