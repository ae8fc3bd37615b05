#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `mend retrain` as an operator runs it, against a registry (with an in-process bus)
//! served inside the test: the request becomes a `retrain.requested` event.

mod common;

use common::mend;
use std::sync::Arc;
use std::time::Duration;

use mend_bus::events::Event;
use mend_bus::{Bus, ConsumerSpec, EventSubscription, InProcessBus, InProcessConfig};
use mend_testkit::registry::TestRegistry;
use serde_json::Value;

const TOKEN: &str = "cli-retrain-token";

/// A registry guarded by [`TOKEN`], on an in-process bus (returned), with one version of
/// `churn` registered.
async fn start_registry_on_a_bus() -> (TestRegistry, Arc<dyn Bus>) {
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(InProcessConfig::default()));
    let registry = TestRegistry::setup()
        .token(TOKEN)
        .bus(Arc::clone(&bus))
        .start()
        .await;
    // The listener is bound, so the call waits for the server instead of failing.
    registry
        .register(
            "churn",
            bytes::Bytes::from(mend_testkit::artifacts::model_bytes(1)),
        )
        .await;
    (registry, bus)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mend_retrain_publishes_a_retrain_request_through_the_registry() {
    let (registry, bus) = start_registry_on_a_bus().await;
    let mut events =
        EventSubscription::subscribe(Arc::clone(&bus), ConsumerSpec::new("test", ["retrain.>"]))
            .await
            .unwrap();
    let work = tempfile::tempdir().unwrap();
    let addr = registry.addr.to_string();
    let addr = addr.as_str();

    let refused = mend(
        work.path(),
        &[("MEND_REGISTRY_ADDR", addr)],
        &["retrain", "churn", "--reason", "no token"],
    )
    .await;
    assert!(
        !refused.status.success(),
        "a retrain without the token must fail"
    );
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert!(stderr.contains("unauthenticated"), "{stderr}");

    let unknown = mend(
        work.path(),
        &[("MEND_REGISTRY_ADDR", addr), ("MEND_REGISTRY_TOKEN", TOKEN)],
        &["retrain", "fraud", "--reason", "typo"],
    )
    .await;
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8(unknown.stderr)
            .unwrap()
            .contains("not found")
    );

    let out = mend(
        work.path(),
        &[("MEND_REGISTRY_ADDR", addr), ("MEND_REGISTRY_TOKEN", TOKEN)],
        &[
            "retrain",
            "churn",
            "--reason",
            "label fix backfill",
            "--window-rows",
            "800",
            "--json",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "mend retrain failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["subject"], "retrain.requested.churn");
    let event_id = printed["event_id"].as_str().unwrap();

    // The refused calls published nothing: the first event is this one.
    let delivery = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery.envelope.id, event_id);
    let Event::RetrainRequested(request) = &delivery.envelope.event else {
        panic!("{:?}", delivery.envelope);
    };
    assert_eq!(request.reason, "label fix backfill");
    assert_eq!(request.window.as_ref().unwrap().last_rows, Some(800));
    assert_eq!(request.requested_by.as_deref(), Some("tester (mend cli)"));

    let text = mend(
        work.path(),
        &[("MEND_REGISTRY_ADDR", addr), ("MEND_REGISTRY_TOKEN", TOKEN)],
        &["retrain", "churn", "--reason", "again"],
    )
    .await;
    assert!(text.status.success());
    let line = String::from_utf8(text.stdout).unwrap();
    assert!(
        line.starts_with("retrain of churn requested: event "),
        "{line}"
    );
}
