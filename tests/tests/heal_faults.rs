#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The heal loop when things go wrong, across services over a real `nats-server -js`: a
//! candidate trained on noise is rejected while the champion keeps serving; a promotion that
//! does worse live is rolled back; a burst of duplicate drift events retrains once; the
//! trainer process killed in the middle of training finishes the retrain exactly once after
//! a restart; and the NATS server restarted mid-loop does not stop the loop.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mend_bus::events::{Decision, Envelope, Event};

use mend_proto::registry::v1 as registry_pb;
use mend_testkit::eventually;
use mend_worlds::{Generator, Regime, SyntheticSpec};
use support::{
    MODEL, Options, accuracy, flipped, infer, noise, patience, start_with, trainer_binary,
};

/// The final decision on trigger `id` (not a deferral, which is judged again later).
fn decided(id: &str) -> impl Fn(&Envelope) -> bool {
    let id = id.to_owned();
    move |e| {
        matches!(&e.event, Event::RetrainDecided(d)
            if d.trigger_event_id == id && d.decision != Decision::Deferred)
    }
}

fn promoted(version: u64) -> impl Fn(&mend_bus::Envelope) -> bool {
    move |e| matches!(&e.event, Event::ModelPromoted(p) if p.version == version)
}

fn forced(reason: &str, id: &str) -> String {
    format!(r#"{{"v":1,"id":"{id}","reason":"{reason}"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_candidate_trained_on_noise_is_rejected_and_the_champion_keeps_serving() {
    let mut stack = start_with(Options::default()).await;
    let mut world = Generator::new(SyntheticSpec::default());
    stack.seed_champion(&mut world).await;
    world.reseed(31);
    let probe = world.sample(1_000, &Regime::default());
    let (version, before) = stack.first_answer(&world, &probe).await;
    assert_eq!(version, "1");
    assert!(accuracy(&world, &probe, &before) > 0.8);

    // The training part of the 3,000-row window is noise (random labels); its newest 20 %,
    // held out, is the world as it is, which the champion knows.
    world.reseed(32);
    let junk = world.sample(2_400, &noise());
    stack.ingest(&world, &junk, "noise-").await;
    world.reseed(33);
    let clean = world.sample(600, &Regime::default());
    stack.ingest(&world, &clean, "clean-").await;
    stack
        .publish_raw(
            format!("retrain.requested.{MODEL}"),
            forced("nightly", "noise-run"),
        )
        .await;

    let rejected = stack
        .wait_for(60, |e| matches!(&e.event, Event::ModelRejected(_)))
        .await;
    let Event::ModelRejected(rejected) = rejected.event else {
        unreachable!()
    };
    assert_eq!(rejected.version, Some(2));
    assert_eq!(rejected.champion_version, Some(1));
    assert_eq!(rejected.trigger_event_id.as_deref(), Some("noise-run"));
    assert!(
        rejected.champion_metrics["accuracy"] > rejected.metrics["accuracy"] + 0.2,
        "{rejected:?}"
    );

    // The registry keeps version 1 as champion; version 2 is recorded as failed.
    assert_eq!(stack.champion_version().await, Some(1));
    assert_eq!(stack.champion_moves().await, vec![(1, None)]);
    let v2 = stack
        .versions()
        .await
        .into_iter()
        .find(|v| v.version == 2)
        .unwrap();
    assert_eq!(v2.tags["gate"], "fail");
    // The run is over (its decision: acted, rejected): nothing was promoted, and version 1
    // still answers, as before.
    let decision = stack.wait_for(30, decided("noise-run")).await;
    assert!(
        matches!(&decision.event, Event::RetrainDecided(d) if d.outcome.as_deref() == Some("rejected")),
        "{decision:?}"
    );
    assert_eq!(
        stack.count(|e| matches!(e, Event::ModelPromoted(p) if p.version == 2)),
        0
    );
    let (version, after) = infer(&mut stack.oip, &world, &probe).await.unwrap();
    assert_eq!(version, "1");
    assert_eq!(after, before);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_promotion_that_does_worse_live_is_rolled_back_and_the_predecessor_serves_again() {
    let mut stack = start_with(Options {
        vars: vec![
            ("MEND_TRAINER_GUARD_ROWS", "500".into()),
            ("MEND_TRAINER_GUARD_POLL_MS", "100".into()),
        ],
        ..Options::default()
    })
    .await;
    let mut world = Generator::new(SyntheticSpec::default());
    stack.seed_champion(&mut world).await;
    world.reseed(41);
    let old_probe = world.sample(1_000, &Regime::default());
    let (version, _) = stack.first_answer(&world, &old_probe).await;
    assert_eq!(version, "1");

    // The world flips; a retrain learns it and its holdout says it is much better.
    world.reseed(42);
    let fresh = world.sample(3_000, &flipped());
    stack.ingest(&world, &fresh, "flipped-").await;
    stack
        .publish_raw(
            format!("retrain.requested.{MODEL}"),
            forced("the world flipped", "flip-run"),
        )
        .await;
    stack.wait_for(60, promoted(2)).await;
    let answered = stack.answer_from("2", &world, &old_probe, 30).await;
    assert!(
        answered.errors.is_empty(),
        "requests failed while version 2 took over: {:?}",
        answered.errors
    );

    // Then the world flips back: live labels disagree with version 2 and agree with 1.
    world.reseed(43);
    let back = world.sample(1_000, &Regime::default());
    stack.ingest(&world, &back, "back-").await;

    let rolled_back = stack
        .wait_for(60, |e| matches!(&e.event, Event::ModelRolledBack(_)))
        .await;
    let Event::ModelRolledBack(rolled_back) = rolled_back.event else {
        unreachable!()
    };
    assert_eq!((rolled_back.from_version, rolled_back.to_version), (2, 1));
    // The audit says the champion went 1 → 2 → back to 1, and why.
    assert_eq!(
        stack.champion_moves().await,
        vec![(1, None), (2, Some(1)), (1, Some(2))]
    );
    let audit = stack.registry.audit(MODEL).await.unwrap();
    let last = audit.iter().rfind(|r| r.alias == "champion").unwrap();
    assert!(last.reason.contains("rollback guard"), "{}", last.reason);
    assert_eq!(stack.champion_version().await, Some(1));
    // And the server answers with version 1 again, without failing a request in the
    // rollback, right on the world as it is now.
    let answered = stack.answer_from("1", &world, &old_probe, 30).await;
    assert!(
        answered.errors.is_empty(),
        "requests failed while version 1 came back: {:?}",
        answered.errors
    );
    let acc = accuracy(&world, &old_probe, &answered.labels);
    assert!(acc > 0.8, "version 1 fits the world it was made for: {acc}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_duplicate_drift_events_cause_one_retrain() {
    let mut stack = start_with(Options {
        vars: vec![("MEND_TRAINER_DEBOUNCE_MS", "300".into())],
        ..Options::default()
    })
    .await;
    let mut world = Generator::new(SyntheticSpec::default());
    stack.seed_champion(&mut world).await;
    world.reseed(51);
    let probe = world.sample(1_000, &flipped());
    world.reseed(52);
    let fresh = world.sample(3_000, &flipped());
    stack.ingest(&world, &fresh, "flipped-").await;

    // Ten raw drift events: the same event delivered five times, and five more with ids of
    // their own (as a monitor replica or a retried publisher might send).
    let ids: Vec<String> = (0..10)
        .map(|i| {
            if i % 2 == 0 {
                "drift-dup".to_owned()
            } else {
                format!("drift-{i}")
            }
        })
        .collect();
    for id in &ids {
        stack
            .publish_raw(
                format!("drift.detected.{MODEL}"),
                format!(
                    r#"{{"v":1,"id":"{id}","kind":"performance","dataset_share":0.0,"dataset_drift":false,"champion_version":1}}"#
                ),
            )
            .await;
    }
    stack.wait_for(60, promoted(2)).await;
    // Every trigger has its final decision (one led the run, the rest merged into it or were
    // covered by it): none is left to start a second run.
    for id in &ids {
        stack.wait_for(60, decided(id)).await;
    }
    let runs = stack.trainer.as_ref().unwrap().runs();
    assert_eq!(runs, 1, "retrain attempts");
    let versions = stack.versions().await;
    assert_eq!(versions.len(), 2, "one candidate registered");
    assert!(ids.contains(&versions[1].trigger.as_ref().unwrap().event_id));
    assert_eq!(
        stack.count(|e| matches!(e, Event::ModelTrained(_))),
        1,
        "one model.trained"
    );
    assert_eq!(stack.champion_moves().await, vec![(1, None), (2, Some(1))]);
    let answered = stack.answer_from("2", &world, &probe, 30).await;
    assert!(
        answered.errors.is_empty(),
        "requests failed while version 2 took over: {:?}",
        answered.errors
    );
    stack.stop().await;
}

/// A `mend-trainer` process whose log lines arrive on a channel; killed when dropped.
struct TrainerProcess {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl TrainerProcess {
    fn spawn(vars: &std::collections::HashMap<String, String>) -> TrainerProcess {
        let mut child = Command::new(trainer_binary())
            .env_clear()
            .envs(vars)
            .env("MEND_HTTP_ADDR", "127.0.0.1:0")
            .env("MEND_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mend-trainer starts");
        let stderr = child.stderr.take().unwrap();
        let pid = child.id();
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Kept in the test's output, for a failure to explain itself.
                eprintln!("[mend-trainer {pid}] {line}");
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        TrainerProcess { child, lines }
    }

    /// Waits for a log line containing `text`.
    async fn wait_for_line(&self, text: &str, seconds: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = tokio::task::block_in_place(|| self.lines.recv_timeout(left))
                .unwrap_or_else(|_| panic!("mend-trainer never logged `{text}` in {seconds} s"));
            if line.contains(text) {
                return;
            }
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TrainerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Rows in the retrain window of the kill test: enough that training takes a while.
const BIG_WINDOW: usize = 60_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trainer_process_killed_mid_training_retrains_exactly_once_after_restart() {
    let mut stack = start_with(Options {
        trainer: false,
        vars: vec![
            ("MEND_TRAINER_WINDOW_ROWS", BIG_WINDOW.to_string()),
            // A killed trainer's trigger is handed out again this soon.
            ("MEND_TRAINER_ACK_WAIT_MS", "2000".into()),
            ("MEND_TRAINER_GUARD_ROWS", "0".into()),
        ],
        ..Options::default()
    })
    .await;
    let mut world = Generator::new(SyntheticSpec::default());
    stack.seed_champion(&mut world).await;
    world.reseed(61);
    let probe = world.sample(1_000, &flipped());
    world.reseed(62);
    let fresh = world.sample(BIG_WINDOW, &flipped());
    let clock = std::time::Instant::now();
    stack.append(&world, &fresh, "big-").await;
    eprintln!("appended {BIG_WINDOW} rows in {:?}", clock.elapsed());

    let mut first = TrainerProcess::spawn(&stack.vars);
    first.wait_for_line("trainer started", 30).await;
    stack
        .publish_raw(
            format!("retrain.requested.{MODEL}"),
            forced("killed mid-training", "kill-run"),
        )
        .await;
    first.wait_for_line("training the candidate", 40).await;
    first.kill();
    let clock = std::time::Instant::now();
    // Killed before its candidate was registered: nothing but version 1 exists.
    assert_eq!(stack.versions().await.len(), 1, "killed too late");
    assert_eq!(stack.champion_version().await, Some(1));

    let _second = TrainerProcess::spawn(&stack.vars);
    stack.wait_for(50, promoted(2)).await;
    eprintln!("healed {:?} after the kill", clock.elapsed());
    // The second trainer decided the trigger (its run promoted version 2): the event is
    // settled, with nothing left to run it twice.
    stack.wait_for(30, decided("kill-run")).await;
    let versions = stack.versions().await;
    assert_eq!(versions.len(), 2, "exactly one candidate for the trigger");
    assert_eq!(versions[1].trigger.as_ref().unwrap().event_id, "kill-run");
    assert_eq!(
        versions[1].data_window.as_ref().unwrap().row_count,
        BIG_WINDOW as u64
    );
    assert_eq!(stack.champion_moves().await, vec![(1, None), (2, Some(1))]);
    assert_eq!(
        stack.count(|e| matches!(e, Event::ModelPromoted(p) if p.version == 2)),
        1
    );
    assert_eq!(stack.count(|e| matches!(e, Event::ModelTrained(_))), 1);
    let answered = stack.answer_from("2", &world, &probe, 30).await;
    assert!(
        answered.errors.is_empty(),
        "requests failed while version 2 took over: {:?}",
        answered.errors
    );
    assert!(accuracy(&world, &probe, &answered.labels) > 0.8);
    stack.stop().await;
}

/// Rows in the window of the NATS restart test: enough that the retrain reads for a while.
const RESTART_WINDOW: usize = 15_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_loop_completes_across_nats_server_restarts() {
    let mut stack = start_with(Options {
        vars: vec![
            ("MEND_TRAINER_WINDOW_ROWS", RESTART_WINDOW.to_string()),
            ("MEND_TRAINER_BACKOFF_MS", "200".into()),
        ],
        ..Options::default()
    })
    .await;
    let mut world = Generator::new(SyntheticSpec::default());
    stack.seed_champion(&mut world).await;
    world.reseed(71);
    let probe = world.sample(1_000, &flipped());
    let (version, _) = stack.first_answer(&world, &probe).await;
    assert_eq!(version, "1");
    world.reseed(72);
    let fresh = world.sample(3_000, &flipped());
    stack.ingest(&world, &fresh, "flipped-").await;

    // NATS goes down and comes back on the same port and store once the rows are in...
    tokio::task::block_in_place(|| stack.nats.restart()).expect("nats-server restarts");
    // ...the data log takes more rows over the reconnected clients...
    world.reseed(73);
    let more = world.sample(RESTART_WINDOW - 3_000, &flipped());
    stack.append(&world, &more, "more-").await;
    stack
        .publish_raw(
            format!("retrain.requested.{MODEL}"),
            forced("the world flipped", "restart-run"),
        )
        .await;
    // ...and it goes down again while the trainer is at work on the retrain.
    eventually(patience(30), "the retrain starts", || {
        let runs = stack.trainer.as_ref().unwrap().runs();
        async move { (runs >= 1).then_some(()) }
    })
    .await;
    tokio::task::block_in_place(|| stack.nats.restart()).expect("nats-server restarts");

    // The server serves from memory: two NATS restarts and a swap fail none of its requests.
    let answered = stack.answer_from("2", &world, &probe, 50).await;
    assert!(
        answered.errors.is_empty(),
        "requests failed across the restarts and the swap: {:?}",
        answered.errors
    );
    let acc = accuracy(&world, &probe, &answered.labels);
    assert!(acc > 0.8, "the new champion fits the flipped world: {acc}");
    let v2 = eventually(patience(10), "version 2 listed", || {
        let registry = stack.registry.clone();
        async move {
            registry
                .list_versions(MODEL)
                .await
                .ok()?
                .into_iter()
                .find(|v| v.version == 2)
        }
    })
    .await;
    let trigger = v2.trigger.unwrap();
    assert_eq!(trigger.event_id, "restart-run");
    assert_eq!(trigger.kind, registry_pb::TriggerKind::Forced as i32);
    assert_eq!(
        v2.tags["gate"], "pass",
        "judged better than the champion on the same holdout"
    );
    assert_eq!(
        v2.data_window.unwrap().row_count,
        RESTART_WINDOW as u64,
        "trained on the rows from both sides of the first restart"
    );
    // Promoted once, whatever the restart interrupted.
    stack.drain(Duration::from_secs(1)).await;
    assert_eq!(stack.versions().await.len(), 2);
    assert_eq!(stack.champion_moves().await, vec![(1, None), (2, Some(1))]);
    eprintln!(
        "retrain attempts across the restart: {}",
        stack.trainer.as_ref().unwrap().runs()
    );
    stack.stop().await;
}
