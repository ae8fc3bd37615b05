//! Artifact bytes in a JetStream Object Store bucket, one object per model and digest
//! (`<model>/<sha256>`), written before the registration that refers to them is committed.

use async_nats::jetstream::object_store::{GetErrorKind, ObjectStore};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::{StoreError, VersionMeta, digest};

/// Name of the object holding an artifact; tests overwrite it to prove reads verify.
pub fn object_name(model: &str, sha256: &str) -> String {
    format!("{model}/{sha256}")
}

/// The digest the object store records for content with this hex sha256.
fn object_store_digest(sha256_hex: &str) -> Option<String> {
    let raw = hex::decode(sha256_hex).ok()?;
    Some(format!("SHA-256={}", URL_SAFE.encode(raw)))
}

/// Stores `bytes` (whose digest is `sha256`) unless an intact copy is already there.
pub(crate) async fn put(
    objects: &ObjectStore,
    model: &str,
    sha256: &str,
    bytes: &Bytes,
) -> Result<(), StoreError> {
    let name = object_name(model, sha256);
    if let Ok(info) = objects.info(&name).await {
        // Skipping an identical re-upload avoids replacing chunks under a concurrent reader.
        if !info.deleted
            && info.size == bytes.len()
            && info.digest.is_some()
            && info.digest == object_store_digest(sha256)
        {
            return Ok(());
        }
    }
    let mut reader: &[u8] = bytes.as_ref();
    objects
        .put(name.as_str(), &mut reader)
        .await
        .map_err(|error| StoreError::nats("put artifact", error))?;
    Ok(())
}

/// Reads the artifact of `meta` and verifies it against the recorded sha256.
pub(crate) async fn get(objects: &ObjectStore, meta: &VersionMeta) -> Result<Bytes, StoreError> {
    let name = object_name(&meta.model, &meta.artifact_sha256);
    let mut object = match objects.get(&name).await {
        Ok(object) => object,
        Err(error) if error.kind() == GetErrorKind::NotFound => {
            return Err(StoreError::MissingArtifact {
                model: meta.model.clone(),
                version: meta.version,
            });
        }
        Err(error) => return Err(StoreError::nats("get artifact", error)),
    };
    let mut bytes = Vec::with_capacity(usize::try_from(meta.artifact_size).unwrap_or(0));
    if let Err(error) = object.read_to_end(&mut bytes).await {
        // The object store checks its own digest at the end of a read and reports a
        // mismatch as InvalidData: the stored chunks were altered.
        if error.kind() == std::io::ErrorKind::InvalidData {
            return Err(StoreError::CorruptArtifact {
                model: meta.model.clone(),
                version: meta.version,
                expected: meta.artifact_sha256.clone(),
                actual: format!("unreadable ({error})"),
            });
        }
        return Err(StoreError::nats("read artifact", error));
    }
    let (model, version, expected) = (
        meta.model.clone(),
        meta.version,
        meta.artifact_sha256.clone(),
    );
    tokio::task::spawn_blocking(move || {
        digest::verify(&model, version, &expected, &bytes)?;
        Ok(Bytes::from(bytes))
    })
    .await
    .map_err(|error| StoreError::Task(error.to_string()))?
}
