#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Chaos: the heal loop over five service processes (`mend-registry`, `mend-server`,
//! `mend-ingest`, `mend-monitor`, `mend-trainer`) and a real `nats-server -js`, while each of
//! them is killed with SIGKILL (NATS: stopped) at random moments and started again. A producer
//! sends the rows and labels of a flipped world through ingest, retrying each batch until it is
//! acknowledged, and a client keeps asking the server for predictions. At the end:
//!
//! - every acknowledged row and label is in the data log exactly once;
//! - every champion move in the registry's audit log was announced exactly once;
//! - the loop finished: a retrained version serves;
//! - no inference request failed except while the server itself was down or starting.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mend_bus::{DataLogExt, JetStreamBus, JetStreamConfig, JetStreamDataLog, Window};
use mend_client::RegistryClient;
use mend_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use mend_proto::ingest::v1 as ingest_pb;
use mend_testkit::NatsServer;
use mend_worlds::{Generator, SyntheticSpec};
use rand::Rng;
use support::{MODEL, flipped, loop_settings, model, service_binary};
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tonic::transport::Endpoint;

const SERVICES: [&str; 5] = [
    "mend-registry",
    "mend-server",
    "mend-ingest",
    "mend-monitor",
    "mend-trainer",
];

/// A free loopback address, as the services' variables take it.
fn free_addr() -> String {
    mend_testkit::free_addr().to_string()
}

/// One service process, restartable with the same settings and data directory.
struct Service {
    name: &'static str,
    binary: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Service {
    fn new(name: &'static str, env: Vec<(String, String)>, data_dir: &Path) -> Service {
        let mut env = env;
        env.push((
            "MEND_DATA_DIR".into(),
            data_dir.join(name).display().to_string(),
        ));
        Service {
            name,
            binary: service_binary(name),
            env,
            child: None,
        }
    }

    fn start(&mut self) {
        let mut command = Command::new(&self.binary);
        command
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        self.child = Some(command.spawn().expect("the service starts"));
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

/// When the server was down: from its kill until it answered a request sent after it was
/// started again (an answer already on its way when the kill came does not end the outage).
#[derive(Default)]
struct Outages {
    server_down_since: Option<Instant>,
    /// When the killed server was started again (`None` while it is down).
    server_restarted_at: Option<Instant>,
    windows: Vec<(Instant, Instant)>,
}

async fn with_retry<T, F, Fut>(what: &str, seconds: u64, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        match call().await {
            Ok(value) => return value,
            Err(status) => {
                assert!(
                    Instant::now() < deadline,
                    "{what}: still failing after {seconds} s: {status:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Sends a batch until ingest stores it: an error, or nothing accepted (the model is unknown
/// while the registry is down), means send it again.
async fn send_until_accepted<F, Fut>(what: &str, mut send: F) -> ingest_pb::IngestSummary
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<ingest_pb::IngestSummary, tonic::Status>>,
{
    with_retry(what, 90, || {
        let sent = send();
        async move {
            let summary = sent.await?;
            if summary.accepted == 0 {
                return Err(tonic::Status::unavailable(format!("{summary:?}")));
            }
            Ok(summary)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_loop_heals_and_loses_nothing_while_services_and_nats_are_killed() {
    let nats = Arc::new(tokio::sync::Mutex::new(
        tokio::task::spawn_blocking(NatsServer::start)
            .await
            .unwrap()
            .unwrap(),
    ));
    let nats_url = nats.lock().await.url();
    let dir = tempfile::tempdir().unwrap();
    let (registry_addr, server_addr, ingest_addr) = (free_addr(), free_addr(), free_addr());
    let env: Vec<(String, String)> = [
        ("MEND_NATS_URL", nats_url.clone()),
        ("MEND_REGISTRY_ADDR", registry_addr.clone()),
        ("MEND_SERVER_ADDR", server_addr.clone()),
        ("MEND_INGEST_ADDR", ingest_addr.clone()),
        ("MEND_HTTP_ADDR", "127.0.0.1:0".into()),
        ("MEND_LOG", "warn".into()),
    ]
    .into_iter()
    .chain(loop_settings())
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut services: Vec<Service> = SERVICES
        .iter()
        .map(|name| Service::new(name, env.clone(), dir.path()))
        .collect();

    // The registry first, and a champion trained on the old world.
    services[0].start();
    let endpoint = Endpoint::from_shared(format!("http://{registry_addr}")).unwrap();
    let registry = RegistryClient::connect_lazy(&endpoint, None);
    let (v1, mut world) = mend_testkit::artifacts::train_on(SyntheticSpec::default(), 4_000);
    let schema = v1.schema.clone();
    let artifact = bytes::Bytes::from(v1.to_bytes().unwrap());
    with_retry("seeding the champion", 30, || {
        let (registry, artifact, hash) = (registry.clone(), artifact.clone(), schema.hash());
        async move {
            registry
                .seed_champion(MODEL, hash, artifact, "chaos", "seed")
                .await
                .map_err(|error| tonic::Status::unavailable(error.to_string()))
        }
    })
    .await;
    for service in &mut services[1..] {
        service.start();
    }

    // Predictions all along; failures are timed, to be checked against the server's outages.
    let oip = GrpcInferenceServiceClient::new(
        Endpoint::from_shared(format!("http://{server_addr}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(2))
            .connect_lazy(),
    );
    world.reseed(41);
    let probe = world.sample(50, &flipped());
    let features = world.feature_names();
    let outages = Arc::new(Mutex::new(Outages::default()));
    let stop = tokio_util::sync::CancellationToken::new();
    let failures: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let versions_seen: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    // Wait until the server answers before the chaos starts.
    with_retry("the server's first answer", 60, || {
        let mut oip = oip.clone();
        let request = mend_client::oip::sample_request(MODEL, &features, &probe);
        async move { oip.model_infer(request).await }
    })
    .await;
    let predicting = {
        let (oip, stop, failures, versions_seen, outages) = (
            oip.clone(),
            stop.clone(),
            Arc::clone(&failures),
            Arc::clone(&versions_seen),
            Arc::clone(&outages),
        );
        let request = mend_client::oip::sample_request(MODEL, &features, &probe);
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let mut oip = oip.clone();
                let sent = Instant::now();
                match oip.model_infer(request.clone()).await {
                    Ok(response) => {
                        let mut outages = outages.lock().unwrap();
                        let after_restart = outages
                            .server_restarted_at
                            .is_some_and(|restarted| sent >= restarted);
                        if after_restart && let Some(since) = outages.server_down_since.take() {
                            outages.windows.push((since, Instant::now()));
                            outages.server_restarted_at = None;
                        }
                        *versions_seen
                            .lock()
                            .unwrap()
                            .entry(response.into_inner().model_version)
                            .or_default() += 1;
                    }
                    Err(status) => failures
                        .lock()
                        .unwrap()
                        .push((Instant::now(), format!("{status:?}"))),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // The producer: the flipped world in batches, each retried until acknowledged.
    let ingest = ingest_pb::ingest_client::IngestClient::new(
        Endpoint::from_shared(format!("http://{ingest_addr}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(5))
            .connect_lazy(),
    );
    let producing = {
        let ingest = ingest.clone();
        let mut world = Generator::new(SyntheticSpec::default());
        tokio::spawn(async move {
            let mut acked_rows = Vec::new();
            for batch in 0..16u64 {
                world.reseed(100 + batch);
                let sample = world.sample(500, &flipped());
                let first_time = 1_800_000_000_000 + batch as i64 * 500;
                let (rows, labels) = world.to_records(&sample, "live-", batch * 500, first_time);
                let row_batch = mend_client::ingest::row_batch(MODEL, &rows);
                let label_batch = mend_client::ingest::label_batch(MODEL, &labels);
                let summary = send_until_accepted("a row batch", || {
                    let (mut ingest, batch) = (ingest.clone(), row_batch.clone());
                    async move {
                        Ok(ingest
                            .ingest_rows(tokio_stream::iter(vec![batch]))
                            .await?
                            .into_inner())
                    }
                })
                .await;
                assert_eq!(summary.accepted, 500, "{summary:?}");
                send_until_accepted("a label batch", || {
                    let (mut ingest, batch) = (ingest.clone(), label_batch.clone());
                    async move {
                        Ok(ingest
                            .ingest_labels(tokio_stream::iter(vec![batch]))
                            .await?
                            .into_inner())
                    }
                })
                .await;
                acked_rows.extend(rows.into_iter().map(|row| row.id));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            acked_rows
        })
    };

    // Chaos while the producer runs: every service and NATS twice, in random order, one at a
    // time, each restarted shortly after.
    let mut plan: Vec<usize> = (0..=SERVICES.len()).chain(0..=SERVICES.len()).collect();
    rand::seq::SliceRandom::shuffle(plan.as_mut_slice(), &mut rand::rng());
    let mut kills: BTreeMap<&str, usize> = BTreeMap::new();
    for victim in plan {
        let pause = rand::rng().random_range(300..1_200);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let down = Duration::from_millis(rand::rng().random_range(200..800));
        if victim == SERVICES.len() {
            *kills.entry("nats-server").or_default() += 1;
            let stopping = Arc::clone(&nats);
            tokio::task::spawn_blocking(move || stopping.blocking_lock().stop().unwrap())
                .await
                .unwrap();
            tokio::time::sleep(down).await;
            let resuming = Arc::clone(&nats);
            tokio::task::spawn_blocking(move || resuming.blocking_lock().resume().unwrap())
                .await
                .unwrap();
        } else {
            let service = &mut services[victim];
            *kills.entry(service.name).or_default() += 1;
            let is_server = service.name == "mend-server";
            if is_server {
                let mut outages = outages.lock().unwrap();
                outages.server_down_since = Some(Instant::now());
                outages.server_restarted_at = None;
            }
            service.kill().await;
            tokio::time::sleep(down).await;
            if is_server {
                outages.lock().unwrap().server_restarted_at = Some(Instant::now());
            }
            service.start();
        }
    }
    let acked_rows = producing.await.unwrap();

    // The loop finishes: a retrained version serves.
    let healed = with_retry("a retrained champion serving", 120, || {
        let mut oip = oip.clone();
        let request = mend_client::oip::sample_request(MODEL, &features, &probe);
        async move {
            let response = oip.model_infer(request).await?.into_inner();
            if response.model_version == "1" {
                return Err(tonic::Status::unavailable("still version 1"));
            }
            Ok(response.model_version)
        }
    })
    .await;
    stop.cancel();
    predicting.await.unwrap();

    // Every acknowledged row and label is stored exactly once.
    let bus = JetStreamBus::connect(&nats_url, JetStreamConfig::default())
        .await
        .unwrap();
    let log = JetStreamDataLog::new(bus.clone());
    let rows = log
        .read_rows(&model(), &Window::sequence(1, None).with_limit(100_000))
        .await
        .unwrap();
    let mut row_count: BTreeMap<&str, usize> = BTreeMap::new();
    for row in &rows {
        *row_count.entry(row.record.id.as_str()).or_default() += 1;
    }
    let labels = log
        .read_labels(&model(), &Window::sequence(1, None).with_limit(100_000))
        .await
        .unwrap();
    let mut label_count: BTreeMap<&str, usize> = BTreeMap::new();
    for label in &labels {
        *label_count.entry(label.record.row_id.as_str()).or_default() += 1;
    }
    for id in &acked_rows {
        assert_eq!(row_count.get(id.as_str()), Some(&1), "row {id}");
        assert_eq!(label_count.get(id.as_str()), Some(&1), "label of {id}");
    }

    // Every champion move was announced exactly once.
    let moves =
        mend_testkit::events::champion_move_ids(&registry.audit(MODEL).await.unwrap(), MODEL);
    let announced = mend_testkit::events::champion_moves_announced(bus.jetstream(), MODEL).await;
    for id in &moves {
        assert_eq!(announced.get(id), Some(&1), "move {id}: {announced:?}");
    }
    assert_eq!(announced.len(), moves.len(), "{announced:?} vs {moves:?}");

    // Inference failed only while the server was down or starting. An outage the prober had
    // not yet seen end when it stopped lasts until now.
    let windows = {
        let mut outages = outages.lock().unwrap();
        if let Some(since) = outages.server_down_since.take() {
            outages.windows.push((since, Instant::now()));
        }
        std::mem::take(&mut outages.windows)
    };
    let failures = std::mem::take(&mut *failures.lock().unwrap());
    let grace = Duration::from_secs(1);
    let outside: Vec<_> = failures
        .iter()
        .filter(|(at, _)| {
            !windows
                .iter()
                .any(|(from, to)| *at >= *from && *at <= *to + grace)
        })
        .collect();
    assert!(
        outside.is_empty(),
        "requests failed while the server was up: {outside:?} (kills {kills:?})"
    );
    let versions_seen = std::mem::take(&mut *versions_seen.lock().unwrap());
    eprintln!(
        "chaos: kills {kills:?}; healed to version {healed}; {} failed requests, all during {} server outages; versions served {versions_seen:?}",
        failures.len(),
        windows.len(),
    );
    for service in &mut services {
        service.kill().await;
    }
}
