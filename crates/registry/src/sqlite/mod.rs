//! [`SqliteStore`]: the registry in one SQLite file, the embedded default of `mend up`.
//!
//! - `schema.rs`: tables and connection settings.
//! - `ops.rs`: each operation as a blocking function on a connection.
//!
//! One connection behind a mutex serves every call on a blocking thread: registry traffic
//! is light, and a single writer is what SQLite wants anyway. Alias moves are announced to
//! in-process watchers through a broadcast channel after their transaction commits.

mod ops;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use rusqlite::Connection;
use tokio::sync::broadcast;
use tracing::{debug, info};

pub use schema::ARTIFACTS_TABLE;

use crate::changes::{self, check_decision, check_new_version, check_set_alias, page_limit};
use crate::{
    AliasWatch, AuditRecord, ModelSummary, NewDecision, NewVersion, Page, RegistryStore, SetAlias,
    StoreError, VersionMeta, digest, names, time,
};

/// File name of the registry database inside the data directory.
pub const FILE_NAME: &str = "registry.sqlite3";

/// How many alias moves a slow watcher may fall behind before it is told it lagged.
const WATCH_BUFFER: usize = 256;

/// The registry stored in one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    alias_moves: broadcast::Sender<AuditRecord>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `registry.sqlite3` in `data_dir`, creating the directory.
    pub async fn open_in_dir(data_dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let data_dir = data_dir.as_ref().to_owned();
        tokio::fs::create_dir_all(&data_dir)
            .await
            .map_err(|error| StoreError::Task(format!("cannot create {data_dir:?}: {error}")))?;
        Self::open(data_dir.join(FILE_NAME)).await
    }

    /// Opens (creating if needed) the registry database at `path`.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        let opened_path = path.clone();
        let connection = tokio::task::spawn_blocking(move || {
            let connection = Connection::open(&opened_path)?;
            schema::prepare(&connection)?;
            Ok::<_, StoreError>(connection)
        })
        .await
        .map_err(|error| StoreError::Task(error.to_string()))??;
        info!(path = %path.display(), "registry database open");
        let (alias_moves, _) = broadcast::channel(WATCH_BUFFER);
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            alias_moves,
            path,
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `operation` with the connection on a blocking thread.
    async fn with_connection<T, F>(&self, operation: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave a half-done write behind (the
            // transaction rolls back when dropped), so a poisoned lock is safe to reuse.
            let mut connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
            operation(&mut connection)
        })
        .await
        .map_err(|error| StoreError::Task(error.to_string()))?
    }
}

#[async_trait]
impl RegistryStore for SqliteStore {
    async fn register(&self, new: NewVersion, artifact: Bytes) -> Result<VersionMeta, StoreError> {
        check_new_version(&new)?;
        // Hash before taking the connection, so a big upload does not stall other callers.
        let sha256 = digest::sha256_hex_async(artifact.clone()).await?;
        let meta = self
            .with_connection(move |connection| {
                ops::register(connection, &new, &artifact, sha256, time::now_ms())
            })
            .await?;
        info!(model = %meta.model, version = meta.version, size = meta.artifact_size, "version registered");
        Ok(meta)
    }

    async fn version(&self, model: &str, version: u64) -> Result<VersionMeta, StoreError> {
        names::validate("model", model)?;
        let model = model.to_owned();
        self.with_connection(move |connection| ops::version(connection, &model, version))
            .await
    }

    async fn artifact(
        &self,
        model: &str,
        version: u64,
    ) -> Result<(VersionMeta, Bytes), StoreError> {
        names::validate("model", model)?;
        let model = model.to_owned();
        self.with_connection(move |connection| ops::artifact(connection, &model, version))
            .await
    }

    async fn resolve_alias(&self, model: &str, alias: &str) -> Result<u64, StoreError> {
        names::validate("model", model)?;
        names::validate("alias", alias)?;
        let (model, alias) = (model.to_owned(), alias.to_owned());
        self.with_connection(move |connection| ops::resolve_alias(connection, &model, &alias))
            .await
    }

    async fn model(&self, model: &str) -> Result<ModelSummary, StoreError> {
        names::validate("model", model)?;
        let model = model.to_owned();
        self.with_connection(move |connection| ops::model(connection, &model))
            .await
    }

    async fn list_models(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Page<ModelSummary, String>, StoreError> {
        let limit = page_limit(limit);
        self.with_connection(move |connection| {
            ops::list_models(connection, after.as_deref(), limit)
        })
        .await
    }

    async fn list_versions(
        &self,
        model: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<VersionMeta, u64>, StoreError> {
        names::validate("model", model)?;
        let (model, limit) = (model.to_owned(), page_limit(limit));
        self.with_connection(move |connection| ops::list_versions(connection, &model, after, limit))
            .await
    }

    async fn set_alias(&self, change: SetAlias) -> Result<AuditRecord, StoreError> {
        check_set_alias(&change)?;
        let record = self
            .with_connection(move |connection| ops::set_alias(connection, &change, time::now_ms()))
            .await?;
        info!(model = %record.model, alias = ?record.alias, version = record.version,
              previous = ?record.previous_version, "alias moved");
        // No receiver is normal (nobody watching); the move is committed either way.
        if self.alias_moves.send(record.clone()).is_err() {
            debug!("no alias watchers");
        }
        Ok(record)
    }

    async fn record_decision(&self, new: NewDecision) -> Result<AuditRecord, StoreError> {
        check_decision(&new)?;
        let record = self
            .with_connection(move |connection| {
                ops::record_decision(connection, &new, time::now_ms())
            })
            .await?;
        debug!(model = %record.model, seq = record.seq, "decision recorded");
        Ok(record)
    }

    async fn audit(
        &self,
        model: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<AuditRecord, u64>, StoreError> {
        names::validate("model", model)?;
        let (model, limit) = (model.to_owned(), changes::page_limit(limit));
        self.with_connection(move |connection| ops::audit(connection, &model, after, limit))
            .await
    }

    async fn announced_seq(&self, model: &str) -> Result<u64, StoreError> {
        names::validate("model", model)?;
        let model = model.to_owned();
        self.with_connection(move |connection| ops::announced_seq(connection, &model))
            .await
    }

    async fn set_announced_seq(&self, model: &str, seq: u64) -> Result<(), StoreError> {
        names::validate("model", model)?;
        let model = model.to_owned();
        self.with_connection(move |connection| ops::set_announced_seq(connection, &model, seq))
            .await
    }

    async fn watch_aliases(&self, model: &str) -> Result<AliasWatch, StoreError> {
        names::validate("model", model)?;
        let model = model.to_owned();
        let receiver = self.alias_moves.subscribe();
        let moves = futures::stream::unfold(receiver, move |mut receiver| {
            let model = model.clone();
            async move {
                loop {
                    match receiver.recv().await {
                        Ok(record) if record.model == model => {
                            return Some((Ok(record), receiver));
                        }
                        Ok(_) => continue,
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            return Some((Err(StoreError::WatchLagged { missed }), receiver));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        Ok(moves.boxed())
    }
}
