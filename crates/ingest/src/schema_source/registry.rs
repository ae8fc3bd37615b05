//! The registry as a schema source: the champion's metadata for the cheap version check, and
//! its artifact (verified by `mend-client` against the announced sha256, then parsed and
//! checked by `mend_core::Artifact::from_bytes`) for the schema.

use std::sync::Arc;

use async_trait::async_trait;
use mend_bus::ModelName;
use mend_client::{CHAMPION, ClientError, RegistryClient};
use mend_core::Artifact;
use mend_proto::registry::v1::get_version_request::Selector;

use super::{ChampionSchema, SchemaError, SchemaSource};

/// Reads champions from the registry service.
#[derive(Debug, Clone)]
pub struct RegistrySchemaSource {
    client: RegistryClient,
}

impl RegistrySchemaSource {
    pub fn new(client: RegistryClient) -> Self {
        RegistrySchemaSource { client }
    }
}

fn from_client(error: ClientError) -> SchemaError {
    match error {
        ClientError::NotFound(message) => SchemaError::NotFound(message),
        ClientError::InvalidResponse(message) => SchemaError::Invalid(message),
        // Down, overloaded, refused: keep the last schema and retry later.
        other => SchemaError::Unavailable(other.to_string()),
    }
}

#[async_trait]
impl SchemaSource for RegistrySchemaSource {
    async fn champion_version(&self, model: &ModelName) -> Result<u64, SchemaError> {
        let meta = self
            .client
            .metadata(model.as_str(), Selector::Alias(CHAMPION.to_owned()))
            .await
            .map_err(from_client)?;
        Ok(meta.version)
    }

    async fn champion_schema(&self, model: &ModelName) -> Result<ChampionSchema, SchemaError> {
        let fetched = self
            .client
            .champion(model.as_str())
            .await
            .map_err(from_client)?;
        let version = fetched.meta.version;
        // Verifying and parsing a large artifact is CPU work: off the async executor.
        let artifact = tokio::task::spawn_blocking(move || Artifact::from_bytes(&fetched.artifact))
            .await
            .map_err(|error| SchemaError::Unavailable(format!("artifact parser failed: {error}")))?
            .map_err(|error| {
                SchemaError::Invalid(format!(
                    "champion version {version} of `{model}` does not load: {error}"
                ))
            })?;
        Ok(ChampionSchema {
            version,
            schema: Arc::new(artifact.schema),
        })
    }
}
