//! The bus door against a real `nats-server -js`: JSON rows and labels on `ingest.*`, valid
//! ones into the JetStream data log, invalid ones dead-lettered with reasons, and the schema
//! re-checked when a promotion is announced.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{SOON, churn_schema, number, row, start, text};
use mend_bus::message::{OutgoingMessage, header};
use mend_bus::{
    Bus, ConsumerSpec, DataLogExt, JetStreamBus, JetStreamConfig, JetStreamDataLog, ModelName,
    Subscription, Window, subjects,
};
use mend_core::{Feature, FeatureKind};
use mend_ingest::{InMemorySchemaSource, IngestConfig};
use mend_proto::ingest::v1 as pb;
use mend_testkit::{NatsServer, eventually};

async fn next_json(subscription: &mut Subscription) -> (serde_json::Value, String) {
    let delivery = tokio::time::timeout(Duration::from_secs(20), subscription.next())
        .await
        .expect("a dead letter within 20 s")
        .unwrap();
    let reason = delivery
        .headers
        .get(header::DEADLETTER_REASON)
        .unwrap_or_default()
        .to_owned();
    let body = serde_json::from_slice(&delivery.payload).unwrap_or(serde_json::Value::Null);
    delivery.ack().await.unwrap();
    (body, reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_rows_on_the_bus_are_validated_appended_and_dead_lettered() {
    let nats = NatsServer::start().unwrap();
    let jetstream = JetStreamBus::connect(&nats.url(), JetStreamConfig::default())
        .await
        .unwrap();
    let bus: Arc<dyn Bus> = Arc::new(jetstream.clone());
    let log = Arc::new(JetStreamDataLog::new(jetstream));
    let schemas = Arc::new(InMemorySchemaSource::new());
    schemas.promote("churn", churn_schema(true));
    let service = start(
        IngestConfig::default(),
        schemas.clone(),
        log.clone(),
        Some(Arc::clone(&bus)),
    )
    .await;
    let churn = ModelName::new("churn").unwrap();
    let mut dead_rows = bus
        .consume(ConsumerSpec::new(
            "test-dead-rows",
            [subjects::deadletter(&subjects::ingest_rows(&churn))],
        ))
        .await
        .unwrap();
    let mut dead_labels = bus
        .consume(ConsumerSpec::new(
            "test-dead-labels",
            [subjects::deadletter(&subjects::ingest_labels(&churn))],
        ))
        .await
        .unwrap();

    // A mixed message: two good rows, a wrong type, a misshapen entry.
    let rows = br#"{"v":1,"rows":[
        {"id":"n1","time_ms":10,"values":{"age":41,"plan":"pro"}},
        {"id":"n2","values":{"age":"old","plan":"pro"}},
        {"id":"n3","values":"nope"},
        {"id":"n4","values":{"age":22.5,"plan":3}}
    ]}"#;
    bus.publish(
        &subjects::ingest_rows(&churn),
        OutgoingMessage::new(&rows[..]),
    )
    .await
    .unwrap();
    let stored = eventually(SOON, "the valid rows in the data log", || {
        let log = log.clone();
        let churn = churn.clone();
        async move {
            let rows = log
                .read_rows(&churn, &Window::sequence(1, None))
                .await
                .unwrap();
            (rows.len() >= 2).then_some(rows)
        }
    })
    .await;
    let ids: Vec<&str> = stored.iter().map(|r| r.record.id.as_str()).collect();
    assert_eq!(ids, ["n1", "n4"]);
    assert_eq!(stored[0].record.time_ms, 10);

    let (body, reason) = next_json(&mut dead_rows).await;
    assert_eq!(body["accepted"], 2);
    let rejected = body["rejected"].as_array().unwrap();
    let got: Vec<(u64, &str, &str)> = rejected
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["field"].as_str().unwrap(),
                r["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [(1, "age", "wrong_type"), (2, "values", "undecodable")]
    );
    assert_eq!(rejected[0]["row"]["values"]["age"], "old");
    assert!(reason.starts_with("2 of 4 rows rejected"), "{reason}");

    // A message that is not an ingest message at all is dead-lettered whole.
    bus.publish(
        &subjects::ingest_rows(&churn),
        OutgoingMessage::new("hello"),
    )
    .await
    .unwrap();
    let (_, reason) = next_json(&mut dead_rows).await;
    assert!(
        reason.contains("undecodable ingest message: not JSON"),
        "{reason}"
    );

    // Labels: an unknown class is dead-lettered, the good one stored.
    let labels =
        br#"{"v":1,"labels":[{"row_id":"n1","label":"yes"},{"row_id":"n4","label":"perhaps"}]}"#;
    bus.publish(
        &subjects::ingest_labels(&churn),
        OutgoingMessage::new(&labels[..]),
    )
    .await
    .unwrap();
    let (body, _) = next_json(&mut dead_labels).await;
    assert_eq!(body["rejected"][0]["row_id"], "n4");
    assert_eq!(body["rejected"][0]["code"], "unknown_class");
    let stored = log
        .read_labels(&churn, &Window::sequence(1, None))
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].record.label, "yes");

    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_on_the_bus_switches_validation_to_the_new_schema() {
    let nats = NatsServer::start().unwrap();
    let jetstream = JetStreamBus::connect(&nats.url(), JetStreamConfig::default())
        .await
        .unwrap();
    let bus: Arc<dyn Bus> = Arc::new(jetstream.clone());
    let log = Arc::new(JetStreamDataLog::new(jetstream));
    let schemas = Arc::new(InMemorySchemaSource::new());
    schemas.promote("churn", churn_schema(true));
    // A long time to live: only the event can make the service see the new schema in time.
    let config = IngestConfig {
        schema_ttl: Duration::from_secs(3600),
        ..IngestConfig::default()
    };
    let service = start(config, schemas.clone(), log, Some(Arc::clone(&bus))).await;
    let mut client = service.client().await;
    let with_tenure = |id: String| pb::RowBatch {
        model: "churn".into(),
        rows: vec![row(
            &id,
            &[
                ("age", number(1.0)),
                ("plan", text("pro")),
                ("tenure", number(3.0)),
            ],
        )],
    };
    let summary = client
        .ingest_rows(tokio_stream::iter(vec![with_tenure("before".into())]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.rejected_rows[0].field, "tenure");

    let mut schema = churn_schema(true);
    schema.features.push(Feature {
        name: "tenure".into(),
        kind: FeatureKind::Numeric,
    });
    let version = schemas.promote("churn", schema);
    bus.publish(
        "model.promoted.churn",
        OutgoingMessage::new(format!(r#"{{"v":1,"version":{version},"reason":"test"}}"#)),
    )
    .await
    .unwrap();
    let mut attempt = 0;
    eventually(SOON, "rows with the new feature accepted", || {
        attempt += 1;
        let mut client = client.clone();
        let batch = with_tenure(format!("after-{attempt}"));
        async move {
            let summary = client
                .ingest_rows(tokio_stream::iter(vec![batch]))
                .await
                .unwrap()
                .into_inner();
            (summary.accepted == 1).then_some(())
        }
    })
    .await;
    service.stop().await;
}

/// The gRPC door of a service whose data log is JetStream on its own `nats-server`, with
/// `churn` known.
async fn grpc_over_jetstream() -> (NatsServer, Arc<JetStreamDataLog>, common::Running) {
    let nats = NatsServer::start().unwrap();
    let jetstream = JetStreamBus::connect(&nats.url(), JetStreamConfig::default())
        .await
        .unwrap();
    let log = Arc::new(JetStreamDataLog::new(jetstream));
    let schemas = Arc::new(InMemorySchemaSource::new());
    schemas.promote("churn", churn_schema(true));
    let service = start(IngestConfig::default(), schemas, log.clone(), None).await;
    (nats, log, service)
}

/// A batch cut off by a NATS outage is retried by the producer: whatever the first attempt
/// stored (before the outage, or once NATS came back) is stored once, the retry says how
/// many rows were already there, and the log holds every acknowledged row exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_retried_across_a_nats_outage_is_stored_once() {
    let (mut nats, log, service) = grpc_over_jetstream().await;
    let mut client = service.client().await;
    let churn = ModelName::new("churn").unwrap();
    let batch = |from: usize, to: usize| pb::RowBatch {
        model: "churn".into(),
        rows: (from..to)
            .map(|i| {
                row(
                    &format!("r{i}"),
                    &[("age", number(i as f64)), ("plan", text("pro"))],
                )
            })
            .collect(),
    };

    let first = client
        .ingest_rows(tokio_stream::iter(vec![batch(0, 500)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((first.accepted, first.already_stored), (500, 0));

    // NATS goes down while the next batch is sent; the producer gives up after 2 s.
    nats.stop().unwrap();
    let mut cut_off = tonic::Request::new(tokio_stream::iter(vec![batch(500, 1000)]));
    cut_off.set_timeout(Duration::from_secs(2));
    let outcome = client.ingest_rows(cut_off).await;
    assert!(outcome.is_err(), "no answer can say stored: {outcome:?}");
    // NATS is back (the service's publish retries may now store what it had in hand)...
    nats.resume().unwrap();
    // ...and the producer retries the whole stream, as told.
    let retried = eventually(SOON, "the retry to be stored", || {
        let mut client = client.clone();
        async move {
            client
                .ingest_rows(tokio_stream::iter(vec![batch(0, 500), batch(500, 1000)]))
                .await
                .ok()
                .map(tonic::Response::into_inner)
        }
    })
    .await;
    assert_eq!(retried.accepted, 1000);
    assert!(
        retried.already_stored >= 500,
        "the first batch was stored before: {retried:?}"
    );
    let stored = eventually(SOON, "every row to be readable", || {
        let log = Arc::clone(&log);
        let churn = churn.clone();
        async move {
            let rows = log.read_rows(&churn, &Window::last(5000)).await.ok()?;
            (rows.len() >= 1000).then_some(rows)
        }
    })
    .await;
    let ids: std::collections::BTreeSet<&str> =
        stored.iter().map(|row| row.record.id.as_str()).collect();
    assert_eq!(ids.len(), 1000);
    assert_eq!(stored.len(), 1000, "some rows were stored twice");
    service.stop().await;
}

/// A 1 MiB value is refused at the edge with a reason naming the setting, the rest of the
/// batch is stored, and the service's NATS connection is not dropped for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_values_are_refused_at_the_edge() {
    let (_nats, log, service) = grpc_over_jetstream().await;
    let mut client = service.client().await;
    let huge = "x".repeat(1 << 20);
    let summary = client
        .ingest_rows(tokio_stream::iter(vec![pb::RowBatch {
            model: "churn".into(),
            rows: vec![
                row("small", &[("age", number(1.0)), ("plan", text("pro"))]),
                row("huge", &[("age", number(2.0)), ("plan", text(&huge))]),
                row("after", &[("age", number(3.0)), ("plan", text("pro"))]),
            ],
        }]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((summary.accepted, summary.rejected), (2, 1));
    let rejection = &summary.rejected_rows[0];
    assert_eq!(
        (rejection.row_id.as_str(), rejection.field.as_str()),
        ("huge", "plan")
    );
    assert!(
        rejection.reason.contains("MEND_INGEST_MAX_VALUE_BYTES"),
        "{}",
        rejection.reason
    );
    let churn = ModelName::new("churn").unwrap();
    let stored = log.read_rows(&churn, &Window::last(10)).await.unwrap();
    assert_eq!(stored.len(), 2);
    service.stop().await;
}
