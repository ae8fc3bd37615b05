//! Errors of the bus, the event codec and the data log, one enum per concern.
//!
//! NATS client errors are carried as text: their generic kinds would otherwise leak
//! async-nats types into every service's signatures.

use std::time::Duration;

/// Why a publish, a consumer or a stream operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("invalid subject {subject:?}: {reason}")]
    InvalidSubject { subject: String, reason: String },
    #[error("invalid model name {name:?}: use 1 to 64 characters of [A-Za-z0-9_-]")]
    InvalidModelName { name: String },
    #[error("invalid consumer {durable:?}: {reason}")]
    InvalidConsumer { durable: String, reason: String },
    #[error("no stream stores subject {subject:?}")]
    NoStream { subject: String },
    #[error("failed to connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("failed to publish on {subject} after {attempts} attempts over {waited:?}: {reason}")]
    Publish {
        subject: String,
        attempts: u32,
        waited: Duration,
        reason: String,
    },
    #[error("failed to set up stream {stream}: {reason}")]
    Stream { stream: String, reason: String },
    #[error("failed to set up consumer {durable}: {reason}")]
    Consumer { durable: String, reason: String },
    #[error("failed to {action} message: {reason}")]
    Ack {
        action: &'static str,
        reason: String,
    },
    #[error("failed to encode event: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(
        "message on {subject} is {bytes} bytes; the NATS server takes at most {max} (max_payload)"
    )]
    TooLarge {
        subject: String,
        bytes: usize,
        max: usize,
    },
    #[error("the bus is closed")]
    Closed,
}

/// Why an event payload could not be decoded. The text names the offending field.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("an event must be a JSON object")]
    NotAnObject,
    #[error("missing field `v` (the event schema version, e.g. \"v\": 1)")]
    MissingVersion,
    #[error("field `v` must be a positive integer, got {0}")]
    InvalidVersion(String),
    #[error("event version {found} is newer than the newest supported ({supported}); upgrade mend")]
    VersionTooNew { found: u64, supported: u64 },
    #[error("field `{field}`: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("{0}")]
    Body(String),
    #[error("subject {0:?} does not carry a mend event")]
    NotAnEventSubject(String),
}

/// Why the data log could not append or read.
#[derive(Debug, thiserror::Error)]
pub enum DataLogError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("failed to create data dir {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("failed to encode record: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("jetstream data log: {0}")]
    JetStream(String),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("data log worker failed: {0}")]
    Worker(String),
    /// An entry larger than the log can carry (the NATS server's `max_payload`, less room
    /// for headers): refused before anything of the append is stored.
    #[error(
        "entry {index} is {bytes} bytes; the data log takes at most {max} per entry (the NATS server's max_payload)"
    )]
    TooLarge {
        index: usize,
        bytes: usize,
        max: usize,
    },
}
