//! The training window: labels read from the data log, joined with the rows they name.
//!
//! A window is defined by its labels (the newest N, the newest N logged since a drift began,
//! or the range a request names), so the same label range always yields the same rows. A row
//! is found among `data.rows.<m>` (rows that came through ingest) and then among
//! `predictions.<m>` (rows served over OIP, whose inputs the server logged). Labels without a
//! row are left out and counted.

use std::collections::{HashMap, HashSet};

use mend_bus::{DataLog, DataLogError, DataLogExt, Logged, ModelName, Window};
use mend_core::record::{LabelRecord, PredictionRecord, RowRecord, Value};

/// Rows still missing after the backward search are looked for among at most this many times
/// as many entries logged after the newest label.
const MAX_READ_FACTOR: usize = 16;
const MIN_READ: usize = 1024;

/// Labeled rows in label order, with where they came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabeledWindow {
    pub rows: Vec<RowRecord>,
    pub labels: Vec<String>,
    /// Data-log sequences of the first and last label read (inclusive).
    pub label_seqs: Option<(u64, u64)>,
    /// Data-log sequences of the oldest and newest row joined (inclusive).
    pub row_seqs: Option<(u64, u64)>,
    /// Labels whose row was not found.
    pub unmatched: usize,
}

impl LabeledWindow {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Event-time range of the rows.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let min = self.rows.iter().map(|row| row.time_ms).min()?;
        let max = self.rows.iter().map(|row| row.time_ms).max()?;
        Some((min, max))
    }
}

/// Reads the labels in `window` and joins each (the newest label of a row wins) with its row.
pub async fn load_labeled(
    log: &dyn DataLog,
    model: &ModelName,
    window: &Window,
) -> Result<LabeledWindow, DataLogError> {
    let labels = log.read_labels(model, window).await?;
    join_rows(log, model, labels).await
}

/// The newest `count` labels logged at or before `anchor` (any, when `None`), in log order.
/// Labels logged after the anchor are left out, so a window cut at an alarm's position reads
/// the same labels however many arrived since.
pub async fn newest_labels(
    log: &dyn DataLog,
    model: &ModelName,
    count: usize,
    anchor: Option<u64>,
) -> Result<Vec<Logged<LabelRecord>>, DataLogError> {
    let Some(anchor) = anchor else {
        return log.read_labels(model, &Window::last(count)).await;
    };
    let mut read = count.max(1);
    loop {
        let labels = log.read_labels(model, &Window::last(read)).await?;
        let exhausted = labels.len() < read;
        let mut kept: Vec<Logged<LabelRecord>> = labels
            .into_iter()
            .filter(|logged| logged.seq <= anchor)
            .collect();
        if kept.len() >= count || exhausted {
            let drop = kept.len().saturating_sub(count);
            kept.drain(..drop);
            return Ok(kept);
        }
        read = read.saturating_mul(2);
    }
}

/// The newest `count` labels at or before `anchor`, joined with their rows: a retrain's
/// default window.
pub async fn load_newest(
    log: &dyn DataLog,
    model: &ModelName,
    count: usize,
    anchor: Option<u64>,
) -> Result<LabeledWindow, DataLogError> {
    let labels = newest_labels(log, model, count, anchor).await?;
    join_rows(log, model, labels).await
}

/// The newest `count` labels logged at or after `from_seq` (and at or before `anchor`),
/// joined with their rows: the window of a retrain after drift that began at `from_seq`. The
/// labels kept are a contiguous range of the log, so a request naming the recorded label
/// range reads the same rows again.
pub async fn load_labeled_since(
    log: &dyn DataLog,
    model: &ModelName,
    count: usize,
    from_seq: u64,
    anchor: Option<u64>,
) -> Result<LabeledWindow, DataLogError> {
    let mut labels = newest_labels(log, model, count, anchor).await?;
    labels.retain(|logged| logged.seq >= from_seq);
    join_rows(log, model, labels).await
}

/// Joins labels already read (in log order) with their rows.
pub async fn join_labels(
    log: &dyn DataLog,
    model: &ModelName,
    labels: Vec<Logged<LabelRecord>>,
) -> Result<LabeledWindow, DataLogError> {
    join_rows(log, model, labels).await
}

/// Joins labels (in log order) with their rows.
async fn join_rows(
    log: &dyn DataLog,
    model: &ModelName,
    labels: Vec<Logged<LabelRecord>>,
) -> Result<LabeledWindow, DataLogError> {
    let Some(first) = labels.first() else {
        return Ok(LabeledWindow::default());
    };
    let newest = labels
        .iter()
        .map(|logged| logged.seq)
        .max()
        .unwrap_or(first.seq);
    let label_seqs = Some((first.seq, labels.last().map_or(first.seq, |last| last.seq)));
    // The newest label of a row wins; keep the order of first appearance.
    let mut order: Vec<String> = Vec::new();
    let mut label_of: HashMap<String, String> = HashMap::new();
    for logged in labels {
        let row_id = logged.record.row_id;
        if label_of
            .insert(row_id.clone(), logged.record.label)
            .is_none()
        {
            order.push(row_id);
        }
    }
    let wanted: HashSet<&str> = order.iter().map(String::as_str).collect();
    let mut found = find_rows(log, model, &wanted, newest).await?;
    let missing: HashSet<&str> = wanted
        .iter()
        .copied()
        .filter(|id| !found.contains_key(*id))
        .collect();
    if !missing.is_empty() {
        for (id, row) in find_predicted_rows(log, model, &missing, newest).await? {
            found.insert(id, row);
        }
    }

    let mut out = LabeledWindow {
        label_seqs,
        ..LabeledWindow::default()
    };
    for row_id in order {
        let (Some((seq, row)), Some(label)) = (found.remove(&row_id), label_of.remove(&row_id))
        else {
            out.unmatched += 1;
            continue;
        };
        if let Some(seq) = seq {
            out.row_seqs = Some(match out.row_seqs {
                None => (seq, seq),
                Some((low, high)) => (low.min(seq), high.max(seq)),
            });
        }
        out.rows.push(row);
        out.labels.push(label);
    }
    if out.unmatched > 0 {
        tracing::warn!(%model, unmatched = out.unmatched, "labels without a row were left out of the window");
    }
    Ok(out)
}

type Found = HashMap<String, (Option<u64>, RowRecord)>;

/// Sequences the backward search of a window's rows covers first; it doubles with every
/// further step.
const FIRST_SPAN: u64 = 4_096;

/// The rows of `wanted`, found by reading the model's `R` entries backward by sequence from
/// `newest` (rows come before their labels), in ranges that double until every id is found or
/// the log's start is reached, then forward from `newest` for any still missing (a row sent
/// after its label). However many other entries (sampled predictions, other models, other
/// producers) were logged in between, every row still in the log is found. The newest entry
/// of an id wins, as a re-sent row would.
async fn scan_for<R, F>(
    log: &dyn DataLog,
    model: &ModelName,
    wanted: &HashSet<&str>,
    newest: u64,
    to_row: F,
) -> Result<Found, DataLogError>
where
    R: mend_bus::LogRecord,
    F: Fn(Logged<R>) -> (String, Option<u64>, RowRecord),
{
    let mut found = Found::new();
    if wanted.is_empty() {
        return Ok(found);
    }
    let take = |entries: Vec<Logged<R>>, found: &mut Found, newer_wins: bool| {
        for logged in entries {
            let (id, seq, row) = to_row(logged);
            if !wanted.contains(id.as_str()) {
                continue;
            }
            if newer_wins || !found.contains_key(&id) {
                found.insert(id, (seq, row));
            }
        }
    };
    let mut hi = newest;
    let mut span = FIRST_SPAN.max(2 * wanted.len() as u64);
    loop {
        let lo = hi.saturating_sub(span.saturating_sub(1));
        let entries = log
            .read::<R>(model, &Window::sequence(lo, Some(hi)))
            .await?;
        // Within one range later entries replace earlier ones; an older range never replaces
        // what a newer one found.
        let mut chunk = Found::new();
        take(entries, &mut chunk, true);
        for (id, entry) in chunk {
            found.entry(id).or_insert(entry);
        }
        if found.len() == wanted.len() || lo == 0 {
            break;
        }
        hi = lo - 1;
        span = span.saturating_mul(2);
    }
    if found.len() < wanted.len() {
        let missing = wanted.len() - found.len();
        let limit = (missing * MAX_READ_FACTOR).max(MIN_READ);
        let after = log
            .read::<R>(model, &Window::sequence(newest + 1, None).with_limit(limit))
            .await?;
        take(after, &mut found, true);
    }
    Ok(found)
}

/// Rows that came in through ingest (`data.rows.<m>`).
async fn find_rows(
    log: &dyn DataLog,
    model: &ModelName,
    wanted: &HashSet<&str>,
    newest: u64,
) -> Result<Found, DataLogError> {
    scan_for::<RowRecord, _>(log, model, wanted, newest, |logged| {
        (logged.record.id.clone(), Some(logged.seq), logged.record)
    })
    .await
}

/// Rows the inference server logged (sampled predictions carry their inputs).
async fn find_predicted_rows(
    log: &dyn DataLog,
    model: &ModelName,
    wanted: &HashSet<&str>,
    newest: u64,
) -> Result<Found, DataLogError> {
    scan_for::<PredictionRecord, _>(log, model, wanted, newest, |logged| {
        let record = logged.record;
        let row = RowRecord {
            id: record.row_id.clone(),
            time_ms: record.time_ms,
            values: record.values,
        };
        (record.row_id, None, row)
    })
    .await
}

/// A value's canonical text for hashing: numbers by their shortest round-trip form.
pub(crate) fn value_text(value: &Value) -> String {
    match value {
        Value::Number(x) => format!("n:{x:?}"),
        Value::Text(text) => format!("s:{text}"),
        Value::Missing => "null".to_owned(),
    }
}
