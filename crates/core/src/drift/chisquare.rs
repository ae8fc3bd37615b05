//! Pearson's chi-square tests on category counts, p-values from the chi-square distribution
//! with `k - 1` degrees of freedom:
//! - [`chi_square`] / [`chi_square_against_shares`]: goodness of fit against expected counts,
//!   as `scipy.stats.chisquare(f_obs, f_exp)`; `X² = Σ (o_i - e_i)² / e_i`. This is Evidently's
//!   test (expected = reference share × current count). A category the reference never saw has
//!   `e_i = 0`; if it occurs, `X²` is infinite and the p-value 0.
//! - [`chi_square_homogeneity`]: reference counts against current counts as a 2×k table, which
//!   drift detection uses because it accounts for the noise on both sides (see there).

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

/// Pearson's chi-square test of homogeneity: are two vectors of category counts drawn from one
/// distribution? The 2×k contingency table `[a; b]` without continuity correction, as
/// `scipy.stats.chi2_contingency([a, b], correction=False)`: expected counts
/// `E_ai = (a_i + b_i)·Σa/N`, `E_bi = (a_i + b_i)·Σb/N`, `X² = Σ (O - E)²/E`, `k - 1` degrees
/// of freedom over the categories seen on either side.
///
/// This is what mend's drift policy uses for chi-square. Evidently instead runs the
/// goodness-of-fit test ([`chi_square_against_shares`]) with the reference shares taken as
/// exact; that ignores the reference's own sampling noise, inflating `X²` by about
/// `1 + n_current/n_reference`, so identical distributions are flagged far more often than
/// alpha (a third of the time at 600 vs 800 rows, nearly always once the window outgrows the
/// reference). The homogeneity test keeps the false-alarm rate at alpha and names the same
/// drifts whenever the difference is real.
pub fn chi_square_homogeneity(a: &[f64], b: &[f64]) -> ChiSquareResult {
    let (sa, sb): (f64, f64) = (a.iter().sum(), b.iter().sum());
    let n = sa + sb;
    if sa <= 0.0 || sb <= 0.0 {
        return ChiSquareResult {
            statistic: 0.0,
            p_value: 1.0,
            dof: 0,
        };
    }
    let mut statistic = 0.0;
    let mut categories = 0usize;
    for (&x, &y) in a.iter().zip(b) {
        let total = x + y;
        if total <= 0.0 {
            continue;
        }
        categories += 1;
        let (ex, ey) = (total * sa / n, total * sb / n);
        statistic += (x - ex) * (x - ex) / ex + (y - ey) * (y - ey) / ey;
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
