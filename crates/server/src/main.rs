//! `mend-server`: the inference server as its own process.
//!
//! Order: config (a bad value exits non-zero before anything binds) → telemetry → bind →
//! serve until SIGTERM/SIGINT, within the shutdown grace → flush telemetry.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use mend_bus::{Bus, DataLog, JetStreamBus, JetStreamDataLog};
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
    let mut bus: Option<Arc<dyn Bus>> = None;
    let mut data_log: Option<Arc<dyn DataLog>> = None;
    match &config.nats {
        Some(nats) => {
            let jetstream = JetStreamBus::connect_configured(nats)
                .await
                .context("failed to connect to NATS (MEND_NATS_URL)")?;
            bus = Some(Arc::new(jetstream.clone()));
            data_log = Some(Arc::new(JetStreamDataLog::new(jetstream)));
        }
        None => {
            tracing::warn!(
                "MEND_NATS_URL is not set: following the registry by polling only, and not logging predictions"
            );
        }
    }

    let readiness = Readiness::new();
    let shutdown = Shutdown::with_readiness(readiness);
    shutdown
        .listen_for_signals()
        .context("failed to install signal handlers")?;
    let deps = ServerDeps {
        source,
        bus,
        data_log,
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
