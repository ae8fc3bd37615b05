//! The gRPC door over loopback with a real tonic client: mixed batches, labels, limits,
//! unknown models, an unreachable registry, and backpressure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use common::{SOON, churn_schema, number, row, start, text};
use mend_bus::{
    DataKind, DataLog, DataLogError, DataLogExt, ModelName, RawEntry, SqliteDataLog, Window,
};
use mend_core::record::Value;
use mend_ingest::{InMemorySchemaSource, IngestConfig};
use mend_proto::ingest::v1 as pb;
use mend_testkit::{Patience, eventually};
use prost::Message as _;
use tokio::sync::Semaphore;
use tonic::Code;

fn setup(
    allow_missing: bool,
) -> (
    Arc<InMemorySchemaSource>,
    Arc<SqliteDataLog>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(SqliteDataLog::open(dir.path()).unwrap());
    let schemas = Arc::new(InMemorySchemaSource::new());
    schemas.promote("churn", churn_schema(allow_missing));
    (schemas, log, dir)
}

fn churn() -> ModelName {
    ModelName::new("churn").unwrap()
}

#[tokio::test]
async fn a_mixed_batch_keeps_its_good_rows_and_names_each_bad_one() {
    let (schemas, log, _dir) = setup(false);
    let service = start(IngestConfig::default(), schemas, log.clone(), None).await;
    let mut client = service.client().await;

    let first = pb::RowBatch {
        model: "churn".into(),
        rows: vec![
            row("r1", &[("age", number(41.0)), ("plan", text("pro"))]),
            row("r2", &[("age", text("forty")), ("plan", text("pro"))]),
            row("r3", &[("age", number(30.0)), ("plan", number(3.0))]),
            row(
                "r4",
                &[
                    ("age", number(30.0)),
                    ("plan", text("pro")),
                    ("colour", text("red")),
                ],
            ),
            row("r5", &[("plan", text("basic"))]),
            row("", &[("age", number(1.0)), ("plan", text("pro"))]),
            row("r1", &[("age", number(2.0)), ("plan", text("pro"))]),
            row(
                "r6",
                &[("age", number(f64::INFINITY)), ("plan", text("pro"))],
            ),
        ],
    };
    let second = pb::RowBatch {
        model: "churn".into(),
        rows: vec![
            row("r7", &[("age", number(f64::NAN)), ("plan", text("pro"))]),
            row("r8", &[("age", number(22.0)), ("plan", text("basic"))]),
        ],
    };
    let summary = client
        .ingest_rows(tokio_stream::iter(vec![first, second]))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(summary.accepted, 3);
    assert_eq!(summary.rejected, 7);
    let rejected: Vec<(u32, u32, &str, &str)> = summary
        .rejected_rows
        .iter()
        .map(|r| {
            (
                r.batch_index,
                r.row_index,
                r.row_id.as_str(),
                r.field.as_str(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        vec![
            (0, 1, "r2", "age"),
            (0, 3, "r4", "colour"),
            (0, 4, "r5", "age"),
            (0, 5, "", "id"),
            (0, 6, "r1", "id"),
            (0, 7, "r6", "age"),
            (1, 0, "r7", "age"),
        ]
    );
    let reasons: Vec<&str> = summary
        .rejected_rows
        .iter()
        .map(|r| r.reason.as_str())
        .collect();
    assert!(
        reasons[0].contains("expected a number") && reasons[0].contains("forty"),
        "{}",
        reasons[0]
    );
    assert!(reasons[1].contains("unknown column"), "{}", reasons[1]);
    assert!(reasons[2].contains("missing value"), "{}", reasons[2]);
    assert!(reasons[3].contains("empty"), "{}", reasons[3]);
    assert!(
        reasons[4].contains("earlier in the same batch"),
        "{}",
        reasons[4]
    );
    assert!(reasons[5].contains("finite"), "{}", reasons[5]);

    // The good rows are in the data log, normalised, in order.
    let stored = log
        .read_rows(&churn(), &Window::sequence(1, None))
        .await
        .unwrap();
    let ids: Vec<&str> = stored.iter().map(|r| r.record.id.as_str()).collect();
    assert_eq!(ids, ["r1", "r3", "r8"]);
    assert_eq!(stored[0].record.values["age"], Value::Number(41.0));
    assert_eq!(stored[1].record.values["plan"], Value::Text("3".into()));
    assert_eq!(stored[0].record.time_ms, 1_700_000_000_000);

    let metrics = service.metrics.encode().unwrap();
    assert!(
        metrics.contains(r#"mend_ingest_accepted_total{kind="rows",source="grpc"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"mend_ingest_rejected_total{kind="rows",source="grpc",reason="missing_not_allowed"} 2"#),
        "{metrics}"
    );
    service.stop().await;
}

#[tokio::test]
async fn labels_with_an_unknown_class_are_rejected_and_the_rest_stored() {
    let (schemas, log, _dir) = setup(true);
    let service = start(IngestConfig::default(), schemas, log.clone(), None).await;
    let mut client = service.client().await;
    let label = |row_id: &str, class: &str| pb::Label {
        row_id: row_id.into(),
        label: class.into(),
        time_ms: 5,
    };
    let summary = client
        .ingest_labels(tokio_stream::iter(vec![pb::LabelBatch {
            model: "churn".into(),
            labels: vec![
                label("r1", "yes"),
                label("r2", "maybe"),
                label("", "no"),
                label("r3", "no"),
            ],
        }]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((summary.accepted, summary.rejected), (2, 2));
    assert_eq!(summary.rejected_rows[0].row_id, "r2");
    assert_eq!(summary.rejected_rows[0].field, "label");
    assert!(summary.rejected_rows[0].reason.contains("unknown class"));
    assert_eq!(summary.rejected_rows[1].field, "row_id");

    let stored = log
        .read_labels(&churn(), &Window::sequence(1, None))
        .await
        .unwrap();
    let got: Vec<(&str, &str)> = stored
        .iter()
        .map(|l| (l.record.row_id.as_str(), l.record.label.as_str()))
        .collect();
    assert_eq!(got, [("r1", "yes"), ("r3", "no")]);
    service.stop().await;
}

#[tokio::test]
async fn a_batch_over_the_limits_fails_the_stream_with_invalid_argument() {
    let (schemas, log, _dir) = setup(true);
    let config = IngestConfig {
        max_batch_rows: 3,
        max_message_bytes: 4096,
        max_in_flight_bytes: 4096,
        ..IngestConfig::default()
    };
    let service = start(config, schemas, log.clone(), None).await;
    let mut client = service.client().await;
    let batch = |ids: &[&str]| pb::RowBatch {
        model: "churn".into(),
        rows: ids
            .iter()
            .map(|id| row(id, &[("age", number(1.0)), ("plan", text("pro"))]))
            .collect(),
    };

    let status = client
        .ingest_rows(tokio_stream::iter(vec![
            batch(&["a", "b"]),
            batch(&["c", "d", "e", "f"]),
        ]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("batch 1 has 4 records"),
        "{}",
        status.message()
    );
    assert!(
        status
            .message()
            .contains("the 1 batches before it were stored"),
        "{}",
        status.message()
    );
    // The batch before the bad one stays stored.
    let stored = log
        .read_rows(&churn(), &Window::sequence(1, None))
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);

    let long = "x".repeat(5000);
    let status = client
        .ingest_rows(tokio_stream::iter(vec![pb::RowBatch {
            model: "churn".into(),
            rows: vec![row("g", &[("age", number(1.0)), ("plan", text(&long))])],
        }]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("too large"),
        "{}",
        status.message()
    );
    service.stop().await;
}

#[tokio::test]
async fn unknown_models_reject_their_rows_and_an_unreachable_registry_is_unavailable() {
    let (schemas, log, _dir) = setup(true);
    let service = start(IngestConfig::default(), schemas.clone(), log.clone(), None).await;
    let mut client = service.client().await;
    let batch = |model: &str| pb::RowBatch {
        model: model.into(),
        rows: vec![
            row("a", &[("age", number(1.0)), ("plan", text("pro"))]),
            row("b", &[("age", number(1.0)), ("plan", text("pro"))]),
        ],
    };
    let summary = client
        .ingest_rows(tokio_stream::iter(vec![
            batch("nobody"),
            batch("bad.name"),
            batch("churn"),
        ]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((summary.accepted, summary.rejected), (2, 4));
    assert!(
        summary
            .rejected_rows
            .iter()
            .take(4)
            .all(|r| r.field == "model")
    );
    assert!(summary.rejected_rows[0].reason.contains("unknown model"));
    assert!(
        summary.rejected_rows[2]
            .reason
            .contains("invalid model name")
    );

    // A model never seen while the registry is down: retry later, nothing rejected.
    schemas.set_available(false);
    let status = client
        .ingest_rows(tokio_stream::iter(vec![batch("other")]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    // A model seen before keeps validating against its last schema.
    let summary = client
        .ingest_rows(tokio_stream::iter(vec![pb::RowBatch {
            model: "churn".into(),
            rows: vec![row("c", &[("age", number(1.0)), ("plan", text("pro"))])],
        }]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.accepted, 1);
    service.stop().await;
}

/// A data log whose appends wait until the test lets them through, counting the ones done.
#[derive(Debug)]
struct LatchedLog {
    inner: SqliteDataLog,
    latch: Semaphore,
    appended: AtomicUsize,
}

#[async_trait]
impl DataLog for LatchedLog {
    async fn append_keyed(
        &self,
        model: &ModelName,
        kind: DataKind,
        entries: Vec<(Bytes, Option<String>)>,
    ) -> Result<Vec<mend_bus::Stored>, DataLogError> {
        self.latch.acquire().await.unwrap().forget();
        let stored = self.inner.append_keyed(model, kind, entries).await;
        self.appended.fetch_add(1, Ordering::SeqCst);
        stored
    }

    async fn read_raw(
        &self,
        model: &ModelName,
        kind: DataKind,
        window: &Window,
    ) -> Result<Vec<RawEntry>, DataLogError> {
        self.inner.read_raw(model, kind, window).await
    }

    async fn latest_seq(
        &self,
        model: &ModelName,
        kind: DataKind,
    ) -> Result<Option<u64>, DataLogError> {
        self.inner.latest_seq(model, kind).await
    }
}

/// Batch `b` of producer `stream`: 100 rows of about 640 bytes, about 64 KiB.
fn padded_batch(stream: usize, b: usize) -> pb::RowBatch {
    let padding = "p".repeat(600);
    pb::RowBatch {
        model: "churn".into(),
        rows: (0..100)
            .map(|r| {
                row(
                    &format!("{stream}-{b}-{r}"),
                    &[("age", number(1.0)), ("plan", text(&padding))],
                )
            })
            .collect(),
    }
}

/// [`SOON`], looking every millisecond: the in-flight budget changes fast.
const PROMPTLY: Patience = SOON.polling_every(Duration::from_millis(1));

#[tokio::test]
async fn fast_producers_are_held_back_while_appends_are_slow() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(LatchedLog {
        inner: SqliteDataLog::open(dir.path()).unwrap(),
        latch: Semaphore::new(0),
        appended: AtomicUsize::new(0),
    });
    let schemas = Arc::new(InMemorySchemaSource::new());
    schemas.promote("churn", churn_schema(true));
    const IN_FLIGHT: i64 = 256 * 1024;
    let config = IngestConfig {
        max_message_bytes: 128 * 1024,
        max_in_flight_bytes: IN_FLIGHT as usize,
        ..IngestConfig::default()
    };
    let service = start(config, schemas, log.clone(), None).await;

    // 4 concurrent streams of 50 batches of about 64 KiB (12.5 MiB in all), produced lazily
    // and counted. Each stream alone could queue 3 batches; together they must stay under
    // the shared in-flight budget. Every time a batch is produced, its lead over the appends
    // done is recorded: what the server holds in flight plus what HTTP/2 flow control lets
    // each stream buffer (a 1 MiB window, about 16 batches), well under half of the batches.
    const STREAMS: usize = 4;
    const BATCHES: usize = 50;
    const TOTAL: usize = STREAMS * BATCHES;
    // The longest ids, so the largest batch: with less budget left than this, no batch fits.
    let largest = padded_batch(STREAMS - 1, BATCHES - 1).encoded_len() as i64;
    let produced = Arc::new(AtomicUsize::new(0));
    let max_lead = Arc::new(AtomicUsize::new(0));
    let mut calls = Vec::new();
    for stream in 0..STREAMS {
        let mut client = service.client().await;
        let counter = Arc::clone(&produced);
        let lead = Arc::clone(&max_lead);
        let log = Arc::clone(&log);
        let batches = tokio_stream::StreamExt::map(tokio_stream::iter(0..BATCHES), move |b| {
            let made = counter.fetch_add(1, Ordering::SeqCst) + 1;
            let appended = log.appended.load(Ordering::SeqCst);
            lead.fetch_max(made.saturating_sub(appended), Ordering::SeqCst);
            padded_batch(stream, b)
        });
        calls.push(tokio::spawn(
            async move { client.ingest_rows(batches).await },
        ));
    }

    let in_flight = || -> i64 {
        let held: i64 = service
            .metrics
            .encode()
            .unwrap()
            .lines()
            .find_map(|line| line.strip_prefix("mend_ingest_in_flight_bytes "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            held <= IN_FLIGHT,
            "in flight: {held} bytes, budget {IN_FLIGHT}"
        );
        held
    };
    let budget_full = || IN_FLIGHT - in_flight() < largest;
    // With every append stalled, the streams fill the budget: no other batch can get in.
    eventually(PROMPTLY, "the in-flight budget to fill up", || {
        std::future::ready(budget_full())
    })
    .await;
    // Then the appends go through one at a time, each time until the budget is full again
    // (or everything has been produced), so the producers are tried at every stage, not
    // only while everything is stalled.
    let mut released = 0;
    while produced.load(Ordering::SeqCst) < TOTAL {
        log.latch.add_permits(1);
        released += 1;
        eventually(
            PROMPTLY,
            "an append and the budget to fill up again",
            || {
                std::future::ready(
                    log.appended.load(Ordering::SeqCst) >= released
                        && (budget_full() || produced.load(Ordering::SeqCst) == TOTAL),
                )
            },
        )
        .await;
    }
    log.latch.add_permits(TOTAL - released);
    for call in calls {
        let summary = tokio::time::timeout(Duration::from_secs(60), call)
            .await
            .unwrap()
            .unwrap()
            .unwrap()
            .into_inner();
        assert_eq!(summary.accepted as usize, BATCHES * 100);
    }
    let lead = max_lead.load(Ordering::SeqCst);
    assert!(
        lead < TOTAL / 2,
        "with appends slow the producers must be held back, but they got {lead} of {TOTAL} batches ahead of the appends"
    );
    assert_eq!(produced.load(Ordering::SeqCst), TOTAL);
    assert_eq!(log.appended.load(Ordering::SeqCst), TOTAL);
    assert_eq!(in_flight(), 0);
    service.stop().await;
}

#[tokio::test]
async fn the_listed_rejections_are_capped_but_the_count_is_complete() {
    let (schemas, log, _dir) = setup(true);
    let config = IngestConfig {
        max_listed_rejections: 2,
        ..IngestConfig::default()
    };
    let service = start(config, schemas, log, None).await;
    let mut client = service.client().await;
    let bad = |id: &str| row(id, &[("age", text("x")), ("plan", text("pro"))]);
    let batch = pb::RowBatch {
        model: "churn".into(),
        rows: vec![bad("a"), bad("b"), bad("c")],
    };
    let summary = client
        .ingest_rows(tokio_stream::iter(vec![batch.clone(), batch]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.rejected, 6);
    let listed: Vec<(u32, &str)> = summary
        .rejected_rows
        .iter()
        .map(|r| (r.batch_index, r.row_id.as_str()))
        .collect();
    assert_eq!(listed, [(0, "a"), (0, "b")]);
    service.stop().await;
}

/// Bodies that are not a `RowBatch` (or `LabelBatch`) are the producer's fault:
/// INVALID_ARGUMENT naming the message, never INTERNAL; nothing is stored from them.
#[tokio::test]
async fn undecodable_batches_are_invalid_arguments() {
    let (schemas, log, _dir) = setup(true);
    let service = start(IngestConfig::default(), schemas, log.clone(), None).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", service.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    let mut named = 0;
    let bodies = mend_testkit::raw_grpc::garbage_bodies(300, 0x9e37_79b9_7f4a_7c15);
    for (round, body) in bodies.into_iter().enumerate() {
        let (path, message) = if round % 3 == 0 {
            ("/mend.ingest.v1.Ingest/IngestLabels", "LabelBatch")
        } else {
            ("/mend.ingest.v1.Ingest/IngestRows", "RowBatch")
        };
        grpc.ready().await.unwrap();
        let codec = mend_testkit::raw_grpc::RawBytes::<pb::IngestSummary>::default();
        let outcome = grpc
            .client_streaming(
                tonic::Request::new(tokio_stream::iter(vec![body])),
                http::uri::PathAndQuery::from_static(path),
                codec,
            )
            .await;
        if let Err(status) = outcome {
            assert_ne!(
                status.code(),
                Code::Internal,
                "round {round}: garbage answered as a server fault: {status:?}"
            );
            if status.code() == Code::InvalidArgument
                && status.message().contains(&format!("not a valid {message}"))
            {
                named += 1;
            }
        }
    }
    assert!(named >= 150, "only {named} of 300 named the bad message");
    service.stop().await;
}
