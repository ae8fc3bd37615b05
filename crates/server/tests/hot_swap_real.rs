//! Hot swap on the real path instead of stand-ins: the champion is moved in the real registry
//! (`mend_registry::run` over loopback gRPC, on JetStream storage), which announces every move
//! through its outbox on a real `nats-server -js`; the server reads versions from that registry
//! over gRPC and hears the moves on JetStream. Its reconcile loop is an hour away, so within
//! the test only the announced events can swap it. Eight clients hammer ModelInfer over gRPC
//! throughout five promotions and two rollbacks: no request fails, every answer comes from a
//! version that was champion while its request ran and is that version's prediction, and
//! every version made champion answers the load.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Rows, Setup, answer, start, train, variant};
use mend_bus::events::Event;
use mend_bus::{Bus, ConsumerSpec, EventRecorder, JetStreamBus};
use mend_proto::inference::ModelInferRequest;
use mend_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use mend_server::{RegistryModelSource, ServerConfig};
use mend_testkit::registry::TestRegistry;
use tonic::transport::Channel;

const MODEL: &str = "churn";
const CLIENTS: usize = 8;
/// Versions registered; version k shifts the intercept by k/10, so each answers differently.
const VERSIONS: u64 = 6;
/// The champion, in order: the first one, then five promotions and two rollbacks (a move to a
/// lower version, which the registry announces as `model.rolled_back`): one to the version
/// before (still cached by the server), one to an older one.
const CHAMPIONS: [u64; 8] = [1, 2, 3, 4, 3, 5, 6, 2];
/// Generous: a loaded two-core machine runs nats-server, the registry, the server and the load.
const WAIT: Duration = Duration::from_secs(60);

/// One answered request: when it ran, who answered and with what.
struct Observation {
    started: Instant,
    finished: Instant,
    version: u64,
    probabilities: Vec<f32>,
}

/// Per version, the start of the latest load request it answered.
type LatestStarts = Arc<Mutex<HashMap<u64, Instant>>>;

/// Asks until `version` answers. Once the server has answered, every request on the way must
/// succeed; before (`starting`), it may still be loading its first champion.
async fn until_served(
    client: &mut GrpcInferenceServiceClient<Channel>,
    probe: &ModelInferRequest,
    version: u64,
    starting: bool,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        match client.model_infer(probe.clone()).await {
            Ok(response) if response.get_ref().model_version == version.to_string() => return,
            Ok(_) => {}
            Err(status) if starting => {
                assert!(
                    matches!(
                        status.code(),
                        tonic::Code::NotFound | tonic::Code::Unavailable
                    ),
                    "not a failure of a server still loading: {status:?}"
                );
            }
            Err(status) => {
                panic!("a request failed while waiting for version {version}: {status:?}")
            }
        }
        assert!(
            Instant::now() < deadline,
            "version {version} was not served within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until a load request that started at or after `since` was answered by `version`.
async fn load_answered(latest: &LatestStarts, version: u64, since: Instant) {
    let deadline = Instant::now() + WAIT;
    loop {
        let met = latest
            .lock()
            .unwrap()
            .get(&version)
            .is_some_and(|&started| started >= since);
        if met {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no load request started after version {version} was served got an answer from it within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_and_rollbacks_in_the_real_registry_over_jetstream_fail_no_request() {
    let t0 = Instant::now();
    let nats = tokio::task::spawn_blocking(mend_testkit::NatsServer::start)
        .await
        .unwrap()
        .expect("nats-server starts");
    let jetstream = JetStreamBus::connect(&nats.url(), mend_bus::JetStreamConfig::default())
        .await
        .unwrap();
    let bus: Arc<dyn Bus> = Arc::new(jetstream.clone());
    // What the registry announces, from before its first move.
    let mut announced = EventRecorder::subscribe(
        Arc::clone(&bus),
        ConsumerSpec::new(
            "hot-swap-observer",
            ["model.promoted.*", "model.rolled_back.*"],
        ),
    )
    .await
    .unwrap();
    let store = mend_registry::JetStreamStore::open(
        jetstream.jetstream(),
        mend_registry::JetStreamConfig::default(),
    )
    .await
    .unwrap();
    let mut registry = TestRegistry::setup()
        .store(Arc::new(store))
        .bus(Arc::clone(&bus))
        .start()
        .await;

    let mut trained = train(5, 1, 2, 41);
    let rows = Rows::draw(&mut trained.generator, 4, 11);
    let probe = rows.per_feature(MODEL, false);
    let mut expected = HashMap::new();
    for k in 1..=VERSIONS {
        let bytes = variant(&trained.artifact, k as f64 / 10.0);
        let artifact = mend_core::Artifact::from_bytes(&bytes).unwrap();
        let proba = artifact.predict_proba(&rows.frame()).unwrap();
        expected.insert(k, proba.iter().map(|&p| p as f32).collect::<Vec<f32>>());
        assert_eq!(registry.register(MODEL, bytes).await, k);
    }
    // Each version's answer is its own, so an answer tells who gave it.
    let distinct: BTreeSet<Vec<u32>> = expected
        .values()
        .map(|p| p.iter().map(|x| x.to_bits()).collect())
        .collect();
    assert_eq!(distinct.len(), VERSIONS as usize);

    // Move i made CHAMPIONS[i] champion at `moved_at[i]` (just before the registry call) and
    // was seen served at `confirmed_at[i]`.
    let mut moved_at = vec![Instant::now()];
    registry.set_champion(MODEL, CHAMPIONS[0]).await;
    let setup = Setup {
        source: Arc::new(RegistryModelSource::connect_lazy(&registry.endpoint())),
        bus: Some(Arc::clone(&bus)),
        data_log: None,
        config: ServerConfig {
            reconcile_interval: Duration::from_secs(3600),
            sample_rate: 0.0,
            instance: "hot-swap-real".into(),
            ..ServerConfig::default()
        },
    };
    let server = start(setup).await;
    let mut checker = server.client().await;
    until_served(&mut checker, &probe, CHAMPIONS[0], true).await;
    let mut confirmed_at = vec![Instant::now()];

    let stop = Arc::new(AtomicBool::new(false));
    let latest: LatestStarts = Arc::default();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut client = server.client().await;
        let probe = probe.clone();
        let stop = Arc::clone(&stop);
        let latest = Arc::clone(&latest);
        clients.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let result = client.model_infer(probe.clone()).await;
                let finished = Instant::now();
                match result {
                    Ok(response) => {
                        let got = answer(response.get_ref());
                        let version: u64 = got.version.parse().unwrap();
                        {
                            let mut latest = latest.lock().unwrap();
                            let at = latest.entry(version).or_insert(started);
                            *at = (*at).max(started);
                        }
                        seen.push(Observation {
                            started,
                            finished,
                            version,
                            probabilities: got.probabilities,
                        });
                    }
                    Err(status) => failures.push(status),
                }
            }
            (seen, failures)
        }));
    }
    load_answered(&latest, CHAMPIONS[0], confirmed_at[0]).await;

    // Each move starts once the load has been answered by the champion before it.
    for &version in &CHAMPIONS[1..] {
        moved_at.push(Instant::now());
        registry.set_champion(MODEL, version).await;
        until_served(&mut checker, &probe, version, false).await;
        let confirmed = Instant::now();
        confirmed_at.push(confirmed);
        load_answered(&latest, version, confirmed).await;
    }
    stop.store(true, Ordering::Relaxed);

    // Per move, the load requests its champion answered that started once it was served.
    let mut answered_after_move = [0usize; CHAMPIONS.len()];
    let mut answered = 0usize;
    for client in clients {
        let (seen, failures) = client.await.unwrap();
        assert!(
            failures.is_empty(),
            "{} load requests failed across the swaps: {failures:?}",
            failures.len()
        );
        for observation in seen {
            let v = observation.version;
            assert_eq!(
                Some(&observation.probabilities),
                expected.get(&v),
                "version {v} answered with something else than its own prediction"
            );
            // The moves whose champion this answer fits: the version was made champion before
            // the request ended, and the request started before the next champion was served.
            let fits: Vec<usize> = (0..CHAMPIONS.len())
                .filter(|&i| {
                    CHAMPIONS[i] == v
                        && observation.finished >= moved_at[i]
                        && confirmed_at
                            .get(i + 1)
                            .is_none_or(|&next| observation.started <= next)
                })
                .collect();
            assert!(
                !fits.is_empty(),
                "version {v} answered a request that ran from {:?} to {:?} after the start, \
                 while it was not champion (moves at {:?}, served at {:?})",
                observation.started - t0,
                observation.finished - t0,
                moved_at.iter().map(|at| *at - t0).collect::<Vec<_>>(),
                confirmed_at.iter().map(|at| *at - t0).collect::<Vec<_>>(),
            );
            for i in fits {
                if observation.started >= confirmed_at[i] {
                    answered_after_move[i] += 1;
                }
            }
            answered += 1;
        }
    }
    for (i, count) in answered_after_move.iter().enumerate() {
        assert!(
            *count > 0,
            "champion {} (move {i}) answered no load request once it was served",
            CHAMPIONS[i]
        );
    }
    eprintln!(
        "{answered} load requests answered across {} champion moves",
        CHAMPIONS.len() - 1
    );

    // The registry recorded exactly these moves...
    let expected_moves: Vec<(u64, Option<u64>)> = CHAMPIONS
        .iter()
        .enumerate()
        .map(|(i, &version)| (version, i.checked_sub(1).map(|before| CHAMPIONS[before])))
        .collect();
    assert_eq!(registry.champion_moves(MODEL).await, expected_moves);
    // ...stored each announcement once on JetStream...
    let audit = registry.writer().audit(MODEL).await.unwrap();
    let stored = mend_testkit::events::champion_moves_announced(jetstream.jetstream(), MODEL).await;
    assert!(stored.values().all(|&copies| copies == 1), "{stored:?}");
    assert_eq!(
        stored.into_keys().collect::<BTreeSet<String>>(),
        mend_testkit::events::champion_move_ids(&audit, MODEL)
    );
    // ...as a promotion when the champion moved up and a rollback when it moved down.
    for pair in CHAMPIONS.windows(2) {
        let (from, to) = (pair[0], pair[1]);
        let event = announced
            .wait_for(WAIT, |envelope| match &envelope.event {
                Event::ModelPromoted(promoted) => {
                    to > from && promoted.version == to && promoted.previous == Some(from)
                }
                Event::ModelRolledBack(rolled_back) => {
                    to < from && (rolled_back.from_version, rolled_back.to_version) == (from, to)
                }
                _ => false,
            })
            .await;
        assert!(
            event.is_some(),
            "the move {from} → {to} was not announced as a {}; seen: {}",
            if to > from { "promotion" } else { "rollback" },
            announced.describe_seen()
        );
    }

    server.stop().await;
    registry.stop().await.unwrap();
    drop(nats);
}
