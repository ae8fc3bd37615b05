//! The trainer's durable consumer of `drift.detected.*` and `retrain.requested.*`.
//!
//! Deliveries are handled concurrently (a burst must reach the per-model queue together to
//! be coalesced), and each is settled only when the run covering it has a durable outcome:
//! acked once the version is registered and the champion moved (or not), dead-lettered when
//! the retrain was given up. While it waits, the delivery's ack deadline is extended.

use std::sync::Arc;
use std::time::Duration;

use mend_bus::events::{Event, Severity};
use mend_bus::{Bus, BusError, ConsumerSpec, EventDelivery, EventSubscription, SubjectKind};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::alerts;
use crate::flight::Flights;
use crate::heal::RunOutcome;
use crate::trigger::RetrainTrigger;

/// Deliveries of one trigger before it is given up (a trainer that crashes on it each time).
const MAX_DELIVER: u32 = 20;
/// Triggers pulled ahead, so a burst can be coalesced.
const BATCH: usize = 32;

/// The consumer spec the trainer uses. `ack_wait` is how long a delivery may stay unsettled
/// before the bus hands it out again: a live trainer extends it while the run goes on, so it
/// bounds how long the triggers of a crashed trainer wait for the next one.
pub fn consumer_spec(durable: &str, ack_wait: Duration) -> ConsumerSpec {
    ConsumerSpec::new(
        durable,
        [
            SubjectKind::DriftDetected.all_models(),
            SubjectKind::RetrainRequested.all_models(),
        ],
    )
    .ack_wait(ack_wait)
    .max_deliver(Some(MAX_DELIVER))
    .batch(BATCH)
}

/// Subscribes (so the caller knows the consumer exists before it returns).
pub async fn subscribe(
    bus: Arc<dyn Bus>,
    durable: &str,
    ack_wait: Duration,
) -> Result<EventSubscription, BusError> {
    EventSubscription::subscribe(bus, consumer_spec(durable, ack_wait)).await
}

/// Feeds triggers to the flights until shutdown, then waits for the deliveries in hand to
/// be settled.
pub async fn consume(
    mut subscription: EventSubscription,
    bus: Arc<dyn Bus>,
    flights: Flights,
    ack_wait: Duration,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => break,
            next = subscription.next() => next,
        };
        let Some(event) = next else { break };
        let span = event.span();
        let Some(trigger) = RetrainTrigger::from_envelope(&event.envelope) else {
            // The filter admits only triggers; anything else is not ours to keep.
            if let Err(error) = event.ack().await {
                tracing::warn!(%error, "could not ack a non-trigger event");
            }
            continue;
        };
        let model = event.envelope.model.clone();
        if let Event::DriftDetected(drift) = &event.envelope.event
            && event.delivered() == 1
        {
            let text = format!(
                "{model}: {:?} drift detected ({:.0}% of features drifted); retraining",
                drift.kind,
                drift.dataset_share * 100.0
            )
            .to_lowercase();
            alerts::raise(
                bus.as_ref(),
                &model,
                Severity::Warning,
                text,
                Some(event.envelope.id.clone()),
                &format!("drift-{}", event.envelope.id),
            )
            .await;
        }
        tracing::info!(parent: &span, kind = trigger.kind.as_str(), reason = %trigger.reason, "retrain trigger received");
        let outcome = flights.submit(&model, trigger, span.clone());
        tracker.spawn(settle(event, outcome, ack_wait).instrument(span));
    }
    tracker.close();
    tracker.wait().await;
}

/// Waits for the outcome of the run covering a delivery, then settles it.
async fn settle(
    event: EventDelivery,
    mut outcome: oneshot::Receiver<RunOutcome>,
    ack_wait: Duration,
) {
    let result = loop {
        tokio::select! {
            result = &mut outcome => break result,
            () = tokio::time::sleep(ack_wait / 3) => {
                if let Err(error) = event.in_progress().await {
                    tracing::warn!(%error, "could not extend the ack deadline");
                }
            }
        }
    };
    let settled = match result {
        Ok(RunOutcome::Failed { reason }) => event.reject(&reason).await,
        Ok(outcome) => {
            tracing::info!(?outcome, "trigger settled");
            event.ack().await
        }
        // The trainer is stopping before the run finished: let the bus hand it out again.
        Err(_) => event.nak(Some(Duration::from_secs(1))).await,
    };
    if let Err(error) = settled {
        tracing::warn!(%error, "could not settle trigger; it will be redelivered");
    }
}
