//! Typed public events: the [`Event`] enum, its [`Envelope`] (id, time, model) and the JSON
//! codec.
//!
//! On the wire an event is one flat JSON object: `"v"` (schema version), `"id"`, `"time"`
//! (RFC 3339) and the payload's fields; the model is the last token of the subject. `id` and
//! `time` may be left out by a person typing `nats pub`: decoding then fills them in.

mod types;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use types::{
    Alert, DataWindow, Decision, DriftDetected, DriftKind, FeatureDrift, Metrics, ModelPromoted,
    ModelRejected, ModelRolledBack, ModelTrained, RetrainDecided, RetrainRequested, Severity,
};

use crate::error::DecodeError;
use crate::subjects::{ModelName, SubjectKind};

/// The newest event schema version this build reads and the one it writes.
pub const EVENT_VERSION: u64 = 1;

const FIELD_VERSION: &str = "v";
const FIELD_ID: &str = "id";
const FIELD_TIME: &str = "time";

/// One public event with its payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    DriftDetected(DriftDetected),
    RetrainRequested(RetrainRequested),
    ModelTrained(ModelTrained),
    ModelRejected(ModelRejected),
    ModelPromoted(ModelPromoted),
    ModelRolledBack(ModelRolledBack),
    RetrainDecided(RetrainDecided),
    Alert(Alert),
}

impl Event {
    /// The subject family this event is published on.
    pub fn kind(&self) -> SubjectKind {
        match self {
            Event::DriftDetected(_) => SubjectKind::DriftDetected,
            Event::RetrainRequested(_) => SubjectKind::RetrainRequested,
            Event::ModelTrained(_) => SubjectKind::ModelTrained,
            Event::ModelRejected(_) => SubjectKind::ModelRejected,
            Event::ModelPromoted(_) => SubjectKind::ModelPromoted,
            Event::ModelRolledBack(_) => SubjectKind::ModelRolledBack,
            Event::RetrainDecided(_) => SubjectKind::RetrainDecided,
            Event::Alert(_) => SubjectKind::Alert,
        }
    }

    fn to_value(&self) -> Result<Value, serde_json::Error> {
        match self {
            Event::DriftDetected(body) => serde_json::to_value(body),
            Event::RetrainRequested(body) => serde_json::to_value(body),
            Event::ModelTrained(body) => serde_json::to_value(body),
            Event::ModelRejected(body) => serde_json::to_value(body),
            Event::ModelPromoted(body) => serde_json::to_value(body),
            Event::ModelRolledBack(body) => serde_json::to_value(body),
            Event::RetrainDecided(body) => serde_json::to_value(body),
            Event::Alert(body) => serde_json::to_value(body),
        }
    }

    fn from_value(kind: SubjectKind, value: Value) -> Result<Event, DecodeError> {
        Ok(match kind {
            SubjectKind::DriftDetected => Event::DriftDetected(body(value)?),
            SubjectKind::RetrainRequested => Event::RetrainRequested(body(value)?),
            SubjectKind::ModelTrained => Event::ModelTrained(body(value)?),
            SubjectKind::ModelRejected => Event::ModelRejected(body(value)?),
            SubjectKind::ModelPromoted => Event::ModelPromoted(body(value)?),
            SubjectKind::ModelRolledBack => Event::ModelRolledBack(body(value)?),
            SubjectKind::RetrainDecided => Event::RetrainDecided(body(value)?),
            SubjectKind::Alert => Event::Alert(body(value)?),
            SubjectKind::Rows | SubjectKind::Labels | SubjectKind::Predictions => {
                return Err(DecodeError::NotAnEventSubject(kind.prefix().to_owned()));
            }
        })
    }
}

fn body<T: DeserializeOwned>(value: Value) -> Result<T, DecodeError> {
    // serde names the field in its message ("missing field `reason`").
    serde_json::from_value(value).map_err(|error| DecodeError::Body(error.to_string()))
}

macro_rules! impl_from_body {
    ($($variant:ident),*) => {$(
        impl From<$variant> for Event {
            fn from(body: $variant) -> Self {
                Event::$variant(body)
            }
        }
    )*};
}
impl_from_body!(
    DriftDetected,
    RetrainRequested,
    ModelTrained,
    ModelRejected,
    ModelPromoted,
    ModelRolledBack,
    RetrainDecided,
    Alert
);

/// An event for one model, with its id (also the `Nats-Msg-Id`, so a retried publish is
/// stored once, and the key handlers deduplicate on) and the time it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub id: String,
    pub time: OffsetDateTime,
    pub model: ModelName,
    pub event: Event,
}

impl Envelope {
    /// A new event happening now, with a fresh unique id.
    pub fn new(model: ModelName, event: impl Into<Event>) -> Self {
        Envelope {
            id: new_event_id(),
            time: OffsetDateTime::now_utc(),
            model,
            event: event.into(),
        }
    }

    /// The subject to publish on, e.g. `model.promoted.churn`.
    pub fn subject(&self) -> String {
        self.event.kind().subject(&self.model)
    }

    /// The wire form: one flat JSON object with `v`, `id`, `time` and the payload's fields.
    pub fn encode(&self) -> Result<Bytes, serde_json::Error> {
        let mut object = match self.event.to_value()? {
            Value::Object(object) => object,
            // Every payload is a struct, so this is unreachable; keep the codec total anyway.
            other => {
                let mut object = Map::new();
                object.insert("payload".to_owned(), other);
                object
            }
        };
        object.insert(FIELD_VERSION.to_owned(), Value::from(EVENT_VERSION));
        object.insert(FIELD_ID.to_owned(), Value::from(self.id.clone()));
        let time = self
            .time
            .format(&Rfc3339)
            .map_err(serde::ser::Error::custom)?;
        object.insert(FIELD_TIME.to_owned(), Value::from(time));
        serde_json::to_vec(&object).map(Bytes::from)
    }

    /// Decodes an event received on `subject`. A missing `id` gets a fresh one and a missing
    /// `time` is now; consumers use [`Envelope::decode_with`] to make both stable across
    /// redeliveries.
    pub fn decode(subject: &str, payload: &[u8]) -> Result<Self, DecodeError> {
        Envelope::decode_with(subject, payload, new_event_id, OffsetDateTime::now_utc())
    }

    /// Decodes with the id and time to use when the payload has none (for a delivered message:
    /// its `Nats-Msg-Id` or stream position, and the time it was stored).
    pub fn decode_with(
        subject: &str,
        payload: &[u8],
        fallback_id: impl FnOnce() -> String,
        fallback_time: OffsetDateTime,
    ) -> Result<Self, DecodeError> {
        let (kind, model) = SubjectKind::parse(subject)
            .ok_or_else(|| DecodeError::NotAnEventSubject(subject.to_owned()))?;
        let value: Value = serde_json::from_slice(payload)
            .map_err(|error| DecodeError::NotJson(error.to_string()))?;
        let Value::Object(object) = value else {
            return Err(DecodeError::NotAnObject);
        };
        check_version(object.get(FIELD_VERSION))?;
        let id = match object.get(FIELD_ID) {
            None | Some(Value::Null) => fallback_id(),
            Some(Value::String(id)) if !id.trim().is_empty() => id.clone(),
            Some(other) => {
                return Err(DecodeError::InvalidField {
                    field: FIELD_ID,
                    reason: format!("expected a non-empty string, got {other}"),
                });
            }
        };
        let time = match object.get(FIELD_TIME) {
            None | Some(Value::Null) => fallback_time,
            Some(Value::String(text)) => {
                OffsetDateTime::parse(text, &Rfc3339).map_err(|error| {
                    DecodeError::InvalidField {
                        field: FIELD_TIME,
                        reason: format!("expected an RFC 3339 time: {error}"),
                    }
                })?
            }
            Some(other) => {
                return Err(DecodeError::InvalidField {
                    field: FIELD_TIME,
                    reason: format!("expected an RFC 3339 string, got {other}"),
                });
            }
        };
        let event = Event::from_value(kind, Value::Object(object))?;
        Ok(Envelope {
            id,
            time,
            model,
            event,
        })
    }
}

fn check_version(version: Option<&Value>) -> Result<(), DecodeError> {
    let Some(version) = version else {
        return Err(DecodeError::MissingVersion);
    };
    match version.as_u64() {
        Some(0) | None => Err(DecodeError::InvalidVersion(version.to_string())),
        Some(found) if found > EVENT_VERSION => Err(DecodeError::VersionTooNew {
            found,
            supported: EVENT_VERSION,
        }),
        Some(_) => Ok(()),
    }
}

/// A fresh, unique, URL-safe event id.
pub fn new_event_id() -> String {
    nuid::next().to_string()
}

#[cfg(test)]
mod tests;
