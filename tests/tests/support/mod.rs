//! The shared end-to-end stack: a real `nats-server -js`, and the registry, inference server,
//! ingest, trainer (and monitor, when asked) as tasks on it, each on its own loopback port;
//! or everything but the trainer, which a test then runs as its own process.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mend_bus::events::Event;
use mend_bus::{
    Bus, ConsumerSpec, DataLog, DataLogExt, Envelope, EventRecorder, JetStreamBus, JetStreamConfig,
    JetStreamDataLog, ModelName,
};
use mend_client::RegistryClient;
use mend_proto::inference::ModelInferRequest;
use mend_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use mend_proto::ingest::v1 as ingest_pb;
use mend_proto::registry::v1 as registry_pb;
use mend_runtime::telemetry::propagation::TraceContextInterceptor;
use mend_runtime::{Health, MendConfig, Metrics, Shutdown};
use mend_testkit::registry::{TestRegistry, champion_moves, seed_trained_champion};
use mend_testkit::{NatsServer, Patience};
use mend_worlds::{Generator, Regime, Sample};
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

pub const MODEL: &str = "churn";

/// First event time of generated rows; each row is 1 ms after the one before.
const FIRST_TIME_MS: i64 = 1_700_000_000_000;

/// Settings that make the loop act on a few thousand rows: small training and drift windows,
/// fast polls.
pub fn loop_settings() -> Vec<(&'static str, String)> {
    [
        ("MEND_TRAINER_MIN_ROWS", "500"),
        ("MEND_TRAINER_WINDOW_ROWS", "3000"),
        ("MEND_SERVER_RECONCILE_MS", "1000"),
        ("MEND_MONITOR_WINDOW_ROWS", "1000"),
        ("MEND_MONITOR_LABEL_WINDOW", "1000"),
        ("MEND_MONITOR_POLL_MS", "100"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect()
}

pub fn model() -> ModelName {
    ModelName::new(MODEL).unwrap()
}

pub fn flipped() -> Regime {
    Regime {
        flip: true,
        ..Regime::default()
    }
}

/// Labels replaced by random classes: nothing to learn.
pub fn noise() -> Regime {
    Regime {
        label_noise: 1.0,
        ..Regime::default()
    }
}

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

/// One OIP request with a tensor per feature; returns (model_version, predicted labels).
pub async fn infer(
    client: &mut GrpcInferenceServiceClient<Channel>,
    g: &Generator,
    sample: &Sample,
) -> Result<(String, Vec<String>), tonic::Status> {
    let mut request = mend_client::oip::sample_request(MODEL, &g.feature_names(), sample);
    request.id = "e2e".into();
    let response = client.model_infer(request).await?.into_inner();
    let labels = mend_client::oip::labels(&response);
    Ok((response.model_version, labels))
}

pub fn accuracy(g: &Generator, sample: &Sample, predicted: &[String]) -> f64 {
    let classes = g.class_names();
    let right = sample
        .labels
        .iter()
        .zip(predicted)
        .filter(|(t, p)| classes[**t] == **p)
        .count();
    right as f64 / sample.labels.len() as f64
}

/// How long `mend_testkit::eventually` waits in these tests: up to `seconds`, looking every
/// 100 ms.
pub fn patience(seconds: u64) -> Patience {
    Patience::seconds(seconds).polling_every(Duration::from_millis(100))
}

/// What [`Stack::answer_from`] saw while it waited for a version.
#[derive(Debug)]
pub struct Answered {
    /// The version's labels for the probe.
    pub labels: Vec<String>,
    /// Requests that failed once the server had answered a first time.
    pub errors: Vec<tonic::Status>,
}

/// What a stack runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub monitor: bool,
    /// Run the trainer as a task; when false, a test runs `mend-trainer` itself.
    pub trainer: bool,
    /// Settings on top of the stack's quick defaults (`MEND_*` variables).
    pub vars: Vec<(&'static str, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            monitor: false,
            trainer: true,
            vars: Vec::new(),
        }
    }
}

/// An ingest client that sends the caller's trace context, as an instrumented producer
/// would (without a tracing layer it sends none).
pub type IngestClient =
    ingest_pb::ingest_client::IngestClient<InterceptedService<Channel, TraceContextInterceptor>>;

pub struct Stack {
    pub nats: NatsServer,
    pub bus: Arc<dyn Bus>,
    pub data_log: Arc<dyn DataLog>,
    pub registry: RegistryClient,
    pub registry_addr: String,
    pub oip: GrpcInferenceServiceClient<Channel>,
    pub ingest: IngestClient,
    /// The trainer task, when the stack runs one.
    pub trainer: Option<mend_trainer::Trainer>,
    /// The registry service [`Stack::registry`] talks to.
    pub registry_service: TestRegistry,
    /// The settings every service was started with (`MEND_*` variable → value).
    pub vars: HashMap<String, String>,
    /// Every `model.*` event, as announced.
    pub events: EventRecorder,
    /// Whether the server has answered an inference request yet: errors before that are its
    /// start-up (nothing loaded yet), errors after it are failed requests.
    answered_once: bool,
    shutdown: Shutdown,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    next_id: u64,
    next_time: i64,
    _dir: tempfile::TempDir,
}

/// Registry, server, ingest and trainer (and the monitor, when asked) as tasks over one
/// JetStream bus and data log, each on its own loopback port.
pub async fn start(with_monitor: bool) -> Stack {
    start_with(Options {
        monitor: with_monitor,
        ..Options::default()
    })
    .await
}

pub async fn start_with(options: Options) -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let nats = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap()
        .expect("nats-server starts");
    let jetstream = JetStreamBus::connect(&nats.url(), JetStreamConfig::default())
        .await
        .unwrap();
    let bus: Arc<dyn Bus> = Arc::new(jetstream.clone());
    let data_log: Arc<dyn DataLog> = Arc::new(JetStreamDataLog::new(jetstream.clone()));
    let store = mend_registry::JetStreamStore::open(
        jetstream.jetstream(),
        mend_registry::JetStreamConfig::default(),
    )
    .await
    .unwrap();

    let (registry_l, registry_addr) = listener().await;
    let (server_l, server_addr) = listener().await;
    let (ingest_l, ingest_addr) = listener().await;
    let (monitor_l, _) = listener().await;
    let mut vars: HashMap<String, String> = [
        ("MEND_NATS_URL", nats.url()),
        ("MEND_DATA_DIR", dir.path().display().to_string()),
        ("MEND_REGISTRY_ADDR", registry_addr.clone()),
        ("MEND_TRAINER_DEBOUNCE_MS", "100".into()),
        ("MEND_TRAINER_COOLDOWN_MS", "100".into()),
        ("MEND_SERVER_MODELS", MODEL.into()),
        ("MEND_MONITOR_MODELS", MODEL.into()),
    ]
    .into_iter()
    .chain(loop_settings())
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in &options.vars {
        vars.insert((*k).to_owned(), v.clone());
    }
    let config = MendConfig::from_map(&vars).unwrap();
    let shutdown = Shutdown::new();
    let endpoint = Endpoint::from_shared(format!("http://{registry_addr}")).unwrap();
    let registry = RegistryClient::connect_lazy(&endpoint, None);
    // Subscribed before anything runs, so no announcement is missed.
    let events = EventRecorder::subscribe(
        Arc::clone(&bus),
        ConsumerSpec::new("e2e-observer", ["model.>", "retrain.decided.>"]).batch(64),
    )
    .await
    .unwrap();

    let registry_service = TestRegistry::setup()
        .config(config.clone())
        .store(Arc::new(store))
        .bus(bus.clone())
        .listener(registry_l)
        .shutdown(shutdown.clone())
        .start()
        .await;
    let mut tasks = Vec::new();
    {
        let deps = mend_server::ServerDeps {
            source: Arc::new(mend_server::RegistryModelSource::connect_lazy(&endpoint)),
            bus: Some(bus.clone()),
            data_log: None,
            metrics: Metrics::new(),
            health: Health::new(),
        };
        let server_config = mend_server::ServerConfig::from_mend(&config).unwrap();
        let listeners = mend_server::Listeners {
            grpc: server_l,
            http: None,
        };
        let shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            mend_server::run(server_config, deps, listeners, shutdown)
                .await
                .unwrap()
        }));
    }
    {
        let deps = mend_ingest::IngestDeps {
            schemas: Arc::new(mend_ingest::RegistrySchemaSource::new(registry.clone())),
            data_log: data_log.clone(),
            bus: Some(bus.clone()),
            metrics: Metrics::new(),
            health: Health::new(),
        };
        let ingest_config = mend_ingest::IngestConfig::from_mend(&config).unwrap();
        let shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            mend_ingest::run(ingest_config, deps, ingest_l, shutdown)
                .await
                .unwrap()
        }));
    }
    let trainer = if options.trainer {
        let deps = mend_trainer::TrainerDeps {
            bus: bus.clone(),
            data_log: data_log.clone(),
            registry: registry.clone(),
            metrics: Metrics::new(),
        };
        let trainer_config = mend_trainer::TrainerConfig::from_mend(&config).unwrap();
        Some(
            mend_trainer::Trainer::start(trainer_config, deps, shutdown.token())
                .await
                .unwrap(),
        )
    } else {
        None
    };
    if options.monitor {
        let deps = mend_monitor::MonitorDeps {
            champions: Arc::new(mend_monitor::RegistryChampionSource::new(registry.clone())),
            data_log: data_log.clone(),
            bus: Some(bus.clone()),
            metrics: Metrics::new(),
        };
        let monitor_config = mend_monitor::MonitorConfig::from_mend(&config).unwrap();
        let shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            mend_monitor::run(monitor_config, deps, monitor_l, shutdown)
                .await
                .unwrap()
        }));
    }
    let oip = GrpcInferenceServiceClient::new(
        Endpoint::from_shared(format!("http://{server_addr}"))
            .unwrap()
            .connect_lazy(),
    );
    let ingest = ingest_pb::ingest_client::IngestClient::with_interceptor(
        Endpoint::from_shared(format!("http://{ingest_addr}"))
            .unwrap()
            .connect_lazy(),
        TraceContextInterceptor,
    );
    Stack {
        nats,
        bus,
        data_log,
        registry,
        registry_addr,
        oip,
        ingest,
        trainer,
        registry_service,
        vars,
        events,
        answered_once: false,
        shutdown,
        tasks,
        next_id: 0,
        next_time: FIRST_TIME_MS,
        _dir: dir,
    }
}

impl Stack {
    /// Trains the first model offline on 4,000 rows of the old world and makes it champion.
    pub async fn seed_champion(&self, world: &mut Generator) {
        let (_, meta) =
            seed_trained_champion(&self.registry, MODEL, world, 4_000, "e2e", "seed").await;
        assert_eq!(meta.version, 1);
    }

    /// Waits until the server answers `probe`, then returns (version, labels).
    pub async fn first_answer(
        &mut self,
        world: &Generator,
        probe: &Sample,
    ) -> (String, Vec<String>) {
        for _ in 0..100 {
            let request = self
                .oip
                .model_infer(ModelInferRequest {
                    model_name: MODEL.into(),
                    ..Default::default()
                })
                .await;
            if !matches!(&request, Err(s) if s.code() == tonic::Code::NotFound || s.code() == tonic::Code::Unavailable)
            {
                let answer = infer(&mut self.oip, world, probe).await.unwrap();
                self.answered_once = true;
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server never loaded the champion");
    }

    /// Rows, then their labels, through the ingest service; ids and event times continue
    /// where the previous call left off, so newer calls hold newer rows.
    pub async fn ingest(&mut self, world: &Generator, sample: &Sample, prefix: &str) {
        let (rows, labels) = world.to_records(sample, prefix, self.next_id, self.next_time);
        self.next_id += rows.len() as u64;
        self.next_time += rows.len() as i64;
        let batches: Vec<ingest_pb::RowBatch> = rows
            .chunks(1_000)
            .map(|c| mend_client::ingest::row_batch(MODEL, c))
            .collect();
        let summary = self
            .ingest
            .ingest_rows(tokio_stream::iter(batches))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((summary.accepted, summary.rejected), (rows.len() as u64, 0));
        let label_batches: Vec<ingest_pb::LabelBatch> = labels
            .chunks(1_000)
            .map(|c| mend_client::ingest::label_batch(MODEL, c))
            .collect();
        let summary = self
            .ingest
            .ingest_labels(tokio_stream::iter(label_batches))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (summary.accepted, summary.rejected),
            (labels.len() as u64, 0)
        );
    }

    /// Rows, then labels, straight into the data log (for windows too big to send through
    /// ingest quickly); ids and times continue like [`Stack::ingest`].
    pub async fn append(&mut self, world: &Generator, sample: &Sample, prefix: &str) {
        let (rows, labels) = world.to_records(sample, prefix, self.next_id, self.next_time);
        self.next_id += rows.len() as u64;
        self.next_time += rows.len() as i64;
        for chunk in rows.chunks(5_000) {
            self.data_log.append_rows(&model(), chunk).await.unwrap();
        }
        for chunk in labels.chunks(5_000) {
            self.data_log.append_labels(&model(), chunk).await.unwrap();
        }
    }

    /// Publishes raw JSON on a subject, as `nats pub` would, and waits until the server has it.
    pub async fn publish_raw(&self, subject: String, json: String) {
        let raw = async_nats::connect(self.nats.url()).await.unwrap();
        raw.publish(subject, Bytes::from(json)).await.unwrap();
        raw.flush().await.unwrap();
    }

    /// Polls the server until it answers with `version`; returns its labels for `probe`, and
    /// every request that failed on the way once the server had answered a first time (a
    /// swap, a dependency restarting or a registry outage must fail none: callers assert
    /// that). Before the server's first answer, NOT_FOUND and UNAVAILABLE mean it is still
    /// loading its first champion, and are not counted.
    pub async fn answer_from(
        &mut self,
        version: &str,
        world: &Generator,
        probe: &Sample,
        seconds: u64,
    ) -> Answered {
        let mut last = None;
        let mut errors = Vec::new();
        for _ in 0..seconds * 10 {
            match infer(&mut self.oip, world, probe).await {
                Ok((v, labels)) => {
                    self.answered_once = true;
                    if v == version {
                        return Answered { labels, errors };
                    }
                    last = Some(Ok(v));
                }
                Err(status) => {
                    let loading = matches!(
                        status.code(),
                        tonic::Code::NotFound | tonic::Code::Unavailable
                    );
                    if self.answered_once || !loading {
                        errors.push(status.clone());
                    }
                    last = Some(Err(status));
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "version {version} was not served within {seconds} s; last answer: {last:?}; failed requests: {errors:?}"
        );
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

    /// Takes in every `model.*` event announced within `wait`.
    pub async fn drain(&mut self, wait: Duration) {
        self.events.drain(wait).await;
    }

    /// How many distinct events (by id) seen so far match `predicate`.
    pub fn count(&self, predicate: impl Fn(&Event) -> bool) -> usize {
        let mut ids: Vec<&str> = self
            .events
            .seen
            .iter()
            .filter(|e| predicate(&e.event))
            .map(|e| e.id.as_str())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    /// The champion alias moves in the audit log: (version, previous version), oldest first.
    pub async fn champion_moves(&self) -> Vec<(u64, Option<u64>)> {
        champion_moves(&self.registry, MODEL).await
    }

    pub async fn versions(&self) -> Vec<registry_pb::VersionMetadata> {
        self.registry.list_versions(MODEL).await.unwrap()
    }

    pub async fn champion_version(&self) -> Option<u64> {
        mend_trainer::registry::champion_version(&self.registry, MODEL)
            .await
            .unwrap()
    }

    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(trainer) = self.trainer.take() {
            tokio::time::timeout(Duration::from_secs(30), trainer.wait())
                .await
                .expect("the trainer stops");
        }
        for task in self.tasks.drain(..) {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("services stop")
                .unwrap();
        }
        self.registry_service.stop().await.unwrap();
        drop(self.nats);
    }
}

/// `target/debug/mend-trainer` next to this test's own binary (`target/debug/deps/…`);
/// built with cargo when it is not there (a workspace test run builds it already).
pub fn trainer_binary() -> PathBuf {
    service_binary("mend-trainer")
}

/// `target/<profile>/<name>` (a service binary, whose package has the same name) next to this
/// test's own binary; built with cargo when it is not there.
pub fn service_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in target/<profile>/deps")
        .to_path_buf();
    let binary = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        let cargo = option_env!("CARGO").unwrap_or("cargo");
        let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", name, "--bin", name])
            .args(["--profile", profile])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build -p {name} failed");
    }
    assert!(binary.exists(), "{} is missing", binary.display());
    binary
}
