//! Lineage of a candidate: the registration header that lets anyone retrain any version from
//! the same rows with the same result, and find the version an event already produced.

use std::collections::HashMap;

use mend_core::record::RowRecord;
use mend_core::{Metrics, TrainSettings};
use mend_proto::registry::v1 as pb;
use sha2::{Digest, Sha256};

use crate::evaluate::Comparison;
use crate::gate::GateDecision;
use crate::trigger::RetrainTrigger;
use crate::window::{LabeledWindow, value_text};

/// Who registers and moves aliases, in the audit log.
pub const ACTOR: &str = "mend-trainer";

/// Tag keys on registered candidates.
pub mod tags {
    /// The id of the event that caused the version (also in `trigger.event_id`).
    pub const TRIGGER_EVENT_ID: &str = "trigger_event_id";
    /// Ids of further events coalesced into the same run, comma-separated.
    pub const COALESCED_EVENT_IDS: &str = "coalesced_event_ids";
    /// `pass` or `fail`: the gate's verdict when the version was registered.
    pub const GATE: &str = "gate";
    pub const GATE_REASON: &str = "gate_reason";
    pub const GATE_METRIC: &str = "gate_metric";
    pub const TRIGGER_REASON: &str = "trigger_reason";
    /// Data-log sequences of the joined rows (the window's range is the labels').
    pub const ROWS_FROM_SEQ: &str = "rows_from_seq";
    pub const ROWS_TO_SEQ: &str = "rows_to_seq";
    /// The drift start the window was cut at: the run answered drift and trained only on
    /// labels logged from this data-log sequence on (absent: the newest or a named window).
    pub const DRIFT_FROM_SEQ: &str = "drift_from_seq";
    /// Set to [`ARMED`] on a version whose promotion is followed up (see `crate::follow_up`).
    pub const FOLLOW_UP: &str = "follow_up";
    /// On a candidate registered as rejected because a past version did better: that
    /// version, recalled in its place (see `crate::recall`).
    pub const RECALLED: &str = "recalled";
    pub const ARMED: &str = "armed";
    pub const PASS: &str = "pass";
    pub const FAIL: &str = "fail";
}

/// Metric names recorded for both models, prefixed `candidate.` and `champion.`.
const RECORDED: &[&str] = &["accuracy", "macro_f1", "roc_auc", "log_loss", "brier"];

/// sha256 over the window's rows in order: id, values by name, label; unambiguous separators.
pub fn rows_hash(rows: &[RowRecord], labels: &[String]) -> String {
    let mut hasher = Sha256::new();
    for (row, label) in rows.iter().zip(labels) {
        hasher.update(row.id.as_bytes());
        hasher.update([0x1f]);
        hasher.update(row.time_ms.to_le_bytes());
        for (name, value) in &row.values {
            hasher.update(name.as_bytes());
            hasher.update([0x1d]);
            hasher.update(value_text(value).as_bytes());
            hasher.update([0x1f]);
        }
        hasher.update(label.as_bytes());
        hasher.update([0x1e]);
    }
    hex::encode(hasher.finalize())
}

/// Both models' metrics on the holdout, as the registry stores them.
pub fn metrics_map(comparison: &Comparison) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    let mut put = |prefix: &str, metrics: &Metrics| {
        for name in RECORDED {
            if let Some(value) = metrics.get(name).filter(|value| value.is_finite()) {
                out.insert(format!("{prefix}.{name}"), value);
            }
        }
    };
    put("candidate", &comparison.candidate_metrics);
    if let Some(champion) = &comparison.champion_metrics {
        put("champion", champion);
    }
    out.insert("holdout.rows".into(), comparison.holdout_rows as f64);
    out.insert("train.ms".into(), comparison.train_ms as f64);
    out
}

/// Everything a registration needs to say about a candidate.
#[derive(Debug)]
pub struct Lineage<'a> {
    pub model: &'a str,
    pub primary: &'a RetrainTrigger,
    pub coalesced: &'a [RetrainTrigger],
    pub window: &'a LabeledWindow,
    pub comparison: &'a Comparison,
    pub decision: &'a GateDecision,
    pub gate_metric: &'a str,
    pub parent_version: Option<u64>,
    pub settings: &'a TrainSettings,
    /// The drift start the window was cut at, when it was.
    pub drift_from_seq: Option<u64>,
}

impl Lineage<'_> {
    pub fn header(&self) -> pb::RegisterVersionHeader {
        let window = self.window;
        let (from_seq, to_seq) = window.label_seqs.unwrap_or((0, 0));
        let (from_time_ms, to_time_ms) = window.time_range().unwrap_or((0, 0));
        let mut tag_map = HashMap::new();
        tag_map.insert(
            tags::TRIGGER_EVENT_ID.to_owned(),
            self.primary.event_id.clone(),
        );
        tag_map.insert(tags::TRIGGER_REASON.to_owned(), self.primary.reason.clone());
        if !self.coalesced.is_empty() {
            let ids: Vec<&str> = self.coalesced.iter().map(|t| t.event_id.as_str()).collect();
            tag_map.insert(tags::COALESCED_EVENT_IDS.to_owned(), ids.join(","));
        }
        tag_map.insert(
            tags::GATE.to_owned(),
            if self.decision.promote {
                tags::PASS
            } else {
                tags::FAIL
            }
            .to_owned(),
        );
        tag_map.insert(tags::GATE_REASON.to_owned(), self.decision.reason.clone());
        tag_map.insert(tags::GATE_METRIC.to_owned(), self.gate_metric.to_owned());
        if let Some(from) = self.drift_from_seq {
            tag_map.insert(tags::DRIFT_FROM_SEQ.to_owned(), from.to_string());
        }
        if let Some((from, to)) = window.row_seqs {
            tag_map.insert(tags::ROWS_FROM_SEQ.to_owned(), from.to_string());
            tag_map.insert(tags::ROWS_TO_SEQ.to_owned(), to.to_string());
        }
        pb::RegisterVersionHeader {
            model: self.model.to_owned(),
            schema_hash: self.comparison.candidate.schema.hash(),
            artifact_sha256: String::new(),
            artifact_size: 0,
            metrics: metrics_map(self.comparison),
            data_window: Some(pb::DataWindow {
                from_seq,
                to_seq,
                from_time_ms,
                to_time_ms,
                row_count: window.len() as u64,
                rows_hash: rows_hash(&window.rows, &window.labels),
            }),
            trigger: Some(pb::Trigger {
                event_id: self.primary.event_id.clone(),
                kind: self.primary.kind.to_proto() as i32,
            }),
            parent_version: self.parent_version,
            tags: tag_map,
            settings_json: serde_json::to_string(self.settings).unwrap_or_default(),
            actor: ACTOR.to_owned(),
            reason: format!(
                "{} retrain ({}): {}",
                self.primary.kind.as_str(),
                self.primary.reason,
                self.decision.reason
            ),
        }
    }
}

/// Whether a registered version came from any of these events (its trigger, or one
/// coalesced into its run): the idempotency key of invariant 6.
pub fn produced_by(meta: &pb::VersionMetadata, event_ids: &[&str]) -> bool {
    let trigger = meta.trigger.as_ref().map(|t| t.event_id.as_str());
    if trigger.is_some_and(|id| !id.is_empty() && event_ids.contains(&id)) {
        return true;
    }
    let tagged = meta.tags.get(tags::TRIGGER_EVENT_ID).map(String::as_str);
    if tagged.is_some_and(|id| event_ids.contains(&id)) {
        return true;
    }
    meta.tags
        .get(tags::COALESCED_EVENT_IDS)
        .is_some_and(|ids| ids.split(',').any(|id| event_ids.contains(&id)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use mend_core::record::Values;

    use mend_core::record::Value;

    use super::*;

    fn row(id: &str, x: f64) -> RowRecord {
        RowRecord {
            id: id.into(),
            time_ms: 1,
            values: Values::from([("x", Value::Number(x))]),
        }
    }

    #[test]
    fn the_rows_hash_changes_with_any_id_value_label_or_order() {
        let rows = vec![row("a", 1.0), row("b", 2.0)];
        let labels = vec!["no".to_owned(), "yes".to_owned()];
        let base = rows_hash(&rows, &labels);
        assert_eq!(base, rows_hash(&rows.clone(), &labels.clone()));
        assert_ne!(base, rows_hash(&[row("a", 1.0), row("b", 2.5)], &labels));
        assert_ne!(base, rows_hash(&[row("a", 1.0), row("c", 2.0)], &labels));
        assert_ne!(base, rows_hash(&rows, &["no".to_owned(), "no".to_owned()]));
        assert_ne!(
            base,
            rows_hash(
                &[row("b", 2.0), row("a", 1.0)],
                &["yes".to_owned(), "no".to_owned()]
            )
        );
    }

    #[test]
    fn a_version_is_found_by_its_trigger_or_a_coalesced_event() {
        let mut meta = pb::VersionMetadata {
            trigger: Some(pb::Trigger {
                event_id: "e1".into(),
                kind: pb::TriggerKind::Drift as i32,
            }),
            ..pb::VersionMetadata::default()
        };
        meta.tags
            .insert(tags::COALESCED_EVENT_IDS.into(), "e2,e3".into());
        assert!(produced_by(&meta, &["e1"]));
        assert!(produced_by(&meta, &["x", "e3"]));
        assert!(!produced_by(&meta, &["e4"]));
        assert!(!produced_by(&pb::VersionMetadata::default(), &[""]));
    }
}
