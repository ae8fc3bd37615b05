//! [`run`]: the registry's gRPC server on a listener its caller bound, with
//! `grpc.health.v1` and reflection, until shutdown; [`MendRegistry`], the registry as
//! `mend_runtime::host` runs it in its own process (`mend-registry`).

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use mend_bus::{Bus, JetStreamBus};
use mend_proto::registry::v1::registry_server::RegistryServer;
use mend_runtime::config::{ConfigError, MendConfig, vars};
use mend_runtime::grpc::{GrpcSetupError, grpc_server_builder};
use mend_runtime::host::{self, Bound, Service};
use mend_runtime::{Health, Metrics, Shutdown};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::config::RegistryConfig;
use crate::service::{ChampionEvents, RegistryService, WriteAuth};
use crate::{JetStreamConfig, JetStreamStore, RegistryStore, SqliteStore};

/// What the registry runs on.
#[derive(Clone)]
pub struct RegistryDeps {
    /// Where versions, aliases and the audit log live.
    pub store: Arc<dyn RegistryStore>,
    /// Where champion moves are announced; `None`: not announced (tests, tools).
    pub bus: Option<Arc<dyn Bus>>,
}

impl std::fmt::Debug for RegistryDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryDeps")
            .field("bus", &self.bus)
            .finish_non_exhaustive()
    }
}

/// Why the registry could not run.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    GrpcSetup(#[from] GrpcSetupError),
    #[error("failed to build grpc reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("registry grpc server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error("registry listener has no address: {0}")]
    Listener(#[from] std::io::Error),
}

/// Serves `mend.registry.v1.Registry`, health and reflection on `listener` until `shutdown`
/// is triggered, then lets in-flight calls finish (watches end at once) and returns.
pub async fn run(
    config: RegistryConfig,
    deps: RegistryDeps,
    listener: TcpListener,
    shutdown: Shutdown,
) -> Result<(), RegistryError> {
    let token = shutdown.token();
    let mut service = RegistryService::new(
        Arc::clone(&deps.store),
        WriteAuth::new(config.token.as_ref()),
        config.max_artifact_bytes,
        token.clone(),
    );
    if let Some(bus) = deps.bus {
        let events = ChampionEvents::new(bus, Arc::clone(&deps.store));
        // The outbox: announces what a crash or a bus outage left unannounced, then retries.
        tokio::spawn(events.clone().run(token.clone()));
        service = service.with_events(events);
    }

    let health = Health::new();
    let reporter = health
        .reporter_for::<RegistryServer<RegistryService>>()
        .await;
    tokio::spawn(health.clone().not_serving_after(token.clone()));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mend_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let ready = shutdown.readiness().gate("registry");

    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        token_required = config.token.is_some(),
        max_artifact_bytes = config.max_artifact_bytes,
        ?service,
        "registry grpc listening"
    );
    let server = grpc_server_builder(&config.tls)?
        .add_service(health.service())
        .add_service(reflection)
        .add_service(service.into_server())
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), token.cancelled_owned());
    // The listener is already bound, so callers queue until the server polls it.
    reporter.set_serving().await;
    ready.open();
    server.await?;
    tracing::info!("registry grpc stopped");
    Ok(())
}

/// `mend-registry`: the registry in its own process, gRPC on `MEND_REGISTRY_ADDR` and the
/// host's ops routes on `MEND_HTTP_ADDR`. Its store is JetStream's KV and Object Store when
/// `MEND_NATS_URL` is set, and champion moves are announced there; without NATS it is SQLite in
/// `MEND_DATA_DIR` and moves are not announced (a separate process has no in-process bus to
/// share).
#[derive(Debug)]
pub struct MendRegistry;

impl Service for MendRegistry {
    const NAME: &'static str = "mend-registry";
    const TITLE: &'static str = "the registry";
    type Config = RegistryConfig;
    type Deps = RegistryDeps;
    type Listeners = TcpListener;
    type Error = RegistryError;

    fn config(config: &MendConfig) -> Result<RegistryConfig, ConfigError> {
        RegistryConfig::from_mend(config)
    }

    async fn bind(config: &MendConfig) -> anyhow::Result<Bound<TcpListener>> {
        let grpc = host::bind(&config.registry_addr, vars::MEND_REGISTRY_ADDR).await?;
        Ok(Bound::with_ops(grpc, host::bind_http(config).await?))
    }

    async fn open(config: &MendConfig, _metrics: &Metrics) -> anyhow::Result<RegistryDeps> {
        let Some(nats) = &config.nats else {
            let store = SqliteStore::open_in_dir(&config.data_dir)
                .await
                .with_context(|| {
                    format!(
                        "failed to open the registry in {}",
                        config.data_dir.display()
                    )
                })?;
            tracing::warn!("MEND_NATS_URL is not set: champion moves are not published as events");
            return Ok(RegistryDeps {
                store: Arc::new(store),
                bus: None,
            });
        };
        let bus = JetStreamBus::connect_configured(nats)
            .await
            .context("failed to connect to NATS (MEND_NATS_URL) and set up the event streams")?;
        let store = JetStreamStore::open(
            bus.jetstream(),
            JetStreamConfig {
                replicas: nats.replicas,
                ..JetStreamConfig::default()
            },
        )
        .await
        .context("failed to open the registry buckets")?;
        Ok(RegistryDeps {
            store: Arc::new(store),
            bus: Some(Arc::new(bus) as Arc<dyn Bus>),
        })
    }

    fn run(
        config: RegistryConfig,
        deps: RegistryDeps,
        listener: TcpListener,
        shutdown: Shutdown,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send {
        run(config, deps, listener, shutdown)
    }
}
