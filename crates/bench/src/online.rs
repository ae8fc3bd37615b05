//! The online contender of `mend bench-heal --stream`: a linear classifier that learns from
//! every label as it arrives, the way River's
//! `preprocessing.StandardScaler() | linear_model.LogisticRegression()` does.
//!
//! - Numeric features are standardised with a running mean and (population) variance per
//!   feature (Welford), updated with each learned row; a missing number is imputed with the
//!   running mean (so it standardises to 0); a feature with no variance yet reads 0.
//! - Categorical features are one-hot, a slot per category added the first time a learned row
//!   carries it; a category never learned, or a missing one, sets no slot. One-hot slots are
//!   not scaled.
//! - The model is trained by plain SGD: learning rate 0.01 for weights and intercepts (River's
//!   `optim.SGD` default), no L2 (River's `l2=0`), weights starting at 0. Two classes use one
//!   weight vector and a sigmoid, exactly River's `LogisticRegression`; more classes use one
//!   vector per class and a softmax (River's `SoftmaxRegression`, plus an intercept per class).
//! - As in a River pipeline, learning a row first updates the scaler, then standardises the
//!   row with the updated statistics, then takes the SGD step.

use std::collections::HashMap;

/// River's `optim.SGD` default learning rate.
pub const LEARNING_RATE: f64 = 0.01;

/// One feature's value in a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// A number; NaN when missing.
    Number(f64),
    /// A category; `None` when missing.
    Category(Option<&'a str>),
}

/// A running mean and population variance (Welford's update).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Running {
    count: f64,
    mean: f64,
    m2: f64,
}

impl Running {
    pub fn update(&mut self, x: f64) {
        self.count += 1.0;
        let delta = x - self.mean;
        self.mean += delta / self.count;
        self.m2 += delta * (x - self.mean);
    }

    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Population variance (divided by the count, as River's scaler), 0 before any value.
    pub fn variance(&self) -> f64 {
        if self.count > 0.0 {
            self.m2 / self.count
        } else {
            0.0
        }
    }

    /// `x` standardised; a missing `x` is the mean (0), and so is any `x` without variance.
    fn standardise(&self, x: f64) -> f64 {
        let sd = self.variance().sqrt();
        if x.is_nan() || sd <= 0.0 {
            0.0
        } else {
            (x - self.mean()) / sd
        }
    }
}

/// What the learner keeps per input feature.
#[derive(Debug, Clone)]
enum Input {
    /// A numeric feature's scaler and its weight slot.
    Numeric { scaler: Running, slot: usize },
    /// A categorical feature's slot per category seen in a learned row.
    Categorical { slots: HashMap<String, usize> },
}

/// Streaming logistic regression (binary) or softmax regression (more classes) by SGD on
/// standardised inputs.
#[derive(Debug, Clone)]
pub struct OnlineLogistic {
    inputs: Vec<Input>,
    classes: usize,
    /// One weight vector per output (1 for two classes, else one per class), each as long as
    /// the slots assigned so far.
    weights: Vec<Vec<f64>>,
    intercepts: Vec<f64>,
    learning_rate: f64,
}

impl OnlineLogistic {
    /// A learner for rows of features of these kinds (`true`: numeric) and `classes` classes
    /// (at least 2).
    pub fn new(numeric: &[bool], classes: usize) -> OnlineLogistic {
        let mut slots = 0;
        let inputs = numeric
            .iter()
            .map(|&is_numeric| {
                if is_numeric {
                    slots += 1;
                    Input::Numeric {
                        scaler: Running::default(),
                        slot: slots - 1,
                    }
                } else {
                    Input::Categorical {
                        slots: HashMap::new(),
                    }
                }
            })
            .collect();
        let outputs = if classes <= 2 { 1 } else { classes };
        OnlineLogistic {
            inputs,
            classes: classes.max(2),
            weights: vec![vec![0.0; slots]; outputs],
            intercepts: vec![0.0; outputs],
            learning_rate: LEARNING_RATE,
        }
    }

    /// The predicted class of `row` (one cell per feature, in the order given to `new`).
    pub fn predict(&self, row: &[Cell<'_>]) -> usize {
        let x = self.features(row);
        let scores = self.scores(&x);
        if self.classes == 2 {
            usize::from(scores[0] > 0.0)
        } else {
            // The first of the highest scores, as an argmax over probabilities would pick.
            let mut best = 0;
            for (k, &s) in scores.iter().enumerate() {
                if s > scores[best] {
                    best = k;
                }
            }
            best
        }
    }

    /// One SGD step on `row` with true class `label`, after updating the scaler with it.
    pub fn learn(&mut self, row: &[Cell<'_>], label: usize) {
        for (input, cell) in self.inputs.iter_mut().zip(row) {
            match (input, cell) {
                (Input::Numeric { scaler, .. }, Cell::Number(x)) if !x.is_nan() => {
                    scaler.update(*x);
                }
                (Input::Categorical { slots }, Cell::Category(Some(category)))
                    if !slots.contains_key(*category) =>
                {
                    let slot = self.weights[0].len();
                    for w in &mut self.weights {
                        w.push(0.0);
                    }
                    slots.insert((*category).to_owned(), slot);
                }
                _ => {}
            }
        }
        let x = self.features(row);
        let scores = self.scores(&x);
        // The gradient of the log loss with respect to each output's score.
        let gradients: Vec<f64> = if self.classes == 2 {
            vec![sigmoid(scores[0]) - f64::from(u8::from(label == 1))]
        } else {
            softmax(&scores)
                .iter()
                .enumerate()
                .map(|(k, p)| p - f64::from(u8::from(label == k)))
                .collect()
        };
        for ((w, b), g) in self
            .weights
            .iter_mut()
            .zip(&mut self.intercepts)
            .zip(gradients)
        {
            for &(slot, value) in &x {
                w[slot] -= self.learning_rate * g * value;
            }
            *b -= self.learning_rate * g;
        }
    }

    /// The sparse input vector of `row`: (slot, value) for every slot that is not 0.
    fn features(&self, row: &[Cell<'_>]) -> Vec<(usize, f64)> {
        let mut x = Vec::with_capacity(row.len());
        for (input, cell) in self.inputs.iter().zip(row) {
            match (input, cell) {
                (Input::Numeric { scaler, slot }, Cell::Number(value)) => {
                    x.push((*slot, scaler.standardise(*value)));
                }
                (Input::Categorical { slots }, Cell::Category(Some(category))) => {
                    if let Some(&slot) = slots.get(*category) {
                        x.push((slot, 1.0));
                    }
                }
                _ => {}
            }
        }
        x
    }

    fn scores(&self, x: &[(usize, f64)]) -> Vec<f64> {
        self.weights
            .iter()
            .zip(&self.intercepts)
            .map(|(w, b)| b + x.iter().map(|&(slot, v)| w[slot] * v).sum::<f64>())
            .collect()
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn softmax(scores: &[f64]) -> Vec<f64> {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A small deterministic generator in [0, 1) (xorshift), so the tests need no seeding API.
    struct Noise(u64);

    impl Noise {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Prequential accuracy over `rows` rows: each predicted, then learned.
    fn prequential(
        model: &mut OnlineLogistic,
        rows: usize,
        mut row: impl FnMut(&mut Noise) -> (Vec<Cell<'static>>, usize),
    ) -> f64 {
        let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
        let mut right = 0;
        for _ in 0..rows {
            let (cells, label) = row(&mut noise);
            right += usize::from(model.predict(&cells) == label);
            model.learn(&cells, label);
        }
        right as f64 / rows as f64
    }

    #[test]
    fn it_learns_a_separable_binary_stream() {
        let mut model = OnlineLogistic::new(&[true, true], 2);
        // Scales and offsets far from standard, which the scaler has to take out.
        let accuracy = prequential(&mut model, 5_000, |n| {
            let (a, b) = (100.0 + 50.0 * n.next(), -3.0 + 0.01 * n.next());
            let label = usize::from((a - 125.0) / 50.0 + (b + 2.995) / 0.01 > 0.0);
            (vec![Cell::Number(a), Cell::Number(b)], label)
        });
        assert!(accuracy > 0.95, "{accuracy}");
    }

    #[test]
    fn it_learns_three_classes_from_a_category_and_a_number() {
        const COLOURS: [&str; 3] = ["red", "green", "blue"];
        let mut model = OnlineLogistic::new(&[false, true], 3);
        let accuracy = prequential(&mut model, 5_000, |n| {
            let k = ((n.next() * 3.0) as usize).min(2);
            // The number carries the class too, with noise; the category alone decides.
            let x = k as f64 + n.next();
            (vec![Cell::Category(Some(COLOURS[k])), Cell::Number(x)], k)
        });
        assert!(accuracy > 0.95, "{accuracy}");
        // A category it never learned sets no slot; the number still points the way.
        assert_eq!(
            model.predict(&[Cell::Category(Some("mauve")), Cell::Number(2.5)]),
            2
        );
    }

    #[test]
    fn the_scaler_matches_a_two_pass_mean_and_variance() {
        let mut noise = Noise(42);
        let values: Vec<f64> = (0..1_000).map(|_| 1e3 + 7.0 * noise.next()).collect();
        let mut running = Running::default();
        for &v in &values {
            running.update(v);
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
        assert!(
            (running.mean() - mean).abs() < 1e-9,
            "{running:?} vs {mean}"
        );
        assert!(
            (running.variance() - variance).abs() < 1e-9,
            "{running:?} vs {variance}"
        );
        assert_eq!(Running::default().variance(), 0.0);
    }

    #[test]
    fn a_missing_number_reads_as_the_running_mean() {
        let mut model = OnlineLogistic::new(&[true], 2);
        for i in 0..200 {
            let x = f64::from(i % 20);
            model.learn(&[Cell::Number(x)], usize::from(x > 9.5));
        }
        // Missing rows neither move the scaler nor break prediction.
        model.learn(&[Cell::Number(f64::NAN)], 1);
        let Input::Numeric { scaler, .. } = &model.inputs[0] else {
            panic!("numeric input expected");
        };
        assert!((scaler.mean() - 9.5).abs() < 1e-12);
        assert_eq!(
            model.predict(&[Cell::Number(f64::NAN)]),
            model.predict(&[Cell::Number(9.5)])
        );
    }
}
