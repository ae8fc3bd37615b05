//! [`run`]: the trainer service on dependencies its caller built, until shutdown;
//! [`Trainer`], the same service as a handle tests can look into; and [`MendTrainer`], the
//! trainer as `mend_runtime::host` runs it in its own process (`mend-trainer`).

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use mend_bus::{Bus, DataLog, JetStreamBus, JetStreamDataLog, ModelName};
use mend_client::RegistryClient;
use mend_runtime::config::{ConfigError, vars};
use mend_runtime::host::{self, Bound, Service};
use mend_runtime::{MendConfig, Metrics, Shutdown};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::TrainerConfig;
use crate::error::TrainerError;
use crate::flight::Flights;
use crate::follow_up::FollowUps;
use crate::guard::{GuardVerdict, Guards};
use crate::heal::Healer;
use crate::metrics::TrainerMetrics;
use crate::{intake, schedule, webhook};

/// What the trainer runs on.
#[derive(Clone)]
pub struct TrainerDeps {
    /// Triggers come in and outcomes go out here.
    pub bus: Arc<dyn Bus>,
    /// Where rows and labels are read from.
    pub data_log: Arc<dyn DataLog>,
    pub registry: RegistryClient,
    /// Where the trainer's metrics are registered (served on `/metrics` by the caller).
    pub metrics: Metrics,
}

impl std::fmt::Debug for TrainerDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainerDeps")
            .field("bus", &self.bus)
            .field("data_log", &self.data_log)
            .finish_non_exhaustive()
    }
}

/// A running trainer.
#[derive(Debug)]
pub struct Trainer {
    flights: Flights,
    guards: Guards,
    tasks: JoinSet<()>,
}

impl Trainer {
    /// Subscribes to triggers (and alerts, with webhooks) and starts serving them; returns
    /// once the consumers exist, so anything published afterwards is seen.
    pub async fn start(
        config: TrainerConfig,
        deps: TrainerDeps,
        shutdown: CancellationToken,
    ) -> Result<Trainer, TrainerError> {
        let config = Arc::new(config);
        let metrics = TrainerMetrics::register(&deps.metrics);
        let guards = Guards::new(
            Arc::clone(&deps.bus),
            Arc::clone(&deps.data_log),
            deps.registry.clone(),
            config.guard.clone(),
            metrics.clone(),
            shutdown.clone(),
        );
        let follow_ups = FollowUps::new(
            Arc::clone(&deps.bus),
            Arc::clone(&deps.data_log),
            deps.registry.clone(),
            config.follow_up.clone(),
            shutdown.clone(),
        );
        let mut tasks = JoinSet::new();
        let healer = Healer {
            bus: Arc::clone(&deps.bus),
            data_log: Arc::clone(&deps.data_log),
            registry: deps.registry.clone(),
            config: Arc::clone(&config),
            guards: guards.clone(),
            follow_ups: follow_ups.clone(),
            metrics,
            recall: crate::recall::RecallCache::default(),
        };
        let flights = Flights::new(healer, shutdown.clone());
        // Guards of promotions an earlier trainer made and never concluded.
        tasks.spawn(guards.clone().resume_on_start(shutdown.clone()));
        // Follow-ups an earlier trainer armed.
        tasks.spawn(follow_ups.clone().resume_on_start(shutdown.clone()));
        let subscription =
            intake::subscribe(Arc::clone(&deps.bus), &config.durable, config.ack_wait).await?;
        tasks.spawn(intake::consume(
            subscription,
            Arc::clone(&deps.bus),
            flights.clone(),
            config.ack_wait,
            shutdown.clone(),
        ));
        if !config.schedules.is_empty() {
            tasks.spawn(schedule::run_schedules(
                Arc::clone(&deps.bus),
                config.schedules.clone(),
                shutdown.clone(),
            ));
        }
        if !config.webhooks.urls.is_empty() {
            let bus = Arc::clone(&deps.bus);
            let durable = format!("{}-webhooks", config.durable);
            let webhooks = config.webhooks.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                if let Err(error) = webhook::forward_alerts(bus, durable, webhooks, shutdown).await
                {
                    tracing::error!(%error, "alert forwarding stopped");
                }
            });
        }
        tracing::info!(
            durable = %config.durable,
            window_rows = config.window_rows,
            metric = %config.gate.metric,
            margin = config.gate.margin,
            cooldown_ms = config.cooldown.as_millis() as u64,
            guard_rows = config.guard.rows,
            webhooks = config.webhooks.urls.len(),
            schedules = config.schedules.len(),
            "trainer started"
        );
        Ok(Trainer {
            flights,
            guards,
            tasks,
        })
    }

    /// Retrain attempts started so far.
    pub fn runs(&self) -> u64 {
        self.flights.runs()
    }

    /// Verdicts of rollback guards as they end.
    pub fn guard_verdicts(
        &self,
    ) -> tokio::sync::broadcast::Receiver<(ModelName, u64, GuardVerdict)> {
        self.guards.verdicts()
    }

    /// Waits until every part has stopped (after shutdown).
    pub async fn wait(mut self) {
        while let Some(joined) = self.tasks.join_next().await {
            if let Err(error) = joined {
                tracing::error!(%error, "a trainer task panicked");
            }
        }
        tracing::info!("trainer stopped");
    }
}

/// Runs the trainer until `shutdown`, with its settings read and checked by the caller
/// ([`TrainerConfig::from_mend`]). It listens on no port of its own (`listeners` is `()`):
/// its `/metrics` and probes are served by whoever serves the process's HTTP port.
pub async fn run(
    config: TrainerConfig,
    deps: TrainerDeps,
    _listeners: (),
    shutdown: Shutdown,
) -> Result<(), TrainerError> {
    let ready = shutdown.readiness().gate("trainer");
    let trainer = Trainer::start(config, deps, shutdown.token()).await?;
    ready.open();
    trainer.wait().await;
    Ok(())
}

/// `mend-trainer`: the trainer in its own process, hearing triggers over NATS JetStream
/// (`MEND_NATS_URL` is required: a separate process has no in-process bus to share) and
/// serving the host's ops routes on `MEND_HTTP_ADDR`.
#[derive(Debug)]
pub struct MendTrainer;

impl Service for MendTrainer {
    const NAME: &'static str = "mend-trainer";
    const TITLE: &'static str = "the trainer";
    type Config = TrainerConfig;
    type Deps = TrainerDeps;
    type Listeners = ();
    type Error = TrainerError;

    fn config(config: &MendConfig) -> Result<TrainerConfig, ConfigError> {
        let settings = TrainerConfig::from_mend(config)?;
        if config.nats.is_none() {
            return Err(ConfigError::Conflict {
                var: vars::MEND_NATS_URL.to_owned(),
                reason: "must be set: as its own process the trainer hears triggers over NATS \
                         JetStream (use `mend up` for the embedded bus)"
                    .to_owned(),
            });
        }
        Ok(settings)
    }

    async fn bind(config: &MendConfig) -> anyhow::Result<Bound<()>> {
        Ok(Bound::with_ops((), host::bind_http(config).await?))
    }

    async fn open(config: &MendConfig, metrics: &Metrics) -> anyhow::Result<TrainerDeps> {
        let nats = config.nats.as_ref().context("MEND_NATS_URL is not set")?;
        let bus = JetStreamBus::connect_configured(nats)
            .await
            .context("failed to connect to NATS (MEND_NATS_URL)")?;
        Ok(TrainerDeps {
            bus: Arc::new(bus.clone()),
            data_log: Arc::new(JetStreamDataLog::new(bus)),
            registry: RegistryClient::from_config(config)?,
            metrics: metrics.clone(),
        })
    }

    fn run(
        config: TrainerConfig,
        deps: TrainerDeps,
        _listeners: (),
        shutdown: Shutdown,
    ) -> impl Future<Output = Result<(), TrainerError>> + Send {
        run(config, deps, (), shutdown)
    }
}
