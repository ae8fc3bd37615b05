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

    use proptest::prelude::*;

    /// Metrics on a holdout whose six rows all belong to the first class: accuracy is defined
    /// (1.0, every row right) but ROC AUC is not, as scikit-learn's `roc_auc_score` refuses a
    /// single class.
    fn metrics_on_one_class() -> Metrics {
        let classes = ["no".to_owned(), "yes".to_owned()];
        let y = [0usize; 6];
        let mut proba = ndarray::Array2::zeros((6, 2));
        for i in 0..6 {
            proba[[i, 0]] = 0.8;
            proba[[i, 1]] = 0.2;
        }
        Metrics::compute(&y, proba.view(), &classes)
    }

    /// A binary model's metrics with `name` set to `value` (the other metrics are those of
    /// [`metrics_right_on`]`(5)` and play no part: the gate reads one metric).
    fn with_metric(name: &str, value: f64) -> Metrics {
        let mut m = metrics_right_on(5);
        match name {
            "accuracy" => m.accuracy = value,
            "macro_f1" => m.macro_f1 = value,
            "roc_auc" => m.roc_auc = Some(value),
            "log_loss" => m.log_loss = value,
            "brier" => m.brier = value,
            other => panic!("no metric {other}"),
        }
        m
    }

    fn gate(metric: &str, margin: f64, floor: Option<f64>) -> GatePolicy {
        GatePolicy {
            metric: metric.to_owned(),
            margin,
            floor,
        }
    }

    #[test]
    fn a_candidate_whose_metric_is_undefined_is_refused_with_the_reason() {
        let undefined = metrics_on_one_class();
        assert_eq!(undefined.roc_auc, None);
        assert_eq!(undefined.accuracy, 1.0);
        let champion = with_metric("roc_auc", 0.6);
        // Refused against a champion and without one, with no margin and no floor to meet.
        for champion in [Some(&champion), None] {
            let decision = decide(&gate("roc_auc", 0.0, None), &undefined, champion);
            assert!(!decision.promote, "{}", decision.reason);
            assert_eq!(
                decision.reason,
                "the candidate's roc_auc is undefined on the holdout"
            );
        }
        // A metric name the metrics do not have is undefined as well.
        let unknown = decide(
            &gate("precision_at_10", 0.0, None),
            &metrics_right_on(10),
            None,
        );
        assert!(!unknown.promote);
        assert!(
            unknown.reason.contains("precision_at_10 is undefined"),
            "{}",
            unknown.reason
        );
    }

    #[test]
    fn a_champion_whose_metric_is_undefined_yields_to_any_defined_candidate() {
        let champion = metrics_on_one_class();
        assert_eq!(champion.roc_auc, None);
        // An AUC of 0.55 beats no defined champion (AUC >= 0) by a margin of 0.9: only the
        // undefined champion lets it through.
        let candidate = with_metric("roc_auc", 0.55);
        let decision = decide(&gate("roc_auc", 0.9, None), &candidate, Some(&champion));
        assert!(decision.promote, "{}", decision.reason);
        assert_eq!(
            decision.reason,
            "the champion's roc_auc is undefined on the holdout; candidate roc_auc 0.5500"
        );
    }

    #[test]
    fn an_improvement_of_exactly_the_margin_passes_and_a_hair_less_fails() {
        // One more right answer out of 200 held-out rows is an improvement of exactly 0.005,
        // the margin; in binary floating point 163/200 - 162/200 is 0.004999999999999893.
        let exact = decide(
            &gate("accuracy", 0.005, None),
            &with_metric("accuracy", 163.0 / 200.0),
            Some(&with_metric("accuracy", 162.0 / 200.0)),
        );
        assert!(exact.promote, "{}", exact.reason);
        // 0.75 - 0.5 = 0.25 holds exactly in binary.
        let exact = decide(
            &gate("accuracy", 0.25, None),
            &with_metric("accuracy", 0.75),
            Some(&with_metric("accuracy", 0.5)),
        );
        assert!(exact.promote, "{}", exact.reason);
        // A loss lower by exactly the margin: 0.3 - 0.2 is 0.09999999999999998 in binary.
        let exact = decide(
            &gate("log_loss", 0.1, None),
            &with_metric("log_loss", 0.2),
            Some(&with_metric("log_loss", 0.3)),
        );
        assert!(exact.promote, "{}", exact.reason);
        // A billionth short of the margin is short, for a score and for a loss.
        let short = decide(
            &gate("accuracy", 0.25, None),
            &with_metric("accuracy", 0.75 - 1e-9),
            Some(&with_metric("accuracy", 0.5)),
        );
        assert!(!short.promote, "{}", short.reason);
        assert!(short.reason.contains("does not beat"), "{}", short.reason);
        let short = decide(
            &gate("log_loss", 0.1, None),
            &with_metric("log_loss", 0.2 + 1e-9),
            Some(&with_metric("log_loss", 0.3)),
        );
        assert!(!short.promote, "{}", short.reason);
    }

    #[test]
    fn without_a_champion_a_candidate_exactly_at_the_floor_clears_it() {
        // Accuracy: at least the floor.
        let at = decide(
            &gate("accuracy", 0.1, Some(0.7)),
            &with_metric("accuracy", 0.7),
            None,
        );
        assert!(at.promote, "{}", at.reason);
        assert_eq!(at.reason, "no champion yet; candidate accuracy 0.7000");
        let below = decide(
            &gate("accuracy", 0.1, Some(0.7)),
            &with_metric("accuracy", 0.7 - 1e-9),
            None,
        );
        assert!(!below.promote, "{}", below.reason);
        assert!(
            below.reason.contains("is below the floor 0.7000"),
            "{}",
            below.reason
        );
        // A loss: at most the floor.
        let policy = gate("log_loss", 0.1, Some(0.4));
        assert!(decide(&policy, &with_metric("log_loss", 0.4), None).promote);
        assert!(decide(&policy, &with_metric("log_loss", 0.1), None).promote);
        assert!(!decide(&policy, &with_metric("log_loss", 0.4 + 1e-9), None).promote);
        assert!(!decide(&policy, &with_metric("log_loss", 0.9), None).promote);
    }

    /// A metric the gate knows, each with the same chance.
    fn any_metric() -> impl Strategy<Value = &'static str> {
        prop::sample::select(KNOWN_METRICS)
    }

    /// Whether `metric` is a loss (lower is better), by the list of losses written out here.
    fn is_loss(metric: &str) -> bool {
        metric == "log_loss" || metric == "brier"
    }

    proptest! {
        #[test]
        fn a_strictly_worse_candidate_is_never_promoted_without_a_floor(
            metric in any_metric(),
            a in 0.0f64..1.0,
            b in 0.0f64..1.0,
            margin in -0.5f64..0.5,
        ) {
            prop_assume!(a != b);
            let (low, high) = (a.min(b), a.max(b));
            let (worse, better) = if is_loss(metric) { (high, low) } else { (low, high) };
            let decision = decide(
                &gate(metric, margin, None),
                &with_metric(metric, worse),
                Some(&with_metric(metric, better)),
            );
            prop_assert!(!decision.promote, "{}", decision.reason);
        }

        #[test]
        fn equal_metrics_never_promote(
            metric in any_metric(),
            value in 0.0f64..1.0,
            margin in prop_oneof![Just(0.0), 0.0f64..0.5],
            floor in prop::option::of(0.0f64..1.0),
        ) {
            let decision = decide(
                &gate(metric, margin, floor),
                &with_metric(metric, value),
                Some(&with_metric(metric, value)),
            );
            prop_assert!(!decision.promote, "{}", decision.reason);
        }

        #[test]
        fn swapping_candidate_and_champion_never_promotes_both(
            metric in any_metric(),
            a in 0.0f64..1.0,
            b in prop_oneof![Just(None), (0.0f64..1.0).prop_map(Some)],
            margin in prop_oneof![Just(0.0), -0.5f64..0.5],
            floor in prop::option::of(0.0f64..1.0),
        ) {
            // `None`: the two are tied.
            let b = b.unwrap_or(a);
            let (x, y) = (with_metric(metric, a), with_metric(metric, b));
            let policy = gate(metric, margin, floor);
            let forward = decide(&policy, &x, Some(&y));
            let backward = decide(&policy, &y, Some(&x));
            prop_assert!(
                !(forward.promote && backward.promote),
                "both promote: {} / {}",
                forward.reason,
                backward.reason
            );
        }
    }
}
