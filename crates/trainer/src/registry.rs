//! The registry operations the trainer needs, over the `mend-client` gRPC client: the
//! champion (absent is not an error), versions by trigger, the audit log, and
//! compare-and-set alias moves.

use mend_client::{CHAMPION, ClientError, RegistryClient};
use mend_core::Artifact;
use mend_proto::registry::v1 as pb;
use pb::get_version_request::Selector;

use crate::error::TrainerError;
use crate::lineage::ACTOR;

/// A version with its parsed, verified artifact.
#[derive(Debug, Clone)]
pub struct LoadedVersion {
    pub meta: pb::VersionMetadata,
    pub artifact: Artifact,
}

/// The champion with its artifact, or `None` when the model has none yet.
pub async fn champion(
    registry: &RegistryClient,
    model: &str,
) -> Result<Option<LoadedVersion>, TrainerError> {
    match registry.champion(model).await {
        Ok(fetched) => Ok(Some(LoadedVersion {
            artifact: Artifact::from_bytes(&fetched.artifact)?,
            meta: fetched.meta,
        })),
        Err(ClientError::NotFound(_)) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Where the champion points now, without its artifact.
/// The models that have a champion (names that are not valid model names are skipped with a
/// warning): what guards and follow-ups look through when a trainer starts.
pub async fn champion_models(
    registry: &RegistryClient,
) -> Result<Vec<mend_bus::ModelName>, TrainerError> {
    let mut models = Vec::new();
    for name in registry.champion_models().await? {
        match mend_bus::ModelName::new(name.as_str()) {
            Ok(model) => models.push(model),
            Err(error) => {
                tracing::warn!(model = %name, %error, "skipping a model with an invalid name");
            }
        }
    }
    Ok(models)
}

pub async fn champion_version(
    registry: &RegistryClient,
    model: &str,
) -> Result<Option<u64>, TrainerError> {
    alias_version(registry, model, CHAMPION).await
}

/// One version with its artifact.
pub async fn version(
    registry: &RegistryClient,
    model: &str,
    version: u64,
) -> Result<LoadedVersion, TrainerError> {
    let fetched = registry.fetch(model, Selector::Version(version)).await?;
    Ok(LoadedVersion {
        artifact: Artifact::from_bytes(&fetched.artifact)?,
        meta: fetched.meta,
    })
}

/// Every version of the model (none when the model is unknown).
pub async fn versions(
    registry: &RegistryClient,
    model: &str,
) -> Result<Vec<pb::VersionMetadata>, TrainerError> {
    match registry.list_versions(model).await {
        Ok(versions) => Ok(versions),
        Err(ClientError::NotFound(_)) => Ok(Vec::new()),
        Err(error) => Err(error.into()),
    }
}

/// Whether the champion alias ever pointed at `version`, by the audit log.
pub async fn was_champion(
    registry: &RegistryClient,
    model: &str,
    version: u64,
) -> Result<bool, TrainerError> {
    Ok(audit(registry, model).await?.iter().any(|record| {
        record.action == pb::AuditAction::SetAlias as i32
            && record.alias == CHAMPION
            && record.version == version
    }))
}

/// What a compare-and-set move of the champion came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveOutcome {
    Moved,
    /// The champion was not where we expected: someone else moved it first.
    Conflict(String),
}

/// Moves `champion` to `to`, only if it still points at `expected` (absent when `None`).
pub async fn move_champion(
    registry: &RegistryClient,
    model: &str,
    to: u64,
    expected: Option<u64>,
    reason: &str,
    trigger_event_id: &str,
) -> Result<MoveOutcome, TrainerError> {
    move_alias(
        registry,
        model,
        CHAMPION,
        to,
        expected,
        reason,
        trigger_event_id,
    )
    .await
}

/// Where `alias` points now (`None` when it does not exist).
pub async fn alias_version(
    registry: &RegistryClient,
    model: &str,
    alias: &str,
) -> Result<Option<u64>, TrainerError> {
    match registry
        .metadata(model, Selector::Alias(alias.to_owned()))
        .await
    {
        Ok(meta) => Ok(Some(meta.version)),
        Err(ClientError::NotFound(_)) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The audit log of a model, oldest first (empty when the model is unknown).
pub async fn audit(
    registry: &RegistryClient,
    model: &str,
) -> Result<Vec<pb::AuditRecord>, TrainerError> {
    match registry.audit(model).await {
        Ok(audit) => Ok(audit),
        Err(ClientError::NotFound(_)) => Ok(Vec::new()),
        Err(error) => Err(error.into()),
    }
}

/// Moves `alias` to `to`, only if it still points at `expected` (absent when `None`).
pub async fn move_alias(
    registry: &RegistryClient,
    model: &str,
    alias: &str,
    to: u64,
    expected: Option<u64>,
    reason: &str,
    trigger_event_id: &str,
) -> Result<MoveOutcome, TrainerError> {
    let state = match expected {
        Some(version) => pb::alias_precondition::State::Version(version),
        None => pb::alias_precondition::State::Absent(true),
    };
    let request = pb::SetAliasRequest {
        model: model.to_owned(),
        alias: alias.to_owned(),
        version: to,
        expected: Some(pb::AliasPrecondition { state: Some(state) }),
        actor: ACTOR.to_owned(),
        reason: reason.to_owned(),
        trigger_event_id: trigger_event_id.to_owned(),
    };
    match registry.set_alias(request).await {
        Ok(_) => Ok(MoveOutcome::Moved),
        Err(ClientError::Conflict(message)) => Ok(MoveOutcome::Conflict(message)),
        Err(error) => Err(error.into()),
    }
}
