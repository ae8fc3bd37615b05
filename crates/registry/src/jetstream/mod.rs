//! [`JetStreamStore`]: the registry on NATS JetStream, for the distributed deployment.
//!
//! - `log.rs`: the per-model change log (the commit point of every change) and the
//!   snapshot and version keys derived from it.
//! - `artifacts.rs`: artifact bytes in an Object Store bucket.
//!
//! Buckets, named from [`JetStreamConfig::prefix`]:
//! - `<prefix>_models` (KV): one snapshot per model, also the list of models;
//! - `<prefix>_log` (KV): `log.<model>.<seq>` entries and `version.<model>.<n>` metadata;
//! - `<prefix>_artifacts` (Object Store): `<model>/<sha256>` artifacts.
//!
//! A registration stores the artifact first and then commits the log entry, so a process
//! killed mid-registration leaves at most an unreferenced object, never a version.

mod artifacts;
mod log;

use std::time::Duration;

use async_nats::jetstream::{self, kv, object_store};
use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use rand::Rng;
use tracing::{debug, info};

pub use artifacts::object_name;

use crate::changes::{
    self, ModelState, check_decision, check_new_version, check_set_alias, page_limit,
};
use crate::{
    AliasWatch, AuditAction, AuditRecord, ModelSummary, NewDecision, NewVersion, Page,
    RegistryStore, SetAlias, StoreError, VersionMeta, digest, names, time,
};
use log::{
    LogEntry, OUTBOX_READY_KEY, catch_up, encode, log_key, log_pattern, outbox_key, read_entry,
    version_key,
};

/// Upper bound on commit attempts under contention: each lost race means another writer
/// committed, so this is only reached when a model gets hundreds of concurrent writes.
const MAX_COMMIT_ATTEMPTS: u32 = 500;

/// Where the JetStream store keeps its data.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    /// Prefix of the bucket names (letters, digits, `_`, `-`).
    pub prefix: String,
    /// Copies of each bucket when it is created (`MEND_NATS_REPLICAS`: 1 for a single
    /// server, 3 in a cluster). Existing buckets keep theirs.
    pub replicas: usize,
}

impl Default for JetStreamConfig {
    fn default() -> Self {
        Self {
            prefix: "mend_registry".to_owned(),
            replicas: 1,
        }
    }
}

impl JetStreamConfig {
    pub fn models_bucket(&self) -> String {
        format!("{}_models", self.prefix)
    }

    pub fn log_bucket(&self) -> String {
        format!("{}_log", self.prefix)
    }

    pub fn artifacts_bucket(&self) -> String {
        format!("{}_artifacts", self.prefix)
    }
}

/// The registry stored in JetStream KV and Object Store buckets.
#[derive(Clone)]
pub struct JetStreamStore {
    models: kv::Store,
    log: kv::Store,
    artifacts: object_store::ObjectStore,
    config: JetStreamConfig,
}

impl std::fmt::Debug for JetStreamStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamStore")
            .field("config", &self.config)
            .finish()
    }
}

/// Opens a KV bucket, creating it on first use.
async fn key_value(
    context: &jetstream::Context,
    bucket: String,
    description: &str,
    replicas: usize,
) -> Result<kv::Store, StoreError> {
    if let Ok(store) = context.get_key_value(&bucket).await {
        return Ok(store);
    }
    context
        .create_key_value(kv::Config {
            bucket,
            description: description.to_owned(),
            history: 1,
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .map_err(|error| StoreError::nats("create kv bucket", error))
}

impl JetStreamStore {
    /// Opens the store's buckets, creating them if they do not exist.
    pub async fn open(
        context: &jetstream::Context,
        config: JetStreamConfig,
    ) -> Result<Self, StoreError> {
        names::validate("prefix", &config.prefix)?;
        let models = key_value(
            context,
            config.models_bucket(),
            "mend registry: model snapshots",
            config.replicas,
        )
        .await?;
        let log = key_value(
            context,
            config.log_bucket(),
            "mend registry: change log and versions",
            config.replicas,
        )
        .await?;
        let artifacts = match context.get_object_store(config.artifacts_bucket()).await {
            Ok(store) => store,
            Err(_) => context
                .create_object_store(object_store::Config {
                    bucket: config.artifacts_bucket(),
                    description: Some("mend registry: model artifacts".to_owned()),
                    num_replicas: config.replicas,
                    ..Default::default()
                })
                .await
                .map_err(|error| StoreError::nats("create object store", error))?,
        };
        info!(prefix = %config.prefix, "registry buckets open");
        let store = Self {
            models,
            log,
            artifacts,
            config,
        };
        store.start_outbox().await?;
        Ok(store)
    }

    /// Every model's name, in no particular order (the keys of the models bucket).
    async fn model_names(&self) -> Result<Vec<String>, StoreError> {
        self.models
            .keys()
            .await
            .map_err(|error| StoreError::nats("list models", error))?
            .try_collect()
            .await
            .map_err(|error| StoreError::nats("list models", error))
    }

    /// Gives the models that existed before the outbox a cursor at their last record (their
    /// moves were announced, or lost, long ago), once per store, so an upgraded registry does
    /// not publish its whole history again.
    async fn start_outbox(&self) -> Result<(), StoreError> {
        let ready = self
            .log
            .get(OUTBOX_READY_KEY)
            .await
            .map_err(|error| StoreError::nats("read outbox marker", error))?;
        if ready.is_some() {
            return Ok(());
        }
        for name in self.model_names().await? {
            let Some(state) = catch_up(&self.models, &self.log, &name).await? else {
                continue;
            };
            match self
                .log
                .create(outbox_key(&name), encode(&state.audit_seq)?)
                .await
            {
                Ok(_) => {}
                Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {}
                Err(error) => return Err(StoreError::nats("start outbox", error)),
            }
        }
        self.log
            .put(OUTBOX_READY_KEY, Bytes::from_static(b"1"))
            .await
            .map_err(|error| StoreError::nats("write outbox marker", error))?;
        Ok(())
    }

    /// The store's configuration.
    pub fn config(&self) -> &JetStreamConfig {
        &self.config
    }

    async fn state(&self, model: &str) -> Result<ModelState, StoreError> {
        catch_up(&self.models, &self.log, model)
            .await?
            .ok_or_else(|| StoreError::ModelNotFound {
                model: model.to_owned(),
            })
    }

    /// Commits the entry `plan` builds on the model's current state, retrying on top of
    /// the new state whenever another writer took the next log position first.
    async fn commit(
        &self,
        model: &str,
        mut plan: impl FnMut(&ModelState) -> Result<LogEntry, StoreError>,
    ) -> Result<LogEntry, StoreError> {
        for attempt in 1..=MAX_COMMIT_ATTEMPTS {
            let state = self.state(model).await?;
            let entry = plan(&state)?;
            let key = log_key(model, entry.record.seq);
            match self.log.create(&key, encode(&entry)?).await {
                Ok(_) => {
                    // Derive the version key and snapshot now; a crash here is repaired by
                    // the next catch-up.
                    catch_up(&self.models, &self.log, model).await?;
                    return Ok(entry);
                }
                Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
                    let winner = read_entry(&self.log, model, entry.record.seq).await?;
                    if winner.is_some_and(|winner| winner.commit_id == entry.commit_id) {
                        // Our write landed but its acknowledgement was lost.
                        catch_up(&self.models, &self.log, model).await?;
                        return Ok(entry);
                    }
                    debug!(model, attempt, seq = entry.record.seq, "lost commit race");
                    // Jitter spreads out writers that keep colliding.
                    let pause = rand::rng().random_range(0..=attempt.min(20));
                    tokio::time::sleep(Duration::from_millis(u64::from(pause))).await;
                }
                Err(error) => return Err(StoreError::nats("commit log entry", error)),
            }
        }
        Err(StoreError::Contended {
            model: model.to_owned(),
            attempts: MAX_COMMIT_ATTEMPTS,
        })
    }

    /// Reads the metadata of a version whose key the catch-up may not have written yet.
    async fn read_version(
        &self,
        model: &str,
        version: u64,
    ) -> Result<Option<VersionMeta>, StoreError> {
        let bytes = self
            .log
            .get(version_key(model, version))
            .await
            .map_err(|error| StoreError::nats("read version", error))?;
        bytes
            .map(|bytes| serde_json::from_slice(&bytes).map_err(StoreError::from))
            .transpose()
    }
}

fn commit_id() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

#[async_trait]
impl RegistryStore for JetStreamStore {
    async fn register(&self, new: NewVersion, artifact: Bytes) -> Result<VersionMeta, StoreError> {
        check_new_version(&new)?;
        let sha256 = digest::sha256_hex_async(artifact.clone()).await?;
        artifacts::put(&self.artifacts, &new.model, &sha256, &artifact).await?;

        // The snapshot key is what makes a model exist (and listable).
        match self
            .models
            .create(&new.model, encode(&ModelState::default())?)
            .await
        {
            Ok(_) => info!(model = %new.model, "model created"),
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(error) => return Err(StoreError::nats("create model", error)),
        }

        let commit_id = commit_id();
        let size = artifact.len() as u64;
        let entry = self
            .commit(&new.model, |state| {
                let (meta, record) =
                    changes::registration(state, &new, sha256.clone(), size, time::now_ms());
                Ok(LogEntry {
                    commit_id: commit_id.clone(),
                    record,
                    version: Some(meta),
                })
            })
            .await?;
        let meta = entry.version.ok_or_else(|| {
            StoreError::Task("registration committed without its version".to_owned())
        })?;
        info!(model = %meta.model, version = meta.version, size = meta.artifact_size, "version registered");
        Ok(meta)
    }

    async fn version(&self, model: &str, version: u64) -> Result<VersionMeta, StoreError> {
        names::validate("model", model)?;
        if let Some(meta) = self.read_version(model, version).await? {
            return Ok(meta);
        }
        // Maybe committed but not derived yet (or the model is unknown): catch up, re-read.
        self.state(model).await?;
        self.read_version(model, version)
            .await?
            .ok_or_else(|| StoreError::VersionNotFound {
                model: model.to_owned(),
                version,
            })
    }

    async fn artifact(
        &self,
        model: &str,
        version: u64,
    ) -> Result<(VersionMeta, Bytes), StoreError> {
        let meta = self.version(model, version).await?;
        let bytes = artifacts::get(&self.artifacts, &meta).await?;
        Ok((meta, bytes))
    }

    async fn resolve_alias(&self, model: &str, alias: &str) -> Result<u64, StoreError> {
        names::validate("model", model)?;
        names::validate("alias", alias)?;
        self.state(model)
            .await?
            .aliases
            .get(alias)
            .copied()
            .ok_or_else(|| StoreError::AliasNotFound {
                model: model.to_owned(),
                alias: alias.to_owned(),
            })
    }

    async fn model(&self, model: &str) -> Result<ModelSummary, StoreError> {
        names::validate("model", model)?;
        Ok(self.state(model).await?.summary(model))
    }

    async fn list_models(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Page<ModelSummary, String>, StoreError> {
        let limit = page_limit(limit);
        let mut names = self.model_names().await?;
        names.sort();
        let after = after.unwrap_or_default();
        let mut summaries = Vec::new();
        for name in names
            .into_iter()
            .filter(|name| *name > after)
            .take(limit + 1)
        {
            summaries.push(self.state(&name).await?.summary(&name));
        }
        Ok(Page::from_probe(summaries, limit, |summary| {
            summary.name.clone()
        }))
    }

    async fn list_versions(
        &self,
        model: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<VersionMeta, u64>, StoreError> {
        names::validate("model", model)?;
        let limit = page_limit(limit);
        let state = self.state(model).await?;
        let first = after.unwrap_or(0) + 1;
        let last = state.latest_version.min(first + limit as u64);
        let mut metas = Vec::new();
        for version in first..=last {
            metas.push(self.version(model, version).await?);
        }
        Ok(Page::from_probe(metas, limit, |meta| meta.version))
    }

    async fn set_alias(&self, change: SetAlias) -> Result<AuditRecord, StoreError> {
        check_set_alias(&change)?;
        let commit_id = commit_id();
        let entry = self
            .commit(&change.model, |state| {
                Ok(LogEntry {
                    commit_id: commit_id.clone(),
                    record: changes::alias_move(state, &change, time::now_ms())?,
                    version: None,
                })
            })
            .await?;
        let record = entry.record;
        info!(model = %record.model, alias = ?record.alias, version = record.version,
              previous = ?record.previous_version, "alias moved");
        Ok(record)
    }

    async fn record_decision(&self, new: NewDecision) -> Result<AuditRecord, StoreError> {
        check_decision(&new)?;
        let commit_id = commit_id();
        let entry = self
            .commit(&new.model, |state| {
                Ok(LogEntry {
                    commit_id: commit_id.clone(),
                    record: changes::decision_record(state, &new, time::now_ms())?,
                    version: None,
                })
            })
            .await?;
        debug!(model = %entry.record.model, seq = entry.record.seq, "decision recorded");
        Ok(entry.record)
    }

    async fn audit(
        &self,
        model: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<AuditRecord, u64>, StoreError> {
        names::validate("model", model)?;
        let limit = page_limit(limit);
        let state = self.state(model).await?;
        let first = after.unwrap_or(0) + 1;
        let last = state.audit_seq.min(first + limit as u64);
        let mut records = Vec::new();
        for seq in first..=last {
            let entry = read_entry(&self.log, model, seq).await?.ok_or_else(|| {
                StoreError::Task(format!("audit record {seq} of {model:?} vanished"))
            })?;
            records.push(entry.record);
        }
        Ok(Page::from_probe(records, limit, |record| record.seq))
    }

    async fn announced_seq(&self, model: &str) -> Result<u64, StoreError> {
        names::validate("model", model)?;
        self.state(model).await?;
        let bytes = self
            .log
            .get(outbox_key(model))
            .await
            .map_err(|error| StoreError::nats("read outbox cursor", error))?;
        match bytes {
            Some(bytes) => Ok(serde_json::from_slice(&bytes)?),
            None => Ok(0),
        }
    }

    async fn set_announced_seq(&self, model: &str, seq: u64) -> Result<(), StoreError> {
        names::validate("model", model)?;
        self.state(model).await?;
        let key = outbox_key(model);
        // Compare-and-set on the revision, so a slower writer never moves the cursor back.
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let current = self
                .log
                .entry(&key)
                .await
                .map_err(|error| StoreError::nats("read outbox cursor", error))?
                .filter(|entry| entry.operation == kv::Operation::Put);
            let result = match &current {
                Some(entry) => {
                    if serde_json::from_slice::<u64>(&entry.value)? >= seq {
                        return Ok(());
                    }
                    self.log
                        .update(&key, encode(&seq)?, entry.revision)
                        .await
                        .map(|_| ())
                        .map_err(|error| {
                            (
                                error.kind() == kv::UpdateErrorKind::WrongLastRevision,
                                StoreError::nats("advance outbox cursor", error),
                            )
                        })
                }
                None => self
                    .log
                    .create(&key, encode(&seq)?)
                    .await
                    .map(|_| ())
                    .map_err(|error| {
                        (
                            error.kind() == kv::CreateErrorKind::AlreadyExists,
                            StoreError::nats("advance outbox cursor", error),
                        )
                    }),
            };
            match result {
                Ok(()) => return Ok(()),
                Err((true, _)) => continue,
                Err((false, error)) => return Err(error),
            }
        }
        Err(StoreError::Contended {
            model: model.to_owned(),
            attempts: MAX_COMMIT_ATTEMPTS,
        })
    }

    async fn watch_aliases(&self, model: &str) -> Result<AliasWatch, StoreError> {
        names::validate("model", model)?;
        let watch = self
            .log
            .watch(log_pattern(model))
            .await
            .map_err(|error| StoreError::nats("watch aliases", error))?;
        let moves = watch.filter_map(|entry| async move {
            let entry = match entry {
                Ok(entry) if entry.operation == kv::Operation::Put => entry,
                Ok(_) => return None,
                Err(error) => return Some(Err(StoreError::nats("watch aliases", error))),
            };
            match serde_json::from_slice::<LogEntry>(&entry.value) {
                Ok(logged) if logged.record.action == AuditAction::SetAlias => {
                    Some(Ok(logged.record))
                }
                Ok(_) => None,
                Err(error) => Some(Err(StoreError::from(error))),
            }
        });
        Ok(moves.boxed())
    }
}
