#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The monitor with its real neighbours: champions come from the registry over gRPC, and a
//! promotion made in the registry (which announces `model.promoted.<model>` on JetStream)
//! switches the monitor's reference without waiting for the periodic check.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use mend_bus::DataLogExt;
use mend_bus::events::DriftKind;
use mend_client::RegistryClient;
use mend_core::Artifact;
use mend_monitor::{MonitorDeps, MonitorReport, RegistryChampionSource};
use mend_proto::registry::v1 as pb;
use mend_registry::{RegistryDeps, SqliteStore};
use mend_runtime::{MendConfig, Metrics, Shutdown};
use mend_worlds::Regime;

async fn register_and_promote(registry: &RegistryClient, artifact: &Artifact) -> u64 {
    let header = pb::RegisterVersionHeader {
        model: MODEL.to_owned(),
        schema_hash: artifact.schema.hash(),
        actor: "test".to_owned(),
        trigger: Some(pb::Trigger {
            event_id: String::new(),
            kind: pb::TriggerKind::Manual.into(),
        }),
        ..Default::default()
    };
    let meta = registry
        .register(header, Bytes::from(artifact.to_bytes().unwrap()))
        .await
        .unwrap();
    registry
        .set_alias(pb::SetAliasRequest {
            model: MODEL.to_owned(),
            alias: "champion".to_owned(),
            version: meta.version,
            actor: "test".to_owned(),
            reason: "test promotion".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    meta.version
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn champions_come_from_the_registry_and_promotions_switch_the_reference() {
    let nats = nats().await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path().join("registry"))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let registry_addr = listener.local_addr().unwrap();
    let registry_shutdown = Shutdown::new();
    let registry_config = MendConfig::from_map(&HashMap::new()).unwrap();
    tokio::spawn({
        let shutdown = registry_shutdown.clone();
        let deps = RegistryDeps {
            store: Arc::new(store),
            bus: Some(Arc::clone(&nats.bus)),
        };
        let registry_config = mend_registry::RegistryConfig::from_mend(&registry_config).unwrap();
        async move { mend_registry::run(registry_config, deps, listener, shutdown).await }
    });
    let endpoint =
        tonic::transport::Endpoint::from_shared(format!("http://{registry_addr}")).unwrap();
    let registry = RegistryClient::connect_lazy(&endpoint, None);
    let v1 = register_and_promote(&registry, &train(&Regime::default(), 1)).await;

    let mut observer = Observer::new(Arc::clone(&nats.bus)).await;
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = http.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let deps = MonitorDeps {
        champions: Arc::new(RegistryChampionSource::new(registry.clone())),
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
    let v2 = register_and_promote(&registry, &train(&shift(1.0), 2)).await;
    assert_ne!(v1, v2);
    eventually("the switch to the new champion", || async {
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
    registry_shutdown.trigger();
}
