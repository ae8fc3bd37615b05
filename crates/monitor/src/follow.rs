//! Following champion moves: a durable consumer of `model.promoted.*` and
//! `model.rolled_back.*` per replica (`mend-monitor-<instance>`), which wakes the loop of the
//! model that moved so it switches its reference at once. The periodic champion check
//! catches whatever a bus outage made this miss (the registry's alias is the truth).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mend_bus::{
    Bus, BusError, ConsumerSpec, Envelope, EventSubscription, HandlerError, SubjectKind,
    run_event_loop,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A failed subscription is retried after this long.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(2);

/// The durable consumer name of one replica.
pub fn consumer_name(instance: &str) -> String {
    format!("mend-monitor-{instance}")
}

/// Follows champion moves until `shutdown`; a bus that is down at start is retried.
pub(crate) async fn follow_champions(
    bus: Arc<dyn Bus>,
    wake: Arc<HashMap<String, Arc<Notify>>>,
    durable: String,
    shutdown: CancellationToken,
) {
    loop {
        match follow_once(
            Arc::clone(&bus),
            Arc::clone(&wake),
            durable.clone(),
            shutdown.clone(),
        )
        .await
        {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "could not follow model promotions; retrying (champions are still re-checked)");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(RESUBSCRIBE_AFTER) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

async fn follow_once(
    bus: Arc<dyn Bus>,
    wake: Arc<HashMap<String, Arc<Notify>>>,
    durable: String,
    shutdown: CancellationToken,
) -> Result<(), BusError> {
    let spec = ConsumerSpec::new(
        durable,
        [
            SubjectKind::ModelPromoted.all_models(),
            SubjectKind::ModelRolledBack.all_models(),
        ],
    )
    .ack_wait(Duration::from_secs(30))
    .max_deliver(Some(3))
    .batch(16);
    let subscription = EventSubscription::subscribe(bus, spec).await?;
    run_event_loop(subscription, shutdown, move |envelope: Envelope, _delivered: u64| {
        let wake = Arc::clone(&wake);
        async move {
            if let Some(notify) = wake.get(envelope.model.as_str()) {
                tracing::info!(model = %envelope.model, event_id = %envelope.id, "champion moved; re-checking it");
                // `notify_one` keeps a permit when the loop is busy, so the move is not lost.
                notify.notify_one();
            }
            Ok::<(), HandlerError>(())
        }
    })
    .await;
    Ok(())
}
