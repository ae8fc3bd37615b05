//! The data log: rows, labels and predictions per model, appended in order and read back by
//! window.
//!
//! - [`DataLog`]: the object-safe trait (raw JSON payloads), with [`DataLogExt`] adding typed
//!   `append_rows` / `read_rows` / … over `mend_core::record`.
//! - `sqlite.rs`: [`SqliteDataLog`], the embedded default (one file in the data dir).
//! - `jetstream.rs`: [`JetStreamDataLog`] over stream `MEND_DATA` (`data.rows.<m>`, …).
//!
//! Sequence numbers come from the log and increase with append order; they are shared by
//! every model and kind, so one model's rows have gaps between them. Time windows use the
//! time the log stored an entry (`appended_ms`), which follows sequence order.
//!
//! Both logs keep the W3C `traceparent` of the span that appended each entry (JetStream in a
//! message header, SQLite in a column), so a reader acting on rows (the monitor announcing
//! drift) can continue the trace that brought them in.

mod jetstream;
mod sqlite;

use std::future::Future;

use async_trait::async_trait;
use bytes::Bytes;
use mend_core::record::{LabelRecord, PredictionRecord, RowRecord};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use jetstream::JetStreamDataLog;
pub use sqlite::SqliteDataLog;

use crate::error::DataLogError;
use crate::subjects::{ModelName, SubjectKind};

/// What a log entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataKind {
    Rows,
    Labels,
    Predictions,
}

impl DataKind {
    pub const ALL: [DataKind; 3] = [DataKind::Rows, DataKind::Labels, DataKind::Predictions];

    pub fn subject_kind(self) -> SubjectKind {
        match self {
            DataKind::Rows => SubjectKind::Rows,
            DataKind::Labels => SubjectKind::Labels,
            DataKind::Predictions => SubjectKind::Predictions,
        }
    }

    /// `data.rows.<model>`, `data.labels.<model>` or `predictions.<model>`.
    pub fn subject(self, model: &ModelName) -> String {
        self.subject_kind().subject(model)
    }
}

/// A record type the log stores.
pub trait LogRecord: Serialize + DeserializeOwned + Send + Sync + 'static {
    const KIND: DataKind;

    /// What makes a record the same record when a producer sends it again (a retried batch):
    /// the log stores a record whose key it stored within the last [`DEDUP_WINDOW`] once.
    /// `None`: every append is new.
    fn dedup_key(&self) -> Option<String> {
        None
    }
}

/// How long the log remembers a record's [`LogRecord::dedup_key`]: the same as the NATS
/// streams' duplicate window, so both logs answer a retry alike.
pub const DEDUP_WINDOW: std::time::Duration = std::time::Duration::from_secs(120);

impl LogRecord for RowRecord {
    const KIND: DataKind = DataKind::Rows;

    /// A row is identified by its id.
    fn dedup_key(&self) -> Option<String> {
        (!self.id.is_empty()).then(|| self.id.clone())
    }
}
impl LogRecord for LabelRecord {
    const KIND: DataKind = DataKind::Labels;

    /// The same label for the same row; a corrected label (another value) is a new record.
    fn dedup_key(&self) -> Option<String> {
        (!self.row_id.is_empty()).then(|| format!("{}\u{1f}{}", self.row_id, self.label))
    }
}

/// Where an appended entry is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub seq: u64,
    /// It had been stored before under the same key (within [`DEDUP_WINDOW`]): `seq` is that
    /// earlier entry's, and nothing new was written.
    pub duplicate: bool,
}
impl LogRecord for PredictionRecord {
    const KIND: DataKind = DataKind::Predictions;
}

/// Which entries to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Range {
    /// Sequences `from..=to` (to the end when `to` is `None`).
    Sequence { from: u64, to: Option<u64> },
    /// Stored at `from_ms..to_ms` (unix milliseconds, end exclusive; open when `None`).
    Time { from_ms: i64, to_ms: Option<i64> },
    /// The newest `count` entries.
    Last { count: usize },
}

/// A read: a range and an optional cap on entries (the first `limit`, in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub range: Range,
    pub limit: Option<usize>,
}

impl Window {
    pub fn sequence(from: u64, to: Option<u64>) -> Self {
        Window {
            range: Range::Sequence { from, to },
            limit: None,
        }
    }

    pub fn time(from_ms: i64, to_ms: Option<i64>) -> Self {
        Window {
            range: Range::Time { from_ms, to_ms },
            limit: None,
        }
    }

    pub fn last(count: usize) -> Self {
        Window {
            range: Range::Last { count },
            limit: None,
        }
    }

    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The most entries this window can return.
    pub(crate) fn max_entries(&self) -> usize {
        let cap = self.limit.unwrap_or(usize::MAX);
        match self.range {
            Range::Last { count } => count.min(cap),
            _ => cap,
        }
    }
}

/// One stored entry, undecoded.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEntry {
    pub seq: u64,
    pub appended_ms: i64,
    pub payload: Bytes,
    /// The W3C `traceparent` of the span that appended the entry, when the log keeps it.
    pub traceparent: Option<String>,
}

/// One stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged<R> {
    pub seq: u64,
    pub appended_ms: i64,
    pub record: R,
    /// The W3C `traceparent` of the span that appended the record, when the log keeps it.
    pub traceparent: Option<String>,
}

/// Append-only storage of data records per model.
#[async_trait]
pub trait DataLog: Send + Sync + std::fmt::Debug {
    /// Appends payloads in order, each with an optional dedup key, and returns where each is
    /// stored, in the same order, once every entry is durably stored. A payload whose key was
    /// appended (for this model and kind) within [`DEDUP_WINDOW`] is not stored again: its
    /// earlier sequence comes back as a duplicate.
    async fn append_keyed(
        &self,
        model: &ModelName,
        kind: DataKind,
        entries: Vec<(Bytes, Option<String>)>,
    ) -> Result<Vec<Stored>, DataLogError>;

    /// The largest payload one entry may have, when the log has a limit (JetStream: the
    /// server's `max_payload` less room for headers). Larger entries are refused whole.
    fn max_entry_bytes(&self) -> Option<usize> {
        None
    }

    /// Appends payloads without keys (each one new); returns their sequence numbers.
    async fn append_raw(
        &self,
        model: &ModelName,
        kind: DataKind,
        payloads: Vec<Bytes>,
    ) -> Result<Vec<u64>, DataLogError> {
        let entries = payloads
            .into_iter()
            .map(|payload| (payload, None))
            .collect();
        let stored = self.append_keyed(model, kind, entries).await?;
        Ok(stored.into_iter().map(|stored| stored.seq).collect())
    }

    /// Entries of one model and kind inside `window`, in sequence order.
    async fn read_raw(
        &self,
        model: &ModelName,
        kind: DataKind,
        window: &Window,
    ) -> Result<Vec<RawEntry>, DataLogError>;

    /// The sequence of the newest entry of one model and kind.
    async fn latest_seq(
        &self,
        model: &ModelName,
        kind: DataKind,
    ) -> Result<Option<u64>, DataLogError>;
}

/// Typed access to any [`DataLog`].
pub trait DataLogExt: DataLog {
    /// Appends records, each stored once per [`LogRecord::dedup_key`] within
    /// [`DEDUP_WINDOW`]; returns the sequences (a duplicate's is its earlier entry's).
    fn append<'a, R: LogRecord>(
        &'a self,
        model: &'a ModelName,
        records: &'a [R],
    ) -> impl Future<Output = Result<Vec<u64>, DataLogError>> + Send + 'a {
        async move {
            let stored = self.append_deduplicated(model, records).await?;
            Ok(stored.into_iter().map(|stored| stored.seq).collect())
        }
    }

    /// [`DataLogExt::append`], telling which records were already stored.
    fn append_deduplicated<'a, R: LogRecord>(
        &'a self,
        model: &'a ModelName,
        records: &'a [R],
    ) -> impl Future<Output = Result<Vec<Stored>, DataLogError>> + Send + 'a {
        async move {
            let entries = records
                .iter()
                .map(|record| {
                    serde_json::to_vec(record)
                        .map(|payload| (Bytes::from(payload), record.dedup_key()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.append_keyed(model, R::KIND, entries).await
        }
    }

    /// Reads typed records; an entry that does not decode (published by hand, say) is
    /// skipped with a warning rather than failing the whole window.
    fn read<'a, R: LogRecord>(
        &'a self,
        model: &'a ModelName,
        window: &'a Window,
    ) -> impl Future<Output = Result<Vec<Logged<R>>, DataLogError>> + Send + 'a {
        async move {
            let entries = self.read_raw(model, R::KIND, window).await?;
            if entries.len() < DECODE_OFF_EXECUTOR {
                return Ok(decode_entries(model, &entries));
            }
            // Decoding a large window is CPU work (about a second for 100,000 rows on one
            // core): off the async executor, and in chunks on every core.
            let model = model.clone();
            tokio::task::spawn_blocking(move || {
                let chunks: Vec<&[RawEntry]> = entries.chunks(DECODE_CHUNK).collect();
                mend_core::parallel::map(&chunks, true, |chunk| decode_entries(&model, chunk))
                    .into_iter()
                    .flatten()
                    .collect()
            })
            .await
            .map_err(|error| DataLogError::Worker(format!("decoding entries failed: {error}")))
        }
    }

    fn append_rows<'a>(
        &'a self,
        model: &'a ModelName,
        rows: &'a [RowRecord],
    ) -> impl Future<Output = Result<Vec<u64>, DataLogError>> + Send + 'a {
        self.append(model, rows)
    }

    fn append_labels<'a>(
        &'a self,
        model: &'a ModelName,
        labels: &'a [LabelRecord],
    ) -> impl Future<Output = Result<Vec<u64>, DataLogError>> + Send + 'a {
        self.append(model, labels)
    }

    fn append_predictions<'a>(
        &'a self,
        model: &'a ModelName,
        predictions: &'a [PredictionRecord],
    ) -> impl Future<Output = Result<Vec<u64>, DataLogError>> + Send + 'a {
        self.append(model, predictions)
    }

    fn read_rows<'a>(
        &'a self,
        model: &'a ModelName,
        window: &'a Window,
    ) -> impl Future<Output = Result<Vec<Logged<RowRecord>>, DataLogError>> + Send + 'a {
        self.read(model, window)
    }

    fn read_labels<'a>(
        &'a self,
        model: &'a ModelName,
        window: &'a Window,
    ) -> impl Future<Output = Result<Vec<Logged<LabelRecord>>, DataLogError>> + Send + 'a {
        self.read(model, window)
    }

    fn read_predictions<'a>(
        &'a self,
        model: &'a ModelName,
        window: &'a Window,
    ) -> impl Future<Output = Result<Vec<Logged<PredictionRecord>>, DataLogError>> + Send + 'a {
        self.read(model, window)
    }
}

impl<T: DataLog + ?Sized> DataLogExt for T {}

/// Entries from which a read is decoded off the async executor, on every core.
const DECODE_OFF_EXECUTOR: usize = 2_048;
/// Entries per decoding chunk.
const DECODE_CHUNK: usize = 16_384;

/// Typed records of raw entries; an entry that does not decode (published by hand, say) is
/// skipped with a warning rather than failing the whole window.
fn decode_entries<R: LogRecord>(model: &ModelName, entries: &[RawEntry]) -> Vec<Logged<R>> {
    entries
        .iter()
        .filter_map(|entry| match serde_json::from_slice(&entry.payload) {
            Ok(record) => Some(Logged {
                seq: entry.seq,
                appended_ms: entry.appended_ms,
                record,
                traceparent: entry.traceparent.clone(),
            }),
            Err(error) => {
                tracing::warn!(%model, seq = entry.seq, %error, "skipping undecodable data-log entry");
                None
            }
        })
        .collect()
}
