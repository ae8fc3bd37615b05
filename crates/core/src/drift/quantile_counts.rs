//! Counts of a numeric feature's window values between the points of the reference's quantile
//! sketch, with the summed distance of the values beyond its ends: what Wasserstein over every
//! row of the window needs (see
//! [`wasserstein_sketch_vs_counts`](super::wasserstein::wasserstein_sketch_vs_counts)), in
//! memory bounded by the sketch's size. A value's cell is found through an even grid over the
//! points: a table read and a short scan instead of a binary search.

/// Counts of values between quantile points `p_0 <= ... <= p_(K-1)`: `counts[c]` holds the
/// values with exactly `c` points below them, and the tails keep `Σ (p_0 - x)` below the first
/// point and `Σ (x - p_(K-1))` above the last, which is what the area between two CDFs needs.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantileCounts {
    pub points: Vec<f64>,
    pub counts: Vec<u64>,
    pub below_distance: f64,
    pub above_distance: f64,
    /// Where to start looking for a value's cell: `lookup.starts[g]` points lie below grid
    /// cell `g - 1` of an even grid over the points' range (one cell of slack for rounding).
    lookup: CellLookup,
}

/// An even grid over `[first point, last point]` that narrows a value's cell to a few points,
/// so counting a value is a table read and a short scan instead of a binary search.
#[derive(Debug, Clone, PartialEq)]
struct CellLookup {
    /// The points, then [`LOOKUP_PAD`] infinities.
    padded: Vec<f64>,
    first: f64,
    /// Grid cells per unit of value (0 when the points span nothing).
    scale: f64,
    starts: Vec<u32>,
}

/// Grid cells per quantile point: a few, so a cell rarely holds more than one point.
const LOOKUP_CELLS_PER_POINT: usize = 4;
/// Steps [`CellLookup::points_below`] takes without branches.
const LOOKUP_PAD: usize = 2;

impl CellLookup {
    fn new(points: &[f64]) -> CellLookup {
        let padded: Vec<f64> = points
            .iter()
            .copied()
            .chain(std::iter::repeat_n(f64::INFINITY, LOOKUP_PAD))
            .collect();
        let (Some(&first), Some(&last)) = (points.first(), points.last()) else {
            return CellLookup {
                padded,
                first: 0.0,
                scale: 0.0,
                starts: Vec::new(),
            };
        };
        let cells = points.len() * LOOKUP_CELLS_PER_POINT;
        let span = last - first;
        if !(span > 0.0 && span.is_finite()) {
            return CellLookup {
                padded,
                first,
                scale: 0.0,
                starts: Vec::new(),
            };
        }
        let scale = cells as f64 / span;
        let starts = (0..cells)
            .map(|g| {
                // Points below the start of the cell before `g`: a lower bound for any value
                // the rounding of `(x - first) * scale` can put in cell `g`.
                let start = first + g.saturating_sub(1) as f64 / scale;
                points.partition_point(|&p| p < start) as u32
            })
            .collect();
        CellLookup {
            padded,
            first,
            scale,
            starts,
        }
    }

    /// How many points lie strictly below `x` (finite): `points.partition_point(|p| p < x)`.
    /// The points are kept followed by [`LOOKUP_PAD`] infinities: the first steps past the
    /// grid's lower bound are taken without branches (whether a value passes the next point is
    /// as random as the data, so a loop's exit was mispredicted about once a value).
    #[inline]
    fn points_below(&self, x: f64) -> usize {
        let padded = &self.padded;
        let mut below = if self.starts.is_empty() || x < self.first {
            0
        } else {
            let g = ((x - self.first) * self.scale) as usize;
            match self.starts.get(g) {
                Some(&start) => start as usize,
                None => self.starts.last().map_or(0, |&s| s as usize),
            }
        };
        let points = padded.len().saturating_sub(LOOKUP_PAD);
        if below + LOOKUP_PAD < padded.len() {
            for _ in 0..LOOKUP_PAD {
                below += usize::from(padded[below] < x);
            }
        }
        while below < points && padded[below] < x {
            below += 1;
        }
        below.min(points)
    }
}

impl QuantileCounts {
    /// Empty counts between `points` (sorted ascending, finite).
    pub(super) fn new(points: Vec<f64>) -> QuantileCounts {
        let cells = points.len() + 1;
        QuantileCounts {
            lookup: CellLookup::new(&points),
            points,
            counts: vec![0; cells],
            below_distance: 0.0,
            above_distance: 0.0,
        }
    }

    /// Counts a finite value.
    #[inline]
    pub(super) fn push(&mut self, x: f64) {
        let cell = self.lookup.points_below(x);
        self.counts[cell] += 1;
        if let (Some(&first), Some(&last)) = (self.points.first(), self.points.last()) {
            if x < first {
                self.below_distance += first - x;
            } else if x > last {
                self.above_distance += x - last;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cell_lookup_counts_points_below_as_a_binary_search_does() {
        let normal: Vec<f64> = (1..200)
            .map(|i| {
                // Roughly normal quantiles: dense in the middle, sparse in the tails.
                let u = f64::from(i) / 200.0;
                (u / (1.0 - u)).ln() * 0.6
            })
            .collect();
        let ties = vec![-1.0, 0.0, 0.0, 0.0, 0.0, 2.5, 2.5, 1e6];
        for points in [normal, ties, vec![3.0], vec![3.0, 3.0], Vec::new()] {
            let lookup = CellLookup::new(&points);
            let mut probes: Vec<f64> = points.clone();
            probes.extend(points.iter().map(|p| p + 1e-12));
            probes.extend(points.iter().map(|p| p - 1e-12));
            probes.extend((0..4000).map(|i| f64::from(i) / 400.0 - 5.0));
            probes.extend([-1e300, 1e300, f64::MIN_POSITIVE, -0.0]);
            for x in probes {
                assert_eq!(
                    lookup.points_below(x),
                    points.partition_point(|&p| p < x),
                    "x = {x} in {points:?}"
                );
            }
        }
    }

    #[test]
    fn values_are_counted_by_the_points_strictly_below_them_and_tails_keep_their_distance() {
        let mut q = QuantileCounts::new(vec![0.0, 1.0, 2.0]);
        // Cell = points strictly below: a value on a point belongs to the cell below it.
        for x in [-1.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.25, 5.0] {
            q.push(x);
        }
        assert_eq!(q.counts, vec![2, 2, 2, 2]);
        // Only -1.5 lies below the first point (by 1.5); 3.25 and 5.0 above the last (by 1.25
        // and 3.0). Values on the end points add no distance.
        assert_eq!(q.below_distance, 1.5);
        assert_eq!(q.above_distance, 4.25);

        // One point: two cells, below and above it.
        let mut one = QuantileCounts::new(vec![3.0]);
        for x in [1.0, 3.0, 4.0] {
            one.push(x);
        }
        assert_eq!(one.counts, vec![2, 1]);
        assert_eq!((one.below_distance, one.above_distance), (2.0, 1.0));
    }
}
