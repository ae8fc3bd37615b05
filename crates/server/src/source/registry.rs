//! The registry as a model source, over its gRPC API (`mend.registry.v1.Registry`), through
//! the shared [`mend_client::RegistryClient`]: it joins the streamed chunks and checks them
//! against the announced size and sha256 before anyone parses them.

use async_trait::async_trait;
use mend_client::{ClientError, RegistryClient};
use mend_proto::registry::v1::get_version_request::Selector;
use tonic::transport::{Channel, Endpoint};

use super::{CHAMPION_ALIAS, FetchedModel, ModelSource, SourceError};

/// Reads versions and champions from the registry service.
#[derive(Debug, Clone)]
pub struct RegistryModelSource {
    client: RegistryClient,
}

impl RegistryModelSource {
    /// Over an existing channel. Reads need no token.
    pub fn new(channel: Channel) -> Self {
        RegistryModelSource {
            client: RegistryClient::new(channel, None),
        }
    }

    /// Dials lazily: the server starts (and keeps retrying) even while the registry is down.
    pub fn connect_lazy(endpoint: &Endpoint) -> Self {
        Self::new(endpoint.connect_lazy())
    }

    async fn get(&self, model: &str, selector: Selector) -> Result<FetchedModel, SourceError> {
        let fetched = self
            .client
            .fetch(model, selector)
            .await
            .map_err(from_client)?;
        Ok(FetchedModel {
            model: fetched.meta.model,
            version: fetched.meta.version,
            artifact: fetched.artifact,
        })
    }
}

fn from_client(error: ClientError) -> SourceError {
    match error {
        ClientError::NotFound(message) => SourceError::NotFound(message),
        ClientError::InvalidResponse(message) => SourceError::Invalid(message),
        // Everything else (down, overloaded, a bug) means: keep serving what we have, retry.
        other => SourceError::Unavailable(format!("registry: {other}")),
    }
}

#[async_trait]
impl ModelSource for RegistryModelSource {
    async fn champion_version(&self, model: &str) -> Result<u64, SourceError> {
        let meta = self
            .client
            .metadata(model, Selector::Alias(CHAMPION_ALIAS.to_owned()))
            .await
            .map_err(from_client)?;
        Ok(meta.version)
    }

    async fn champion(&self, model: &str) -> Result<FetchedModel, SourceError> {
        self.get(model, Selector::Alias(CHAMPION_ALIAS.to_owned()))
            .await
    }

    async fn version(&self, model: &str, version: u64) -> Result<FetchedModel, SourceError> {
        self.get(model, Selector::Version(version)).await
    }

    async fn list_models(&self) -> Result<Vec<String>, SourceError> {
        let models = self.client.list_models().await.map_err(from_client)?;
        Ok(models
            .into_iter()
            .filter(|summary| summary.aliases.contains_key(CHAMPION_ALIAS))
            .map(|summary| summary.name)
            .collect())
    }
}
