//! The two-proportion Z-test Evidently uses for binary categorical features: is the share of
//! one category the same in both samples?
//!
//! With `p1 = x1/n1`, `p2 = x2/n2` and the pooled `P = (x1 + x2)/(n1 + n2)`:
//! `z = (p1 - p2) / sqrt(P (1 - P) (1/n1 + 1/n2))`, two-sided `p = 2 (1 - Φ(|z|))`.

use serde::{Deserialize, Serialize};

use super::special::normal_sf;

/// A Z statistic with its two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ZTestResult {
    pub statistic: f64,
    pub p_value: f64,
}

/// The test of `x1` successes in `n1` trials against `x2` in `n2`. When the pooled share is 0
/// or 1 (both samples hold one and the same value) nothing differs: z = 0, p = 1, as Evidently.
pub fn two_proportion_z(x1: f64, n1: f64, x2: f64, n2: f64) -> ZTestResult {
    if n1 <= 0.0 || n2 <= 0.0 {
        return ZTestResult {
            statistic: f64::NAN,
            p_value: f64::NAN,
        };
    }
    let (p1, p2) = (x1 / n1, x2 / n2);
    let pooled = (x1 + x2) / (n1 + n2);
    let variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2);
    if variance <= 0.0 {
        return ZTestResult {
            statistic: 0.0,
            p_value: 1.0,
        };
    }
    let z = (p1 - p2) / variance.sqrt();
    ZTestResult {
        statistic: z,
        p_value: (2.0 * normal_sf(z.abs())).min(1.0),
    }
}
