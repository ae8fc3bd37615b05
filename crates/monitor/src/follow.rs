//! Following the trainer's verdicts: a durable consumer of `model.promoted.*`,
//! `model.rolled_back.*` and `model.rejected.*` per replica (`mend-monitor-<instance>`). A
//! champion move wakes the loop of the model that moved so it switches its reference at
//! once; the periodic champion check catches whatever a bus outage made this miss (the
//! registry's alias is the truth). A rejection is handed to the model's loop, which re-arms
//! the open drift episodes (see [`crate::episode`]) and saves that; only then is the
//! rejection acknowledged, so a monitor that stops in between hears it again (re-arming is
//! idempotent). Events are handled concurrently, so a rejection waiting for a busy model's
//! loop does not hold back other models' events.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mend_bus::{
    Bus, BusError, ConsumerSpec, Envelope, Event, EventSubscription, HandlerError, SubjectKind,
    follow_forever, run_event_loop_concurrent,
};
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

use crate::watched::WatchedModels;

/// Events pulled at once, and handled at once at most.
const FOLLOW_BATCH: usize = 16;

/// Whose consumer it is: one replica's is `mend-monitor-<instance>` ([`mend_bus::consumer_name`]).
pub(crate) const CONSUMER_PREFIX: &str = "mend-monitor";

/// What the follower hands one model's loop.
#[derive(Debug, Default)]
pub(crate) struct Signals {
    /// Notified when the champion moved (a promotion or rollback) or a rejection waits.
    pub wake: Notify,
    /// Set by a champion move: the loop re-checks the champion.
    champion_moved: AtomicBool,
    /// Rejections not yet applied, each with the champion its candidate was meant to replace.
    rejections: Mutex<Vec<Rejection>>,
}

/// How long a rejection's handler waits for the model's loop to apply and save it before the
/// delivery is handed back to the bus.
const REJECTION_APPLY_WAIT: Duration = Duration::from_secs(10);
/// When a rejection could not be applied, the bus delivers it again after this long.
const REJECTION_RETRY: Duration = Duration::from_secs(2);

/// A rejection waiting for the model's loop.
#[derive(Debug)]
pub(crate) struct Rejection {
    /// The champion the rejected candidate was meant to replace (`None`: not named).
    pub champion_version: Option<u64>,
    /// Told whether the re-arm is durable (saved, or nothing to re-arm).
    pub applied: oneshot::Sender<bool>,
}

impl Signals {
    fn champion_moved(&self) {
        self.champion_moved.store(true, Ordering::SeqCst);
        // `notify_one` keeps a permit when the loop is busy, so the signal is not lost.
        self.wake.notify_one();
    }

    /// Hands a rejection to the loop; the receiver hears whether its re-arm is durable.
    fn rejected(&self, champion_version: Option<u64>) -> oneshot::Receiver<bool> {
        let (applied, heard) = oneshot::channel();
        if let Ok(mut rejections) = self.rejections.lock() {
            rejections.push(Rejection {
                champion_version,
                applied,
            });
        }
        self.wake.notify_one();
        heard
    }

    /// Whether the champion moved since the last call.
    pub fn take_champion_moved(&self) -> bool {
        self.champion_moved.swap(false, Ordering::SeqCst)
    }

    /// The rejections heard since the last call.
    pub fn take_rejections(&self) -> Vec<Rejection> {
        self.rejections
            .lock()
            .map(|mut rejections| std::mem::take(&mut *rejections))
            .unwrap_or_default()
    }
}

/// Follows champion moves and rejections until `shutdown`; a bus that is down at start is
/// retried.
pub(crate) async fn follow_champions(
    bus: Arc<dyn Bus>,
    wake: Arc<WatchedModels>,
    durable: String,
    shutdown: CancellationToken,
) {
    follow_forever(
        shutdown.clone(),
        "could not follow model promotions; retrying (champions are still re-checked)",
        || {
            follow_once(
                Arc::clone(&bus),
                Arc::clone(&wake),
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
    wake: Arc<WatchedModels>,
    durable: String,
    shutdown: CancellationToken,
) -> Result<(), BusError> {
    let spec = ConsumerSpec::new(
        durable,
        [
            SubjectKind::ModelPromoted.all_models(),
            SubjectKind::ModelRolledBack.all_models(),
            SubjectKind::ModelRejected.all_models(),
        ],
    )
    .ack_wait(Duration::from_secs(30))
    .max_deliver(Some(3))
    .batch(FOLLOW_BATCH)
    // The durable is per replica: one that is gone (scaled down, rescheduled under another
    // name) must not leave its consumer behind in JetStream forever.
    .inactive_threshold(Some(CONSUMER_INACTIVE_THRESHOLD));
    let subscription = EventSubscription::subscribe(bus, spec).await?;
    // Concurrent: a rejection waits (up to REJECTION_APPLY_WAIT) for its model's loop to save
    // the re-arm, which must not hold back other models' promotions and rejections.
    let handler = move |envelope: Envelope, _delivered: u64| {
        let wake = Arc::clone(&wake);
        async move {
            let signals = match &envelope.event {
                // A promotion of a model not watched yet starts its loop (when the monitor
                // discovers models or the allow-list names it); the loop finds the champion.
                Event::ModelPromoted(_) => wake.watch_promoted(&envelope.model).await,
                _ => wake.signals(envelope.model.as_str()),
            };
            let Some(signals) = signals else {
                return Ok(());
            };
            match &envelope.event {
                Event::ModelRejected(rejected) => {
                    tracing::info!(model = %envelope.model, event_id = %envelope.id, champion_version = ?rejected.champion_version, reason = %rejected.reason, "candidate rejected; re-arming open drift episodes");
                    let applied = signals.rejected(rejected.champion_version);
                    match tokio::time::timeout(REJECTION_APPLY_WAIT, applied).await {
                        Ok(Ok(true)) => {}
                        outcome => {
                            let reason = match outcome {
                                Ok(Ok(_)) => "the re-armed episodes could not be saved",
                                // Dropped unapplied: no champion known yet, or the loop stopped.
                                Ok(Err(_)) => "the model's loop could not apply it yet",
                                Err(_) => "the model's loop did not apply it in time",
                            };
                            tracing::warn!(model = %envelope.model, event_id = %envelope.id, reason, "rejection not applied; it will be delivered again");
                            return Err(HandlerError::Retry {
                                reason: reason.to_owned(),
                                delay: Some(REJECTION_RETRY),
                            });
                        }
                    }
                }
                _ => {
                    tracing::info!(model = %envelope.model, event_id = %envelope.id, "champion moved; re-checking it");
                    signals.champion_moved();
                }
            }
            Ok::<(), HandlerError>(())
        }
    };
    run_event_loop_concurrent(subscription, shutdown, handler, FOLLOW_BATCH).await;
    Ok(())
}
