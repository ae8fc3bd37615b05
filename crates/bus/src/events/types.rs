//! The payloads of mend's public events, one struct per subject family.
//!
//! Optional fields default, so a person can publish a terse event by hand; required fields
//! are the ones a reader cannot act without.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::datalog::Window;

/// Metric name → value (`accuracy`, `log_loss`, `auc`, …).
pub type Metrics = BTreeMap<String, f64>;

/// Which signal drifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftKind {
    /// Input feature distributions moved away from the reference profile.
    Data,
    /// The distribution of predicted probabilities moved.
    Prediction,
    /// Live performance on labeled rows fell (concept drift).
    Performance,
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// A slice of the data log: a sequence range, a time range, or the newest rows.
///
/// Describes the window a drift verdict or a model was computed on, and names the window a
/// retrain request asks for. Every field is optional; `rows` counts the rows it held.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataWindow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_time_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_time_ms: Option<i64>,
    /// The newest N rows (a request), rather than a fixed range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rows: Option<u64>,
    /// How many rows the window held (a description).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

impl DataWindow {
    /// A closed sequence range holding `rows` rows.
    pub fn sequence(from_seq: u64, to_seq: u64, rows: u64) -> Self {
        DataWindow {
            from_seq: Some(from_seq),
            to_seq: Some(to_seq),
            rows: Some(rows),
            ..DataWindow::default()
        }
    }

    /// The data-log read this window names, if it names one: newest rows first, then a
    /// sequence range, then a time range.
    pub fn to_log_window(&self) -> Option<Window> {
        if let Some(count) = self.last_rows {
            return Some(Window::last(usize::try_from(count).unwrap_or(usize::MAX)));
        }
        if let Some(from) = self.from_seq {
            return Some(Window::sequence(from, self.to_seq));
        }
        self.from_time_ms
            .map(|from_ms| Window::time(from_ms, self.to_time_ms))
    }
}

/// Drift of one feature (or of the prediction, named `prediction`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    pub feature: String,
    /// The test or distance used, e.g. `ks`, `wasserstein`, `chi2`, `jensen_shannon`, `psi`.
    #[serde(default)]
    pub method: String,
    pub score: f64,
    #[serde(default)]
    pub threshold: f64,
    #[serde(default = "default_true")]
    pub drifted: bool,
}

fn default_true() -> bool {
    true
}

/// `drift.detected.<model>`: the monitor saw drift past policy, once per episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftDetected {
    pub kind: DriftKind,
    #[serde(default)]
    pub window: DataWindow,
    /// Per-feature verdicts with scores (drifted ones at least).
    #[serde(default)]
    pub features: Vec<FeatureDrift>,
    /// Share of features that drifted, in [0, 1].
    #[serde(default)]
    pub dataset_share: f64,
    /// Whether the share crossed the dataset-drift threshold.
    #[serde(default)]
    pub dataset_drift: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_id: Option<String>,
    /// The champion version the window was compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub champion_version: Option<u64>,
    /// Live metrics for performance drift (e.g. `accuracy`, and `baseline_accuracy`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: Metrics,
}

/// `retrain.requested.<model>`: anyone asks for a retrain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrainRequested {
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<DataWindow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
}

/// `model.trained.<model>`: a candidate was trained and registered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelTrained {
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_version: Option<u64>,
    /// The event that caused the retrain (drift or request), for lineage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_event_id: Option<String>,
    /// The subject family of that event, e.g. `drift.detected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<DataWindow>,
    /// The candidate's metrics on the held-out rows.
    #[serde(default)]
    pub metrics: Metrics,
    /// The champion's metrics on the same held-out rows.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub champion_metrics: Metrics,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// `model.rejected.<model>`: the candidate failed the promotion gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRejected {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    pub reason: String,
    #[serde(default)]
    pub metrics: Metrics,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub champion_metrics: Metrics,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub champion_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_event_id: Option<String>,
}

/// `model.promoted.<model>`: the `champion` alias moved to `version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPromoted {
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<u64>,
    pub reason: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: Metrics,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_event_id: Option<String>,
}

/// `model.rolled_back.<model>`: the `champion` alias moved back after a bad promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRolledBack {
    pub from_version: u64,
    pub to_version: u64,
    pub reason: String,
    /// Live metrics that caused the rollback.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: Metrics,
}

/// `alert.<model>`: a human-facing message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub severity: Severity,
    pub text: String,
    /// Which component raised it, e.g. `trainer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_event_id: Option<String>,
}

/// What the trainer did with one trigger (a drift alarm or a retrain request). Every trigger
/// ends in exactly one decision on record, so no alarm is silently lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The trigger led a run (its outcome is in `outcome`).
    Acted,
    /// The trigger was coalesced into a run another trigger led (`run_event_id`).
    Merged,
    /// The trigger waits for more labeled rows (`until_labels`) and is judged again then.
    Deferred,
    /// Nothing was done, for `reason`.
    Dropped,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Acted => "acted",
            Decision::Merged => "merged",
            Decision::Deferred => "deferred",
            Decision::Dropped => "dropped",
        }
    }
}

/// `retrain.decided.<model>`: the trainer's decision on one trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrainDecided {
    /// The trigger's event id (a `drift.detected` or `retrain.requested` event).
    pub trigger_event_id: String,
    /// `drift`, `forced`, `schedule` or `follow_up`.
    pub trigger: String,
    pub decision: Decision,
    /// Why, in words (always set).
    pub reason: String,
    /// The trigger that led the run this one acted in or merged into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_event_id: Option<String>,
    /// How the run ended: `promoted`, `rejected`, `reused`, `covered`, `skipped`, `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The candidate version the run registered, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// A deferred trigger is judged again once the label log reaches this many labels past
    /// where it stood (see `labels_seq`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_labels: Option<u64>,
    /// The data-log sequence of the newest label when the decision was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels_seq: Option<u64>,
}
