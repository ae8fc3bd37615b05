//! The client's request builders against the real services, on loopback ports: `oip`'s
//! requests answered by the inference server (`mend_server::run`, reading the champion from
//! the real registry), whose labels `oip::labels` reads back; `ingest`'s batches stored by the
//! ingest service (`mend_ingest::run`, validating against the champion's schema from the real
//! registry) exactly as built. The services' failures, turned into `ClientError`, keep their
//! kind and message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mend_bus::{DataLog, DataLogExt, ModelName, SqliteDataLog, Window};
use mend_client::ClientError;
use mend_client::ingest::{label_batch, row_batch};
use mend_client::oip::{labels, sample_request};
use mend_core::record::{LabelRecord, RowRecord};
use mend_core::{Artifact, Column, Frame};
use mend_ingest::{IngestConfig, IngestDeps, RegistrySchemaSource};
use mend_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use mend_proto::inference::model_infer_request::InferRequestedOutputTensor;
use mend_proto::ingest::v1 as ingest_pb;
use mend_runtime::{Health, Metrics, Shutdown};
use mend_server::{Listeners, RegistryModelSource, ServerConfig, ServerDeps};
use mend_testkit::registry::{TestRegistry, seed_trained_champion};
use mend_testkit::{Patience, eventually};
use mend_worlds::{Generator, Regime, Sample, SyntheticSpec};
use support::{TOKEN, start_registry};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

const MODEL: &str = "churn";
/// The ingest service's batch limit in these tests.
const BATCH: usize = 100;

/// A service task on a loopback port.
struct Running<E> {
    addr: SocketAddr,
    shutdown: Shutdown,
    task: JoinHandle<Result<(), E>>,
}

impl<E: Debug> Running<E> {
    fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_lazy()
    }

    async fn stop(self) {
        self.shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the service stops within 10 s")
            .unwrap()
            .unwrap();
    }
}

/// A model of the default synthetic world (five numeric features, one categorical, classes
/// `no` and `yes`) and that world, made champion of `churn` in the registry.
async fn seeded(registry: &TestRegistry) -> (Artifact, Generator) {
    let mut world = Generator::new(SyntheticSpec {
        seed: 17,
        ..SyntheticSpec::default()
    });
    let writer = registry.client(Some(TOKEN));
    let (artifact, _) =
        seed_trained_champion(&writer, MODEL, &mut world, 1_000, "test", "seed").await;
    (artifact, world)
}

/// The inference server, reading champions from `registry` (no bus: its reconcile loop).
async fn start_server(registry: &TestRegistry) -> Running<mend_server::ServerError> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let endpoint = Endpoint::from_shared(format!("http://{}", registry.addr)).unwrap();
    let deps = ServerDeps {
        source: Arc::new(RegistryModelSource::connect_lazy(&endpoint)),
        bus: None,
        data_log: None,
        metrics: Metrics::new(),
        health: Health::new(),
    };
    let config = ServerConfig {
        reconcile_interval: Duration::from_millis(200),
        sample_rate: 0.0,
        ..ServerConfig::default()
    };
    let shutdown = Shutdown::new();
    let listeners = Listeners {
        grpc: listener,
        http: None,
    };
    let task = tokio::spawn(mend_server::run(config, deps, listeners, shutdown.clone()));
    Running {
        addr,
        shutdown,
        task,
    }
}

/// The ingest service, validating against the champions' schemas in `registry`, storing in
/// `data_log`, at most [`BATCH`] records a batch.
async fn start_ingest(
    registry: &TestRegistry,
    data_log: Arc<dyn DataLog>,
) -> Running<mend_ingest::IngestServiceError> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let deps = IngestDeps {
        schemas: Arc::new(RegistrySchemaSource::new(registry.client(None))),
        data_log,
        bus: None,
        metrics: Metrics::new(),
        health: Health::new(),
    };
    let config = IngestConfig {
        max_batch_rows: BATCH,
        ..IngestConfig::default()
    };
    let shutdown = Shutdown::new();
    let task = tokio::spawn(mend_ingest::run(config, deps, listener, shutdown.clone()));
    Running {
        addr,
        shutdown,
        task,
    }
}

/// The rows of `sample` as a frame, for the artifact's own predictions.
fn frame_of(sample: &Sample) -> Frame {
    let n = sample.labels.len();
    let mut columns: Vec<Column> = (0..sample.numeric.ncols())
        .map(|j| Column::Numeric(sample.numeric.column(j).to_vec()))
        .collect();
    columns.extend(
        sample
            .categorical
            .iter()
            .map(|values| Column::Categorical(values.iter().cloned().map(Some).collect())),
    );
    Frame {
        ids: (0..n).map(|i| i.to_string()).collect(),
        times: (0..n as i64).collect(),
        columns,
        labels: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_requests_get_the_champions_labels_and_failures_keep_their_kind() {
    let mut registry = start_registry(None).await;
    let (artifact, mut world) = seeded(&registry).await;
    let server = start_server(&registry).await;
    let mut inference = GrpcInferenceServiceClient::new(server.channel());
    world.reseed(5);
    let sample = world.sample(200, &Regime::default());
    let names = world.feature_names();
    let request = sample_request(MODEL, &names, &sample);

    // The first answer, once the server has loaded the champion from the registry.
    let response = eventually(Patience::seconds(30), "an answer from the champion", || {
        let mut inference = inference.clone();
        let request = request.clone();
        async move { inference.model_infer(request).await.ok() }
    })
    .await
    .into_inner();
    assert_eq!(response.model_version, "1");
    let proba = artifact.predict_proba(&frame_of(&sample)).unwrap();
    let expected: Vec<String> = artifact
        .labels_of(&proba)
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        expected.iter().collect::<BTreeSet<_>>().len(),
        2,
        "the sample should get both classes: {expected:?}"
    );
    assert_eq!(labels(&response), expected);
    // Without a `label` output there are no labels to read.
    let mut probabilities_only = request;
    probabilities_only.outputs = vec![InferRequestedOutputTensor {
        name: "probabilities".into(),
        parameters: Default::default(),
    }];
    let response = inference
        .model_infer(probabilities_only)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.outputs.len(), 1);
    assert!(labels(&response).is_empty());

    // INVALID_ARGUMENT, with the server's message: the categorical feature left out.
    let partial = sample_request(MODEL, &names[..names.len() - 1], &sample);
    match inference
        .model_infer(partial)
        .await
        .map_err(ClientError::from)
    {
        Err(ClientError::InvalidArgument(message)) => {
            assert!(message.contains("missing input `c0`"), "{message}");
        }
        other => panic!("a request without `c0`: {other:?}"),
    }
    // NOT_FOUND: a model that is not served.
    match inference
        .model_infer(sample_request("ghost", &names, &sample))
        .await
        .map_err(ClientError::from)
    {
        Err(ClientError::NotFound(message)) => assert!(message.contains("ghost"), "{message}"),
        other => panic!("a model that is not served: {other:?}"),
    }
    server.stop().await;
    registry.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_and_label_batches_are_stored_as_built_and_failures_keep_their_kind() {
    let mut registry = start_registry(None).await;
    let (_, mut world) = seeded(&registry).await;
    let dir = tempfile::tempdir().unwrap();
    let data_log: Arc<dyn DataLog> = Arc::new(SqliteDataLog::open(dir.path()).unwrap());
    let ingest = start_ingest(&registry, Arc::clone(&data_log)).await;
    let mut client = ingest_pb::ingest_client::IngestClient::new(ingest.channel());
    world.reseed(6);
    let sample = world.sample(250, &Regime::default());
    let (rows, outcomes) = world.to_records(&sample, "row-", 0, 1_700_000_000_000);

    let row_batches: Vec<ingest_pb::RowBatch> = rows
        .chunks(BATCH)
        .map(|chunk| row_batch(MODEL, chunk))
        .collect();
    assert_eq!(row_batches.len(), 3);
    let summary = client
        .ingest_rows(tokio_stream::iter(row_batches))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (summary.accepted, summary.rejected),
        (250, 0),
        "{:?}",
        summary.rejected_rows
    );
    let label_batches: Vec<ingest_pb::LabelBatch> = outcomes
        .chunks(BATCH)
        .map(|chunk| label_batch(MODEL, chunk))
        .collect();
    let summary = client
        .ingest_labels(tokio_stream::iter(label_batches))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (summary.accepted, summary.rejected),
        (250, 0),
        "{:?}",
        summary.rejected_rows
    );

    // The data log holds what the batches carried, value for value.
    let model = ModelName::new(MODEL).unwrap();
    let mut stored_rows: Vec<RowRecord> = data_log
        .read_rows(&model, &Window::last(1_000))
        .await
        .unwrap()
        .into_iter()
        .map(|logged| logged.record)
        .collect();
    stored_rows.sort_by(|a, b| a.id.cmp(&b.id));
    let mut sent_rows = rows.clone();
    sent_rows.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(stored_rows, sent_rows);
    let mut stored_labels: Vec<LabelRecord> = data_log
        .read_labels(&model, &Window::last(1_000))
        .await
        .unwrap()
        .into_iter()
        .map(|logged| logged.record)
        .collect();
    stored_labels.sort_by(|a, b| a.row_id.cmp(&b.row_id));
    let mut sent_labels = outcomes;
    sent_labels.sort_by(|a, b| a.row_id.cmp(&b.row_id));
    assert_eq!(stored_labels, sent_labels);

    // INVALID_ARGUMENT, with the service's message: a batch over the limit.
    let too_many = row_batch(MODEL, &rows[..BATCH + 1]);
    match client
        .ingest_rows(tokio_stream::iter(vec![too_many]))
        .await
        .map_err(ClientError::from)
    {
        Err(ClientError::InvalidArgument(message)) => {
            assert!(message.contains(&format!("at most {BATCH}")), "{message}");
        }
        other => panic!("a batch over the limit: {other:?}"),
    }
    ingest.stop().await;
    registry.stop().await.unwrap();
}
