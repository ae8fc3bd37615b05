//! The numeric values of a uniform sample of a window's rows, for KS and Wasserstein. The
//! [`RowSampler`] decides which rows are kept and in which slot; this keeps their values row by
//! row (`values[slot * width + column]`, NaN where the row had no value), so taking a row in
//! costs one contiguous write rather than one scattered write per feature.

use super::reservoir::RowSampler;

/// The numeric values of a uniform sample of the window's rows, for KS and Wasserstein: kept row
/// by row (`values[slot * width + column]`, NaN where the row had no value), so taking a row in
/// costs one contiguous write rather than one scattered write per feature.
#[derive(Debug, Clone)]
pub struct RowSample {
    sampler: RowSampler,
    width: usize,
    values: Vec<f64>,
}

impl RowSample {
    /// An empty sample of at most `capacity` rows of `width` numeric columns (none kept when
    /// there are no numeric columns).
    pub(super) fn new(capacity: usize, width: usize, seed: u64) -> RowSample {
        RowSample {
            sampler: RowSampler::new(if width == 0 { 0 } else { capacity }, seed),
            width,
            values: Vec::with_capacity(capacity.min(1 << 14) * width),
        }
    }

    /// Offers the next row: the slot it takes, emptied (all NaN), or `None` when the sample
    /// passes it by.
    pub(super) fn offer_row(&mut self) -> Option<usize> {
        let slot = self.sampler.offer();
        if let Some(slot) = slot {
            claim(&mut self.values, self.width, slot);
        }
        slot
    }

    /// Keeps `x` as numeric column `column` of the row in `slot`.
    #[inline]
    pub(super) fn set(&mut self, slot: usize, column: usize, x: f64) {
        self.values[slot * self.width + column] = x;
    }

    /// Offers `rows` rows at once, their values given column by column: `columns` pairs a
    /// numeric column with its value in each row (non-finite: missing). As `rows` calls of
    /// [`RowSample::offer_row`], but the rows passed by cost nothing.
    pub(super) fn offer_block(&mut self, rows: usize, columns: &[(usize, &[f64])]) {
        let RowSample {
            sampler,
            width,
            values: kept_values,
        } = self;
        sampler.offer_many(rows, |row, slot| {
            let kept = claim(kept_values, *width, slot);
            for &(column, values) in columns {
                let x = values[row];
                if x.is_finite() {
                    kept[column] = x;
                }
            }
        });
    }

    /// The present values of numeric column `column` in the sampled rows, sorted ascending.
    pub fn sorted(&self, column: usize) -> Vec<f64> {
        if column >= self.width {
            return Vec::new();
        }
        let mut v: Vec<f64> = self
            .values
            .iter()
            .skip(column)
            .step_by(self.width)
            .copied()
            .filter(|x| x.is_finite())
            .collect();
        v.sort_unstable_by(f64::total_cmp);
        v
    }

    /// Whether every row of the window is in the sample (the values are then exact).
    pub fn is_complete(&self) -> bool {
        self.sampler.is_complete()
    }

    /// Rows in the sample.
    pub fn rows(&self) -> usize {
        self.sampler.filled()
    }

    /// Rows the sample keeps at most.
    pub fn capacity(&self) -> usize {
        self.sampler.capacity()
    }
}

/// Row `slot` of a row-major sample `width` values wide, emptied (all NaN) for a row taken in
/// (slots are taken in order while the sample fills, so a new slot is always the next one).
fn claim(values: &mut Vec<f64>, width: usize, slot: usize) -> &mut [f64] {
    let start = slot * width;
    if start >= values.len() {
        values.resize(start + width, f64::NAN);
    } else {
        values[start..start + width].fill(f64::NAN);
    }
    &mut values[start..start + width]
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_holding_every_row_gives_back_each_columns_present_values_sorted() {
        let mut s = RowSample::new(10, 2, 1);
        // The first row never gets its second column: it stays missing.
        for (a, b) in [(3.0, None), (1.0, Some(5.0)), (2.0, Some(-1.0))] {
            let slot = s.offer_row().expect("a sample with room takes every row");
            s.set(slot, 0, a);
            if let Some(b) = b {
                s.set(slot, 1, b);
            }
        }
        assert_eq!(s.sorted(0), vec![1.0, 2.0, 3.0]);
        assert_eq!(s.sorted(1), vec![-1.0, 5.0]);
        assert!(s.sorted(2).is_empty());
        assert!(s.is_complete());
        assert_eq!((s.rows(), s.capacity()), (3, 10));
    }

    #[test]
    fn without_numeric_columns_no_row_is_kept() {
        let mut s = RowSample::new(10, 0, 1);
        assert_eq!(s.capacity(), 0);
        assert_eq!(s.offer_row(), None);
        assert_eq!(s.rows(), 0);
        assert!(s.sorted(0).is_empty());
    }

    #[test]
    fn a_row_taken_into_a_used_slot_keeps_none_of_the_old_rows_values() {
        let mut s = RowSample::new(1, 2, 5);
        assert_eq!(s.offer_row(), Some(0));
        s.set(0, 0, -1.0);
        s.set(0, 1, -2.0);
        // A sample of one replaces its row with probability 1/n at row n: some row of the next
        // 100,000 replaces it (all pass it by with probability 1/100,000).
        let (row, slot) = (1..100_000u32)
            .find_map(|row| s.offer_row().map(|slot| (row, slot)))
            .expect("a later row replaces the first");
        assert_eq!(slot, 0);
        s.set(slot, 0, f64::from(row));
        assert_eq!(s.sorted(0), vec![f64::from(row)]);
        assert!(s.sorted(1).is_empty(), "the old row's second value is gone");
        assert!(!s.is_complete());
    }

    #[test]
    fn offering_a_block_keeps_the_same_rows_and_values_as_offering_rows_one_by_one() {
        let first: Vec<f64> = (0..50u32).map(f64::from).collect();
        let second: Vec<f64> = (0..50u32)
            .map(|r| if r % 3 == 0 { f64::NAN } else { -f64::from(r) })
            .collect();
        let mut by_row = RowSample::new(5, 2, 7);
        for (&a, &b) in first.iter().zip(&second) {
            if let Some(slot) = by_row.offer_row() {
                by_row.set(slot, 0, a);
                if b.is_finite() {
                    by_row.set(slot, 1, b);
                }
            }
        }
        let mut by_block = RowSample::new(5, 2, 7);
        let rows = first.len();
        for start in (0..rows).step_by(7) {
            let end = (start + 7).min(rows);
            let columns = [(0, &first[start..end]), (1, &second[start..end])];
            by_block.offer_block(end - start, &columns);
        }
        assert_eq!(by_block.rows(), 5);
        assert!(!by_block.is_complete());
        for column in [0, 1] {
            assert_eq!(
                by_block.sorted(column),
                by_row.sorted(column),
                "column {column}"
            );
        }
    }
}
