//! Distances between binned distributions: Jensen-Shannon and the Population Stability Index.

/// Jensen-Shannon distance with natural logarithms, as `scipy.spatial.distance.jensenshannon(p,
/// q)`, which is what Evidently 0.7 calls (`base=None`; its threshold 0.1 is on this scale,
/// in [0, √ln 2 ≈ 0.83]). Older Evidently releases passed `base=2`, which scales every value by
/// 1/√ln 2 ≈ 1.20.
///
/// `p` and `q` are normalised to sum to 1 first (so counts work too); with `m = (p + q) / 2`,
/// `JS = sqrt((KL(p || m) + KL(q || m)) / 2)`. NaN when either sums to zero.
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    if p.len() != q.len() || sp <= 0.0 || sq <= 0.0 {
        return f64::NAN;
    }
    let mut divergence = 0.0;
    for (&a, &b) in p.iter().zip(q) {
        let (a, b) = (a / sp, b / sq);
        let m = (a + b) / 2.0;
        if a > 0.0 {
            divergence += a * (a / m).ln();
        }
        if b > 0.0 {
            divergence += b * (b / m).ln();
        }
    }
    // Rounding can leave a tiny negative where the distributions are equal.
    (divergence / 2.0).max(0.0).sqrt()
}

/// Population Stability Index over bins: `Σ (r_i - c_i) ln(r_i / c_i)` on shares, after empty
/// bins get Evidently's epsilon (see [`fill_zeroes`]).
pub fn psi(reference_shares: &[f64], current_shares: &[f64]) -> f64 {
    if reference_shares.len() != current_shares.len() || reference_shares.is_empty() {
        return f64::NAN;
    }
    let r = fill_zeroes(reference_shares);
    let c = fill_zeroes(current_shares);
    r.iter()
        .zip(&c)
        .map(|(&r, &c)| (r - c) * (r / c).ln())
        .sum()
}

/// Evidently's treatment of empty bins: a zero share becomes 0.0001, or the smallest non-zero
/// share divided by 10^6 when that share is itself at most 0.0001. All-zero input is returned
/// as 0.0001 everywhere.
pub fn fill_zeroes(shares: &[f64]) -> Vec<f64> {
    let smallest = shares
        .iter()
        .copied()
        .filter(|&s| s > 0.0)
        .fold(f64::INFINITY, f64::min);
    let epsilon = if smallest <= 0.0001 {
        smallest / 1e6
    } else {
        0.0001
    };
    shares
        .iter()
        .map(|&s| if s > 0.0 { s } else { epsilon })
        .collect()
}

/// Shares of counts (all zero when the total is zero).
pub fn shares(counts: &[f64]) -> Vec<f64> {
    let total: f64 = counts.iter().sum();
    if total <= 0.0 {
        return vec![0.0; counts.len()];
    }
    counts.iter().map(|c| c / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_distributions_are_at_distance_zero() {
        assert_eq!(jensen_shannon(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]), 0.0);
        assert!(psi(&[0.2, 0.8], &[0.2, 0.8]).abs() < 1e-15);
    }

    #[test]
    fn disjoint_distributions_are_at_the_largest_distance() {
        let largest = std::f64::consts::LN_2.sqrt();
        assert!((jensen_shannon(&[1.0, 0.0], &[0.0, 1.0]) - largest).abs() < 1e-12);
    }
}
