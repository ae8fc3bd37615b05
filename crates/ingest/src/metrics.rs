//! The ingest service's Prometheus metrics (names get the registry's `mend_` prefix):
//!
//! - `ingest_accepted_total{kind, source}`: rows or labels appended to the data log.
//! - `ingest_rejected_total{kind, source, reason}`: rejected ones, by [`RejectReason::code`].
//! - `ingest_batches_total{kind, source, outcome}`: batches handled (`ok`, `failed`,
//!   `too_large`, `rejected` for a NATS message that does not decode).
//! - `ingest_batch_duration_seconds{kind, source}`: validation plus append, per batch.
//! - `ingest_in_flight_bytes`: batch bytes admitted and not yet appended (backpressure).
//!
//! No `model` label: names come from producers, and a typo per request must not grow the
//! label space.
//!
//! [`RejectReason::code`]: crate::reject::RejectReason::code

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use crate::reject::RejectReason;

/// Upper bounds of the batch latency buckets, in seconds: 100 µs to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0,
];

/// Rows or labels.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Kind {
    Rows,
    Labels,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Rows => "rows",
            Kind::Labels => "labels",
        }
    }
}

/// The door a batch came in by.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Door {
    Grpc,
    Nats,
}

impl Door {
    pub fn as_str(self) -> &'static str {
        match self {
            Door::Grpc => "grpc",
            Door::Nats => "nats",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BatchLabels {
    kind: &'static str,
    source: &'static str,
}

impl BatchLabels {
    fn new(kind: Kind, source: Door) -> Self {
        BatchLabels {
            kind: kind.as_str(),
            source: source.as_str(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabels {
    kind: &'static str,
    source: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    kind: &'static str,
    source: &'static str,
    outcome: &'static str,
}

type HistogramFamily = Family<BatchLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Every ingest metric; clones share them.
#[derive(Clone, Debug)]
pub struct IngestMetrics {
    accepted: Family<BatchLabels, Counter>,
    rejected: Family<RejectLabels, Counter>,
    batches: Family<OutcomeLabels, Counter>,
    latency: HistogramFamily,
    in_flight_bytes: Gauge,
}

impl IngestMetrics {
    /// Registers the metrics in the process registry.
    pub fn register(metrics: &mend_runtime::Metrics) -> Self {
        let this = IngestMetrics {
            accepted: Family::default(),
            rejected: Family::default(),
            batches: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            in_flight_bytes: Gauge::default(),
        };
        metrics.register(
            "ingest_accepted",
            "Rows or labels validated and appended to the data log",
            this.accepted.clone(),
        );
        metrics.register(
            "ingest_rejected",
            "Rows or labels rejected, by reason",
            this.rejected.clone(),
        );
        metrics.register(
            "ingest_batches",
            "Batches handled, by outcome",
            this.batches.clone(),
        );
        metrics.register(
            "ingest_batch_duration_seconds",
            "Time to validate and append one batch",
            this.latency.clone(),
        );
        metrics.register(
            "ingest_in_flight_bytes",
            "Bytes of batches admitted and not yet appended",
            this.in_flight_bytes.clone(),
        );
        this
    }

    pub(crate) fn batch(
        &self,
        kind: Kind,
        source: Door,
        accepted: usize,
        rejected: &[crate::reject::Rejection],
        seconds: f64,
    ) {
        let labels = BatchLabels::new(kind, source);
        self.accepted.get_or_create(&labels).inc_by(accepted as u64);
        for rejection in rejected {
            self.rejected
                .get_or_create(&RejectLabels {
                    kind: kind.as_str(),
                    source: source.as_str(),
                    reason: rejection.reason.code(),
                })
                .inc();
        }
        self.latency.get_or_create(&labels).observe(seconds);
        self.outcome(kind, source, "ok");
    }

    /// A batch over the row or byte limit, refused whole.
    pub(crate) fn too_large(&self, kind: Kind, source: Door) {
        self.outcome(kind, source, "too_large");
    }

    pub(crate) fn failed(&self, kind: Kind, source: Door) {
        self.outcome(kind, source, "failed");
    }

    /// A whole message rejected before its rows could be looked at (it does not decode, or
    /// it is over the batch limit), counted by reason as that many rows (at least one).
    pub(crate) fn rejected_whole(
        &self,
        kind: Kind,
        source: Door,
        reason: &RejectReason,
        rows: usize,
    ) {
        self.rejected
            .get_or_create(&RejectLabels {
                kind: kind.as_str(),
                source: source.as_str(),
                reason: reason.code(),
            })
            .inc_by(rows.max(1) as u64);
        self.outcome(kind, source, "rejected");
    }

    pub(crate) fn in_flight(&self) -> &Gauge {
        &self.in_flight_bytes
    }

    fn outcome(&self, kind: Kind, source: Door, outcome: &'static str) {
        self.batches
            .get_or_create(&OutcomeLabels {
                kind: kind.as_str(),
                source: source.as_str(),
                outcome,
            })
            .inc();
    }
}
