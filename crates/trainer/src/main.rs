//! `mend-trainer`: the trainer as its own process.
//!
//! Order: config (a bad value exits non-zero before anything binds) → telemetry → NATS (a
//! separate process has no in-process bus to share, so `MEND_NATS_URL` is required) → bind
//! the ops HTTP port → serve until SIGTERM/SIGINT, within the shutdown grace → flush
//! telemetry.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use mend_bus::{JetStreamBus, JetStreamDataLog};
use mend_client::RegistryClient;
use mend_runtime::config::MendConfig;
use mend_runtime::{Metrics, Shutdown};
use mend_trainer::{TrainerConfig, TrainerDeps};

fn main() -> ExitCode {
    mend_runtime::service::service_main("mend-trainer", trainer_settings, |config, _| serve(config))
}

/// The trainer's own settings, checked before anything starts; as its own process it needs
/// NATS (there is no in-process bus to share).
fn trainer_settings(config: &MendConfig) -> Result<TrainerConfig, String> {
    let settings = TrainerConfig::from_mend(config).map_err(|error| error.to_string())?;
    if config.nats.is_none() {
        return Err(
            "MEND_NATS_URL must be set: as its own process the trainer hears triggers over NATS JetStream (use `mend up` for the embedded bus)".to_owned(),
        );
    }
    Ok(settings)
}

async fn serve(config: MendConfig) -> anyhow::Result<()> {
    let nats = config.nats.as_ref().context("MEND_NATS_URL is not set")?;
    let bus = JetStreamBus::connect_configured(nats)
        .await
        .context("failed to connect to NATS (MEND_NATS_URL)")?;
    let metrics = Metrics::new();
    let deps = TrainerDeps {
        bus: Arc::new(bus.clone()),
        data_log: Arc::new(JetStreamDataLog::new(bus)),
        registry: RegistryClient::from_config(&config)?,
        metrics: metrics.clone(),
    };
    let http = config
        .http_addr
        .bind()
        .await
        .with_context(|| format!("failed to bind MEND_HTTP_ADDR {}", config.http_addr))?;

    let shutdown = Shutdown::new();
    shutdown
        .listen_for_signals()
        .context("failed to install signal handlers")?;
    let router = mend_runtime::http::ops_router(metrics, shutdown.readiness());
    let work = async {
        let (trainer, http) = tokio::join!(
            mend_trainer::run(&config, deps, shutdown.clone()),
            mend_runtime::http::serve_ops_with_tls(http, router, &config.tls, shutdown.token()),
        );
        trainer.context("trainer failed")?;
        http.context("trainer http failed")
    };
    shutdown
        .run_with_grace(work, config.shutdown_grace)
        .await
        .context("trainer did not stop in time")?
}
