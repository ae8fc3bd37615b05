//! Idempotency and failure: a retrain repeated for the same event reuses its version, one
//! interrupted between registering and promoting is finished exactly once, repeated failures
//! end in an alert and a dead letter, schedules request retrains, and a trigger in the hands of
//! a trainer that stops is left for the next one. Every scenario runs on both buses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mend_bus::events::{Decision, DriftDetected, DriftKind, Event, Severity};
use mend_client::RegistryClient;
use mend_proto::registry::v1 as pb;
use mend_trainer::follow_up::FollowUps;
use mend_trainer::guard::Guards;
use mend_trainer::lineage::tags;
use mend_trainer::trigger::{RetrainTrigger, TriggerKind};
use mend_trainer::{Healer, RunOutcome, TrainerMetrics};
use support::{Backend, Harness, World, concept_a, concept_b, model, test_config};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

fn healer(harness: &Harness) -> Healer {
    let config = test_config();
    let metrics = TrainerMetrics::register(&harness.metrics);
    Healer {
        bus: Arc::clone(&harness.bus),
        data_log: Arc::clone(&harness.data_log),
        registry: harness.registry.clone(),
        guards: Guards::new(
            Arc::clone(&harness.bus),
            Arc::clone(&harness.data_log),
            harness.registry.clone(),
            config.guard.clone(),
            metrics.clone(),
            CancellationToken::new(),
        ),
        follow_ups: FollowUps::new(
            Arc::clone(&harness.bus),
            Arc::clone(&harness.data_log),
            harness.registry.clone(),
            config.follow_up.clone(),
            CancellationToken::new(),
        ),
        metrics,
        config: Arc::new(config),
        recall: Default::default(),
    }
}

fn performance_drift() -> DriftDetected {
    DriftDetected {
        kind: DriftKind::Performance,
        window: Default::default(),
        features: Vec::new(),
        dataset_share: 0.5,
        dataset_drift: true,
        report_id: None,
        champion_version: Some(1),
        metrics: Default::default(),
    }
}

fn trigger(id: &str) -> RetrainTrigger {
    RetrainTrigger {
        event_id: id.into(),
        kind: TriggerKind::Drift,
        time: OffsetDateTime::now_utc(),
        reason: "test".into(),
        window: None,
        drift_from_seq: None,
        drift_kind: None,
        data_seq: None,
    }
}

on_both_backends!(
    the_same_event_twice_trains_once,
    a_run_interrupted_after_registering_is_promoted_once_on_restart,
    repeated_failures_back_off_then_alert_and_dead_letter,
    a_schedule_requests_retrains_with_its_reason,
    a_trainer_stopped_before_its_run_leaves_the_event_for_the_next_one,
    a_champion_moved_by_someone_else_is_never_overwritten,
);

async fn the_same_event_twice_trains_once(backend: Backend) {
    let harness = Harness::start(backend).await;
    let mut world = World::new();
    harness.champion_on_a_then_b(&mut world).await;
    let healer = healer(&harness);

    let first = healer.retrain(&model(), &[trigger("evt-1")]).await.unwrap();
    assert_eq!(first, RunOutcome::Promoted { version: 2 });
    let again = healer.retrain(&model(), &[trigger("evt-1")]).await.unwrap();
    assert_eq!(again, RunOutcome::Reused { version: 2 });
    // Found through a coalesced id as well.
    let coalesced = healer
        .retrain(&model(), &[trigger("evt-9"), trigger("evt-1")])
        .await
        .unwrap();
    assert_eq!(coalesced, RunOutcome::Reused { version: 2 });
    assert_eq!(harness.versions().await.len(), 2);
    assert_eq!(harness.champion_version().await, Some(2));
    harness.stop().await;
}

async fn a_run_interrupted_after_registering_is_promoted_once_on_restart(backend: Backend) {
    let harness = Harness::start(backend).await;
    let mut world = World::new();
    let champion = world.records(1_000, &concept_a());
    harness.seed_champion(&champion).await;
    // What a trainer killed between RegisterVersion and SetAlias leaves behind: a version
    // whose gate passed, made for event `evt-crash`, the champion still at its parent.
    let (rows, labels) = world.records(500, &concept_b());
    let labels: Vec<String> = labels.into_iter().map(|l| l.label).collect();
    let artifact =
        mend_trainer::evaluate::train_and_compare(&rows, &labels, None, &Default::default())
            .unwrap()
            .candidate;
    let mut tag_map = std::collections::HashMap::new();
    tag_map.insert(tags::GATE.to_owned(), tags::PASS.to_owned());
    tag_map.insert(tags::GATE_REASON.to_owned(), "better".to_owned());
    let header = pb::RegisterVersionHeader {
        model: "churn".into(),
        schema_hash: artifact.schema.hash(),
        trigger: Some(pb::Trigger {
            event_id: "evt-crash".into(),
            kind: pb::TriggerKind::Drift as i32,
        }),
        parent_version: Some(1),
        tags: tag_map,
        ..pb::RegisterVersionHeader::default()
    };
    harness
        .registry
        .register(header, bytes::Bytes::from(artifact.to_bytes().unwrap()))
        .await
        .unwrap();

    let healer = healer(&harness);
    let resumed = healer
        .retrain(&model(), &[trigger("evt-crash")])
        .await
        .unwrap();
    assert_eq!(resumed, RunOutcome::Promoted { version: 2 });
    let again = healer
        .retrain(&model(), &[trigger("evt-crash")])
        .await
        .unwrap();
    assert_eq!(again, RunOutcome::Reused { version: 2 });
    assert_eq!(harness.versions().await.len(), 2);
    let moves = harness
        .registry
        .audit("churn")
        .await
        .unwrap()
        .into_iter()
        .filter(|record| {
            record.action == pb::AuditAction::SetAlias as i32
                && record.alias == mend_client::CHAMPION
                && record.version == 2
        })
        .count();
    assert_eq!(moves, 1, "promoted exactly once");
    harness.stop().await;
}

async fn repeated_failures_back_off_then_alert_and_dead_letter(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    // A registry nobody serves: every attempt fails as unavailable.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_millis(200));
    harness.registry = RegistryClient::connect_lazy(&endpoint, None);
    let mut config = test_config();
    config.max_attempts = 3;
    harness.start_trainer(config).await;
    // Raw deliveries: a dead letter is not an event and must not be decoded as one.
    let mut dead = harness
        .bus
        .consume(mend_bus::ConsumerSpec::new(
            "dead-letters",
            ["deadletter.>"],
        ))
        .await
        .unwrap();

    harness
        .publish(mend_bus::events::RetrainRequested {
            reason: "try".into(),
            window: None,
            requested_by: None,
        })
        .await;
    let alert = harness
        .wait_for(
            30,
            |e| matches!(&e.event, Event::Alert(a) if a.severity == Severity::Critical),
        )
        .await;
    let Event::Alert(alert) = alert.event else {
        unreachable!()
    };
    assert!(
        alert.text.contains("gave up after 3 attempts"),
        "{}",
        alert.text
    );
    assert_eq!(harness.runs(), 3);
    let letter = support::within(10, dead.next()).await.unwrap();
    assert_eq!(letter.subject, "deadletter.retrain.requested.churn");
    assert!(
        letter
            .headers
            .get(mend_bus::message::header::DEADLETTER_REASON)
            .is_some_and(|reason| reason.contains("gave up after 3 attempts")),
        "{:?}",
        letter.headers
    );
    harness.stop().await;
}

async fn a_schedule_requests_retrains_with_its_reason(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    harness.champion_on_a_then_b(&mut world).await;
    let mut config = test_config();
    config.schedules = BTreeMap::from([(model(), Duration::from_secs(1))]);
    harness.start_trainer(config).await;

    let trained = harness
        .wait_for(30, |e| matches!(&e.event, Event::ModelTrained(_)))
        .await;
    let Event::ModelTrained(trained) = trained.event else {
        unreachable!()
    };
    assert!(
        trained
            .trigger_event_id
            .unwrap()
            .starts_with("schedule-churn-")
    );
    let v2 = harness
        .versions()
        .await
        .into_iter()
        .find(|v| v.version == 2)
        .unwrap();
    assert_eq!(v2.trigger.unwrap().kind, pb::TriggerKind::Schedule as i32);
    assert_eq!(v2.tags[tags::TRIGGER_REASON], "schedule");
    harness.stop().await;
}

async fn a_trainer_stopped_before_its_run_leaves_the_event_for_the_next_one(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    harness.champion_on_a_then_b(&mut world).await;
    // A debounce no test waits out: the first trainer holds the trigger until it stops.
    let mut holding = test_config();
    holding.debounce = Duration::from_secs(600);
    harness.start_trainer(holding).await;

    // A drift alarm, because the trainer says when it has one in hand: it raises the drift
    // alert on the first delivery, then queues the trigger for its run. A trigger in hand at
    // shutdown is handed back to the bus, for the next trainer.
    let trigger = harness.publish(performance_drift()).await;
    harness
        .wait_for(30, |e| {
            matches!(&e.event, Event::Alert(a)
                if a.related_event_id.as_deref() == Some(trigger.id.as_str())
                    && a.text.contains("drift detected"))
        })
        .await;
    assert_eq!(harness.runs(), 0, "the trigger waits out its debounce");
    harness.restart_trainer(test_config()).await;

    // The second trainer's final decision on the trigger: it ran it, and the run is over.
    let decided = harness.final_decision(60, &trigger.id).await;
    assert_eq!(decided.decision, Decision::Acted, "{decided:?}");
    assert_eq!(decided.outcome.as_deref(), Some("promoted"), "{decided:?}");
    assert_eq!(decided.version, Some(2), "{decided:?}");
    assert_eq!(harness.runs(), 1);
    assert_eq!(harness.versions().await.len(), 2);
    // On record: one decision on the trigger (the first trainer made none, it only handed the
    // trigger back), and one move of the champion to version 2.
    let on_record: Vec<String> = harness
        .registry
        .audit("churn")
        .await
        .unwrap()
        .into_iter()
        .filter(|r| {
            r.action == pb::AuditAction::Decision as i32 && r.trigger_event_id == trigger.id
        })
        .map(|r| r.decision)
        .collect();
    assert_eq!(on_record, ["acted"]);
    assert_eq!(harness.champion_moves().await, [1, 2]);
    harness.stop().await;
}

async fn a_champion_moved_by_someone_else_is_never_overwritten(backend: Backend) {
    let harness = Harness::start(backend).await;
    let mut world = World::new();
    harness.champion_on_a_then_b(&mut world).await;
    let healer = healer(&harness);
    assert_eq!(
        healer.retrain(&model(), &[trigger("evt-a")]).await.unwrap(),
        RunOutcome::Promoted { version: 2 }
    );

    // A stale expectation is a conflict, not an error, and moves nothing.
    let stale = mend_trainer::registry::move_champion(
        &harness.registry,
        "churn",
        1,
        Some(1),
        "stale",
        "evt-stale",
    )
    .await
    .unwrap();
    assert!(matches!(
        stale,
        mend_trainer::registry::MoveOutcome::Conflict(_)
    ));
    assert_eq!(harness.champion_version().await, Some(2));

    // Someone moves the champion back by hand; replaying evt-a must not promote 2 again.
    harness
        .registry
        .set_alias(pb::SetAliasRequest {
            model: "churn".into(),
            alias: "champion".into(),
            version: 1,
            expected: None,
            actor: "operator".into(),
            reason: "manual".into(),
            trigger_event_id: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        healer.retrain(&model(), &[trigger("evt-a")]).await.unwrap(),
        RunOutcome::Reused { version: 2 }
    );
    assert_eq!(harness.champion_version().await, Some(1));
    harness.stop().await;
}
