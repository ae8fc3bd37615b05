//! Offline commands: train, evaluate, predict, inspect and synth, on files.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use mend_core::profile::FeatureProfile;
use mend_core::{
    Algorithm, Artifact, ClassWeight, CoreError, Frame, LogisticSettings, Schema, SchemaOverride,
    Solver, TrainSettings, read_csv, sha256_hex,
};
use mend_worlds::{Generator, Regime, SyntheticSpec};
use serde_json::json;

use crate::output::{f4, metrics as metrics_table, table};
use crate::progress::step;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Labeled training data (CSV with a header row).
    #[arg(long)]
    data: PathBuf,
    /// The label column.
    #[arg(long)]
    label: String,
    /// A JSON schema override (column kinds, id/time columns, classes, missing-value policy).
    #[arg(long)]
    schema: Option<PathBuf>,
    /// Where to write the model artifact.
    #[arg(long)]
    out: PathBuf,
    /// L2 regularisation strength (1/C in scikit-learn's terms).
    #[arg(long, default_value_t = 1.0)]
    l2: f64,
    #[arg(long, default_value_t = 100)]
    max_iter: u64,
    /// Stop when the largest gradient component is at most this.
    #[arg(long, default_value_t = 1e-4)]
    tol: f64,
    /// `none`, `balanced`, or JSON weights by class, e.g. '{"yes": 5}'.
    #[arg(long, default_value = "none")]
    class_weight: String,
    /// Share of the newest rows held out for evaluation.
    #[arg(long, default_value_t = 0.2)]
    holdout: f64,
    /// Categories seen fewer times than this go to the unknown bucket.
    #[arg(long, default_value_t = 1)]
    min_category_frequency: usize,
    /// `lbfgs` (mend's parallel solver) or `linfa` (linfa-logistic).
    #[arg(long, default_value = "lbfgs")]
    solver: String,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    #[arg(long)]
    model: PathBuf,
    /// Labeled data (CSV).
    #[arg(long)]
    data: PathBuf,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    #[arg(long)]
    model: PathBuf,
    /// Data to predict (CSV; a label column, if present, is ignored).
    #[arg(long)]
    data: PathBuf,
    /// Output CSV (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Where to write the CSV.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 10_000)]
    rows: usize,
    #[arg(long, default_value_t = 5)]
    numeric: usize,
    #[arg(long, default_value_t = 1)]
    categorical: usize,
    #[arg(long, default_value_t = 2)]
    classes: usize,
    /// The seed fixes the ground truth; different seeds, different worlds.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Seed of the rows drawn (same world, fresh rows). Defaults to the seed.
    #[arg(long)]
    sample_seed: Option<u64>,
    /// Covariate shift of feature x0, in standard deviations.
    #[arg(long, default_value_t = 0.0)]
    shift: f64,
    /// Rotation of the decision boundary, in degrees (gradual concept drift).
    #[arg(long, default_value_t = 0.0)]
    rotate: f64,
    /// Flip the labelling rule (abrupt concept drift).
    #[arg(long)]
    flip: bool,
    /// Share of labels replaced by noise.
    #[arg(long, default_value_t = 0.0)]
    noise: f64,
    /// Leave the label column out.
    #[arg(long)]
    no_labels: bool,
    /// First row id and event time.
    #[arg(long, default_value_t = 0)]
    first_id: u64,
}

fn load_table(path: &Path) -> Result<mend_core::RawTable> {
    let file = File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    step(&format!("reading {}", path.display()), || {
        read_csv(BufReader::new(file))
    })
    .with_context(|| format!("failed to read {}", path.display()))
}

fn load_model(path: &Path) -> Result<Artifact> {
    let file =
        File::open(path).with_context(|| format!("failed to open model {}", path.display()))?;
    Artifact::read_from(BufReader::new(file))
        .with_context(|| format!("failed to load model {}", path.display()))
}

/// Turns a frame error into a message listing the first bad cells.
pub(crate) fn frame_error(e: CoreError) -> anyhow::Error {
    match e {
        CoreError::Rows(errors) => anyhow::anyhow!(mend_core::error::describe_rows(&errors)),
        other => other.into(),
    }
}

fn parse_class_weight(text: &str) -> Result<ClassWeight> {
    Ok(match text {
        "none" => ClassWeight::None,
        "balanced" => ClassWeight::Balanced,
        json => {
            let map: BTreeMap<String, f64> = serde_json::from_str(json).with_context(|| {
                format!("--class-weight: expected none, balanced or a JSON object, got {json:?}")
            })?;
            ClassWeight::Custom(map)
        }
    })
}

pub fn train(args: TrainArgs, json: bool) -> Result<()> {
    let solver = match args.solver.as_str() {
        "lbfgs" => Solver::Lbfgs,
        "linfa" => Solver::Linfa,
        other => bail!("--solver: expected lbfgs or linfa, got {other:?}"),
    };
    let settings = TrainSettings {
        holdout_fraction: args.holdout,
        min_category_frequency: args.min_category_frequency,
        threads: 0,
        algorithm: Algorithm::Logistic(LogisticSettings {
            l2: args.l2,
            max_iterations: args.max_iter,
            tolerance: args.tol,
            class_weight: parse_class_weight(&args.class_weight)?,
            solver,
        }),
    };
    settings.validate()?;
    let over = match &args.schema {
        Some(p) => SchemaOverride::from_json(
            &std::fs::read_to_string(p)
                .with_context(|| format!("failed to read {}", p.display()))?,
        )?,
        None => SchemaOverride::default(),
    };
    let table_data = load_table(&args.data)?;
    let schema = Schema::infer(&table_data.headers, &table_data.rows, &args.label, &over)?;
    let frame = Frame::from_table(&schema, &table_data, true).map_err(frame_error)?;
    drop(table_data);
    let started = Instant::now();
    let artifact = step(&format!("training on {} rows", frame.len()), || {
        mend_core::train(&schema, &frame, &settings)
    })?;
    let train_ms = started.elapsed().as_millis();
    let bytes = artifact.to_bytes()?;
    std::fs::write(&args.out, &bytes)
        .with_context(|| format!("failed to write {}", args.out.display()))?;
    if json {
        let out = json!({
            "model": args.out,
            "sha256": sha256_hex(&bytes),
            "bytes": bytes.len(),
            "schema_hash": schema.hash(),
            "rows_train": artifact.training.rows_train,
            "rows_holdout": artifact.training.rows_holdout,
            "train_ms": train_ms,
            "fit": artifact.training.fit,
            "holdout": artifact.metrics,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let fit = &artifact.training.fit;
    println!(
        "trained on {} rows, held out the newest {} ({} ms, {} iterations{})",
        artifact.training.rows_train,
        artifact.training.rows_holdout,
        train_ms,
        fit.iterations
            .map(|i| i.to_string())
            .unwrap_or_else(|| "?".into()),
        if fit.converged != Some(false) {
            ""
        } else {
            ", NOT converged: raise --max-iter"
        }
    );
    println!(
        "wrote {} ({} bytes, sha256 {})\n",
        args.out.display(),
        bytes.len(),
        &sha256_hex(&bytes)[..16]
    );
    println!("holdout metrics:\n{}", metrics_table(&artifact.metrics));
    Ok(())
}

pub fn evaluate(args: EvaluateArgs, json: bool) -> Result<()> {
    let artifact = load_model(&args.model)?;
    let table_data = load_table(&args.data)?;
    let frame = Frame::from_table(&artifact.schema, &table_data, true).map_err(frame_error)?;
    let metrics = step("evaluating", || artifact.evaluate(&frame))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&metrics)?);
    } else {
        println!("{}", metrics_table(&metrics));
    }
    Ok(())
}

pub fn predict(args: PredictArgs, json: bool) -> Result<()> {
    let artifact = load_model(&args.model)?;
    let table_data = load_table(&args.data)?;
    let frame = Frame::from_table(&artifact.schema, &table_data, false).map_err(frame_error)?;
    let proba = step("predicting", || artifact.predict_proba(&frame))?;
    let labels = artifact.labels_of(&proba);
    let sink: Box<dyn Write> = match &args.out {
        Some(p) => {
            Box::new(File::create(p).with_context(|| format!("failed to create {}", p.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut w = BufWriter::new(sink);
    if json {
        let rows: Vec<_> = frame
            .ids
            .iter()
            .zip(proba.rows())
            .zip(&labels)
            .map(|((id, p), label)| {
                let probs: BTreeMap<&str, f64> = artifact
                    .schema
                    .classes
                    .iter()
                    .map(String::as_str)
                    .zip(p.iter().copied())
                    .collect();
                json!({"id": id, "probabilities": probs, "predicted_label": label})
            })
            .collect();
        serde_json::to_writer_pretty(&mut w, &rows)?;
        writeln!(w)?;
    } else {
        let mut header = vec!["id".to_owned()];
        header.extend(artifact.schema.classes.iter().map(|c| format!("p_{c}")));
        // Not `label`: that is the ground truth's column, and a predictions file must never
        // pass for labels (`mend ingest predictions.csv --labels` finds no label column).
        header.push("predicted_label".into());
        writeln!(w, "{}", header.join(","))?;
        for ((id, p), label) in frame.ids.iter().zip(proba.rows()).zip(&labels) {
            let probs: Vec<String> = p.iter().map(|x| format!("{x:.6}")).collect();
            writeln!(w, "{},{},{}", id, probs.join(","), label)?;
        }
    }
    w.flush()?;
    if let Some(p) = &args.out {
        eprintln!("wrote {} predictions to {}", frame.len(), p.display());
    }
    Ok(())
}

/// The format version a model file's header names (an older file is upgraded when read, so
/// the loaded artifact always says the newest).
fn file_format(bytes: &[u8]) -> Option<u32> {
    let header = bytes.split(|&b| b == b'\n').next()?;
    std::str::from_utf8(header)
        .ok()?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

pub fn inspect(path: &Path, json: bool) -> Result<()> {
    let bytes =
        std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    let artifact = Artifact::from_bytes(&bytes)
        .with_context(|| format!("failed to load model {}", path.display()))?;
    if json {
        let out = json!({
            "sha256": sha256_hex(&bytes),
            "format_version": file_format(&bytes),
            "model": artifact.model.summary(),
            "schema": artifact.schema,
            "schema_hash": artifact.schema.hash(),
            "metrics": artifact.metrics,
            "training": artifact.training,
            "profile": artifact.profile,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let s = &artifact.schema;
    let t = &artifact.training;
    println!(
        "model {} (format {}, {} bytes, sha256 {})",
        path.display(),
        match file_format(&bytes) {
            Some(format) if format == artifact.format_version => format.to_string(),
            Some(format) => format!("{format}, read as {}", artifact.format_version),
            None => "?".to_owned(),
        },
        bytes.len(),
        &sha256_hex(&bytes)[..16]
    );
    println!(
        "schema {}: label `{}`, classes [{}], missing values {}",
        &s.hash()[..16],
        s.label,
        s.classes.join(", "),
        if s.allow_missing {
            "imputed"
        } else {
            "refused"
        }
    );
    println!(
        "trained {} rows (+{} holdout) in {} ms, {} iterations, converged {}",
        t.rows_train,
        t.rows_holdout,
        t.duration_ms,
        t.fit
            .iterations
            .map(|i| i.to_string())
            .unwrap_or_else(|| "?".into()),
        t.fit
            .converged
            .map(|c| c.to_string())
            .unwrap_or_else(|| "unknown".into()),
    );
    let summary = artifact.model.summary();
    println!(
        "model {}: {} inputs after preprocessing, {} classes, {} parameters; {}\n",
        summary.family,
        summary.inputs,
        summary.classes,
        summary.parameters,
        t.settings.algorithm.describe()
    );
    let rows: Vec<Vec<String>> = artifact
        .profile
        .features
        .iter()
        .map(|f| match f {
            FeatureProfile::Numeric(p) => vec![
                p.name.clone(),
                "numeric".into(),
                f4(p.missing_rate),
                format!("mean {} std {}", f4(p.mean), f4(p.std)),
                format!(
                    "min {} median {} max {}",
                    f4(p.min),
                    f4(p.sketch[p.sketch.len() / 2]),
                    f4(p.max)
                ),
            ],
            FeatureProfile::Categorical(p) => {
                let mut top: Vec<(&String, &f64)> = p.frequencies.iter().collect();
                top.sort_by(|a, b| b.1.total_cmp(a.1));
                let shown: Vec<String> = top
                    .iter()
                    .take(4)
                    .map(|(k, v)| format!("{k} {:.0}%", *v * 100.0))
                    .collect();
                vec![
                    p.name.clone(),
                    "categorical".into(),
                    f4(p.missing_rate),
                    format!("{} categories", p.frequencies.len()),
                    shown.join(", "),
                ]
            }
        })
        .collect();
    println!(
        "features (training profile):\n{}\n",
        table(
            &["feature", "kind", "missing", "summary", "distribution"],
            &rows
        )
    );
    println!("holdout metrics:\n{}", metrics_table(&artifact.metrics));
    Ok(())
}

pub fn synth(args: SynthArgs, json: bool) -> Result<()> {
    if args.classes < 2 {
        bail!("--classes must be at least 2");
    }
    let spec = SyntheticSpec {
        numeric: args.numeric,
        categorical: args.categorical,
        classes: args.classes,
        seed: args.seed,
        signal: 3.0,
    };
    let mut g = Generator::new(spec);
    if let Some(s) = args.sample_seed {
        g.reseed(s);
    }
    let regime = Regime {
        shift: args.shift,
        rotation: args.rotate.to_radians(),
        flip: args.flip,
        label_noise: args.noise,
    };
    let sample = step("generating", || g.sample(args.rows, &regime));
    let table_data = g.to_table(
        &sample,
        !args.no_labels,
        args.first_id,
        args.first_id as i64,
    );
    let mut w = BufWriter::new(
        File::create(&args.out)
            .with_context(|| format!("failed to create {}", args.out.display()))?,
    );
    writeln!(w, "{}", table_data.headers.join(","))?;
    for row in &table_data.rows {
        writeln!(w, "{}", row.join(","))?;
    }
    w.flush()?;
    if json {
        println!("{}", json!({"out": args.out, "rows": args.rows}));
    } else {
        println!("wrote {} rows to {}", args.rows, args.out.display());
    }
    Ok(())
}
