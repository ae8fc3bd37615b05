//! A registry served on a loopback port for tests, with a real tonic client, and how long
//! `eventually` waits.

#![allow(dead_code)]

use std::sync::Arc;

use bytes::Bytes;
use mend_bus::Bus;
use mend_proto::registry::v1 as pb;
use mend_proto::registry::v1::register_version_request::Part;
use mend_proto::registry::v1::registry_client::RegistryClient;
use mend_registry::RegistryStore;
use mend_testkit::Patience;
use sha2::{Digest, Sha256};
use tonic::transport::Channel;
use tonic::{Request, Status};

pub const TOKEN: &str = "test-token";

/// The real registry on a loopback port (`mend_testkit::registry::TestRegistry`), with the
/// raw generated client these tests speak to it through; shut down and awaited on
/// [`TestRegistry::stop`], aborted on drop.
pub struct TestRegistry {
    pub addr: std::net::SocketAddr,
    pub store: Arc<dyn RegistryStore>,
    served: mend_testkit::registry::TestRegistry,
}

impl TestRegistry {
    /// SQLite in a temp dir, writes guarded by [`TOKEN`].
    pub async fn start() -> Self {
        Self::start_with(None, &[("MEND_REGISTRY_TOKEN", TOKEN)]).await
    }

    /// SQLite in a temp dir with these variables and this bus.
    pub async fn start_with(bus: Option<Arc<dyn Bus>>, vars: &[(&str, &str)]) -> Self {
        Self::serve(mend_testkit::registry::TestRegistry::setup(), bus, vars).await
    }

    /// Any store.
    pub async fn start_on(
        store: Arc<dyn RegistryStore>,
        bus: Option<Arc<dyn Bus>>,
        vars: &[(&str, &str)],
    ) -> Self {
        Self::serve(
            mend_testkit::registry::TestRegistry::setup().store(store),
            bus,
            vars,
        )
        .await
    }

    async fn serve(
        setup: mend_testkit::registry::RegistrySetup,
        bus: Option<Arc<dyn Bus>>,
        vars: &[(&str, &str)],
    ) -> Self {
        let served = setup.bus(bus).vars(vars).start().await;
        Self {
            addr: served.addr,
            store: served.store(),
            served,
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
        self.served.stop().await
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

/// How long the registry's tests wait for a condition with `mend_testkit::eventually`: 10 s,
/// looking every 20 ms.
pub const SOON: Patience = Patience::seconds(10);
