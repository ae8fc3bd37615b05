//! An in-memory model source: versions and a champion per model, kept in a map. Tests use it
//! to promote and roll back without a registry, and to simulate an outage.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;

use super::{FetchedModel, ModelSource, SourceError};

/// Models held in memory. Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct InMemoryModelSource {
    models: Mutex<BTreeMap<String, Versions>>,
    unavailable: AtomicBool,
    artifact_fetches: AtomicU64,
}

#[derive(Debug, Default)]
struct Versions {
    artifacts: BTreeMap<u64, Bytes>,
    champion: Option<u64>,
}

impl InMemoryModelSource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next version of `model` (1, 2, 3, …) and returns its number.
    pub fn add_version(&self, model: &str, artifact: impl Into<Bytes>) -> u64 {
        let mut models = self.lock();
        let versions = models.entry(model.to_owned()).or_default();
        let version = versions.artifacts.keys().next_back().map_or(1, |v| v + 1);
        versions.artifacts.insert(version, artifact.into());
        version
    }

    /// Points the champion alias at `version`; false when that version does not exist.
    pub fn set_champion(&self, model: &str, version: u64) -> bool {
        let mut models = self.lock();
        let Some(versions) = models.get_mut(model) else {
            return false;
        };
        if !versions.artifacts.contains_key(&version) {
            return false;
        }
        versions.champion = Some(version);
        true
    }

    /// Adds a version and makes it champion at once; returns its number.
    pub fn promote(&self, model: &str, artifact: impl Into<Bytes>) -> u64 {
        let version = self.add_version(model, artifact);
        self.set_champion(model, version);
        version
    }

    /// While unavailable, every call fails with [`SourceError::Unavailable`] (a registry outage).
    pub fn set_available(&self, available: bool) {
        self.unavailable.store(!available, Ordering::SeqCst);
    }

    /// How many artifacts have been handed out, to check that the server caches.
    pub fn artifact_fetches(&self) -> u64 {
        self.artifact_fetches.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Versions>> {
        // Every critical section is a single map operation; a poisoned map is still whole.
        self.models.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn check_available(&self) -> Result<(), SourceError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(SourceError::Unavailable(
                "the in-memory source is switched off".into(),
            ));
        }
        Ok(())
    }

    fn fetch(&self, model: &str, version: u64) -> Result<FetchedModel, SourceError> {
        let models = self.lock();
        let artifact = models
            .get(model)
            .and_then(|versions| versions.artifacts.get(&version))
            .cloned()
            .ok_or_else(|| {
                SourceError::NotFound(format!("model `{model}` has no version {version}"))
            })?;
        self.artifact_fetches.fetch_add(1, Ordering::SeqCst);
        Ok(FetchedModel {
            model: model.to_owned(),
            version,
            artifact,
        })
    }
}

#[async_trait]
impl ModelSource for InMemoryModelSource {
    async fn champion_version(&self, model: &str) -> Result<u64, SourceError> {
        self.check_available()?;
        let models = self.lock();
        let versions = models
            .get(model)
            .ok_or_else(|| SourceError::NotFound(format!("no model named `{model}`")))?;
        versions
            .champion
            .ok_or_else(|| SourceError::NotFound(format!("model `{model}` has no champion")))
    }

    async fn champion(&self, model: &str) -> Result<FetchedModel, SourceError> {
        let version = self.champion_version(model).await?;
        self.fetch(model, version)
    }

    async fn version(&self, model: &str, version: u64) -> Result<FetchedModel, SourceError> {
        self.check_available()?;
        self.fetch(model, version)
    }

    async fn list_models(&self) -> Result<Vec<String>, SourceError> {
        self.check_available()?;
        Ok(self
            .lock()
            .iter()
            .filter(|(_, versions)| versions.champion.is_some())
            .map(|(name, _)| name.clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn versions_count_up_and_the_champion_moves() {
        let source = InMemoryModelSource::new();
        assert_eq!(source.add_version("m", &b"one"[..]), 1);
        assert_eq!(source.add_version("m", &b"two"[..]), 2);
        assert!(matches!(
            source.champion("m").await,
            Err(SourceError::NotFound(_))
        ));
        assert!(source.list_models().await.unwrap().is_empty());
        assert!(source.set_champion("m", 2));
        assert!(!source.set_champion("m", 3));
        let champion = source.champion("m").await.unwrap();
        assert_eq!((champion.version, &champion.artifact[..]), (2, &b"two"[..]));
        assert_eq!(source.list_models().await.unwrap(), vec!["m".to_owned()]);
        source.set_available(false);
        assert!(matches!(
            source.champion_version("m").await,
            Err(SourceError::Unavailable(_))
        ));
    }
}
