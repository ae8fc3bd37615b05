//! Recall: when a world comes back, the champion that once served it competes with the fresh
//! candidate on the same held-out rows, and wins the champion's place back when it is better.
//! Every scenario runs on both buses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mend_bus::DataKind;
use mend_bus::events::{DataWindow, DriftDetected, DriftKind, Event};
use mend_core::TrainSettings;
use mend_proto::registry::v1 as pb;
use mend_trainer::TrainerConfig;
use mend_trainer::config::GuardPolicy;
use mend_trainer::lineage::tags;
use mend_worlds::SyntheticSpec;
use support::{Backend, Harness, World, concept_a, concept_b, model, test_config};

/// Labeled rows of the first world after it comes back, when the trainer is asked.
const RETURNED: usize = 500;

/// A world with twenty numeric features and two categorical ones and a moderate signal: a
/// model needs hundreds of rows to learn it well.
fn world() -> World {
    World::with_spec(SyntheticSpec {
        numeric: 20,
        categorical: 2,
        signal: 1.5,
        ..SyntheticSpec::default()
    })
}

fn config(recall_versions: usize) -> TrainerConfig {
    TrainerConfig {
        recall_versions,
        // Most of each window judges, a fifth trains: of the first world's 500 rows after its
        // return the candidate learns from 100, and every contender is scored on 400, where
        // the first champion learned from 800 rows of that world.
        train: TrainSettings {
            holdout_fraction: 0.8,
            ..TrainSettings::default()
        },
        // The guard would undo the move to the second world's model by itself once the first
        // world is back; this is about what a retrain chooses.
        guard: GuardPolicy {
            rows: 0,
            ..test_config().guard
        },
        ..test_config()
    }
}

/// A performance alarm on the champion `champion`, whose drift began at data-log `from_seq`.
fn alarm(champion: u64, from_seq: u64, to_seq: u64) -> DriftDetected {
    DriftDetected {
        kind: DriftKind::Performance,
        window: DataWindow {
            from_seq: Some(from_seq),
            to_seq: Some(to_seq),
            ..DataWindow::default()
        },
        features: Vec::new(),
        dataset_share: 0.0,
        dataset_drift: false,
        report_id: None,
        champion_version: Some(champion),
        metrics: Default::default(),
    }
}

async fn newest_seq(harness: &Harness) -> u64 {
    let mut newest = 0;
    for kind in DataKind::ALL {
        if let Some(seq) = harness.data_log.latest_seq(&model(), kind).await.unwrap() {
            newest = newest.max(seq);
        }
    }
    newest
}

/// World A (version 1), then B (version 2, trained by the trainer), then A again with only
/// [`RETURNED`] labeled rows since its return; returns the decision on the last alarm.
async fn a_then_b_then_a(harness: &mut Harness) -> mend_bus::events::RetrainDecided {
    let mut world = world();
    harness.champion_on_a_then_b(&mut world).await;
    let to_b = harness
        .publish(alarm(1, 1, newest_seq(harness).await))
        .await;
    let decided = harness.final_decision(60, &to_b.id).await;
    assert_eq!(decided.outcome.as_deref(), Some("promoted"), "{decided:?}");
    assert_eq!(harness.champion_version().await, Some(2));

    let back_from = newest_seq(harness).await + 1;
    harness.append(&world.records(RETURNED, &concept_a())).await;
    let to_a = harness
        .publish(alarm(2, back_from, newest_seq(harness).await))
        .await;
    harness.final_decision(60, &to_a.id).await
}

async fn a_world_that_comes_back_gets_its_first_champion_back(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    harness.start_trainer(config(10)).await;
    let decided = a_then_b_then_a(&mut harness).await;

    // The candidate (version 3), trained on the few rows since A came back, lost to version 1
    // on the same held-out rows: version 1 is the champion again, no new version is served.
    assert_eq!(decided.outcome.as_deref(), Some("recalled"), "{decided:?}");
    assert_eq!(decided.version, Some(1), "{decided:?}");
    assert_eq!(harness.champion_version().await, Some(1));
    assert_eq!(harness.champion_moves().await, vec![1, 2, 1]);
    // The registry announces a move to an older version as `model.rolled_back` (its one
    // rule for every champion move); the reason says it is a recall.
    let announced = harness
        .wait_for(30, |e| {
            matches!(&e.event, Event::ModelRolledBack(r) if r.from_version == 2 && r.to_version == 1)
        })
        .await;
    let Event::ModelRolledBack(announced) = announced.event else {
        unreachable!()
    };

    // The candidate is on record as rejected in favour of version 1, and a repeated run
    // would read that from its tags.
    let versions = harness.versions().await;
    let candidate = versions.iter().find(|v| v.version == 3).unwrap();
    assert_eq!(
        candidate.tags.get(tags::GATE).map(String::as_str),
        Some(tags::FAIL)
    );
    assert_eq!(
        candidate.tags.get(tags::RECALLED).map(String::as_str),
        Some("1")
    );
    harness
        .wait_for(30, |e| {
            matches!(&e.event, Event::ModelRejected(r)
                if r.version == Some(3) && r.reason.starts_with("past version 1 did better"))
        })
        .await;

    // The move names every contender's score on the held-out rows.
    let audit = mend_trainer::registry::audit(&harness.registry, "churn")
        .await
        .unwrap();
    let recall = audit
        .iter()
        .rev()
        .find(|r| r.action == pb::AuditAction::SetAlias as i32 && r.version == 1)
        .unwrap();
    for named in [
        "recalled version 1",
        "candidate v3 ",
        "champion v2 ",
        ", v1 ",
    ] {
        assert!(
            recall.reason.contains(named),
            "{named:?} in {}",
            recall.reason
        );
    }
    assert!(
        announced.reason.starts_with("recalled version 1"),
        "{}",
        announced.reason
    );
    harness.stop().await;
}

async fn without_recall_the_same_world_gets_a_new_version_instead(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    harness.start_trainer(config(0)).await;
    let decided = a_then_b_then_a(&mut harness).await;
    assert_eq!(decided.outcome.as_deref(), Some("promoted"), "{decided:?}");
    assert_eq!(decided.version, Some(3), "{decided:?}");
    assert_eq!(harness.champion_moves().await, vec![1, 2, 3]);
    harness.stop().await;
}

async fn a_world_that_does_not_come_back_recalls_nothing(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    harness.start_trainer(config(10)).await;
    let mut world = world();
    harness.champion_on_a_then_b(&mut world).await;
    let first = harness
        .publish(alarm(1, 1, newest_seq(&harness).await))
        .await;
    // Version 1 (world A) is judged beside the candidate on B's rows and loses to it.
    let decided = harness.final_decision(60, &first.id).await;
    assert_eq!(decided.outcome.as_deref(), Some("promoted"), "{decided:?}");
    assert_eq!(decided.version, Some(2));
    // It stays B: B's rows go on, and a run on them keeps the champion or trains anew.
    let from = newest_seq(&harness).await + 1;
    harness.append(&world.records(400, &concept_b())).await;
    let again = harness
        .publish(alarm(2, from, newest_seq(&harness).await))
        .await;
    let decided = harness.final_decision(60, &again.id).await;
    assert_ne!(decided.outcome.as_deref(), Some("recalled"), "{decided:?}");
    assert_ne!(harness.champion_version().await, Some(1));
    harness.stop().await;
}

on_both_backends!(
    a_world_that_comes_back_gets_its_first_champion_back,
    without_recall_the_same_world_gets_a_new_version_instead,
    a_world_that_does_not_come_back_recalls_nothing,
);
