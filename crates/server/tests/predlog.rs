//! The prediction log: sampled rows reach the data log with their ids, inputs and outputs;
//! the rate is honoured; a stuck data log drops samples but never slows inference.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use common::{Rows, SOON, Setup, start, tensor, train};
use mend_bus::{
    DataKind, DataLog, DataLogError, DataLogExt, ModelName, RawEntry, SqliteDataLog, Window,
};
use mend_core::record::Value;
use mend_proto::inference::InferTensorContents;
use mend_server::{InMemoryModelSource, ServerConfig};
use mend_testkit::eventually;

fn config(sample_rate: f64, log_queue: usize) -> ServerConfig {
    ServerConfig {
        sample_rate,
        log_queue,
        reconcile_interval: Duration::from_secs(30),
        ..ServerConfig::default()
    }
}

/// A server sampling every row into `data_log`, serving a model trained with `seed` as the
/// champion of `churn`, and 3 rows of its world (drawn with `rows_seed`) it has answered.
async fn logging_server(
    data_log: Arc<dyn DataLog>,
    seed: u64,
    rows_seed: u64,
) -> (common::TestServer, Rows) {
    let source = Arc::new(InMemoryModelSource::new());
    let mut trained = train(2, 1, 2, seed);
    source.promote("churn", trained.bytes.clone());
    let mut setup = Setup::new(Arc::clone(&source));
    setup.data_log = Some(data_log);
    setup.config = config(1.0, 64);
    let server = start(setup).await;
    let rows = Rows::draw(&mut trained.generator, 3, rows_seed);
    server
        .wait_for_champion(&rows.per_feature("churn", false), 1)
        .await;
    (server, rows)
}

#[tokio::test]
async fn sampled_rows_reach_the_data_log_with_their_ids() {
    let dir = tempfile::tempdir().unwrap();
    let data_log = Arc::new(SqliteDataLog::open(dir.path()).unwrap());
    let (server, rows) = logging_server(data_log.clone(), 51, 8).await;
    let mut client = server.client().await;
    let model = ModelName::new("churn").unwrap();
    let before = data_log
        .read_predictions(&model, &Window::last(10_000))
        .await
        .unwrap()
        .len();

    let mut request = rows.per_feature("churn", true);
    request.id = "req-1".into();
    let response = client.model_infer(request).await.unwrap();
    let got = common::answer(response.get_ref());
    let mut named = rows.per_feature("churn", false);
    named.inputs.push(tensor(
        "row_id",
        "BYTES",
        vec![3],
        Some(InferTensorContents {
            bytes_contents: vec![Bytes::from("a"), Bytes::from("b"), Bytes::from("c")],
            ..Default::default()
        }),
    ));
    client.model_infer(named).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let logged = loop {
        let logged = data_log
            .read_predictions(&model, &Window::last(10_000))
            .await
            .unwrap();
        if logged.len() >= before + 6 {
            break logged;
        }
        assert!(Instant::now() < deadline, "samples did not arrive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let records: Vec<_> = logged[before..].iter().map(|l| l.record.clone()).collect();
    let ids: Vec<&str> = records.iter().map(|r| r.row_id.as_str()).collect();
    assert_eq!(ids, vec!["req-1/0", "req-1/1", "req-1/2", "a", "b", "c"]);
    let first = &records[0];
    assert_eq!(first.model_version, 1);
    assert_eq!(first.probabilities, got.probabilities[..2].to_vec());
    assert_eq!(first.label, got.labels[0]);
    assert_eq!(first.values["x0"], Value::Number(rows.numeric[0][0]));
    assert_eq!(
        first.values["c0"],
        Value::Text(rows.categorical[0][0].clone())
    );
    let text = server.metrics.encode().unwrap();
    assert!(
        text.contains("mend_prediction_log_samples_total{model=\"churn\"}"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_sample_rate_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let data_log = Arc::new(SqliteDataLog::open(dir.path()).unwrap());
    let source = Arc::new(InMemoryModelSource::new());
    let mut trained = train(2, 0, 2, 52);
    source.promote("m", trained.bytes.clone());
    let mut setup = Setup::new(Arc::clone(&source));
    setup.data_log = Some(data_log.clone());
    setup.config = config(0.25, 64);
    let server = start(setup).await;
    let mut client = server.client().await;
    let rows = Rows::draw(&mut trained.generator, 10, 9);
    // Readiness probes are served rows too; count from a clean slate after them.
    server
        .wait_for_champion(&rows.matrix("m", false, false), 1)
        .await;
    let model = ModelName::new("m").unwrap();
    // The rows served so far (the probes) and so the samples they owe: one in four, the first
    // row included. Counting starts once those are in the log, not after a fixed wait.
    let served: u64 = server
        .metrics
        .encode()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("mend_inference_rows_total{") && l.contains("model=\"m\""))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum::<f64>() as u64;
    let before = served.div_ceil(4) as usize;
    let logged = || {
        let data_log = data_log.clone();
        let model = model.clone();
        async move {
            data_log
                .read_predictions(&model, &Window::last(100_000))
                .await
                .unwrap()
                .len()
        }
    };
    eventually(SOON, "the probes' samples logged", || async {
        logged().await == before
    })
    .await;
    for _ in 0..20 {
        client
            .model_infer(rows.matrix("m", true, false))
            .await
            .unwrap();
    }
    // 200 rows at one in four: 50 more once the writer caught up...
    eventually(SOON, "50 more rows logged", || async {
        logged().await >= before + 50
    })
    .await;
    // ...and exactly 50 once the server has stopped and its writer drained: a sampler that
    // took too many would show here, not only while the count was passing through 50.
    server.stop().await;
    assert_eq!(logged().await, before + 50);
}

/// A data log that never finishes an append, like a bus that hangs.
#[derive(Debug)]
struct StuckLog;

#[async_trait]
impl DataLog for StuckLog {
    async fn append_keyed(
        &self,
        _: &ModelName,
        _: DataKind,
        _: Vec<(Bytes, Option<String>)>,
    ) -> Result<Vec<mend_bus::Stored>, DataLogError> {
        std::future::pending().await
    }
    async fn read_raw(
        &self,
        _: &ModelName,
        _: DataKind,
        _: &Window,
    ) -> Result<Vec<RawEntry>, DataLogError> {
        Ok(Vec::new())
    }
    async fn latest_seq(&self, _: &ModelName, _: DataKind) -> Result<Option<u64>, DataLogError> {
        Ok(None)
    }
}

#[tokio::test]
async fn a_stuck_data_log_drops_samples_and_never_slows_inference() {
    let source = Arc::new(InMemoryModelSource::new());
    let mut trained = train(2, 0, 2, 53);
    source.promote("m", trained.bytes.clone());
    let mut setup = Setup::new(Arc::clone(&source));
    setup.data_log = Some(Arc::new(StuckLog));
    setup.config = config(1.0, 2);
    let server = start(setup).await;
    let mut client = server.client().await;
    let rows = Rows::draw(&mut trained.generator, 5, 10);
    server
        .wait_for_champion(&rows.matrix("m", false, false), 1)
        .await;
    // The log never finishes an append: a request that waited for it would never be answered,
    // so all 200 answered at all is the proof (the bound only keeps a broken build from hanging).
    let answered = tokio::time::timeout(Duration::from_secs(60), async {
        for _ in 0..200 {
            client
                .model_infer(rows.matrix("m", false, false))
                .await
                .unwrap();
        }
    })
    .await;
    assert!(answered.is_ok(), "inference waited for the stuck log");
    let text = server.metrics.encode().unwrap();
    let dropped: f64 = text
        .lines()
        .find(|l| l.starts_with("mend_prediction_log_dropped_total{model=\"m\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    // At most a few batches fit in the queue or the stuck append; the rest are dropped.
    assert!(dropped >= 5.0 * 195.0, "dropped {dropped}\n{text}");
    // Shutdown is not held up by the stuck writer: the server's task ends (it would wait for
    // the append forever otherwise; the bound only keeps a broken build from hanging).
    server.shutdown.trigger();
    let stopped = tokio::time::timeout(Duration::from_secs(30), server.task).await;
    assert!(stopped.is_ok(), "the stuck writer held up the shutdown");
}

/// A sampled prediction larger than NATS takes (a 2 MiB BYTES input) is dropped and counted on
/// its own; the other rows of the request are logged, and so is the next request: the data
/// log's connection is never cut for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_larger_than_nats_takes_is_dropped_alone() {
    let nats = tokio::task::spawn_blocking(mend_testkit::NatsServer::start)
        .await
        .unwrap()
        .unwrap();
    let bus = mend_bus::JetStreamBus::connect(&nats.url(), mend_bus::JetStreamConfig::default())
        .await
        .unwrap();
    let data_log = Arc::new(mend_bus::JetStreamDataLog::new(bus));
    let (server, rows) = logging_server(data_log.clone(), 53, 9).await;
    let mut client = server.client().await;

    let mut huge = rows.per_feature("churn", false);
    huge.id = "big".into();
    let c0 = huge
        .inputs
        .iter_mut()
        .find(|input| input.name == "c0")
        .unwrap();
    c0.contents.as_mut().unwrap().bytes_contents[1] = Bytes::from(vec![b'z'; 2 << 20]);
    client.model_infer(huge).await.unwrap();
    let mut after = rows.per_feature("churn", false);
    after.id = "after".into();
    client.model_infer(after).await.unwrap();

    let model = ModelName::new("churn").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let ids = loop {
        let logged = data_log
            .read_predictions(&model, &Window::last(100))
            .await
            .unwrap();
        // The probes that waited for the champion were sampled too: only these two requests.
        let ids: Vec<String> = logged
            .iter()
            .map(|l| l.record.row_id.clone())
            .filter(|id| id.starts_with("big/") || id.starts_with("after/"))
            .collect();
        if ids.len() >= 5 {
            break ids;
        }
        assert!(Instant::now() < deadline, "samples did not arrive: {ids:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(ids, ["big/0", "big/2", "after/0", "after/1", "after/2"]);
    let text = server.metrics.encode().unwrap();
    assert!(
        text.contains("mend_prediction_log_dropped_total{model=\"churn\"} 1"),
        "{text}"
    );
    server.stop().await;
}
