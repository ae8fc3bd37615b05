//! `mend-ingest`: the ingest service as its own process.
//!
//! Order: config (a bad value exits non-zero before anything binds) → telemetry → bind →
//! serve until SIGTERM/SIGINT, within the shutdown grace → flush telemetry.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use mend_client::RegistryClient;
use mend_ingest::{IngestConfig, IngestDeps, RegistrySchemaSource};
use mend_runtime::{Health, MendConfig, Metrics, Readiness, Shutdown};

fn main() -> ExitCode {
    mend_runtime::service::service_main("mend-ingest", IngestConfig::from_mend, serve)
}

async fn serve(config: MendConfig, ingest_config: IngestConfig) -> anyhow::Result<()> {
    let grpc = config
        .ingest_addr
        .bind()
        .await
        .with_context(|| format!("failed to bind MEND_INGEST_ADDR {}", config.ingest_addr))?;
    let http = config
        .http_addr
        .bind()
        .await
        .with_context(|| format!("failed to bind MEND_HTTP_ADDR {}", config.http_addr))?;

    let registry = RegistryClient::from_config(&config)?;
    let (bus, data_log) = mend_bus::open_configured(&config).await?;
    if bus.is_none() {
        tracing::warn!(
            data_dir = %config.data_dir.display(),
            "MEND_NATS_URL is not set: appending to the SQLite data log, no bus door, schemas re-checked on their time to live"
        );
    }

    let readiness = Readiness::new();
    let shutdown = Shutdown::with_readiness(readiness.clone());
    shutdown
        .listen_for_signals()
        .context("failed to install signal handlers")?;
    let metrics = Metrics::new();
    let tls = config.tls.clone();
    let ops_router = mend_runtime::http::ops_router(metrics.clone(), readiness);
    let ops_token = shutdown.token();
    let ops = tokio::spawn(async move {
        mend_runtime::http::serve_ops_with_tls(http, ops_router, &tls, ops_token).await
    });
    let deps = IngestDeps {
        schemas: Arc::new(RegistrySchemaSource::new(registry)),
        data_log,
        bus,
        metrics,
        health: Health::new(),
    };
    let served = shutdown
        .run_with_grace(
            mend_ingest::run(ingest_config, deps, grpc, shutdown.clone()),
            config.shutdown_grace,
        )
        .await;
    if let Ok(Err(error)) = ops.await {
        tracing::warn!(%error, "the ops http server failed");
    }
    match served {
        Ok(result) => result.context("the ingest service failed"),
        Err(expired) => Err(expired).context("the ingest service did not drain in time"),
    }
}
