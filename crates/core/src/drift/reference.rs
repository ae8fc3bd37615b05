//! The reference side of a comparison: a model's [`ReferenceProfile`] (from its artifact, no
//! training rows needed), or a reference built from data with a [`WindowSummary`] (for
//! `mend drift` on two files), which also keeps a sample for exact KS and Wasserstein.

use std::collections::BTreeMap;

use super::summary::{FeatureLayout, FeatureSummary, SummaryConfig, WindowSummary};
use crate::profile::{
    CategoricalProfile, FeatureProfile, NumericProfile, OTHER_CATEGORY, PredictionProfile,
    ReferenceProfile,
};

/// One feature of the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceFeature {
    pub profile: FeatureProfile,
    /// A sorted uniform sample of the present values (numeric), when built from data.
    pub sample: Option<Vec<f64>>,
    /// Exact distinct values and their shares (numeric, at most a handful), when known.
    pub distinct: Option<Vec<(f64, f64)>>,
}

/// What a window is compared against.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftReference {
    pub rows: u64,
    pub features: Vec<ReferenceFeature>,
    pub prediction: Option<PredictionProfile>,
}

impl DriftReference {
    /// The reference of a model's profile: summaries only, no sample.
    pub fn from_profile(profile: &ReferenceProfile) -> DriftReference {
        DriftReference {
            rows: profile.rows as u64,
            features: profile
                .features
                .iter()
                .map(|f| ReferenceFeature {
                    profile: f.clone(),
                    sample: None,
                    distinct: None,
                })
                .collect(),
            prediction: Some(profile.prediction.clone()),
        }
    }

    /// A reference built from a summary of reference data. Quantiles and deciles come from the
    /// row sample (exact when it holds every value); count, missing rate, mean, std, min and max
    /// are exact; categories beyond the summary's cap are pooled under [`OTHER_CATEGORY`].
    pub fn from_summary(summary: &WindowSummary) -> DriftReference {
        // Sorting large samples dominates: features on every core for large summaries.
        let parallel = summary.rows >= super::common::PARALLEL_ROWS;
        let indexed: Vec<(usize, &FeatureSummary)> = summary.features.iter().enumerate().collect();
        let features = crate::parallel::map(&indexed, parallel, |&(i, f)| match f {
            FeatureSummary::Numeric(s) => {
                let sample = summary.sorted_sample(i).unwrap_or_default();
                let mut profile = NumericProfile::from_values(&s.name, &sample);
                profile.count = s.count as usize;
                profile.missing_rate = s.missing_rate();
                profile.mean = s.mean().unwrap_or(f64::NAN);
                profile.std = s.std().unwrap_or(f64::NAN);
                if s.count > 0 {
                    profile.min = s.min;
                    profile.max = s.max;
                }
                let distinct = s.distinct_values().map(|values| {
                    values
                        .iter()
                        .map(|&(v, c)| (v, c as f64 / s.count.max(1) as f64))
                        .collect()
                });
                ReferenceFeature {
                    profile: FeatureProfile::Numeric(profile),
                    sample: Some(sample),
                    distinct,
                }
            }
            FeatureSummary::Categorical(s) => {
                let total = s.count.max(1) as f64;
                let mut frequencies: BTreeMap<String, f64> = s
                    .observed()
                    .into_iter()
                    .map(|(k, c)| (k.to_owned(), c as f64 / total))
                    .collect();
                if s.overflow > 0 {
                    *frequencies.entry(OTHER_CATEGORY.to_owned()).or_insert(0.0) +=
                        s.overflow as f64 / total;
                }
                ReferenceFeature {
                    profile: FeatureProfile::Categorical(CategoricalProfile {
                        name: s.name.clone(),
                        count: s.count as usize,
                        missing_rate: s.missing_rate(),
                        frequencies,
                    }),
                    sample: None,
                    distinct: None,
                }
            }
        });
        let p = &summary.prediction;
        let prediction = (p.rows > 0).then(|| {
            let n = p.rows as f64;
            PredictionProfile {
                classes: p.classes.clone(),
                probability_bins: p
                    .bins
                    .iter()
                    .map(|b| b.iter().map(|&c| c as f64 / n).collect())
                    .collect(),
                mean_probability: p.probability_sum.iter().map(|s| s / n).collect(),
                predicted_share: p.predicted.iter().map(|&c| c as f64 / n).collect(),
            }
        });
        DriftReference {
            rows: summary.rows,
            features,
            prediction,
        }
    }

    /// How a window compared with this reference should be laid out: its features in order,
    /// binned by the reference's deciles, with the reference's categories always counted.
    pub fn layout(&self) -> Vec<FeatureLayout> {
        self.features
            .iter()
            .map(|f| match &f.profile {
                FeatureProfile::Numeric(p) => FeatureLayout {
                    bin_edges: finite(&p.bin_edges),
                    // A reference built from data compares samples instead.
                    quantile_points: if f.sample.is_none() {
                        finite(&p.sketch)
                    } else {
                        None
                    },
                    ..FeatureLayout::numeric(&p.name)
                },
                FeatureProfile::Categorical(p) => FeatureLayout {
                    known_categories: p.frequencies.keys().cloned().collect(),
                    ..FeatureLayout::categorical(&p.name)
                },
            })
            .collect()
    }

    /// Classes of the reference's predictions (empty when it has none).
    pub fn classes(&self) -> Vec<String> {
        self.prediction
            .as_ref()
            .map(|p| p.classes.clone())
            .unwrap_or_default()
    }
}

impl WindowSummary {
    /// An empty window laid out to be compared with `reference`.
    pub fn for_reference(reference: &DriftReference, config: SummaryConfig) -> WindowSummary {
        WindowSummary::new(&reference.layout(), &reference.classes(), config)
    }

    /// An empty window laid out to be compared with a model's profile.
    pub fn for_profile(profile: &ReferenceProfile, config: SummaryConfig) -> WindowSummary {
        WindowSummary::for_reference(&DriftReference::from_profile(profile), config)
    }
}

/// A copy of points usable as bins: non-empty and finite.
fn finite(points: &[f64]) -> Option<Vec<f64>> {
    (!points.is_empty() && points.iter().all(|e| e.is_finite())).then(|| points.to_vec())
}

/// The distinct values of a numeric reference with their shares, if there are at most `cap`:
/// exact when the reference was built from data, else read from the quantile sketch.
pub fn reference_support(feature: &ReferenceFeature, cap: usize) -> Option<Vec<(f64, f64)>> {
    let FeatureProfile::Numeric(p) = &feature.profile else {
        return None;
    };
    if let Some(distinct) = &feature.distinct {
        return (distinct.len() <= cap).then(|| distinct.clone());
    }
    if let Some(sample) = &feature.sample
        && sample.len() == p.count
    {
        return support_of_sorted(sample, cap);
    }
    support_from_sketch(&p.sketch, cap)
}

/// Distinct values of a sorted sample with their shares, if at most `cap`.
fn support_of_sorted(sample: &[f64], cap: usize) -> Option<Vec<(f64, f64)>> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for &x in sample {
        match out.last_mut() {
            Some((v, c)) if *v == x => *c += 1.0,
            _ => {
                if out.len() == cap {
                    return None;
                }
                out.push((x, 1.0));
            }
        }
    }
    let n = sample.len().max(1) as f64;
    Some(out.into_iter().map(|(v, c)| (v, c / n)).collect())
}

/// Reads a discrete distribution off a quantile sketch. A variable with `k` values has a step
/// quantile function, so its sketch repeats each value; linear interpolation adds at most one
/// in-between point per step. More than `2·cap - 1` distinct points means more than `cap`
/// values. Values are the repeated points plus the minimum and maximum; each sketch point is
/// credited to the nearest value. Values rarer than one sketch step (0.5 %) can be missed.
fn support_from_sketch(sketch: &[f64], cap: usize) -> Option<Vec<(f64, f64)>> {
    if sketch.is_empty() || sketch.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mut runs: Vec<(f64, usize)> = Vec::new();
    for &x in sketch {
        match runs.last_mut() {
            Some((v, c)) if *v == x => *c += 1,
            _ => runs.push((x, 1)),
        }
    }
    if runs.len() > 2 * cap.max(1) - 1 {
        return None;
    }
    let last = runs.len() - 1;
    let values: Vec<f64> = runs
        .iter()
        .enumerate()
        .filter(|(i, (_, c))| *c >= 2 || *i == 0 || *i == last)
        .map(|(_, (v, _))| *v)
        .collect();
    if values.len() > cap {
        return None;
    }
    let mut weight = vec![0.0; values.len()];
    for &(x, c) in &runs {
        let nearest = values
            .iter()
            .enumerate()
            .min_by(|a, b| (a.1 - x).abs().total_cmp(&(b.1 - x).abs()))
            .map(|(i, _)| i)
            .unwrap_or(0);
        weight[nearest] += c as f64;
    }
    let total: f64 = weight.iter().sum();
    Some(
        values
            .into_iter()
            .zip(weight)
            .map(|(v, w)| (v, w / total))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_discrete_sketch_gives_back_its_values() {
        let values: Vec<f64> = (0..1000).map(|i| f64::from(i % 3)).collect();
        let p = NumericProfile::from_values("x", &values);
        let support = support_from_sketch(&p.sketch, 5).unwrap_or_default();
        let v: Vec<f64> = support.iter().map(|s| s.0).collect();
        assert_eq!(v, vec![0.0, 1.0, 2.0]);
        for (_, share) in support {
            assert!((share - 1.0 / 3.0).abs() < 0.01, "{share}");
        }
    }

    #[test]
    fn a_continuous_sketch_has_no_small_support() {
        let values: Vec<f64> = (0..1000).map(|i| f64::from(i).sqrt()).collect();
        let p = NumericProfile::from_values("x", &values);
        assert!(support_from_sketch(&p.sketch, 5).is_none());
    }
}
