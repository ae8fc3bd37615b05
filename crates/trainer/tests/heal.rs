//! The trainer end to end against the real registry: drift → retrain → promote, a noisy
//! candidate rejected, a burst coalesced, a raw JSON request over real NATS, and a promotion
//! rolled back by the guard. Every scenario but the raw `nats pub` runs on both buses (the
//! in-process one with the SQLite data log, and JetStream for both).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use mend_bus::DataLogExt;
use mend_bus::events::{Decision, DriftDetected, DriftKind, Event, RetrainRequested, Severity};
use mend_core::record::LabelRecord;
use mend_proto::registry::v1 as pb;
use mend_proto::registry::v1::get_version_request::Selector;
use mend_trainer::guard::{GUARDED_ALIAS, Guards};
use mend_trainer::lineage::{rows_hash, tags};
use mend_trainer::{GuardVerdict, TrainerMetrics};
use support::{Backend, Harness, World, concept_a, concept_b, model, noise, test_config};
use tokio_util::sync::CancellationToken;

fn drift() -> DriftDetected {
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

on_both_backends!(
    drift_retrains_registers_with_lineage_and_promotes_a_better_candidate,
    a_candidate_trained_on_noise_is_rejected_and_the_champion_stays,
    ten_duplicate_drift_events_cause_one_retrain,
    the_guard_rolls_back_a_promotion_that_does_worse_live,
    a_guard_counts_a_row_labeled_twice_once_and_still_decides,
    a_guard_cut_short_by_a_restart_resumes_and_rolls_back,
    a_guard_that_passed_is_not_resumed_after_a_restart,
    a_version_retrained_from_its_recorded_window_gets_the_same_rows_and_result,
    after_an_abrupt_change_the_retrain_trains_only_on_rows_since_the_drift_began,
    a_request_naming_its_window_skips_the_debounce_and_others_wait_it_out,
    triggers_for_a_model_the_registry_does_not_know_train_nothing,
);

async fn drift_retrains_registers_with_lineage_and_promotes_a_better_candidate(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    assert_eq!(
        harness
            .seed_champion(&world.records(1_000, &concept_a()))
            .await,
        1
    );
    let fresh = world.records(1_000, &concept_b());
    harness.append(&fresh).await;
    harness.start_trainer(test_config()).await;

    let trigger = harness.publish(drift()).await;
    let promoted = harness
        .wait_for(
            30,
            |e| matches!(&e.event, Event::ModelPromoted(p) if p.version == 2),
        )
        .await;
    assert_eq!(harness.champion_version().await, Some(2));
    let Event::ModelPromoted(promoted) = promoted.event else {
        unreachable!()
    };
    assert_eq!(promoted.previous, Some(1));

    let trained = harness
        .wait_for(5, |e| matches!(&e.event, Event::ModelTrained(_)))
        .await;
    let Event::ModelTrained(trained) = trained.event else {
        unreachable!()
    };
    assert_eq!(
        trained.trigger_event_id.as_deref(),
        Some(trigger.id.as_str())
    );
    assert_eq!(trained.trigger.as_deref(), Some("drift.detected"));
    assert!(trained.metrics["accuracy"] > trained.champion_metrics["accuracy"] + 0.3);

    // Lineage: trigger, window with its rows hash, parent, settings, both models' metrics.
    let versions = harness.versions().await;
    let v2 = versions.iter().find(|v| v.version == 2).unwrap();
    let trigger_meta = v2.trigger.as_ref().unwrap();
    assert_eq!(trigger_meta.event_id, trigger.id);
    assert_eq!(trigger_meta.kind, pb::TriggerKind::Drift as i32);
    assert_eq!(v2.parent_version, Some(1));
    let window = v2.data_window.as_ref().unwrap();
    assert_eq!(window.row_count, 1_000);
    assert!(window.from_seq < window.to_seq);
    let labels: Vec<String> = fresh.1.iter().map(|l| l.label.clone()).collect();
    assert_eq!(window.rows_hash, rows_hash(&fresh.0, &labels));
    assert!(v2.metrics["candidate.accuracy"] > 0.8, "{:?}", v2.metrics);
    assert!(v2.metrics["champion.accuracy"] < 0.3, "{:?}", v2.metrics);
    assert_eq!(v2.tags[tags::GATE], tags::PASS);
    let settings: serde_json::Value = serde_json::from_str(&v2.settings_json).unwrap();
    assert!(settings.get("holdout_fraction").is_some());

    // Alerts for the drift and the promotion.
    harness
        .wait_for(
            5,
            |e| matches!(&e.event, Event::Alert(a) if a.text.contains("drift")),
        )
        .await;
    harness
        .wait_for(
            5,
            |e| matches!(&e.event, Event::Alert(a) if a.text.contains("promoted")),
        )
        .await;
    harness.stop().await;
}

async fn a_candidate_trained_on_noise_is_rejected_and_the_champion_stays(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    harness
        .seed_champion(&world.records(1_000, &concept_a()))
        .await;
    // The training part of the window is noise; the newest rows (the holdout) are clean.
    harness.append(&world.records(800, &noise())).await;
    harness.append(&world.records(200, &concept_a())).await;
    harness.start_trainer(test_config()).await;

    let request = harness
        .publish(RetrainRequested {
            reason: "nightly".into(),
            window: None,
            requested_by: None,
        })
        .await;
    let rejected = harness
        .wait_for(30, |e| matches!(&e.event, Event::ModelRejected(_)))
        .await;
    let Event::ModelRejected(rejected) = rejected.event else {
        unreachable!()
    };
    assert_eq!(rejected.version, Some(2));
    assert!(
        rejected.reason.contains("does not beat"),
        "{}",
        rejected.reason
    );
    assert!(rejected.champion_metrics["accuracy"] > rejected.metrics["accuracy"]);
    assert_eq!(harness.champion_version().await, Some(1));
    let v2 = harness
        .versions()
        .await
        .into_iter()
        .find(|v| v.version == 2)
        .unwrap();
    assert_eq!(v2.tags[tags::GATE], tags::FAIL);
    assert_eq!(v2.trigger.unwrap().kind, pb::TriggerKind::Forced as i32);
    harness
        .wait_for(5, |e| matches!(&e.event, Event::Alert(a) if a.severity == Severity::Warning && a.text.contains("rejected")))
        .await;
    // The run is over once the request's decision is out, and the champion never moved, not
    // even for a moment: the registry's audit log holds every move.
    let decided = harness.final_decision(30, &request.id).await;
    assert_eq!(decided.decision, Decision::Acted, "{decided:?}");
    assert_eq!(decided.outcome.as_deref(), Some("rejected"), "{decided:?}");
    assert_eq!(harness.champion_moves().await, [1]);
    harness.stop().await;
}

async fn ten_duplicate_drift_events_cause_one_retrain(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    harness.champion_on_a_then_b(&mut world).await;
    // No guard: an alarm waits for the guard of the last promotion, and no labels come here.
    let mut config = test_config();
    config.guard.rows = 0;
    harness.start_trainer(config).await;

    let mut triggers = Vec::new();
    for _ in 0..10 {
        triggers.push(harness.publish(drift()).await.id);
    }
    harness
        .wait_for(
            30,
            |e| matches!(&e.event, Event::ModelPromoted(p) if p.version == 2),
        )
        .await;
    // Every trigger is settled: one led the run, the nine others merged into it. A second run
    // would need a trigger still waiting, and none is.
    let mut decided = Vec::new();
    for id in &triggers {
        decided.push(harness.final_decision(30, id).await);
    }
    let led: Vec<&str> = decided
        .iter()
        .filter(|d| d.decision == Decision::Acted)
        .map(|d| d.trigger_event_id.as_str())
        .collect();
    assert_eq!(led.len(), 1, "{decided:?}");
    for merged in decided.iter().filter(|d| d.decision != Decision::Acted) {
        assert_eq!(merged.decision, Decision::Merged, "{merged:?}");
        assert_eq!(merged.run_event_id.as_deref(), Some(led[0]), "{merged:?}");
    }
    assert_eq!(harness.runs(), 1);
    assert_eq!(harness.versions().await.len(), 2);
    let exposition = harness.metrics.encode().unwrap();
    assert!(
        exposition.contains(r#"mend_trainer_retrains_total{model="churn",outcome="promoted"} 1"#),
        "{exposition}"
    );
    let v2 = harness.versions().await.pop().unwrap();
    assert_eq!(v2.tags[tags::COALESCED_EVENT_IDS].split(',').count(), 9);
    let trained = harness
        .events
        .seen
        .iter()
        .filter(|e| matches!(e.event, Event::ModelTrained(_)))
        .count();
    assert_eq!(trained, 1);

    // A trigger after the run is not covered by it: it gets its own run.
    harness.publish(drift()).await;
    harness
        .wait_for(
            30,
            |e| matches!(&e.event, Event::ModelTrained(t) if t.version == 3),
        )
        .await;
    assert_eq!(harness.runs(), 2);
    harness.stop().await;
}

/// On JetStream only: what it checks is a plain `nats pub` (core NATS, no headers, no message
/// id) reaching the trainer through the stream, which the in-process bus has no equivalent of.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_retrain_from_raw_json_over_nats_trains_a_candidate() {
    let mut harness = Harness::start(Backend::JetStream).await;
    let mut world = World::new();
    harness.champion_on_a_then_b(&mut world).await;
    harness.start_trainer(test_config()).await;

    // Exactly what `nats pub retrain.requested.churn '{"v":1,"reason":"quarterly"}'` sends.
    let client = harness.jetstream.as_ref().unwrap().client().clone();
    client
        .publish(
            format!("retrain.requested.{}", model()),
            bytes::Bytes::from_static(br#"{"v":1,"reason":"quarterly"}"#),
        )
        .await
        .unwrap();
    client.flush().await.unwrap();

    let trained = harness
        .wait_for(60, |e| matches!(&e.event, Event::ModelTrained(_)))
        .await;
    let Event::ModelTrained(trained) = trained.event else {
        unreachable!()
    };
    assert_eq!(trained.trigger.as_deref(), Some("retrain.requested"));
    harness
        .wait_for(
            30,
            |e| matches!(&e.event, Event::ModelPromoted(p) if p.version == 2),
        )
        .await;
    let v2 = harness
        .versions()
        .await
        .into_iter()
        .find(|v| v.version == 2)
        .unwrap();
    assert_eq!(v2.tags[tags::TRIGGER_REASON], "quarterly");
    assert_eq!(v2.trigger.unwrap().kind, pb::TriggerKind::Forced as i32);
    assert_eq!(harness.champion_version().await, Some(2));
    harness.stop().await;
}

async fn the_guard_rolls_back_a_promotion_that_does_worse_live(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    drift_promotes_version_2(&mut harness, &mut world).await;
    // The world goes back to the old concept: version 2 is now worse than version 1.
    harness.append(&world.records(300, &concept_a())).await;

    assert_rolled_back_from_2_to_1(&mut harness).await;
    let alert = harness
        .wait_for(
            5,
            |e| matches!(&e.event, Event::Alert(a) if a.severity == Severity::Critical),
        )
        .await;
    let Event::Alert(alert) = alert.event else {
        unreachable!()
    };
    assert!(
        alert.text.contains("rolled back from version 2 to 1"),
        "{}",
        alert.text
    );
    assert!(alert.text.contains("live accuracy"), "{}", alert.text);
    harness.stop().await;
}

async fn a_guard_counts_a_row_labeled_twice_once_and_still_decides(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    drift_promotes_version_2(&mut harness, &mut world).await;
    // Back to the old concept, and the first row's label is corrected right away: among the
    // guard's first 200 labels there are only 199 rows. The correction has another value, as
    // the log stores a repeat of the same label for the same row once (a retried append).
    let (rows, mut labels) = world.records(300, &concept_a());
    let other = labels.iter().find(|l| l.label != labels[0].label).unwrap();
    let corrected = LabelRecord {
        label: other.label.clone(),
        ..labels[0].clone()
    };
    labels.insert(1, corrected);
    harness.data_log.append_rows(&model(), &rows).await.unwrap();
    let seqs = harness
        .data_log
        .append_labels(&model(), &labels)
        .await
        .unwrap();
    assert_ne!(seqs[0], seqs[1], "the row is labeled twice in the log");

    assert_rolled_back_from_2_to_1(&mut harness).await;
    harness.stop().await;
}

/// Seeds version 1 on the old concept, logs rows of a new one, starts a trainer, and lets
/// drift promote version 2 (a guard starts watching it).
async fn drift_promotes_version_2(harness: &mut Harness, world: &mut World) {
    harness.champion_on_a_then_b(world).await;
    harness.start_trainer(test_config()).await;
    harness.publish(drift()).await;
    harness
        .wait_for(
            30,
            |e| matches!(&e.event, Event::ModelPromoted(p) if p.version == 2),
        )
        .await;
}

async fn assert_rolled_back_from_2_to_1(harness: &mut Harness) {
    let rolled_back = harness
        .wait_for(30, |e| matches!(&e.event, Event::ModelRolledBack(_)))
        .await;
    let Event::ModelRolledBack(rolled_back) = rolled_back.event else {
        unreachable!()
    };
    assert_eq!((rolled_back.from_version, rolled_back.to_version), (2, 1));
    assert_eq!(harness.champion_version().await, Some(1));
}

fn guards(harness: &Harness) -> Guards {
    Guards::new(
        Arc::clone(&harness.bus),
        Arc::clone(&harness.data_log),
        harness.registry.clone(),
        test_config().guard,
        TrainerMetrics::register(&mend_runtime::Metrics::new()),
        CancellationToken::new(),
    )
}

async fn a_guard_cut_short_by_a_restart_resumes_and_rolls_back(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    drift_promotes_version_2(&mut harness, &mut world).await;
    // The trainer stops before any label arrives after the promotion; its guard with it.
    harness.trainer_shutdown.cancel();
    let trainer = harness.trainer.take().unwrap();
    support::within(20, trainer.wait()).await;
    // The world goes back to the old concept, partly while no trainer runs: the resumed
    // guard must judge from the promotion on, not from its own start.
    harness.append(&world.records(150, &concept_a())).await;
    harness.trainer_shutdown = CancellationToken::new();
    harness.start_trainer(test_config()).await;
    harness.append(&world.records(150, &concept_a())).await;

    assert_rolled_back_from_2_to_1(&mut harness).await;
    harness.stop().await;
}

async fn a_guard_that_passed_is_not_resumed_after_a_restart(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    drift_promotes_version_2(&mut harness, &mut world).await;
    let mut verdicts = harness.trainer.as_ref().unwrap().guard_verdicts();
    // The new concept holds: version 2 does better live, and the guard passes.
    harness.append(&world.records(300, &concept_b())).await;
    let (_, version, verdict) = support::within(30, verdicts.recv()).await.unwrap();
    assert_eq!(version, 2);
    assert!(matches!(verdict, GuardVerdict::Kept { .. }), "{verdict:?}");
    let guarded = harness
        .registry
        .metadata("churn", Selector::Alias(GUARDED_ALIAS.into()))
        .await
        .unwrap();
    assert_eq!(
        guarded.version, 2,
        "the verdict is recorded in the registry"
    );

    harness.restart_trainer(test_config()).await;
    assert_eq!(
        guards(&harness).resume(&model(), false).await.unwrap(),
        None
    );
    assert_eq!(guards(&harness).resume_all().await.unwrap(), Vec::new());
    assert_eq!(harness.champion_version().await, Some(2));
    harness.stop().await;
}

async fn a_version_retrained_from_its_recorded_window_gets_the_same_rows_and_result(
    backend: Backend,
) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    harness.champion_on_a_then_b(&mut world).await;
    // No guard: the newer rows below would otherwise roll version 2 back.
    let mut config = test_config();
    config.guard.rows = 0;
    harness.start_trainer(config).await;
    harness.publish(drift()).await;
    harness
        .wait_for(
            30,
            |e| matches!(&e.event, Event::ModelPromoted(p) if p.version == 2),
        )
        .await;
    // Newer rows arrive; the request names version 2's window, so they must not matter.
    harness.append(&world.records(500, &concept_a())).await;
    let v2 = harness.versions().await.pop().unwrap();
    let recorded = v2.data_window.clone().unwrap();
    harness
        .publish(request_for(
            "reproduce v2",
            recorded.from_seq,
            recorded.to_seq,
            recorded.row_count,
        ))
        .await;
    harness
        .wait_for(
            30,
            |e| matches!(&e.event, Event::ModelTrained(t) if t.version == 3),
        )
        .await;
    let v3 = harness.versions().await.pop().unwrap();
    let window = v3.data_window.clone().unwrap();
    assert_eq!(window.rows_hash, recorded.rows_hash);
    assert_eq!(window.row_count, recorded.row_count);
    assert_eq!(
        v3.metrics["candidate.accuracy"],
        v2.metrics["candidate.accuracy"]
    );
    // Identical to the champion, so it cannot beat it: rejected, champion unchanged.
    assert_eq!(v3.tags[tags::GATE], tags::FAIL);
    assert_eq!(harness.champion_version().await, Some(2));
    harness.stop().await;
}

/// A request naming its window: labels `from_seq..=to_seq`, `rows` of them.
fn request_for(reason: &str, from_seq: u64, to_seq: u64, rows: u64) -> RetrainRequested {
    RetrainRequested {
        reason: reason.into(),
        window: Some(mend_bus::events::DataWindow::sequence(
            from_seq, to_seq, rows,
        )),
        requested_by: Some("test".into()),
    }
}

/// A data-drift event whose window starts where the drift began (as the monitor sends it).
fn drift_from(from_seq: u64, to_seq: u64) -> DriftDetected {
    DriftDetected {
        kind: DriftKind::Data,
        window: mend_bus::events::DataWindow::sequence(from_seq, to_seq, to_seq - from_seq + 1),
        ..drift()
    }
}

async fn after_an_abrupt_change_the_retrain_trains_only_on_rows_since_the_drift_began(
    backend: Backend,
) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    harness
        .seed_champion(&world.records(1_000, &concept_a()))
        .await;
    // Live rows of the old world, then the change: newer rows follow the flipped concept.
    harness.append(&world.records(2_000, &concept_a())).await;
    let (rows, labels) = world.records(1_000, &concept_b());
    let row_seqs = harness.data_log.append_rows(&model(), &rows).await.unwrap();
    harness
        .data_log
        .append_labels(&model(), &labels)
        .await
        .unwrap();
    let (from_seq, to_seq) = (row_seqs[0], *row_seqs.last().unwrap());
    // No guard: the fallback step below appends no labels, and a guard would only wait.
    let mut config = test_config();
    config.guard.rows = 0;
    harness.start_trainer(config).await;

    let trigger = harness.publish(drift_from(from_seq, to_seq)).await;
    harness
        .wait_for(
            30,
            |e| matches!(&e.event, Event::ModelPromoted(p) if p.version == 2),
        )
        .await;
    let v2 = harness.versions().await.pop().unwrap();
    assert_eq!(v2.trigger.as_ref().unwrap().event_id, trigger.id);
    // Exactly the rows since the change, not the newest 20,000 (which hold the old world too).
    let window = v2.data_window.clone().unwrap();
    assert_eq!(window.row_count, 1_000);
    let names: Vec<String> = labels.iter().map(|l| l.label.clone()).collect();
    assert_eq!(window.rows_hash, rows_hash(&rows, &names));
    assert!(window.from_seq > to_seq, "labels follow their rows");
    assert_eq!(v2.tags[tags::DRIFT_FROM_SEQ], from_seq.to_string());
    assert!(
        v2.metrics["candidate.accuracy"] > 0.8,
        "a model of the new world alone: {:?}",
        v2.metrics
    );

    // Drift that names a start with too few labeled rows since (here: none) falls back to
    // the newest rows, and says nothing of a drift start in lineage.
    let future = to_seq + 1_000_000;
    harness.publish(drift_from(future, future + 10)).await;
    harness
        .wait_for(
            30,
            |e| matches!(&e.event, Event::ModelTrained(t) if t.version == 3),
        )
        .await;
    let v3 = harness.versions().await.pop().unwrap();
    assert_eq!(v3.data_window.unwrap().row_count, 3_000);
    assert!(!v3.tags.contains_key(tags::DRIFT_FROM_SEQ));
    harness.stop().await;
}

async fn a_request_naming_its_window_skips_the_debounce_and_others_wait_it_out(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    harness.champion_on_a_then_b(&mut world).await;
    let mut config = test_config();
    config.guard.rows = 0;
    // A debounce no test waits out: only a run that skips it can finish here. No cooldown
    // either, so nothing but the debounce stands between one run and the next.
    config.debounce = Duration::from_secs(600);
    config.cooldown = Duration::ZERO;
    harness.start_trainer(config).await;
    let labels = harness
        .data_log
        .read_labels(&model(), &mend_bus::Window::last(1_000))
        .await
        .unwrap();
    let (first, last) = (labels[0].seq, labels[labels.len() - 1].seq);
    let named = harness
        .publish(request_for(
            "on the newest 1,000",
            first,
            last,
            labels.len() as u64,
        ))
        .await;
    // Right behind it, a request without a window: it could be coalesced with others, so it
    // waits the debounce out. Both are on one subject, so the trainer takes them in this
    // order, and the second comes in while the first runs.
    harness
        .publish(RetrainRequested {
            reason: "the newest rows".into(),
            window: None,
            requested_by: Some("test".into()),
        })
        .await;
    // The named one runs alone whatever the debounce, so it does not wait for one.
    let decided = harness.final_decision(60, &named.id).await;
    assert_eq!(decided.decision, Decision::Acted, "{decided:?}");
    assert_eq!(decided.version, Some(2), "{decided:?}");
    // Its run is over, and the next one, with only the debounce before it, has not started.
    assert_eq!(harness.versions().await.len(), 2);
    assert_eq!(harness.runs(), 1);
    harness.stop().await;
}

/// Finding 5 of issue 16: a trigger is a hint. Forged drift alarms and requests for a model the
/// registry has never seen, with plenty of labeled rows in the log, train nothing: each ends in
/// a decision that says why, and the registry still knows no such model.
async fn triggers_for_a_model_the_registry_does_not_know_train_nothing(backend: Backend) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    harness.append(&world.records(1_000, &concept_b())).await;
    harness.start_trainer(test_config()).await;

    let forged = [
        harness.publish(drift()).await,
        harness
            .publish(RetrainRequested {
                reason: "forged".into(),
                window: None,
                requested_by: Some("nobody".into()),
            })
            .await,
    ];
    for trigger in &forged {
        let decided = harness
            .wait_for(30, |e| {
                matches!(&e.event, Event::RetrainDecided(d)
                    if d.trigger_event_id == trigger.id && d.decision == Decision::Dropped)
            })
            .await;
        let Event::RetrainDecided(decided) = decided.event else {
            unreachable!()
        };
        assert_eq!(decided.outcome.as_deref(), Some("skipped"), "{decided:?}");
        assert!(
            decided.reason.contains("knows no model named churn"),
            "{}",
            decided.reason
        );
        assert_eq!(decided.version, None);
    }
    // Both runs ended (their decisions are out), and neither trained or registered anything.
    assert!(harness.versions().await.is_empty());
    assert_eq!(harness.champion_version().await, None);
    assert!(
        !harness
            .events
            .seen
            .iter()
            .any(|e| matches!(e.event, Event::ModelTrained(_) | Event::ModelPromoted(_))),
        "{}",
        harness.events.describe_seen()
    );
    harness.stop().await;
}
