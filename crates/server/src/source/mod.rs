//! Where the server gets models: the [`ModelSource`] trait, with a gRPC implementation over
//! the registry ([`RegistryModelSource`]) and an in-memory one ([`InMemoryModelSource`]) for
//! tests, benchmarks and embedding.
//!
//! The server never depends on the registry crate: it speaks `mend.registry.v1` over gRPC, or
//! whatever else implements this trait.

mod memory;
mod registry;

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;

pub use memory::InMemoryModelSource;
pub use registry::RegistryModelSource;

/// The alias that names the serving version.
pub const CHAMPION_ALIAS: &str = "champion";

/// One version's artifact, as fetched (not yet verified).
#[derive(Clone, PartialEq, Eq)]
pub struct FetchedModel {
    pub model: String,
    pub version: u64,
    /// The artifact file's bytes; `mend_core::Artifact::from_bytes` verifies them.
    pub artifact: Bytes,
}

impl fmt::Debug for FetchedModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchedModel")
            .field("model", &self.model)
            .field("version", &self.version)
            .field("artifact_len", &self.artifact.len())
            .finish()
    }
}

/// Why a source could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The model, version or champion does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The source cannot be reached or failed; the server keeps what it has and retries.
    #[error("model source unavailable: {0}")]
    Unavailable(String),
    /// The source answered with something unusable (a wrong checksum, a broken stream).
    #[error("model source sent an invalid answer: {0}")]
    Invalid(String),
}

/// Where models come from. Implementations must be cheap to call concurrently.
#[async_trait]
pub trait ModelSource: Send + Sync + fmt::Debug {
    /// The champion's version number, without its artifact (the reconcile loop's cheap check).
    async fn champion_version(&self, model: &str) -> Result<u64, SourceError>;

    /// The champion with its artifact.
    async fn champion(&self, model: &str) -> Result<FetchedModel, SourceError>;

    /// One version with its artifact.
    async fn version(&self, model: &str, version: u64) -> Result<FetchedModel, SourceError>;

    /// Every model that has a champion, in name order.
    async fn list_models(&self) -> Result<Vec<String>, SourceError>;
}
