//! Schemas held in memory: a champion per model that tests set, replace and remove, and a
//! switch to simulate an outage.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use mend_bus::ModelName;
use mend_core::Schema;

use super::{ChampionSchema, SchemaError, SchemaSource};

/// Champions' schemas in a map. Share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct InMemorySchemaSource {
    champions: Mutex<BTreeMap<String, ChampionSchema>>,
    unavailable: AtomicBool,
    fetches: AtomicU64,
}

impl InMemorySchemaSource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `schema` the champion of `model` as the next version; returns that version.
    pub fn promote(&self, model: &str, schema: Schema) -> u64 {
        let mut champions = self.lock();
        let version = champions.get(model).map_or(1, |c| c.version + 1);
        champions.insert(
            model.to_owned(),
            ChampionSchema {
                version,
                schema: Arc::new(schema),
            },
        );
        version
    }

    /// Removes the champion of `model`.
    pub fn remove(&self, model: &str) {
        self.lock().remove(model);
    }

    /// While unavailable, every call fails with [`SchemaError::Unavailable`].
    pub fn set_available(&self, available: bool) {
        self.unavailable.store(!available, Ordering::SeqCst);
    }

    /// How many full schemas were handed out, to check that callers cache.
    pub fn schema_fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, ChampionSchema>> {
        // Every critical section is one map operation; a poisoned map is still whole.
        self.champions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, model: &ModelName) -> Result<ChampionSchema, SchemaError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(SchemaError::Unavailable(
                "the in-memory source is switched off".into(),
            ));
        }
        self.lock()
            .get(model.as_str())
            .cloned()
            .ok_or_else(|| SchemaError::NotFound(format!("model `{model}` has no champion")))
    }
}

#[async_trait]
impl SchemaSource for InMemorySchemaSource {
    async fn champion_version(&self, model: &ModelName) -> Result<u64, SchemaError> {
        self.get(model).map(|champion| champion.version)
    }

    async fn champion_schema(&self, model: &ModelName) -> Result<ChampionSchema, SchemaError> {
        let champion = self.get(model)?;
        self.fetches.fetch_add(1, Ordering::SeqCst);
        Ok(champion)
    }
}
