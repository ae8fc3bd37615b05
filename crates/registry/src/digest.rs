//! Artifact digests: computed off the async executor, since hashing 100 MB takes a while.

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::StoreError;

/// Lowercase hex sha256 of `bytes` (blocking; call from a blocking context).
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// [`sha256_hex`] on a blocking thread.
pub(crate) async fn sha256_hex_async(bytes: Bytes) -> Result<String, StoreError> {
    tokio::task::spawn_blocking(move || sha256_hex(&bytes))
        .await
        .map_err(|error| StoreError::Task(error.to_string()))
}

/// Refuses artifact bytes that do not hash to the digest recorded for their version.
pub(crate) fn verify(
    model: &str,
    version: u64,
    expected_sha256: &str,
    bytes: &[u8],
) -> Result<(), StoreError> {
    let actual = sha256_hex(bytes);
    if actual == expected_sha256 {
        return Ok(());
    }
    Err(StoreError::CorruptArtifact {
        model: model.to_owned(),
        version,
        expected: expected_sha256.to_owned(),
        actual,
    })
}
