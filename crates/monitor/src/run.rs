//! The service's entry point: [`run`] starts one loop per configured model, the promotion
//! follower (with a bus) and the HTTP server (ops routes plus reports) on a listener the
//! caller already bound, until the shutdown token fires.

use std::collections::HashMap;
use std::sync::Arc;

use mend_bus::{Bus, DataLog};
use mend_runtime::{Metrics, Shutdown};
use tokio::net::TcpListener;

use crate::champion::ChampionSource;
use crate::config::MonitorConfig;
use crate::follow;
use crate::http::reports_router;
use crate::metrics::MonitorMetrics;
use crate::reports::ReportStore;
use crate::state::StateStore;
use crate::worker::Worker;

/// What the service talks to, built by the caller (`main`, `mend up`, a test).
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
    Http(#[from] std::io::Error),
}

/// Monitors every model of `config` and serves `/metrics`, `/healthz`, `/livez` and
/// `/reports/...` on `http_listener` until `shutdown` is triggered.
pub async fn run(
    config: MonitorConfig,
    deps: MonitorDeps,
    http_listener: TcpListener,
    shutdown: Shutdown,
) -> Result<(), MonitorServiceError> {
    let token = shutdown.token();
    let metrics = MonitorMetrics::register(&deps.metrics);
    let states = StateStore::new(&config.data_dir);
    let reports = ReportStore::new(&config.data_dir, config.reports_kept);
    if config.models.is_empty() {
        tracing::warn!("no models to monitor (set MEND_MONITOR_MODELS); serving reports only");
    }

    let mut wake = HashMap::new();
    let mut tasks = Vec::new();
    for model in &config.models {
        let signals = Arc::new(follow::Signals::default());
        wake.insert(model.as_str().to_owned(), Arc::clone(&signals));
        let worker = Worker {
            model: model.clone(),
            config: config.clone(),
            champions: Arc::clone(&deps.champions),
            data_log: Arc::clone(&deps.data_log),
            bus: deps.bus.clone(),
            states: states.clone(),
            reports: reports.clone(),
            metrics: metrics.clone(),
            signals,
        };
        tasks.push(tokio::spawn(worker.run(token.clone())));
    }
    if let Some(bus) = &deps.bus {
        tasks.push(tokio::spawn(follow::follow_champions(
            Arc::clone(bus),
            Arc::new(wake),
            follow::consumer_name(&config.instance),
            token.clone(),
        )));
    }

    let gate = shutdown.readiness().gate("monitor");
    gate.open();
    let router = mend_runtime::http::ops_router(deps.metrics.clone(), shutdown.readiness())
        .merge(reports_router(reports));
    let served = mend_runtime::http::serve_http(http_listener, router, token.clone()).await;
    if served.is_err() {
        shutdown.trigger();
    }
    for task in tasks {
        let _ = task.await;
    }
    tracing::info!("monitor service stopped");
    Ok(served?)
}
