//! Client errors by kind, mapped from gRPC statuses.

use thiserror::Error;
use tonic::{Code, Status};

/// What a call to a mend service failed with.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("not found: {0}")]
    NotFound(String),
    /// A compare-and-set saw another state (someone else moved the alias first).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Down, overloaded or timed out: worth retrying later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The service answered with data that does not hold together (size, checksum, order).
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    #[error("{0}")]
    Other(String),
}

impl ClientError {
    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ClientError::Unavailable(_))
    }
}

impl From<Status> for ClientError {
    fn from(status: Status) -> Self {
        let msg = status.message().to_owned();
        match status.code() {
            Code::NotFound => ClientError::NotFound(msg),
            Code::Aborted | Code::FailedPrecondition | Code::AlreadyExists => {
                ClientError::Conflict(msg)
            }
            Code::Unauthenticated | Code::PermissionDenied => ClientError::Unauthenticated(msg),
            Code::InvalidArgument | Code::OutOfRange => ClientError::InvalidArgument(msg),
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Cancelled => ClientError::Unavailable(msg),
            Code::DataLoss => ClientError::InvalidResponse(msg),
            code => ClientError::Other(format!("{code:?}: {msg}")),
        }
    }
}
