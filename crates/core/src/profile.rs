//! The reference profile of a model's training data, kept in its artifact so drift detection
//! never needs the training rows again: bounded summaries per feature, the distribution of
//! predicted probabilities on the rows it was trained and judged on, and the holdout metrics.

use std::collections::BTreeMap;

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::frame::{Column, Frame};
use crate::metrics::{Metrics, argmax};
use crate::schema::Schema;
use crate::stats::{quantile_sorted, sorted};

/// Quantile levels reported for every numeric feature.
pub const QUANTILE_LEVELS: [f64; 9] = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99];
/// Bins of the quantile-edged histogram (deciles).
pub const HISTOGRAM_BINS: usize = 10;
/// Points of the quantile sketch (levels `i / (SKETCH_POINTS - 1)`), enough for a KS statistic
/// within 0.5 % and a Wasserstein distance from quantile functions.
pub const SKETCH_POINTS: usize = 201;
/// Equal-width bins on [0, 1] for predicted probabilities.
pub const PROBABILITY_BINS: usize = 20;
/// Categories kept per categorical feature; the rest are pooled under [`OTHER_CATEGORY`].
pub const MAX_CATEGORIES: usize = 1000;
pub const OTHER_CATEGORY: &str = "__other__";

/// Summary of a numeric feature (missing values excluded from the distribution).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericProfile {
    pub name: String,
    pub count: usize,
    pub missing_rate: f64,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
    /// `(level, value)` for each of [`QUANTILE_LEVELS`].
    pub quantiles: Vec<(f64, f64)>,
    /// Histogram edges at the deciles (duplicates removed), and the share of values per bin.
    pub bin_edges: Vec<f64>,
    pub bin_freqs: Vec<f64>,
    /// Quantiles at `i / (SKETCH_POINTS - 1)`.
    pub sketch: Vec<f64>,
}

/// Summary of a categorical feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalProfile {
    pub name: String,
    pub count: usize,
    pub missing_rate: f64,
    /// Share of present values per category.
    pub frequencies: BTreeMap<String, f64>,
}

/// One feature's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FeatureProfile {
    Numeric(NumericProfile),
    Categorical(CategoricalProfile),
}

impl FeatureProfile {
    pub fn name(&self) -> &str {
        match self {
            FeatureProfile::Numeric(p) => &p.name,
            FeatureProfile::Categorical(p) => &p.name,
        }
    }
}

/// Distribution of the model's predictions on the rows it was trained and judged on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionProfile {
    pub classes: Vec<String>,
    /// Per class, the share of rows whose probability of that class falls in each of
    /// [`PROBABILITY_BINS`] equal bins on [0, 1].
    pub probability_bins: Vec<Vec<f64>>,
    pub mean_probability: Vec<f64>,
    /// Share of rows predicted as each class.
    pub predicted_share: Vec<f64>,
}

impl PredictionProfile {
    pub fn from_probabilities(proba: ArrayView2<'_, f64>, classes: &[String]) -> PredictionProfile {
        let n = proba.nrows().max(1) as f64;
        let k = classes.len();
        let mut bins = vec![vec![0.0; PROBABILITY_BINS]; k];
        let mut mean = vec![0.0; k];
        let mut share = vec![0.0; k];
        for row in proba.rows() {
            for (c, &p) in row.iter().enumerate() {
                bins[c][probability_bin(p)] += 1.0 / n;
                mean[c] += p / n;
            }
            share[argmax(row.iter().copied())] += 1.0 / n;
        }
        PredictionProfile {
            classes: classes.to_vec(),
            probability_bins: bins,
            mean_probability: mean,
            predicted_share: share,
        }
    }
}

/// The bin of a probability among [`PROBABILITY_BINS`] equal bins (1.0 goes to the last).
pub fn probability_bin(p: f64) -> usize {
    ((p.clamp(0.0, 1.0) * PROBABILITY_BINS as f64) as usize).min(PROBABILITY_BINS - 1)
}

/// Everything drift detection compares against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceProfile {
    pub rows: usize,
    pub features: Vec<FeatureProfile>,
    pub prediction: PredictionProfile,
    pub holdout_metrics: Metrics,
}

impl NumericProfile {
    /// Summarises values (NaN = missing).
    pub fn from_values(name: &str, values: &[f64]) -> NumericProfile {
        let s = sorted(values);
        let total = values.len();
        let count = s.len();
        let missing_rate = if total == 0 {
            0.0
        } else {
            (total - count) as f64 / total as f64
        };
        let mean = if count == 0 {
            f64::NAN
        } else {
            s.iter().sum::<f64>() / count as f64
        };
        let std = if count == 0 {
            f64::NAN
        } else {
            (s.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / count as f64).sqrt()
        };
        let quantiles = QUANTILE_LEVELS
            .iter()
            .map(|&q| (q, quantile_sorted(&s, q)))
            .collect();
        let mut bin_edges: Vec<f64> = (0..=HISTOGRAM_BINS)
            .map(|i| quantile_sorted(&s, i as f64 / HISTOGRAM_BINS as f64))
            .collect();
        bin_edges.dedup();
        let bin_freqs = histogram(&s, &bin_edges);
        let sketch = (0..SKETCH_POINTS)
            .map(|i| quantile_sorted(&s, i as f64 / (SKETCH_POINTS - 1) as f64))
            .collect();
        NumericProfile {
            name: name.to_owned(),
            count,
            missing_rate,
            mean,
            std,
            min: s.first().copied().unwrap_or(f64::NAN),
            max: s.last().copied().unwrap_or(f64::NAN),
            quantiles,
            bin_edges,
            bin_freqs,
            sketch,
        }
    }
}

/// Share of sorted values in each bin of `edges` (left-closed, the last bin closed; values
/// outside the edges go to the first or last bin). One edge gives a single bin.
pub fn histogram(sorted_values: &[f64], edges: &[f64]) -> Vec<f64> {
    let bins = edges.len().saturating_sub(1).max(1);
    let mut counts = vec![0.0; bins];
    if sorted_values.is_empty() {
        return counts;
    }
    for &x in sorted_values {
        counts[bin_of(x, edges)] += 1.0;
    }
    let n = sorted_values.len() as f64;
    counts.iter_mut().for_each(|c| *c /= n);
    counts
}

/// The bin of `x` among `edges` (see [`histogram`]).
pub fn bin_of(x: f64, edges: &[f64]) -> usize {
    let bins = edges.len().saturating_sub(1).max(1);
    // Number of inner edges <= x.
    let inner = if edges.len() > 2 {
        &edges[1..edges.len() - 1]
    } else {
        &[][..]
    };
    inner.partition_point(|&e| e <= x).min(bins - 1)
}

impl CategoricalProfile {
    pub fn from_values(name: &str, values: &[Option<String>]) -> CategoricalProfile {
        let total = values.len();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for v in values.iter().flatten() {
            *counts.entry(v.as_str()).or_default() += 1;
        }
        let count: usize = counts.values().sum();
        let mut by_count: Vec<(&str, usize)> = counts.into_iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut frequencies = BTreeMap::new();
        for (i, (k, c)) in by_count.into_iter().enumerate() {
            let key = if i < MAX_CATEGORIES {
                k
            } else {
                OTHER_CATEGORY
            };
            *frequencies.entry(key.to_owned()).or_insert(0.0) += c as f64 / count.max(1) as f64;
        }
        CategoricalProfile {
            name: name.to_owned(),
            count,
            missing_rate: if total == 0 {
                0.0
            } else {
                (total - count) as f64 / total as f64
            },
            frequencies,
        }
    }
}

impl ReferenceProfile {
    /// Profiles the training rows, the model's predicted probabilities (`proba`: on every row
    /// it was trained and judged on, training split and holdout, so the reference histogram is
    /// not the few hundred rows of a small holdout) and the holdout metrics.
    pub fn build(
        schema: &Schema,
        train: &Frame,
        proba: ArrayView2<'_, f64>,
        holdout_metrics: Metrics,
    ) -> ReferenceProfile {
        // Sorting each column dominates on large data: profile features on every core.
        let pairs: Vec<_> = schema.features.iter().zip(&train.columns).collect();
        let features = crate::parallel::map(&pairs, train.len() >= 50_000, |(f, col)| match col {
            Column::Numeric(v) => FeatureProfile::Numeric(NumericProfile::from_values(&f.name, v)),
            Column::Categorical(v) => {
                FeatureProfile::Categorical(CategoricalProfile::from_values(&f.name, v))
            }
        });
        ReferenceProfile {
            rows: train.len(),
            features,
            prediction: PredictionProfile::from_probabilities(proba, &schema.classes),
            holdout_metrics,
        }
    }
}
