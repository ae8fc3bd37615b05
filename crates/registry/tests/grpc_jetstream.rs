//! The registry gRPC service on the distributed adapters: JetStream KV + Object Store for
//! the registry, and JetStream for the champion events, on a real `nats-server -js`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mend_bus::events::Event;
use mend_bus::{Bus, ConsumerSpec, EventSubscription, JetStreamBus};
use mend_proto::registry::v1 as pb;
use mend_proto::registry::v1::alias_precondition::State;
use mend_proto::registry::v1::get_version_request::Selector;
use mend_registry::{JetStreamConfig, JetStreamStore};
use mend_testkit::NatsServer;
use service::{TOKEN, TestRegistry, get, register, set_alias};

#[tokio::test]
async fn registry_on_jetstream_registers_serves_watches_and_announces() {
    let server = NatsServer::start().unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    let store = JetStreamStore::open(
        &async_nats::jetstream::new(client.clone()),
        JetStreamConfig::default(),
    )
    .await
    .unwrap();
    let bus: Arc<dyn Bus> = Arc::new(
        JetStreamBus::from_client(client, mend_bus::JetStreamConfig::default())
            .await
            .unwrap(),
    );
    let registry = TestRegistry::start_on(
        Arc::new(store),
        Some(Arc::clone(&bus)),
        &[("MEND_REGISTRY_TOKEN", TOKEN)],
    )
    .await;
    let mut client = registry.client().await;
    let mut events = EventSubscription::subscribe(
        Arc::clone(&bus),
        ConsumerSpec::new("registry-test", ["model.promoted.*", "model.rolled_back.*"]),
    )
    .await
    .unwrap();

    let artifact = Bytes::from(mend_testkit::artifacts::model_bytes_of_size(
        3 * 1024 * 1024 + 5,
        0,
    ));
    register(&mut client, "churn", &artifact).await.unwrap();
    register(
        &mut client,
        "churn",
        &mend_testkit::artifacts::model_bytes(2),
    )
    .await
    .unwrap();

    let mut watch = client
        .watch_aliases(pb::WatchAliasesRequest {
            model: "churn".into(),
            include_current: true,
        })
        .await
        .unwrap()
        .into_inner();
    set_alias(
        &mut client,
        "churn",
        "champion",
        2,
        Some(State::Absent(true)),
    )
    .await
    .unwrap();
    set_alias(&mut client, "churn", "champion", 1, Some(State::Version(2)))
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((first.version, first.previous_version), (2, None));
    let second = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((second.version, second.previous_version), (1, Some(2)));

    let (meta, chunks) = get(
        &mut client,
        "churn",
        Some(Selector::Alias("champion".into())),
    )
    .await
    .unwrap();
    assert_eq!(meta.version, 1);
    assert_eq!(chunks.concat(), artifact.to_vec());

    // One JetStream consumer per filter subject: the two subjects may arrive in any order.
    let mut seen = Vec::new();
    for _ in 0..2 {
        let delivery = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap();
        seen.push(delivery.envelope.event.clone());
        delivery.ack().await.unwrap();
    }
    assert!(
        seen.iter()
            .any(|event| matches!(event, Event::ModelPromoted(body) if body.version == 2)),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|event| matches!(
            event,
            Event::ModelRolledBack(body) if (body.from_version, body.to_version) == (2, 1)
        )),
        "{seen:?}"
    );

    registry.stop().await.unwrap();
}
