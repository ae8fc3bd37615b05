//! The path every batch takes, whichever door it came in by: resolve the model, fetch the
//! champion's schema (cached), validate, append the valid records to the data log, count.
//!
//! It is split in two steps, [`Ingestor::prepare`] (validate) and [`Ingestor::commit`]
//! (append), so the NATS door can dead-letter the rejected rows before it appends the valid
//! ones and acks.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mend_bus::datalog::LogRecord;
use mend_bus::{DataLog, DataLogError, DataLogExt, ModelName};
use mend_core::Schema;
use mend_core::record::{LabelRecord, RowRecord};
use tokio::time::Instant;

use crate::config::SizeLimits;
use crate::incoming::{IncomingLabel, IncomingRow};
use crate::metrics::{Door, IngestMetrics, Kind};
use crate::reject::{RejectReason, Rejection};
use crate::schema_source::{SchemaCache, SchemaError};
use crate::validate::{Validated, reject_all, validate_labels, validate_rows};

/// Batches up to this many records are validated on the executor; larger ones go to the
/// blocking pool (about half a millisecond of work).
const INLINE_VALIDATION_ROWS: usize = 512;

/// Why a batch could not be handled at all (as opposed to rows in it being rejected).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The batch is over the row limit; none of it was looked at.
    #[error("batch has {rows} records; at most {limit} are accepted per batch")]
    TooManyRows { rows: usize, limit: usize },
    /// The champion's schema cannot be had right now (and none is cached): retry later.
    #[error("cannot validate against the champion of `{model}` now: {source}")]
    SchemaUnavailable {
        model: String,
        #[source]
        source: SchemaError,
    },
    /// The data log did not store the valid records: retry later.
    #[error("failed to append to the data log: {0}")]
    DataLog(#[from] DataLogError),
    /// A validation task died (a bug); the batch is not stored.
    #[error("validation failed: {0}")]
    Internal(String),
}

/// A record type that arrives in batches and is validated against a schema.
pub trait Incoming: Send + Sized + 'static {
    type Record: LogRecord + Clone;
    const KIND: Kind;
    /// The field named when the model is wrong.
    const MODEL_FIELD: &'static str = "model";
    fn row_id(&self) -> &str;
    fn validate(
        schema: &Schema,
        batch: Vec<Self>,
        now_ms: i64,
        limits: &SizeLimits,
    ) -> Validated<Self::Record>;
}

impl Incoming for IncomingRow {
    type Record = RowRecord;
    const KIND: Kind = Kind::Rows;
    fn row_id(&self) -> &str {
        &self.id
    }
    fn validate(
        schema: &Schema,
        batch: Vec<Self>,
        now_ms: i64,
        limits: &SizeLimits,
    ) -> Validated<RowRecord> {
        validate_rows(schema, batch, now_ms, limits)
    }
}

impl Incoming for IncomingLabel {
    type Record = LabelRecord;
    const KIND: Kind = Kind::Labels;
    fn row_id(&self) -> &str {
        &self.row_id
    }
    fn validate(
        schema: &Schema,
        batch: Vec<Self>,
        now_ms: i64,
        limits: &SizeLimits,
    ) -> Validated<LabelRecord> {
        validate_labels(schema, batch, now_ms, limits)
    }
}

/// A validated batch, not yet appended.
#[derive(Debug)]
pub struct Prepared<R> {
    /// `None` when the model name was invalid (then nothing is accepted).
    pub model: Option<ModelName>,
    pub accepted: Vec<R>,
    pub rejected: Vec<Rejection>,
    kind: Kind,
    started: Instant,
}

/// What became of one batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchOutcome {
    pub accepted: usize,
    /// Of `accepted`, how many the log had stored already (a retried batch).
    pub already_stored: usize,
    pub rejected: Vec<Rejection>,
}

/// Validates and appends batches. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ingestor {
    schemas: Arc<SchemaCache>,
    data_log: Arc<dyn DataLog>,
    metrics: IngestMetrics,
    max_batch_rows: usize,
    limits: SizeLimits,
}

impl Ingestor {
    pub fn new(
        schemas: Arc<SchemaCache>,
        data_log: Arc<dyn DataLog>,
        metrics: IngestMetrics,
        max_batch_rows: usize,
        limits: SizeLimits,
    ) -> Self {
        Ingestor {
            schemas,
            data_log,
            metrics,
            max_batch_rows,
            limits,
        }
    }

    pub fn schemas(&self) -> &Arc<SchemaCache> {
        &self.schemas
    }

    pub fn metrics(&self) -> &IngestMetrics {
        &self.metrics
    }

    pub fn max_batch_rows(&self) -> usize {
        self.max_batch_rows
    }

    /// Validates a batch for `model` against its champion's schema. An invalid or unknown
    /// model rejects every record (field `model`); an unreachable registry is an error, so
    /// the producer retries instead of losing valid rows.
    pub async fn prepare<T: Incoming>(
        &self,
        model: &str,
        batch: Vec<T>,
    ) -> Result<Prepared<T::Record>, IngestError> {
        let started = Instant::now();
        if batch.len() > self.max_batch_rows {
            return Err(IngestError::TooManyRows {
                rows: batch.len(),
                limit: self.max_batch_rows,
            });
        }
        let rejected_all = |reason: RejectReason, batch: Vec<T>| {
            let ids = batch.iter().map(|record| record.row_id().to_owned());
            reject_all(ids, T::MODEL_FIELD, &reason)
        };
        let name = match ModelName::new(model) {
            Ok(name) => name,
            Err(error) => {
                return Ok(Prepared {
                    model: None,
                    accepted: Vec::new(),
                    rejected: rejected_all(RejectReason::InvalidModel(error.to_string()), batch),
                    kind: T::KIND,
                    started,
                });
            }
        };
        let champion = match self.schemas.get(&name).await {
            Ok(champion) => champion,
            Err(SchemaError::NotFound(why)) => {
                return Ok(Prepared {
                    model: Some(name),
                    accepted: Vec::new(),
                    rejected: rejected_all(RejectReason::UnknownModel(why), batch),
                    kind: T::KIND,
                    started,
                });
            }
            Err(source) => {
                return Err(IngestError::SchemaUnavailable {
                    model: model.to_owned(),
                    source,
                });
            }
        };
        let now = now_ms();
        let validated = if batch.len() <= INLINE_VALIDATION_ROWS {
            T::validate(&champion.schema, batch, now, &self.limits)
        } else {
            let schema = Arc::clone(&champion.schema);
            let limits = self.limits;
            tokio::task::spawn_blocking(move || T::validate(&schema, batch, now, &limits))
                .await
                .map_err(|error| IngestError::Internal(error.to_string()))?
        };
        Ok(Prepared {
            model: Some(name),
            accepted: validated.accepted,
            rejected: validated.rejected,
            kind: T::KIND,
            started,
        })
    }

    /// Appends the valid records (returning once the log has stored them) and counts the batch.
    pub async fn commit<R: LogRecord + Clone>(
        &self,
        prepared: Prepared<R>,
        door: Door,
    ) -> Result<BatchOutcome, IngestError> {
        let Prepared {
            model,
            accepted,
            rejected,
            kind,
            started,
        } = prepared;
        let mut already_stored = 0;
        if let Some(model) = &model
            && !accepted.is_empty()
        {
            match self.data_log.append_deduplicated(model, &accepted).await {
                Ok(stored) => {
                    already_stored = stored.iter().filter(|stored| stored.duplicate).count();
                }
                Err(error) => {
                    self.metrics.failed(kind, door);
                    tracing::warn!(%model, kind = kind.as_str(), %error, records = accepted.len(), "data log append failed");
                    return Err(error.into());
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        self.metrics
            .batch(kind, door, accepted.len(), &rejected, seconds);
        tracing::debug!(
            model = model.as_ref().map_or("", ModelName::as_str),
            kind = kind.as_str(),
            source = door.as_str(),
            accepted = accepted.len(),
            already_stored,
            rejected = rejected.len(),
            seconds,
            "batch ingested"
        );
        Ok(BatchOutcome {
            accepted: accepted.len(),
            already_stored,
            rejected,
        })
    }

    /// [`prepare`](Self::prepare) then [`commit`](Self::commit).
    pub async fn ingest<T: Incoming>(
        &self,
        model: &str,
        batch: Vec<T>,
        door: Door,
    ) -> Result<BatchOutcome, IngestError> {
        let prepared = self.prepare(model, batch).await?;
        self.commit(prepared, door).await
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}
