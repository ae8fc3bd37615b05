#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Without an allow-list the monitor watches every model that has a champion: one promoted
//! while it runs is watched at once (its promotion is heard on the bus) and its drift is
//! announced; one that loses its champion is no longer watched at the next listing.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use mend_bus::events::{DriftKind, ModelPromoted};
use mend_bus::{DataLogExt, Envelope, ModelName, publish_event};
use mend_monitor::InMemoryChampionSource;
use mend_testkit::eventually;
use mend_worlds::Regime;

fn watched(metrics: &mend_runtime::Metrics) -> Option<i64> {
    let text = metrics.encode().unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("mend_monitor_models_watched "))
        .and_then(|value| value.trim().parse().ok())
}

/// A monitor without an allow-list (discovery), listing champions every `refresh`, started
/// and seen watching nothing yet; and the champions it lists from.
async fn discovering_monitor(
    nats: &Nats,
    dir: &std::path::Path,
    refresh: Duration,
) -> (Arc<InMemoryChampionSource>, Running) {
    let champions = Arc::new(InMemoryChampionSource::new());
    let mut config = config(dir);
    config.models = Vec::new();
    config.champion_refresh = refresh;
    let monitor = start(
        config,
        Arc::clone(&champions),
        Arc::clone(&nats.data_log),
        Some(Arc::clone(&nats.bus)),
    )
    .await;
    eventually(
        SOON,
        "the monitor to start with nothing to watch",
        || async { (watched(&monitor.metrics) == Some(0)).then_some(()) },
    )
    .await;
    (champions, monitor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_found_as_they_get_a_champion_and_dropped_when_they_lose_it() {
    let nats = nats().await;
    let dir = tempfile::tempdir().unwrap();
    let mut observer = Observer::new(Arc::clone(&nats.bus)).await;
    // Listings every 300 ms, so a removal is seen soon.
    let (champions, monitor) =
        discovering_monitor(&nats, dir.path(), Duration::from_millis(300)).await;

    // A model gets its first champion and the registry announces it.
    let churn = model();
    champions.set(&churn, 1, train(&Regime::default(), 1));
    publish_event(
        nats.bus.as_ref(),
        &Envelope::new(
            churn.clone(),
            ModelPromoted {
                version: 1,
                previous: None,
                reason: "first model".into(),
                metrics: Default::default(),
                trigger_event_id: None,
            },
        ),
    )
    .await
    .unwrap();
    eventually(SOON, "the promoted model to be watched", || async {
        (watched(&monitor.metrics) == Some(1)).then_some(())
    })
    .await;

    // Its drift is found with no setting naming it.
    let mut world = World::new();
    let (rows, _) = world.draw(6_000, &shift(2.0));
    nats.data_log.append_rows(&churn, &rows).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while observer.of_kind(DriftKind::Data).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no data drift announced for the discovered model"
        );
        observer.drain(Duration::from_millis(200)).await;
    }

    // A second model is found by the periodic listing alone (no event).
    let fraud = ModelName::new("fraud").unwrap();
    champions.set(&fraud, 1, train(&Regime::default(), 2));
    eventually(SOON, "the listed model to be watched", || async {
        (watched(&monitor.metrics) == Some(2)).then_some(())
    })
    .await;

    // Both lose their champion: neither is watched any more.
    champions.remove(&churn);
    champions.remove(&fraud);
    eventually(SOON, "no model to be watched", || async {
        (watched(&monitor.metrics) == Some(0)).then_some(())
    })
    .await;
    monitor.stop().await;
}

/// Promotion events are hints: forged promotions of models the registry has no champion
/// for start no loop; a real one does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_promotions_start_nothing() {
    let nats = nats().await;
    let dir = tempfile::tempdir().unwrap();
    // Listings are rare here: only events could start loops during the test.
    let (champions, monitor) =
        discovering_monitor(&nats, dir.path(), Duration::from_secs(3600)).await;
    let promoted = |model: &ModelName| {
        Envelope::new(
            model.clone(),
            ModelPromoted {
                version: 1,
                previous: None,
                reason: "forged".into(),
                metrics: Default::default(),
                trigger_event_id: None,
            },
        )
    };
    for n in 0..50 {
        let forged = ModelName::new(format!("forged-{n}")).unwrap();
        publish_event(nats.bus.as_ref(), &promoted(&forged))
            .await
            .unwrap();
    }
    let churn = model();
    champions.set(&churn, 1, train(&Regime::default(), 1));
    publish_event(nats.bus.as_ref(), &promoted(&churn))
        .await
        .unwrap();
    eventually(SOON, "the real model to be watched", || async {
        (watched(&monitor.metrics) == Some(1)).then_some(())
    })
    .await;
    // Every forged event has been handled by now or soon; none may add a model.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(watched(&monitor.metrics), Some(1));
    monitor.stop().await;
}
