//! The real registry (`mend_registry::run` on SQLite) in process on a loopback port, for tests
//! of the client against it, with the settings a deployment gives it (`MEND_*` variables:
//! the write token, TLS).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mend_bus::Bus;
use mend_client::RegistryClient;
use mend_proto::registry::v1 as pb;
use mend_registry::{RegistryDeps, RegistryError, SqliteStore};
use mend_runtime::{MendConfig, Shutdown};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::Endpoint;

/// The registry's write token in these tests.
pub const TOKEN: &str = "client-test-token";

/// One of the runtime's checked-in test certificates (see its README).
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../runtime/tests/fixtures/tls")
        .join(name)
}

/// A configuration from `MEND_*` variables, as a service or the CLI reads its environment.
pub fn config(vars: &[(&str, String)]) -> MendConfig {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect();
    MendConfig::from_map(&vars).unwrap()
}

/// A running registry, stopped by [`Registry::stop`] or aborted on drop.
pub struct Registry {
    pub addr: SocketAddr,
    shutdown: Shutdown,
    task: Option<JoinHandle<Result<(), RegistryError>>>,
    _dir: TempDir,
}

impl Registry {
    /// Writes need [`TOKEN`]; champion moves and retrain requests go out on `bus`, if any.
    pub async fn start(bus: Option<Arc<dyn Bus>>) -> Registry {
        Registry::start_with(&[("MEND_REGISTRY_TOKEN", TOKEN.to_owned())], bus).await
    }

    /// With these `MEND_*` variables (e.g. `MEND_TLS_*`).
    pub async fn start_with(vars: &[(&str, String)], bus: Option<Arc<dyn Bus>>) -> Registry {
        let config = config(vars);
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let deps = RegistryDeps {
            store: Arc::new(store),
            bus,
        };
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            let config = mend_registry::RegistryConfig::from_mend(&config).unwrap();
            async move { mend_registry::run(config, deps, listener, shutdown).await }
        });
        Registry {
            addr,
            shutdown,
            task: Some(task),
            _dir: dir,
        }
    }

    /// A plain-text client, with `token` for writes.
    pub fn client(&self, token: Option<&str>) -> RegistryClient {
        let endpoint = Endpoint::from_shared(format!("http://{}", self.addr)).unwrap();
        RegistryClient::connect_lazy(&endpoint, token.map(str::to_owned))
    }

    /// Graceful shutdown; waits until nothing listens any more.
    pub async fn stop(mut self) {
        self.shutdown.trigger();
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the registry stops within 10 s")
            .unwrap()
            .unwrap();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A registration header as a trainer sends it (size and sha256 left to the client).
pub fn header(model: &str) -> pb::RegisterVersionHeader {
    pb::RegisterVersionHeader {
        model: model.to_owned(),
        schema_hash: "schema-1".to_owned(),
        trigger: Some(pb::Trigger {
            event_id: String::new(),
            kind: pb::TriggerKind::Manual.into(),
        }),
        actor: "test".to_owned(),
        reason: "testing".to_owned(),
        ..Default::default()
    }
}

/// Polls `check` until it yields a value, for up to 30 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
