//! `mend-monitor`: the monitor service as its own process.
//!
//! Order: config (a bad value exits non-zero before anything binds) → telemetry → bind →
//! serve until SIGTERM/SIGINT, within the shutdown grace → flush telemetry.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use mend_client::RegistryClient;
use mend_monitor::{MonitorConfig, MonitorDeps, RegistryChampionSource};
use mend_runtime::{MendConfig, Metrics, Readiness, Shutdown};

fn main() -> ExitCode {
    mend_runtime::service::service_main("mend-monitor", MonitorConfig::from_mend, serve)
}

async fn serve(config: MendConfig, monitor_config: MonitorConfig) -> anyhow::Result<()> {
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
            "MEND_NATS_URL is not set: reading the SQLite data log; no bus, so drift is reported but not published"
        );
    }

    let readiness = Readiness::new();
    let shutdown = Shutdown::with_readiness(readiness);
    shutdown
        .listen_for_signals()
        .context("failed to install signal handlers")?;
    let deps = MonitorDeps {
        champions: Arc::new(RegistryChampionSource::new(registry)),
        data_log,
        bus,
        metrics: Metrics::new(),
    };
    let served = shutdown
        .run_with_grace(
            mend_monitor::run(monitor_config, deps, http, shutdown.clone()),
            config.shutdown_grace,
        )
        .await;
    match served {
        Ok(result) => result.context("the monitor service failed"),
        Err(expired) => Err(expired).context("the monitor service did not drain in time"),
    }
}
