//! Durable consumers named per process (server replicas under an autoscaler) must not pile
//! up: with an inactivity threshold, the real nats-server deletes one nobody pulls from,
//! keeps one in use, and `delete_consumer` removes one on a clean exit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Harness, within};
use futures::StreamExt;
use mend_bus::subjects::EVENTS_STREAM;
use mend_bus::{Bus, ConsumerSpec, JetStreamBus, OutgoingMessage};

const THRESHOLD: Duration = Duration::from_secs(1);
const FILTER: &str = "model.promoted.*";
/// Idle consumers deleted one after another while the live one is pulling.
const IDLE_ROUNDS: usize = 4;

/// Server-side consumers of `durable` (one per filter), with their creation times.
async fn consumers_of(bus: &JetStreamBus, durable: &str) -> Vec<(String, time::OffsetDateTime)> {
    let stream = bus.jetstream().get_stream(EVENTS_STREAM).await.unwrap();
    let prefix = format!("{durable}__");
    let names: Vec<String> = stream
        .consumer_names()
        .map(|name| name.unwrap())
        .collect()
        .await;
    let mut found = Vec::new();
    for name in names.into_iter().filter(|name| name.starts_with(&prefix)) {
        // It may vanish between listing and asking; then it is simply gone.
        if let Ok(info) = stream.consumer_info(&name).await {
            found.push((name, info.created));
        }
    }
    found
}

/// Polls until `durable` has no consumer left, or fails after `limit`.
async fn until_gone(bus: &JetStreamBus, durable: &str, limit: Duration) {
    let started = Instant::now();
    loop {
        if consumers_of(bus, durable).await.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "consumer {durable} still exists after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_consumer_with_a_threshold_is_deleted_and_one_in_use_stays() {
    within(120, async {
        let harness = Harness::start(Backend::JetStream).await;
        let bus = harness.jetstream.clone().unwrap();

        // Without a threshold (every other service's consumers) nothing changes.
        let kept = ConsumerSpec::new("service-kept", [FILTER]);
        drop(bus.consume(kept).await.unwrap());

        // A live replica keeps pulling, and must keep the very consumer it created.
        let alive =
            ConsumerSpec::new("replica-alive", [FILTER]).inactive_threshold(Some(THRESHOLD));
        let mut subscription = bus.consume(alive).await.unwrap();
        let created = consumers_of(&bus, "replica-alive").await;
        assert_eq!(created.len(), 1, "one consumer per filter");
        let (received_tx, mut received_rx) = tokio::sync::mpsc::unbounded_channel();
        let puller = tokio::spawn(async move {
            while let Some(delivery) = subscription.next().await {
                let subject = delivery.subject.clone();
                delivery.ack().await.unwrap();
                let _ = received_tx.send(subject);
            }
        });

        // The threshold is nats-server's own timer, so real time has to pass; what shows it
        // passed is the sweep itself, not a sleep. Replicas that went away without cleaning
        // up (subscribed once, never pulled), one after another: each is deleted no sooner
        // than the threshold after its creation (nats-server adds up to 1 s of jitter), so
        // once the last is gone the live consumer has lived at least IDLE_ROUNDS thresholds
        // (4 s: its 2 s pulls expired and were renewed, and its own inactivity checks, at
        // most 2 s apart, ran) under the same sweep, and it must still be the same consumer.
        for round in 1..=IDLE_ROUNDS {
            let durable = format!("replica-gone-{round}");
            let gone =
                ConsumerSpec::new(durable.as_str(), [FILTER]).inactive_threshold(Some(THRESHOLD));
            drop(bus.consume(gone).await.unwrap());
            until_gone(&bus, &durable, Duration::from_secs(20)).await;
            assert_eq!(
                consumers_of(&bus, "replica-alive").await,
                created,
                "the consumer in use was deleted (or re-created) by the time {round} idle ones were"
            );
        }
        assert_eq!(consumers_of(&bus, "service-kept").await.len(), 1);

        // And it still delivers.
        bus.publish("model.promoted.churn", OutgoingMessage::new(&b"{}"[..]))
            .await
            .unwrap();
        let subject = within(10, received_rx.recv()).await.unwrap();
        assert_eq!(subject, "model.promoted.churn");
        puller.abort();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_consumer_removes_every_filter_and_tolerates_a_missing_one() {
    within(30, async {
        let harness = Harness::start(Backend::JetStream).await;
        let bus = harness.jetstream.clone().unwrap();
        let spec = ConsumerSpec::new(
            "replica-leaving",
            ["model.promoted.*", "model.rolled_back.*"],
        )
        .inactive_threshold(Some(Duration::from_secs(3600)));
        let subscription = bus.consume(spec.clone()).await.unwrap();
        assert_eq!(consumers_of(&bus, "replica-leaving").await.len(), 2);
        drop(subscription);

        bus.delete_consumer(&spec).await.unwrap();
        assert!(consumers_of(&bus, "replica-leaving").await.is_empty());
        // Already gone (say, the threshold deleted it first): still fine.
        bus.delete_consumer(&spec).await.unwrap();

        // The in-process bus has nothing to clean up.
        let in_process = Harness::start(Backend::InProcess).await;
        in_process.bus.delete_consumer(&spec).await.unwrap();
    })
    .await;
}
