//! `mend`: the command line of the self-healing ML pipeline.
//!
//! Offline commands (`train`, `evaluate`, `predict`, `inspect`, `synth`) work on files with no
//! service running; service commands arrive with the services.

mod bench_demo;
mod csv_blocks;
mod drift_cmd;
mod events_cmd;
mod ingest_cmd;
mod models_cmd;
mod output;
mod progress;
mod report_cmd;
mod retrain_cmd;
mod static_cmds;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mend: a self-healing machine-learning pipeline.
#[derive(Debug, Parser)]
#[command(name = "mend", version, about, propagate_version = true)]
struct Cli {
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a model on a labeled CSV and write its artifact.
    Train(static_cmds::TrainArgs),
    /// Evaluate a model on a labeled CSV.
    Evaluate(static_cmds::EvaluateArgs),
    /// Predict class probabilities and labels for every row of a CSV.
    Predict(static_cmds::PredictArgs),
    /// Show a model's schema, metrics, training metadata and profile summary.
    Inspect {
        /// The model artifact.
        model: PathBuf,
    },
    /// Run every service in one process (embedded bus and SQLite, or --nats URL).
    Up(up::UpArgs),
    /// Watch mend heal a model through its services on a drifting stream (the main job).
    Demo(bench_demo::DemoArgs),
    /// The heal loop on mend-core alone, without services (a quick look at the statistics).
    #[command(hide = true)]
    DemoOffline(bench_demo::OfflineDemoArgs),
    /// Write a synthetic labeled CSV (optionally drifted), for trying mend out.
    Synth(static_cmds::SynthArgs),
    /// Compare a current CSV with a reference CSV: feature and dataset drift, as the monitor
    /// does (the label column is left out).
    Drift(drift_cmd::DriftArgs),
    /// The model registry: register, list, show, promote, roll back, audit.
    Models(models_cmd::ModelsArgs),
    /// Load-test an inference server over the Open Inference Protocol (or a self-served one).
    Bench(bench_demo::BenchArgs),
    /// Measure healing: prequential accuracy against a static model and a blind retrainer on
    /// drifting streams, and the heal latency (see BENCHMARKS.md).
    BenchHeal(bench_demo::HealArgs),
    /// Stream a CSV of rows (or, with --labels, labels) to the ingest service.
    Ingest(ingest_cmd::IngestArgs),
    /// Fetch a drift report from the monitor and write its HTML page (`--open` shows it).
    Report(report_cmd::ReportArgs),
    /// Ask the trainer, through the registry, to retrain MODEL now.
    Retrain(retrain_cmd::RetrainArgs),
    /// Publish an event on the bus, or follow it live (`mend up`'s, or NATS with --nats).
    Events(events_cmd::EventsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => static_cmds::train(args, cli.json),
        Command::Evaluate(args) => static_cmds::evaluate(args, cli.json),
        Command::Predict(args) => static_cmds::predict(args, cli.json),
        Command::Inspect { model } => static_cmds::inspect(&model, cli.json),
        Command::Synth(args) => static_cmds::synth(args, cli.json),
        Command::Demo(args) => bench_demo::demo(args, cli.json),
        Command::DemoOffline(args) => bench_demo::demo_offline(args, cli.json),
        Command::Up(args) => up::run(args),
        Command::Drift(args) => drift_cmd::run(args, cli.json),
        Command::Models(args) => models_cmd::run(args, cli.json),
        Command::Bench(args) => bench_demo::bench(args, cli.json),
        Command::BenchHeal(args) => bench_demo::bench_heal(args, cli.json),
        Command::Ingest(args) => ingest_cmd::run(args, cli.json),
        Command::Report(args) => report_cmd::run(args, cli.json),
        Command::Retrain(args) => retrain_cmd::run(args, cli.json),
        Command::Events(args) => events_cmd::run(args, cli.json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A reader that closed our standard output (`mend predict ... | head`) is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
