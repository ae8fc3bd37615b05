//! The per-model change log in JetStream KV, and the state derived from it.
//!
//! JetStream KV has no multi-key transactions, so each change is committed by creating ONE
//! key, `log.<model>.<seq>`, with `create` (which fails if the key exists). That key holds
//! the audit record and, for a registration, the full version metadata. Whoever creates
//! `log.<model>.<n+1>` first wins; the others re-read and retry, so changes of a model are
//! totally ordered, version numbers are dense, and an alias compare-and-set is checked
//! against exactly the state it commits on.
//!
//! Everything else is derived and may lag behind the log after a crash:
//! - `<model>` in the models bucket: the [`ModelState`] as of some seq (a snapshot, so
//!   readers do not replay the whole log; moved forward with compare-and-set on revision);
//! - `version.<model>.<n>` in the log bucket: the metadata of version `n`.
//!
//! Not derived, but kept beside them: `outbox.<model>`, the seq up to which the log has been
//! announced on the bus (the log is the registry's outbox).
//!
//! [`catch_up`] replays the log from the snapshot, writes any missing derived keys, then
//! advances the snapshot, so derived keys are always written before the snapshot covers
//! them, and a crash at any point leaves nothing a later call does not repair.

use async_nats::jetstream::kv::{self, Operation, UpdateErrorKind};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::debug;

use crate::changes::ModelState;
use crate::{AuditRecord, StoreError, VersionMeta};

/// One committed change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LogEntry {
    /// Random id of the call that wrote it, to recognise our own write when its
    /// acknowledgement was lost and a retry finds the key taken.
    pub commit_id: String,
    pub record: AuditRecord,
    /// The registered version (registrations only).
    pub version: Option<VersionMeta>,
}

pub(crate) fn log_key(model: &str, seq: u64) -> String {
    format!("log.{model}.{seq}")
}

pub(crate) fn version_key(model: &str, version: u64) -> String {
    format!("version.{model}.{version}")
}

/// The outbox cursor of a model: how far its log has been announced on the bus.
pub(crate) fn outbox_key(model: &str) -> String {
    format!("outbox.{model}")
}

/// Present once the store has cursors for the models that existed before the outbox did.
pub(crate) const OUTBOX_READY_KEY: &str = "outbox-ready";

/// Key pattern matching every log entry of a model, for watches.
pub(crate) fn log_pattern(model: &str) -> String {
    format!("log.{model}.*")
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Bytes, StoreError> {
    Ok(Bytes::from(serde_json::to_vec(value)?))
}

pub(crate) async fn read_entry(
    log: &kv::Store,
    model: &str,
    seq: u64,
) -> Result<Option<LogEntry>, StoreError> {
    let bytes = log
        .get(log_key(model, seq))
        .await
        .map_err(|error| StoreError::nats("read log entry", error))?;
    bytes
        .map(|bytes| serde_json::from_slice(&bytes).map_err(StoreError::from))
        .transpose()
}

/// Brings the model's snapshot up to date with its log and returns the current state, or
/// `None` if the model does not exist.
pub(crate) async fn catch_up(
    models: &kv::Store,
    log: &kv::Store,
    model: &str,
) -> Result<Option<ModelState>, StoreError> {
    let head = models
        .entry(model)
        .await
        .map_err(|error| StoreError::nats("read model head", error))?;
    let Some(head) = head.filter(|entry| entry.operation == Operation::Put) else {
        return Ok(None);
    };
    let mut state: ModelState = serde_json::from_slice(&head.value)?;
    let snapshot_seq = state.audit_seq;

    while let Some(entry) = read_entry(log, model, state.audit_seq + 1).await? {
        if let Some(meta) = &entry.version {
            log.put(version_key(model, meta.version), encode(meta)?)
                .await
                .map_err(|error| StoreError::nats("write version", error))?;
        }
        state.apply(&entry.record);
    }

    if state.audit_seq > snapshot_seq {
        match models.update(model, encode(&state)?, head.revision).await {
            Ok(_) => {}
            // Someone else moved the snapshot forward meanwhile; theirs is as good as ours.
            Err(error) if error.kind() == UpdateErrorKind::WrongLastRevision => {
                debug!(model, "model snapshot advanced concurrently");
            }
            Err(error) => return Err(StoreError::nats("advance model head", error)),
        }
    }
    Ok(Some(state))
}
