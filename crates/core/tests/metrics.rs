#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Metrics against values computed by hand (and checked with scikit-learn).

use mend_core::Metrics;
use mend_core::metrics::roc_auc_binary;
use ndarray::array;

fn classes(n: usize) -> Vec<String> {
    (0..n).map(|k| format!("k{k}")).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn binary_metrics_equal_hand_computed_values() {
    // y = [0, 0, 1, 1], p(1) = [0.1, 0.6, 0.35, 0.8]; predictions [0, 1, 0, 1].
    let y = [0, 0, 1, 1];
    let proba = array![[0.9, 0.1], [0.4, 0.6], [0.65, 0.35], [0.2, 0.8]];
    let m = Metrics::compute(&y, proba.view(), &classes(2));
    assert!(close(m.accuracy, 0.5));
    assert_eq!(m.confusion, vec![vec![1, 1], vec![1, 1]]);
    assert!(
        close(m.per_class[1].precision, 0.5)
            && close(m.per_class[1].recall, 0.5)
            && close(m.per_class[1].f1, 0.5)
    );
    // sklearn.metrics.roc_auc_score([0,0,1,1],[0.1,0.6,0.35,0.8]) == 0.75
    assert!(close(m.roc_auc.unwrap(), 0.75));
    // log_loss: -(ln .9 + ln .4 + ln .35 + ln .8) / 4
    let ll = -((0.9f64).ln() + (0.4f64).ln() + (0.35f64).ln() + (0.8f64).ln()) / 4.0;
    assert!(close(m.log_loss, ll));
    // brier_score_loss: ((.1)^2 + (.6)^2 + (.65)^2 + (.2)^2) / 4 = 0.2131...
    assert!(close(m.brier, (0.01 + 0.36 + 0.4225 + 0.04) / 4.0));
    assert!(close(m.macro_f1, 0.5));
    assert_eq!(m.get("accuracy"), Some(m.accuracy));
    assert!(!Metrics::higher_is_better("log_loss"));
}

#[test]
fn multiclass_metrics_equal_hand_computed_values() {
    // y_true = [0, 1, 2, 2, 1], y_pred = [0, 2, 2, 2, 1]
    let y = [0, 1, 2, 2, 1];
    let proba = array![
        [0.7, 0.2, 0.1],
        [0.1, 0.3, 0.6],
        [0.2, 0.2, 0.6],
        [0.1, 0.1, 0.8],
        [0.2, 0.5, 0.3]
    ];
    let m = Metrics::compute(&y, proba.view(), &classes(3));
    assert!(close(m.accuracy, 0.8));
    assert_eq!(
        m.confusion,
        vec![vec![1, 0, 0], vec![0, 1, 1], vec![0, 0, 2]]
    );
    // class 1: precision 1/1, recall 1/2, f1 2/3; class 2: precision 2/3, recall 1, f1 0.8
    assert!(close(m.per_class[1].recall, 0.5) && close(m.per_class[1].f1, 2.0 / 3.0));
    assert!(close(m.per_class[2].precision, 2.0 / 3.0) && close(m.per_class[2].f1, 0.8));
    assert!(close(m.macro_f1, (1.0 + 2.0 / 3.0 + 0.8) / 3.0));
    assert!(close(m.macro_precision, (1.0 + 1.0 + 2.0 / 3.0) / 3.0));
    // Multiclass Brier: mean over rows of the summed squared errors.
    let b = [
        (0.09 + 0.04 + 0.01),
        (0.01 + 0.49 + 0.36),
        (0.04 + 0.04 + 0.16),
        (0.01 + 0.01 + 0.04),
        (0.04 + 0.25 + 0.09),
    ];
    assert!(close(m.brier, b.iter().sum::<f64>() / 5.0));
    // Macro one-vs-rest AUC: class 0: 1.0; class 1: pos {0.3, 0.5} vs neg {0.2, 0.2, 0.1} -> 1.0;
    // class 2: pos {0.6, 0.8} vs neg {0.1, 0.6, 0.3} -> (1 + 0.5 + 1 + 1 + 1 + 1) / 6 = 11/12.
    assert!(close(m.roc_auc.unwrap(), (1.0 + 1.0 + 11.0 / 12.0) / 3.0));
}

#[test]
fn roc_auc_handles_ties_and_single_class() {
    assert!(close(
        roc_auc_binary(&[0.5, 0.5], &[false, true]).unwrap(),
        0.5
    ));
    assert_eq!(roc_auc_binary(&[0.1, 0.9], &[true, true]), None);
    // sklearn.metrics.roc_auc_score([0,1,0,1,1],[0.2,0.2,0.3,0.9,0.5]) == 0.75
    assert!(close(
        roc_auc_binary(
            &[0.2, 0.2, 0.3, 0.9, 0.5],
            &[false, true, false, true, true]
        )
        .unwrap(),
        0.75
    ));
}
