//! Following promotions and rollbacks: a durable consumer of `model.promoted.*` and
//! `model.rolled_back.*` per replica (`mend-ingest-<instance>`: a shared name would split the
//! events between replicas), which tells the schema cache to re-check that model. The
//! cache's time to live catches whatever an outage of the bus made this miss.

use std::sync::Arc;
use std::time::Duration;

use mend_bus::{
    Bus, BusError, ConsumerSpec, Envelope, EventSubscription, HandlerError, SubjectKind,
    follow_forever, run_event_loop,
};
use tokio_util::sync::CancellationToken;

use crate::schema_source::SchemaCache;

/// Whose consumer it is: one replica's is `mend-ingest-<instance>` ([`mend_bus::consumer_name`]).
pub const CONSUMER_PREFIX: &str = "mend-ingest";

/// Follows champion moves until `shutdown`; a bus that is down at start is retried.
pub async fn follow_champions(
    bus: Arc<dyn Bus>,
    schemas: Arc<SchemaCache>,
    durable: String,
    shutdown: CancellationToken,
) {
    follow_forever(
        shutdown.clone(),
        "could not follow model promotions; retrying (schemas still expire)",
        || {
            follow_once(
                Arc::clone(&bus),
                Arc::clone(&schemas),
                durable.clone(),
                shutdown.clone(),
            )
        },
    )
    .await;
}

/// How long a replica's consumer may go without a pull before JetStream deletes it (a live
/// replica always has a pull waiting).
const CONSUMER_INACTIVE_THRESHOLD: Duration = Duration::from_secs(3600);

async fn follow_once(
    bus: Arc<dyn Bus>,
    schemas: Arc<SchemaCache>,
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
    .batch(16)
    // The durable is per replica: one that is gone (scaled down, rescheduled under another
    // name) must not leave its consumer behind in JetStream forever.
    .inactive_threshold(Some(CONSUMER_INACTIVE_THRESHOLD));
    let subscription = EventSubscription::subscribe(bus, spec).await?;
    run_event_loop(subscription, shutdown, move |envelope: Envelope, _delivered: u64| {
        let schemas = Arc::clone(&schemas);
        async move {
            tracing::debug!(model = %envelope.model, event_id = %envelope.id, "champion moved; re-checking its schema");
            schemas.invalidate(&envelope.model);
            Ok::<(), HandlerError>(())
        }
    })
    .await;
    Ok(())
}
