//! The registry's domain types. The wire types live in `mend-proto`; [`crate::convert`]
//! maps between the two, so storage and logic never depend on protobuf details.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a version was trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// The monitor detected drift.
    Drift,
    /// Someone asked for a retrain.
    Forced,
    /// A scheduled retrain.
    Schedule,
    /// Registered by hand.
    Manual,
    /// The first model of a deployment.
    Initial,
    /// The trainer's follow-up after a promotion for performance drift.
    FollowUp,
}

/// The event that caused a version to exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// Id of the triggering event; empty for manual registrations.
    pub event_id: String,
    pub kind: TriggerKind,
}

/// The slice of the data log a version was trained on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataWindow {
    /// Data-log sequence range, inclusive.
    pub from_seq: u64,
    pub to_seq: u64,
    /// Event-time range, unix milliseconds, inclusive.
    pub from_time_ms: i64,
    pub to_time_ms: i64,
    pub row_count: u64,
    /// Hex digest over the rows used.
    pub rows_hash: String,
}

/// What a caller supplies to register a version (the registry assigns number, time, digest).
#[derive(Debug, Clone, PartialEq)]
pub struct NewVersion {
    pub model: String,
    pub schema_hash: String,
    pub metrics: BTreeMap<String, f64>,
    pub data_window: DataWindow,
    pub trigger: Trigger,
    pub parent_version: Option<u64>,
    pub tags: BTreeMap<String, String>,
    /// Training settings as JSON, opaque to the registry.
    pub settings_json: String,
    /// Who registers; recorded in the audit log.
    pub actor: String,
    /// Why; recorded in the audit log.
    pub reason: String,
    /// Trace of the request, for the audit log.
    pub trace_id: String,
}

impl NewVersion {
    /// A registration with the given model and trigger, everything else empty.
    pub fn new(model: impl Into<String>, trigger: Trigger) -> Self {
        Self {
            model: model.into(),
            schema_hash: String::new(),
            metrics: BTreeMap::new(),
            data_window: DataWindow::default(),
            trigger,
            parent_version: None,
            tags: BTreeMap::new(),
            settings_json: String::new(),
            actor: String::new(),
            reason: String::new(),
            trace_id: String::new(),
        }
    }
}

/// Everything known about one registered version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionMeta {
    pub model: String,
    pub version: u64,
    pub created_at_ms: i64,
    pub schema_hash: String,
    /// Lowercase hex sha256 of the artifact bytes.
    pub artifact_sha256: String,
    pub artifact_size: u64,
    pub metrics: BTreeMap<String, f64>,
    pub data_window: DataWindow,
    pub trigger: Trigger,
    pub parent_version: Option<u64>,
    pub tags: BTreeMap<String, String>,
    pub settings_json: String,
}

impl VersionMeta {
    /// The metadata of `new` once committed as `version` with an artifact of this digest.
    pub(crate) fn committed(
        new: &NewVersion,
        version: u64,
        created_at_ms: i64,
        artifact_sha256: String,
        artifact_size: u64,
    ) -> Self {
        Self {
            model: new.model.clone(),
            version,
            created_at_ms,
            schema_hash: new.schema_hash.clone(),
            artifact_sha256,
            artifact_size,
            metrics: new.metrics.clone(),
            data_window: new.data_window.clone(),
            trigger: new.trigger.clone(),
            parent_version: new.parent_version,
            tags: new.tags.clone(),
            settings_json: new.settings_json.clone(),
        }
    }
}

/// The kind of change an audit record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Register,
    SetAlias,
    /// The trainer's decision on a retrain trigger: nothing moved.
    Decision,
}

/// What the trainer decided on one retrain trigger (a [`AuditAction::Decision`] record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionNote {
    /// `acted`, `merged`, `deferred` or `dropped`.
    pub decision: String,
    /// How the run the trigger led or merged into ended, if one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The trigger that led that run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_event_id: Option<String>,
}

/// A decision to put on a model's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDecision {
    pub model: String,
    pub trigger_event_id: String,
    pub note: DecisionNote,
    pub reason: String,
    /// The candidate version the run registered, if any.
    pub version: Option<u64>,
    pub actor: String,
    pub trace_id: String,
}

/// One change to a model. A model's records are numbered 1, 2, 3, ... without gaps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    pub time_ms: i64,
    pub model: String,
    pub action: AuditAction,
    /// The alias moved (`SetAlias` only).
    pub alias: Option<String>,
    /// The version registered, or the one the alias now points at.
    pub version: u64,
    /// Where the alias pointed before (`SetAlias` only; `None` if it did not exist).
    pub previous_version: Option<u64>,
    pub actor: String,
    pub reason: String,
    pub trigger_event_id: String,
    pub trace_id: String,
    /// `Decision` records only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionNote>,
}

/// The state an alias must be in for a move to apply (compare-and-set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasExpectation {
    /// No condition: meant for people fixing things by hand, not for services.
    Any,
    /// The alias must not exist yet.
    Absent,
    /// The alias must currently point at this version.
    Version(u64),
}

impl AliasExpectation {
    /// Whether an alias currently at `current` satisfies this expectation.
    pub fn is_met_by(self, current: Option<u64>) -> bool {
        match self {
            AliasExpectation::Any => true,
            AliasExpectation::Absent => current.is_none(),
            AliasExpectation::Version(expected) => current == Some(expected),
        }
    }
}

impl fmt::Display for AliasExpectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AliasExpectation::Any => f.write_str("any version"),
            AliasExpectation::Absent => f.write_str("no alias yet"),
            AliasExpectation::Version(version) => write!(f, "version {version}"),
        }
    }
}

/// A request to point an alias at a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAlias {
    pub model: String,
    pub alias: String,
    pub version: u64,
    pub expected: AliasExpectation,
    pub actor: String,
    pub reason: String,
    pub trigger_event_id: String,
    pub trace_id: String,
}

/// One model at a glance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSummary {
    pub name: String,
    /// 0 when no version has been registered yet.
    pub latest_version: u64,
    /// Where each alias points now.
    pub aliases: BTreeMap<String, u64>,
}

/// One page of a listing; `next` is the cursor to pass back for the following page, `None`
/// on the last one. Cursors are exclusive ("after this one").
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// Builds a page from up to `limit + 1` fetched items: the extra item only tells that
    /// another page exists, so no caller ever sees an empty last page.
    pub(crate) fn from_probe(mut items: Vec<T>, limit: usize, cursor_of: impl Fn(&T) -> C) -> Self {
        let has_more = items.len() > limit;
        items.truncate(limit);
        let next = if has_more {
            items.last().map(cursor_of)
        } else {
            None
        };
        Self { items, next }
    }
}
