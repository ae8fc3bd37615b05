#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The heal loop across services, over a real `nats-server -js`: rows and labels of a changed
//! world go in through ingest; either a user forces a retrain with a raw JSON publish (as with
//! the `nats` CLI) or the monitor notices the drift by itself; the trainer retrains, the registry
//! promotes, and the inference server answers with the new version, whose accuracy on the new
//! world has recovered.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mend_bus::{Bus, DataLog, JetStreamBus, JetStreamConfig, JetStreamDataLog};
use mend_client::RegistryClient;
use mend_core::synthetic::{Generator, Regime, Sample, SyntheticSpec};
use mend_core::{Frame, Schema, SchemaOverride, TrainSettings};
use mend_proto::inference::ModelInferRequest;
use mend_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use mend_proto::ingest::v1 as ingest_pb;
use mend_proto::registry::v1 as registry_pb;
use mend_runtime::{Health, MendConfig, Metrics, Shutdown};
use mend_testkit::NatsServer;
use tokio::net::TcpListener;
use tonic::transport::{Channel, Endpoint};

const MODEL: &str = "churn";

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

/// One OIP request with a tensor per feature; returns (model_version, predicted labels).
async fn infer(
    client: &mut GrpcInferenceServiceClient<Channel>,
    g: &Generator,
    sample: &Sample,
) -> (String, Vec<String>) {
    let mut request = mend_client::oip::sample_request(MODEL, &g.feature_names(), sample);
    request.id = "e2e".into();
    let response = client.model_infer(request).await.unwrap().into_inner();
    let labels = mend_client::oip::labels(&response);
    (response.model_version, labels)
}

fn accuracy(g: &Generator, sample: &Sample, predicted: &[String]) -> f64 {
    let classes = g.class_names();
    let right = sample
        .labels
        .iter()
        .zip(predicted)
        .filter(|(t, p)| classes[**t] == **p)
        .count();
    right as f64 / sample.labels.len() as f64
}

struct Stack {
    nats: NatsServer,
    registry: RegistryClient,
    oip: GrpcInferenceServiceClient<Channel>,
    ingest: ingest_pb::ingest_client::IngestClient<Channel>,
    shutdown: Shutdown,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// Registry, server, ingest and trainer (and the monitor, when asked) as tasks over one
/// JetStream bus and data log, each on its own loopback port.
async fn start(with_monitor: bool) -> Stack {
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
        ("MEND_SERVER_RECONCILE_MS", "1000".into()),
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
    if with_monitor {
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
    let ingest = ingest_pb::ingest_client::IngestClient::new(
        Endpoint::from_shared(format!("http://{ingest_addr}"))
            .unwrap()
            .connect_lazy(),
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

    /// Waits until the server answers `probe`, then returns (version, labels).
    async fn first_answer(&mut self, world: &Generator, probe: &Sample) -> (String, Vec<String>) {
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
                return infer(&mut self.oip, world, probe).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server never loaded the champion");
    }

    /// Rows, then their labels, through the ingest service.
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

    /// Polls the server until it answers with `version`; returns its labels for `probe`.
    async fn answer_from(
        &mut self,
        version: &str,
        world: &Generator,
        probe: &Sample,
        seconds: u64,
    ) -> Vec<String> {
        for _ in 0..seconds * 10 {
            let (v, labels) = infer(&mut self.oip, world, probe).await;
            if v == version {
                return labels;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("version {version} was not served within {seconds} s");
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
async fn a_forced_retrain_heals_a_flipped_concept_across_services() {
    let mut stack = start(false).await;
    let mut world = Generator::new(SyntheticSpec::default());
    stack.seed_champion(&mut world).await;

    // The server comes up serving version 1, which fails on the flipped world.
    let flipped = Regime {
        flip: true,
        ..Regime::default()
    };
    world.reseed(11);
    let probe = world.sample(1_000, &flipped);
    let (version, labels) = stack.first_answer(&world, &probe).await;
    assert_eq!(version, "1");
    let acc_before = accuracy(&world, &probe, &labels);
    assert!(
        acc_before < 0.35,
        "v1 should fail on the flipped world, got {acc_before}"
    );

    // The new world's rows and labels go in through ingest.
    world.reseed(12);
    let fresh = world.sample(5_000, &flipped);
    stack.ingest(&world, &fresh, "new-").await;

    // A user forces a retrain the way they would with `nats pub`.
    let raw = async_nats::connect(stack.nats.url()).await.unwrap();
    raw.publish(
        format!("retrain.requested.{MODEL}"),
        Bytes::from_static(br#"{"v":1,"reason":"the world flipped"}"#),
    )
    .await
    .unwrap();
    raw.flush().await.unwrap();

    // The server swaps to version 2, and it answers the new world well.
    let labels = stack.answer_from("2", &world, &probe, 60).await;
    let acc_after = accuracy(&world, &probe, &labels);
    assert!(
        acc_after > 0.8,
        "v2 should have learned the flipped world, got {acc_after}"
    );

    // The record says why: registered by the trainer for the forced retrain, champion moved once.
    let audit = stack.registry.audit(MODEL).await.unwrap();
    let moves: Vec<(u64, Option<u64>)> = audit
        .iter()
        .filter(|r| r.alias == "champion")
        .map(|r| (r.version, r.previous_version))
        .collect();
    assert_eq!(moves, vec![(1, None), (2, Some(1))]);
    let v2 = stack
        .registry
        .list_versions(MODEL)
        .await
        .unwrap()
        .into_iter()
        .find(|v| v.version == 2)
        .unwrap();
    assert_eq!(
        v2.trigger.unwrap().kind,
        registry_pb::TriggerKind::Forced as i32
    );
    assert_eq!(v2.parent_version, Some(1));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_monitor_notices_a_flipped_concept_and_the_loop_heals_without_a_person() {
    let mut stack = start(true).await;
    let mut world = Generator::new(SyntheticSpec::default());
    stack.seed_champion(&mut world).await;
    let flipped = Regime {
        flip: true,
        ..Regime::default()
    };
    world.reseed(21);
    let probe = world.sample(1_000, &flipped);
    let (version, _) = stack.first_answer(&world, &probe).await;
    assert_eq!(version, "1");

    // Only data goes in: no one asks for a retrain.
    world.reseed(22);
    let fresh = world.sample(3_000, &flipped);
    stack.ingest(&world, &fresh, "live-").await;

    let labels = stack.answer_from("2", &world, &probe, 60).await;
    let acc_after = accuracy(&world, &probe, &labels);
    assert!(
        acc_after > 0.8,
        "the healed model should fit the flipped world, got {acc_after}"
    );
    let v2 = stack
        .registry
        .list_versions(MODEL)
        .await
        .unwrap()
        .into_iter()
        .find(|v| v.version == 2)
        .unwrap();
    assert_eq!(
        v2.trigger.unwrap().kind,
        registry_pb::TriggerKind::Drift as i32,
        "retrained because the monitor saw drift"
    );
    stack.stop().await;
}
