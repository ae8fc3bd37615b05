//! Why an inference request failed, and the one place that maps it to gRPC and HTTP codes.
//! Its own module, below both `infer` (re-exported there) and `model` (whose store fails a
//! request for an unknown or unloadable model with it).

use tonic::{Code, Status};

/// A failed inference (or metadata) request. The message names the tensor or field and what
/// is wrong with it, so a client can fix the request from the message alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InferError {
    /// Unknown model or version.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed: datatype, shape, sizes, values, limits.
    #[error("{0}")]
    InvalidArgument(String),
    /// The model is known but cannot answer now (no champion loaded yet, registry down while
    /// loading a requested version).
    #[error("{0}")]
    Unavailable(String),
}

impl InferError {
    pub fn invalid(message: impl Into<String>) -> Self {
        InferError::InvalidArgument(message.into())
    }

    pub fn code(&self) -> Code {
        match self {
            InferError::NotFound(_) => Code::NotFound,
            InferError::InvalidArgument(_) => Code::InvalidArgument,
            InferError::Unavailable(_) => Code::Unavailable,
        }
    }

    /// The OIP REST status: 400 for a bad request, 404 for an unknown model, 503 otherwise.
    pub fn http_status(&self) -> http::StatusCode {
        match self {
            InferError::NotFound(_) => http::StatusCode::NOT_FOUND,
            InferError::InvalidArgument(_) => http::StatusCode::BAD_REQUEST,
            InferError::Unavailable(_) => http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<InferError> for Status {
    fn from(error: InferError) -> Self {
        let code = error.code();
        let message = match error {
            InferError::NotFound(message)
            | InferError::InvalidArgument(message)
            | InferError::Unavailable(message) => message,
        };
        // Messages quote the request (model and tensor names): never send megabytes back.
        mend_runtime::grpc::capped(Status::new(code, message))
    }
}
