//! The model boundary: every model family mend can train and serve, behind one [`Model`].
//!
//! The rest of mend (pipeline, artifact, server, trainer, CLI) reaches a fitted model only
//! through [`Model`] and a training run's family-specific settings only through [`Algorithm`]:
//! adding a family is a new variant in both and a new file beside [`logistic`].
//!
//! - [`TrainSettings`]: settings of a run shared by every family (holdout, category pruning,
//!   threads) plus the [`Algorithm`] with its own settings.
//! - [`Model`]: fit, class probabilities (one row, or a matrix), shape checks, and
//!   explanation-free metadata ([`ModelSummary`]) for `mend inspect` and the OIP metadata.
//! - [`logistic`]: weighted, L2-regularised logistic regression (binary and softmax).

pub mod logistic;

use std::fmt;

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

pub use logistic::{ClassWeight, LogisticModel, LogisticSettings, Solver};

/// A model family, as named in artifacts, settings and the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Logistic,
}

impl Family {
    /// Every family this build can train and serve.
    pub const ALL: &'static [Family] = &[Family::Logistic];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Logistic => "logistic",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Family {
    type Err = CoreError;

    fn from_str(text: &str) -> Result<Family> {
        Family::ALL
            .iter()
            .copied()
            .find(|family| family.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = Family::ALL.iter().map(|f| f.as_str()).collect();
                CoreError::Training(format!(
                    "unknown model family `{text}`; known: {}",
                    known.join(", ")
                ))
            })
    }
}

/// Which family a run trains, with that family's own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum Algorithm {
    Logistic(LogisticSettings),
}

impl Default for Algorithm {
    fn default() -> Self {
        Algorithm::Logistic(LogisticSettings::default())
    }
}

impl Algorithm {
    /// The default settings of a family.
    pub fn default_for(family: Family) -> Algorithm {
        match family {
            Family::Logistic => Algorithm::Logistic(LogisticSettings::default()),
        }
    }

    pub fn family(&self) -> Family {
        match self {
            Algorithm::Logistic(_) => Family::Logistic,
        }
    }

    pub fn validate(&self) -> Result<()> {
        match self {
            Algorithm::Logistic(settings) => settings.validate(),
        }
    }

    /// The family's settings in a line, for `mend inspect` and logs.
    pub fn describe(&self) -> String {
        match self {
            Algorithm::Logistic(s) => format!(
                "logistic: l2 {}, class weight {:?}, solver {:?}, at most {} iterations, tolerance {}",
                s.l2, s.class_weight, s.solver, s.max_iterations, s.tolerance
            ),
        }
    }
}

/// Settings of one training run; stored in the artifact so a run can be repeated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainSettings {
    /// Share of the newest rows held out for evaluation.
    pub holdout_fraction: f64,
    /// Categories seen fewer times than this in training go to the unknown bucket.
    pub min_category_frequency: usize,
    /// Threads for fitting; 0 means every core.
    pub threads: usize,
    /// The family trained, with its own settings.
    pub algorithm: Algorithm,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            holdout_fraction: 0.2,
            min_category_frequency: 1,
            threads: 0,
            algorithm: Algorithm::default(),
        }
    }
}

impl TrainSettings {
    pub fn validate(&self) -> Result<()> {
        if !(self.holdout_fraction > 0.0 && self.holdout_fraction < 1.0) {
            return Err(CoreError::Training(
                "invalid setting: holdout_fraction must be between 0 and 1 (exclusive)".into(),
            ));
        }
        self.algorithm.validate()
    }

    /// The threads a fit may use: `threads`, or every core when 0.
    pub fn fit_threads(&self) -> usize {
        if self.threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            self.threads
        }
    }
}

/// How the fit went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Wall time of the optimiser alone (no preprocessing or evaluation).
    #[serde(default)]
    pub fit_ms: f64,
    /// `None` where the solver does not say (linfa).
    pub iterations: Option<u64>,
    pub converged: Option<bool>,
    pub final_loss: Option<f64>,
}

/// What a fitted model is, without explaining its predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    pub family: Family,
    /// Width of the preprocessed input row.
    pub inputs: usize,
    /// Classes the model scores.
    pub classes: usize,
    /// Fitted numbers (weights and intercepts for linear models).
    pub parameters: usize,
}

/// A fitted model of any family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum Model {
    Logistic(LogisticModel),
}

impl Model {
    /// Fits the family `settings.algorithm` names on a preprocessed matrix and class indices
    /// `y` (`0..n_classes`).
    pub fn fit(
        x: ArrayView2<'_, f64>,
        y: &[usize],
        n_classes: usize,
        class_names: &[String],
        settings: &TrainSettings,
    ) -> Result<(Model, FitReport)> {
        settings.validate()?;
        let started = std::time::Instant::now();
        let (model, mut report) = match &settings.algorithm {
            Algorithm::Logistic(logistic) => {
                let (model, report) = LogisticModel::fit(
                    x,
                    y,
                    n_classes,
                    class_names,
                    logistic,
                    settings.fit_threads(),
                )?;
                (Model::Logistic(model), report)
            }
        };
        report.fit_ms = started.elapsed().as_secs_f64() * 1e3;
        Ok((model, report))
    }

    pub fn family(&self) -> Family {
        match self {
            Model::Logistic(_) => Family::Logistic,
        }
    }

    /// The OIP `platform` of a served model, e.g. `mend-logistic`.
    pub fn platform(&self) -> &'static str {
        match self {
            Model::Logistic(_) => "mend-logistic",
        }
    }

    /// Width of the preprocessed input row.
    pub fn n_inputs(&self) -> usize {
        match self {
            Model::Logistic(m) => m.n_inputs,
        }
    }

    /// Classes the model scores.
    pub fn n_classes(&self) -> usize {
        match self {
            Model::Logistic(m) => m.n_classes,
        }
    }

    pub fn summary(&self) -> ModelSummary {
        match self {
            Model::Logistic(m) => ModelSummary {
                family: Family::Logistic,
                inputs: m.n_inputs,
                classes: m.n_classes,
                parameters: m.coef.len() + m.intercept.len(),
            },
        }
    }

    /// Checks shapes after loading.
    pub fn validate(&self) -> Result<()> {
        match self {
            Model::Logistic(m) => m.validate(),
        }
    }

    /// The logistic weights, when the model is logistic.
    pub fn as_logistic(&self) -> Option<&LogisticModel> {
        match self {
            Model::Logistic(m) => Some(m),
        }
    }

    /// The logistic weights, when the model is logistic, to change (tests and benchmarks build
    /// variants this way).
    pub fn as_logistic_mut(&mut self) -> Option<&mut LogisticModel> {
        match self {
            Model::Logistic(m) => Some(m),
        }
    }

    /// Class probabilities of one preprocessed row into `out` (`n_classes` long).
    #[inline]
    pub fn predict_row(&self, x: &[f64], out: &mut [f64]) {
        match self {
            Model::Logistic(m) => m.predict_row(x, out),
        }
    }

    /// Class probabilities for every row of a preprocessed matrix.
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        match self {
            Model::Logistic(m) => m.predict_proba(x),
        }
    }
}
