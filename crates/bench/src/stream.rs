//! `mend bench-heal --stream FILE.csv`: healing quality on any labeled stream, rows in time
//! order, scored prequentially (every row predicted before its label is learned) for:
//!
//! - *mend*: the real services out of the box (`stream_live.rs`);
//! - *static*, *blind_2000*, *blind_10000*, *online* and, when the drift points are known,
//!   *oracle*: replayed in this process on the same rows (`baselines.rs`, `online.rs`), after
//!   the services have stopped so they take no CPU from them.
//!
//! The first `--train-rows` rows train the first model (schema inferred from them, as
//! `mend train` does, and the trainer's train settings); the rest are streamed. A sidecar
//! `FILE.meta.json` beside the CSV may give `label`, `train_rows`, `drift_points` (counted from
//! the first streamed row) and `family`; flags override it.
//!
//! Besides each contender's accuracy, mend's alarms are listed: every `drift.detected` event,
//! the stream row at which it arrived, and the trainer's `retrain.decided` verdict on it
//! (`none recorded` when the trainer published none).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use mend_bus::events::Event;
use mend_core::{CoreError, Frame, Schema, SchemaOverride};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use crate::baselines::{self, History, Replayed};
use crate::stack::Launch;
use crate::stream_live::{self, Feed, Live};

/// Cadences of the blind retrainers, in streamed rows.
const BLIND_EVERY: [usize; 2] = [2_000, 10_000];
/// The contenders in the order the table lists them.
const ORDER: [&str; 6] = [
    "mend",
    "static",
    "blind_2000",
    "blind_10000",
    "online",
    "oracle",
];
/// Rows per accuracy segment in `per_10k`.
const PER_10K: usize = 10_000;

#[derive(Debug, Args)]
pub struct StreamArgs {
    /// Run on this labeled CSV instead of the synthetic scenarios: rows in time order, the
    /// first `--train-rows` train the first model, the rest are streamed (`--rate`, `--batch`).
    /// A `FILE.meta.json` beside it may set `label`, `train_rows` and `drift_points`. The
    /// synthetic scenarios' flags (`--scenario`, `--rows`, the latency runs...) do not apply.
    #[arg(long, value_name = "FILE.csv")]
    pub stream: Option<PathBuf>,
    /// With `--stream`: the label column (default: the sidecar's, else `label`).
    #[arg(long, requires = "stream")]
    label: Option<String>,
    /// With `--stream`: rows that train the first model (default: the sidecar's, else 5000).
    #[arg(long, requires = "stream")]
    train_rows: Option<usize>,
    /// With `--stream`: the labels of row i are ingested (and learned by the baselines) only
    /// once row i + D has been served; 0: right after their batch.
    #[arg(long, default_value_t = 0, requires = "stream")]
    label_delay: usize,
    /// With `--stream`: drift points, in streamed rows (default: the sidecar's); they enable
    /// the oracle. `--drift-points` with no value: none.
    #[arg(long, value_delimiter = ',', num_args = 0.., requires = "stream")]
    drift_points: Option<Vec<usize>>,
    /// With `--stream`: the oracle retrains on this many rows after each drift point.
    #[arg(long, default_value_t = 1_000, requires = "stream")]
    oracle_after: usize,
    /// With `--stream`: also report accuracy per this many rows (`per_segment`).
    #[arg(long, requires = "stream")]
    segment_rows: Option<usize>,
}

/// The optional `FILE.meta.json`; fields it does not name are ignored.
#[derive(Debug, Default, Deserialize)]
struct Sidecar {
    label: Option<String>,
    train_rows: Option<usize>,
    drift_points: Option<Vec<usize>>,
    family: Option<String>,
}

/// Everything a run needs, flags and sidecar resolved.
struct Plan {
    path: PathBuf,
    name: String,
    family: Option<String>,
    label: String,
    train_rows: usize,
    drift_points: Vec<usize>,
    oracle_after: usize,
    segment_rows: Option<usize>,
    feed: Feed,
}

/// Runs the stream bench; `rate`, `batch` and `data_dir` are `mend bench-heal`'s own flags, and
/// `launch` starts the services.
pub fn run(
    args: &StreamArgs,
    rate: f64,
    batch: usize,
    data_dir: Option<&Path>,
    json_out: bool,
    launch: Launch,
) -> Result<()> {
    let started = Instant::now();
    let plan = plan(args, rate, batch)?;
    let (schema, frame) = load(&plan)?;
    let history = History {
        schema: &schema,
        frame: &frame,
        train_rows: plan.train_rows,
    };
    if !json_out {
        println!(
            "{}: {} rows streamed after {} train rows, batches of {} at {} rows/s, label delay {}; drift points {:?}",
            plan.name,
            history.stream_rows(),
            plan.train_rows,
            plan.feed.batch,
            plan.feed.rate,
            plan.feed.label_delay,
            plan.drift_points
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let live = runtime.block_on(stream_live::run(&history, &plan.feed, data_dir, launch))?;
    drop(runtime);

    let delay = plan.feed.label_delay;
    let rows = history.stream_rows();
    let mut contenders = Map::new();
    contenders.insert(
        "mend".into(),
        mend_json(&live, plan.segment_rows, &plan.drift_points),
    );
    let fixed = baselines::replay_swaps(&history, &live.first, &live.settings, &[])?;
    contenders.insert(
        "static".into(),
        Json::Object(replayed_json(&fixed, plan.segment_rows, &plan.drift_points)),
    );
    for every in BLIND_EVERY {
        let swaps = baselines::blind_schedule(plan.train_rows, rows, every, delay);
        let blind = baselines::replay_swaps(&history, &live.first, &live.settings, &swaps)?;
        contenders.insert(
            format!("blind_{every}"),
            Json::Object(replayed_json(&blind, plan.segment_rows, &plan.drift_points)),
        );
    }
    let online = baselines::replay_online(&history, delay);
    let mut online_json = replayed_json(&online, plan.segment_rows, &plan.drift_points);
    online_json.insert(
        "updates".into(),
        json!(plan.train_rows + rows.saturating_sub(delay)),
    );
    contenders.insert("online".into(), Json::Object(online_json));
    if !plan.drift_points.is_empty() {
        let swaps = baselines::oracle_schedule(
            plan.train_rows,
            rows,
            &plan.drift_points,
            plan.oracle_after,
            delay,
        );
        let oracle = baselines::replay_swaps(&history, &live.first, &live.settings, &swaps)?;
        contenders.insert(
            "oracle".into(),
            Json::Object(replayed_json(
                &oracle,
                plan.segment_rows,
                &plan.drift_points,
            )),
        );
    }
    let out = json!({
        "stream": plan.name,
        "path": plan.path.display().to_string(),
        "family": plan.family,
        "rate": plan.feed.rate,
        "batch": plan.feed.batch,
        "label_delay": delay,
        "rows": rows,
        "train_rows": plan.train_rows,
        "drift_points": plan.drift_points,
        "oracle_after": plan.oracle_after,
        "segment_rows": plan.segment_rows,
        "settings": live.vars,
        "contenders": contenders,
        "alarms": stream_live::alarms(&live.log),
        "seconds": started.elapsed().as_secs_f64(),
    });
    if json_out {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_table(&out);
    }
    Ok(())
}

/// Flags over the sidecar over the defaults, checked.
fn plan(args: &StreamArgs, rate: f64, batch: usize) -> Result<Plan> {
    let path = args.stream.clone().context("--stream names no file")?;
    let sidecar_path = path.with_extension("meta.json");
    let sidecar: Sidecar = if sidecar_path.exists() {
        let text = std::fs::read_to_string(&sidecar_path)
            .with_context(|| format!("failed to read {}", sidecar_path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("failed to parse {}", sidecar_path.display()))?
    } else {
        Sidecar::default()
    };
    if batch == 0 {
        bail!("--batch must be at least 1");
    }
    if !(rate.is_finite() && rate > 0.0) {
        bail!("--rate must be a positive number of rows per second");
    }
    if args.segment_rows == Some(0) {
        bail!("--segment-rows must be at least 1");
    }
    let train_rows = args.train_rows.or(sidecar.train_rows).unwrap_or(5_000);
    if train_rows < 4 {
        bail!("--train-rows must be at least 4 (rows to train on and to hold out)");
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Plan {
        name,
        family: sidecar.family,
        label: args
            .label
            .clone()
            .or(sidecar.label)
            .unwrap_or_else(|| "label".to_owned()),
        train_rows,
        drift_points: args
            .drift_points
            .clone()
            .or(sidecar.drift_points)
            .unwrap_or_default(),
        oracle_after: args.oracle_after,
        segment_rows: args.segment_rows,
        feed: Feed {
            rate,
            batch,
            label_delay: args.label_delay,
        },
        path,
    })
}

/// The CSV as one labeled frame, with the schema inferred from the train rows.
fn load(plan: &Plan) -> Result<(Schema, Frame)> {
    let file = File::open(&plan.path)
        .with_context(|| format!("failed to open {}", plan.path.display()))?;
    let table = mend_core::read_csv(BufReader::new(file))
        .with_context(|| format!("failed to read {}", plan.path.display()))?;
    if table.rows.len() <= plan.train_rows {
        bail!(
            "{} has {} rows: nothing to stream after {} train rows",
            plan.path.display(),
            table.rows.len(),
            plan.train_rows
        );
    }
    let schema = Schema::infer(
        &table.headers,
        &table.rows[..plan.train_rows],
        &plan.label,
        &SchemaOverride::default(),
    )
    .context("failed to infer a schema from the train rows")?;
    let frame = Frame::from_table(&schema, &table, true)
        .map_err(frame_error)
        .context("the stream does not fit the schema of its train rows (every class must appear in them)")?;
    Ok((schema, frame))
}

/// Turns a frame error into a message listing the first bad cells, as `mend train` does.
fn frame_error(e: CoreError) -> anyhow::Error {
    match e {
        CoreError::Rows(errors) => anyhow::anyhow!(mend_core::error::describe_rows(&errors)),
        other => other.into(),
    }
}

/// Share of `true`s (NaN, printed as null, when empty).
fn share(right: &[bool]) -> f64 {
    if right.is_empty() {
        return f64::NAN;
    }
    right.iter().filter(|&&r| r).count() as f64 / right.len() as f64
}

/// Rows over which recovery is judged: the rolling accuracy after a drift point, and the
/// settled accuracy at the end of the stretch before the next one.
const RECOVERY_ROWS: usize = 1_000;
/// A contender has recovered from a drift point when its accuracy over the next
/// [`RECOVERY_ROWS`] rows is within this of the accuracy it settles at before the next one.
const RECOVERY_TOLERANCE: f64 = 0.02;

/// Rows from each drift point (counted from the first streamed row) until the contender's
/// accuracy over the following [`RECOVERY_ROWS`] rows first comes within
/// [`RECOVERY_TOLERANCE`] of the accuracy it settles at over the last [`RECOVERY_ROWS`] rows
/// before the next drift point (or the end); `None` when it never does (or the stretch is too
/// short to tell). Scanned in steps of 100 rows.
fn rows_to_recover(right: &[bool], drift_points: &[usize]) -> Vec<Option<usize>> {
    const STEP: usize = 100;
    drift_points
        .iter()
        .enumerate()
        .map(|(i, &from)| {
            let to = drift_points
                .get(i + 1)
                .copied()
                .unwrap_or(right.len())
                .min(right.len());
            if to < from + 2 * RECOVERY_ROWS {
                return None;
            }
            let settled = share(&right[to - RECOVERY_ROWS..to]);
            (from..=to - RECOVERY_ROWS)
                .step_by(STEP)
                .find(|&at| share(&right[at..at + RECOVERY_ROWS]) >= settled - RECOVERY_TOLERANCE)
                .map(|at| at - from)
        })
        .collect()
}

/// Accuracy overall, per 10,000 rows and per `segment` rows, and rows to recover after each
/// drift point.
fn scored(right: &[bool], segment: Option<usize>, drift_points: &[usize]) -> Map<String, Json> {
    let mut out = Map::new();
    out.insert("accuracy".into(), json!(share(right)));
    let per = |size: usize| -> Vec<f64> { right.chunks(size).map(share).collect() };
    out.insert("per_10k".into(), json!(per(PER_10K)));
    if let Some(size) = segment {
        out.insert("per_segment".into(), json!(per(size)));
    }
    if !drift_points.is_empty() {
        out.insert(
            "rows_to_recover".into(),
            json!(rows_to_recover(right, drift_points)),
        );
    }
    out
}

fn replayed_json(
    replayed: &Replayed,
    segment: Option<usize>,
    drift_points: &[usize],
) -> Map<String, Json> {
    let mut out = scored(&replayed.right, segment, drift_points);
    out.insert("retrains".into(), json!(replayed.retrained_at.len()));
    out.insert("retrained_at".into(), json!(replayed.retrained_at));
    if !replayed.failed.is_empty() {
        out.insert("failed_retrains".into(), json!(replayed.failed));
    }
    out
}

fn mend_json(live: &Live, segment: Option<usize>, drift_points: &[usize]) -> Json {
    let count = |wanted: fn(&Event) -> bool| live.log.iter().filter(|l| wanted(&l.event)).count();
    let mut out = scored(&live.right, segment, drift_points);
    out.insert(
        "retrains".into(),
        json!(count(|e| matches!(e, Event::ModelTrained(_)))),
    );
    out.insert(
        "promotions".into(),
        json!(count(|e| matches!(e, Event::ModelPromoted(_)))),
    );
    out.insert(
        "rejections".into(),
        json!(count(|e| matches!(e, Event::ModelRejected(_)))),
    );
    // The registry announces every move to an older version as a rollback; a recall of a
    // past champion says so in its reason.
    fn recall(e: &Event) -> bool {
        matches!(e, Event::ModelRolledBack(r) if r.reason.starts_with("recalled version"))
    }
    out.insert(
        "rollbacks".into(),
        json!(count(
            |e| matches!(e, Event::ModelRolledBack(_)) && !recall(e)
        )),
    );
    out.insert("recalls".into(), json!(count(recall)));
    out.insert(
        "versions_served".into(),
        json!(
            live.versions
                .iter()
                .map(|(row, version)| json!({"from_row": row, "version": version}))
                .collect::<Vec<_>>()
        ),
    );
    out.insert("behind_pace_s".into(), json!(live.behind_s));
    Json::Object(out)
}

/// The human form of a run's JSON.
fn print_table(out: &Json) {
    let number = |v: &Json| match v.as_f64() {
        Some(x) if v.is_f64() => format!("{x:.3}"),
        Some(_) => v.to_string(),
        None => "-".to_owned(),
    };
    println!();
    println!(
        "{:<12} {:>8} {:>9}  accuracy per 10,000 rows",
        "contender", "accuracy", "retrains"
    );
    let contenders = || {
        ORDER
            .iter()
            .map(|name| (*name, &out["contenders"][*name]))
            .filter(|(_, c)| !c.is_null())
    };
    for (name, c) in contenders() {
        let per: Vec<String> = c["per_10k"]
            .as_array()
            .map(|a| a.iter().map(number).collect())
            .unwrap_or_default();
        println!(
            "{:<12} {:>8} {:>9}  {}",
            name,
            number(&c["accuracy"]),
            number(&c["retrains"]),
            per.join(" ")
        );
    }
    if let Some(size) = out["segment_rows"].as_u64() {
        println!("\naccuracy per {size} rows:");
        for (name, c) in contenders() {
            let per: Vec<String> = c["per_segment"]
                .as_array()
                .map(|a| a.iter().map(number).collect())
                .unwrap_or_default();
            println!("{:<12} {}", name, per.join(" "));
        }
    }
    let mend = &out["contenders"]["mend"];
    println!(
        "\nmend: {} promoted, {} rejected, {} rolled back; versions served {}",
        number(&mend["promotions"]),
        number(&mend["rejections"]),
        number(&mend["rollbacks"]),
        mend["versions_served"]
            .as_array()
            .map(|v| {
                v.iter()
                    .map(|s| format!("v{} from row {}", text(&s["version"]), s["from_row"]))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    );
    let alarms = out["alarms"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    println!("alarms: {}", alarms.len());
    for alarm in alarms {
        let mut line = format!(
            "  row {:>7}  {:<12} {}",
            alarm["row"],
            text(&alarm["kind"]),
            text(&alarm["decision"])
        );
        if !alarm["outcome"].is_null() {
            line.push_str(&format!(" ({})", text(&alarm["outcome"])));
        }
        if !alarm["reason"].is_null() {
            line.push_str(&format!(": {}", text(&alarm["reason"])));
        }
        println!("{line}");
    }
    println!("({:.1} s)", out["seconds"].as_f64().unwrap_or(f64::NAN));
}

/// A JSON string without its quotes (anything else as JSON).
fn text(v: &Json) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

#[cfg(test)]
mod recovery_tests {
    use super::*;

    #[test]
    fn recovery_counts_rows_until_the_accuracy_settles() {
        // 3,000 rows after a drift point at 0: wrong for 1,250 rows, then right; settled
        // accuracy over the last 1,000 rows is 1.0, so the first 1,000-row window at 0.98 or
        // better starts at 1,250 - 20 = 1,230, the first step of 100 at or past it is 1,300.
        let mut right = vec![false; 1_250];
        right.extend(vec![true; 1_750]);
        assert_eq!(rows_to_recover(&right, &[0]), vec![Some(1_300)]);
        // Never wrong: recovered at once. A stretch under 2,000 rows cannot tell.
        assert_eq!(rows_to_recover(&[true; 3_000], &[0]), vec![Some(0)]);
        assert_eq!(rows_to_recover(&right, &[0, 1_500]), vec![None, None]);
    }
}
