//! `mend-monitor`: the monitor service as its own process.
//!
//! Order: config (a bad value exits non-zero before anything binds) → telemetry → bind →
//! serve until SIGTERM/SIGINT, within the shutdown grace → flush telemetry.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use mend_bus::{Bus, DataLog, JetStreamBus, JetStreamDataLog, SqliteDataLog};
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
    let endpoint = mend_runtime::grpc::grpc_client_endpoint(&config.registry_addr, &config.tls)
        .context("failed to set up the registry client")?;
    let token = config
        .registry_token
        .as_ref()
        .map(|secret| secret.expose().to_owned());
    let registry = RegistryClient::connect_lazy(&endpoint, token);
    let (bus, data_log): (Option<Arc<dyn Bus>>, Arc<dyn DataLog>) = match &config.nats {
        Some(nats) => {
            let jetstream = JetStreamBus::connect_configured(nats)
                .await
                .context("failed to connect to NATS (MEND_NATS_URL)")?;
            (
                Some(Arc::new(jetstream.clone())),
                Arc::new(JetStreamDataLog::new(jetstream)),
            )
        }
        None => {
            tracing::warn!(
                data_dir = %config.data_dir.display(),
                "MEND_NATS_URL is not set: reading the SQLite data log; no bus, so drift is reported but not published"
            );
            let data_log = SqliteDataLog::open(&config.data_dir)
                .context("failed to open the data log in MEND_DATA_DIR")?;
            (None, Arc::new(data_log))
        }
    };

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
