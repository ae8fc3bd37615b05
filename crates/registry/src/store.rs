//! The one trait every registry backend implements, and what callers may rely on.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::{
    AuditRecord, ModelSummary, NewDecision, NewVersion, Page, SetAlias, StoreError, VersionMeta,
};

/// Live alias moves of one model: each item is the `SetAlias` audit record of a move.
/// [`StoreError::WatchLagged`] means moves were missed and the aliases should be re-read.
pub type AliasWatch = BoxStream<'static, Result<AuditRecord, StoreError>>;

/// Storage of versions, artifacts, aliases and the audit log.
///
/// Guarantees, checked for every implementation by the conformance suite:
/// - `register` gives a model's versions the numbers 1, 2, 3, ... with no gaps and no
///   duplicates under any concurrency, and commits the version only after its artifact is
///   stored, so an interrupted registration leaves no version behind;
/// - `artifact` verifies the bytes against the recorded sha256 on every read and returns
///   [`StoreError::CorruptArtifact`] rather than bad bytes;
/// - `set_alias` is a compare-and-set: a stale expectation fails with
///   [`StoreError::Conflict`] carrying where the alias points now;
/// - every registration, every alias move and every recorded decision appends exactly one
///   audit record, and the records of a model are numbered 1, 2, 3, ... in the order the
///   changes took effect.
#[async_trait]
pub trait RegistryStore: Send + Sync + 'static {
    /// Registers `artifact` as the next version of `new.model` (creating the model on its
    /// first version) and returns the committed metadata.
    async fn register(&self, new: NewVersion, artifact: Bytes) -> Result<VersionMeta, StoreError>;

    /// The metadata of one version.
    async fn version(&self, model: &str, version: u64) -> Result<VersionMeta, StoreError>;

    /// The metadata and verified artifact bytes of one version.
    async fn artifact(&self, model: &str, version: u64)
    -> Result<(VersionMeta, Bytes), StoreError>;

    /// The version an alias points at; [`StoreError::AliasNotFound`] if it does not exist.
    async fn resolve_alias(&self, model: &str, alias: &str) -> Result<u64, StoreError>;

    /// One model's latest version and aliases; [`StoreError::ModelNotFound`] if unknown.
    async fn model(&self, model: &str) -> Result<ModelSummary, StoreError>;

    /// Models in name order, `limit` per page, starting after the model named `after`.
    async fn list_models(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Page<ModelSummary, String>, StoreError>;

    /// Versions of a model in ascending order, starting after version `after`.
    async fn list_versions(
        &self,
        model: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<VersionMeta, u64>, StoreError>;

    /// Moves an alias (compare-and-set) and returns the move's audit record.
    async fn set_alias(&self, change: SetAlias) -> Result<AuditRecord, StoreError>;

    /// Appends the trainer's decision on a trigger to the model's audit log (moving nothing)
    /// and returns its record. The model must exist.
    async fn record_decision(&self, new: NewDecision) -> Result<AuditRecord, StoreError>;

    /// The audit log of a model, oldest first, starting after record `after`.
    async fn audit(
        &self,
        model: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<AuditRecord, u64>, StoreError>;

    /// How far the audit log of `model` has been announced on the bus: every record up to
    /// this seq has had its event published (0: none yet). The audit log is the registry's
    /// outbox: a record is committed in the same transaction as its change, and
    /// [`crate::service::ChampionEvents`] publishes what lies past this cursor, so a move
    /// committed just before a crash is announced after the restart.
    async fn announced_seq(&self, model: &str) -> Result<u64, StoreError>;

    /// Records that every audit record of `model` up to `seq` has been announced. The
    /// cursor never moves back: a lower `seq` than the stored one is ignored.
    async fn set_announced_seq(&self, model: &str, seq: u64) -> Result<(), StoreError>;

    /// Alias moves of `model` from now on (not replayed: read the current aliases with
    /// [`RegistryStore::model`] after subscribing, so no move falls between the two).
    async fn watch_aliases(&self, model: &str) -> Result<AliasWatch, StoreError>;
}
