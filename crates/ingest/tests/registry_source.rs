//! `RegistrySchemaSource` against the real registry over loopback gRPC: the champion's schema
//! comes out of a real artifact, follows the alias, and a model without a champion is
//! "not found" (its rows rejected) while a registry that is down is "unavailable" (retried).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use mend_bus::ModelName;
use mend_client::RegistryClient;
use mend_core::Schema;
use mend_ingest::{RegistrySchemaSource, SchemaError, SchemaSource};
use mend_proto::registry::v1 as pb;
use mend_registry::{RegistryDeps, SqliteStore};
use mend_runtime::{MendConfig, Shutdown};
use mend_worlds::SyntheticSpec;
use tonic::transport::Endpoint;

const TOKEN: &str = "ingest-test-token";

fn trained(numeric: usize, categorical: usize, seed: u64) -> (Schema, Bytes) {
    let spec = SyntheticSpec {
        numeric,
        categorical,
        classes: 2,
        seed,
        ..SyntheticSpec::default()
    };
    let (artifact, _) = mend_testkit::artifacts::train_on(spec, 400);
    (
        artifact.schema.clone(),
        Bytes::from(artifact.to_bytes().unwrap()),
    )
}

async fn promote(client: &RegistryClient, model: &str, artifact: Bytes) -> u64 {
    let header = pb::RegisterVersionHeader {
        model: model.into(),
        trigger: Some(pb::Trigger {
            event_id: String::new(),
            kind: pb::TriggerKind::Manual.into(),
        }),
        actor: "test".into(),
        reason: "test".into(),
        ..Default::default()
    };
    let version = client.register(header, artifact).await.unwrap().version;
    client
        .set_alias(pb::SetAliasRequest {
            model: model.into(),
            alias: "champion".into(),
            version,
            actor: "test".into(),
            reason: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    version
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_champions_schema_from_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    let vars = HashMap::from([("MEND_REGISTRY_TOKEN".to_owned(), TOKEN.to_owned())]);
    let config = MendConfig::from_map(&vars).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let deps = RegistryDeps {
        store: Arc::new(store),
        bus: None,
    };
    let registry = tokio::spawn({
        let shutdown = shutdown.clone();
        let config = mend_registry::RegistryConfig::from_mend(&config).unwrap();
        async move { mend_registry::run(config, deps, listener, shutdown).await }
    });
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).unwrap();
    let client = RegistryClient::connect_lazy(&endpoint, Some(TOKEN.into()));
    let source = RegistrySchemaSource::new(client.clone());
    let churn = ModelName::new("churn").unwrap();

    assert!(matches!(
        source.champion_schema(&churn).await,
        Err(SchemaError::NotFound(_))
    ));

    let (first_schema, first) = trained(3, 1, 1);
    assert_eq!(promote(&client, "churn", first).await, 1);
    let champion = source.champion_schema(&churn).await.unwrap();
    assert_eq!(champion.version, 1);
    assert_eq!(*champion.schema, first_schema);
    assert_eq!(source.champion_version(&churn).await.unwrap(), 1);

    let (second_schema, second) = trained(2, 2, 2);
    assert_eq!(promote(&client, "churn", second).await, 2);
    assert_eq!(source.champion_version(&churn).await.unwrap(), 2);
    assert_eq!(
        *source.champion_schema(&churn).await.unwrap().schema,
        second_schema
    );

    shutdown.trigger();
    registry.await.unwrap().unwrap();
    assert!(matches!(
        source.champion_version(&churn).await,
        Err(SchemaError::Unavailable(_))
    ));
}
