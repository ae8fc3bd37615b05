//! Hand-built inputs for the tracker's unit tests (test builds only): drift reports as
//! `compare_reference` would give them, with the numbers a test wants, and a tracker over a
//! small trained champion with the entries that feed it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use mend_bus::ModelName;
use mend_bus::events::DataWindow;
use mend_core::FeatureKind;
use mend_core::drift::report::{ClassPredictionDrift, Distribution, SideStats};
use mend_core::drift::{
    DriftPolicy, DriftReport, FeatureDrift, PredictionDrift, StatTest, SummaryConfig,
};
use mend_core::record::{LabelRecord, PredictionRecord, Values};

use super::{Entry, Tracker, TrackerSettings};
use crate::champion::Champion;
use crate::detector::PageHinkleyConfig;
use crate::performance::TrendConfig;
use crate::reports::{MonitorReport, ReportParts, report_id};
use crate::state::ModelState;

/// The model the fixtures are about.
pub(super) fn model() -> ModelName {
    ModelName::new("churn").unwrap()
}

fn side() -> SideStats {
    SideStats {
        count: 100,
        missing_rate: 0.0,
        mean: Some(0.0),
        std: Some(1.0),
    }
}

/// A numeric feature judged by K-S at 0.05: p-value 0.01 when `drifted`, else 0.5.
pub(super) fn feature(name: &str, drifted: bool) -> FeatureDrift {
    let p = if drifted { 0.01 } else { 0.5 };
    FeatureDrift {
        name: name.to_owned(),
        kind: FeatureKind::Numeric,
        test: Some(StatTest::Ks),
        statistic: Some(0.2),
        p_value: Some(p),
        score: Some(p),
        threshold: 0.05,
        drifted,
        ignored: false,
        psi: None,
        jensen_shannon: None,
        reference: side(),
        current: side(),
        unseen: None,
        notes: Vec::new(),
        distribution: Distribution::default(),
    }
}

/// A 300-row window's comparison over `features` (all tested), with no prediction drift
/// section.
pub(super) fn report(features: Vec<FeatureDrift>, dataset_drift: bool) -> DriftReport {
    let drifted = features.iter().filter(|f| f.drifted).count();
    let tested = features.len();
    DriftReport {
        reference_rows: 1_000,
        current_rows: 300,
        tested_features: tested,
        drifted_features: drifted,
        drift_share: if tested == 0 {
            0.0
        } else {
            drifted as f64 / tested as f64
        },
        dataset_drift_threshold: 0.5,
        dataset_drift,
        features,
        prediction: None,
    }
}

/// Prediction drift over `classes` (name, Jensen-Shannon distance), drifted when a distance
/// reaches `threshold`.
pub(super) fn prediction(threshold: f64, classes: &[(&str, Option<f64>)]) -> PredictionDrift {
    PredictionDrift {
        rows: 300,
        threshold,
        drifted: classes
            .iter()
            .any(|(_, js)| js.is_some_and(|js| js >= threshold)),
        classes: classes
            .iter()
            .map(|&(class, jensen_shannon)| ClassPredictionDrift {
                class: class.to_owned(),
                jensen_shannon,
                psi: None,
                reference_mean: 0.5,
                current_mean: 0.5,
                distribution: Distribution::default(),
            })
            .collect(),
        reference_predicted_share: vec![0.5, 0.5],
        current_predicted_share: vec![0.5, 0.5],
    }
}

/// The report of the window `window` of [`model`] against champion v3.
pub(super) fn monitor_report(
    drift: DriftReport,
    window: DataWindow,
    estimated_accuracy: Option<f64>,
) -> MonitorReport {
    MonitorReport::new(ReportParts {
        id: report_id(window.to_seq.unwrap_or_default()),
        model: model().as_str().to_owned(),
        champion_version: 3,
        window,
        created_ms: 0,
        data_alarm: false,
        confirmed: Vec::new(),
        estimated_accuracy,
        performance: None,
        drift,
    })
}

/// Label windows of 4, nothing confirmed, no trend test; a champion trained on 2 numeric
/// features (`x0`, `x1`) and 2 classes.
pub(super) fn tracker(version: u64, window_rows: usize, state: ModelState) -> Tracker {
    let settings = TrackerSettings {
        window_rows,
        window_ms: None,
        label_window: 4,
        accuracy_tolerance: 0.05,
        min_drifted_features: 1,
        confirm_windows: 1_000,
        join_rows: 100,
        policy: DriftPolicy::default(),
        detector: PageHinkleyConfig::default(),
        trend: TrendConfig { window: 0, z: 4.0 },
        summary: SummaryConfig::default(),
    };
    let artifact = Arc::new(mend_testkit::artifacts::trained(1));
    Tracker::new(model(), settings, Champion { version, artifact }, state)
}

/// Four logged predictions of the first class from `seq`, then four labels naming the
/// second: four wrong answers, the last label at `seq + 7`.
pub(super) fn wrong_answers(seq: u64, classes: &[String]) -> Vec<Entry> {
    let rows = seq..seq + 4;
    let predictions = rows.clone().map(|seq| Entry::Prediction {
        seq,
        ms: 0,
        prediction: PredictionRecord {
            row_id: format!("row-{seq}"),
            time_ms: 0,
            model_version: 1,
            values: Values::new(),
            probabilities: vec![0.9, 0.1],
            label: classes[0].clone(),
        },
    });
    let labels = rows.map(|row| Entry::Label {
        seq: row + 4,
        label: LabelRecord {
            row_id: format!("row-{row}"),
            label: classes[1].clone(),
            time_ms: 0,
        },
    });
    predictions.chain(labels).collect()
}
