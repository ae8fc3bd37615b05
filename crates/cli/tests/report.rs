#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `mend report` as an operator runs it, against a monitor served inside the test (SQLite
//! data log, champion in memory, no bus).

mod common;

use common::{mend, ok};
use std::sync::Arc;
use std::time::Duration;

use mend_bus::{DataLog, DataLogExt, ModelName, SqliteDataLog};
use mend_core::report::escape::escape;
use mend_monitor::{InMemoryChampionSource, MonitorConfig, MonitorDeps, ReportStore};
use mend_runtime::{Metrics, Shutdown};
use mend_worlds::{Regime, SyntheticSpec};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_lists_and_writes_reports_from_the_monitor() {
    let dir = tempfile::tempdir().unwrap();
    let model = ModelName::new("synth").unwrap();
    // A reference large enough that calm features stay calm in 1,000-row windows (see the
    // monitor's tests): only the shifted x0 drifts.
    let (artifact, mut generator) =
        mend_testkit::artifacts::train_on(SyntheticSpec::default(), 12_000);
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
    // Two windows of the 2,000 shifted rows, so there are two reports to list; x0's drift is
    // confirmed by the second.
    config.window_rows = 1_000;
    config.confirm_windows = 2;
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
    let page = std::fs::read_to_string(
        work.path()
            .join(format!("mend-report-synth-{}.html", ids[1])),
    )
    .unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("<svg"));

    // One feature of six drifted, in both windows: feature drift, confirmed, so a data-drift
    // alarm; but no dataset drift (the share rule). The JSON, the summary and the page's
    // headline all say exactly that, in the same words.
    let newest = store.get("synth", &ids[1]).await.unwrap().unwrap();
    assert_eq!(newest.feature_drift, ["x0"]);
    assert!(!newest.dataset_drift && !newest.drift.dataset_drift);
    assert!(newest.alarm.data && newest.data_drift);
    let lines: Vec<String> = newest.verdicts().iter().map(|v| v.line()).collect();
    assert!(
        lines[0].starts_with("alarm: yes (data: feature drift confirmed in x0"),
        "{lines:?}"
    );
    assert_eq!(
        lines[1],
        "dataset drift: no (1 of 6 features drifted, share 0.17 < 0.50)"
    );
    assert!(
        lines[2].starts_with("feature drift: yes (x0: "),
        "{lines:?}"
    );
    assert!(lines[3].starts_with("prediction drift: "), "{lines:?}");
    assert_eq!(
        lines[4],
        "performance drift: not measured (no labels judged yet)"
    );
    for line in &lines {
        assert!(text.lines().any(|l| l == line), "{line} not in {text}");
        assert!(page.contains(&escape(line)), "{line} not on the page");
    }
    assert!(!page.contains("dataset drift: yes"));
    let raw: Value = serde_json::from_str(&ok(mend(
        work.path(),
        &vars,
        &["report", "synth", "--json"],
    )
    .await))
    .unwrap();
    assert_eq!(raw["dataset_drift"], false);
    assert_eq!(raw["feature_drift"], serde_json::json!(["x0"]));
    assert_eq!(raw["alarm"]["data"], true);
    assert_eq!(raw["data_drift"], true);

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
    // The first window drifted too, but one window does not confirm it: no alarm yet.
    assert_eq!(report["feature_drift"], serde_json::json!(["x0"]));
    assert_eq!(report["alarm"]["data"], false);
    assert_eq!(report["data_drift"], false);
    let first = std::fs::read_to_string(&out).unwrap();
    assert!(first.contains("x0"));
    assert!(
        first.contains("alarm: no (drift in this window is not confirmed yet"),
        "{first}"
    );

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
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|header| header.contains("dataset drift")
                && header.contains("feature drift")
                && header.contains("alarm")),
        "{table}"
    );

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
