//! [`run`]: the trainer service on dependencies its caller built, until shutdown; and
//! [`Trainer`], the same service as a handle tests (and `mend up`) can look into.

use std::sync::Arc;

use mend_bus::{Bus, DataLog, ModelName};
use mend_client::RegistryClient;
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

/// Runs the trainer until `shutdown`: settings from `config` (errors name the variable).
pub async fn run(
    config: &MendConfig,
    deps: TrainerDeps,
    shutdown: Shutdown,
) -> Result<(), TrainerError> {
    let trainer_config = TrainerConfig::from_mend(config)?;
    let ready = shutdown.readiness().gate("trainer");
    let trainer = Trainer::start(trainer_config, deps, shutdown.token()).await?;
    ready.open();
    trainer.wait().await;
    Ok(())
}
