#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A restarted monitor resumes from its saved position: completed windows are not
//! compared again, and rows appended while it was down are not skipped.

mod common;

use std::sync::Arc;

use common::*;
use mend_bus::{DataLog, DataLogExt, SqliteDataLog};
use mend_monitor::InMemoryChampionSource;
use mend_worlds::Regime;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_from_the_saved_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let data_log: Arc<dyn DataLog> =
        Arc::new(SqliteDataLog::open(&dir.path().join("log")).unwrap());
    let champions = Arc::new(InMemoryChampionSource::new());
    champions.set(&model(), 1, train(&Regime::default(), 1));
    let mut world = World::new();

    let monitor = start(
        config(dir.path()),
        Arc::clone(&champions),
        Arc::clone(&data_log),
        None,
    )
    .await;
    // 2,400 rows: two full windows and 400 rows of an open one.
    let (rows, _) = world.draw(2_400, &Regime::default());
    data_log.append_rows(&model(), &rows).await.unwrap();
    let first = reports_reach(dir.path(), 2).await;
    let first_report = tokio::fs::read(
        dir.path()
            .join(format!("reports/{MODEL}/{}.json", first[0])),
    )
    .await
    .unwrap();
    monitor.stop().await;

    // Rows arrive while it is down; the open window's 400 rows plus 1,600 new ones fill
    // windows 3 and 4.
    let (rows, _) = world.draw(1_600, &Regime::default());
    data_log.append_rows(&model(), &rows).await.unwrap();
    let monitor = start(
        config(dir.path()),
        Arc::clone(&champions),
        Arc::clone(&data_log),
        None,
    )
    .await;
    let ids = reports_reach(dir.path(), 4).await;
    assert_eq!(ids.len(), 4, "exactly two more windows: {ids:?}");
    assert_eq!(
        &ids[..2],
        &first[..],
        "the first windows are the same windows"
    );
    let again = tokio::fs::read(
        dir.path()
            .join(format!("reports/{MODEL}/{}.json", first[0])),
    )
    .await
    .unwrap();
    assert_eq!(
        again, first_report,
        "completed windows are not compared again"
    );
    let (status, body) = http_get(monitor.addr, &format!("/reports/{MODEL}/{}", ids[2])).await;
    assert_eq!(status, 200);
    let report: mend_monitor::MonitorReport = serde_json::from_str(&body).unwrap();
    assert_eq!(report.drift.current_rows, 1_000);
    assert_eq!(
        report.window.from_seq,
        Some(2_001),
        "window 3 starts right after window 2, with the rows read before the restart"
    );
    monitor.stop().await;
}
