//! The registry client.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mend_proto::registry::v1 as pb;
use pb::get_version_request::Selector;
use pb::get_version_response::Part;
use pb::registry_client::RegistryClient as Raw;
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use crate::error::ClientError;

/// The alias that names the serving model.
pub const CHAMPION: &str = "champion";
/// The reason recorded for a model's first version and champion.
const FIRST_MODEL: &str = "first model";
/// Chunk size of uploads.
const CHUNK: usize = 1 << 20;
/// Artifacts larger than this are refused rather than buffered.
const MAX_ARTIFACT_BYTES: u64 = 1 << 30;
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(300);
const PAGE: u32 = 500;

/// A unary call under [`CALL_TIMEOUT`]: a stalled registry is "unavailable", not a hang.
async fn within<T>(
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> Result<T, ClientError> {
    Ok(tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .map_err(|_| ClientError::Unavailable("registry call timed out".into()))??)
}

/// A version's metadata with its verified artifact bytes.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub meta: pb::VersionMetadata,
    pub artifact: Bytes,
}

/// A cheap-to-clone client of `mend.registry.v1.Registry`.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    raw: Raw<Channel>,
    token: Option<String>,
}

impl RegistryClient {
    /// Over an existing channel; `token` authorises writes.
    pub fn new(channel: Channel, token: Option<String>) -> Self {
        RegistryClient {
            raw: Raw::new(channel)
                .max_decoding_message_size(16 * 1024 * 1024)
                .max_encoding_message_size(16 * 1024 * 1024),
            token,
        }
    }

    /// Dials lazily, so a caller can start while the registry is still coming up.
    pub fn connect_lazy(endpoint: &Endpoint, token: Option<String>) -> Self {
        Self::new(endpoint.connect_lazy(), token)
    }

    /// The registry `config` names (`MEND_REGISTRY_ADDR`, TLS from `MEND_TLS_*`), dialled
    /// lazily, with `MEND_REGISTRY_TOKEN` for writes.
    pub fn from_config(config: &mend_runtime::MendConfig) -> Result<Self, ClientError> {
        let endpoint = mend_runtime::grpc::grpc_client_endpoint(&config.registry_addr, &config.tls)
            .map_err(|error| {
                ClientError::InvalidArgument(format!(
                    "cannot set up the registry client for MEND_REGISTRY_ADDR {}: {error}",
                    config.registry_addr
                ))
            })?;
        let token = config
            .registry_token
            .as_ref()
            .map(|token| token.expose().to_owned());
        Ok(Self::connect_lazy(&endpoint, token))
    }

    fn request<T>(&self, message: T, write: bool) -> Result<Request<T>, ClientError> {
        let mut request = Request::new(message);
        mend_runtime::telemetry::propagation::inject_current_context(request.metadata_mut());
        if write && let Some(token) = &self.token {
            let value: MetadataValue<_> = format!("Bearer {token}").parse().map_err(|_| {
                ClientError::InvalidArgument("the registry token is not valid in a header".into())
            })?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }

    /// Metadata and artifact of a version, or of the version an alias points to.
    pub async fn fetch(&self, model: &str, selector: Selector) -> Result<Fetched, ClientError> {
        let request = self.request(
            pb::GetVersionRequest {
                model: model.to_owned(),
                selector: Some(selector),
                skip_artifact: false,
            },
            false,
        )?;
        let mut raw = self.raw.clone();
        let download = async move {
            let mut stream = raw.get_version(request).await?.into_inner();
            let meta = match stream.message().await?.and_then(|r| r.part) {
                Some(Part::Metadata(meta)) => meta,
                _ => {
                    return Err(ClientError::InvalidResponse(
                        "GetVersion did not start with metadata".into(),
                    ));
                }
            };
            if meta.artifact_size > MAX_ARTIFACT_BYTES {
                return Err(ClientError::InvalidResponse(format!(
                    "artifact of {} bytes is over the {MAX_ARTIFACT_BYTES} accepted",
                    meta.artifact_size
                )));
            }
            let mut artifact = BytesMut::with_capacity(meta.artifact_size as usize);
            while let Some(response) = stream.message().await? {
                match response.part {
                    Some(Part::Chunk(chunk))
                        if (artifact.len() + chunk.len()) as u64 <= meta.artifact_size =>
                    {
                        artifact.extend_from_slice(&chunk)
                    }
                    Some(Part::Chunk(_)) => {
                        return Err(ClientError::InvalidResponse(
                            "artifact stream is longer than announced".into(),
                        ));
                    }
                    _ => {
                        return Err(ClientError::InvalidResponse(
                            "GetVersion sent metadata twice".into(),
                        ));
                    }
                }
            }
            let artifact = artifact.freeze();
            if artifact.len() as u64 != meta.artifact_size {
                return Err(ClientError::InvalidResponse(format!(
                    "artifact has {} bytes, {} were announced",
                    artifact.len(),
                    meta.artifact_size
                )));
            }
            let actual = mend_core::sha256_hex(&artifact);
            if actual != meta.artifact_sha256 {
                return Err(ClientError::InvalidResponse(format!(
                    "artifact hashes to {actual}, the registry announced {}",
                    meta.artifact_sha256
                )));
            }
            Ok(Fetched { meta, artifact })
        };
        tokio::time::timeout(TRANSFER_TIMEOUT, download)
            .await
            .map_err(|_| ClientError::Unavailable(format!("download of `{model}` timed out")))?
    }

    /// The champion of a model, with its artifact.
    pub async fn champion(&self, model: &str) -> Result<Fetched, ClientError> {
        self.fetch(model, Selector::Alias(CHAMPION.to_owned()))
            .await
    }

    /// Metadata only.
    pub async fn metadata(
        &self,
        model: &str,
        selector: Selector,
    ) -> Result<pb::VersionMetadata, ClientError> {
        self.version_metadata(model, Some(selector)).await
    }

    /// Metadata of the version `selector` names, or of the newest version (`None`).
    pub async fn version_metadata(
        &self,
        model: &str,
        selector: Option<Selector>,
    ) -> Result<pb::VersionMetadata, ClientError> {
        let request = self.request(
            pb::GetVersionRequest {
                model: model.to_owned(),
                selector,
                skip_artifact: true,
            },
            false,
        )?;
        let mut raw = self.raw.clone();
        let call = async move {
            let mut stream = raw.get_version(request).await?.into_inner();
            match stream.message().await?.and_then(|r| r.part) {
                Some(Part::Metadata(meta)) => Ok(meta),
                _ => Err(ClientError::InvalidResponse(
                    "GetVersion did not start with metadata".into(),
                )),
            }
        };
        tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| ClientError::Unavailable("registry call timed out".into()))?
    }

    /// Registers a version: the header, then the artifact in chunks. The header's sha256 and
    /// size are filled in from the bytes when left empty.
    pub async fn register(
        &self,
        mut header: pb::RegisterVersionHeader,
        artifact: Bytes,
    ) -> Result<pb::VersionMetadata, ClientError> {
        if header.artifact_sha256.is_empty() {
            header.artifact_sha256 = mend_core::sha256_hex(&artifact);
        }
        if header.artifact_size == 0 {
            header.artifact_size = artifact.len() as u64;
        }
        let mut parts = Vec::with_capacity(1 + artifact.len().div_ceil(CHUNK));
        parts.push(pb::RegisterVersionRequest {
            part: Some(pb::register_version_request::Part::Header(header)),
        });
        let mut offset = 0;
        while offset < artifact.len() {
            let end = (offset + CHUNK).min(artifact.len());
            parts.push(pb::RegisterVersionRequest {
                part: Some(pb::register_version_request::Part::Chunk(
                    artifact.slice(offset..end),
                )),
            });
            offset = end;
        }
        let request = self.request(tokio_stream::iter(parts), true)?;
        let mut raw = self.raw.clone();
        let response = tokio::time::timeout(TRANSFER_TIMEOUT, raw.register_version(request))
            .await
            .map_err(|_| ClientError::Unavailable("upload timed out".into()))??;
        response.into_inner().version.ok_or_else(|| {
            ClientError::InvalidResponse("RegisterVersion returned no version".into())
        })
    }

    /// Registers `artifact` as a model's first version (trigger `initial`, reason "first
    /// model") and makes it the champion, only if the model has no champion yet: how a model
    /// enters the loop before any drift has retrained it.
    pub async fn seed_champion(
        &self,
        model: &str,
        schema_hash: String,
        artifact: Bytes,
        actor: &str,
        event_id: &str,
    ) -> Result<pb::VersionMetadata, ClientError> {
        let header = pb::RegisterVersionHeader {
            model: model.to_owned(),
            schema_hash,
            trigger: Some(pb::Trigger {
                event_id: event_id.to_owned(),
                kind: pb::TriggerKind::Initial as i32,
            }),
            actor: actor.to_owned(),
            reason: FIRST_MODEL.to_owned(),
            ..pb::RegisterVersionHeader::default()
        };
        let meta = self.register(header, artifact).await?;
        self.set_alias(pb::SetAliasRequest {
            model: model.to_owned(),
            alias: CHAMPION.to_owned(),
            version: meta.version,
            expected: Some(pb::AliasPrecondition {
                state: Some(pb::alias_precondition::State::Absent(true)),
            }),
            actor: actor.to_owned(),
            reason: FIRST_MODEL.to_owned(),
            trigger_event_id: event_id.to_owned(),
        })
        .await?;
        Ok(meta)
    }

    /// Moves an alias; with `expected`, only if it still points where the caller believes.
    pub async fn set_alias(
        &self,
        request: pb::SetAliasRequest,
    ) -> Result<pb::AuditRecord, ClientError> {
        let request = self.request(request, true)?;
        let mut raw = self.raw.clone();
        let response = tokio::time::timeout(CALL_TIMEOUT, raw.set_alias(request))
            .await
            .map_err(|_| ClientError::Unavailable("registry call timed out".into()))??;
        response
            .into_inner()
            .record
            .ok_or_else(|| ClientError::InvalidResponse("SetAlias returned no audit record".into()))
    }

    /// Asks for a forced retrain of `model` (a write: needs the token). The registry
    /// publishes `retrain.requested.<model>`; the answer carries the event id, which the
    /// trained candidate's lineage will name.
    pub async fn request_retrain(
        &self,
        request: pb::RequestRetrainRequest,
    ) -> Result<pb::RequestRetrainResponse, ClientError> {
        let request = self.request(request, true)?;
        let response = within(self.raw.clone().request_retrain(request)).await?;
        Ok(response.into_inner())
    }

    /// Puts a decision on a retrain trigger on the model's audit log (a write: needs the
    /// token); the committed record comes back.
    pub async fn record_decision(
        &self,
        request: pb::RecordDecisionRequest,
    ) -> Result<pb::AuditRecord, ClientError> {
        let request = self.request(request, true)?;
        let response = within(self.raw.clone().record_decision(request)).await?;
        response.into_inner().record.ok_or_else(|| {
            ClientError::InvalidResponse("RecordDecision returned no audit record".into())
        })
    }

    /// The whole audit log of a model, oldest first.
    pub async fn audit(&self, model: &str) -> Result<Vec<pb::AuditRecord>, ClientError> {
        self.audit_after(model, 0).await
    }

    /// The audit records of a model after record `after` (0: all), oldest first: for a reader
    /// that follows the log without reading it whole each time. (The registry's page token is
    /// the seq of the last record a page held.)
    pub async fn audit_after(
        &self,
        model: &str,
        after: u64,
    ) -> Result<Vec<pb::AuditRecord>, ClientError> {
        let mut out = Vec::new();
        let mut token = if after == 0 {
            String::new()
        } else {
            after.to_string()
        };
        loop {
            let request = self.request(
                pb::GetAuditRequest {
                    model: model.to_owned(),
                    page_size: PAGE,
                    page_token: token.clone(),
                },
                false,
            )?;
            let page = within(self.raw.clone().get_audit(request))
                .await?
                .into_inner();
            out.extend(page.records);
            // A registry that hands back the same token would loop us forever.
            if page.next_page_token.is_empty() || page.next_page_token == token {
                return Ok(out);
            }
            token = page.next_page_token;
        }
    }

    /// Every model with its latest version and aliases.
    pub async fn list_models(&self) -> Result<Vec<pb::ModelSummary>, ClientError> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let request = self.request(
                pb::ListModelsRequest {
                    page_size: PAGE,
                    page_token: token.clone(),
                },
                false,
            )?;
            let page = within(self.raw.clone().list_models(request))
                .await?
                .into_inner();
            out.extend(page.models);
            // A registry that hands back the same token would loop us forever.
            if page.next_page_token.is_empty() || page.next_page_token == token {
                return Ok(out);
            }
            token = page.next_page_token;
        }
    }

    /// The names of the models whose `champion` alias is set, in name order.
    pub async fn champion_models(&self) -> Result<Vec<String>, ClientError> {
        Ok(self
            .list_models()
            .await?
            .into_iter()
            .filter(|summary| summary.aliases.contains_key(CHAMPION))
            .map(|summary| summary.name)
            .collect())
    }

    /// Every version of a model, oldest first.
    pub async fn list_versions(
        &self,
        model: &str,
    ) -> Result<Vec<pb::VersionMetadata>, ClientError> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let request = self.request(
                pb::ListVersionsRequest {
                    model: model.to_owned(),
                    page_size: PAGE,
                    page_token: token.clone(),
                },
                false,
            )?;
            let page = within(self.raw.clone().list_versions(request))
                .await?
                .into_inner();
            out.extend(page.versions);
            // A registry that hands back the same token would loop us forever.
            if page.next_page_token.is_empty() || page.next_page_token == token {
                return Ok(out);
            }
            token = page.next_page_token;
        }
    }
}
