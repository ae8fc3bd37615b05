//! The gRPC service `mend.registry.v1.Registry` over any [`RegistryStore`].
//!
//! - [`RegistryService`] (this file): the handlers, each a few lines over the store.
//! - `upload.rs`: receiving a chunked `RegisterVersion` upload, committed only once complete.
//! - `download.rs`: `GetVersion`'s metadata-then-chunks stream.
//! - `watch.rs`: `WatchAliases`.
//! - [`status`]: the one mapping of [`crate::StoreError`] to `tonic::Status`.
//! - [`auth`]: the bearer token that writes need.
//! - `paging.rs`: page tokens; `trace.rs`: the audit trace id from `traceparent`.
//! - [`events`]: champion moves announced as `model.promoted` / `model.rolled_back`.
//! - `retrain.rs`: `RequestRetrain`, a forced retrain published as `retrain.requested`.

pub mod auth;
mod download;
pub mod events;
mod paging;
mod retrain;
pub mod status;
mod trace;
mod upload;
mod watch;

use std::sync::Arc;

use mend_proto::registry::v1 as pb;
use mend_proto::registry::v1::get_version_request::Selector;
use mend_proto::registry::v1::registry_server::{Registry, RegistryServer};
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status, Streaming};
use tracing::instrument;

pub use auth::WriteAuth;
pub use download::CHUNK_BYTES;
pub use events::ChampionEvents;
pub use status::store_error_status;

use crate::{RegistryStore, StoreError, convert};
use status::convert_error_status;

/// Room for the protobuf framing around one chunk that is as large as a whole artifact.
const FRAME_OVERHEAD: usize = 64 * 1024;

/// The registry's gRPC handlers. Cheap to clone.
#[derive(Clone)]
pub struct RegistryService {
    store: Arc<dyn RegistryStore>,
    auth: WriteAuth,
    events: Option<ChampionEvents>,
    max_artifact_bytes: u64,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for RegistryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryService")
            .field("auth", &self.auth)
            .field("publishes_events", &self.events.is_some())
            .field("max_artifact_bytes", &self.max_artifact_bytes)
            .finish_non_exhaustive()
    }
}

impl RegistryService {
    /// Handlers over `store`. Watches end when `shutdown` is cancelled, so a graceful
    /// stop is not held up by followers that never hang up.
    pub fn new(
        store: Arc<dyn RegistryStore>,
        auth: WriteAuth,
        max_artifact_bytes: u64,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            store,
            auth,
            events: None,
            max_artifact_bytes,
            shutdown,
        }
    }

    /// Announces champion moves through `events`.
    pub fn with_events(mut self, events: ChampionEvents) -> Self {
        self.events = Some(events);
        self
    }

    /// The tonic service: gzip accepted and offered, and messages up to a whole artifact,
    /// so a client may upload in chunks of any size.
    pub fn into_server(self) -> RegistryServer<Self> {
        let max_message = usize::try_from(self.max_artifact_bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(FRAME_OVERHEAD);
        RegistryServer::new(self)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_message)
    }

    /// The version a `GetVersion` selector names.
    async fn select(&self, model: &str, selector: Option<Selector>) -> Result<u64, StoreError> {
        match selector {
            Some(Selector::Version(0)) => Err(StoreError::InvalidArgument {
                field: "version",
                reason: "versions start at 1 (leave it unset for the latest)".to_owned(),
            }),
            Some(Selector::Version(version)) => Ok(version),
            Some(Selector::Alias(alias)) => self.store.resolve_alias(model, &alias).await,
            None => {
                let summary = self.store.model(model).await?;
                if summary.latest_version == 0 {
                    return Err(StoreError::ModelNotFound {
                        model: model.to_owned(),
                    });
                }
                Ok(summary.latest_version)
            }
        }
    }
}

#[tonic::async_trait]
impl Registry for RegistryService {
    #[instrument(skip_all, fields(model))]
    async fn register_version(
        &self,
        request: Request<Streaming<pb::RegisterVersionRequest>>,
    ) -> Result<Response<pb::RegisterVersionResponse>, Status> {
        // The stores log each committed change; the handlers add nothing to that.
        self.auth.check(request.metadata(), "RegisterVersion")?;
        let trace_id = trace::request_trace_id(request.metadata());
        let upload =
            upload::receive(request.into_inner(), self.max_artifact_bytes, trace_id).await?;
        tracing::Span::current().record("model", upload.new.model.as_str());
        let meta = self
            .store
            .register(upload.new, upload.artifact)
            .await
            .map_err(|error| status::prefixed_store_error("header.", error))?;
        Ok(Response::new(pb::RegisterVersionResponse {
            version: Some((&meta).into()),
        }))
    }

    type GetVersionStream = download::VersionStream;

    #[instrument(skip_all, fields(model = %request.get_ref().model))]
    async fn get_version(
        &self,
        request: Request<pb::GetVersionRequest>,
    ) -> Result<Response<Self::GetVersionStream>, Status> {
        let request = request.into_inner();
        let version = self
            .select(&request.model, request.selector)
            .await
            .map_err(store_error_status)?;
        let stream = if request.skip_artifact {
            let meta = self
                .store
                .version(&request.model, version)
                .await
                .map_err(store_error_status)?;
            download::version_stream(&meta, None)
        } else {
            let (meta, artifact) = self
                .store
                .artifact(&request.model, version)
                .await
                .map_err(store_error_status)?;
            download::version_stream(&meta, Some(artifact))
        };
        Ok(Response::new(stream))
    }

    #[instrument(skip_all)]
    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let request = request.into_inner();
        let page = self
            .store
            .list_models(
                paging::name_cursor(&request.page_token),
                paging::limit(request.page_size),
            )
            .await
            .map_err(store_error_status)?;
        Ok(Response::new(pb::ListModelsResponse {
            models: page.items.iter().map(Into::into).collect(),
            next_page_token: paging::next_token(page.next),
        }))
    }

    #[instrument(skip_all, fields(model = %request.get_ref().model))]
    async fn list_versions(
        &self,
        request: Request<pb::ListVersionsRequest>,
    ) -> Result<Response<pb::ListVersionsResponse>, Status> {
        let request = request.into_inner();
        let after = paging::number_cursor(&request.page_token)?;
        let page = self
            .store
            .list_versions(&request.model, after, paging::limit(request.page_size))
            .await
            .map_err(store_error_status)?;
        Ok(Response::new(pb::ListVersionsResponse {
            versions: page.items.iter().map(Into::into).collect(),
            next_page_token: paging::next_token(page.next),
        }))
    }

    #[instrument(skip_all, fields(model = %request.get_ref().model, alias = %request.get_ref().alias))]
    async fn set_alias(
        &self,
        request: Request<pb::SetAliasRequest>,
    ) -> Result<Response<pb::SetAliasResponse>, Status> {
        self.auth.check(request.metadata(), "SetAlias")?;
        let trace_id = trace::request_trace_id(request.metadata());
        let change = convert::set_alias(request.into_inner(), trace_id)
            .map_err(|error| convert_error_status("", &error))?;
        let record = self
            .store
            .set_alias(change)
            .await
            .map_err(store_error_status)?;
        if let Some(events) = &self.events {
            events.after_commit(&record.model).await;
        }
        Ok(Response::new(pb::SetAliasResponse {
            record: Some((&record).into()),
        }))
    }

    #[instrument(skip_all, fields(model = %request.get_ref().model))]
    async fn get_audit(
        &self,
        request: Request<pb::GetAuditRequest>,
    ) -> Result<Response<pb::GetAuditResponse>, Status> {
        let request = request.into_inner();
        let after = paging::number_cursor(&request.page_token)?;
        let page = self
            .store
            .audit(&request.model, after, paging::limit(request.page_size))
            .await
            .map_err(store_error_status)?;
        Ok(Response::new(pb::GetAuditResponse {
            records: page.items.iter().map(Into::into).collect(),
            next_page_token: paging::next_token(page.next),
        }))
    }

    type WatchAliasesStream = watch::AliasMoveStream;

    #[instrument(skip_all, fields(model = %request.get_ref().model))]
    async fn watch_aliases(
        &self,
        request: Request<pb::WatchAliasesRequest>,
    ) -> Result<Response<Self::WatchAliasesStream>, Status> {
        let request = request.into_inner();
        let stream = watch::watch(
            Arc::clone(&self.store),
            request.model,
            request.include_current,
            self.shutdown.clone(),
        )
        .await?;
        Ok(Response::new(stream))
    }

    #[instrument(skip_all, fields(model = %request.get_ref().model))]
    async fn request_retrain(
        &self,
        request: Request<pb::RequestRetrainRequest>,
    ) -> Result<Response<pb::RequestRetrainResponse>, Status> {
        self.auth.check(request.metadata(), "RequestRetrain")?;
        let bus = self.events.as_ref().map(ChampionEvents::bus);
        let response =
            retrain::request_retrain(self.store.as_ref(), bus, request.into_inner()).await?;
        Ok(Response::new(response))
    }

    #[instrument(skip_all, fields(model = %request.get_ref().model))]
    async fn record_decision(
        &self,
        request: Request<pb::RecordDecisionRequest>,
    ) -> Result<Response<pb::RecordDecisionResponse>, Status> {
        self.auth.check(request.metadata(), "RecordDecision")?;
        let trace_id = trace::request_trace_id(request.metadata());
        let record = self
            .store
            .record_decision(convert::decision(request.into_inner(), trace_id))
            .await
            .map_err(store_error_status)?;
        Ok(Response::new(pb::RecordDecisionResponse {
            record: Some((&record).into()),
        }))
    }
}
