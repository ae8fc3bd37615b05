//! The server's entry point: [`run`] wires the model store, hot swap, prediction log and both
//! bindings onto listeners the caller already bound, until the shutdown token fires;
//! [`MendServer`] is the server as `mend_runtime::host` runs it in its own process
//! (`mend-server`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mend_bus::{Bus, DataLog};
use mend_proto::inference::grpc_inference_service_server::GrpcInferenceServiceServer;
use mend_runtime::config::{ConfigError, vars};
use mend_runtime::grpc::{GrpcSetupError, grpc_client_endpoint, grpc_server_builder};
use mend_runtime::host::{self, Bound, Service};
use mend_runtime::{Health, MendConfig, Metrics, Shutdown};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;

use crate::config::ServerConfig;
use crate::grpc::GrpcInference;
use crate::metrics::ServerMetrics;
use crate::model::ModelStore;
use crate::oversize::OversizeAsInvalidArgument;
use crate::predlog::PredictionLog;
use crate::service::InferenceService;
use crate::source::{ModelSource, RegistryModelSource};
use crate::{rest, swap};

/// How long shutdown waits for queued prediction samples to reach the data log.
const LOG_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// What the server talks to, built by the caller ([`MendServer`] in its own process,
/// `mend up`, a test).
#[derive(Debug, Clone)]
pub struct ServerDeps {
    /// Where champions and versions come from.
    pub source: Arc<dyn ModelSource>,
    /// Promotions and rollbacks arrive here; without a bus the reconcile loop alone follows
    /// the champion.
    pub bus: Option<Arc<dyn Bus>>,
    /// Sampled predictions go here; without one nothing is logged.
    pub data_log: Option<Arc<dyn DataLog>>,
    /// The process's Prometheus registry.
    pub metrics: Metrics,
    /// `grpc.health.v1` state of the gRPC server.
    pub health: Health,
}

/// Listeners bound by the caller (port 0 in tests).
#[derive(Debug)]
pub struct Listeners {
    /// OIP gRPC (`MEND_SERVER_ADDR`).
    pub grpc: TcpListener,
    /// OIP REST and `/metrics`, `/healthz` (`MEND_HTTP_ADDR`); `None` when embedded in a
    /// process that serves HTTP elsewhere.
    pub http: Option<TcpListener>,
}

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("failed to set up the grpc server: {0}")]
    GrpcSetup(#[from] GrpcSetupError),
    #[error("failed to set up grpc reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the grpc server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("the http server failed: {0}")]
    Http(#[source] mend_runtime::http::HttpServeError),
}

/// Serves until `shutdown` is triggered, then drains and returns. Readiness (the `server`
/// gate and `grpc.health.v1` for `inference.GRPCInferenceService`) follows whether the
/// champions are loaded.
pub async fn run(
    config: ServerConfig,
    deps: ServerDeps,
    listeners: Listeners,
    shutdown: Shutdown,
) -> Result<(), ServerError> {
    run_with_routes(config, deps, listeners, axum::Router::new(), shutdown).await
}

/// [`run`], with `routes` served beside OIP REST on the HTTP port under the same TLS rules
/// (data routes): `mend up` adds the monitor's reports, so one port serves everything.
pub async fn run_with_routes(
    config: ServerConfig,
    deps: ServerDeps,
    listeners: Listeners,
    routes: axum::Router,
    shutdown: Shutdown,
) -> Result<(), ServerError> {
    let token = shutdown.token();
    let metrics = ServerMetrics::register(&deps.metrics);
    let store = Arc::new(ModelStore::new(
        Arc::clone(&deps.source),
        metrics.clone(),
        &config.models,
        config.version_cache,
    ));

    let (log, log_writer) = match &deps.data_log {
        Some(data_log) if config.sample_rate > 0.0 => {
            let (log, writer) = PredictionLog::start(
                Arc::clone(data_log),
                config.sample_rate,
                config.log_queue,
                metrics.clone(),
                token.clone(),
            );
            (Some(Arc::new(log)), Some(writer))
        }
        _ => (None, None),
    };
    let service = InferenceService::new(
        Arc::clone(&store),
        metrics,
        log,
        config.max_rows,
        shutdown.readiness(),
    );

    tokio::spawn(follow_readiness(
        Arc::clone(&store),
        shutdown.clone(),
        deps.health.clone(),
    ));
    tokio::spawn(deps.health.clone().not_serving_after(token.clone()));
    let reconcile = tokio::spawn(swap::reconcile_loop(
        Arc::clone(&store),
        config.reconcile_interval,
        token.clone(),
    ));
    let events = deps.bus.clone().map(|bus| {
        let store = Arc::clone(&store);
        let durable = mend_bus::consumer_name(swap::CONSUMER_PREFIX, &config.instance);
        let token = token.clone();
        tokio::spawn(async move {
            mend_bus::follow_forever(
                token.clone(),
                "could not follow model events; retrying (the reconcile loop still runs)",
                || {
                    swap::follow_events(
                        Arc::clone(&bus),
                        Arc::clone(&store),
                        durable.clone(),
                        token.clone(),
                    )
                },
            )
            .await;
        })
    });

    let grpc = serve_grpc(
        &config,
        &deps.health,
        service.clone(),
        listeners.grpc,
        token.clone(),
    );
    let http = async {
        match listeners.http {
            Some(listener) => {
                // REST inference follows the same TLS settings as gRPC (mTLS included).
                mend_runtime::http::serve_http_with_tls(
                    listener,
                    mend_runtime::http::ops_router(deps.metrics.clone(), shutdown.readiness()),
                    rest::router(service.clone(), config.max_message_bytes).merge(routes),
                    &config.tls,
                    token.clone(),
                )
                .await
                .map_err(ServerError::Http)
            }
            None => Ok(()),
        }
    };
    let served = tokio::try_join!(grpc, http);
    if served.is_err() {
        // One binding failed: stop the rest instead of half-serving.
        shutdown.trigger();
    }

    let _ = reconcile.await;
    if let Some(events) = events {
        let _ = events.await;
    }
    drop(service);
    if let Some(writer) = log_writer {
        // A stuck data log must not hold shutdown: what is not flushed by then is dropped.
        let abort = writer.abort_handle();
        if tokio::time::timeout(LOG_FLUSH_TIMEOUT, writer)
            .await
            .is_err()
        {
            abort.abort();
            tracing::warn!("prediction log did not flush in time; dropping the rest");
        }
    }
    tracing::info!("inference server stopped");
    served.map(|_| ())
}

async fn serve_grpc(
    config: &ServerConfig,
    health: &Health,
    service: InferenceService,
    listener: TcpListener,
    token: CancellationToken,
) -> Result<(), ServerError> {
    let addr = listener.local_addr().ok();
    let inference = GrpcInferenceServiceServer::new(GrpcInference::new(service))
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(usize::MAX)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    let inference = OversizeAsInvalidArgument::new(inference, config.max_message_bytes);
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mend_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tracing::info!(addr = ?addr, "oip grpc listening");
    grpc_server_builder(&config.tls)?
        .add_service(health.service())
        .add_service(reflection)
        .add_service(inference)
        .serve_with_incoming_shutdown(incoming, token.cancelled_owned())
        .await?;
    Ok(())
}

/// Opens the readiness gate and reports SERVING exactly while the champions are loaded.
async fn follow_readiness(store: Arc<ModelStore>, shutdown: Shutdown, health: Health) {
    let gate = shutdown.readiness().gate("server");
    let reporter = health
        .reporter_for::<GrpcInferenceServiceServer<GrpcInference>>()
        .await;
    let mut ready = store.watch_ready();
    loop {
        let now = *ready.borrow_and_update();
        if now {
            gate.open();
            reporter.set_serving().await;
        } else {
            gate.close();
            reporter.set_not_serving().await;
        }
        tokio::select! {
            changed = ready.changed() => if changed.is_err() { return },
            () = shutdown.triggered() => return,
        }
    }
}

/// `mend-server`: the inference server in its own process, OIP gRPC on `MEND_SERVER_ADDR` and
/// OIP REST with the ops routes on `MEND_HTTP_ADDR`, its models from the registry at
/// `MEND_REGISTRY_ADDR`. With `MEND_NATS_URL`: promotions and the prediction log on JetStream;
/// without: the registry is polled and predictions go to the SQLite data log in
/// `MEND_DATA_DIR`, as ingest and monitor use it.
#[derive(Debug)]
pub struct MendServer;

impl Service for MendServer {
    const NAME: &'static str = "mend-server";
    const TITLE: &'static str = "the inference server";
    type Config = ServerConfig;
    type Deps = ServerDeps;
    type Listeners = Listeners;
    type Error = ServerError;

    fn config(config: &MendConfig) -> Result<ServerConfig, ConfigError> {
        ServerConfig::from_mend(config)
    }

    async fn bind(config: &MendConfig) -> anyhow::Result<Bound<Listeners>> {
        let grpc = host::bind(&config.server_addr, vars::MEND_SERVER_ADDR).await?;
        let http = host::bind_http(config).await?;
        // The server serves its HTTP port itself: OIP REST beside the ops routes.
        Ok(Bound::serving_http(Listeners {
            grpc,
            http: Some(http),
        }))
    }

    async fn open(config: &MendConfig, metrics: &Metrics) -> anyhow::Result<ServerDeps> {
        let endpoint = grpc_client_endpoint(&config.registry_addr, &config.tls)
            .context("failed to set up the registry client")?;
        let source = Arc::new(RegistryModelSource::connect_lazy(&endpoint));
        let (bus, data_log) = mend_bus::open_configured(config)
            .await
            .context("failed to open the bus and data log (MEND_NATS_URL, MEND_DATA_DIR)")?;
        if bus.is_none() {
            tracing::warn!(
                data_dir = %config.data_dir.display(),
                "MEND_NATS_URL is not set: following the registry by polling only; sampled predictions go to the SQLite data log"
            );
        }
        Ok(ServerDeps {
            source,
            bus,
            data_log: Some(data_log),
            metrics: metrics.clone(),
            health: Health::new(),
        })
    }

    fn run(
        config: ServerConfig,
        deps: ServerDeps,
        listeners: Listeners,
        shutdown: Shutdown,
    ) -> impl Future<Output = Result<(), ServerError>> + Send {
        run(config, deps, listeners, shutdown)
    }
}
