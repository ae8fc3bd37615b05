//! The drift verdicts, named and worded the same on every surface: `mend drift`'s table, the
//! monitor's report JSON, `mend report` and every HTML page.
//!
//! - **feature drift**: a feature's test says its distribution moved (per feature: the test,
//!   its score and threshold; [`FeatureDrift::drifted`](super::FeatureDrift)).
//! - **dataset drift**: the share rule: at least `dataset_drift_share` (0.5 by default) of the
//!   tested features drifted ([`DriftReport::dataset_drift`]). One feature of six drifting is
//!   feature drift without dataset drift.
//! - **prediction drift**: the model's predicted probabilities moved (Jensen-Shannon distance
//!   per class).
//! - **performance drift**: accuracy on labels fell (the monitor only: it needs labels).
//!
//! Each is a window's verdict. The monitor's **alarm** (what raises `drift.detected`) is a
//! fifth line, built by the monitor: drift that persisted for several windows in a row.

use std::fmt;

use super::report::{DriftReport, FeatureDrift};

/// Per feature: its test said the distribution moved.
pub const FEATURE_DRIFT: &str = "feature drift";
/// The share rule over the tested features.
pub const DATASET_DRIFT: &str = "dataset drift";
/// The predicted probabilities moved.
pub const PREDICTION_DRIFT: &str = "prediction drift";
/// Accuracy on labels fell.
pub const PERFORMANCE_DRIFT: &str = "performance drift";
/// What the monitor raised `drift.detected` for.
pub const ALARM: &str = "alarm";

/// Drifted features named in a verdict's line; the rest are counted.
const LISTED_FEATURES: usize = 8;

/// One verdict: its name, yes, no or not measured, and why, in a few words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// One of [`FEATURE_DRIFT`], [`DATASET_DRIFT`], [`PREDICTION_DRIFT`],
    /// [`PERFORMANCE_DRIFT`], [`ALARM`].
    pub name: &'static str,
    /// `Some(true)`: drifted (for the alarm: raised); `None`: not measured.
    pub drifted: Option<bool>,
    /// The evidence, e.g. `1 of 6 features drifted, share 0.17 < 0.50`.
    pub detail: String,
}

impl Verdict {
    pub fn new(name: &'static str, drifted: Option<bool>, detail: impl Into<String>) -> Self {
        Verdict {
            name,
            drifted,
            detail: detail.into(),
        }
    }

    /// `yes`, `no` or `not measured`.
    pub fn word(&self) -> &'static str {
        match self.drifted {
            Some(true) => "yes",
            Some(false) => "no",
            None => "not measured",
        }
    }

    /// The verdict as one line: `dataset drift: no (1 of 6 features drifted, share 0.17 <
    /// 0.50)`. Every surface prints exactly this.
    pub fn line(&self) -> String {
        if self.detail.is_empty() {
            format!("{}: {}", self.name, self.word())
        } else {
            format!("{}: {} ({})", self.name, self.word(), self.detail)
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line())
    }
}

impl DriftReport {
    /// Dataset drift: the share rule.
    pub fn dataset_verdict(&self) -> Verdict {
        if self.tested_features == 0 {
            return Verdict::new(
                DATASET_DRIFT,
                Some(self.dataset_drift),
                "no feature could be tested",
            );
        }
        let compared = if self.drift_share >= self.dataset_drift_threshold {
            ">="
        } else {
            "<"
        };
        Verdict::new(
            DATASET_DRIFT,
            Some(self.dataset_drift),
            format!(
                "{} of {} features drifted, share {:.2} {compared} {:.2}",
                self.drifted_features,
                self.tested_features,
                self.drift_share,
                self.dataset_drift_threshold
            ),
        )
    }

    /// Feature drift: which features drifted, each with its test, score and threshold.
    pub fn feature_verdict(&self) -> Verdict {
        let drifted: Vec<&FeatureDrift> = self.features.iter().filter(|f| f.drifted).collect();
        if drifted.is_empty() {
            return Verdict::new(
                FEATURE_DRIFT,
                Some(false),
                format!(
                    "none of {} tested feature{} drifted",
                    self.tested_features,
                    if self.tested_features == 1 { "" } else { "s" }
                ),
            );
        }
        let mut named: Vec<String> = drifted
            .iter()
            .take(LISTED_FEATURES)
            .map(|&f| feature_evidence(f))
            .collect();
        if drifted.len() > LISTED_FEATURES {
            named.push(format!("and {} more", drifted.len() - LISTED_FEATURES));
        }
        Verdict::new(FEATURE_DRIFT, Some(true), named.join("; "))
    }

    /// Prediction drift: the largest Jensen-Shannon distance of a class's predicted
    /// probabilities against its threshold (not measured without predictions).
    pub fn prediction_verdict(&self) -> Verdict {
        let Some(prediction) = &self.prediction else {
            return Verdict::new(PREDICTION_DRIFT, None, "no predictions to compare");
        };
        let largest = prediction
            .classes
            .iter()
            .filter_map(|c| c.jensen_shannon.map(|js| (c.class.as_str(), js)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let detail = match largest {
            Some((class, js)) => format!(
                "P({class}): Jensen-Shannon {} {} {}",
                score(js),
                if js >= prediction.threshold {
                    ">="
                } else {
                    "<"
                },
                score(prediction.threshold)
            ),
            None => "no class could be compared".to_owned(),
        };
        Verdict::new(PREDICTION_DRIFT, Some(prediction.drifted), detail)
    }

    /// The verdicts a comparison alone can give, in the order every surface shows them:
    /// dataset drift, feature drift, and prediction drift when there were predictions.
    pub fn verdicts(&self) -> Vec<Verdict> {
        let mut out = vec![self.dataset_verdict(), self.feature_verdict()];
        if self.prediction.is_some() {
            out.push(self.prediction_verdict());
        }
        out
    }
}

/// `x0: Wasserstein (normed) 0.4981 >= 0.1000`, or why a feature drifted without its test.
fn feature_evidence(f: &FeatureDrift) -> String {
    match (f.test, f.score) {
        (Some(test), Some(value)) if test.drifted(value, f.threshold) => format!(
            "{}: {} {} {} {}",
            f.name,
            test.label(),
            score(value),
            if test.is_p_value() { "<" } else { ">=" },
            score(f.threshold)
        ),
        // Drifted by its missing rate (the policy's `missing_rate_increase`), which a note says.
        _ => match f.notes.iter().find(|n| n.starts_with("missing rate")) {
            Some(note) => format!("{}: {note}", f.name),
            None => f.name.clone(),
        },
    }
}

/// Four decimals, or scientific for the tiny p-values large samples produce.
fn score(x: f64) -> String {
    if x != 0.0 && x.abs() < 1e-4 {
        format!("{x:.2e}")
    } else {
        format!("{x:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::StatTest;
    use crate::drift::report::{ClassPredictionDrift, Distribution, PredictionDrift, SideStats};
    use crate::schema::FeatureKind;

    fn feature(name: &str, score: f64, drifted: bool) -> FeatureDrift {
        let side = SideStats {
            count: 100,
            missing_rate: 0.0,
            mean: None,
            std: None,
        };
        FeatureDrift {
            name: name.to_owned(),
            kind: FeatureKind::Numeric,
            test: Some(StatTest::Wasserstein),
            statistic: Some(score),
            p_value: None,
            score: Some(score),
            threshold: 0.1,
            drifted,
            ignored: false,
            psi: None,
            jensen_shannon: None,
            reference: side.clone(),
            current: side,
            unseen: None,
            notes: Vec::new(),
            distribution: Distribution::default(),
        }
    }

    fn one_of_six() -> DriftReport {
        let mut features = vec![feature("x0", 0.5, true)];
        for i in 1..6 {
            features.push(feature(&format!("x{i}"), 0.02, false));
        }
        DriftReport {
            reference_rows: 2000,
            current_rows: 1000,
            features,
            tested_features: 6,
            drifted_features: 1,
            drift_share: 1.0 / 6.0,
            dataset_drift_threshold: 0.5,
            dataset_drift: false,
            prediction: None,
        }
    }

    #[test]
    fn one_feature_of_six_is_feature_drift_without_dataset_drift() {
        let report = one_of_six();
        let lines: Vec<String> = report.verdicts().iter().map(Verdict::line).collect();
        assert_eq!(
            lines,
            [
                "dataset drift: no (1 of 6 features drifted, share 0.17 < 0.50)",
                "feature drift: yes (x0: Wasserstein (normed) 0.5000 >= 0.1000)",
            ]
        );
        assert_eq!(
            report.prediction_verdict().line(),
            "prediction drift: not measured (no predictions to compare)"
        );
    }

    #[test]
    fn the_share_rule_and_prediction_drift_are_worded_with_their_evidence() {
        let mut report = one_of_six();
        for f in report.features.iter_mut().take(3) {
            f.drifted = true;
            f.score = Some(0.3);
        }
        report.drifted_features = 3;
        report.drift_share = 0.5;
        report.dataset_drift = true;
        report.prediction = Some(PredictionDrift {
            rows: 1000,
            threshold: 0.1,
            drifted: true,
            classes: vec![ClassPredictionDrift {
                class: "yes".into(),
                jensen_shannon: Some(0.25),
                psi: None,
                reference_mean: 0.3,
                current_mean: 0.6,
                distribution: Distribution::default(),
            }],
            reference_predicted_share: vec![0.7, 0.3],
            current_predicted_share: vec![0.4, 0.6],
        });
        let lines: Vec<String> = report.verdicts().iter().map(Verdict::line).collect();
        assert_eq!(
            lines[0],
            "dataset drift: yes (3 of 6 features drifted, share 0.50 >= 0.50)"
        );
        assert!(
            lines[1].starts_with("feature drift: yes (x0: "),
            "{}",
            lines[1]
        );
        assert!(lines[1].contains("; x2: "), "{}", lines[1]);
        assert_eq!(
            lines[2],
            "prediction drift: yes (P(yes): Jensen-Shannon 0.2500 >= 0.1000)"
        );
    }
}
