//! The promotion gate (invariant 2): a candidate replaces the champion only when it beats it
//! on the same held-out rows by a margin, or when the champion has fallen below its floor
//! and the candidate clears it.

use mend_core::Metrics;

/// Metrics the gate can compare.
pub const KNOWN_METRICS: &[&str] = &["accuracy", "macro_f1", "roc_auc", "log_loss", "brier"];

/// How the gate decides.
#[derive(Debug, Clone, PartialEq)]
pub struct GatePolicy {
    /// The metric compared, e.g. `accuracy` (losses are compared the right way round).
    pub metric: String,
    /// How much better than the champion the candidate must be.
    pub margin: f64,
    /// A champion worse than this yields to a candidate at least this good.
    pub floor: Option<f64>,
}

/// The gate's verdict, with a reason fit for an audit log and an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct GateDecision {
    pub promote: bool,
    pub reason: String,
}

impl GateDecision {
    fn pass(reason: String) -> Self {
        GateDecision {
            promote: true,
            reason,
        }
    }

    fn fail(reason: String) -> Self {
        GateDecision {
            promote: false,
            reason,
        }
    }
}

/// Decides on a candidate given both models' metrics on the same held-out rows.
pub fn decide(
    policy: &GatePolicy,
    candidate: &Metrics,
    champion: Option<&Metrics>,
) -> GateDecision {
    let name = policy.metric.as_str();
    let Some(candidate_value) = candidate.get(name) else {
        return GateDecision::fail(format!(
            "the candidate's {name} is undefined on the holdout"
        ));
    };
    let higher_is_better = Metrics::higher_is_better(name);
    let at_least = |value: f64, bound: f64| {
        if higher_is_better {
            value >= bound
        } else {
            value <= bound
        }
    };
    let Some(champion) = champion else {
        return match policy.floor {
            Some(floor) if !at_least(candidate_value, floor) => GateDecision::fail(format!(
                "no champion yet, but the candidate's {name} {candidate_value:.4} is below the floor {floor:.4}"
            )),
            _ => GateDecision::pass(format!(
                "no champion yet; candidate {name} {candidate_value:.4}"
            )),
        };
    };
    let Some(champion_value) = champion.get(name) else {
        return GateDecision::pass(format!(
            "the champion's {name} is undefined on the holdout; candidate {name} {candidate_value:.4}"
        ));
    };
    let improvement = improvement_of(name, candidate_value, champion_value);
    // A tiny tolerance so a margin of exactly 0.005 is met by an improvement of 0.005
    // despite floating-point rounding.
    if improvement + 1e-12 >= policy.margin && improvement > 0.0 {
        return GateDecision::pass(format!(
            "candidate {name} {candidate_value:.4} beats champion {champion_value:.4} by {improvement:.4} (margin {:.4})",
            policy.margin
        ));
    }
    if let Some(floor) = policy.floor
        && !at_least(champion_value, floor)
        && at_least(candidate_value, floor)
    {
        return GateDecision::pass(format!(
            "champion {name} {champion_value:.4} is below the floor {floor:.4} and candidate {candidate_value:.4} clears it"
        ));
    }
    GateDecision::fail(format!(
        "candidate {name} {candidate_value:.4} does not beat champion {champion_value:.4} by the margin {:.4}",
        policy.margin
    ))
}

/// Standard errors of the accuracy difference by which a candidate answering data drift alone
/// must beat the champion (see [`require_clear_win`]).
pub const CLEAR_WIN_Z: f64 = 2.0;

/// A passed decision of a run that answered data drift alone (no labels said the champion
/// lost performance) stands only if, on accuracy, the candidate beats the champion by at
/// least [`CLEAR_WIN_Z`] standard errors of the difference on the `rows` held-out rows:
/// where the world moves but the model does not suffer, a candidate that only wins by noise
/// on a small holdout is not served. Other metrics, and a pass because the champion broke
/// its floor, are left as decided.
pub fn require_clear_win(
    decision: GateDecision,
    policy: &GatePolicy,
    candidate: &Metrics,
    champion: Option<&Metrics>,
    rows: usize,
) -> GateDecision {
    if !decision.promote || policy.metric != "accuracy" || rows == 0 {
        return decision;
    }
    let (Some(champion), Some(c)) = (champion, candidate.get("accuracy")) else {
        return decision;
    };
    let Some(p) = champion.get("accuracy") else {
        return decision;
    };
    if policy.floor.is_some_and(|floor| p < floor) {
        return decision;
    }
    let n = rows as f64;
    let se = ((c * (1.0 - c) + p * (1.0 - p)) / n).sqrt();
    let needed = CLEAR_WIN_Z * se;
    if c - p + 1e-12 >= needed {
        return decision;
    }
    GateDecision::fail(format!(
        "data drift alone (no labels showed the champion losing performance): candidate accuracy {c:.4} beats champion {p:.4} by {:.4}, less than {CLEAR_WIN_Z} standard errors ({needed:.4}) on {rows} held-out rows",
        c - p
    ))
}

/// How much better the candidate is than the champion on `metric` (negative when worse), if
/// both are defined.
pub fn improvement(metric: &str, candidate: &Metrics, champion: &Metrics) -> Option<f64> {
    Some(improvement_of(
        metric,
        candidate.get(metric)?,
        champion.get(metric)?,
    ))
}

fn improvement_of(metric: &str, candidate: f64, champion: f64) -> f64 {
    if Metrics::higher_is_better(metric) {
        candidate - champion
    } else {
        champion - candidate
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    #[test]
    fn a_data_drift_candidate_must_win_by_two_standard_errors() {
        let policy = GatePolicy {
            metric: "accuracy".into(),
            margin: 0.005,
            floor: None,
        };
        let metrics = |accuracy: f64| Metrics {
            accuracy,
            ..metrics_right_on(5)
        };
        let (small, clear) = (metrics(0.86), metrics(0.95));
        let champion = metrics(0.85);
        // 400 held-out rows: the standard error of the difference is about 0.025.
        let passed = decide(&policy, &small, Some(&champion));
        assert!(passed.promote);
        let held = require_clear_win(passed, &policy, &small, Some(&champion), 400);
        assert!(!held.promote, "{}", held.reason);
        assert!(held.reason.contains("standard errors"), "{}", held.reason);
        let clear_win = decide(&policy, &clear, Some(&champion));
        let kept = require_clear_win(clear_win, &policy, &clear, Some(&champion), 400);
        assert!(kept.promote, "{}", kept.reason);
        // A failed decision stays failed; a champion below its floor still yields.
        let failed = decide(&policy, &champion, Some(&small));
        assert!(!require_clear_win(failed, &policy, &champion, Some(&small), 400).promote);
        let floored = GatePolicy {
            floor: Some(0.9),
            ..policy.clone()
        };
        let passed = decide(&floored, &small, Some(&champion));
        assert!(require_clear_win(passed, &floored, &small, Some(&champion), 400).promote);
    }

    use super::*;

    /// Metrics of a binary model that is right on `right` of 10 rows.
    fn metrics_right_on(right: usize) -> Metrics {
        let classes = vec!["no".to_owned(), "yes".to_owned()];
        let y: Vec<usize> = (0..10).map(|i| i % 2).collect();
        let mut proba = ndarray::Array2::zeros((10, 2));
        for (i, &label) in y.iter().enumerate() {
            let predicted = if i < right { label } else { 1 - label };
            proba[[i, predicted]] = 0.9;
            proba[[i, 1 - predicted]] = 0.1;
        }
        Metrics::compute(&y, proba.view(), &classes)
    }

    fn policy(margin: f64, floor: Option<f64>) -> GatePolicy {
        GatePolicy {
            metric: "accuracy".into(),
            margin,
            floor,
        }
    }

    #[test]
    fn a_better_candidate_passes_and_a_tie_fails() {
        let better = decide(
            &policy(0.05, None),
            &metrics_right_on(9),
            Some(&metrics_right_on(8)),
        );
        assert!(better.promote, "{}", better.reason);
        let tie = decide(
            &policy(0.0, None),
            &metrics_right_on(8),
            Some(&metrics_right_on(8)),
        );
        assert!(!tie.promote, "{}", tie.reason);
        let short = decide(
            &policy(0.2, None),
            &metrics_right_on(9),
            Some(&metrics_right_on(8)),
        );
        assert!(!short.promote);
        assert!(short.reason.contains("does not beat"), "{}", short.reason);
    }

    #[test]
    fn a_champion_below_its_floor_yields_to_a_candidate_above_it() {
        let rescue = decide(
            &policy(0.5, Some(0.7)),
            &metrics_right_on(8),
            Some(&metrics_right_on(6)),
        );
        assert!(rescue.promote, "{}", rescue.reason);
        let both_low = decide(
            &policy(0.5, Some(0.9)),
            &metrics_right_on(8),
            Some(&metrics_right_on(6)),
        );
        assert!(!both_low.promote);
    }

    #[test]
    fn losses_are_compared_the_right_way_round() {
        let lower_loss = GatePolicy {
            metric: "log_loss".into(),
            margin: 0.01,
            floor: None,
        };
        let decision = decide(
            &lower_loss,
            &metrics_right_on(10),
            Some(&metrics_right_on(5)),
        );
        assert!(decision.promote, "{}", decision.reason);
        let decision = decide(
            &lower_loss,
            &metrics_right_on(5),
            Some(&metrics_right_on(10)),
        );
        assert!(!decision.promote);
    }

    #[test]
    fn without_a_champion_only_the_floor_can_refuse() {
        assert!(decide(&policy(0.1, None), &metrics_right_on(3), None).promote);
        assert!(!decide(&policy(0.1, Some(0.5)), &metrics_right_on(3), None).promote);
    }
}
