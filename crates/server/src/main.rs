//! `mend-server`: the inference server as its own process.
//!
//! Order: config (a bad value exits non-zero before anything binds) → telemetry → bind →
//! serve until SIGTERM/SIGINT, within the shutdown grace → flush telemetry.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use mend_runtime::{Health, MendConfig, Metrics, Readiness, Shutdown};
use mend_server::{Listeners, RegistryModelSource, ServerConfig, ServerDeps};

fn main() -> ExitCode {
    mend_runtime::service::service_main("mend-server", ServerConfig::from_mend, serve)
}

async fn serve(config: MendConfig, server_config: ServerConfig) -> anyhow::Result<()> {
    let grpc = config
        .server_addr
        .bind()
        .await
        .with_context(|| format!("failed to bind MEND_SERVER_ADDR {}", config.server_addr))?;
    let http = config
        .http_addr
        .bind()
        .await
        .with_context(|| format!("failed to bind MEND_HTTP_ADDR {}", config.http_addr))?;

    let endpoint = mend_runtime::grpc::grpc_client_endpoint(&config.registry_addr, &config.tls)
        .context("failed to set up the registry client")?;
    let source = Arc::new(RegistryModelSource::connect_lazy(&endpoint));
    // With NATS: events and the prediction log on JetStream. Without: the registry is polled
    // and predictions go to the SQLite data log in MEND_DATA_DIR, as ingest and monitor use it.
    let (bus, data_log) = mend_bus::open_configured(&config)
        .await
        .context("failed to open the bus and data log (MEND_NATS_URL, MEND_DATA_DIR)")?;
    if bus.is_none() {
        tracing::warn!(
            data_dir = %config.data_dir.display(),
            "MEND_NATS_URL is not set: following the registry by polling only; sampled predictions go to the SQLite data log"
        );
    }

    let readiness = Readiness::new();
    let shutdown = Shutdown::with_readiness(readiness);
    shutdown
        .listen_for_signals()
        .context("failed to install signal handlers")?;
    let deps = ServerDeps {
        source,
        bus,
        data_log: Some(data_log),
        metrics: Metrics::new(),
        health: Health::new(),
    };
    let listeners = Listeners {
        grpc,
        http: Some(http),
    };
    let served = shutdown
        .run_with_grace(
            mend_server::run(server_config, deps, listeners, shutdown.clone()),
            config.shutdown_grace,
        )
        .await;
    match served {
        Ok(result) => result.context("the inference server failed"),
        Err(expired) => Err(expired).context("the inference server did not drain in time"),
    }
}
