//! The served models: per model an atomically swappable champion and a small cache of other
//! versions that requests asked for by number.
//!
//! Requests read the champion with one atomic load and keep their `Arc` until they answer, so
//! a swap never disturbs a request in flight: it finishes on the version it started with.
//! Swaps of one model are serialised, and each one asks the source where the champion points
//! now, so the last swap always installs the source's latest answer.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::sync::{OnceCell, watch};

use super::loaded::LoadedModel;
use crate::error::InferError;
use crate::metrics::ServerMetrics;
use crate::source::{FetchedModel, ModelSource, SourceError};

/// One served model.
#[derive(Debug)]
pub struct ModelEntry {
    pub name: String,
    champion: ArcSwapOption<LoadedModel>,
    /// Serialises swaps of this model.
    swap: tokio::sync::Mutex<()>,
    /// Recently requested non-champion versions, oldest first.
    versions: Mutex<VecDeque<CachedVersion>>,
}

#[derive(Debug, Clone)]
struct CachedVersion {
    version: u64,
    /// Initialised once; concurrent requests for the same version share one download.
    cell: Arc<OnceCell<Arc<LoadedModel>>>,
}

impl ModelEntry {
    fn new(name: &str) -> ModelEntry {
        ModelEntry {
            name: name.to_owned(),
            champion: ArcSwapOption::empty(),
            swap: tokio::sync::Mutex::new(()),
            versions: Mutex::new(VecDeque::new()),
        }
    }

    /// The champion being served, if one is loaded.
    pub fn champion(&self) -> Option<Arc<LoadedModel>> {
        self.champion.load_full()
    }

    /// Versions loaded right now: the champion's and the cached ones, ascending.
    pub fn loaded_versions(&self) -> Vec<u64> {
        let mut versions: Vec<u64> = self
            .cache()
            .iter()
            .filter(|cached| cached.cell.initialized())
            .map(|cached| cached.version)
            .chain(self.champion().map(|champion| champion.version))
            .collect();
        versions.sort_unstable();
        versions.dedup();
        versions
    }

    fn cache(&self) -> MutexGuard<'_, VecDeque<CachedVersion>> {
        // Each critical section is a few deque operations; a poisoned deque is still whole.
        self.versions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Every served model, the source they come from, and the serving-readiness signal.
#[derive(Debug)]
pub struct ModelStore {
    entries: ArcSwap<HashMap<String, Arc<ModelEntry>>>,
    /// Serialises additions (the map is copied on write).
    adding: Mutex<()>,
    source: Arc<dyn ModelSource>,
    metrics: ServerMetrics,
    /// Models were named in the config: serve exactly those, and all of them for readiness.
    fixed: bool,
    cache_size: usize,
    ready: watch::Sender<bool>,
}

impl ModelStore {
    /// A store serving `models` (or, when empty, whatever the source lists).
    pub fn new(
        source: Arc<dyn ModelSource>,
        metrics: ServerMetrics,
        models: &[String],
        cache_size: usize,
    ) -> ModelStore {
        let entries = models
            .iter()
            .map(|name| (name.clone(), Arc::new(ModelEntry::new(name))))
            .collect();
        ModelStore {
            entries: ArcSwap::from_pointee(entries),
            adding: Mutex::new(()),
            source,
            metrics,
            fixed: !models.is_empty(),
            cache_size: cache_size.max(1),
            ready: watch::channel(false).0,
        }
    }

    /// The entry of a served model.
    pub fn get(&self, name: &str) -> Option<Arc<ModelEntry>> {
        self.entries.load().get(name).cloned()
    }

    /// Served model names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.entries.load().keys().cloned().collect();
        names.sort_unstable();
        names
    }

    /// Whether models are discovered from the source (none configured).
    pub fn discovers(&self) -> bool {
        !self.fixed
    }

    /// Like [`ModelStore::ensure`] for a name heard from outside (an event): a model not
    /// served yet is added only if the source says it has a champion, so an event cannot
    /// make the server list a model the registry does not know.
    pub async fn ensure_known(&self, name: &str) -> Result<Option<Arc<ModelEntry>>, SourceError> {
        if let Some(entry) = self.get(name) {
            return Ok(Some(entry));
        }
        if self.fixed || mend_bus::ModelName::new(name).is_err() {
            return Ok(None);
        }
        match self.source.champion_version(name).await {
            Ok(_) => Ok(self.ensure(name)),
            Err(SourceError::NotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Starts serving `name` if models are discovered; returns its entry if served.
    pub fn ensure(&self, name: &str) -> Option<Arc<ModelEntry>> {
        if let Some(entry) = self.get(name) {
            return Some(entry);
        }
        if self.fixed || mend_bus::ModelName::new(name).is_err() {
            return None;
        }
        let _adding = self.adding.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.entries.load();
        if let Some(entry) = current.get(name) {
            return Some(Arc::clone(entry));
        }
        let entry = Arc::new(ModelEntry::new(name));
        let mut next = HashMap::clone(&current);
        next.insert(name.to_owned(), Arc::clone(&entry));
        self.entries.store(Arc::new(next));
        tracing::info!(model = name, "serving a newly discovered model");
        self.update_ready();
        Some(entry)
    }

    /// Whether the server can answer: every configured model (or, when discovering, at
    /// least one model) has a champion loaded.
    pub fn is_ready(&self) -> bool {
        let entries = self.entries.load();
        let mut loaded = entries
            .values()
            .map(|entry| entry.champion.load().is_some());
        if self.fixed {
            loaded.all(|loaded| loaded)
        } else {
            loaded.any(|loaded| loaded)
        }
    }

    /// Follows readiness changes.
    pub fn watch_ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    fn update_ready(&self) {
        let ready = self.is_ready();
        self.ready.send_if_modified(|current| {
            let changed = *current != ready;
            *current = ready;
            changed
        });
    }

    /// Asks the source where `name`'s champion points and swaps to it if it moved. Returns
    /// the version swapped in, or `None` when the champion was already current. On failure
    /// the current champion keeps serving.
    pub async fn reconcile(&self, entry: &ModelEntry) -> Result<Option<u64>, SourceError> {
        let _swap = entry.swap.lock().await;
        let current = entry.champion();
        let target = self.source.champion_version(&entry.name).await?;
        if current
            .as_ref()
            .is_some_and(|model| model.version == target)
        {
            return Ok(None);
        }
        // Reuse a cached copy of the target (a rollback to a recent version) when there is one.
        let cached = entry
            .cache()
            .iter()
            .find(|cached| cached.version == target)
            .and_then(|cached| cached.cell.get().cloned());
        let next = match cached {
            Some(model) => model,
            None => {
                let fetched = self.source.champion(&entry.name).await?;
                self.load(fetched).await.inspect_err(|_| {
                    self.metrics.load_failed(&entry.name);
                })?
            }
        };
        let version = next.version;
        entry.champion.store(Some(Arc::clone(&next)));
        if let Some(previous) = current {
            tracing::info!(model = %entry.name, from = previous.version, to = version, "champion swapped");
            // Keep the previous champion at hand: requests may still name it, and a rollback
            // to it needs no download.
            self.remember(entry, previous);
        } else {
            tracing::info!(model = %entry.name, version, "champion loaded");
        }
        self.metrics.swapped(&entry.name, version);
        self.update_ready();
        Ok(Some(version))
    }

    /// The model that answers a request naming `version` (empty: the champion).
    pub async fn resolve(&self, name: &str, version: &str) -> Result<Arc<LoadedModel>, InferError> {
        if version.is_empty() {
            // Nearly every request: the champion, read without cloning the entry's `Arc`
            // (a shared counter every request would otherwise bump twice).
            let entries = self.entries.load();
            let entry = entries.get(name).ok_or_else(|| self.unknown_model(name))?;
            return entry.champion().ok_or_else(|| {
                InferError::Unavailable(format!(
                    "model `{name}` has no champion loaded yet; retry shortly"
                ))
            });
        }
        let entry = self.get(name).ok_or_else(|| self.unknown_model(name))?;
        let champion = entry.champion();
        let version: u64 = version.trim().parse().map_err(|_| {
            InferError::invalid(format!(
                "model_version `{version}` is not a version number; leave it empty for the champion"
            ))
        })?;
        if let Some(champion) = champion.filter(|champion| champion.version == version) {
            return Ok(champion);
        }
        self.cached_version(&entry, version).await
    }

    fn unknown_model(&self, name: &str) -> InferError {
        const SHOWN: usize = 10;
        let names = self.names();
        let mut served = names
            .iter()
            .take(SHOWN)
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ");
        if names.len() > SHOWN {
            served.push_str(&format!(" and {} more", names.len() - SHOWN));
        }
        if served.is_empty() {
            served = "none yet".to_owned();
        }
        InferError::NotFound(format!(
            "model `{name}` is not served here (served: {served})"
        ))
    }

    async fn cached_version(
        &self,
        entry: &ModelEntry,
        version: u64,
    ) -> Result<Arc<LoadedModel>, InferError> {
        let cell = {
            let mut cache = entry.cache();
            match cache.iter().position(|cached| cached.version == version) {
                Some(index) => {
                    // Most recently used goes to the back.
                    let cached = cache.remove(index).unwrap_or_else(|| CachedVersion {
                        version,
                        cell: Arc::new(OnceCell::new()),
                    });
                    let cell = Arc::clone(&cached.cell);
                    cache.push_back(cached);
                    cell
                }
                None => {
                    let cell = Arc::new(OnceCell::new());
                    cache.push_back(CachedVersion {
                        version,
                        cell: Arc::clone(&cell),
                    });
                    while cache.len() > self.cache_size {
                        cache.pop_front();
                    }
                    cell
                }
            }
        };
        let loaded = cell
            .get_or_try_init(|| async {
                let fetched = self.source.version(&entry.name, version).await?;
                self.load(fetched).await
            })
            .await;
        match loaded {
            Ok(model) => Ok(Arc::clone(model)),
            Err(error) => {
                // Do not cache failures: the next request tries again.
                entry
                    .cache()
                    .retain(|cached| !Arc::ptr_eq(&cached.cell, &cell));
                Err(match error {
                    SourceError::NotFound(_) => InferError::NotFound(format!(
                        "model `{}` has no version {version}",
                        entry.name
                    )),
                    other => InferError::Unavailable(format!(
                        "version {version} of model `{}` cannot be loaded now: {other}",
                        entry.name
                    )),
                })
            }
        }
    }

    fn remember(&self, entry: &ModelEntry, model: Arc<LoadedModel>) {
        let mut cache = entry.cache();
        cache.retain(|cached| cached.version != model.version);
        cache.push_back(CachedVersion {
            version: model.version,
            cell: Arc::new(OnceCell::new_with(Some(model))),
        });
        while cache.len() > self.cache_size {
            cache.pop_front();
        }
    }

    /// Verifies and plans an artifact off the async executor (parsing is CPU work).
    async fn load(&self, fetched: FetchedModel) -> Result<Arc<LoadedModel>, SourceError> {
        let metrics = self.metrics.for_version(&fetched.model, fetched.version);
        let FetchedModel {
            model,
            version,
            artifact,
        } = fetched;
        let loaded = tokio::task::spawn_blocking(move || {
            LoadedModel::from_bytes(&model, version, &artifact, metrics)
        })
        .await
        .map_err(|error| SourceError::Invalid(format!("loading task failed: {error}")))?;
        match loaded {
            Ok(model) => Ok(Arc::new(model)),
            Err(error) => {
                tracing::error!(%error, "refusing an artifact");
                Err(SourceError::Invalid(error.to_string()))
            }
        }
    }

    /// Adds every model the source lists (when discovering); returns how many it lists.
    pub async fn discover(&self) -> Result<usize, SourceError> {
        if self.fixed {
            return Ok(self.entries.load().len());
        }
        let names = self.source.list_models().await?;
        for name in &names {
            self.ensure(name);
        }
        Ok(names.len())
    }

    /// Every served entry.
    pub fn entries(&self) -> Vec<Arc<ModelEntry>> {
        self.entries.load().values().cloned().collect()
    }
}
