//! Classification metrics: accuracy, precision/recall/F1 per class and macro, ROC AUC, log-loss,
//! Brier score and the confusion matrix, computed as scikit-learn computes them.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

/// Metrics of predictions against true classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub rows: usize,
    pub accuracy: f64,
    pub macro_precision: f64,
    pub macro_recall: f64,
    pub macro_f1: f64,
    /// Binary: ROC AUC of the second class. Multiclass: macro one-vs-rest. None when undefined
    /// (a single class present).
    pub roc_auc: Option<f64>,
    pub log_loss: f64,
    /// Binary: mean squared error of the second class's probability (scikit-learn's
    /// `brier_score_loss`). Multiclass: mean over rows of the summed squared error over classes.
    pub brier: f64,
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
}

impl Metrics {
    /// A named metric, for gates and reports (`accuracy`, `macro_f1`, `roc_auc`, `log_loss`,
    /// `brier`, ...). Losses are returned as they are; [`Metrics::higher_is_better`] says which way.
    pub fn get(&self, name: &str) -> Option<f64> {
        match name {
            "accuracy" => Some(self.accuracy),
            "macro_precision" => Some(self.macro_precision),
            "macro_recall" => Some(self.macro_recall),
            "macro_f1" | "f1" => Some(self.macro_f1),
            "roc_auc" | "auc" => self.roc_auc,
            "log_loss" => Some(self.log_loss),
            "brier" => Some(self.brier),
            _ => None,
        }
    }

    /// Whether a larger value of the named metric is better.
    pub fn higher_is_better(name: &str) -> bool {
        !matches!(name, "log_loss" | "brier")
    }

    /// Computes every metric. `proba` is rows x classes; the predicted class is the argmax.
    pub fn compute(y_true: &[usize], proba: ArrayView2<'_, f64>, classes: &[String]) -> Metrics {
        let n = y_true.len();
        let k = classes.len();
        debug_assert_eq!(proba.nrows(), n);
        debug_assert_eq!(proba.ncols(), k);
        let mut confusion = vec![vec![0usize; k]; k];
        let mut log_loss = 0.0;
        let mut brier = 0.0;
        for (i, &t) in y_true.iter().enumerate() {
            let row = proba.row(i);
            let pred = argmax(row.iter().copied());
            confusion[t][pred] += 1;
            log_loss -= row[t].clamp(1e-15, 1.0).ln();
            if k == 2 {
                let y1 = if t == 1 { 1.0 } else { 0.0 };
                brier += (row[1] - y1).powi(2);
            } else {
                for (c, p) in row.iter().enumerate() {
                    let yc = if c == t { 1.0 } else { 0.0 };
                    brier += (p - yc).powi(2);
                }
            }
        }
        let nf = n.max(1) as f64;
        let correct: usize = (0..k).map(|c| confusion[c][c]).sum();
        let mut per_class = Vec::with_capacity(k);
        let mut macro_sum = (0.0, 0.0, 0.0);
        let mut macro_n = 0;
        for c in 0..k {
            let tp = confusion[c][c];
            let support: usize = confusion[c].iter().sum();
            let predicted: usize = (0..k).map(|t| confusion[t][c]).sum();
            let precision = ratio(tp, predicted);
            let recall = ratio(tp, support);
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            // scikit-learn averages over the labels present in y_true or y_pred.
            if support > 0 || predicted > 0 {
                macro_sum.0 += precision;
                macro_sum.1 += recall;
                macro_sum.2 += f1;
                macro_n += 1;
            }
            per_class.push(ClassMetrics {
                class: classes[c].clone(),
                precision,
                recall,
                f1,
                support,
            });
        }
        let m = macro_n.max(1) as f64;
        let roc_auc = if k == 2 {
            let scores: Vec<f64> = proba.column(1).to_vec();
            let positive: Vec<bool> = y_true.iter().map(|&t| t == 1).collect();
            roc_auc_binary(&scores, &positive)
        } else {
            let aucs: Vec<f64> = (0..k)
                .filter_map(|c| {
                    let scores: Vec<f64> = proba.column(c).to_vec();
                    let positive: Vec<bool> = y_true.iter().map(|&t| t == c).collect();
                    roc_auc_binary(&scores, &positive)
                })
                .collect();
            (!aucs.is_empty()).then(|| aucs.iter().sum::<f64>() / aucs.len() as f64)
        };
        Metrics {
            rows: n,
            accuracy: correct as f64 / nf,
            macro_precision: macro_sum.0 / m,
            macro_recall: macro_sum.1 / m,
            macro_f1: macro_sum.2 / m,
            roc_auc,
            log_loss: log_loss / nf,
            brier: brier / nf,
            per_class,
            confusion,
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Index of the largest value (the first on ties).
pub fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// ROC AUC by the rank statistic (ties share their average rank). None without both classes.
pub fn roc_auc_binary(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let n_pos = positive.iter().filter(|&&p| p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Ranks i+1..=j+1 share their mean.
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &idx in &order[i..=j] {
            if positive[idx] {
                rank_sum_pos += avg_rank;
            }
        }
        i = j + 1;
    }
    let u = rank_sum_pos - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos as f64 * n_neg as f64))
}
