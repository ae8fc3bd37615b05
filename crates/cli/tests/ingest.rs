#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `mend ingest` as an operator runs it, against an ingest service served inside the test.

mod common;

use common::{mend, ok};
use std::sync::Arc;

use mend_bus::{DataLogExt, ModelName, SqliteDataLog, Window};
use mend_core::record::Value;
use mend_core::{Feature, FeatureKind, Schema};
use mend_ingest::{InMemorySchemaSource, IngestConfig, IngestDeps};
use mend_runtime::{Health, Metrics, Shutdown};

struct Ingest {
    addr: String,
    log: Arc<SqliteDataLog>,
    shutdown: Shutdown,
    _dir: tempfile::TempDir,
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

async fn start_ingest() -> Ingest {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(SqliteDataLog::open(dir.path()).unwrap());
    let schemas = Arc::new(InMemorySchemaSource::new());
    schemas.promote(
        "churn",
        Schema {
            features: vec![
                Feature {
                    name: "age".into(),
                    kind: FeatureKind::Numeric,
                },
                Feature {
                    name: "plan".into(),
                    kind: FeatureKind::Categorical,
                },
            ],
            label: "churned".into(),
            classes: vec!["no".into(), "yes".into()],
            id_column: Some("id".into()),
            time_column: None,
            allow_missing: true,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let shutdown = Shutdown::new();
    let deps = IngestDeps {
        schemas,
        data_log: log.clone(),
        bus: None,
        metrics: Metrics::new(),
        health: Health::new(),
    };
    tokio::spawn(mend_ingest::run(
        IngestConfig::default(),
        deps,
        listener,
        shutdown.clone(),
    ));
    Ingest {
        addr,
        log,
        shutdown,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_csv_in_batches_and_lists_the_rejected_rows() {
    let ingest = start_ingest().await;
    let work = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,ts,age,plan,churned\n");
    for i in 0..25 {
        csv.push_str(&format!("r{i},2026-11-26T07:00:00Z,{},pro,no\n", 20 + i));
    }
    csv.push_str("bad1,1700000000000,forty,pro,no\n");
    csv.push_str("bad2,,33,,yes\n");
    std::fs::write(work.path().join("rows.csv"), &csv).unwrap();
    let vars = [("MEND_INGEST_ADDR", ingest.addr.as_str())];

    // A rejected row makes the exit status non-zero (scripts notice), after the summary.
    let refused = mend(
        work.path(),
        &vars,
        &[
            "ingest",
            "rows.csv",
            "--model",
            "churn",
            "--batch",
            "10",
            "--time-column",
            "ts",
        ],
    )
    .await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert!(
        stderr.contains("1 of 27 rows were rejected") && stderr.contains("--allow-rejects"),
        "{stderr}"
    );
    let out = String::from_utf8(refused.stdout).unwrap();
    assert!(out.contains("27 rows read"), "{out}");
    assert!(out.contains("26 accepted, 1 rejected"), "{out}");
    // Line 27 of the file: the header, then 25 good rows, then `bad1`.
    let bad = out.lines().find(|line| line.contains("bad1")).unwrap();
    assert!(bad.starts_with("27"), "{bad}");
    assert!(
        bad.contains("age") && bad.contains("expected a number"),
        "{bad}"
    );

    let churn = ModelName::new("churn").unwrap();
    let rows = ingest
        .log
        .read_rows(&churn, &Window::sequence(1, None))
        .await
        .unwrap();
    assert_eq!(rows.len(), 26);
    assert_eq!(rows[0].record.id, "r0");
    assert_eq!(rows[0].record.time_ms, 1_795_676_400_000);
    assert_eq!(rows[25].record.values["plan"], Value::Missing);

    // Labels, as JSON for scripts.
    std::fs::write(
        work.path().join("labels.csv"),
        "row_id,label\nr0,yes\nr1,maybe\nr2,no\n",
    )
    .unwrap();
    let out = ok(mend(
        work.path(),
        &vars,
        &[
            "ingest",
            "labels.csv",
            "--model",
            "churn",
            "--labels",
            "--json",
            "--allow-rejects",
        ],
    )
    .await);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["accepted"], 2);
    assert_eq!(summary["rejected"], 1);
    assert_eq!(summary["rejected_rows"][0]["line"], 3);
    assert_eq!(summary["rejected_rows"][0]["field"], "label");
    let labels = ingest
        .log
        .read_labels(&churn, &Window::sequence(1, None))
        .await
        .unwrap();
    assert_eq!(labels.len(), 2);

    // A predictions file (what `mend predict` writes) never passes for ground truth.
    std::fs::write(
        work.path().join("predictions.csv"),
        "id,p_no,p_yes,predicted_label\nr3,0.2,0.8,yes\n",
    )
    .unwrap();
    let refused = mend(
        work.path(),
        &vars,
        &["ingest", "predictions.csv", "--model", "churn", "--labels"],
    )
    .await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert!(stderr.contains("no `label` column"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn says_where_it_looked_when_the_service_is_not_there() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("rows.csv"), "id,age\na,1\n").unwrap();
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let out = mend(
        work.path(),
        &[("MEND_INGEST_ADDR", addr.as_str())],
        &["ingest", "rows.csv", "--model", "churn"],
    )
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&addr) && stderr.contains("MEND_INGEST_ADDR"),
        "{stderr}"
    );
}
