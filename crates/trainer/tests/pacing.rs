#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Healing paced by data, not by the clock: the cooldown is counted in labels, an alarm that
//! must wait is deferred (and told so) and acted on once the labels are in, the same stream
//! gives the same runs however fast it arrives, a world that moves while the model does not
//! suffer backs off, and a named window finds its rows however much was logged since. Every
//! scenario runs on both buses (the in-process one with the SQLite data log, and JetStream).

mod support;

use mend_bus::events::{DataWindow, Decision, DriftDetected, DriftKind, Event, RetrainDecided};
use mend_bus::{DataKind, DataLogExt, Envelope, Window};
use mend_core::record::{PredictionRecord, RowRecord};
use mend_proto::registry::v1 as pb;
use support::*;

/// A drift alarm raised at data-log position `to_seq`, of `kind`.
fn alarm(kind: DriftKind, to_seq: u64) -> DriftDetected {
    DriftDetected {
        kind,
        window: DataWindow {
            to_seq: Some(to_seq),
            ..DataWindow::default()
        },
        features: Vec::new(),
        dataset_share: 0.5,
        dataset_drift: true,
        report_id: None,
        champion_version: None,
        metrics: Default::default(),
    }
}

/// The decisions recorded on the trigger `id`, in order.
fn decisions(harness: &Harness, id: &str) -> Vec<RetrainDecided> {
    harness
        .events
        .seen
        .iter()
        .filter_map(|e| match &e.event {
            Event::RetrainDecided(d) if d.trigger_event_id == id => Some(d.clone()),
            _ => None,
        })
        .collect()
}

fn is_decision(id: &str, decision: Decision) -> impl Fn(&Envelope) -> bool + '_ {
    move |e| matches!(&e.event, Event::RetrainDecided(d) if d.trigger_event_id == id && d.decision == decision)
}

/// A final decision (anything but a deferral) on `id`.
fn is_final(id: &str) -> impl Fn(&Envelope) -> bool + '_ {
    move |e| matches!(&e.event, Event::RetrainDecided(d) if d.trigger_event_id == id && d.decision != Decision::Deferred)
}

/// Publishes `alarm` and waits for the trainer's first decision on it; returns its id.
async fn raise_and_wait(harness: &mut Harness, alarm: DriftDetected) -> String {
    let id = harness.publish(alarm).await.id;
    harness
        .wait_for(
            60,
            |e| matches!(&e.event, Event::RetrainDecided(d) if d.trigger_event_id == id),
        )
        .await;
    id
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

on_both_backends!(
    an_alarm_during_the_cooldown_is_deferred_then_acted_on_and_both_are_on_record,
    the_same_stream_gives_the_same_runs_slow_or_fast,
    rejected_retrains_for_data_drift_alone_back_off_in_labels_and_a_performance_alarm_does_not_wait_for_it,
    a_named_window_finds_its_rows_after_a_hundred_times_as_many_other_rows,
);

async fn an_alarm_during_the_cooldown_is_deferred_then_acted_on_and_both_are_on_record(
    backend: Backend,
) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    harness.champion_on_a_then_b(&mut world).await;
    harness.start_trainer(paced_config(300)).await;

    let first = harness
        .publish(alarm(DriftKind::Performance, newest_seq(&harness).await))
        .await;
    harness
        .wait_for(30, is_decision(&first.id, Decision::Acted))
        .await;
    let acted = decisions(&harness, &first.id);
    assert_eq!(acted.len(), 1, "{acted:?}");
    assert_eq!(acted[0].outcome.as_deref(), Some("promoted"));
    assert_eq!(acted[0].version, Some(2));

    // 100 more labels, then another alarm: within the 300-label cooldown of the last run.
    harness.append(&world.records(100, &concept_b())).await;
    let second = harness
        .publish(alarm(DriftKind::Performance, newest_seq(&harness).await))
        .await;
    let deferred = harness
        .wait_for(30, is_decision(&second.id, Decision::Deferred))
        .await;
    let Event::RetrainDecided(deferred) = deferred.event else {
        unreachable!()
    };
    assert_eq!(deferred.until_labels, Some(300));
    assert!(deferred.reason.contains("cooldown"), "{}", deferred.reason);
    assert_eq!(harness.runs(), 1, "a deferred alarm does not run");

    // The labels come in: the alarm is judged again, and acted on.
    harness.append(&world.records(250, &concept_b())).await;
    harness
        .wait_for(30, is_decision(&second.id, Decision::Acted))
        .await;
    assert_eq!(harness.runs(), 2);
    let recorded: Vec<Decision> = decisions(&harness, &second.id)
        .iter()
        .map(|d| d.decision)
        .collect();
    assert_eq!(recorded, vec![Decision::Deferred, Decision::Acted]);
    // The same decisions are on the model's audit log in the registry (`mend models audit`),
    // recorded before they were announced.
    let audit = mend_trainer::registry::audit(&harness.registry, "churn")
        .await
        .unwrap();
    let on_record: Vec<(String, String, String, u64)> = audit
        .iter()
        .filter(|r| r.action == pb::AuditAction::Decision as i32)
        .map(|r| {
            (
                r.trigger_event_id.clone(),
                r.decision.clone(),
                r.outcome.clone(),
                r.version,
            )
        })
        .collect();
    let announced: Vec<(String, String, String, u64)> = [&first.id, &second.id]
        .into_iter()
        .flat_map(|id| decisions(&harness, id))
        .map(|d| {
            (
                d.trigger_event_id.clone(),
                d.decision.as_str().to_owned(),
                d.outcome.clone().unwrap_or_default(),
                d.version.unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(on_record, announced);
    assert_eq!(
        on_record[..2],
        [
            (first.id.clone(), "acted".into(), "promoted".into(), 2),
            (second.id.clone(), "deferred".into(), String::new(), 0),
        ]
    );
    assert_eq!(on_record.len(), 3);
    let deferred = audit.iter().find(|r| r.decision == "deferred").unwrap();
    // A reader following the log (`mend retrain --wait`) reads only what came after a record.
    let after = harness
        .registry
        .audit_after("churn", deferred.seq)
        .await
        .unwrap();
    let rest: Vec<u64> = audit
        .iter()
        .filter(|r| r.seq > deferred.seq)
        .map(|r| r.seq)
        .collect();
    assert_eq!(after.iter().map(|r| r.seq).collect::<Vec<_>>(), rest);
    assert!(!rest.is_empty());
    let deferral = deferred.reason.as_str();
    assert!(deferral.contains("cooldown"), "{deferral}");
    assert!(
        deferral.contains("judged again once 300 labels"),
        "{deferral}"
    );
    let exposition = harness.metrics.encode().unwrap();
    for (decision, count) in [("acted", 2), ("deferred", 1)] {
        let line = format!(
            r#"mend_trainer_decisions_total{{model="churn",decision="{decision}"}} {count}"#
        );
        assert!(exposition.contains(&line), "{line} in {exposition}");
    }
    harness.stop().await;
}

/// The versions a run of the stream registered: (data window from, to, rows) each.
async fn windows(harness: &Harness) -> Vec<(u64, u64, u64)> {
    harness
        .versions()
        .await
        .iter()
        .filter_map(|v| v.data_window.as_ref())
        .map(|w| (w.from_seq, w.to_seq, w.row_count))
        .collect()
}

/// Plays one stream: a champion on concept a, then `segments` of 400 labeled rows whose
/// concept alternates, each followed by a performance alarm at its end. `fast`: all the data
/// first, then every alarm at once (a stream far faster than the trainer); else each alarm
/// right after its data, waiting for the trainer to decide on it before the next segment (a
/// slow stream). Returns the final decision of each alarm and the registered windows.
async fn play(
    backend: Backend,
    fast: bool,
    segments: usize,
) -> (Vec<(Decision, Option<String>)>, Vec<(u64, u64, u64)>) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    harness
        .seed_champion(&world.records(1_000, &concept_a()))
        .await;
    harness.start_trainer(paced_config(500)).await;
    let mut ends = Vec::new();
    let mut ids = Vec::new();
    for segment in 0..segments {
        let concept = if segment % 2 == 0 {
            concept_b()
        } else {
            concept_a()
        };
        harness.append(&world.records(400, &concept)).await;
        ends.push(newest_seq(&harness).await);
        if !fast {
            // Decided (or told to wait for labels still to come) before the stream goes on.
            let end = *ends.last().unwrap();
            ids.push(raise_and_wait(&mut harness, alarm(DriftKind::Performance, end)).await);
        }
    }
    if fast {
        for end in &ends {
            ids.push(
                harness
                    .publish(alarm(DriftKind::Performance, *end))
                    .await
                    .id,
            );
        }
    }
    let mut finals = Vec::new();
    for id in &ids {
        let decided = harness.wait_for(60, is_final(id)).await;
        let Event::RetrainDecided(decided) = decided.event else {
            unreachable!()
        };
        // A merged alarm names the run it joined: its outcome when it was coalesced into that
        // run's batch, `covered` when it came while the run was already reading past its data.
        // Which of the two depends on when it arrived, not on the data, and changes nothing
        // that is trained (the windows below say so): compare merged alarms by decision only.
        let outcome = match decided.decision {
            Decision::Merged => None,
            _ => decided.outcome,
        };
        finals.push((decided.decision, outcome));
    }
    let registered = windows(&harness).await;
    harness.stop().await;
    (finals, registered)
}

async fn the_same_stream_gives_the_same_runs_slow_or_fast(backend: Backend) {
    let (slow, slow_windows) = play(backend, false, 6).await;
    let (fast, fast_windows) = play(backend, true, 6).await;
    assert_eq!(slow, fast, "the decisions on each alarm");
    assert_eq!(slow_windows, fast_windows, "the rows each version learned");
    // Alarms 500 labels apart or more each get their own run: not one coalesced run.
    assert!(slow_windows.len() >= 3, "{slow_windows:?}");
}

async fn rejected_retrains_for_data_drift_alone_back_off_in_labels_and_a_performance_alarm_does_not_wait_for_it(
    backend: Backend,
) {
    let mut harness = Harness::start(backend).await;
    let mut world = World::new();
    harness
        .seed_champion(&world.records(2_000, &concept_a()))
        .await;
    harness.start_trainer(paced_config(200)).await;
    // The world stays the same, but the monitor keeps announcing data drift (as it does after
    // every rejected retrain while the inputs stay shifted): 30 segments of 200 labels.
    let mut ids = Vec::new();
    for _ in 0..30 {
        harness.append(&world.records(200, &concept_a())).await;
        let end = newest_seq(&harness).await;
        ids.push(raise_and_wait(&mut harness, alarm(DriftKind::Data, end)).await);
    }
    // Counted once every alarm has its first decision: the runs they led or merged into are
    // over, the others wait (a run started later could only add to the counts). Promotions
    // are the champion's moves on the registry's record, made before they are announced.
    let promoted = harness
        .champion_moves()
        .await
        .into_iter()
        .filter(|version| *version > 1)
        .count();
    let runs = harness.runs();
    // Without the backoff every alarm past the 200-label cooldown would run (about 30 runs).
    assert!(runs <= 8, "{runs} runs for 30 alarms");
    assert!(promoted <= 1, "{promoted} promotions on an unchanged world");
    let backing_off = harness.events.seen.iter().any(|e| {
        matches!(&e.event, Event::RetrainDecided(d) if d.decision == Decision::Deferred && d.reason.contains("backing off"))
    });
    assert!(backing_off, "{}", harness.events.describe_seen());

    // The world changes and labels say so: a performance alarm waits only the plain cooldown.
    harness.append(&world.records(300, &concept_b())).await;
    let performance = harness
        .publish(alarm(DriftKind::Performance, newest_seq(&harness).await))
        .await;
    // Its first decision: acted at once, or held by the plain cooldown only (a data alarm
    // deferred earlier may have run on the new rows first), never by the backoff.
    let first = harness
        .wait_for(
            60,
            |e| matches!(&e.event, Event::RetrainDecided(d) if d.trigger_event_id == performance.id),
        )
        .await;
    let Event::RetrainDecided(first) = &first.event else {
        unreachable!()
    };
    if first.decision == Decision::Deferred {
        assert!(first.reason.starts_with("cooldown"), "{first:?}");
        assert_eq!(first.until_labels, Some(200), "{first:?}");
        // The plain cooldown's labels come: the alarm is then judged.
        harness.append(&world.records(300, &concept_b())).await;
    }
    harness.wait_for(60, is_final(&performance.id)).await;
    let final_decision = decisions(&harness, &performance.id)
        .into_iter()
        .find(|d| d.decision != Decision::Deferred)
        .unwrap();
    assert_eq!(
        final_decision.decision,
        Decision::Acted,
        "{final_decision:?}"
    );
    harness.stop().await;
}

/// `row` as the inference server logs a sampled prediction of it, under `row_id`.
fn served(row: &RowRecord, row_id: &str) -> PredictionRecord {
    PredictionRecord {
        row_id: row_id.to_owned(),
        time_ms: row.time_ms,
        values: row.values.clone(),
        model_version: 1,
        probabilities: vec![0.5, 0.5],
        label: "0".into(),
    }
}

async fn a_named_window_finds_its_rows_after_a_hundred_times_as_many_other_rows(backend: Backend) {
    let harness = Harness::start(backend).await;
    let mut world = World::new();
    let model = model();
    // 500 rows that came in through ingest, and 500 served over OIP (their inputs only in
    // sampled predictions), all labeled.
    let (rows, labels) = world.records(1_000, &concept_a());
    harness
        .data_log
        .append_rows(&model, &rows[..500])
        .await
        .unwrap();
    let predictions: Vec<PredictionRecord> =
        rows[500..].iter().map(|row| served(row, &row.id)).collect();
    harness
        .data_log
        .append_predictions(&model, &predictions)
        .await
        .unwrap();
    let label_seqs = harness
        .data_log
        .append_labels(&model, &labels)
        .await
        .unwrap();
    // 100x as many other rows and sampled predictions since, none of them labeled.
    let (other, _) = world.records(50_000, &concept_a());
    for chunk in other.chunks(5_000) {
        harness.data_log.append_rows(&model, chunk).await.unwrap();
        let others: Vec<PredictionRecord> = chunk
            .iter()
            .map(|row| served(row, &format!("served-{}", row.id)))
            .collect();
        harness
            .data_log
            .append_predictions(&model, &others)
            .await
            .unwrap();
    }
    let window = Window::sequence(label_seqs[0], Some(*label_seqs.last().unwrap()));
    let read = mend_trainer::window::load_labeled(harness.data_log.as_ref(), &model, &window)
        .await
        .unwrap();
    assert_eq!(read.unmatched, 0, "{backend:?}");
    assert_eq!(read.len(), 1_000, "{backend:?}");
    let ids: Vec<&str> = read
        .rows
        .iter()
        .map(|r: &RowRecord| r.id.as_str())
        .collect();
    let expected: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, expected, "{backend:?}: rows in label order");
    harness.stop().await;
}
