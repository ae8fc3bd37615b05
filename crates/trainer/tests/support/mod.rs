//! The trainer's test harness: a bus (in-process or a real `nats-server -js`), a data log,
//! the real registry served on a loopback port, a seeded champion, the trainer itself, and
//! an observer of everything it announces.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mend_bus::events::Event;
use mend_bus::{
    Bus, ConsumerSpec, DataLog, DataLogExt, Envelope, EventRecorder, InProcessBus, JetStreamBus,
    JetStreamConfig, JetStreamDataLog, ModelName, SqliteDataLog, publish_event,
};
use mend_client::RegistryClient;
use mend_core::TrainSettings;
use mend_core::record::{LabelRecord, RowRecord};
use mend_proto::registry::v1 as pb;
use mend_registry::SqliteStore;
use mend_runtime::Metrics;
use mend_testkit::NatsServer;
use mend_testkit::registry::{TestRegistry, seed_champion};
use mend_trainer::config::GuardPolicy;
use mend_trainer::evaluate::train_and_compare;
use mend_trainer::follow_up::FollowUpPolicy;
use mend_trainer::{Trainer, TrainerConfig, TrainerDeps};
use mend_worlds::{Generator, Regime, SyntheticSpec};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    InProcess,
    JetStream,
}

/// Runs each listed scenario, an `async fn name(backend: Backend)` at the root of the test
/// file, as two tests: `name::in_process` (the in-process bus and the SQLite data log) and
/// `name::on_jetstream` (a real `nats-server -js` for both).
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn in_process() {
                super::$scenario($crate::support::Backend::InProcess).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_jetstream() {
                super::$scenario($crate::support::Backend::JetStream).await;
            }
        }
    )*};
}

pub fn model() -> ModelName {
    ModelName::new("churn").unwrap()
}

/// Settings that keep tests quick: short debounce, cooldown and backoff, a small guard; no
/// label cooldown unless a test is about pacing.
pub fn test_config() -> TrainerConfig {
    TrainerConfig {
        debounce: Duration::from_millis(300),
        cooldown: Duration::from_millis(200),
        cooldown_labels: 0,
        backoff: Duration::from_millis(50),
        min_rows: 100,
        guard: GuardPolicy {
            rows: 200,
            margin: 0.02,
            poll: Duration::from_millis(100),
        },
        // Off unless a test is about them: a follow-up is a retrain of its own.
        follow_up: FollowUpPolicy {
            labels: 0,
            window: 400,
            margin: 0.02,
            patience: 0,
            poll: Duration::from_millis(100),
        },
        durable: "trainer-test".into(),
        ..TrainerConfig::default()
    }
}

/// [`test_config`] paced in data: `cooldown_labels` labels after a run's data before an
/// alarm starts the next, and no wall-clock cooldown at all.
pub fn paced_config(cooldown_labels: usize) -> TrainerConfig {
    TrainerConfig {
        cooldown_labels,
        cooldown: Duration::ZERO,
        debounce: Duration::from_millis(100),
        ..test_config()
    }
}

/// Fails the test instead of hanging it.
pub async fn within<T>(seconds: u64, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(seconds), future)
        .await
        .expect("test step timed out")
}

/// A synthetic world whose rows have fresh ids and increasing times.
pub struct World {
    generator: Generator,
    next_id: u64,
    next_time: i64,
    draws: u64,
}

impl World {
    pub fn new() -> World {
        World::with_spec(SyntheticSpec::default())
    }

    /// A world of another shape (more features, a weaker signal: harder to learn from few
    /// rows).
    pub fn with_spec(spec: SyntheticSpec) -> World {
        World {
            generator: Generator::new(spec),
            next_id: 0,
            next_time: 1_700_000_000_000,
            draws: 0,
        }
    }

    pub fn records(&mut self, n: usize, regime: &Regime) -> (Vec<RowRecord>, Vec<LabelRecord>) {
        self.draws += 1;
        self.generator.reseed(self.draws);
        let sample = self.generator.sample(n, regime);
        let records = self
            .generator
            .to_records(&sample, "row-", self.next_id, self.next_time);
        self.next_id += n as u64;
        self.next_time += n as i64;
        records
    }
}

pub fn concept_a() -> Regime {
    Regime::default()
}

pub fn concept_b() -> Regime {
    Regime {
        flip: true,
        ..Regime::default()
    }
}

pub fn noise() -> Regime {
    Regime {
        label_noise: 1.0,
        ..Regime::default()
    }
}

pub struct Harness {
    pub bus: Arc<dyn Bus>,
    pub jetstream: Option<JetStreamBus>,
    pub data_log: Arc<dyn DataLog>,
    pub registry: RegistryClient,
    pub trainer: Option<Trainer>,
    pub trainer_shutdown: CancellationToken,
    pub metrics: Metrics,
    /// Every `model.*` and `alert.*` event, as announced.
    pub events: EventRecorder,
    /// The registry service [`Harness::registry`] talks to.
    registry_service: TestRegistry,
    _dir: TempDir,
    pub nats: Option<NatsServer>,
}

impl Harness {
    pub async fn start(backend: Backend) -> Harness {
        Harness::start_with_store(backend, |store| store).await
    }

    pub fn deps(&self) -> TrainerDeps {
        TrainerDeps {
            bus: Arc::clone(&self.bus),
            data_log: Arc::clone(&self.data_log),
            registry: self.registry.clone(),
            metrics: self.metrics.clone(),
        }
    }

    pub async fn start_trainer(&mut self, config: TrainerConfig) {
        let trainer = Trainer::start(config, self.deps(), self.trainer_shutdown.clone())
            .await
            .unwrap();
        self.trainer = Some(trainer);
    }

    /// Stops the trainer (as a SIGTERM would) and starts a fresh one on the same durable.
    pub async fn restart_trainer(&mut self, config: TrainerConfig) {
        self.trainer_shutdown.cancel();
        if let Some(trainer) = self.trainer.take() {
            within(20, trainer.wait()).await;
        }
        self.trainer_shutdown = CancellationToken::new();
        self.start_trainer(config).await;
    }

    pub fn runs(&self) -> u64 {
        self.trainer.as_ref().map_or(0, Trainer::runs)
    }

    pub async fn append(&self, (rows, labels): &(Vec<RowRecord>, Vec<LabelRecord>)) {
        let model = model();
        self.data_log.append_rows(&model, rows).await.unwrap();
        self.data_log.append_labels(&model, labels).await.unwrap();
    }

    /// The usual start: version 1 trained on 1,000 rows of concept a is the champion, and
    /// 1,000 labeled rows of concept b (the flipped world) are logged after it.
    pub async fn champion_on_a_then_b(&self, world: &mut World) {
        self.seed_champion(&world.records(1_000, &concept_a()))
            .await;
        self.append(&world.records(1_000, &concept_b())).await;
    }

    /// Trains version 1 on these records and makes it the champion.
    pub async fn seed_champion(&self, (rows, labels): &(Vec<RowRecord>, Vec<LabelRecord>)) -> u64 {
        let labels: Vec<String> = labels.iter().map(|l| l.label.clone()).collect();
        let artifact = train_and_compare(rows, &labels, None, &TrainSettings::default())
            .unwrap()
            .candidate;
        let model = model();
        let seeded = seed_champion(&self.registry, model.as_str(), &artifact, "test", "");
        within(20, seeded).await.version
    }

    pub async fn champion_version(&self) -> Option<u64> {
        mend_trainer::registry::champion_version(&self.registry, "churn")
            .await
            .unwrap()
    }

    pub async fn versions(&self) -> Vec<pb::VersionMetadata> {
        mend_trainer::registry::versions(&self.registry, "churn")
            .await
            .unwrap()
    }

    /// Every version the champion alias was moved to, in order (the seeded version 1 first),
    /// from the registry's audit log: a move undone at once is still on it.
    pub async fn champion_moves(&self) -> Vec<u64> {
        mend_trainer::registry::audit(&self.registry, "churn")
            .await
            .unwrap()
            .into_iter()
            .filter(|r| {
                r.action == pb::AuditAction::SetAlias as i32 && r.alias == mend_client::CHAMPION
            })
            .map(|r| r.version)
            .collect()
    }

    /// Waits for the trainer's final decision (anything but a deferral) on the trigger `id`.
    /// Once it is out, the run that settled the trigger is over: the trainer records and
    /// announces it after everything that run did.
    pub async fn final_decision(
        &mut self,
        seconds: u64,
        id: &str,
    ) -> mend_bus::events::RetrainDecided {
        let decided = self
            .wait_for(seconds, |e| {
                matches!(&e.event, Event::RetrainDecided(d)
                    if d.trigger_event_id == id
                        && d.decision != mend_bus::events::Decision::Deferred)
            })
            .await;
        let Event::RetrainDecided(decided) = decided.event else {
            unreachable!()
        };
        decided
    }

    pub async fn publish(&self, event: impl Into<Event>) -> Envelope {
        let envelope = Envelope::new(model(), event);
        publish_event(self.bus.as_ref(), &envelope).await.unwrap();
        envelope
    }

    /// Waits for an announced event matching `predicate` (earlier ones included).
    pub async fn wait_for(
        &mut self,
        seconds: u64,
        predicate: impl Fn(&Envelope) -> bool,
    ) -> Envelope {
        let found = self
            .events
            .wait_for(Duration::from_secs(seconds), predicate)
            .await;
        found.unwrap_or_else(|| {
            panic!(
                "no matching event within {seconds} s; seen: {}",
                self.events.describe_seen()
            )
        })
    }

    /// Takes in everything announced within `wait`.
    pub async fn drain(&mut self, wait: Duration) {
        self.events.drain(wait).await;
    }

    /// Stops the trainer and waits for it; the registry goes with the harness.
    pub async fn stop(mut self) {
        self.trainer_shutdown.cancel();
        if let Some(trainer) = self.trainer.take() {
            within(20, trainer.wait()).await;
        }
    }
}

/// The storage behind the harness's registry service.
pub type Store = Arc<dyn mend_registry::RegistryStore>;

impl Harness {
    /// [`Harness::start`] with the registry service's store seen through `wrap`: a test can
    /// stand between the real registry service and its storage, e.g. to let another actor act
    /// the moment a given change arrives (a race made deterministic). Everything else is as
    /// in [`Harness::start`].
    pub async fn start_with_store(backend: Backend, wrap: impl FnOnce(Store) -> Store) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let (bus, jetstream, data_log, nats): (Arc<dyn Bus>, _, Arc<dyn DataLog>, _) = match backend
        {
            Backend::InProcess => (
                Arc::new(InProcessBus::default()),
                None,
                Arc::new(SqliteDataLog::open(dir.path()).unwrap()),
                None,
            ),
            Backend::JetStream => {
                let server = tokio::task::spawn_blocking(NatsServer::start)
                    .await
                    .unwrap()
                    .expect("nats-server starts");
                let bus = JetStreamBus::connect(&server.url(), JetStreamConfig::default())
                    .await
                    .unwrap();
                (
                    Arc::new(bus.clone()),
                    Some(bus.clone()),
                    Arc::new(JetStreamDataLog::new(bus)),
                    Some(server),
                )
            }
        };
        let store = SqliteStore::open_in_dir(dir.path().join("registry"))
            .await
            .unwrap();
        let store: Store = Arc::new(store);
        let registry_service = TestRegistry::setup()
            .store(wrap(store))
            .bus(Arc::clone(&bus))
            .start()
            .await;
        let registry = registry_service.client(None);
        let events = EventRecorder::subscribe(
            Arc::clone(&bus),
            ConsumerSpec::new("observer", ["model.>", "alert.>", "retrain.>"]).batch(64),
        )
        .await
        .unwrap();
        Harness {
            bus,
            jetstream,
            data_log,
            registry,
            trainer: None,
            trainer_shutdown: CancellationToken::new(),
            metrics: Metrics::new(),
            events,
            registry_service,
            _dir: dir,
            nats,
        }
    }
}
