//! `mend.ingest.v1.Ingest` over gRPC: client-streamed batches, one summary at the end.
//!
//! Each stream has a reader (this handler) and a worker task joined by a channel of
//! [`PIPELINE_DEPTH`] batches, so the next batch is decoded while the previous one is
//! validated and appended, in order. Before a batch is queued it must take its size in bytes
//! from a semaphore shared by every stream; when appends fall behind, readers stop reading,
//! HTTP/2 flow control stops the producers, and memory stays bounded by
//! `MEND_INGEST_MAX_IN_FLIGHT_BYTES` plus one message per stream being decoded.
//!
//! A batch over the row or byte limit fails the stream with INVALID_ARGUMENT; a registry or
//! data log outage fails it with UNAVAILABLE. Either way the message says how many batches
//! before it were stored, since those stay stored.

use std::sync::Arc;

use mend_proto::ingest::v1 as pb;
use pb::feature_value::Kind as ValueKind;
use prometheus_client::metrics::gauge::Gauge;
use prost::Message;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tonic::{Code, Request, Response, Status, Streaming};
use tracing::Instrument;

use crate::incoming::{Cell, IncomingLabel, IncomingRow};
use crate::ingestor::{Incoming, IngestError, Ingestor};
use crate::metrics::Door;

/// Batches queued between a stream's reader and its worker.
const PIPELINE_DEPTH: usize = 2;

/// The gRPC service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GrpcIngest {
    ingestor: Ingestor,
    in_flight: Arc<Semaphore>,
    max_in_flight_bytes: usize,
    max_listed_rejections: usize,
}

impl GrpcIngest {
    pub fn new(
        ingestor: Ingestor,
        max_in_flight_bytes: usize,
        max_listed_rejections: usize,
    ) -> Self {
        GrpcIngest {
            ingestor,
            in_flight: Arc::new(Semaphore::new(max_in_flight_bytes)),
            max_in_flight_bytes,
            max_listed_rejections,
        }
    }

    /// Reads a stream to its end, feeding the worker, and answers with its summary.
    async fn drive<M, T>(
        &self,
        mut stream: Streaming<M>,
        split: fn(M) -> (String, Vec<T>),
        count: fn(&M) -> usize,
    ) -> Result<Response<pb::IngestSummary>, Status>
    where
        M: Message + Default + Send + 'static,
        T: Incoming,
    {
        let (queue, batches) = mpsc::channel::<Queued<T>>(PIPELINE_DEPTH);
        // In the request's span, so each batch (and the trace context its records carry into
        // the data log) belongs to the caller's trace.
        let worker = tokio::spawn(
            work(self.ingestor.clone(), batches, self.max_listed_rejections).in_current_span(),
        );
        let max_rows = self.ingestor.max_batch_rows();
        let mut index: u32 = 0;
        let read_failure = loop {
            let message = match stream.message().await {
                Ok(Some(message)) => message,
                Ok(None) => break None,
                Err(status) => {
                    if matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted) {
                        self.ingestor.metrics().too_large(T::KIND, Door::Grpc);
                    }
                    break Some(stream_error(status, index));
                }
            };
            let rows = count(&message);
            if rows > max_rows {
                self.ingestor.metrics().too_large(T::KIND, Door::Grpc);
                break Some(Status::invalid_argument(format!(
                    "batch {index} has {rows} records; at most {max_rows} are accepted per batch (MEND_INGEST_MAX_BATCH_ROWS)"
                )));
            }
            let bytes = message.encoded_len().clamp(1, self.max_in_flight_bytes);
            let Ok(permits) = u32::try_from(bytes) else {
                break Some(Status::invalid_argument(format!(
                    "batch {index} of {bytes} bytes is too large"
                )));
            };
            let Ok(permit) = Arc::clone(&self.in_flight)
                .acquire_many_owned(permits)
                .await
            else {
                break Some(Status::unavailable("the ingest service is stopping"));
            };
            let admitted =
                Admitted::new(permit, self.ingestor.metrics().in_flight().clone(), bytes);
            let (model, batch) = split(message);
            let queued = Queued {
                index,
                model,
                batch,
                _admitted: admitted,
            };
            if queue.send(queued).await.is_err() {
                // The worker stopped on a failure; its result says which.
                break None;
            }
            index += 1;
        };
        drop(queue);
        let done = worker
            .await
            .map_err(|error| Status::internal(format!("ingest worker failed: {error}")))?;
        let progress = format!(
            "the {} batches before it were stored ({} records accepted, {} rejected)",
            done.batches, done.summary.accepted, done.summary.rejected
        );
        if let Some((batch, error)) = done.failure {
            let code = match error {
                IngestError::TooManyRows { .. } => Code::InvalidArgument,
                IngestError::SchemaUnavailable { .. } | IngestError::DataLog(_) => {
                    Code::Unavailable
                }
                IngestError::Internal(_) => Code::Internal,
            };
            // A failed append may have stored part of the batch (or all of it, acknowledged
            // too late): the producer retries, and the dedup keys keep the retry from
            // storing anything twice.
            let outcome = match error {
                IngestError::DataLog(_) => format!(
                    "batch {batch} may be partly stored: {error}; send it again: rows (by id) and labels (by row id and label) already stored within the last {} s are stored once",
                    mend_bus::DEDUP_WINDOW.as_secs()
                ),
                _ => format!("batch {batch} was not stored: {error}"),
            };
            return Err(Status::new(code, format!("{outcome}; {progress}")));
        }
        if let Some(status) = read_failure {
            return Err(Status::new(
                status.code(),
                format!("{}; {progress}", status.message()),
            ));
        }
        Ok(Response::new(done.summary))
    }
}

#[tonic::async_trait]
impl pb::ingest_server::Ingest for GrpcIngest {
    async fn ingest_rows(
        &self,
        request: Request<Streaming<pb::RowBatch>>,
    ) -> Result<Response<pb::IngestSummary>, Status> {
        self.drive(request.into_inner(), split_rows, |batch| batch.rows.len())
            .await
            .map_err(mend_runtime::grpc::capped)
    }

    async fn ingest_labels(
        &self,
        request: Request<Streaming<pb::LabelBatch>>,
    ) -> Result<Response<pb::IngestSummary>, Status> {
        self.drive(request.into_inner(), split_labels, |batch| {
            batch.labels.len()
        })
        .await
        .map_err(mend_runtime::grpc::capped)
    }
}

/// A batch admitted into the pipeline, holding its share of the in-flight budget.
struct Queued<T> {
    index: u32,
    model: String,
    batch: Vec<T>,
    _admitted: Admitted,
}

/// In-flight bytes, given back (and taken off the gauge) when the batch is done.
struct Admitted {
    _permit: OwnedSemaphorePermit,
    gauge: Gauge,
    bytes: i64,
}

impl Admitted {
    fn new(permit: OwnedSemaphorePermit, gauge: Gauge, bytes: usize) -> Self {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        gauge.inc_by(bytes);
        Admitted {
            _permit: permit,
            gauge,
            bytes,
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.gauge.dec_by(self.bytes);
    }
}

/// What a stream's worker did.
struct Done {
    summary: pb::IngestSummary,
    batches: u32,
    failure: Option<(u32, IngestError)>,
}

/// Validates and appends queued batches in order until the queue closes or one fails.
async fn work<T: Incoming>(
    ingestor: Ingestor,
    mut batches: mpsc::Receiver<Queued<T>>,
    max_listed: usize,
) -> Done {
    let mut done = Done {
        summary: pb::IngestSummary::default(),
        batches: 0,
        failure: None,
    };
    while let Some(queued) = batches.recv().await {
        let span = tracing::info_span!(
            "ingest_batch",
            model = %queued.model,
            batch = queued.index,
            records = queued.batch.len(),
        );
        let outcome = match ingestor
            .ingest(&queued.model, queued.batch, Door::Grpc)
            .instrument(span)
            .await
        {
            Ok(outcome) => outcome,
            Err(error) => {
                done.failure = Some((queued.index, error));
                return done;
            }
        };
        done.batches += 1;
        done.summary.accepted += outcome.accepted as u64;
        done.summary.already_stored += outcome.already_stored as u64;
        done.summary.rejected += outcome.rejected.len() as u64;
        let room = max_listed.saturating_sub(done.summary.rejected_rows.len());
        done.summary
            .rejected_rows
            .extend(
                outcome
                    .rejected
                    .into_iter()
                    .take(room)
                    .map(|rejection| pb::RejectedRow {
                        batch_index: queued.index,
                        row_index: u32::try_from(rejection.index).unwrap_or(u32::MAX),
                        row_id: rejection.row_id,
                        field: rejection.field,
                        reason: rejection.reason.to_string(),
                    }),
            );
    }
    done
}

/// tonic reports a message over the size limit as OUT_OF_RANGE or RESOURCE_EXHAUSTED, and a
/// body that is not gRPC framing (an unknown compression flag, a cut-off message) as
/// INTERNAL; to the producer each is a bad argument, like a batch over the row limit.
fn stream_error(status: Status, index: u32) -> Status {
    match status.code() {
        Code::OutOfRange | Code::ResourceExhausted => Status::invalid_argument(format!(
            "batch {index} is too large: {} (MEND_INGEST_MAX_MESSAGE_BYTES)",
            status.message()
        )),
        Code::Internal => Status::invalid_argument(format!(
            "batch {index} could not be read: {}",
            status.message()
        )),
        _ => status,
    }
}

fn split_rows(batch: pb::RowBatch) -> (String, Vec<IncomingRow>) {
    let rows = batch
        .rows
        .into_iter()
        .map(|row| IncomingRow {
            id: row.id,
            time_ms: row.event_time_ms,
            values: row
                .values
                .into_iter()
                .map(|(name, value)| (name, cell(value)))
                .collect(),
        })
        .collect();
    (batch.model, rows)
}

fn cell(value: pb::FeatureValue) -> Cell {
    match value.kind {
        Some(ValueKind::Number(x)) => Cell::Number(x),
        Some(ValueKind::Text(text)) => Cell::Text(text),
        // `missing: false` says nothing else either: still no value.
        Some(ValueKind::Missing(_)) | None => Cell::Missing,
    }
}

fn split_labels(batch: pb::LabelBatch) -> (String, Vec<IncomingLabel>) {
    let labels = batch
        .labels
        .into_iter()
        .map(|label| IncomingLabel {
            row_id: label.row_id,
            label: label.label,
            time_ms: label.time_ms,
        })
        .collect();
    (batch.model, labels)
}
