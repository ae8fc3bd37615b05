//! The logistic family: logistic regression, binary (sigmoid) and multiclass (softmax),
//! L2-regularised, with class weights, fitted by L-BFGS.
//!
//! Two solvers share one objective, scikit-learn's: `C·Σ sᵢℓᵢ + ½‖W‖²`, divided by `C·Σsᵢ` so it
//! is a weighted mean loss plus `l2/(2Σsᵢ)·‖W‖²` with `l2 = 1/C`. The default, [`Solver::Lbfgs`],
//! is mend's own: loss and gradient in one pass over the rows, split across threads, and
//! scikit-learn's stopping rule (max |gradient| ≤ tol on the mean loss), which keeps the work
//! flat as rows grow. [`Solver::Linfa`] delegates to `linfa-logistic` (unweighted only), for
//! reference and comparison.

use std::collections::BTreeMap;

use linfa::prelude::*;
use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::FitReport;
use crate::error::{CoreError, Result};
use crate::lbfgs::{LbfgsOptions, minimize};

/// How classes are weighted in the loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeight {
    /// Every row counts once.
    #[default]
    None,
    /// `n / (classes · count(class))`, as scikit-learn's `balanced`.
    Balanced,
    /// An explicit weight per class name (missing classes weigh 1).
    Custom(BTreeMap<String, f64>),
}

/// Which optimiser fits the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    #[default]
    Lbfgs,
    Linfa,
}

/// Settings of the logistic family; the run's general settings are in
/// [`TrainSettings`](super::TrainSettings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogisticSettings {
    /// L2 strength, `1/C` in scikit-learn's terms.
    pub l2: f64,
    pub max_iterations: u64,
    /// Stop when the largest gradient component of the mean loss is at most this.
    pub tolerance: f64,
    pub class_weight: ClassWeight,
    pub solver: Solver,
}

impl Default for LogisticSettings {
    fn default() -> Self {
        LogisticSettings {
            l2: 1.0,
            max_iterations: 100,
            tolerance: 1e-4,
            class_weight: ClassWeight::None,
            solver: Solver::Lbfgs,
        }
    }
}

impl LogisticSettings {
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(CoreError::Training(format!("invalid setting: {what}")));
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return bad("l2 must be a finite number >= 0");
        }
        if self.max_iterations == 0 {
            return bad("max_iterations must be at least 1");
        }
        if !(self.tolerance.is_finite() && self.tolerance > 0.0) {
            return bad("tolerance must be > 0");
        }
        if let ClassWeight::Custom(w) = &self.class_weight
            && let Some((k, v)) = w.iter().find(|(_, v)| !(v.is_finite() && **v > 0.0))
        {
            return Err(CoreError::Training(format!(
                "invalid setting: class weight of `{k}` is {v}, must be > 0"
            )));
        }
        Ok(())
    }
}

/// Fitted weights. Binary models have one logit column (the second class); multiclass models one
/// column per class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    pub n_inputs: usize,
    pub n_classes: usize,
    /// Row-major `n_inputs x columns`.
    pub coef: Vec<f64>,
    pub intercept: Vec<f64>,
}

impl LogisticModel {
    fn columns(n_classes: usize) -> usize {
        if n_classes == 2 { 1 } else { n_classes }
    }

    /// Checks shapes after loading.
    pub fn validate(&self) -> Result<()> {
        let cols = Self::columns(self.n_classes);
        if self.n_classes < 2
            || self.coef.len() != self.n_inputs * cols
            || self.intercept.len() != cols
        {
            return Err(CoreError::Artifact(format!(
                "model weights have inconsistent shape: {} inputs, {} classes, {} coefficients, {} intercepts",
                self.n_inputs,
                self.n_classes,
                self.coef.len(),
                self.intercept.len()
            )));
        }
        Ok(())
    }

    /// Class probabilities of one preprocessed row into `out` (`n_classes` long).
    #[inline]
    pub fn predict_row(&self, x: &[f64], out: &mut [f64]) {
        debug_assert_eq!(x.len(), self.n_inputs);
        debug_assert_eq!(out.len(), self.n_classes);
        let cols = Self::columns(self.n_classes);
        if cols == 1 {
            let mut z = self.intercept[0];
            for (xj, wj) in x.iter().zip(&self.coef) {
                z += xj * wj;
            }
            let p = sigmoid(z);
            out[0] = 1.0 - p;
            out[1] = p;
            return;
        }
        out.copy_from_slice(&self.intercept);
        for (j, xj) in x.iter().enumerate() {
            if *xj == 0.0 {
                continue;
            }
            let w = &self.coef[j * cols..(j + 1) * cols];
            for (o, wk) in out.iter_mut().zip(w) {
                *o += xj * wk;
            }
        }
        softmax_inplace(out);
    }

    /// Class probabilities for every row of a preprocessed matrix.
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let mut out = Array2::zeros((x.nrows(), self.n_classes));
        for (row, mut o) in x.rows().into_iter().zip(out.rows_mut()) {
            let row = row.to_vec();
            if let Some(o) = o.as_slice_mut() {
                self.predict_row(&row, o);
            }
        }
        out
    }

    /// Fits on a preprocessed matrix and class indices `y` (`0..n_classes`), on up to
    /// `threads` threads. The report's `fit_ms` is left to [`Model::fit`](super::Model::fit).
    pub fn fit(
        x: ArrayView2<'_, f64>,
        y: &[usize],
        n_classes: usize,
        class_names: &[String],
        settings: &LogisticSettings,
        threads: usize,
    ) -> Result<(LogisticModel, FitReport)> {
        settings.validate()?;
        if x.nrows() != y.len() {
            return Err(CoreError::Training(format!(
                "{} rows but {} labels",
                x.nrows(),
                y.len()
            )));
        }
        if x.nrows() == 0 {
            return Err(CoreError::Training("no training rows".into()));
        }
        if let Some(bad) = y.iter().find(|&&k| k >= n_classes) {
            return Err(CoreError::Training(format!(
                "label index {bad} out of range for {n_classes} classes"
            )));
        }
        let mut counts = vec![0usize; n_classes];
        for &k in y {
            counts[k] += 1;
        }
        let present = counts.iter().filter(|&&c| c > 0).count();
        if present < 2 {
            return Err(CoreError::Training(format!(
                "training rows hold only one class ({}); need at least two",
                counts
                    .iter()
                    .position(|&c| c > 0)
                    .and_then(|k| class_names.get(k))
                    .map(String::as_str)
                    .unwrap_or("?")
            )));
        }
        let class_w = class_weights(&settings.class_weight, &counts, class_names);
        match settings.solver {
            Solver::Lbfgs => fit_lbfgs(x, y, n_classes, &class_w, settings, threads),
            Solver::Linfa => {
                if settings.class_weight != ClassWeight::None {
                    return Err(CoreError::Training(
                        "the linfa solver does not support class weights; use solver lbfgs".into(),
                    ));
                }
                if present != n_classes {
                    return Err(CoreError::Training(
                        "the linfa solver needs every class present in the training rows".into(),
                    ));
                }
                fit_linfa(x, y, n_classes, settings)
            }
        }
    }
}

fn class_weights(cw: &ClassWeight, counts: &[usize], names: &[String]) -> Vec<f64> {
    let n: usize = counts.iter().sum();
    let present = counts.iter().filter(|&&c| c > 0).count().max(1);
    match cw {
        ClassWeight::None => vec![1.0; counts.len()],
        ClassWeight::Balanced => counts
            .iter()
            .map(|&c| {
                if c == 0 {
                    0.0
                } else {
                    n as f64 / (present as f64 * c as f64)
                }
            })
            .collect(),
        ClassWeight::Custom(map) => names
            .iter()
            .map(|name| map.get(name).copied().unwrap_or(1.0))
            .collect(),
    }
}

#[inline]
pub(crate) fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `log(1 + exp(z))` without overflow.
#[inline]
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

#[inline]
fn softmax_inplace(v: &mut [f64]) {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

/// Loss and gradient of the weighted logistic objective over a block of rows.
/// `theta` is `[W row-major (d x cols), b (cols)]`; returns the un-normalised weighted loss sum
/// and adds the un-normalised gradient into `grad`.
fn block_loss_grad(
    x: &[f64],
    y: &[usize],
    w: &[f64],
    d: usize,
    cols: usize,
    theta: &[f64],
    grad: &mut [f64],
) -> f64 {
    let (coef, intercept) = theta.split_at(d * cols);
    let (gcoef, gint) = grad.split_at_mut(d * cols);
    let mut loss = 0.0;
    if cols == 1 {
        for (row, (&yi, &wi)) in x.chunks_exact(d).zip(y.iter().zip(w)) {
            let mut z = intercept[0];
            for (a, b) in row.iter().zip(coef) {
                z += a * b;
            }
            let target = yi as f64;
            loss += wi * if yi == 1 { softplus(-z) } else { softplus(z) };
            let r = wi * (sigmoid(z) - target);
            gint[0] += r;
            for (g, a) in gcoef.iter_mut().zip(row) {
                *g += r * a;
            }
        }
        return loss;
    }
    let mut z = vec![0.0; cols];
    for (row, (&yi, &wi)) in x.chunks_exact(d).zip(y.iter().zip(w)) {
        z.copy_from_slice(intercept);
        for (j, a) in row.iter().enumerate() {
            if *a == 0.0 {
                continue;
            }
            for (zk, wk) in z.iter_mut().zip(&coef[j * cols..(j + 1) * cols]) {
                *zk += a * wk;
            }
        }
        let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut sum = 0.0;
        for zk in z.iter_mut() {
            *zk = (*zk - max).exp();
            sum += *zk;
        }
        // loss = logsumexp - z_y = ln(sum) - (z_y - max)
        loss += wi * (sum.ln() - z[yi].ln());
        for (k, zk) in z.iter_mut().enumerate() {
            let p = *zk / sum;
            *zk = wi * (p - if k == yi { 1.0 } else { 0.0 });
        }
        for (k, r) in z.iter().enumerate() {
            gint[k] += r;
        }
        for (j, a) in row.iter().enumerate() {
            if *a == 0.0 {
                continue;
            }
            for (g, r) in gcoef[j * cols..(j + 1) * cols].iter_mut().zip(&z) {
                *g += r * a;
            }
        }
    }
    loss
}

fn fit_lbfgs(
    x: ArrayView2<'_, f64>,
    y: &[usize],
    n_classes: usize,
    class_w: &[f64],
    settings: &LogisticSettings,
    threads: usize,
) -> Result<(LogisticModel, FitReport)> {
    let (n, d) = x.dim();
    let cols = LogisticModel::columns(n_classes);
    let owned;
    let xs: &[f64] = match x.as_slice() {
        Some(s) => s,
        None => {
            owned = x.as_standard_layout().to_owned();
            owned
                .as_slice()
                .ok_or_else(|| CoreError::Training("matrix is not contiguous".into()))?
        }
    };
    let w: Vec<f64> = y.iter().map(|&k| class_w[k]).collect();
    let total_w: f64 = w.iter().sum();
    if total_w <= 0.0 {
        return Err(CoreError::Training("sample weights sum to zero".into()));
    }
    let lambda = settings.l2 / total_w;
    // Small problems are not worth a thread.
    let threads = threads.clamp(1, (n / 20_000).max(1));
    let chunk_rows = n.div_ceil(threads);
    let p = d * cols + cols;

    let eval = |theta: &[f64], grad: &mut [f64]| -> f64 {
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut loss = if threads == 1 {
            block_loss_grad(xs, y, &w, d, cols, theta, grad)
        } else {
            let parts: Vec<(f64, Vec<f64>)> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let lo = (t * chunk_rows).min(n);
                        let hi = ((t + 1) * chunk_rows).min(n);
                        let (xb, yb, wb) = (&xs[lo * d..hi * d], &y[lo..hi], &w[lo..hi]);
                        s.spawn(move || {
                            let mut g = vec![0.0; p];
                            let l = block_loss_grad(xb, yb, wb, d, cols, theta, &mut g);
                            (l, g)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or((f64::NAN, vec![f64::NAN; p])))
                    .collect()
            });
            let mut loss = 0.0;
            for (l, g) in parts {
                loss += l;
                for (a, b) in grad.iter_mut().zip(g) {
                    *a += b;
                }
            }
            loss
        };
        loss /= total_w;
        grad.iter_mut().for_each(|g| *g /= total_w);
        let (coef, _) = theta.split_at(d * cols);
        let mut reg = 0.0;
        for (g, c) in grad.iter_mut().zip(coef) {
            reg += c * c;
            *g += lambda * c;
        }
        loss + 0.5 * lambda * reg
    };
    let options = LbfgsOptions {
        max_iterations: settings.max_iterations,
        gradient_tolerance: settings.tolerance,
        ..LbfgsOptions::default()
    };
    let result = minimize(eval, vec![0.0; p], &options);
    if !result.loss.is_finite() {
        return Err(CoreError::Training(
            "the optimiser diverged (non-finite loss)".into(),
        ));
    }
    let (coef, intercept) = result.theta.split_at(d * cols);
    Ok((
        LogisticModel {
            n_inputs: d,
            n_classes,
            coef: coef.to_vec(),
            intercept: intercept.to_vec(),
        },
        FitReport {
            fit_ms: 0.0,
            iterations: Some(result.iterations),
            converged: Some(result.converged),
            final_loss: Some(result.loss),
        },
    ))
}

fn fit_linfa(
    x: ArrayView2<'_, f64>,
    y: &[usize],
    n_classes: usize,
    settings: &LogisticSettings,
) -> Result<(LogisticModel, FitReport)> {
    let n = x.nrows();
    let d = x.ncols();
    let targets = Array1::from(y.to_vec());
    let dataset = linfa::Dataset::new(x.to_owned(), targets);
    // linfa's loss is a sum over rows, ours a mean: scale the tolerance to match.
    let tol = settings.tolerance * n as f64;
    let err = |e: linfa_logistic::error::Error| CoreError::Training(format!("linfa-logistic: {e}"));
    if n_classes == 2 {
        let fitted = linfa_logistic::LogisticRegression::default()
            .alpha(settings.l2)
            .max_iterations(settings.max_iterations)
            .gradient_tolerance(tol)
            .fit(&dataset)
            .map_err(err)?;
        let model = LogisticModel {
            n_inputs: d,
            n_classes,
            coef: fitted.params().to_vec(),
            intercept: vec![fitted.intercept()],
        };
        Ok((
            model,
            // linfa does not report its iterations or convergence.
            FitReport {
                fit_ms: 0.0,
                iterations: None,
                converged: None,
                final_loss: None,
            },
        ))
    } else {
        let fitted = linfa_logistic::MultiLogisticRegression::default()
            .alpha(settings.l2)
            .max_iterations(settings.max_iterations)
            .gradient_tolerance(tol)
            .fit(&dataset)
            .map_err(err)?;
        let params = fitted.params();
        let mut coef = Vec::with_capacity(d * n_classes);
        for j in 0..d {
            for k in 0..n_classes {
                coef.push(params[[j, k]]);
            }
        }
        let model = LogisticModel {
            n_inputs: d,
            n_classes,
            coef,
            intercept: fitted.intercept().to_vec(),
        };
        Ok((
            model,
            // linfa does not report its iterations or convergence.
            FitReport {
                fit_ms: 0.0,
                iterations: None,
                converged: None,
                final_loss: None,
            },
        ))
    }
}
