//! Shared test set-up: a schema, an ingest service on port 0, a real tonic client, and how
//! long `eventually` waits.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mend_bus::{Bus, DataLog};
use mend_core::{Feature, FeatureKind, Schema};
use mend_ingest::{InMemorySchemaSource, IngestConfig, IngestDeps, IngestServiceError};
use mend_proto::ingest::v1 as pb;
use mend_runtime::{Health, Metrics, Shutdown};
use mend_testkit::Patience;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// `churn`: a numeric `age`, a categorical `plan`; classes `no` and `yes`.
pub fn churn_schema(allow_missing: bool) -> Schema {
    Schema {
        features: vec![
            Feature {
                name: "age".into(),
                kind: FeatureKind::Numeric,
            },
            Feature {
                name: "plan".into(),
                kind: FeatureKind::Categorical,
            },
        ],
        label: "churned".into(),
        classes: vec!["no".into(), "yes".into()],
        id_column: Some("id".into()),
        time_column: None,
        allow_missing,
    }
}

/// A running ingest service.
pub struct Running {
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
    pub metrics: Metrics,
    pub task: JoinHandle<Result<(), IngestServiceError>>,
}

impl Running {
    pub async fn client(&self) -> pb::ingest_client::IngestClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        pb::ingest_client::IngestClient::new(channel).max_encoding_message_size(64 << 20)
    }

    pub async fn stop(self) {
        self.shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the service stops within 10 s")
            .unwrap()
            .unwrap();
    }
}

/// Starts the service on 127.0.0.1:0.
pub async fn start(
    config: IngestConfig,
    schemas: Arc<InMemorySchemaSource>,
    data_log: Arc<dyn DataLog>,
    bus: Option<Arc<dyn Bus>>,
) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let metrics = Metrics::new();
    let deps = IngestDeps {
        schemas,
        data_log,
        bus,
        metrics: metrics.clone(),
        health: Health::new(),
    };
    let task = tokio::spawn(mend_ingest::run(config, deps, listener, shutdown.clone()));
    Running {
        addr,
        shutdown,
        metrics,
        task,
    }
}

pub fn number(x: f64) -> pb::FeatureValue {
    pb::FeatureValue {
        kind: Some(pb::feature_value::Kind::Number(x)),
    }
}

pub fn text(s: &str) -> pb::FeatureValue {
    pb::FeatureValue {
        kind: Some(pb::feature_value::Kind::Text(s.to_owned())),
    }
}

pub fn row(id: &str, values: &[(&str, pb::FeatureValue)]) -> pb::Row {
    pb::Row {
        id: id.to_owned(),
        event_time_ms: 1_700_000_000_000,
        values: values
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect(),
    }
}

/// How long the ingest tests wait for a condition with `mend_testkit::eventually`: 20 s,
/// looking every 50 ms.
pub const SOON: Patience = Patience::seconds(20).polling_every(Duration::from_millis(50));
