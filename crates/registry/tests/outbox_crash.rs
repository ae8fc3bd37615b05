//! Every committed champion move is announced exactly once, whatever happens to the
//! `mend-registry` process: the real binary over a real `nats-server -js`, killed with
//! SIGKILL around `SetAlias`, then started again.
//!
//! - A move committed while the events stream could not take it (deleted under the running
//!   registry), then a `kill -9`: after the restart the move is announced, once.
//! - Champion moves in a tight loop while the registry is killed at random moments, many
//!   times: every move in the audit log has exactly one event, and no event lacks a move.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::Duration;

use async_nats::jetstream;
use mend_bus::subjects::EVENTS_STREAM;
use mend_client::RegistryClient;
use mend_proto::registry::v1 as pb;
use mend_testkit::NatsServer;
use rand::Rng;
use tokio::process::{Child, Command};

const MODEL: &str = "churn";

fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

struct Registry {
    child: Child,
    client: RegistryClient,
}

/// Starts `mend-registry` on `grpc` over `nats_url` and waits until it answers.
async fn start_registry(nats_url: &str, grpc: &str, data_dir: &std::path::Path) -> Registry {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mend-registry"))
        .env_clear()
        .env("MEND_NATS_URL", nats_url)
        .env("MEND_REGISTRY_ADDR", grpc)
        .env("MEND_HTTP_ADDR", "127.0.0.1:0")
        .env("MEND_DATA_DIR", data_dir)
        .env("MEND_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("mend-registry starts");
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{grpc}")).unwrap();
    let client = RegistryClient::connect_lazy(&endpoint, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match client.list_models().await {
            Ok(_) => break,
            Err(error) if error.is_transient() && tokio::time::Instant::now() < deadline => {
                assert!(child.try_wait().unwrap().is_none(), "the registry exited");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("the registry did not come up: {error}"),
        }
    }
    Registry { child, client }
}

async fn register(client: &RegistryClient, n: u8) {
    let header = pb::RegisterVersionHeader {
        model: MODEL.into(),
        schema_hash: "schema-1".into(),
        actor: "test".into(),
        reason: format!("version {n}"),
        trigger: Some(pb::Trigger {
            event_id: String::new(),
            kind: pb::TriggerKind::Manual.into(),
        }),
        ..Default::default()
    };
    client
        .register(
            header,
            bytes::Bytes::from(mend_testkit::artifacts::model_bytes(u64::from(n))),
        )
        .await
        .unwrap();
}

/// Versions 1 and 2, with 1 the champion.
async fn two_versions_champion_1(client: &RegistryClient) {
    register(client, 1).await;
    register(client, 2).await;
    client.set_alias(champion_move(1, None)).await.unwrap();
}

fn champion_move(version: u64, expected: Option<u64>) -> pb::SetAliasRequest {
    let state = match expected {
        Some(version) => pb::alias_precondition::State::Version(version),
        None => pb::alias_precondition::State::Absent(true),
    };
    pb::SetAliasRequest {
        model: MODEL.into(),
        alias: "champion".into(),
        version,
        expected: Some(pb::AliasPrecondition { state: Some(state) }),
        actor: "test".into(),
        reason: "crash test".into(),
        trigger_event_id: String::new(),
    }
}

/// The event ids the audit log's champion moves must have been announced under.
async fn moves_in_audit(client: &RegistryClient) -> BTreeSet<String> {
    mend_testkit::events::champion_move_ids(&client.audit(MODEL).await.unwrap(), MODEL)
}

/// Waits until the events stream holds every move of the audit log (or the time is up).
async fn settled(
    context: &jetstream::Context,
    client: &RegistryClient,
) -> (BTreeSet<String>, BTreeMap<String, usize>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let moves = moves_in_audit(client).await;
        let events = mend_testkit::events::champion_moves_announced(context, MODEL).await;
        let complete = moves.iter().all(|id| events.contains_key(id));
        if complete || tokio::time::Instant::now() >= deadline {
            return (moves, events);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_the_bus_could_not_take_is_announced_after_a_crash() {
    let server = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let grpc = free_addr();
    let mut registry = start_registry(&server.url(), &grpc, dir.path()).await;
    two_versions_champion_1(&registry.client).await;

    // The events stream goes away under the running registry: the next move commits (the
    // registry's buckets are other streams) but its event cannot be stored.
    let context = jetstream::new(async_nats::connect(server.url()).await.unwrap());
    context.delete_stream(EVENTS_STREAM).await.unwrap();
    let promote = registry.client.set_alias(champion_move(2, Some(1)));
    // The answer may wait on the publish retries; the move is committed either way.
    let _ = tokio::time::timeout(Duration::from_secs(2), promote).await;
    registry.child.kill().await.unwrap();

    // The restarted registry recreates the stream and must announce the committed move.
    let registry = start_registry(&server.url(), &grpc, dir.path()).await;
    let champion = registry.client.champion(MODEL).await.unwrap();
    assert_eq!(champion.meta.version, 2, "the move was committed");
    let (_, events) = settled(&context, &registry.client).await;
    let last_move = registry
        .client
        .audit(MODEL)
        .await
        .unwrap()
        .into_iter()
        .filter(|record| record.alias == "champion")
        .max_by_key(|record| record.seq)
        .unwrap();
    assert_eq!(last_move.version, 2);
    let promoted_to_2 = format!("registry-{MODEL}-{}", last_move.seq);
    assert_eq!(
        events.get(&promoted_to_2),
        Some(&1),
        "the move to version 2 ({promoted_to_2}) must be announced exactly once; stream holds {events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn champion_moves_are_announced_exactly_once_across_random_kills() {
    let server = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap()
        .unwrap();
    let context = jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let grpc = free_addr();
    let registry = start_registry(&server.url(), &grpc, dir.path()).await;
    two_versions_champion_1(&registry.client).await;
    let mut child = registry.child;

    for _ in 0..12 {
        let registry = if child.try_wait().unwrap().is_some() {
            start_registry(&server.url(), &grpc, dir.path()).await
        } else {
            let endpoint =
                tonic::transport::Endpoint::from_shared(format!("http://{grpc}")).unwrap();
            Registry {
                client: RegistryClient::connect_lazy(&endpoint, None),
                child,
            }
        };
        // Flip the champion between 1 and 2 as fast as the registry answers...
        let client = registry.client.clone();
        let flipping = tokio::spawn(async move {
            loop {
                let Ok(current) = client.champion(MODEL).await else {
                    return;
                };
                let version = current.meta.version;
                let next = if version == 1 { 2 } else { 1 };
                if client
                    .set_alias(champion_move(next, Some(version)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        // ...and kill it with SIGKILL at a random moment.
        let after = rand::rng().random_range(30..400);
        tokio::time::sleep(Duration::from_millis(after)).await;
        child = registry.child;
        child.kill().await.unwrap();
        let _ = flipping.await;
    }

    let registry = start_registry(&server.url(), &grpc, dir.path()).await;
    let (moves, events) = settled(&context, &registry.client).await;
    assert!(moves.len() > 12, "the loop made moves: {}", moves.len());
    let missing: Vec<_> = moves
        .iter()
        .filter(|id| !events.contains_key(*id))
        .collect();
    assert!(missing.is_empty(), "moves never announced: {missing:?}");
    let forged: Vec<_> = events.keys().filter(|id| !moves.contains(*id)).collect();
    assert!(forged.is_empty(), "events without a move: {forged:?}");
    let repeated: Vec<_> = events.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "moves announced twice: {repeated:?}");
}
