#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One heal is one trace. Rows of a flipped world go in through ingest inside a producer's
//! span; the monitor notices the drift and announces it; the trainer retrains, registers and
//! promotes through the registry; the server swaps on the promotion event. Every service
//! runs as a task of this process over a real `nats-server -js`, and every span is collected
//! in memory: the spans each service opened for its part of the heal must all carry the
//! producer's trace id, carried across gRPC metadata, data-log and event headers.
//!
//! A test binary of its own, because it installs the process-wide subscriber and
//! propagator. Services are told apart by span target (the crate: `mend_ingest::…`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use mend_bus::{Bus, DataLog, JetStreamBus, JetStreamConfig, JetStreamDataLog};
use mend_client::RegistryClient;
use mend_core::synthetic::{Generator, Regime, Sample, SyntheticSpec};
use mend_core::{Frame, Schema, SchemaOverride, TrainSettings};
use mend_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use mend_proto::ingest::v1 as ingest_pb;
use mend_proto::registry::v1 as registry_pb;
use mend_runtime::telemetry::propagation::TraceContextInterceptor;
use mend_runtime::{Health, MendConfig, Metrics, Shutdown};
use mend_testkit::NatsServer;
use opentelemetry::global;
use opentelemetry::trace::{TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const MODEL: &str = "churn";
/// The services of a heal, by the crate their spans come from.
const SERVICES: [&str; 5] = [
    "mend_ingest",
    "mend_monitor",
    "mend_trainer",
    "mend_registry",
    "mend_server",
];

/// Keeps every finished span in memory.
#[derive(Clone, Debug, Default)]
struct Collected(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collected {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.0.lock().unwrap().extend(batch);
        std::future::ready(Ok(()))
    }
}

impl Collected {
    /// The crate of each span of `trace`, with the span names seen for it.
    fn services_in(&self, trace: TraceId) -> BTreeMap<String, BTreeSet<String>> {
        let mut services: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for span in self.0.lock().unwrap().iter() {
            if span.span_context.trace_id() != trace {
                continue;
            }
            let target = span
                .attributes
                .iter()
                .find(|kv| kv.key.as_str() == "target")
                .map(|kv| kv.value.as_str().into_owned())
                .unwrap_or_default();
            let service = target.split("::").next().unwrap_or_default().to_owned();
            services
                .entry(service)
                .or_default()
                .insert(span.name.to_string());
        }
        services
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// The process-wide subscriber: mend's spans (and this test's) to an in-memory exporter,
/// and the W3C propagator gRPC metadata is read and written with.
fn install_collector() -> (Collected, SdkTracerProvider) {
    let collected = Collected::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(collected.clone())
        .build();
    // Only mend's spans: h2, hyper and async-nats spans would swamp the exporter.
    let filter = Targets::new()
        .with_target("mend_", tracing::Level::INFO)
        .with_target("trace", tracing::Level::INFO);
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("mend-tests")))
        .with(filter)
        .try_init()
        .expect("the only subscriber in this test binary");
    global::set_text_map_propagator(TraceContextPropagator::new());
    (collected, provider)
}

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

type TracedIngestClient =
    ingest_pb::ingest_client::IngestClient<InterceptedService<Channel, TraceContextInterceptor>>;

struct Stack {
    nats: NatsServer,
    registry: RegistryClient,
    oip: GrpcInferenceServiceClient<Channel>,
    ingest: TracedIngestClient,
    shutdown: Shutdown,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// Registry, server, ingest, trainer and monitor as tasks over one JetStream bus and data
/// log. The server's periodic reconcile is an hour away, so within the test it swaps only
/// on the promotion event.
async fn start() -> Stack {
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
    let vars: HashMap<String, String> = [
        ("MEND_NATS_URL", nats.url()),
        ("MEND_DATA_DIR", dir.path().display().to_string()),
        ("MEND_REGISTRY_ADDR", registry_addr.clone()),
        ("MEND_TRAINER_MIN_ROWS", "500".into()),
        ("MEND_TRAINER_WINDOW_ROWS", "3000".into()),
        ("MEND_TRAINER_DEBOUNCE_MS", "100".into()),
        ("MEND_TRAINER_COOLDOWN_MS", "100".into()),
        ("MEND_SERVER_RECONCILE_MS", "3600000".into()),
        ("MEND_SERVER_MODELS", MODEL.into()),
        ("MEND_MONITOR_MODELS", MODEL.into()),
        ("MEND_MONITOR_WINDOW_ROWS", "1000".into()),
        ("MEND_MONITOR_LABEL_WINDOW", "1000".into()),
        ("MEND_MONITOR_POLL_MS", "100".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = MendConfig::from_map(&vars).unwrap();
    let shutdown = Shutdown::new();
    let endpoint = Endpoint::from_shared(format!("http://{registry_addr}")).unwrap();
    let registry = RegistryClient::connect_lazy(&endpoint, None);

    let mut tasks = Vec::new();
    {
        let (config, shutdown) = (config.clone(), shutdown.clone());
        let deps = mend_registry::RegistryDeps {
            store: Arc::new(store),
            bus: Some(bus.clone()),
        };
        tasks.push(tokio::spawn(async move {
            mend_registry::run(&config, deps, registry_l, shutdown)
                .await
                .unwrap()
        }));
    }
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
    {
        let deps = mend_trainer::TrainerDeps {
            bus: bus.clone(),
            data_log: data_log.clone(),
            registry: registry.clone(),
            metrics: Metrics::new(),
        };
        let (config, shutdown) = (config.clone(), shutdown.clone());
        tasks.push(tokio::spawn(async move {
            mend_trainer::run(&config, deps, shutdown).await.unwrap()
        }));
    }
    {
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
    // A producer that sends its trace context, as an instrumented client would.
    let ingest = ingest_pb::ingest_client::IngestClient::with_interceptor(
        Endpoint::from_shared(format!("http://{ingest_addr}"))
            .unwrap()
            .connect_lazy(),
        TraceContextInterceptor,
    );
    Stack {
        nats,
        registry,
        oip,
        ingest,
        shutdown,
        tasks,
        _dir: dir,
    }
}

impl Stack {
    /// Trains the first model offline on the old world and makes it champion.
    async fn seed_champion(&self, world: &mut Generator) {
        let old = world.sample(4_000, &Regime::default());
        let table = world.to_table(&old, true, 0, 0);
        let schema = Schema::infer(
            &table.headers,
            &table.rows,
            "label",
            &SchemaOverride::default(),
        )
        .unwrap();
        let v1 = mend_core::train(
            &schema,
            &Frame::from_table(&schema, &table, true).unwrap(),
            &TrainSettings::default(),
        )
        .unwrap();
        let header = registry_pb::RegisterVersionHeader {
            model: MODEL.into(),
            schema_hash: schema.hash(),
            trigger: Some(registry_pb::Trigger {
                event_id: "seed".into(),
                kind: registry_pb::TriggerKind::Initial as i32,
            }),
            actor: "e2e".into(),
            reason: "first model".into(),
            ..Default::default()
        };
        let meta = self
            .registry
            .register(header, Bytes::from(v1.to_bytes().unwrap()))
            .await
            .unwrap();
        assert_eq!(meta.version, 1);
        self.registry
            .set_alias(registry_pb::SetAliasRequest {
                model: MODEL.into(),
                alias: "champion".into(),
                version: 1,
                expected: Some(registry_pb::AliasPrecondition {
                    state: Some(registry_pb::alias_precondition::State::Absent(true)),
                }),
                actor: "e2e".into(),
                reason: "first model".into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    /// The version the server answers `probe` with, once it answers at all.
    async fn served_version(&mut self, world: &Generator, probe: &Sample) -> Option<String> {
        let request = mend_client::oip::sample_request(MODEL, &world.feature_names(), probe);
        let response = self.oip.model_infer(request).await.ok()?;
        Some(response.into_inner().model_version)
    }

    /// Polls until the server answers with `version`.
    async fn wait_for_version(
        &mut self,
        version: &str,
        world: &Generator,
        probe: &Sample,
        seconds: u64,
    ) {
        for _ in 0..seconds * 10 {
            if self.served_version(world, probe).await.as_deref() == Some(version) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("version {version} was not served within {seconds} s");
    }

    /// Rows, then their labels, through the ingest service (in the caller's span).
    async fn ingest(&mut self, world: &Generator, sample: &Sample, prefix: &str) {
        let (rows, labels) = world.to_records(sample, prefix, 0, 1_700_000_000_000);
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

    async fn stop(self) {
        self.shutdown.trigger();
        for task in self.tasks {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("services stop")
                .unwrap();
        }
        drop(self.nats);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_heal_is_one_trace_across_every_service() {
    let (collected, provider) = install_collector();
    let mut stack = start().await;
    let mut world = Generator::new(SyntheticSpec::default());
    stack.seed_champion(&mut world).await;
    let flipped = Regime {
        flip: true,
        ..Regime::default()
    };
    world.reseed(31);
    let probe = world.sample(200, &flipped);
    stack.wait_for_version("1", &world, &probe, 30).await;

    // A producer sends the changed world in one traced operation; no one asks for a retrain.
    let producer = tracing::info_span!("producer sends the flipped world");
    let heal_trace = producer.context().span().span_context().trace_id();
    assert_ne!(heal_trace, TraceId::INVALID, "the collector records spans");
    world.reseed(32);
    let fresh = world.sample(3_000, &flipped);
    stack
        .ingest(&world, &fresh, "live-")
        .instrument(producer.clone())
        .await;
    drop(producer);

    // The monitor notices, the trainer heals, the registry promotes, the server swaps.
    stack.wait_for_version("2", &world, &probe, 60).await;

    // The server's swap span ends after it starts serving v2: wait for it to be exported.
    let mut services = BTreeMap::new();
    for _ in 0..100 {
        services = collected.services_in(heal_trace);
        if SERVICES
            .iter()
            .all(|service| services.contains_key(*service))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let missing: Vec<&str> = SERVICES
        .iter()
        .copied()
        .filter(|service| !services.contains_key(*service))
        .collect();
    assert!(
        missing.is_empty(),
        "services {missing:?} have no span in the heal's trace {heal_trace}; it holds {services:#?} ({} spans collected)",
        collected.count()
    );
    // Each service's span is the one for its step of the heal, not an incidental one.
    for (service, step) in [
        ("mend_ingest", "ingest_batch"),
        ("mend_monitor", "announce_drift"),
        ("mend_trainer", "retrain"),
        ("mend_registry", "set_alias"),
        ("mend_server", "swap_on_event"),
    ] {
        assert!(
            services[service].contains(step),
            "{service} has no `{step}` span in the heal's trace: {services:#?}"
        );
    }

    stack.stop().await;
    provider.shutdown().unwrap();
}
