//! The world: a seeded ground truth and the regimes that bend it.
//!
//! Rows follow a logistic ground truth over numeric features (standard normal) and categorical
//! features (four levels with their own effects). A [`Regime`] bends the world the way production
//! does: covariate shift (feature means move, the labelling rule stays), an abrupt concept change
//! (the rule flips), or a gradual one (the decision boundary rotates).

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

const LEVELS: [&str; 4] = ["red", "green", "blue", "gold"];

/// The shape of a synthetic world.
#[derive(Debug, Clone)]
pub struct SyntheticSpec {
    pub numeric: usize,
    pub categorical: usize,
    pub classes: usize,
    pub seed: u64,
    /// How sharp the ground truth is (larger: more separable).
    pub signal: f64,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        SyntheticSpec {
            numeric: 5,
            categorical: 1,
            classes: 2,
            seed: 7,
            signal: 3.0,
        }
    }
}

/// How the world looks for one stretch of rows.
#[derive(Debug, Clone, Default)]
pub struct Regime {
    /// Added to the mean of numeric feature `x0` (in standard deviations): covariate shift.
    pub shift: f64,
    /// Rotation of the decision boundary in the (`x0`, `x1`) plane, radians: gradual concept drift.
    pub rotation: f64,
    /// Negates the labelling rule: an abrupt concept change.
    pub flip: bool,
    /// Share of labels replaced by a random class.
    pub label_noise: f64,
}

/// A boundary that turns half a turn (0 to 180 degrees in the (`x0`, `x1`) plane), linearly:
/// the gradual concept drift of the heal bench and of the policy replay, defined once here so
/// both draw the same streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HalfTurn {
    /// Still for the first half of the stream, turning over the second.
    SecondHalf,
    /// Turning from the first row to the last.
    Whole,
}

impl HalfTurn {
    /// The world at stream position `row` of `total`.
    pub fn regime(self, row: usize, total: usize) -> Regime {
        let frac = row as f64 / total.max(1) as f64;
        let turned = match self {
            HalfTurn::SecondHalf => (2.0 * frac - 1.0).clamp(0.0, 1.0),
            HalfTurn::Whole => frac,
        };
        Regime {
            rotation: std::f64::consts::PI * turned,
            ..Regime::default()
        }
    }
}

/// Rows drawn from a world.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Rows x numeric features.
    pub numeric: Array2<f64>,
    /// One vector per categorical feature.
    pub categorical: Vec<Vec<String>>,
    pub labels: Vec<usize>,
}

/// Draws rows; the ground truth is fixed by the seed.
#[derive(Debug)]
pub struct Generator {
    spec: SyntheticSpec,
    weights: Vec<Vec<f64>>,
    cat_effects: Vec<Vec<Vec<f64>>>,
    rng: StdRng,
}

impl Generator {
    pub fn new(spec: SyntheticSpec) -> Generator {
        let mut rng = StdRng::seed_from_u64(spec.seed);
        let normal = Normal::new(0.0, 1.0).unwrap_or_else(|_| unreachable_normal());
        let cols = if spec.classes == 2 { 1 } else { spec.classes };
        let weights = (0..cols)
            .map(|_| {
                let mut w: Vec<f64> = (0..spec.numeric).map(|_| normal.sample(&mut rng)).collect();
                let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-9);
                w.iter_mut().for_each(|x| *x /= norm);
                w
            })
            .collect();
        let cat_effects = (0..spec.categorical)
            .map(|_| {
                (0..cols)
                    .map(|_| {
                        LEVELS
                            .iter()
                            .map(|_| 0.5 * normal.sample(&mut rng))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Generator {
            spec,
            weights,
            cat_effects,
            rng,
        }
    }

    /// Draws fresh rows from the same world: the ground truth stays, the row stream changes.
    pub fn reseed(&mut self, seed: u64) {
        self.rng = StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    }

    pub fn spec(&self) -> &SyntheticSpec {
        &self.spec
    }

    /// Feature column names: `x0..`, then `c0..`.
    pub fn feature_names(&self) -> Vec<String> {
        (0..self.spec.numeric)
            .map(|j| format!("x{j}"))
            .chain((0..self.spec.categorical).map(|j| format!("c{j}")))
            .collect()
    }

    /// Class names: `no`/`yes` for two classes, `class_0..` otherwise.
    pub fn class_names(&self) -> Vec<String> {
        if self.spec.classes == 2 {
            vec!["no".into(), "yes".into()]
        } else {
            (0..self.spec.classes)
                .map(|k| format!("class_{k}"))
                .collect()
        }
    }

    /// One row of zeros and the first category, for readiness probes.
    pub fn probe(&self) -> Sample {
        Sample {
            numeric: Array2::zeros((1, self.spec.numeric)),
            categorical: (0..self.spec.categorical)
                .map(|_| vec![LEVELS[0].to_owned()])
                .collect(),
            labels: vec![0],
        }
    }

    /// Draws `n` rows under a regime.
    pub fn sample(&mut self, n: usize, regime: &Regime) -> Sample {
        let d = self.spec.numeric;
        let normal = Normal::new(0.0, 1.0).unwrap_or_else(|_| unreachable_normal());
        let mut numeric = Array2::zeros((n, d));
        let mut categorical = vec![Vec::with_capacity(n); self.spec.categorical];
        let mut labels = Vec::with_capacity(n);
        let (sin, cos) = regime.rotation.sin_cos();
        let sign = if regime.flip { -1.0 } else { 1.0 };
        let mut logits = vec![0.0; self.weights.len()];
        for i in 0..n {
            for j in 0..d {
                numeric[[i, j]] =
                    normal.sample(&mut self.rng) + if j == 0 { regime.shift } else { 0.0 };
            }
            let levels: Vec<usize> = (0..self.spec.categorical)
                .map(|_| self.rng.random_range(0..LEVELS.len()))
                .collect();
            for (col, &l) in categorical.iter_mut().zip(&levels) {
                col.push(LEVELS[l].to_owned());
            }
            for (k, w) in self.weights.iter().enumerate() {
                let mut w = w.clone();
                if d >= 2 {
                    let (a, b) = (w[0], w[1]);
                    w[0] = a * cos - b * sin;
                    w[1] = a * sin + b * cos;
                }
                let mut z: f64 = (0..d).map(|j| numeric[[i, j]] * w[j]).sum();
                for (f, &l) in levels.iter().enumerate() {
                    z += self.cat_effects[f][k][l];
                }
                logits[k] = sign * self.spec.signal * z;
            }
            let mut label = if logits.len() == 1 {
                let p = 1.0 / (1.0 + (-logits[0]).exp());
                usize::from(self.rng.random::<f64>() < p)
            } else {
                let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let exps: Vec<f64> = logits.iter().map(|z| (z - max).exp()).collect();
                let total: f64 = exps.iter().sum();
                let mut u = self.rng.random::<f64>() * total;
                let mut pick = exps.len() - 1;
                for (k, e) in exps.iter().enumerate() {
                    if u < *e {
                        pick = k;
                        break;
                    }
                    u -= e;
                }
                pick
            };
            if regime.label_noise > 0.0 && self.rng.random::<f64>() < regime.label_noise {
                label = self.rng.random_range(0..self.spec.classes);
            }
            labels.push(label);
        }
        Sample {
            numeric,
            categorical,
            labels,
        }
    }
}

// `Normal::new(0, 1)` cannot fail; this keeps the call sites free of unwrap.
fn unreachable_normal() -> Normal<f64> {
    #[allow(clippy::unwrap_used)]
    Normal::new(0.0, 1.0).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    #[test]
    fn half_turns_turn_where_they_say() {
        let at = |turn: HalfTurn, row| turn.regime(row, 1_000).rotation;
        assert_eq!(at(HalfTurn::SecondHalf, 0), 0.0);
        assert_eq!(at(HalfTurn::SecondHalf, 500), 0.0);
        assert!((at(HalfTurn::SecondHalf, 750) - PI / 2.0).abs() < 1e-12);
        assert!((at(HalfTurn::SecondHalf, 1_000) - PI).abs() < 1e-12);
        assert!((at(HalfTurn::Whole, 250) - PI / 4.0).abs() < 1e-12);
        assert!((at(HalfTurn::Whole, 1_000) - PI).abs() < 1e-12);
        let regime = HalfTurn::Whole.regime(600, 1_000);
        assert!(!regime.flip && regime.shift == 0.0 && regime.label_noise == 0.0);
    }
}
