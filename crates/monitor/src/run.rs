//! The service's entry point: [`run`] starts one loop per watched model (see `watched.rs`), the promotion
//! follower (with a bus) and the HTTP server (ops routes plus reports) on a listener the
//! caller already bound, until the shutdown token fires; [`MendMonitor`] is the service as
//! `mend_runtime::host` runs it in its own process (`mend-monitor`).

use std::future::Future;
use std::sync::Arc;

use mend_bus::{Bus, DataLog};
use mend_client::RegistryClient;
use mend_runtime::config::ConfigError;
use mend_runtime::host::{self, Bound, Service};
use mend_runtime::{MendConfig, Metrics, Shutdown};
use tokio::net::TcpListener;

use crate::champion::{ChampionSource, RegistryChampionSource};
use crate::config::MonitorConfig;
use crate::follow;
use crate::http::reports_router;
use crate::metrics::MonitorMetrics;
use crate::reports::ReportStore;
use crate::state::StateStore;
use crate::watched::{self, WatchedModels};
use crate::worker::WorkerParts;

/// What the service talks to, built by the caller ([`MendMonitor`] in its own process,
/// `mend up`, a test).
#[derive(Debug, Clone)]
pub struct MonitorDeps {
    /// Where champions come from (the registry, or memory in tests).
    pub champions: Arc<dyn ChampionSource>,
    /// Where rows, labels and predictions are read from.
    pub data_log: Arc<dyn DataLog>,
    /// Where drift and alerts are published, and promotions are heard; without one, reports
    /// are still written and served.
    pub bus: Option<Arc<dyn Bus>>,
    /// The process's Prometheus registry.
    pub metrics: Metrics,
}

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum MonitorServiceError {
    #[error("the http server failed: {0}")]
    Http(#[from] mend_runtime::http::HttpServeError),
}

/// Monitors every model of `config` and serves `/metrics`, `/healthz`, `/livez` and
/// `/reports/...` on `http_listener` until `shutdown` is triggered.
pub async fn run(
    config: MonitorConfig,
    deps: MonitorDeps,
    http_listener: TcpListener,
    shutdown: Shutdown,
) -> Result<(), MonitorServiceError> {
    monitor(config, deps, Some(http_listener), shutdown).await
}

/// Monitors every model of `config` without an HTTP server of its own, for a process that
/// serves the reports on its one HTTP port ([`reports_router`] over a [`ReportStore`] of the
/// same data directory), as `mend up` does.
pub async fn run_without_http(
    config: MonitorConfig,
    deps: MonitorDeps,
    shutdown: Shutdown,
) -> Result<(), MonitorServiceError> {
    monitor(config, deps, None, shutdown).await
}

async fn monitor(
    config: MonitorConfig,
    deps: MonitorDeps,
    http_listener: Option<TcpListener>,
    shutdown: Shutdown,
) -> Result<(), MonitorServiceError> {
    let token = shutdown.token();
    let metrics = MonitorMetrics::register(&deps.metrics);
    let states = StateStore::new(&config.data_dir);
    let reports = ReportStore::new(&config.data_dir, config.reports_kept);
    if config.models.is_empty() {
        tracing::info!("watching every model with a champion (MEND_MONITOR_MODELS narrows it)");
    }
    let parts = WorkerParts {
        config: config.clone(),
        champions: Arc::clone(&deps.champions),
        data_log: Arc::clone(&deps.data_log),
        bus: deps.bus.clone(),
        states,
        reports: reports.clone(),
        metrics,
    };
    let models = WatchedModels::new(&config.models, parts, token.clone());
    let mut tasks = vec![tokio::spawn(watched::keep_current(
        Arc::clone(&models),
        config.champion_refresh,
        token.clone(),
    ))];
    if let Some(bus) = &deps.bus {
        tasks.push(tokio::spawn(follow::follow_champions(
            Arc::clone(bus),
            Arc::clone(&models),
            mend_bus::consumer_name(follow::CONSUMER_PREFIX, &config.instance),
            token.clone(),
        )));
    }

    let gate = shutdown.readiness().gate("monitor");
    gate.open();
    let served = match http_listener {
        Some(listener) => {
            mend_runtime::http::serve_http_with_tls(
                listener,
                mend_runtime::http::ops_router(deps.metrics.clone(), shutdown.readiness()),
                reports_router(reports),
                &config.tls,
                token.clone(),
            )
            .await
        }
        None => {
            token.cancelled().await;
            Ok(())
        }
    };
    if served.is_err() {
        shutdown.trigger();
    }
    for task in tasks {
        let _ = task.await;
    }
    models.join().await;
    tracing::info!("monitor service stopped");
    Ok(served?)
}

/// `mend-monitor`: the monitor in its own process, serving its reports and the ops routes on
/// `MEND_HTTP_ADDR`, reading NATS JetStream's data log (and publishing drift) when
/// `MEND_NATS_URL` is set, else the SQLite data log in `MEND_DATA_DIR` with no bus.
#[derive(Debug)]
pub struct MendMonitor;

impl Service for MendMonitor {
    const NAME: &'static str = "mend-monitor";
    const TITLE: &'static str = "the monitor service";
    type Config = MonitorConfig;
    type Deps = MonitorDeps;
    type Listeners = TcpListener;
    type Error = MonitorServiceError;

    fn config(config: &MendConfig) -> Result<MonitorConfig, ConfigError> {
        MonitorConfig::from_mend(config)
    }

    async fn bind(config: &MendConfig) -> anyhow::Result<Bound<TcpListener>> {
        // The monitor serves its HTTP port itself: the reports beside the ops routes.
        Ok(Bound::serving_http(host::bind_http(config).await?))
    }

    async fn open(config: &MendConfig, metrics: &Metrics) -> anyhow::Result<MonitorDeps> {
        let registry = RegistryClient::from_config(config)?;
        let (bus, data_log) = mend_bus::open_configured(config).await?;
        if bus.is_none() {
            tracing::warn!(
                data_dir = %config.data_dir.display(),
                "MEND_NATS_URL is not set: reading the SQLite data log; no bus, so drift is reported but not published"
            );
        }
        Ok(MonitorDeps {
            champions: Arc::new(RegistryChampionSource::new(registry)),
            data_log,
            bus,
            metrics: metrics.clone(),
        })
    }

    fn run(
        config: MonitorConfig,
        deps: MonitorDeps,
        http_listener: TcpListener,
        shutdown: Shutdown,
    ) -> impl Future<Output = Result<(), MonitorServiceError>> + Send {
        run(config, deps, http_listener, shutdown)
    }
}
