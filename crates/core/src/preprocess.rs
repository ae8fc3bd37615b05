//! Preprocessing fitted on training data only and applied identically at predict time.
//!
//! Numeric features: median imputation, then standard scaling (mean and std of the imputed
//! training values; a constant feature scales by 1). Categorical features: one-hot over the
//! categories seen at least `min_frequency` times in training, plus one unknown bucket that takes
//! rare, unseen and missing values.

use std::collections::{BTreeMap, HashMap};

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};
use crate::frame::{Column, Frame};
use crate::stats::median;

/// The fitted transform of one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Step {
    Numeric { median: f64, mean: f64, std: f64 },
    Categorical { categories: Vec<String> },
}

impl Step {
    /// Number of model inputs this feature becomes.
    pub fn width(&self) -> usize {
        match self {
            Step::Numeric { .. } => 1,
            Step::Categorical { categories } => categories.len() + 1,
        }
    }

    /// Scales one numeric value (NaN is imputed).
    #[inline]
    pub fn scale(&self, x: f64) -> f64 {
        match self {
            Step::Numeric { median, mean, std } => {
                let x = if x.is_nan() { *median } else { x };
                (x - mean) / std
            }
            Step::Categorical { .. } => 0.0,
        }
    }
}

/// Fitted preprocessing for every feature of a schema, in schema order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    pub steps: Vec<Step>,
    pub min_frequency: usize,
    /// Index lookups for categories, rebuilt after loading; not serialised.
    #[serde(skip)]
    lookup: Vec<HashMap<String, usize>>,
}

impl Preprocessor {
    /// Fits on training rows only.
    pub fn fit(frame: &Frame, min_frequency: usize) -> Result<Preprocessor> {
        if frame.is_empty() {
            return Err(CoreError::Training(
                "cannot fit preprocessing on zero rows".into(),
            ));
        }
        let mut steps = Vec::with_capacity(frame.columns.len());
        for column in &frame.columns {
            steps.push(match column {
                Column::Numeric(values) => {
                    let present: Vec<f64> =
                        values.iter().copied().filter(|x| !x.is_nan()).collect();
                    let med = if present.is_empty() {
                        0.0
                    } else {
                        median(&present)
                    };
                    let n = values.len() as f64;
                    let imputed = || values.iter().map(|&x| if x.is_nan() { med } else { x });
                    let first = imputed().next().unwrap_or(0.0);
                    // One repeated value (say one large value, the rest imputed by it) is
                    // constant: its mean is the value itself, not a sum's rounding of it, whose
                    // leftover noise would otherwise be divided by a std of 1e-11 into ±1.
                    let (mean, std) = if imputed().all(|x| x == first) {
                        (first, 1.0)
                    } else {
                        let mean = imputed().sum::<f64>() / n;
                        let var = imputed().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
                        (mean, if var.sqrt() > 1e-12 { var.sqrt() } else { 1.0 })
                    };
                    Step::Numeric {
                        median: med,
                        mean,
                        std,
                    }
                }
                Column::Categorical(values) => {
                    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                    for v in values.iter().flatten() {
                        *counts.entry(v.as_str()).or_default() += 1;
                    }
                    let categories = counts
                        .into_iter()
                        .filter(|(_, c)| *c >= min_frequency.max(1))
                        .map(|(k, _)| k.to_owned())
                        .collect();
                    Step::Categorical { categories }
                }
            });
        }
        Ok(Preprocessor::from_steps(steps, min_frequency))
    }

    /// Rebuilds a preprocessor (and its lookups) from fitted steps.
    pub fn from_steps(steps: Vec<Step>, min_frequency: usize) -> Preprocessor {
        let mut p = Preprocessor {
            steps,
            min_frequency,
            lookup: Vec::new(),
        };
        p.rebuild_lookup();
        p
    }

    /// Must run after deserialising.
    pub fn rebuild_lookup(&mut self) {
        self.lookup = self
            .steps
            .iter()
            .map(|s| match s {
                Step::Categorical { categories } => categories
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.clone(), i))
                    .collect(),
                Step::Numeric { .. } => HashMap::new(),
            })
            .collect();
    }

    /// Number of model inputs after preprocessing.
    pub fn width(&self) -> usize {
        self.steps.iter().map(Step::width).sum()
    }

    /// Position of a category in feature `f`'s one-hot block; the unknown bucket when unseen.
    #[inline]
    pub fn category_slot(&self, f: usize, value: Option<&str>) -> usize {
        let n = match &self.steps[f] {
            Step::Categorical { categories } => categories.len(),
            Step::Numeric { .. } => return 0,
        };
        value
            .and_then(|v| self.lookup.get(f).and_then(|m| m.get(v)).copied())
            .unwrap_or(n)
    }

    /// Transforms a frame into the model's input matrix (rows x width).
    pub fn transform(&self, frame: &Frame) -> Result<Array2<f64>> {
        if frame.columns.len() != self.steps.len() {
            return Err(CoreError::Input(format!(
                "frame has {} feature columns, preprocessing expects {}",
                frame.columns.len(),
                self.steps.len()
            )));
        }
        let n = frame.len();
        let width = self.width();
        let mut out = Array2::<f64>::zeros((n, width));
        let mut offset = 0;
        for (f, (step, column)) in self.steps.iter().zip(&frame.columns).enumerate() {
            match (step, column) {
                (Step::Numeric { .. }, Column::Numeric(values)) => {
                    for (i, &x) in values.iter().enumerate() {
                        out[[i, offset]] = step.scale(x);
                    }
                }
                (Step::Categorical { .. }, Column::Categorical(values)) => {
                    for (i, v) in values.iter().enumerate() {
                        out[[i, offset + self.category_slot(f, v.as_deref())]] = 1.0;
                    }
                }
                _ => {
                    return Err(CoreError::Input(format!(
                        "feature {f} has a different kind than when fitted"
                    )));
                }
            }
            offset += step.width();
        }
        Ok(out)
    }
}
