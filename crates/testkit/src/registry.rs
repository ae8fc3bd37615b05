//! The real registry (`mend_registry::run`, the code `mend-registry` runs) served in process on
//! a loopback port, for tests of its clients against it instead of a stand-in; and the registry
//! writes those tests make, through the shared [`mend_client::RegistryClient`]: registering,
//! promoting and moving the champion, and seeding a model's first champion (trained on seeded
//! synthetic rows when asked).
//!
//! [`TestRegistry::sqlite`] is the usual start (SQLite in a temp dir, writes open, a fresh
//! port); [`TestRegistry::setup`] sets anything else: a write token or other `MEND_*`
//! settings, another store, a bus for champion announcements, a listener bound beforehand, a
//! shutdown shared with other services.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mend_bus::Bus;
use mend_client::{CHAMPION, RegistryClient};
use mend_core::Artifact;
use mend_proto::registry::v1 as pb;
use mend_registry::{RegistryConfig, RegistryDeps, RegistryError, RegistryStore, SqliteStore};
use mend_runtime::{MendConfig, Shutdown};
use mend_worlds::{Generator, Regime};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::Endpoint;

/// How long [`TestRegistry::stop`] waits for `run` to return.
const STOP_WITHIN: Duration = Duration::from_secs(30);
/// How long [`TestRegistry::resume`] tries to listen on the old address, and then waits for
/// an answer there.
const RESUME_WITHIN: Duration = Duration::from_secs(10);
/// The actor of the writes the helpers here make.
const ACTOR: &str = "test";

/// How [`TestRegistry`] is set up; see [`TestRegistry::setup`]. Unless told otherwise: no
/// `MEND_*` settings (writes open), SQLite in a temp dir of its own, no bus, a fresh
/// loopback port, a shutdown of its own.
#[derive(Default)]
pub struct RegistrySetup {
    vars: HashMap<String, String>,
    config: Option<MendConfig>,
    store: Option<Arc<dyn RegistryStore>>,
    bus: Option<Arc<dyn Bus>>,
    listener: Option<TcpListener>,
    shutdown: Option<Shutdown>,
}

impl RegistrySetup {
    /// Writes need `token` (`MEND_REGISTRY_TOKEN`).
    pub fn token(self, token: &str) -> Self {
        self.var("MEND_REGISTRY_TOKEN", token)
    }

    /// One more `MEND_*` setting.
    pub fn var(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.insert(name.to_owned(), value.into());
        self
    }

    /// More `MEND_*` settings.
    pub fn vars<K: AsRef<str>, V: AsRef<str>>(mut self, vars: &[(K, V)]) -> Self {
        for (name, value) in vars {
            self.vars
                .insert(name.as_ref().to_owned(), value.as_ref().to_owned());
        }
        self
    }

    /// A whole configuration, as a service reads it from its environment (the `MEND_*`
    /// settings given one by one are then not used).
    pub fn config(mut self, config: MendConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Versions, aliases and the audit log in `store` instead of a fresh SQLite store.
    pub fn store(mut self, store: Arc<dyn RegistryStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Champion moves (and retrain requests) announced on `bus`, when there is one.
    pub fn bus(mut self, bus: impl Into<Option<Arc<dyn Bus>>>) -> Self {
        self.bus = bus.into();
        self
    }

    /// Served on `listener` (bound by the caller, who needed its address first).
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Stopped by `shutdown` (e.g. one shared with the other services of a stack), besides
    /// [`TestRegistry::stop`] (which triggers it too).
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = Some(shutdown);
        self
    }

    /// Serves the registry (a task running `mend_registry::run`) until it is stopped or
    /// dropped. The listener is bound before this returns, so clients may dial at once.
    pub async fn start(self) -> TestRegistry {
        let config = match self.config {
            Some(config) => config,
            None => MendConfig::from_map(&self.vars)
                .unwrap_or_else(|error| panic!("the test registry's settings: {error}")),
        };
        let config = RegistryConfig::from_mend(&config)
            .unwrap_or_else(|error| panic!("the test registry's settings: {error}"));
        let (store, dir) = match self.store {
            Some(store) => (store, None),
            None => {
                let dir = tempfile::tempdir()
                    .unwrap_or_else(|error| panic!("a temp dir for the test registry: {error}"));
                let store = SqliteStore::open_in_dir(dir.path())
                    .await
                    .unwrap_or_else(|error| panic!("the test registry's SQLite store: {error}"));
                let store: Arc<dyn RegistryStore> = Arc::new(store);
                (store, Some(dir))
            }
        };
        // Bound here (or by the caller) and handed over, so no one can take the port between.
        let listener = match self.listener {
            Some(listener) => listener,
            None => TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap_or_else(|error| panic!("a loopback port for the test registry: {error}")),
        };
        let addr = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("the test registry's address: {error}"));
        let token = config.token.as_ref().map(|token| token.expose().to_owned());
        let mut registry = TestRegistry {
            addr,
            writer: RegistryClient::connect_lazy(&endpoint_of(addr), token),
            config,
            deps: RegistryDeps {
                store,
                bus: self.bus,
            },
            shutdown: Shutdown::new(),
            task: None,
            _dir: dir,
        };
        registry.serve(listener, self.shutdown.unwrap_or_default());
        registry
    }
}

/// The real registry served in process: stopped (gracefully) by [`TestRegistry::stop`], able
/// to serve again on the same address and store with [`TestRegistry::resume`], aborted when
/// dropped.
pub struct TestRegistry {
    /// Where it listens (plain-text gRPC unless its settings name TLS).
    pub addr: SocketAddr,
    writer: RegistryClient,
    config: RegistryConfig,
    deps: RegistryDeps,
    shutdown: Shutdown,
    task: Option<JoinHandle<Result<(), RegistryError>>>,
    _dir: Option<TempDir>,
}

impl TestRegistry {
    /// A registry set up step by step; see [`RegistrySetup`].
    pub fn setup() -> RegistrySetup {
        RegistrySetup::default()
    }

    /// The usual one: SQLite in a temp dir, writes open, champion moves announced on `bus`
    /// when there is one.
    pub async fn sqlite(bus: impl Into<Option<Arc<dyn Bus>>>) -> TestRegistry {
        TestRegistry::setup().bus(bus).start().await
    }

    fn serve(&mut self, listener: TcpListener, shutdown: Shutdown) {
        let config = self.config.clone();
        let deps = self.deps.clone();
        self.shutdown = shutdown.clone();
        self.task = Some(tokio::spawn(async move {
            mend_registry::run(config, deps, listener, shutdown).await
        }));
    }

    /// `http://` and its address.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its plain-text endpoint.
    pub fn endpoint(&self) -> Endpoint {
        endpoint_of(self.addr)
    }

    /// A fresh plain-text client, dialled lazily, with `token` for writes.
    pub fn client(&self, token: Option<&str>) -> RegistryClient {
        RegistryClient::connect_lazy(&self.endpoint(), token.map(str::to_owned))
    }

    /// The client the write helpers use: plain text, with the registry's own write token
    /// when it has one.
    pub fn writer(&self) -> &RegistryClient {
        &self.writer
    }

    /// The storage it serves.
    pub fn store(&self) -> Arc<dyn RegistryStore> {
        Arc::clone(&self.deps.store)
    }

    /// Stops serving (graceful shutdown of `mend_registry::run`: in-flight calls finish,
    /// watches end) and waits until it returned, with what it returned: from then on nothing
    /// listens on [`TestRegistry::addr`]. Stopping a stopped registry does nothing.
    pub async fn stop(&mut self) -> Result<(), RegistryError> {
        self.shutdown.trigger();
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        tokio::time::timeout(STOP_WITHIN, task)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the registry did not stop within {} s",
                    STOP_WITHIN.as_secs()
                )
            })
            .unwrap_or_else(|error| panic!("the registry task failed: {error}"))
    }

    /// Serves again on the same address, over the same store, once [`TestRegistry::stop`]
    /// returned; returns once it answers there (through [`TestRegistry::writer`], whose
    /// connection to the stopped registry is so replaced).
    pub async fn resume(&mut self) {
        assert!(self.task.is_none(), "the registry is still running");
        let deadline = tokio::time::Instant::now() + RESUME_WITHIN;
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
        self.serve(listener, Shutdown::new());
        let deadline = tokio::time::Instant::now() + RESUME_WITHIN;
        while let Err(error) = self.writer.list_models().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the registry did not answer again within {} s: {error}",
                RESUME_WITHIN.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// [`register`] through [`TestRegistry::writer`].
    pub async fn register(&self, model: &str, artifact: Bytes) -> u64 {
        register(&self.writer, model, artifact).await
    }

    /// [`promote`] through [`TestRegistry::writer`].
    pub async fn promote(&self, model: &str, artifact: Bytes) -> u64 {
        promote(&self.writer, model, artifact).await
    }

    /// [`set_champion`] through [`TestRegistry::writer`].
    pub async fn set_champion(&self, model: &str, version: u64) -> pb::AuditRecord {
        set_champion(&self.writer, model, version).await
    }

    /// [`champion_moves`] through [`TestRegistry::writer`].
    pub async fn champion_moves(&self, model: &str) -> Vec<(u64, Option<u64>)> {
        champion_moves(&self.writer, model).await
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn endpoint_of(addr: SocketAddr) -> Endpoint {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap_or_else(|error| panic!("an endpoint for {addr}: {error}"))
}

/// Registers `artifact` as the next version of `model` (a manual registration by "test", no
/// schema hash); returns its number. Panics when the registry refuses it.
pub async fn register(registry: &RegistryClient, model: &str, artifact: Bytes) -> u64 {
    let header = pb::RegisterVersionHeader {
        model: model.to_owned(),
        trigger: Some(pb::Trigger {
            event_id: String::new(),
            kind: pb::TriggerKind::Manual.into(),
        }),
        actor: ACTOR.to_owned(),
        reason: "test".to_owned(),
        ..Default::default()
    };
    registry
        .register(header, artifact)
        .await
        .unwrap_or_else(|error| panic!("registering a version of {model}: {error}"))
        .version
}

/// [`register`]s `artifact` and moves `model`'s champion to it, wherever it pointed before;
/// returns the version.
pub async fn promote(registry: &RegistryClient, model: &str, artifact: Bytes) -> u64 {
    let version = register(registry, model, artifact).await;
    registry
        .set_alias(pb::SetAliasRequest {
            model: model.to_owned(),
            alias: CHAMPION.to_owned(),
            version,
            actor: ACTOR.to_owned(),
            reason: "test".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|error| panic!("promoting version {version} of {model}: {error}"));
    version
}

/// Moves `model`'s champion to `version`, compare-and-set on where it points now, and returns
/// the move's audit record. The registry announces the move when it has a bus.
pub async fn set_champion(registry: &RegistryClient, model: &str, version: u64) -> pb::AuditRecord {
    let current = registry
        .list_models()
        .await
        .unwrap_or_else(|error| panic!("listing the models: {error}"))
        .into_iter()
        .find(|summary| summary.name == model)
        .and_then(|summary| summary.aliases.get(CHAMPION).copied());
    let expected = match current {
        Some(current) => pb::alias_precondition::State::Version(current),
        None => pb::alias_precondition::State::Absent(true),
    };
    registry
        .set_alias(pb::SetAliasRequest {
            model: model.to_owned(),
            alias: CHAMPION.to_owned(),
            version,
            expected: Some(pb::AliasPrecondition {
                state: Some(expected),
            }),
            actor: ACTOR.to_owned(),
            reason: format!("champion to {version}"),
            trigger_event_id: String::new(),
        })
        .await
        .unwrap_or_else(|error| panic!("moving the champion of {model} to {version}: {error}"))
}

/// The champion moves on `model`'s audit log: (version, previous version), oldest first.
pub async fn champion_moves(registry: &RegistryClient, model: &str) -> Vec<(u64, Option<u64>)> {
    registry
        .audit(model)
        .await
        .unwrap_or_else(|error| panic!("reading the audit log of {model}: {error}"))
        .iter()
        .filter(|record| record.alias == CHAMPION)
        .map(|record| (record.version, record.previous_version))
        .collect()
}

/// Seeds `artifact` as `model`'s first version and champion, as a new model enters the loop
/// ([`RegistryClient::seed_champion`]: trigger `initial`, champion only if there is none yet;
/// `actor` and `event_id` go on its records). Returns the version's metadata; panics when the
/// registry refuses.
pub async fn seed_champion(
    registry: &RegistryClient,
    model: &str,
    artifact: &Artifact,
    actor: &str,
    event_id: &str,
) -> pb::VersionMetadata {
    let bytes = artifact
        .to_bytes()
        .unwrap_or_else(|error| panic!("serialising the champion: {error}"));
    registry
        .seed_champion(
            model,
            artifact.schema.hash(),
            Bytes::from(bytes),
            actor,
            event_id,
        )
        .await
        .unwrap_or_else(|error| panic!("seeding the champion of {model}: {error}"))
}

/// Trains a model on `rows` rows drawn from `generator`'s world as it stands (the default
/// regime; the draw moves the generator on, as any draw does) and [`seed_champion`]s it.
/// Returns the model and its version's metadata.
pub async fn seed_trained_champion(
    registry: &RegistryClient,
    model: &str,
    generator: &mut Generator,
    rows: usize,
    actor: &str,
    event_id: &str,
) -> (Artifact, pb::VersionMetadata) {
    let sample = generator.sample(rows, &Regime::default());
    let artifact = crate::artifacts::train_sample(generator, &sample);
    let meta = seed_champion(registry, model, &artifact, actor, event_id).await;
    (artifact, meta)
}
