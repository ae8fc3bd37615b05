//! Heal latency: from the first drifted batch ingested to the inference server answering with
//! the new champion, with a large training window (100,000 rows by default).
//!
//! Each run starts fresh services, serves a champion of the initial concept, then ingests
//! `window` rows and labels of the flipped concept through ingest as fast as one client can
//! (rows, then labels, a batch at a time). A prober asks the server for one row every few
//! milliseconds and notes when the answering version changes. The clock starts when the first
//! drifted batch's labels are acknowledged. Bus events give the breakdown: drift detected,
//! candidate trained (and on how many rows), promoted, and the first answer of the new version.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mend_bus::events::Event;
use mend_core::{Frame, Schema};
use mend_worlds::{Generator, Regime, SyntheticSpec};
use serde_json::{Value as Json, json};

use crate::heal_common::{
    MODEL, REQUEST_ID, bench_vars, describe, first_model, follow_events, seed_champion, table_of,
};
use crate::stack::{Launch, Stack, effective_vars, run_dir};
use crate::world_client::{infer, now_ms, send};

/// What the latency runs do.
pub struct LatencySpec {
    /// Starts each run's services.
    pub launch: Launch,
    pub runs: usize,
    /// `MEND_TRAINER_WINDOW_ROWS` of the runs, and the flipped rows each ingests.
    pub window: usize,
    /// Rows per ingest call.
    pub batch: usize,
    pub initial_rows: usize,
    pub seed: u64,
    pub data_dir: Option<PathBuf>,
    /// Ingest `window` labeled rows of the old concept before the clock starts, so the
    /// trainer's window is full when drift is detected (and mostly old rows).
    pub prefill: bool,
    /// How long a run waits for the new champion before it counts as not healed.
    pub timeout: Duration,
}

fn ms_since(t0: Instant, at: Option<Instant>) -> Option<u64> {
    at.map(|at| at.saturating_duration_since(t0).as_millis() as u64)
}

async fn one_run(spec: &LatencySpec, run: usize) -> Result<Json> {
    let vars = effective_vars(bench_vars(spec.window));
    let mut stack = Stack::start(
        spec.launch,
        &vars,
        run_dir(spec.data_dir.as_deref(), &format!("latency-{run}")),
    )
    .await?;
    let trainer = mend_trainer::TrainerConfig::from_mend(&stack.config)
        .context("invalid trainer configuration")?;
    let world_spec = SyntheticSpec {
        seed: spec.seed + run as u64,
        ..SyntheticSpec::default()
    };
    let mut world = Generator::new(world_spec.clone());
    let (schema, first) = first_model(&mut world, spec.initial_rows, &trainer.train)?;
    seed_champion(&mut stack, &first, &schema, &world).await?;

    // Generated before the clock starts: only the loop is measured.
    let flipped = Regime {
        flip: true,
        ..Regime::default()
    };
    let mut batches = Vec::new();
    let mut left = spec.window;
    while left > 0 {
        let n = spec.batch.min(left);
        batches.push(world.sample(n, &flipped));
        left -= n;
    }

    // Followed from before the calm rows, so every event carries its real arrival time.
    let position = Arc::new(AtomicU64::new(0));
    let events = follow_events(stack.bus.clone(), position.clone()).await?;
    let base_time = now_ms();
    let mut row = 0u64;
    if spec.prefill {
        let mut left = spec.window;
        while left > 0 {
            let n = spec.batch.min(left);
            let old = world.sample(n, &Regime::default());
            send(
                &mut stack.ingest,
                MODEL,
                &world,
                &old,
                row,
                base_time + row as i64,
            )
            .await?;
            row += n as u64;
            left -= n;
            position.store(row, Ordering::Relaxed);
        }
        // Let the monitor read the calm rows before the clock starts (it polls every 100 ms).
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let prefilled = row;
    let prober = {
        let mut oip = stack.oip.clone();
        let names = Generator::new(world_spec);
        tokio::spawn(async move {
            let probe = names.probe();
            loop {
                if let Ok((version, _)) = infer(&mut oip, MODEL, REQUEST_ID, &names, &probe).await
                    && version != "1"
                {
                    return (Instant::now(), version);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    let started = Instant::now();
    let mut t0 = None;
    for sample in &batches {
        send(
            &mut stack.ingest,
            MODEL,
            &world,
            sample,
            row,
            base_time + row as i64,
        )
        .await?;
        row += sample.labels.len() as u64;
        position.store(row, Ordering::Relaxed);
        t0.get_or_insert_with(Instant::now);
    }
    let ingested_ms = started.elapsed().as_millis() as u64;
    let t0 = t0.context("no rows were ingested")?;
    let stop_probing = prober.abort_handle();
    let served = tokio::time::timeout(spec.timeout, prober).await;
    stop_probing.abort();
    let log = events.lock().map(|l| l.clone()).unwrap_or_default();
    stack.stop().await?;
    let (served_at, version) = match served {
        Ok(joined) => {
            let (at, version) = joined.context("the prober failed")?;
            (Some(at), Some(version))
        }
        Err(_) => (None, None),
    };

    let mut detected = None;
    let mut trained = None;
    let mut promoted = None;
    let (mut trained_on, mut train_ms, mut rejections) = (None, None, 0u32);
    let mut drift_at_row = None;
    // Only what the drifted rows caused: events while calm rows were prefilled are left out.
    for (at, at_row, event) in log.iter().filter(|(at, _, _)| *at >= started) {
        match event {
            Event::DriftDetected(_) if detected.is_none() => {
                detected = Some(*at);
                drift_at_row = Some(*at_row);
            }
            Event::ModelTrained(t) if trained.is_none() => {
                trained = Some(*at);
                trained_on = t.window.as_ref().and_then(|w| w.rows);
                train_ms = t.duration_ms;
            }
            Event::ModelRejected(_) if promoted.is_none() => rejections += 1,
            Event::ModelPromoted(_) if promoted.is_none() => promoted = Some(*at),
            _ => {}
        }
    }
    let events: Vec<Json> = log
        .iter()
        .map(|(at, at_row, event)| {
            json!({
                "before_drift": *at < started,
                "ms": at.saturating_duration_since(t0).as_millis() as u64,
                "row": at_row,
                "event": describe(event),
            })
        })
        .collect();
    Ok(json!({
        "events": events,
        "healed": served_at.is_some(),
        "heal_ms": ms_since(t0, served_at),
        "detected_ms": ms_since(t0, detected),
        "trained_ms": ms_since(t0, trained),
        "promoted_ms": ms_since(t0, promoted),
        "served_ms": ms_since(t0, served_at),
        "drift_detected_at_row": drift_at_row,
        "trained_on_rows": trained_on,
        "train_duration_ms": train_ms,
        "rejections_before": rejections,
        "new_version": version,
        "ingest_all_ms": ingested_ms,
        "rows_ingested": row - prefilled,
        "rows_prefilled": prefilled,
        "window_rows": trainer.window_rows,
    }))
}

/// Runs `spec.runs` heal-latency runs; returns every run and the median/min/max.
pub async fn measure(spec: &LatencySpec, say: &dyn Fn(String)) -> Result<Json> {
    say(format!(
        "\nheal latency: {} flipped rows through ingest in batches of {}, trainer window {} rows, {} runs",
        spec.window, spec.batch, spec.window, spec.runs
    ));
    // What one full-window retrain costs on this machine, for scale.
    let full_window_train_ms = {
        let mut world = Generator::new(SyntheticSpec {
            seed: spec.seed,
            ..SyntheticSpec::default()
        });
        let sample = world.sample(
            spec.window,
            &Regime {
                flip: true,
                ..Regime::default()
            },
        );
        let table = table_of(&world, &[&sample], 0);
        tokio::task::spawn_blocking(move || -> Result<u64> {
            let schema = Schema::infer(
                &table.headers,
                &table.rows,
                "label",
                &mend_core::SchemaOverride::default(),
            )?;
            let frame = Frame::from_table(&schema, &table, true)?;
            let started = Instant::now();
            mend_core::train(&schema, &frame, &mend_core::TrainSettings::default())?;
            Ok(started.elapsed().as_millis() as u64)
        })
        .await
        .context("the reference training panicked")??
    };
    let mut runs = Vec::new();
    for run in 0..spec.runs {
        let result = one_run(spec, run).await?;
        let field = |name: &str| {
            result[name]
                .as_u64()
                .map_or_else(|| "-".to_owned(), |v| format!("{v} ms"))
        };
        say(format!(
            "  run {}: new champion answering after {} (drift detected {}, trained {} on {} rows in {}, promoted {}); all {} rows ingested in {}",
            run + 1,
            field("heal_ms"),
            field("detected_ms"),
            field("trained_ms"),
            result["trained_on_rows"],
            field("train_duration_ms"),
            field("promoted_ms"),
            result["rows_ingested"],
            field("ingest_all_ms"),
        ));
        if result["healed"] != true {
            say(format!(
                "  run {}: no new champion answered within {:?}; the loop said:",
                run + 1,
                spec.timeout
            ));
            for event in result["events"].as_array().into_iter().flatten() {
                if event["before_drift"] == true {
                    continue;
                }
                say(format!("    {} ms: {}", event["ms"], event["event"]));
            }
        }
        runs.push(result);
    }
    let mut heal: Vec<u64> = runs.iter().filter_map(|r| r["heal_ms"].as_u64()).collect();
    heal.sort_unstable();
    let unhealed = runs.len() - heal.len();
    let median = heal.get(heal.len() / 2).copied();
    let (min, max) = (heal.first().copied(), heal.last().copied());
    say(format!(
        "  heal latency median {} ms, min {} ms, max {} ms (target: under 2,000 ms); one {}-row training on this machine takes {full_window_train_ms} ms",
        median.unwrap_or(0),
        min.unwrap_or(0),
        max.unwrap_or(0),
        spec.window,
    ));
    Ok(json!({
        "model": MODEL,
        "window_rows": spec.window,
        "batch_rows": spec.batch,
        "runs": runs,
        "unhealed_runs": unhealed,
        "median_ms": median,
        "min_ms": min,
        "max_ms": max,
        "full_window_train_ms": full_window_train_ms,
    }))
}
