//! Shared harness: one bus per backend (a real `nats-server -js` for JetStream), sample
//! events of every type, and timeouts so no test can hang.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mend_bus::events::{
    Alert, DataWindow, DriftDetected, DriftKind, FeatureDrift, Metrics, ModelPromoted,
    ModelRejected, ModelRolledBack, ModelTrained, RetrainRequested, Severity,
};
use mend_bus::{
    Bus, Delivery, Envelope, InProcessBus, JetStreamBus, JetStreamConfig, ModelName,
    OutgoingMessage, Subscription,
};
use mend_testkit::NatsServer;

/// Which bus implementation a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    InProcess,
    JetStream,
}

/// A bus under test, and the server behind it (kept alive for the test).
pub struct Harness {
    pub bus: Arc<dyn Bus>,
    pub jetstream: Option<JetStreamBus>,
    pub server: Option<NatsServer>,
}

impl Harness {
    pub async fn start(backend: Backend) -> Harness {
        match backend {
            Backend::InProcess => Harness {
                bus: Arc::new(InProcessBus::default()),
                jetstream: None,
                server: None,
            },
            Backend::JetStream => {
                let server = tokio::task::spawn_blocking(NatsServer::start)
                    .await
                    .unwrap()
                    .expect("nats-server starts");
                let config = JetStreamConfig {
                    publish_retry_for: Duration::from_secs(30),
                    ..JetStreamConfig::default()
                };
                let bus = JetStreamBus::connect(&server.url(), config).await.unwrap();
                Harness {
                    bus: Arc::new(bus.clone()),
                    jetstream: Some(bus),
                    server: Some(server),
                }
            }
        }
    }

    /// Publishes raw bytes the way a user would with `nats pub`: for JetStream a plain core
    /// NATS publish with no headers and no message id.
    pub async fn publish_raw(&self, subject: &str, payload: &'static [u8]) {
        match &self.jetstream {
            Some(bus) => {
                bus.client()
                    .publish(subject.to_owned(), Bytes::from_static(payload))
                    .await
                    .unwrap();
                bus.client().flush().await.unwrap();
            }
            None => {
                self.bus
                    .publish(subject, OutgoingMessage::new(Bytes::from_static(payload)))
                    .await
                    .unwrap();
            }
        }
    }
}

pub fn model() -> ModelName {
    ModelName::new("churn").unwrap()
}

/// Fails the test instead of hanging it.
pub async fn within<T>(seconds: u64, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(seconds), future)
        .await
        .expect("test step timed out")
}

/// The next delivery, or `None` if nothing comes within `wait`.
pub async fn next_within(subscription: &mut Subscription, wait: Duration) -> Option<Delivery> {
    tokio::time::timeout(wait, subscription.next())
        .await
        .ok()
        .flatten()
}

/// One event of every type, with every optional field filled.
pub fn every_event(model: &ModelName) -> Vec<Envelope> {
    let metrics = || Metrics::from([("accuracy".to_owned(), 0.9), ("log_loss".to_owned(), 0.3)]);
    vec![
        Envelope::new(
            model.clone(),
            DriftDetected {
                kind: DriftKind::Data,
                window: DataWindow::sequence(10, 900, 500),
                features: vec![FeatureDrift {
                    feature: "tenure".into(),
                    method: "wasserstein".into(),
                    score: 0.42,
                    threshold: 0.1,
                    drifted: true,
                }],
                dataset_share: 0.5,
                dataset_drift: true,
                report_id: Some("r-1".into()),
                champion_version: Some(3),
                metrics: Metrics::new(),
            },
        ),
        Envelope::new(
            model.clone(),
            RetrainRequested {
                reason: "quarterly".into(),
                window: Some(DataWindow {
                    last_rows: Some(1000),
                    ..DataWindow::default()
                }),
                requested_by: Some("cli".into()),
            },
        ),
        Envelope::new(
            model.clone(),
            ModelTrained {
                version: 4,
                parent_version: Some(3),
                trigger_event_id: Some("e-1".into()),
                trigger: Some("drift.detected".into()),
                window: Some(DataWindow::sequence(1, 99, 99)),
                metrics: metrics(),
                champion_metrics: metrics(),
                duration_ms: Some(120),
            },
        ),
        Envelope::new(
            model.clone(),
            ModelRejected {
                version: Some(5),
                reason: "no better than champion".into(),
                metrics: metrics(),
                champion_metrics: metrics(),
                champion_version: Some(4),
                trigger_event_id: Some("e-2".into()),
            },
        ),
        Envelope::new(
            model.clone(),
            ModelPromoted {
                version: 4,
                previous: Some(3),
                reason: "beat champion".into(),
                metrics: metrics(),
                trigger_event_id: Some("e-1".into()),
            },
        ),
        Envelope::new(
            model.clone(),
            ModelRolledBack {
                from_version: 4,
                to_version: 3,
                reason: "live accuracy fell".into(),
                metrics: metrics(),
            },
        ),
        Envelope::new(
            model.clone(),
            Alert {
                severity: Severity::Warning,
                text: "drift on tenure".into(),
                source: Some("monitor".into()),
                related_event_id: None,
            },
        ),
    ]
}
