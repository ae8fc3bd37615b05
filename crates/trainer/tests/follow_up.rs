//! Follow-ups: a promotion for performance drift is checked again once enough rows are
//! labeled after it, with a retrain the trainer requests itself; the chain goes on while each
//! follow-up wins clearly and ends when one does not. Every scenario runs on both buses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use mend_bus::events::{DriftDetected, DriftKind, Envelope, Event};
use mend_bus::{DataLogExt, Window};
use mend_proto::registry::v1 as pb;
use mend_trainer::TrainerConfig;
use mend_trainer::config::GuardPolicy;
use mend_trainer::follow_up::{FollowUpPolicy, FollowUps, request_id};
use mend_trainer::lineage::tags;
use support::{Backend, Harness, World, concept_a, concept_b, model, noise, test_config};

const LABELS: usize = 400;

fn config(margin: f64) -> TrainerConfig {
    with_patience(margin, 0)
}

fn with_patience(margin: f64, patience: u32) -> TrainerConfig {
    TrainerConfig {
        follow_up: FollowUpPolicy {
            labels: LABELS,
            window: 300,
            margin,
            patience,
            poll: Duration::from_millis(100),
        },
        // The concept flips back and forth here, which the rollback guard would undo, and
        // where recall would bring back the first concept's champion instead of a follow-up's
        // candidate (recall.rs is about that).
        guard: GuardPolicy {
            rows: 0,
            ..test_config().guard
        },
        recall_versions: 0,
        ..test_config()
    }
}

fn drift(kind: DriftKind) -> DriftDetected {
    DriftDetected {
        kind,
        window: Default::default(),
        features: Vec::new(),
        dataset_share: 0.0,
        dataset_drift: false,
        report_id: None,
        champion_version: Some(1),
        metrics: Default::default(),
    }
}

fn follow_up_of(version: u64) -> impl Fn(&Envelope) -> bool {
    follow_up_again(version, 0)
}

/// The follow-up request of champion `version` after `attempt` rejected ones (0: the first).
fn follow_up_again(version: u64, attempt: u32) -> impl Fn(&Envelope) -> bool {
    let id = request_id(&model(), version, attempt);
    move |e| e.id == id && matches!(&e.event, Event::RetrainRequested(_))
}

fn rejected(version: u64) -> impl Fn(&Envelope) -> bool {
    move |e| matches!(&e.event, Event::ModelRejected(r) if r.version == Some(version))
}

fn promoted(version: u64) -> impl Fn(&Envelope) -> bool {
    move |e| matches!(&e.event, Event::ModelPromoted(p) if p.version == version)
}

/// v1 on concept a, rows of concept b, then performance drift: v2 (concept b) is promoted.
async fn performance_drift_promotes_v2(harness: &mut Harness, world: &mut World) {
    harness.champion_on_a_then_b(world).await;
    harness.publish(drift(DriftKind::Performance)).await;
    harness.wait_for(30, promoted(2)).await;
}

/// Whether the trainer armed a follow-up of `version` when it promoted it: the decision is
/// made, and recorded in the version's tags, at the promotion. The tag is what the trainer
/// (and a restarted one) watches labels for, so a version without it is never followed up.
fn armed(version: u64, versions: &[pb::VersionMetadata]) -> bool {
    versions
        .iter()
        .find(|v| v.version == version)
        .and_then(|v| v.tags.get(tags::FOLLOW_UP))
        .is_some_and(|value| value == tags::ARMED)
}

on_both_backends!(
    a_promotion_for_performance_drift_is_followed_up_while_the_concept_keeps_moving,
    a_follow_up_that_does_not_win_by_the_margin_ends_the_chain,
    a_rejected_follow_up_is_asked_again_while_the_patience_lasts,
    a_promotion_for_data_drift_is_not_followed_up,
    a_restarted_trainer_follows_up_the_promotion_the_last_one_armed,
);

async fn a_promotion_for_performance_drift_is_followed_up_while_the_concept_keeps_moving(
    backend: Backend,
) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    harness.start_trainer(config(0.02)).await;
    performance_drift_promotes_v2(&mut harness, &mut world).await;

    // The concept moves on after the promotion.
    harness.append(&world.records(LABELS, &concept_a())).await;
    let request = harness.wait_for(30, follow_up_of(2)).await;
    let Event::RetrainRequested(request) = request.event else {
        unreachable!()
    };
    assert!(
        request.reason.starts_with("follow-up"),
        "{}",
        request.reason
    );
    // The newest `window` of the labels logged after the promotion, named as a label range.
    let labels = harness
        .data_log
        .read_labels(&model(), &Window::last(300))
        .await
        .unwrap();
    let window = request.window.expect("the follow-up names its rows");
    assert_eq!(window.from_seq, Some(labels[0].seq));
    assert_eq!(window.to_seq, Some(labels[299].seq));
    assert_eq!(window.rows, Some(300));

    // It wins by far (the concept flipped back), so it is promoted and followed up in turn.
    harness.wait_for(30, promoted(3)).await;
    let versions = harness.versions().await;
    let v3 = versions.iter().find(|v| v.version == 3).unwrap();
    assert_eq!(
        v3.trigger.as_ref().unwrap().kind,
        pb::TriggerKind::FollowUp as i32
    );
    assert_eq!(v3.data_window.as_ref().unwrap().row_count, 300);
    harness.append(&world.records(LABELS, &concept_a())).await;
    harness.wait_for(30, follow_up_of(3)).await;
    harness.stop().await;
}

async fn a_follow_up_that_does_not_win_by_the_margin_ends_the_chain(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    // No candidate beats a champion by a whole accuracy point of 1.0.
    harness.start_trainer(config(1.0)).await;
    performance_drift_promotes_v2(&mut harness, &mut world).await;
    harness.append(&world.records(LABELS, &concept_a())).await;
    harness.wait_for(30, follow_up_of(2)).await;
    harness.wait_for(30, promoted(3)).await;

    // Version 2's win armed a follow-up (it came), version 3's narrower one did not, so no
    // follow-up of version 3 can ever come.
    let versions = harness.versions().await;
    assert!(armed(2, &versions), "{versions:?}");
    assert!(
        !armed(3, &versions),
        "version 3 won by less than the margin: no follow-up armed"
    );
    harness.append(&world.records(LABELS, &concept_a())).await;
    assert!(
        !harness.events.seen.iter().any(follow_up_of(3)),
        "version 3 won by less than the margin: no follow-up"
    );
    assert_eq!(harness.champion_version().await, Some(3));
    harness.stop().await;
}

async fn a_rejected_follow_up_is_asked_again_while_the_patience_lasts(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    // Only the flip clears this gate: no candidate trained on noise beats a champion by 0.3.
    let mut config = with_patience(0.0, 1);
    config.gate.margin = 0.3;
    harness.start_trainer(config).await;
    performance_drift_promotes_v2(&mut harness, &mut world).await;

    harness.append(&world.records(LABELS, &noise())).await;
    harness.wait_for(30, follow_up_of(2)).await;
    harness.wait_for(30, rejected(3)).await;
    // The follow-up's run is over once its decision is out, and with it the trainer's choice
    // to ask again, counted from the labels logged at the rejection: only labels logged from
    // here on count toward the next attempt.
    let first = request_id(&model(), 2, 0);
    let decided = harness.final_decision(30, &first).await;
    assert_eq!(decided.outcome.as_deref(), Some("rejected"), "{decided:?}");
    // Version 2 is followed up once more, as soon as a fresh window (300) of labels is
    // logged after the rejection...
    harness.append(&world.records(300, &noise())).await;
    let again = harness.wait_for(30, follow_up_again(2, 1)).await;
    let Event::RetrainRequested(again) = again.event else {
        unreachable!()
    };
    assert!(
        again.reason.contains("after 1 rejected"),
        "{}",
        again.reason
    );
    harness.wait_for(30, rejected(4)).await;
    let second = request_id(&model(), 2, 1);
    let decided = harness.final_decision(30, &second).await;
    assert_eq!(decided.outcome.as_deref(), Some("rejected"), "{decided:?}");
    // ...and the second rejection in a row ends the chain: the trainer says so, where it
    // would otherwise have armed a third attempt.
    let ended = harness
        .wait_for(30, |e| {
            matches!(&e.event, Event::Alert(a)
                if a.related_event_id.as_deref() == Some(second.as_str())
                    && a.text.contains("its follow-ups end"))
        })
        .await;
    let Event::Alert(ended) = ended.event else {
        unreachable!()
    };
    assert!(
        ended.text.contains("followed up 2 time(s)"),
        "{}",
        ended.text
    );
    assert!(!harness.events.seen.iter().any(follow_up_again(2, 2)));
    // A trainer started now reads the ended chain from the audit log: it resumes nothing.
    let follow_ups = FollowUps::new(
        Arc::clone(&harness.bus),
        Arc::clone(&harness.data_log),
        harness.registry.clone(),
        with_patience(0.0, 1).follow_up,
        CancellationToken::new(),
    );
    assert_eq!(follow_ups.resume_all().await.unwrap(), Vec::new());
    // With more patience, the same record resumes the chain at its third attempt.
    let stop_patient = CancellationToken::new();
    let patient = FollowUps::new(
        Arc::clone(&harness.bus),
        Arc::clone(&harness.data_log),
        harness.registry.clone(),
        with_patience(0.0, 2).follow_up,
        stop_patient.clone(),
    );
    assert_eq!(patient.resume_all().await.unwrap(), vec![(model(), 2)]);
    stop_patient.cancel();
    assert_eq!(harness.champion_version().await, Some(2));
    assert_eq!(harness.versions().await.len(), 4);
    harness.stop().await;
}

async fn a_promotion_for_data_drift_is_not_followed_up(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    harness.start_trainer(config(0.02)).await;
    harness.champion_on_a_then_b(&mut world).await;
    harness.publish(drift(DriftKind::Data)).await;
    harness.wait_for(30, promoted(2)).await;

    // Decided at the promotion: no follow-up armed, so none can ever come.
    let versions = harness.versions().await;
    assert!(!armed(2, &versions), "{versions:?}");
    harness.append(&world.records(LABELS, &concept_b())).await;
    assert!(!harness.events.seen.iter().any(follow_up_of(2)));
    assert_eq!(harness.champion_version().await, Some(2));
    harness.stop().await;
}

async fn a_restarted_trainer_follows_up_the_promotion_the_last_one_armed(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    harness.start_trainer(config(0.02)).await;
    performance_drift_promotes_v2(&mut harness, &mut world).await;
    let versions = harness.versions().await;
    assert!(armed(2, &versions), "{versions:?}");

    // The trainer that armed the follow-up stops before the labels come; the next one reads
    // it back from the registry.
    harness.restart_trainer(config(0.02)).await;
    harness.append(&world.records(LABELS, &concept_a())).await;
    harness.wait_for(30, follow_up_of(2)).await;
    harness.wait_for(30, promoted(3)).await;
    harness.stop().await;
}
