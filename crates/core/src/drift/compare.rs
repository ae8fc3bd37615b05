//! Compares a window summary with a reference, feature by feature, then the dataset and the
//! predictions. Pure and bounded: the work depends on sample, bin and category sizes only.

use std::collections::BTreeMap;

use super::chisquare::chi_square_homogeneity;
use super::divergence::{jensen_shannon, psi, shares};
use super::ks::{ks_2samp_sorted, ks_sketch_vs_sample, sketch_cdf};
use super::policy::{DriftPolicy, FeatureFacts, StatTest};
use super::reference::{DriftReference, ReferenceFeature, reference_support};
use super::report::{
    ClassPredictionDrift, Distribution, DriftReport, FeatureDrift, PredictionDrift, SideStats,
    UnseenCategories,
};
use super::summary::{CategoricalSummary, FeatureSummary, NumericSummary, WindowSummary};
use super::wasserstein::{
    normed, wasserstein_sketch_vs_counts, wasserstein_sketch_vs_sample, wasserstein_sorted,
};
use super::ztest::two_proportion_z;
use crate::frame::format_number;
use crate::profile::{
    CategoricalProfile, FeatureProfile, NumericProfile, OTHER_CATEGORY, PROBABILITY_BINS,
    ReferenceProfile, bin_of,
};
use crate::schema::FeatureKind;
use crate::stats::quantile_sorted;

/// Bars in a numeric feature's plot.
const PLOT_BINS: usize = 20;
/// Categories named in a categorical feature's plot; the rest are pooled.
const PLOT_CATEGORIES: usize = 15;
/// Unseen categories listed by name in a report.
const UNSEEN_LISTED: usize = 20;
/// Label of current values in new categories past the summary's cap.
pub const OVERFLOW_LABEL: &str = "(more new categories)";

/// Compares a window with a model's reference profile (as kept in its artifact).
pub fn compare(
    profile: &ReferenceProfile,
    window: &WindowSummary,
    policy: &DriftPolicy,
) -> DriftReport {
    compare_reference(&DriftReference::from_profile(profile), window, policy)
}

/// Rows from which a window's features are compared on every core.
pub const PARALLEL_ROWS: u64 = 50_000;

/// Compares a window with any reference (a profile, or one built from data).
pub fn compare_reference(
    reference: &DriftReference,
    window: &WindowSummary,
    policy: &DriftPolicy,
) -> DriftReport {
    // Large windows compare large samples (sorting dominates): features on every core.
    let parallel = window.rows >= PARALLEL_ROWS;
    let features: Vec<FeatureDrift> = crate::parallel::map(&reference.features, parallel, |rf| {
        let index = window.feature_index(rf.profile.name());
        let current = index.and_then(|i| window.features.get(i).map(|s| (i, s)));
        compare_feature(rf, window, current, policy)
    });
    let tested = features
        .iter()
        .filter(|f| !f.ignored && f.score.is_some())
        .count();
    let drifted = features.iter().filter(|f| f.drifted).count();
    let share = if tested == 0 {
        0.0
    } else {
        drifted as f64 / tested as f64
    };
    DriftReport {
        reference_rows: reference.rows,
        current_rows: window.rows,
        tested_features: tested,
        drifted_features: drifted,
        drift_share: share,
        dataset_drift_threshold: policy.dataset_drift_share,
        dataset_drift: tested > 0 && share >= policy.dataset_drift_share,
        prediction: prediction_drift(reference, window, policy),
        features,
    }
}

/// Reference and current over the same bins: reference shares, current counts.
#[derive(Debug, Default)]
struct Binned {
    labels: Vec<String>,
    edges: Option<Vec<f64>>,
    reference: Vec<f64>,
    current: Vec<f64>,
}

impl Binned {
    fn distinct(&self) -> usize {
        self.reference
            .iter()
            .zip(&self.current)
            .filter(|(r, c)| **r > 0.0 || **c > 0.0)
            .count()
    }

    fn psi(&self) -> Option<f64> {
        finite(psi(&self.reference, &shares(&self.current)))
    }

    fn jensen_shannon(&self) -> Option<f64> {
        finite(jensen_shannon(&self.reference, &self.current))
    }

    fn distribution(&self) -> Distribution {
        Distribution {
            labels: self.labels.clone(),
            edges: self.edges.clone(),
            reference: shares(&self.reference),
            current: shares(&self.current),
        }
    }
}

/// A test's outcome before the verdict.
struct Outcome {
    statistic: Option<f64>,
    p_value: Option<f64>,
    score: Option<f64>,
    note: Option<String>,
}

impl Outcome {
    fn distance(d: Option<f64>) -> Outcome {
        Outcome {
            statistic: d,
            p_value: None,
            score: d,
            note: None,
        }
    }

    fn p_value(statistic: f64, p: f64) -> Outcome {
        Outcome {
            statistic: finite(statistic),
            p_value: finite(p),
            score: finite(p),
            note: None,
        }
    }

    fn not_applicable(note: String) -> Outcome {
        Outcome {
            statistic: None,
            p_value: None,
            score: None,
            note: Some(note),
        }
    }
}

fn compare_feature(
    reference: &ReferenceFeature,
    window: &WindowSummary,
    current: Option<(usize, &FeatureSummary)>,
    policy: &DriftPolicy,
) -> FeatureDrift {
    match (&reference.profile, current) {
        (FeatureProfile::Numeric(p), Some((i, FeatureSummary::Numeric(s)))) => {
            let sample = WindowSample {
                sorted: window.sorted_sample(i).unwrap_or_default(),
                complete: window.sample.is_complete(),
            };
            numeric_drift(reference, p, s, sample, policy)
        }
        (FeatureProfile::Categorical(p), Some((_, FeatureSummary::Categorical(s)))) => {
            categorical_drift(p, s, policy)
        }
        (profile, other) => {
            let kind = match profile {
                FeatureProfile::Numeric(_) => FeatureKind::Numeric,
                FeatureProfile::Categorical(_) => FeatureKind::Categorical,
            };
            let note = if other.is_some() {
                "the window holds this feature with another kind than the reference"
            } else {
                "the window has no values for this feature"
            };
            skipped(
                profile.name(),
                kind,
                reference_side(profile),
                empty_side(),
                note,
                policy,
            )
        }
    }
}

fn reference_side(profile: &FeatureProfile) -> SideStats {
    match profile {
        FeatureProfile::Numeric(p) => SideStats {
            count: p.count as u64,
            missing_rate: p.missing_rate,
            mean: finite(p.mean),
            std: finite(p.std),
        },
        FeatureProfile::Categorical(p) => SideStats {
            count: p.count as u64,
            missing_rate: p.missing_rate,
            mean: None,
            std: None,
        },
    }
}

fn empty_side() -> SideStats {
    SideStats {
        count: 0,
        missing_rate: 0.0,
        mean: None,
        std: None,
    }
}

fn skipped(
    name: &str,
    kind: FeatureKind,
    reference: SideStats,
    current: SideStats,
    note: &str,
    policy: &DriftPolicy,
) -> FeatureDrift {
    FeatureDrift {
        name: name.to_owned(),
        kind,
        test: None,
        statistic: None,
        p_value: None,
        score: None,
        threshold: 0.0,
        drifted: false,
        ignored: policy.ignores(name),
        psi: None,
        jensen_shannon: None,
        reference,
        current,
        unseen: None,
        notes: vec![note.to_owned()],
        distribution: Distribution::default(),
    }
}

/// A numeric feature's values in the window's row sample.
struct WindowSample {
    sorted: Vec<f64>,
    /// Whether the sample holds every row of the window.
    complete: bool,
}

fn numeric_drift(
    rf: &ReferenceFeature,
    p: &NumericProfile,
    s: &NumericSummary,
    window_sample: WindowSample,
    policy: &DriftPolicy,
) -> FeatureDrift {
    let reference = reference_side(&rf.profile);
    let current = SideStats {
        count: s.count,
        missing_rate: s.missing_rate(),
        mean: s.mean(),
        std: s.std(),
    };
    if p.count == 0 || s.count == 0 {
        let note = if p.count == 0 {
            "the reference has no present values"
        } else {
            "the window has no present values"
        };
        return skipped(
            &p.name,
            FeatureKind::Numeric,
            reference,
            current,
            note,
            policy,
        );
    }
    let cap = policy.discrete_max_unique;
    let support = reference_support(rf, cap);
    let current_distinct = s.distinct_values();
    let discrete = match (&support, &current_distinct) {
        (Some(r), Some(c)) => {
            let mut values: Vec<f64> = r.iter().map(|x| x.0).chain(c.iter().map(|x| x.0)).collect();
            values.sort_by(f64::total_cmp);
            values.dedup();
            (values.len() <= cap).then_some(values)
        }
        _ => None,
    };
    let facts = FeatureFacts {
        numeric: true,
        reference_count: p.count,
        distinct: discrete.as_ref().map(Vec::len),
    };
    let (test, threshold) = policy.choose(&p.name, facts);
    let sample = window_sample.sorted;
    let binned = match (&discrete, &support, &current_distinct) {
        (Some(values), Some(r), Some(c)) => value_bins(values, r, c),
        _ => decile_bins(p, s, &sample),
    };
    let mut notes = Vec::new();
    let outcome = match test {
        StatTest::Ks => {
            let result = match &rf.sample {
                Some(reference_sample) => ks_2samp_sorted(reference_sample, &sample),
                None => {
                    notes.push(
                        "KS against the reference's 201-point quantile sketch (D within ~0.005)"
                            .to_owned(),
                    );
                    ks_sketch_vs_sample(&p.sketch, p.count, &sample)
                }
            };
            match result {
                Some(r) => Outcome::p_value(r.statistic, r.p_value),
                None => Outcome::not_applicable("KS needs values on both sides".into()),
            }
        }
        StatTest::Wasserstein => {
            let counted = s
                .quantile_counts
                .as_ref()
                .filter(|q| q.points == p.sketch && rf.sample.is_none());
            let w = match (&rf.sample, counted) {
                (Some(reference_sample), _) => wasserstein_sorted(reference_sample, &sample),
                (None, Some(q)) => wasserstein_sketch_vs_counts(
                    &p.sketch,
                    &q.counts,
                    q.below_distance,
                    q.above_distance,
                ),
                (None, None) => wasserstein_sketch_vs_sample(&p.sketch, &sample),
            };
            Outcome::distance(finite(normed(w, p.std)))
        }
        other => binned_outcome(other, &binned, p.count as f64),
    };
    let used_counts = test == StatTest::Wasserstein
        && rf.sample.is_none()
        && s.quantile_counts
            .as_ref()
            .is_some_and(|q| q.points == p.sketch);
    if test.needs_numeric_values() && !window_sample.complete && !used_counts {
        notes.push(format!(
            "{} on a uniform sample of {} of the window's {} values",
            test.label(),
            sample.len(),
            s.count
        ));
    }
    let distribution = if discrete.is_some() {
        binned.distribution()
    } else {
        numeric_plot(rf, p, &sample)
    };
    finish(
        &p.name,
        FeatureKind::Numeric,
        test,
        threshold,
        outcome,
        &binned,
        reference,
        current,
        None,
        notes,
        distribution,
        policy,
    )
}

#[allow(clippy::too_many_arguments)]
fn finish(
    name: &str,
    kind: FeatureKind,
    test: StatTest,
    threshold: f64,
    outcome: Outcome,
    binned: &Binned,
    reference: SideStats,
    current: SideStats,
    unseen: Option<UnseenCategories>,
    mut notes: Vec<String>,
    distribution: Distribution,
    policy: &DriftPolicy,
) -> FeatureDrift {
    let ignored = policy.ignores(name);
    let mut drifted = outcome
        .score
        .is_some_and(|score| test.drifted(score, threshold));
    if let Some(limit) = policy.missing_rate_increase
        && current.missing_rate - reference.missing_rate > limit
    {
        drifted = true;
        notes.push(format!(
            "missing rate rose from {:.3} to {:.3}",
            reference.missing_rate, current.missing_rate
        ));
    }
    if outcome.statistic.is_none() && outcome.score.is_some() {
        notes.push("infinite statistic: the window holds values the reference never saw".into());
    }
    notes.extend(outcome.note);
    FeatureDrift {
        name: name.to_owned(),
        kind,
        test: Some(test),
        statistic: outcome.statistic,
        p_value: outcome.p_value,
        score: outcome.score,
        threshold,
        drifted: drifted && !ignored,
        ignored,
        psi: binned.psi(),
        jensen_shannon: binned.jensen_shannon(),
        reference,
        current,
        unseen,
        notes,
        distribution,
    }
}

/// Tests that read bins: chi-square, Z, Jensen-Shannon and PSI.
fn binned_outcome(test: StatTest, binned: &Binned, reference_count: f64) -> Outcome {
    match test {
        StatTest::ChiSquare => {
            let reference: Vec<f64> = binned
                .reference
                .iter()
                .map(|s| s * reference_count)
                .collect();
            let r = chi_square_homogeneity(&reference, &binned.current);
            Outcome::p_value(r.statistic, r.p_value)
        }
        StatTest::ZTest => {
            // Evidently tests the share of everything but the first value (sorted).
            let n1 = reference_count;
            let n2: f64 = binned.current.iter().sum();
            let first_ref = binned.reference.first().copied().unwrap_or(0.0);
            let first_cur = binned.current.first().copied().unwrap_or(0.0);
            let r = two_proportion_z((1.0 - first_ref) * n1, n1, n2 - first_cur, n2);
            Outcome::p_value(r.statistic, r.p_value)
        }
        StatTest::JensenShannon => Outcome::distance(binned.jensen_shannon()),
        StatTest::Psi => Outcome::distance(binned.psi()),
        StatTest::Ks | StatTest::Wasserstein => Outcome::not_applicable(format!(
            "{} needs numeric values; not applicable to this feature",
            test.label()
        )),
    }
}

/// Bins of a discrete numeric feature: one per value, in value order.
fn value_bins(values: &[f64], reference: &[(f64, f64)], current: &[(f64, u64)]) -> Binned {
    let find = |v: f64| -> f64 { reference.iter().find(|r| r.0 == v).map_or(0.0, |r| r.1) };
    let count = |v: f64| -> f64 {
        current
            .iter()
            .find(|c| c.0 == v)
            .map_or(0.0, |c| c.1 as f64)
    };
    Binned {
        labels: values.iter().map(|&v| format_number(v)).collect(),
        edges: None,
        reference: values.iter().map(|&v| find(v)).collect(),
        current: values.iter().map(|&v| count(v)).collect(),
    }
}

/// Bins of a continuous numeric feature: the reference's deciles. Current counts come from the
/// summary when it was binned by the same edges, else from its sample (scaled to its count).
fn decile_bins(p: &NumericProfile, s: &NumericSummary, sample: &[f64]) -> Binned {
    let edges = &p.bin_edges;
    let bins = edges.len().saturating_sub(1).max(1);
    let current: Vec<f64> = if s.bin_edges.as_deref() == Some(edges.as_slice()) {
        s.bin_counts.iter().map(|&c| c as f64).collect()
    } else {
        let mut counts = vec![0.0; bins];
        for &x in sample {
            counts[bin_of(x, edges)] += 1.0;
        }
        let scale = s.count as f64 / sample.len().max(1) as f64;
        counts.iter().map(|c| c * scale).collect()
    };
    let reference = if p.bin_freqs.len() == bins {
        p.bin_freqs.clone()
    } else {
        vec![1.0 / bins as f64; bins]
    };
    let labels = (0..bins)
        .map(|i| match (edges.get(i), edges.get(i + 1)) {
            (Some(a), Some(b)) => format!("[{}, {})", short(*a), short(*b)),
            (Some(a), None) => format!("[{}]", short(*a)),
            _ => format!("bin {i}"),
        })
        .collect();
    Binned {
        labels,
        edges: Some(edges.clone()),
        reference,
        current,
    }
}

/// Equal-width bins over the bulk (1st-99th percentile) of both sides, tails in the end bins.
fn numeric_plot(rf: &ReferenceFeature, p: &NumericProfile, sample: &[f64]) -> Distribution {
    let q_ref = |u: f64| match &rf.sample {
        Some(s) => quantile_sorted(s, u),
        None => quantile_sorted(&p.sketch, u),
    };
    let f_ref = |x: f64| match &rf.sample {
        Some(s) => s.partition_point(|&v| v <= x) as f64 / s.len().max(1) as f64,
        None => sketch_cdf(&p.sketch, x),
    };
    let f_cur = |x: f64| sample.partition_point(|&v| v <= x) as f64 / sample.len().max(1) as f64;
    let mut lo = q_ref(0.01).min(quantile_sorted(sample, 0.01));
    let mut hi = q_ref(0.99).max(quantile_sorted(sample, 0.99));
    if !lo.is_finite() || !hi.is_finite() {
        return Distribution::default();
    }
    if hi <= lo {
        lo -= 0.5;
        hi += 0.5;
    }
    let edges: Vec<f64> = (0..=PLOT_BINS)
        .map(|i| lo + (hi - lo) * i as f64 / PLOT_BINS as f64)
        .collect();
    let share = |f: &dyn Fn(f64) -> f64| -> Vec<f64> {
        (0..PLOT_BINS)
            .map(|i| {
                let a = if i == 0 { 0.0 } else { f(edges[i]) };
                let b = if i == PLOT_BINS - 1 {
                    1.0
                } else {
                    f(edges[i + 1])
                };
                (b - a).max(0.0)
            })
            .collect()
    };
    Distribution {
        labels: (0..PLOT_BINS)
            .map(|i| short((edges[i] + edges[i + 1]) / 2.0))
            .collect(),
        reference: share(&f_ref),
        current: share(&f_cur),
        edges: Some(edges),
    }
}

fn categorical_drift(
    p: &CategoricalProfile,
    s: &CategoricalSummary,
    policy: &DriftPolicy,
) -> FeatureDrift {
    let reference = SideStats {
        count: p.count as u64,
        missing_rate: p.missing_rate,
        mean: None,
        std: None,
    };
    let current = SideStats {
        count: s.count,
        missing_rate: s.missing_rate(),
        mean: None,
        std: None,
    };
    if p.count == 0 || s.count == 0 {
        let note = if p.count == 0 {
            "the reference has no present values"
        } else {
            "the window has no present values"
        };
        return skipped(
            &p.name,
            FeatureKind::Categorical,
            reference,
            current,
            note,
            policy,
        );
    }
    let pooled = p.frequencies.contains_key(OTHER_CATEGORY);
    // Bins: the reference's categories, then the window's new ones (pooled into the
    // reference's "other" when it has one).
    let mut bins: BTreeMap<String, (f64, f64)> = p
        .frequencies
        .iter()
        .map(|(k, &f)| (k.clone(), (f, 0.0)))
        .collect();
    let mut unseen: Vec<(String, u64)> = Vec::new();
    for (category, count) in s.observed() {
        if let Some(bin) = bins.get_mut(category) {
            bin.1 += count as f64;
        } else if pooled {
            if let Some(bin) = bins.get_mut(OTHER_CATEGORY) {
                bin.1 += count as f64;
            }
        } else {
            unseen.push((category.to_owned(), count));
            bins.insert(category.to_owned(), (0.0, count as f64));
        }
    }
    if s.overflow > 0 {
        let label = if pooled {
            OTHER_CATEGORY
        } else {
            OVERFLOW_LABEL
        };
        bins.entry(label.to_owned()).or_insert((0.0, 0.0)).1 += s.overflow as f64;
    }
    let binned = Binned {
        labels: bins.keys().cloned().collect(),
        edges: None,
        reference: bins.values().map(|b| b.0).collect(),
        current: bins.values().map(|b| b.1).collect(),
    };
    let unseen_report = (!pooled && (!unseen.is_empty() || s.overflow > 0)).then(|| {
        let count = unseen.iter().map(|u| u.1).sum::<u64>() + s.overflow;
        let distinct = unseen.len();
        unseen.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        unseen.truncate(UNSEEN_LISTED);
        UnseenCategories {
            count,
            share: count as f64 / s.count.max(1) as f64,
            distinct,
            top: unseen,
        }
    });
    let distinct = binned.distinct();
    let facts = FeatureFacts {
        numeric: false,
        reference_count: p.count,
        distinct: (distinct <= policy.discrete_max_unique).then_some(distinct),
    };
    let (test, threshold) = policy.choose(&p.name, facts);
    // Z-test reads two shares: compare the first (sorted) category against the rest.
    let outcome = binned_outcome(test, &binned, p.count as f64);
    let distribution = category_plot(&binned);
    finish(
        &p.name,
        FeatureKind::Categorical,
        test,
        threshold,
        outcome,
        &binned,
        reference,
        current,
        unseen_report,
        Vec::new(),
        distribution,
        policy,
    )
}

/// The most prominent categories by name, the rest pooled, for a bar chart.
fn category_plot(binned: &Binned) -> Distribution {
    let full = binned.distribution();
    if full.labels.len() <= PLOT_CATEGORIES {
        return full;
    }
    let mut order: Vec<usize> = (0..full.labels.len()).collect();
    order.sort_by(|&a, &b| {
        let ka = full.reference[a].max(full.current[a]);
        let kb = full.reference[b].max(full.current[b]);
        kb.total_cmp(&ka)
    });
    let (shown, rest) = order.split_at(PLOT_CATEGORIES - 1);
    let mut out = Distribution {
        labels: shown.iter().map(|&i| full.labels[i].clone()).collect(),
        edges: None,
        reference: shown.iter().map(|&i| full.reference[i]).collect(),
        current: shown.iter().map(|&i| full.current[i]).collect(),
    };
    out.labels.push(format!("({} others)", rest.len()));
    out.reference
        .push(rest.iter().map(|&i| full.reference[i]).sum());
    out.current
        .push(rest.iter().map(|&i| full.current[i]).sum());
    out
}

fn prediction_drift(
    reference: &DriftReference,
    window: &WindowSummary,
    policy: &DriftPolicy,
) -> Option<PredictionDrift> {
    let profile = reference.prediction.as_ref()?;
    let current = &window.prediction;
    if current.rows == 0
        || current.classes != profile.classes
        || profile.probability_bins.len() != profile.classes.len()
    {
        return None;
    }
    let k = profile.classes.len();
    let checked: Vec<usize> = if k == 2 { vec![1] } else { (0..k).collect() };
    let n = current.rows as f64;
    let labels: Vec<String> = (0..PROBABILITY_BINS)
        .map(|i| format!("{:.2}", (i as f64 + 0.5) / PROBABILITY_BINS as f64))
        .collect();
    let edges: Vec<f64> = (0..=PROBABILITY_BINS)
        .map(|i| i as f64 / PROBABILITY_BINS as f64)
        .collect();
    let classes: Vec<ClassPredictionDrift> = checked
        .into_iter()
        .map(|c| {
            let reference_bins = &profile.probability_bins[c];
            let current_bins: Vec<f64> = current.bins[c].iter().map(|&x| x as f64).collect();
            ClassPredictionDrift {
                class: profile.classes[c].clone(),
                jensen_shannon: finite(jensen_shannon(reference_bins, &current_bins)),
                psi: finite(psi(reference_bins, &shares(&current_bins))),
                reference_mean: profile.mean_probability.get(c).copied().unwrap_or(0.0),
                current_mean: current.probability_sum[c] / n,
                distribution: Distribution {
                    labels: labels.clone(),
                    edges: Some(edges.clone()),
                    reference: shares(reference_bins),
                    current: shares(&current_bins),
                },
            }
        })
        .collect();
    let drifted = classes.iter().any(|c| {
        c.jensen_shannon
            .is_some_and(|js| js >= policy.prediction_threshold)
    });
    Some(PredictionDrift {
        rows: current.rows,
        threshold: policy.prediction_threshold,
        drifted,
        classes,
        reference_predicted_share: profile.predicted_share.clone(),
        current_predicted_share: current.predicted.iter().map(|&c| c as f64 / n).collect(),
    })
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// A compact number for labels: four significant digits.
fn short(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let magnitude = x.abs().log10().floor() as i32;
    if !(-3..6).contains(&magnitude) {
        return format!("{x:.3e}");
    }
    let decimals = (3 - magnitude).max(0) as usize;
    format!("{x:.decimals$}")
}
