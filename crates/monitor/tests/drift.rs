#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The monitor end to end against a real nats-server (JetStream bus and data log): shifted
//! rows give one data-drift event per episode naming the shifted feature, a promotion
//! switches the reference, a flipped concept gives a performance-drift event, and reports
//! are served over HTTP.

mod common;

use std::time::Duration;

use common::*;
use mend_bus::events::{DriftKind, ModelPromoted};
use mend_bus::{DataLogExt, Envelope, publish_event};
use mend_monitor::{MonitorReport, ReportSummary};
use mend_testkit::eventually;
use mend_worlds::Regime;

const QUIET: Duration = Duration::from_millis(700);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shifted_rows_drift_once_per_episode_and_promotion_switches_the_reference() {
    let nats = nats().await;
    let dir = tempfile::tempdir().unwrap();
    let (champions, mut observer, monitor) = start_over_nats(&nats, dir.path()).await;
    let mut world = World::new();
    let log = &nats.data_log;

    // Two calm windows: reports, no events.
    let (rows, _) = world.draw(2_000, &Regime::default());
    log.append_rows(&model(), &rows).await.unwrap();
    reports_reach(dir.path(), 2).await;
    observer.drain(QUIET).await;
    assert!(
        observer.of_kind(DriftKind::Data).is_empty(),
        "calm windows do not drift: {:?}",
        observer.drift
    );

    // Four shifted windows: one episode (confirmed by the second), one event, naming x0.
    let (rows, _) = world.draw(4_000, &shift(1.0));
    log.append_rows(&model(), &rows).await.unwrap();
    reports_reach(dir.path(), 6).await;
    observer.drain(QUIET).await;
    let data = observer.of_kind(DriftKind::Data);
    assert_eq!(data.len(), 1, "one event per episode: {data:?}");
    let event = data[0];
    let names: Vec<&str> = event.features.iter().map(|f| f.feature.as_str()).collect();
    assert_eq!(names, ["x0"], "only the shifted feature drifted");
    assert!(event.features[0].score >= event.features[0].threshold);
    assert_eq!(event.champion_version, Some(1));
    let report_id = event.report_id.clone().expect("the event names its report");
    assert!(observer.alerts >= 1, "an alert goes with the event");

    // The report is served: listed, as JSON, as a page; unknown ids are 404.
    let (status, body) = http_get(monitor.addr, &format!("/reports/{MODEL}")).await;
    assert_eq!(status, 200);
    let listed: Vec<ReportSummary> = serde_json::from_str(&body).unwrap();
    assert_eq!(listed.len(), 6);
    assert!(listed.iter().any(|r| r.id == report_id && r.data_drift));
    let (status, body) = http_get(monitor.addr, &format!("/reports/{MODEL}/{report_id}")).await;
    assert_eq!(status, 200);
    let report: MonitorReport = serde_json::from_str(&body).unwrap();
    assert!(report.drift.feature("x0").unwrap().drifted);
    assert!(
        report
            .estimated_accuracy
            .is_some_and(|e| (0.5..=1.0).contains(&e))
    );
    let (status, page) =
        http_get(monitor.addr, &format!("/reports/{MODEL}/{report_id}.html")).await;
    assert_eq!(status, 200);
    assert!(page.contains("<svg") && page.contains("x0"));
    let (status, _) = http_get(
        monitor.addr,
        &format!("/reports/{MODEL}/00000000000000000001"),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = http_get(monitor.addr, "/reports/..%2Fmonitor/latest").await;
    assert_eq!(
        status, 404,
        "a model name never becomes a path outside the reports"
    );
    let (status, _) = http_get(monitor.addr, &format!("/reports/{MODEL}/latest.html")).await;
    assert_eq!(status, 200);
    let (status, _) = http_get(monitor.addr, "/metrics").await;
    assert_eq!(status, 200);

    // A calm window closes the episode; drifting again is a new episode, a new event.
    let (rows, _) = world.draw(1_000, &Regime::default());
    log.append_rows(&model(), &rows).await.unwrap();
    reports_reach(dir.path(), 7).await;
    let (rows, _) = world.draw(2_000, &shift(1.0));
    log.append_rows(&model(), &rows).await.unwrap();
    reports_reach(dir.path(), 9).await;
    observer.drain(QUIET).await;
    assert_eq!(
        observer.of_kind(DriftKind::Data).len(),
        2,
        "a second episode"
    );

    // A champion trained on the shifted world is promoted: the shift is its normal.
    champions.set(&model(), 2, train(&shift(1.0), 2));
    publish_event(
        nats.bus.as_ref(),
        &Envelope::new(
            model(),
            ModelPromoted {
                version: 2,
                previous: Some(1),
                reason: "retrained".into(),
                metrics: Default::default(),
                trigger_event_id: None,
            },
        ),
    )
    .await
    .unwrap();
    // Wait until the monitor has switched (it saves the new version with its position).
    eventually(SOON, "the switch to v2", || async {
        let text = tokio::fs::read_to_string(dir.path().join("monitor/synth.json"))
            .await
            .ok()?;
        text.contains("\"champion_version\": 2").then_some(())
    })
    .await;
    let (rows, _) = world.draw(2_000, &shift(1.0));
    log.append_rows(&model(), &rows).await.unwrap();
    let ids = reports_reach(dir.path(), 11).await;
    observer.drain(QUIET).await;
    assert_eq!(
        observer.of_kind(DriftKind::Data).len(),
        2,
        "shifted rows are normal for the new champion"
    );
    let (_, body) = http_get(monitor.addr, &format!("/reports/{MODEL}/{}", ids[10])).await;
    let report: MonitorReport = serde_json::from_str(&body).unwrap();
    assert_eq!(report.champion_version, 2);
    assert!(!report.data_drift);

    // And the old world is now the drift, against v2.
    let (rows, _) = world.draw(2_000, &Regime::default());
    log.append_rows(&model(), &rows).await.unwrap();
    reports_reach(dir.path(), 13).await;
    observer.drain(QUIET).await;
    let data = observer.of_kind(DriftKind::Data);
    assert_eq!(data.len(), 3);
    assert_eq!(data[2].champion_version, Some(2));
    monitor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_concept_is_performance_drift() {
    let nats = nats().await;
    let dir = tempfile::tempdir().unwrap();
    let (_champions, mut observer, monitor) = start_over_nats(&nats, dir.path()).await;
    let mut world = World::new();
    let log = &nats.data_log;

    // Rows, then their labels later (as in production), in the trained concept.
    let (rows, labels) = world.draw(2_000, &Regime::default());
    log.append_rows(&model(), &rows).await.unwrap();
    log.append_labels(&model(), &labels).await.unwrap();
    reports_reach(dir.path(), 2).await;
    observer.drain(QUIET).await;
    assert!(
        observer.of_kind(DriftKind::Performance).is_empty(),
        "calm labels are no performance drift: {:?}",
        observer.of_kind(DriftKind::Performance)
    );

    // Same inputs, flipped outcomes: no data drift, but performance drift, once.
    let (rows, labels) = world.draw(2_000, &flipped());
    log.append_rows(&model(), &rows).await.unwrap();
    log.append_labels(&model(), &labels).await.unwrap();
    reports_reach(dir.path(), 4).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while observer.of_kind(DriftKind::Performance).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no performance drift event"
        );
        observer.drain(QUIET).await;
    }
    let event = observer.of_kind(DriftKind::Performance)[0].clone();
    observer.drain(QUIET).await;
    assert_eq!(
        observer.of_kind(DriftKind::Performance).len(),
        1,
        "once per episode"
    );
    assert!(
        observer.of_kind(DriftKind::Data).is_empty(),
        "the inputs did not move"
    );
    let accuracy = event.metrics["accuracy"];
    let baseline = event.metrics["baseline_accuracy"];
    assert!(
        accuracy < baseline - 0.05,
        "accuracy {accuracy} vs baseline {baseline}"
    );
    assert_eq!(event.features[0].feature, "accuracy");

    // The next window's report carries the measured drop (labels came after the rows of the
    // windows before it), and so does the accuracy gauge.
    let (rows, _) = world.draw(1_000, &flipped());
    log.append_rows(&model(), &rows).await.unwrap();
    let ids = reports_reach(dir.path(), 5).await;
    let (_, metrics) = http_get(monitor.addr, "/metrics").await;
    let gauge: f64 = metrics
        .lines()
        .find(|line| line.starts_with("mend_monitor_accuracy{"))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .expect("the accuracy gauge is exported");
    assert!(gauge < baseline - 0.05, "gauge {gauge}");
    let (_, body) = http_get(monitor.addr, &format!("/reports/{MODEL}/{}", ids[4])).await;
    let report: MonitorReport = serde_json::from_str(&body).unwrap();
    let performance = report.performance.expect("labels were judged");
    assert!(performance.drifted);
    monitor.stop().await;
}
