//! Pearson's chi-square goodness-of-fit test of category counts against expected counts, as
//! `scipy.stats.chisquare(f_obs, f_exp)`: `X² = Σ (o_i - e_i)² / e_i`, p-value from the
//! chi-square distribution with `k - 1` degrees of freedom.
//!
//! Evidently compares a current column with the reference by taking `e_i` = reference share
//! of category `i` times the current count. A category the reference never saw has `e_i = 0`;
//! if it occurs, `X²` is infinite and the p-value 0: the distributions cannot be the same.

use serde::{Deserialize, Serialize};

use super::special::chi2_sf;

/// A chi-square statistic with its p-value and degrees of freedom.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChiSquareResult {
    pub statistic: f64,
    pub p_value: f64,
    pub dof: usize,
}

/// `chisquare(observed, expected)`. Categories where both are zero are skipped. Fewer than two
/// categories leave nothing to test: statistic 0, p-value 1.
pub fn chi_square(observed: &[f64], expected: &[f64]) -> ChiSquareResult {
    let mut statistic = 0.0;
    let mut categories = 0usize;
    for (&o, &e) in observed.iter().zip(expected) {
        if o == 0.0 && e == 0.0 {
            continue;
        }
        categories += 1;
        statistic += if e > 0.0 {
            (o - e) * (o - e) / e
        } else {
            f64::INFINITY
        };
    }
    if categories < 2 {
        return ChiSquareResult {
            statistic: 0.0,
            p_value: 1.0,
            dof: 0,
        };
    }
    let dof = categories - 1;
    ChiSquareResult {
        statistic,
        p_value: chi2_sf(statistic, dof as f64),
        dof,
    }
}

/// The test of current counts against reference shares: `e_i = share_i × Σ observed`.
pub fn chi_square_against_shares(observed: &[f64], reference_shares: &[f64]) -> ChiSquareResult {
    let total: f64 = observed.iter().sum();
    let share_total: f64 = reference_shares.iter().sum();
    let scale = if share_total > 0.0 {
        total / share_total
    } else {
        0.0
    };
    let expected: Vec<f64> = reference_shares.iter().map(|s| s * scale).collect();
    chi_square(observed, &expected)
}
