//! Where the monitor learns each model's champion: a [`ChampionSource`] answers with the
//! version and its parsed artifact, whose reference profile windows are compared with and whose
//! model scores labeled rows. [`RegistryChampionSource`] asks the registry (metadata first, the
//! artifact only when the version changed); [`InMemoryChampionSource`] is for tests and
//! embedded use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mend_bus::ModelName;
use mend_client::{CHAMPION, ClientError, RegistryClient};
use mend_core::Artifact;
use mend_proto::registry::v1::get_version_request::Selector;

/// A model's current champion.
#[derive(Debug, Clone)]
pub struct Champion {
    pub version: u64,
    pub artifact: Arc<Artifact>,
}

/// Why a champion could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ChampionError {
    #[error("the registry failed: {0}")]
    Registry(#[from] ClientError),
    #[error("the champion's artifact does not load: {0}")]
    Artifact(#[from] mend_core::CoreError),
}

/// Answers "which version is the champion of this model, and what is it".
#[async_trait]
pub trait ChampionSource: Send + Sync + std::fmt::Debug {
    /// The champion, or `None` when the model has none yet.
    async fn champion(&self, model: &ModelName) -> Result<Option<Champion>, ChampionError>;

    /// Every model that has a champion now: the models a monitor without an allow-list
    /// watches.
    async fn models(&self) -> Result<Vec<ModelName>, ChampionError>;
}

/// The registry's `champion` alias, with the last artifact kept so an unchanged version is
/// not downloaded again.
#[derive(Debug)]
pub struct RegistryChampionSource {
    client: RegistryClient,
    cache: Mutex<HashMap<String, Champion>>,
}

impl RegistryChampionSource {
    pub fn new(client: RegistryClient) -> Self {
        RegistryChampionSource {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, model: &str, version: u64) -> Option<Champion> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(model)
            .filter(|champion| champion.version == version)
            .cloned()
    }
}

#[async_trait]
impl ChampionSource for RegistryChampionSource {
    async fn champion(&self, model: &ModelName) -> Result<Option<Champion>, ChampionError> {
        let meta = match self
            .client
            .metadata(model.as_str(), Selector::Alias(CHAMPION.to_owned()))
            .await
        {
            Ok(meta) => meta,
            Err(ClientError::NotFound(_)) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        if let Some(champion) = self.cached(model.as_str(), meta.version) {
            return Ok(Some(champion));
        }
        let fetched = match self.client.champion(model.as_str()).await {
            Ok(fetched) => fetched,
            Err(ClientError::NotFound(_)) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        // Parsing a large artifact is CPU work; keep it off the executor.
        let bytes = fetched.artifact;
        let artifact = tokio::task::spawn_blocking(move || Artifact::from_bytes(&bytes))
            .await
            .map_err(|error| {
                ClientError::Other(format!("artifact parse task failed: {error}"))
            })??;
        let champion = Champion {
            version: fetched.meta.version,
            artifact: Arc::new(artifact),
        };
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(model.as_str().to_owned(), champion.clone());
        }
        Ok(Some(champion))
    }

    async fn models(&self) -> Result<Vec<ModelName>, ChampionError> {
        let mut models = Vec::new();
        for name in self.client.champion_models().await? {
            match ModelName::new(name.as_str()) {
                Ok(model) => models.push(model),
                Err(error) => {
                    tracing::warn!(model = %name, %error, "not watching a model with an invalid name");
                }
            }
        }
        Ok(models)
    }
}

/// Champions set by hand.
#[derive(Debug, Default)]
pub struct InMemoryChampionSource {
    champions: Mutex<HashMap<String, Champion>>,
}

impl InMemoryChampionSource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets `model`'s champion (as a registry whose model was removed).
    pub fn remove(&self, model: &ModelName) {
        if let Ok(mut champions) = self.champions.lock() {
            champions.remove(model.as_str());
        }
    }

    /// Makes `artifact` the champion of `model` as `version`.
    pub fn set(&self, model: &ModelName, version: u64, artifact: Artifact) {
        if let Ok(mut champions) = self.champions.lock() {
            champions.insert(
                model.as_str().to_owned(),
                Champion {
                    version,
                    artifact: Arc::new(artifact),
                },
            );
        }
    }
}

#[async_trait]
impl ChampionSource for InMemoryChampionSource {
    async fn champion(&self, model: &ModelName) -> Result<Option<Champion>, ChampionError> {
        Ok(self
            .champions
            .lock()
            .ok()
            .and_then(|champions| champions.get(model.as_str()).cloned()))
    }

    async fn models(&self) -> Result<Vec<ModelName>, ChampionError> {
        let mut names: Vec<String> = self
            .champions
            .lock()
            .map(|champions| champions.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        Ok(names
            .iter()
            .filter_map(|name| ModelName::new(name.as_str()).ok())
            .collect())
    }
}
