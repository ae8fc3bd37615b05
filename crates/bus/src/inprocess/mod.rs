//! The in-process bus of the embedded default (`mend up`): the same delivery semantics as
//! JetStream, inside one process and in memory.
//!
//! Durable consumers keep their position for the life of the bus; each sees every stored
//! message on its subjects once, unacked deliveries come back after the ack wait (or the
//! backoff delay), a nak comes back at once or after its delay, a term never, and no message
//! is delivered more than `max_deliver` times. Message ids dedupe within a window.

mod state;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

pub use state::InProcessConfig;
use state::{Next, Settle, State};

use crate::bus::{Bus, ConsumerSpec, Subscription, prepare_publish};
use crate::error::BusError;
use crate::message::{Acker, Delivery, OutgoingMessage, PublishReceipt};

/// A bus inside one process. Cheap to clone; clones share the messages and consumers.
#[derive(Clone, Default)]
pub struct InProcessBus {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    config: InProcessConfig,
    state: Mutex<State>,
    /// Woken whenever something may have become deliverable (publish, nak, close).
    changed: Notify,
    closed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for InProcessBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessBus")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock, and the state stays consistent between
        // statements, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl InProcessBus {
    pub fn new(config: InProcessConfig) -> Self {
        InProcessBus {
            shared: Arc::new(Shared {
                config,
                ..Shared::default()
            }),
        }
    }

    /// Ends every subscription (their `next` returns `None`); later publishes fail.
    pub fn close(&self) {
        self.shared
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.shared.changed.notify_waiters();
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn publish(
        &self,
        subject: &str,
        message: OutgoingMessage,
    ) -> Result<PublishReceipt, BusError> {
        if self.shared.is_closed() {
            return Err(BusError::Closed);
        }
        let prepared = prepare_publish(subject, message)?;
        let (sequence, duplicate) = self.shared.lock().append(
            &self.shared.config,
            Instant::now(),
            prepared.stream,
            prepared.msg_id,
            subject.to_owned(),
            prepared.headers,
            prepared.payload,
        );
        if !duplicate {
            self.shared.changed.notify_waiters();
        }
        Ok(PublishReceipt {
            stream: prepared.stream.to_owned(),
            sequence,
            duplicate,
        })
    }

    async fn consume(&self, spec: ConsumerSpec) -> Result<Subscription, BusError> {
        spec.validate()?;
        if self.shared.is_closed() {
            return Err(BusError::Closed);
        }
        let durable = spec.durable.clone();
        self.shared.lock().upsert_consumer(spec);
        let shared = Arc::clone(&self.shared);
        let deliveries =
            futures::stream::unfold((shared, durable.clone()), |(shared, durable)| async move {
                let delivery = next_delivery(&shared, &durable).await?;
                Some((delivery, (shared, durable)))
            });
        Ok(Subscription::new(durable, deliveries))
    }
}

/// Waits for the next delivery of `durable`; `None` once the bus is closed.
async fn next_delivery(shared: &Arc<Shared>, durable: &str) -> Option<Delivery> {
    loop {
        // Registered before looking, so a publish between the look and the wait still wakes us.
        let changed = shared.changed.notified();
        if shared.is_closed() {
            return None;
        }
        let next = shared.lock().next_delivery(durable, Instant::now());
        let wait_until = match next {
            Next::Deliver { message, delivered } => {
                return Some(Delivery {
                    subject: message.subject,
                    headers: message.headers,
                    payload: message.payload,
                    delivered,
                    stream: message.stream.to_owned(),
                    stream_sequence: message.stream_sequence,
                    published: message.published,
                    acker: Box::new(InProcessAcker {
                        shared: Arc::clone(shared),
                        durable: durable.to_owned(),
                        position: message.position,
                    }),
                });
            }
            Next::WaitUntil(at) => at,
            Next::UnknownConsumer => return None,
        };
        match wait_until {
            Some(at) => {
                tokio::select! {
                    () = changed => {}
                    () = tokio::time::sleep_until(at) => {}
                }
            }
            None => changed.await,
        }
    }
}

struct InProcessAcker {
    shared: Arc<Shared>,
    durable: String,
    position: u64,
}

impl InProcessAcker {
    fn settle(&self, settle: Settle) {
        let wake = self
            .shared
            .lock()
            .settle(&self.durable, self.position, settle, Instant::now());
        if wake {
            self.shared.changed.notify_waiters();
        }
    }
}

#[async_trait]
impl Acker for InProcessAcker {
    async fn ack(&self) -> Result<(), BusError> {
        self.settle(Settle::Ack);
        Ok(())
    }

    async fn nak(&self, delay: Option<Duration>) -> Result<(), BusError> {
        self.settle(Settle::Nak(delay));
        Ok(())
    }

    async fn term(&self) -> Result<(), BusError> {
        self.settle(Settle::Term);
        Ok(())
    }

    async fn in_progress(&self) -> Result<(), BusError> {
        self.settle(Settle::InProgress);
        Ok(())
    }
}
