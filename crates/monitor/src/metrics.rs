//! The monitor's Prometheus metrics (names get the registry's `mend_` prefix). Labels carry
//! model names from the configuration and feature names from the champion's schema, so the
//! label space is bounded by what an operator set up.
//!
//! - `monitor_windows_total{model}`: data windows compared.
//! - `monitor_drift_share{model}`: share of drifted features in the last window.
//! - `monitor_feature_drift_score{model, feature}`: the last window's score per feature (the
//!   p-value or the distance of its test).
//! - `monitor_accuracy{model}` / `monitor_estimated_accuracy{model}`: the last labeled run's
//!   accuracy, and the last window's label-free estimate.
//! - `monitor_events_total{model, kind}`: `drift.detected` events published, by drift kind.
//! - `monitor_models_watched`: models whose loop runs (the allow-list, or those discovered).
//! - `monitor_state_save_failures_total{model}`: failed saves of a model's position and
//!   episodes (a tick that cannot save resumes from the last saved state; a rejection whose
//!   re-arm cannot be saved is not acknowledged, so it is heard again).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabel {
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeatureLabel {
    model: String,
    feature: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    model: String,
    kind: &'static str,
}

/// Every monitor metric; clones share them.
#[derive(Clone, Debug)]
pub struct MonitorMetrics {
    windows: Family<ModelLabel, Counter>,
    drift_share: Family<ModelLabel, FloatGauge>,
    feature_score: Family<FeatureLabel, FloatGauge>,
    accuracy: Family<ModelLabel, FloatGauge>,
    estimated_accuracy: Family<ModelLabel, FloatGauge>,
    events: Family<KindLabel, Counter>,
    watched: Gauge,
    state_save_failures: Family<ModelLabel, Counter>,
}

impl MonitorMetrics {
    /// How many models are watched now.
    pub fn watched(&self, count: usize) {
        self.watched.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Registers the metrics in the process registry.
    pub fn register(metrics: &mend_runtime::Metrics) -> Self {
        let this = MonitorMetrics {
            windows: Family::default(),
            drift_share: Family::default(),
            feature_score: Family::default(),
            accuracy: Family::default(),
            estimated_accuracy: Family::default(),
            events: Family::default(),
            watched: Gauge::default(),
            state_save_failures: Family::default(),
        };
        metrics.register(
            "monitor_models_watched",
            "Models whose drift loop runs",
            this.watched.clone(),
        );
        metrics.register(
            "monitor_windows",
            "Data windows compared with the champion's reference",
            this.windows.clone(),
        );
        metrics.register(
            "monitor_drift_share",
            "Share of drifted features in the last window",
            this.drift_share.clone(),
        );
        metrics.register(
            "monitor_feature_drift_score",
            "Drift score of each feature in the last window (p-value or distance)",
            this.feature_score.clone(),
        );
        metrics.register(
            "monitor_accuracy",
            "Accuracy of the champion on the last run of labels",
            this.accuracy.clone(),
        );
        metrics.register(
            "monitor_estimated_accuracy",
            "Label-free (CBPE) accuracy estimate of the last window",
            this.estimated_accuracy.clone(),
        );
        metrics.register(
            "monitor_events",
            "drift.detected events published, by kind",
            this.events.clone(),
        );
        metrics.register(
            "monitor_state_save_failures",
            "Saves of a model's monitor state (position and episodes) that failed",
            this.state_save_failures.clone(),
        );
        this
    }

    pub(crate) fn window(&self, model: &str, report: &crate::reports::MonitorReport) {
        let label = ModelLabel {
            model: model.to_owned(),
        };
        self.windows.get_or_create(&label).inc();
        self.drift_share
            .get_or_create(&label)
            .set(report.drift.drift_share);
        for feature in &report.drift.features {
            if let Some(score) = feature.score {
                self.feature_score
                    .get_or_create(&FeatureLabel {
                        model: model.to_owned(),
                        feature: feature.name.clone(),
                    })
                    .set(score);
            }
        }
        if let Some(estimate) = report.estimated_accuracy {
            self.estimated_accuracy.get_or_create(&label).set(estimate);
        }
    }

    pub(crate) fn accuracy(&self, model: &str, accuracy: f64) {
        self.accuracy
            .get_or_create(&ModelLabel {
                model: model.to_owned(),
            })
            .set(accuracy);
    }

    pub(crate) fn state_save_failed(&self, model: &str) {
        self.state_save_failures
            .get_or_create(&ModelLabel {
                model: model.to_owned(),
            })
            .inc();
    }

    pub(crate) fn event(&self, model: &str, kind: &'static str) {
        self.events
            .get_or_create(&KindLabel {
                model: model.to_owned(),
                kind,
            })
            .inc();
    }
}
