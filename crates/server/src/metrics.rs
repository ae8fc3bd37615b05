//! The server's Prometheus metrics: requests, rows, errors by code and a latency histogram by
//! model and version; prediction-log samples written and dropped; model swaps and load
//! failures.
//!
//! The request path never builds a label set: each loaded version carries its own handles
//! ([`VersionMetrics`]), resolved once when the version loads.
//!
//! A version's label sets live exactly as long as the version is loaded: when its last
//! [`VersionMetrics`] goes (the version left the champion slot and the version cache, and the
//! requests still holding it have answered), its series are removed, so `/metrics` does not
//! grow with every promotion. Versions still served keep their series, and with them
//! monotonic counters; a version loaded again later starts its counters from zero, which
//! Prometheus reads as a counter reset.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

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
    /// Live [`VersionMetrics`] per version; the series go when the count drops to zero.
    /// Held while creating or removing a version's series, so the two never interleave.
    in_use: Arc<Mutex<HashMap<VersionLabels, usize>>>,
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

/// One version's request-path handles. Dropping the last one of a version removes its
/// series (see the module doc), so it is deliberately not `Clone`.
#[derive(Debug)]
pub struct VersionMetrics {
    requests: Counter,
    rows: Counter,
    latency: Histogram,
    owner: ServerMetrics,
    labels: VersionLabels,
}

impl Drop for VersionMetrics {
    fn drop(&mut self) {
        self.owner.release(&self.labels);
    }
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
            in_use: Arc::default(),
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
            "Sampled predictions dropped because the data log was slow, failing, or could not take them (too large)",
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

    /// Handles for one version, resolved once at load. The version's series stay until
    /// every handle for it is dropped.
    pub fn for_version(&self, model: &str, version: u64) -> VersionMetrics {
        let labels = VersionLabels {
            model: model.to_owned(),
            version: version.to_string(),
        };
        let mut in_use = self.lock_in_use();
        *in_use.entry(labels.clone()).or_insert(0) += 1;
        let handles = VersionMetrics {
            requests: self.requests.get_or_create(&labels).clone(),
            rows: self.rows.get_or_create(&labels).clone(),
            latency: self.latency.get_or_create(&labels).clone(),
            owner: self.clone(),
            labels,
        };
        drop(in_use);
        handles
    }

    /// One handle of a version is gone; the last one takes the version's series with it.
    fn release(&self, labels: &VersionLabels) {
        let mut in_use = self.lock_in_use();
        match in_use.get_mut(labels) {
            Some(count) if *count > 1 => {
                *count -= 1;
                return;
            }
            _ => {
                in_use.remove(labels);
            }
        }
        self.requests.remove(labels);
        self.rows.remove(labels);
        self.latency.remove(labels);
        for code in ALL_CODES {
            self.errors.remove(&ErrorLabels {
                model: labels.model.clone(),
                version: labels.version.clone(),
                code: format!("{code:?}"),
            });
        }
        drop(in_use);
        tracing::debug!(model = %labels.model, version = %labels.version, "version unloaded; removed its metric series");
    }

    fn lock_in_use(&self) -> std::sync::MutexGuard<'_, HashMap<VersionLabels, usize>> {
        // Each critical section is a counter update or a few removals; still whole if poisoned.
        self.in_use.lock().unwrap_or_else(PoisonError::into_inner)
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

/// Every gRPC status code, to remove a version's error series whatever their code.
const ALL_CODES: [tonic::Code; 17] = [
    tonic::Code::Ok,
    tonic::Code::Cancelled,
    tonic::Code::Unknown,
    tonic::Code::InvalidArgument,
    tonic::Code::DeadlineExceeded,
    tonic::Code::NotFound,
    tonic::Code::AlreadyExists,
    tonic::Code::PermissionDenied,
    tonic::Code::ResourceExhausted,
    tonic::Code::FailedPrecondition,
    tonic::Code::Aborted,
    tonic::Code::OutOfRange,
    tonic::Code::Unimplemented,
    tonic::Code::Internal,
    tonic::Code::Unavailable,
    tonic::Code::DataLoss,
    tonic::Code::Unauthenticated,
];

fn model_labels(model: &str) -> ModelLabels {
    ModelLabels {
        model: model.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn series(registry: &mend_runtime::Metrics, version: &str) -> usize {
        let needle = format!("version=\"{version}\"");
        registry
            .encode()
            .unwrap()
            .lines()
            .filter(|line| !line.starts_with('#') && line.contains(&needle))
            .count()
    }

    #[test]
    fn a_versions_series_go_with_its_last_handle() {
        let registry = mend_runtime::Metrics::new();
        let metrics = ServerMetrics::register(&registry);
        let first = metrics.for_version("churn", 3);
        let second = metrics.for_version("churn", 3);
        let other = metrics.for_version("churn", 4);
        first.observe(2, 0.001);
        metrics.error("churn", "3", tonic::Code::InvalidArgument);
        assert!(series(&registry, "3") > 3, "{}", registry.encode().unwrap());

        // Another holder of version 3 remains (a request still answering on it).
        drop(first);
        assert!(
            registry
                .encode()
                .unwrap()
                .contains("mend_inference_requests_total{model=\"churn\",version=\"3\"} 1")
        );
        drop(second);
        assert_eq!(series(&registry, "3"), 0, "{}", registry.encode().unwrap());
        // Other versions are untouched and keep counting.
        other.observe(1, 0.001);
        assert!(
            registry
                .encode()
                .unwrap()
                .contains("mend_inference_requests_total{model=\"churn\",version=\"4\"} 1")
        );

        // Loaded again later: fresh series.
        let again = metrics.for_version("churn", 3);
        again.observe(1, 0.001);
        assert!(
            registry
                .encode()
                .unwrap()
                .contains("mend_inference_requests_total{model=\"churn\",version=\"3\"} 1")
        );
    }
}
