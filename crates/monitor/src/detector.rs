//! Page-Hinkley: a streaming test for an upward change in the mean of a stream (here the
//! error stream, 1 for a wrong prediction and 0 for a right one), with River's defaults. It
//! reacts within tens of labels where a rolling window needs hundreds.

use serde::{Deserialize, Serialize};

/// Page-Hinkley settings (River's `PageHinkley` defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PageHinkleyConfig {
    /// Values seen before a change may be declared.
    pub min_instances: u64,
    /// Magnitude of change tolerated without counting towards drift.
    pub delta: f64,
    /// Cumulative deviation that declares a change (lambda).
    pub threshold: f64,
    /// Forgetting factor of the cumulative sum.
    pub alpha: f64,
}

impl Default for PageHinkleyConfig {
    fn default() -> Self {
        PageHinkleyConfig {
            min_instances: 30,
            delta: 0.005,
            threshold: 50.0,
            alpha: 1.0 - 0.0001,
        }
    }
}

/// The detector's running state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageHinkley {
    config: PageHinkleyConfig,
    count: u64,
    mean: f64,
    sum: f64,
    min_sum: f64,
}

impl PageHinkley {
    pub fn new(config: PageHinkleyConfig) -> Self {
        PageHinkley {
            config,
            count: 0,
            mean: 0.0,
            sum: 0.0,
            min_sum: 0.0,
        }
    }

    /// Adds a value; `true` when it completes an upward change, after which the detector
    /// starts over (the new level becomes the baseline).
    pub fn update(&mut self, x: f64) -> bool {
        if !x.is_finite() {
            return false;
        }
        self.count += 1;
        self.mean += (x - self.mean) / self.count as f64;
        self.sum = self.config.alpha * self.sum + (x - self.mean - self.config.delta);
        self.min_sum = self.min_sum.min(self.sum);
        let drift = self.count >= self.config.min_instances
            && self.sum - self.min_sum > self.config.threshold;
        if drift {
            self.reset();
        }
        drift
    }

    pub fn reset(&mut self) {
        *self = PageHinkley::new(self.config);
    }

    /// Values since the last reset.
    pub fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A deterministic 0/1 stream with `rate` ones (every 1/rate-th value, evenly spread).
    fn errors(n: usize, rate: f64, phase: f64) -> Vec<f64> {
        let mut acc = phase;
        (0..n)
            .map(|_| {
                acc += rate;
                if acc >= 1.0 {
                    acc -= 1.0;
                    1.0
                } else {
                    0.0
                }
            })
            .collect()
    }

    #[test]
    fn a_stable_error_rate_never_alarms() {
        let mut detector = PageHinkley::new(PageHinkleyConfig::default());
        let alarms = errors(20_000, 0.1, 0.0)
            .into_iter()
            .filter(|&x| detector.update(x))
            .count();
        assert_eq!(alarms, 0);
    }

    #[test]
    fn a_jump_in_errors_is_found_within_a_hundred_values() {
        let mut detector = PageHinkley::new(PageHinkleyConfig::default());
        for x in errors(2_000, 0.1, 0.0) {
            assert!(!detector.update(x));
        }
        let after = errors(500, 0.9, 0.0)
            .into_iter()
            .position(|x| detector.update(x))
            .expect("the change is detected");
        assert!(after < 100, "detected after {after} values");
        assert_eq!(
            detector.count(),
            0,
            "the detector starts over after an alarm"
        );
    }

    #[test]
    fn no_alarm_before_min_instances() {
        let mut detector = PageHinkley::new(PageHinkleyConfig {
            threshold: 0.5,
            ..PageHinkleyConfig::default()
        });
        let stream: Vec<f64> = std::iter::repeat_n(0.0, 10)
            .chain(std::iter::repeat_n(1.0, 40))
            .collect();
        let first = stream.iter().position(|&x| detector.update(x));
        assert_eq!(
            first,
            Some(29),
            "the 30th value is the first that may alarm"
        );
    }
}
