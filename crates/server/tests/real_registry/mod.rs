//! The real registry (`mend-registry`'s own `run`, on SQLite or JetStream storage) served in
//! process on a loopback port, for tests of the server against it instead of a stand-in; and
//! the registry writes those tests make, through the shared `mend_client::RegistryClient`.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mend_bus::Bus;
use mend_client::RegistryClient;
use mend_proto::registry::v1 as pb;
use mend_registry::{RegistryConfig, RegistryDeps, RegistryError, RegistryStore, SqliteStore};
use mend_runtime::{MendConfig, Shutdown};
use mend_server::RegistryModelSource;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::Endpoint;

/// A running (or stopped, and restartable on the same address) registry.
pub struct RealRegistry {
    pub addr: SocketAddr,
    /// A client with write access (the registry runs without a token).
    pub client: RegistryClient,
    store: Arc<dyn RegistryStore>,
    bus: Option<Arc<dyn Bus>>,
    shutdown: Shutdown,
    task: Option<JoinHandle<Result<(), RegistryError>>>,
    _dir: Option<TempDir>,
}

impl RealRegistry {
    /// SQLite in a temp dir, announcing champion moves on `bus` when there is one.
    pub async fn sqlite(bus: Option<Arc<dyn Bus>>) -> RealRegistry {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
        let mut registry = RealRegistry::start(Arc::new(store), bus).await;
        registry._dir = Some(dir);
        registry
    }

    /// Any store; a fresh loopback port.
    pub async fn start(store: Arc<dyn RegistryStore>, bus: Option<Arc<dyn Bus>>) -> RealRegistry {
        // Bound here and handed over, so no other process can take the port in between.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let endpoint = Endpoint::from_shared(format!("http://{addr}")).unwrap();
        let mut registry = RealRegistry {
            addr,
            client: RegistryClient::connect_lazy(&endpoint, None),
            store,
            bus,
            shutdown: Shutdown::new(),
            task: None,
            _dir: None,
        };
        registry.serve(listener);
        registry
    }

    fn serve(&mut self, listener: TcpListener) {
        let config =
            RegistryConfig::from_mend(&MendConfig::from_map(&HashMap::new()).unwrap()).unwrap();
        let deps = RegistryDeps {
            store: Arc::clone(&self.store),
            bus: self.bus.clone(),
        };
        let shutdown = Shutdown::new();
        self.shutdown = shutdown.clone();
        self.task = Some(tokio::spawn(async move {
            mend_registry::run(config, deps, listener, shutdown).await
        }));
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint::from_shared(format!("http://{}", self.addr)).unwrap()
    }

    /// What the server reads models through, dialled lazily like `mend-server` does.
    pub fn source(&self) -> RegistryModelSource {
        RegistryModelSource::connect_lazy(&self.endpoint())
    }

    /// Stops serving (graceful shutdown of `mend_registry::run`) and waits until it returned:
    /// from then on nothing listens on `addr`.
    pub async fn stop(&mut self) {
        self.shutdown.trigger();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the registry stops within 10 s")
                .unwrap()
                .unwrap();
        }
    }

    /// Serves again on the same address, over the same store.
    pub async fn resume(&mut self) {
        assert!(self.task.is_none(), "the registry is still running");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(error) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "cannot listen on {} again: {error}",
                        self.addr
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        self.serve(listener);
        // Answered again: the client's connection to the stopped registry is replaced.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while let Err(error) = self.client.list_models().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the registry did not answer again within 10 s: {error}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Registers `artifact` as the next version of `model`; returns its number.
    pub async fn register(&self, model: &str, artifact: Bytes) -> u64 {
        let header = pb::RegisterVersionHeader {
            model: model.to_owned(),
            trigger: Some(pb::Trigger {
                event_id: String::new(),
                kind: pb::TriggerKind::Manual.into(),
            }),
            actor: "test".to_owned(),
            reason: "test".to_owned(),
            ..Default::default()
        };
        self.client
            .register(header, artifact)
            .await
            .unwrap()
            .version
    }

    /// Moves `model`'s champion to `version` (compare-and-set on where it points now) and
    /// returns the move's audit record. The registry announces the move when it has a bus.
    pub async fn set_champion(&self, model: &str, version: u64) -> pb::AuditRecord {
        let current = self
            .client
            .list_models()
            .await
            .unwrap()
            .into_iter()
            .find(|summary| summary.name == model)
            .and_then(|summary| summary.aliases.get("champion").copied());
        let expected = match current {
            Some(current) => pb::alias_precondition::State::Version(current),
            None => pb::alias_precondition::State::Absent(true),
        };
        self.client
            .set_alias(pb::SetAliasRequest {
                model: model.to_owned(),
                alias: "champion".to_owned(),
                version,
                expected: Some(pb::AliasPrecondition {
                    state: Some(expected),
                }),
                actor: "test".to_owned(),
                reason: format!("champion to {version}"),
                trigger_event_id: String::new(),
            })
            .await
            .unwrap()
    }

    /// The champion moves in the audit log: (version, previous version), oldest first.
    pub async fn champion_moves(&self, model: &str) -> Vec<(u64, Option<u64>)> {
        self.client
            .audit(model)
            .await
            .unwrap()
            .iter()
            .filter(|record| record.alias == "champion")
            .map(|record| (record.version, record.previous_version))
            .collect()
    }
}

impl Drop for RealRegistry {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
