//! A seeded uniform sample of rows (Li's Algorithm L): after any number of rows it holds a
//! uniform random sample of at most `capacity` of them, drawing O(capacity · log(n / capacity))
//! random numbers instead of one per row.
//!
//! The sampler only decides which rows are kept and in which slot; a window summary keeps the
//! kept rows' numeric values together, row by row (see `row_sample::RowSample`). One decision per
//! row serves every feature, so a replacement costs one draw and one contiguous write instead of
//! a draw and a cache miss per feature; each feature's values in the kept rows are still a
//! uniform sample of its values.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Decides, row by row, which rows a fixed-capacity uniform sample keeps.
#[derive(Debug, Clone)]
pub struct RowSampler {
    capacity: usize,
    offered: u64,
    filled: usize,
    rng: StdRng,
    /// Index (1-based count of rows offered) of the next row to take once full.
    next: u64,
    /// Algorithm L's running maximum of uniform keys, kept as `w`.
    w: f64,
}

impl RowSampler {
    pub fn new(capacity: usize, seed: u64) -> RowSampler {
        RowSampler {
            capacity,
            offered: 0,
            filled: 0,
            rng: StdRng::seed_from_u64(seed),
            next: 0,
            w: 1.0,
        }
    }

    /// A uniform draw in (0, 1], so its logarithm is finite.
    fn unit(&mut self) -> f64 {
        1.0 - self.rng.random::<f64>()
    }

    fn schedule_next(&mut self) {
        let k = self.capacity as f64;
        self.w *= (self.unit().ln() / k).exp();
        let gap = (self.unit().ln() / (1.0 - self.w).ln()).floor();
        // A gap beyond u64 means "never" for any stream we will see.
        let gap = if gap.is_finite() && gap >= 0.0 {
            gap.min(u64::MAX as f64 / 2.0) as u64
        } else {
            u64::MAX / 2
        };
        self.next = self.offered.saturating_add(gap).saturating_add(1);
    }

    /// Offers one row: the slot it takes (slots fill in order, then a kept row replaces a
    /// random one), or `None` when the sample passes it by.
    pub fn offer(&mut self) -> Option<usize> {
        self.offered += 1;
        if self.capacity == 0 {
            return None;
        }
        if self.filled < self.capacity {
            let slot = self.filled;
            self.filled += 1;
            if self.filled == self.capacity {
                self.schedule_next();
            }
            return Some(slot);
        }
        if self.offered == self.next {
            let slot = self.rng.random_range(0..self.capacity);
            self.schedule_next();
            return Some(slot);
        }
        None
    }

    /// Offers `rows` rows at once and calls `take(row, slot)` for each one kept, in order
    /// (`row` counts from 0 within this call). Exactly as `rows` calls of
    /// [`RowSampler::offer`], but the rows passed by are skipped without work per row.
    pub fn offer_many(&mut self, rows: usize, mut take: impl FnMut(usize, usize)) {
        let mut row = 0;
        while row < rows {
            if self.capacity == 0 {
                self.offered += (rows - row) as u64;
                return;
            }
            if self.filled < self.capacity {
                if let Some(slot) = self.offer() {
                    take(row, slot);
                }
                row += 1;
                continue;
            }
            let remaining = (rows - row) as u64;
            // Rows up to and including the next kept one (at least 1: `next` is ahead).
            let until = self.next.saturating_sub(self.offered).max(1);
            if until > remaining {
                self.offered += remaining;
                return;
            }
            self.offered += until - 1;
            row += (until - 1) as usize;
            if let Some(slot) = self.offer() {
                take(row, slot);
            }
            row += 1;
        }
    }

    /// Rows offered so far.
    pub fn offered(&self) -> u64 {
        self.offered
    }

    /// Slots in use: `min(offered, capacity)`.
    pub fn filled(&self) -> usize {
        self.filled
    }

    /// Whether the sample holds every row offered.
    pub fn is_complete(&self) -> bool {
        self.offered == self.filled as u64
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps rows (their indices) as a sample would.
    fn kept(sampler: &mut RowSampler, rows: usize, by_block: Option<usize>) -> Vec<u64> {
        let mut slots: Vec<u64> = Vec::new();
        let put = |slots: &mut Vec<u64>, slot: usize, row: u64| {
            if slot == slots.len() {
                slots.push(row);
            } else {
                slots[slot] = row;
            }
        };
        match by_block {
            None => {
                for row in 0..rows as u64 {
                    if let Some(slot) = sampler.offer() {
                        put(&mut slots, slot, row);
                    }
                }
            }
            Some(block) => {
                let mut start = 0;
                while start < rows {
                    let n = block.min(rows - start);
                    sampler.offer_many(n, |r, slot| put(&mut slots, slot, (start + r) as u64));
                    start += n;
                }
            }
        }
        slots
    }

    #[test]
    fn keeps_everything_until_full_then_stays_bounded() {
        let mut r = RowSampler::new(100, 1);
        assert_eq!(kept(&mut r, 100, None), (0..100).collect::<Vec<_>>());
        assert!(r.is_complete());
        let mut r = RowSampler::new(100, 1);
        let sample = kept(&mut r, 100_000, None);
        assert_eq!(sample.len(), 100);
        assert!(!r.is_complete());
        assert_eq!(r.offered(), 100_000);
        assert_eq!(r.filled(), 100);
    }

    #[test]
    fn offering_in_blocks_keeps_the_same_rows_as_one_by_one() {
        for block in [1, 7, 100, 4096, 1_000_000] {
            let one_by_one = kept(&mut RowSampler::new(300, 9), 50_000, None);
            let mut sampler = RowSampler::new(300, 9);
            assert_eq!(
                kept(&mut sampler, 50_000, Some(block)),
                one_by_one,
                "block {block}"
            );
            assert_eq!(sampler.offered(), 50_000);
        }
        let mut empty = RowSampler::new(0, 1);
        empty.offer_many(10, |_, _| panic!("a zero-capacity sample keeps nothing"));
        assert_eq!(empty.offered(), 10);
    }

    #[test]
    fn sample_is_uniform_over_the_stream() {
        // Mean position of sampled rows over many seeds ≈ the middle of the stream.
        let mut total = 0.0;
        let mut count = 0.0;
        for seed in 0..50 {
            let sample = kept(&mut RowSampler::new(200, seed), 20_000, Some(512));
            total += sample.iter().map(|&i| i as f64).sum::<f64>();
            count += sample.len() as f64;
        }
        let mean = total / count;
        // The mean of 10,000 uniform draws over [0, 20000) has sd ≈ 58.
        assert!((mean - 10_000.0).abs() < 300.0, "mean {mean}");
    }
}
