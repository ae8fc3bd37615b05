//! The [`Bus`] trait every service talks through, the [`ConsumerSpec`] of a durable consumer
//! and the [`Subscription`] it yields deliveries from.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use futures::{Stream, StreamExt};

use crate::error::BusError;
use crate::message::{Delivery, Headers, OutgoingMessage, PublishReceipt, header};
use crate::{subjects, trace};

/// A durable, at-least-once message bus: NATS JetStream, or in-process for `mend up`.
///
/// Both implementations keep the same promises: a publish returns once the message is
/// stored; a durable consumer sees every stored message on its subjects; a delivery not
/// acked within the ack wait (or nak'ed) is delivered again, up to `max_deliver` times; a
/// terminated one never again; a message id seen within the duplicate window is stored once.
#[async_trait]
pub trait Bus: Send + Sync + fmt::Debug {
    /// Stores a message on `subject` and waits for the store to confirm it. Sets the
    /// `Nats-Msg-Id` (the message's, or a generated one) and the current `traceparent`.
    async fn publish(
        &self,
        subject: &str,
        message: OutgoingMessage,
    ) -> Result<PublishReceipt, BusError>;

    /// Creates (or updates) the durable consumer and starts pulling from it. Several
    /// subscriptions with the same durable name share its messages, like workers on a queue.
    async fn consume(&self, spec: ConsumerSpec) -> Result<Subscription, BusError>;

    /// Removes the durable consumer (its position with it) once no subscription needs it,
    /// so a process that leaves for good (a scaled-down replica) leaves nothing behind.
    /// Deleting a consumer that does not exist is not an error. The in-process bus keeps
    /// nothing beyond its own life, so by default this does nothing.
    async fn delete_consumer(&self, spec: &ConsumerSpec) -> Result<(), BusError> {
        let _ = spec;
        Ok(())
    }
}

/// How a durable consumer pulls and redelivers.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerSpec {
    /// Durable name: the consumer remembers its position under this name across restarts.
    pub durable: String,
    /// Subjects to receive, with `*` / `>` wildcards; they may span streams.
    pub filter_subjects: Vec<String>,
    /// How long a delivery may stay unsettled before it is delivered again.
    pub ack_wait: Duration,
    /// Deliveries per message before the consumer gives up on it (`None`: no limit).
    pub max_deliver: Option<u32>,
    /// Redelivery delays by attempt: the n-th delivery waits `backoff[n-1]` (the last value
    /// repeating) instead of `ack_wait`. Must be shorter than `max_deliver`.
    pub backoff: Vec<Duration>,
    /// Messages fetched ahead per pull. Each waits in the client with its ack-wait clock
    /// running, so keep it small for slow handlers.
    pub batch: usize,
    /// JetStream deletes the consumer after it has gone this long without a pull (`None`:
    /// never). For consumers named per process (a server replica under an autoscaler), whose
    /// owner may vanish without saying goodbye. A consumer in use keeps a pull waiting at
    /// all times, so it never counts as inactive. The in-process bus ignores it: its
    /// consumers end with the process.
    pub inactive_threshold: Option<Duration>,
}

/// Longest durable name; leaves room for the per-filter suffix JetStream names get.
pub const MAX_DURABLE_LEN: usize = 48;

impl ConsumerSpec {
    /// A consumer with defaults: ack wait 30 s, 5 deliveries, no backoff, batch 1, kept
    /// forever.
    pub fn new<S: Into<String>>(
        durable: impl Into<String>,
        filter_subjects: impl IntoIterator<Item = S>,
    ) -> Self {
        ConsumerSpec {
            durable: durable.into(),
            filter_subjects: filter_subjects.into_iter().map(Into::into).collect(),
            ack_wait: Duration::from_secs(30),
            max_deliver: Some(5),
            backoff: Vec::new(),
            batch: 1,
            inactive_threshold: None,
        }
    }

    pub fn ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }

    pub fn max_deliver(mut self, max_deliver: Option<u32>) -> Self {
        self.max_deliver = max_deliver;
        self
    }

    pub fn backoff(mut self, backoff: Vec<Duration>) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    pub fn inactive_threshold(mut self, inactive_threshold: Option<Duration>) -> Self {
        self.inactive_threshold = inactive_threshold;
        self
    }

    /// How long the n-th delivery (1-based) may stay unsettled.
    pub fn redelivery_delay(&self, delivered: u64) -> Duration {
        if self.backoff.is_empty() {
            return self.ack_wait;
        }
        let index = usize::try_from(delivered.saturating_sub(1))
            .unwrap_or(usize::MAX)
            .min(self.backoff.len() - 1);
        self.backoff[index]
    }

    /// Checks the spec against the rules both implementations enforce.
    pub fn validate(&self) -> Result<(), BusError> {
        let invalid = |reason: String| BusError::InvalidConsumer {
            durable: self.durable.clone(),
            reason,
        };
        let name_ok = self
            .durable
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if self.durable.is_empty() || self.durable.len() > MAX_DURABLE_LEN || !name_ok {
            return Err(invalid(format!(
                "durable name must be 1 to {MAX_DURABLE_LEN} characters of [A-Za-z0-9_-]"
            )));
        }
        if self.filter_subjects.is_empty() {
            return Err(invalid("at least one filter subject is required".into()));
        }
        for filter in &self.filter_subjects {
            subjects::validate_filter(filter)?;
            if subjects::stream_for(filter).is_none() {
                return Err(BusError::NoStream {
                    subject: filter.clone(),
                });
            }
        }
        if self.ack_wait.is_zero() {
            return Err(invalid("ack_wait must be positive".into()));
        }
        if self.max_deliver == Some(0) {
            return Err(invalid("max_deliver must be at least 1".into()));
        }
        if self.backoff.iter().any(Duration::is_zero) {
            return Err(invalid("backoff delays must be positive".into()));
        }
        if let Some(max_deliver) = self.max_deliver
            && !self.backoff.is_empty()
            && self.backoff.len() >= max_deliver as usize
        {
            return Err(invalid(format!(
                "max_deliver ({max_deliver}) must exceed the number of backoff delays ({})",
                self.backoff.len()
            )));
        }
        if self.batch == 0 {
            return Err(invalid("batch must be at least 1".into()));
        }
        if self
            .inactive_threshold
            .is_some_and(|threshold| threshold.is_zero())
        {
            return Err(invalid(
                "inactive_threshold must be positive (or None to keep the consumer)".into(),
            ));
        }
        Ok(())
    }
}

/// What both implementations do before storing a message: check the subject, find its
/// stream, fix the message id and add the current trace context.
pub(crate) fn prepare_publish(
    subject: &str,
    message: OutgoingMessage,
) -> Result<PreparedPublish, BusError> {
    subjects::validate_subject(subject)?;
    let stream = subjects::stream_for(subject).ok_or_else(|| BusError::NoStream {
        subject: subject.to_owned(),
    })?;
    let OutgoingMessage {
        payload,
        mut headers,
        msg_id,
    } = message;
    let msg_id = msg_id
        .or_else(|| headers.get(header::MSG_ID).map(str::to_owned))
        .unwrap_or_else(crate::events::new_event_id);
    headers.insert(header::MSG_ID, msg_id.clone());
    trace::inject_current(&mut headers);
    Ok(PreparedPublish {
        stream,
        msg_id,
        headers,
        payload,
    })
}

pub(crate) struct PreparedPublish {
    pub stream: &'static str,
    pub msg_id: String,
    pub headers: Headers,
    pub payload: bytes::Bytes,
}

/// Deliveries of one durable consumer. Transient failures (a NATS restart) are retried
/// inside; `next` returns `None` only when the bus has shut down.
pub struct Subscription {
    durable: String,
    deliveries: Pin<Box<dyn Stream<Item = Delivery> + Send>>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    pub(crate) fn new(
        durable: String,
        deliveries: impl Stream<Item = Delivery> + Send + 'static,
    ) -> Self {
        Subscription {
            durable,
            deliveries: Box::pin(deliveries),
        }
    }

    pub fn durable(&self) -> &str {
        &self.durable
    }

    /// The next delivery; waits until one is available.
    pub async fn next(&mut self) -> Option<Delivery> {
        self.deliveries.next().await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn backoff_replaces_ack_wait_per_attempt() {
        let spec = ConsumerSpec::new("c", ["alert.*"])
            .max_deliver(Some(5))
            .backoff(vec![Duration::from_secs(1), Duration::from_secs(5)]);
        assert_eq!(spec.redelivery_delay(1), Duration::from_secs(1));
        assert_eq!(spec.redelivery_delay(2), Duration::from_secs(5));
        assert_eq!(spec.redelivery_delay(9), Duration::from_secs(5));
        let plain = ConsumerSpec::new("c", ["alert.*"]).ack_wait(Duration::from_secs(3));
        assert_eq!(plain.redelivery_delay(4), Duration::from_secs(3));
    }

    #[test]
    fn validation_rejects_what_jetstream_would() {
        ConsumerSpec::new("trainer", ["drift.detected.*", "retrain.requested.*"])
            .validate()
            .unwrap();
        assert!(ConsumerSpec::new("a.b", ["alert.*"]).validate().is_err());
        assert!(
            ConsumerSpec::new("c", Vec::<String>::new())
                .validate()
                .is_err()
        );
        assert!(ConsumerSpec::new("c", ["nowhere.*"]).validate().is_err());
        assert!(ConsumerSpec::new("c", ["alert.>.x"]).validate().is_err());
        let too_much_backoff = ConsumerSpec::new("c", ["alert.*"])
            .max_deliver(Some(2))
            .backoff(vec![Duration::from_secs(1); 2]);
        assert!(too_much_backoff.validate().is_err());
        let never_active =
            ConsumerSpec::new("c", ["alert.*"]).inactive_threshold(Some(Duration::ZERO));
        assert!(never_active.validate().is_err());
        ConsumerSpec::new("c", ["alert.*"])
            .inactive_threshold(Some(Duration::from_secs(3600)))
            .validate()
            .unwrap();
    }
}
