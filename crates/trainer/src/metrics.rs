//! The trainer's Prometheus metrics: retrains by model and outcome, retrain duration,
//! rollbacks by model, and the decision taken on every trigger (names get the registry's
//! `mend_` prefix).

use std::time::Duration;

use mend_runtime::Metrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use crate::outcome::RunOutcome;

/// Upper bounds of the retrain duration buckets, in seconds: 10 ms to 10 min.
const DURATION_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 600.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    model: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
}

type HistogramFamily = Family<ModelLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// Every metric of the trainer; clones share them.
#[derive(Clone, Debug)]
pub struct TrainerMetrics {
    retrains: Family<OutcomeLabels, Counter>,
    duration: HistogramFamily,
    rollbacks: Family<ModelLabels, Counter>,
    decisions: Family<DecisionLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    model: String,
    decision: String,
}

impl TrainerMetrics {
    /// Registers the trainer's metrics in `metrics`.
    pub fn register(metrics: &Metrics) -> Self {
        let this = TrainerMetrics {
            retrains: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            rollbacks: Family::default(),
            decisions: Family::default(),
        };
        metrics.register(
            "trainer_decisions",
            "Decisions on triggers by model: acted, merged, deferred, dropped",
            this.decisions.clone(),
        );
        metrics.register(
            "trainer_retrains",
            "Retrain runs by model and outcome (promoted, rejected, reused, covered, skipped, failed)",
            this.retrains.clone(),
        );
        metrics.register(
            "trainer_retrain_duration_seconds",
            "Wall time of a retrain run, retries included",
            this.duration.clone(),
        );
        metrics.register(
            "trainer_rollbacks",
            "Champions moved back by the rollback guard",
            this.rollbacks.clone(),
        );
        this
    }

    /// One finished run.
    pub fn run(&self, model: &str, outcome: &RunOutcome, took: Duration) {
        let outcome = outcome.name();
        self.retrains
            .get_or_create(&OutcomeLabels {
                model: model.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.duration
            .get_or_create(&ModelLabels {
                model: model.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// One decision on a trigger.
    pub fn decision(&self, model: &str, decision: &str) {
        self.decisions
            .get_or_create(&DecisionLabels {
                model: model.to_owned(),
                decision: decision.to_owned(),
            })
            .inc();
    }

    /// One rollback.
    pub fn rollback(&self, model: &str) {
        self.rollbacks
            .get_or_create(&ModelLabels {
                model: model.to_owned(),
            })
            .inc();
    }
}
