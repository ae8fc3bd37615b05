//! Forwarding `alert.<model>` events to webhooks: a JSON body with a Slack-compatible
//! `text`, signed with `X-Mend-Signature: sha256=<HMAC-SHA256 of the body>`, each POST under
//! a timeout and retried with backoff. An alert is acked once every webhook took it; when one
//! keeps failing, the alert is redelivered later by the bus.

mod hmac;
mod http;

use std::sync::Arc;
use std::time::Duration;

use mend_bus::events::{Event, Severity};
use mend_bus::{
    Bus, ConsumerSpec, Envelope, EventSubscription, HandlerError, SubjectKind, run_event_loop,
};
use mend_runtime::Secret;
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub use hmac::{hmac_sha256, signature};
pub use http::{HttpError, HttpUrl, post_json};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Mend-Signature";
/// First pause between attempts of one POST; doubles after each.
const RETRY_DELAY: Duration = Duration::from_millis(200);

/// Where alerts go and how hard to try.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub urls: Vec<HttpUrl>,
    /// Signs bodies when set.
    pub secret: Option<Secret>,
    pub timeout: Duration,
    pub attempts: u32,
}

/// Per-attempt timeout of a webhook POST by default, in ms (`config::defaults` re-exports it).
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// Attempts per webhook and alert by default (`config::defaults` re-exports it).
pub const DEFAULT_ATTEMPTS: u32 = 3;

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            urls: Vec::new(),
            secret: None,
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
            attempts: DEFAULT_ATTEMPTS,
        }
    }
}

/// The JSON body of an alert: Slack reads `text`; the rest is for machines.
pub fn alert_body(envelope: &Envelope) -> Option<Vec<u8>> {
    let Event::Alert(alert) = &envelope.event else {
        return None;
    };
    let icon = match alert.severity {
        Severity::Info => ":information_source:",
        Severity::Warning => ":warning:",
        Severity::Critical => ":rotating_light:",
    };
    let body = json!({
        "text": format!("{icon} [mend] {}", alert.text),
        "model": envelope.model.as_str(),
        "severity": alert.severity,
        "source": alert.source,
        "event_id": envelope.id,
        "related_event_id": alert.related_event_id,
    });
    serde_json::to_vec(&body).ok()
}

/// POSTs a body to every webhook, each retried up to `attempts` times.
pub async fn deliver(config: &WebhookConfig, body: &[u8]) -> Result<(), HttpError> {
    let mut headers = Vec::new();
    if let Some(secret) = &config.secret {
        headers.push((
            SIGNATURE_HEADER,
            signature(secret.expose().as_bytes(), body),
        ));
    }
    for url in &config.urls {
        let mut delay = RETRY_DELAY;
        let mut attempt = 1;
        loop {
            match post_json(url, body, &headers, config.timeout).await {
                Ok(_) => break,
                Err(error) if attempt >= config.attempts => return Err(error),
                Err(error) => {
                    tracing::warn!(%url, attempt, %error, "webhook post failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
            }
        }
    }
    Ok(())
}

/// Consumes every `alert.*` event (whoever raised it) and forwards it, until shutdown.
pub async fn forward_alerts(
    bus: Arc<dyn Bus>,
    durable: String,
    config: WebhookConfig,
    shutdown: CancellationToken,
) -> Result<(), mend_bus::BusError> {
    let spec = ConsumerSpec::new(durable, [SubjectKind::Alert.all_models()])
        .ack_wait(
            config.timeout * config.attempts.max(1) * (config.urls.len().max(1) as u32)
                + Duration::from_secs(30),
        )
        .max_deliver(Some(10))
        .backoff(vec![
            Duration::from_secs(5),
            Duration::from_secs(30),
            Duration::from_secs(120),
        ]);
    let subscription = EventSubscription::subscribe(bus, spec).await?;
    let config = Arc::new(config);
    run_event_loop(
        subscription,
        shutdown,
        move |envelope: Envelope, _delivered: u64| {
            let config = Arc::clone(&config);
            async move {
                let Some(body) = alert_body(&envelope) else {
                    return Ok(());
                };
                deliver(&config, &body)
                    .await
                    .map_err(|error| HandlerError::retry(error.to_string()))
            }
        },
    )
    .await;
    Ok(())
}
