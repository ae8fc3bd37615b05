//! The NATS JetStream bus for distributed deployments.
//!
//! - `streams.rs`: `MEND_EVENTS`, `MEND_DATA` and `MEND_DEADLETTER`, with retention limits,
//!   created or updated at start-up.
//! - `consumer.rs`: durable pull consumers with explicit ack, merged per [`ConsumerSpec`].
//! - `headers.rs`: header conversion.
//!
//! Publishing waits for the stream's acknowledgement and retries through disconnects with
//! the same `Nats-Msg-Id`, so a retry is stored once.

mod consumer;
mod headers;
mod streams;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::Publish;
use async_nats::jetstream::{self, context::Context};
use async_trait::async_trait;
use tokio::time::Instant;

pub use streams::StreamLimits;

use crate::bus::{Bus, ConsumerSpec, Subscription, prepare_publish};
use crate::error::BusError;
use crate::message::{OutgoingMessage, PublishReceipt};

/// Settings of the JetStream bus.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    pub events: StreamLimits,
    pub data: StreamLimits,
    pub deadletter: StreamLimits,
    /// Copies of each stream (1 for a single server, 3 in a cluster; `MEND_NATS_REPLICAS`).
    pub replicas: usize,
    /// How long one publish keeps retrying (server restart, leader election) before failing.
    pub publish_retry_for: Duration,
    /// How long to wait for one acknowledgement or API reply.
    pub request_timeout: Duration,
}

impl Default for JetStreamConfig {
    fn default() -> Self {
        JetStreamConfig {
            events: StreamLimits::events_default(),
            data: StreamLimits::data_default(),
            deadletter: StreamLimits::deadletter_default(),
            replicas: 1,
            publish_retry_for: Duration::from_secs(60),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// The bus over NATS JetStream. Cheap to clone.
#[derive(Clone)]
pub struct JetStreamBus {
    client: async_nats::Client,
    js: Context,
    config: Arc<JetStreamConfig>,
}

impl std::fmt::Debug for JetStreamBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamBus")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

const TLS_HINT: &str = "check that the CA signed the server's certificate, the client certificate, and that the server speaks TLS";

/// Says what to check for the failures an operator can fix.
fn connect_reason(error: &async_nats::ConnectError) -> String {
    use async_nats::ConnectErrorKind;
    match error.kind() {
        ConnectErrorKind::AuthorizationViolation => {
            "authorization violation: the server refused the credentials (missing or wrong token, user/password or creds file)".to_owned()
        }
        ConnectErrorKind::Authentication => {
            "authentication failed: the credentials could not sign the server's nonce".to_owned()
        }
        // rustls failures (an unknown issuer, a refused client certificate) arrive as IO errors.
        ConnectErrorKind::Tls => format!("tls: {error}; {TLS_HINT}"),
        ConnectErrorKind::Io if error.to_string().contains("certificate") => {
            format!("tls: {error}; {TLS_HINT}")
        }
        _ => error.to_string(),
    }
}

/// `nats://user:pass@host` → `nats://***@host`, so errors never carry credentials.
fn redact_userinfo(urls: &str) -> String {
    urls.split(',')
        .map(|url| {
            let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
            match rest.rsplit_once('@') {
                Some((_, host)) if scheme.is_empty() => format!("***@{host}"),
                Some((_, host)) => format!("{scheme}://***@{host}"),
                None => url.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

const PUBLISH_RETRY_MIN: Duration = Duration::from_millis(50);
const PUBLISH_RETRY_MAX: Duration = Duration::from_secs(1);

impl JetStreamBus {
    /// Connects to `url` without credentials; see [`JetStreamBus::connect_with`].
    pub async fn connect(url: &str, config: JetStreamConfig) -> Result<Self, BusError> {
        JetStreamBus::connect_with(url, async_nats::ConnectOptions::new(), config).await
    }

    /// Connects as a service configured by `MEND_NATS_*`: authentication and TLS from
    /// [`mend_runtime::nats::connect_options`], stream replicas from `MEND_NATS_REPLICAS`.
    /// Every service binary and `mend up --nats` connect through here.
    pub async fn connect_configured(
        nats: &mend_runtime::config::NatsConfig,
    ) -> Result<Self, BusError> {
        let options = mend_runtime::nats::connect_options(nats)
            .await
            .map_err(|error| BusError::Connect {
                url: redact_userinfo(&nats.url),
                reason: format!("invalid NATS settings (MEND_NATS_*): {error}"),
            })?;
        let config = JetStreamConfig {
            replicas: nats.replicas,
            ..JetStreamConfig::default()
        };
        JetStreamBus::connect_with(&nats.url, options, config).await
    }

    /// Connects to `url` with `options` carrying authentication and TLS (services build
    /// them from their config in one place), reconnecting forever after a first success
    /// with at most ~1 s between attempts, and makes sure the streams exist.
    ///
    /// The first connect is not retried, so wrong credentials or an unreachable server
    /// fail start-up with a clear error instead of hanging.
    pub async fn connect_with(
        url: &str,
        options: async_nats::ConnectOptions,
        config: JetStreamConfig,
    ) -> Result<Self, BusError> {
        let client = options
            .name("mend")
            .connection_timeout(config.request_timeout)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(100)
                    .saturating_mul(u32::try_from(attempts).unwrap_or(u32::MAX))
                    .min(Duration::from_secs(1))
            })
            .event_callback(|event| async move {
                tracing::info!(%event, "nats connection event");
            })
            .connect(url)
            .await
            .map_err(|error| BusError::Connect {
                url: redact_userinfo(url),
                reason: connect_reason(&error),
            })?;
        JetStreamBus::from_client(client, config).await
    }

    /// Uses an existing client (for custom auth or TLS) and makes sure the streams exist.
    pub async fn from_client(
        client: async_nats::Client,
        config: JetStreamConfig,
    ) -> Result<Self, BusError> {
        let mut js = jetstream::new(client.clone());
        js.set_timeout(config.request_timeout);
        let bus = JetStreamBus {
            client,
            js,
            config: Arc::new(config),
        };
        bus.ensure_streams().await?;
        Ok(bus)
    }

    /// Creates or updates `MEND_EVENTS`, `MEND_DATA` and `MEND_DEADLETTER`.
    pub async fn ensure_streams(&self) -> Result<(), BusError> {
        let configs = streams::stream_configs(
            &self.config.events,
            &self.config.data,
            &self.config.deadletter,
            self.config.replicas,
        );
        for config in &configs {
            streams::ensure_stream(&self.js, config).await?;
        }
        Ok(())
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &Context {
        &self.js
    }

    pub fn config(&self) -> &JetStreamConfig {
        &self.config
    }

    /// Sends once and waits for the acknowledgement.
    async fn publish_once(
        &self,
        subject: &str,
        publish: Publish,
    ) -> Result<jetstream::publish::PublishAck, String> {
        let ack = self
            .js
            .send_publish(subject.to_owned(), publish)
            .await
            .map_err(|error| error.to_string())?;
        ack.await.map_err(|error| error.to_string())
    }
}

#[async_trait]
impl Bus for JetStreamBus {
    async fn publish(
        &self,
        subject: &str,
        message: OutgoingMessage,
    ) -> Result<PublishReceipt, BusError> {
        let prepared = prepare_publish(subject, message)?;
        // NATS closes the connection of a client that publishes over `max_payload`.
        let max_payload = self.client.server_info().max_payload;
        let bytes = prepared.payload.len() + prepared.headers.approximate_len();
        if max_payload > 0 && bytes > max_payload {
            return Err(BusError::TooLarge {
                subject: subject.to_owned(),
                bytes,
                max: max_payload,
            });
        }
        let publish = Publish::build()
            .payload(prepared.payload)
            .headers(headers::to_nats_headers(&prepared.headers));
        let started = Instant::now();
        let mut attempts = 0_u32;
        let mut delay = PUBLISH_RETRY_MIN;
        loop {
            attempts += 1;
            // Same headers (so the same Nats-Msg-Id) every attempt: the stream stores it once.
            match self.publish_once(subject, publish.clone()).await {
                Ok(ack) => {
                    if attempts > 1 {
                        tracing::info!(subject, attempts, "published after retrying");
                    }
                    return Ok(PublishReceipt {
                        stream: ack.stream,
                        sequence: ack.sequence,
                        duplicate: ack.duplicate,
                    });
                }
                Err(reason) => {
                    let waited = started.elapsed();
                    if waited >= self.config.publish_retry_for {
                        return Err(BusError::Publish {
                            subject: subject.to_owned(),
                            attempts,
                            waited,
                            reason,
                        });
                    }
                    tracing::warn!(subject, attempts, %reason, "publish failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(PUBLISH_RETRY_MAX);
                }
            }
        }
    }

    async fn consume(&self, spec: ConsumerSpec) -> Result<Subscription, BusError> {
        consumer::subscribe(&self.js, spec).await
    }

    async fn delete_consumer(&self, spec: &ConsumerSpec) -> Result<(), BusError> {
        consumer::delete(&self.js, spec).await
    }
}

#[cfg(test)]
mod tests {
    use super::redact_userinfo;

    #[test]
    fn connect_errors_never_carry_url_credentials() {
        assert_eq!(
            redact_userinfo("nats://u:p@a:4222,tls://tok@b:4222,c:4222,d@e:4222"),
            "nats://***@a:4222,tls://***@b:4222,c:4222,***@e:4222"
        );
    }
}
