//! `RegistryModelSource` against a stand-in registry speaking `mend.registry.v1` over real
//! gRPC: champion and versions stream in chunks and are checked; lists are paged; a missing
//! version is NOT_FOUND; a corrupted artifact and a registry that is down are reported as such.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use mend_proto::registry::v1::get_version_request::Selector;
use mend_proto::registry::v1::get_version_response::Part;
use mend_proto::registry::v1::registry_server::{Registry, RegistryServer};
use mend_proto::registry::v1::*;
use mend_server::{ModelSource, RegistryModelSource, SourceError};
use tokio::net::TcpListener;
use tonic::transport::{Endpoint, Server};
use tonic::{Request, Response, Status, Streaming};

type Stream2<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Versions 1 and 2 of `churn` (champion 2), and `empty` without a champion. Version 2's
/// announced checksum can be corrupted.
struct FakeRegistry {
    artifacts: HashMap<u64, Bytes>,
    corrupt: bool,
}

#[tonic::async_trait]
impl Registry for FakeRegistry {
    async fn register_version(
        &self,
        _: Request<Streaming<RegisterVersionRequest>>,
    ) -> Result<Response<RegisterVersionResponse>, Status> {
        Err(Status::unimplemented("read only"))
    }

    type GetVersionStream = Stream2<GetVersionResponse>;

    async fn get_version(
        &self,
        request: Request<GetVersionRequest>,
    ) -> Result<Response<Self::GetVersionStream>, Status> {
        let request = request.into_inner();
        if request.model != "churn" {
            return Err(Status::not_found(format!("no model {}", request.model)));
        }
        let version = match request.selector {
            Some(Selector::Version(v)) => v,
            Some(Selector::Alias(alias)) if alias == "champion" => 2,
            _ => return Err(Status::not_found("no such alias")),
        };
        let artifact = self
            .artifacts
            .get(&version)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no version {version}")))?;
        let mut sha = mend_core::sha256_hex(&artifact);
        if self.corrupt && version == 2 {
            sha = "0".repeat(64);
        }
        let metadata = VersionMetadata {
            model: "churn".into(),
            version,
            artifact_sha256: sha,
            artifact_size: artifact.len() as u64,
            ..Default::default()
        };
        let mut parts = vec![Ok(GetVersionResponse {
            part: Some(Part::Metadata(metadata)),
        })];
        if !request.skip_artifact {
            for chunk in artifact.chunks(1000) {
                parts.push(Ok(GetVersionResponse {
                    part: Some(Part::Chunk(Bytes::copy_from_slice(chunk))),
                }));
            }
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(parts))))
    }

    async fn list_models(
        &self,
        request: Request<ListModelsRequest>,
    ) -> Result<Response<ListModelsResponse>, Status> {
        // Two pages: `churn` (with a champion), then `empty` (without).
        let request = request.into_inner();
        let (summary, next) = if request.page_token.is_empty() {
            (
                ModelSummary {
                    name: "churn".into(),
                    latest_version: 2,
                    aliases: HashMap::from([("champion".to_owned(), 2)]),
                },
                "page2".to_owned(),
            )
        } else {
            (
                ModelSummary {
                    name: "empty".into(),
                    latest_version: 0,
                    aliases: HashMap::new(),
                },
                String::new(),
            )
        };
        Ok(Response::new(ListModelsResponse {
            models: vec![summary],
            next_page_token: next,
        }))
    }

    async fn list_versions(
        &self,
        _: Request<ListVersionsRequest>,
    ) -> Result<Response<ListVersionsResponse>, Status> {
        Err(Status::unimplemented("not needed"))
    }

    async fn set_alias(
        &self,
        _: Request<SetAliasRequest>,
    ) -> Result<Response<SetAliasResponse>, Status> {
        Err(Status::unimplemented("read only"))
    }

    async fn get_audit(
        &self,
        _: Request<GetAuditRequest>,
    ) -> Result<Response<GetAuditResponse>, Status> {
        Err(Status::unimplemented("not needed"))
    }

    type WatchAliasesStream = Stream2<AliasMove>;

    async fn watch_aliases(
        &self,
        _: Request<WatchAliasesRequest>,
    ) -> Result<Response<Self::WatchAliasesStream>, Status> {
        Err(Status::unimplemented("not needed"))
    }

    async fn request_retrain(
        &self,
        _: Request<RequestRetrainRequest>,
    ) -> Result<Response<RequestRetrainResponse>, Status> {
        Err(Status::unimplemented("not needed"))
    }

    async fn record_decision(
        &self,
        _: Request<RecordDecisionRequest>,
    ) -> Result<Response<RecordDecisionResponse>, Status> {
        Err(Status::unimplemented("not needed"))
    }
}

async fn serve(corrupt: bool) -> (String, Bytes, Bytes) {
    let one = common::train(2, 0, 2, 61).bytes;
    let two = common::train(2, 1, 2, 62).bytes;
    let registry = FakeRegistry {
        artifacts: HashMap::from([(1, one.clone()), (2, two.clone())]),
        corrupt,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .add_service(RegistryServer::new(registry))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (format!("http://{addr}"), one, two)
}

#[tokio::test]
async fn fetches_champions_and_versions_and_lists_served_models() {
    let (url, one, two) = serve(false).await;
    let source = RegistryModelSource::connect_lazy(&Endpoint::from_shared(url).unwrap());
    assert_eq!(source.champion_version("churn").await.unwrap(), 2);
    let champion = source.champion("churn").await.unwrap();
    assert_eq!((champion.model.as_str(), champion.version), ("churn", 2));
    assert_eq!(champion.artifact, two);
    assert_eq!(source.version("churn", 1).await.unwrap().artifact, one);
    assert!(matches!(
        source.version("churn", 3).await,
        Err(SourceError::NotFound(_))
    ));
    assert!(matches!(
        source.champion("other").await,
        Err(SourceError::NotFound(_))
    ));
    assert_eq!(
        source.list_models().await.unwrap(),
        vec!["churn".to_owned()]
    );
}

#[tokio::test]
async fn a_corrupted_artifact_is_refused_and_a_dead_registry_is_unavailable() {
    let (url, _, _) = serve(true).await;
    let source = RegistryModelSource::connect_lazy(&Endpoint::from_shared(url).unwrap());
    let error = source.champion("churn").await.unwrap_err();
    assert!(
        matches!(error, SourceError::Invalid(ref m) if m.contains("hashes to")),
        "{error:?}"
    );
    assert!(source.version("churn", 1).await.is_ok());

    // Nothing listens here any more.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let source = RegistryModelSource::connect_lazy(&Endpoint::from_shared(dead).unwrap());
    assert!(matches!(
        source.champion_version("churn").await,
        Err(SourceError::Unavailable(_))
    ));
    let _: Arc<dyn ModelSource> = Arc::new(source);
}
