//! A cache of champions' schemas in front of any [`SchemaSource`].
//!
//! An entry is trusted until its next check: the time to live after a successful answer,
//! a shorter one after "no such model" (so a model created a moment ago is found soon), and
//! "now" once [`SchemaCache::invalidate`] hears of a promotion or rollback. A check first asks
//! for the champion's version and refetches the schema only when it moved. When the source is
//! down, the last schema keeps being served (validated rows are not refused because the
//! registry blinked) and the check is retried shortly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use mend_bus::ModelName;
use tokio::time::Instant;

use super::{ChampionSchema, SchemaError, SchemaSource};

/// How soon a failed check is retried while a stale schema is served.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// The longest a "no such model" answer is believed.
const MAX_NOT_FOUND_TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
struct Entry {
    /// The champion, or why there is none.
    answer: Result<ChampionSchema, String>,
    next_check: Instant,
}

/// Champions' schemas by model; share it behind an `Arc`.
#[derive(Debug)]
pub struct SchemaCache {
    source: Arc<dyn SchemaSource>,
    ttl: Duration,
    entries: Mutex<HashMap<ModelName, Entry>>,
    /// One check at a time, so a burst of batches for one model makes one registry call.
    checking: tokio::sync::Mutex<()>,
}

impl SchemaCache {
    pub fn new(source: Arc<dyn SchemaSource>, ttl: Duration) -> Self {
        SchemaCache {
            source,
            ttl,
            entries: Mutex::new(HashMap::new()),
            checking: tokio::sync::Mutex::new(()),
        }
    }

    /// The champion's schema of `model`, from the cache while it is fresh.
    pub async fn get(&self, model: &ModelName) -> Result<ChampionSchema, SchemaError> {
        if let Some(answer) = self.fresh(model) {
            return answer;
        }
        let _checking = self.checking.lock().await;
        // Another caller may have checked while this one waited.
        if let Some(answer) = self.fresh(model) {
            return answer;
        }
        let previous = self
            .lock()
            .get(model)
            .and_then(|entry| entry.answer.clone().ok());
        let answer = match &previous {
            Some(previous) => match self.source.champion_version(model).await {
                Ok(version) if version == previous.version => Ok(previous.clone()),
                Ok(_) => self.source.champion_schema(model).await,
                Err(error) => Err(error),
            },
            None => self.source.champion_schema(model).await,
        };
        let now = Instant::now();
        match answer {
            Ok(champion) => {
                if previous
                    .as_ref()
                    .is_some_and(|previous| previous.version != champion.version)
                {
                    tracing::info!(%model, version = champion.version, "validating against a new champion schema");
                }
                self.store(model, Ok(champion.clone()), now + self.ttl);
                Ok(champion)
            }
            Err(SchemaError::NotFound(reason)) => {
                self.store(
                    model,
                    Err(reason.clone()),
                    now + self.ttl.min(MAX_NOT_FOUND_TTL),
                );
                Err(SchemaError::NotFound(reason))
            }
            Err(error) => match previous {
                Some(previous) => {
                    tracing::warn!(%model, %error, version = previous.version, "schema check failed; still validating against the last known schema");
                    self.store(model, Ok(previous.clone()), now + RETRY_AFTER_FAILURE);
                    Ok(previous)
                }
                None => Err(error),
            },
        }
    }

    /// The next [`get`](Self::get) of `model` checks the source (a promotion or rollback).
    pub fn invalidate(&self, model: &ModelName) {
        if let Some(entry) = self.lock().get_mut(model) {
            entry.next_check = Instant::now();
        }
    }

    fn fresh(&self, model: &ModelName) -> Option<Result<ChampionSchema, SchemaError>> {
        let entries = self.lock();
        let entry = entries.get(model)?;
        if entry.next_check <= Instant::now() {
            return None;
        }
        Some(entry.answer.clone().map_err(SchemaError::NotFound))
    }

    fn store(
        &self,
        model: &ModelName,
        answer: Result<ChampionSchema, String>,
        next_check: Instant,
    ) {
        self.lock()
            .insert(model.clone(), Entry { answer, next_check });
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ModelName, Entry>> {
        // Each critical section is one map operation; a poisoned map is still whole.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use mend_core::{Feature, FeatureKind, Schema};

    use super::*;
    use crate::schema_source::InMemorySchemaSource;

    fn schema(feature: &str) -> Schema {
        Schema {
            features: vec![Feature {
                name: feature.into(),
                kind: FeatureKind::Numeric,
            }],
            label: "y".into(),
            classes: vec!["a".into(), "b".into()],
            id_column: None,
            time_column: None,
            allow_missing: true,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn caches_follows_promotions_and_survives_an_outage() {
        let source = Arc::new(InMemorySchemaSource::new());
        let model = ModelName::new("m").unwrap();
        source.promote("m", schema("x1"));
        let cache = SchemaCache::new(source.clone(), Duration::from_secs(60));

        assert_eq!(cache.get(&model).await.unwrap().version, 1);
        assert_eq!(cache.get(&model).await.unwrap().version, 1);
        assert_eq!(
            source.schema_fetches(),
            1,
            "the second get is served from the cache"
        );

        // A promotion is not seen until the entry expires or is invalidated.
        source.promote("m", schema("x2"));
        assert_eq!(cache.get(&model).await.unwrap().version, 1);
        cache.invalidate(&model);
        let champion = cache.get(&model).await.unwrap();
        assert_eq!(champion.version, 2);
        assert_eq!(champion.schema.features[0].name, "x2");

        // Down: the last schema is still served.
        source.set_available(false);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(cache.get(&model).await.unwrap().version, 2);

        // Expired and back: a version check without a refetch.
        source.set_available(true);
        tokio::time::advance(Duration::from_secs(2)).await;
        let fetches = source.schema_fetches();
        assert_eq!(cache.get(&model).await.unwrap().version, 2);
        assert_eq!(source.schema_fetches(), fetches);
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_models_are_remembered_briefly_and_found_once_promoted() {
        let source = Arc::new(InMemorySchemaSource::new());
        let model = ModelName::new("new").unwrap();
        let cache = SchemaCache::new(source.clone(), Duration::from_secs(60));
        assert!(matches!(
            cache.get(&model).await,
            Err(SchemaError::NotFound(_))
        ));
        source.promote("new", schema("x"));
        assert!(matches!(
            cache.get(&model).await,
            Err(SchemaError::NotFound(_))
        ));
        cache.invalidate(&model);
        assert_eq!(cache.get(&model).await.unwrap().version, 1);

        let other = ModelName::new("other").unwrap();
        source.set_available(false);
        assert!(matches!(
            cache.get(&other).await,
            Err(SchemaError::Unavailable(_))
        ));
        source.set_available(true);
        assert!(matches!(
            cache.get(&other).await,
            Err(SchemaError::NotFound(_))
        ));
        source.promote("other", schema("x"));
        tokio::time::advance(MAX_NOT_FOUND_TTL).await;
        assert_eq!(cache.get(&other).await.unwrap().version, 1);
    }
}
