//! `grpc.health.v1.Health` for Kubernetes gRPC probes, over `tonic-health`.
//!
//! One [`Health`] per gRPC server; one [`HealthReporter`] per service name on it. New
//! names start NOT_SERVING; a service flips its own to SERVING once it can answer. At
//! shutdown every name, including the overall `""`, goes NOT_SERVING and stays there.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::HealthService;

/// The overall server status name in the gRPC health protocol.
const OVERALL: &str = "";

/// Health state of one gRPC server; clones share it.
#[derive(Clone, Debug)]
pub struct Health {
    reporter: tonic_health::server::HealthReporter,
    names: Arc<Mutex<BTreeSet<String>>>,
    stopping: Arc<AtomicBool>,
}

/// Sets the status of one service name.
#[derive(Clone, Debug)]
pub struct HealthReporter {
    health: Health,
    name: String,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// Overall status SERVING, no named services yet.
    pub fn new() -> Self {
        Self {
            reporter: tonic_health::server::HealthReporter::new(),
            names: Arc::new(Mutex::new(BTreeSet::from([OVERALL.to_owned()]))),
            stopping: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The tonic service to add to a server (`.add_service(health.service())`).
    pub fn service(&self) -> HealthServer<HealthService> {
        HealthServer::new(HealthService::from_health_reporter(self.reporter.clone()))
    }

    /// A reporter for `name`, registered NOT_SERVING.
    pub async fn reporter(&self, name: impl Into<String>) -> HealthReporter {
        let name = name.into();
        self.names().insert(name.clone());
        self.reporter
            .set_service_status(&name, ServingStatus::NotServing)
            .await;
        HealthReporter {
            health: self.clone(),
            name,
        }
    }

    /// A reporter for the gRPC service `S`, named as clients ask for it
    /// (`inference.GRPCInferenceService`).
    pub async fn reporter_for<S: NamedService>(&self) -> HealthReporter {
        self.reporter(S::NAME).await
    }

    /// Every name, including the overall one, NOT_SERVING from now on.
    pub async fn set_all_not_serving(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let names: Vec<String> = self.names().iter().cloned().collect();
        for name in names {
            self.reporter
                .set_service_status(&name, ServingStatus::NotServing)
                .await;
        }
    }

    /// Waits for `shutdown`, then marks everything NOT_SERVING. Spawn it next to the
    /// server so probes fail before the server stops accepting.
    pub async fn not_serving_after(self, shutdown: CancellationToken) {
        shutdown.cancelled().await;
        self.set_all_not_serving().await;
        tracing::info!("grpc health set to not serving");
    }

    async fn set(&self, name: &str, status: ServingStatus) {
        // After shutdown began, a late "serving" from a draining service must not
        // re-admit traffic.
        let status = if self.stopping.load(Ordering::SeqCst) {
            ServingStatus::NotServing
        } else {
            status
        };
        self.reporter.set_service_status(name, status).await;
    }

    fn names(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.names.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl HealthReporter {
    /// This service can answer.
    pub async fn set_serving(&self) {
        self.health.set(&self.name, ServingStatus::Serving).await;
    }

    /// This service cannot answer (lost a dependency, draining).
    pub async fn set_not_serving(&self) {
        self.health.set(&self.name, ServingStatus::NotServing).await;
    }

    /// The service name this reporter sets.
    pub fn name(&self) -> &str {
        &self.name
    }
}
