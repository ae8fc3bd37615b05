//! Low-level items shared by the drift module's parts, kept here so the parts depend on it and
//! not on each other: the layout and sizes of a window summary ([`FeatureLayout`],
//! [`SummaryConfig`], reached as `drift::summary::*`) and the per-kind summaries' missing rate;
//! the window size from which features are compared on every core ([`PARALLEL_ROWS`], reached
//! as `drift::compare::PARALLEL_ROWS`); a statistic as a report holds it; a test's [`Outcome`]
//! before the verdict; and the compact numbers that label bars and bins.

use serde::{Deserialize, Serialize};

use crate::schema::FeatureKind;

/// Sizes of a summary.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SummaryConfig {
    /// Rows whose numeric values are kept (a uniform sample of the window's rows) for KS and
    /// Wasserstein.
    pub reservoir_size: usize,
    /// New categories (not in the reference) counted by name per categorical feature.
    pub max_categories: usize,
    /// Seed of the row sample, so a summary is reproducible.
    pub seed: u64,
}

impl Default for SummaryConfig {
    fn default() -> Self {
        SummaryConfig {
            reservoir_size: 2000,
            max_categories: 1000,
            seed: 0x6d65_6e64,
        }
    }
}

/// How a feature is laid out in a summary: its name and kind, and what the reference offers to
/// bin it by.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureLayout {
    pub name: String,
    pub kind: FeatureKind,
    /// Histogram edges (numeric), usually the reference's deciles.
    pub bin_edges: Option<Vec<f64>>,
    /// Categories always counted by name (categorical), usually the reference's.
    pub known_categories: Vec<String>,
    /// Points to count values between (numeric), usually the reference's quantile sketch.
    pub quantile_points: Option<Vec<f64>>,
}

impl FeatureLayout {
    /// A numeric feature with nothing to bin by.
    pub fn numeric(name: &str) -> FeatureLayout {
        FeatureLayout {
            name: name.to_owned(),
            kind: FeatureKind::Numeric,
            bin_edges: None,
            known_categories: Vec::new(),
            quantile_points: None,
        }
    }

    /// A categorical feature with no known categories.
    pub fn categorical(name: &str) -> FeatureLayout {
        FeatureLayout {
            kind: FeatureKind::Categorical,
            ..FeatureLayout::numeric(name)
        }
    }
}

/// `part / total`, 0 when there is nothing (the missing rate of the per-kind summaries).
pub(super) fn rate(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 / total as f64
    }
}

/// Rows from which a window's features are compared on every core.
pub const PARALLEL_ROWS: u64 = 50_000;

/// A statistic as a report holds it: `None` when not finite.
pub(super) fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// A test's outcome before the verdict.
pub(super) struct Outcome {
    pub(super) statistic: Option<f64>,
    pub(super) p_value: Option<f64>,
    pub(super) score: Option<f64>,
    pub(super) note: Option<String>,
}

impl Outcome {
    pub(super) fn distance(d: Option<f64>) -> Outcome {
        Outcome {
            statistic: d,
            p_value: None,
            score: d,
            note: None,
        }
    }

    pub(super) fn p_value(statistic: f64, p: f64) -> Outcome {
        Outcome {
            statistic: finite(statistic),
            p_value: finite(p),
            score: finite(p),
            note: None,
        }
    }

    pub(super) fn not_applicable(note: String) -> Outcome {
        Outcome {
            statistic: None,
            p_value: None,
            score: None,
            note: Some(note),
        }
    }
}

/// A compact number for labels: four significant digits.
pub(super) fn short(x: f64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_keep_four_significant_digits_or_switch_to_exponents() {
        let cases = [
            (0.0, "0"),
            (-2.5, "-2.500"),
            (0.0125, "0.01250"),
            (1234.5678, "1235"),
            (123_456.0, "123456"),
            (2e6, "2.000e6"),
            (0.0005, "5.000e-4"),
            (f64::INFINITY, "inf"),
            (f64::NAN, "NaN"),
        ];
        for (x, label) in cases {
            assert_eq!(short(x), label, "{x}");
        }
    }
}
