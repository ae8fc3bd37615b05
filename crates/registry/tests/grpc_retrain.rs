//! `RequestRetrain`: a forced retrain over gRPC is a write (bearer token), is checked
//! (known model, a reason, a sane window) and becomes a `retrain.requested.<model>` event
//! on the registry's bus, in process and over a real NATS server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service;

use std::sync::Arc;
use std::time::Duration;

use mend_bus::events::{DataWindow, Event, RetrainRequested};
use mend_bus::{Bus, ConsumerSpec, EventSubscription, InProcessBus, InProcessConfig, JetStreamBus};
use mend_proto::registry::v1 as pb;
use mend_proto::registry::v1::retrain_window::Window;
use mend_registry::{JetStreamConfig, JetStreamStore};
use mend_testkit::NatsServer;
use service::{TOKEN, TestRegistry, authorized, register, with_token};
use tonic::{Code, Request};

fn retrain(model: &str, reason: &str, window: Option<Window>) -> pb::RequestRetrainRequest {
    pb::RequestRetrainRequest {
        model: model.to_owned(),
        reason: reason.to_owned(),
        actor: "ops on call".to_owned(),
        window: window.map(|window| pb::RetrainWindow {
            window: Some(window),
        }),
    }
}

async fn next_request(events: &mut EventSubscription) -> (String, RetrainRequested) {
    let delivery = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event within 10 s")
        .expect("the subscription is open");
    let id = delivery.envelope.id.clone();
    let Event::RetrainRequested(request) = delivery.envelope.event.clone() else {
        panic!("not a retrain request: {:?}", delivery.envelope);
    };
    assert_eq!(delivery.envelope.model.as_str(), "churn");
    delivery.ack().await.unwrap();
    (id, request)
}

#[tokio::test]
async fn a_forced_retrain_needs_the_token_and_publishes_the_reason() {
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(InProcessConfig::default()));
    let registry =
        TestRegistry::start_with(Some(Arc::clone(&bus)), &[("MEND_REGISTRY_TOKEN", TOKEN)]).await;
    let mut client = registry.client().await;
    register_churn(&mut client).await;
    let mut events =
        EventSubscription::subscribe(Arc::clone(&bus), ConsumerSpec::new("test", ["retrain.>"]))
            .await
            .unwrap();

    let without = client
        .request_retrain(Request::new(retrain("churn", "no token", None)))
        .await
        .unwrap_err();
    assert_eq!(without.code(), Code::Unauthenticated, "{without:?}");
    let wrong = client
        .request_retrain(with_token(retrain("churn", "wrong token", None), "nope"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong:?}");

    let response = client
        .request_retrain(authorized(retrain(
            "churn",
            "quarterly refresh",
            Some(Window::LastRows(5_000)),
        )))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.subject, "retrain.requested.churn");

    // The refused calls published nothing: the first event is the authorised one.
    let (id, request) = next_request(&mut events).await;
    assert_eq!(id, response.event_id);
    assert_eq!(request.reason, "quarterly refresh");
    assert_eq!(request.requested_by.as_deref(), Some("ops on call"));
    assert_eq!(
        request.window,
        Some(DataWindow {
            last_rows: Some(5_000),
            ..DataWindow::default()
        })
    );

    let ranged = client
        .request_retrain(authorized(retrain(
            "churn",
            "replay",
            Some(Window::Sequence(pb::SequenceRange {
                from_seq: 10,
                to_seq: 900,
            })),
        )))
        .await
        .unwrap()
        .into_inner();
    let (id, request) = next_request(&mut events).await;
    assert_eq!(id, ranged.event_id);
    assert_eq!(
        (
            request.window.as_ref().unwrap().from_seq,
            request.window.unwrap().to_seq
        ),
        (Some(10), Some(900))
    );
}

#[tokio::test]
async fn bad_retrain_requests_are_refused_with_the_reason() {
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(InProcessConfig::default()));
    let registry =
        TestRegistry::start_with(Some(Arc::clone(&bus)), &[("MEND_REGISTRY_TOKEN", TOKEN)]).await;
    let mut client = registry.client().await;
    register_churn(&mut client).await;

    let cases = [
        (retrain("fraud", "why not", None), Code::NotFound, "fraud"),
        (
            retrain("churn", "   ", None),
            Code::InvalidArgument,
            "reason",
        ),
        (
            retrain("churn", "tiny", Some(Window::LastRows(0))),
            Code::InvalidArgument,
            "window.last_rows",
        ),
        (
            retrain(
                "churn",
                "backwards",
                Some(Window::Sequence(pb::SequenceRange {
                    from_seq: 9,
                    to_seq: 3,
                })),
            ),
            Code::InvalidArgument,
            "window.sequence",
        ),
        (
            retrain("no spaces", "x", None),
            Code::InvalidArgument,
            "model",
        ),
    ];
    for (request, code, mentioned) in cases {
        let status = client
            .request_retrain(authorized(request.clone()))
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{request:?}: {status:?}");
        assert!(
            status.message().contains(mentioned),
            "{status:?} should mention {mentioned}"
        );
    }
}

#[tokio::test]
async fn a_registry_without_a_bus_says_it_cannot_ask_for_a_retrain() {
    let registry = TestRegistry::start_with(None, &[("MEND_REGISTRY_TOKEN", TOKEN)]).await;
    let mut client = registry.client().await;
    register_churn(&mut client).await;
    let status = client
        .request_retrain(authorized(retrain("churn", "please", None)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("MEND_NATS_URL"), "{status:?}");
}

#[tokio::test]
async fn a_forced_retrain_reaches_nats_as_a_retrain_requested_event() {
    let server = NatsServer::start().unwrap();
    let jetstream = JetStreamBus::connect(&server.url(), mend_bus::JetStreamConfig::default())
        .await
        .unwrap();
    let store = JetStreamStore::open(jetstream.jetstream(), JetStreamConfig::default())
        .await
        .unwrap();
    let bus: Arc<dyn Bus> = Arc::new(jetstream);
    let registry = TestRegistry::start_on(
        Arc::new(store),
        Some(Arc::clone(&bus)),
        &[("MEND_REGISTRY_TOKEN", TOKEN)],
    )
    .await;
    let mut client = registry.client().await;
    register_churn(&mut client).await;
    let mut events =
        EventSubscription::subscribe(Arc::clone(&bus), ConsumerSpec::new("test", ["retrain.>"]))
            .await
            .unwrap();

    let refused = client
        .request_retrain(Request::new(retrain("churn", "no token", None)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let response = client
        .request_retrain(authorized(retrain("churn", "over nats", None)))
        .await
        .unwrap()
        .into_inner();
    let (id, request) = next_request(&mut events).await;
    assert_eq!(id, response.event_id);
    assert_eq!(request.reason, "over nats");
    assert_eq!(request.window, None);
}

/// Registers a real model as version 1 of `churn`.
async fn register_churn(
    client: &mut pb::registry_client::RegistryClient<tonic::transport::Channel>,
) {
    register(client, "churn", &mend_testkit::artifacts::model_bytes(1))
        .await
        .unwrap();
}
