//! `mend ingest FILE.csv --model M [--labels]`: streams a CSV to the ingest service in
//! batches over gRPC (`mend.ingest.v1`), with a progress bar, then prints how many rows were
//! accepted and the first rejected ones with their CSV line, field and reason.
//!
//! Finds the service through `MEND_INGEST_ADDR` (default `127.0.0.1:8003`, TLS from
//! `MEND_TLS_*`). The file is read on its own thread while batches are in flight, through a
//! small queue, so memory stays at a few batches whatever the file's size.
//!
//! Rows: the id comes from `--id-column` (default `id` or `row_id`; without one, ids are
//! `<file stem>-<line>` so labels can still name them), the event time from `--time-column`
//! (default `time`, `timestamp`, `event_time` or `time_ms`; unix milliseconds or RFC 3339),
//! every other column is a value: empty or `NA` is missing, a number is a number, the rest is
//! text. The service decides what is valid. Labels: `--id-column` (default `row_id` or `id`),
//! `--label-column` (default `label`) and the optional time column.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mend_core::schema::is_missing;
use mend_proto::ingest::v1 as pb;
use mend_proto::ingest::v1::ingest_client::IngestClient;
use mend_runtime::config::{Env, MendConfig};
use mend_runtime::grpc::grpc_client_endpoint;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;
use tonic::Code;

use crate::output::table;

/// Batches read ahead of the one in flight.
const READ_AHEAD: usize = 4;

/// Arguments of `mend ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The CSV file: a header line, then one row (or label) per line.
    file: PathBuf,
    /// The model whose champion's schema the rows follow.
    #[arg(long)]
    model: String,
    /// The file holds labels (row id and label) rather than rows.
    #[arg(long)]
    labels: bool,
    /// Rows (or labels) per batch.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch: u32,
    /// The column holding row ids.
    #[arg(long)]
    id_column: Option<String>,
    /// The column holding event times (unix milliseconds or RFC 3339).
    #[arg(long)]
    time_column: Option<String>,
    /// The column holding labels (with --labels).
    #[arg(long, default_value = "label")]
    label_column: String,
    /// How many rejected rows to print.
    #[arg(long, default_value_t = 20)]
    show: usize,
    /// Exit 0 even when some rows (or labels) were rejected; by default any rejection makes
    /// the exit status non-zero, so a script notices (the summary lists them either way).
    #[arg(long)]
    allow_rejects: bool,
}

/// Runs `mend ingest` (the CLI is synchronous; the gRPC client is not).
pub fn run(args: IngestArgs, json: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(ingest(args, json))
}

async fn ingest(args: IngestArgs, json: bool) -> anyhow::Result<()> {
    let config = MendConfig::load(Env::from_process()).context("invalid configuration")?;
    let addr = config.ingest_addr.to_string();
    let endpoint = grpc_client_endpoint(&config.ingest_addr, &config.tls)
        .context("invalid ingest address or TLS settings")?;
    let channel = endpoint.connect().await.with_context(|| {
        format!("cannot reach the ingest service at {addr} (set MEND_INGEST_ADDR)")
    })?;
    let mut client =
        IngestClient::new(channel).send_compressed(tonic::codec::CompressionEncoding::Gzip);

    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("failed to open {}", args.file.display()))?;
    let size = file.metadata().map(|meta| meta.len()).unwrap_or(0);
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(file);
    let headers: Vec<String> = reader
        .headers()
        .with_context(|| format!("failed to read the header of {}", args.file.display()))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let layout = Layout::new(&args, &headers)?;
    let bar = progress_bar(size);
    let batch_size = args.batch as usize;
    let (sender, receiver) = mpsc::channel(READ_AHEAD);
    let model = args.model.clone();
    let stem = file_stem(&args.file);
    let reader_bar = bar.clone();
    let read = tokio::task::spawn_blocking(move || {
        read_batches(
            reader,
            &layout,
            &model,
            &stem,
            batch_size,
            &sender,
            &reader_bar,
        )
    });
    let batches = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|batch| (batch, receiver))
    });
    let answer = if args.labels {
        let batches = futures::StreamExt::filter_map(batches, |batch| async move {
            match batch {
                Batch::Labels(batch) => Some(batch),
                Batch::Rows(_) => None,
            }
        });
        client.ingest_labels(batches).await
    } else {
        let batches = futures::StreamExt::filter_map(batches, |batch| async move {
            match batch {
                Batch::Rows(batch) => Some(batch),
                Batch::Labels(_) => None,
            }
        });
        client.ingest_rows(batches).await
    };
    bar.finish_and_clear();
    let read = read.await.context("the CSV reader failed")?;
    let summary = match answer {
        Ok(response) => response.into_inner(),
        Err(status) => {
            let hint = match status.code() {
                Code::Unavailable => " (is it running? MEND_INGEST_ADDR)",
                _ => "",
            };
            bail!(
                "the ingest service at {addr} refused the upload: {}{hint}",
                status.message()
            );
        }
    };
    let stats = read?;
    report(&args, &summary, &stats, json)?;
    if summary.rejected > 0 && !args.allow_rejects {
        let what = if args.labels { "labels" } else { "rows" };
        bail!(
            "{} of {} {what} were rejected (listed above; the {} others were stored); \
             pass --allow-rejects to exit 0 on a partial ingest",
            summary.rejected,
            stats.records,
            summary.accepted
        );
    }
    Ok(())
}

/// What the reader saw.
#[derive(Debug, Default)]
struct ReadStats {
    records: u64,
    bad_times: u64,
    generated_ids: bool,
}

enum Batch {
    Rows(pb::RowBatch),
    Labels(pb::LabelBatch),
}

/// Where each part of a record is in the CSV.
#[derive(Debug)]
struct Layout {
    headers: Vec<String>,
    id: Option<usize>,
    time: Option<usize>,
    /// `Some` for labels: the label column.
    label: Option<usize>,
}

impl Layout {
    fn new(args: &IngestArgs, headers: &[String]) -> anyhow::Result<Layout> {
        let position = |name: &str| headers.iter().position(|h| h == name);
        let named = |flag: &str,
                     name: &Option<String>,
                     guesses: &[&str]|
         -> anyhow::Result<Option<usize>> {
            match name {
                Some(name) => position(name).map(Some).with_context(|| {
                    format!(
                        "{flag} `{name}` is not in the header ({})",
                        headers.join(", ")
                    )
                }),
                None => Ok(guesses.iter().find_map(|guess| position(guess))),
            }
        };
        let time = named(
            "--time-column",
            &args.time_column,
            &["time", "timestamp", "event_time", "time_ms"],
        )?;
        if args.labels {
            let id = named("--id-column", &args.id_column, &["row_id", "id"])?.with_context(|| {
                format!(
                    "no row id column (row_id or id) in the header ({}); name it with --id-column",
                    headers.join(", ")
                )
            })?;
            let label = position(&args.label_column).with_context(|| {
                format!(
                    "no `{}` column in the header ({}); name it with --label-column",
                    args.label_column,
                    headers.join(", ")
                )
            })?;
            return Ok(Layout {
                headers: headers.to_vec(),
                id: Some(id),
                time,
                label: Some(label),
            });
        }
        let id = named("--id-column", &args.id_column, &["id", "row_id"])?;
        Ok(Layout {
            headers: headers.to_vec(),
            id,
            time,
            label: None,
        })
    }
}

/// Reads the CSV into batches and queues them; stops early if the upload stopped.
fn read_batches(
    mut reader: csv::Reader<std::fs::File>,
    layout: &Layout,
    model: &str,
    stem: &str,
    batch_size: usize,
    sender: &mpsc::Sender<Batch>,
    bar: &ProgressBar,
) -> anyhow::Result<ReadStats> {
    let mut stats = ReadStats {
        generated_ids: layout.label.is_none() && layout.id.is_none(),
        ..ReadStats::default()
    };
    let mut rows = Vec::with_capacity(batch_size);
    let mut labels = Vec::with_capacity(batch_size);
    let flush = |rows: &mut Vec<pb::Row>, labels: &mut Vec<pb::Label>| -> bool {
        let batch = if layout.label.is_some() {
            Batch::Labels(pb::LabelBatch {
                model: model.to_owned(),
                labels: std::mem::take(labels),
            })
        } else {
            Batch::Rows(pb::RowBatch {
                model: model.to_owned(),
                rows: std::mem::take(rows),
            })
        };
        sender.blocking_send(batch).is_ok()
    };
    let mut record = csv::StringRecord::new();
    loop {
        let more = reader
            .read_record(&mut record)
            .with_context(|| format!("failed to read line {}", reader.position().line()))?;
        if !more {
            break;
        }
        let line = record.position().map_or(0, |position| position.line());
        stats.records += 1;
        let time_ms = match layout.time.and_then(|i| record.get(i)) {
            Some(cell) if !is_missing(cell) => parse_time(cell).unwrap_or_else(|| {
                stats.bad_times += 1;
                0
            }),
            _ => 0,
        };
        let cell = |i: Option<usize>| {
            i.and_then(|i| record.get(i))
                .unwrap_or("")
                .trim()
                .to_owned()
        };
        if let Some(label) = layout.label {
            labels.push(pb::Label {
                row_id: cell(layout.id),
                label: cell(Some(label)),
                time_ms,
            });
        } else {
            let id = match layout.id {
                Some(_) => cell(layout.id),
                None => format!("{stem}-{line}"),
            };
            let values = layout
                .headers
                .iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != layout.id && Some(*i) != layout.time)
                .map(|(i, name)| (name.clone(), value(record.get(i).unwrap_or(""))))
                .collect();
            rows.push(pb::Row {
                id,
                event_time_ms: time_ms,
                values,
            });
        }
        if rows.len() + labels.len() >= batch_size {
            bar.set_position(reader.position().byte());
            if !flush(&mut rows, &mut labels) {
                return Ok(stats);
            }
        }
    }
    if !rows.is_empty() || !labels.is_empty() {
        flush(&mut rows, &mut labels);
    }
    bar.set_position(reader.position().byte());
    Ok(stats)
}

/// A CSV cell as a feature value: missing markers, numbers, or text.
fn value(cell: &str) -> pb::FeatureValue {
    use pb::feature_value::Kind;
    let kind = if is_missing(cell) {
        Kind::Missing(true)
    } else if let Ok(number) = cell.trim().parse::<f64>() {
        Kind::Number(number)
    } else {
        Kind::Text(cell.to_owned())
    };
    pb::FeatureValue { kind: Some(kind) }
}

/// Unix milliseconds, or an RFC 3339 time.
fn parse_time(cell: &str) -> Option<i64> {
    let cell = cell.trim();
    if let Ok(ms) = cell.parse::<i64>() {
        return Some(ms);
    }
    let time = OffsetDateTime::parse(cell, &Rfc3339).ok()?;
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000).ok()
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "row".to_owned())
}

/// A byte-based bar on stderr; indicatif draws nothing when stderr is not a terminal.
fn progress_bar(size: u64) -> ProgressBar {
    let bar = ProgressBar::new(size);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} ingesting [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn report(
    args: &IngestArgs,
    summary: &pb::IngestSummary,
    stats: &ReadStats,
    json: bool,
) -> anyhow::Result<()> {
    let batch = u64::from(args.batch);
    // Header on line 1; assumes one line per record, which is what the line numbers say.
    let line = |r: &pb::RejectedRow| u64::from(r.batch_index) * batch + u64::from(r.row_index) + 2;
    let what = if args.labels { "labels" } else { "rows" };
    if json {
        let rejected: Vec<serde_json::Value> = summary
            .rejected_rows
            .iter()
            .take(args.show)
            .map(|r| {
                json!({
                    "line": line(r),
                    "row_id": r.row_id,
                    "field": r.field,
                    "reason": r.reason,
                })
            })
            .collect();
        let out = json!({
            "model": args.model,
            "kind": what,
            "read": stats.records,
            "accepted": summary.accepted,
            "rejected": summary.rejected,
            "rejected_rows": rejected,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{} {what} read from {}: {} accepted, {} rejected (model {})",
        stats.records,
        args.file.display(),
        summary.accepted,
        summary.rejected,
        args.model
    );
    if stats.generated_ids {
        println!(
            "note: no id column; rows were given ids `{}-<line>`",
            file_stem(&args.file)
        );
    }
    if stats.bad_times > 0 {
        println!(
            "note: {} rows had an unreadable time; the ingest time was used",
            stats.bad_times
        );
    }
    if summary.rejected_rows.is_empty() {
        return Ok(());
    }
    let shown: Vec<Vec<String>> = summary
        .rejected_rows
        .iter()
        .take(args.show)
        .map(|r| {
            vec![
                line(r).to_string(),
                r.row_id.clone(),
                r.field.clone(),
                r.reason.clone(),
            ]
        })
        .collect();
    println!();
    println!("{}", table(&["line", "row id", "field", "reason"], &shown));
    if summary.rejected as usize > shown.len() {
        println!("… and {} more", summary.rejected as usize - shown.len());
    }
    Ok(())
}
