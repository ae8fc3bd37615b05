//! The three JetStream streams and their retention limits, created or updated idempotently.

use std::time::Duration;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::{Context, CreateStreamErrorKind, GetStreamErrorKind};
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};

use crate::error::BusError;
use crate::subjects;

/// Retention of one stream: messages older than `max_age` or beyond `max_bytes` are
/// dropped (oldest first); ids seen within `duplicate_window` are stored once.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamLimits {
    pub max_age: Duration,
    pub max_bytes: i64,
    pub duplicate_window: Duration,
}

const DAY: Duration = Duration::from_secs(24 * 3600);
const GIB: i64 = 1024 * 1024 * 1024;

impl StreamLimits {
    pub fn events_default() -> Self {
        StreamLimits {
            max_age: 30 * DAY,
            max_bytes: GIB,
            duplicate_window: Duration::from_secs(120),
        }
    }

    pub fn data_default() -> Self {
        StreamLimits {
            max_age: 30 * DAY,
            max_bytes: 10 * GIB,
            duplicate_window: Duration::from_secs(120),
        }
    }

    pub fn deadletter_default() -> Self {
        StreamLimits {
            max_age: 30 * DAY,
            max_bytes: GIB / 4,
            duplicate_window: Duration::from_secs(120),
        }
    }
}

/// The stream configurations mend needs, with `replicas` copies each (3 in a cluster).
pub(crate) fn stream_configs(
    events: &StreamLimits,
    data: &StreamLimits,
    deadletter: &StreamLimits,
    replicas: usize,
) -> Vec<stream::Config> {
    let config = |name: &str, description: &str, subjects: &[&str], limits: &StreamLimits| {
        stream::Config {
            name: name.to_owned(),
            description: Some(description.to_owned()),
            subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            discard: DiscardPolicy::Old,
            max_age: limits.max_age,
            max_bytes: limits.max_bytes,
            duplicate_window: limits.duplicate_window,
            num_replicas: replicas,
            // Lets the data log read single messages from any replica.
            allow_direct: true,
            ..stream::Config::default()
        }
    };
    vec![
        config(
            subjects::EVENTS_STREAM,
            "mend events: drift, retrain, model lifecycle, alerts",
            subjects::EVENTS_STREAM_SUBJECTS,
            events,
        ),
        config(
            subjects::DATA_STREAM,
            "mend data log: rows, labels, predictions",
            subjects::DATA_STREAM_SUBJECTS,
            data,
        ),
        config(
            subjects::DEADLETTER_STREAM,
            "mend dead letters: messages that could not be decoded or handled",
            subjects::DEADLETTER_STREAM_SUBJECTS,
            deadletter,
        ),
    ]
}

/// Creates the stream, or updates it when it exists with another configuration; a stream
/// that already has it is left alone. Safe to run from several services at once.
///
/// The stream is looked up first because the server checks the storage a create or update
/// would reserve even when nothing changes: on a server short of space a restarted service
/// would otherwise fail on the very stream it created before.
pub(crate) async fn ensure_stream(js: &Context, config: &stream::Config) -> Result<(), BusError> {
    let failed = |reason: String| BusError::Stream {
        stream: config.name.clone(),
        reason,
    };
    match js.get_stream(&config.name).await {
        Ok(existing) => {
            if has_settings(&existing.cached_info().config, config) {
                return Ok(());
            }
            return update(js, config).await;
        }
        Err(error) => {
            let missing = matches!(
                error.kind(),
                GetStreamErrorKind::JetStream(ref api)
                    if api.error_code() == ErrorCode::STREAM_NOT_FOUND
            );
            if !missing {
                return Err(failed(error.to_string()));
            }
        }
    }
    match js.create_stream(config.clone()).await {
        Ok(_) => Ok(()),
        Err(error) => {
            let code = match error.kind() {
                CreateStreamErrorKind::JetStream(ref api) => Some(api.error_code()),
                _ => None,
            };
            match code {
                // Another service created it between our lookup and our create.
                Some(ErrorCode::STREAM_NAME_EXIST) => update(js, config).await,
                Some(code) => Err(failed(explain(code, error.to_string(), config))),
                None => Err(failed(error.to_string())),
            }
        }
    }
}

async fn update(js: &Context, config: &stream::Config) -> Result<(), BusError> {
    tracing::info!(stream = %config.name, "updating stream configuration");
    match js.update_stream(config).await {
        Ok(_) => Ok(()),
        Err(error) => {
            let reason = match error.kind() {
                async_nats::jetstream::context::UpdateStreamErrorKind::JetStream(ref api) => {
                    explain(api.error_code(), error.to_string(), config)
                }
                _ => error.to_string(),
            };
            Err(BusError::Stream {
                stream: config.name.clone(),
                reason,
            })
        }
    }
}

/// Whether `current` already has every setting mend manages in `wanted`.
fn has_settings(current: &stream::Config, wanted: &stream::Config) -> bool {
    let mut current_subjects = current.subjects.clone();
    let mut wanted_subjects = wanted.subjects.clone();
    current_subjects.sort();
    wanted_subjects.sort();
    current_subjects == wanted_subjects
        && current.description == wanted.description
        && current.retention == wanted.retention
        && current.storage == wanted.storage
        && current.discard == wanted.discard
        && current.max_age == wanted.max_age
        && current.max_bytes == wanted.max_bytes
        && current.duplicate_window == wanted.duplicate_window
        && current.num_replicas.max(1) == wanted.num_replicas.max(1)
        && current.allow_direct == wanted.allow_direct
}

/// Adds what to do to the server's terse refusal when the stream's limits do not fit.
fn explain(code: ErrorCode, reason: String, config: &stream::Config) -> String {
    if code == ErrorCode::STORAGE_RESOURCES_EXCEEDED || code == ErrorCode::INSUFFICIENT_RESOURCES {
        format!(
            "{reason}; the stream reserves max_bytes {} x {} replica(s) of JetStream file storage: \
             raise the server's jetstream max_file_store (it defaults to 75% of the free disk) \
             or free disk space",
            config.max_bytes,
            config.num_replicas.max(1)
        )
    } else {
        reason
    }
}
