//! A seeded uniform reservoir sample (Li's Algorithm L): after any number of values it holds a
//! uniform random sample of at most `capacity` of them, drawing O(capacity · log(n / capacity))
//! random numbers instead of one per value.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A fixed-capacity uniform sample of a stream of numbers.
#[derive(Debug, Clone)]
pub struct Reservoir {
    capacity: usize,
    seen: u64,
    items: Vec<f64>,
    rng: StdRng,
    /// Index (1-based count of values seen) of the next value to take once full.
    next: u64,
    /// Algorithm L's running maximum of uniform keys, kept as `w`.
    w: f64,
}

impl Reservoir {
    pub fn new(capacity: usize, seed: u64) -> Reservoir {
        Reservoir {
            capacity,
            seen: 0,
            items: Vec::with_capacity(capacity.min(1 << 16)),
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
        self.next = self.seen.saturating_add(gap).saturating_add(1);
    }

    pub fn push(&mut self, x: f64) {
        self.seen += 1;
        if self.capacity == 0 {
            return;
        }
        if self.items.len() < self.capacity {
            self.items.push(x);
            if self.items.len() == self.capacity {
                self.schedule_next();
            }
            return;
        }
        if self.seen == self.next {
            let slot = self.rng.random_range(0..self.capacity);
            self.items[slot] = x;
            self.schedule_next();
        }
    }

    /// The sample, in no particular order.
    pub fn items(&self) -> &[f64] {
        &self.items
    }

    /// The sample, sorted ascending.
    pub fn sorted(&self) -> Vec<f64> {
        let mut v = self.items.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// How many values were pushed.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Whether the sample holds every value pushed.
    pub fn is_complete(&self) -> bool {
        self.seen as usize == self.items.len()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_everything_until_full_then_stays_bounded() {
        let mut r = Reservoir::new(100, 1);
        for i in 0..100 {
            r.push(f64::from(i));
        }
        assert!(r.is_complete());
        for i in 100..100_000 {
            r.push(f64::from(i));
        }
        assert_eq!(r.items().len(), 100);
        assert!(!r.is_complete());
        assert_eq!(r.seen(), 100_000);
    }

    #[test]
    fn sample_is_uniform_over_the_stream() {
        // Mean position of sampled values over many seeds ≈ the middle of the stream.
        let mut total = 0.0;
        let mut count = 0.0;
        for seed in 0..50 {
            let mut r = Reservoir::new(200, seed);
            for i in 0..20_000 {
                r.push(f64::from(i));
            }
            total += r.items().iter().sum::<f64>();
            count += r.items().len() as f64;
        }
        let mean = total / count;
        // The mean of 10,000 uniform draws over [0, 20000) has sd ≈ 58.
        assert!((mean - 10_000.0).abs() < 300.0, "mean {mean}");
    }
}
