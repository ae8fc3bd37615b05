#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A rejected retrain re-arms the open drift episode: the champion keeps serving while the
//! drift goes on, so the next verdict that still shows the drift announces it once more,
//! naming the episode's original start (the trainer then reads every row since the drift
//! began). Without a rejection an episode is announced once; one rejection buys one more
//! announcement, and a rejection about another champion buys none.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use mend_bus::events::{DriftDetected, DriftKind, ModelRejected};
use mend_bus::{DataLogExt, Envelope, publish_event};
use mend_monitor::Champion;
use mend_monitor::detector::PageHinkleyConfig;
use mend_monitor::performance::TrendConfig;
use mend_monitor::state::{ModelState, StateStore};
use mend_monitor::tracker::{Entry, Tracker, TrackerSettings};
use mend_testkit::eventually;
use mend_worlds::Regime;

const QUIET: Duration = Duration::from_millis(700);

fn rejected(champion_version: Option<u64>) -> Envelope {
    Envelope::new(
        model(),
        ModelRejected {
            version: Some(2),
            reason: "the candidate did not beat the champion".to_owned(),
            metrics: Default::default(),
            champion_metrics: Default::default(),
            champion_version,
            trigger_event_id: None,
        },
    )
}

/// Waits until the saved state shows the data episode re-armed.
async fn data_rearm_saved(states: &StateStore, what: &str) {
    eventually(SOON, what, || async {
        states
            .load(&model())
            .await
            .episodes
            .rearmed
            .data
            .then_some(())
    })
    .await;
}

/// `mend_monitor_state_save_failures_total` for the model, 0 before the first failure.
fn save_failures(monitor: &Running) -> u64 {
    let text = monitor.metrics.encode().unwrap();
    text.lines()
        .find(|line| {
            line.starts_with("mend_monitor_state_save_failures_total{")
                && line.contains(&format!("model=\"{MODEL}\""))
        })
        .map_or(0, |line| line.rsplit(' ').next().unwrap().parse().unwrap())
}

/// One calm window, then two shifted ones: the episode is confirmed and announced, from the
/// first shifted row (sequence 1,001). Returns the announcement.
async fn open_data_episode(
    nats: &Nats,
    data_dir: &std::path::Path,
    world: &mut World,
    observer: &mut Observer,
) -> DriftDetected {
    let log = &nats.data_log;
    let (rows, _) = world.draw(1_000, &Regime::default());
    log.append_rows(&model(), &rows).await.unwrap();
    let (rows, _) = world.draw(2_000, &shift(1.0));
    log.append_rows(&model(), &rows).await.unwrap();
    reports_reach(data_dir, 3).await;
    observer.drain(QUIET).await;
    let data = observer.of_kind(DriftKind::Data);
    assert_eq!(data.len(), 1, "the episode is announced: {data:?}");
    data[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_makes_the_next_drifted_window_announce_again_from_the_same_start() {
    let nats = nats().await;
    let dir = tempfile::tempdir().unwrap();
    let (_champions, mut observer, monitor) = start_over_nats(&nats, dir.path()).await;
    let mut world = World::new();
    let log = &nats.data_log;
    let first = open_data_episode(&nats, dir.path(), &mut world, &mut observer).await;
    assert_eq!(first.window.from_seq, Some(1_001));

    // Without a rejection the drift goes on unannounced.
    let (rows, _) = world.draw(2_000, &shift(1.0));
    log.append_rows(&model(), &rows).await.unwrap();
    reports_reach(dir.path(), 5).await;
    observer.drain(QUIET).await;
    assert_eq!(
        observer.of_kind(DriftKind::Data).len(),
        1,
        "once per episode without a rejection: {:?}",
        observer.drift
    );

    // The trainer rejects its candidate; the monitor re-arms (and saves that).
    publish_event(nats.bus.as_ref(), &rejected(Some(1)))
        .await
        .unwrap();
    let states = StateStore::new(dir.path());
    data_rearm_saved(&states, "the episode re-armed").await;

    // The next shifted window announces again, from the episode's original start.
    let (rows, _) = world.draw(1_000, &shift(1.0));
    log.append_rows(&model(), &rows).await.unwrap();
    reports_reach(dir.path(), 6).await;
    observer.drain(QUIET).await;
    let data: Vec<(String, DriftDetected)> = observer
        .drift
        .iter()
        .filter(|(_, event)| event.kind == DriftKind::Data)
        .cloned()
        .collect();
    assert_eq!(
        data.len(),
        2,
        "announced again after the rejection: {data:?}"
    );
    let (first_id, _) = &data[0];
    let (second_id, second) = &data[1];
    assert_ne!(first_id, second_id, "a new event, not a duplicate");
    assert_eq!(
        second.window.from_seq, first.window.from_seq,
        "the same start: the trainer reads every row since the drift began"
    );
    assert_eq!(second.window.to_seq, Some(6_000), "ending with this window");
    assert_eq!(second.features[0].feature, "x0");

    // One rejection, one more announcement.
    let (rows, _) = world.draw(1_000, &shift(1.0));
    log.append_rows(&model(), &rows).await.unwrap();
    reports_reach(dir.path(), 7).await;
    observer.drain(QUIET).await;
    assert_eq!(observer.of_kind(DriftKind::Data).len(), 2);
    monitor.stop().await;
}

/// The monitor acknowledges a rejection only once the re-arm it causes is saved: one that
/// stops in between (here: it cannot save) hears the rejection again when it comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_is_acknowledged_only_once_its_rearm_is_saved() {
    let nats = nats().await;
    let dir = tempfile::tempdir().unwrap();
    let (champions, mut observer, monitor) = start_over_nats(&nats, dir.path()).await;
    let mut world = World::new();
    open_data_episode(&nats, dir.path(), &mut world, &mut observer).await;
    let states = StateStore::new(dir.path());
    eventually(SOON, "the open episode saved", || async {
        states.load(&model()).await.episodes.data.then_some(())
    })
    .await;

    // From here the state cannot be saved: its temporary file's name is taken by a directory.
    let blocker = dir
        .path()
        .join("monitor")
        .join(format!("{}.json.tmp", model().as_str()));
    std::fs::create_dir_all(&blocker).unwrap();
    assert_eq!(save_failures(&monitor), 0);
    publish_event(nats.bus.as_ref(), &rejected(Some(1)))
        .await
        .unwrap();
    // The monitor heard the rejection, re-armed and tried to save that: nothing else saves
    // while no data comes in.
    eventually(SOON, "a failed save of the re-arm", || async {
        (save_failures(&monitor) >= 1).then_some(())
    })
    .await;
    monitor.stop().await;
    assert!(
        !states.load(&model()).await.episodes.rearmed.data,
        "the re-arm was never saved"
    );

    // The same replica comes back with a working disk and hears the rejection again.
    std::fs::remove_dir(&blocker).unwrap();
    let monitor = start(
        config(dir.path()),
        champions,
        Arc::clone(&nats.data_log),
        Some(Arc::clone(&nats.bus)),
    )
    .await;
    data_rearm_saved(&states, "the re-arm saved after the restart").await;
    monitor.stop().await;
}

fn tracker() -> Tracker {
    let settings = TrackerSettings {
        window_rows: 1_000,
        window_ms: None,
        label_window: 500,
        accuracy_tolerance: 0.1,
        min_drifted_features: 1,
        confirm_windows: 2,
        join_rows: 100_000,
        policy: Default::default(),
        detector: PageHinkleyConfig::default(),
        trend: TrendConfig::default(),
        summary: Default::default(),
    };
    let champion = Champion {
        version: 1,
        artifact: Arc::new(train(&Regime::default(), 1)),
    };
    Tracker::new(model(), settings, champion, ModelState::default())
}

/// `n` rows of `regime`, each followed by its label, from sequence `seq` on; returns the
/// performance events.
fn feed(
    tracker: &mut Tracker,
    world: &mut World,
    seq: &mut u64,
    n: usize,
    regime: &Regime,
) -> Vec<DriftDetected> {
    let (rows, labels) = world.draw(n, regime);
    let mut entries = Vec::new();
    for (row, label) in rows.into_iter().zip(labels) {
        entries.push(Entry::Row {
            seq: *seq,
            ms: 0,
            row,
        });
        entries.push(Entry::Label {
            seq: *seq + 1,
            label,
        });
        *seq += 2;
    }
    tracker
        .process(entries, *seq - 1)
        .announcements
        .into_iter()
        .map(|a| a.event)
        .filter(|event| event.kind == DriftKind::Performance)
        .collect()
}

#[test]
fn a_rejection_rearms_a_performance_episode_with_its_original_start() {
    let mut tracker = tracker();
    let mut world = World::new();
    let mut seq = 1;
    assert!(
        feed(
            &mut tracker,
            &mut world,
            &mut seq,
            3_000,
            &Regime::default()
        )
        .is_empty()
    );
    let first = feed(&mut tracker, &mut world, &mut seq, 1_000, &flipped());
    assert_eq!(first.len(), 1, "a flipped concept is announced: {first:?}");
    let start = first[0].window.from_seq;
    assert!(start.is_some_and(|from| from > 5_000), "{start:?}");

    // Accuracy stays low: nothing more without a rejection.
    assert!(feed(&mut tracker, &mut world, &mut seq, 1_000, &flipped()).is_empty());
    // A rejection about another champion re-arms nothing.
    assert!(tracker.rearm(Some(9)).is_empty());
    assert!(feed(&mut tracker, &mut world, &mut seq, 500, &flipped()).is_empty());

    // A rejection about this one: the next bad label window announces again, from the
    // same start; twice rejected before it, still once.
    assert_eq!(tracker.rearm(Some(1)), [DriftKind::Performance]);
    assert_eq!(tracker.rearm(None), [DriftKind::Performance]);
    let again = feed(&mut tracker, &mut world, &mut seq, 500, &flipped());
    assert_eq!(again.len(), 1, "announced again: {again:?}");
    assert_eq!(
        again[0].window.from_seq, start,
        "the episode's original start"
    );
    assert!(again[0].window.to_seq > first[0].window.to_seq);
    assert!(feed(&mut tracker, &mut world, &mut seq, 1_000, &flipped()).is_empty());
}
