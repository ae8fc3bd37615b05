//! The registry as a model source, over its gRPC API (`mend.registry.v1.Registry`).
//!
//! `GetVersion` streams the metadata first and the artifact in chunks after it; the chunks are
//! joined and checked against the metadata's size and sha256 before anyone parses them.

use std::time::Duration;

use async_trait::async_trait;
use bytes::BytesMut;
use mend_proto::registry::v1::get_version_request::Selector;
use mend_proto::registry::v1::get_version_response::Part;
use mend_proto::registry::v1::registry_client::RegistryClient;
use mend_proto::registry::v1::{GetVersionRequest, ListModelsRequest, VersionMetadata};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use super::{CHAMPION_ALIAS, FetchedModel, ModelSource, SourceError};

/// A metadata call that takes longer than this counts as the registry being down.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);
/// Artifacts can be large; give a download more room.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// Artifacts larger than this are refused rather than buffered (a broken registry or a lie).
const MAX_ARTIFACT_BYTES: u64 = 1 << 30;
/// Models per `ListModels` page.
const PAGE_SIZE: u32 = 500;

/// Reads versions and champions from the registry service.
#[derive(Debug, Clone)]
pub struct RegistryModelSource {
    client: RegistryClient<Channel>,
}

impl RegistryModelSource {
    /// Over an existing channel.
    pub fn new(channel: Channel) -> Self {
        RegistryModelSource {
            client: RegistryClient::new(channel).max_decoding_message_size(64 * 1024 * 1024),
        }
    }

    /// Dials lazily: the server starts (and keeps retrying) even while the registry is down.
    pub fn connect_lazy(endpoint: &Endpoint) -> Self {
        Self::new(endpoint.connect_lazy())
    }

    async fn get(&self, model: &str, selector: Selector) -> Result<FetchedModel, SourceError> {
        let request = GetVersionRequest {
            model: model.to_owned(),
            selector: Some(selector),
            skip_artifact: false,
        };
        let mut client = self.client.clone();
        let download = async move {
            let mut stream = client
                .get_version(request)
                .await
                .map_err(from_status)?
                .into_inner();
            let metadata = match stream.message().await.map_err(from_status)? {
                Some(response) => match response.part {
                    Some(Part::Metadata(metadata)) => metadata,
                    _ => {
                        return Err(SourceError::Invalid(
                            "GetVersion did not start with metadata".into(),
                        ));
                    }
                },
                None => return Err(SourceError::Invalid("GetVersion sent nothing".into())),
            };
            if metadata.artifact_size > MAX_ARTIFACT_BYTES {
                return Err(SourceError::Invalid(format!(
                    "artifact of {} bytes is larger than the {MAX_ARTIFACT_BYTES} bytes accepted",
                    metadata.artifact_size
                )));
            }
            let mut artifact = BytesMut::with_capacity(metadata.artifact_size as usize);
            while let Some(response) = stream.message().await.map_err(from_status)? {
                match response.part {
                    Some(Part::Chunk(chunk)) => {
                        if (artifact.len() + chunk.len()) as u64 > metadata.artifact_size {
                            return Err(SourceError::Invalid(format!(
                                "artifact stream is longer than the {} bytes announced",
                                metadata.artifact_size
                            )));
                        }
                        artifact.extend_from_slice(&chunk);
                    }
                    _ => {
                        return Err(SourceError::Invalid(
                            "GetVersion sent metadata twice".into(),
                        ));
                    }
                }
            }
            check_artifact(&metadata, &artifact)?;
            Ok(FetchedModel {
                model: metadata.model,
                version: metadata.version,
                artifact: artifact.freeze(),
            })
        };
        tokio::time::timeout(DOWNLOAD_TIMEOUT, download)
            .await
            .map_err(|_| SourceError::Unavailable(format!("download of `{model}` timed out")))?
    }
}

fn check_artifact(metadata: &VersionMetadata, artifact: &[u8]) -> Result<(), SourceError> {
    if artifact.len() as u64 != metadata.artifact_size {
        return Err(SourceError::Invalid(format!(
            "artifact of version {} has {} bytes, the registry announced {}",
            metadata.version,
            artifact.len(),
            metadata.artifact_size
        )));
    }
    let actual = mend_core::sha256_hex(artifact);
    if !metadata.artifact_sha256.is_empty() && actual != metadata.artifact_sha256 {
        return Err(SourceError::Invalid(format!(
            "artifact of version {} hashes to {actual}, the registry announced {}",
            metadata.version, metadata.artifact_sha256
        )));
    }
    Ok(())
}

fn from_status(status: Status) -> SourceError {
    match status.code() {
        Code::NotFound => SourceError::NotFound(status.message().to_owned()),
        // Everything else (down, overloaded, a bug) means: keep serving what we have, retry.
        code => {
            SourceError::Unavailable(format!("registry answered {code:?}: {}", status.message()))
        }
    }
}

#[async_trait]
impl ModelSource for RegistryModelSource {
    async fn champion_version(&self, model: &str) -> Result<u64, SourceError> {
        let request = GetVersionRequest {
            model: model.to_owned(),
            selector: Some(Selector::Alias(CHAMPION_ALIAS.to_owned())),
            skip_artifact: true,
        };
        let mut client = self.client.clone();
        let call = async move {
            let mut stream = client
                .get_version(request)
                .await
                .map_err(from_status)?
                .into_inner();
            match stream.message().await.map_err(from_status)? {
                Some(response) => match response.part {
                    Some(Part::Metadata(metadata)) => Ok(metadata.version),
                    _ => Err(SourceError::Invalid(
                        "GetVersion did not start with metadata".into(),
                    )),
                },
                None => Err(SourceError::Invalid("GetVersion sent nothing".into())),
            }
        };
        tokio::time::timeout(METADATA_TIMEOUT, call)
            .await
            .map_err(|_| SourceError::Unavailable("registry did not answer in time".into()))?
    }

    async fn champion(&self, model: &str) -> Result<FetchedModel, SourceError> {
        self.get(model, Selector::Alias(CHAMPION_ALIAS.to_owned()))
            .await
    }

    async fn version(&self, model: &str, version: u64) -> Result<FetchedModel, SourceError> {
        self.get(model, Selector::Version(version)).await
    }

    async fn list_models(&self) -> Result<Vec<String>, SourceError> {
        let mut names = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = ListModelsRequest {
                page_size: PAGE_SIZE,
                page_token: page_token.clone(),
            };
            let mut client = self.client.clone();
            let page = tokio::time::timeout(METADATA_TIMEOUT, client.list_models(request))
                .await
                .map_err(|_| SourceError::Unavailable("registry did not answer in time".into()))?
                .map_err(from_status)?
                .into_inner();
            names.extend(
                page.models
                    .into_iter()
                    .filter(|summary| summary.aliases.contains_key(CHAMPION_ALIAS))
                    .map(|summary| summary.name),
            );
            if page.next_page_token.is_empty() || page.next_page_token == page_token {
                return Ok(names);
            }
            page_token = page.next_page_token;
        }
    }
}
