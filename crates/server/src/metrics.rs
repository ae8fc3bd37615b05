//! The server's Prometheus metrics: requests, rows, errors by code and a latency histogram by
//! model and version; prediction-log samples written and dropped; model swaps and load
//! failures.
//!
//! The request path never builds a label set: each loaded version carries its own handles
//! ([`VersionMetrics`]), resolved once when the version loads.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

/// Upper bounds of the latency buckets, in seconds: 25 µs to 1 s.
const LATENCY_BUCKETS: [f64; 15] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0,
];

/// The `model` label of requests for models this server does not serve, so random names from
/// clients cannot grow the label space.
pub const UNKNOWN_MODEL: &str = "_unknown";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    model: String,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    model: String,
    version: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
}

type HistogramFamily = Family<VersionLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Every metric of the server; clones share them.
#[derive(Clone, Debug)]
pub struct ServerMetrics {
    requests: Family<VersionLabels, Counter>,
    rows: Family<VersionLabels, Counter>,
    latency: HistogramFamily,
    errors: Family<ErrorLabels, Counter>,
    logged: Family<ModelLabels, Counter>,
    dropped: Family<ModelLabels, Counter>,
    swaps: Family<ModelLabels, Counter>,
    load_failures: Family<ModelLabels, Counter>,
    champion: Family<ModelLabels, Gauge>,
}

/// One version's request-path handles.
#[derive(Clone, Debug)]
pub struct VersionMetrics {
    requests: Counter,
    rows: Counter,
    latency: Histogram,
}

impl VersionMetrics {
    /// One answered inference request.
    pub fn observe(&self, rows: usize, seconds: f64) {
        self.requests.inc();
        self.rows.inc_by(rows as u64);
        self.latency.observe(seconds);
    }
}

impl ServerMetrics {
    /// Registers the server's metrics (names get the registry's `mend_` prefix).
    pub fn register(metrics: &mend_runtime::Metrics) -> ServerMetrics {
        let this = ServerMetrics {
            requests: Family::default(),
            rows: Family::default(),
            latency: HistogramFamily::new_with_constructor(latency_histogram),
            errors: Family::default(),
            logged: Family::default(),
            dropped: Family::default(),
            swaps: Family::default(),
            load_failures: Family::default(),
            champion: Family::default(),
        };
        metrics.register(
            "inference_requests",
            "Answered inference requests, by model and version",
            this.requests.clone(),
        );
        metrics.register(
            "inference_rows",
            "Rows predicted, by model and version",
            this.rows.clone(),
        );
        metrics.register(
            "inference_latency_seconds",
            "Time to decode, predict and encode one inference request",
            this.latency.clone(),
        );
        metrics.register(
            "inference_errors",
            "Failed inference requests, by model, version and gRPC code",
            this.errors.clone(),
        );
        metrics.register(
            "prediction_log_samples",
            "Sampled predictions written to the data log",
            this.logged.clone(),
        );
        metrics.register(
            "prediction_log_dropped",
            "Sampled predictions dropped because the data log was slow or failing",
            this.dropped.clone(),
        );
        metrics.register(
            "model_swaps",
            "Times a new champion was swapped into serving",
            this.swaps.clone(),
        );
        metrics.register(
            "model_load_failures",
            "Champion loads that failed (source down, bad artifact)",
            this.load_failures.clone(),
        );
        metrics.register(
            "model_champion_version",
            "The champion version being served",
            this.champion.clone(),
        );
        this
    }

    /// Handles for one version, resolved once at load.
    pub fn for_version(&self, model: &str, version: u64) -> VersionMetrics {
        let labels = VersionLabels {
            model: model.to_owned(),
            version: version.to_string(),
        };
        VersionMetrics {
            requests: self.requests.get_or_create(&labels).clone(),
            rows: self.rows.get_or_create(&labels).clone(),
            latency: self.latency.get_or_create(&labels).clone(),
        }
    }

    /// One failed request; `version` is empty when no version was chosen yet.
    pub fn error(&self, model: &str, version: &str, code: tonic::Code) {
        self.errors
            .get_or_create(&ErrorLabels {
                model: model.to_owned(),
                version: version.to_owned(),
                code: format!("{code:?}"),
            })
            .inc();
    }

    pub fn logged(&self, model: &str, rows: usize) {
        self.logged
            .get_or_create(&model_labels(model))
            .inc_by(rows as u64);
    }

    pub fn dropped(&self, model: &str, rows: usize) {
        self.dropped
            .get_or_create(&model_labels(model))
            .inc_by(rows as u64);
    }

    pub fn swapped(&self, model: &str, version: u64) {
        self.swaps.get_or_create(&model_labels(model)).inc();
        self.champion
            .get_or_create(&model_labels(model))
            .set(i64::try_from(version).unwrap_or(i64::MAX));
    }

    pub fn load_failed(&self, model: &str) {
        self.load_failures.get_or_create(&model_labels(model)).inc();
    }
}

fn model_labels(model: &str) -> ModelLabels {
    ModelLabels {
        model: model.to_owned(),
    }
}
