//! `mend bench-heal`: how well, and how fast, the loop heals.
//!
//! **Healing quality.** Generated streams (an abrupt concept change, a gradual rotation of the
//! decision boundary, covariate shift under a fixed labelling rule, and a boundary that never
//! stops rotating), each scored
//! prequentially (every row is predicted before its label is learned) for three contenders:
//! - *mend*: the real services in this process, as `mend up` runs them (in-process bus,
//!   SQLite in a fresh data directory, registry, server, ingest, monitor, trainer). Each batch
//!   is first answered by the inference server over the Open Inference Protocol, then its rows
//!   and labels go in through ingest. Nothing else is scripted.
//! - *static*: the first champion, never retrained.
//! - *blind*: retrains every `--blind-every` rows on the newest trainer window with the
//!   trainer's own train settings, and always swaps the new model in (no gate).
//!
//! The stream is paced at `--rate` rows per second (the loop runs concurrently with the
//! producer, so how far the stream moves while mend notices and retrains depends on it).
//!
//! **Heal latency** (`heal_latency.rs`): from the first drifted batch ingested to the server
//! answering with the new champion, with a 100,000-row training window.
//!
//! Both start their services with [`Stack`] and share the model, the services' settings, the
//! first champion and the event log through `heal_common.rs`.
//!
//! Service knobs are the usual `MEND_*` variables: the bench's defaults (listed in the output)
//! apply only where the environment sets nothing.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use mend_bus::events::Event;
use mend_core::{Artifact, Frame, RawTable, Schema, TrainSettings};
use mend_worlds::{Generator, HalfTurn, Regime, Sample, SyntheticSpec};
use serde_json::{Value as Json, json};

use crate::heal_common::{
    MODEL, REQUEST_ID, bench_vars, describe, first_model, follow_events, seed_champion, table_of,
};
use crate::heal_latency;
use crate::stack::{Launch, Stack, effective_vars, run_dir};
use crate::world_client::{correct, infer, now_ms, send};

#[derive(Debug, Args)]
pub struct HealArgs {
    /// Scenarios to run: `all`, or a comma-separated list of `abrupt`, `gradual`, `covariate`,
    /// `rotating`.
    #[arg(long, default_value = "all")]
    scenario: String,
    /// Rows streamed per scenario (after the first champion is trained).
    #[arg(long, default_value_t = 20_000)]
    rows: usize,
    /// Rows of the initial regime the first champion is trained on.
    #[arg(long, default_value_t = 4_000)]
    initial_rows: usize,
    /// Rows per batch: predicted together, then ingested together.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Pace of the stream in rows per second (a batch starts every batch/rate seconds, or at
    /// once when the previous one ran late).
    #[arg(long, default_value_t = 2_000.0)]
    rate: f64,
    /// The blind retrainer retrains every this many rows, on the newest trainer window; unless
    /// `MEND_TRAINER_WINDOW_ROWS` is set, that window (mend's and the blind's) is this many rows.
    #[arg(long, default_value_t = 2_000)]
    blind_every: usize,
    /// More blind retrainers, one per cadence (rows), replayed on the same stream after it
    /// ends (so they cost the live run nothing): how accuracy trades against retrains.
    /// `--blind-sweep` with no cadence: none.
    #[arg(
        long,
        default_value = "1000,3000,4000,5000",
        value_delimiter = ',',
        num_args = 0..
    )]
    blind_sweep: Vec<usize>,
    /// Seed of the synthetic world.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Heal-latency runs (0: measure healing quality only).
    #[arg(long, default_value_t = 3)]
    latency_runs: usize,
    /// Training window of the heal-latency runs, and the flipped rows they ingest.
    #[arg(long, default_value_t = 100_000)]
    latency_window: usize,
    /// Rows per ingest call in the heal-latency runs.
    #[arg(long, default_value_t = 5_000)]
    latency_batch: usize,
    /// Heal-latency runs first ingest `--latency-window` rows of the old concept (not timed),
    /// so the training window is full of old rows when the drift is detected.
    #[arg(long)]
    latency_prefill: bool,
    /// How long a heal-latency run waits for a new champion before it counts as not healed.
    #[arg(long, default_value = "60s", value_parser = crate::bench::parse_duration)]
    latency_timeout: Duration,
    /// Skip the healing-quality scenarios (only measure heal latency).
    #[arg(long)]
    latency_only: bool,
    /// Parent of the per-run data directories (default: the system temp directory). Each run's
    /// directory is removed when it ends.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A labeled CSV stream instead of the synthetic scenarios (`stream.rs`).
    #[command(flatten)]
    stream: crate::stream::StreamArgs,
}

/// A stream shape.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scenario {
    Abrupt,
    Gradual,
    Covariate,
    Rotating,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Abrupt => "abrupt",
            Scenario::Gradual => "gradual",
            Scenario::Covariate => "covariate",
            Scenario::Rotating => "rotating",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Scenario::Abrupt => "the labelling rule flips at the middle of the stream",
            Scenario::Gradual => {
                "from the middle on, the decision boundary rotates in the (x0, x1) plane from 0 to 180 degrees, linearly over the second half"
            }
            Scenario::Covariate => {
                "x0 moves +2 standard deviations at the middle; the labelling rule stays"
            }
            Scenario::Rotating => {
                "the decision boundary rotates in the (x0, x1) plane from 0 to 180 degrees, linearly over the whole stream"
            }
        }
    }

    /// The world at stream position `row` of `total`.
    fn regime(self, row: usize, total: usize) -> Regime {
        match self {
            Scenario::Abrupt => Regime {
                flip: row >= total / 2,
                ..Regime::default()
            },
            Scenario::Gradual => HalfTurn::SecondHalf.regime(row, total),
            Scenario::Covariate => Regime {
                shift: if row >= total / 2 { 2.0 } else { 0.0 },
                ..Regime::default()
            },
            Scenario::Rotating => HalfTurn::Whole.regime(row, total),
        }
    }

    fn parse_list(text: &str) -> Result<Vec<Scenario>> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "all" => out.extend([
                    Scenario::Abrupt,
                    Scenario::Gradual,
                    Scenario::Covariate,
                    Scenario::Rotating,
                ]),
                "abrupt" => out.push(Scenario::Abrupt),
                "gradual" => out.push(Scenario::Gradual),
                "covariate" => out.push(Scenario::Covariate),
                "rotating" => out.push(Scenario::Rotating),
                other => bail!(
                    "unknown --scenario {other:?}; use all, or a list of abrupt, gradual, covariate, rotating"
                ),
            }
        }
        if out.is_empty() {
            bail!(
                "--scenario names no scenario; use all, or a list of abrupt, gradual, covariate, rotating"
            );
        }
        out.dedup();
        Ok(out)
    }
}

/// Rows of `sample` that `model` labels right.
fn right_of(model: &Artifact, schema: &Schema, g: &Generator, sample: &Sample) -> Result<usize> {
    let frame = Frame::from_table(schema, &table_of(g, &[sample], 0), true)?;
    let accuracy = model.evaluate(&frame)?.accuracy;
    Ok((accuracy * sample.labels.len() as f64).round() as usize)
}

#[derive(Default, Clone, Copy)]
struct Tally {
    rows: usize,
    mend: usize,
    fixed: usize,
    blind: usize,
}

impl Tally {
    fn add(&mut self, rows: usize, mend: usize, fixed: usize, blind: usize) {
        self.rows += rows;
        self.mend += mend;
        self.fixed += fixed;
        self.blind += blind;
    }

    fn share(right: usize, rows: usize) -> f64 {
        if rows == 0 {
            f64::NAN
        } else {
            right as f64 / rows as f64
        }
    }
}

async fn run_scenario(
    args: &HealArgs,
    scenario: Scenario,
    launch: Launch,
    say: &dyn Fn(String),
) -> Result<Json> {
    let started = Instant::now();
    let vars = effective_vars(bench_vars(args.blind_every.max(args.batch)));
    let mut stack = Stack::start(
        launch,
        &vars,
        run_dir(args.data_dir.as_deref(), scenario.name()),
    )
    .await?;
    let trainer = mend_trainer::TrainerConfig::from_mend(&stack.config)
        .context("invalid trainer configuration")?;
    let model_name = mend_bus::ModelName::new(MODEL).context("model name")?;
    let window = trainer.window_rows_for(&model_name);
    let mut world = Generator::new(SyntheticSpec {
        seed: args.seed,
        ..SyntheticSpec::default()
    });
    let (schema, first) = first_model(&mut world, args.initial_rows, &trainer.train)?;
    seed_champion(&mut stack, &first, &schema, &world).await?;
    let position = Arc::new(AtomicU64::new(0));
    let events = follow_events(stack.bus.clone(), position.clone()).await?;

    let mut blind = first.clone();
    let mut blind_retrains = 0usize;
    let mut blind_train_ms = Vec::new();
    // The batches so far: all of them when blind retrainers are replayed after the stream,
    // else just what the newest window needs.
    let mut stream: Vec<Sample> = Vec::new();
    let mut since_blind = 0usize;
    let quarter = args.rows.div_ceil(4).max(1);
    let mut segments = [Tally::default(); 4];
    let mut total = Tally::default();
    let mut served: Vec<Json> = Vec::new();
    let mut last_version = String::new();
    let base_time = now_ms();
    let pace = Duration::from_secs_f64(args.batch as f64 / args.rate);
    let stream_start = Instant::now();
    let mut row = 0usize;
    let mut k = 0u32;
    while row < args.rows {
        let due = stream_start + pace * k;
        tokio::time::sleep_until(due.into()).await;
        k += 1;
        let n = args.batch.min(args.rows - row);
        let sample = world.sample(n, &scenario.regime(row, args.rows));
        // Prequential: every contender predicts before any label of the batch is known.
        let (version, predicted) =
            infer(&mut stack.oip, MODEL, REQUEST_ID, &world, &sample).await?;
        let mend_right = correct(&world, &sample, &predicted);
        let fixed_right = right_of(&first, &schema, &world, &sample)?;
        let blind_right = right_of(&blind, &schema, &world, &sample)?;
        if version != last_version {
            served.push(json!({"from_row": row, "version": version}));
            last_version = version.clone();
        }
        total.add(n, mend_right, fixed_right, blind_right);
        segments[(row / quarter).min(3)].add(n, mend_right, fixed_right, blind_right);
        send(
            &mut stack.ingest,
            MODEL,
            &world,
            &sample,
            row as u64,
            base_time + row as i64,
        )
        .await?;
        row += n;
        position.store(row as u64, Ordering::Relaxed);
        stream.push(sample);
        since_blind += n;
        if since_blind >= args.blind_every {
            since_blind = 0;
            let trained = Instant::now();
            let table = blind_table(&world, &stream, row, window);
            let (schema, settings) = (schema.clone(), trainer.train.clone());
            // Off the executor, as the trainer trains: the services share this runtime.
            blind = tokio::task::spawn_blocking(move || -> Result<Artifact> {
                let frame = Frame::from_table(&schema, &table, true)?;
                mend_core::train(&schema, &frame, &settings).context("the blind retrain failed")
            })
            .await
            .context("the blind retrain panicked")??;
            blind_train_ms.push(trained.elapsed().as_millis() as u64);
            blind_retrains += 1;
        }
        if args.blind_sweep.is_empty() {
            let mut kept = 0;
            let keep_from = stream
                .iter()
                .rposition(|s| {
                    kept += s.labels.len();
                    kept >= window
                })
                .unwrap_or(0);
            stream.drain(..keep_from);
        }
    }
    let stream_ms = stream_start.elapsed().as_millis() as u64;
    let behind = stream_start.elapsed().as_secs_f64() - args.rows as f64 / args.rate;
    let versions = stack
        .registry
        .list_versions(MODEL)
        .await
        .context("failed to list the registry's versions")?
        .len();
    let audit = stack.registry.audit(MODEL).await.map(|a| a.len()).ok();
    let log: Vec<(Instant, u64, Event)> = events.lock().map(|l| l.clone()).unwrap_or_default();
    stack.stop().await?;
    // The services are stopped: nothing else needs this thread while the sweep trains.
    let sweep = args
        .blind_sweep
        .iter()
        .map(|&every| {
            replay_blind(
                &world,
                &schema,
                &first,
                &trainer.train,
                &stream,
                every,
                window,
            )
        })
        .collect::<Result<Vec<Json>>>()?;

    let (mut retrains, mut promotions, mut rejections, mut rollbacks, mut drifts) =
        (0u32, 0u32, 0u32, 0u32, 0u32);
    let mut timeline = Vec::new();
    let mut lines = Vec::new();
    for (at, at_row, event) in &log {
        match event {
            Event::DriftDetected(_) => drifts += 1,
            Event::ModelTrained(_) => retrains += 1,
            Event::ModelPromoted(_) => promotions += 1,
            Event::ModelRejected(_) => rejections += 1,
            Event::ModelRolledBack(_) => rollbacks += 1,
            _ => {}
        }
        let what = describe(event);
        lines.push(format!("    row {at_row:>6}: {what}"));
        timeline.push(json!({
            "ms": at.saturating_duration_since(stream_start).as_millis() as u64,
            "row": at_row,
            "event": what,
        }));
    }
    let segments: Vec<Json> = segments
        .iter()
        .enumerate()
        .filter(|(_, s)| s.rows > 0)
        .map(|(i, s)| {
            let from = i * quarter;
            json!({
                "from_row": from,
                "to_row": from + s.rows,
                "mend": Tally::share(s.mend, s.rows),
                "static": Tally::share(s.fixed, s.rows),
                "blind": Tally::share(s.blind, s.rows),
            })
        })
        .collect();
    let result = json!({
        "name": scenario.name(),
        "description": scenario.describe(),
        "rows": total.rows,
        "mend": {
            "accuracy": Tally::share(total.mend, total.rows),
            "retrains": retrains,
            "promotions": promotions,
            "rejections": rejections,
            "rollbacks": rollbacks,
            "drift_events": drifts,
            "registry_versions": versions,
            "audit_records": audit,
            "versions_served": served,
            "timeline": timeline,
        },
        "static": { "accuracy": Tally::share(total.fixed, total.rows) },
        "blind": {
            "accuracy": Tally::share(total.blind, total.rows),
            "retrains": blind_retrains,
            "every_rows": args.blind_every,
            "train_ms": blind_train_ms,
        },
        "blind_sweep": sweep,
        "segments": segments,
        "trainer_window_rows": window,
        "stream_ms": stream_ms,
        "behind_pace_s": behind.max(0.0),
        "elapsed_ms": started.elapsed().as_millis() as u64,
    });
    say(format!(
        "{:<10} mend {:.3}  static {:.3}  blind {:.3}   retrains mend {retrains} / blind {blind_retrains}   promoted {promotions}, rejected {rejections}, rolled back {rollbacks}   ({:.1} s)",
        scenario.name(),
        Tally::share(total.mend, total.rows),
        Tally::share(total.fixed, total.rows),
        Tally::share(total.blind, total.rows),
        started.elapsed().as_secs_f64(),
    ));
    for line in lines {
        say(line);
    }
    Ok(result)
}

/// A blind retrainer replayed on the recorded stream: it predicts each batch, then retrains
/// every `every` rows on the newest `window` (as the live one does, with no latency).
fn replay_blind(
    world: &Generator,
    schema: &Schema,
    first: &Artifact,
    settings: &TrainSettings,
    stream: &[Sample],
    every: usize,
    window: usize,
) -> Result<Json> {
    let mut model = first.clone();
    let (mut right, mut rows, mut since, mut retrains) = (0usize, 0usize, 0usize, 0usize);
    for (k, sample) in stream.iter().enumerate() {
        right += right_of(&model, schema, world, sample)?;
        let n = sample.labels.len();
        rows += n;
        since += n;
        if every > 0 && since >= every {
            since = 0;
            let table = blind_table(world, &stream[..=k], rows, window);
            let frame = Frame::from_table(schema, &table, true)?;
            model = mend_core::train(schema, &frame, settings).context("a blind retrain failed")?;
            retrains += 1;
        }
    }
    Ok(json!({
        "every_rows": every,
        "accuracy": Tally::share(right, rows),
        "retrains": retrains,
    }))
}

/// The blind retrainer's training rows: the newest `window` rows up to stream row `end`.
fn blind_table(world: &Generator, history: &[Sample], end: usize, window: usize) -> RawTable {
    let mut picked: Vec<&Sample> = Vec::new();
    let mut rows = 0;
    for sample in history.iter().rev() {
        if rows >= window {
            break;
        }
        rows += sample.labels.len();
        picked.push(sample);
    }
    picked.reverse();
    let first_id = end.saturating_sub(rows) as u64;
    let mut table = table_of(world, &picked, first_id);
    // The newest `window` rows exactly, as the trainer reads them.
    if table.rows.len() > window {
        let cut = table.rows.len() - window;
        table.rows.drain(..cut);
        table.lines = (0..table.rows.len() as u64).map(|i| i + 2).collect();
    }
    table
}

/// Runs `mend bench-heal`; `launch` starts the services as `mend up` does.
pub fn run(args: HealArgs, json_out: bool, launch: Launch) -> Result<()> {
    if args.stream.stream.is_some() {
        return crate::stream::run(
            &args.stream,
            args.rate,
            args.batch,
            args.data_dir.as_deref(),
            json_out,
            launch,
        );
    }
    if args.batch == 0 || args.rows == 0 || args.blind_every == 0 {
        bail!("--batch, --rows and --blind-every must be at least 1");
    }
    if args.initial_rows < 100 {
        bail!("--initial-rows must be at least 100");
    }
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate must be a positive number of rows per second");
    }
    if args.latency_runs > 0 && (args.latency_window < 100 || args.latency_batch == 0) {
        bail!("--latency-window must be at least 100 rows and --latency-batch at least 1");
    }
    let scenarios = if args.latency_only {
        Vec::new()
    } else {
        Scenario::parse_list(&args.scenario)?
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async move {
        let say = |line: String| {
            if !json_out {
                println!("{line}");
            }
        };
        let mut results = Vec::new();
        if !scenarios.is_empty() {
            say(format!(
                "healing quality: {} rows per scenario after a first champion on {} rows, batches of {} at {} rows/s; blind retrains every {} rows",
                args.rows, args.initial_rows, args.batch, args.rate, args.blind_every
            ));
        }
        for scenario in &scenarios {
            results.push(run_scenario(&args, *scenario, launch, &say).await?);
        }
        let latency = if args.latency_runs > 0 {
            Some(heal_latency::measure(&args.latency(launch), &say).await?)
        } else {
            None
        };
        let settings = effective_vars(bench_vars(args.blind_every.max(args.batch)));
        if json_out {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "pacing": {
                        "rows_per_s": args.rate,
                        "batch": args.batch,
                        "initial_rows": args.initial_rows,
                        "seed": args.seed,
                    },
                    "settings": settings,
                    "scenarios": results,
                    "latency": latency,
                }))?
            );
        } else if !results.is_empty() {
            print_table(&results);
        }
        Ok(())
    })
}

impl HealArgs {
    fn latency(&self, launch: Launch) -> heal_latency::LatencySpec {
        heal_latency::LatencySpec {
            launch,
            runs: self.latency_runs,
            window: self.latency_window,
            batch: self.latency_batch,
            initial_rows: self.initial_rows,
            seed: self.seed,
            data_dir: self.data_dir.clone(),
            prefill: self.latency_prefill,
            timeout: self.latency_timeout,
        }
    }
}

fn print_table(results: &[Json]) {
    let f = |v: &Json, path: &[&str]| -> String {
        let mut at = v;
        for p in path {
            at = &at[*p];
        }
        match at {
            Json::Number(n) if n.is_f64() => format!("{:.3}", n.as_f64().unwrap_or(f64::NAN)),
            Json::Number(n) => n.to_string(),
            other => other.to_string(),
        }
    };
    println!();
    println!(
        "{:<10} {:>7} {:>7} {:>7} {:>14} {:>14} {:>9} {:>9}",
        "scenario",
        "mend",
        "static",
        "blind",
        "retrains mend",
        "retrains blind",
        "promoted",
        "rejected"
    );
    for r in results {
        println!(
            "{:<10} {:>7} {:>7} {:>7} {:>14} {:>14} {:>9} {:>9}",
            f(r, &["name"]).trim_matches('"'),
            f(r, &["mend", "accuracy"]),
            f(r, &["static", "accuracy"]),
            f(r, &["blind", "accuracy"]),
            f(r, &["mend", "retrains"]),
            f(r, &["blind", "retrains"]),
            f(r, &["mend", "promotions"]),
            f(r, &["mend", "rejections"]),
        );
    }
    // One line per scenario: its name, then each element of the array at `key`, formatted.
    let per_scenario = |key: &str, item: &dyn Fn(&Json) -> String| {
        for r in results {
            let parts: Vec<String> = r[key]
                .as_array()
                .map(|s| s.iter().map(item).collect())
                .unwrap_or_default();
            println!(
                "{:<10} {}",
                f(r, &["name"]).trim_matches('"'),
                parts.join("   ")
            );
        }
    };
    if results
        .iter()
        .any(|r| r["blind_sweep"].as_array().is_some_and(|s| !s.is_empty()))
    {
        println!(
            "\nblind retrainers every N rows, replayed on the same stream (accuracy, retrains):"
        );
        per_scenario("blind_sweep", &|b| {
            format!(
                "every {}: {} ({})",
                f(b, &["every_rows"]),
                f(b, &["accuracy"]),
                f(b, &["retrains"])
            )
        });
    }
    println!("\nper quarter of the stream (mend / static / blind):");
    per_scenario("segments", &|seg| {
        format!(
            "{}..{}: {} / {} / {}",
            f(seg, &["from_row"]),
            f(seg, &["to_row"]),
            f(seg, &["mend"]),
            f(seg, &["static"]),
            f(seg, &["blind"])
        )
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn scenarios_parse_and_bend_the_world_where_they_say() {
        assert_eq!(Scenario::parse_list("all").unwrap().len(), 4);
        assert_eq!(
            Scenario::parse_list("abrupt, covariate").unwrap(),
            vec![Scenario::Abrupt, Scenario::Covariate]
        );
        assert!(Scenario::parse_list("sideways").is_err());
        assert!(Scenario::parse_list(",").is_err());
        assert!(!Scenario::Abrupt.regime(499, 1_000).flip);
        assert!(Scenario::Abrupt.regime(500, 1_000).flip);
        assert_eq!(Scenario::Covariate.regime(0, 1_000).shift, 0.0);
        assert_eq!(Scenario::Covariate.regime(600, 1_000).shift, 2.0);
        assert!(!Scenario::Covariate.regime(600, 1_000).flip);
        // Gradual: still until the middle, then half a turn over the second half.
        assert_eq!(Scenario::Gradual.regime(500, 1_000).rotation, 0.0);
        let late = Scenario::Gradual.regime(750, 1_000).rotation;
        assert!((late - 0.5 * std::f64::consts::PI).abs() < 1e-12);
        // Rotating: turning from the first row.
        let late = Scenario::Rotating.regime(750, 1_000).rotation;
        assert!((late - 0.75 * std::f64::consts::PI).abs() < 1e-12);
    }
}
