//! The conformance suite against `SqliteStore`, each test on its own database file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conformance;

use std::sync::Arc;

use mend_registry::sqlite::ARTIFACTS_TABLE;
use mend_registry::{RegistryStore, SqliteStore, VersionMeta};
use tempfile::TempDir;

async fn store() -> (Arc<SqliteStore>, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path().join("data"))
        .await
        .unwrap();
    (Arc::new(store), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn versions_have_no_gaps_or_duplicates_under_concurrency() {
    let (store, _dir) = store().await;
    conformance::versions_have_no_gaps_or_duplicates_under_concurrency(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_compare_and_set_fails_with_conflict() {
    let (store, _dir) = store().await;
    conformance::stale_compare_and_set_fails_with_conflict(store).await;
}

#[tokio::test]
async fn audit_holds_exactly_one_record_per_change() {
    let (store, _dir) = store().await;
    conformance::audit_holds_exactly_one_record_per_change(store).await;
}

#[tokio::test]
async fn corrupted_artifact_is_refused() {
    let (store, _dir) = store().await;
    let path = store.path().to_owned();
    // Tamper the way a disk or an operator would: a separate connection rewrites the bytes.
    let tamper = async move |meta: VersionMeta| {
        let connection = rusqlite::Connection::open(&path).unwrap();
        let changed = connection
            .execute(
                &format!("UPDATE {ARTIFACTS_TABLE} SET bytes = ?1 WHERE sha256 = ?2"),
                rusqlite::params![b"tampered".to_vec(), meta.artifact_sha256],
            )
            .unwrap();
        assert_eq!(changed, 1);
    };
    conformance::corrupted_artifact_is_refused(store, tamper).await;
}

#[tokio::test]
async fn aliases_resolve() {
    let (store, _dir) = store().await;
    conformance::aliases_resolve(store).await;
}

#[tokio::test]
async fn paging_covers_everything_once() {
    let (store, _dir) = store().await;
    conformance::paging_covers_everything_once(store).await;
}

#[tokio::test]
async fn unknown_and_invalid_are_refused() {
    let (store, _dir) = store().await;
    conformance::unknown_and_invalid_are_refused(store).await;
}

#[tokio::test]
async fn watch_sees_alias_moves() {
    let (store, _dir) = store().await;
    conformance::watch_sees_alias_moves(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_registrations_leave_no_partial_version() {
    let (store, _dir) = store().await;
    conformance::abandoned_registrations_leave_no_partial_version(store).await;
}

#[tokio::test]
async fn decisions_are_recorded_in_the_audit_log() {
    let (store, _dir) = store().await;
    conformance::decisions_are_recorded_in_the_audit_log(store).await;
}

#[tokio::test]
async fn large_artifact_round_trips() {
    let (store, _dir) = store().await;
    conformance::large_artifact_round_trips(store).await;
}

#[tokio::test]
async fn data_survives_reopening_the_file() {
    let (store, dir) = store().await;
    conformance::aliases_resolve(Arc::clone(&store)).await;
    let path = store.path().to_owned();
    drop(store);

    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        reopened.resolve_alias("churn", "champion").await.unwrap(),
        1
    );
    let (_, bytes) = reopened.artifact("churn", 2).await.unwrap();
    assert_eq!(bytes, conformance::artifact(2));
    drop(dir);
}

#[tokio::test]
async fn outbox_cursor_moves_forward_only() {
    let (store, dir) = store().await;
    conformance::outbox_cursor_moves_forward_only(Arc::clone(&store)).await;
    drop(store);
    let reopened = SqliteStore::open_in_dir(dir.path().join("data"))
        .await
        .unwrap();
    assert_eq!(reopened.announced_seq("outboxed").await.unwrap(), 3);
}

/// A registry written before the outbox existed: its models start announced up to their last
/// record, so the upgrade does not publish their whole history again.
#[tokio::test]
async fn an_older_database_starts_with_its_history_announced() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = SqliteStore::open_in_dir(&data).await.unwrap();
    store
        .register(conformance::new_version("old", 1), conformance::artifact(1))
        .await
        .unwrap();
    store
        .register(conformance::new_version("old", 2), conformance::artifact(2))
        .await
        .unwrap();
    let path = store.path().to_owned();
    drop(store);
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection.execute_batch("DROP TABLE outbox").unwrap();
    drop(connection);
    let upgraded = SqliteStore::open_in_dir(&data).await.unwrap();
    assert_eq!(upgraded.announced_seq("old").await.unwrap(), 2);
}
