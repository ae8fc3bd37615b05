//! What asks for a retrain: a drift event, a request (by a person, a tool or a schedule),
//! and how it is named in lineage.

use mend_bus::events::{DataWindow, DriftKind, Event};
use mend_bus::{Envelope, SubjectKind};
use mend_proto::registry::v1 as pb;
use time::OffsetDateTime;

/// The reason a scheduled request carries, which makes it a scheduled trigger.
pub const SCHEDULE_REASON: &str = "schedule";
/// How the reason of the trainer's own follow-up request begins (see [`crate::follow_up`]),
/// which makes it a follow-up trigger.
pub const FOLLOW_UP_REASON: &str = "follow-up";

/// Why a retrain runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    Drift,
    Forced,
    Schedule,
    /// The trainer's follow-up after a promotion for performance drift.
    FollowUp,
}

impl TriggerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Drift => "drift",
            TriggerKind::Forced => "forced",
            TriggerKind::Schedule => "schedule",
            TriggerKind::FollowUp => "follow_up",
        }
    }

    pub fn to_proto(self) -> pb::TriggerKind {
        match self {
            TriggerKind::Drift => pb::TriggerKind::Drift,
            TriggerKind::Forced => pb::TriggerKind::Forced,
            TriggerKind::Schedule => pb::TriggerKind::Schedule,
            TriggerKind::FollowUp => pb::TriggerKind::FollowUp,
        }
    }

    /// The subject family the trigger came on, for `model.trained`'s `trigger` field.
    pub fn subject_prefix(self) -> &'static str {
        match self {
            TriggerKind::Drift => SubjectKind::DriftDetected.prefix(),
            TriggerKind::Forced | TriggerKind::Schedule | TriggerKind::FollowUp => {
                SubjectKind::RetrainRequested.prefix()
            }
        }
    }
}

/// One event asking for a retrain of its model.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrainTrigger {
    pub event_id: String,
    pub kind: TriggerKind,
    /// When the event happened; a run that started reading data after it covers it.
    pub time: OffsetDateTime,
    pub reason: String,
    /// The window a request names; such a request runs on its own, never coalesced.
    pub window: Option<DataWindow>,
    /// Where the drift a `drift.detected` event reports begins: the data-log sequence of the
    /// first entry of its window. The retrain prefers the labels logged from here on, so the
    /// first model after an abrupt change does not learn the old concept again from rows
    /// before it. `None` for requests, and for drift events whose window names no start.
    pub drift_from_seq: Option<u64>,
    /// The kind of drift a `drift.detected` event reports (`None` for requests). A promotion
    /// answering performance drift is followed up (see [`crate::follow_up`]).
    pub drift_kind: Option<DriftKind>,
    /// Where in the data log the alarm was raised: the end of a drift event's window. A run
    /// answering drift reads labels up to here (the newest it led, of several), so what it
    /// trains on depends on the data, not on how fast the stream came; and a run that read
    /// past it already covered the alarm. `None` for requests.
    pub data_seq: Option<u64>,
}

impl RetrainTrigger {
    /// Whether this trigger is a drift alarm (paced by the label cooldown), not a request.
    pub fn is_alarm(&self) -> bool {
        self.kind == TriggerKind::Drift
    }

    /// Whether this trigger reports performance drift: evidence from labels that the champion
    /// lost performance.
    pub fn lost_performance(&self) -> bool {
        self.drift_kind == Some(DriftKind::Performance)
    }
}

impl RetrainTrigger {
    /// The trigger an event carries, if it is one that asks for a retrain.
    pub fn from_envelope(envelope: &Envelope) -> Option<RetrainTrigger> {
        match &envelope.event {
            Event::DriftDetected(drift) => Some(RetrainTrigger {
                event_id: envelope.id.clone(),
                kind: TriggerKind::Drift,
                time: envelope.time,
                reason: format!("{:?} drift detected", drift.kind).to_lowercase(),
                window: None,
                drift_from_seq: drift.window.from_seq,
                drift_kind: Some(drift.kind),
                data_seq: drift.window.to_seq,
            }),
            Event::RetrainRequested(request) => Some(RetrainTrigger {
                event_id: envelope.id.clone(),
                kind: if request.reason == SCHEDULE_REASON {
                    TriggerKind::Schedule
                } else if request.reason.starts_with(FOLLOW_UP_REASON) {
                    TriggerKind::FollowUp
                } else {
                    TriggerKind::Forced
                },
                time: envelope.time,
                reason: request.reason.clone(),
                window: request
                    .window
                    .clone()
                    .filter(|window| window.to_log_window().is_some()),
                drift_from_seq: None,
                drift_kind: None,
                data_seq: None,
            }),
            _ => None,
        }
    }
}

/// Whether every trigger is an alarm of data (or prediction) drift, with none saying from
/// labels that the champion lost performance.
pub fn data_drift_alone<'a>(triggers: impl IntoIterator<Item = &'a RetrainTrigger>) -> bool {
    let mut any = false;
    for trigger in triggers {
        if !trigger.is_alarm() || trigger.lost_performance() {
            return false;
        }
        any = true;
    }
    any
}
