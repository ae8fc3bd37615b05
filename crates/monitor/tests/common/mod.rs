//! Shared test set-up: a trained synthetic model, a world that draws rows and labels from it,
//! a monitor on port 0, an event observer, a raw HTTP GET, and how long `eventually` waits.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mend_bus::events::DriftDetected;
use mend_bus::{
    Bus, ConsumerSpec, DataLog, Envelope, Event, EventSubscription, JetStreamBus, JetStreamConfig,
    JetStreamDataLog, ModelName,
};
use mend_core::Artifact;
use mend_core::record::{LabelRecord, RowRecord};
use mend_monitor::{InMemoryChampionSource, MonitorConfig, MonitorDeps, MonitorServiceError};
use mend_runtime::{Metrics, Shutdown};
use mend_testkit::{NatsServer, Patience, eventually};
use mend_worlds::{Generator, Regime, SyntheticSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

pub const MODEL: &str = "synth";

pub fn model() -> ModelName {
    ModelName::new(MODEL).unwrap()
}

pub fn shift(by: f64) -> Regime {
    Regime {
        shift: by,
        ..Regime::default()
    }
}

pub fn flipped() -> Regime {
    Regime {
        flip: true,
        ..Regime::default()
    }
}

/// Trains on 12,000 rows of a regime: the reference then holds more than 1,000 rows, so the
/// distance tests (not the p-value ones) judge, as in production; and it is large enough that
/// its own sampling noise does not push calm 1,000-row windows over the 0.1 distance threshold
/// (with a 2,400-row reference a calm feature now and then measured 0.10-0.14).
pub fn train(regime: &Regime, seed: u64) -> Artifact {
    let mut generator = Generator::new(SyntheticSpec::default());
    generator.reseed(seed);
    let sample = generator.sample(12_000, regime);
    mend_testkit::artifacts::train_sample(&generator, &sample)
}

/// Rows and labels of the world the model was trained in, with fresh ids.
pub struct World {
    generator: Generator,
    next_id: u64,
    draws: u64,
}

impl World {
    pub fn new() -> World {
        World {
            generator: Generator::new(SyntheticSpec::default()),
            next_id: 0,
            draws: 100,
        }
    }

    pub fn draw(&mut self, n: usize, regime: &Regime) -> (Vec<RowRecord>, Vec<LabelRecord>) {
        self.draws += 1;
        self.generator.reseed(self.draws);
        let sample = self.generator.sample(n, regime);
        let records = self
            .generator
            .to_records(&sample, "row-", self.next_id, 1_700_000_000_000);
        self.next_id += n as u64;
        records
    }
}

/// A JetStream bus and data log on a fresh nats-server.
pub struct Nats {
    pub server: NatsServer,
    pub bus: Arc<dyn Bus>,
    pub data_log: Arc<dyn DataLog>,
}

pub async fn nats() -> Nats {
    let server = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap()
        .expect("nats-server starts");
    let jetstream = JetStreamBus::connect(&server.url(), JetStreamConfig::default())
        .await
        .unwrap();
    Nats {
        server,
        bus: Arc::new(jetstream.clone()),
        data_log: Arc::new(JetStreamDataLog::new(jetstream)),
    }
}

/// Small windows confirmed twice (the tests' episodes are counted in 1,000-row steps), fast
/// polling.
pub fn config(data_dir: &Path) -> MonitorConfig {
    let mut config = MonitorConfig::new(vec![model()], data_dir);
    config.window_rows = 1_000;
    config.confirm_windows = 2;
    config.label_window = 1_000;
    config.poll_interval = Duration::from_millis(50);
    config.champion_refresh = Duration::from_secs(3600);
    config.instance = "test".into();
    config
}

/// A running monitor.
pub struct Running {
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
    pub metrics: Metrics,
    pub task: JoinHandle<Result<(), MonitorServiceError>>,
}

impl Running {
    pub async fn stop(self) {
        self.shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the monitor stops within 10 s")
            .unwrap()
            .unwrap();
    }
}

pub async fn start(
    config: MonitorConfig,
    champions: Arc<InMemoryChampionSource>,
    data_log: Arc<dyn DataLog>,
    bus: Option<Arc<dyn Bus>>,
) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let metrics = Metrics::new();
    let deps = MonitorDeps {
        champions,
        data_log,
        bus,
        metrics: metrics.clone(),
    };
    let task = tokio::spawn(mend_monitor::run(config, deps, listener, shutdown.clone()));
    Running {
        addr,
        shutdown,
        metrics,
        task,
    }
}

/// A monitor over NATS with version 1 (the initial world) as champion, and an observer of its
/// events subscribed before it starts.
pub async fn start_over_nats(
    nats: &Nats,
    data_dir: &Path,
) -> (Arc<InMemoryChampionSource>, Observer, Running) {
    let champions = Arc::new(InMemoryChampionSource::new());
    champions.set(&model(), 1, train(&Regime::default(), 1));
    let observer = Observer::new(Arc::clone(&nats.bus)).await;
    let monitor = start(
        config(data_dir),
        Arc::clone(&champions),
        Arc::clone(&nats.data_log),
        Some(Arc::clone(&nats.bus)),
    )
    .await;
    (champions, observer, monitor)
}

/// Collects `drift.detected.*` events as they arrive.
pub struct Observer {
    subscription: EventSubscription,
    pub drift: Vec<(String, DriftDetected)>,
    pub alerts: usize,
}

impl Observer {
    pub async fn new(bus: Arc<dyn Bus>) -> Observer {
        let subscription = EventSubscription::subscribe(
            bus,
            ConsumerSpec::new("observer", ["drift.detected.>", "alert.>"]).batch(64),
        )
        .await
        .unwrap();
        Observer {
            subscription,
            drift: Vec::new(),
            alerts: 0,
        }
    }

    /// Takes in whatever arrives within `quiet` of the last event.
    pub async fn drain(&mut self, quiet: Duration) {
        while let Ok(Some(delivery)) = tokio::time::timeout(quiet, self.subscription.next()).await {
            let envelope: Envelope = delivery.envelope.clone();
            match envelope.event {
                Event::DriftDetected(body) => self.drift.push((envelope.id.clone(), body)),
                Event::Alert(_) => self.alerts += 1,
                _ => {}
            }
            delivery.ack().await.unwrap();
        }
    }

    pub fn of_kind(&self, kind: mend_bus::events::DriftKind) -> Vec<&DriftDetected> {
        self.drift
            .iter()
            .map(|(_, event)| event)
            .filter(|event| event.kind == kind)
            .collect()
    }
}

/// A plain HTTP/1.1 GET: status and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// Reports on disk, oldest first.
pub async fn report_ids(data_dir: &Path) -> Vec<String> {
    mend_monitor::ReportStore::new(data_dir, 1_000)
        .ids(MODEL)
        .await
        .unwrap()
}

/// Waits until at least `n` reports exist.
pub async fn reports_reach(data_dir: &Path, n: usize) -> Vec<String> {
    eventually(SOON, &format!("{n} reports"), || async {
        let ids = report_ids(data_dir).await;
        (ids.len() >= n).then_some(ids)
    })
    .await
}

/// How long the monitor's tests wait for a condition with `mend_testkit::eventually`: 60 s,
/// looking every 50 ms.
pub const SOON: Patience = Patience::seconds(60).polling_every(Duration::from_millis(50));
