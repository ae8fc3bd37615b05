//! [`run`]: the registry's gRPC server on a listener its caller bound, with
//! `grpc.health.v1` and reflection, until shutdown.

use std::sync::Arc;

use mend_bus::Bus;
use mend_proto::registry::v1::registry_server::RegistryServer;
use mend_runtime::config::{ConfigError, MendConfig};
use mend_runtime::grpc::{GrpcSetupError, grpc_server_builder};
use mend_runtime::{Health, Shutdown};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::RegistryStore;
use crate::service::{ChampionEvents, RegistryService, WriteAuth};
use crate::settings::RegistrySettings;

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
pub enum RunError {
    #[error("invalid registry settings: {0}")]
    Config(#[from] ConfigError),
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
    config: &MendConfig,
    deps: RegistryDeps,
    listener: TcpListener,
    shutdown: Shutdown,
) -> Result<(), RunError> {
    let settings = RegistrySettings::from_config(config)?;
    let token = shutdown.token();
    let mut service = RegistryService::new(
        Arc::clone(&deps.store),
        WriteAuth::new(settings.token.as_ref()),
        settings.max_artifact_bytes,
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
        token_required = settings.token.is_some(),
        max_artifact_bytes = settings.max_artifact_bytes,
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
