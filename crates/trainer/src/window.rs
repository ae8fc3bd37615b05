//! The training window: labels read from the data log, joined with the rows they name.
//!
//! A window is defined by its labels (the newest N, the newest N logged since a drift began,
//! or the range a request names), so the same label range always yields the same rows. A row
//! is found among `data.rows.<m>` (rows that came through ingest) and then among
//! `predictions.<m>` (rows served over OIP, whose inputs the server logged). Labels without a
//! row are left out and counted.

use std::collections::{HashMap, HashSet};

use mend_bus::{DataLog, DataLogError, DataLogExt, Logged, ModelName, Window};
use mend_core::record::{LabelRecord, RowRecord, Value};

/// The first read of rows covers the labels plus this share of them (rows usually arrive just
/// before their labels, so the newest rows are mostly the wanted ones); it doubles until every
/// label has its row or the log has no more. Decoding rows is most of a window's read time.
const FIRST_READ_SLACK: usize = 8;
/// Never read more than this many times the labels while looking for their rows.
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

/// The newest `count` labels logged at or after `from_seq`, joined with their rows: the
/// window of a retrain after drift that began at `from_seq`. The labels kept are a contiguous
/// range of the log, so a request naming the recorded label range reads the same rows again.
pub async fn load_labeled_since(
    log: &dyn DataLog,
    model: &ModelName,
    count: usize,
    from_seq: u64,
) -> Result<LabeledWindow, DataLogError> {
    let mut labels = log.read_labels(model, &Window::last(count)).await?;
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
    let mut found = find_rows(log, model, &wanted).await?;
    let missing: HashSet<&str> = wanted
        .iter()
        .copied()
        .filter(|id| !found.contains_key(*id))
        .collect();
    if !missing.is_empty() {
        for (id, row) in find_predicted_rows(log, model, &missing).await? {
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

/// Newest rows of the model until every wanted id is found or the log is exhausted.
async fn find_rows(
    log: &dyn DataLog,
    model: &ModelName,
    wanted: &HashSet<&str>,
) -> Result<Found, DataLogError> {
    let mut count = (wanted.len() + wanted.len() / FIRST_READ_SLACK).max(MIN_READ);
    let cap = (wanted.len() * MAX_READ_FACTOR).max(MIN_READ);
    loop {
        let rows = log.read_rows(model, &Window::last(count)).await?;
        let exhausted = rows.len() < count;
        let mut found = Found::new();
        for logged in rows {
            if wanted.contains(logged.record.id.as_str()) {
                // Later rows with the same id replace earlier ones, as a re-sent row would.
                found.insert(logged.record.id.clone(), (Some(logged.seq), logged.record));
            }
        }
        if exhausted || found.len() == wanted.len() || count >= cap {
            return Ok(found);
        }
        count = (count * 2).min(cap);
    }
}

/// Rows the inference server logged (sampled predictions carry their inputs).
async fn find_predicted_rows(
    log: &dyn DataLog,
    model: &ModelName,
    wanted: &HashSet<&str>,
) -> Result<Found, DataLogError> {
    let count = (wanted.len() * MAX_READ_FACTOR).max(MIN_READ);
    let predictions = log.read_predictions(model, &Window::last(count)).await?;
    let mut found = Found::new();
    for logged in predictions {
        if wanted.contains(logged.record.row_id.as_str()) {
            let row = RowRecord {
                id: logged.record.row_id.clone(),
                time_ms: logged.record.time_ms,
                values: logged.record.values,
            };
            found.insert(logged.record.row_id, (None, row));
        }
    }
    Ok(found)
}

/// A value's canonical text for hashing: numbers by their shortest round-trip form.
pub(crate) fn value_text(value: &Value) -> String {
    match value {
        Value::Number(x) => format!("n:{x:?}"),
        Value::Text(text) => format!("s:{text}"),
        Value::Missing => "null".to_owned(),
    }
}
