//! The bus door: JSON batches on `ingest.rows.<model>` / `ingest.labels.<model>` (see
//! [`crate::wire`]), read by one durable consumer shared by every replica (`mend-ingest`), so
//! each message is handled once, like a work queue.
//!
//! For each message: the rows that fail (shape or validation) are dead-lettered on
//! `deadletter.<subject>` with their reasons and the rows as sent, then the valid rows are
//! appended to the data log, then the message is acked. That order makes a retry safe for the
//! dead letter (its message id is derived from the original's stream sequence, so it is
//! stored once). A message that is not an ingest message at all, or is over the batch limit,
//! is dead-lettered whole. A registry or data log outage naks the message for a later retry,
//! and after the last allowed delivery dead-letters it whole, so nothing is silently dropped.
//!
//! A crash between the append and the ack redelivers the message and appends its valid rows
//! a second time: the data log has no idempotency key yet.

use std::sync::Arc;
use std::time::Duration;

use mend_bus::message::{Headers, OutgoingMessage, header};
use mend_bus::subjects::{self, INGEST_LABELS_PREFIX, INGEST_ROWS_PREFIX};
use mend_bus::{Bus, BusError, ConsumerSpec, Delivery, trace, typed};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::incoming::{IncomingLabel, IncomingRow};
use crate::ingestor::{Incoming, IngestError, Ingestor};
use crate::metrics::Door;
use crate::reject::{RejectReason, Rejection};
use crate::wire::{self, Decoded};

/// The durable consumer every replica shares.
pub const CONSUMER: &str = "mend-ingest";
/// Deliveries of one message before it is dead-lettered whole.
const MAX_DELIVER: u32 = 5;
/// Wait before a message that failed for an outage is tried again.
const RETRY_DELAY: Duration = Duration::from_secs(2);

/// The consumer's subscription: every model's rows and labels.
pub fn consumer_spec() -> ConsumerSpec {
    ConsumerSpec::new(
        CONSUMER,
        [
            format!("{INGEST_ROWS_PREFIX}.*"),
            format!("{INGEST_LABELS_PREFIX}.*"),
        ],
    )
    .ack_wait(Duration::from_secs(60))
    .max_deliver(Some(MAX_DELIVER))
    .batch(4)
}

/// Handles ingest messages until `shutdown` (finishing the one in hand) or the bus closes.
pub async fn consume(
    ingestor: Ingestor,
    bus: Arc<dyn Bus>,
    shutdown: CancellationToken,
) -> Result<(), BusError> {
    let mut subscription = bus.consume(consumer_spec()).await?;
    tracing::info!(
        consumer = CONSUMER,
        "consuming ingest.rows.* and ingest.labels.*"
    );
    loop {
        let delivery = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            next = subscription.next() => match next {
                Some(delivery) => delivery,
                None => return Ok(()),
            },
        };
        let span = tracing::info_span!(
            "ingest_message",
            subject = %delivery.subject,
            stream_sequence = delivery.stream_sequence,
            delivered = delivery.delivered,
        );
        trace::set_parent_from(&span, &delivery.headers);
        handle(&ingestor, bus.as_ref(), delivery)
            .instrument(span)
            .await;
    }
}

async fn handle(ingestor: &Ingestor, bus: &dyn Bus, delivery: Delivery) {
    let subject = delivery.subject.clone();
    if let Some(model) = model_of(&subject, INGEST_ROWS_PREFIX) {
        handle_batch::<IncomingRow>(ingestor, bus, delivery, model, wire::decode_rows).await;
    } else if let Some(model) = model_of(&subject, INGEST_LABELS_PREFIX) {
        handle_batch::<IncomingLabel>(ingestor, bus, delivery, model, wire::decode_labels).await;
    } else {
        give_up(bus, delivery, "not an ingest subject").await;
    }
}

fn model_of<'a>(subject: &'a str, prefix: &str) -> Option<&'a str> {
    subject.strip_prefix(prefix)?.strip_prefix('.')
}

async fn handle_batch<T: Incoming>(
    ingestor: &Ingestor,
    bus: &dyn Bus,
    delivery: Delivery,
    model: &str,
    decode: fn(&[u8]) -> Result<Decoded<T>, String>,
) {
    let metrics = ingestor.metrics();
    let decoded = match decode(&delivery.payload) {
        Ok(decoded) => decoded,
        Err(reason) => {
            metrics.rejected_whole(
                T::KIND,
                Door::Nats,
                &RejectReason::Undecodable(String::new()),
                1,
            );
            give_up(
                bus,
                delivery,
                &format!("undecodable ingest message: {reason}"),
            )
            .await;
            return;
        }
    };
    let Decoded {
        records,
        original_index,
        rejected: misshapen,
        raw,
    } = decoded;
    let mut prepared = match ingestor.prepare::<T>(model, records).await {
        Ok(prepared) => prepared,
        Err(error @ IngestError::TooManyRows { .. }) => {
            metrics.too_large(T::KIND, Door::Nats);
            give_up(bus, delivery, &error.to_string()).await;
            return;
        }
        Err(error) => {
            retry_or_give_up(bus, delivery, &error).await;
            return;
        }
    };
    // Back to the positions in the message, then merged with the misshapen rows.
    let mut rejected: Vec<Rejection> = prepared
        .rejected
        .drain(..)
        .map(|mut rejection| {
            rejection.index = original_index[rejection.index];
            if let RejectReason::DuplicateId { first_index } = &mut rejection.reason {
                *first_index = original_index[*first_index];
            }
            rejection
        })
        .chain(misshapen)
        .collect();
    rejected.sort_by_key(|rejection| rejection.index);
    if !rejected.is_empty()
        && let Err(error) =
            dead_letter_rows(bus, &delivery, &rejected, &raw, prepared.accepted.len()).await
    {
        tracing::warn!(%error, "could not dead-letter rejected rows; will retry the message");
        settle(delivery.nak(Some(RETRY_DELAY)).await);
        return;
    }
    prepared.rejected = rejected;
    match ingestor.commit(prepared, Door::Nats).await {
        Ok(outcome) => {
            tracing::debug!(
                accepted = outcome.accepted,
                rejected = outcome.rejected.len(),
                "ingest message handled"
            );
            settle(delivery.ack().await);
        }
        Err(error) => retry_or_give_up(bus, delivery, &error).await,
    }
}

/// Publishes the rejected rows of one message, each with its reason and the row as sent.
async fn dead_letter_rows(
    bus: &dyn Bus,
    delivery: &Delivery,
    rejected: &[Rejection],
    raw: &[serde_json::Value],
    accepted: usize,
) -> Result<(), BusError> {
    let entries: Vec<serde_json::Value> = rejected
        .iter()
        .map(|rejection| {
            json!({
                "index": rejection.index,
                "row_id": rejection.row_id,
                "field": rejection.field,
                "code": rejection.reason.code(),
                "reason": rejection.reason.to_string(),
                "row": raw.get(rejection.index).cloned().unwrap_or(serde_json::Value::Null),
            })
        })
        .collect();
    let body = json!({
        "v": 1,
        "subject": delivery.subject,
        "accepted": accepted,
        "rejected": entries,
    });
    let first = &rejected[0];
    let summary = format!(
        "{} of {} rows rejected; first: index {} field `{}`: {}",
        rejected.len(),
        raw.len(),
        first.index,
        first.field,
        first.reason
    );
    let mut message = OutgoingMessage::new(serde_json::to_vec(&body)?).with_msg_id(format!(
        "ingest-rejected:{}:{}",
        delivery.stream, delivery.stream_sequence
    ));
    message.headers = carried_headers(&delivery.headers);
    message.headers.insert(header::DEADLETTER_REASON, summary);
    message
        .headers
        .insert(header::DEADLETTER_SUBJECT, delivery.subject.clone());
    message.headers.insert(
        header::DEADLETTER_ORIGIN,
        format!("{}/{}", delivery.stream, delivery.stream_sequence),
    );
    message
        .headers
        .insert(header::DEADLETTER_CONSUMER, CONSUMER);
    bus.publish(&subjects::deadletter(&delivery.subject), message)
        .await?;
    Ok(())
}

/// The original's headers (trace context and the like), without its message id.
fn carried_headers(headers: &Headers) -> Headers {
    headers
        .iter()
        .filter(|(name, _)| *name != header::MSG_ID)
        .collect()
}

/// Naks an outage for a later retry; on the last allowed delivery, dead-letters it whole.
async fn retry_or_give_up(bus: &dyn Bus, delivery: Delivery, error: &IngestError) {
    if delivery.delivered >= u64::from(MAX_DELIVER) {
        let reason = format!("gave up after {} deliveries: {error}", delivery.delivered);
        give_up(bus, delivery, &reason).await;
        return;
    }
    tracing::warn!(%error, "ingest message not handled now; will retry");
    settle(delivery.nak(Some(RETRY_DELAY)).await);
}

async fn give_up(bus: &dyn Bus, delivery: Delivery, reason: &str) {
    if let Err(error) = typed::dead_letter(bus, delivery, CONSUMER, reason).await {
        tracing::warn!(%error, "dead-lettering failed; the message comes back");
    }
}

fn settle(result: Result<(), BusError>) {
    if let Err(error) = result {
        // Unsettled, it comes back after its ack wait; handling is safe to repeat.
        tracing::warn!(%error, "could not settle ingest message");
    }
}
