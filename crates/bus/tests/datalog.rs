//! Data-log windows come back complete and in order, for SQLite and JetStream alike.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Backend, Harness, within};
use mend_bus::{DataKind, DataLog, DataLogExt, JetStreamDataLog, ModelName, SqliteDataLog, Window};
use mend_core::record::{LabelRecord, PredictionRecord, RowRecord, Value};

/// A data log under test and what keeps it alive.
struct Log {
    log: Arc<dyn DataLog>,
    _harness: Option<Harness>,
    _dir: Option<tempfile::TempDir>,
}

async fn open(backend: Backend) -> Log {
    match backend {
        Backend::InProcess => {
            let dir = tempfile::tempdir().unwrap();
            Log {
                log: Arc::new(SqliteDataLog::open(dir.path()).unwrap()),
                _harness: None,
                _dir: Some(dir),
            }
        }
        Backend::JetStream => {
            let harness = Harness::start(Backend::JetStream).await;
            Log {
                log: Arc::new(JetStreamDataLog::new(harness.jetstream.clone().unwrap())),
                _harness: Some(harness),
                _dir: None,
            }
        }
    }
}

macro_rules! for_each_log {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                within(60, super::tests::$name(Backend::InProcess)).await;
            }

            #[tokio::test]
            async fn jetstream() {
                within(60, super::tests::$name(Backend::JetStream)).await;
            }
        }
    )*};
}

for_each_log!(
    windows_are_complete_and_in_order,
    time_windows_follow_append_time,
    labels_and_predictions_round_trip,
    a_large_window_comes_back_whole,
    retried_records_are_stored_once,
);

fn rows(prefix: &str, range: std::ops::Range<usize>) -> Vec<RowRecord> {
    range
        .map(|i| RowRecord {
            id: format!("{prefix}{i}"),
            time_ms: 1_700_000_000_000 + i as i64,
            values: [
                ("tenure".to_owned(), Value::Number(i as f64 * 0.5)),
                ("plan".to_owned(), Value::Text(format!("p{}", i % 3))),
                ("age".to_owned(), Value::Missing),
            ]
            .into(),
        })
        .collect()
}

fn ids<R>(entries: &[mend_bus::Logged<R>], id: impl Fn(&R) -> &str) -> Vec<String> {
    entries
        .iter()
        .map(|entry| id(&entry.record).to_owned())
        .collect()
}

mod tests {
    use super::*;

    pub async fn windows_are_complete_and_in_order(backend: Backend) {
        let Log { log, .. } = &open(backend).await;
        let churn = ModelName::new("churn").unwrap();
        let fraud = ModelName::new("fraud").unwrap();
        assert_eq!(log.latest_seq(&churn, DataKind::Rows).await.unwrap(), None);

        let first = rows("a", 0..10);
        let second = rows("a", 10..20);
        let mut sequences = log.append_rows(&churn, &first).await.unwrap();
        log.append_rows(&fraud, &rows("f", 0..7)).await.unwrap();
        log.append_labels(
            &churn,
            &[LabelRecord {
                row_id: "a0".into(),
                label: "yes".into(),
                time_ms: 1,
            }],
        )
        .await
        .unwrap();
        sequences.extend(log.append_rows(&churn, &second).await.unwrap());
        assert_eq!(sequences.len(), 20);
        assert!(
            sequences.windows(2).all(|pair| pair[0] < pair[1]),
            "{sequences:?}"
        );

        let all = log
            .read_rows(&churn, &Window::sequence(0, None))
            .await
            .unwrap();
        let all_rows: Vec<RowRecord> = first.iter().chain(&second).cloned().collect();
        assert_eq!(
            all.iter()
                .map(|entry| entry.record.clone())
                .collect::<Vec<_>>(),
            all_rows,
            "every row of the model, in order, nothing from other models or kinds"
        );
        assert_eq!(
            all.iter().map(|entry| entry.seq).collect::<Vec<_>>(),
            sequences
        );

        let middle = log
            .read_rows(&churn, &Window::sequence(sequences[3], Some(sequences[12])))
            .await
            .unwrap();
        assert_eq!(
            ids(&middle, |row| &row.id),
            (3..=12).map(|i| format!("a{i}")).collect::<Vec<_>>()
        );

        let limited = log
            .read_rows(&churn, &Window::sequence(sequences[3], None).with_limit(4))
            .await
            .unwrap();
        assert_eq!(ids(&limited, |row| &row.id), ["a3", "a4", "a5", "a6"]);

        let newest = log.read_rows(&churn, &Window::last(7)).await.unwrap();
        assert_eq!(
            ids(&newest, |row| &row.id),
            (13..20).map(|i| format!("a{i}")).collect::<Vec<_>>()
        );
        let more_than_there_is = log.read_rows(&fraud, &Window::last(100)).await.unwrap();
        assert_eq!(more_than_there_is.len(), 7);

        let past_the_end = log
            .read_rows(&churn, &Window::sequence(sequences[19] + 1, None))
            .await
            .unwrap();
        assert!(past_the_end.is_empty());
        let nothing_here = log
            .read_rows(&ModelName::new("empty").unwrap(), &Window::last(5))
            .await
            .unwrap();
        assert!(nothing_here.is_empty());

        assert_eq!(
            log.latest_seq(&churn, DataKind::Rows).await.unwrap(),
            Some(sequences[19])
        );
        assert!(
            log.latest_seq(&churn, DataKind::Labels)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            log.latest_seq(&churn, DataKind::Predictions).await.unwrap(),
            None
        );
    }

    pub async fn time_windows_follow_append_time(backend: Backend) {
        let Log { log, .. } = &open(backend).await;
        let churn = ModelName::new("churn").unwrap();
        log.append_rows(&churn, &rows("early", 0..5)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        log.append_rows(&churn, &rows("late", 0..5)).await.unwrap();

        let all = log
            .read_rows(&churn, &Window::sequence(1, None))
            .await
            .unwrap();
        assert_eq!(all.len(), 10);
        assert!(
            all.windows(2)
                .all(|pair| pair[0].appended_ms <= pair[1].appended_ms)
        );
        let boundary = all[5].appended_ms;
        assert!(
            all[4].appended_ms < boundary,
            "the batches were 50 ms apart"
        );

        let late = log
            .read_rows(&churn, &Window::time(boundary, None))
            .await
            .unwrap();
        assert_eq!(
            ids(&late, |row| &row.id),
            (0..5).map(|i| format!("late{i}")).collect::<Vec<_>>()
        );
        let early = log
            .read_rows(&churn, &Window::time(0, Some(boundary)))
            .await
            .unwrap();
        assert_eq!(
            ids(&early, |row| &row.id),
            (0..5).map(|i| format!("early{i}")).collect::<Vec<_>>()
        );
    }

    pub async fn labels_and_predictions_round_trip(backend: Backend) {
        let Log { log, .. } = &open(backend).await;
        let churn = ModelName::new("churn").unwrap();
        let labels: Vec<LabelRecord> = (0..5)
            .map(|i| LabelRecord {
                row_id: format!("req-1/{i}"),
                label: if i % 2 == 0 { "yes" } else { "no" }.into(),
                time_ms: i,
            })
            .collect();
        let predictions: Vec<PredictionRecord> = (0..5)
            .map(|i| PredictionRecord {
                row_id: format!("req-1/{i}"),
                time_ms: i,
                model_version: 3,
                values: [("tenure".to_owned(), Value::Number(i as f64))].into(),
                probabilities: vec![0.25, 0.75],
                label: "yes".into(),
            })
            .collect();
        log.append_labels(&churn, &labels).await.unwrap();
        log.append_predictions(&churn, &predictions).await.unwrap();
        let read_labels = log.read_labels(&churn, &Window::last(10)).await.unwrap();
        let read_predictions = log
            .read_predictions(&churn, &Window::sequence(1, None))
            .await
            .unwrap();
        assert_eq!(
            read_labels
                .into_iter()
                .map(|entry| entry.record)
                .collect::<Vec<_>>(),
            labels
        );
        assert_eq!(
            read_predictions
                .into_iter()
                .map(|entry| entry.record)
                .collect::<Vec<_>>(),
            predictions
        );
        assert!(
            log.read_rows(&churn, &Window::last(10))
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// A producer that retries a batch (same row ids) gets the first copies' sequences back,
    /// marked as duplicates, and the log holds each row once; a corrected label is new.
    pub async fn retried_records_are_stored_once(backend: Backend) {
        let Log { log, .. } = &open(backend).await;
        let churn = ModelName::new("churn").unwrap();
        let first = log
            .append_deduplicated(&churn, &rows("r", 0..50))
            .await
            .unwrap();
        assert!(first.iter().all(|stored| !stored.duplicate));
        // The retry overlaps the first batch by 30 rows and brings 20 new ones.
        let retry = log
            .append_deduplicated(&churn, &rows("r", 20..70))
            .await
            .unwrap();
        let duplicates: Vec<u64> = retry
            .iter()
            .filter(|stored| stored.duplicate)
            .map(|stored| stored.seq)
            .collect();
        assert_eq!(duplicates.len(), 30);
        assert_eq!(
            duplicates,
            first[20..]
                .iter()
                .map(|stored| stored.seq)
                .collect::<Vec<_>>(),
            "a duplicate answers with the first copy's sequence"
        );
        let stored = log.read_rows(&churn, &Window::last(1000)).await.unwrap();
        assert_eq!(
            ids(&stored, |row| &row.id),
            (0..70).map(|i| format!("r{i}")).collect::<Vec<_>>()
        );

        let label = |value: &str| LabelRecord {
            row_id: "r1".into(),
            label: value.into(),
            time_ms: 1,
        };
        log.append_labels(&churn, &[label("yes")]).await.unwrap();
        log.append_labels(&churn, &[label("yes")]).await.unwrap();
        log.append_labels(&churn, &[label("no")]).await.unwrap();
        let labels = log.read_labels(&churn, &Window::last(10)).await.unwrap();
        let values: Vec<&str> = labels.iter().map(|l| l.record.label.as_str()).collect();
        assert_eq!(
            values,
            ["yes", "no"],
            "the correction is kept, the repeat is not"
        );

        // Raw appends carry no key: each is new.
        let raw = vec![bytes::Bytes::from_static(b"{}"); 2];
        log.append_raw(&churn, DataKind::Predictions, raw.clone())
            .await
            .unwrap();
        log.append_raw(&churn, DataKind::Predictions, raw)
            .await
            .unwrap();
        assert_eq!(
            log.read_raw(&churn, DataKind::Predictions, &Window::last(10))
                .await
                .unwrap()
                .len(),
            4
        );
    }

    pub async fn a_large_window_comes_back_whole(backend: Backend) {
        let Log { log, .. } = &open(backend).await;
        let churn = ModelName::new("churn").unwrap();
        let other = ModelName::new("other").unwrap();
        let many = rows("m", 0..5000);
        for (index, chunk) in many.chunks(1000).enumerate() {
            log.append_rows(&churn, chunk).await.unwrap();
            log.append_rows(&other, &rows(&format!("o{index}-"), 0..100))
                .await
                .unwrap();
        }
        // An entry someone wrote by hand that is not a row is skipped, even in a window large
        // enough to be decoded in parallel chunks; the rows after it still come back in order.
        log.append_raw(
            &churn,
            DataKind::Rows,
            vec![bytes::Bytes::from_static(b"{\"not\": \"a row\"}")],
        )
        .await
        .unwrap();
        let last = rows("z", 0..1);
        log.append_rows(&churn, &last).await.unwrap();
        let all = log
            .read_rows(&churn, &Window::sequence(1, None))
            .await
            .unwrap();
        assert_eq!(all.len(), 5001);
        assert_eq!(
            ids(&all, |row| &row.id),
            many.iter()
                .chain(&last)
                .map(|row| row.id.clone())
                .collect::<Vec<_>>()
        );
        assert!(all.windows(2).all(|pair| pair[0].seq < pair[1].seq));
        assert_eq!(all[4999].record, many[4999]);
        let newest = log.read_rows(&churn, &Window::last(2502)).await.unwrap();
        assert_eq!(newest.len(), 2501);
        assert_eq!(newest[0].record.id, "m2500");
        assert_eq!(newest[2500].record.id, "z0");
    }
}

#[tokio::test]
async fn the_sqlite_log_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let churn = ModelName::new("churn").unwrap();
    let sequences = {
        let log = SqliteDataLog::open(dir.path()).unwrap();
        log.append_rows(&churn, &rows("a", 0..3)).await.unwrap()
    };
    let log = SqliteDataLog::open(dir.path()).unwrap();
    let more = log.append_rows(&churn, &rows("a", 3..4)).await.unwrap();
    assert!(more[0] > sequences[2], "sequences continue after a reopen");
    let all = log
        .read_rows(&churn, &Window::sequence(1, None))
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
}

/// NATS closes the connection of a client that publishes over the server's `max_payload`:
/// the JetStream log refuses such an entry whole, before anything is stored, and stays
/// connected for the next append.
#[tokio::test]
async fn an_entry_over_max_payload_is_refused_and_the_log_keeps_working() {
    let Log { log, .. } = &open(Backend::JetStream).await;
    let churn = ModelName::new("churn").unwrap();
    let max = log.max_entry_bytes().expect("JetStream has a limit");
    assert!(max < 1 << 20 && max > 1 << 19, "{max}");
    let huge = bytes::Bytes::from(vec![b'x'; 2 << 20]);
    let small = bytes::Bytes::from_static(b"{}");
    let refused = log
        .append_raw(&churn, DataKind::Predictions, vec![small.clone(), huge])
        .await
        .unwrap_err();
    assert!(
        matches!(refused, mend_bus::DataLogError::TooLarge { index: 1, .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("max_payload"), "{refused}");
    assert_eq!(
        log.latest_seq(&churn, DataKind::Predictions).await.unwrap(),
        None,
        "nothing of the refused append was stored"
    );
    let stored = log
        .append_raw(&churn, DataKind::Predictions, vec![small])
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
}

/// The same for events: a message over `max_payload` is refused with the sizes, and the bus
/// publishes the next one as usual.
#[tokio::test]
async fn an_event_over_max_payload_is_refused_and_the_bus_keeps_working() {
    use mend_bus::Bus;
    use mend_bus::message::OutgoingMessage;

    let harness = Harness::start(Backend::JetStream).await;
    let bus = harness.jetstream.clone().unwrap();
    let refused = bus
        .publish(
            "alert.churn",
            OutgoingMessage::new(bytes::Bytes::from(vec![b'x'; 2 << 20])),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, mend_bus::BusError::TooLarge { .. }),
        "{refused}"
    );
    bus.publish(
        "alert.churn",
        OutgoingMessage::new(bytes::Bytes::from_static(b"{}")),
    )
    .await
    .unwrap();
}
