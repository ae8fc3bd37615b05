//! The in-process bus's bookkeeping: the message log, the duplicate window and each durable
//! consumer's position and unsettled deliveries. Pure data, driven by `mod.rs` under a lock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::bus::ConsumerSpec;
use crate::message::Headers;
use crate::subjects;

/// A stored message. `position` orders all messages of the bus; `stream_sequence` numbers
/// them per stream, as JetStream does.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub position: u64,
    pub stream: &'static str,
    pub stream_sequence: u64,
    pub subject: String,
    pub headers: Headers,
    pub payload: Bytes,
    pub published: OffsetDateTime,
    pub stored_at: Instant,
}

/// A delivery waiting to be settled; it is delivered again at `due` unless settled first.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pending {
    pub delivered: u64,
    pub due: Instant,
}

#[derive(Debug)]
pub(super) struct ConsumerState {
    pub spec: ConsumerSpec,
    /// The next log position this consumer has not yet looked at.
    pub next_position: u64,
    /// Unsettled deliveries by log position.
    pub pending: BTreeMap<u64, Pending>,
}

/// Retention limits, the in-process counterpart of the JetStream stream limits.
#[derive(Debug, Clone)]
pub struct InProcessConfig {
    /// A message id seen within this window is not stored again.
    pub duplicate_window: Duration,
    /// Oldest messages are dropped beyond this many.
    pub max_messages: usize,
    /// Messages older than this are dropped.
    pub max_age: Duration,
}

impl Default for InProcessConfig {
    fn default() -> Self {
        InProcessConfig {
            duplicate_window: Duration::from_secs(120),
            max_messages: 100_000,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The outcome of looking for the next delivery of a consumer.
#[derive(Debug)]
pub(super) enum Next {
    Deliver {
        message: Stored,
        delivered: u64,
    },
    /// Nothing now; something may become due at this instant.
    WaitUntil(Option<Instant>),
    UnknownConsumer,
}

#[derive(Debug, Default)]
pub(super) struct State {
    log: VecDeque<Stored>,
    next_position: u64,
    stream_sequences: HashMap<&'static str, u64>,
    /// (stream, msg id) → stream sequence and when it was stored.
    recent_ids: HashMap<(&'static str, String), (u64, Instant)>,
    recent_order: VecDeque<(Instant, &'static str, String)>,
    pub consumers: HashMap<String, ConsumerState>,
}

impl State {
    /// Stores a message unless its id is in the duplicate window; returns the stream
    /// sequence and whether it was a duplicate.
    #[allow(clippy::too_many_arguments)]
    pub fn append(
        &mut self,
        config: &InProcessConfig,
        now: Instant,
        stream: &'static str,
        msg_id: String,
        subject: String,
        headers: Headers,
        payload: Bytes,
    ) -> (u64, bool) {
        self.expire_ids(config, now);
        if let Some((sequence, _)) = self.recent_ids.get(&(stream, msg_id.clone())) {
            return (*sequence, true);
        }
        let sequence = self.stream_sequences.entry(stream).or_insert(0);
        *sequence += 1;
        let stream_sequence = *sequence;
        self.recent_ids
            .insert((stream, msg_id.clone()), (stream_sequence, now));
        self.recent_order.push_back((now, stream, msg_id));
        self.log.push_back(Stored {
            position: self.next_position,
            stream,
            stream_sequence,
            subject,
            headers,
            payload,
            published: OffsetDateTime::now_utc(),
            stored_at: now,
        });
        self.next_position += 1;
        self.trim_log(config, now);
        (stream_sequence, false)
    }

    fn expire_ids(&mut self, config: &InProcessConfig, now: Instant) {
        while let Some((stored_at, stream, msg_id)) = self.recent_order.front() {
            if now.duration_since(*stored_at) < config.duplicate_window {
                break;
            }
            self.recent_ids.remove(&(*stream, msg_id.clone()));
            self.recent_order.pop_front();
        }
    }

    fn trim_log(&mut self, config: &InProcessConfig, now: Instant) {
        while let Some(oldest) = self.log.front() {
            let too_many = self.log.len() > config.max_messages;
            let too_old = now.duration_since(oldest.stored_at) >= config.max_age;
            if !too_many && !too_old {
                break;
            }
            self.log.pop_front();
        }
    }

    /// Creates the consumer, or updates its spec and keeps its position.
    pub fn upsert_consumer(&mut self, spec: ConsumerSpec) {
        match self.consumers.get_mut(&spec.durable) {
            Some(consumer) => consumer.spec = spec,
            None => {
                self.consumers.insert(
                    spec.durable.clone(),
                    ConsumerState {
                        spec,
                        next_position: 0,
                        pending: BTreeMap::new(),
                    },
                );
            }
        }
    }

    /// Picks the next delivery for `durable`: first a due redelivery (oldest first), then the
    /// next new message on its subjects.
    pub fn next_delivery(&mut self, durable: &str, now: Instant) -> Next {
        let Some(consumer) = self.consumers.get_mut(durable) else {
            return Next::UnknownConsumer;
        };
        let first_position = self.log.front().map_or(self.next_position, |m| m.position);

        let due: Vec<u64> = consumer
            .pending
            .iter()
            .filter(|(_, pending)| pending.due <= now)
            .map(|(position, _)| *position)
            .collect();
        for position in due {
            let Some(pending) = consumer.pending.get(&position).copied() else {
                continue;
            };
            let exhausted = consumer
                .spec
                .max_deliver
                .is_some_and(|max| pending.delivered >= u64::from(max));
            if exhausted || position < first_position {
                // Out of attempts, or dropped by retention: the consumer moves on.
                consumer.pending.remove(&position);
                continue;
            }
            let delivered = pending.delivered + 1;
            consumer.pending.insert(
                position,
                Pending {
                    delivered,
                    due: now + consumer.spec.redelivery_delay(delivered),
                },
            );
            let Some(message) = message_at(&self.log, position) else {
                consumer.pending.remove(&position);
                continue;
            };
            return Next::Deliver {
                message: message.clone(),
                delivered,
            };
        }

        let mut position = consumer.next_position.max(first_position);
        while position < self.next_position {
            let Some(message) = message_at(&self.log, position) else {
                break;
            };
            position += 1;
            let wanted = consumer
                .spec
                .filter_subjects
                .iter()
                .any(|filter| subjects::matches(filter, &message.subject));
            if wanted {
                consumer.next_position = position;
                consumer.pending.insert(
                    message.position,
                    Pending {
                        delivered: 1,
                        due: now + consumer.spec.redelivery_delay(1),
                    },
                );
                return Next::Deliver {
                    message: message.clone(),
                    delivered: 1,
                };
            }
        }
        consumer.next_position = position;
        Next::WaitUntil(consumer.pending.values().map(|pending| pending.due).min())
    }

    /// Applies a settlement to one unsettled delivery. Returns whether the consumer may have
    /// something to deliver now (so waiting subscriptions should look again).
    pub fn settle(&mut self, durable: &str, position: u64, settle: Settle, now: Instant) -> bool {
        let Some(consumer) = self.consumers.get_mut(durable) else {
            return false;
        };
        match settle {
            Settle::Ack | Settle::Term => {
                consumer.pending.remove(&position);
                false
            }
            Settle::Nak(delay) => match consumer.pending.get_mut(&position) {
                Some(pending) => {
                    pending.due = now + delay.unwrap_or(Duration::ZERO);
                    true
                }
                None => false,
            },
            Settle::InProgress => {
                if let Some(pending) = consumer.pending.get_mut(&position) {
                    pending.due = now + consumer.spec.redelivery_delay(pending.delivered);
                }
                false
            }
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.log.len()
    }
}

fn message_at(log: &VecDeque<Stored>, position: u64) -> Option<&Stored> {
    let first = log.front()?.position;
    let index = usize::try_from(position.checked_sub(first)?).ok()?;
    log.get(index)
}

/// How a delivery was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Settle {
    Ack,
    Nak(Option<Duration>),
    Term,
    InProgress,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn append(state: &mut State, now: Instant, id: &str, subject: &str) -> (u64, bool) {
        state.append(
            &InProcessConfig::default(),
            now,
            "MEND_EVENTS",
            id.into(),
            subject.into(),
            Headers::new(),
            Bytes::from_static(b"{}"),
        )
    }

    fn delivered(next: Next) -> (String, u64) {
        match next {
            Next::Deliver { message, delivered } => (message.subject, delivered),
            other => panic!("expected a delivery, got {other:?}"),
        }
    }

    #[test]
    fn each_durable_sees_each_matching_message_once_in_order() {
        let now = Instant::now();
        let mut state = State::default();
        append(&mut state, now, "1", "alert.a");
        append(&mut state, now, "2", "model.promoted.a");
        append(&mut state, now, "3", "alert.b");
        state.upsert_consumer(ConsumerSpec::new("alerts", ["alert.*"]));
        state.upsert_consumer(ConsumerSpec::new("all", ["alert.>", "model.>"]));

        assert_eq!(delivered(state.next_delivery("alerts", now)).0, "alert.a");
        assert_eq!(delivered(state.next_delivery("alerts", now)).0, "alert.b");
        assert!(matches!(
            state.next_delivery("alerts", now),
            Next::WaitUntil(Some(_))
        ));
        let subjects: Vec<String> = (0..3)
            .map(|_| delivered(state.next_delivery("all", now)).0)
            .collect();
        assert_eq!(subjects, ["alert.a", "model.promoted.a", "alert.b"]);
    }

    #[test]
    fn unsettled_deliveries_come_back_until_max_deliver() {
        let now = Instant::now();
        let mut state = State::default();
        append(&mut state, now, "1", "alert.a");
        let spec = ConsumerSpec::new("c", ["alert.*"])
            .ack_wait(Duration::from_secs(1))
            .max_deliver(Some(2));
        state.upsert_consumer(spec);
        assert_eq!(delivered(state.next_delivery("c", now)).1, 1);
        assert!(matches!(
            state.next_delivery("c", now),
            Next::WaitUntil(Some(_))
        ));
        let later = now + Duration::from_secs(1);
        assert_eq!(delivered(state.next_delivery("c", later)).1, 2);
        let much_later = later + Duration::from_secs(1);
        assert!(matches!(
            state.next_delivery("c", much_later),
            Next::WaitUntil(None)
        ));
    }

    #[test]
    fn nak_redelivers_and_ack_or_term_settle() {
        let now = Instant::now();
        let mut state = State::default();
        append(&mut state, now, "1", "alert.a");
        append(&mut state, now, "2", "alert.b");
        state.upsert_consumer(ConsumerSpec::new("c", ["alert.*"]));
        let Next::Deliver { message, .. } = state.next_delivery("c", now) else {
            panic!()
        };
        assert!(state.settle("c", message.position, Settle::Nak(None), now));
        assert_eq!(
            delivered(state.next_delivery("c", now)),
            ("alert.a".into(), 2)
        );
        state.settle("c", message.position, Settle::Ack, now);
        let Next::Deliver { message, .. } = state.next_delivery("c", now) else {
            panic!()
        };
        assert_eq!(message.subject, "alert.b");
        state.settle("c", message.position, Settle::Term, now);
        assert!(matches!(
            state.next_delivery("c", now),
            Next::WaitUntil(None)
        ));
    }

    #[test]
    fn duplicate_ids_are_stored_once_within_the_window() {
        let now = Instant::now();
        let mut state = State::default();
        assert_eq!(append(&mut state, now, "same", "alert.a"), (1, false));
        assert_eq!(append(&mut state, now, "same", "alert.a"), (1, true));
        assert_eq!(state.len(), 1);
        let after_window = now + Duration::from_secs(121);
        assert_eq!(
            append(&mut state, after_window, "same", "alert.a"),
            (2, false)
        );
    }

    #[test]
    fn retention_drops_the_oldest_and_consumers_skip_them() {
        let now = Instant::now();
        let mut state = State::default();
        let config = InProcessConfig {
            max_messages: 2,
            ..InProcessConfig::default()
        };
        for id in ["1", "2", "3"] {
            state.append(
                &config,
                now,
                "MEND_EVENTS",
                id.into(),
                format!("alert.m{id}"),
                Headers::new(),
                Bytes::new(),
            );
        }
        state.upsert_consumer(ConsumerSpec::new("c", ["alert.*"]));
        assert_eq!(state.len(), 2);
        assert_eq!(delivered(state.next_delivery("c", now)).0, "alert.m2");
        assert_eq!(delivered(state.next_delivery("c", now)).0, "alert.m3");
    }
}
