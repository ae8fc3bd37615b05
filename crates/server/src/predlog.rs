//! The prediction log: a sample of served rows, inputs and outputs, appended to the data log
//! (`predictions.<model>`) by a background task.
//!
//! Sampling is systematic: with rate `r`, every `round(1/r)`-th row served (counted across
//! requests and models) is kept, so the share is exact and picking costs one atomic add per
//! request. Samples go through a bounded queue; when it is full (the data log is slow or down)
//! they are dropped and counted, and inference never waits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mend_bus::{DataLog, LogRecord, ModelName};
use mend_core::record::PredictionRecord;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::infer::{Decoded, Predictions};
use crate::metrics::ServerMetrics;
use crate::model::LoadedModel;

/// Most records appended in one data-log call.
const MAX_APPEND: usize = 512;
/// A failing data log is retried no faster than this.
const FAILURE_PAUSE: Duration = Duration::from_millis(500);

/// Sampled rows of one request.
#[derive(Debug)]
struct Batch {
    model: ModelName,
    records: Vec<PredictionRecord>,
}

/// The request-side handle: picks rows and queues them.
#[derive(Debug)]
pub struct PredictionLog {
    sender: mpsc::Sender<Batch>,
    /// Keep every `period`-th row; 0 keeps none.
    period: u64,
    served: AtomicU64,
    metrics: ServerMetrics,
}

impl PredictionLog {
    /// Starts the writer task; it drains the queue until `shutdown`, then flushes what is queued.
    pub fn start(
        data_log: Arc<dyn DataLog>,
        sample_rate: f64,
        queue: usize,
        metrics: ServerMetrics,
        shutdown: CancellationToken,
    ) -> (PredictionLog, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(queue.max(1));
        let period = if sample_rate > 0.0 {
            (1.0 / sample_rate).round().max(1.0) as u64
        } else {
            0
        };
        let writer = tokio::spawn(write_loop(data_log, receiver, metrics.clone(), shutdown));
        let log = PredictionLog {
            sender,
            period,
            served: AtomicU64::new(0),
            metrics,
        };
        (log, writer)
    }

    /// Picks this request's sampled rows (if any) and queues them without waiting.
    pub(crate) fn sample(
        &self,
        model: &LoadedModel,
        request_id: &str,
        decoded: &Decoded<'_>,
        predictions: &Predictions,
    ) {
        if self.period == 0 {
            return;
        }
        let rows = decoded.rows as u64;
        let first_global = self.served.fetch_add(rows, Ordering::Relaxed);
        let offset = (self.period - first_global % self.period) % self.period;
        if offset >= rows {
            return;
        }
        let Ok(name) = ModelName::new(model.name.as_str()) else {
            return;
        };
        let picked = (offset..rows).step_by(self.period as usize);
        let records = self.records(model, request_id, decoded, predictions, picked);
        let count = records.len();
        match self.sender.try_send(Batch {
            model: name,
            records,
        }) {
            Ok(()) => {}
            Err(
                mpsc::error::TrySendError::Full(batch) | mpsc::error::TrySendError::Closed(batch),
            ) => {
                self.metrics.dropped(batch.model.as_str(), count);
            }
        }
    }

    fn records(
        &self,
        model: &LoadedModel,
        request_id: &str,
        decoded: &Decoded<'_>,
        predictions: &Predictions,
        rows: impl Iterator<Item = u64>,
    ) -> Vec<PredictionRecord> {
        let classes = model.plan.classes;
        let features = model.artifact.schema.features.len();
        let time_ms = now_ms();
        // Rows of a request without an id still need ids unique to this request.
        let request_id = if request_id.is_empty() {
            nuid::next().to_string()
        } else {
            request_id.to_owned()
        };
        rows.map(|row| {
            let row = row as usize;
            let values: mend_core::record::Values = model
                .artifact
                .schema
                .features
                .iter()
                .enumerate()
                .map(|(feature, f)| (f.name.as_str(), decoded.value(row, feature, features)))
                .collect();
            let label = predictions
                .labels
                .get(row)
                .and_then(|&label| model.artifact.schema.classes.get(label as usize))
                .cloned()
                .unwrap_or_default();
            PredictionRecord {
                row_id: decoded
                    .row_id(row)
                    .unwrap_or_else(|| format!("{request_id}/{row}")),
                time_ms,
                model_version: model.version,
                values,
                probabilities: predictions
                    .probabilities
                    .get(row * classes..(row + 1) * classes)
                    .map(<[f32]>::to_vec)
                    .unwrap_or_default(),
                label,
            }
        })
        .collect()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn write_loop(
    data_log: Arc<dyn DataLog>,
    mut receiver: mpsc::Receiver<Batch>,
    metrics: ServerMetrics,
    shutdown: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            batch = receiver.recv() => batch,
            () = shutdown.cancelled() => {
                // Flush what was queued before shutdown; new samples are no longer taken.
                receiver.close();
                receiver.recv().await
            }
        };
        let Some(first) = first else {
            return;
        };
        // Group what is already queued, per model, into few appends.
        let mut by_model: BTreeMap<ModelName, Vec<PredictionRecord>> = BTreeMap::new();
        by_model
            .entry(first.model)
            .or_default()
            .extend(first.records);
        while by_model.values().map(Vec::len).sum::<usize>() < MAX_APPEND {
            let Ok(batch) = receiver.try_recv() else {
                break;
            };
            by_model
                .entry(batch.model)
                .or_default()
                .extend(batch.records);
        }
        for (model, records) in by_model {
            // Each sample is encoded once: the same bytes are size-checked and appended. One
            // too large for the log (huge BYTES inputs) would fail the whole append (over
            // NATS, close the connection): it is dropped alone, counted.
            let max = data_log.max_entry_bytes().unwrap_or(usize::MAX);
            let mut entries = Vec::with_capacity(records.len());
            let mut oversized = 0;
            for record in &records {
                match serde_json::to_vec(record) {
                    Ok(encoded) if encoded.len() <= max => {
                        entries.push((Bytes::from(encoded), record.dedup_key()));
                    }
                    _ => oversized += 1,
                }
            }
            if oversized > 0 {
                metrics.dropped(model.as_str(), oversized);
                tracing::warn!(%model, oversized, max, "sampled predictions too large for the data log; dropped");
            }
            if entries.is_empty() {
                continue;
            }
            let count = entries.len();
            match data_log
                .append_keyed(&model, PredictionRecord::KIND, entries)
                .await
            {
                Ok(_) => metrics.logged(model.as_str(), count),
                Err(error) => {
                    metrics.dropped(model.as_str(), count);
                    tracing::warn!(%model, rows = count, %error, "could not append sampled predictions; dropped");
                    tokio::time::sleep(FAILURE_PAUSE).await;
                }
            }
        }
    }
}
