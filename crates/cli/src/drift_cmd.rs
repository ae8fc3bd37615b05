//! `mend drift`: the monitor's drift computation and report, offline, on two CSV files.
//!
//! Both files are streamed, never loaded: each is folded into a bounded [`WindowSummary`]
//! (a uniform row sample, counts), the two on separate threads. Column kinds are inferred from the
//! first rows of the reference; the reference summary becomes a [`DriftReference`], and the
//! current summary is compared with it under the drift policy.
//!
//! The label is not a feature: `--label COL` names it, `--model` takes it (and the id and time
//! columns) from a model's schema, and otherwise a column named `label` is taken as the label,
//! with a note saying so (`--no-label` tests every column). The verdicts are printed as the
//! monitor's reports word them ([`mend_core::drift::verdict`]): dataset drift, feature drift.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mend_core::drift::summary::FeatureLayout;
use mend_core::drift::{
    DriftPolicy, DriftReference, DriftReport, ReferenceFeature, SummaryConfig, WindowSummary,
    compare_reference,
};
use mend_core::profile::MAX_CATEGORIES;
use mend_core::record::{RowRecord, Value};
use mend_core::report::{PageOptions, html};
use mend_core::schema::is_missing;
use mend_core::{Artifact, FeatureKind};
use serde::Serialize;

use crate::csv_blocks::{self, Row};
use crate::output::{f4, table};

/// Rows of the reference read to decide whether a column is numeric.
const INFER_ROWS: usize = 10_000;
/// Column names taken as row ids or event times, not features (as `mend train` does).
const ID_AND_TIME_NAMES: [&str; 6] = ["id", "row_id", "time", "timestamp", "event_time", "time_ms"];
/// The column taken as the label when nothing names one (`mend synth` and `mend ingest
/// --labels` use it).
const DEFAULT_LABEL: &str = "label";

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// Reference data (CSV with a header row), e.g. the training data.
    #[arg(long)]
    reference: PathBuf,
    /// Current data (CSV with the same columns), e.g. recent production inputs.
    #[arg(long)]
    current: PathBuf,
    /// The label column, left out of the features (default: the `--model`'s label, else a
    /// column named `label`, if there is one).
    #[arg(long, value_name = "COLUMN")]
    label: Option<String>,
    /// Take no column as the label: a `label` column is tested like any feature.
    #[arg(long, conflicts_with = "label")]
    no_label: bool,
    /// A model artifact whose schema names the label and the id and time columns to leave out.
    #[arg(long, value_name = "ARTIFACT")]
    model: Option<PathBuf>,
    /// Another column to leave out (repeatable).
    #[arg(long = "ignore", value_name = "COLUMN")]
    ignore: Vec<String>,
    /// A column to read as categorical even if it looks numeric (repeatable).
    #[arg(long = "categorical", value_name = "COLUMN")]
    categorical: Vec<String>,
    /// Write a self-contained HTML report here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// A JSON drift policy: thresholds, and per-feature tests, thresholds or `ignore`.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Rows sampled per file (their numeric values) for KS and Wasserstein; files no longer
    /// than this are compared exactly. Memory grows with it, not with the files.
    #[arg(long, default_value_t = 100_000)]
    sample: usize,
    /// Exit non-zero on dataset drift: at least the policy's `dataset_drift_share` (0.5) of
    /// the features drifted (for CI pipelines).
    #[arg(long)]
    fail_on_drift: bool,
    /// Benchmark the monitor's per-window computation instead: load both files as data-log
    /// rows first (not timed), then time folding them into window summaries and comparing, as
    /// the monitor does for a window (`scripts/bench-drift.sh` uses it). Needs memory for all rows.
    #[arg(long, hide = true)]
    bench_window: bool,
}

/// The JSON output: the report, plus what was read and how long it took.
#[derive(Debug, Serialize)]
struct Output<'a> {
    #[serde(flatten)]
    report: &'a DriftReport,
    /// Feature drift: the names of the drifted features (`drifted_features` counts them).
    feature_drift: Vec<&'a str>,
    reference_file: &'a Path,
    current_file: &'a Path,
    /// The label column, left out of the features (`None`: no column was taken as it).
    label: Option<&'a str>,
    left_out: &'a [String],
    timings_ms: Timings,
}

/// The columns to compare, and the ones left out.
struct Plan {
    layout: Vec<FeatureLayout>,
    left_out: Vec<String>,
    label: Option<String>,
    /// Why the label was taken as the label, when no `--label` named it.
    label_note: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct Timings {
    summarise: u128,
    compare: u128,
}

/// What one streamed file produced.
struct Summarised {
    summary: WindowSummary,
    /// Per feature, present cells that were not numbers in a numeric column.
    not_numbers: Vec<u64>,
}

pub fn run(args: DriftArgs, json: bool) -> Result<()> {
    let policy = match &args.policy {
        Some(p) => DriftPolicy::from_json(
            &std::fs::read_to_string(p)
                .with_context(|| format!("failed to read {}", p.display()))?,
        )?,
        None => DriftPolicy::default(),
    };
    if args.sample == 0 {
        bail!("--sample must be at least 1");
    }
    let Plan {
        layout,
        left_out,
        label,
        label_note,
    } = plan_columns(&args)?;
    if let Some(note) = &label_note {
        eprintln!("note: {note}");
    }
    let config = SummaryConfig {
        reservoir_size: args.sample,
        max_categories: MAX_CATEGORIES,
        ..SummaryConfig::default()
    };
    if args.bench_window {
        return bench_window(&args, &layout, config, &policy);
    }
    let started = Instant::now();
    let (reference, current) = summarise_both(&args.reference, &args.current, &layout, config)?;
    let summarise_ms = started.elapsed().as_millis();

    let started = Instant::now();
    let built = DriftReference::from_summary(&reference.summary);
    let report = compare_reference(&built, &current.summary, &policy);
    let timings = Timings {
        summarise: summarise_ms,
        compare: started.elapsed().as_millis(),
    };

    for (file, summarised) in [(&args.reference, &reference), (&args.current, &current)] {
        for (feature, &bad) in layout.iter().zip(&summarised.not_numbers) {
            if bad > 0 {
                eprintln!(
                    "warning: {}: {bad} value(s) of numeric column `{}` are not numbers; counted as missing",
                    file.display(),
                    feature.name
                );
            }
        }
    }
    if let Some(path) = &args.html {
        let mut subtitle = format!(
            "reference {} ({} rows) vs current {} ({} rows)",
            args.reference.display(),
            report.reference_rows,
            args.current.display(),
            report.current_rows
        );
        if !left_out.is_empty() {
            subtitle.push_str(&format!(
                "; left out: {}",
                left_out_text(&left_out, label.as_deref())
            ));
        }
        let page = html(
            &report,
            &PageOptions {
                title: "Drift report",
                subtitle: Some(&subtitle),
                ..PageOptions::default()
            },
        );
        std::fs::write(path, page)
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    if json {
        let out = Output {
            report: &report,
            feature_drift: report.drifted_names(),
            reference_file: &args.reference,
            current_file: &args.current,
            label: label.as_deref(),
            left_out: &left_out,
            timings_ms: timings,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_table(
            &report,
            &left_out_text(&left_out, label.as_deref()),
            timings,
        );
        if let Some(path) = &args.html {
            println!("wrote {}", path.display());
        }
    }
    if args.fail_on_drift && report.dataset_drift {
        bail!("{}", report.dataset_verdict());
    }
    Ok(())
}

/// `id, time, label (the label)`.
fn left_out_text(left_out: &[String], label: Option<&str>) -> String {
    left_out
        .iter()
        .map(|name| {
            if label == Some(name.as_str()) {
                format!("{name} (the label)")
            } else {
                name.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which column is the label, and the id and time columns a model's schema names.
#[derive(Debug, Default)]
struct LabelChoice {
    label: Option<String>,
    /// Where the label came from, when no `--label` named it.
    note: Option<String>,
    id_and_time: Vec<String>,
}

/// The label, from `--label`, else the `--model`'s schema, else a column named `label`.
fn choose_label(args: &DriftArgs, headers: &[String]) -> Result<LabelChoice> {
    let schema = match &args.model {
        Some(path) => {
            let file = File::open(path)
                .with_context(|| format!("failed to open model {}", path.display()))?;
            let artifact = Artifact::read_from(BufReader::new(file))
                .with_context(|| format!("failed to load model {}", path.display()))?;
            Some(artifact.schema)
        }
        None => None,
    };
    let mut choice = LabelChoice {
        id_and_time: schema
            .iter()
            .flat_map(|s| s.id_column.iter().chain(&s.time_column))
            .cloned()
            .collect(),
        ..LabelChoice::default()
    };
    let how = "left out of the features (--label COLUMN names another, --no-label tests it)";
    if args.no_label {
        // Every column is a feature.
    } else if let Some(label) = &args.label {
        choice.label = Some(label.clone());
    } else if let (Some(schema), Some(path)) = (&schema, &args.model) {
        // Current data without labels is common: then there is nothing to leave out.
        if headers.contains(&schema.label) {
            choice.note = Some(format!(
                "column `{}` is the label of {}'s schema: {how}",
                schema.label,
                path.display()
            ));
            choice.label = Some(schema.label.clone());
        }
    } else if headers.iter().any(|h| h == DEFAULT_LABEL) {
        choice.note = Some(format!(
            "column `{DEFAULT_LABEL}` is taken as the label: {how}"
        ));
        choice.label = Some(DEFAULT_LABEL.to_owned());
    }
    Ok(choice)
}

/// Decides the features: every reference column but the label, `--ignore`d and id/time ones;
/// numeric when every present value among the first rows parses as a number.
fn plan_columns(args: &DriftArgs) -> Result<Plan> {
    let mut reader = open_csv(&args.reference)?;
    let headers: Vec<String> = reader
        .headers()
        .with_context(|| format!("failed to read the header of {}", args.reference.display()))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if headers.iter().all(String::is_empty) {
        bail!("{} has no header row", args.reference.display());
    }
    for name in args
        .label
        .iter()
        .chain(&args.ignore)
        .chain(&args.categorical)
    {
        if !headers.contains(name) {
            bail!(
                "column `{name}` is not in {} (columns: {})",
                args.reference.display(),
                headers.join(", ")
            );
        }
    }
    let LabelChoice {
        label,
        note: label_note,
        id_and_time,
    } = choose_label(args, &headers)?;
    let mut numeric = vec![true; headers.len()];
    let mut record = csv::StringRecord::new();
    for _ in 0..INFER_ROWS {
        if !reader
            .read_record(&mut record)
            .with_context(|| format!("failed to read {}", args.reference.display()))?
        {
            break;
        }
        for (i, cell) in record.iter().enumerate().take(headers.len()) {
            if numeric[i] && !is_missing(cell) && cell.trim().parse::<f64>().is_err() {
                numeric[i] = false;
            }
        }
    }
    let mut layout = Vec::new();
    let mut left_out = Vec::new();
    for (i, name) in headers.iter().enumerate() {
        let id_or_time = ID_AND_TIME_NAMES.contains(&name.as_str()) || id_and_time.contains(name);
        if label.as_ref() == Some(name) || args.ignore.contains(name) || id_or_time {
            left_out.push(name.clone());
            continue;
        }
        let kind = if numeric[i] && !args.categorical.contains(name) {
            FeatureKind::Numeric
        } else {
            FeatureKind::Categorical
        };
        layout.push(match kind {
            FeatureKind::Numeric => FeatureLayout::numeric(name),
            FeatureKind::Categorical => FeatureLayout::categorical(name),
        });
    }
    if layout.is_empty() {
        bail!(
            "no feature columns left to compare (left out: {})",
            left_out.join(", ")
        );
    }
    Ok(Plan {
        layout,
        left_out,
        label,
        label_note,
    })
}

fn open_csv(path: &Path) -> Result<csv::Reader<BufReader<File>>> {
    let file = File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(BufReader::with_capacity(1 << 20, file)))
}

/// Streams both files on two threads, with a progress bar over their bytes.
fn summarise_both(
    reference: &Path,
    current: &Path,
    layout: &[FeatureLayout],
    config: SummaryConfig,
) -> Result<(Summarised, Summarised)> {
    let total: u64 = [reference, current]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} {msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({elapsed})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("summarising reference and current");
    let (reference_bytes, current_bytes) = (AtomicU64::new(0), AtomicU64::new(0));
    let current_config = SummaryConfig {
        seed: config.seed.wrapping_add(1),
        ..config
    };
    let (r, c) = std::thread::scope(|scope| {
        let r = scope.spawn(|| summarise(reference, layout, config, &reference_bytes));
        let c = scope.spawn(|| summarise(current, layout, current_config, &current_bytes));
        while !(r.is_finished() && c.is_finished()) {
            bar.set_position(
                reference_bytes.load(Ordering::Relaxed) + current_bytes.load(Ordering::Relaxed),
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        (r.join(), c.join())
    });
    bar.finish_and_clear();
    let joined = |result: std::thread::Result<Result<Summarised>>| -> Result<Summarised> {
        result.map_err(|_| anyhow::anyhow!("a summarising thread panicked"))?
    };
    Ok((joined(r)?, joined(c)?))
}

/// Folds one file into a summary laid out as `layout` (columns found by name), reading it with
/// the block reader (most of `mend drift`'s time is here).
fn summarise(
    path: &Path,
    layout: &[FeatureLayout],
    config: SummaryConfig,
    bytes_read: &AtomicU64,
) -> Result<Summarised> {
    let file = File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    let kinds: Vec<FeatureKind> = layout.iter().map(|f| f.kind).collect();
    let mut summary = WindowSummary::new(layout, &[], config);
    let mut not_numbers = vec![0u64; layout.len()];
    let mut columns: Vec<usize> = Vec::new();
    // Numbers wait in per-column batches and go into the summary a block at a time: each
    // column's counts are folded in one pass and the row sample skips ahead between the rows it
    // takes (the summary is the same as pushing row by row). Missing values wait as NaN;
    // categorical values go in at once (the block only counts their rows).
    let mut batch: Vec<Vec<f64>> = vec![Vec::with_capacity(BATCH_ROWS); layout.len()];
    let mut batched_rows = 0;
    csv_blocks::read_rows(
        file,
        |row| {
            let (cells, _line) = match row {
                Row::Data(cells, line) => (cells, line),
                Row::Header(headers) => {
                    let mut missing = Vec::new();
                    columns = layout
                        .iter()
                        .filter_map(|f| {
                            let i = headers.iter().position(|h| *h == f.name);
                            if i.is_none() {
                                missing.push(f.name.clone());
                            }
                            i
                        })
                        .collect();
                    if !missing.is_empty() {
                        bail!("{} lacks column(s): {}", path.display(), missing.join(", "));
                    }
                    return Ok(());
                }
            };
            for (feature, (&column, kind)) in columns.iter().zip(&kinds).enumerate() {
                let cell = cells.get(column).copied().unwrap_or_default();
                match kind {
                    FeatureKind::Numeric => match csv_blocks::parse_number(cell) {
                        Some(x) => batch[feature].push(x),
                        None => {
                            if !is_missing(&csv_blocks::text(cell)) {
                                not_numbers[feature] += 1;
                            }
                            batch[feature].push(f64::NAN);
                        }
                    },
                    FeatureKind::Categorical => {
                        summary.push_text(feature, &csv_blocks::text(cell));
                    }
                }
            }
            batched_rows += 1;
            if batched_rows == BATCH_ROWS {
                flush(&mut summary, &mut batch, batched_rows)?;
                batched_rows = 0;
            }
            Ok(())
        },
        |bytes| bytes_read.store(bytes, Ordering::Relaxed),
    )
    .with_context(|| format!("failed to read {}", path.display()))?;
    flush(&mut summary, &mut batch, batched_rows)?;
    Ok(Summarised {
        summary,
        not_numbers,
    })
}

/// Rows whose numbers are batched per column before they reach the summary.
const BATCH_ROWS: usize = 4096;

/// Feeds a block of batched rows to the summary: numbers column by column (NaN counts as
/// missing there), the row sample a whole row at a time.
fn flush(summary: &mut WindowSummary, batch: &mut [Vec<f64>], rows: usize) -> Result<()> {
    summary.push_block(rows, batch)?;
    batch.iter_mut().for_each(Vec::clear);
    Ok(())
}

/// What `--bench-window` prints.
#[derive(Debug, Serialize)]
struct WindowBench {
    reference_rows: u64,
    current_rows: u64,
    features: usize,
    /// Loading the files as data-log rows (not part of the window computation).
    load_ms: u128,
    /// The reference's rows folded and its profile built: once per model version (the
    /// trainer profiles its training rows into the artifact), never per window.
    reference_ms: u128,
    /// The current window's rows folded into a summary laid out by the stored profile and
    /// compared with it: what the monitor does for every window.
    window_ms: u128,
    /// Of `window_ms`, folding the rows (the rest is the comparison).
    fold_ms: u128,
    drifted: Vec<String>,
}

fn bench_window(
    args: &DriftArgs,
    layout: &[FeatureLayout],
    config: SummaryConfig,
    policy: &DriftPolicy,
) -> Result<()> {
    let started = Instant::now();
    let reference_rows = load_rows(&args.reference, layout)?;
    let current_rows = load_rows(&args.current, layout)?;
    let load_ms = started.elapsed().as_millis();

    // Once per model version: the reference profile, as a model artifact keeps it (quantile
    // sketch, deciles, categories; no sample of rows).
    let started = Instant::now();
    let mut reference = WindowSummary::new(layout, &[], config);
    for row in &reference_rows {
        reference.push_row(row);
    }
    let built = DriftReference::from_summary(&reference);
    let stored = DriftReference {
        features: built
            .features
            .into_iter()
            .map(|f| ReferenceFeature { sample: None, ..f })
            .collect(),
        ..built
    };
    let reference_ms = started.elapsed().as_millis();

    // Per window, as the monitor does: the window's rows folded into a summary laid out by the
    // stored reference, and compared with it.
    let started = Instant::now();
    let mut current = WindowSummary::for_reference(
        &stored,
        SummaryConfig {
            seed: config.seed.wrapping_add(1),
            ..config
        },
    );
    for row in &current_rows {
        current.push_row(row);
    }
    let fold_ms = started.elapsed().as_millis();
    let report = compare_reference(&stored, &current, policy);
    let window_ms = started.elapsed().as_millis();

    let out = WindowBench {
        reference_rows: report.reference_rows,
        current_rows: report.current_rows,
        features: layout.len(),
        load_ms,
        reference_ms,
        window_ms,
        fold_ms,
        drifted: report
            .features
            .iter()
            .filter(|f| f.drifted)
            .map(|f| f.name.clone())
            .collect(),
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// Every row of a file as the data log carries rows (values by feature name).
fn load_rows(path: &Path, layout: &[FeatureLayout]) -> Result<Vec<RowRecord>> {
    let file = File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    let mut columns: Vec<usize> = Vec::new();
    let mut rows = Vec::new();
    csv_blocks::read_rows(
        file,
        |row| {
            let (cells, line) = match row {
                Row::Data(cells, line) => (cells, line),
                Row::Header(headers) => {
                    columns = layout
                        .iter()
                        .map(|f| {
                            headers.iter().position(|h| *h == f.name).with_context(|| {
                                format!("{} lacks column {}", path.display(), f.name)
                            })
                        })
                        .collect::<Result<_>>()?;
                    return Ok(());
                }
            };
            let values = layout
                .iter()
                .zip(&columns)
                .map(|(f, &c)| {
                    let cell = cells.get(c).copied().unwrap_or_default();
                    let value = match (f.kind, csv_blocks::parse_number(cell)) {
                        (FeatureKind::Numeric, Some(x)) => Value::Number(x),
                        _ if is_missing(&csv_blocks::text(cell)) => Value::Missing,
                        _ => Value::Text(csv_blocks::text(cell).into_owned()),
                    };
                    (f.name.clone(), value)
                })
                .collect();
            rows.push(RowRecord {
                id: line.to_string(),
                time_ms: 0,
                values,
            });
            Ok(())
        },
        |_| {},
    )
    .with_context(|| format!("failed to read {}", path.display()))?;
    Ok(rows)
}

fn print_table(report: &DriftReport, left_out: &str, timings: Timings) {
    let rows: Vec<Vec<String>> = report
        .features
        .iter()
        .map(|f| {
            vec![
                f.name.clone(),
                match f.kind {
                    FeatureKind::Numeric => "numeric".into(),
                    FeatureKind::Categorical => "categorical".into(),
                },
                f.test
                    .map(|t| t.label().to_owned())
                    .unwrap_or_else(|| "-".into()),
                score(f.score),
                if f.test.is_some() {
                    score(Some(f.threshold))
                } else {
                    "-".into()
                },
                if f.ignored {
                    "ignored".into()
                } else if f.drifted {
                    "DRIFT".into()
                } else if f.score.is_some() {
                    "ok".into()
                } else {
                    "not tested".into()
                },
                f.psi.map(f4).unwrap_or_else(|| "-".into()),
                f.jensen_shannon.map(f4).unwrap_or_else(|| "-".into()),
                format!(
                    "{:.1}% -> {:.1}%",
                    f.reference.missing_rate * 100.0,
                    f.current.missing_rate * 100.0
                ),
            ]
        })
        .collect();
    println!(
        "{}\n",
        table(
            &[
                "feature",
                "kind",
                "test",
                "score",
                "threshold",
                "feature drift",
                "psi",
                "js",
                "missing",
            ],
            &rows
        )
    );
    for f in &report.features {
        if let Some(u) = &f.unseen {
            let names: Vec<&str> = u.top.iter().take(5).map(|(c, _)| c.as_str()).collect();
            println!(
                "{}: {} unseen categor{} ({:.1}% of values): {}",
                f.name,
                u.distinct,
                if u.distinct == 1 { "y" } else { "ies" },
                u.share * 100.0,
                names.join(", ")
            );
        }
        for note in &f.notes {
            println!("{}: {note}", f.name);
        }
    }
    // The same lines as the HTML page's and the monitor's reports.
    for verdict in report.verdicts() {
        println!("{verdict}");
    }
    if !left_out.is_empty() {
        println!("left out: {left_out}");
    }
    println!(
        "reference {} rows, current {} rows; summarised in {} ms, compared in {} ms",
        report.reference_rows, report.current_rows, timings.summarise, timings.compare
    );
}

/// Four decimals, or scientific for tiny p-values.
fn score(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(v) if v != 0.0 && v.abs() < 1e-4 => format!("{v:.2e}"),
        Some(v) => f4(v),
    }
}
