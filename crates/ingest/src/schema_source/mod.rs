//! Where the ingest service gets each model's schema: the champion's, since that is the model
//! the rows will be compared with and served to.
//!
//! - [`SchemaSource`]: the seam, answering "what is the champion of `model` and its schema".
//! - [`RegistrySchemaSource`]: over the registry's gRPC API (`mend-client`).
//! - [`InMemorySchemaSource`]: a map, for tests and embedding.
//! - [`SchemaCache`]: any source behind a cache that re-checks the champion after a time to
//!   live or when told a model was promoted or rolled back, and keeps serving the last schema
//!   it had while the source is down.

mod cache;
mod memory;
mod registry;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use mend_bus::ModelName;
use mend_core::Schema;

pub use cache::SchemaCache;
pub use memory::InMemorySchemaSource;
pub use registry::RegistrySchemaSource;

/// A champion's version and schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ChampionSchema {
    pub version: u64,
    pub schema: Arc<Schema>,
}

/// Why a schema could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The model does not exist or has no champion: its rows are rejected.
    #[error("{0}")]
    NotFound(String),
    /// The source is down or timed out: worth retrying; rows are not rejected for it.
    #[error("schema source unavailable: {0}")]
    Unavailable(String),
    /// The source answered with something unusable (an artifact that does not verify).
    #[error("schema source sent an invalid answer: {0}")]
    Invalid(String),
}

/// Where champions' schemas come from. Implementations must be cheap to call concurrently.
#[async_trait]
pub trait SchemaSource: Send + Sync + fmt::Debug {
    /// The champion's version only: the cheap check the cache makes before refetching.
    async fn champion_version(&self, model: &ModelName) -> Result<u64, SchemaError>;

    /// The champion's version and schema.
    async fn champion_schema(&self, model: &ModelName) -> Result<ChampionSchema, SchemaError>;
}
