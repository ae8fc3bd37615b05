//! The one mapping from registry errors to gRPC statuses.
//!
//! Clients act on the code, people read the message: INVALID_ARGUMENT names the field,
//! ABORTED says where the alias is now (also as `mend-alias-version` metadata, so a
//! client can retry its compare-and-set without parsing text), DATA_LOSS means stored
//! bytes went bad and will not be served. Storage trouble is UNAVAILABLE (retry later);
//! bugs and unreadable records are INTERNAL and logged here, once.

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

use crate::StoreError;
use crate::convert::ConvertError;

/// Metadata key of an ABORTED compare-and-set: the version the alias points at now, or
/// `absent`.
pub const ALIAS_VERSION_METADATA: &str = "mend-alias-version";

/// The status a store error answers with.
pub fn store_error_status(error: StoreError) -> Status {
    mend_runtime::grpc::capped(uncapped_store_error_status(error))
}

fn uncapped_store_error_status(error: StoreError) -> Status {
    let message = error.to_string();
    match error {
        StoreError::InvalidArgument { .. } => Status::invalid_argument(message),
        StoreError::ModelNotFound { .. }
        | StoreError::VersionNotFound { .. }
        | StoreError::AliasNotFound { .. } => Status::not_found(message),
        StoreError::Conflict { actual, .. } => {
            let mut metadata = MetadataMap::new();
            let current = actual.map_or_else(|| "absent".to_owned(), |version| version.to_string());
            if let Ok(value) = MetadataValue::try_from(current.as_str()) {
                metadata.insert(ALIAS_VERSION_METADATA, value);
            }
            Status::with_metadata(Code::Aborted, message, metadata)
        }
        StoreError::CorruptArtifact { .. } | StoreError::MissingArtifact { .. } => {
            tracing::error!(error = %message, "refusing to serve a bad artifact");
            Status::data_loss(message)
        }
        // Nothing was committed: the caller may simply retry.
        StoreError::WatchLagged { .. } | StoreError::Contended { .. } => {
            Status::unavailable(message)
        }
        StoreError::Nats { .. } => {
            tracing::warn!(error = %message, "registry storage unavailable");
            Status::unavailable(message)
        }
        StoreError::Sqlite(_) | StoreError::Decode(_) | StoreError::Task(_) => {
            tracing::error!(error = %message, "registry storage failed");
            Status::internal(message)
        }
    }
}

/// INVALID_ARGUMENT for a wire message that does not convert, with the field path
/// prefixed by where the message sits in the request (`header.`, or nothing).
pub fn convert_error_status(prefix: &str, error: &ConvertError) -> Status {
    invalid_argument(&format!("{prefix}{}", error.field), &error.reason)
}

/// INVALID_ARGUMENT naming `field`, in the same words as [`StoreError::InvalidArgument`].
pub fn invalid_argument(field: &str, reason: &str) -> Status {
    mend_runtime::grpc::capped(Status::invalid_argument(format!(
        "invalid {field}: {reason}"
    )))
}

/// Adds a field prefix to a store's INVALID_ARGUMENT for a field nested in the request.
pub fn prefixed_store_error(prefix: &str, error: StoreError) -> Status {
    match error {
        StoreError::InvalidArgument { field, reason } => {
            invalid_argument(&format!("{prefix}{field}"), &reason)
        }
        other => store_error_status(other),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::AliasExpectation;

    #[test]
    fn each_error_kind_gets_its_code() {
        let cases = [
            (
                StoreError::InvalidArgument {
                    field: "model",
                    reason: "must not be empty".into(),
                },
                Code::InvalidArgument,
            ),
            (
                StoreError::ModelNotFound {
                    model: "churn".into(),
                },
                Code::NotFound,
            ),
            (
                StoreError::CorruptArtifact {
                    model: "churn".into(),
                    version: 1,
                    expected: "aa".into(),
                    actual: "bb".into(),
                },
                Code::DataLoss,
            ),
            (
                StoreError::Contended {
                    model: "churn".into(),
                    attempts: 3,
                },
                Code::Unavailable,
            ),
            (StoreError::Task("boom".into()), Code::Internal),
        ];
        for (error, code) in cases {
            assert_eq!(store_error_status(error).code(), code);
        }
    }

    #[test]
    fn a_conflict_tells_where_the_alias_is_now() {
        let status = store_error_status(StoreError::Conflict {
            model: "churn".into(),
            alias: "champion".into(),
            expected: AliasExpectation::Version(1),
            actual: Some(2),
        });
        assert_eq!(status.code(), Code::Aborted);
        assert!(
            status.message().contains("version 2"),
            "{}",
            status.message()
        );
        assert_eq!(status.metadata().get(ALIAS_VERSION_METADATA).unwrap(), "2");
    }

    #[test]
    fn nested_fields_are_named_with_their_path() {
        let status = prefixed_store_error(
            "header.",
            StoreError::InvalidArgument {
                field: "model",
                reason: "must not be empty".into(),
            },
        );
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "invalid header.model: must not be empty");
    }
}
