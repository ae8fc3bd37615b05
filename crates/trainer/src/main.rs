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
use mend_runtime::config::{Env, MendConfig};
use mend_runtime::{Metrics, Shutdown, telemetry};
use mend_trainer::{TrainerConfig, TrainerDeps};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match MendConfig::load(Env::from_process())
        .and_then(|config| TrainerConfig::from_mend(&config).map(|_| config))
    {
        Ok(config) => config,
        Err(error) => {
            eprintln!("mend-trainer: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    if config.nats.is_none() {
        eprintln!(
            "mend-trainer: MEND_NATS_URL must be set: as its own process the trainer hears triggers over NATS JetStream (use `mend up` for the embedded bus)"
        );
        return ExitCode::from(2);
    }
    let telemetry = match telemetry::init(&config, "mend-trainer") {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("mend-trainer: failed to set up telemetry: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = serve(config).await;
    if let Err(error) = telemetry.shutdown().await {
        eprintln!("mend-trainer: {error}");
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "mend-trainer failed");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: MendConfig) -> anyhow::Result<()> {
    let nats = config.nats.as_ref().context("MEND_NATS_URL is not set")?;
    let bus = JetStreamBus::connect_configured(nats)
        .await
        .context("failed to connect to NATS (MEND_NATS_URL)")?;
    let endpoint = mend_runtime::grpc::grpc_client_endpoint(&config.registry_addr, &config.tls)
        .context("failed to set up the registry client (MEND_REGISTRY_ADDR)")?;
    let token = config
        .registry_token
        .as_ref()
        .map(|token| token.expose().to_owned());
    let metrics = Metrics::new();
    let deps = TrainerDeps {
        bus: Arc::new(bus.clone()),
        data_log: Arc::new(JetStreamDataLog::new(bus)),
        registry: RegistryClient::connect_lazy(&endpoint, token),
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
            mend_runtime::http::serve_http(http, router, shutdown.token()),
        );
        trainer.context("trainer failed")?;
        http.context("trainer http failed")
    };
    shutdown
        .run_with_grace(work, config.shutdown_grace)
        .await
        .context("trainer did not stop in time")?
}
