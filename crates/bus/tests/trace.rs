//! W3C trace context travels from publisher to consumer in message headers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, Harness, model, within};
use mend_bus::events::{Alert, Severity};
use mend_bus::message::header;
use mend_bus::typed::{EventSubscription, publish_event};
use mend_bus::{ConsumerSpec, DataLogExt, Envelope, trace};
use opentelemetry::trace::{TraceContextExt, TracerProvider};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

async fn trace_context_travels(backend: Backend) {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bus-test")));
    // Current-thread test runtime: the guard covers every await below.
    let _guard = tracing::subscriber::set_default(subscriber);

    let harness = Harness::start(backend).await;
    let mut subscription = EventSubscription::subscribe(
        harness.bus.clone(),
        ConsumerSpec::new("traced", ["alert.*"]),
    )
    .await
    .unwrap();

    let publisher_span = tracing::info_span!("publish_alert");
    let publisher_trace = publisher_span.context().span().span_context().trace_id();
    let event = Envelope::new(
        model(),
        Alert {
            severity: Severity::Critical,
            text: "traced".into(),
            source: None,
            related_event_id: None,
        },
    );
    publish_event(harness.bus.as_ref(), &event)
        .instrument(publisher_span)
        .await
        .unwrap();

    let delivery = subscription.next().await.unwrap();
    let traceparent = delivery
        .delivery()
        .headers
        .get(header::TRACEPARENT)
        .expect("traceparent header")
        .to_owned();
    assert!(
        traceparent.contains(&publisher_trace.to_string()),
        "{traceparent} carries trace {publisher_trace}"
    );
    let remote = trace::extract(&delivery.delivery().headers);
    assert_eq!(remote.span().span_context().trace_id(), publisher_trace);

    let handler_span = delivery.span();
    assert_eq!(
        handler_span.context().span().span_context().trace_id(),
        publisher_trace,
        "the handler's span joins the publisher's trace"
    );
    delivery.ack().await.unwrap();
}

#[tokio::test]
async fn in_process() {
    within(60, trace_context_travels(Backend::InProcess)).await;
}

#[tokio::test]
async fn jetstream() {
    within(60, trace_context_travels(Backend::JetStream)).await;
}

/// Rows appended inside a traced span come back from the JetStream data log with that span's
/// `traceparent`, so whoever acts on them (the monitor) can continue the trace.
#[tokio::test]
async fn data_log_entries_keep_the_appending_trace() {
    within(60, async {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bus-test")));
        let _guard = tracing::subscriber::set_default(subscriber);

        let harness = Harness::start(Backend::JetStream).await;
        let log = mend_bus::JetStreamDataLog::new(harness.jetstream.clone().unwrap());
        let row = |id: &str| mend_core::record::RowRecord {
            id: id.into(),
            time_ms: 1,
            values: Default::default(),
        };

        let untraced = log.append_rows(&model(), &[row("before")]).await.unwrap();
        let span = tracing::info_span!("ingest_batch");
        let trace_id = span.context().span().span_context().trace_id();
        log.append_rows(&model(), &[row("a"), row("b")])
            .instrument(span)
            .await
            .unwrap();

        let read = log
            .read_rows(&model(), &mend_bus::Window::sequence(1, None))
            .await
            .unwrap();
        assert_eq!(read.len(), 3);
        assert_eq!(read[0].seq, untraced[0]);
        assert_eq!(
            read[0].traceparent, None,
            "no span, no trace context stored"
        );
        for logged in &read[1..] {
            let traceparent = logged.traceparent.as_deref().expect("traceparent kept");
            assert!(
                traceparent.contains(&trace_id.to_string()),
                "{traceparent} carries trace {trace_id}"
            );
        }
        // The trace header did not replace the message id that deduplicates retries.
        let stored = harness
            .jetstream
            .as_ref()
            .unwrap()
            .jetstream()
            .get_stream(mend_bus::subjects::DATA_STREAM)
            .await
            .unwrap()
            .get_raw_message(read[1].seq)
            .await
            .unwrap();
        assert!(
            stored
                .headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .is_some(),
            "{:?}",
            stored.headers
        );
        assert!(stored.headers.get(header::TRACEPARENT).is_some());
    })
    .await;
}
