//! Delivery semantics every bus implementation must share, run against both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Backend, Harness, every_event, model, next_within, within};
use mend_bus::events::{Alert, RetrainRequested, Severity};
use mend_bus::message::header;
use mend_bus::subjects;
use mend_bus::typed::{
    EventRecorder, EventSubscription, HandlerError, publish_event, run_event_loop,
    run_event_loop_concurrent,
};
use mend_bus::{ConsumerSpec, Envelope, Event, OutgoingMessage};
use tokio_util::sync::CancellationToken;

/// Runs each listed test body once per backend, as `<name>::in_process` and
/// `<name>::jetstream`.
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn in_process() {
                within(60, super::tests::$name(Backend::InProcess)).await;
            }

            #[tokio::test]
            async fn jetstream() {
                within(60, super::tests::$name(Backend::JetStream)).await;
            }
        }
    )*};
}

for_each_backend!(
    every_event_type_round_trips,
    a_hand_written_event_decodes,
    an_unacked_message_is_redelivered,
    a_nak_redelivers_and_a_term_does_not,
    max_deliver_is_honoured,
    the_same_msg_id_is_consumed_once,
    a_poison_message_is_dead_lettered_and_the_consumer_goes_on,
    the_event_loop_retries_then_dead_letters,
    the_concurrent_event_loop_lets_later_events_pass_a_slow_one,
    a_handler_that_panics_does_not_stop_the_loop_and_its_event_comes_back,
    a_durable_resumes_where_it_left_off,
    filters_span_streams_and_wildcards,
    subscriptions_of_one_durable_share_the_work,
    a_durable_can_change_its_settings,
    backoff_spaces_redeliveries,
    a_recorder_keeps_acks_and_finds_events,
);

mod tests {
    use super::*;

    /// Waits (up to 10 s) until a handler has recorded at least `n` events.
    async fn handled_at_least<T>(handled: &tokio::sync::Mutex<Vec<T>>, n: usize) {
        within(10, async {
            while handled.lock().await.len() < n {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }

    fn alert(text: &str) -> Envelope {
        Envelope::new(
            model(),
            Alert {
                severity: Severity::Info,
                text: text.into(),
                source: None,
                related_event_id: None,
            },
        )
    }

    pub async fn a_recorder_keeps_acks_and_finds_events(backend: Backend) {
        let harness = Harness::start(backend).await;
        // A short ack wait: an event the recorder failed to acknowledge would come again below.
        let spec = || {
            ConsumerSpec::new("recorder", [subjects::SubjectKind::Alert.all_models()])
                .ack_wait(Duration::from_millis(300))
        };
        let mut recorder = EventRecorder::subscribe(harness.bus.clone(), spec())
            .await
            .unwrap();
        let text_is = |text: &'static str| move |e: &Envelope| matches!(&e.event, Event::Alert(a) if a.text == text);
        for text in ["first", "second", "third"] {
            publish_event(harness.bus.as_ref(), &alert(text))
                .await
                .unwrap();
        }
        // A later event is waited for; the ones before it are kept on the way.
        let third = recorder
            .wait_for(Duration::from_secs(10), text_is("third"))
            .await
            .expect("the third alert arrives");
        assert!(matches!(&third.event, Event::Alert(a) if a.text == "third"));
        assert_eq!(recorder.seen.len(), 3);
        // One seen already is found without waiting; one never published is not found.
        assert!(
            recorder
                .wait_for(Duration::ZERO, text_is("first"))
                .await
                .is_some()
        );
        assert!(
            recorder
                .wait_for(Duration::from_millis(200), text_is("never"))
                .await
                .is_none()
        );
        publish_event(harness.bus.as_ref(), &alert("late"))
            .await
            .unwrap();
        recorder.drain(Duration::from_millis(500)).await;
        assert_eq!(recorder.seen.len(), 4);
        // Everything was acknowledged: the same durable gets nothing again.
        drop(recorder);
        let mut again = EventRecorder::subscribe(harness.bus.clone(), spec())
            .await
            .unwrap();
        again.drain(Duration::from_secs(1)).await;
        assert!(again.seen.is_empty(), "redelivered: {:?}", again.seen);
    }

    pub async fn every_event_type_round_trips(backend: Backend) {
        let harness = Harness::start(backend).await;
        let events = every_event(&model());
        let filters: Vec<String> = events
            .iter()
            .map(|event| event.event.kind().all_models())
            .collect();
        let mut subscription = EventSubscription::subscribe(
            harness.bus.clone(),
            ConsumerSpec::new("round-trip", filters),
        )
        .await
        .unwrap();
        for event in &events {
            let receipt = publish_event(harness.bus.as_ref(), event).await.unwrap();
            assert!(!receipt.duplicate);
        }
        let mut received = Vec::new();
        for _ in 0..events.len() {
            let delivery = subscription.next().await.unwrap();
            assert_eq!(delivery.delivered(), 1);
            assert_eq!(
                delivery.delivery().msg_id(),
                Some(delivery.envelope.id.as_str())
            );
            received.push(delivery.envelope.clone());
            delivery.ack().await.unwrap();
        }
        // Filters on several subjects may interleave; compare as sets by id.
        received.sort_by(|a, b| a.id.cmp(&b.id));
        let mut expected = events.clone();
        expected.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(received, expected);
    }

    pub async fn a_hand_written_event_decodes(backend: Backend) {
        let harness = Harness::start(backend).await;
        let mut subscription = EventSubscription::subscribe(
            harness.bus.clone(),
            ConsumerSpec::new(
                "trainer",
                [subjects::SubjectKind::RetrainRequested.all_models()],
            ),
        )
        .await
        .unwrap();
        harness
            .publish_raw(
                "retrain.requested.churn",
                br#"{"v":1,"reason":"quarterly"}"#,
            )
            .await;
        let delivery = subscription.next().await.unwrap();
        assert_eq!(delivery.envelope.model, model());
        assert_eq!(
            delivery.envelope.event,
            Event::RetrainRequested(RetrainRequested {
                reason: "quarterly".into(),
                window: None,
                requested_by: None,
            })
        );
        let id = delivery.envelope.id.clone();
        assert!(!id.is_empty());
        delivery.nak(None).await.unwrap();
        // The generated id is stable across redeliveries, so handlers can dedupe on it.
        let again = subscription.next().await.unwrap();
        assert_eq!(again.delivered(), 2);
        assert_eq!(again.envelope.id, id);
        again.ack().await.unwrap();
    }

    pub async fn an_unacked_message_is_redelivered(backend: Backend) {
        let harness = Harness::start(backend).await;
        let spec = ConsumerSpec::new("forgetful", ["alert.*"]).ack_wait(Duration::from_millis(500));
        let mut subscription = harness.bus.consume(spec).await.unwrap();
        publish_event(harness.bus.as_ref(), &alert("once"))
            .await
            .unwrap();

        let first = subscription.next().await.unwrap();
        assert_eq!(first.delivered, 1);
        let sequence = first.stream_sequence;
        drop(first); // never settled

        let second = next_within(&mut subscription, Duration::from_secs(5))
            .await
            .expect("redelivered after ack wait");
        assert_eq!(second.delivered, 2);
        assert_eq!(second.stream_sequence, sequence);
        second.ack().await.unwrap();
        assert!(
            next_within(&mut subscription, Duration::from_millis(1500))
                .await
                .is_none(),
            "an acked message is not delivered again"
        );
    }

    pub async fn a_nak_redelivers_and_a_term_does_not(backend: Backend) {
        let harness = Harness::start(backend).await;
        let spec = ConsumerSpec::new("naker", ["alert.*"]).ack_wait(Duration::from_millis(500));
        let mut subscription = harness.bus.consume(spec).await.unwrap();
        publish_event(harness.bus.as_ref(), &alert("nak me"))
            .await
            .unwrap();

        let first = subscription.next().await.unwrap();
        first.nak(None).await.unwrap();
        let second = next_within(&mut subscription, Duration::from_secs(2))
            .await
            .expect("nak redelivers at once");
        assert_eq!(second.delivered, 2);
        second.nak(Some(Duration::from_millis(300))).await.unwrap();
        let third = next_within(&mut subscription, Duration::from_secs(3))
            .await
            .expect("nak with delay redelivers later");
        assert_eq!(third.delivered, 3);
        third.term("cannot handle").await.unwrap();
        assert!(
            next_within(&mut subscription, Duration::from_millis(1500))
                .await
                .is_none(),
            "a terminated message is never delivered again"
        );
    }

    pub async fn max_deliver_is_honoured(backend: Backend) {
        let harness = Harness::start(backend).await;
        let spec = ConsumerSpec::new("limited", ["alert.*"])
            .ack_wait(Duration::from_millis(300))
            .max_deliver(Some(2));
        let mut subscription = harness.bus.consume(spec).await.unwrap();
        publish_event(harness.bus.as_ref(), &alert("flaky"))
            .await
            .unwrap();
        let mut deliveries = Vec::new();
        while let Some(delivery) = next_within(&mut subscription, Duration::from_secs(2)).await {
            deliveries.push(delivery.delivered);
        }
        assert_eq!(deliveries, [1, 2]);
    }

    pub async fn the_same_msg_id_is_consumed_once(backend: Backend) {
        let harness = Harness::start(backend).await;
        let mut subscription = harness
            .bus
            .consume(ConsumerSpec::new("dedup", ["alert.*"]))
            .await
            .unwrap();
        let twice = alert("twice");
        let first = publish_event(harness.bus.as_ref(), &twice).await.unwrap();
        let second = publish_event(harness.bus.as_ref(), &twice).await.unwrap();
        assert!(!first.duplicate);
        assert!(second.duplicate);
        assert_eq!(first.sequence, second.sequence);
        let raw = OutgoingMessage::new(&b"{}"[..]).with_msg_id("raw-id");
        let third = harness
            .bus
            .publish("alert.churn", raw.clone())
            .await
            .unwrap();
        let fourth = harness.bus.publish("alert.churn", raw).await.unwrap();
        assert!(!third.duplicate && fourth.duplicate);
        let sentinel = alert("sentinel");
        publish_event(harness.bus.as_ref(), &sentinel)
            .await
            .unwrap();

        let mut ids = Vec::new();
        loop {
            let delivery = subscription.next().await.unwrap();
            let id = delivery.msg_id().unwrap().to_owned();
            delivery.ack().await.unwrap();
            if id == sentinel.id {
                break;
            }
            ids.push(id);
        }
        assert_eq!(ids, [twice.id.clone(), "raw-id".to_owned()]);
    }

    pub async fn a_poison_message_is_dead_lettered_and_the_consumer_goes_on(backend: Backend) {
        let harness = Harness::start(backend).await;
        let spec = ConsumerSpec::new("poisoned", ["retrain.requested.*"])
            .ack_wait(Duration::from_millis(400));
        let mut events = EventSubscription::subscribe(harness.bus.clone(), spec)
            .await
            .unwrap();
        let mut dead_letters = harness
            .bus
            .consume(ConsumerSpec::new(
                "dlq-reader",
                [subjects::deadletter_all()],
            ))
            .await
            .unwrap();

        harness
            .publish_raw("retrain.requested.churn", b"{not json")
            .await;
        harness
            .publish_raw("retrain.requested.churn", br#"{"v":1}"#)
            .await;
        let good = Envelope::new(
            model(),
            RetrainRequested {
                reason: "after the poison".into(),
                window: None,
                requested_by: None,
            },
        );
        publish_event(harness.bus.as_ref(), &good).await.unwrap();

        let delivery = events.next().await.unwrap();
        assert_eq!(
            delivery.envelope, good,
            "the consumer goes on past the poison"
        );
        delivery.ack().await.unwrap();

        let mut reasons = Vec::new();
        for expected_payload in [&b"{not json"[..], &br#"{"v":1}"#[..]] {
            let letter = dead_letters.next().await.unwrap();
            assert_eq!(letter.subject, "deadletter.retrain.requested.churn");
            assert_eq!(letter.payload.as_ref(), expected_payload);
            assert_eq!(
                letter.headers.get(header::DEADLETTER_SUBJECT),
                Some("retrain.requested.churn")
            );
            assert_eq!(
                letter.headers.get(header::DEADLETTER_CONSUMER),
                Some("poisoned")
            );
            reasons.push(
                letter
                    .headers
                    .get(header::DEADLETTER_REASON)
                    .unwrap()
                    .to_owned(),
            );
            letter.ack().await.unwrap();
        }
        assert!(reasons[0].contains("not JSON"), "{}", reasons[0]);
        assert!(
            reasons[1].contains("reason"),
            "names the missing field: {}",
            reasons[1]
        );

        assert!(
            tokio::time::timeout(Duration::from_millis(1500), events.next())
                .await
                .is_err(),
            "poison messages are terminated, not redelivered"
        );
    }

    pub async fn the_event_loop_retries_then_dead_letters(backend: Backend) {
        let harness = Harness::start(backend).await;
        let spec = ConsumerSpec::new("looping", ["alert.*"])
            .ack_wait(Duration::from_millis(400))
            .max_deliver(Some(3));
        let subscription = EventSubscription::subscribe(harness.bus.clone(), spec)
            .await
            .unwrap();
        let mut dead_letters = harness
            .bus
            .consume(ConsumerSpec::new(
                "dlq-reader",
                [subjects::deadletter_all()],
            ))
            .await
            .unwrap();
        let calls = Arc::new(AtomicU32::new(0));
        let handled = Arc::new(tokio::sync::Mutex::new(Vec::new()));
        let shutdown = CancellationToken::new();
        let loop_task = tokio::spawn({
            let calls = calls.clone();
            let handled = handled.clone();
            let shutdown = shutdown.clone();
            run_event_loop(
                subscription,
                shutdown,
                move |event: Envelope, delivered: u64| {
                    let calls = calls.clone();
                    let handled = handled.clone();
                    async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        let Event::Alert(alert) = &event.event else {
                            return Err(HandlerError::reject("not an alert"));
                        };
                        match alert.text.as_str() {
                            "flaky" if delivered == 1 => {
                                Err(HandlerError::retry("first try fails"))
                            }
                            "broken" => Err(HandlerError::retry("always fails")),
                            "invalid" => Err(HandlerError::reject("makes no sense")),
                            _ => {
                                handled.lock().await.push(alert.text.clone());
                                Ok(())
                            }
                        }
                    }
                },
            )
        });

        for text in ["flaky", "broken", "invalid", "fine"] {
            publish_event(harness.bus.as_ref(), &alert(text))
                .await
                .unwrap();
        }
        let mut reasons = HashSet::new();
        for _ in 0..2 {
            let letter = dead_letters.next().await.unwrap();
            reasons.insert(
                letter
                    .headers
                    .get(header::DEADLETTER_REASON)
                    .unwrap()
                    .to_owned(),
            );
            letter.ack().await.unwrap();
        }
        assert!(reasons.contains("makes no sense"), "{reasons:?}");
        assert!(
            reasons.contains("gave up after 3 deliveries: always fails"),
            "{reasons:?}"
        );
        handled_at_least(&handled, 2).await;
        let mut handled_texts = handled.lock().await.clone();
        handled_texts.sort();
        assert_eq!(handled_texts, ["fine", "flaky"]);
        // flaky 2 + broken 3 + invalid 1 + fine 1
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 7);
        shutdown.cancel();
        within(5, loop_task).await.unwrap();
    }

    pub async fn the_concurrent_event_loop_lets_later_events_pass_a_slow_one(backend: Backend) {
        let harness = Harness::start(backend).await;
        let spec = ConsumerSpec::new("concurrent", ["alert.*"]).ack_wait(Duration::from_secs(5));
        let subscription = EventSubscription::subscribe(harness.bus.clone(), spec)
            .await
            .unwrap();
        let release = Arc::new(tokio::sync::Notify::new());
        let handled = Arc::new(tokio::sync::Mutex::new(Vec::new()));
        let calls = Arc::new(AtomicU32::new(0));
        let shutdown = CancellationToken::new();
        let loop_task = tokio::spawn({
            let (release, handled, calls) = (release.clone(), handled.clone(), calls.clone());
            run_event_loop_concurrent(
                subscription,
                shutdown.clone(),
                move |event: Envelope, _delivered: u64| {
                    let (release, handled, calls) =
                        (release.clone(), handled.clone(), calls.clone());
                    async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        let Event::Alert(alert) = &event.event else {
                            return Err(HandlerError::reject("not an alert"));
                        };
                        if alert.text == "slow" {
                            release.notified().await;
                        }
                        handled.lock().await.push(alert.text.clone());
                        Ok(())
                    }
                },
                4,
            )
        });
        for text in ["slow", "quick 1", "quick 2"] {
            publish_event(harness.bus.as_ref(), &alert(text))
                .await
                .unwrap();
        }
        // The two behind the slow one are handled while it still waits.
        handled_at_least(&handled, 2).await;
        assert_eq!(*handled.lock().await, ["quick 1", "quick 2"]);
        release.notify_one();
        handled_at_least(&handled, 3).await;
        assert_eq!(handled.lock().await[2], "slow");
        // Every event was acked once handled: none comes back after the ack wait.
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        shutdown.cancel();
        within(5, loop_task).await.unwrap();
    }

    pub async fn a_handler_that_panics_does_not_stop_the_loop_and_its_event_comes_back(
        backend: Backend,
    ) {
        let harness = Harness::start(backend).await;
        let spec = ConsumerSpec::new("panicky", ["alert.*"]).ack_wait(Duration::from_millis(500));
        let subscription = EventSubscription::subscribe(harness.bus.clone(), spec)
            .await
            .unwrap();
        let handled = Arc::new(tokio::sync::Mutex::new(Vec::new()));
        let shutdown = CancellationToken::new();
        let loop_task = tokio::spawn({
            let handled = handled.clone();
            run_event_loop(
                subscription,
                shutdown.clone(),
                move |event: Envelope, delivered: u64| {
                    let handled = handled.clone();
                    async move {
                        let Event::Alert(alert) = &event.event else {
                            return Err(HandlerError::reject("not an alert"));
                        };
                        assert!(
                            !(alert.text == "bad on first" && delivered == 1),
                            "a bug in the handler"
                        );
                        handled.lock().await.push((alert.text.clone(), delivered));
                        Ok(())
                    }
                },
            )
        });
        for text in ["bad on first", "fine"] {
            publish_event(harness.bus.as_ref(), &alert(text))
                .await
                .unwrap();
        }
        handled_at_least(&handled, 2).await;
        let mut seen = handled.lock().await.clone();
        seen.sort();
        assert_eq!(
            seen,
            [("bad on first".to_owned(), 2), ("fine".to_owned(), 1)]
        );
        assert!(!loop_task.is_finished(), "the loop goes on");
        shutdown.cancel();
        within(5, loop_task).await.unwrap();
    }

    pub async fn a_durable_resumes_where_it_left_off(backend: Backend) {
        let harness = Harness::start(backend).await;
        let spec = ConsumerSpec::new("resumer", ["alert.*"]);
        let mut first = harness.bus.consume(spec.clone()).await.unwrap();
        for text in ["a", "b"] {
            publish_event(harness.bus.as_ref(), &alert(text))
                .await
                .unwrap();
        }
        for _ in 0..2 {
            first.next().await.unwrap().ack().await.unwrap();
        }
        drop(first);
        let late = alert("c");
        publish_event(harness.bus.as_ref(), &late).await.unwrap();
        let mut second = harness.bus.consume(spec).await.unwrap();
        let delivery = second.next().await.unwrap();
        assert_eq!(delivery.msg_id(), Some(late.id.as_str()));
        delivery.ack().await.unwrap();
        assert!(
            next_within(&mut second, Duration::from_millis(800))
                .await
                .is_none()
        );

        // A new durable starts from the beginning of the stream.
        let mut fresh = harness
            .bus
            .consume(ConsumerSpec::new("newcomer", ["alert.*"]))
            .await
            .unwrap();
        for _ in 0..3 {
            fresh.next().await.unwrap().ack().await.unwrap();
        }
    }

    pub async fn filters_span_streams_and_wildcards(backend: Backend) {
        let harness = Harness::start(backend).await;
        let mut subscription = harness
            .bus
            .consume(ConsumerSpec::new(
                "mixed",
                ["alert.*", "data.rows.*", "model.>"],
            ))
            .await
            .unwrap();
        for subject in [
            "alert.churn",
            "data.rows.churn",
            "data.labels.churn",
            "model.promoted.fraud",
            "drift.detected.churn",
        ] {
            harness
                .bus
                .publish(subject, OutgoingMessage::new(&b"{}"[..]))
                .await
                .unwrap();
        }
        let mut subjects_seen = HashSet::new();
        for _ in 0..3 {
            let delivery = subscription.next().await.unwrap();
            subjects_seen.insert(delivery.subject.clone());
            delivery.ack().await.unwrap();
        }
        let expected: HashSet<String> = ["alert.churn", "data.rows.churn", "model.promoted.fraud"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(subjects_seen, expected);
        assert!(
            next_within(&mut subscription, Duration::from_millis(800))
                .await
                .is_none()
        );

        let error = harness
            .bus
            .publish("nowhere.churn", OutgoingMessage::new(&b"{}"[..]))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("no stream"), "{error}");
    }

    pub async fn subscriptions_of_one_durable_share_the_work(backend: Backend) {
        let harness = Harness::start(backend).await;
        let spec = ConsumerSpec::new("workers", ["alert.*"]);
        let mut first = harness.bus.consume(spec.clone()).await.unwrap();
        let mut second = harness.bus.consume(spec).await.unwrap();
        let mut published = HashSet::new();
        for i in 0..20 {
            let event = alert(&format!("job {i}"));
            publish_event(harness.bus.as_ref(), &event).await.unwrap();
            published.insert(event.id);
        }
        let mut seen = Vec::new();
        while seen.len() < 20 {
            let delivery = tokio::select! {
                Some(delivery) = first.next() => delivery,
                Some(delivery) = second.next() => delivery,
            };
            seen.push(delivery.msg_id().unwrap().to_owned());
            delivery.ack().await.unwrap();
        }
        let unique: HashSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "no message went to both workers");
        assert_eq!(unique, published);
    }

    pub async fn a_durable_can_change_its_settings(backend: Backend) {
        let harness = Harness::start(backend).await;
        let before = ConsumerSpec::new("evolving", ["alert.*"]);
        let mut first = harness.bus.consume(before).await.unwrap();
        publish_event(harness.bus.as_ref(), &alert("one"))
            .await
            .unwrap();
        first.next().await.unwrap().ack().await.unwrap();
        drop(first);

        // A new release of a service changes its consumer's settings.
        let after = ConsumerSpec::new("evolving", ["alert.*"])
            .ack_wait(Duration::from_millis(400))
            .max_deliver(Some(4));
        let mut second = harness.bus.consume(after).await.unwrap();
        publish_event(harness.bus.as_ref(), &alert("two"))
            .await
            .unwrap();
        let delivery = second.next().await.unwrap();
        assert_eq!(delivery.delivered, 1, "position kept: only the new message");
        drop(delivery);
        let again = next_within(&mut second, Duration::from_secs(3))
            .await
            .expect("the new, shorter ack wait applies");
        assert_eq!(again.delivered, 2);
        again.ack().await.unwrap();
    }

    /// The server-side consumer of `durable` (one filter, on the events stream) as nats-server
    /// sees it now.
    async fn consumer_info(
        harness: &Harness,
        durable: &str,
    ) -> async_nats::jetstream::consumer::Info {
        use futures::StreamExt;
        let jetstream = harness.jetstream.as_ref().expect("a JetStream harness");
        let stream = jetstream
            .jetstream()
            .get_stream(mend_bus::subjects::EVENTS_STREAM)
            .await
            .unwrap();
        let prefix = format!("{durable}__");
        let names: Vec<String> = stream
            .consumer_names()
            .map(|name| name.unwrap())
            .collect()
            .await;
        let ours: Vec<&String> = names
            .iter()
            .filter(|name| name.starts_with(&prefix))
            .collect();
        assert_eq!(ours.len(), 1, "one consumer per filter: {names:?}");
        stream.consumer_info(ours[0]).await.unwrap()
    }

    /// When the bus handed out the `attempt`-th delivery of `durable`, by the bus's own clock,
    /// so the test's scheduling does not enter it. The in-process bus runs on tokio's clock,
    /// paused for it, which does not move while anything is ready to run: "now" (since
    /// `origin`) is still the moment it delivered. nats-server records the time of its latest
    /// delivery on the consumer (since the Unix epoch here); with one message per pull and
    /// no pull waiting, that is the `attempt`-th.
    async fn handed_out_at(
        harness: &Harness,
        durable: &str,
        attempt: u64,
        origin: tokio::time::Instant,
    ) -> Duration {
        if harness.jetstream.is_none() {
            return origin.elapsed();
        }
        let info = consumer_info(harness, durable).await;
        assert_eq!(info.delivered.consumer_sequence, attempt, "{info:?}");
        let at = info
            .delivered
            .last_active
            .expect("nats-server records its deliveries");
        Duration::try_from(at - time::OffsetDateTime::UNIX_EPOCH).unwrap()
    }

    pub async fn backoff_spaces_redeliveries(backend: Backend) {
        if backend == Backend::InProcess {
            // Its redelivery timers are tokio timers: on a paused clock the spacing is exact,
            // and a virtual wait in which nothing is delivered proves nothing was due.
            tokio::time::pause();
        }
        let harness = Harness::start(backend).await;
        let backoff = [Duration::from_millis(300), Duration::from_millis(900)];
        // The default ack wait is 30 s: only the backoff can bring these back within the 10 s
        // each is waited for. One message per pull (the default batch), never settled.
        let spec = ConsumerSpec::new("backing-off", ["alert.*"])
            .max_deliver(Some(3))
            .backoff(backoff.to_vec());
        let mut subscription = harness.bus.consume(spec).await.unwrap();
        let origin = tokio::time::Instant::now();
        publish_event(harness.bus.as_ref(), &alert("slow"))
            .await
            .unwrap();
        let mut handed_out = Vec::new();
        for attempt in 1..=3 {
            let delivery = next_within(&mut subscription, Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("delivery {attempt} did not come within 10 s"));
            assert_eq!(delivery.delivered, attempt);
            handed_out.push(handed_out_at(&harness, "backing-off", attempt, origin).await);
        }
        for (i, wait) in backoff.iter().enumerate() {
            let gap = handed_out[i + 1].saturating_sub(handed_out[i]);
            assert!(
                gap >= *wait,
                "redelivery {} after {gap:?}, backoff {wait:?}",
                i + 2
            );
            if backend == Backend::InProcess {
                // To the millisecond: tokio rounds a timer up to the next one.
                assert!(
                    gap < *wait + Duration::from_millis(5),
                    "{gap:?} for {wait:?}"
                );
            }
        }

        // Three deliveries were allowed, so none more.
        match backend {
            Backend::InProcess => {
                // Virtual seconds: every timer due in them fires before the wait ends.
                let fourth = next_within(&mut subscription, Duration::from_secs(10)).await;
                assert!(fourth.is_none(), "delivered again: {fourth:?}");
            }
            Backend::JetStream => {
                // nats-server gives up on the message (drops it from the pending acks) once a
                // fourth delivery would be due; a pull of ours waits meanwhile and must not get
                // it.
                let next = subscription.next();
                let gave_up = async {
                    while consumer_info(&harness, "backing-off").await.num_ack_pending > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                };
                tokio::select! {
                    fourth = next => panic!("delivered again: {fourth:?}"),
                    () = gave_up => {}
                }
            }
        }
    }
}
