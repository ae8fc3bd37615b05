//! Which test judges a feature, and at what threshold: Evidently's default rule, made
//! configurable per model and per feature.
//!
//! The default rule (Evidently's `_get_default_stattest`, checked against the 0.7.23 source), where `n`
//! is the reference's non-missing count and `u` the number of distinct values in reference and
//! current together:
//!
//! | reference | numeric, `u > 5` | numeric `u <= 5`, or categorical |
//! |---|---|---|
//! | `n <= 1000` | Kolmogorov-Smirnov, drift at p < 0.05 | chi-square\* (p < 0.05); two-proportion Z-test when `u <= 2` |
//! | `n > 1000` | Wasserstein normed by the reference std, drift at >= 0.1 | Jensen-Shannon distance, drift at >= 0.1 |
//!
//! The dataset drifts when the share of drifted features is at least 0.5.
//!
//! \* One deliberate difference: chi-square is the two-sample homogeneity test, not Evidently's
//! goodness of fit against the reference shares, which ignores the reference's sampling noise
//! and flags identical distributions far beyond alpha (see
//! [`chi_square_homogeneity`](super::chisquare::chi_square_homogeneity)).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A statistical test or distance that can judge one feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatTest {
    /// Two-sample Kolmogorov-Smirnov; drift when p < threshold.
    Ks,
    /// Chi-square of reference against current counts (2×k homogeneity test); drift when
    /// p < threshold.
    ChiSquare,
    /// Two-proportion Z-test (binary features); drift when p < threshold.
    ZTest,
    /// Wasserstein-1 normed by the reference std; drift when >= threshold.
    Wasserstein,
    /// Jensen-Shannon distance (natural log); drift when >= threshold.
    JensenShannon,
    /// Population Stability Index; drift when >= threshold.
    Psi,
}

impl StatTest {
    /// Whether the score is a p-value (drift below the threshold) rather than a distance
    /// (drift at or above it).
    pub fn is_p_value(self) -> bool {
        matches!(self, StatTest::Ks | StatTest::ChiSquare | StatTest::ZTest)
    }

    /// Whether the test reads raw numeric values (not bins or categories).
    pub fn needs_numeric_values(self) -> bool {
        matches!(self, StatTest::Ks | StatTest::Wasserstein)
    }

    /// A short human name.
    pub fn label(self) -> &'static str {
        match self {
            StatTest::Ks => "K-S p-value",
            StatTest::ChiSquare => "chi-square p-value",
            StatTest::ZTest => "Z-test p-value",
            StatTest::Wasserstein => "Wasserstein (normed)",
            StatTest::JensenShannon => "Jensen-Shannon distance",
            StatTest::Psi => "PSI",
        }
    }

    /// Whether `score` means drift at `threshold`.
    pub fn drifted(self, score: f64, threshold: f64) -> bool {
        if score.is_nan() {
            return false;
        }
        if self.is_p_value() {
            score < threshold
        } else {
            score >= threshold
        }
    }
}

/// Per-feature changes to the policy (JSON/TOML: `{"test": "psi", "threshold": 0.2}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeaturePolicy {
    /// Use this test instead of the default rule.
    pub test: Option<StatTest>,
    /// Use this threshold instead of the test's default.
    pub threshold: Option<f64>,
    /// Leave the feature out of drift detection (it is still reported, not counted).
    pub ignore: bool,
}

/// Thresholds and test choice for data and prediction drift. Every field has Evidently's
/// default, so `{}` is a valid policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriftPolicy {
    /// References with at most this many non-missing values get the p-value tests; larger ones
    /// get the distances (p-values flag nearly everything on large samples).
    pub small_reference_rows: usize,
    /// A numeric feature with at most this many distinct values is tested like a categorical.
    pub discrete_max_unique: usize,
    pub ks_threshold: f64,
    pub chi_square_threshold: f64,
    pub z_threshold: f64,
    pub wasserstein_threshold: f64,
    pub jensen_shannon_threshold: f64,
    pub psi_threshold: f64,
    /// The dataset drifts when at least this share of the tested features drifts.
    pub dataset_drift_share: f64,
    /// Prediction drift: Jensen-Shannon distance between predicted-probability histograms.
    pub prediction_threshold: f64,
    /// When set, a feature whose missing rate rises by more than this (absolute) counts as
    /// drifted too. Off by default, as in Evidently.
    pub missing_rate_increase: Option<f64>,
    /// Per-feature overrides by feature name.
    pub features: BTreeMap<String, FeaturePolicy>,
}

impl Default for DriftPolicy {
    fn default() -> Self {
        DriftPolicy {
            small_reference_rows: 1000,
            discrete_max_unique: 5,
            ks_threshold: 0.05,
            chi_square_threshold: 0.05,
            z_threshold: 0.05,
            wasserstein_threshold: 0.1,
            jensen_shannon_threshold: 0.1,
            psi_threshold: 0.1,
            dataset_drift_share: 0.5,
            prediction_threshold: 0.1,
            missing_rate_increase: None,
            features: BTreeMap::new(),
        }
    }
}

/// What the rule needs to know about a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureFacts {
    pub numeric: bool,
    /// Non-missing values in the reference.
    pub reference_count: usize,
    /// Distinct values in reference and current together, if at most `discrete_max_unique`
    /// (`None`: more).
    pub distinct: Option<usize>,
}

impl DriftPolicy {
    /// The default threshold of a test.
    pub fn threshold_of(&self, test: StatTest) -> f64 {
        match test {
            StatTest::Ks => self.ks_threshold,
            StatTest::ChiSquare => self.chi_square_threshold,
            StatTest::ZTest => self.z_threshold,
            StatTest::Wasserstein => self.wasserstein_threshold,
            StatTest::JensenShannon => self.jensen_shannon_threshold,
            StatTest::Psi => self.psi_threshold,
        }
    }

    /// Evidently's default choice of test.
    pub fn default_test(&self, facts: FeatureFacts) -> StatTest {
        let discrete = !facts.numeric || facts.distinct.is_some();
        let binary = facts.distinct.is_some_and(|u| u <= 2);
        let small = facts.reference_count <= self.small_reference_rows;
        match (small, discrete) {
            (true, false) => StatTest::Ks,
            (true, true) if binary => StatTest::ZTest,
            (true, true) => StatTest::ChiSquare,
            (false, false) => StatTest::Wasserstein,
            (false, true) => StatTest::JensenShannon,
        }
    }

    /// The test and threshold for a feature: its override, else the default rule.
    pub fn choose(&self, name: &str, facts: FeatureFacts) -> (StatTest, f64) {
        let over = self.features.get(name);
        let test = over
            .and_then(|o| o.test)
            .unwrap_or_else(|| self.default_test(facts));
        let threshold = over
            .and_then(|o| o.threshold)
            .unwrap_or_else(|| self.threshold_of(test));
        (test, threshold)
    }

    /// Whether a feature is left out of drift detection.
    pub fn ignores(&self, name: &str) -> bool {
        self.features.get(name).is_some_and(|o| o.ignore)
    }

    /// Parses a policy from JSON, naming the bad field on error.
    pub fn from_json(text: &str) -> crate::Result<DriftPolicy> {
        serde_json::from_str(text)
            .map_err(|e| crate::CoreError::Input(format!("drift policy: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(numeric: bool, reference_count: usize, distinct: Option<usize>) -> FeatureFacts {
        FeatureFacts {
            numeric,
            reference_count,
            distinct,
        }
    }

    #[test]
    fn default_rule_is_evidentlys() {
        let p = DriftPolicy::default();
        assert_eq!(p.default_test(facts(true, 1000, None)), StatTest::Ks);
        assert_eq!(
            p.default_test(facts(true, 1001, None)),
            StatTest::Wasserstein
        );
        assert_eq!(
            p.default_test(facts(true, 500, Some(5))),
            StatTest::ChiSquare
        );
        assert_eq!(p.default_test(facts(true, 500, Some(2))), StatTest::ZTest);
        assert_eq!(p.default_test(facts(false, 500, Some(2))), StatTest::ZTest);
        assert_eq!(p.default_test(facts(false, 500, None)), StatTest::ChiSquare);
        assert_eq!(
            p.default_test(facts(false, 5000, Some(2))),
            StatTest::JensenShannon
        );
        assert_eq!(
            p.default_test(facts(true, 5000, Some(3))),
            StatTest::JensenShannon
        );
    }

    #[test]
    fn overrides_replace_test_and_threshold() {
        let p = DriftPolicy::from_json(
            r#"{"features": {"x": {"test": "psi", "threshold": 0.2}, "y": {"ignore": true}}}"#,
        )
        .unwrap_or_default();
        assert_eq!(p.choose("x", facts(true, 10, None)), (StatTest::Psi, 0.2));
        assert_eq!(p.choose("z", facts(true, 10, None)), (StatTest::Ks, 0.05));
        assert!(p.ignores("y"));
        assert!(DriftPolicy::from_json(r#"{"ks_alpha": 0.1}"#).is_err());
    }
}
