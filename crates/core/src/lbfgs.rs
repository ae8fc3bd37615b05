//! A small limited-memory BFGS minimiser for smooth convex objectives.
//!
//! Two-loop recursion with `m` correction pairs, an Armijo backtracking line search with
//! quadratic interpolation (the unit step is accepted almost always on logistic losses), and
//! scipy's stopping rules as scikit-learn uses them: the largest gradient component at most
//! `gradient_tolerance`, or a relative decrease of the objective below `f_tolerance`.

use std::collections::VecDeque;

/// Knobs of the minimiser.
#[derive(Debug, Clone)]
pub struct LbfgsOptions {
    pub max_iterations: u64,
    pub gradient_tolerance: f64,
    pub f_tolerance: f64,
    pub memory: usize,
    pub max_line_search: usize,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        LbfgsOptions {
            max_iterations: 100,
            gradient_tolerance: 1e-4,
            f_tolerance: 64.0 * f64::EPSILON,
            memory: 10,
            max_line_search: 30,
        }
    }
}

/// Where the minimiser stopped.
#[derive(Debug, Clone)]
pub struct LbfgsResult {
    pub theta: Vec<f64>,
    pub loss: f64,
    pub iterations: u64,
    pub converged: bool,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Minimises `f`, which returns the objective at `theta` and writes its gradient.
pub fn minimize<F>(mut f: F, theta0: Vec<f64>, options: &LbfgsOptions) -> LbfgsResult
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let p = theta0.len();
    let mut x = theta0;
    let mut g = vec![0.0; p];
    let mut fx = f(&x, &mut g);
    let mut history: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::with_capacity(options.memory);
    let mut x_new = vec![0.0; p];
    let mut g_new = vec![0.0; p];
    let mut direction = vec![0.0; p];
    let mut alpha_buf = vec![0.0; options.memory];

    if !fx.is_finite() {
        return LbfgsResult {
            theta: x,
            loss: fx,
            iterations: 0,
            converged: false,
        };
    }
    if max_abs(&g) <= options.gradient_tolerance {
        return LbfgsResult {
            theta: x,
            loss: fx,
            iterations: 0,
            converged: true,
        };
    }
    for iteration in 1..=options.max_iterations {
        // Two-loop recursion: direction = -H g.
        direction.copy_from_slice(&g);
        for (i, (s, y, rho)) in history.iter().enumerate().rev() {
            let a = rho * dot(s, &direction);
            alpha_buf[i] = a;
            direction.iter_mut().zip(y).for_each(|(d, yi)| *d -= a * yi);
        }
        if let Some((s, y, _)) = history.back() {
            let gamma = dot(s, y) / dot(y, y);
            direction.iter_mut().for_each(|d| *d *= gamma);
        }
        for (i, (s, y, rho)) in history.iter().enumerate() {
            let b = rho * dot(y, &direction);
            let a = alpha_buf[i];
            direction
                .iter_mut()
                .zip(s)
                .for_each(|(d, si)| *d += (a - b) * si);
        }
        direction.iter_mut().for_each(|d| *d = -*d);
        let mut slope = dot(&direction, &g);
        if slope >= 0.0 {
            // Not a descent direction (numerical trouble): restart from steepest descent.
            history.clear();
            direction.iter_mut().zip(&g).for_each(|(d, gi)| *d = -gi);
            slope = -dot(&g, &g);
        }
        let mut step = if history.is_empty() {
            (1.0 / dot(&g, &g).sqrt()).min(1.0)
        } else {
            1.0
        };

        let mut accepted = None;
        for _ in 0..options.max_line_search {
            x_new
                .iter_mut()
                .zip(x.iter().zip(&direction))
                .for_each(|(n, (xi, di))| *n = xi + step * di);
            let f_try = f(&x_new, &mut g_new);
            if f_try.is_finite() && f_try <= fx + 1e-4 * step * slope {
                accepted = Some(f_try);
                break;
            }
            // Quadratic interpolation of the minimum along the line, kept in a safe bracket.
            let q = if f_try.is_finite() {
                -slope * step * step / (2.0 * (f_try - fx - slope * step))
            } else {
                step * 0.1
            };
            step = q.clamp(0.1 * step, 0.5 * step);
        }
        let Some(f_next) = accepted else {
            return LbfgsResult {
                theta: x,
                loss: fx,
                iterations: iteration,
                converged: max_abs(&g) <= options.gradient_tolerance,
            };
        };
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&y, &y).max(f64::MIN_POSITIVE) {
            if history.len() == options.memory {
                history.pop_front();
            }
            history.push_back((s, y, 1.0 / sy));
        }
        let decrease = (fx - f_next) / fx.abs().max(f_next.abs()).max(1.0);
        std::mem::swap(&mut x, &mut x_new);
        std::mem::swap(&mut g, &mut g_new);
        fx = f_next;
        if max_abs(&g) <= options.gradient_tolerance || decrease <= options.f_tolerance {
            return LbfgsResult {
                theta: x,
                loss: fx,
                iterations: iteration,
                converged: true,
            };
        }
    }
    let converged = max_abs(&g) <= options.gradient_tolerance;
    LbfgsResult {
        theta: x,
        loss: fx,
        iterations: options.max_iterations,
        converged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimises_a_quadratic_bowl() {
        // f = sum_i c_i (x_i - i)^2, minimum at x_i = i.
        let c = [1.0, 10.0, 100.0, 0.5];
        let f = |x: &[f64], g: &mut [f64]| {
            let mut v = 0.0;
            for i in 0..x.len() {
                let d = x[i] - i as f64;
                v += c[i] * d * d;
                g[i] = 2.0 * c[i] * d;
            }
            v
        };
        let opts = LbfgsOptions {
            gradient_tolerance: 1e-10,
            f_tolerance: 0.0,
            ..LbfgsOptions::default()
        };
        let r = minimize(f, vec![0.0; 4], &opts);
        assert!(r.converged);
        for (i, xi) in r.theta.iter().enumerate() {
            assert!((xi - i as f64).abs() < 1e-6, "x[{i}] = {xi}");
        }
    }
}
