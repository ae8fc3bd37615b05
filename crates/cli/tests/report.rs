#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `mend report` as an operator runs it, against a monitor served inside the test (SQLite
//! data log, champion in memory, no bus).

mod common;

use common::{mend, ok};
use std::sync::Arc;
use std::time::Duration;

use mend_bus::{DataLog, DataLogExt, ModelName, SqliteDataLog};
use mend_core::synthetic::{Regime, SyntheticSpec};
use mend_monitor::{InMemoryChampionSource, MonitorConfig, MonitorDeps, ReportStore};
use mend_runtime::{Metrics, Shutdown};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_lists_and_writes_reports_from_the_monitor() {
    let dir = tempfile::tempdir().unwrap();
    let model = ModelName::new("synth").unwrap();
    let (artifact, mut generator) =
        mend_testkit::artifacts::train_on(SyntheticSpec::default(), 3_000);
    let champions = Arc::new(InMemoryChampionSource::new());
    champions.set(&model, 1, artifact);
    let data_log: Arc<dyn DataLog> =
        Arc::new(SqliteDataLog::open(&dir.path().join("log")).unwrap());
    generator.reseed(9);
    let shifted = generator.sample(
        2_000,
        &Regime {
            shift: 1.0,
            ..Regime::default()
        },
    );
    let (rows, _) = generator.to_records(&shifted, "row-", 0, 0);
    data_log.append_rows(&model, &rows).await.unwrap();

    let mut config = MonitorConfig::new(vec![model.clone()], dir.path());
    config.poll_interval = Duration::from_millis(50);
    // Two windows of the 2,000 shifted rows, so there are two reports to list.
    config.window_rows = 1_000;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let shutdown = Shutdown::new();
    let deps = MonitorDeps {
        champions,
        data_log,
        bus: None,
        metrics: Metrics::new(),
    };
    let task = tokio::spawn(mend_monitor::run(config, deps, listener, shutdown.clone()));
    let store = ReportStore::new(dir.path(), 100);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let ids = loop {
        let ids = store.ids("synth").await.unwrap();
        if ids.len() == 2 {
            break ids;
        }
        assert!(tokio::time::Instant::now() < deadline, "no reports");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let work = tempfile::tempdir().unwrap();
    let vars = [("MEND_HTTP_ADDR", addr.as_str())];
    // The newest report by default, its page written next to the operator.
    let text = ok(mend(work.path(), &vars, &["report", "synth"]).await);
    assert!(text.contains(&ids[1]), "{text}");
    assert!(text.contains("drifted features: x0"), "{text}");
    let page = std::fs::read_to_string(
        work.path()
            .join(format!("mend-report-synth-{}.html", ids[1])),
    )
    .unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("<svg"));

    // A named report, as JSON, to a chosen file.
    let out = work.path().join("first.html");
    let json = ok(mend(
        work.path(),
        &vars,
        &[
            "report",
            "synth",
            &ids[0],
            "--out",
            out.to_str().unwrap(),
            "--json",
        ],
    )
    .await);
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["id"], ids[0].as_str());
    assert_eq!(report["drift"]["current_rows"], 1_000);
    assert!(std::fs::read_to_string(&out).unwrap().contains("x0"));

    // The listing, newest first.
    let json = ok(mend(work.path(), &vars, &["report", "synth", "--list", "--json"]).await);
    let listed: Value = serde_json::from_str(&json).unwrap();
    let listed_ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed_ids, [ids[1].as_str(), ids[0].as_str()]);
    let table = ok(mend(
        work.path(),
        &[],
        &["report", "synth", "--list", "--addr", &addr],
    )
    .await);
    assert!(table.contains(&ids[0]) && table.contains("x0"), "{table}");

    // Unknown reports and unreachable monitors fail with a reason.
    let out = mend(work.path(), &vars, &["report", "synth", "123"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    let out = mend(
        work.path(),
        &[("MEND_HTTP_ADDR", "127.0.0.1:1")],
        &["report", "synth"],
    )
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the monitor"));

    shutdown.trigger();
    task.await.unwrap().unwrap();
}
