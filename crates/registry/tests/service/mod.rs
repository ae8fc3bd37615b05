//! A registry served on a loopback port for tests, with a real tonic client.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mend_bus::Bus;
use mend_proto::registry::v1 as pb;
use mend_proto::registry::v1::register_version_request::Part;
use mend_proto::registry::v1::registry_client::RegistryClient;
use mend_registry::{RegistryDeps, RegistryStore, SqliteStore};
use mend_runtime::{MendConfig, Shutdown};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Request, Status};

pub const TOKEN: &str = "test-token";

/// A running registry; shut down and awaited on [`TestRegistry::stop`], aborted on drop.
pub struct TestRegistry {
    pub addr: std::net::SocketAddr,
    pub shutdown: Shutdown,
    pub store: Arc<dyn RegistryStore>,
    task: Option<JoinHandle<Result<(), mend_registry::RegistryError>>>,
    _dir: Option<TempDir>,
}

impl TestRegistry {
    /// SQLite in a temp dir, writes guarded by [`TOKEN`].
    pub async fn start() -> Self {
        Self::start_with(None, &[("MEND_REGISTRY_TOKEN", TOKEN)]).await
    }

    /// SQLite in a temp dir with these variables and this bus.
    pub async fn start_with(bus: Option<Arc<dyn Bus>>, vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
        let mut registry = Self::start_on(Arc::new(store), bus, vars).await;
        registry._dir = Some(dir);
        registry
    }

    /// Any store.
    pub async fn start_on(
        store: Arc<dyn RegistryStore>,
        bus: Option<Arc<dyn Bus>>,
        vars: &[(&str, &str)],
    ) -> Self {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let config = MendConfig::from_map(&vars).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let deps = RegistryDeps {
            store: Arc::clone(&store),
            bus,
        };
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            let config = mend_registry::RegistryConfig::from_mend(&config).unwrap();
            async move { mend_registry::run(config, deps, listener, shutdown).await }
        });
        Self {
            addr,
            shutdown,
            store,
            task: Some(task),
            _dir: None,
        }
    }

    pub async fn channel(&self) -> Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn client(&self) -> RegistryClient<Channel> {
        RegistryClient::new(self.channel().await).max_decoding_message_size(256 << 20)
    }

    /// Triggers shutdown and waits for `run` to return.
    pub async fn stop(mut self) -> Result<(), mend_registry::RegistryError> {
        self.shutdown.trigger();
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("registry did not stop within 10 s")
            .unwrap()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A request carrying the bearer token.
pub fn authorized<T>(message: T) -> Request<T> {
    with_token(message, TOKEN)
}

pub fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

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
        metrics: [("holdout.accuracy".to_owned(), 0.9)].into(),
        ..Default::default()
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The messages of an upload: the header (with size and digest), then `chunk`-sized pieces.
pub fn upload_messages(
    mut header: pb::RegisterVersionHeader,
    artifact: &Bytes,
    chunk: usize,
) -> Vec<pb::RegisterVersionRequest> {
    header.artifact_size = artifact.len() as u64;
    header.artifact_sha256 = sha256_hex(artifact);
    let mut messages = vec![pb::RegisterVersionRequest {
        part: Some(Part::Header(header)),
    }];
    for start in (0..artifact.len()).step_by(chunk) {
        let end = (start + chunk).min(artifact.len());
        messages.push(pb::RegisterVersionRequest {
            part: Some(Part::Chunk(artifact.slice(start..end))),
        });
    }
    messages
}

/// Registers `artifact` as the next version of `model`, in 64 KiB chunks.
pub async fn register(
    client: &mut RegistryClient<Channel>,
    model: &str,
    artifact: &[u8],
) -> Result<pb::VersionMetadata, Status> {
    let messages = upload_messages(header(model), &Bytes::copy_from_slice(artifact), 64 * 1024);
    let response = client
        .register_version(authorized(futures::stream::iter(messages)))
        .await?;
    Ok(response.into_inner().version.unwrap())
}

/// Moves an alias with the token.
pub async fn set_alias(
    client: &mut RegistryClient<Channel>,
    model: &str,
    alias: &str,
    version: u64,
    expected: Option<pb::alias_precondition::State>,
) -> Result<pb::AuditRecord, Status> {
    let request = pb::SetAliasRequest {
        model: model.to_owned(),
        alias: alias.to_owned(),
        version,
        expected: expected.map(|state| pb::AliasPrecondition { state: Some(state) }),
        actor: "test".to_owned(),
        reason: format!("{alias} to {version}"),
        trigger_event_id: String::new(),
    };
    Ok(client
        .set_alias(authorized(request))
        .await?
        .into_inner()
        .record
        .unwrap())
}

/// Metadata and artifact of one version.
pub async fn get(
    client: &mut RegistryClient<Channel>,
    model: &str,
    selector: Option<pb::get_version_request::Selector>,
) -> Result<(pb::VersionMetadata, Vec<Bytes>), Status> {
    use pb::get_version_response::Part;
    let mut stream = client
        .get_version(pb::GetVersionRequest {
            model: model.to_owned(),
            selector,
            skip_artifact: false,
        })
        .await?
        .into_inner();
    let Some(Part::Metadata(meta)) = stream.message().await?.unwrap().part else {
        panic!("GetVersion did not start with metadata");
    };
    let mut chunks = Vec::new();
    while let Some(message) = stream.message().await? {
        let Some(Part::Chunk(chunk)) = message.part else {
            panic!("metadata after chunks");
        };
        chunks.push(chunk);
    }
    Ok((meta, chunks))
}

/// Polls `check` until it returns `Some`, for up to 10 s.
pub async fn eventually<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
