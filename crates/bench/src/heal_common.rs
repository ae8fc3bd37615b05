//! What `mend bench-heal`'s scenario runs (`heal.rs`) and its heal-latency runs
//! (`heal_latency.rs`) share: the model they serve, the services' settings, the first champion,
//! and the log of what the loop announced on the bus.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mend_bus::events::Event;
use mend_bus::{Bus, ConsumerSpec, EventSubscription};
use mend_core::{Artifact, RawTable, Schema, TrainSettings};
use mend_worlds::{Generator, Regime, Sample};

use crate::stack::Stack;
use crate::world_client::request;

/// The model every run serves.
pub(crate) const MODEL: &str = "heal";
/// The id of the bench's inference requests.
pub(crate) const REQUEST_ID: &str = "bench-heal";

/// The bench's service settings; a variable already set in the environment wins.
///
/// The stream is compressed in time (thousands of rows a second), so the time-based knobs are
/// scaled with it: the monitor looks every 100 ms instead of every second, the trainer waits
/// 100 ms for duplicate triggers and cools down for 0.5 s (1,000 rows at the default pace, the
/// follow-ups' cadence, so the cooldown does not hold the loop below it) instead of 30 s.
/// Row-based knobs keep their defaults (monitor windows of 2,000 rows and 500 labels, three
/// confirming windows, a 500-row rollback guard, follow-ups every 1,000 labels) except the
/// training window, which matches the blind retrainer's.
pub(crate) fn bench_vars(window_rows: usize) -> Vec<(&'static str, String)> {
    vec![
        ("MEND_LOG", "error".to_owned()),
        ("MEND_SERVER_MODELS", MODEL.to_owned()),
        ("MEND_SERVER_SAMPLE_RATE", "0".to_owned()),
        ("MEND_MONITOR_MODELS", MODEL.to_owned()),
        ("MEND_MONITOR_POLL_MS", "100".to_owned()),
        ("MEND_TRAINER_WINDOW_ROWS", window_rows.to_string()),
        ("MEND_TRAINER_DEBOUNCE_MS", "100".to_owned()),
        ("MEND_TRAINER_COOLDOWN_MS", "500".to_owned()),
        ("MEND_TRAINER_GUARD_POLL_MS", "100".to_owned()),
    ]
}

/// The first champion: `rows` rows of the initial regime.
pub(crate) fn first_model(
    world: &mut Generator,
    rows: usize,
    settings: &TrainSettings,
) -> Result<(Schema, Artifact)> {
    let first = world.sample(rows, &Regime::default());
    let table = table_of(world, &[&first], 0);
    crate::world_client::train_first(&table, settings)
}

/// Registers `artifact` as version 1 and champion, and waits until the server answers with it.
pub(crate) async fn seed_champion(
    stack: &mut Stack,
    artifact: &Artifact,
    schema: &Schema,
    world: &Generator,
) -> Result<()> {
    stack
        .seed_champion(MODEL, schema, artifact, "mend-bench", "bench-initial")
        .await?;
    let probe = request(MODEL, REQUEST_ID, world, &world.probe());
    stack
        .wait_for_version(&probe, "1", Duration::from_secs(20))
        .await
}

/// Bus events as they arrive, with the arrival time and how many rows were ingested by then.
pub(crate) type EventLog = Arc<Mutex<Vec<(Instant, u64, Event)>>>;

/// Follows `drift.detected.>` and `model.>` into an [`EventLog`]; `position` is read at arrival.
pub(crate) async fn follow_events(bus: Arc<dyn Bus>, position: Arc<AtomicU64>) -> Result<EventLog> {
    let mut events = EventSubscription::subscribe(
        bus,
        ConsumerSpec::new("mend-bench-heal", ["drift.detected.>", "model.>"]),
    )
    .await
    .context("failed to follow the bus")?;
    let log: EventLog = Arc::new(Mutex::new(Vec::new()));
    let out = log.clone();
    tokio::spawn(async move {
        while let Some(delivery) = events.next().await {
            let event = delivery.envelope.event.clone();
            let _ = delivery.ack().await;
            // The seeded first champion is the bench's doing, not the loop's.
            if matches!(&event, Event::ModelPromoted(p) if p.version == 1) {
                continue;
            }
            let at = position.load(Ordering::Relaxed);
            match out.lock() {
                Ok(mut log) => log.push((Instant::now(), at, event)),
                Err(_) => break,
            }
        }
    });
    Ok(log)
}

/// One line about a loop event, for the timeline.
pub(crate) fn describe(event: &Event) -> String {
    match event {
        Event::DriftDetected(d) => format!("drift detected ({:?})", d.kind).to_lowercase(),
        Event::ModelTrained(t) => {
            let holdout = |m: &BTreeMap<String, f64>| {
                m.get("accuracy")
                    .map_or_else(|| "-".to_owned(), |a| format!("{a:.3}"))
            };
            format!(
                "v{} trained on {} rows (holdout accuracy {}, champion {})",
                t.version,
                t.window.as_ref().and_then(|w| w.rows).unwrap_or(0),
                holdout(&t.metrics),
                holdout(&t.champion_metrics),
            )
        }
        Event::ModelPromoted(p) => format!("v{} promoted", p.version),
        Event::ModelRejected(r) => format!("candidate rejected: {}", r.reason),
        Event::ModelRolledBack(r) => {
            format!("rolled back v{} -> v{}", r.from_version, r.to_version)
        }
        other => format!("{:?}", other.kind()).to_lowercase(),
    }
}

/// A labeled table of `samples`, ids and times counting from `first_id`.
pub(crate) fn table_of(g: &Generator, samples: &[&Sample], first_id: u64) -> RawTable {
    let mut table = RawTable {
        headers: Vec::new(),
        rows: Vec::new(),
        lines: Vec::new(),
    };
    let mut id = first_id;
    for sample in samples {
        let part = g.to_table(sample, true, id, id as i64);
        id += sample.labels.len() as u64;
        table.headers = part.headers;
        table.rows.extend(part.rows);
    }
    table.lines = (0..table.rows.len() as u64).map(|i| i + 2).collect();
    table
}
