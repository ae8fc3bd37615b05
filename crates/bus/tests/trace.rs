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
        let traced = log_keeps_the_appending_trace(&log).await;
        // The trace header did not replace the message id that deduplicates retries.
        let stored = harness
            .jetstream
            .as_ref()
            .unwrap()
            .jetstream()
            .get_stream(mend_bus::subjects::DATA_STREAM)
            .await
            .unwrap()
            .get_raw_message(traced[0])
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

fn row(id: &str) -> mend_core::record::RowRecord {
    mend_core::record::RowRecord {
        id: id.into(),
        time_ms: 1,
        values: Default::default(),
    }
}

/// Appends one untraced row and two inside a traced span; reads all three back and checks
/// each carries the trace context of its append (none for the first). Returns the traced
/// entries' sequences.
async fn log_keeps_the_appending_trace(log: &dyn mend_bus::DataLog) -> Vec<u64> {
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
    let read = &read[read.len() - 3..];
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
    read[1..].iter().map(|logged| logged.seq).collect()
}

/// The same for the embedded SQLite log, including a file written before it kept trace
/// context: opening it adds the column, and its old entries read back without one.
#[tokio::test]
async fn sqlite_data_log_entries_keep_the_appending_trace() {
    within(60, async {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bus-test")));
        let _guard = tracing::subscriber::set_default(subscriber);

        let fresh = tempfile::tempdir().unwrap();
        let log = mend_bus::SqliteDataLog::open(fresh.path()).unwrap();
        log_keeps_the_appending_trace(&log).await;

        let old = tempfile::tempdir().unwrap();
        let path = old.path().join("datalog.sqlite");
        {
            // The schema as it was before trace context, with one entry.
            let connection = rusqlite::Connection::open(&path).unwrap();
            connection
                .execute_batch(
                    "CREATE TABLE log (
                        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
                        model       TEXT    NOT NULL,
                        kind        INTEGER NOT NULL,
                        appended_ms INTEGER NOT NULL,
                        payload     BLOB    NOT NULL
                    );",
                )
                .unwrap();
            let payload = serde_json::to_vec(&row("old")).unwrap();
            connection
                .execute(
                    "INSERT INTO log (model, kind, appended_ms, payload) VALUES (?1, 1, 1, ?2)",
                    rusqlite::params![model().to_string(), payload],
                )
                .unwrap();
        }
        let upgraded = mend_bus::SqliteDataLog::open_file(&path).unwrap();
        log_keeps_the_appending_trace(&upgraded).await;
        let read = upgraded
            .read_rows(&model(), &mend_bus::Window::sequence(1, None))
            .await
            .unwrap();
        assert_eq!(read.len(), 4);
        assert_eq!(read[0].record.id, "old");
        assert_eq!(read[0].traceparent, None);
        // Opening an upgraded file again does not try to add the column twice.
        drop(upgraded);
        mend_bus::SqliteDataLog::open_file(&path).unwrap();
    })
    .await;
}
