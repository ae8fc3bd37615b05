//! The one host of every mend service: how a service binary (and `mend up`, the five services as
//! one) starts, serves and stops, written once.
//!
//! A service says what is its own by implementing [`Service`]: its settings, the ports it
//! serves, what it talks to, and its `run(config, deps, listeners, shutdown)`. The host does the
//! rest, in this order, the same for every service:
//!
//! 1. configuration: [`MendConfig`] and the service's own settings ([`Service::config`]); a bad
//!    value exits 2 before anything binds (see [`crate::service::service_main`], which also
//!    answers `--health-check` and `--help`), then telemetry;
//! 2. bind: every port the service serves ([`Service::bind`]), so a taken port fails before
//!    anything connects;
//! 3. open: the bus, the data log, stores and clients ([`Service::open`]);
//! 4. readiness and signals: a [`Shutdown`] over fresh readiness, triggered by SIGTERM or SIGINT;
//! 5. ops HTTP: `/metrics`, `/healthz` and `/livez` on `MEND_HTTP_ADDR` under the `MEND_TLS_*`
//!    rules, unless the service serves that port itself with its own routes beside them
//!    ([`Bound`]);
//! 6. run: [`Service::run`] beside the ops port until shutdown, then both drain within
//!    `MEND_SHUTDOWN_GRACE_MS`. Either stopping stops the other: a service whose `run` returned,
//!    or whose ops port failed, takes the process down instead of half-serving.
//!
//! A service binary's `main` is one line, `mend_runtime::host::main::<MendIngest>()`; `mend up`
//! calls [`serve`] with its own telemetry.

use std::future::Future;
use std::process::ExitCode;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::{ConfigError, MendConfig, ServiceAddr, vars};
use crate::http::{ops_router, serve_ops_with_tls};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// A mend service as the host runs it. Implemented by a unit type per service
/// (`mend_ingest::MendIngest`, ...); its `run` is the service library's own `run` function,
/// which tests and `mend up` also call directly on listeners and dependencies they built.
pub trait Service {
    /// The binary's name (`mend-ingest`): telemetry's service name, the prefix of its messages.
    const NAME: &'static str;
    /// How errors name the service: `the ingest service` (`the ingest service failed: ...`).
    const TITLE: &'static str;
    /// The service's own settings, beyond [`MendConfig`].
    type Config;
    /// What the service talks to: the bus, the data log, stores, clients.
    type Deps;
    /// The ports the service serves itself.
    type Listeners;
    /// Why `run` failed.
    type Error: Into<anyhow::Error>;

    /// Reads and checks the service's own settings from the process's configuration; an error
    /// names the variable, and the binary exits 2 before anything binds.
    fn config(config: &MendConfig) -> Result<Self::Config, ConfigError>;

    /// Binds the ports the service serves, and `MEND_HTTP_ADDR` (use [`bind`] and
    /// [`bind_http`]: errors name the variable and the address).
    fn bind(config: &MendConfig) -> impl Future<Output = anyhow::Result<Bound<Self::Listeners>>>;

    /// Opens what the service talks to, registering its metrics with `metrics` (the registry
    /// the HTTP port's `/metrics` serves).
    fn open(
        config: &MendConfig,
        metrics: &Metrics,
    ) -> impl Future<Output = anyhow::Result<Self::Deps>>;

    /// Serves on `listeners` until `shutdown` is triggered, then drains and returns.
    fn run(
        config: Self::Config,
        deps: Self::Deps,
        listeners: Self::Listeners,
        shutdown: Shutdown,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// The ports a service serves, bound: what its `run` takes, and `MEND_HTTP_ADDR` when the host
/// serves the ops routes on it.
#[derive(Debug)]
pub struct Bound<L> {
    /// What [`Service::run`] takes.
    pub listeners: L,
    /// `MEND_HTTP_ADDR`, for the host's `/metrics`, `/healthz` and `/livez`; `None` when `run`
    /// serves that port itself (its listener is in `listeners`).
    pub ops: Option<TcpListener>,
}

impl<L> Bound<L> {
    /// `run` serves `listeners`; the host serves the ops routes on `http` (`MEND_HTTP_ADDR`).
    pub fn with_ops(listeners: L, http: TcpListener) -> Self {
        Self {
            listeners,
            ops: Some(http),
        }
    }

    /// `run` serves every port, `MEND_HTTP_ADDR` among `listeners`, with the ops routes beside
    /// its own (the server's OIP REST, the monitor's reports).
    pub fn serving_http(listeners: L) -> Self {
        Self {
            listeners,
            ops: None,
        }
    }
}

/// Binds `addr`; an error names `var` and the address.
pub async fn bind(addr: &ServiceAddr, var: &str) -> anyhow::Result<TcpListener> {
    addr.bind()
        .await
        .with_context(|| format!("failed to bind {var} {addr}"))
}

/// Binds `MEND_HTTP_ADDR`.
pub async fn bind_http(config: &MendConfig) -> anyhow::Result<TcpListener> {
    bind(&config.http_addr, vars::MEND_HTTP_ADDR).await
}

/// Fresh readiness and the shutdown switch that fails it, triggered by SIGTERM or SIGINT.
pub fn shutdown_on_signals() -> anyhow::Result<Shutdown> {
    let shutdown = Shutdown::new();
    shutdown
        .listen_for_signals()
        .context("failed to install signal handlers")?;
    Ok(shutdown)
}

/// A service binary's whole `main`: `fn main() -> ExitCode { host::main::<MendIngest>() }`.
/// Exit codes: 0 after a clean stop, 1 when the service failed, 2 for a bad configuration (see
/// [`crate::service::service_main`]).
pub fn main<S: Service>() -> ExitCode {
    crate::service::service_main(S::NAME, |config: &MendConfig| S::config(config), serve::<S>)
}

/// Serves `S` with its settings `own` until it stops (the steps in the module's doc, from
/// binding on); telemetry is the caller's. Errors say which step failed and why.
pub async fn serve<S: Service>(config: MendConfig, own: S::Config) -> anyhow::Result<()> {
    let Bound {
        listeners,
        ops: ops_listener,
    } = S::bind(&config).await?;
    let metrics = Metrics::new();
    let deps = S::open(&config, &metrics).await?;
    let shutdown = shutdown_on_signals()?;

    let service = async {
        let stopped = S::run(own, deps, listeners, shutdown.clone()).await;
        // However it stopped, nothing else of this process should go on serving.
        shutdown.trigger();
        stopped
            .map_err(Into::<anyhow::Error>::into)
            .with_context(|| format!("{} failed", S::TITLE))
    };
    let ops = async {
        let Some(listener) = ops_listener else {
            return Ok(());
        };
        let router = ops_router(metrics.clone(), shutdown.readiness());
        let served = serve_ops_with_tls(listener, router, &config.tls, shutdown.token()).await;
        if served.is_err() {
            shutdown.trigger();
        }
        served.context("the ops http server failed")
    };
    let work = async {
        let (service, ops) = tokio::join!(service, ops);
        service.and(ops)
    };
    shutdown
        .run_with_grace(work, config.shutdown_grace)
        .await
        .with_context(|| format!("{} did not drain in time", S::TITLE))?
}
