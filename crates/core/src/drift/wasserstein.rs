//! The first Wasserstein (earth mover's) distance, and Evidently's normalisation of it.
//!
//! `W1(P, Q) = ∫ |F_P(x) - F_Q(x)| dx = ∫_0^1 |Q_P(u) - Q_Q(u)| du`. Evidently's numeric drift
//! score for large references is `W1 / max(std_ref, 0.001)` (population std), drifted at >= 0.1.

/// Floor of the reference std in the normalisation (Evidently's), so a constant reference
/// does not divide by zero.
pub const MIN_NORM: f64 = 0.001;

/// `scipy.stats.wasserstein_distance(a, b)` of two sorted, non-empty samples: the area between
/// their empirical CDFs, by one merge walk over all values.
pub fn wasserstein_sorted(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return f64::NAN;
    }
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0, 0);
    let mut total = 0.0;
    let mut previous = a[0].min(b[0]);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        // Between `previous` and `next` both CDFs are flat at i/n and j/m.
        total += (i as f64 / n - j as f64 / m).abs() * (next - previous);
        while i < a.len() && a[i] <= next {
            i += 1;
        }
        while j < b.len() && b[j] <= next {
            j += 1;
        }
        previous = next;
    }
    total
}

/// [`wasserstein_sorted`] on unsorted samples (NaN dropped). NaN when either is then empty.
pub fn wasserstein(a: &[f64], b: &[f64]) -> f64 {
    wasserstein_sorted(&crate::stats::sorted(a), &crate::stats::sorted(b))
}

/// `W1` between a reference known by its quantile sketch (values at levels `i / (K-1)`, read as a
/// piecewise-linear quantile function) and a sorted sample (a step quantile function):
/// `∫_0^1 |Q_ref(u) - Q_cur(u)| du`, integrated exactly piece by piece.
pub fn wasserstein_sketch_vs_sample(sketch: &[f64], sample: &[f64]) -> f64 {
    if sketch.len() < 2 || sample.is_empty() {
        return f64::NAN;
    }
    let k = (sketch.len() - 1) as f64;
    let m = sample.len() as f64;
    let q_ref = |u: f64| -> f64 {
        let pos = (u * k).clamp(0.0, k);
        let lo = (pos.floor() as usize).min(sketch.len() - 2);
        let frac = pos - lo as f64;
        sketch[lo] + (sketch[lo + 1] - sketch[lo]) * frac
    };
    // Breakpoints: every sketch level and every step of the sample's quantile function.
    let mut total = 0.0;
    let (mut i, mut j) = (1usize, 1usize);
    let mut u0 = 0.0;
    while u0 < 1.0 {
        let next_sketch = i as f64 / k;
        let next_sample = j as f64 / m;
        let u1 = next_sketch.min(next_sample).min(1.0);
        // The sample's quantile on (u0, u1] is its j-th smallest value.
        let c = sample[(j - 1).min(sample.len() - 1)];
        total += integral_abs_linear(q_ref(u0) - c, q_ref(u1) - c, u1 - u0);
        // At least one of the two advances, so the walk ends after K + m steps.
        if next_sketch <= u1 {
            i += 1;
        }
        if next_sample <= u1 {
            j += 1;
        }
        u0 = u0.max(u1);
    }
    total
}

/// `W1` between a reference known by its quantile sketch and every value of a window, counted
/// between the sketch points (see [`QuantileCounts`](super::summary::QuantileCounts)):
/// `∫ |F_ref(x) - F_cur(x)| dx`. On each interval between points both CDFs are taken as linear
/// (the reference's as its sketch reads; the window's to within its spread inside one 0.5 %
/// slice of the reference); beyond the ends, where `F_ref` is 0 or 1, the integral is exact:
/// the summed distance of the window's values past the end, over `n`. Measured against the
/// exact distance on 200,000 + 200,000 normal rows: within 0.002 for shifts, 0.004 for a 10 %
/// change of scale (the two wide end slices, from the minimum to the 0.5 % quantile and from
/// the 99.5 % to the maximum, carry most of the error).
pub fn wasserstein_sketch_vs_counts(
    sketch: &[f64],
    counts: &[u64],
    below_distance: f64,
    above_distance: f64,
) -> f64 {
    let n: u64 = counts.iter().sum();
    if sketch.len() < 2 || counts.len() != sketch.len() + 1 || n == 0 {
        return f64::NAN;
    }
    let n = n as f64;
    let k = (sketch.len() - 1) as f64;
    // F_cur at p_i = share of values with at most i points strictly below them.
    let mut cumulative = counts[0] as f64;
    let mut total = (below_distance + above_distance) / n;
    for i in 0..sketch.len() - 1 {
        let left = i as f64 / k - cumulative / n;
        cumulative += counts[i + 1] as f64;
        let right = (i + 1) as f64 / k - cumulative / n;
        total += integral_abs_linear(left, right, sketch[i + 1] - sketch[i]);
    }
    total
}

/// `∫ |f|` over an interval of `width` where `f` is linear from `a` to `b`.
fn integral_abs_linear(a: f64, b: f64, width: f64) -> f64 {
    if width <= 0.0 {
        return 0.0;
    }
    if (a >= 0.0) == (b >= 0.0) {
        width * (a + b).abs() / 2.0
    } else {
        // The line crosses zero: two triangles.
        width * (a * a + b * b) / (2.0 * (a.abs() + b.abs()))
    }
}

/// Evidently's normed distance: `w / max(reference_std, 0.001)`.
pub fn normed(distance: f64, reference_std: f64) -> f64 {
    let std = if reference_std.is_finite() {
        reference_std
    } else {
        0.0
    };
    distance / std.max(MIN_NORM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shift_moves_by_its_size() {
        let a: Vec<f64> = (0..100).map(f64::from).collect();
        let b: Vec<f64> = a.iter().map(|x| x + 2.5).collect();
        assert!((wasserstein_sorted(&a, &b) - 2.5).abs() < 1e-12);
    }

    #[test]
    fn sketch_of_a_sample_is_close_to_the_sample() {
        let a: Vec<f64> = (0..1000).map(|i| (f64::from(i) / 1000.0).powi(2)).collect();
        let sketch: Vec<f64> = (0..201)
            .map(|i| crate::stats::quantile_sorted(&a, f64::from(i) / 200.0))
            .collect();
        let b: Vec<f64> = a.iter().map(|x| x + 0.1).collect();
        let exact = wasserstein_sorted(&a, &b);
        let approx = wasserstein_sketch_vs_sample(&sketch, &b);
        assert!((exact - approx).abs() < 1e-3, "{exact} vs {approx}");
        assert!(wasserstein_sketch_vs_sample(&sketch, &a) < 1e-3);
    }
}
