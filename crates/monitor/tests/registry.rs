#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The monitor with its real neighbours: champions come from the registry over gRPC, and a
//! promotion made in the registry (which announces `model.promoted.<model>` on JetStream)
//! switches the monitor's reference without waiting for the periodic check.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use mend_bus::DataLogExt;
use mend_bus::events::DriftKind;
use mend_core::Artifact;
use mend_monitor::{MonitorDeps, MonitorReport, RegistryChampionSource};
use mend_runtime::{Metrics, Shutdown};
use mend_testkit::eventually;
use mend_testkit::registry::TestRegistry;
use mend_worlds::Regime;

fn model_bytes(artifact: &Artifact) -> Bytes {
    Bytes::from(artifact.to_bytes().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn champions_come_from_the_registry_and_promotions_switch_the_reference() {
    let nats = nats().await;
    let dir = tempfile::tempdir().unwrap();
    let registry = TestRegistry::sqlite(Arc::clone(&nats.bus)).await;
    let v1 = registry
        .promote(MODEL, model_bytes(&train(&Regime::default(), 1)))
        .await;

    let mut observer = Observer::new(Arc::clone(&nats.bus)).await;
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = http.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let deps = MonitorDeps {
        champions: Arc::new(RegistryChampionSource::new(registry.client(None))),
        data_log: Arc::clone(&nats.data_log),
        bus: Some(Arc::clone(&nats.bus)),
        metrics: Metrics::new(),
    };
    let task = tokio::spawn(mend_monitor::run(
        config(dir.path()),
        deps,
        http,
        shutdown.clone(),
    ));
    let mut world = World::new();

    let (rows, _) = world.draw(2_000, &Regime::default());
    nats.data_log.append_rows(&model(), &rows).await.unwrap();
    let ids = reports_reach(dir.path(), 2).await;
    let (_, body) = http_get(addr, &format!("/reports/{MODEL}/{}", ids[1])).await;
    let report: MonitorReport = serde_json::from_str(&body).unwrap();
    assert_eq!(report.champion_version, v1);

    // The registry promotes a model of the shifted world; the event alone switches the
    // monitor (its periodic check is an hour away in this config).
    let v2 = registry
        .promote(MODEL, model_bytes(&train(&shift(1.0), 2)))
        .await;
    assert_ne!(v1, v2);
    eventually(SOON, "the switch to the new champion", || async {
        let text = tokio::fs::read_to_string(dir.path().join("monitor/synth.json"))
            .await
            .ok()?;
        text.contains(&format!("\"champion_version\": {v2}"))
            .then_some(())
    })
    .await;
    let (rows, _) = world.draw(2_000, &shift(1.0));
    nats.data_log.append_rows(&model(), &rows).await.unwrap();
    let ids = reports_reach(dir.path(), 4).await;
    let (_, body) = http_get(addr, &format!("/reports/{MODEL}/{}", ids[3])).await;
    let report: MonitorReport = serde_json::from_str(&body).unwrap();
    assert_eq!(report.champion_version, v2);
    assert!(!report.data_drift, "the shift is the new champion's normal");
    observer.drain(std::time::Duration::from_millis(700)).await;
    assert!(observer.of_kind(DriftKind::Data).is_empty());

    shutdown.trigger();
    task.await.unwrap().unwrap();
    drop(registry);
}
