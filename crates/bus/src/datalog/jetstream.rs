//! The data log over JetStream stream `MEND_DATA`: one message per record on
//! `data.rows.<m>`, `data.labels.<m>` or `predictions.<m>`; the stream sequence is the log
//! sequence.
//!
//! Appends are pipelined (many publishes in flight, then their acks) with a message id per
//! record, so a record retried after a lost ack is stored once. Reads create a short-lived
//! consumer (no acks, in memory) that starts at the window's first sequence or time and stops
//! at its end or at what was pending when the read began.
//!
//! Each appended message carries the appending span's `traceparent` header (when that span
//! is traced), and reads hand it back on the entry.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::context::Publish;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use time::OffsetDateTime;

use super::{DataKind, DataLog, Range, RawEntry, Stored, Window};
use crate::bus::Bus;
use crate::error::DataLogError;
use crate::jetstream::JetStreamBus;
use crate::message::{Headers, OutgoingMessage, header};
use crate::subjects::{DATA_STREAM, ModelName};
use crate::trace;

/// Publishes in flight at once during an append.
const APPEND_IN_FLIGHT: usize = 512;
/// Messages per fetch during a read.
const READ_BATCH: usize = 1000;
/// How long one fetched message may take to arrive before the read fails.
const READ_MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// The data log over JetStream. Cheap to clone.
#[derive(Clone, Debug)]
pub struct JetStreamDataLog {
    bus: JetStreamBus,
}

impl JetStreamDataLog {
    /// Uses the bus's connection; the bus has already made sure `MEND_DATA` exists.
    pub fn new(bus: JetStreamBus) -> Self {
        JetStreamDataLog { bus }
    }

    async fn stream(&self) -> Result<Stream, DataLogError> {
        self.bus
            .jetstream()
            .get_stream(DATA_STREAM)
            .await
            .map_err(|error| DataLogError::JetStream(format!("get stream {DATA_STREAM}: {error}")))
    }

    /// A consumer over `subject` from `deliver`, and how many messages it had pending.
    async fn reader(
        &self,
        stream: &Stream,
        subject: &str,
        deliver: DeliverPolicy,
    ) -> Result<(PullConsumer, u64), DataLogError> {
        let consumer: PullConsumer = stream
            .create_consumer(pull::Config {
                deliver_policy: deliver,
                ack_policy: AckPolicy::None,
                filter_subject: subject.to_owned(),
                inactive_threshold: Duration::from_secs(60),
                memory_storage: true,
                ..pull::Config::default()
            })
            .await
            .map_err(|error| DataLogError::JetStream(format!("create reader: {error}")))?;
        let pending = consumer.cached_info().num_pending;
        Ok((consumer, pending))
    }

    async fn drop_reader(stream: &Stream, consumer: &PullConsumer) {
        let name = consumer.cached_info().name.clone();
        if let Err(error) = stream.delete_consumer(&name).await {
            // It expires by itself after its inactive threshold.
            tracing::debug!(%error, consumer = %name, "could not delete data-log reader");
        }
    }

    /// How many messages on `subject` are at or after `start`.
    async fn pending_from(
        &self,
        stream: &Stream,
        subject: &str,
        start: u64,
    ) -> Result<u64, DataLogError> {
        let (consumer, pending) = self
            .reader(
                stream,
                subject,
                DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
            )
            .await?;
        JetStreamDataLog::drop_reader(stream, &consumer).await;
        Ok(pending)
    }

    /// The first sequence of the newest `count` messages on `subject`: a binary search on
    /// "pending from here", which is monotone in the start sequence.
    async fn start_of_last(
        &self,
        stream: &Stream,
        subject: &str,
        count: u64,
    ) -> Result<u64, DataLogError> {
        let Some(last) = self.latest(stream, subject).await? else {
            return Ok(1);
        };
        if self.pending_from(stream, subject, 1).await? <= count {
            return Ok(1);
        }
        // Invariant: pending_from(low) >= count, pending_from(high + 1) < count.
        let (mut low, mut high) = (1_u64, last);
        while low < high {
            let middle = low + (high - low).div_ceil(2);
            if self.pending_from(stream, subject, middle).await? >= count {
                low = middle;
            } else {
                high = middle - 1;
            }
        }
        Ok(low)
    }

    async fn latest(&self, stream: &Stream, subject: &str) -> Result<Option<u64>, DataLogError> {
        match stream.get_last_raw_message_by_subject(subject).await {
            Ok(message) => Ok(Some(message.sequence)),
            Err(error) if matches!(error.kind(), LastRawMessageErrorKind::NoMessageFound) => {
                Ok(None)
            }
            Err(error) => Err(DataLogError::JetStream(format!(
                "last message of {subject}: {error}"
            ))),
        }
    }

    /// Appends one record through the bus's retrying publish (same message id; the bus adds
    /// the current trace context itself).
    async fn append_one_with_retry(
        &self,
        subject: &str,
        payload: Bytes,
        msg_id: String,
    ) -> Result<Stored, DataLogError> {
        let receipt = self
            .bus
            .publish(subject, OutgoingMessage::new(payload).with_msg_id(msg_id))
            .await?;
        Ok(Stored {
            seq: receipt.sequence,
            duplicate: receipt.duplicate,
        })
    }
}

/// The current span's W3C trace context as NATS headers, built once per append; `None`
/// when the span is not traced (then messages carry no trace headers at all).
fn current_trace_headers() -> Option<async_nats::HeaderMap> {
    let mut headers = Headers::new();
    trace::inject_current(&mut headers);
    if headers.is_empty() {
        return None;
    }
    let mut map = async_nats::HeaderMap::new();
    // An empty `tracestate` says nothing; every row would carry it for nothing.
    for (name, value) in headers.iter().filter(|(_, value)| !value.is_empty()) {
        map.insert(name, value);
    }
    Some(map)
}

/// Room left in each message for its headers (message id, trace context) and subject.
const HEADER_ROOM: usize = 4096;

/// The message id of a keyed entry: the subject names the model and kind, and the key is
/// hashed so any key (a row id may be long) makes a short id.
fn dedup_msg_id(subject: &str, key: &str) -> String {
    let digest = mend_core::sha256_hex(format!("{subject}\u{1f}{key}").as_bytes());
    format!("rec-{}", &digest[..32])
}

fn millis(time: OffsetDateTime) -> i64 {
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn time_from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[async_trait]
impl DataLog for JetStreamDataLog {
    fn max_entry_bytes(&self) -> Option<usize> {
        let max_payload = self.bus.client().server_info().max_payload;
        // 0: no INFO seen yet; the server default (1 MiB) is the safe assumption.
        let max_payload = if max_payload == 0 {
            1 << 20
        } else {
            max_payload
        };
        Some(max_payload.saturating_sub(HEADER_ROOM))
    }

    /// A keyed entry's `Nats-Msg-Id` is derived from its model, kind and key, so a retried
    /// record is stored once within the stream's duplicate window (JetStream answers the
    /// retry with the first copy's sequence); an entry without a key gets a fresh id.
    async fn append_keyed(
        &self,
        model: &ModelName,
        kind: DataKind,
        entries: Vec<(Bytes, Option<String>)>,
    ) -> Result<Vec<Stored>, DataLogError> {
        // NATS closes the connection of a client that publishes over `max_payload`: refuse
        // such an entry here, before anything of the append is stored.
        if let Some(max) = self.max_entry_bytes()
            && let Some((index, (payload, _))) = entries
                .iter()
                .enumerate()
                .find(|(_, (payload, _))| payload.len() > max)
        {
            return Err(DataLogError::TooLarge {
                index,
                bytes: payload.len(),
                max,
            });
        }
        let subject = kind.subject(model);
        let js = self.bus.jetstream();
        let trace_headers = current_trace_headers();
        let mut sequences = Vec::with_capacity(entries.len());
        for chunk in entries.chunks(APPEND_IN_FLIGHT) {
            let ids: Vec<String> = chunk
                .iter()
                .map(|(_, key)| match key {
                    Some(key) => dedup_msg_id(&subject, key),
                    None => crate::events::new_event_id(),
                })
                .collect();
            let mut in_flight = Vec::with_capacity(chunk.len());
            for ((payload, _), id) in chunk.iter().zip(&ids) {
                let mut publish = Publish::build().payload(payload.clone());
                // `headers` replaces the map, so the message id goes in after it.
                if let Some(headers) = &trace_headers {
                    publish = publish.headers(headers.clone());
                }
                let publish = publish.message_id(id);
                in_flight.push(js.send_publish(subject.clone(), publish).await.ok());
            }
            for ((ack, (payload, _)), id) in in_flight.into_iter().zip(chunk).zip(ids) {
                let stored = match ack {
                    Some(ack) => ack.await.ok().map(|ack| Stored {
                        seq: ack.sequence,
                        duplicate: ack.duplicate,
                    }),
                    None => None,
                };
                let stored = match stored {
                    Some(stored) => stored,
                    // Lost in a disconnect: retry with the same id, stored at most once.
                    None => {
                        self.append_one_with_retry(&subject, payload.clone(), id)
                            .await?
                    }
                };
                sequences.push(stored);
            }
        }
        Ok(sequences)
    }

    async fn read_raw(
        &self,
        model: &ModelName,
        kind: DataKind,
        window: &Window,
    ) -> Result<Vec<RawEntry>, DataLogError> {
        let subject = kind.subject(model);
        let stream = self.stream().await?;
        let max_entries = window.max_entries();
        if max_entries == 0 {
            return Ok(Vec::new());
        }
        let (deliver, stop_seq, stop_ms) = match window.range {
            Range::Sequence { from, to } => (
                DeliverPolicy::ByStartSequence {
                    start_sequence: from.max(1),
                },
                to,
                None,
            ),
            Range::Time { from_ms, to_ms } => (
                DeliverPolicy::ByStartTime {
                    start_time: time_from_ms(from_ms),
                },
                None,
                to_ms,
            ),
            Range::Last { .. } => {
                let count = u64::try_from(max_entries).unwrap_or(u64::MAX);
                let start = self.start_of_last(&stream, &subject, count).await?;
                (
                    DeliverPolicy::ByStartSequence {
                        start_sequence: start,
                    },
                    None,
                    None,
                )
            }
        };
        if stop_seq.is_some_and(|to| to < 1) {
            return Ok(Vec::new());
        }
        let (consumer, pending) = self.reader(&stream, &subject, deliver).await?;
        let wanted = usize::try_from(pending)
            .unwrap_or(usize::MAX)
            .min(max_entries);
        let result = read_until(&consumer, wanted, stop_seq, stop_ms).await;
        JetStreamDataLog::drop_reader(&stream, &consumer).await;
        result
    }

    async fn latest_seq(
        &self,
        model: &ModelName,
        kind: DataKind,
    ) -> Result<Option<u64>, DataLogError> {
        let stream = self.stream().await?;
        self.latest(&stream, &kind.subject(model)).await
    }
}

/// Fetches up to `wanted` messages in order, stopping past `stop_seq` or at `stop_ms`.
async fn read_until(
    consumer: &PullConsumer,
    wanted: usize,
    stop_seq: Option<u64>,
    stop_ms: Option<i64>,
) -> Result<Vec<RawEntry>, DataLogError> {
    let mut entries = Vec::with_capacity(wanted.min(READ_BATCH * 100));
    while entries.len() < wanted {
        let mut batch = consumer
            .fetch()
            .max_messages((wanted - entries.len()).min(READ_BATCH))
            .messages()
            .await
            .map_err(|error| DataLogError::JetStream(format!("fetch: {error}")))?;
        let before = entries.len();
        loop {
            let next = tokio::time::timeout(READ_MESSAGE_TIMEOUT, batch.next())
                .await
                .map_err(|_| DataLogError::JetStream("timed out reading the data log".into()))?;
            let Some(message) = next else {
                break;
            };
            let message =
                message.map_err(|error| DataLogError::JetStream(format!("read: {error}")))?;
            let info = message
                .info()
                .map_err(|error| DataLogError::JetStream(format!("message info: {error}")))?;
            let seq = info.stream_sequence;
            let appended_ms = millis(info.published);
            let past_end =
                stop_seq.is_some_and(|to| seq > to) || stop_ms.is_some_and(|to| appended_ms >= to);
            if past_end {
                return Ok(entries);
            }
            let traceparent = message
                .message
                .headers
                .as_ref()
                .and_then(|headers| headers.get(header::TRACEPARENT))
                .map(|value| value.as_str().to_owned());
            entries.push(RawEntry {
                seq,
                appended_ms,
                payload: message.message.payload.clone(),
                traceparent,
            });
            if entries.len() >= wanted {
                return Ok(entries);
            }
        }
        if entries.len() == before {
            // Nothing more came (messages expired by retention meanwhile): the window is done.
            break;
        }
    }
    Ok(entries)
}
