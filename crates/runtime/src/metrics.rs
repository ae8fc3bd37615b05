//! The process's Prometheus registry. Every metric name gets the `mend_` prefix, so a
//! service registers `inference_latency_seconds` and scrapers see
//! `mend_inference_latency_seconds`.

use std::sync::{Arc, PoisonError, RwLock};

use prometheus_client::registry::{Metric, Registry};

/// The shared registry; clones share it. Register at start-up, encode per scrape.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<RwLock<Registry>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// An empty registry with the `mend` prefix.
    pub fn new() -> Self {
        Self {
            registry: Arc::new(RwLock::new(Registry::with_prefix("mend"))),
        }
    }

    /// Registers one metric. The metric handle (a `Counter`, `Histogram`, `Family`, …)
    /// is a cheap clone: keep one to update, pass one here.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.write(|registry| registry.register(name, help, metric));
    }

    /// Full access for sub-registries, units or constant labels.
    pub fn write<R>(&self, register: impl FnOnce(&mut Registry) -> R) -> R {
        // Registration is a single push; a panic elsewhere cannot leave it half-done.
        let mut registry = self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        register(&mut registry)
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)?;
        Ok(text)
    }
}
