//! Durable pull consumers on JetStream: one server-side consumer per filter subject (NATS
//! 2.9 allows one filter per consumer), merged into one [`Subscription`], pulling in small
//! batches and riding out server restarts.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::context::Context;
use async_nats::jetstream::{AckKind, Message};
use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;

use super::headers::from_nats_headers;
use crate::bus::{ConsumerSpec, Subscription};
use crate::error::BusError;
use crate::message::{Acker, Delivery};
use crate::subjects;

/// How long one pull request waits on the server for messages.
const PULL_EXPIRY: Duration = Duration::from_secs(2);
/// Extra time the client waits past the expiry before giving up on a pull (lost on restart).
const PULL_GRACE: Duration = Duration::from_secs(1);
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// The server-side name of the consumer for one filter: the durable name, the filter with
/// its dots and wildcards spelled out, and a hash so distinct filters never collide.
pub(crate) fn consumer_name(durable: &str, filter: &str) -> String {
    let readable: String = filter
        .split('.')
        .map(|token| match token {
            "*" => "any",
            ">" => "all",
            other => other,
        })
        .collect::<Vec<_>>()
        .join("_");
    let readable: String = readable.chars().take(40).collect();
    format!("{durable}__{readable}_{:08x}", fnv1a(filter) as u32)
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn pull_config(spec: &ConsumerSpec, filter: &str) -> pull::Config {
    let name = consumer_name(&spec.durable, filter);
    pull::Config {
        durable_name: Some(name.clone()),
        name: Some(name),
        description: Some(format!("mend consumer {} for {filter}", spec.durable)),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: spec.ack_wait,
        max_deliver: spec.max_deliver.map_or(-1, i64::from),
        backoff: spec.backoff.clone(),
        filter_subject: filter.to_owned(),
        max_ack_pending: 1000,
        // Zero is "never" to the server, and the client then leaves the field out.
        inactive_threshold: spec.inactive_threshold.unwrap_or_default(),
        ..pull::Config::default()
    }
}

async fn ensure_consumer(
    js: &Context,
    spec: &ConsumerSpec,
    filter: &str,
) -> Result<PullConsumer, BusError> {
    let stream = subjects::stream_for(filter).ok_or_else(|| BusError::NoStream {
        subject: filter.to_owned(),
    })?;
    js.create_consumer_on_stream(pull_config(spec, filter), stream)
        .await
        .map_err(|error| BusError::Consumer {
            durable: spec.durable.clone(),
            reason: format!("{filter} on {stream}: {error}"),
        })
}

/// Deletes every server-side consumer of `spec`; ones already gone (deleted by the
/// inactivity threshold, or never created) are fine.
pub(crate) async fn delete(js: &Context, spec: &ConsumerSpec) -> Result<(), BusError> {
    for filter in &spec.filter_subjects {
        let stream = subjects::stream_for(filter).ok_or_else(|| BusError::NoStream {
            subject: filter.clone(),
        })?;
        let name = consumer_name(&spec.durable, filter);
        match js.delete_consumer_from_stream(&name, stream).await {
            Ok(_) => tracing::debug!(consumer = %name, stream, "deleted consumer"),
            Err(error) if is_not_found(&error) => {}
            Err(error) => {
                return Err(BusError::Consumer {
                    durable: spec.durable.clone(),
                    reason: format!("deleting {name} on {stream}: {error}"),
                });
            }
        }
    }
    Ok(())
}

fn is_not_found(error: &async_nats::jetstream::stream::ConsumerError) -> bool {
    use async_nats::jetstream::ErrorCode;
    use async_nats::jetstream::stream::ConsumerErrorKind;
    match error.kind() {
        ConsumerErrorKind::JetStream(error) => error.error_code() == ErrorCode::CONSUMER_NOT_FOUND,
        _ => false,
    }
}

/// Creates every server-side consumer of `spec` and merges their deliveries.
pub(crate) async fn subscribe(js: &Context, spec: ConsumerSpec) -> Result<Subscription, BusError> {
    spec.validate()?;
    let mut streams: Vec<BoxStream<'static, Delivery>> = Vec::new();
    for filter in &spec.filter_subjects {
        let consumer = ensure_consumer(js, &spec, filter).await?;
        let puller = Puller {
            js: js.clone(),
            spec: spec.clone(),
            filter: filter.clone(),
            consumer,
            batch: None,
            retry_delay: RETRY_MIN,
        };
        streams.push(
            futures::stream::unfold(puller, |mut puller| async move {
                let delivery = puller.next().await;
                Some((delivery, puller))
            })
            .boxed(),
        );
    }
    Ok(Subscription::new(
        spec.durable.clone(),
        futures::stream::select_all(streams),
    ))
}

/// Pulls one server-side consumer: a batch at a time, re-requesting when a batch ends, and
/// backing off (and re-creating the consumer) when the server is away.
struct Puller {
    js: Context,
    spec: ConsumerSpec,
    filter: String,
    consumer: PullConsumer,
    batch: Option<pull::Batch>,
    retry_delay: Duration,
}

impl Puller {
    async fn next(&mut self) -> Delivery {
        loop {
            let batch = match self.batch.as_mut() {
                Some(batch) => batch,
                None => match self.request_batch().await {
                    Ok(batch) => self.batch.insert(batch),
                    Err(error) => {
                        self.recover(&error).await;
                        continue;
                    }
                },
            };
            match tokio::time::timeout(PULL_EXPIRY + PULL_GRACE, batch.next()).await {
                Ok(Some(Ok(message))) => match to_delivery(message) {
                    Ok(delivery) => {
                        self.retry_delay = RETRY_MIN;
                        return delivery;
                    }
                    Err(error) => {
                        tracing::warn!(filter = %self.filter, %error, "skipping unreadable jetstream message");
                    }
                },
                Ok(Some(Err(error))) => {
                    self.batch = None;
                    self.recover(&error.to_string()).await;
                }
                // The pull expired (the normal idle case) or its answer was lost.
                Ok(None) | Err(_) => self.batch = None,
            }
        }
    }

    async fn request_batch(&self) -> Result<pull::Batch, String> {
        self.consumer
            .batch()
            .max_messages(self.spec.batch)
            .expires(PULL_EXPIRY)
            .messages()
            .await
            .map_err(|error| error.to_string())
    }

    /// Waits, then makes sure the consumer exists again (it is idempotent), so a server that
    /// lost its state, or a consumer deleted by an operator, heals by itself.
    async fn recover(&mut self, error: &str) {
        tracing::warn!(
            durable = %self.spec.durable,
            filter = %self.filter,
            error,
            retry_in_ms = self.retry_delay.as_millis() as u64,
            "pull failed; retrying"
        );
        tokio::time::sleep(self.retry_delay).await;
        self.retry_delay = (self.retry_delay * 2).min(RETRY_MAX);
        match ensure_consumer(&self.js, &self.spec, &self.filter).await {
            Ok(consumer) => self.consumer = consumer,
            Err(error) => tracing::debug!(%error, "consumer not re-created yet"),
        }
    }
}

fn to_delivery(message: Message) -> Result<Delivery, BusError> {
    let info = message.info().map_err(|error| BusError::Ack {
        action: "read",
        reason: error.to_string(),
    })?;
    let delivered = u64::try_from(info.delivered).unwrap_or(1);
    let stream = info.stream.to_owned();
    let stream_sequence = info.stream_sequence;
    let published = info.published;
    let headers = message
        .message
        .headers
        .as_ref()
        .map(from_nats_headers)
        .unwrap_or_default();
    Ok(Delivery {
        subject: message.message.subject.to_string(),
        headers,
        payload: message.message.payload.clone(),
        delivered,
        stream,
        stream_sequence,
        published,
        acker: Box::new(JetStreamAcker { message }),
    })
}

struct JetStreamAcker {
    message: Message,
}

fn ack_error(action: &'static str) -> impl Fn(async_nats::Error) -> BusError {
    move |error| BusError::Ack {
        action,
        reason: error.to_string(),
    }
}

#[async_trait]
impl Acker for JetStreamAcker {
    async fn ack(&self) -> Result<(), BusError> {
        // A double ack waits for the server to confirm, so an ack lost in a restart is an
        // error here rather than a silent redelivery later.
        self.message.double_ack().await.map_err(ack_error("ack"))
    }

    async fn nak(&self, delay: Option<Duration>) -> Result<(), BusError> {
        self.message
            .ack_with(AckKind::Nak(delay))
            .await
            .map_err(ack_error("nak"))
    }

    async fn term(&self) -> Result<(), BusError> {
        self.message
            .ack_with(AckKind::Term)
            .await
            .map_err(ack_error("term"))
    }

    async fn in_progress(&self) -> Result<(), BusError> {
        self.message
            .ack_with(AckKind::Progress)
            .await
            .map_err(ack_error("mark in progress"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_are_valid_stable_and_distinct() {
        let a = consumer_name("trainer", "drift.detected.*");
        let b = consumer_name("trainer", "retrain.requested.*");
        assert!(a.starts_with("trainer__drift_detected_any_"));
        assert_ne!(a, b);
        assert_eq!(a, consumer_name("trainer", "drift.detected.*"));
        for name in [a, b, consumer_name("x", "deadletter.>")] {
            assert!(!name.contains(['.', '*', '>', ' ']), "{name}");
        }
    }
}
