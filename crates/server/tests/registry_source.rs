//! `RegistryModelSource`, the server's way to the registry over gRPC.
//!
//! Against the real registry (`mend_registry::run` on SQLite, on a loopback port): champions,
//! versions and listings as the registry keeps them; a missing model, version or champion is
//! NOT_FOUND; a server on it follows the champion, serves a configured model once the registry
//! has a champion for it, and keeps serving what it holds while the registry is down, then
//! follows it again once it is back.
//!
//! Against a stand-in registry (`FakeRegistry`), for what the real one cannot be made to do:
//! announce a checksum its bytes do not match (the real registry verifies what it serves, so
//! only a stand-in can inject that fault), and page its model list after one model (the real
//! one pages by hundreds).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{Rows, SOON, Setup, start, train, variant};
use futures::Stream;
use mend_proto::inference::ServerReadyRequest;
use mend_proto::registry::v1::get_version_request::Selector;
use mend_proto::registry::v1::get_version_response::Part;
use mend_proto::registry::v1::registry_server::{Registry, RegistryServer};
use mend_proto::registry::v1::*;
use mend_server::{FetchedModel, ModelSource, RegistryModelSource, ServerConfig, SourceError};
use mend_testkit::eventually;
use mend_testkit::registry::TestRegistry;
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

    // Nothing listens here.
    let dead = format!("http://{}", mend_testkit::free_addr());
    let source = RegistryModelSource::connect_lazy(&Endpoint::from_shared(dead).unwrap());
    assert!(matches!(
        source.champion_version("churn").await,
        Err(SourceError::Unavailable(_))
    ));
    let _: Arc<dyn ModelSource> = Arc::new(source);
}

/// The real registry's source, counting the answers that say the registry is down or lacks
/// what was asked for: a test waits for the server to have met those, not for time to pass.
#[derive(Debug)]
struct Observed {
    inner: RegistryModelSource,
    unavailable: AtomicU64,
    not_found: AtomicU64,
}

impl Observed {
    fn new(inner: RegistryModelSource) -> Arc<Observed> {
        Arc::new(Observed {
            inner,
            unavailable: AtomicU64::new(0),
            not_found: AtomicU64::new(0),
        })
    }

    fn unavailable(&self) -> u64 {
        self.unavailable.load(Ordering::SeqCst)
    }

    fn not_found(&self) -> u64 {
        self.not_found.load(Ordering::SeqCst)
    }

    fn note<T>(&self, result: Result<T, SourceError>) -> Result<T, SourceError> {
        match &result {
            Err(SourceError::Unavailable(_)) => {
                self.unavailable.fetch_add(1, Ordering::SeqCst);
            }
            Err(SourceError::NotFound(_)) => {
                self.not_found.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
        result
    }
}

#[async_trait::async_trait]
impl ModelSource for Observed {
    async fn champion_version(&self, model: &str) -> Result<u64, SourceError> {
        self.note(self.inner.champion_version(model).await)
    }

    async fn champion(&self, model: &str) -> Result<FetchedModel, SourceError> {
        self.note(self.inner.champion(model).await)
    }

    async fn version(&self, model: &str, version: u64) -> Result<FetchedModel, SourceError> {
        self.note(self.inner.version(model, version).await)
    }

    async fn list_models(&self) -> Result<Vec<String>, SourceError> {
        self.note(self.inner.list_models().await)
    }
}

fn probe(model: &str) -> mend_proto::inference::ModelInferRequest {
    Rows {
        numeric: vec![vec![0.5]; 3],
        categorical: vec![],
    }
    .matrix(model, false, false)
}

fn quick_reconcile(models: &[&str]) -> ServerConfig {
    ServerConfig {
        reconcile_interval: Duration::from_millis(100),
        sample_rate: 0.0,
        models: models.iter().map(|&model| model.to_owned()).collect(),
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn the_real_registry_serves_champions_versions_and_listings() {
    let registry = TestRegistry::sqlite(None).await;
    let source = RegistryModelSource::connect_lazy(&registry.endpoint());
    let one = train(2, 0, 2, 61).bytes;
    let two = train(2, 1, 2, 62).bytes;

    // Nothing registered: no champion, nothing listed.
    assert!(matches!(
        source.champion_version("churn").await,
        Err(SourceError::NotFound(_))
    ));
    assert_eq!(source.list_models().await.unwrap(), Vec::<String>::new());

    assert_eq!(registry.register("churn", one.clone()).await, 1);
    assert_eq!(registry.register("churn", two.clone()).await, 2);
    // Versions but no champion yet: nothing to serve, nothing listed; versions can be had.
    assert!(matches!(
        source.champion("churn").await,
        Err(SourceError::NotFound(_))
    ));
    assert_eq!(source.list_models().await.unwrap(), Vec::<String>::new());
    assert_eq!(source.version("churn", 1).await.unwrap().artifact, one);

    registry.set_champion("churn", 2).await;
    assert_eq!(source.champion_version("churn").await.unwrap(), 2);
    let champion = source.champion("churn").await.unwrap();
    assert_eq!((champion.model.as_str(), champion.version), ("churn", 2));
    assert_eq!(champion.artifact, two);
    // Missing versions and models are NOT_FOUND, not "unavailable" (which is retried).
    for missing in [
        source.version("churn", 3).await,
        source.champion("other").await,
        source.version("other", 1).await,
    ] {
        assert!(
            matches!(missing, Err(SourceError::NotFound(_))),
            "{missing:?}"
        );
    }
    // A model with a version but no champion is not listed.
    assert_eq!(registry.register("empty", one.clone()).await, 1);
    assert_eq!(
        source.list_models().await.unwrap(),
        vec!["churn".to_owned()]
    );

    // The alias moved back: the next read says so.
    registry.set_champion("churn", 1).await;
    assert_eq!(source.champion_version("churn").await.unwrap(), 1);
    assert_eq!(source.champion("churn").await.unwrap().artifact, one);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_the_real_registry_follows_it_and_keeps_serving_while_it_is_down() {
    let mut registry = TestRegistry::sqlite(None).await;
    let trained = train(3, 0, 2, 63);
    let versions = [
        trained.bytes.clone(),
        variant(&trained.artifact, 1.0),
        variant(&trained.artifact, 2.0),
    ];
    for (k, bytes) in versions.into_iter().enumerate() {
        assert_eq!(registry.register("m", bytes).await, k as u64 + 1);
    }
    registry.set_champion("m", 1).await;
    let source = Observed::new(RegistryModelSource::connect_lazy(&registry.endpoint()));
    let server = start(Setup {
        source: Arc::clone(&source) as Arc<dyn ModelSource>,
        bus: None,
        data_log: None,
        config: quick_reconcile(&[]),
    })
    .await;
    let probe = probe("m");
    server.wait_for_champion(&probe, 1).await;

    // A promotion in the registry is followed (without a bus: by the reconcile loop).
    registry.set_champion("m", 2).await;
    server.wait_for_champion(&probe, 2).await;
    let mut client = server.client().await;
    // A version the registry does not have is NOT_FOUND.
    let mut missing = probe.clone();
    missing.model_version = "9".into();
    let status = client.model_infer(missing).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");

    // The registry stops: nothing listens on its port.
    registry.stop().await.unwrap();
    assert!(matches!(
        RegistryModelSource::connect_lazy(&registry.endpoint())
            .champion_version("m")
            .await,
        Err(SourceError::Unavailable(_))
    ));
    // The server finds it down too: a version it holds no copy of cannot be had now...
    let mut three = probe.clone();
    three.model_version = "3".into();
    let status = client.model_infer(three).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    // ...while the champion it holds answers every request, across three more attempts to
    // reach the registry (reconcile rounds) that found it down.
    let failed = source.unavailable();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let response = client.model_infer(probe.clone()).await.unwrap();
        assert_eq!(response.get_ref().model_version, "2");
        if source.unavailable() >= failed + 3 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server did not ask the registry again within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The registry is back on the same address and moves the champion: followed again.
    registry.resume().await;
    registry.set_champion("m", 3).await;
    server.wait_for_champion(&probe, 3).await;
    server.stop().await;
    registry.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_model_the_real_registry_lacks_is_served_once_it_has_a_champion() {
    let registry = TestRegistry::sqlite(None).await;
    let trained = train(3, 0, 2, 64);
    assert_eq!(registry.register("m", trained.bytes.clone()).await, 1);
    registry.set_champion("m", 1).await;
    let source = Observed::new(RegistryModelSource::connect_lazy(&registry.endpoint()));
    let server = start(Setup {
        source: Arc::clone(&source) as Arc<dyn ModelSource>,
        bus: None,
        data_log: None,
        config: quick_reconcile(&["m", "ghost"]),
    })
    .await;
    server.wait_for_champion(&probe("m"), 1).await;
    // The registry has answered that it has no `ghost`...
    eventually(SOON, "the registry's answer that it has no ghost", || {
        let source = Arc::clone(&source);
        async move { source.not_found() > 0 }
    })
    .await;
    // ...so `ghost` cannot answer yet and the server is not ready, while `m` serves.
    let mut client = server.client().await;
    let status = client.model_infer(probe("ghost")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("no champion loaded yet"),
        "{status:?}"
    );
    let ready = client.server_ready(ServerReadyRequest {}).await.unwrap();
    assert!(
        !ready.get_ref().ready,
        "ready without a champion of `ghost`"
    );
    let served = client.model_infer(probe("m")).await.unwrap();
    assert_eq!(served.get_ref().model_version, "1");

    // Once the registry has a champion for it, it is served, and the server is ready.
    assert_eq!(registry.register("ghost", trained.bytes.clone()).await, 1);
    registry.set_champion("ghost", 1).await;
    server.wait_for_champion(&probe("ghost"), 1).await;
    eventually(SOON, "the server ready", || {
        let mut client = client.clone();
        async move {
            let ready = client.server_ready(ServerReadyRequest {}).await.unwrap();
            ready.get_ref().ready
        }
    })
    .await;
    server.stop().await;
}
