//! The result of comparing a window with a reference: per feature, the test used, its score and
//! verdict, PSI and Jensen-Shannon always, missing rates and unseen categories, and the
//! distributions to plot; then the dataset verdict and prediction drift. Serialisable as JSON
//! (non-finite numbers become `null`).

use serde::{Deserialize, Serialize};

use super::policy::StatTest;
use crate::schema::FeatureKind;

/// One side (reference or current) of a feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideStats {
    /// Present values.
    pub count: u64,
    pub missing_rate: f64,
    /// Numeric features only.
    pub mean: Option<f64>,
    pub std: Option<f64>,
}

/// Current categories the reference never saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnseenCategories {
    /// Current values in unseen categories.
    pub count: u64,
    /// Their share of the current present values.
    pub share: f64,
    /// How many distinct unseen categories were counted by name.
    pub distinct: usize,
    /// The most frequent, with counts (at most 20).
    pub top: Vec<(String, u64)>,
}

/// Reference and current shares over the same bins, for plotting.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Distribution {
    pub labels: Vec<String>,
    /// Bin edges (numeric features binned by value; `labels.len() + 1` of them).
    pub edges: Option<Vec<f64>>,
    pub reference: Vec<f64>,
    pub current: Vec<f64>,
}

/// Drift of one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    pub name: String,
    pub kind: FeatureKind,
    /// The test that judged the feature (`None` when it could not be tested).
    pub test: Option<StatTest>,
    /// The test's statistic: KS D, chi-square X², Z, or the distance itself. `None` when not
    /// finite (chi-square with a category the reference never saw).
    pub statistic: Option<f64>,
    /// p-value, for p-value tests.
    pub p_value: Option<f64>,
    /// What the threshold is compared with: the p-value or the distance.
    pub score: Option<f64>,
    pub threshold: f64,
    /// Feature drift: the test says this feature's distribution moved.
    pub drifted: bool,
    /// Left out of the dataset verdict by policy.
    pub ignored: bool,
    /// Population Stability Index over the reference's bins (deciles) or categories.
    pub psi: Option<f64>,
    /// Jensen-Shannon distance (natural log) over the same bins.
    pub jensen_shannon: Option<f64>,
    pub reference: SideStats,
    pub current: SideStats,
    pub unseen: Option<UnseenCategories>,
    /// How the verdict was reached where that is not obvious (sampling, skipped tests).
    pub notes: Vec<String>,
    pub distribution: Distribution,
}

/// Drift of the predicted probabilities of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassPredictionDrift {
    pub class: String,
    pub jensen_shannon: Option<f64>,
    pub psi: Option<f64>,
    pub reference_mean: f64,
    pub current_mean: f64,
    pub distribution: Distribution,
}

/// Drift of the model's output distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionDrift {
    pub rows: u64,
    pub threshold: f64,
    /// Prediction drift: some class's Jensen-Shannon distance is at least `threshold`.
    pub drifted: bool,
    /// Binary models: the positive class only (the other mirrors it). Multiclass: every class.
    pub classes: Vec<ClassPredictionDrift>,
    pub reference_predicted_share: Vec<f64>,
    pub current_predicted_share: Vec<f64>,
}

/// The comparison of a window with a reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub reference_rows: u64,
    pub current_rows: u64,
    pub features: Vec<FeatureDrift>,
    /// Features with a score that count towards the dataset verdict.
    pub tested_features: usize,
    /// How many features show feature drift (a count; their names: [`Self::drifted_names`]).
    pub drifted_features: usize,
    pub drift_share: f64,
    /// The share at which the dataset drifts.
    pub dataset_drift_threshold: f64,
    /// Dataset drift: the share rule, `drift_share >= dataset_drift_threshold`. A window can
    /// show feature drift without dataset drift (see [`super::verdict`]).
    pub dataset_drift: bool,
    pub prediction: Option<PredictionDrift>,
}

impl DriftReport {
    /// A feature by name.
    pub fn feature(&self, name: &str) -> Option<&FeatureDrift> {
        self.features.iter().find(|f| f.name == name)
    }

    /// Names of the drifted features, in order.
    pub fn drifted_names(&self) -> Vec<&str> {
        self.features
            .iter()
            .filter(|f| f.drifted)
            .map(|f| f.name.as_str())
            .collect()
    }
}
