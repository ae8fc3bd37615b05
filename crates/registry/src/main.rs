//! `mend-registry`: the model registry as its own process.
//!
//! Order: config (a bad one exits non-zero before anything binds) → telemetry → store
//! (JetStream when `MEND_NATS_URL` is set, else SQLite in `MEND_DATA_DIR`) → bind gRPC
//! and HTTP → serve until SIGTERM/SIGINT, within the shutdown grace → flush telemetry.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use mend_bus::{Bus, JetStreamBus};
use mend_registry::{JetStreamConfig, JetStreamStore, RegistryDeps, RegistrySettings, SqliteStore};
use mend_runtime::config::MendConfig;
use mend_runtime::{Metrics, Shutdown};

fn main() -> ExitCode {
    mend_runtime::service::service_main(
        "mend-registry",
        RegistrySettings::from_config,
        |config, _settings| serve(config),
    )
}

async fn serve(config: MendConfig) -> anyhow::Result<()> {
    let deps = open_deps(&config).await?;
    let grpc = config.registry_addr.bind().await.with_context(|| {
        format!(
            "failed to bind the registry address {}",
            config.registry_addr
        )
    })?;
    let http = config
        .http_addr
        .bind()
        .await
        .with_context(|| format!("failed to bind the http address {}", config.http_addr))?;

    let shutdown = Shutdown::new();
    shutdown
        .listen_for_signals()
        .context("failed to install signal handlers")?;
    let router = mend_runtime::http::ops_router(Metrics::new(), shutdown.readiness());
    let work = async {
        let (grpc, http) = tokio::join!(
            mend_registry::run(&config, deps, grpc, shutdown.clone()),
            mend_runtime::http::serve_ops_with_tls(http, router, &config.tls, shutdown.token()),
        );
        grpc.context("registry grpc failed")?;
        http.context("registry http failed")
    };
    shutdown
        .run_with_grace(work, config.shutdown_grace)
        .await
        .context("registry did not stop in time")?
}

/// The store, and the bus champion moves are announced on (only with NATS: a separate
/// process has no in-process bus to share).
async fn open_deps(config: &MendConfig) -> anyhow::Result<RegistryDeps> {
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
