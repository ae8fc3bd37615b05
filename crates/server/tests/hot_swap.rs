//! Hot swap: promotions and rollbacks under load fail no request, and every response comes
//! from a version that was champion while the request ran; a registry outage keeps the
//! current champion serving; the reconcile loop catches a missed event. These run on the
//! in-memory source; `hot_swap_real.rs` proves the load claims (promotions and rollbacks) on
//! the real registry over gRPC and a real JetStream bus, and `registry_source.rs` the outage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Rows, Setup, answer, start, train, variant};
use mend_bus::events::{ModelPromoted, ModelRolledBack};
use mend_bus::{
    Bus, Envelope, InProcessBus, JetStreamBus, JetStreamConfig, ModelName, publish_event,
};
use mend_server::{InMemoryModelSource, ServerConfig};

const PROMOTIONS: u64 = 50;
const CLIENTS: usize = 16;

async fn announce_promotion(bus: &dyn Bus, model: &str, version: u64) {
    let event = ModelPromoted {
        version,
        previous: version.checked_sub(1),
        reason: "test".into(),
        metrics: Default::default(),
        trigger_event_id: None,
    };
    publish_event(bus, &Envelope::new(ModelName::new(model).unwrap(), event))
        .await
        .unwrap();
}

/// One answered request: when it ran and who answered.
struct Observation {
    started: Instant,
    finished: Instant,
    version: u64,
    probabilities: Vec<f32>,
}

async fn promotions_under_load(bus: Arc<dyn Bus>) {
    let source = Arc::new(InMemoryModelSource::new());
    let mut trained = train(5, 1, 2, 31);
    // Version k shifts the intercept by k/10, so each version answers differently.
    let mut expected = vec![Vec::new()];
    source.promote("churn", variant(&trained.artifact, 0.1));
    let rows = Rows::draw(&mut trained.generator, 4, 7);
    let probe = rows.per_feature("churn", false);
    let mut setup = Setup::new(Arc::clone(&source));
    setup.bus = Some(Arc::clone(&bus));
    let server = start(setup).await;
    server.wait_for_champion(&probe, 1).await;

    let expect = |k: u64| {
        let bytes = variant(&trained.artifact, k as f64 / 10.0);
        let artifact = mend_core::Artifact::from_bytes(&bytes).unwrap();
        let proba = artifact.predict_proba(&rows.frame()).unwrap();
        proba.iter().map(|&p| p as f32).collect::<Vec<f32>>()
    };
    expected.push(expect(1));

    let stop = Arc::new(AtomicBool::new(false));
    // The newest version any load client has been answered by: each promotion waits until the
    // load has met it, so the load runs across every swap however slow the machine is.
    let newest_seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut client = server.client().await;
        let probe = probe.clone();
        let stop = Arc::clone(&stop);
        let newest_seen = Arc::clone(&newest_seen);
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
                        newest_seen.fetch_max(version, Ordering::Relaxed);
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

    let load_meets = |version: u64| {
        let newest_seen = Arc::clone(&newest_seen);
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while newest_seen.load(Ordering::Relaxed) < version {
                assert!(
                    Instant::now() < deadline,
                    "the load never got an answer from version {version}"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    };
    load_meets(1).await;

    // Promotion k starts when the source moves and is confirmed once a response shows it.
    let mut promoted_at = vec![None, None];
    let mut confirmed_at = vec![None, Some(Instant::now())];
    let mut checker = server.client().await;
    for k in 2..=PROMOTIONS + 1 {
        expected.push(expect(k));
        promoted_at.push(Some(Instant::now()));
        let version = source.promote("churn", variant(&trained.artifact, k as f64 / 10.0));
        assert_eq!(version, k);
        announce_promotion(bus.as_ref(), "churn", version).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let response = checker.model_infer(probe.clone()).await.unwrap();
            if response.get_ref().model_version == version.to_string() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "promotion to {version} not served in time"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        confirmed_at.push(Some(Instant::now()));
        load_meets(version).await;
    }
    stop.store(true, Ordering::Relaxed);

    let mut answered = 0;
    let mut versions_seen = std::collections::BTreeSet::new();
    for client in clients {
        let (seen, failures) = client.await.unwrap();
        assert!(
            failures.is_empty(),
            "failed requests during promotions: {failures:?}"
        );
        for observation in seen {
            let v = observation.version as usize;
            assert!(
                (1..=PROMOTIONS as usize + 1).contains(&v),
                "unknown version {v}"
            );
            // Not served before it was promoted at the source...
            if let Some(promoted) = promoted_at[v] {
                assert!(
                    observation.finished >= promoted,
                    "version {v} answered before its promotion"
                );
            }
            // ...nor by a request that started after the next version was confirmed.
            if let Some(Some(next_confirmed)) = confirmed_at.get(v + 1) {
                assert!(
                    observation.started <= *next_confirmed,
                    "version {v} answered after {} was champion",
                    v + 1
                );
            }
            // And the answer really is that version's.
            assert_eq!(
                observation.probabilities, expected[v],
                "version {v} answered with another model"
            );
            versions_seen.insert(v);
            answered += 1;
        }
    }
    // Every version answered the load (each promotion waited for that), all of them right.
    assert!(
        answered > PROMOTIONS as usize,
        "only {answered} requests answered"
    );
    assert_eq!(
        versions_seen,
        (1..=PROMOTIONS as usize + 1).collect(),
        "versions that answered the load"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_promotions_under_sixteen_clients_fail_nothing() {
    promotions_under_load(Arc::new(InProcessBus::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_arrive_over_jetstream_too() {
    let nats = tokio::task::spawn_blocking(mend_testkit::NatsServer::start)
        .await
        .unwrap()
        .expect("nats-server starts");
    let bus = JetStreamBus::connect(&nats.url(), JetStreamConfig::default())
        .await
        .unwrap();
    let source = Arc::new(InMemoryModelSource::new());
    let trained = train(3, 0, 2, 32);
    source.promote("fraud", trained.bytes.clone());
    let probe = Rows {
        numeric: vec![vec![0.5]; 3],
        categorical: vec![],
    }
    .matrix("fraud", false, false);
    let mut setup = Setup::new(Arc::clone(&source));
    setup.bus = Some(Arc::new(bus.clone()));
    setup.config.instance = "replica-7".into();
    let server = start(setup).await;
    server.wait_for_champion(&probe, 1).await;
    for k in 2..=4 {
        let version = source.promote("fraud", variant(&trained.artifact, k as f64));
        announce_promotion(&bus, "fraud", version).await;
        server.wait_for_champion(&probe, version).await;
    }
    // The replica's consumers (one per filter) expire if it dies without cleaning up...
    let consumers = replica_consumers(&bus, "mend-server-replica-7").await;
    assert_eq!(consumers.len(), 2, "{consumers:?}");
    for (name, threshold) in consumers {
        assert_eq!(
            threshold,
            mend_server::swap::CONSUMER_INACTIVE_THRESHOLD,
            "{name}"
        );
    }
    // ...and a graceful stop deletes them.
    server.stop().await;
    assert_eq!(
        replica_consumers(&bus, "mend-server-replica-7").await,
        vec![]
    );
    drop(nats);
}

/// JetStream consumers of a durable, with their inactivity thresholds.
async fn replica_consumers(bus: &JetStreamBus, durable: &str) -> Vec<(String, Duration)> {
    use futures::StreamExt;
    let stream = bus
        .jetstream()
        .get_stream(mend_bus::subjects::EVENTS_STREAM)
        .await
        .unwrap();
    let names: Vec<String> = stream
        .consumer_names()
        .map(|name| name.unwrap())
        .collect()
        .await;
    let mut found = Vec::new();
    for name in names {
        if name.starts_with(&format!("{durable}__")) {
            let info = stream.consumer_info(&name).await.unwrap();
            found.push((name, info.config.inactive_threshold));
        }
    }
    found
}

#[tokio::test]
async fn a_rollback_swaps_back_without_a_download() {
    let source = Arc::new(InMemoryModelSource::new());
    let trained = train(3, 0, 2, 33);
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::default());
    source.promote("m", trained.bytes.clone());
    let probe = Rows {
        numeric: vec![vec![0.5]; 3],
        categorical: vec![],
    }
    .matrix("m", false, false);
    let mut setup = Setup::new(Arc::clone(&source));
    setup.bus = Some(Arc::clone(&bus));
    let server = start(setup).await;
    server.wait_for_champion(&probe, 1).await;
    source.promote("m", variant(&trained.artifact, 1.0));
    announce_promotion(bus.as_ref(), "m", 2).await;
    server.wait_for_champion(&probe, 2).await;
    let fetches = source.artifact_fetches();

    source.set_champion("m", 1);
    let rollback = ModelRolledBack {
        from_version: 2,
        to_version: 1,
        reason: "worse live accuracy".into(),
        metrics: Default::default(),
    };
    publish_event(
        bus.as_ref(),
        &Envelope::new(ModelName::new("m").unwrap(), rollback),
    )
    .await
    .unwrap();
    server.wait_for_champion(&probe, 1).await;
    assert_eq!(
        source.artifact_fetches(),
        fetches,
        "version 1 came from the cache"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_registry_outage_keeps_the_champion_serving_and_reconcile_catches_up() {
    let source = Arc::new(InMemoryModelSource::new());
    let trained = train(3, 0, 2, 34);
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::default());
    source.promote("m", trained.bytes.clone());
    let probe = Rows {
        numeric: vec![vec![0.5]; 3],
        categorical: vec![],
    }
    .matrix("m", false, false);
    let mut setup = Setup::new(Arc::clone(&source));
    setup.bus = Some(Arc::clone(&bus));
    setup.config = ServerConfig {
        reconcile_interval: Duration::from_millis(200),
        sample_rate: 0.0,
        ..ServerConfig::default()
    };
    let server = start(setup).await;
    server.wait_for_champion(&probe, 1).await;
    let mut client = server.client().await;

    // The registry goes down; a promotion is announced but cannot be fetched.
    source.set_available(false);
    source.promote("m", variant(&trained.artifact, 1.0));
    announce_promotion(bus.as_ref(), "m", 2).await;
    for _ in 0..20 {
        let response = client.model_infer(probe.clone()).await.unwrap();
        assert_eq!(response.get_ref().model_version, "1");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Back up: the reconcile loop swaps without another event.
    source.set_available(true);
    server.wait_for_champion(&probe, 2).await;
    let text = server.metrics.encode().unwrap();
    assert!(
        text.contains("mend_model_champion_version{model=\"m\"} 2"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn without_a_bus_the_reconcile_loop_follows_the_champion() {
    let source = Arc::new(InMemoryModelSource::new());
    let trained = train(3, 0, 2, 35);
    source.promote("m", trained.bytes.clone());
    let probe = Rows {
        numeric: vec![vec![0.5]; 3],
        categorical: vec![],
    }
    .matrix("m", false, false);
    let mut setup = Setup::new(Arc::clone(&source));
    setup.config = ServerConfig {
        reconcile_interval: Duration::from_millis(100),
        sample_rate: 0.0,
        ..ServerConfig::default()
    };
    let server = start(setup).await;
    server.wait_for_champion(&probe, 1).await;
    source.promote("m", variant(&trained.artifact, 1.0));
    server.wait_for_champion(&probe, 2).await;
    // A model registered later is discovered too.
    source.promote("late", trained.bytes.clone());
    let late = Rows {
        numeric: vec![vec![0.5]; 3],
        categorical: vec![],
    }
    .matrix("late", false, false);
    server.wait_for_champion(&late, 1).await;
    server.stop().await;
}

/// Versions that have series in `/metrics` for `model`: requests, rows, latency and errors.
fn versions_in_metrics(text: &str, model: &str) -> std::collections::BTreeSet<u64> {
    let prefix = format!("model=\"{model}\",version=\"");
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once(&prefix))
        .filter_map(|(_, rest)| rest.split('"').next())
        .filter(|version| !version.is_empty())
        .map(|version| version.parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_many_swaps_only_the_served_versions_keep_metric_series() {
    const SWAPS: u64 = 12;
    const CACHE: usize = 2;
    let source = Arc::new(InMemoryModelSource::new());
    let trained = train(3, 0, 2, 36);
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::default());
    source.promote("m", trained.bytes.clone());
    let probe = Rows {
        numeric: vec![vec![0.5]; 3],
        categorical: vec![],
    }
    .matrix("m", false, false);
    let mut bad = probe.clone();
    bad.inputs[0].shape = vec![3, 7];
    let mut setup = Setup::new(Arc::clone(&source));
    setup.bus = Some(Arc::clone(&bus));
    setup.config.version_cache = CACHE;
    let server = start(setup).await;
    server.wait_for_champion(&probe, 1).await;
    let mut client = server.client().await;

    for k in 2..=SWAPS + 1 {
        // Every version answers and fails a request, so each one has every kind of series.
        client.model_infer(probe.clone()).await.unwrap();
        client.model_infer(bad.clone()).await.unwrap_err();
        let version = source.promote("m", variant(&trained.artifact, k as f64 / 10.0));
        announce_promotion(bus.as_ref(), "m", version).await;
        server.wait_for_champion(&probe, version).await;
    }
    // An old version asked for by number is loaded into the cache again, evicting another.
    let mut old = probe.clone();
    old.model_version = "1".into();
    assert_eq!(
        client
            .model_infer(old)
            .await
            .unwrap()
            .get_ref()
            .model_version,
        "1"
    );

    let served: std::collections::BTreeSet<u64> = client
        .model_metadata(mend_proto::inference::ModelMetadataRequest {
            name: "m".into(),
            version: String::new(),
        })
        .await
        .unwrap()
        .get_ref()
        .versions
        .iter()
        .map(|version| version.parse().unwrap())
        .collect();
    let champion = SWAPS + 1;
    assert_eq!(
        served.len(),
        CACHE + 1,
        "champion plus the cache: {served:?}"
    );
    assert!(served.contains(&champion) && served.contains(&1));
    let text = server.metrics.encode().unwrap();
    assert_eq!(versions_in_metrics(&text, "m"), served, "{text}");

    // The champion's counters keep counting where they were.
    let champion_requests =
        format!("mend_inference_requests_total{{model=\"m\",version=\"{champion}\"}}");
    let count = |text: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(&champion_requests))
            .map(|value| value.trim().parse().unwrap())
            .unwrap_or(0)
    };
    let before = count(&text);
    assert!(before >= 1, "{text}");
    client.model_infer(probe.clone()).await.unwrap();
    assert_eq!(count(&server.metrics.encode().unwrap()), before + 1);
    server.stop().await;
}

/// `model.promoted` events are hints: 300 forged promotions of models the registry does not
/// know add nothing to what the server serves, and a forged promotion of a served model to a
/// version that is not its champion swaps nothing.
#[tokio::test]
async fn forged_promotions_change_nothing_served() {
    let source = Arc::new(InMemoryModelSource::new());
    let trained = train(3, 0, 2, 35);
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::default());
    source.promote("m", trained.bytes.clone());
    source.add_version("m", variant(&trained.artifact, 1.0));
    let probe = |model: &str| {
        Rows {
            numeric: vec![vec![0.5]; 3],
            categorical: vec![],
        }
        .matrix(model, false, false)
    };
    let mut setup = Setup::new(Arc::clone(&source));
    setup.bus = Some(Arc::clone(&bus));
    let server = start(setup).await;
    server.wait_for_champion(&probe("m"), 1).await;

    for n in 0..300 {
        announce_promotion(bus.as_ref(), &format!("forged-{n}"), 1).await;
    }
    // Version 2 exists but the registry never made it champion.
    announce_promotion(bus.as_ref(), "m", 2).await;
    // A real promotion of a new model, published last: once it is served, every forged
    // event before it has been handled.
    source.promote("real", trained.bytes.clone());
    announce_promotion(bus.as_ref(), "real", 1).await;
    server.wait_for_champion(&probe("real"), 1).await;

    let mut client = server.client().await;
    for n in [0, 150, 299] {
        let status = client
            .model_infer(probe(&format!("forged-{n}")))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
        assert!(
            status.message().ends_with("(served: `m`, `real`)"),
            "forged models listed as served: {}",
            status.message()
        );
    }
    let served = client.model_infer(probe("m")).await.unwrap();
    assert_eq!(
        served.get_ref().model_version,
        "1",
        "still the registry's champion"
    );
    server.stop().await;
}
