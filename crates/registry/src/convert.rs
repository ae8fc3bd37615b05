//! Conversions between the domain types and the `mend.registry.v1` wire types.
//!
//! Domain → wire never fails. Wire → domain checks what protobuf cannot express (an unset
//! enum, an unset required message) and names the offending field, so the gRPC layer can
//! answer INVALID_ARGUMENT with it. Name rules are checked by the stores.

use mend_proto::registry::v1 as pb;

use crate::{
    AliasExpectation, AuditAction, AuditRecord, DataWindow, DecisionNote, ModelSummary,
    NewDecision, NewVersion, SetAlias, Trigger, TriggerKind, VersionMeta,
};

/// A wire message that does not make a valid domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct ConvertError {
    /// Field path as in the .proto, e.g. `trigger.kind`.
    pub field: &'static str,
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConvertError {
    ConvertError {
        field,
        reason: reason.into(),
    }
}

impl From<TriggerKind> for pb::TriggerKind {
    fn from(kind: TriggerKind) -> Self {
        match kind {
            TriggerKind::Drift => pb::TriggerKind::Drift,
            TriggerKind::Forced => pb::TriggerKind::Forced,
            TriggerKind::Schedule => pb::TriggerKind::Schedule,
            TriggerKind::Manual => pb::TriggerKind::Manual,
            TriggerKind::Initial => pb::TriggerKind::Initial,
            TriggerKind::FollowUp => pb::TriggerKind::FollowUp,
        }
    }
}

fn trigger_kind(raw: i32) -> Result<TriggerKind, ConvertError> {
    match pb::TriggerKind::try_from(raw) {
        Ok(pb::TriggerKind::Drift) => Ok(TriggerKind::Drift),
        Ok(pb::TriggerKind::Forced) => Ok(TriggerKind::Forced),
        Ok(pb::TriggerKind::Schedule) => Ok(TriggerKind::Schedule),
        Ok(pb::TriggerKind::Manual) => Ok(TriggerKind::Manual),
        Ok(pb::TriggerKind::Initial) => Ok(TriggerKind::Initial),
        Ok(pb::TriggerKind::FollowUp) => Ok(TriggerKind::FollowUp),
        Ok(pb::TriggerKind::Unspecified) => Err(invalid("trigger.kind", "must be set")),
        Err(_) => Err(invalid("trigger.kind", format!("unknown value {raw}"))),
    }
}

impl From<&Trigger> for pb::Trigger {
    fn from(trigger: &Trigger) -> Self {
        pb::Trigger {
            event_id: trigger.event_id.clone(),
            kind: pb::TriggerKind::from(trigger.kind).into(),
        }
    }
}

fn trigger(trigger: Option<pb::Trigger>) -> Result<Trigger, ConvertError> {
    let trigger = trigger.ok_or_else(|| invalid("trigger", "must be set"))?;
    Ok(Trigger {
        event_id: trigger.event_id,
        kind: trigger_kind(trigger.kind)?,
    })
}

impl From<&DataWindow> for pb::DataWindow {
    fn from(window: &DataWindow) -> Self {
        pb::DataWindow {
            from_seq: window.from_seq,
            to_seq: window.to_seq,
            from_time_ms: window.from_time_ms,
            to_time_ms: window.to_time_ms,
            row_count: window.row_count,
            rows_hash: window.rows_hash.clone(),
        }
    }
}

impl From<pb::DataWindow> for DataWindow {
    fn from(window: pb::DataWindow) -> Self {
        DataWindow {
            from_seq: window.from_seq,
            to_seq: window.to_seq,
            from_time_ms: window.from_time_ms,
            to_time_ms: window.to_time_ms,
            row_count: window.row_count,
            rows_hash: window.rows_hash,
        }
    }
}

impl From<&VersionMeta> for pb::VersionMetadata {
    fn from(meta: &VersionMeta) -> Self {
        pb::VersionMetadata {
            model: meta.model.clone(),
            version: meta.version,
            created_at_ms: meta.created_at_ms,
            schema_hash: meta.schema_hash.clone(),
            artifact_sha256: meta.artifact_sha256.clone(),
            artifact_size: meta.artifact_size,
            metrics: meta.metrics.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            data_window: Some((&meta.data_window).into()),
            trigger: Some((&meta.trigger).into()),
            parent_version: meta.parent_version,
            tags: meta
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            settings_json: meta.settings_json.clone(),
        }
    }
}

impl TryFrom<pb::VersionMetadata> for VersionMeta {
    type Error = ConvertError;

    fn try_from(meta: pb::VersionMetadata) -> Result<Self, ConvertError> {
        Ok(VersionMeta {
            model: meta.model,
            version: meta.version,
            created_at_ms: meta.created_at_ms,
            schema_hash: meta.schema_hash,
            artifact_sha256: meta.artifact_sha256,
            artifact_size: meta.artifact_size,
            metrics: meta.metrics.into_iter().collect(),
            data_window: meta.data_window.map(DataWindow::from).unwrap_or_default(),
            trigger: trigger(meta.trigger)?,
            parent_version: meta.parent_version,
            tags: meta.tags.into_iter().collect(),
            settings_json: meta.settings_json,
        })
    }
}

/// The registration a `RegisterVersion` header asks for; `trace_id` comes from the request's
/// trace context. The header's expected sha256 and size are checked by the service against
/// the uploaded bytes, not here.
pub fn new_version(
    header: pb::RegisterVersionHeader,
    trace_id: String,
) -> Result<NewVersion, ConvertError> {
    Ok(NewVersion {
        model: header.model,
        schema_hash: header.schema_hash,
        metrics: header.metrics.into_iter().collect(),
        data_window: header.data_window.map(DataWindow::from).unwrap_or_default(),
        trigger: trigger(header.trigger)?,
        parent_version: header.parent_version,
        tags: header.tags.into_iter().collect(),
        settings_json: header.settings_json,
        actor: header.actor,
        reason: header.reason,
        trace_id,
    })
}

/// The compare-and-set condition of a `SetAlias` request (unset: unconditional).
pub fn alias_expectation(
    expected: Option<pb::AliasPrecondition>,
) -> Result<AliasExpectation, ConvertError> {
    match expected.and_then(|precondition| precondition.state) {
        None => Ok(AliasExpectation::Any),
        Some(pb::alias_precondition::State::Version(version)) => {
            Ok(AliasExpectation::Version(version))
        }
        Some(pb::alias_precondition::State::Absent(true)) => Ok(AliasExpectation::Absent),
        Some(pb::alias_precondition::State::Absent(false)) => Err(invalid(
            "expected.absent",
            "must be true when set (leave `expected` unset for no condition)",
        )),
    }
}

impl From<AliasExpectation> for Option<pb::AliasPrecondition> {
    fn from(expected: AliasExpectation) -> Self {
        let state = match expected {
            AliasExpectation::Any => return None,
            AliasExpectation::Absent => pb::alias_precondition::State::Absent(true),
            AliasExpectation::Version(version) => pb::alias_precondition::State::Version(version),
        };
        Some(pb::AliasPrecondition { state: Some(state) })
    }
}

/// The alias move a `SetAlias` request asks for; `trace_id` comes from the trace context.
pub fn set_alias(request: pb::SetAliasRequest, trace_id: String) -> Result<SetAlias, ConvertError> {
    Ok(SetAlias {
        expected: alias_expectation(request.expected)?,
        model: request.model,
        alias: request.alias,
        version: request.version,
        actor: request.actor,
        reason: request.reason,
        trigger_event_id: request.trigger_event_id,
        trace_id,
    })
}

/// The decision a `RecordDecision` request puts on record; `trace_id` comes from the trace
/// context.
pub fn decision(request: pb::RecordDecisionRequest, trace_id: String) -> NewDecision {
    NewDecision {
        model: request.model,
        trigger_event_id: request.trigger_event_id,
        note: DecisionNote {
            decision: request.decision,
            outcome: Some(request.outcome).filter(|outcome| !outcome.is_empty()),
            run_event_id: Some(request.run_event_id).filter(|id| !id.is_empty()),
        },
        reason: request.reason,
        version: request.version,
        actor: request.actor,
        trace_id,
    }
}

impl From<AuditAction> for pb::AuditAction {
    fn from(action: AuditAction) -> Self {
        match action {
            AuditAction::Register => pb::AuditAction::Register,
            AuditAction::SetAlias => pb::AuditAction::SetAlias,
            AuditAction::Decision => pb::AuditAction::Decision,
        }
    }
}

impl From<&AuditRecord> for pb::AuditRecord {
    fn from(record: &AuditRecord) -> Self {
        pb::AuditRecord {
            seq: record.seq,
            time_ms: record.time_ms,
            model: record.model.clone(),
            action: pb::AuditAction::from(record.action).into(),
            alias: record.alias.clone().unwrap_or_default(),
            version: record.version,
            previous_version: record.previous_version,
            actor: record.actor.clone(),
            reason: record.reason.clone(),
            trigger_event_id: record.trigger_event_id.clone(),
            trace_id: record.trace_id.clone(),
            decision: record
                .decision
                .as_ref()
                .map(|note| note.decision.clone())
                .unwrap_or_default(),
            outcome: record
                .decision
                .as_ref()
                .and_then(|note| note.outcome.clone())
                .unwrap_or_default(),
            run_event_id: record
                .decision
                .as_ref()
                .and_then(|note| note.run_event_id.clone())
                .unwrap_or_default(),
        }
    }
}

impl TryFrom<pb::AuditRecord> for AuditRecord {
    type Error = ConvertError;

    fn try_from(record: pb::AuditRecord) -> Result<Self, ConvertError> {
        let action = match pb::AuditAction::try_from(record.action) {
            Ok(pb::AuditAction::Register) => AuditAction::Register,
            Ok(pb::AuditAction::SetAlias) => AuditAction::SetAlias,
            Ok(pb::AuditAction::Decision) => AuditAction::Decision,
            _ => {
                return Err(invalid(
                    "action",
                    format!("unknown value {}", record.action),
                ));
            }
        };
        Ok(AuditRecord {
            seq: record.seq,
            time_ms: record.time_ms,
            model: record.model,
            action,
            alias: Some(record.alias).filter(|alias| !alias.is_empty()),
            version: record.version,
            previous_version: record.previous_version,
            actor: record.actor,
            reason: record.reason,
            trigger_event_id: record.trigger_event_id,
            trace_id: record.trace_id,
            decision: (action == AuditAction::Decision).then(|| DecisionNote {
                decision: record.decision,
                outcome: Some(record.outcome).filter(|outcome| !outcome.is_empty()),
                run_event_id: Some(record.run_event_id).filter(|id| !id.is_empty()),
            }),
        })
    }
}

/// The wire form of an alias move (from its audit record).
pub fn alias_move(record: &AuditRecord) -> pb::AliasMove {
    pb::AliasMove {
        model: record.model.clone(),
        alias: record.alias.clone().unwrap_or_default(),
        version: record.version,
        previous_version: record.previous_version,
        audit_seq: record.seq,
        time_ms: record.time_ms,
        current: false,
    }
}

impl From<&ModelSummary> for pb::ModelSummary {
    fn from(summary: &ModelSummary) -> Self {
        pb::ModelSummary {
            name: summary.name.clone(),
            latest_version: summary.latest_version,
            aliases: summary
                .aliases
                .iter()
                .map(|(alias, version)| (alias.clone(), *version))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeMap;

    use super::*;

    fn meta() -> VersionMeta {
        VersionMeta {
            model: "churn".into(),
            version: 3,
            created_at_ms: 1_700_000_000_000,
            schema_hash: "abc".into(),
            artifact_sha256: "00ff".into(),
            artifact_size: 42,
            metrics: BTreeMap::from([("holdout.accuracy".into(), 0.91)]),
            data_window: DataWindow {
                from_seq: 10,
                to_seq: 20,
                from_time_ms: 1,
                to_time_ms: 2,
                row_count: 11,
                rows_hash: "beef".into(),
            },
            trigger: Trigger {
                event_id: "evt-1".into(),
                kind: TriggerKind::Drift,
            },
            parent_version: Some(2),
            tags: BTreeMap::from([("team".into(), "risk".into())]),
            settings_json: "{\"c\":1.0}".into(),
        }
    }

    #[test]
    fn version_metadata_round_trips() {
        let original = meta();
        let wire = pb::VersionMetadata::from(&original);
        assert_eq!(
            wire.trigger.as_ref().unwrap().kind,
            pb::TriggerKind::Drift as i32
        );
        assert_eq!(VersionMeta::try_from(wire).unwrap(), original);
    }

    #[test]
    fn unset_trigger_kind_is_refused_naming_the_field() {
        let mut wire = pb::VersionMetadata::from(&meta());
        wire.trigger.as_mut().unwrap().kind = 0;
        assert_eq!(
            VersionMeta::try_from(wire).unwrap_err().field,
            "trigger.kind"
        );

        let header = pb::RegisterVersionHeader {
            model: "churn".into(),
            ..Default::default()
        };
        assert_eq!(
            new_version(header, String::new()).unwrap_err().field,
            "trigger"
        );
    }

    #[test]
    fn alias_preconditions_map_to_expectations_and_back() {
        for expected in [
            AliasExpectation::Any,
            AliasExpectation::Absent,
            AliasExpectation::Version(7),
        ] {
            let wire: Option<pb::AliasPrecondition> = expected.into();
            assert_eq!(alias_expectation(wire).unwrap(), expected);
        }
        let absent_false = pb::AliasPrecondition {
            state: Some(pb::alias_precondition::State::Absent(false)),
        };
        assert_eq!(
            alias_expectation(Some(absent_false)).unwrap_err().field,
            "expected.absent"
        );
    }

    #[test]
    fn audit_record_round_trips_with_and_without_alias() {
        let record = AuditRecord {
            seq: 4,
            time_ms: 5,
            model: "churn".into(),
            action: AuditAction::SetAlias,
            alias: Some("champion".into()),
            version: 3,
            previous_version: Some(2),
            actor: "trainer".into(),
            reason: "beat champion".into(),
            trigger_event_id: "evt-1".into(),
            trace_id: "trace".into(),
            decision: None,
        };
        let wire = pb::AuditRecord::from(&record);
        assert_eq!(wire.action, pb::AuditAction::SetAlias as i32);
        assert_eq!(AuditRecord::try_from(wire).unwrap(), record);

        let registration = AuditRecord {
            action: AuditAction::Register,
            alias: None,
            previous_version: None,
            ..record
        };
        let wire = pb::AuditRecord::from(&registration);
        assert_eq!(wire.alias, "");
        assert_eq!(AuditRecord::try_from(wire).unwrap(), registration);

        let decided = AuditRecord {
            action: AuditAction::Decision,
            alias: None,
            previous_version: None,
            decision: Some(DecisionNote {
                decision: "merged".into(),
                outcome: Some("promoted".into()),
                run_event_id: Some("evt-0".into()),
            }),
            ..registration
        };
        let wire = pb::AuditRecord::from(&decided);
        assert_eq!(
            (wire.decision.as_str(), wire.outcome.as_str()),
            ("merged", "promoted")
        );
        assert_eq!(AuditRecord::try_from(wire).unwrap(), decided);
    }
}
