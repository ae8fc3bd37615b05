//! Scheduled retrains: every interval, a `retrain.requested.<model>` with reason `schedule`
//! is published, on interval boundaries and with the boundary in its id, so several trainer
//! replicas publish it once (the bus drops duplicate message ids).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mend_bus::events::RetrainRequested;
use mend_bus::{Bus, Envelope, ModelName, publish_event};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::trigger::SCHEDULE_REASON;

/// Publishes scheduled requests for every model until shutdown.
pub async fn run_schedules(
    bus: Arc<dyn Bus>,
    schedules: BTreeMap<ModelName, Duration>,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    for (model, every) in schedules {
        tracker.spawn(schedule_one(
            Arc::clone(&bus),
            model,
            every,
            shutdown.clone(),
        ));
    }
    tracker.close();
    tracker.wait().await;
}

async fn schedule_one(
    bus: Arc<dyn Bus>,
    model: ModelName,
    every: Duration,
    shutdown: CancellationToken,
) {
    let every_ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX).max(1);
    loop {
        let now_ms = u64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(u64::MAX);
        let slot = now_ms / every_ms + 1;
        let wait = Duration::from_millis(slot.saturating_mul(every_ms).saturating_sub(now_ms));
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let mut envelope = Envelope::new(
            model.clone(),
            RetrainRequested {
                reason: SCHEDULE_REASON.to_owned(),
                window: None,
                requested_by: Some("mend-trainer schedule".to_owned()),
            },
        );
        envelope.id = format!("schedule-{model}-{slot}");
        match publish_event(bus.as_ref(), &envelope).await {
            Ok(_) => tracing::info!(%model, slot, "scheduled retrain requested"),
            Err(error) => tracing::warn!(%model, %error, "could not request the scheduled retrain"),
        }
    }
}
