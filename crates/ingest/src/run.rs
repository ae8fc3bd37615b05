//! The service's entry point: [`run`] wires the schema cache, the ingestor, the gRPC service,
//! the bus door and the promotion follower onto a listener the caller already bound, until
//! the shutdown token fires; [`MendIngest`] is the service as `mend_runtime::host` runs it in
//! its own process (`mend-ingest`).

use std::future::Future;
use std::sync::Arc;

use mend_bus::{Bus, DataLog};
use mend_client::RegistryClient;
use mend_proto::ingest::v1::ingest_server::IngestServer;
use mend_runtime::config::{ConfigError, vars};
use mend_runtime::grpc::{GrpcSetupError, grpc_server_builder};
use mend_runtime::host::{self, Bound, Service};
use mend_runtime::{Health, MendConfig, Metrics, Shutdown};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;

use crate::config::IngestConfig;
use crate::grpc::GrpcIngest;
use crate::ingestor::Ingestor;
use crate::metrics::IngestMetrics;
use crate::schema_source::{RegistrySchemaSource, SchemaCache, SchemaSource};
use crate::{follow, nats};

/// What the service talks to, built by the caller ([`MendIngest`] in its own process,
/// `mend up`, a test).
#[derive(Debug, Clone)]
pub struct IngestDeps {
    /// Where champions' schemas come from (the registry, or memory in tests).
    pub schemas: Arc<dyn SchemaSource>,
    /// Where valid rows and labels go.
    pub data_log: Arc<dyn DataLog>,
    /// Promotions arrive here and JSON batches are consumed from here; without a bus, only
    /// gRPC is served and schemas are re-checked on their time to live alone.
    pub bus: Option<Arc<dyn Bus>>,
    /// The process's Prometheus registry.
    pub metrics: Metrics,
    /// `grpc.health.v1` state of the gRPC server.
    pub health: Health,
}

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum IngestServiceError {
    #[error("failed to set up the grpc server: {0}")]
    GrpcSetup(#[from] GrpcSetupError),
    #[error("failed to set up grpc reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the grpc server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
}

/// Serves `mend.ingest.v1.Ingest` on `listener` (and the bus door, when there is a bus)
/// until `shutdown` is triggered, then drains: the bus consumer finishes the message in hand,
/// the gRPC server finishes open streams.
pub async fn run(
    config: IngestConfig,
    deps: IngestDeps,
    listener: TcpListener,
    shutdown: Shutdown,
) -> Result<(), IngestServiceError> {
    let token = shutdown.token();
    let metrics = IngestMetrics::register(&deps.metrics);
    let schemas = Arc::new(SchemaCache::new(
        Arc::clone(&deps.schemas),
        config.schema_ttl,
    ));
    let ingestor = Ingestor::new(
        Arc::clone(&schemas),
        Arc::clone(&deps.data_log),
        metrics,
        config.max_batch_rows,
        config.limits,
    );

    let mut background = Vec::new();
    if let Some(bus) = &deps.bus {
        background.push(tokio::spawn(follow::follow_champions(
            Arc::clone(bus),
            Arc::clone(&schemas),
            mend_bus::consumer_name(follow::CONSUMER_PREFIX, &config.instance),
            token.clone(),
        )));
        background.push(tokio::spawn(consume_forever(
            ingestor.clone(),
            Arc::clone(bus),
            token.clone(),
        )));
    } else {
        tracing::info!("no bus: serving gRPC only; schemas re-checked on their time to live");
    }

    tokio::spawn(deps.health.clone().not_serving_after(token.clone()));
    let service = GrpcIngest::new(
        ingestor,
        config.max_in_flight_bytes,
        config.max_listed_rejections,
    );
    let served = serve_grpc(&config, &deps.health, service, listener, &shutdown).await;
    if served.is_err() {
        shutdown.trigger();
    }
    for task in background {
        let _ = task.await;
    }
    tracing::info!("ingest service stopped");
    served
}

async fn serve_grpc(
    config: &IngestConfig,
    health: &Health,
    service: GrpcIngest,
    listener: TcpListener,
    shutdown: &Shutdown,
) -> Result<(), IngestServiceError> {
    let addr = listener.local_addr().ok();
    let ingest = IngestServer::new(service)
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(usize::MAX)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mend_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reporter = health.reporter_for::<IngestServer<GrpcIngest>>().await;
    // Ingest can answer as soon as it listens: a batch whose schema cannot be had fails alone.
    reporter.set_serving().await;
    let gate = shutdown.readiness().gate("ingest");
    gate.open();
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tracing::info!(addr = ?addr, "ingest grpc listening");
    let token: CancellationToken = shutdown.token();
    grpc_server_builder(&config.tls)?
        .add_service(health.service())
        .add_service(reflection)
        .add_service(ingest)
        .serve_with_incoming_shutdown(incoming, token.cancelled_owned())
        .await?;
    Ok(())
}

/// Keeps the bus door open: a bus that is down at start (or drops the consumer) is retried.
async fn consume_forever(ingestor: Ingestor, bus: Arc<dyn Bus>, token: CancellationToken) {
    mend_bus::follow_forever(
        token.clone(),
        "could not consume ingest subjects; retrying",
        || nats::consume(ingestor.clone(), Arc::clone(&bus), token.clone()),
    )
    .await;
}

/// `mend-ingest`: the ingest service in its own process, on `MEND_INGEST_ADDR` (gRPC) and
/// `MEND_HTTP_ADDR` (the host's ops routes), with NATS JetStream as bus and data log when
/// `MEND_NATS_URL` is set, else the SQLite data log in `MEND_DATA_DIR` and no bus door.
#[derive(Debug)]
pub struct MendIngest;

impl Service for MendIngest {
    const NAME: &'static str = "mend-ingest";
    const TITLE: &'static str = "the ingest service";
    type Config = IngestConfig;
    type Deps = IngestDeps;
    type Listeners = TcpListener;
    type Error = IngestServiceError;

    fn config(config: &MendConfig) -> Result<IngestConfig, ConfigError> {
        IngestConfig::from_mend(config)
    }

    async fn bind(config: &MendConfig) -> anyhow::Result<Bound<TcpListener>> {
        let grpc = host::bind(&config.ingest_addr, vars::MEND_INGEST_ADDR).await?;
        Ok(Bound::with_ops(grpc, host::bind_http(config).await?))
    }

    async fn open(config: &MendConfig, metrics: &Metrics) -> anyhow::Result<IngestDeps> {
        let registry = RegistryClient::from_config(config)?;
        let (bus, data_log) = mend_bus::open_configured(config).await?;
        if bus.is_none() {
            tracing::warn!(
                data_dir = %config.data_dir.display(),
                "MEND_NATS_URL is not set: appending to the SQLite data log, no bus door, schemas re-checked on their time to live"
            );
        }
        Ok(IngestDeps {
            schemas: Arc::new(RegistrySchemaSource::new(registry)),
            data_log,
            bus,
            metrics: metrics.clone(),
            health: Health::new(),
        })
    }

    fn run(
        config: IngestConfig,
        deps: IngestDeps,
        listener: TcpListener,
        shutdown: Shutdown,
    ) -> impl Future<Output = Result<(), IngestServiceError>> + Send {
        run(config, deps, listener, shutdown)
    }
}
