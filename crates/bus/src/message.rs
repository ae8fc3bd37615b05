//! What goes over the bus: headers, outgoing messages, publish receipts and deliveries.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use time::OffsetDateTime;

use crate::error::BusError;

/// Header names mend reads or writes.
pub mod header {
    /// JetStream's deduplication id; a second publish with the same id inside the duplicate
    /// window is not stored again.
    pub const MSG_ID: &str = "Nats-Msg-Id";
    /// W3C trace context.
    pub const TRACEPARENT: &str = "traceparent";
    pub const TRACESTATE: &str = "tracestate";
    /// Why a message was dead-lettered.
    pub const DEADLETTER_REASON: &str = "Mend-Deadletter-Reason";
    /// The subject the dead letter was first published on.
    pub const DEADLETTER_SUBJECT: &str = "Mend-Deadletter-Subject";
    /// The stream and sequence the dead letter was stored at, e.g. `MEND_EVENTS/42`.
    pub const DEADLETTER_ORIGIN: &str = "Mend-Deadletter-Origin";
    /// The consumer that gave up on it.
    pub const DEADLETTER_CONSUMER: &str = "Mend-Deadletter-Consumer";
}

/// Message headers. NATS allows several values per name; mend uses one, so this keeps the
/// last one written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(BTreeMap<String, String>);

impl Headers {
    pub fn new() -> Self {
        Headers::default()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// About how many bytes the headers take on the wire (`Name: value\r\n` each).
    pub fn approximate_len(&self) -> usize {
        self.iter()
            .map(|(name, value)| name.len() + value.len() + 4)
            .sum::<usize>()
            + 12
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Headers(
            iter.into_iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect(),
        )
    }
}

/// A message to publish. Without a `msg_id` the bus generates one, so its own retries are
/// still stored once; give one to make retries by the caller idempotent too.
#[derive(Debug, Clone, Default)]
pub struct OutgoingMessage {
    pub payload: Bytes,
    pub headers: Headers,
    pub msg_id: Option<String>,
}

impl OutgoingMessage {
    pub fn new(payload: impl Into<Bytes>) -> Self {
        OutgoingMessage {
            payload: payload.into(),
            ..OutgoingMessage::default()
        }
    }

    pub fn with_msg_id(mut self, msg_id: impl Into<String>) -> Self {
        self.msg_id = Some(msg_id.into());
        self
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name, value);
        self
    }
}

/// Where a published message was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReceipt {
    pub stream: String,
    pub sequence: u64,
    /// The message id was seen inside the duplicate window: nothing new was stored.
    pub duplicate: bool,
}

/// Settles one delivery; each bus implementation provides its own.
#[async_trait]
pub(crate) trait Acker: Send + Sync {
    async fn ack(&self) -> Result<(), BusError>;
    async fn nak(&self, delay: Option<Duration>) -> Result<(), BusError>;
    async fn term(&self) -> Result<(), BusError>;
    async fn in_progress(&self) -> Result<(), BusError>;
}

/// One delivery of a stored message to a durable consumer. Settle it exactly once with
/// [`ack`](Delivery::ack), [`nak`](Delivery::nak) or [`term`](Delivery::term); if it is not
/// settled within the consumer's ack wait it is delivered again.
pub struct Delivery {
    pub subject: String,
    pub headers: Headers,
    pub payload: Bytes,
    /// How many times this message has been delivered to this consumer, starting at 1.
    pub delivered: u64,
    pub stream: String,
    pub stream_sequence: u64,
    /// When the message was stored.
    pub published: OffsetDateTime,
    pub(crate) acker: Box<dyn Acker>,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("subject", &self.subject)
            .field("headers", &self.headers)
            .field("payload_len", &self.payload.len())
            .field("delivered", &self.delivered)
            .field("stream", &self.stream)
            .field("stream_sequence", &self.stream_sequence)
            .finish()
    }
}

impl Delivery {
    /// The message was handled: never deliver it again.
    pub async fn ack(self) -> Result<(), BusError> {
        self.acker.ack().await
    }

    /// The message could not be handled now: deliver it again after `delay` (or at once).
    pub async fn nak(self, delay: Option<Duration>) -> Result<(), BusError> {
        self.acker.nak(delay).await
    }

    /// The message can never be handled: stop delivering it. The reason is logged; the
    /// typed consumer also dead-letters the message with it.
    pub async fn term(self, reason: &str) -> Result<(), BusError> {
        tracing::warn!(
            subject = %self.subject,
            stream = %self.stream,
            stream_sequence = self.stream_sequence,
            reason,
            "terminating message"
        );
        self.acker.term().await
    }

    /// Still working on it: restart the ack-wait clock.
    pub async fn in_progress(&self) -> Result<(), BusError> {
        self.acker.in_progress().await
    }

    /// The publisher's `Nats-Msg-Id`, if it set one.
    pub fn msg_id(&self) -> Option<&str> {
        self.headers.get(header::MSG_ID)
    }
}
