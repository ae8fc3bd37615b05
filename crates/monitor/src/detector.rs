//! Page-Hinkley: a streaming test for an upward change in the mean of a stream (here the
//! error stream, 1 for a wrong prediction and 0 for a right one). It reacts within tens of
//! labels where a rolling window needs hundreds.
//!
//! The defaults are not River's. River's usual defaults are `delta` 0.005, `threshold`
//! (lambda) 50, `alpha` 0.9999; measured on calm Bernoulli error streams
//! (`examples/monitor_defaults`, `tests/false_alarms.rs`) they raise 36 to 68 false alarms per
//! 1,000,000 labels at error rates 0.15 to 0.35, which is why mend's defaults are `delta`
//! 0.02, `threshold` 75, `alpha` 1 (no forgetting). A user who wants River's can set them:
//! `MEND_MONITOR_PH_DELTA`, `MEND_MONITOR_PH_THRESHOLD`, `MEND_MONITOR_PH_ALPHA` and
//! `MEND_MONITOR_PH_MIN_INSTANCES` (see [`crate::config`]). River's alarm so often because
//! the forgetting factor holds the statistic in a band about 25 wide while its minimum keeps
//! the lowest point ever seen.
//! Without forgetting, with `delta` 0.02 and `threshold` 75, it alarmed 0 times in 20,000,000
//! calm labels at each of those error rates, and still finds a flipped concept after 108 to
//! 260 labels on average (River's: 60 to 127; at most 365) and a rise of 0.15 in the error
//! rate after ~620.
//!
//! It also estimates where the change began, each value carrying a tag (the label's data-log
//! sequence) to name it by. The statistic's last minimum is a poor estimate on a noisy stream:
//! it falls by only `delta` a value while the stream is calm, so its minimum wanders hundreds
//! of values before the change (measured: ~1,000 labels early on a flipped concept after
//! 3,200 calm labels). So the detector keeps the last [`CHANGE_POINT_HISTORY`] values and, on
//! an alarm, takes the split of them that best separates a lower mean before from a higher
//! one after (the least-squares change point, `k(n-k)/n · (m2 - m1)²`), which for an abrupt
//! change lands within a few values of it. The statistic's last minimum is kept as the
//! fallback when the history holds too little to split.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Values kept for the change-point estimate: a change older than this (a small one, found
/// late) is dated to the oldest value kept, which errs towards including more of the stream.
pub const CHANGE_POINT_HISTORY: usize = 4_096;

/// Page-Hinkley settings (River's `PageHinkley` parameters; mend's defaults, see above).
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
            delta: 0.02,
            threshold: 75.0,
            // No forgetting: see the module docs.
            alpha: 1.0,
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
    /// Tag of the first value after the statistic's last minimum: the estimated change point.
    #[serde(default)]
    change_tag: Option<u64>,
    /// Whether the next value's tag becomes `change_tag` (the statistic is at its minimum).
    #[serde(default)]
    at_min: bool,
    /// The newest values since the last reset, with their tags.
    #[serde(default)]
    history: VecDeque<(u64, f64)>,
}

impl PageHinkley {
    pub fn new(config: PageHinkleyConfig) -> Self {
        PageHinkley {
            config,
            count: 0,
            mean: 0.0,
            sum: 0.0,
            min_sum: 0.0,
            change_tag: None,
            // The statistic starts at its minimum (zero), before the first value.
            at_min: true,
            history: VecDeque::new(),
        }
    }

    /// Adds a value; `true` when it completes an upward change, after which the detector
    /// starts over (the new level becomes the baseline).
    pub fn update(&mut self, x: f64) -> bool {
        self.update_tagged(x, self.count + 1).is_some()
    }

    /// Adds a value tagged with where it came from; on an alarm returns the tag of the
    /// estimated change point (the first value after the statistic's last minimum, or this
    /// value's own tag if none is known), after which the detector starts over.
    pub fn update_tagged(&mut self, x: f64, tag: u64) -> Option<u64> {
        if !x.is_finite() {
            return None;
        }
        if self.at_min {
            self.change_tag = Some(tag);
            self.at_min = false;
        }
        self.history.push_back((tag, x));
        while self.history.len() > CHANGE_POINT_HISTORY {
            self.history.pop_front();
        }
        self.count += 1;
        self.mean += (x - self.mean) / self.count as f64;
        self.sum = self.config.alpha * self.sum + (x - self.mean - self.config.delta);
        if self.sum <= self.min_sum {
            self.min_sum = self.sum;
            self.at_min = true;
        }
        let drift = self.count >= self.config.min_instances
            && self.sum - self.min_sum > self.config.threshold;
        if drift {
            let change = self.split_point().or(self.change_tag).unwrap_or(tag);
            self.reset();
            return Some(change);
        }
        None
    }

    /// The tag of the first value after the split of the history that best separates a lower
    /// mean before from a higher mean after; `None` when no split raises the mean.
    fn split_point(&self) -> Option<u64> {
        let n = self.history.len();
        let total: f64 = self.history.iter().map(|(_, x)| x).sum();
        let mut before = 0.0;
        let mut best: Option<(f64, usize)> = None;
        for (k, (_, x)) in self.history.iter().enumerate().take(n.saturating_sub(1)) {
            before += x;
            let left = (k + 1) as f64;
            let right = (n - k - 1) as f64;
            let rise = (total - before) / right - before / left;
            if rise <= 0.0 {
                continue;
            }
            let score = left * right / n as f64 * rise * rise;
            if best.is_none_or(|(top, _)| score > top) {
                best = Some((score, k + 1));
            }
        }
        best.and_then(|(_, first_after)| self.history.get(first_after))
            .map(|(tag, _)| *tag)
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
    fn the_change_point_is_estimated_near_the_jump() {
        let mut detector = PageHinkley::new(PageHinkleyConfig::default());
        let calm = errors(3_000, 0.1, 0.0);
        let changed = errors(500, 0.6, 0.0);
        let mut change = None;
        for (tag, x) in calm.into_iter().chain(changed).enumerate() {
            if let Some(at) = detector.update_tagged(x, tag as u64 + 1_000) {
                change = Some(at);
                break;
            }
        }
        let at = change.expect("the change is detected");
        // The jump is at tag 4_000 (the 3_001st value).
        assert!(
            (3_990..=4_010).contains(&at),
            "estimated change point {at}, the jump is at 4000"
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
