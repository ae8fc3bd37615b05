//! `RegistryClient` against the real registry (`mend_registry::run` on SQLite, on a loopback
//! port): every call of its public API; every failure kind the registry answers with, carried
//! in `ClientError` with the registry's own message; forced retrains published on the
//! registry's bus; and `from_config` dialling over TLS and mutual TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mend_bus::events::Event;
use mend_bus::{Bus, ConsumerSpec, EventRecorder, InProcessBus};
use mend_client::{CHAMPION, ClientError, RegistryClient};
use mend_proto::registry::v1 as pb;
use mend_proto::registry::v1::alias_precondition::State;
use mend_proto::registry::v1::get_version_request::Selector;
use mend_testkit::artifacts::{model_bytes, model_bytes_of_size};
use mend_testkit::registry::TestRegistry;
use support::{TOKEN, fixture, header, start_registry, start_registry_with};

fn move_champion(model: &str, version: u64, expected: State) -> pb::SetAliasRequest {
    pb::SetAliasRequest {
        model: model.to_owned(),
        alias: CHAMPION.to_owned(),
        version,
        expected: Some(pb::AliasPrecondition {
            state: Some(expected),
        }),
        actor: "test".to_owned(),
        reason: format!("champion to {version}"),
        trigger_event_id: String::new(),
    }
}

#[tokio::test]
async fn registers_fetches_moves_and_lists_through_the_real_registry() {
    let mut registry = start_registry(None).await;
    let client = registry.client(Some(TOKEN));
    let first = Bytes::from(model_bytes(1));
    // Over 1 MiB: uploaded in several chunks, and downloaded in several too.
    let large = Bytes::from(model_bytes_of_size(3 * 1024 * 1024 + 5, 0));

    let seeded = client
        .seed_champion("churn", "schema-1".into(), first.clone(), "test", "seed-1")
        .await
        .unwrap();
    assert_eq!(seeded.version, 1);
    assert_eq!(seeded.artifact_sha256, mend_core::sha256_hex(&first));
    assert_eq!(seeded.artifact_size, first.len() as u64);
    let trigger = seeded.trigger.unwrap();
    assert_eq!(
        (trigger.kind, trigger.event_id.as_str()),
        (pb::TriggerKind::Initial as i32, "seed-1")
    );
    let champion = client.champion("churn").await.unwrap();
    assert_eq!(champion.meta.version, 1);
    assert_eq!(champion.artifact, first);

    let second = client
        .register(header("churn"), large.clone())
        .await
        .unwrap();
    assert_eq!(second.version, 2);
    assert_eq!(second.artifact_size, large.len() as u64);
    assert_eq!(second.artifact_sha256, mend_core::sha256_hex(&large));
    let fetched = client.fetch("churn", Selector::Version(2)).await.unwrap();
    assert_eq!(fetched.meta.version, 2);
    assert_eq!(fetched.artifact, large);
    // Metadata alone: of the champion, and of the newest version.
    let meta = client
        .metadata("churn", Selector::Alias(CHAMPION.into()))
        .await
        .unwrap();
    assert_eq!(meta.version, 1);
    assert_eq!(
        client
            .version_metadata("churn", None)
            .await
            .unwrap()
            .version,
        2
    );

    // A compare-and-set move, from where the champion is.
    let moved = client
        .set_alias(move_champion("churn", 2, State::Version(1)))
        .await
        .unwrap();
    assert_eq!((moved.version, moved.previous_version), (2, Some(1)));
    assert_eq!(client.champion("churn").await.unwrap().artifact, large);

    // Listings: a model without a champion is listed, but is not a champion model.
    assert_eq!(
        client
            .register(header("plain"), first.clone())
            .await
            .unwrap()
            .version,
        1
    );
    let models = client.list_models().await.unwrap();
    let summaries: Vec<(&str, u64, Option<u64>)> = models
        .iter()
        .map(|model| {
            (
                model.name.as_str(),
                model.latest_version,
                model.aliases.get(CHAMPION).copied(),
            )
        })
        .collect();
    assert_eq!(summaries, vec![("churn", 2, Some(2)), ("plain", 1, None)]);
    assert_eq!(client.champion_models().await.unwrap(), vec!["churn"]);
    let versions: Vec<u64> = client
        .list_versions("churn")
        .await
        .unwrap()
        .iter()
        .map(|version| version.version)
        .collect();
    assert_eq!(versions, vec![1, 2]);

    // The audit log, whole and from a record on.
    let audit = client.audit("churn").await.unwrap();
    let steps: Vec<(i32, &str, u64)> = audit
        .iter()
        .map(|record| (record.action, record.alias.as_str(), record.version))
        .collect();
    let (register, set_alias) = (
        pb::AuditAction::Register as i32,
        pb::AuditAction::SetAlias as i32,
    );
    assert_eq!(
        steps,
        vec![
            (register, "", 1),
            (set_alias, CHAMPION, 1),
            (register, "", 2),
            (set_alias, CHAMPION, 2),
        ]
    );
    let later = client.audit_after("churn", audit[1].seq).await.unwrap();
    assert_eq!(later, audit[2..].to_vec());
    registry.stop().await.unwrap();
}

#[tokio::test]
async fn failures_come_back_by_kind_with_the_registrys_message() {
    let mut registry = start_registry(None).await;
    let client = registry.client(Some(TOKEN));
    let model = Bytes::from(model_bytes(2));

    // NOT_FOUND: no such model.
    match client.champion("ghost").await {
        Err(ClientError::NotFound(message)) => assert!(message.contains("ghost"), "{message}"),
        other => panic!("a missing model: {other:?}"),
    }
    // INVALID_ARGUMENT, naming the field: a model name that cannot be a subject token...
    let mut bad_name = header("churn");
    bad_name.model = "not.a.name".into();
    match client.register(bad_name, model.clone()).await {
        Err(ClientError::InvalidArgument(message)) => {
            assert!(message.contains("header.model"), "{message}");
        }
        other => panic!("a bad model name: {other:?}"),
    }
    // ...and bytes that are not a model.
    match client
        .register(header("churn"), Bytes::from_static(b"not a model"))
        .await
    {
        Err(ClientError::InvalidArgument(message)) => {
            assert!(message.contains("not a mend model"), "{message}");
        }
        other => panic!("an artifact that is not a model: {other:?}"),
    }
    // UNAUTHENTICATED: a write without the token.
    match registry
        .client(None)
        .register(header("churn"), model.clone())
        .await
    {
        Err(ClientError::Unauthenticated(message)) => {
            assert!(message.contains("MEND_REGISTRY_TOKEN"), "{message}");
        }
        other => panic!("a write without the token: {other:?}"),
    }

    // Conflict: a compare-and-set that saw another state.
    client
        .seed_champion("churn", "schema-1".into(), model.clone(), "test", "seed")
        .await
        .unwrap();
    match client
        .set_alias(move_champion("churn", 1, State::Version(7)))
        .await
    {
        Err(ClientError::Conflict(message)) => {
            assert!(message.contains("is at version 1"), "{message}");
        }
        other => panic!("a stale expectation: {other:?}"),
    }
    // Seeding is only for a model without a champion.
    assert!(matches!(
        client
            .seed_champion("churn", "schema-1".into(), model.clone(), "test", "again")
            .await,
        Err(ClientError::Conflict(_))
    ));
    // A decision the registry does not know.
    let decision = pb::RecordDecisionRequest {
        model: "churn".into(),
        trigger_event_id: "drift-1".into(),
        decision: "maybe".into(),
        reason: "testing".into(),
        actor: "test".into(),
        ..Default::default()
    };
    match client.record_decision(decision).await {
        Err(ClientError::InvalidArgument(message)) => {
            assert!(message.contains("unknown decision"), "{message}");
        }
        other => panic!("an unknown decision: {other:?}"),
    }
    // Only "unavailable" is worth retrying.
    let not_found = client.champion("ghost").await.unwrap_err();
    assert!(!not_found.is_transient(), "{not_found:?}");

    // UNAVAILABLE: the registry is gone.
    registry.stop().await.unwrap();
    match client.list_models().await {
        Err(error @ ClientError::Unavailable(_)) => assert!(error.is_transient()),
        other => panic!("a stopped registry: {other:?}"),
    }
}

#[tokio::test]
async fn forced_retrains_are_published_and_decisions_recorded() {
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::default());
    let mut requested = EventRecorder::subscribe(
        Arc::clone(&bus),
        ConsumerSpec::new("client-test", ["retrain.requested.*"]),
    )
    .await
    .unwrap();
    let mut registry = start_registry(Some(bus)).await;
    let client = registry.client(Some(TOKEN));
    client
        .seed_champion(
            "churn",
            "schema-1".into(),
            Bytes::from(model_bytes(3)),
            "test",
            "seed",
        )
        .await
        .unwrap();

    let retrain = pb::RequestRetrainRequest {
        model: "churn".into(),
        reason: "the world flipped".into(),
        actor: "tester".into(),
        window: None,
    };
    let response = client.request_retrain(retrain.clone()).await.unwrap();
    assert_eq!(response.subject, "retrain.requested.churn");
    let event = requested
        .wait_for(Duration::from_secs(10), |envelope| {
            envelope.id == response.event_id
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "event {} not published; seen: {}",
                response.event_id,
                requested.describe_seen()
            )
        });
    match &event.event {
        Event::RetrainRequested(body) => {
            assert_eq!(body.reason, "the world flipped");
            assert_eq!(body.requested_by.as_deref(), Some("tester"));
        }
        other => panic!("not a retrain request: {other:?}"),
    }
    // A retrain needs a reason, and a model the registry knows.
    match client
        .request_retrain(pb::RequestRetrainRequest {
            reason: "  ".into(),
            ..retrain.clone()
        })
        .await
    {
        Err(ClientError::InvalidArgument(message)) => {
            assert!(message.contains("reason"), "{message}");
        }
        other => panic!("a retrain without a reason: {other:?}"),
    }
    assert!(matches!(
        client
            .request_retrain(pb::RequestRetrainRequest {
                model: "ghost".into(),
                ..retrain
            })
            .await,
        Err(ClientError::NotFound(_))
    ));

    // The decision on that trigger goes on the audit log.
    let record = client
        .record_decision(pb::RecordDecisionRequest {
            model: "churn".into(),
            trigger_event_id: response.event_id.clone(),
            decision: "dropped".into(),
            reason: "nothing new to learn".into(),
            actor: "tester".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(record.action, pb::AuditAction::Decision as i32);
    assert_eq!(
        (record.decision.as_str(), record.trigger_event_id.as_str()),
        ("dropped", response.event_id.as_str())
    );
    let audit = client.audit("churn").await.unwrap();
    assert_eq!(audit.last(), Some(&record));
    registry.stop().await.unwrap();
}

/// A client's settings, as `from_config` reads them: the registry's address, the write token,
/// and `MEND_TLS_*` files among the runtime's fixtures.
fn client_config(registry: &TestRegistry, tls: &[(&str, &str)]) -> mend_runtime::MendConfig {
    let mut vars: Vec<(&str, String)> = tls
        .iter()
        .map(|(var, file)| (*var, fixture(file).display().to_string()))
        .collect();
    vars.push(("MEND_REGISTRY_ADDR", registry.addr.to_string()));
    vars.push(("MEND_REGISTRY_TOKEN", TOKEN.to_owned()));
    support::config(&vars)
}

#[tokio::test]
async fn from_config_dials_the_registry_over_tls() {
    let mut registry = start_registry_with(
        &[
            ("MEND_REGISTRY_TOKEN", TOKEN.to_owned()),
            ("MEND_TLS_CERT", fixture("server.pem").display().to_string()),
            ("MEND_TLS_KEY", fixture("server.key").display().to_string()),
        ],
        None,
    )
    .await;
    let client =
        RegistryClient::from_config(&client_config(&registry, &[("MEND_TLS_CA", "ca.pem")]))
            .unwrap();
    // A write (the token travels encrypted) and a download, over TLS.
    let model = Bytes::from(model_bytes(4));
    client
        .seed_champion("churn", "schema-1".into(), model.clone(), "test", "seed")
        .await
        .unwrap();
    assert_eq!(client.champion("churn").await.unwrap().artifact, model);

    // A client trusting another CA is refused at the handshake: unavailable, saying why.
    let doubting = RegistryClient::from_config(&client_config(
        &registry,
        &[("MEND_TLS_CA", "other-ca.pem")],
    ))
    .unwrap();
    match doubting.list_models().await {
        Err(ClientError::Unavailable(message)) => assert!(
            message.to_lowercase().contains("unknownissuer"),
            "{message}"
        ),
        other => panic!("a client trusting another CA: {other:?}"),
    }
    // A client without TLS settings speaks plain text, which a TLS port does not answer.
    let plain = RegistryClient::from_config(&client_config(&registry, &[])).unwrap();
    assert!(plain.list_models().await.is_err());
    registry.stop().await.unwrap();
}

#[tokio::test]
async fn from_config_dials_the_registry_over_mutual_tls() {
    // One `MEND_TLS_*` set serves the registry and dials it (a certificate for both uses).
    let mesh = [
        ("MEND_TLS_CERT", "mesh.pem"),
        ("MEND_TLS_KEY", "mesh.key"),
        ("MEND_TLS_CA", "mesh-ca.pem"),
    ];
    let mut vars: Vec<(&str, String)> = mesh
        .iter()
        .map(|(var, file)| (*var, fixture(file).display().to_string()))
        .collect();
    vars.push(("MEND_REGISTRY_TOKEN", TOKEN.to_owned()));
    let mut registry = start_registry_with(&vars, None).await;
    let client = RegistryClient::from_config(&client_config(&registry, &mesh)).unwrap();
    let model = Bytes::from(model_bytes(5));
    client
        .seed_champion("churn", "schema-1".into(), model.clone(), "test", "seed")
        .await
        .unwrap();
    assert_eq!(client.champion("churn").await.unwrap().artifact, model);

    // Trusting the CA without a certificate of its own, a client is refused.
    let anonymous =
        RegistryClient::from_config(&client_config(&registry, &[("MEND_TLS_CA", "mesh-ca.pem")]))
            .unwrap();
    assert!(anonymous.list_models().await.is_err());
    registry.stop().await.unwrap();
}
