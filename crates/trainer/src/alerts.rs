//! Raising `alert.<model>` events. The id of an alert is derived from what caused it, so a
//! retried or repeated step raises it once (the bus drops duplicate message ids).

use mend_bus::events::{Alert, Severity};
use mend_bus::{Bus, Envelope, ModelName, publish_event};

/// The component name alerts carry.
pub const SOURCE: &str = "trainer";

/// Publishes an alert; a failure is logged, never fatal: alerts must not stop a heal.
pub async fn raise(
    bus: &dyn Bus,
    model: &ModelName,
    severity: Severity,
    text: String,
    related_event_id: Option<String>,
    dedupe_key: &str,
) {
    let mut envelope = Envelope::new(
        model.clone(),
        Alert {
            severity,
            text: text.clone(),
            source: Some(SOURCE.to_owned()),
            related_event_id,
        },
    );
    envelope.id = format!("alert-{model}-{dedupe_key}");
    match publish_event(bus, &envelope).await {
        Ok(_) => tracing::info!(%model, ?severity, %text, "alert raised"),
        Err(error) => tracing::error!(%model, %error, %text, "could not publish alert"),
    }
}
