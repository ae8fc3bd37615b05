#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Ingest and monitor together, against a real nats-server, through the ingest gRPC service
//! as a producer uses it: a batch of shifted rows with bad rows among them keeps every good
//! row and lists each bad one with its reason, and the shift comes back as one
//! `drift.detected` naming the shifted feature; labels of a flipped concept come back as
//! performance drift.

mod support;

use std::sync::Arc;
use std::time::Duration;

use mend_bus::events::{DriftKind, Event};
use mend_bus::{ConsumerSpec, DataLogExt, EventRecorder, Window};
use mend_core::record::Value;
use mend_worlds::{Generator, Regime, SyntheticSpec};
use support::{MODEL, Options, model, start_with};

fn shifted() -> Regime {
    Regime {
        shift: 1.0,
        ..Regime::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingested_shift_is_one_drift_event_bad_rows_are_listed_and_a_flip_is_performance_drift() {
    let mut stack = start_with(Options {
        monitor: true,
        // Nothing heals here: the events are the subject.
        trainer: false,
        ..Options::default()
    })
    .await;
    let mut drift = EventRecorder::subscribe(
        Arc::clone(&stack.bus),
        ConsumerSpec::new("drift-observer", ["drift.>"]).batch(64),
    )
    .await
    .unwrap();
    let mut world = Generator::new(SyntheticSpec::default());
    stack.seed_champion(&mut world).await;

    // One calm window, then shifted rows with two bad ones in the middle of a batch.
    world.reseed(31);
    let calm = world.sample(1_000, &Regime::default());
    let (calm_rows, _) = world.to_records(&calm, "calm-", 0, 1);
    let shift = world.sample(4_000, &shifted());
    let (mut rows, _) = world.to_records(&shift, "shift-", 0, 2_000);
    let mut wrong_type = rows[10].clone();
    wrong_type.id = "bad-type".into();
    wrong_type
        .values
        .insert("x1", Value::Text("not a number".into()));
    let mut unknown = rows[11].clone();
    unknown.id = "bad-column".into();
    unknown.values.insert("zzz", Value::Number(1.0));
    rows.insert(500, wrong_type);
    rows.insert(1_500, unknown);
    let batches: Vec<_> = std::iter::once(calm_rows.as_slice())
        .chain(rows.chunks(1_000))
        .map(|chunk| mend_client::ingest::row_batch(MODEL, chunk))
        .collect();
    let summary = stack
        .ingest
        .ingest_rows(tokio_stream::iter(batches))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.accepted, 5_000, "every good row is kept");
    assert_eq!(summary.rejected, 2);
    let mut listed: Vec<(String, String, String)> = summary
        .rejected_rows
        .iter()
        .map(|r| (r.row_id.clone(), r.field.clone(), r.reason.clone()))
        .collect();
    listed.sort();
    assert_eq!(listed[0].0, "bad-column");
    assert_eq!(listed[0].1, "zzz");
    assert_eq!(listed[1].0, "bad-type");
    assert_eq!(listed[1].1, "x1");
    assert!(listed.iter().all(|(_, _, reason)| !reason.is_empty()));
    let logged = stack
        .data_log
        .read_rows(&model(), &Window::last(10_000))
        .await
        .unwrap();
    assert_eq!(logged.len(), 5_000);
    assert!(
        logged.iter().all(|l| !l.record.id.starts_with("bad-")),
        "no bad row reaches the data log"
    );

    // The shift is announced, once, naming x0 (the shifted feature).
    let found = drift
        .wait_for(
            Duration::from_secs(60),
            |e| matches!(&e.event, Event::DriftDetected(d) if d.kind == DriftKind::Data),
        )
        .await
        .unwrap_or_else(|| panic!("no data drift; seen: {}", drift.describe_seen()));
    let Event::DriftDetected(data) = found.event else {
        unreachable!()
    };
    let named: Vec<&str> = data.features.iter().map(|f| f.feature.as_str()).collect();
    assert!(named.contains(&"x0"), "{named:?}");
    drift.drain(Duration::from_secs(1)).await;
    let data_events = drift
        .seen
        .iter()
        .filter(|e| matches!(&e.event, Event::DriftDetected(d) if d.kind == DriftKind::Data))
        .count();
    assert_eq!(
        data_events,
        1,
        "once per episode: {}",
        drift.describe_seen()
    );

    // Rows and labels of a flipped concept: performance drift.
    world.reseed(32);
    let flipped = world.sample(2_000, &support::flipped());
    stack.ingest(&world, &flipped, "flip-").await;
    let found = drift
        .wait_for(
            Duration::from_secs(60),
            |e| matches!(&e.event, Event::DriftDetected(d) if d.kind == DriftKind::Performance),
        )
        .await;
    assert!(
        found.is_some(),
        "no performance drift; seen: {}",
        drift.describe_seen()
    );
    stack.stop().await;
}
