//! The conformance suite against `JetStreamStore`, each test on its own `nats-server -js`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conformance;

use std::sync::Arc;

use async_nats::jetstream;
use mend_registry::jetstream::object_name;
use mend_registry::{JetStreamConfig, JetStreamStore, RegistryStore, VersionMeta};
use mend_testkit::NatsServer;

struct Fixture {
    store: Arc<JetStreamStore>,
    context: jetstream::Context,
    // Last, so the server outlives the clients.
    _server: NatsServer,
}

async fn fixture() -> Fixture {
    let server = NatsServer::start().unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    let context = jetstream::new(client);
    let store = JetStreamStore::open(&context, JetStreamConfig::default())
        .await
        .unwrap();
    Fixture {
        store: Arc::new(store),
        context,
        _server: server,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn versions_have_no_gaps_or_duplicates_under_concurrency() {
    let fixture = fixture().await;
    conformance::versions_have_no_gaps_or_duplicates_under_concurrency(fixture.store.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_compare_and_set_fails_with_conflict() {
    let fixture = fixture().await;
    conformance::stale_compare_and_set_fails_with_conflict(fixture.store.clone()).await;
}

#[tokio::test]
async fn audit_holds_exactly_one_record_per_change() {
    let fixture = fixture().await;
    conformance::audit_holds_exactly_one_record_per_change(fixture.store.clone()).await;
}

#[tokio::test]
async fn corrupted_artifact_is_refused() {
    let fixture = fixture().await;
    let context = fixture.context.clone();
    let bucket = fixture.store.config().artifacts_bucket();
    // Tamper directly in the object store: overwrite the object with other bytes.
    let tamper = async move |meta: VersionMeta| {
        let objects = context.get_object_store(bucket).await.unwrap();
        let name = object_name(&meta.model, &meta.artifact_sha256);
        let mut tampered: &[u8] = b"tampered";
        objects.put(name.as_str(), &mut tampered).await.unwrap();
    };
    conformance::corrupted_artifact_is_refused(fixture.store.clone(), tamper).await;
}

#[tokio::test]
async fn aliases_resolve() {
    let fixture = fixture().await;
    conformance::aliases_resolve(fixture.store.clone()).await;
}

#[tokio::test]
async fn paging_covers_everything_once() {
    let fixture = fixture().await;
    conformance::paging_covers_everything_once(fixture.store.clone()).await;
}

#[tokio::test]
async fn unknown_and_invalid_are_refused() {
    let fixture = fixture().await;
    conformance::unknown_and_invalid_are_refused(fixture.store.clone()).await;
}

#[tokio::test]
async fn watch_sees_alias_moves() {
    let fixture = fixture().await;
    conformance::watch_sees_alias_moves(fixture.store.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_registrations_leave_no_partial_version() {
    let fixture = fixture().await;
    conformance::abandoned_registrations_leave_no_partial_version(fixture.store.clone()).await;
}

#[tokio::test]
async fn decisions_are_recorded_in_the_audit_log() {
    let fixture = fixture().await;
    conformance::decisions_are_recorded_in_the_audit_log(fixture.store.clone()).await;
}

#[tokio::test]
async fn large_artifact_round_trips() {
    let fixture = fixture().await;
    conformance::large_artifact_round_trips(fixture.store.clone()).await;
}

/// A crash right after a commit leaves the derived keys behind the log; the next read
/// repairs them. Simulated by deleting a version key and rewinding the model snapshot.
#[tokio::test]
async fn derived_keys_lost_after_a_commit_are_rebuilt_from_the_log() {
    let fixture = fixture().await;
    let store = fixture.store.clone();
    conformance::aliases_resolve(store.clone()).await;

    let config = store.config().clone();
    let models = fixture
        .context
        .get_key_value(config.models_bucket())
        .await
        .unwrap();
    let log = fixture
        .context
        .get_key_value(config.log_bucket())
        .await
        .unwrap();
    log.purge("version.churn.2").await.unwrap();
    models
        .put(
            "churn",
            br#"{"latest_version":0,"audit_seq":0,"aliases":{}}"#.to_vec().into(),
        )
        .await
        .unwrap();

    let reopened = JetStreamStore::open(&fixture.context, config)
        .await
        .unwrap();
    assert_eq!(reopened.version("churn", 2).await.unwrap().version, 2);
    let summary = reopened.model("churn").await.unwrap();
    assert_eq!(summary.latest_version, 2);
    assert_eq!(summary.aliases.get("champion"), Some(&1));
    let next = reopened
        .register(
            conformance::new_version("churn", 3),
            conformance::artifact(3),
        )
        .await
        .unwrap();
    assert_eq!(next.version, 3);
}

/// Reopening the buckets (a restarted registry) finds everything again.
#[tokio::test]
async fn data_survives_reopening_the_buckets() {
    let fixture = fixture().await;
    conformance::aliases_resolve(fixture.store.clone()).await;
    let reopened = JetStreamStore::open(&fixture.context, JetStreamConfig::default())
        .await
        .unwrap();
    assert_eq!(
        reopened.resolve_alias("churn", "champion").await.unwrap(),
        1
    );
    let (_, bytes) = reopened.artifact("churn", 2).await.unwrap();
    assert_eq!(bytes, conformance::artifact(2));
}

#[tokio::test]
async fn outbox_cursor_moves_forward_only() {
    let fixture = fixture().await;
    conformance::outbox_cursor_moves_forward_only(fixture.store.clone()).await;
    let reopened = JetStreamStore::open(&fixture.context, JetStreamConfig::default())
        .await
        .unwrap();
    assert_eq!(reopened.announced_seq("outboxed").await.unwrap(), 3);
}

/// Buckets written before the outbox existed: their models start announced up to their last
/// record, so the upgrade does not publish their whole history again.
#[tokio::test]
async fn older_buckets_start_with_their_history_announced() {
    let fixture = fixture().await;
    for n in 1..=2 {
        fixture
            .store
            .register(conformance::new_version("old", n), conformance::artifact(n))
            .await
            .unwrap();
    }
    let log = fixture
        .context
        .get_key_value(fixture.store.config().log_bucket())
        .await
        .unwrap();
    log.purge("outbox-ready").await.unwrap();
    log.purge("outbox.old").await.unwrap();
    let upgraded = JetStreamStore::open(&fixture.context, JetStreamConfig::default())
        .await
        .unwrap();
    assert_eq!(upgraded.announced_seq("old").await.unwrap(), 2);
}
