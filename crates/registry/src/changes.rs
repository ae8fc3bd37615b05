//! The rules of a change, shared by every store so they cannot drift apart: given a model's
//! current state, what a registration or an alias move commits (or why it is refused).
//! Stores only make the commit atomic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    AuditAction, AuditRecord, ModelSummary, NewDecision, NewVersion, SetAlias, StoreError,
    VersionMeta, names,
};

/// The decisions the trainer may record on a trigger.
pub(crate) const DECISIONS: [&str; 4] = ["acted", "merged", "deferred", "dropped"];

/// Longest reason a decision keeps (longer ones are cut, saying so).
const MAX_REASON_CHARS: usize = 2000;

/// Largest page a listing returns, whatever the caller asks for.
pub(crate) const MAX_PAGE: usize = 1000;

/// What a store must know about a model to decide the next change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ModelState {
    pub latest_version: u64,
    /// The seq of the model's last audit record (0: none yet).
    pub audit_seq: u64,
    pub aliases: BTreeMap<String, u64>,
}

impl ModelState {
    pub(crate) fn summary(&self, name: &str) -> ModelSummary {
        ModelSummary {
            name: name.to_owned(),
            latest_version: self.latest_version,
            aliases: self.aliases.clone(),
        }
    }

    /// Applies a committed audit record (used to replay a log).
    pub(crate) fn apply(&mut self, record: &AuditRecord) {
        self.audit_seq = record.seq;
        match record.action {
            AuditAction::Register => self.latest_version = record.version,
            AuditAction::SetAlias => {
                if let Some(alias) = &record.alias {
                    self.aliases.insert(alias.clone(), record.version);
                }
            }
            AuditAction::Decision => {}
        }
    }
}

/// Checks a registration request before anything is stored.
pub(crate) fn check_new_version(new: &NewVersion) -> Result<(), StoreError> {
    names::validate("model", &new.model)?;
    if let Some((name, _)) = new.metrics.iter().find(|(_, value)| !value.is_finite()) {
        return Err(StoreError::InvalidArgument {
            field: "metrics",
            reason: format!("metric {name:?} is not a finite number"),
        });
    }
    if new.parent_version == Some(0) {
        return Err(StoreError::InvalidArgument {
            field: "parent_version",
            reason: "versions start at 1".to_owned(),
        });
    }
    Ok(())
}

/// Checks an alias move request before the store is touched.
pub(crate) fn check_set_alias(change: &SetAlias) -> Result<(), StoreError> {
    names::validate("model", &change.model)?;
    names::validate("alias", &change.alias)?;
    if change.version == 0 {
        return Err(StoreError::InvalidArgument {
            field: "version",
            reason: "versions start at 1".to_owned(),
        });
    }
    Ok(())
}

/// Checks a decision before the store is touched.
pub(crate) fn check_decision(new: &NewDecision) -> Result<(), StoreError> {
    names::validate("model", &new.model)?;
    if !DECISIONS.contains(&new.note.decision.as_str()) {
        return Err(StoreError::InvalidArgument {
            field: "decision",
            reason: format!(
                "unknown decision {:?}: one of {}",
                mend_runtime::grpc::quote(&new.note.decision),
                DECISIONS.join(", ")
            ),
        });
    }
    for (field, value) in [
        ("trigger_event_id", &new.trigger_event_id),
        ("reason", &new.reason),
    ] {
        if value.trim().is_empty() {
            return Err(StoreError::InvalidArgument {
                field,
                reason: "must not be empty".to_owned(),
            });
        }
    }
    if new.version == Some(0) {
        return Err(StoreError::InvalidArgument {
            field: "version",
            reason: "versions start at 1".to_owned(),
        });
    }
    Ok(())
}

/// The audit record a decision commits on top of `state`, or why it may not.
pub(crate) fn decision_record(
    state: &ModelState,
    new: &NewDecision,
    now_ms: i64,
) -> Result<AuditRecord, StoreError> {
    if state.latest_version == 0 {
        return Err(StoreError::ModelNotFound {
            model: new.model.clone(),
        });
    }
    if let Some(version) = new.version
        && version > state.latest_version
    {
        return Err(StoreError::VersionNotFound {
            model: new.model.clone(),
            version,
        });
    }
    let reason = mend_runtime::grpc::cap(&new.reason, MAX_REASON_CHARS).into_owned();
    Ok(AuditRecord {
        seq: state.audit_seq + 1,
        time_ms: now_ms,
        model: new.model.clone(),
        action: AuditAction::Decision,
        alias: None,
        version: new.version.unwrap_or(0),
        previous_version: None,
        actor: new.actor.clone(),
        reason,
        trigger_event_id: new.trigger_event_id.clone(),
        trace_id: new.trace_id.clone(),
        decision: Some(new.note.clone()),
    })
}

/// Clamps a requested page size to 1..=[`MAX_PAGE`] (0 means the maximum).
pub(crate) fn page_limit(limit: usize) -> usize {
    if limit == 0 {
        MAX_PAGE
    } else {
        limit.min(MAX_PAGE)
    }
}

/// The version and audit record a registration commits on top of `state`.
pub(crate) fn registration(
    state: &ModelState,
    new: &NewVersion,
    artifact_sha256: String,
    artifact_size: u64,
    now_ms: i64,
) -> (VersionMeta, AuditRecord) {
    let version = state.latest_version + 1;
    let meta = VersionMeta::committed(new, version, now_ms, artifact_sha256, artifact_size);
    let record = AuditRecord {
        seq: state.audit_seq + 1,
        time_ms: now_ms,
        model: new.model.clone(),
        action: AuditAction::Register,
        alias: None,
        version,
        previous_version: None,
        actor: new.actor.clone(),
        reason: new.reason.clone(),
        trigger_event_id: new.trigger.event_id.clone(),
        trace_id: new.trace_id.clone(),
        decision: None,
    };
    (meta, record)
}

/// The audit record an alias move commits on top of `state`, or why it may not.
pub(crate) fn alias_move(
    state: &ModelState,
    change: &SetAlias,
    now_ms: i64,
) -> Result<AuditRecord, StoreError> {
    if change.version > state.latest_version {
        return Err(StoreError::VersionNotFound {
            model: change.model.clone(),
            version: change.version,
        });
    }
    let current = state.aliases.get(&change.alias).copied();
    if !change.expected.is_met_by(current) {
        return Err(StoreError::Conflict {
            model: change.model.clone(),
            alias: change.alias.clone(),
            expected: change.expected,
            actual: current,
        });
    }
    Ok(AuditRecord {
        seq: state.audit_seq + 1,
        time_ms: now_ms,
        model: change.model.clone(),
        action: AuditAction::SetAlias,
        alias: Some(change.alias.clone()),
        version: change.version,
        previous_version: current,
        actor: change.actor.clone(),
        reason: change.reason.clone(),
        trigger_event_id: change.trigger_event_id.clone(),
        trace_id: change.trace_id.clone(),
        decision: None,
    })
}
