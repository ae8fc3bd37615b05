#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `mend demo`, the README's main job: the services heal a model on a drifting stream.

use std::path::Path;
use std::process::Command;

use mend_bus::{DataLogExt, ModelName, SqliteDataLog, Window};

/// Rows the demo sends: its four acts (4, 5, 6 and 8 batches) of 1,000-row batches.
const ROWS: usize = (4 + 5 + 6 + 8) * 1_000;

/// Rows and labels of `churn` in the demo's data log.
fn stored(data_dir: &Path) -> (usize, usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let log = SqliteDataLog::open(data_dir).unwrap();
        let churn = ModelName::new("churn").unwrap();
        let all = Window::sequence(1, None);
        let rows = log.read_rows(&churn, &all).await.unwrap().len();
        let labels = log.read_labels(&churn, &all).await.unwrap().len();
        (rows, labels)
    })
}

#[test]
fn the_demo_heals_through_the_services() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mend"))
        .current_dir(dir.path())
        .args(["demo", "--json", "--data-dir", "demo-data"])
        .output()
        .expect("mend runs");
    assert!(
        out.status.success(),
        "mend demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    // Every batch was answered by the server, and its rows and labels went in through ingest.
    assert_eq!(summary["rows"].as_u64(), Some(ROWS as u64), "{summary}");
    assert_eq!(stored(&dir.path().join("demo-data")), (ROWS, ROWS));

    // The demo paces its traffic by the wall clock (a 400 ms pause after each batch), so how
    // many batches a healed version answers, and so by how much it beats the first model,
    // depends on how fast the loop runs on this machine. What does not: a version was
    // promoted, and the answers the server gave scored better than the first model scores
    // on the same rows.
    let healed = summary["prequential_accuracy"].as_f64().unwrap();
    let never_retrained = summary["static_accuracy"].as_f64().unwrap();
    assert!(summary["promotions"].as_u64().unwrap() >= 1, "{summary}");
    assert!(
        healed > never_retrained,
        "healed {healed} vs static {never_retrained}"
    );
    let report = summary["report"]
        .as_str()
        .expect("the monitor wrote a report");
    assert!(dir.path().join(report).exists(), "{report}");
}
