//! Hot swap: two ways the server learns that a champion moved, both ending in
//! [`ModelStore::reconcile`], which asks the source (the truth) and swaps atomically.
//!
//! - Events: a durable consumer of `model.promoted.*` and `model.rolled_back.*`. Events are
//!   hints only: the handler does not trust the version in them beyond skipping a swap that
//!   already happened, and starts serving a model it did not know only when the registry
//!   says that model has a champion (a forged event adds nothing).
//! - A reconcile loop on an interval, so a missed event cannot leave a model stale. While the
//!   server is not ready yet (source down at start) it retries faster.
//!
//! The consumer is durable and named per replica (`mend-server-<instance>`): the bus offers
//! durable consumers only, and a name shared by replicas would split the events between them
//! like a work queue, leaving every replica but one stale until its next reconcile. Replicas
//! come and go under an autoscaler, so the consumer must not outlive its replica: it is
//! deleted on graceful shutdown, and JetStream deletes it by itself after
//! [`CONSUMER_INACTIVE_THRESHOLD`] without a pull (a replica that was killed). Losing it costs
//! nothing: events are notifications, and a new consumer starts with the reconcile loop.

use std::sync::Arc;
use std::time::Duration;

use mend_bus::events::Event;
use mend_bus::{
    Bus, BusError, ConsumerSpec, Envelope, EventSubscription, HandlerError, SubjectKind,
    run_event_loop,
};
use tokio_util::sync::CancellationToken;

use crate::model::ModelStore;
use crate::source::SourceError;

/// The first retry while nothing is loaded; doubles up to the reconcile interval.
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// A replica's event consumer is deleted by JetStream after this long without a pull. A live
/// replica always has a pull waiting, so this only ever removes the consumers of replicas that
/// died; long enough that a replica cut off from NATS for a while finds its consumer again.
pub const CONSUMER_INACTIVE_THRESHOLD: Duration = Duration::from_secs(3600);
/// How long graceful shutdown waits for the consumer's deletion (the threshold cleans up
/// whatever a slow or absent NATS leaves behind).
const DELETE_CONSUMER_TIMEOUT: Duration = Duration::from_secs(2);

/// Whose consumer it is: one replica's is `mend-server-<instance>` ([`mend_bus::consumer_name`]).
pub const CONSUMER_PREFIX: &str = "mend-server";

/// Reconciles every served model now: discovers new models (when not configured), then
/// swaps each one whose champion moved. Failures are logged; the current models keep serving.
pub async fn reconcile_all(store: &ModelStore) {
    if store.discovers()
        && let Err(error) = store.discover().await
    {
        tracing::warn!(%error, "could not list models; keeping the ones served");
    }
    for entry in store.entries() {
        match store.reconcile(&entry).await {
            Ok(Some(version)) => {
                tracing::debug!(model = %entry.name, version, "reconciled to a new champion");
            }
            Ok(None) => {}
            Err(SourceError::NotFound(reason)) => {
                tracing::debug!(model = %entry.name, %reason, "no champion to serve yet");
            }
            Err(error) => {
                tracing::warn!(model = %entry.name, %error, "reconcile failed; still serving what is loaded");
            }
        }
    }
}

/// Reconciles on `interval` until `shutdown` (faster, with backoff, until ready).
pub async fn reconcile_loop(
    store: Arc<ModelStore>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut retry = FIRST_RETRY;
    loop {
        reconcile_all(&store).await;
        let wait = if store.is_ready() {
            retry = FIRST_RETRY;
            interval
        } else {
            let wait = retry.min(interval);
            retry = (retry * 2).min(interval);
            wait
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// The event consumer of the replica whose consumer is named `durable`.
pub fn consumer_spec(durable: String) -> ConsumerSpec {
    ConsumerSpec::new(
        durable,
        [
            SubjectKind::ModelPromoted.all_models(),
            SubjectKind::ModelRolledBack.all_models(),
        ],
    )
    .ack_wait(Duration::from_secs(30))
    .max_deliver(Some(3))
    .batch(16)
    .inactive_threshold(Some(CONSUMER_INACTIVE_THRESHOLD))
}

/// Follows promotions and rollbacks on the bus until `shutdown`, then deletes this replica's
/// consumer.
pub async fn follow_events(
    bus: Arc<dyn Bus>,
    store: Arc<ModelStore>,
    durable: String,
    shutdown: CancellationToken,
) -> Result<(), BusError> {
    let spec = consumer_spec(durable);
    let subscription = EventSubscription::subscribe(Arc::clone(&bus), spec.clone()).await?;
    tracing::info!("following model promotions and rollbacks");
    run_event_loop(
        subscription,
        shutdown.clone(),
        move |envelope: Envelope, _delivered: u64| {
            let store = Arc::clone(&store);
            async move {
                on_event(&store, &envelope).await;
                Ok::<(), HandlerError>(())
            }
        },
    )
    .await;
    if shutdown.is_cancelled() {
        delete_consumer(bus.as_ref(), &spec).await;
    }
    Ok(())
}

/// Removes the replica's consumer on the way out; a failure only leaves it to the
/// inactivity threshold.
async fn delete_consumer(bus: &dyn Bus, spec: &ConsumerSpec) {
    match tokio::time::timeout(DELETE_CONSUMER_TIMEOUT, bus.delete_consumer(spec)).await {
        Ok(Ok(())) => tracing::info!(durable = %spec.durable, "deleted the event consumer"),
        Ok(Err(error)) => {
            tracing::warn!(durable = %spec.durable, %error, "could not delete the event consumer; it expires when inactive");
        }
        Err(_) => {
            tracing::warn!(durable = %spec.durable, "deleting the event consumer timed out; it expires when inactive");
        }
    }
}

/// Swaps if the event names a version other than the one served. Never fails the event: if
/// the source is down now, the reconcile loop catches up later. Its span is a child of the
/// event's, so the swap ends the trace of the heal that promoted the version.
#[tracing::instrument(name = "swap_on_event", skip_all, fields(model = %envelope.model, event_id = %envelope.id))]
async fn on_event(store: &ModelStore, envelope: &Envelope) {
    let announced = match &envelope.event {
        Event::ModelPromoted(promoted) => promoted.version,
        Event::ModelRolledBack(rolled_back) => rolled_back.to_version,
        _ => return,
    };
    // Events are hints (anyone who may publish can send one): a model is only added when the
    // registry says it has a champion, and what is served is whatever the registry says.
    let entry = match store.ensure_known(envelope.model.as_str()).await {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            tracing::info!(model = %envelope.model, announced, event_id = %envelope.id, "ignored a champion event for a model the registry has no champion for");
            return;
        }
        Err(error) => {
            tracing::warn!(model = %envelope.model, announced, %error, "could not check a champion event with the registry; the reconcile loop will");
            return;
        }
    };
    if entry
        .champion()
        .is_some_and(|champion| champion.version == announced)
    {
        return;
    }
    match store.reconcile(&entry).await {
        Ok(swapped) => {
            tracing::debug!(model = %entry.name, announced, ?swapped, event_id = %envelope.id, "handled champion event");
        }
        Err(error) => {
            tracing::warn!(model = %entry.name, announced, %error, "could not swap on event; the reconcile loop will retry");
        }
    }
}
