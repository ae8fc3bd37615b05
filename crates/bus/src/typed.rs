//! Events on top of the raw bus: publish an [`Envelope`], consume decoded events, and
//! dead-letter what cannot be decoded or handled so a poison message never wedges a consumer.
//!
//! [`run_event_loop`] is the whole consumer side for most services: it decodes, opens a span
//! that continues the publisher's trace, calls the handler, and acks, naks or dead-letters
//! by the handler's answer, until shutdown.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::bus::{Bus, ConsumerSpec, Subscription};
use crate::error::BusError;
use crate::events::Envelope;
use crate::message::{Delivery, OutgoingMessage, PublishReceipt, header};
use crate::{subjects, trace};

/// Longest dead-letter reason kept in the header.
const MAX_REASON_LEN: usize = 1000;

/// Publishes an event on its subject with the event id as `Nats-Msg-Id`, so publishing the
/// same envelope twice stores it once.
pub async fn publish_event(bus: &dyn Bus, envelope: &Envelope) -> Result<PublishReceipt, BusError> {
    let message = OutgoingMessage::new(envelope.encode()?).with_msg_id(envelope.id.clone());
    bus.publish(&envelope.subject(), message).await
}

/// Copies a delivery to `deadletter.<subject>` with the reason in `Mend-Deadletter-Reason`,
/// then terminates it. If the copy cannot be stored the delivery is nak'ed instead, so
/// nothing is lost.
pub async fn dead_letter(
    bus: &dyn Bus,
    delivery: Delivery,
    durable: &str,
    reason: &str,
) -> Result<(), BusError> {
    let reason = sanitize_reason(reason);
    let mut message = OutgoingMessage::new(delivery.payload.clone()).with_msg_id(format!(
        "deadletter:{}:{}:{durable}",
        delivery.stream, delivery.stream_sequence
    ));
    for (name, value) in delivery.headers.iter() {
        if name != header::MSG_ID {
            message.headers.insert(name, value);
        }
    }
    message
        .headers
        .insert(header::DEADLETTER_REASON, reason.clone());
    message
        .headers
        .insert(header::DEADLETTER_SUBJECT, delivery.subject.clone());
    message.headers.insert(
        header::DEADLETTER_ORIGIN,
        format!("{}/{}", delivery.stream, delivery.stream_sequence),
    );
    message.headers.insert(header::DEADLETTER_CONSUMER, durable);
    match bus
        .publish(&subjects::deadletter(&delivery.subject), message)
        .await
    {
        Ok(_) => delivery.term(&reason).await,
        Err(error) => {
            tracing::error!(subject = %delivery.subject, %error, "could not dead-letter; will retry");
            delivery.nak(Some(Duration::from_secs(1))).await?;
            Err(error)
        }
    }
}

fn sanitize_reason(reason: &str) -> String {
    reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON_LEN)
        .collect()
}

/// A durable consumer of events.
#[derive(Debug)]
pub struct EventSubscription {
    bus: Arc<dyn Bus>,
    spec: ConsumerSpec,
    inner: Subscription,
}

impl EventSubscription {
    pub async fn subscribe(bus: Arc<dyn Bus>, spec: ConsumerSpec) -> Result<Self, BusError> {
        let inner = bus.consume(spec.clone()).await?;
        Ok(EventSubscription { bus, spec, inner })
    }

    /// The next decodable event. Undecodable messages are dead-lettered and skipped.
    pub async fn next(&mut self) -> Option<EventDelivery> {
        loop {
            let delivery = self.inner.next().await?;
            let fallback_id = || {
                delivery
                    .msg_id()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{}-{}", delivery.stream, delivery.stream_sequence))
            };
            match Envelope::decode_with(
                &delivery.subject,
                &delivery.payload,
                fallback_id,
                delivery.published,
            ) {
                Ok(envelope) => {
                    return Some(EventDelivery {
                        envelope,
                        delivery,
                        bus: Arc::clone(&self.bus),
                        durable: self.spec.durable.clone(),
                        max_deliver: self.spec.max_deliver,
                    });
                }
                Err(error) => {
                    let reason = format!("undecodable event: {error}");
                    if let Err(error) =
                        dead_letter(self.bus.as_ref(), delivery, &self.spec.durable, &reason).await
                    {
                        tracing::warn!(%error, "dead-lettering failed");
                    }
                }
            }
        }
    }
}

/// Keeps every event a subscription delivers, acknowledged, in the order they came: for
/// tests and tools that wait for what the loop announces.
pub struct EventRecorder {
    subscription: EventSubscription,
    /// Every event received so far.
    pub seen: Vec<Envelope>,
}

impl EventRecorder {
    /// Subscribes now, so nothing announced from here on is missed.
    pub async fn subscribe(bus: Arc<dyn Bus>, spec: ConsumerSpec) -> Result<Self, BusError> {
        Ok(EventRecorder {
            subscription: EventSubscription::subscribe(bus, spec).await?,
            seen: Vec::new(),
        })
    }

    /// The first event matching `predicate`, among those seen already or arriving within
    /// `wait`; `None` when none comes in time (or the subscription ends).
    pub async fn wait_for(
        &mut self,
        wait: Duration,
        predicate: impl Fn(&Envelope) -> bool,
    ) -> Option<Envelope> {
        if let Some(found) = self.seen.iter().find(|e| predicate(e)) {
            return Some(found.clone());
        }
        let deadline = tokio::time::Instant::now() + wait;
        while let Some(envelope) = self.receive(deadline).await {
            if predicate(&envelope) {
                return Some(envelope);
            }
        }
        None
    }

    /// What was seen so far, one `(event, id)` per line: for the message of a wait that
    /// found nothing.
    pub fn describe_seen(&self) -> String {
        format!(
            "{:#?}",
            self.seen
                .iter()
                .map(|e| (&e.event, &e.id))
                .collect::<Vec<_>>()
        )
    }

    /// Takes in every event announced within `wait`.
    pub async fn drain(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while self.receive(deadline).await.is_some() {}
    }

    /// The next event before `deadline`, acknowledged and kept.
    async fn receive(&mut self, deadline: tokio::time::Instant) -> Option<Envelope> {
        let next = tokio::time::timeout_at(deadline, self.subscription.next())
            .await
            .ok()??;
        let envelope = next.envelope.clone();
        if let Err(error) = next.ack().await {
            tracing::warn!(%error, event_id = %envelope.id, "cannot acknowledge a recorded event");
        }
        self.seen.push(envelope.clone());
        Some(envelope)
    }
}

/// A decoded event and the delivery to settle.
#[derive(Debug)]
pub struct EventDelivery {
    pub envelope: Envelope,
    delivery: Delivery,
    bus: Arc<dyn Bus>,
    durable: String,
    max_deliver: Option<u32>,
}

impl EventDelivery {
    /// How many times this event has been delivered to this consumer, starting at 1.
    pub fn delivered(&self) -> u64 {
        self.delivery.delivered
    }

    /// The raw delivery (subject, headers, stream position).
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    /// Whether a failure now would be the last attempt.
    pub fn is_last_attempt(&self) -> bool {
        self.max_deliver
            .is_some_and(|max| self.delivery.delivered >= u64::from(max))
    }

    /// A span for handling this event, child of the publisher's trace.
    pub fn span(&self) -> tracing::Span {
        let span = tracing::info_span!(
            "handle_event",
            subject = %self.delivery.subject,
            event_id = %self.envelope.id,
            model = %self.envelope.model,
            delivered = self.delivery.delivered,
        );
        trace::set_parent_from(&span, &self.delivery.headers);
        span
    }

    pub async fn ack(self) -> Result<(), BusError> {
        self.delivery.ack().await
    }

    pub async fn nak(self, delay: Option<Duration>) -> Result<(), BusError> {
        self.delivery.nak(delay).await
    }

    pub async fn in_progress(&self) -> Result<(), BusError> {
        self.delivery.in_progress().await
    }

    /// Gives up on the event: dead-letter it with `reason` and terminate it.
    pub async fn reject(self, reason: &str) -> Result<(), BusError> {
        dead_letter(self.bus.as_ref(), self.delivery, &self.durable, reason).await
    }
}

/// What a handler says about an event it could not handle.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HandlerError {
    /// Try again later (after `delay`, or the consumer's redelivery delay). On the last
    /// allowed delivery the event is dead-lettered instead.
    #[error("retry: {reason}")]
    Retry {
        reason: String,
        delay: Option<Duration>,
    },
    /// The event can never be handled: dead-letter it now.
    #[error("reject: {reason}")]
    Reject { reason: String },
}

impl HandlerError {
    pub fn retry(reason: impl Into<String>) -> Self {
        HandlerError::Retry {
            reason: reason.into(),
            delay: None,
        }
    }

    pub fn reject(reason: impl Into<String>) -> Self {
        HandlerError::Reject {
            reason: reason.into(),
        }
    }
}

/// Handles one event. Implemented for async closures `Fn(Envelope, u64) -> Future`, where
/// the `u64` is the delivery count. Handlers must be idempotent: an event can come twice.
#[async_trait]
pub trait EventHandler: Send + Sync {
    async fn handle(&self, event: Envelope, delivered: u64) -> Result<(), HandlerError>;
}

#[async_trait]
impl<F, Fut> EventHandler for F
where
    F: Fn(Envelope, u64) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = Result<(), HandlerError>> + Send,
{
    async fn handle(&self, event: Envelope, delivered: u64) -> Result<(), HandlerError> {
        self(event, delivered).await
    }
}

/// Consumes events until `shutdown` is cancelled (finishing the event in hand first) or
/// the bus closes: each event is handled in its own span and then acked, retried, or
/// dead-lettered by the handler's answer.
pub async fn run_event_loop<H: EventHandler + 'static>(
    subscription: EventSubscription,
    shutdown: CancellationToken,
    handler: H,
) {
    run_event_loop_concurrent(subscription, shutdown, handler, 1).await;
}

/// [`run_event_loop`] with up to `limit` events handled at once, each in its own task: a
/// handler that waits on something slow (another component's answer) holds back only its own
/// event, not the ones behind it. At shutdown, or when the bus closes, the events in hand are
/// finished first.
pub async fn run_event_loop_concurrent<H>(
    mut subscription: EventSubscription,
    shutdown: CancellationToken,
    handler: H,
    limit: usize,
) where
    H: EventHandler + 'static,
{
    let handler = Arc::new(handler);
    let limit = limit.max(1);
    let mut running = tokio::task::JoinSet::new();
    loop {
        while let Some(done) = running.try_join_next() {
            report_panic(done);
        }
        if running.len() >= limit {
            // Full: wait for one to finish (or for shutdown) before pulling more.
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some(done) = running.join_next() => {
                    report_panic(done);
                    continue;
                }
            }
        }
        // Only shutdown races the pull: a pull dropped half-way could hold a message back
        // until its redelivery.
        let next = tokio::select! {
            () = shutdown.cancelled() => break,
            next = subscription.next() => next,
        };
        let Some(event) = next else {
            break;
        };
        let span = event.span();
        let handler = Arc::clone(&handler);
        running.spawn(async move { handle_one(event, handler.as_ref()).await }.instrument(span));
    }
    while let Some(done) = running.join_next().await {
        report_panic(done);
    }
}

/// A handler that panicked never settled its event: it comes back after its ack wait.
fn report_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(error) = done
        && error.is_panic()
    {
        tracing::error!(%error, "an event handler panicked; its event will be delivered again");
    }
}

async fn handle_one<H: EventHandler + ?Sized>(event: EventDelivery, handler: &H) {
    let delivered = event.delivered();
    let last_attempt = event.is_last_attempt();
    let outcome = handler.handle(event.envelope.clone(), delivered).await;
    let settled = match outcome {
        Ok(()) => event.ack().await,
        Err(HandlerError::Retry { reason, .. }) if last_attempt => {
            let reason = format!("gave up after {delivered} deliveries: {reason}");
            event.reject(&reason).await
        }
        Err(HandlerError::Retry { reason, delay }) => {
            tracing::warn!(%reason, delivered, "handler asked to retry");
            event.nak(delay).await
        }
        Err(HandlerError::Reject { reason }) => event.reject(&reason).await,
    };
    if let Err(error) = settled {
        // The message comes back after its ack wait; handlers are idempotent.
        tracing::warn!(%error, "could not settle event");
    }
}
