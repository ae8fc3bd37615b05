//! The three JetStream streams and their retention limits, created or updated idempotently.

use std::time::Duration;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::Context;
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

/// Creates the stream, or updates it when it exists with another configuration.
/// Safe to run from several services at once.
pub(crate) async fn ensure_stream(js: &Context, config: &stream::Config) -> Result<(), BusError> {
    let failed = |reason: String| BusError::Stream {
        stream: config.name.clone(),
        reason,
    };
    match js.create_stream(config.clone()).await {
        Ok(_) => Ok(()),
        Err(error) => {
            let exists_differently = matches!(
                error.kind(),
                async_nats::jetstream::context::CreateStreamErrorKind::JetStream(ref api)
                    if api.error_code() == ErrorCode::STREAM_NAME_EXIST
            );
            if !exists_differently {
                return Err(failed(error.to_string()));
            }
            tracing::info!(stream = %config.name, "updating stream configuration");
            js.update_stream(config)
                .await
                .map(|_| ())
                .map_err(|error| failed(error.to_string()))
        }
    }
}
