//! `RegistrySchemaSource` against the real registry over loopback gRPC: the champion's schema
//! comes out of a real artifact, follows the alias, and a model without a champion is
//! "not found" (its rows rejected) while a registry that is down is "unavailable" (retried).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use mend_bus::ModelName;
use mend_core::Schema;
use mend_ingest::{RegistrySchemaSource, SchemaError, SchemaSource};
use mend_testkit::registry::TestRegistry;
use mend_worlds::SyntheticSpec;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_champions_schema_from_the_registry() {
    let mut registry = TestRegistry::setup().token(TOKEN).start().await;
    let source = RegistrySchemaSource::new(registry.client(Some(TOKEN)));
    let churn = ModelName::new("churn").unwrap();

    assert!(matches!(
        source.champion_schema(&churn).await,
        Err(SchemaError::NotFound(_))
    ));

    let (first_schema, first) = trained(3, 1, 1);
    assert_eq!(registry.promote("churn", first).await, 1);
    let champion = source.champion_schema(&churn).await.unwrap();
    assert_eq!(champion.version, 1);
    assert_eq!(*champion.schema, first_schema);
    assert_eq!(source.champion_version(&churn).await.unwrap(), 1);

    let (second_schema, second) = trained(2, 2, 2);
    assert_eq!(registry.promote("churn", second).await, 2);
    assert_eq!(source.champion_version(&churn).await.unwrap(), 2);
    assert_eq!(
        *source.champion_schema(&churn).await.unwrap().schema,
        second_schema
    );

    registry.stop().await.unwrap();
    assert!(matches!(
        source.champion_version(&churn).await,
        Err(SchemaError::Unavailable(_))
    ));
}
