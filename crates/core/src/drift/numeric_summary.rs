//! The bounded summary of one numeric feature over a window: count, missing, shifted sums for
//! mean and variance, min, max, counts over the reference's decile edges (PSI and JS) and
//! between the points of its quantile sketch ([`QuantileCounts`]: Wasserstein over every row),
//! and the first few distinct values with counts (Evidently's "at most 5 values" rule). The
//! feature's values in the window's row sample are kept by the window summary, row by row.

use super::common::{FeatureLayout, rate};
use super::quantile_counts::QuantileCounts;
use crate::profile::bin_of;

/// Distinct numeric values tracked per feature: one more than the rule's 5 shows "more than 5".
pub const MAX_TRACKED_DISTINCT: usize = 6;

/// Summary of one numeric feature over a window.
#[derive(Debug, Clone)]
pub struct NumericSummary {
    pub name: String,
    /// Present (finite) values.
    pub count: u64,
    /// Missing or non-finite values.
    pub missing: u64,
    /// The first value seen: sums are of `x - shift`, which keeps the variance exact to
    /// rounding without Welford's division per value.
    shift: f64,
    sum: f64,
    sum_squares: f64,
    pub min: f64,
    pub max: f64,
    pub bin_edges: Option<Vec<f64>>,
    pub bin_counts: Vec<u64>,
    /// Counts between the reference's quantile points, when the layout gave them.
    pub quantile_counts: Option<QuantileCounts>,
    /// Up to [`MAX_TRACKED_DISTINCT`] distinct values with their counts, in order seen.
    pub distinct: Vec<(f64, u64)>,
    /// Whether more distinct values were seen than tracked.
    pub distinct_overflow: bool,
}

impl NumericSummary {
    /// An empty summary laid out as given: binned by its edges, counted between its quantile
    /// points (when all are finite).
    pub(super) fn new(layout: &FeatureLayout) -> NumericSummary {
        let bins = layout
            .bin_edges
            .as_ref()
            .map(|e| e.len().saturating_sub(1).max(1))
            .unwrap_or(0);
        NumericSummary {
            name: layout.name.clone(),
            count: 0,
            missing: 0,
            shift: 0.0,
            sum: 0.0,
            sum_squares: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            bin_edges: layout.bin_edges.clone(),
            bin_counts: vec![0; bins],
            quantile_counts: layout
                .quantile_points
                .as_ref()
                .filter(|p| !p.is_empty() && p.iter().all(|x| x.is_finite()))
                .map(|p| QuantileCounts::new(p.clone())),
            distinct: Vec::new(),
            distinct_overflow: false,
        }
    }

    /// Adds a value; NaN and infinities count as missing (Evidently drops them too).
    #[inline]
    pub fn push(&mut self, x: f64) {
        if !x.is_finite() {
            self.missing += 1;
            return;
        }
        if self.count == 0 {
            self.shift = x;
        }
        self.count += 1;
        let d = x - self.shift;
        self.sum += d;
        self.sum_squares += d * d;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        if let Some(edges) = &self.bin_edges {
            self.bin_counts[bin_index(x, edges)] += 1;
        }
        if let Some(q) = &mut self.quantile_counts {
            q.push(x);
        }
        if !self.distinct_overflow {
            if let Some((_, c)) = self.distinct.iter_mut().find(|(v, _)| *v == x) {
                *c += 1;
            } else if self.distinct.len() < MAX_TRACKED_DISTINCT {
                self.distinct.push((x, 1));
            } else {
                self.distinct_overflow = true;
            }
        }
    }

    pub fn push_missing(&mut self) {
        self.missing += 1;
    }

    /// Adds values in order, as [`NumericSummary::push`] one by one would (the same sums, in
    /// the same order), in a tight loop once nothing but the moments is left to track.
    pub fn push_all(&mut self, values: &[f64]) {
        let mut rest = values;
        while !self.distinct_overflow
            || self.count == 0
            || self.bin_edges.is_some()
            || self.quantile_counts.is_some()
        {
            let Some((&x, tail)) = rest.split_first() else {
                return;
            };
            self.push(x);
            rest = tail;
        }
        let shift = self.shift;
        let (mut count, mut missing) = (self.count, self.missing);
        let (mut sum, mut sum_squares) = (self.sum, self.sum_squares);
        let (mut min, mut max) = (self.min, self.max);
        for &x in rest {
            if x.is_finite() {
                let d = x - shift;
                count += 1;
                sum += d;
                sum_squares += d * d;
                min = min.min(x);
                max = max.max(x);
            } else {
                missing += 1;
            }
        }
        (self.count, self.missing) = (count, missing);
        (self.sum, self.sum_squares) = (sum, sum_squares);
        (self.min, self.max) = (min, max);
    }

    /// Mean of present values (`None` when there are none).
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.shift + self.sum / self.count as f64)
    }

    /// Population standard deviation of present values.
    pub fn std(&self) -> Option<f64> {
        (self.count > 0).then(|| {
            let n = self.count as f64;
            let mean = self.sum / n;
            (self.sum_squares / n - mean * mean).max(0.0).sqrt()
        })
    }

    /// Share of missing values among all values.
    pub fn missing_rate(&self) -> f64 {
        rate(self.missing, self.count + self.missing)
    }

    /// Distinct values with counts, sorted by value, if no more than tracked were seen.
    pub fn distinct_values(&self) -> Option<Vec<(f64, u64)>> {
        if self.distinct_overflow {
            return None;
        }
        let mut v = self.distinct.clone();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(v)
    }
}

/// [`bin_of`], faster for the few edges of decile bins: counting the inner edges at or below
/// `x` has no branches to mispredict and vectorises, where a binary search waits on each step.
fn bin_index(x: f64, edges: &[f64]) -> usize {
    if edges.len() > 34 {
        return bin_of(x, edges);
    }
    let bins = edges.len().saturating_sub(1).max(1);
    let inner = if edges.len() > 2 {
        &edges[1..edges.len() - 1]
    } else {
        &[][..]
    };
    let below = inner.iter().map(|&e| usize::from(e <= x)).sum::<usize>();
    below.min(bins - 1)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn bin_index_agrees_with_bin_of() {
        let edges = [-1.0, 0.0, 0.0, 1.5, 2.0, 7.0];
        for x in [-5.0, -1.0, -0.5, 0.0, 0.1, 1.5, 1.9, 2.0, 6.9, 7.0, 100.0] {
            assert_eq!(bin_index(x, &edges), bin_of(x, &edges), "x = {x}");
        }
        assert_eq!(bin_index(3.0, &[1.0]), bin_of(3.0, &[1.0]));
        assert_eq!(bin_index(3.0, &[]), bin_of(3.0, &[]));
    }

    /// Values with repeats first (distinct tracking), then many, with gaps and non-finite ones.
    /// Shared with the window summary's tests.
    pub(in crate::drift) fn column(seed: u64, rows: usize) -> Vec<f64> {
        (0..rows as u64)
            .map(|i| {
                let h = (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed;
                match (i, h % 13) {
                    (0..=9, _) => (i % 3) as f64,
                    (_, 0) => f64::NAN,
                    (_, 1) => f64::INFINITY,
                    _ => (h >> 11) as f64 / (1u64 << 53) as f64 * 10.0 - 5.0,
                }
            })
            .collect()
    }

    #[test]
    fn push_all_is_push_one_by_one() {
        let mut with_edges = FeatureLayout::numeric("x");
        with_edges.bin_edges = Some(vec![-5.0, -1.0, 0.0, 1.0, 5.0]);
        for layout in [FeatureLayout::numeric("x"), with_edges] {
            let values = column(3, 5_000);
            let mut one = NumericSummary::new(&layout);
            values.iter().for_each(|&x| one.push(x));
            let mut all = NumericSummary::new(&layout);
            for chunk in values.chunks(999) {
                all.push_all(chunk);
            }
            assert_eq!(format!("{one:?}"), format!("{all:?}"));
            assert!(all.distinct_overflow);
        }
        // All missing first: the shift waits for the first present value.
        let mut one = NumericSummary::new(&FeatureLayout::numeric("x"));
        let mut all = one.clone();
        let values = [
            f64::NAN,
            f64::NAN,
            2.0,
            3.0,
            4.0,
            5.0,
            6.0,
            7.0,
            8.0,
            9.0,
            f64::NAN,
            1.0,
        ];
        values.iter().for_each(|&x| one.push(x));
        all.push_all(&values);
        assert_eq!(format!("{one:?}"), format!("{all:?}"));
    }

    #[test]
    fn moments_extremes_and_missing_values_are_those_of_the_present_values() {
        let mut s = NumericSummary::new(&FeatureLayout::numeric("x"));
        assert_eq!((s.mean(), s.std(), s.missing_rate()), (None, None, 0.0));
        // The textbook data set with mean 5 and population variance 4, first value 9 (the
        // shift), with two non-finite values among them.
        for x in [
            9.0,
            4.0,
            f64::NAN,
            2.0,
            4.0,
            5.0,
            f64::NEG_INFINITY,
            7.0,
            4.0,
            5.0,
        ] {
            s.push(x);
        }
        assert_eq!((s.count, s.missing), (8, 2));
        assert_eq!(s.mean(), Some(5.0));
        assert_eq!(s.std(), Some(2.0));
        assert_eq!((s.min, s.max), (2.0, 9.0));
        assert_eq!(s.missing_rate(), 0.2);
        s.push_missing();
        assert_eq!(s.missing, 3);
    }

    #[test]
    fn distinct_values_are_kept_until_one_more_than_the_rule_allows() {
        let mut s = NumericSummary::new(&FeatureLayout::numeric("x"));
        for x in [3.0, 1.0, 3.0, 2.0, 5.0, 3.0, 4.0] {
            s.push(x);
        }
        assert_eq!(
            s.distinct_values(),
            Some(vec![(1.0, 1), (2.0, 1), (3.0, 3), (4.0, 1), (5.0, 1)])
        );
        // A sixth value is still tracked (it says "more than 5"); a seventh ends tracking.
        s.push(-1.0);
        assert_eq!(
            s.distinct_values().map(|v| v.len()),
            Some(MAX_TRACKED_DISTINCT)
        );
        s.push(0.5);
        assert!(s.distinct_overflow);
        assert_eq!(s.distinct_values(), None);
    }

    #[test]
    fn values_are_counted_in_the_layouts_bins_and_between_its_quantile_points() {
        let layout = FeatureLayout {
            bin_edges: Some(vec![0.0, 10.0, 20.0, 30.0]),
            quantile_points: Some(vec![0.0, 10.0]),
            ..FeatureLayout::numeric("x")
        };
        let mut s = NumericSummary::new(&layout);
        // Bins are left-closed, the last closed too; values outside go to the end bins.
        for x in [-5.0, 0.0, 10.0, 25.0, 30.0, 99.0] {
            s.push(x);
        }
        assert_eq!(s.bin_counts, vec![2, 1, 3]);
        let q = s.quantile_counts.as_ref().map(|q| q.counts.clone());
        assert_eq!(q, Some(vec![2, 1, 3]));
        // Quantile points with a non-finite one are not counted between.
        let unusable = FeatureLayout {
            quantile_points: Some(vec![0.0, f64::INFINITY]),
            ..FeatureLayout::numeric("x")
        };
        assert!(NumericSummary::new(&unusable).quantile_counts.is_none());
    }
}
